"""Check-then-act on a dict: `if key not in seen: seen[key] = …` creates a key twice when a switch falls between."""
# expect: N
import threading

seen = {}
created = []

def work(iterations):
    for key in range(iterations):
        if key not in seen:
            seen[key] = True
            created.append(key)


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {len(created)}")
