"""Two locks taken in opposite orders by two threads: a deadlock once each holds one."""
# expect: 2 * N
import threading

shared = {"n": 0}
first = threading.Lock()
second = threading.Lock()


def forward(iterations):
    for _ in range(iterations):
        with first:
            with second:
                shared["n"] += 1


def backward(iterations):
    for _ in range(iterations):
        with second:
            with first:
                shared["n"] += 1


threads = [
    threading.Thread(target=forward, args=(10000,)),
    threading.Thread(target=backward, args=(10000,)),
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {shared['n']}")
