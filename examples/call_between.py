import threading

shared_counter = {"value": 0}


def bump(value):
    return value + 1


def increment(iterations):
    for _ in range(iterations):
        # read, call a Python function, write
        shared_counter["value"] = bump(shared_counter["value"])


threads = [threading.Thread(target=increment, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Expected: 40000, Got: {shared_counter['value']}")  # loses updates on every version
