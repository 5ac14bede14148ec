import threading

shared_counter = {"value": 0}
lock = threading.Lock()

def safe_increment(iterations):
    for _ in range(iterations):
        with lock:
            shared_counter["value"] += 1

threads = [threading.Thread(target=safe_increment, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Expected: 40000, Got: {shared_counter['value']}") # Always 40000
