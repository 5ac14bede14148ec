//! The checks of everything the explorer skips (EX-7, EX-11, EX-13 of `spec/explore.md`): the
//! state cache ends an execution at a state explored before, and the watch for loops ends one
//! that repeats a state unfairly. Neither may change a verdict or lose an outcome: the cached
//! search is compared with the full one (every interleaving) on every built-in scenario under
//! every policy, on programs made to differ between schedules in exactly one thing, and under
//! proptest; dropping unfair loops is compared with a naive search that has no watch at all.
//! Each part of the state fingerprint that a planted bug could drop has a twin: the same
//! comparison with that part left out, which must find an outcome the cached search lost.

mod support;

use gilcheck::explore::engine::{
    self, CheckOptions, Ending, Exploration, SearchFaults, Verdict, check, explore_all,
};
use gilcheck::explore::world::{StateFaults, Stop, Table};
use gilcheck::explore::{Failure, Schedule};
use gilcheck::scenarios::SCENARIOS;
use gilcheck::vm::{Policy, Program};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::BTreeSet;
use support::programs::{self, Last, Op, Prog};
use support::{dfs, header, scenario};

/// The preemption bound of the comparisons (smaller in debug builds, where executions are
/// about ten times slower).
const BOUND: usize = if cfg!(debug_assertions) { 1 } else { 2 };

/// The cache is checked alone here, without the partial-order reduction (whose checks, in
/// `tests/reductions.rs`, compare it and the cache together with the full search).
fn opts(bound: Option<usize>, cache: bool, faults: SearchFaults) -> CheckOptions {
    CheckOptions {
        state_cache: cache,
        reduce: false,
        faults,
        max_executions: 2_000_000,
        max_steps: 100_000,
        ..dfs(bound)
    }
}

fn explore(
    p: &Program,
    policy: Policy,
    bound: Option<usize>,
    cache: bool,
    faults: SearchFaults,
) -> Exploration {
    let x = explore_all(p, policy, &opts(bound, cache, faults)).unwrap();
    assert!(
        !x.capped,
        "the search was cut short at {} executions",
        x.executions
    );
    assert_eq!(x.out_of_steps, 0, "an execution ran out of steps");
    x
}

/// The endings of the cached and of the full search, which must be equal; returns them.
fn agree(p: &Program, policy: Policy, bound: Option<usize>) -> Result<BTreeSet<Ending>, String> {
    let cached = explore(p, policy, bound, true, SearchFaults::default());
    let full = explore(p, policy, bound, false, SearchFaults::default());
    if cached.endings != full.endings {
        return Err(format!(
            "{policy}: the cached search found {} endings, the full one {}\n  lost: {:?}\n  extra: {:?}",
            cached.endings.len(),
            full.endings.len(),
            full.endings.difference(&cached.endings).collect::<Vec<_>>(),
            cached.endings.difference(&full.endings).collect::<Vec<_>>(),
        ));
    }
    Ok(full.endings)
}

/// What the cached search with `faults` lost of the full search's endings.
fn lost_with(
    p: &Program,
    policy: Policy,
    bound: Option<usize>,
    faults: SearchFaults,
) -> Vec<Ending> {
    let twin = explore(p, policy, bound, true, faults);
    let full = explore(p, policy, bound, false, SearchFaults::default());
    assert!(
        twin.endings.is_subset(&full.endings),
        "the twin found endings the full search did not: {:?}",
        twin.endings.difference(&full.endings).collect::<Vec<_>>()
    );
    full.endings.difference(&twin.endings).cloned().collect()
}

/// The verdicts of `check` with and without the cache: the same kind, the same failure, the
/// same first counterexample (the cached search explores a subsequence of the full one's
/// executions, in the same order).
fn same_verdict(p: &Program, policy: Policy, bound: Option<usize>) -> Result<String, String> {
    let h = header(&p.name, policy);
    let run = |cache| check(p, &h, policy, &opts(bound, cache, SearchFaults::default())).unwrap();
    match (run(true), run(false)) {
        (Verdict::Pass { .. }, Verdict::Pass { .. }) => Ok("pass".into()),
        (Verdict::Fail(a), Verdict::Fail(b)) => {
            if a.what != b.what || a.schedule != b.schedule {
                return Err(format!(
                    "{policy}: different counterexamples: {} / {}\n  {}\n  {}",
                    a.what,
                    b.what,
                    a.schedule.encode(),
                    b.schedule.encode()
                ));
            }
            Ok(format!("fail ({} preemptions)", a.execution.preemptions))
        }
        (a, b) => Err(format!("{policy}: the verdicts differ: {a:?} / {b:?}")),
    }
}

