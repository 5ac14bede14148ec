//! Every sentence of a verdict is true (EX-5, EX-10, EX-14, EX-21 of `spec/explore.md`): each claim
//! `check` prints — preemptions, the bounds explored without failure, exhaustiveness, the
//! number of executions, minimality — is checked against the naive search of
//! `tests/support/naive.rs`, which shares nothing with the explorer's own search, and against
//! a count of the executions actually run.

mod support;

use gilcheck::explore::engine::{self, CheckOptions, Engine, Replay, Verdict, check};
use gilcheck::explore::world::{Table, executions_run};
use gilcheck::explore::{Decision, Event, Oracle, Schedule, execute};
use gilcheck::vm::{Policy, Program};
use std::collections::HashMap;
use support::programs::{Op, Prog};
use support::{dfs, header, scenario};

/// The number after the first `key` in `text`, digits grouped by spaces as gilcheck prints them.
fn number_after(text: &str, key: &str) -> Option<usize> {
    let rest = &text[text.find(key)? + key.len()..];
    let rest = rest.trim_start();
    let mut digits = String::new();
    let chars: Vec<char> = rest.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if c == ' '
            && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())
            && !digits.is_empty()
        {
            continue;
        } else {
            break;
        }
    }
    digits.parse().ok()
}

/// Replays a schedule, counting its preemptions independently: switches away from a holder at
/// a poll point, plus lock takes without the GIL (each is an event of the schedule).
struct Counting {
    inner: Replay,
    switches: usize,
}

impl Oracle for Counting {
    fn choose(&mut self, d: &Decision) -> usize {
        let i = self.inner.choose(d);
        if matches!(d, Decision::Poll { .. }) && i > 0 {
            self.switches += 1;
        }
        i
    }
    fn grab_now(&mut self) -> Option<u32> {
        self.inner.grab_now()
    }
    fn on_step(&mut self, t: u32) {
        self.inner.on_step(t)
    }
    fn invalid(&self) -> Option<String> {
        self.inner.invalid()
    }
}

fn preemptions_of(p: &Program, policy: Policy, s: &Schedule) -> usize {
    let mut o = Counting {
        inner: Replay::new(s.events.clone()),
        switches: 0,
    };
    let e = execute(p, policy, &mut o, Default::default());
    assert!(o.invalid().is_none(), "{:?}", o.invalid());
    let _ = e;
    o.switches
        + s.events
            .iter()
            .filter(|e| matches!(e, Event::Grab(_)))
            .count()
}

/// The naive search's answer to "does any schedule with at most `bound` preemptions fail?",
/// memoized per program and bound.
struct Oracles<'p> {
    program: &'p Program,
    policy: Policy,
    memo: HashMap<usize, bool>,
}

impl Oracles<'_> {
    fn some_failure_within(&mut self, bound: usize) -> bool {
        let (p, policy) = (self.program, self.policy);
        *self.memo.entry(bound).or_insert_with(|| {
            let found = support::naive::search(p, policy, bound, 100_000, 2_000_000);
            assert_eq!(found.out_of_steps, 0);
            found.first_failure.is_some()
        })
    }

    /// "Exhaustive, every schedule": no failing schedule at any bound. The naive search has no
    /// state cache, so where every interleaving is too many (over 50 000) it is asked up to 2
    /// preemptions, and the claim is checked that far (and said so).
    fn no_failure_at_all(&mut self) -> String {
        let (p, policy) = (self.program, self.policy);
        match support::naive::try_search(p, policy, 64, 100_000, 50_000) {
            Some(found) => {
                assert!(found.first_failure.is_none());
                assert!(!found.bounded);
                "exhaustive".into()
            }
            None => {
                assert!(!self.some_failure_within(2));
                "exhaustive (checked up to 2)".into()
            }
        }
    }
}

