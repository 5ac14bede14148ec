"""Closures: a nonlocal counter, a comprehension and a lambda reading the function around them."""
import threading


def make_counter():
    count = 0

    def bump():
        nonlocal count
        count += 1
        return count

    return bump


def outer(scale):
    def inner(x):
        return [x * scale for _ in range(2)]

    return inner


def adder(n):
    return lambda x: x + n


bump = make_counter()
bump()
print(bump(), outer(3)(2), adder(5)(1), sum(v * k for v in range(3) for k in [2]))

hits = make_counter()
threads = [threading.Thread(target=hits) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(hits())
