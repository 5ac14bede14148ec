"""Every worker waits on an Event before it starts; the increment itself is unprotected, so the
gate changes nothing: 3.8/3.9 lose updates, 3.10+ do not."""
# expect: T * N
import threading

shared = {"n": 0}
start = threading.Event()


def work(iterations):
    start.wait()
    for _ in range(iterations):
        shared["n"] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
start.set()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
