//! The checks of the stateful search, of the reductions and of the parallel search (EX-16,
//! EX-17, EX-18, EX-19, EX-20 of `spec/explore.md`; EX-20's light poll points with no
//! preemption left are on whenever the reduction is). The stateful search must explore exactly what re-running every
//! execution from the start explores (the same executions, pruned at the same states, the same
//! endings, the same verdict and counterexample); the partial-order reduction and the
//! holder-blind state of the unbounded phase must keep every ending and every verdict of the
//! search without them. Compared on every built-in scenario under every policy, on every
//! conformance program, and on generated programs under proptest. Each has a twin that plants
//! the mistake the check exists for, and the check must catch it.

mod support;

use gilcheck::explore::engine::{CheckOptions, Exploration, SearchFaults, Verdict, check};
use gilcheck::explore::world::StateFaults;
use gilcheck::scenarios::SCENARIOS;
use gilcheck::vm::{Policy, Program};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::programs;
use support::{dfs, header, scenario};

/// The preemption bound of the comparisons (smaller in debug builds, where executions are
/// about ten times slower).
const BOUND: usize = if cfg!(debug_assertions) { 1 } else { 2 };

/// How a search is run.
#[derive(Debug, Clone, Copy)]
struct How {
    stateful: bool,
    reduce: bool,
    cache: bool,
    faults: StateFaults,
}

const PLAIN: How = How {
    stateful: false,
    reduce: false,
    cache: true,
    faults: StateFaults {
        ignore_ints: false,
        ignore_lock_state: false,
        ignore_interval: false,
        ignore_output: false,
        restore_keeps_heap: false,
        store_subscript_is_local: false,
        spent_never_fingerprinted: false,
    },
};

/// The reference of the reductions' checks: no reduction, the cache, stateful (which EX-16
/// shows explores what re-running does, only faster).
const UNREDUCED: How = How {
    stateful: true,
    ..PLAIN
};

/// The full search: every interleaving, no cache, no reduction.
const FULL: How = How {
    cache: false,
    ..UNREDUCED
};

fn opts(bound: Option<usize>, how: How) -> CheckOptions {
    opts_within(bound, how, 2_000_000)
}

fn opts_within(bound: Option<usize>, how: How, cap: usize) -> CheckOptions {
    CheckOptions {
        state_cache: how.cache,
        stateful: how.stateful,
        reduce: how.reduce,
        faults: SearchFaults {
            state: how.faults,
            ..SearchFaults::default()
        },
        max_executions: cap,
        max_steps: 100_000,
        ..dfs(bound)
    }
}

fn explore(
    p: &Program,
    policy: Policy,
    bound: Option<usize>,
    how: How,
) -> Result<Exploration, String> {
    let x = gilcheck::explore::engine::explore_all(p, policy, &opts(bound, how))?;
    assert!(
        !x.capped,
        "the search was cut short at {} executions",
        x.executions
    );
    Ok(x)
}

/// The verdict of `check`, as a comparable line: its kind, what failed, and (when `schedule`)
/// the counterexample's schedule.
fn verdict(p: &Program, policy: Policy, bound: Option<usize>, how: How, schedule: bool) -> String {
    let h = header(&p.name, policy);
    match check(p, &h, policy, &opts(bound, how)) {
        Ok(Verdict::Pass { line, .. }) if schedule => format!("pass: {line}"),
        Ok(Verdict::Pass { .. }) => "pass".into(),
        Ok(Verdict::Fail(c)) if schedule => {
            format!("fail: {} / {} / {}", c.what, c.found, c.schedule.encode())
        }
        Ok(Verdict::Fail(c)) => format!(
            "fail with {} preemptions: {}",
            c.execution.preemptions, c.what
        ),
        Ok(Verdict::Inconclusive(c)) => format!("inconclusive: {}", c.what),
        Err(e) => format!("error: {e}"),
    }
}