/// Checks every claim of `v`; `made` is the number of executions the check ran, `first` the
/// number it took to find the first schedule.
fn verify(
    what: &str,
    o: &mut Oracles<'_>,
    opts: &CheckOptions,
    v: &Verdict,
    made: usize,
    first: usize,
) -> Vec<String> {
    let mut checked = Vec::new();
    let mut claim = |c: String| checked.push(c);
    match v {
        Verdict::Pass { line, executions } => {
            assert_eq!(*executions, made - first, "{what}: {line}");
            claim(format!("{executions} executions"));
            if let Some(n) = number_after(line, "no failure in the first") {
                assert_eq!(n, *executions, "{what}: {line}");
            }
            if line.starts_with("exhaustive, every schedule") {
                claim(o.no_failure_at_all());
            }
            if let Some(n) = number_after(line, "exhaustive up to") {
                assert!(!o.some_failure_within(n), "{what}: {line}");
                claim(format!("up to {n}"));
            }
            if let Some(n) = number_after(line, "every schedule with at most") {
                assert!(!o.some_failure_within(n), "{what}: {line}");
                claim(format!("at most {n}"));
            }
            if line.contains("sampled, not a proof") {
                assert_eq!(
                    number_after(line, "no failure in"),
                    Some(opts.max_executions),
                    "{what}: {line}"
                );
            }
        }
        Verdict::Fail(c) | Verdict::Inconclusive(c) => {
            let found = &c.found;
            let k = c.execution.preemptions;
            assert_eq!(
                preemptions_of(o.program, o.policy, &c.schedule),
                k,
                "{what}: {found}"
            );
            let replayed =
                engine::replay(o.program, o.policy, &c.schedule, opts.max_steps, Table::Off)
                    .unwrap();
            assert_eq!(replayed.outcome, c.execution.outcome, "{what}");
            claim(format!("{k} preemptions"));
            if let Some(b) = number_after(found, "preemption bound") {
                assert!(k <= b, "{what}: {found}");
                assert_eq!(
                    number_after(found, &format!("preemption bound {b}:")),
                    Some(k),
                    "{what}: {found}"
                );
            }
            for key in ["every schedule with at most", "every schedule of at most"] {
                if let Some(n) = number_after(found, key) {
                    assert!(!o.some_failure_within(n), "{what}: {found}");
                    assert!(n < k || found.contains("not minimized"), "{what}: {found}");
                    claim(format!("none within {n}"));
                }
            }
            if found.contains("no schedule with fewer preemptions exists")
                || found.contains("no schedule has fewer")
            {
                assert_eq!(k, 0, "{what}: {found}");
                assert!(!found.contains("not minimized"), "{what}: {found}");
            }
            if let Some(m) = number_after(found, "minimized it to") {
                assert_eq!(m, k, "{what}: {found}");
            }
            if found.contains("not minimized") {
                assert!(!found.contains("no schedule has fewer"), "{what}: {found}");
            }
            // Executions: the first schedule's, the search's, minimization's, and the replay
            // that made the step table.
            let search = number_after(found, "at execution").unwrap_or(0);
            let minimizing = number_after(found, "to 1 preemption in")
                .or_else(|| number_after(found, &format!("to {k} preemptions in")))
                .or_else(|| number_after(found, "(minimization:"))
                .or_else(|| number_after(found, "minimization stopped after"))
                .unwrap_or(0);
            if !found.starts_with("found in") && !found.starts_with("it was the first") {
                assert_eq!(made, first + search + minimizing + 1, "{what}: {found}");
                claim(format!("{search} + {minimizing} executions"));
            }
        }
    }
    checked
}

/// The option sets of the claims test.
fn option_sets() -> Vec<(String, CheckOptions)> {
    let mut v = vec![
        ("dfs".to_string(), dfs(None)),
        ("dfs --preemptions 0".into(), dfs(Some(0))),
        ("dfs --preemptions 1".into(), dfs(Some(1))),
        (
            "dfs --max-executions 5".into(),
            CheckOptions {
                max_executions: 5,
                ..dfs(None)
            },
        ),
        (
            "dfs --no-state-cache --preemptions 2".into(),
            CheckOptions {
                state_cache: false,
                ..dfs(Some(2))
            },
        ),
    ];
    for seed in 0..2 {
        for engine in [Engine::Pct, Engine::Random] {
            v.push((
                format!("{} --seed {seed}", engine.name()),
                CheckOptions {
                    engine,
                    seed,
                    max_executions: 300,
                    preemptions: (engine == Engine::Pct).then_some(2),
                    ..dfs(None)
                },
            ));
        }
    }
    v
}

/// EX-14, EX-5, EX-10: for the built-in scenarios at 2 × 1 under 3.9, 3.11 and `every`, with
/// DFS (complete, bounded, capped, without the cache), PCT and random, every claim of the
/// verdict holds: the counterexample's preemptions are its schedule's; the bounds said to be
/// explored without failure have no failing schedule in the naive search; "exhaustive" finds
/// none; the counts are the executions that were run.
#[test]
fn ex14_every_claim_of_a_verdict_holds() {
    let mut claims = 0;
    for name in [
        "seed-unsafe-increment",
        "seed-locked-increment",
        "call-between",
        "io-bound",
        "seed-refcount",
    ] {
        let p = scenario(name, 2, 1);
        for policy in [Policy::Py39, Policy::Py311, Policy::Every] {
            let mut o = Oracles {
                program: &p,
                policy,
                memo: HashMap::new(),
            };
            let before = executions_run();
            engine::reference(&p, policy, 1_000_000);
            let first = (executions_run() - before) as usize;
            for (label, opts) in option_sets() {
                let what = format!("{name} --python {policy} {label}");
                let before = executions_run();
                let v = check(&p, &header(name, policy), policy, &opts).unwrap();
                let made = (executions_run() - before) as usize;
                let checked = verify(&what, &mut o, &opts, &v, made, first);
                claims += checked.len();
                println!("{what}: {checked:?}");
            }
        }
    }
    println!("{claims} claims checked");
    assert!(claims > 100, "only {claims} claims");
}

