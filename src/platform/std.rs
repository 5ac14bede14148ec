//! Real threads: `std::thread`, `parking_lot` locks, plain `UnsafeCell`.

use super::Platform;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Real OS threads with `parking_lot`'s mutex and condition variable.
#[derive(Debug, Clone, Copy, Default)]
pub struct Std;

impl Platform for Std {
    const NAME: &'static str = "std";
    const MODELS_TIME: bool = true;

    type Mutex<T: Send> = parking_lot::Mutex<T>;
    type Guard<'a, T: Send + 'a> = parking_lot::MutexGuard<'a, T>;
    type Condvar = parking_lot::Condvar;
    type Cell<T> = UnsafeCell<T>;
    type AtomicBool = AtomicBool;
    type JoinHandle<T: Send + 'static> = std::thread::JoinHandle<T>;

    fn mutex<T: Send>(value: T) -> Self::Mutex<T> {
        parking_lot::Mutex::new(value)
    }
    fn lock<T: Send>(mutex: &Self::Mutex<T>) -> Self::Guard<'_, T> {
        mutex.lock()
    }
    fn condvar() -> Self::Condvar {
        parking_lot::Condvar::new()
    }
    fn wait<'a, T: Send>(cv: &Self::Condvar, mut guard: Self::Guard<'a, T>) -> Self::Guard<'a, T> {
        cv.wait(&mut guard);
        guard
    }
    fn wait_for<'a, T: Send>(
        cv: &Self::Condvar,
        mut guard: Self::Guard<'a, T>,
        timeout: Duration,
    ) -> (Self::Guard<'a, T>, bool) {
        let timed_out = cv.wait_for(&mut guard, timeout).timed_out();
        (guard, timed_out)
    }
    fn notify_one(cv: &Self::Condvar) {
        cv.notify_one();
    }
    fn notify_all(cv: &Self::Condvar) {
        cv.notify_all();
    }

    fn cell<T>(value: T) -> Self::Cell<T> {
        UnsafeCell::new(value)
    }
    fn with<T, R>(cell: &Self::Cell<T>, f: impl FnOnce(*const T) -> R) -> R {
        f(cell.get())
    }
    fn with_mut<T, R>(cell: &Self::Cell<T>, f: impl FnOnce(*mut T) -> R) -> R {
        f(cell.get())
    }

    fn atomic_bool(value: bool) -> Self::AtomicBool {
        AtomicBool::new(value)
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
        std::thread::spawn(f)
    }
    fn join<T: Send + 'static>(handle: Self::JoinHandle<T>) -> std::thread::Result<T> {
        handle.join()
    }
    fn sleep(duration: Duration) {
        std::thread::sleep(duration)
    }
}
