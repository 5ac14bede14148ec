"""Literals, operators, constant folding, f-strings, calls with keywords."""
import time

a = -5
b = 2 ** 10
c = 7 // 2, 7 % 3, -7 // 2, 1 / 4
d = {"x": 1, "y": 2.5, "z": "s"}
e = {"k": a}
f = (1, 2, (3, "four"))
g = [a, b]
h = "con" + "cat"
t0 = time.time()
print(a, b, c, d, e, f, g, h)
print(f"{b:,} {c[3]:.3f} {h!r} {a=} {d['y']}")
print(not a, a is None, a is not None, a in g, 3 not in g)
print("sep", end="\n", sep=" ")
d["x"] += 10
g[0] -= 1
print(d["x"], g[0], len(d), repr(h))
print(time.time() >= t0)
first, second = 1, 2
first, second = second, first
x, y, z = [3, 4], "s", (5,)
(one,) = (1,)
pair = (7, 8)
left, right = pair
print(first, second, x, y, z, one, left, right)


def swap(a, b):
    a, b = b, a
    return a, b


print(swap(1, 2))
for k, v in [(1, 2), (3, 4)]:
    print(k + v)
