//! Errors the runtime reports instead of misbehaving.

use crate::heap::ObjRef;
use std::fmt;

/// A runtime-rule violation (RC-5) or a Python-level exception raised by a runtime operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtError {
    /// RC-5: an object was used (incref, read, write) after it was freed.
    UseAfterFree { obj: ObjRef, op: &'static str },
    /// RC-5: a decref found the count already at zero: it would go negative.
    NegativeRefcount { obj: ObjRef },
    /// RC-5: an object was deallocated a second time.
    DoubleFree { obj: ObjRef },
    /// A Python `TypeError` (wrong kind of object for the operation).
    TypeError(String),
    /// A Python `IndexError`.
    IndexError(String),
    /// A Python `KeyError`.
    KeyError(String),
    /// A Python `ValueError`.
    ValueError(String),
    /// A Python `RuntimeError` (e.g. releasing an unlocked lock, LOCK-4).
    RuntimeError(String),
    /// A Python `OverflowError`: gilcheck's ints are 64-bit (a documented deviation).
    OverflowError(String),
}

impl RtError {
    /// True for violations of the refcount rules, as opposed to Python exceptions.
    pub fn is_rule_violation(&self) -> bool {
        matches!(
            self,
            RtError::UseAfterFree { .. }
                | RtError::NegativeRefcount { .. }
                | RtError::DoubleFree { .. }
        )
    }
}

impl fmt::Display for RtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtError::UseAfterFree { obj, op } => {
                write!(
                    f,
                    "use after free: {op} on {obj}, which was already deallocated (RC-5)"
                )
            }
            RtError::NegativeRefcount { obj } => write!(
                f,
                "negative refcount: decref of {obj}, whose count is already 0 (RC-5)"
            ),
            RtError::DoubleFree { obj } => {
                write!(f, "double free: {obj} deallocated twice (RC-5)")
            }
            RtError::TypeError(m) => write!(f, "TypeError: {m}"),
            RtError::IndexError(m) => write!(f, "IndexError: {m}"),
            RtError::KeyError(m) => write!(f, "KeyError: {m}"),
            RtError::ValueError(m) => write!(f, "ValueError: {m}"),
            RtError::RuntimeError(m) => write!(f, "RuntimeError: {m}"),
            RtError::OverflowError(m) => write!(f, "OverflowError: {m}"),
        }
    }
}

impl std::error::Error for RtError {}
