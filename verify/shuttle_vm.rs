//! shuttle over the VM's real-thread driver and the runtime's real GIL (EX-1, VM-9): every
//! execution shuttle samples is an execution of the explorer's model. Each recorded schedule is
//! replayed in the model and must give the identical outcome; replayed under a policy with fewer
//! poll points, some must be refused (the twin: the comparison bites).

mod common;

use common::Sched;
use gilcheck::explore::engine;
use gilcheck::explore::{Event, Outcome};
use gilcheck::platform::Shuttle;
use gilcheck::scenarios::{self, Params};
use gilcheck::vm::Policy;
use gilcheck::vm::threaded::{self, RunOptions};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Executions per scenario, policy and scheduler.
const ITERATIONS: usize = if cfg!(debug_assertions) { 30 } else { 300 };

type Runs = Arc<Mutex<Vec<(Vec<Event>, Outcome)>>>;

/// Runs `name` on shuttle threads under `policy`, recording each execution's schedule.
fn sample(
    name: &str,
    policy: Policy,
    sched: Sched,
) -> (Arc<gilcheck::vm::Program>, Vec<(Vec<Event>, Outcome)>) {
    let p = Arc::new(
        scenarios::build(
            name,
            Params {
                threads: 2,
                iterations: 1,
                processes: false,
            },
        )
        .unwrap(),
    );
    let runs: Runs = Arc::default();
    let (p2, r2) = (Arc::clone(&p), Arc::clone(&runs));
    let run = common::shuttle_run(sched, ITERATIONS, move || {
        let opts = RunOptions {
            policy,
            record: true,
            ..RunOptions::default()
        };
        let report = threaded::run::<Shuttle>(Arc::clone(&p2), opts).unwrap();
        assert_eq!(report.failure, None);
        assert!(report.leaks.is_clean(), "{}", report.leaks);
        let outcome = Outcome {
            output: report.output,
            state: report.state,
        };
        r2.lock().unwrap().push((report.events, outcome));
    });
    assert_eq!(run.failure, None);
    let runs = std::mem::take(&mut *runs.lock().unwrap());
    (p, runs)
}

/// EX-1, EX-6, VM-9: schedules of the real GIL replay in the model to the same outcome (lock
/// takes recorded on real threads are applied as soon as their lock is free), for three
/// scenarios under 3.9, 3.11 and every, with PCT and random scheduling; under 3.9 shuttle
/// reaches the lost update too.
#[test]
fn shuttle_vm_matches_explorer_model() {
    for name in [
        "seed-unsafe-increment",
        "call-between",
        "seed-locked-increment",
    ] {
        for policy in [Policy::Py39, Policy::Py311, Policy::Every] {
            for sched in [Sched::Pct { depth: 3 }, Sched::Random] {
                let (p, runs) = sample(name, policy, sched);
                let mut outputs = BTreeSet::new();
                for (events, outcome) in &runs {
                    let e =
                        engine::replay_events(&p, policy, events, 100_000).unwrap_or_else(|why| {
                            let s = gilcheck::explore::Schedule {
                                header: Default::default(),
                                events: events.clone(),
                                loop_from: None,
                            };
                            panic!(
                                "{name} {policy} {sched}: does not replay: {why}\n{}",
                                s.encode()
                            )
                        });
                    assert_eq!(&e.outcome, outcome, "{name} {policy} {sched}");
                    outputs.insert(outcome.output.clone());
                }
                println!(
                    "{name} {policy} {sched}: {} executions replayed; outputs {outputs:?}",
                    runs.len()
                );
                if name == "seed-unsafe-increment" && policy == Policy::Py39 {
                    assert!(
                        outputs.iter().any(|o| o.contains("Got: 1")),
                        "shuttle never lost an update under 3.9"
                    );
                }
            }
        }
    }
}

/// EX-1, the twin: schedules recorded under the 3.9 policy (a poll after almost every
/// instruction) replayed under 3.11's (far fewer poll points): some are refused, so the
/// replay check does compare where switches happen.
#[test]
fn shuttle_vm_twin_wrong_policy_refused() {
    let (p, runs) = sample("seed-unsafe-increment", Policy::Py39, Sched::Random);
    let refused = runs
        .iter()
        .filter(|(events, _)| engine::replay_events(&p, Policy::Py311, events, 100_000).is_err())
        .count();
    assert!(refused > 0, "every 3.9 schedule replayed under 3.11");
    println!(
        "{refused} of {} 3.9 schedules refused under 3.11",
        runs.len()
    );
}

