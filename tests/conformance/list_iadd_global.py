"""`items += [1]` on a shared list from many threads: `+=` extends the list in place (`list_inplace_concat`) and stores the same list back, so no item is lost even when a switch falls between the read and the store."""
# expect: T * N
import threading


def main():
    items = []

    def work(iterations):
        nonlocal items
        for _ in range(iterations):
            items += [1]

    threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(items)


print(f"Got: {main()}")
