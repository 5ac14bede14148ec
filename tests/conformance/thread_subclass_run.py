"""A threading.Thread subclass whose run() does the read-modify-write on an attribute of a
shared object: the run frame is the thread's first, and the loop's back-edge polls."""
# expect: T * N
import threading


class Stats:
    def __init__(self):
        self.total = 0


stats = Stats()


class Worker(threading.Thread):
    def __init__(self, iterations):
        super().__init__()
        self.iterations = iterations

    def run(self):
        for _ in range(self.iterations):
            stats.total += 1


threads = [Worker(10000) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {stats.total}")