/// A conformance program compiled at 2 threads × 1 iteration, with `edit` applied to its source.
fn conformance(file: &str, edit: (&str, &str)) -> Arc<gilcheck::vm::Program> {
    let path = format!("tests/conformance/{file}");
    let source = std::fs::read_to_string(&path).expect("a conformance program");
    assert!(source.contains(edit.0), "{file} has no {:?}", edit.0);
    let source = source.replace(edit.0, edit.1);
    let shrink = gilcheck::compile::Shrink {
        threads: Some(2),
        iterations: Some(1),
    };
    let (p, _) = gilcheck::compile::compile(&source, &path, file, &shrink).unwrap();
    Arc::new(p)
}

/// Runs `p` under 3.11 on shuttle threads: each execution must print `expected` without leaks
/// and replay in the explorer's model to the same outcome.
fn sync_program_runs(p: Arc<gilcheck::vm::Program>, sched: Sched, expected: &'static str) {
    let p2 = Arc::clone(&p);
    let runs: Runs = Arc::default();
    let r2 = Arc::clone(&runs);
    let run = common::shuttle_run(sched, ITERATIONS, move || {
        let opts = RunOptions {
            policy: Policy::Py311,
            record: true,
            ..RunOptions::default()
        };
        let report = threaded::run::<Shuttle>(Arc::clone(&p2), opts).unwrap();
        assert_eq!(report.failure, None);
        assert!(report.leaks.is_clean(), "{}", report.leaks);
        assert_eq!(report.output, expected);
        let outcome = Outcome {
            output: report.output,
            state: report.state,
        };
        r2.lock().unwrap().push((report.events, outcome));
    });
    assert_eq!(run.failure, None, "{}", p.name);
    for (events, outcome) in runs.lock().unwrap().iter() {
        let e = engine::replay_events(&p, Policy::Py311, events, 100_000)
            .unwrap_or_else(|why| panic!("{}: does not replay: {why}", p.name));
        assert_eq!(&e.outcome, outcome, "{}", p.name);
    }
}

/// LOCK-5, LOCK-6, LOCK-7 on real (shuttle) threads: RLock re-entry, a Condition's wait and
/// notify_all, a BoundedSemaphore as a mutex, an Event gate and queue.Queue workers with
/// task_done and join, each at 2 threads × 1, end
/// with the exact total under PCT and random scheduling, and every schedule replays in the model.
#[test]
fn shuttle_sync_primitives_on_real_threads() {
    let keep = ("\n", "\n");
    for sched in [Sched::Pct { depth: 3 }, Sched::Random] {
        for file in [
            "rlock_protected.py",
            "condition_protected.py",
            "semaphore_protected.py",
            "event_start_gate.py",
            "queue_workers.py",
        ] {
            sync_program_runs(conformance(file, keep), sched, "Got: 2\n");
        }
    }
}

/// The twins: the Condition program without its `notify_all` (the main thread waits forever),
/// and the RLock program on a plain Lock (its owner blocks on itself). shuttle must report each
/// as a deadlock.
#[test]
fn shuttle_twin_sync_deadlocks_caught() {
    for (file, edit) in [
        ("condition_protected.py", ("cond.notify_all()", "pass")),
        (
            "rlock_protected.py",
            ("threading.RLock()", "threading.Lock()"),
        ),
    ] {
        let p = conformance(file, edit);
        let run = common::shuttle_run(Sched::Random, ITERATIONS, move || {
            let opts = RunOptions {
                policy: Policy::Py311,
                ..RunOptions::default()
            };
            let _ = threaded::run::<Shuttle>(Arc::clone(&p), opts);
        });
        let failure = run
            .failure
            .unwrap_or_else(|| panic!("{file}: no deadlock found"));
        assert!(failure.contains("deadlock"), "{file}: {failure}");
    }
}
