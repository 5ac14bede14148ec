"""A caught exception between the read and the write of a shared counter."""
# expect: T * N
import threading

shared = {"n": 0}
empty = {}


def work(iterations):
    for _ in range(iterations):
        value = shared["n"]
        try:
            empty[value]
        except KeyError:
            pass
        shared["n"] = value + 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
