//! gilcheck: an executable, model-checked specification of CPython's Global Interpreter Lock and
//! reference counting.
//!
//! One runtime, generic over a [`platform::Platform`], runs on real threads ([`platform::Std`]) and
//! under the model checkers ([`platform::Loom`], [`platform::Shuttle`]). The rules it implements
//! are numbered in `spec/` (GIL-n, RC-n, LOCK-n) and cited where they are implemented and checked.
//!
//! ```
//! use gilcheck::{Runtime, platform::Std};
//!
//! let rt = Runtime::<Std>::new();
//! let mut ts = rt.thread_state();
//! let g = ts.attach();                         // take the GIL
//! let (py, heap) = (g.token(), g.heap());
//! let d = heap.new_dict(py);
//! let k = heap.new_str(py, "revenue");
//! let v = heap.new_float(py, 142500.0);
//! heap.dict_set(py, d, k, v).unwrap();          // the dict takes its own references
//! heap.decref(py, k).unwrap();
//! heap.decref(py, v).unwrap();
//! assert_eq!(heap.getrefcount(py, d).unwrap(), 2); // our reference + the argument's
//! heap.decref(py, d).unwrap();                  // frees the dict, its key and its value
//! assert!(heap.leak_report(py).unwrap().is_clean());
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod builtins;
pub mod compile;
pub mod error;
pub mod explore;
pub mod gil;
pub mod heap;
pub mod lock;
pub mod platform;
pub mod refcount;
pub mod runtime;
pub mod scenarios;
pub mod setobj;
pub mod vm;

pub use error::RtError;
pub use gil::{Faults, Gil, Poll, ThreadId};
pub use heap::{Heap, LeakReport, ObjRef, Object};
pub use runtime::{Attached, Runtime, ThreadState, Token};

/// The README's Rust examples, compiled and run as doc-tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
