"""Workers put numbers into a queue.Queue and take as many out again, each summing what it took
and marking it done; the main thread joins the queue, then adds up what each worker reported
through a second Queue."""
# expect: T * N
import threading
import queue

tasks = queue.Queue()
results = queue.Queue()


def work(iterations):
    for _ in range(iterations):
        tasks.put(1)
    got = 0
    for _ in range(iterations):
        got += tasks.get()
        tasks.task_done()
    results.put(got)


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
tasks.join()
for thread in threads:
    thread.join()

print(f"Got: {sum(results.get() for _ in threads)}")
