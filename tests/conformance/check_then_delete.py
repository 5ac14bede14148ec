"""Check-then-act with `del`: `if key in cache: del cache[key]` raises KeyError when another thread deletes the key between the test and the `del`."""
# expect: 0
import threading

cache = {}
errors = {"n": 0}


def work(iterations):
    for key in range(iterations):
        cache[key] = True
        if key in cache:
            try:
                del cache[key]
            except KeyError:
                errors["n"] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {errors['n']}")
