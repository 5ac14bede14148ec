"""time.sleep(0) (a blocking call: it releases the GIL) between the read and the write."""
# expect: T * N
import time
import threading

shared = {"n": 0}

def work(iterations):
    for _ in range(iterations):
        value = shared["n"]
        time.sleep(0)
        shared["n"] = value + 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
