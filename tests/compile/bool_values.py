"""`and`, `or` and chained comparisons used as values (JUMP_IF_*_OR_POP)."""


def pick(a, b, c):
    x = a or b
    y = a and b
    z = a or b or c
    w = a and b and c
    m = (a and b) or c
    return x, y, z, w, m


def between(lo, v, hi):
    inside = lo <= v < hi
    both = lo < v and v < hi
    return inside, both, 0 < v <= 10 < hi


print(pick(0, 2, 3), pick(1, 0, 5), pick("", None, "c"))
print(between(1, 5, 9), between(5, 1, 9), between(1, 9, 20))
name = "" or "default"
flag = None and 1
print(name, flag, True and 7, False or 0)
