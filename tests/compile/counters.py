"""collections.Counter and defaultdict: missing keys, counting, most_common, dict methods."""
import collections
from collections import Counter, defaultdict

c = Counter()
print(c, c["absent"], len(c), "absent" in c)
c["a"] += 1
c["b"] += 3
c["a"] += 1
print(c, c["a"], sorted(c.keys()), c.get("z", 7))
words = Counter(["x", "y", "x", "z", "x", "y"])
print(words, words.most_common(1), words.most_common())
words.update(["z", "z", "z"])
words.subtract({"x": 1})
print(words, isinstance(words, dict), isinstance(words, Counter))
named = collections.Counter(red=2, blue=1)
print(named, list(named.items()))
d = defaultdict(int)
d["k"] += 5
d["j"]
print(d, dict(d), len(d), isinstance(d, dict))
groups = defaultdict(list)
for i in range(5):
    groups[i % 2].append(i)
print(groups[0], groups[1], sorted(groups))


class Key:
    def __init__(self, name):
        self.name = name

    def __hash__(self):
        return 7


k1 = Key("one")
k2 = Key("two")
table = {}
table[k1] = 1
table[k2] = 2
table[k1] += 10
print(table[k1], table[k2], k1 in table, len(table))
