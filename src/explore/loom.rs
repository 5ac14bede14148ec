//! The loom engine (rule EX-9 of `spec/explore.md`): the real-thread driver
//! ([`crate::vm::threaded`]) on loom's threads, with the runtime's real GIL, explored by loom
//! with a preemption bound over its own scheduling points (every operation on the GIL's mutex,
//! condition variables and atomics) under the C11 memory model, refcount cells checked for
//! data races. A failing execution's recorded schedule is replayed through the explorer's model
//! and must give the same outcome: a check that the model and the real GIL agree.

use crate::explore::engine::{self, CheckOptions, Counterexample, Verdict, failure_of, thousands};
use crate::explore::schedule::{Header, Schedule};
use crate::explore::world::{Outcome, Table};
use crate::platform::Loom;
use crate::vm::threaded::{self, RunOptions};
use crate::vm::{Policy, Program};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

thread_local! {
    /// Set while this OS thread runs a loom exploration, whose panics are expected.
    static EXPLORING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, catching its panic, without printing the panics raised on this OS thread meanwhile
/// (loom's model threads are coroutines of the calling thread; a failing execution ends with a
/// panic by design). Panics of other threads print as before: the hook that filters them is
/// installed once and delegates to the previous one.
fn quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EXPLORING.with(|e| e.get()) {
                previous(info);
            }
        }));
    });
    EXPLORING.with(|e| e.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    EXPLORING.with(|e| e.set(false));
    result
}

/// Runs the real-thread driver with its main thread on a loom thread of its own: the model's
/// main coroutine has a stack too small for the interpreter in debug builds.
pub fn run_on_big_stack(
    program: Arc<Program>,
    opts: RunOptions,
) -> Result<threaded::RunReport, String> {
    ::loom::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || threaded::run::<Loom>(program, opts))
        .map_err(|e| e.to_string())?
        .join()
        .map_err(|_| "the VM's main thread panicked".to_string())?
}

/// The most steps one runtime thread may run under the loom engine. loom 0.7 counts each model
/// thread's events in a 16-bit vector-clock entry (`rt/vv.rs`), which wraps after 65 535, and then
/// reports accesses of one thread as concurrent ("Causality violation"). The VM's threads make
/// 13–17 loom events a step (measured: the seed's increment first fails at 2 × 350 iterations
/// under `every`, about 4 500 steps a thread); 2 500 leaves room.
pub const MAX_STEPS_PER_THREAD: usize = 2_500;

/// What the failing loom execution left behind.
struct Found {
    outcome: Outcome,
    events: Vec<crate::explore::Event>,
    why: String,
}

