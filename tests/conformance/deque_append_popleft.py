"""deque.append and deque.popleft from many threads: each is one C call, so none is lost."""
# expect: T * N
import threading
from collections import deque

items = deque()


def work(iterations):
    for _ in range(iterations):
        items.append(1)
        items.append(1)
        items.popleft()


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {len(items)}")
