"""The twin of exception_in_with.py without `with`: the exception skips `lock.release()`, so
the lock stays held and the next acquire never returns (a deadlock)."""
# expect: T * N
import threading

shared = {"n": 0}
lock = threading.Lock()


def bump(i):
    lock.acquire()
    shared["n"] += 1
    if i % 2 == 0:
        raise ValueError(i)
    lock.release()


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
