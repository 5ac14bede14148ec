"""Lazy initialisation: `if cache["value"] is None: cache["value"] = make()` makes the value twice when a switch falls between the check and the act."""
# expect: 1
import threading

cache = {"value": None}
made = []


def make():
    made.append(1)
    return len(made)


def work(iterations):
    for _ in range(iterations):
        if cache["value"] is None:
            cache["value"] = make()


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {len(made)}")
