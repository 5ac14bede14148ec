"""A dict entry, as in the seed: shared["n"] += 1."""
# expect: T * N
import threading

shared = {"n": 0}

def work(iterations):
    for _ in range(iterations):
        shared["n"] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
