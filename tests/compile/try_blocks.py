"""try/except/else/finally on the ordinary path (no exception raised): the lock released in
the finally, a handler's name, an else clause, a return from inside try/except."""
import threading

lock = threading.Lock()
log = []


def guarded(x):
    lock.acquire()
    try:
        log.append(x)
    finally:
        lock.release()
    return lock.locked() if False else len(log)


def lookup(d, k):
    try:
        v = d[k]
    except KeyError as e:
        v = -1
    except (TypeError, ValueError):
        v = -2
    else:
        v += 100
    return v


def first(items):
    for x in items:
        try:
            return x * 2
        except TypeError:
            pass
    return None


print(guarded(1), guarded(2), lookup({"a": 1}, "a"), first([3, 4]), log)
try:
    total = sum(log)
except Exception:
    total = 0
finally:
    log.clear()
print(total, log)
