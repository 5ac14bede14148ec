import threading

lock = threading.Lock()
rows = []


def row(name, count, share):
    return "%-6s|%5d|%6.2f%%|%x" % (name, count, share * 100, count)


name = "w%d" % 3
rows.append(name)
rows.append("x%s-%r" % (name, name))
rows.append("%-5s|%5s|%.2s|" % (name, name, name))
rows.append("%s items, 100%%" % 7)
rows.append(row("alpha", 42, 0.256))
rows.append("{} and {}".format(1, "two"))
rows.append("{1}-{0}-{1}".format("a", "b"))
rows.append("{name}: {value:>8.3f} {value!r}".format(name="pi", value=3.14159))
rows.append("{:,} {:_} {:08.2f} {:+d} {:^9} {:*<6}".format(1234567, 7654321, -3.5, 5, "mid", "ab"))
rows.append(format(255, "#x") + " " + format(0.5, ".1%") + " " + format("s", ">3"))
with lock:
    n = len(rows)
rows.append(f"{n:03d} {n / 3:.3e} {n / 7:g} {True:>5} {-n:=+6}")
rows.append(f"{'left':<8}|{'right':>8}|{12345.6789:,.1f}|{0.000012:g}|{1e20:g}")
rows.append("%5.1f|%-8.3e|%+d|%05d|%o|%X|%c" % (2.345, 12345.678, 7, -42, 8, 255, 65))
for r in rows:
    print(r)
