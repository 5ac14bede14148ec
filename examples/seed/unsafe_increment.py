import threading

# Unsafe compound operation – not protected by GIL alone
shared_counter = {"value": 0}

def increment(iterations):
    for _ in range(iterations):
        # Not atomic – read + increment + write are separate bytecodes
        shared_counter["value"] += 1

threads = [threading.Thread(target=increment, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Expected: 40000, Got: {shared_counter['value']}") # May not be 40000
