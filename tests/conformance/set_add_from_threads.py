"""`set.add` from many threads: one C call each, so no key is ever lost (each thread adds its own keys, built by a set comprehension)."""
# expect: T * N
import threading


def main():
    seen = set()

    def work(iterations):
        me = threading.current_thread().name
        for key in {(me, i) for i in range(iterations)}:
            seen.add(key)

    threads = [threading.Thread(target=work, args=(10000,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(seen)


print(f"Got: {main()}")
