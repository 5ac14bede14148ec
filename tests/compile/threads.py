"""threading.Thread with args, kwargs and name; current_thread, get_ident, is_alive."""
import threading

totals = {}


def work(n, label="x", step=1):
    me = threading.current_thread()
    totals[label] = n * step
    print(me.name, me.is_alive(), threading.get_ident() == me.ident)


a = threading.Thread(target=work, args=(3,), kwargs={"label": "a", "step": 2})
b = threading.Thread(target=work, args=(4,), kwargs={"label": "b"}, name="second", daemon=False)
print(a.name, b.name, a.is_alive(), a.daemon)
a.start()
a.join()
b.start()
b.join()
print(sorted(totals.items()), a.is_alive())
main = threading.current_thread()
print(main.name, main is threading.current_thread())
