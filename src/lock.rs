//! `threading.Lock` (rules LOCK-1 … LOCK-4).

use crate::error::RtError;
use crate::heap::ObjRef;
use crate::platform::Platform;
use crate::runtime::Attached;

/// The state of one `threading.Lock`: a flag under a platform mutex, waited on with the GIL
/// released (LOCK-2).
pub struct LockCore<P: Platform> {
    locked: P::Mutex<bool>,
    unlocked: P::Condvar,
}

impl<P: Platform> LockCore<P> {
    pub fn new() -> Self {
        LockCore {
            locked: P::mutex(false),
            unlocked: P::condvar(),
        }
    }

    pub fn is_locked(&self) -> bool {
        *P::lock(&self.locked)
    }

    /// Takes the lock if it is free, without blocking.
    pub fn try_acquire(&self) -> bool {
        let mut locked = P::lock(&self.locked);
        !std::mem::replace(&mut *locked, true)
    }

    /// Blocks until the lock is free, then takes it. LOCK-3: a thread that already holds it waits
    /// forever (the lock is not re-entrant).
    pub(crate) fn acquire_blocking(&self) {
        let mut locked = P::lock(&self.locked);
        while *locked {
            locked = P::wait(&self.unlocked, locked);
        }
        *locked = true;
    }

    /// LOCK-4: releases the lock, from any thread; releasing a free lock is a `RuntimeError`.
    pub fn release(&self) -> Result<(), RtError> {
        let mut locked = P::lock(&self.locked);
        if !*locked {
            return Err(RtError::RuntimeError("release unlocked lock".into()));
        }
        *locked = false;
        P::notify_one(&self.unlocked);
        Ok(())
    }
}

impl<P: Platform> Default for LockCore<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Platform> Attached<'_, P> {
    /// LOCK-1, LOCK-2: `lock.acquire()`. Tries once with the GIL held (as CPython's
    /// `acquire_timed`), then blocks with the GIL released and takes the GIL back once the lock is
    /// held.
    pub fn acquire_lock(&self, lock: ObjRef) -> Result<(), RtError> {
        let core = self.heap().lock_core(self.token(), lock)?;
        if core.try_acquire() {
            return Ok(());
        }
        if self.runtime().gil().faults().lock_keeps_gil {
            core.acquire_blocking();
        } else {
            self.allow_threads(|| core.acquire_blocking());
        }
        Ok(())
    }

    /// `lock.acquire(blocking=False)`: takes the lock only if it is free.
    pub fn try_acquire_lock(&self, lock: ObjRef) -> Result<bool, RtError> {
        Ok(self.heap().lock_core(self.token(), lock)?.try_acquire())
    }

    /// LOCK-4: `lock.release()`.
    pub fn release_lock(&self, lock: ObjRef) -> Result<(), RtError> {
        self.heap().lock_core(self.token(), lock)?.release()
    }
}
