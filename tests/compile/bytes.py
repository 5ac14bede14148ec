data = b"ab\x00\xff'"
print(data, len(data), data[0], data[-1], data[1:3], b"x" + b"y", 97 in data, b"b\x00" in data)
print(list(b"hi"), bytes(3), bytes([65, 66]), bytes("hé", "utf-8"), "hé".encode(), b"caf\xc3\xa9".decode())
print(b'say "hi"', b"it's", b"\t\n\\", repr(b""), bool(b""), b"a" == b"a", {b"k": 1}[b"k"])
print(str(b"z"), f"{b'q'}", [c for c in b"AB"], b"abc"[::-1])
try:
    bytes([300])
except ValueError as e:
    print(e)
