"""The read and the write each under the lock, with the lock released in between."""
# expect: T * N
import threading

shared = {"n": 0}
lock = threading.Lock()

def work(iterations):
    for _ in range(iterations):
        with lock:
            value = shared["n"]
        with lock:
            shared["n"] = value + 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
