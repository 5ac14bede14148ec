"""A user __iadd__ that returns a new object: total += 1 reads the global, runs __iadd__ (a
frame that polls at its entry) and only then writes the global."""
# expect: T * N
import threading


class Total:
    def __init__(self, n):
        self.n = n

    def __iadd__(self, other):
        return Total(self.n + other)


total = Total(0)


def work(iterations):
    global total
    for _ in range(iterations):
        total += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {total.n}")
