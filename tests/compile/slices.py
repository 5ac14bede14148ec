"""Slices of lists, tuples and strs; slice assignment to a list."""
items = [0, 1, 2, 3, 4, 5]
word = "threading"
print(items[1:3], items[:2], items[4:], items[::2], items[::-1], items[-2:], items[1:-1:2])
print((1, 2, 3)[1:], word[:6], word[::-1], word[2:100], items[5:1], items[-100:2])
lo = 2
hi = 4
print(items[lo:hi], items[lo:], items[:hi:1])
items[1:3] = [10, 20, 30]
print(items)
items[::2] = [7, 7, 7, 7]
print(items)
items[:] = []
print(items, len(items))
