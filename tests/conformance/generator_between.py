"""A generator expression (a Python frame of its own) between the read and the write."""
# expect: T * N
import threading

shared = {"n": 0}

def work(iterations):
    for _ in range(iterations):
        shared["n"] = shared["n"] + sum(1 for _ in range(1))


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