/// EX-16: the stateful search and the search that re-runs each execution explore the same
/// executions, prune the same ones, reach the same endings, and give the same verdict with the
/// same counterexample and the same counts.
fn same_search(
    p: &Program,
    policy: Policy,
    bound: Option<usize>,
    reduce: bool,
) -> Result<String, String> {
    let rerun = How { reduce, ..PLAIN };
    let stateful = How {
        stateful: true,
        ..rerun
    };
    let (a, b) = (
        explore(p, policy, bound, stateful),
        explore(p, policy, bound, rerun),
    );
    match (a, b) {
        (Err(a), Err(b)) if a == b => return Ok(format!("refused alike: {a}")),
        (Ok(a), Ok(b)) => {
            let counts = |x: &Exploration| (x.executions, x.pruned, x.out_of_steps, x.bounded);
            if counts(&a) != counts(&b) || a.endings != b.endings {
                return Err(format!(
                    "{policy}: stateful {:?} with {} endings, re-run {:?} with {}",
                    counts(&a),
                    a.endings.len(),
                    counts(&b),
                    b.endings.len()
                ));
            }
        }
        (a, b) => return Err(format!("{policy}: {:?} / {:?}", a.err(), b.err())),
    }
    let (va, vb) = (
        verdict(p, policy, bound, stateful, true),
        verdict(p, policy, bound, rerun, true),
    );
    if va != vb {
        return Err(format!(
            "{policy}: verdicts differ:\n  stateful: {va}\n  re-run:   {vb}"
        ));
    }
    Ok(va.chars().take(60).collect())
}

/// EX-17, EX-18: the reduced search (stateful, with the cache) reaches exactly the endings of
/// `reference` and gives the same kind of verdict (a failure with the same number of
/// preemptions and the same reason).
fn same_endings(
    p: &Program,
    policy: Policy,
    bound: Option<usize>,
    reference: How,
) -> Result<usize, String> {
    same_endings_within(p, policy, bound, reference, 2_000_000)
        .map(|n| n.expect("the reference search ends within its cap"))
}

/// [`same_endings`], when the reference search ends within `cap` executions (`None` if not).
fn same_endings_within(
    p: &Program,
    policy: Policy,
    bound: Option<usize>,
    reference: How,
    cap: usize,
) -> Result<Option<usize>, String> {
    let b = gilcheck::explore::engine::explore_all(p, policy, &opts_within(bound, reference, cap));
    if b.as_ref().is_ok_and(|x| x.capped) {
        return Ok(None);
    }
    let reduced = How {
        stateful: true,
        reduce: true,
        ..PLAIN
    };
    match (explore(p, policy, bound, reduced), b) {
        (Err(a), Err(b)) if a == b => Ok(Some(0)),
        (Ok(a), Ok(b)) => {
            if a.endings != b.endings || a.bounded != b.bounded {
                return Err(format!(
                    "{policy} bound {bound:?}: the reduced search found {} endings, the other {}\n  lost: {:?}\n  extra: {:?}",
                    a.endings.len(),
                    b.endings.len(),
                    b.endings.difference(&a.endings).collect::<Vec<_>>(),
                    a.endings.difference(&b.endings).collect::<Vec<_>>(),
                ));
            }
            let (va, vb) = (
                verdict(p, policy, bound, reduced, false),
                verdict(p, policy, bound, reference, false),
            );
            if va != vb {
                return Err(format!(
                    "{policy} bound {bound:?}: verdicts differ: {va} / {vb}"
                ));
            }
            Ok(Some(b.endings.len()))
        }
        (a, b) => Err(format!("{policy}: {:?} / {:?}", a.err(), b.err())),
    }
}

