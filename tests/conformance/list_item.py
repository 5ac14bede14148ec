"""A list item: items[0] += 1."""
# expect: T * N
import threading

items = [0]

def work(iterations):
    for _ in range(iterations):
        items[0] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {items[0]}")
