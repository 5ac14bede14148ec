import multiprocessing
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

# Processes – each has its own GIL and heap
start_time = time.time()
process_a = multiprocessing.Process(target=compute_sum, args=(300000,))
process_b = multiprocessing.Process(target=compute_sum, args=(300000,))
process_a.start()
process_b.start()
process_a.join()
process_b.join()
parallel_time = time.time() - start_time

print(f"Sequential: {sequential_time:.2f}s")
print(f"Processes: {parallel_time:.2f}s")
