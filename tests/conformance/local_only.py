"""Each thread counts in a local and appends its total once: nothing shared is read-modified-written."""
# expect: T * N
import threading

totals = []

def work(iterations):
    total = 0
    for _ in range(iterations):
        total += 1
    totals.append(total)


threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Got: {sum(totals)}")
