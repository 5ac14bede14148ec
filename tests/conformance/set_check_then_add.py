"""Check-then-act on a set: `if key not in seen: seen.add(key)` counts a key twice when a switch falls between the test and the add."""
# expect: N
import threading

seen = set()
counted = {"n": 0}


def work(iterations):
    for key in range(iterations):
        if key not in seen:
            seen.add(key)
            counted["n"] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {counted['n']}")
