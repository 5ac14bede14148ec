//! The built-in scenarios: short names for the Python files in `examples/` — the seed's four
//! programs, transcribed exactly (`examples/seed/`), and four more — compiled by the front end
//! ([`crate::compile`]) like any user's file. `spec/scenarios.md` ties each to the seed's claims,
//! the rules and the checks.

use crate::compile::{self, Change, Shrink};
use crate::vm::code::Program;

/// A built-in scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    /// The file, relative to the repository (what `gilcheck check FILE` would be given).
    pub file: &'static str,
    /// Its text, built into the binary.
    pub source: &'static str,
    /// One line for `gilcheck list`.
    pub summary: &'static str,
    /// Sizes for `run` (the seed's) and for `check` (small enough to explore).
    pub run_size: Size,
    pub check_size: Size,
    /// Whether `--threads` applies (some scenarios have a fixed shape).
    pub threads_option: bool,
    /// What `--iterations` counts.
    pub iterations_mean: &'static str,
}

/// Threads and iterations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub threads: u32,
    pub iterations: u64,
}

const fn size(threads: u32, iterations: u64) -> Size {
    Size {
        threads,
        iterations,
    }
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "seed-refcount",
        file: "examples/seed/refcount.py",
        source: include_str!("../examples/seed/refcount.py"),
        summary: "claim 1: threads read shared_data[\"revenue\"]; the GIL keeps plain refcounts exact",
        run_size: size(4, 100_000),
        check_size: size(2, 2),
        threads_option: true,
        iterations_mean: "reads per thread",
    },
    Scenario {
        name: "seed-cpu-bound",
        file: "examples/seed/cpu_bound.py",
        source: include_str!("../examples/seed/cpu_bound.py"),
        summary: "claim 2: CPU-bound threads are no faster than sequential code (--processes: they are)",
        run_size: size(2, 300_000),
        check_size: size(2, 3),
        threads_option: false,
        iterations_mean: "the limit of compute_sum",
    },
    Scenario {
        name: "seed-unsafe-increment",
        file: "examples/seed/unsafe_increment.py",
        source: include_str!("../examples/seed/unsafe_increment.py"),
        summary: "claim 3: shared_counter[\"value\"] += 1 from threads; loses updates on 3.8/3.9 only",
        run_size: size(4, 10_000),
        check_size: size(2, 2),
        threads_option: true,
        iterations_mean: "increments per thread",
    },
    Scenario {
        name: "seed-locked-increment",
        file: "examples/seed/locked_increment.py",
        source: include_str!("../examples/seed/locked_increment.py"),
        summary: "claim 4: the same increment inside `with lock:`; never loses an update",
        run_size: size(4, 10_000),
        check_size: size(2, 2),
        threads_option: true,
        iterations_mean: "increments per thread",
    },
    Scenario {
        name: "call-between",
        file: "examples/call_between.py",
        source: include_str!("../examples/call_between.py"),
        summary: "read, call a Python function, write: loses updates on every version",
        run_size: size(4, 10_000),
        check_size: size(2, 2),
        threads_option: true,
        iterations_mean: "increments per thread",
    },
    Scenario {
        name: "io-bound",
        file: "examples/io_bound.py",
        source: include_str!("../examples/io_bound.py"),
        summary: "claim 4: threads that sleep (blocking I/O releases the GIL) take one sleep, not N",
        run_size: size(4, 1),
        check_size: size(2, 1),
        threads_option: true,
        iterations_mean: "sleeps of 0.1 s per thread",
    },
    Scenario {
        name: "convoy",
        file: "examples/convoy.py",
        source: include_str!("../examples/convoy.py"),
        summary: "an I/O thread beside a CPU-bound one: each blocking call costs about one switch interval",
        run_size: size(2, 3_000_000),
        check_size: size(2, 2),
        threads_option: false,
        iterations_mean: "loop iterations of the CPU-bound thread",
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Options that change a scenario's program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub threads: u32,
    pub iterations: u64,
    /// `seed-cpu-bound`: `multiprocessing.Process` instead of `threading.Thread`.
    pub processes: bool,
}

/// `seed-cpu-bound` with processes: the seed's program with `multiprocessing.Process` in place
/// of `threading.Thread` (the seed's advice for CPU-bound work).
pub const CPU_BOUND_PROCESSES: (&str, &str) = (
    "examples/cpu_bound_processes.py",
    include_str!("../examples/cpu_bound_processes.py"),
);

/// The program of scenario `name` with `params`: its file, with `--threads` (where the
/// scenario has a number of threads) and `--iterations` applied to its literals.
pub fn build(name: &str, params: Params) -> Result<Program, String> {
    build_with_changes(name, params).map(|(p, _)| p)
}

/// [`build`], and the literals that differ from the file's.
pub fn build_with_changes(name: &str, params: Params) -> Result<(Program, Vec<Change>), String> {
    let s = find(name).ok_or_else(|| format!("unknown scenario '{name}' (see `gilcheck list`)"))?;
    let (file, source) = if params.processes {
        if name != "seed-cpu-bound" {
            return Err("--processes applies to seed-cpu-bound only".into());
        }
        CPU_BOUND_PROCESSES
    } else {
        (s.file, s.source)
    };
    // At its run size a scenario is its file as written: no literal is replaced (`convoy`'s
    // I/O thread makes 10 calls whatever the CPU-bound thread's iteration count).
    let as_written =
        params.threads == s.run_size.threads && params.iterations == s.run_size.iterations;
    let shrink = if as_written {
        Shrink::default()
    } else {
        Shrink {
            threads: s.threads_option.then_some(u64::from(params.threads)),
            iterations: Some(params.iterations),
        }
    };
    let (program, changes) = compile::compile(source, file, name, &shrink)
        .map_err(|e| format!("internal error: scenario {name} does not compile: {e}"))?;
    let changes = changes
        .into_iter()
        .filter(|c| c.from != c.to.to_string())
        .collect();
    Ok((program, changes))
}
