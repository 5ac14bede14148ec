"""Generators: expressions consumed by sum() and for loops, generator functions."""


def squares(limit):
    for value in range(limit):
        yield value * value


def compute_sum(limit):
    total = sum(value ** 2 for value in range(limit))
    return total


print(compute_sum(10), sum(squares(5)), sum([1, 2], 3))
for s in squares(3):
    print(s)
odd = (v for v in range(6) if v % 2)
for v in odd:
    print("odd", v)
print(sum(x for x in range(4) if x != 2))
