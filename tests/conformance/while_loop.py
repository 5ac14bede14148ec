"""The read–modify–write in a while loop."""
# expect: T * N
import threading

shared = {"n": 0}

def work(iterations):
    i = 0
    while i < iterations:
        shared["n"] += 1
        i += 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
