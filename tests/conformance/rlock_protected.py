"""The increment under an RLock taken twice (re-entered by its owner): still one thread at a time."""
# expect: T * N
import threading

shared = {"n": 0}
lock = threading.RLock()


def bump():
    with lock:
        shared["n"] += 1


def work(iterations):
    for _ in range(iterations):
        with lock:
            bump()


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
