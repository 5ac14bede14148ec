"""`is None` and `is not None` as conditions (POP_JUMP_IF_NONE, POP_JUMP_IF_NOT_NONE) and as values."""
x = None
y = 1
if x is None:
    print("none")
if y is not None:
    print("y")
while x is not None:
    x = None
print(x is None, "a" if y is None else "b")
