//! The two model-checker back-ends. loom and shuttle both mirror `std::sync`'s API, so one macro
//! writes both; they differ in where the primitives come from and in the cell.

use super::Platform;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Stack size of a thread spawned under loom or shuttle.
const CHECKER_STACK: usize = 1 << 20;

macro_rules! checker_platform {
    (
        $(#[$doc:meta])* $name:ident, $label:literal, $sync:ident, $thread:ident,
        cell: $cell:ty, new_cell: $new_cell:expr, with: $with:ident, with_mut: $with_mut:ident
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Platform for $name {
            const NAME: &'static str = $label;
            const MODELS_TIME: bool = false;

            type Mutex<T: Send> = $sync::Mutex<T>;
            type Guard<'a, T: Send + 'a> = $sync::MutexGuard<'a, T>;
            type Condvar = $sync::Condvar;
            type Cell<T> = $cell;
            type AtomicBool = $sync::atomic::AtomicBool;
            type JoinHandle<T: Send + 'static> = $thread::JoinHandle<T>;

            fn mutex<T: Send>(value: T) -> Self::Mutex<T> {
                $sync::Mutex::new(value)
            }
            fn lock<T: Send>(mutex: &Self::Mutex<T>) -> Self::Guard<'_, T> {
                mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
            }
            fn condvar() -> Self::Condvar {
                $sync::Condvar::new()
            }
            fn wait<'a, T: Send>(cv: &Self::Condvar, guard: Self::Guard<'a, T>) -> Self::Guard<'a, T> {
                cv.wait(guard).unwrap_or_else(|poisoned| poisoned.into_inner())
            }
            fn wait_for<'a, T: Send>(
                cv: &Self::Condvar,
                guard: Self::Guard<'a, T>,
                _timeout: Duration,
            ) -> (Self::Guard<'a, T>, bool) {
                // The checkers' timed waits never time out; the runtime does not call this
                // (MODELS_TIME = false, rule GIL-5).
                (Self::wait(cv, guard), false)
            }
            fn notify_one(cv: &Self::Condvar) {
                cv.notify_one();
            }
            fn notify_all(cv: &Self::Condvar) {
                cv.notify_all();
            }

            fn cell<T>(value: T) -> Self::Cell<T> {
                $new_cell(value)
            }
            fn with<T, R>(cell: &Self::Cell<T>, f: impl FnOnce(*const T) -> R) -> R {
                $with(cell, f)
            }
            fn with_mut<T, R>(cell: &Self::Cell<T>, f: impl FnOnce(*mut T) -> R) -> R {
                $with_mut(cell, f)
            }

            fn atomic_bool(value: bool) -> Self::AtomicBool {
                $sync::atomic::AtomicBool::new(value)
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
                // The checkers' threads are coroutines with small default stacks; the VM's
                // interpreter needs more in debug builds.
                $thread::Builder::new()
                    .stack_size(CHECKER_STACK)
                    .spawn(f)
                    .expect("spawning a model thread")
            }
            fn join<T: Send + 'static>(handle: Self::JoinHandle<T>) -> std::thread::Result<T> {
                handle.join()
            }
            fn sleep(_duration: Duration) {
                $thread::yield_now()
            }
        }
    };
}

use ::loom::sync as loom_sync;
use ::loom::thread as loom_thread;
use ::shuttle::sync as shuttle_sync;
use ::shuttle::thread as shuttle_thread;

fn loom_with<T, R>(cell: &::loom::cell::UnsafeCell<T>, f: impl FnOnce(*const T) -> R) -> R {
    cell.with(f)
}
fn loom_with_mut<T, R>(cell: &::loom::cell::UnsafeCell<T>, f: impl FnOnce(*mut T) -> R) -> R {
    cell.with_mut(f)
}
fn plain_with<T, R>(cell: &std::cell::UnsafeCell<T>, f: impl FnOnce(*const T) -> R) -> R {
    f(cell.get())
}
fn plain_with_mut<T, R>(cell: &std::cell::UnsafeCell<T>, f: impl FnOnce(*mut T) -> R) -> R {
    f(cell.get())
}

checker_platform!(
    /// The loom model checker: exhaustive exploration under the C11 memory model, with data-race
    /// detection on cells. Use inside `loom::model`.
    Loom, "loom", loom_sync, loom_thread,
    cell: ::loom::cell::UnsafeCell<T>, new_cell: ::loom::cell::UnsafeCell::new,
    with: loom_with, with_mut: loom_with_mut
);

checker_platform!(
    /// The shuttle model checker: randomized (PCT, random) and DFS exploration of schedules, with
    /// replayable failures. Use inside `shuttle::check_*` or a `shuttle::Runner`. It has no race
    /// detector, so its cells are plain.
    Shuttle, "shuttle", shuttle_sync, shuttle_thread,
    cell: std::cell::UnsafeCell<T>, new_cell: std::cell::UnsafeCell::new,
    with: plain_with, with_mut: plain_with_mut
);
