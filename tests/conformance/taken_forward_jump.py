"""A forward conditional jump that is taken, between the read and the write."""
# expect: T * N
import threading

shared = {"n": 0}

def work(iterations):
    for _ in range(iterations):
        value = shared["n"]
        if value < 0:
            value = 0
        shared["n"] = value + 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
