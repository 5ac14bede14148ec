//! shuttle: randomized (PCT, random) and DFS exploration of schedules, with replayable failures.

use super::Platform;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The shuttle model checker. Use inside `shuttle::check_*` or a `shuttle::Runner`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shuttle;

impl Platform for Shuttle {
    const NAME: &'static str = "shuttle";
    const MODELS_TIME: bool = false;

    type Mutex<T: Send> = shuttle::sync::Mutex<T>;
    type Guard<'a, T: Send + 'a> = shuttle::sync::MutexGuard<'a, T>;
    type Condvar = shuttle::sync::Condvar;
    type Cell<T> = std::cell::UnsafeCell<T>;
    type AtomicBool = shuttle::sync::atomic::AtomicBool;
    type JoinHandle<T: Send + 'static> = shuttle::thread::JoinHandle<T>;

    fn mutex<T: Send>(value: T) -> Self::Mutex<T> {
        shuttle::sync::Mutex::new(value)
    }
    fn lock<T: Send>(mutex: &Self::Mutex<T>) -> Self::Guard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    fn condvar() -> Self::Condvar {
        shuttle::sync::Condvar::new()
    }
    fn wait<'a, T: Send>(cv: &Self::Condvar, guard: Self::Guard<'a, T>) -> Self::Guard<'a, T> {
        cv.wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    fn wait_for<'a, T: Send>(
        cv: &Self::Condvar,
        guard: Self::Guard<'a, T>,
        _timeout: Duration,
    ) -> (Self::Guard<'a, T>, bool) {
        // shuttle's timed wait never times out; the runtime does not call this (MODELS_TIME = false).
        (Self::wait(cv, guard), false)
    }
    fn notify_one(cv: &Self::Condvar) {
        cv.notify_one();
    }
    fn notify_all(cv: &Self::Condvar) {
        cv.notify_all();
    }

    fn cell<T>(value: T) -> Self::Cell<T> {
        std::cell::UnsafeCell::new(value)
    }
    fn with<T, R>(cell: &Self::Cell<T>, f: impl FnOnce(*const T) -> R) -> R {
        f(cell.get())
    }
    fn with_mut<T, R>(cell: &Self::Cell<T>, f: impl FnOnce(*mut T) -> R) -> R {
        f(cell.get())
    }

    fn atomic_bool(value: bool) -> Self::AtomicBool {
        shuttle::sync::atomic::AtomicBool::new(value)
    }
    fn load(flag: &Self::AtomicBool, order: Ordering) -> bool {
        flag.load(order)
    }
    fn store(flag: &Self::AtomicBool, value: bool, order: Ordering) {
        flag.store(value, order)
    }

    fn spawn<F, T>(f: F) -> Self::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        shuttle::thread::spawn(f)
    }
    fn join<T: Send + 'static>(handle: Self::JoinHandle<T>) -> std::thread::Result<T> {
        handle.join()
    }
    fn sleep(_duration: Duration) {
        shuttle::thread::yield_now()
    }
}
