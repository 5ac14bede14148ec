"""Calls with *args and **kwargs (CALL_FUNCTION_EX): forwarding wrappers, mixed positional and
starred arguments, keyword dicts merged with named keywords, a Thread target called through
one."""
import threading

log = []


def record(*args, **kwargs):
    log.append((args, sorted(kwargs.items())))
    return len(args) + len(kwargs)


def wrapper(*args, **kwargs):
    return record(*args, **kwargs)


def pair(a, b=0, *, c=1):
    return a + b + c


nums = [1, 2]
extra = {"c": 10}
print(wrapper(1, 2), wrapper(*nums), wrapper(0, *nums, 3), record(**extra), record(x=1, **extra))
print(pair(*nums), pair(*nums, **extra), pair(5, **{"b": 2}), pair(*(7,), c=0), max(*nums))
t = threading.Thread(target=wrapper, args=(9,), kwargs={"k": 1})
t.start()
t.join()
print(log[-1], len(log))
