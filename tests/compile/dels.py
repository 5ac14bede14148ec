class Box:
    def __init__(self):
        self.a = 1
        self.b = 2


d = {"x": 1, "y": 2, "z": 3}
del d["y"]
items = [0, 1, 2, 3, 4, 5, 6]
del items[0]
del items[-1]
del items[1:3]
b = Box()
del b.a
x, y = 1, 2
del x, y
print(d, items, hasattr(b, "a") if False else b.b)
try:
    print(x)
except NameError as e:
    print("NameError", e)


def f():
    v = 1
    del v
    try:
        return v
    except UnboundLocalError as e:
        return str(e)


print(f())
try:
    del d["nope"]
except KeyError as e:
    print("KeyError", e)
