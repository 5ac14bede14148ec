import threading

lock = threading.Lock()
log = []


def early(x):
    try:
        if x:
            return x + 1
        log.append("no early return")
    finally:
        log.append("finally %s" % x)
    return 0


def constant(x):
    try:
        return 7
    finally:
        log.append("constant")


def nested(x):
    with lock:
        try:
            try:
                return x * 2
            finally:
                log.append("inner")
        finally:
            log.append("outer")


def loops(n):
    total = 0
    for i in range(n):
        try:
            if i == 1:
                continue
            if i == 3:
                break
            total += i
        finally:
            log.append(i)
    while True:
        try:
            break
        finally:
            log.append("while")
    return total


def handler(x):
    try:
        raise ValueError(x)
    except ValueError as e:
        try:
            return str(e)
        finally:
            log.append("in handler")


def unlock(n):
    lock.acquire()
    try:
        if n > 1:
            return "big"
        return "small"
    finally:
        lock.release()


print(early(1), early(0), constant(1), nested(3), loops(5), handler("v"), unlock(2), unlock(0))
print(log, lock.locked())
