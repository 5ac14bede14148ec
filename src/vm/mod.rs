//! The bytecode VM: code objects shaped like CPython 3.11's, an interpreter whose every value
//! lives in the refcounted heap, per-version poll policies, and the real-thread driver.
//!
//! Rules VM-1 … VM-10 of `spec/bytecode.md`.

pub mod code;
pub mod format;
pub mod interp;
pub mod library;
pub mod native;
pub mod ops;
pub mod policy;
pub mod sync;
pub mod threaded;

pub use code::{BinOp, CmpOp, Code, CodeBuilder, Const, Instr, Program};
pub use interp::{Host, Image, PyThread, Step, Wait};
pub use policy::Policy;