/// EX-13, EX-7: on every built-in scenario under every policy, at 2 threads × 1 iteration and up
/// to two preemptions (one in debug builds, and for `convoy`, whose I/O thread makes 60 times
/// more interleavings than the others), the cached search reaches exactly the endings of the
/// full search, and `check` gives the same verdict and the same first counterexample.
#[test]
fn ex13_cached_search_keeps_every_outcome_of_every_scenario() {
    let mut compared = 0;
    for s in SCENARIOS {
        let p = scenario(s.name, 2, 1);
        let bound = if s.name == "convoy" { 1 } else { BOUND };
        for policy in Policy::ALL {
            let t = std::time::Instant::now();
            let endings =
                agree(&p, policy, Some(bound)).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            let verdict =
                same_verdict(&p, policy, Some(bound)).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            println!(
                "{} {policy}: {} endings, {verdict} ({:.1} s)",
                s.name,
                endings.len(),
                t.elapsed().as_secs_f64()
            );
            compared += 1;
        }
    }
    assert_eq!(compared, SCENARIOS.len() * Policy::ALL.len());
}

/// EX-13, EX-7 for LOCK-5, LOCK-6, LOCK-7: the RLock, Condition, Semaphore, Event and Queue conformance
/// programs at 2 threads × 1, up to one preemption: the cached search
/// reaches exactly the endings of the full search (a waiter's queue, an RLock's owner and count,
/// a wait under way are in the fingerprint), with the same verdict.
#[test]
fn ex13_cached_search_keeps_every_outcome_of_the_sync_programs() {
    for file in [
        "rlock_protected.py",
        "condition_protected.py",
        "semaphore_protected.py",
        "event_start_gate.py",
        "queue_workers.py",
    ] {
        let p = support::compile_file(
            std::path::Path::new(&format!("tests/conformance/{file}")),
            gilcheck::compile::Shrink {
                threads: Some(2),
                iterations: Some(1),
            },
        );
        for policy in [Policy::Py39, Policy::Py311, Policy::Every] {
            let endings = agree(&p, policy, Some(1)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let verdict =
                same_verdict(&p, policy, Some(1)).unwrap_or_else(|e| panic!("{file}: {e}"));
            println!("{file} {policy}: {} endings, {verdict}", endings.len());
        }
    }
}

/// EX-13, EX-7 for CO-6, VM-15 and the sets of VM-3: the conformance programs with exception
/// handlers, sets, `+=` on a list and `del`, at 2 threads × 1, up to one preemption: the cached
/// search reaches exactly the endings of the full search (the exception a thread is handling,
/// a set's table layout and a frame's stack under a handler are in the fingerprint), with the
/// same verdict.
#[test]
fn ex13_cached_search_keeps_every_outcome_of_the_exception_and_set_programs() {
    for file in [
        "except_between.py",
        "exception_in_with.py",
        "exception_skips_release.py",
        "set_check_then_add.py",
        "set_add_from_threads.py",
        "list_iadd_global.py",
        "check_then_delete.py",
    ] {
        let p = support::compile_file(
            std::path::Path::new(&format!("tests/conformance/{file}")),
            gilcheck::compile::Shrink {
                threads: Some(2),
                iterations: Some(1),
            },
        );
        for policy in [Policy::Py39, Policy::Py312, Policy::Py313] {
            let endings = agree(&p, policy, Some(1)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let verdict =
                same_verdict(&p, policy, Some(1)).unwrap_or_else(|e| panic!("{file}: {e}"));
            println!("{file} {policy}: {} endings, {verdict}", endings.len());
        }
    }
}

/// A program whose schedules differ only in `what`, the policies where they do, and the twin
/// fingerprint that leaves that part out.
struct Differs {
    what: &'static str,
    prog: Prog,
    policies: &'static [Policy],
    twin: StateFaults,
}

fn differing() -> Vec<Differs> {
    let ints = Prog {
        start: 1000,
        ..Prog::new(vec![
            vec![Op::Add(300), Op::Add(300)],
            vec![Op::Add(300), Op::Add(300)],
        ])
    };
    let lock = Prog {
        main_acquires: true,
        ..Prog::new(vec![
            vec![Op::Release, Op::Sleep],
            vec![Op::TryAcquire, Op::Sleep],
        ])
    };
    let prints = Prog::new(vec![vec![Op::Print("A")], vec![Op::Print("B")]]);
    let interval = Prog::new(vec![
        vec![Op::SetInterval(0.001)],
        vec![Op::SetInterval(0.002)],
    ]);
    let finish = Prog::new(vec![vec![Op::Record(0)], vec![Op::Record(1)]]);
    vec![
        Differs {
            what: "an integer above 256",
            prog: ints,
            policies: &[Policy::Py39, Policy::Every],
            twin: StateFaults {
                ignore_ints: true,
                ..StateFaults::default()
            },
        },
        Differs {
            what: "a lock's state (acquire(False) and release() from different threads)",
            prog: lock,
            policies: &[Policy::Py39, Policy::Py311, Policy::Every],
            twin: StateFaults {
                ignore_lock_state: true,
                ..StateFaults::default()
            },
        },
        Differs {
            what: "what the workers print",
            prog: prints,
            policies: &[Policy::Py39, Policy::Py311, Policy::Every],
            twin: StateFaults {
                ignore_output: true,
                ..StateFaults::default()
            },
        },
        Differs {
            what: "the switch interval a thread set",
            prog: interval,
            policies: &[Policy::Py39, Policy::Py311, Policy::Every],
            twin: StateFaults {
                ignore_interval: true,
                ..StateFaults::default()
            },
        },
        Differs {
            what: "which thread finished first",
            prog: finish,
            policies: &[Policy::Py39, Policy::Py311, Policy::Every],
            twin: StateFaults::default(),
        },
    ]
}

/// EX-13, EX-7: for programs whose schedules differ in exactly one thing — an integer above 256,
/// a lock's state, what worker threads print, the switch interval set from a thread, which
/// thread finished first — the cached search reaches every ending the full one does, and there
/// are at least two (so the difference is there to lose).
#[test]
fn ex13_cached_search_keeps_outcomes_that_differ_in_one_thing() {
    for d in differing() {
        let p = d.prog.build();
        for &policy in d.policies {
            let endings = agree(&p, policy, Some(BOUND))
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", d.what, p.source));
            assert!(
                endings.len() >= 2,
                "{} {policy}: only {:?}\n{}",
                d.what,
                endings,
                p.source
            );
            same_verdict(&p, policy, Some(BOUND)).unwrap_or_else(|e| panic!("{}: {e}", d.what));
            println!("{} {policy}: {} endings", d.what, endings.len());
        }
    }
}

/// EX-13, the twins: the same comparison with a fingerprint that leaves out integer values, the
/// locks' state, the output so far or the switch interval finds endings that the cached search
/// lost. So each of these planted bugs makes the check above fail.
#[test]
fn ex13_twin_weakened_fingerprints_are_caught() {
    for d in differing() {
        if d.twin == StateFaults::default() {
            continue;
        }
        let p = d.prog.build();
        let faults = SearchFaults {
            state: d.twin,
            ..SearchFaults::default()
        };
        let caught: Vec<Policy> = d
            .policies
            .iter()
            .copied()
            .filter(|&policy| !lost_with(&p, policy, Some(BOUND), faults).is_empty())
            .collect();
        assert!(
            !caught.is_empty(),
            "{}: the twin {:?} lost nothing\n{}",
            d.what,
            d.twin,
            p.source
        );
        println!("{}: twin {:?} caught under {caught:?}", d.what, d.twin);
    }
}

/// EX-7, the regression of the switch-interval gap (issue 7): two threads set the interval to
/// 0.001 and 0.002 and the main thread prints it. Which value wins depends on which thread runs
/// last, a choice of the model with no preemption; the cached search must find it, as the full
/// one does, under 3.9, 3.11 and `every`.
#[test]
fn ex7_interval_set_by_a_thread_is_part_of_the_state() {
    let p = Prog {
        last: Last::Interval,
        ..Prog::new(vec![
            vec![Op::SetInterval(0.001)],
            vec![Op::SetInterval(0.002)],
        ])
    }
    .build();
    for policy in [Policy::Py39, Policy::Py311, Policy::Every] {
        for cache in [true, false] {
            let v = check(
                &p,
                &header("interval", policy),
                policy,
                &opts(None, cache, SearchFaults::default()),
            )
            .unwrap();
            let Verdict::Fail(c) = v else {
                panic!("{policy} (cache {cache}): the interval's difference was not found: {v:?}");
            };
            assert_eq!(c.execution.preemptions, 0, "{policy}");
            assert!(
                c.what.contains("printed \"0.001\" here, \"0.002\""),
                "{}",
                c.what
            );
        }
        // The twin: `check` with a fingerprint that leaves the interval out repeats the bug of
        // issue 7, an untrue "exhaustive".
        let twin = SearchFaults {
            state: StateFaults {
                ignore_interval: true,
                ..StateFaults::default()
            },
            ..SearchFaults::default()
        };
        let v = check(
            &p,
            &header("interval", policy),
            policy,
            &opts(None, true, twin),
        )
        .unwrap();
        assert!(
            matches!(&v, Verdict::Pass { line, .. } if line.starts_with("exhaustive")),
            "{policy}: the twin without the interval should pass wrongly: {v:?}"
        );
    }
}

/// A program where the preemptions left matter (found by a proptest search with the twin, then
/// shrunk): the sleep gives a free choice of the next thread, so DFS meets some state first
/// through a schedule that spent its preemption, and later through one that did not. Only one
/// ending, the value 1500, needs a preemption after that state; the program prints whether the
/// value was 1500 and then resets it, so that this ending is its only failure.
fn budget_program() -> Prog {
    Prog {
        start: 1000,
        last: Last::Flag(1500),
        ..Prog::new(vec![
            vec![Op::Add(250)],
            vec![Op::Add(250), Op::Sleep, Op::Add(251)],
        ])
    }
}

/// EX-13, EX-7, the twin of the preemption budget: a cache that prunes a state whatever
/// preemptions were left when it was explored loses an ending that a schedule with one
/// preemption reaches, and the bounded verdict becomes wrong: "exhaustive up to 1 preemption"
/// where the search without the cache (and the correct cache) finds the failure.
#[test]
fn ex13_twin_ignoring_the_preemptions_left_is_caught() {
    let p = budget_program().build();
    let faults = SearchFaults {
        ignore_preemptions_left: true,
        ..SearchFaults::default()
    };
    for policy in [Policy::Py39, Policy::Every] {
        agree(&p, policy, Some(1)).unwrap();
        same_verdict(&p, policy, Some(1)).unwrap();
        let lost = lost_with(&p, policy, Some(1), faults);
        assert_eq!(lost.len(), 1, "{policy}: {lost:?}");
        let h = header("budget", policy);
        let right = check(
            &p,
            &h,
            policy,
            &opts(Some(1), true, SearchFaults::default()),
        )
        .unwrap();
        assert!(matches!(right, Verdict::Fail(_)), "{policy}: {right:?}");
        let wrong = check(&p, &h, policy, &opts(Some(1), true, faults)).unwrap();
        let Verdict::Pass { line, .. } = wrong else {
            panic!("{policy}: the twin still fails: {wrong:?}")
        };
        assert!(line.starts_with("exhaustive up to 1 preemption"), "{line}");
        println!("{policy}: the twin says \"{line}\"");
    }
}

/// EX-11, EX-13, EX-4: a thread that spins while a value is unchanged, beside the thread that changes
/// it. The schedule where the spinner keeps the GIL forever repeats a state while the other
/// thread could take the GIL and never does: no fair GIL does that (GIL-5, GIL-6), so those
/// executions are dropped, under every policy, with and without the cache — and nothing is
/// lost: a naive search with no watch for loops (its spinning executions run out of steps) ends
/// with exactly the same endings. The first schedule (EX-4) is then the first that ends: the
/// spinner never lets the writer run in the one without preemptions.
#[test]
fn ex11_unfair_spin_is_dropped_and_loses_no_outcome() {
    let p = Prog {
        start: 1000,
        ..Prog::new(vec![vec![Op::SpinWhile(1000)], vec![Op::Add(1)]])
    }
    .build();
    for policy in Policy::ALL {
        let endings = agree(&p, policy, Some(1)).unwrap();
        // The fair executions take under 200 steps; the naive search's spins stop at 400.
        let naive = support::naive::search(&p, policy, 1, 400, 200_000);
        assert!(
            naive.out_of_steps > 0,
            "{policy}: the naive search never spun out"
        );
        assert_eq!(endings, naive.endings, "{policy}");
        let cached = explore(&p, policy, Some(1), true, SearchFaults::default());
        assert!(cached.pruned > 0, "{policy}: no execution was dropped");
        // Without the cache the bound must be given: the spinner and the other thread can take
        // turns in ever more ways before the spin ends.
        same_verdict(&p, policy, Some(2)).unwrap();
        let v = check(
            &p,
            &header("spin", policy),
            policy,
            &opts(None, true, SearchFaults::default()),
        )
        .unwrap();
        assert!(matches!(v, Verdict::Pass { .. }), "{policy}: {v:?}");
        println!(
            "{policy}: {} endings; naive: {} executions, {} spun out",
            endings.len(),
            naive.executions,
            naive.out_of_steps
        );
    }
}

/// EX-11: a thread that spins taking and releasing the lock while another waits for it. The
/// waiter is offered the lock at every take (a lock-take decision) and the GIL after every
/// release (a call of a built-in, a poll point under every policy, where a thread blocked on a
/// free lock can run); the executions in which it never takes either loop unfairly and are
/// dropped. Every policy passes, and the endings equal those of the naive search without a watch
/// for loops.
#[test]
fn ex11_lock_never_taken_by_its_waiter_is_an_unfair_loop() {
    let p = Prog {
        start: 1000,
        ..Prog::new(vec![
            vec![Op::SpinWhileWith(1000, vec![Op::Acquire, Op::Release])],
            vec![Op::Acquire, Op::Add(1), Op::Release],
        ])
    }
    .build();
    for policy in Policy::ALL {
        let endings = agree(&p, policy, Some(1)).unwrap();
        let naive = support::naive::search(&p, policy, 1, 600, 200_000);
        assert!(
            naive.out_of_steps > 0,
            "{policy}: the naive search never spun out"
        );
        assert_eq!(endings, naive.endings, "{policy}");
        let v = check(
            &p,
            &header("lock-spin", policy),
            policy,
            &opts(Some(1), true, SearchFaults::default()),
        )
        .unwrap();
        assert!(matches!(v, Verdict::Pass { .. }), "{policy}: {v:?}");
    }
}

/// Replays `schedule` as `gilcheck replay` does.
fn replay(
    p: &Program,
    policy: Policy,
    schedule: &Schedule,
) -> Result<gilcheck::explore::Execution, String> {
    engine::replay(p, policy, schedule, 1_000_000, Table::Folded)
}

/// EX-11, EX-6: two threads that each spin while a value nobody changes is unchanged loop forever
/// even when they take turns: a fair loop, a failure. Its schedule string ends with `@N`, and
/// replays to the same failure; a string whose loop claim is false is refused.
#[test]
fn ex11_fair_loop_is_a_failure_that_replays() {
    let p = Prog {
        start: 1000,
        ..Prog::new(vec![vec![Op::SpinWhile(1000)], vec![Op::SpinWhile(1000)]])
    }
    .build();
    for policy in [Policy::Py39, Policy::Py311, Policy::Every] {
        let v = check(
            &p,
            &header("livelock", policy),
            policy,
            &opts(None, true, SearchFaults::default()),
        )
        .unwrap();
        let Verdict::Fail(c) = v else {
            panic!("{policy}: {v:?}")
        };
        let Some(Failure::Loop { from, to }) = c.execution.failure else {
            panic!("{policy}: {}", c.what)
        };
        assert_eq!(c.schedule.loop_from, Some(from));
        let text = c.schedule.encode();
        assert!(text.contains(&format!(",@{from}:")), "{text}");
        let again = replay(&p, policy, &Schedule::parse(&text).unwrap()).unwrap();
        assert_eq!(again.failure, Some(Failure::Loop { from, to }), "{policy}");
        // The same events with the loop said to start one step later: the state differs.
        let forged = Schedule {
            loop_from: Some(from + 1),
            ..c.schedule.clone()
        };
        let err = replay(&p, policy, &forged).unwrap_err();
        assert!(
            err.contains("does not") || err.contains("no decision"),
            "{err}"
        );
        // Without the claim, the schedule ends while the program goes on.
        let bare = Schedule {
            loop_from: None,
            ..c.schedule.clone()
        };
        assert!(replay(&p, policy, &bare).is_err());
        println!(
            "{policy}: {} ({} preemptions): {text}",
            c.what, c.execution.preemptions
        );
    }
}

/// EX-11: a thread that loops alone while the main thread waits for it (no decision anywhere:
/// nobody else can take the GIL) is found once its stretch without decisions is long, and the
/// failure replays.
#[test]
fn ex11_loop_without_decisions_is_found() {
    let p = Prog {
        start: 1000,
        ..Prog::new(vec![vec![Op::SpinWhile(1000)]])
    }
    .build();
    for policy in [Policy::Py39, Policy::Py313] {
        let v = check(
            &p,
            &header("spin-alone", policy),
            policy,
            &opts(None, true, SearchFaults::default()),
        )
        .unwrap();
        let Verdict::Fail(c) = v else {
            panic!("{policy}: {v:?}")
        };
        assert!(
            matches!(c.execution.failure, Some(Failure::Loop { .. })),
            "{}",
            c.what
        );
        let again = replay(&p, policy, &Schedule::parse(&c.schedule.encode()).unwrap()).unwrap();
        assert_eq!(again.failure, c.execution.failure);
        println!("{policy}: {}", c.what);
    }
}

/// EX-12, EX-7: the step count is not part of the state, so the budget applies to the
/// executions that run. A program that needs more steps than the budget is inconclusive with
/// and without the cache (never a pass, never a failure).
#[test]
fn ex12_budget_is_inconclusive_with_and_without_the_cache() {
    let p = Prog::new(vec![vec![Op::Loop(50, vec![Op::Add(1)])], vec![Op::Add(1)]]).build();
    for cache in [true, false] {
        let o = CheckOptions {
            max_steps: 300,
            ..opts(None, cache, SearchFaults::default())
        };
        let v = check(&p, &header("long", Policy::Py311), Policy::Py311, &o).unwrap();
        let Verdict::Inconclusive(c) = v else {
            panic!("cache {cache}: {v:?}")
        };
        assert_eq!(c.execution.stop, Some(Stop::Budget));
        assert_eq!(c.execution.steps, 300);
    }
}

/// EX-13, EX-7: for generated programs (two workers of one to three statements: large-integer
/// read–modify–writes, worker prints, `acquire(False)`/`release()` of a lock the main thread may
/// hold, `sys.setswitchinterval`, appends that record who finished when, sleeps, short loops),
/// under a policy drawn from every policy, the cached search reaches exactly the endings of the
/// full search up to one preemption, and gives the same verdict.
#[test]
fn proptest_cache_keeps_every_outcome() {
    let cases = if cfg!(debug_assertions) { 24 } else { 160 };
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (programs::strategy(), 0..Policy::ALL.len());
    let result = runner.run(&strategy, |(prog, policy)| {
        let p = prog.build();
        let policy = Policy::ALL[policy];
        agree(&p, policy, Some(1))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", p.source)))?;
        same_verdict(&p, policy, Some(1))
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", p.source)))?;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
