"""Classes: __init__, methods, class attributes, inheritance, properties, static and class
methods, and dunder methods the VM calls from inside an instruction."""


class Counter:
    """Counts."""

    step = 1

    def __init__(self, start=0):
        self.n = start

    def bump(self):
        self.n += self.step
        return self.n

    @property
    def double(self):
        return self.n * 2

    @double.setter
    def double(self, value):
        self.n = value // 2

    @staticmethod
    def zero():
        return 0

    @classmethod
    def make(cls, start):
        return cls(start)


class Loud(Counter):
    step = 10

    def bump(self):
        return Counter.bump(self) + 1000


class Box:
    def __init__(self, items):
        self.items = items

    def __getitem__(self, i):
        return self.items[i]

    def __setitem__(self, i, value):
        self.items[i] = value

    def __len__(self):
        return len(self.items)

    def __add__(self, other):
        return Box(self.items + other.items)

    def __iadd__(self, other):
        self.items.append(other)
        return self

    def __eq__(self, other):
        return self.items == other.items

    def __enter__(self):
        print("enter")
        return self

    def __exit__(self, a, b, c):
        print("exit", a, b, c)


c = Counter(5)
print(c.bump(), c.bump(), c.n, Counter.step)
print(c.double)
c.double = 40
print(c.n, Counter.zero(), c.zero(), Counter.make(7).n)
loud = Loud()
print(loud.bump(), isinstance(loud, Counter), isinstance(c, Loud))
m = c.bump
print(m())
Counter.step = 3
print(c.bump())
b = Box([1, 2])
b[0] = b[1] + 5
print(b[0], len(b))
b += 9
print(b.items, (b + Box([4])).items, b == Box([7, 2, b[2]]))
with Box([]) as inside:
    print(len(inside))


def deco(f):
    return f


@deco
class Tagged:
    @deco
    def run(self, n=3):
        return n


print(Tagged().run())
