//! loom over the VM's real-thread driver and the runtime's real GIL (EX-9, VM-9, VM-10, LU-2,
//! LU-4): the seed's programs as bytecode on loom threads, with a preemption bound over loom's
//! scheduling points, the C11 memory model, and race detection on every refcount cell. Each
//! failing execution's recorded schedule must replay in the explorer's model to the same
//! outcome; the GIL-less twin must be caught as a data race.

mod common;

use gilcheck::Faults;
use gilcheck::explore::Header;
use gilcheck::explore::engine::{CheckOptions, Engine, Verdict};
use gilcheck::scenarios::{self, Params};
use gilcheck::vm::Policy;
use gilcheck::vm::threaded::RunOptions;
use std::sync::Arc;

fn check(name: &str, policy: Policy, bound: usize) -> Verdict {
    let p = scenarios::build(
        name,
        Params {
            threads: 2,
            iterations: 1,
            processes: false,
        },
    )
    .unwrap();
    let h = Header {
        scenario: name.into(),
        policy: policy.name().into(),
        threads: 2,
        iterations: 1,
    };
    let opts = CheckOptions {
        engine: Engine::Loom,
        preemptions: Some(bound),
        max_executions: 200_000,
        seed: 0,
        max_steps: 100_000,
        progress: false,
        state_cache: true,
        ..CheckOptions::default()
    };
    gilcheck::explore::loom::check(Arc::new(p), &h, policy, &opts).unwrap()
}

/// EX-9, EX-1, LU-1: loom finds the lost update of the seed's claim-3 program under 3.9; its
/// schedule replays in the explorer's model to the identical outcome (checked inside the
/// engine) and switches once, after the read.
#[test]
fn loom_vm_unsafe_increment_39_caught_and_replayed() {
    let Verdict::Fail(c) = check("seed-unsafe-increment", Policy::Py39, 1) else {
        panic!("loom did not find the lost update under 3.9");
    };
    assert_eq!(c.execution.preemptions, 1);
    assert!(
        c.execution
            .outcome
            .output
            .contains("Expected: 40000, Got: 1")
    );
    println!("loom: {} — {}", c.found, c.schedule);
    // The same program under 3.11: no failure within the bound.
    let Verdict::Pass { line, .. } = check("seed-unsafe-increment", Policy::Py311, 2) else {
        panic!("loom found a failure under 3.11");
    };
    println!("3.11: {line}");
}

/// EX-9, LU-2: with the lock, loom finds no failure under 3.9 within preemption bound 2.
#[test]
fn loom_vm_locked_increment_passes() {
    let Verdict::Pass { line, executions } = check("seed-locked-increment", Policy::Py39, 2) else {
        panic!("loom found a failure in the locked increment");
    };
    assert!(executions > 100, "{line}");
    println!("{line}");
}

/// VM-10, LU-4: the claim-1 program under the 3.9 policy (a poll after almost every
/// instruction): no data race on any refcount cell in any execution within bound 2.
#[test]
fn loom_vm_refcounts_race_free() {
    let Verdict::Pass { line, .. } = check("seed-refcount", Policy::Py39, 2) else {
        panic!("loom found a failure in the refcount program");
    };
    println!("{line}");
}

/// VM-10, LU-4, the twin: the same program with a GIL whose take does not wait (no mutual
/// exclusion): loom reports the concurrent writes to a refcount cell.
#[test]
fn loom_vm_twin_without_gil_race_caught() {
    let run = common::isolated("loom_vm_twin_without_gil_race_caught", || {
        let p = Arc::new(
            scenarios::build(
                "seed-refcount",
                Params {
                    threads: 2,
                    iterations: 1,
                    processes: false,
                },
            )
            .unwrap(),
        );
        let _ = common::loom_model(Some(2), move || {
            let opts = RunOptions {
                policy: Policy::Py39,
                record: false,
                faults: Faults {
                    no_exclusion: true,
                    ..Faults::default()
                },
                ..RunOptions::default()
            };
            let _ = gilcheck::explore::loom::run_on_big_stack(Arc::clone(&p), opts);
        });
    });
    common::assert_caught(run, "Causality violation", "VM threads without the GIL");
}
