"""The increment between `lock.acquire()` and a `try … finally: lock.release()`, the form the
lock takes when the critical section may raise."""
# expect: T * N
import threading

shared = {"n": 0}
lock = threading.Lock()


def work(iterations):
    for _ in range(iterations):
        lock.acquire()
        try:
            shared["n"] += 1
        finally:
            lock.release()


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
