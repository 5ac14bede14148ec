import threading
import time

# CPU-bound work – GIL prevents parallel execution
def compute_sum(limit):
    total = sum(value ** 2 for value in range(limit))
    return total

# Sequential
start_time = time.time()
compute_sum(300000)
compute_sum(300000)
sequential_time = time.time() - start_time

# Threaded – NOT faster due to GIL
start_time = time.time()
thread_a = threading.Thread(target=compute_sum, args=(300000,))
thread_b = threading.Thread(target=compute_sum, args=(300000,))
thread_a.start()
thread_b.start()
thread_a.join()
thread_b.join()
threaded_time = time.time() - start_time

print(f"Sequential: {sequential_time:.2f}s")
print(f"Threaded: {threaded_time:.2f}s") # Similar or slower due to GIL overhead
