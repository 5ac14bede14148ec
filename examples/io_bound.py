import threading
import time


def io_task(calls):
    for _ in range(calls):
        time.sleep(0.1)  # blocking I/O: releases the GIL


start_time = time.time()
threads = [threading.Thread(target=io_task, args=(1,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
elapsed = time.time() - start_time

print(f"4 threads x 1 sleep(0.1): {elapsed:.2f}s (one thread's share: 0.10s; one after another: 0.40s)")
