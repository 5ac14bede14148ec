"""The increment under a Condition's lock; the main thread waits on the Condition until every
worker has said it is done, then reads the total before joining."""
# expect: T * N
import threading

shared = {"n": 0}
finished = {"n": 0}
cond = threading.Condition()


def work(iterations):
    for _ in range(iterations):
        with cond:
            shared["n"] += 1
    with cond:
        finished["n"] += 1
        cond.notify_all()


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
with cond:
    while finished["n"] < len(threads):
        cond.wait()
    total = shared["n"]
for thread in threads:
    thread.join()

print(f"Got: {total}")
