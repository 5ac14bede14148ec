import threading

seen = set()
lock = threading.Lock()
primes = {2, 3, 5, 7, 11}
empty = set()


def work(items):
    for n in items:
        if n not in seen:
            with lock:
                seen.add(n)


threads = [threading.Thread(target=work, args=(range(i, 12, 2),)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()

print(sorted(seen), len(seen), 3 in seen, 100 in seen)
print(primes, empty, frozenset(), set([3, 1, 2]))
squares = {n * n for n in range(10) if n % 2}
print(squares)
index = {name: len(name) for name in ["ab", "c", "def"]}
print(index)
print(primes | {1, 4}, primes & {3, 4, 5}, primes - {2, 3}, primes ^ {2, 100})
print(5 & 3, 5 | 3, 5 ^ 3, True & False, True | False)
s = {10, 20, 30}
s.discard(20)
s.remove(10)
s.update([40, 50], {60})
print(s, s.pop(), s)
t = s.copy()
t.clear()
print(t, s.issubset({30, 40, 50, 60, 70}), s.issuperset({40}), s.isdisjoint({1}))
print(s.union([1]), s.intersection([40, 1]), s.difference({40}))
for x in {8, 16, 1}:
    print(x, end=" ")
print()
if 3 in {1, 2, 3}:
    print("yes")
pairs = {(1, 2), (3, 4), (0, 0)}
print(pairs, len({1, 1.0, True}))
try:
    s.remove(999)
except KeyError as e:
    print("KeyError", e)
try:
    {[1]}
except TypeError as e:
    print(e)
d = {k: k for k in [9, 1, 17, 33, 2, 50]}
print(set(d), set(d.values()), set(range(30, 0, -7)))
print(sorted({"b", "a", "c"}), {x % 3 for x in range(10)})
words = {}
for w in ["x", "y", "x"]:
    words[w] = words.get(w, 0) + 1
print({k: v for k, v in words.items() if v > 1})
s = {1, 2}
alias = s
s |= {3}
s &= {1, 3, 4}
s -= {1}
s ^= {5}
items = [1]
same = items
items += (2, 3)
print(alias is s, alias, same is items, same)
