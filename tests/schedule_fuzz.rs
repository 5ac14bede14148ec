//! EX-6: no schedule string makes `replay` panic. proptest takes schedules that the explorer
//! really produced (random walks and counterexamples of several scenarios and policies, with lock
//! takes and loop markers among them), mutates their text — thread numbers, run lengths, lock
//! takes, loop markers, items dropped, doubled or swapped, header fields, single characters —
//! re-signs the checksum so that the mutation reaches the parser and the replay, and replays the
//! result as `gilcheck replay` would, under a panic catcher. Every string must either replay or
//! be refused with a message; none may panic. Longer runs: `fuzz/` (cargo-fuzz), see its README.

mod support;

use gilcheck::explore::engine::{self, Verdict, check};
use gilcheck::explore::world::Table;
use gilcheck::explore::{Execution, Header, Options, Schedule, execute};
use gilcheck::scenarios::{self, Params};
use gilcheck::vm::Policy;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::panic::{AssertUnwindSafe, catch_unwind};
use support::dfs;

/// Mutated strings per run (release; a quarter in debug builds).
const CASES: u32 = if cfg!(debug_assertions) { 1024 } else { 4096 };

fn signed(body: &str) -> String {
    format!("{body}:{:08x}", crc32fast::hash(body.as_bytes()))
}

/// Schedules the explorer produced: random walks and counterexamples.
fn seeds() -> Vec<String> {
    let mut out = Vec::new();
    let sizes = [
        ("seed-unsafe-increment", 2, 2, Policy::Py39),
        ("seed-locked-increment", 2, 2, Policy::Py39),
        ("seed-locked-increment", 3, 1, Policy::Every),
        ("call-between", 2, 1, Policy::Py311),
        ("io-bound", 3, 1, Policy::Py313),
        ("seed-refcount", 2, 1, Policy::Py38),
    ];
    for (name, threads, iterations, policy) in sizes {
        let params = Params {
            threads,
            iterations,
            processes: false,
        };
        let p = scenarios::build(name, params).unwrap();
        let header = Header {
            scenario: name.into(),
            policy: policy.name().into(),
            threads,
            iterations,
        };
        for seed in 0..4 {
            let mut walk = engine::RandomWalk::new(seed);
            let e: Execution = execute(&p, policy, &mut walk, Options::default());
            out.push(
                Schedule {
                    header: header.clone(),
                    events: e.events,
                    loop_from: None,
                }
                .encode(),
            );
        }
        // The counterexamples of the programs that fail (the others pass after a long search).
        if matches!(name, "seed-unsafe-increment" | "call-between")
            && let Verdict::Fail(c) = check(&p, &header, policy, &dfs(None)).unwrap()
        {
            out.push(c.schedule.encode());
        }
    }
    // A loop marker to mutate too.
    let body = out[0].rsplit_once(':').unwrap().0.to_string();
    out.push(signed(&format!("{body},@40")));
    out
}

