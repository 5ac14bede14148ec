"""len() between the read and the write: 3.11+ specialize it to a call that does not poll."""
# expect: T * N
import threading

shared = {"n": 0}
items = [1, 2]

def work(iterations):
    for _ in range(iterations):
        value = shared["n"]
        len(items)
        shared["n"] = value + 1


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
