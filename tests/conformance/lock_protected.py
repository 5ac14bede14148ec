"""The seed's fix: the increment inside `with lock:`."""
# expect: T * N
import threading

shared = {"n": 0}
lock = threading.Lock()

def work(iterations):
    for _ in range(iterations):
        with lock:
            shared["n"] += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
