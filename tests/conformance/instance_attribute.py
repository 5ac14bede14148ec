"""An instance attribute of a class statement's object: counter.n += 1."""
# expect: T * N
import threading


class Counter:
    def __init__(self):
        self.n = 0


counter = Counter()


def work(iterations):
    for _ in range(iterations):
        counter.n += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {counter.n}")
