"""`import` and `from … import` of the modelled modules."""
import sys
import time as clock
from threading import Thread, Lock as L
from time import sleep


def work(out):
    from time import perf_counter
    with L():
        out.append(perf_counter() >= 0)


results = []
t = Thread(target=work, args=(results,))
t.start()
t.join()
sleep(0)
print(results, clock.time() >= 0, sys.getswitchinterval())
