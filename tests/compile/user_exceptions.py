import threading


class AppError(Exception):
    pass


class RetryError(AppError):
    def __init__(self, attempts):
        self.attempts = attempts


lock = threading.Lock()
failures = []


def work(n):
    try:
        with lock:
            if n % 2:
                raise RetryError(n)
            raise AppError("bad", n)
    except RetryError as e:
        failures.append(("retry", e.attempts, str(e)))
    except AppError as e:
        failures.append(("app", str(e), e.args))


for i in range(3):
    work(i)
try:
    raise AppError("plain")
except Exception as e:
    print(isinstance(e, AppError), isinstance(e, RetryError), isinstance(e, Exception), e)
try:
    try:
        raise RetryError(7)
    except (KeyError, AppError) as e:
        saved = e
        raise
except RetryError as e:
    print(e is saved, e.attempts)
print(failures, lock.locked())
