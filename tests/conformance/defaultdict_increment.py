"""A defaultdict(int)'s entry incremented in place: its `__missing__` and `int()` are C, so the
read-modify-write is the plain dict's."""
# expect: T * N
import threading
from collections import defaultdict

counts = defaultdict(int)


def work(iterations):
    for i in range(iterations):
        counts[i % 7] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {sum(counts.values())}")
