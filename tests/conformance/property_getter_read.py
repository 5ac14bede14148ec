"""A property's getter reads the counter; the write follows once the getter has returned into
LOAD_ATTR. 3.10 polls when a call returns only after a CALL, not after LOAD_ATTR."""
# expect: T * N
import threading


class Counter:
    def __init__(self):
        self._value = 0

    @property
    def value(self):
        return self._value


counter = Counter()


def work(iterations):
    for _ in range(iterations):
        counter._value = counter.value + 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {counter.value}")
