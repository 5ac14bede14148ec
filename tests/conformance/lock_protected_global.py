"""A global counter inside `with lock:`."""
# expect: T * N
import threading

counter = 0
lock = threading.Lock()

def work(iterations):
    for _ in range(iterations):
        global counter
        with lock:
            counter += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {counter}")