/// Explores `program` with loom. At most 3 runtime threads besides the main one: loom models
/// 5 threads, and the model's own thread and the VM's main thread are two of them.
pub fn check(
    program: Arc<Program>,
    header: &Header,
    policy: Policy,
    opts: &CheckOptions,
) -> Result<Verdict, String> {
    if header.threads > 3 {
        return Err(format!(
            "the loom engine models at most 5 threads (loom's own, the main thread and 3 more); --threads {} is too many",
            header.threads
        ));
    }
    let reference = engine::first_schedule(&program, policy, opts.max_steps)?;
    let mut per_thread = std::collections::BTreeMap::<u32, usize>::new();
    for e in &reference.events {
        if let crate::explore::Event::Step(t) = e {
            *per_thread.entry(*t).or_default() += 1;
        }
    }
    let longest = per_thread.values().copied().max().unwrap_or(0);
    if longest > MAX_STEPS_PER_THREAD || reference.out_of_steps() {
        return Err(format!(
            "the loom engine follows at most {} steps a thread (loom 0.7 counts each thread's events in 16 bits and reports false data races beyond), and this program's first schedule runs {} in one thread: use a smaller --iterations, or --engine dfs",
            thousands(MAX_STEPS_PER_THREAD),
            thousands(longest)
        ));
    }
    if let Some(why) = failure_of(&reference, &reference.outcome) {
        return Err(format!(
            "the first schedule already fails ({why}); use --engine dfs to see it"
        ));
    }
    let bound = opts.preemptions.unwrap_or(2);
    let found: Arc<Mutex<Option<Found>>> = Arc::new(Mutex::new(None));
    let count = Arc::new(AtomicUsize::new(0));
    let (f, c, p, r) = (
        Arc::clone(&found),
        Arc::clone(&count),
        Arc::clone(&program),
        reference.outcome.clone(),
    );
    let progress = opts.progress;
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);
    builder.max_branches = 1_000_000;
    // loom counts iterations from 1 and stops when the count reaches the cap, checking only at
    // checkpoint intervals: with an interval of 1 it runs exactly `max_executions`.
    builder.max_permutations = Some(opts.max_executions.saturating_add(1));
    builder.checkpoint_interval = 1;
    let result = quietly(move || {
        builder.check(move || {
            let n = c.fetch_add(1, Ordering::Relaxed) + 1;
            if progress && n % 2000 == 0 {
                // A progress line that cannot be written is not worth a panic.
                let _ = writeln!(
                    std::io::stderr(),
                    "gilcheck: loom: {} executions",
                    thousands(n)
                );
            }
            let opts = RunOptions {
                policy,
                switch_interval: 0.005,
                record: true,
                echo: false,
                ..RunOptions::default()
            };
            let report = match run_on_big_stack(Arc::clone(&p), opts) {
                Ok(report) => report,
                Err(e) => {
                    *f.lock().unwrap_or_else(|e| e.into_inner()) = Some(Found {
                        outcome: Outcome::default(),
                        events: Vec::new(),
                        why: e,
                    });
                    panic!("gilcheck: failing execution");
                }
            };
            let outcome = Outcome {
                output: report.output.clone(),
                state: report.state.clone(),
            };
            let why = match (&report.failure, report.leaks.is_clean()) {
                (Some(f), _) => Some(format!("runtime rule violated: {f}")),
                (None, false) => Some(format!(
                    "runtime rule violated: {}",
                    report.leaks.to_string().trim_end()
                )),
                (None, true) => {
                    (outcome != r).then(|| "the outcome differs between schedules".to_string())
                }
            };
            if let Some(why) = why {
                *f.lock().unwrap_or_else(|e| e.into_inner()) = Some(Found {
                    outcome,
                    events: report.events,
                    why,
                });
                panic!("gilcheck: failing execution");
            }
        })
    });
    let executions = count.load(Ordering::Relaxed);
    let found = found.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (result, found) {
        (Err(_), Some(found)) => {
            if found.events.is_empty() {
                return Err(format!("loom execution {executions} failed: {}", found.why));
            }
            let schedule = Schedule {
                header: header.clone(),
                events: found.events,
                loop_from: None,
            };
            let table = if opts.full {
                Table::Full
            } else {
                Table::Folded
            };
            let replayed = engine::replay(&program, policy, &schedule, opts.max_steps, table).map_err(|why| {
                format!("internal error: loom's failing execution {executions} does not replay in the explorer's model ({why}); its schedule: {}", schedule.encode())
            })?;
            if replayed.outcome != found.outcome {
                return Err(format!(
                    "internal error: loom's failing execution {executions} and its replay in the explorer's model differ\n  loom:   {:?}\n  replay: {:?}",
                    found.outcome, replayed.outcome
                ));
            }
            let what = failure_of(&replayed, &reference.outcome).unwrap_or(found.why);
            Ok(Verdict::Fail(Box::new(Counterexample {
                what,
                found: format!(
                    "found by loom at execution {} (loom's preemption bound {bound}; the schedule has {} at the GIL's level, not minimized)",
                    thousands(executions),
                    if replayed.preemptions == 1 {
                        "1 preemption".to_string()
                    } else {
                        format!("{} preemptions", replayed.preemptions)
                    }
                ),
                reference: reference.outcome,
                reference_preemptions: reference.preemptions,
                first: false,
                execution: replayed,
                schedule,
            })))
        }
        (Err(panic), None) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into());
            Err(format!(
                "loom reported a failure at execution {executions} that gilcheck cannot replay: {msg}"
            ))
        }
        (Ok(()), _) if executions >= opts.max_executions => Ok(Verdict::Pass {
            line: format!(
                "no failure in the first {} loom executions with at most {bound} preemptions of loom's scheduling points (stopped at --max-executions: not exhaustive)",
                thousands(executions)
            ),
            executions,
        }),
        (Ok(()), _) => Ok(Verdict::Pass {
            line: format!(
                "loom explored all {} executions with at most {bound} preemptions of its scheduling points (each GIL, lock and thread operation; C11 memory model; refcount cells race-checked)",
                thousands(executions)
            ),
            executions,
        }),
    }
}
