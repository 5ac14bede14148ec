//! The platform layer: the only place that names a synchronization primitive.
//!
//! The runtime ([`crate::gil`], [`crate::heap`], [`crate::lock`]) is generic over a [`Platform`],
//! the way `lock_api` is generic over `RawMutex`. Three back-ends exist and coexist in one build, so
//! plain `cargo test` runs the model checks next to real threads:
//!
//! | back-end | threads | mutex / condvar | cells | time |
//! |---|---|---|---|---|
//! | [`Std`] | OS threads | `parking_lot` | `std::cell::UnsafeCell` | real (`wait_for` times out) |
//! | [`Loom`] | loom coroutines | `loom::sync` | `loom::cell::UnsafeCell` (race detector) | not modelled |
//! | [`Shuttle`] | shuttle tasks | `shuttle::sync` | `std::cell::UnsafeCell` | not modelled |
//!
//! Under loom and shuttle a timed wait never times out, so the runtime does not use one there: the
//! expiry of a switch interval becomes a choice the checker explores (rule GIL-5, see
//! `spec/gil.md`). [`Platform::MODELS_TIME`] tells the runtime which case it is in.

mod checker;
mod std;

pub use self::checker::{Loom, Shuttle};
pub use self::std::Std;

use ::std::ops::DerefMut;
use ::std::sync::atomic::Ordering;
use ::std::time::Duration;

/// A mutex, a condition variable, a race-checked cell, an atomic flag and threads, from one source.
///
/// Every method is a thin forwarding call; the runtime's algorithms live above this trait.
pub trait Platform: Sized + Send + Sync + 'static {
    /// Short name used in reports (`std`, `loom`, `shuttle`).
    const NAME: &'static str;
    /// `true` when timed waits really time out. `false` under the model checkers.
    const MODELS_TIME: bool;

    type Mutex<T: Send>: Send + Sync;
    type Guard<'a, T: Send + 'a>: DerefMut<Target = T>;
    type Condvar: Send + Sync;
    type Cell<T>;
    type AtomicBool: Send + Sync;
    type JoinHandle<T: Send + 'static>: Send;

    fn mutex<T: Send>(value: T) -> Self::Mutex<T>;
    fn lock<T: Send>(mutex: &Self::Mutex<T>) -> Self::Guard<'_, T>;

    fn condvar() -> Self::Condvar;
    fn wait<'a, T: Send>(cv: &Self::Condvar, guard: Self::Guard<'a, T>) -> Self::Guard<'a, T>;
    /// Waits at most `timeout`; the flag is `true` when the wait timed out. Only called when
    /// [`Platform::MODELS_TIME`] is `true`.
    fn wait_for<'a, T: Send>(
        cv: &Self::Condvar,
        guard: Self::Guard<'a, T>,
        timeout: Duration,
    ) -> (Self::Guard<'a, T>, bool);
    fn notify_one(cv: &Self::Condvar);
    fn notify_all(cv: &Self::Condvar);

    fn cell<T>(value: T) -> Self::Cell<T>;
    /// Runs `f` with a shared pointer to the cell's value; loom records a read.
    fn with<T, R>(cell: &Self::Cell<T>, f: impl FnOnce(*const T) -> R) -> R;
    /// Runs `f` with a unique pointer to the cell's value; loom records a write.
    fn with_mut<T, R>(cell: &Self::Cell<T>, f: impl FnOnce(*mut T) -> R) -> R;

    fn atomic_bool(value: bool) -> Self::AtomicBool;
    fn load(flag: &Self::AtomicBool, order: Ordering) -> bool;
    fn store(flag: &Self::AtomicBool, value: bool, order: Ordering);

    fn spawn<F, T>(f: F) -> Self::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static;
    fn join<T: Send + 'static>(handle: Self::JoinHandle<T>) -> ::std::thread::Result<T>;
    /// Lets another thread run: a real sleep on [`Std`], a scheduling point under the checkers.
    fn sleep(duration: Duration);
}