/// One edit of a schedule string's text (before re-signing).
#[derive(Debug, Clone)]
enum Edit {
    /// Replaces the thread number of item `i`.
    Thread(usize, u32),
    /// Replaces the run length of item `i`.
    Count(usize, u64),
    /// Inserts a lock take `tg` before item `i`.
    Grab(usize, u32),
    /// Appends a loop marker `@n`.
    Loop(u64),
    Drop(usize),
    Double(usize),
    Swap(usize, usize),
    /// Replaces header field `f` (scenario, policy, size) with `text`.
    Field(usize, String),
    /// Replaces the character at `i` with `c`.
    Char(usize, char),
    /// Cuts the body at `i`.
    Cut(usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let field = prop_oneof![
        Just("seed-unsafe-increment".to_string()),
        Just("convoy".to_string()),
        Just("nope".to_string()),
        Just("3.9".to_string()),
        Just("3.13".to_string()),
        Just("2.7".to_string()),
        Just("2x1".to_string()),
        Just("64x3".to_string()),
        Just("0x0".to_string()),
        Just("4x100000000".to_string()),
        Just("x".to_string()),
        Just(String::new()),
    ];
    prop_oneof![
        3 => (0usize..40, prop_oneof![0u32..5, Just(u32::MAX), 100u32..200]).prop_map(|(i, t)| Edit::Thread(i, t)),
        3 => (0usize..40, prop_oneof![0u64..3, 1u64..200, Just(u64::MAX), Just(199_999_999)]).prop_map(|(i, n)| Edit::Count(i, n)),
        3 => (0usize..40, 0u32..5).prop_map(|(i, t)| Edit::Grab(i, t)),
        2 => prop_oneof![0u64..300, Just(u64::MAX)].prop_map(Edit::Loop),
        1 => (0usize..40).prop_map(Edit::Drop),
        1 => (0usize..40).prop_map(Edit::Double),
        1 => (0usize..40, 0usize..40).prop_map(|(a, b)| Edit::Swap(a, b)),
        1 => (1usize..4, field).prop_map(|(f, t)| Edit::Field(f, t)),
        2 => (0usize..400, prop::sample::select(vec!['0', '9', ',', '*', 'g', '@', ':', 'x', '-', ' ', 'é'])).prop_map(|(i, c)| Edit::Char(i, c)),
        1 => (0usize..400).prop_map(Edit::Cut),
    ]
}

/// Applies `edits` to the body of `token` (everything before the checksum) and re-signs it.
fn mutate(token: &str, edits: &[Edit]) -> String {
    let body = token.rsplit_once(':').unwrap().0;
    let mut fields: Vec<String> = body.split(':').map(String::from).collect();
    let mut items: Vec<String> = fields[4].split(',').map(String::from).collect();
    let at = |i: usize, n: usize| if n == 0 { 0 } else { i % n };
    let mut text_edits = Vec::new();
    for e in edits {
        let n = items.len();
        match e {
            Edit::Thread(i, t) if n > 0 => {
                let it = &mut items[at(*i, n)];
                let rest: String = it.chars().skip_while(|c| c.is_ascii_digit()).collect();
                *it = format!("{t}{rest}");
            }
            Edit::Count(i, c) if n > 0 => {
                let it = &mut items[at(*i, n)];
                if let Some((t, _)) = it.split_once('*') {
                    *it = format!("{t}*{c}");
                }
            }
            Edit::Grab(i, t) => items.insert(at(*i, n + 1), format!("{t}g")),
            Edit::Loop(k) => items.push(format!("@{k}")),
            Edit::Drop(i) if n > 0 => {
                items.remove(at(*i, n));
            }
            Edit::Double(i) if n > 0 => {
                let it = items[at(*i, n)].clone();
                items.insert(at(*i, n), it);
            }
            Edit::Swap(a, b) if n > 0 => items.swap(at(*a, n), at(*b, n)),
            Edit::Field(f, text) => fields[*f] = text.clone(),
            Edit::Char(..) | Edit::Cut(_) => text_edits.push(e.clone()),
            _ => {}
        }
    }
    fields[4] = items.join(",");
    let mut body = fields.join(":");
    for e in text_edits {
        let chars: Vec<char> = body.chars().collect();
        let n = chars.len().max(1);
        body = match e {
            Edit::Char(i, c) => chars
                .iter()
                .enumerate()
                .map(|(j, &x)| if j == i % n { c } else { x })
                .collect(),
            Edit::Cut(i) => chars.into_iter().take(i % n).collect(),
            _ => unreachable!(),
        };
    }
    signed(&body)
}

/// What `gilcheck replay` does with a string: parse it, make the program of its header (a
/// scenario, a version, a size), and replay it with a step budget. `Ok` whether it replays or
/// is refused; `Err` only for a panic.
fn replay_as_the_cli_does(token: &str) -> Result<&'static str, String> {
    let run = || -> Result<(), String> {
        let s = Schedule::parse_within(token, 100_000)?;
        let h = &s.header;
        let policy: Policy = h.policy.parse()?;
        let scenario = scenarios::find(&h.scenario).ok_or("unknown scenario")?;
        if h.threads == 0 || h.threads > 4 || h.iterations == 0 || h.iterations > 4 {
            return Err("size outside what this test builds".into());
        }
        let params = Params {
            threads: h.threads,
            iterations: h.iterations,
            processes: false,
        };
        let p = scenarios::build(scenario.name, params)?;
        engine::replay(&p, policy, &s, 100_000, Table::Folded).map(|_| ())
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(())) => Ok("replayed"),
        Ok(Err(_)) => Ok("refused"),
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())),
    }
}

/// EX-6: thousands of mutated, re-signed schedule strings replay or are refused; none panics.
/// Both outcomes must occur (a test where everything is refused would prove little).
#[test]
fn proptest_mutated_schedules_never_panic() {
    let seeds = seeds();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let counts = std::cell::RefCell::new((0usize, 0usize));
    let strategy = (0..seeds.len(), prop::collection::vec(edit_strategy(), 0..4));
    // Panics are caught and reported as failures; keep the default hook quiet meanwhile.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = runner.run(&strategy, |(i, edits)| {
        let token = mutate(&seeds[i], &edits);
        match replay_as_the_cli_does(&token) {
            Ok(what) => {
                let mut c = counts.borrow_mut();
                if what == "replayed" {
                    c.0 += 1;
                } else {
                    c.1 += 1;
                }
                Ok(())
            }
            Err(panic) => Err(TestCaseError::fail(format!("{token}\npanicked: {panic}"))),
        }
    });
    std::panic::set_hook(hook);
    if let Err(e) = result {
        panic!("{e}");
    }
    let (replayed, refused) = counts.into_inner();
    println!("{replayed} replayed, {refused} refused");
    assert!(
        replayed > 0 && refused > 0,
        "{replayed} replayed, {refused} refused"
    );
}
