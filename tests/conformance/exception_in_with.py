"""The locked increment raises every other time: `with` releases the lock as the exception
leaves it, and the caller catches the exception."""
# expect: T * N
import threading

shared = {"n": 0}
lock = threading.Lock()


def bump(i):
    with lock:
        shared["n"] += 1
        if i % 2 == 0:
            raise ValueError(i)


def work(iterations):
    for i in range(iterations):
        try:
            bump(i)
        except ValueError:
            pass


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
