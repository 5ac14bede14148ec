"""The common built-ins and the methods of str, list and dict."""

nums = [5, 3, 8, 1]
print(min(nums), max(nums), min(4, 2, 9), max("b", "a"), abs(-7), abs(2.5))
print(int("42"), int(3.9), int(True), float("1.5"), float(2), str(12), bool(0), bool([1]))
print(list(range(3)), tuple(nums), sorted(nums), sorted(nums, reverse=True))
print(list(enumerate(["a", "b"], 1)), list(zip(nums, "abcd")))
d = dict(a=1, b=2)
d2 = dict([("x", 1), ("y", 2)])
print(d, d2, d.get("a"), d.get("z"), d.get("z", 0), d.setdefault("c", 3), d)
print(list(d.keys()), list(d.values()), list(d.items()), len(d.items()))
for k, v in d.items():
    print(k, v)
for k in d:
    print(k)
d.update(d2)
print(d, d.copy() == d)
nums.append(9)
nums.insert(0, 7)
nums.extend([2, 2])
print(nums, nums.pop(), nums.pop(0), nums.index(8), nums.count(2))
nums.remove(2)
nums.sort()
print(nums)
nums.reverse()
print(nums, nums.copy())
nums.clear()
print(nums)
s = "  Hello, World  "
words = s.strip().split(", ")
print(words, "-".join(words), s.lower(), s.upper(), "a b  c".split())
print(s.strip().startswith("Hell"), s.endswith("d"), "banana".count("an"), "banana".find("n"))
print("banana".replace("a", "o"), isinstance(3, int), isinstance(True, int), isinstance("x", str))
print(id(nums) == id(nums), id(nums) == id(s))
