"""with: nested, with as, with inside loops, return and break out of a with."""
import threading

lock = threading.Lock()
other = threading.Lock()
shared = {"n": 0}


def locked_add(k):
    with lock:
        shared["n"] += k
        return shared["n"]


def nested():
    with lock, other:
        shared["n"] += 1
    with lock as held:
        print(held)


def loop_break():
    for i in range(5):
        with lock:
            if i == 2:
                break
            shared["n"] += 1


print(locked_add(3))
nested()
loop_break()
print(shared["n"], lock.acquire(), lock.release(), lock.acquire(False))
