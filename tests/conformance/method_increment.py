"""A method doing self.n += 1: the call's frame polls at its entry, before the read."""
# expect: T * N
import threading


class Counter:
    def __init__(self):
        self.n = 0

    def increment(self):
        self.n += 1


counter = Counter()


def work(iterations):
    for _ in range(iterations):
        counter.increment()


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {counter.n}")
