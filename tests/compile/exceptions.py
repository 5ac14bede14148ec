import threading

lock = threading.Lock()
counts = {"ok": 0, "failed": 0}


def risky(n):
    if n % 3 == 0:
        raise ValueError(f"bad {n}")
    return n


def work(items):
    for n in items:
        try:
            with lock:
                risky(n)
                counts["ok"] += 1
        except ValueError as e:
            with lock:
                counts["failed"] += 1
            last = str(e)
        else:
            pass
        finally:
            pass
    return last


threads = [threading.Thread(target=work, args=(range(6),)) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(counts)
try:
    {}["missing"]
except LookupError:
    print("lookup", end=" ")
try:
    1 / 0
except (TypeError, ZeroDivisionError) as e:
    print("zero", e)
try:
    try:
        raise KeyError("k")
    finally:
        print("finally")
except KeyError as e:
    print("caught", e)
try:
    raise RuntimeError("x")
except RuntimeError:
    try:
        raise
    except RuntimeError as e:
        print("reraised", e)
print(counts["ok"] + counts["failed"])
try:
    try:
        {}[1]
    except KeyError as e:
        raise ValueError("no such key") from e
except ValueError as e:
    print("from", e)
try:
    raise RuntimeError("plain") from None
except RuntimeError as e:
    print(e)
