"""A class attribute: Counter.n += 1."""
# expect: T * N
import threading


class Counter:
    n = 0


def work(iterations):
    for _ in range(iterations):
        Counter.n += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {Counter.n}")
