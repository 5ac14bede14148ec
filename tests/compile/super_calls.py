import threading


class Base:
    def __init__(self, name):
        self.name = name
        self.calls = 0

    def describe(self):
        return "base " + self.name

    def bump(self, by=1):
        self.calls += by
        return self.calls


class Child(Base):
    def __init__(self, name, extra):
        super().__init__(name)
        self.extra = extra

    def describe(self):
        return super().describe() + " child " + str(self.extra)

    def bump(self, by=1):
        return super().bump(by * 10)

    def cls_name(self):
        return __class__.__name__


class GrandChild(Child):
    def describe(self):
        inner = lambda: super(GrandChild, self).describe()
        return "grand: " + inner()


class Plain:
    def __init__(self):
        super().__init__()
        self.ok = True


class Failure(Exception):
    def __init__(self, code):
        super().__init__("failed with", code)
        self.code = code


c = Child("c", 7)
print(c.describe(), c.bump(), c.bump(2), c.cls_name())
g = GrandChild("g", 1)
print(g.describe(), g.name, g.extra, g.cls_name())
print(Plain().ok)
try:
    raise Failure(3)
except Failure as e:
    print(e.code, e.args, str(e))
lock = threading.Lock()
with lock:
    print(isinstance(g, Base), isinstance(c, GrandChild))
print(type(c).__name__, type(3) is int, type("a") == str, type(g) is GrandChild, type(True).__name__)
print(type(Failure(1)).__name__, type([]) is list, type(1.5).__name__)