/// EX-14, EX-3: a lock taken without the GIL is a preemption, counted once: in every execution
/// of the locked increment under 3.9 (every schedule), the preemptions the execution reports
/// equal those its DFS oracle paid for, and an execution with k lock takes has at least k.
#[test]
fn ex14_preemptions_counted_once_per_switch_and_lock_take() {
    let p = scenario("seed-locked-increment", 2, 2);
    let mut search = engine::Dfs::with_state_cache(usize::MAX);
    let (mut executions, mut with_grabs) = (0, 0);
    loop {
        let e = execute(&p, Policy::Py39, &mut search, Default::default());
        executions += 1;
        assert_eq!(e.preemptions, search.used(), "execution {executions}");
        let grabs = e
            .events
            .iter()
            .filter(|ev| matches!(ev, Event::Grab(_)))
            .count();
        assert!(e.preemptions >= grabs, "execution {executions}");
        if grabs > 0 {
            with_grabs += 1;
        }
        if !search.advance() {
            break;
        }
    }
    assert!(
        with_grabs > 0,
        "no lock take without the GIL in {executions} executions"
    );
    println!("{executions} executions, {with_grabs} with lock takes");
}

/// EX-10: a failure that needs no preemption — two workers print "A" and "B", and which prints
/// first is the free choice of the thread that takes the GIL when the main thread waits — is
/// found by PCT and random walks under `every` with preemptions to spare, and minimized to 0.
/// (A minimization that started at bound 1 would report 1.)
#[test]
fn ex10_minimization_reaches_zero_preemptions() {
    let p = Prog::new(vec![vec![Op::Print("A")], vec![Op::Print("B")]]).build();
    let mut had_more = 0;
    for engine in [Engine::Pct, Engine::Random] {
        for seed in 0..6 {
            let opts = CheckOptions {
                engine,
                seed,
                max_executions: 1_000,
                preemptions: (engine == Engine::Pct).then_some(3),
                ..dfs(None)
            };
            let v = check(&p, &header("prints", Policy::Every), Policy::Every, &opts).unwrap();
            let Verdict::Fail(c) = v else {
                panic!("{engine:?} {seed}: {v:?}")
            };
            assert_eq!(
                c.execution.preemptions, 0,
                "{engine:?} seed {seed}: {}",
                c.found
            );
            assert!(c.found.contains("no schedule has fewer"), "{}", c.found);
            if number_after(&c.found, "it had").is_some_and(|n| n > 0) {
                had_more += 1;
            }
        }
    }
    assert!(had_more > 0, "no sampled failure needed minimizing");
    println!("{had_more} of 12 sampled failures were minimized to 0 preemptions");
}

/// EX-10, EX-14: when the minimization runs out of `--max-executions`, the verdict does not claim
/// that no schedule with fewer preemptions fails: it says how far it got.
#[test]
fn ex10_minimization_cut_short_says_so() {
    let p = scenario("seed-unsafe-increment", 3, 40);
    let opts = CheckOptions {
        engine: Engine::Pct,
        max_executions: 3,
        preemptions: Some(5),
        ..dfs(None)
    };
    let mut cut_short = 0;
    for seed in 0..8 {
        let v = check(
            &p,
            &header("inc", Policy::Py39),
            Policy::Py39,
            &CheckOptions { seed, ..opts },
        )
        .unwrap();
        let Verdict::Fail(c) = v else { continue };
        if c.execution.preemptions == 0 {
            continue;
        }
        if c.found.contains("not minimized") {
            cut_short += 1;
            assert!(!c.found.contains("no schedule has fewer"), "{}", c.found);
            assert!(c.found.contains("may fail too"), "{}", c.found);
        } else {
            assert!(
                c.found.contains("every schedule with at most"),
                "{}",
                c.found
            );
        }
        println!("seed {seed}: {}", c.found);
    }
    assert!(cut_short > 0, "no minimization was cut short");
}
