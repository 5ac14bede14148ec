import threading

lock = threading.Lock()
results = []


class Counter(threading.Thread):
    def __init__(self, n, label):
        super().__init__(name=label)
        self.n = n
        self.done = 0

    def run(self):
        for _ in range(self.n):
            with lock:
                self.done += 1
        results.append((self.name, self.done))


class Named(threading.Thread):
    def __init__(self):
        threading.Thread.__init__(self, daemon=False)
        self.seen = None

    def run(self):
        self.seen = threading.current_thread() is self


class Plain(threading.Thread):
    pass


def work(box):
    box.append(threading.current_thread().name)


workers = [Counter(3, "w%d" % i) for i in range(2)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(sorted(results), workers[0].is_alive(), isinstance(workers[1], threading.Thread))
n = Named()
n.start()
n.join()
print(n.seen, n.daemon)
box = []
p = Plain(target=work, args=(box,), name="plain")
p.start()
p.join()
print(box, p.name)
quiet = Plain()
quiet.start()
quiet.join()
print(repr(quiet).startswith("<Plain(Thread-"), quiet.is_alive())


class Forgot(threading.Thread):
    def __init__(self):
        self.x = 1


try:
    Forgot().start()
except RuntimeError as e:
    print("RuntimeError:", e)
