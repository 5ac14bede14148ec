"""A collections.Counter's entry incremented in place: `counts["n"] += 1` is dict's C code once
the key is there; only the very first read of the missing key runs Counter's Python
`__missing__`, a frame of its own."""
# expect: T * N
import threading
from collections import Counter

counts = Counter()


def work(iterations):
    for _ in range(iterations):
        counts["n"] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {counts['n']}")
