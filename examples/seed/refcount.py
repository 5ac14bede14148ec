import sys
import threading

# Demonstrating that reference counts are consistent under the GIL
shared_data = {"revenue": 142500.0, "costs": 98000.0}

def read_data(iterations):
    for _ in range(iterations):
        # Safe – GIL ensures reference count operations are atomic
        value = shared_data["revenue"]
        _ = value + 1

threads = [threading.Thread(target=read_data, args=(100000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Reference count after threading: {sys.getrefcount(shared_data)}")
print("No corruption – GIL protected the reference count")
