"""Names: module names, locals, globals, comprehension scopes, lambdas."""
counter = 0
names = ["a", "b"]


def bump():
    global counter
    counter += 1
    local = counter * 2
    return local


def reads_global():
    return counter + len(names)


def comprehension_at_function_level(n):
    squares = [i * i for i in range(n)]
    return squares


double = lambda v: v * 2
bump()
bump()
print(counter, reads_global(), comprehension_at_function_level(4), double(21))
pairs = [[a, b] for a in range(3) for b in range(2) if a != b]
print(pairs)
evens = [v for v in range(10) if v % 2 == 0 if v > 2]
print(evens)


def greet(name, greeting="hello", times=1, sep=None):
    return f"{greeting} {name} x{times} {sep}"


offset = 10
shifted = lambda v, by=offset: v + by
print(greet("a"), greet("b", "hi"), greet("c", times=3), greet(sep="-", name="d"))
print(shifted(1), shifted(1, 2))
