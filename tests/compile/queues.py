"""queue.Queue on one thread: put, get, the nowait forms, qsize, empty, full, task_done, join."""
import queue
from queue import Queue

q = Queue(maxsize=2)
print(q.empty(), q.full(), q.qsize())
q.put("a")
q.put_nowait("b")
print(q.empty(), q.full(), q.qsize())
print(q.get(), q.get_nowait(), q.qsize())
q.task_done()
q.task_done()
q.join()
unbounded = queue.Queue()
for i in range(3):
    unbounded.put(i * i)
print([unbounded.get() for _ in range(3)], unbounded.full())
