//! The Global Interpreter Lock, after CPython's "new GIL" (`Python/ceval_gil.c`, 3.2+).
//!
//! Rules GIL-1 … GIL-9 of `spec/gil.md`. The state is a boolean `locked` protected by a mutex, whose
//! changes are signalled on a condition variable; a waiter that sees no switch for a whole
//! `interval` posts a *drop request*, which the holder honours at its next *poll point*; a holder
//! that drops because of a request waits until another thread has taken the GIL
//! (FORCE_SWITCHING).
//!
//! # State (all fields but `drop_request` live under `state`'s mutex)
//!
//! | field | meaning | invariant |
//! |---|---|---|
//! | `locked` | some thread holds the GIL | at most one [`Attached`](crate::Attached) per runtime is outside `take`/`drop` (GIL-1) |
//! | `last_holder` | id of the thread that holds or last held it | set by every `take`; `0` before the first |
//! | `switch_number` | how many times the holder changed | grows by one exactly when `take` changes `last_holder` (GIL-4) |
//! | `drop_request` | the eval breaker: a waiter asks the holder to drop | set only by a waiter while `locked` (GIL-5); cleared by the next taker and by a forced dropper (GIL-6) |
//! | `interval` | switch interval, µs, as CPython stores it | may be 0; a waiter waits at least 1 µs (GIL-8) |

use crate::platform::Platform;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default switch interval, as CPython's `DEFAULT_INTERVAL` (5000 µs).
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(5);

/// Identifies a runtime thread (CPython: the `PyThreadState *` stored in `last_holder`). Never 0.
pub type ThreadId = u64;

/// Deliberate defects, used only by the broken twins of the model checks. All `false` in a
/// correct runtime; each one names the rule its twin must violate.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Breaks GIL-6: a requested drop does not wait for another thread to take the GIL.
    pub no_force_switching: bool,
    /// Breaks GIL-3: releasing the GIL does not signal the waiters.
    pub no_notify_on_drop: bool,
    /// Breaks LOCK-2: `Lock.acquire` blocks without releasing the GIL.
    pub lock_keeps_gil: bool,
    /// Breaks GIL-4: every take counts as a switch, even by the thread that held the GIL last.
    pub count_every_take: bool,
    /// Breaks GIL-1: `take` does not wait for the holder, so threads run at the same time.
    pub no_exclusion: bool,
}

#[derive(Debug)]
struct State {
    locked: bool,
    last_holder: ThreadId,
    switch_number: u64,
}

/// The GIL of one runtime. Threads use it through [`crate::ThreadState`] and
/// [`crate::Attached`]; these methods are the raw algorithm.
pub struct Gil<P: Platform> {
    state: P::Mutex<State>,
    /// Signalled when `locked` becomes false (CPython `gil->cond`).
    cond: P::Condvar,
    /// Signalled when `last_holder` changes (CPython `gil->switch_cond`).
    switch_cond: P::Condvar,
    /// The eval breaker's drop-request bit. Read without the mutex at poll points.
    drop_request: P::AtomicBool,
    interval_us: AtomicU64,
    faults: Faults,
}

/// What a poll did.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// No drop request was seen: the thread keeps the GIL.
    Kept,
    /// A drop request was seen: the thread released the GIL (waiting for another thread to take
    /// it, GIL-6) and took it back.
    Released,
}

impl<P: Platform> Gil<P> {
    /// A released GIL with the default interval.
    pub fn new() -> Self {
        Self::with_faults(Faults::default())
    }

    #[doc(hidden)]
    pub fn with_faults(faults: Faults) -> Self {
        Gil {
            state: P::mutex(State {
                locked: false,
                last_holder: 0,
                switch_number: 0,
            }),
            cond: P::condvar(),
            switch_cond: P::condvar(),
            drop_request: P::atomic_bool(false),
            interval_us: AtomicU64::new(DEFAULT_INTERVAL.as_micros() as u64),
            faults,
        }
    }

    pub(crate) fn faults(&self) -> Faults {
        self.faults
    }

    /// GIL-8: `sys.setswitchinterval`. Rejects an interval that is not strictly positive
    /// (`seconds <= 0.0`) as CPython does, so NaN and +inf are accepted; stores whole
    /// microseconds converted as CPython converts them ([`interval_micros`]).
    pub fn set_switch_interval(&self, seconds: f64) -> Result<(), crate::RtError> {
        self.interval_us
            .store(interval_micros(seconds)?, Ordering::Relaxed);
        Ok(())
    }

