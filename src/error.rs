//! Errors the runtime reports instead of misbehaving.

use crate::builtins::Builtin;
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
    /// A Python `ZeroDivisionError`.
    ZeroDivisionError(String),
    /// A Python `NameError` (also for unbound locals, CPython's `UnboundLocalError`).
    NameError(String),
    /// A Python `AttributeError`.
    AttributeError(String),
    /// A Python `AssertionError`, with its message (empty for a bare `assert`).
    AssertionError(String),
    /// A Python `ImportError` (`ModuleNotFoundError`).
    ImportError(String),
    /// Something the program does that gilcheck does not model (a Python `__eq__` called from
    /// a dict operation, a timed wait, …): not a Python exception but gilcheck refusing, so it
    /// ends the run or the check with an error (exit 2), never with a verdict.
    Unsupported(String),
    /// `Exception(message)`, raised by the program itself.
    Exception(String),
    /// `queue.Empty`, from `get(block=False)` on an empty Queue.
    QueueEmpty,
    /// `queue.Full`, from `put(block=False)` on a full Queue.
    QueueFull,
    /// An exception of a class without a variant of its own (`raise LookupError(…)`).
    Raised { class: Builtin, message: String },
    /// An instance of a class statement's exception class (`class E(Exception)`), which the
    /// raising thread holds (`PyThread::raised`) until a handler takes it: `name` as a report
    /// shows it (`E`: a report leaves out `__main__`), `base` the built-in class it derives from.
    Instance {
        base: Builtin,
        name: String,
        message: String,
    },
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

    /// True for what ends the execution instead of raising in the program: a rule violation
    /// or something gilcheck does not model.
    pub fn ends_execution(&self) -> bool {
        self.is_rule_violation() || matches!(self, RtError::Unsupported(_))
    }

    /// The class and message of the Python exception this is (CO-6), or None for what ends
    /// the execution.
    pub fn exception(&self) -> Option<(Builtin, String)> {
        use Builtin::*;
        let (class, m) = match self {
            RtError::TypeError(m) => (TypeErrorClass, m),
            RtError::IndexError(m) => (IndexErrorClass, m),
            RtError::KeyError(m) => (KeyErrorClass, m),
            RtError::ValueError(m) => (ValueErrorClass, m),
            RtError::RuntimeError(m) => (RuntimeErrorClass, m),
            RtError::OverflowError(m) => (OverflowErrorClass, m),
            RtError::ZeroDivisionError(m) => (ZeroDivisionErrorClass, m),
            // CPython's UnboundLocalError is a NameError with this wording.
            RtError::NameError(m) if m.starts_with("cannot access local variable") => {
                (UnboundLocalErrorClass, m)
            }
            RtError::NameError(m) => (NameErrorClass, m),
            RtError::AttributeError(m) => (AttributeErrorClass, m),
            RtError::AssertionError(m) => (AssertionErrorClass, m),
            RtError::ImportError(m) => (ModuleNotFoundErrorClass, m),
            RtError::Exception(m) => (ExceptionClass, m),
            RtError::QueueEmpty => return Some((QueueEmptyClass, String::new())),
            RtError::QueueFull => return Some((QueueFullClass, String::new())),
            RtError::Raised { class, message } => (*class, message),
            RtError::Instance { base, message, .. } => (*base, message),
            RtError::UseAfterFree { .. }
            | RtError::NegativeRefcount { .. }
            | RtError::DoubleFree { .. }
            | RtError::Unsupported(_) => return None,
        };
        Some((class, m.clone()))
    }

    /// The error that raising an exception of `class` with `message` is.
    pub fn raised(class: Builtin, message: String) -> RtError {
        use Builtin::*;
        match class {
            TypeErrorClass => RtError::TypeError(message),
            IndexErrorClass => RtError::IndexError(message),
            KeyErrorClass => RtError::KeyError(message),
            ValueErrorClass => RtError::ValueError(message),
            RuntimeErrorClass => RtError::RuntimeError(message),
            OverflowErrorClass => RtError::OverflowError(message),
            ZeroDivisionErrorClass => RtError::ZeroDivisionError(message),
            NameErrorClass => RtError::NameError(message),
            AttributeErrorClass => RtError::AttributeError(message),
            AssertionErrorClass => RtError::AssertionError(message),
            ModuleNotFoundErrorClass => RtError::ImportError(message),
            ExceptionClass => RtError::Exception(message),
            QueueEmptyClass if message.is_empty() => RtError::QueueEmpty,
            QueueFullClass if message.is_empty() => RtError::QueueFull,
            _ => RtError::Raised { class, message },
        }
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
            RtError::TypeError(m) if m.is_empty() => write!(f, "TypeError"),
            RtError::TypeError(m) => write!(f, "TypeError: {m}"),
            RtError::IndexError(m) if m.is_empty() => write!(f, "IndexError"),
            RtError::IndexError(m) => write!(f, "IndexError: {m}"),
            RtError::KeyError(m) if m.is_empty() => write!(f, "KeyError"),
            RtError::KeyError(m) => write!(f, "KeyError: {m}"),
            RtError::ValueError(m) if m.is_empty() => write!(f, "ValueError"),
            RtError::ValueError(m) => write!(f, "ValueError: {m}"),
            RtError::RuntimeError(m) if m.is_empty() => write!(f, "RuntimeError"),
            RtError::RuntimeError(m) => write!(f, "RuntimeError: {m}"),
            RtError::OverflowError(m) if m.is_empty() => write!(f, "OverflowError"),
            RtError::OverflowError(m) => write!(f, "OverflowError: {m}"),
            RtError::ZeroDivisionError(m) if m.is_empty() => write!(f, "ZeroDivisionError"),
            RtError::ZeroDivisionError(m) => write!(f, "ZeroDivisionError: {m}"),
            RtError::NameError(m) if m.is_empty() => write!(f, "NameError"),
            RtError::NameError(m) if m.starts_with("cannot access local variable") => {
                write!(f, "UnboundLocalError: {m}")
            }
            RtError::NameError(m) => write!(f, "NameError: {m}"),
            RtError::AttributeError(m) if m.is_empty() => write!(f, "AttributeError"),
            RtError::AttributeError(m) => write!(f, "AttributeError: {m}"),
            RtError::AssertionError(m) if m.is_empty() => write!(f, "AssertionError"),
            RtError::AssertionError(m) => write!(f, "AssertionError: {m}"),
            RtError::ImportError(m) => write!(f, "ModuleNotFoundError: {m}"),
            RtError::Unsupported(m) => write!(f, "unsupported: {m}"),
            RtError::Exception(m) if m.is_empty() => write!(f, "Exception"),
            RtError::Exception(m) => write!(f, "Exception: {m}"),
            RtError::QueueEmpty => write!(f, "_queue.Empty"),
            RtError::QueueFull => write!(f, "queue.Full"),
            RtError::Raised { class, message } if message.is_empty() => {
                write!(f, "{}", class.qualname())
            }
            RtError::Raised { class, message } => write!(f, "{}: {message}", class.qualname()),
            RtError::Instance { name, message, .. } if message.is_empty() => write!(f, "{name}"),
            RtError::Instance { name, message, .. } => write!(f, "{name}: {message}"),
        }
    }
}

impl std::error::Error for RtError {}
