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