    /// `sys.getswitchinterval`, in seconds ([`interval_seconds`] of the stored value).
    pub fn switch_interval(&self) -> f64 {
        interval_seconds(self.interval_us.load(Ordering::Relaxed))
    }

    /// How many times the GIL changed hands (GIL-4).
    pub fn switch_number(&self) -> u64 {
        P::lock(&self.state).switch_number
    }

    /// Whether some thread holds the GIL now.
    pub fn is_locked(&self) -> bool {
        P::lock(&self.state).locked
    }

    /// GIL-2, GIL-4, GIL-5: blocks until this thread holds the GIL.
    pub fn take(&self, me: ThreadId) {
        let mut st = P::lock(&self.state);
        while st.locked && !self.faults.no_exclusion {
            let saved = st.switch_number;
            let timed_out;
            (st, timed_out) = self.wait_interval(st);
            // GIL-5: a whole interval passed and nobody switched: ask the holder to drop.
            if timed_out && st.locked && st.switch_number == saved {
                P::store(&self.drop_request, true, Ordering::Relaxed);
            }
        }
        st.locked = true;
        if st.last_holder != me || self.faults.count_every_take {
            st.last_holder = me;
            st.switch_number += 1;
            // GIL-6: wake a forced dropper waiting for this switch.
            P::notify_all(&self.switch_cond);
        }
        // GIL-5: the request (whoever posted it) is satisfied by this take.
        self.reset_drop_request();
    }

    /// One turn of a waiter's loop: a timed wait of one interval on real threads; under the
    /// checkers (GIL-5 abstraction) the interval "expires" at once unless a request is already
    /// pending, and the checker decides when by scheduling this thread.
    fn wait_interval<'a>(&self, st: P::Guard<'a, State>) -> (P::Guard<'a, State>, bool) {
        if P::MODELS_TIME {
            match interval_wait(self.interval_us.load(Ordering::Relaxed)) {
                IntervalWait::Timed(micros) => {
                    P::wait_for(&self.cond, st, Duration::from_micros(micros))
                }
                IntervalWait::Untimed => (P::wait(&self.cond, st), false),
                // The mutex is still released and re-taken, so the holder can drop the GIL.
                IntervalWait::Expired => P::wait_for(&self.cond, st, Duration::ZERO),
            }
        } else if P::load(&self.drop_request, Ordering::Relaxed) {
            (P::wait(&self.cond, st), false)
        } else {
            (st, true)
        }
    }

    /// Clears the drop request. Called with the state mutex held. Under the checkers, waiters
    /// that sleep untimed behind the cleared request are woken so each may post again (GIL-5).
    fn reset_drop_request(&self) {
        if P::load(&self.drop_request, Ordering::Relaxed) {
            P::store(&self.drop_request, false, Ordering::Relaxed);
            if !P::MODELS_TIME {
                P::notify_all(&self.cond);
            }
        }
    }

    /// GIL-3, GIL-6: releases the GIL held by `me`. With `forced` (the drop answers a request),
    /// waits until another thread has taken it, unless the request vanished meanwhile.
    pub fn drop_gil(&self, me: ThreadId, forced: bool) {
        let mut st = P::lock(&self.state);
        debug_assert!(
            self.faults.no_exclusion || (st.locked && st.last_holder == me),
            "drop_gil: GIL not held by {me}"
        );
        st.locked = false;
        if !self.faults.no_notify_on_drop {
            P::notify_one(&self.cond);
        }
        // Re-read under the mutex: a stale poll must not wait for a switch nobody asked for.
        let still_requested = P::load(&self.drop_request, Ordering::Relaxed);
        if forced && still_requested && !self.faults.no_force_switching {
            self.reset_drop_request();
            while st.last_holder == me {
                st = P::wait(&self.switch_cond, st);
            }
        }
    }

    /// GIL-7: a poll point. If a drop request is pending, hands the GIL over and takes it back.
    pub fn poll(&self, me: ThreadId) -> Poll {
        if self.poll_sees_request() {
            self.drop_gil(me, true);
            self.take(me);
            Poll::Released
        } else {
            Poll::Kept
        }
    }

    /// Reads the drop request at a poll point. On real threads: a relaxed load, as CPython reads
    /// `eval_breaker` (the flag is a hint; the data handed over is ordered by the state mutex in
    /// `drop_gil`/`take`). Under the checkers the read is made under the state mutex, so that the
    /// poll is a scheduling point ordered against a waiter's post (GIL-7): loom's partial-order
    /// reduction does not otherwise explore a post landing between two polls. This drops only
    /// stale reads of the flag, which in CPython merely delay the switch to a later poll.
    fn poll_sees_request(&self) -> bool {
        if P::MODELS_TIME {
            P::load(&self.drop_request, Ordering::Relaxed)
        } else {
            let _st = P::lock(&self.state);
            P::load(&self.drop_request, Ordering::Relaxed)
        }
    }

    /// Whether a drop request is pending (what a poll would see).
    pub fn drop_requested(&self) -> bool {
        P::load(&self.drop_request, Ordering::Relaxed)
    }
}

