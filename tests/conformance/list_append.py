"""list.append from many threads: one C call, never loses an item."""
# expect: T * N
import threading

items = []

def work(iterations):
    for _ in range(iterations):
        items.append(1)


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {len(items)}")
