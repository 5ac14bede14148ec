"""A dict entry whose key has a Python `__hash__`: `d[key] += 1` calls it for the read and again
for the write, each a frame of its own, so a Python call sits between the read and the write."""
# expect: T * N
import threading


class Key:
    def __hash__(self):
        return 42


key = Key()
counts = {}
counts[key] = 0


def work(iterations):
    for _ in range(iterations):
        counts[key] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {counts[key]}")