/// GIL-8: a switch interval in seconds as the GIL stores it, in whole microseconds:
/// `ValueError` when `seconds <= 0.0` (so NaN and +inf are accepted, as by CPython's
/// `sys_setswitchinterval_impl`), otherwise `(unsigned long)(1e6 * seconds)` converted as gcc
/// compiles that cast for x86-64 ([`x86_64_f64_to_u64`]). The result may be 0 (below 1 µs, +inf,
/// 2^64 µs and more) or 2^63 (NaN).
pub fn interval_micros(seconds: f64) -> Result<u64, crate::RtError> {
    if seconds <= 0.0 {
        return Err(crate::RtError::ValueError(
            "switch interval must be strictly positive".into(),
        ));
    }
    Ok(x86_64_f64_to_u64(1e6 * seconds))
}

/// GIL-8: `sys.getswitchinterval` of a stored interval: `1e-6 * stored`, as CPython's
/// `sys_getswitchinterval_impl` computes it (which is not always `stored / 1e6`:
/// 4294967295 µs reads back as 4294.9672949999995).
pub fn interval_seconds(micros: u64) -> f64 {
    micros as f64 * 1e-6
}

/// C's `(unsigned long) v` for a double, as gcc compiles it for x86-64 (`unsigned long` has 64
/// bits there). Below 2^63 (or NaN, for which the comparison is false) it is one truncating
/// `cvttsd2si`; from 2^63 on it converts `v - 2^63` and flips the top bit. `cvttsd2si` gives
/// 0x8000_0000_0000_0000 ("integer indefinite") for NaN and for values outside `i64`, hence
/// NaN → 2^63 and +inf, 2^64 and above → 0.
pub fn x86_64_f64_to_u64(v: f64) -> u64 {
    const TOP: u64 = 1 << 63;
    const TWO_63: f64 = TOP as f64;
    let cvttsd2si = |x: f64| -> u64 {
        if (-TWO_63..TWO_63).contains(&x) {
            x as i64 as u64 // truncation toward zero, in range
        } else {
            TOP // NaN or out of range
        }
    };
    if v >= TWO_63 {
        cvttsd2si(v - TWO_63) ^ TOP
    } else {
        cvttsd2si(v)
    }
}

/// The longest wait that `take` makes with a timeout on real threads: one year, in µs. A
/// longer interval waits without a timeout (no run lasts a year, and `Instant + Duration`
/// overflows on some platforms long before 2^63 µs, about 292 000 years).
pub const LONGEST_TIMED_WAIT_US: u64 = 365 * 24 * 3600 * 1_000_000;

/// How a waiter in `take` waits for the GIL on real threads, for a stored interval (GIL-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalWait {
    /// A timed wait of this many µs: the stored interval, at least 1 (CPython's `take_gil`
    /// waits `interval >= 1 ? interval : 1`).
    Timed(u64),
    /// Longer than [`LONGEST_TIMED_WAIT_US`] (and below 2^63 µs): a wait without timeout, which
    /// only a release ends, so the waiter never posts a drop request.
    Untimed,
    /// 2^63 µs or more: the wait ends at once, every time. CPython passes the interval to
    /// `PyCOND_TIMEDWAIT` as a `long long`, where it is negative: 3.12 and 3.13 compute a
    /// deadline in the past and time out at once; 3.8–3.11 build an invalid `timespec` and abort
    /// ("Fatal Python error: … PyCOND_WAIT(gil->cond) failed") at the first contended wait.
    Expired,
}

/// GIL-8: how a waiter waits for a stored interval of `micros` µs.
pub fn interval_wait(micros: u64) -> IntervalWait {
    match micros {
        0 => IntervalWait::Timed(1),
        m if m <= LONGEST_TIMED_WAIT_US => IntervalWait::Timed(m),
        m if m < 1 << 63 => IntervalWait::Untimed,
        _ => IntervalWait::Expired,
    }
}

impl<P: Platform> Default for Gil<P> {
    fn default() -> Self {
        Self::new()
    }
}