/// The conformance programs at 2 threads × 1 iteration.
fn conformance() -> Vec<(String, Program)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "{} conformance programs", files.len());
    files
        .into_iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let source = std::fs::read_to_string(&f).unwrap();
            let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
            let path = f.display().to_string();
            // The smallest size the program takes: 2 threads × 1 iteration where both can be
            // set, else what can be.
            let p = [
                (Some(2), Some(1)),
                (None, Some(1)),
                (Some(2), None),
                (None, None),
            ]
            .into_iter()
            .find_map(|(threads, iterations)| {
                let shrink = gilcheck::compile::Shrink {
                    threads,
                    iterations,
                };
                gilcheck::compile::compile(&source, &path, &stem, &shrink).ok()
            })
            .unwrap_or_else(|| panic!("{name} does not compile"))
            .0;
            (name, p)
        })
        .collect()
}

/// EX-16: on every built-in scenario under every policy at 2 × 1, up to two preemptions (one
/// for convoy and in debug builds) and unbounded, with and without the reduction.
#[test]
fn ex16_stateful_search_explores_what_rerunning_does() {
    for s in SCENARIOS {
        let p = scenario(s.name, 2, 1);
        let bound = if s.name == "convoy" { 1 } else { BOUND };
        for policy in Policy::ALL {
            for (b, reduce) in [(Some(bound), false), (Some(bound), true), (None, true)] {
                let v = same_search(&p, policy, b, reduce)
                    .unwrap_or_else(|e| panic!("{} {b:?} reduce {reduce}: {e}", s.name));
                println!("{} {policy} {b:?} reduce {reduce}: {v}", s.name);
            }
        }
    }
}

/// EX-16 on every conformance program at 2 × 1 under 3.9, 3.11 and every, up to one
/// preemption, with the reduction.
#[test]
fn ex16_stateful_search_explores_what_rerunning_does_on_the_conformance_programs() {
    for (name, p) in conformance() {
        for policy in [Policy::Py39, Policy::Py311, Policy::Every] {
            let v =
                same_search(&p, policy, Some(1), true).unwrap_or_else(|e| panic!("{name}: {e}"));
            println!("{name} {policy}: {v}");
        }
    }
}

/// EX-17, EX-18: on every built-in scenario under every policy at 2 × 1, the reduced search
/// reaches exactly the endings of the full search that executes every interleaving, up to two
/// preemptions (one for convoy and in debug builds), and unbounded exactly those of the
/// unreduced search with the cache (itself checked against the full search by EX-13), with the
/// same verdicts.
#[test]
fn ex17_reduced_search_keeps_every_outcome_of_every_scenario() {
    let full = FULL;
    for s in SCENARIOS {
        let p = scenario(s.name, 2, 1);
        let bound = if s.name == "convoy" { 1 } else { BOUND };
        for policy in Policy::ALL {
            let n = same_endings(&p, policy, Some(bound), full)
                .unwrap_or_else(|e| panic!("{}: {e}", s.name));
            let m = same_endings(&p, policy, None, UNREDUCED)
                .unwrap_or_else(|e| panic!("{}: {e}", s.name));
            println!(
                "{} {policy}: {n} endings up to {bound}, {m} unbounded",
                s.name
            );
        }
    }
}

/// EX-17, EX-18 on every conformance program at 2 × 1 under 3.9, 3.11 and every: up to one
/// preemption against the full search, and unbounded against the unreduced search with the
/// cache where that ends within 100 000 executions (all but the few whose workers loop until the
/// program ends, which are compared up to one preemption only, and say so).
#[test]
fn ex17_reduced_search_keeps_every_outcome_of_the_conformance_programs() {
    let full = FULL;
    let mut unbounded = 0;
    for (name, p) in conformance() {
        for policy in [Policy::Py39, Policy::Py311, Policy::Every] {
            let n =
                same_endings(&p, policy, Some(1), full).unwrap_or_else(|e| panic!("{name}: {e}"));
            let m = same_endings_within(&p, policy, None, UNREDUCED, 100_000)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            unbounded += usize::from(m.is_some());
            let m = m.map_or_else(
                || "not compared unbounded (more than 100 000 executions)".to_string(),
                |m| format!("{m} unbounded"),
            );
            println!("{name} {policy}: {n} endings up to 1, {m}");
        }
    }
    assert!(unbounded >= 120, "only {unbounded} compared unbounded");
}

