"""*args, **kwargs and keyword-only parameters, with their defaults and errors."""
import threading

seen = {}


def work(label, *numbers, scale=1, **extra):
    seen[label] = (sum(numbers) * scale, sorted(extra.items()))


def plain(*args, **kwargs):
    return len(args), sorted(kwargs)


def only(a, *, b, c=3):
    return a + b + c


t = threading.Thread(target=work, args=("a", 1, 2, 3), kwargs={"scale": 2, "note": "x"})
t.start()
t.join()
work("b")
print(seen, plain(), plain(1, 2, k=3), (lambda *a, **k: (a, k))(4, 5, z=6))
print(only(1, b=2), only(1, c=10, b=2))
