"""collections.deque: appends and pops at both ends, maxlen, indexing, iteration."""
import collections
from collections import deque

d = deque([1, 2, 3])
d.append(4)
d.appendleft(0)
print(d, len(d), d[0], d[-1], 3 in d, d.pop(), d.popleft(), d)
bounded = collections.deque(range(5), maxlen=3)
bounded.append(9)
bounded.extend([7, 8])
print(bounded, list(bounded), bool(deque()), deque() == deque([]))
total = 0
for x in d:
    total += x
print(total)
d.clear()
print(d, len(d))
