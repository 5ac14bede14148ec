"""Daemon workers drain a queue.Queue and count what they took, unprotected; the program ends after `tasks.join()` without waiting for them (they are daemons, blocked in `get()`)."""
# expect: T * N
import queue
import threading

tasks = queue.Queue()
totals = {"n": 0}


def consume():
    while True:
        tasks.get()
        totals["n"] += 1
        tasks.task_done()


def work(iterations):
    for _ in range(iterations):
        tasks.put(1)


workers = [threading.Thread(target=consume, daemon=True) for _ in "ab"]
for worker in workers:
    worker.start()
threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
tasks.join()

print(f"Got: {totals['n']}")
