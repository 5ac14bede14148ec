"""Control flow: if/elif/else, while/else, for/else, break, continue, nested loops."""
import sys

total = 0
for i in range(10):
    if i == 3:
        continue
    elif i > 7:
        break
    else:
        total += i
else:
    total = -1
print(total)

n = 0
while n < 5:
    n += 1
    if n == 4:
        break
else:
    print("no break")
print(n)

while True:
    n -= 1
    if not n:
        break
print(n)


def search(items, wanted):
    for x in items:
        if x == wanted:
            return True
    return False


print(search([1, 2], 2), search([1, 2], 3))


def count_down(k):
    while k > 0:
        k -= 1
    else:
        return k


print(count_down(3))
if 1 < total < 100 and not total == 50 or total == 0:
    print("in range")
x = 5 if total > 3 else 6
print(x)
assert x == 5, f"x is {x}"
assert total
print(sys.getrefcount(total) > 0)
for w in [x, n]:
    print(w)
print(3 in [1, 2, 3], x not in [n, 7], [v for v in [x, 1] if v in [5]])
if x in [5, 6]:
    print("five")
