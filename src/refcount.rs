//! Reference-count fields (rules RC-1 … RC-3).
//!
//! [`RefcountField`] is the seam for a second implementation: today [`PlainRefcount`] (CPython with
//! a GIL: a plain integer, `ob_refcnt++`/`--`); later biased reference counting (PEP 703).

use crate::platform::Platform;
use crate::runtime::Token;

/// The reference count of one object. Every access needs a [`Token`].
pub trait RefcountField<P: Platform>: Send {
    fn new(initial: isize) -> Self;
    /// The current count.
    fn get(&self, py: Token<'_>) -> isize;
    /// Overwrites the count (used when a freed slot is reused).
    fn set(&self, py: Token<'_>, value: isize);
    /// Adds one; returns the new count.
    fn increment(&self, py: Token<'_>) -> isize;
    /// Subtracts one; returns the new count.
    fn decrement(&self, py: Token<'_>) -> isize;
}

/// RC-1: a plain, non-atomic integer in the platform's cell. Correct only because every access
/// holds the GIL: under loom, two accesses not ordered by a GIL handoff are reported as a
/// "Causality violation".
pub struct PlainRefcount<P: Platform>(P::Cell<isize>);

// SAFETY: the cell is only touched through methods that take a `Token`, i.e. while the GIL is held;
// the GIL's mutex orders all such accesses (GIL-1).
unsafe impl<P: Platform> Send for PlainRefcount<P> {}

impl<P: Platform> RefcountField<P> for PlainRefcount<P> {
    fn new(initial: isize) -> Self {
        PlainRefcount(P::cell(initial))
    }
    fn get(&self, _py: Token<'_>) -> isize {
        // SAFETY: the token proves the GIL is held, so no other thread writes the cell now.
        P::with(&self.0, |p| unsafe { *p })
    }
    fn set(&self, _py: Token<'_>, value: isize) {
        // SAFETY: as in `get`; the GIL excludes every other access.
        P::with_mut(&self.0, |p| unsafe { *p = value })
    }
    fn increment(&self, _py: Token<'_>) -> isize {
        // SAFETY: as in `get`. A plain read-modify-write, as CPython's `ob_refcnt++`.
        P::with_mut(&self.0, |p| unsafe {
            *p += 1;
            *p
        })
    }
    fn decrement(&self, _py: Token<'_>) -> isize {
        // SAFETY: as in `get`. A plain read-modify-write, as CPython's `--ob_refcnt`.
        P::with_mut(&self.0, |p| unsafe {
            *p -= 1;
            *p
        })
    }
}
