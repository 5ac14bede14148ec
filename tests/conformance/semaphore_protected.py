"""The increment under a BoundedSemaphore(1) used as a mutex."""
# expect: T * N
import threading

shared = {"n": 0}
gate = threading.BoundedSemaphore(1)


def work(iterations):
    for _ in range(iterations):
        with gate:
            shared["n"] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
