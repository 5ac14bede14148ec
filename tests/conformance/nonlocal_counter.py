"""A counter kept in a closure: `count += 1` on a `nonlocal` is LOAD_DEREF, the add, STORE_DEREF
with nothing between that polls on 3.10+ (3.8/3.9 lose updates)."""
# expect: T * N
import threading


def make_counter():
    count = 0

    def bump():
        nonlocal count
        count += 1

    def total():
        return count

    return bump, total


bump, total = make_counter()


def work(iterations):
    for _ in range(iterations):
        bump()


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {total()}")