/// EX-17 at the seed's size: the locked increment at 2 × 2 under every, unbounded, reaches the
/// one ending of the unreduced search; the unsafe increment at 2 × 2 under 3.9 and every, all
/// of its endings.
#[test]
fn ex17_reduced_search_keeps_every_outcome_at_the_seeds_sizes() {
    for (name, threads, iterations, policies) in [
        ("seed-locked-increment", 2, 2, &[Policy::Every][..]),
        (
            "seed-unsafe-increment",
            2,
            2,
            &[Policy::Py39, Policy::Every][..],
        ),
    ] {
        let p = scenario(name, threads, iterations);
        for &policy in policies {
            let n =
                same_endings(&p, policy, None, UNREDUCED).unwrap_or_else(|e| panic!("{name}: {e}"));
            println!("{name} {threads}×{iterations} {policy}: {n} endings");
        }
    }
}

/// The twin of EX-17: a reduction that takes a write of shared state (`STORE_SUBSCR`) for a
/// local instruction defers every preemption between the read and the write of the seed's
/// unsafe increment past the write, and so loses the lost update under 3.9; the comparison
/// catches it.
#[test]
fn ex17_twin_shared_write_taken_for_local_is_caught() {
    let p = scenario("seed-unsafe-increment", 2, 1);
    let twin = How {
        stateful: true,
        reduce: true,
        faults: StateFaults {
            store_subscript_is_local: true,
            ..PLAIN.faults
        },
        ..PLAIN
    };
    let broken = explore(&p, Policy::Py39, None, twin).unwrap();
    let right = explore(&p, Policy::Py39, None, UNREDUCED).unwrap();
    assert!(right.endings.len() > 1, "{:?}", right.endings);
    assert!(broken.endings.is_subset(&right.endings));
    assert!(
        broken.endings.len() < right.endings.len(),
        "the twin lost nothing: {:?}",
        broken.endings
    );
    assert!(same_endings_with(&p, twin).is_err());
}

fn same_endings_with(p: &Program, twin: How) -> Result<(), String> {
    let a = explore(p, Policy::Py39, None, twin)?;
    let b = explore(p, Policy::Py39, None, UNREDUCED)?;
    if a.endings == b.endings {
        Ok(())
    } else {
        Err(format!(
            "{} endings against {}",
            a.endings.len(),
            b.endings.len()
        ))
    }
}

/// The twin of EX-16: a stateful search that takes an execution up without putting the heap
/// back where it was at the decision explores something else than the search that re-runs
/// executions, and the comparison catches it.
#[test]
fn ex16_twin_restore_that_keeps_the_heap_is_caught() {
    let p = scenario("seed-unsafe-increment", 2, 1);
    let twin = How {
        stateful: true,
        faults: StateFaults {
            restore_keeps_heap: true,
            ..PLAIN.faults
        },
        ..PLAIN
    };
    let broken = explore(&p, Policy::Py39, Some(1), twin);
    let right = explore(&p, Policy::Py39, Some(1), PLAIN).unwrap();
    let caught = match broken {
        Err(_) => true,
        Ok(b) => {
            b.endings != right.endings
                || b.executions != right.executions
                || b.pruned != right.pruned
        }
    };
    assert!(
        caught,
        "the twin explored what the re-running search explores"
    );
}

/// Two jobs (EX-19) on `p`, unbounded: the endings, and the verdict with its counterexample.
fn two_jobs(p: &Program, policy: Policy, faults: SearchFaults) -> (Exploration, String) {
    let o = CheckOptions {
        jobs: 2,
        faults,
        ..opts(None, UNREDUCED_REDUCED)
    };
    let x = gilcheck::explore::engine::explore_all(p, policy, &o).unwrap();
    assert!(!x.capped);
    let h = header(&p.name, policy);
    let v = match check(p, &h, policy, &o) {
        Ok(Verdict::Pass { .. }) => "pass".to_string(),
        Ok(Verdict::Fail(c)) => format!("fail: {} / {} / {}", c.what, c.found, c.schedule.encode()),
        other => format!("{other:?}"),
    };
    (x, v)
}

