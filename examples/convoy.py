import sys
import threading
import time

per_call = {}


def io_task(calls, label):
    start = time.perf_counter()
    for _ in range(calls):
        time.sleep(0.0001)  # blocking I/O that completes at once
    per_call[label] = (time.perf_counter() - start) / calls


def cpu_task(iterations):
    total = 0
    for i in range(iterations):
        total += i


io_task(10, "alone")
cpu = threading.Thread(target=cpu_task, args=(3000000,))
io = threading.Thread(target=io_task, args=(10, "beside"))
cpu.start()
io.start()
io.join()
cpu.join()

print(f"I/O call alone: {per_call['alone'] * 1000:.2f} ms")
print(f"I/O call beside a CPU-bound thread: {per_call['beside'] * 1000:.2f} ms")
print(f"switch interval: {sys.getswitchinterval() * 1000:.2f} ms")
