//! The explorer: executes a program under every schedule (DFS with a preemption bound), under
//! sampled ones (PCT, random), or under one given schedule (replay), and reports failures as
//! replayable counterexamples. Rules EX-1 … EX-9 of `spec/explore.md`.

pub mod engine;
pub mod loom;
pub mod oracles;
pub mod por;
pub mod report;
pub mod schedule;
pub mod shard;
pub mod world;

pub use schedule::{Event, Header, Schedule};
pub use world::{Decision, Execution, Failure, Options, Oracle, Outcome, Row, execute};
