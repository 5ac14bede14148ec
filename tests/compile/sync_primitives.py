"""threading.RLock, Condition, Semaphore, BoundedSemaphore, Event on one thread."""
import threading

r = threading.RLock()
with r:
    with r:
        print("inside twice")
print(r.acquire(), r.acquire(False))
r.release()
r.release()
cond = threading.Condition()
with cond:
    cond.notify()
    cond.notify_all()
    print("notified nobody")
lock_cond = threading.Condition(threading.Lock())
print(lock_cond.acquire(), lock_cond.acquire(False))
lock_cond.release()
sem = threading.Semaphore(2)
print(sem.acquire(), sem.acquire(), sem.acquire(False), sem.acquire(blocking=False))
sem.release()
sem.release(1)
with sem:
    print("in the semaphore")
b = threading.BoundedSemaphore()
print(b.acquire(), b.acquire(False))
b.release()
ev = threading.Event()
print(ev.is_set())
ev.set()
print(ev.is_set(), ev.wait())
ev.clear()
print(ev.is_set())
