"""A property with a setter: counter.value += 1 reads through the getter and writes through the
setter, whose frame polls at its entry, between the read and the write."""
# expect: T * N
import threading


class Counter:
    def __init__(self):
        self._value = 0

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, new):
        self._value = new


counter = Counter()


def work(iterations):
    for _ in range(iterations):
        counter.value += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {counter.value}")
