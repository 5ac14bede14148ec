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
