//! `threading.Lock` and `threading.RLock` (rules LOCK-1 … LOCK-5).

use crate::error::RtError;
use crate::heap::ObjRef;
use crate::platform::Platform;
use crate::runtime::Attached;

/// What a lock's mutex guards: whether it is held and, for an `RLock`, by which runtime thread
/// and how many times (LOCK-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LockState {
    pub held: bool,
    /// The runtime thread that took it (kept for a plain Lock too, but never checked: LOCK-4).
    pub owner: u32,
    /// How many times the owner holds it (1 for a held plain Lock).
    pub count: u32,
}

/// The state of one `threading.Lock` or `threading.RLock`: a [`LockState`] under a platform
/// mutex, waited on with the GIL released (LOCK-2).
pub struct LockCore<P: Platform> {
    state: P::Mutex<LockState>,
    unlocked: P::Condvar,
    reentrant: bool,
}

impl<P: Platform> LockCore<P> {
    /// A free `threading.Lock`.
    pub fn new() -> Self {
        Self::with_reentrancy(false)
    }

    /// A free `threading.RLock` (LOCK-5).
    pub fn new_reentrant() -> Self {
        Self::with_reentrancy(true)
    }

    fn with_reentrancy(reentrant: bool) -> Self {
        LockCore {
            state: P::mutex(LockState::default()),
            unlocked: P::condvar(),
            reentrant,
        }
    }

    /// Puts the lock back in a state it was in (the stateful search's undo, EX-16).
    pub fn set_state(&self, state: LockState) {
        *P::lock(&self.state) = state;
    }

    pub fn is_reentrant(&self) -> bool {
        self.reentrant
    }

    pub fn is_locked(&self) -> bool {
        P::lock(&self.state).held
    }

    pub fn state(&self) -> LockState {
        *P::lock(&self.state)
    }

    /// Whether runtime thread `me` would take it now without waiting.
    pub fn can_take(&self, me: u32) -> bool {
        let s = P::lock(&self.state);
        !s.held || (self.reentrant && s.owner == me)
    }

    /// Takes the lock for runtime thread `me` if it is free (or, for an RLock, already `me`'s),
    /// without blocking.
    pub fn try_acquire(&self, me: u32) -> bool {
        let mut s = P::lock(&self.state);
        Self::take(&mut s, me, self.reentrant)
    }

    fn take(s: &mut LockState, me: u32, reentrant: bool) -> bool {
        if !s.held {
            *s = LockState {
                held: true,
                owner: me,
                count: 1,
            };
            true
        } else if reentrant && s.owner == me {
            s.count += 1;
            true
        } else {
            false
        }
    }

    /// Blocks until the lock can be taken by `me`, then takes it. LOCK-3: a thread that already
    /// holds a plain Lock waits forever (it is not re-entrant).
    pub(crate) fn acquire_blocking(&self, me: u32) {
        let mut s = P::lock(&self.state);
        while !Self::take(&mut s, me, self.reentrant) {
            s = P::wait(&self.unlocked, s);
        }
    }

    /// LOCK-4: releases a plain Lock, from any thread; releasing a free lock is a `RuntimeError`.
    /// LOCK-5: an RLock is released only by its owner, once per acquire.
    pub fn release(&self, me: u32) -> Result<(), RtError> {
        let mut s = P::lock(&self.state);
        if self.reentrant {
            if !s.held || s.owner != me {
                return Err(RtError::RuntimeError(
                    "cannot release un-acquired lock".into(),
                ));
            }
            s.count -= 1;
            if s.count > 0 {
                return Ok(());
            }
        } else if !s.held {
            return Err(RtError::RuntimeError("release unlocked lock".into()));
        }
        *s = LockState::default();
        P::notify_one(&self.unlocked);
        Ok(())
    }

    /// LOCK-6: `Condition.wait`'s `_release_save`: releases the lock however many times `me`
    /// holds it, returning that count for [`LockCore::restore`].
    pub fn release_all(&self, me: u32) -> Result<u32, RtError> {
        let mut s = P::lock(&self.state);
        if !s.held || (self.reentrant && s.owner != me) {
            return Err(RtError::RuntimeError(
                "cannot release un-acquired lock".into(),
            ));
        }
        let count = s.count;
        *s = LockState::default();
        P::notify_one(&self.unlocked);
        Ok(count)
    }

    /// LOCK-6: `_acquire_restore`: `me` has just taken the lock once; it holds it `count` times.
    pub fn restore(&self, me: u32, count: u32) {
        let mut s = P::lock(&self.state);
        debug_assert!(s.held && s.owner == me);
        s.count = count.max(1);
    }

    /// `Condition._is_owned`: an RLock asks whether `me` holds it; a plain Lock only whether it
    /// is held (CPython's Condition tries `acquire(False)` on it, which cannot tell who).
    pub fn is_owned(&self, me: u32) -> bool {
        let s = P::lock(&self.state);
        s.held && (!self.reentrant || s.owner == me)
    }
}

impl<P: Platform> Default for LockCore<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// The runtime-level API, for plain Locks: the runtime has no thread idents, so every caller is
/// owner 0 (which a plain Lock never checks).
impl<P: Platform> Attached<'_, P> {
    /// LOCK-1, LOCK-2: `lock.acquire()`. Tries once with the GIL held (as CPython's
    /// `acquire_timed`), then blocks with the GIL released and takes the GIL back once the lock is
    /// held.
    pub fn acquire_lock(&self, lock: ObjRef) -> Result<(), RtError> {
        let core = self.heap().lock_core(self.token(), lock)?;
        if core.try_acquire(0) {
            return Ok(());
        }
        if self.runtime().gil().faults().lock_keeps_gil {
            core.acquire_blocking(0);
        } else {
            self.allow_threads(|| core.acquire_blocking(0));
        }
        Ok(())
    }

    /// `lock.acquire(blocking=False)`: takes the lock only if it is free.
    pub fn try_acquire_lock(&self, lock: ObjRef) -> Result<bool, RtError> {
        Ok(self.heap().lock_core(self.token(), lock)?.try_acquire(0))
    }

    /// LOCK-4: `lock.release()`.
    pub fn release_lock(&self, lock: ObjRef) -> Result<(), RtError> {
        self.heap().lock_core(self.token(), lock)?.release(0)
    }
}
