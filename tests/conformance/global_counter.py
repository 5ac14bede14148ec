"""A module global, through `global`."""
# expect: T * N
import threading

counter = 0

def work(iterations):
    for _ in range(iterations):
        global counter
        counter += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {counter}")
