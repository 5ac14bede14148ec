//! loom: exhaustive exploration under the C11 memory model, with data-race detection on cells.

use super::Platform;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The loom model checker. Use inside `loom::model`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loom;

impl Platform for Loom {
    const NAME: &'static str = "loom";
    const MODELS_TIME: bool = false;

    type Mutex<T: Send> = loom::sync::Mutex<T>;
    type Guard<'a, T: Send + 'a> = loom::sync::MutexGuard<'a, T>;
    type Condvar = loom::sync::Condvar;
    type Cell<T> = loom::cell::UnsafeCell<T>;
    type AtomicBool = loom::sync::atomic::AtomicBool;
    type JoinHandle<T: Send + 'static> = loom::thread::JoinHandle<T>;

    fn mutex<T: Send>(value: T) -> Self::Mutex<T> {
        loom::sync::Mutex::new(value)
    }
    fn lock<T: Send>(mutex: &Self::Mutex<T>) -> Self::Guard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
    fn condvar() -> Self::Condvar {
        loom::sync::Condvar::new()
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
        // loom's timed wait never times out; the runtime does not call this (MODELS_TIME = false).
        (Self::wait(cv, guard), false)
    }
    fn notify_one(cv: &Self::Condvar) {
        cv.notify_one();
    }
    fn notify_all(cv: &Self::Condvar) {
        cv.notify_all();
    }

    fn cell<T>(value: T) -> Self::Cell<T> {
        loom::cell::UnsafeCell::new(value)
    }
    fn with<T, R>(cell: &Self::Cell<T>, f: impl FnOnce(*const T) -> R) -> R {
        cell.with(f)
    }
    fn with_mut<T, R>(cell: &Self::Cell<T>, f: impl FnOnce(*mut T) -> R) -> R {
        cell.with_mut(f)
    }

    fn atomic_bool(value: bool) -> Self::AtomicBool {
        loom::sync::atomic::AtomicBool::new(value)
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
        loom::thread::spawn(f)
    }
    fn join<T: Send + 'static>(handle: Self::JoinHandle<T>) -> std::thread::Result<T> {
        handle.join()
    }
    fn sleep(_duration: Duration) {
        loom::thread::yield_now()
    }
}