/// The search two jobs are compared with: stateful, reduced, cached, one job.
const UNREDUCED_REDUCED: How = How {
    stateful: true,
    reduce: true,
    ..PLAIN
};

/// EX-19: on every scenario under 3.9, 3.11 and every at 2 × 1, and on the locked increment at
/// 3 × 2 under every, two jobs reach exactly the endings of one, and give the same verdict
/// with the same counterexample.
#[test]
fn ex19_parallel_search_reaches_what_one_job_does() {
    let mut programs: Vec<(Program, Vec<Policy>)> = SCENARIOS
        .iter()
        .map(|s| {
            (
                scenario(s.name, 2, 1),
                vec![Policy::Py39, Policy::Py311, Policy::Every],
            )
        })
        .collect();
    programs.push((scenario("seed-locked-increment", 3, 2), vec![Policy::Every]));
    for (p, policies) in programs {
        for policy in policies {
            let one = explore(&p, policy, None, UNREDUCED_REDUCED).unwrap();
            let (two, v2) = two_jobs(&p, policy, SearchFaults::default());
            assert_eq!(one.endings, two.endings, "{} {policy}", p.name);
            let h = header(&p.name, policy);
            let v1 = match check(&p, &h, policy, &opts(None, UNREDUCED_REDUCED)) {
                Ok(Verdict::Pass { .. }) => "pass".to_string(),
                Ok(Verdict::Fail(c)) => {
                    format!("fail: {} / {} / {}", c.what, c.found, c.schedule.encode())
                }
                other => format!("{other:?}"),
            };
            assert_eq!(v1, v2, "{} {policy}", p.name);
            println!(
                "{} {policy}: {} endings, {}",
                p.name,
                one.endings.len(),
                &v1[..4]
            );
        }
    }
}

/// The twin of EX-19: a parallel search whose jobs run one execution of each part and leave
/// the rest loses an ending of the unsafe increment under 3.9, and the comparison catches it.
#[test]
fn ex19_twin_parts_cut_short_are_caught() {
    let p = scenario("seed-unsafe-increment", 3, 2);
    let one = explore(&p, Policy::Py39, None, UNREDUCED_REDUCED).unwrap();
    let (two, _) = two_jobs(
        &p,
        Policy::Py39,
        SearchFaults {
            part_cut_short: true,
            ..SearchFaults::default()
        },
    );
    assert!(two.endings.is_subset(&one.endings));
    assert!(
        two.endings.len() < one.endings.len(),
        "the twin lost nothing: {} endings",
        two.endings.len()
    );
}

/// EX-16, EX-17, EX-18 for generated programs (as EX-13's: read–modify–writes of large
/// integers, prints, `acquire(False)`/`release()`, `sys.setswitchinterval`, appends, sleeps,
/// short loops) under a policy drawn from every policy: the stateful search explores what the
/// re-running one does, and the reduced search reaches exactly the endings of the full search
/// up to one preemption and of the unreduced one unbounded (where that ends within 100 000
/// executions).
#[test]
fn proptest_stateful_and_reduced_searches_agree() {
    let cases = if cfg!(debug_assertions) { 16 } else { 120 };
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (programs::strategy(), 0..Policy::ALL.len());
    let full = FULL;
    let result = runner.run(&strategy, |(prog, policy)| {
        let p = prog.build();
        let policy = Policy::ALL[policy];
        let fail = |e: String| TestCaseError::fail(format!("{e}\n{}", p.source));
        same_search(&p, policy, Some(1), true).map_err(fail)?;
        same_endings(&p, policy, Some(1), full).map_err(fail)?;
        // Unbounded where the unreduced search ends within 100 000 executions (a generated
        // loop with sleeps can make the unbounded space large).
        same_endings_within(&p, policy, None, UNREDUCED, 100_000).map_err(fail)?;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
