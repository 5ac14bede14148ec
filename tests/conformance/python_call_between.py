"""A Python function called between the read and the write."""
# expect: T * N
import threading

shared = {"n": 0}


def bump(value):
    return value + 1


def work(iterations):
    for _ in range(iterations):
        shared["n"] = bump(shared["n"])


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
