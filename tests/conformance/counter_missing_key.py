"""Every thread counts the same fresh keys into a Counter: the first read of each key is
missing, and Counter's `__missing__` is Python, a call between the read and the write."""
# expect: T * N
import threading
from collections import Counter

counts = Counter()


def work(iterations):
    for i in range(iterations):
        counts[i] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {sum(counts.values())}")
