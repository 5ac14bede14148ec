//! The explorer's rules (EX-1 … EX-10, EX-20, EX-21 and EX-22 of `spec/explore.md`): where switches may happen, what
//! is a failure, what each engine covers, schedules and replay, the state cache.

mod support;
use support::scenario;

use gilcheck::explore::engine::{self, CheckOptions, Dfs, Engine, Verdict, check};
use gilcheck::explore::world::{Stop, Table};
use gilcheck::explore::{Event, Failure, Header, Options, Schedule, execute};
use gilcheck::vm::Policy;
use gilcheck::vm::code::{CmpOp, CodeBuilder, Instr, Program};
use std::collections::BTreeSet;
use std::sync::Arc;
use support::programs::{Op, Prog};
use support::{dfs, module, threads_program, verdict, with_lock};

fn header(name: &str, policy: Policy, threads: u32, iterations: u64) -> Header {
    Header {
        scenario: name.into(),
        policy: policy.name().into(),
        threads,
        iterations,
    }
}

fn opts(engine: Engine) -> CheckOptions {
    CheckOptions {
        engine,
        max_executions: 10_000,
        ..dfs(None)
    }
}

fn fail(v: Verdict) -> Box<engine::Counterexample> {
    match v {
        Verdict::Fail(c) => c,
        Verdict::Pass { line, .. } => panic!("expected a failure, got: {line}"),
        Verdict::Inconclusive(c) => panic!("expected a failure, got: {}", c.what),
    }
}

/// EX-1: the 3.9 counterexample switches threads right after `BINARY_OP`, a poll point of 3.9
/// but not of 3.11: it replays under 3.9 and is refused under 3.11, which names the step.
#[test]
fn ex1_replay_rejects_a_switch_between_poll_points() {
    let p = scenario("seed-unsafe-increment", 2, 1);
    let c = fail(
        check(
            &p,
            &header("seed-unsafe-increment", Policy::Py39, 2, 1),
            Policy::Py39,
            &dfs(None),
        )
        .unwrap(),
    );
    let ok = engine::replay(&p, Policy::Py39, &c.schedule, 10_000, Table::Off).unwrap();
    assert_eq!(ok.outcome, c.execution.outcome);
    let err = engine::replay(&p, Policy::Py311, &c.schedule, 10_000, Table::Off).unwrap_err();
    assert!(err.contains("not at a poll point"), "{err}");
    println!("3.11 refuses the 3.9 schedule: {err}");
}

/// Two threads that take locks `a` and `b` in the given orders.
fn two_lock_program(first: [&'static str; 2], second: [&'static str; 2]) -> Program {
    let worker = |order: [&'static str; 2]| -> support::Body {
        Box::new(move |f| with_lock(f, order[0], |f| with_lock(f, order[1], |_| {})))
    };
    threads_program(&["a", "b"], vec![worker(first), worker(second)])
}

/// EX-2: a lock-order inversion deadlocks in some schedule under 3.9 and `every`, and the failure
/// names every wait; its twin, with both threads taking the locks in the same order, never does.
/// Under 3.10–3.13 this exact program cannot deadlock: no poll point falls between the two
/// `BEFORE_WITH`s (taking a free lock does not release the GIL), so a thread takes both locks
/// without being switched away — the explorer shows that too.
#[test]
fn ex2_deadlock_reported() {
    let inverted = two_lock_program(["a", "b"], ["b", "a"]);
    let ordered = two_lock_program(["a", "b"], ["a", "b"]);
    for policy in [Policy::Py39, Policy::Every] {
        let c = fail(verdict(&inverted, policy, &dfs(None)));
        assert!(c.what.starts_with("deadlock"), "{}", c.what);
        assert!(
            c.what.contains("Thread-1 blocks on") && c.what.contains("Thread-2 blocks on"),
            "{}",
            c.what
        );
        assert_eq!(c.execution.preemptions, 1, "{policy}");
        assert!(matches!(
            verdict(&ordered, policy, &dfs(None)),
            Verdict::Pass { .. }
        ));
        println!("{policy}: {}", c.what);
    }
    for policy in [Policy::Py310, Policy::Py313] {
        assert!(
            matches!(verdict(&inverted, policy, &dfs(None)), Verdict::Pass { .. }),
            "{policy}"
        );
    }
}

/// EX-2: threads that sleep can wake in any order: without a single preemption the explorer
/// already runs all 3! orders in which three sleeping threads finish.
#[test]
fn ex2_every_wake_order_explored() {
    let p = scenario("io-bound", 3, 1);
    let mut search = Dfs::new(0);
    let mut orders = BTreeSet::new();
    loop {
        let e = execute(
            &p,
            Policy::Py313,
            &mut search,
            Options {
                table: Table::Full,
                ..Options::default()
            },
        );
        let order: Vec<String> = e
            .rows()
            .filter(|r| r.gil.starts_with("thread ends") && r.thread != "MainThread")
            .map(|r| r.thread.clone())
            .collect();
        orders.insert(order);
        if !search.advance() {
            break;
        }
    }
    assert_eq!(orders.len(), 6, "{orders:?}");
}

/// EX-3: in the locked increment under 3.9 (where a thread can be switched away inside the
/// `with` block, so another blocks on the lock), some schedule lets the blocked thread take the
/// lock without the GIL before the releasing thread takes it again. Under 3.11 no thread is ever
/// switched away while it holds the lock in this program, so nobody blocks on it.
#[test]
fn ex3_waiter_takes_a_released_lock_first() {
    let p = scenario("seed-locked-increment", 2, 2);
    let grabs = |policy| {
        let mut search = Dfs::with_state_cache(usize::MAX);
        let (mut executions, mut with_grab) = (0, 0);
        loop {
            let e = execute(&p, policy, &mut search, Options::default());
            executions += 1;
            if e.events.iter().any(|ev| matches!(ev, Event::Grab(_))) {
                with_grab += 1;
                assert_eq!(e.failure, None);
            }
            if !search.advance() {
                return (with_grab, executions);
            }
        }
    };
    let (with_grab, executions) = grabs(Policy::Py39);
    assert!(
        with_grab > 0,
        "no lock take without the GIL in {executions} executions"
    );
    println!(
        "3.9: {with_grab} of {executions} executions take a released lock before its releaser"
    );
    assert_eq!(grabs(Policy::Py311).0, 0);
}

/// `assert 1 + 1 == want`.
fn assertion(want: i64) -> Program {
    module(|m| {
        let ok = m.new_label();
        m.load_int(1)
            .load_int(1)
            .binary(gilcheck::vm::BinOp::Add)
            .load_int(want)
            .op(Instr::CompareOp(CmpOp::Eq));
        m.jump(Instr::PopJumpForwardIfTrue, ok)
            .op(Instr::LoadAssertionError)
            .op(Instr::RaiseVarargs(1))
            .bind(ok);
    })
}

/// EX-4: a failing `assert` is a failure of the execution; a passing one is not.
#[test]
fn ex4_assertion_failure_reported() {
    let e = execute(
        &assertion(3),
        Policy::Py313,
        &mut Dfs::new(0),
        Options::default(),
    );
    assert!(
        matches!(e.failure, Some(Failure::Assertion(_))),
        "{:?}",
        e.failure
    );
    assert!(
        e.outcome.output.contains("AssertionError"),
        "{}",
        e.outcome.output
    );
    let e = execute(
        &assertion(2),
        Policy::Py313,
        &mut Dfs::new(0),
        Options::default(),
    );
    assert_eq!(e.failure, None);
}

/// EX-12, EX-11: an execution that runs its step budget out stops without failing (a budget is
/// not a bug); the same loop run long enough is found to repeat its state, a fair loop: a
/// failure.
#[test]
fn ex12_step_budget_stops_an_execution_and_a_loop_is_found() {
    let spin = module(|m| {
        let top = m.here();
        m.op(Instr::Nop).jump(Instr::JumpBackward, top);
    });
    let run = |max_steps| {
        execute(
            &spin,
            Policy::Py313,
            &mut Dfs::new(0),
            Options {
                max_steps,
                ..Options::default()
            },
        )
    };
    let e = run(1000);
    assert_eq!(e.failure, None);
    assert_eq!(e.stop, Some(Stop::Budget));
    assert_eq!(e.steps, 1000);
    let e = run(1_000_000);
    assert!(
        matches!(e.failure, Some(Failure::Loop { .. })),
        "{:?}",
        e.failure
    );
    assert!(e.steps < 100_000, "found after {} steps", e.steps);
}

/// EX-1: time is not modelled (GIL-5 counts no time), so every clock the explorer shows a
/// program reads 0.0.
#[test]
fn ex1_explorer_clocks_read_zero() {
    let p = module(|m| {
        m.import_name("time").store_name("time");
        m.op(Instr::PushNull).load_name("print");
        m.op(Instr::PushNull)
            .load_name("time")
            .load_attr("time")
            .call(0);
        m.call(1).op(Instr::PopTop);
    });
    let e = execute(&p, Policy::Py311, &mut Dfs::new(0), Options::default());
    assert_eq!(e.failure, None);
    assert_eq!(e.outcome.output, "0.0\n");
}

/// EX-11: a long stretch without decisions whose states do not repeat is not a loop: one
/// thread counting to 20 000 (60 000 steps, watched from step 10 000 on) ends normally.
#[test]
fn ex11_long_computation_without_decisions_is_not_a_loop() {
    let p = module(|m| count_to(m, 20_000));
    let e = execute(&p, Policy::Py311, &mut Dfs::new(0), Options::default());
    assert_eq!((e.failure, e.stop), (None, None));
    assert!(e.steps > 50_000, "{} steps", e.steps);
}

/// EX-11: a loop without decisions entered late is found too: one thread counts to 20 000
/// (past the step where the watch starts, so the first states it fingerprints never come
/// back), then spins forever.
#[test]
fn ex11_loop_entered_after_a_long_computation_is_found() {
    let e = execute(
        &late_loop(),
        Policy::Py311,
        &mut Dfs::new(0),
        Options::default(),
    );
    let Some(Failure::Loop { from, .. }) = e.failure else {
        panic!("{:?} {:?}", e.failure, e.stop)
    };
    assert!(from > 60_000, "the loop starts at step {from}");
}

/// `for i in range(n): pass` at module level.
fn count_to(m: &mut CodeBuilder, n: i64) {
    m.op(Instr::PushNull)
        .load_name("range")
        .load_int(n)
        .call(1)
        .op(Instr::GetIter);
    let top = m.here();
    let end = m.new_label();
    m.jump(Instr::ForIter, end).store_name("i");
    m.jump(Instr::JumpBackward, top).bind(end);
}

/// Counts to 20 000, then spins forever.
fn late_loop() -> Program {
    module(|m| {
        count_to(m, 20_000);
        let spin = m.here();
        m.op(Instr::Nop).jump(Instr::JumpBackward, spin);
    })
}

/// `n` threads that spin on a value nobody changes.
fn spinners(n: usize) -> Program {
    Prog {
        start: 1000,
        ..Prog::new(vec![vec![Op::SpinWhile(1000)]; n])
    }
    .build()
}

/// EX-4: the search for the first schedule stops at its cap of executions. Two threads spin on
/// a value nobody changes: without preemption the first one spins and the other never runs (an
/// unfair loop, pruned); with one, both spin in turn (a fair loop, an ending). A cap of one
/// execution returns the pruned one.
#[test]
fn ex4_first_schedule_search_stops_at_its_cap() {
    let spinners = spinners(2);
    let capped = engine::reference_within(&spinners, Policy::Py311, 100_000, 1);
    assert!(capped.pruned(), "{:?}", capped.stop);
    let first = engine::reference(&spinners, Policy::Py311, 100_000);
    assert!(!first.pruned(), "{:?}", first.stop);
    assert!(
        matches!(first.failure, Some(Failure::Loop { .. })),
        "{:?}",
        first.failure
    );
}

/// EX-4: two schedules that leave the same globals but print different things differ: two
/// workers print "A" and "B", and which thread takes the GIL when the main thread waits is the
/// model's free choice. The check fails with no preemption and names the printed line.
#[test]
fn ex4_printed_output_alone_is_a_difference() {
    let p = Prog::new(vec![vec![Op::Print("A")], vec![Op::Print("B")]]).build();
    for policy in [Policy::Py39, Policy::Py311, Policy::Every] {
        let c = fail(verdict(&p, policy, &dfs(None)));
        assert_eq!(c.execution.preemptions, 0, "{policy}");
        assert!(c.what.contains("printed \"B\" here, \"A\""), "{}", c.what);
        assert_eq!(
            c.execution.outcome.data_state(),
            c.reference.data_state(),
            "{policy}: only the output differs"
        );
    }
}

/// EX-5, EX-10: how a failure was found is said exactly: in the first schedule, under bound 0
/// (nothing has fewer preemptions), or under a later bound (every smaller bound explored first).
#[test]
fn ex5_failure_lines_say_how_it_was_found() {
    let first = fail(verdict(&assertion(3), Policy::Py313, &dfs(None)));
    assert!(first.first, "{}", first.found);
    assert_eq!(
        first.found,
        "found in the first execution: the schedule with no preemption"
    );
    let printed = Prog::new(vec![vec![Op::Print("A")], vec![Op::Print("B")]]).build();
    let at0 = fail(verdict(&printed, Policy::Py311, &dfs(None)));
    assert!(
        at0.found.starts_with("found by dfs at execution ")
            && at0.found.ends_with(
                " (preemption bound 0: 0 preemptions; no schedule with fewer preemptions exists)"
            ),
        "{}",
        at0.found
    );
    let lost = scenario("seed-unsafe-increment", 2, 1);
    let at1 = fail(verdict(&lost, Policy::Py39, &dfs(None)));
    assert!(
        at1.found.starts_with("found by dfs at execution ")
            && at1.found.ends_with(" (preemption bound 1: 1 preemption; every schedule with at most 0 preemptions was explored without failure)"),
        "{}",
        at1.found
    );
}

/// EX-8: the step table of a 5 000 000-step execution (the seed's increment at 2 × 1 000 000
/// under 3.11, which runs its budget out) is folded to a few hundred lines as it is made, and
/// says what it left out. (Debug builds: 2 × 100 000, 500 000 steps.)
#[test]
fn ex8_step_table_stays_short() {
    let (iterations, max_steps) = if cfg!(debug_assertions) {
        (100_000, 500_000)
    } else {
        (1_000_000, 5_000_000)
    };
    let p = scenario("seed-unsafe-increment", 2, iterations);
    let e = execute(
        &p,
        Policy::Py311,
        &mut Dfs::new(0),
        Options {
            max_steps,
            table: Table::Folded,
            ..Options::default()
        },
    );
    assert_eq!(e.stop, Some(Stop::Budget));
    let text = gilcheck::explore::report::table(&e.table);
    let lines = text.lines().count();
    assert!(lines <= 300, "{lines} lines");
    assert!(
        text.contains("left out (--full shows every step)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{max_steps}  Thread-1")),
        "the last step is shown:\n{text}"
    );
    println!("{max_steps} steps folded to {lines} lines");
}

/// EX-5: each kind of verdict line says what it covered.
#[test]
fn ex5_verdict_lines_say_what_was_covered() {
    let p = scenario("seed-unsafe-increment", 2, 1);
    let line =
        |o: CheckOptions| match check(&p, &header("s", Policy::Py311, 2, 1), Policy::Py311, &o)
            .unwrap()
        {
            Verdict::Pass { line, .. } => line,
            Verdict::Fail(c) | Verdict::Inconclusive(c) => panic!("{}", c.what),
        };
    let complete = line(dfs(None));
    assert!(
        complete.starts_with("exhaustive, every schedule: every reachable state explored, ")
            && complete
                .ends_with(" executions in all (a state reached again is not explored again)"),
        "{complete}"
    );
    // "N distinct states reached at decisions, by M executions": a decision's state is counted
    // once, and there are several (the first schedule's decisions and others').
    let number = |before: &str| -> usize {
        let head = complete.split(before).next().unwrap();
        let n = head.rsplit([',', 'y']).next().unwrap();
        n.replace(' ', "")
            .parse()
            .unwrap_or_else(|_| panic!("{n:?} in {complete}"))
    };
    let (states, executions) = (
        number(" distinct states reached at decisions"),
        number(" executions in all"),
    );
    assert!((2..=1_000).contains(&states), "{complete}");
    assert!(executions > 1, "{complete}");
    let bounded = line(dfs(Some(1)));
    assert!(
        bounded.starts_with("exhaustive up to 1 preemption: every schedule with at most that many"),
        "{bounded}"
    );
    let capped = line(CheckOptions {
        max_executions: 5,
        ..dfs(None)
    });
    assert!(
        capped.starts_with("no failure in the first 5 executions")
            && capped.contains("not exhaustive"),
        "{capped}"
    );
    let all = line(CheckOptions {
        state_cache: false,
        preemptions: Some(1),
        ..dfs(None)
    });
    assert!(
        all.contains("interleavings with at most") || all.contains("interleavings"),
        "{all}"
    );
    for (engine, want) in [
        (
            Engine::Pct,
            "no failure in 100 PCT executions (2 priority change points per execution, seed 0): sampled, not a proof",
        ),
        (
            Engine::Random,
            "no failure in 100 random executions (seed 0): sampled, not a proof",
        ),
    ] {
        let sampled = line(CheckOptions {
            engine,
            max_executions: 100,
            ..dfs(None)
        });
        assert!(sampled.starts_with(want), "{sampled}");
        assert!(!sampled.contains("unfairly"), "{sampled}");
    }
}

/// EX-11: a sampled execution that repeats a state unfairly (PCT keeps running the spinning
/// thread of highest priority) ends there and is counted, not taken for an outcome.
#[test]
fn ex11_sampling_counts_executions_cut_short_by_an_unfair_loop() {
    let p = Prog::new(vec![vec![Op::SpinWhile(0)], vec![Op::Add(1)]]).build();
    let v = verdict(
        &p,
        Policy::Py311,
        &CheckOptions {
            engine: Engine::Pct,
            max_executions: 40,
            ..dfs(None)
        },
    );
    let Verdict::Pass { line, .. } = v else {
        panic!("{v:?}")
    };
    let dropped = line
        .split_once(" repeated a state unfairly and ended there)")
        .and_then(|(before, _)| before.rsplit_once('('))
        .and_then(|(_, n)| n.split(" execution").next())
        .map(|n| n.replace(' ', "").parse::<usize>().unwrap());
    assert!(matches!(dropped, Some(n) if (1..40).contains(&n)), "{line}");
}

/// EX-11: PCT and random watch for loops but keep no cache, so a watched execution ends only
/// at a state of its own past: an unfair spin (Unfair), or the program's end; never "explored".
#[test]
fn ex11_sampled_executions_end_only_at_their_own_loops() {
    use gilcheck::explore::oracles::{Pct, RandomWalk};
    let p = Prog::new(vec![vec![Op::SpinWhile(0)], vec![Op::Add(1)]]).build();
    // Unfair spins per engine: PCT's spinner keeps its priority; a random walk comes back to a
    // state of the spin whenever it lets the spinner go round twice before the writer runs.
    let mut unfair = [0; 2];
    for seed in 0..20 {
        let mut pct = Pct::new(seed, 2).watching_from(0);
        pct.reset();
        let mut walk = RandomWalk::new(seed).watching_from(0);
        for (k, oracle) in [&mut pct as &mut dyn gilcheck::explore::Oracle, &mut walk]
            .into_iter()
            .enumerate()
        {
            let e = execute(&p, Policy::Py311, oracle, Options::default());
            match e.stop {
                None => assert_eq!(e.failure, None, "seed {seed}"),
                Some(Stop::Unfair { .. }) => unfair[k] += 1,
                other => panic!("seed {seed}: {other:?}"),
            }
        }
    }
    assert!(
        unfair.iter().all(|&n| n > 0),
        "unfair spins (pct, random): {unfair:?}"
    );
}

/// EX-6, EX-9: a counterexample found by each engine prints, parses back, and replays to the
/// identical outcome and step table.
#[test]
fn ex6_round_trip_every_engine() {
    for (name, policy) in [
        ("seed-unsafe-increment", Policy::Py39),
        ("call-between", Policy::Py311),
    ] {
        let p = scenario(name, 2, 1);
        let h = header(name, policy, 2, 1);
        for engine in [Engine::Dfs, Engine::Pct, Engine::Random, Engine::Loom] {
            let o = CheckOptions {
                preemptions: (engine == Engine::Loom).then_some(2),
                ..opts(engine)
            };
            let v = if engine == Engine::Loom {
                gilcheck::explore::loom::check(Arc::new(p.clone()), &h, policy, &o).unwrap()
            } else {
                check(&p, &h, policy, &o).unwrap()
            };
            let c = fail(v);
            let text = c.schedule.encode();
            let parsed = Schedule::parse(&text).unwrap();
            assert_eq!(parsed, c.schedule, "{name} {engine:?}");
            let again = engine::replay(&p, policy, &parsed, 100_000, Table::Folded).unwrap();
            assert_eq!(again.outcome, c.execution.outcome, "{name} {engine:?}");
            assert_eq!(again.table, c.execution.table, "{name} {engine:?}");
            assert_eq!(again.failure, c.execution.failure);
            println!(
                "{name} {policy} {engine:?}: {} preemption(s), {text}",
                c.execution.preemptions
            );
        }
    }
}

/// EX-6, EX-8: every kind of failure `check` can print, and an inconclusive verdict, has a
/// schedule string that parses back and replays to the identical failure, outcome and step
/// table: an outcome that differs, a deadlock, a failed `assert`, a fair loop with decisions and
/// one without, a runtime rule violated (the twin VM that forgets an incref), and a step budget
/// that ran out.
#[test]
fn ex6_every_kind_of_failure_replays() {
    let twin = gilcheck::vm::interp::VmFaults {
        load_fast_without_incref: true,
        ..Default::default()
    };
    let cases: Vec<(&str, Program, Policy, CheckOptions)> = vec![
        (
            "outcome",
            scenario("seed-unsafe-increment", 2, 1),
            Policy::Py39,
            dfs(None),
        ),
        (
            "deadlock",
            two_lock_program(["a", "b"], ["b", "a"]),
            Policy::Py39,
            dfs(None),
        ),
        ("assertion", assertion(3), Policy::Py313, dfs(None)),
        ("fair loop", spinners(2), Policy::Py311, dfs(None)),
        (
            "loop without decisions",
            spinners(1),
            Policy::Py313,
            dfs(None),
        ),
        ("loop entered late", late_loop(), Policy::Py311, dfs(None)),
        (
            "rule",
            scenario("seed-refcount", 2, 1),
            Policy::Py313,
            CheckOptions {
                faults: gilcheck::explore::engine::SearchFaults {
                    vm: twin,
                    ..Default::default()
                },
                ..dfs(None)
            },
        ),
        (
            "budget",
            scenario("seed-unsafe-increment", 2, 1000),
            Policy::Py311,
            CheckOptions {
                max_steps: 500,
                ..dfs(None)
            },
        ),
    ];
    for (kind, p, policy, o) in cases {
        let v = check(&p, &header(kind, policy, 2, 1), policy, &o).unwrap();
        let (c, inconclusive) = match v {
            Verdict::Fail(c) => (c, false),
            Verdict::Inconclusive(c) => (c, true),
            Verdict::Pass { line, .. } => panic!("{kind}: {line}"),
        };
        assert_eq!(inconclusive, kind == "budget", "{kind}");
        let text = c.schedule.encode();
        let parsed = Schedule::parse(&text).unwrap();
        let again = engine::replay_with(
            &p,
            policy,
            &parsed,
            Options {
                max_steps: o.max_steps,
                table: Table::Folded,
                vm_faults: o.faults.vm,
                ..Options::default()
            },
        )
        .unwrap_or_else(|e| panic!("{kind}: {e}\n{text}"));
        assert_eq!(again.failure, c.execution.failure, "{kind}");
        assert_eq!(again.stop, c.execution.stop, "{kind}");
        assert_eq!(again.outcome, c.execution.outcome, "{kind}");
        assert_eq!(again.table, c.execution.table, "{kind}");
        println!("{kind}: {} — {text}", c.what);
    }
}

/// EX-6: a schedule string is checked event by event: a lock take by a thread that does not
/// exist (the checksum-valid string of issue 7, which made replay index out of bounds) or that
/// is not waiting for a lock is refused with a message that names the step.
#[test]
fn ex6_replay_validates_lock_takes() {
    let p = scenario("seed-unsafe-increment", 2, 2);
    let forged =
        Schedule::parse("gc1:seed-unsafe-increment:3.9:2x2:0*70,1*28,3g,2*35,1*7,0*23:4e81e885")
            .unwrap();
    let err = engine::replay(&p, Policy::Py39, &forged, 10_000, Table::Off).unwrap_err();
    assert!(err.contains("no thread 3"), "{err}");
    let mut events = forged.events.clone();
    events.retain(|e| *e != Event::Grab(3));
    events.insert(80, Event::Grab(2));
    let not_waiting = Schedule { events, ..forged };
    let err = engine::replay(&p, Policy::Py39, &not_waiting, 10_000, Table::Off).unwrap_err();
    assert!(err.contains("not waiting for a lock"), "{err}");
}

/// EX-10: PCT and random search find the lost update under 3.9 for every seed tried, and the
/// counterexample they report is minimized to one preemption.
#[test]
fn ex10_pct_and_random_find_and_minimize() {
    let p = scenario("seed-unsafe-increment", 2, 1);
    let h = header("seed-unsafe-increment", Policy::Py39, 2, 1);
    for engine in [Engine::Pct, Engine::Random] {
        for seed in 0..10 {
            let c = fail(
                check(
                    &p,
                    &h,
                    Policy::Py39,
                    &CheckOptions {
                        seed,
                        ..opts(engine)
                    },
                )
                .unwrap(),
            );
            assert_eq!(
                c.execution.preemptions, 1,
                "{engine:?} seed {seed}: {}",
                c.found
            );
            let name = if engine == Engine::Pct {
                "pct"
            } else {
                "random"
            };
            assert!(
                c.found
                    .starts_with(&format!("found by {name} at execution ")),
                "{}",
                c.found
            );
            assert!(c.found.contains(&format!("seed {seed}")), "{}", c.found);
            assert!(
                c.found.contains(
                    "every schedule with at most 0 preemptions was explored without failure"
                ),
                "{}",
                c.found
            );
        }
    }
}

/// EX-8, EX-4: a counterexample names the schedule its outcome is compared with. For the seed's
/// increment under 3.9 that is the first schedule, without preemption. Below, the main thread
/// holds the lock; the spinner releases it and spins until the writer, which must take the lock
/// first, has added 1. Every schedule without preemption loops unfairly (the writer can run only
/// by preempting the spinner), so the reference is the first schedule that ends, with one
/// preemption, and the text says so; with two, the prints come in the other order (under 3.9 and
/// `every`; 3.11 cannot switch between the write and the print).
#[test]
fn ex8_counterexample_names_the_schedule_it_compares_with() {
    use gilcheck::explore::report::counterexample;
    let seed = scenario("seed-unsafe-increment", 2, 1);
    let c = fail(verdict(&seed, Policy::Py39, &dfs(None)));
    assert_eq!(c.reference_preemptions, 0);
    let text = counterexample(&c, "FAIL", "seed", "gilcheck replay …");
    assert!(
        text.contains("\noutcome of the first schedule (no preemption):\n"),
        "{text}"
    );
    let p = Prog {
        start: 1000,
        main_acquires: true,
        ..Prog::new(vec![
            vec![Op::Release, Op::SpinWhile(1000), Op::Print("A")],
            vec![Op::Acquire, Op::Add(1), Op::Print("B")],
        ])
    }
    .build();
    for policy in [Policy::Py39, Policy::Every] {
        let c = fail(verdict(&p, policy, &dfs(None)));
        assert_eq!(c.reference_preemptions, 1, "{policy}: {}", c.what);
        assert!(!c.first, "{policy}");
        let text = counterexample(&c, "FAIL", "spin", "gilcheck replay …");
        assert!(
            text.contains(
                "\noutcome of the first schedule that ends (1 preemption; the one without loops forever unfairly):\n"
            ),
            "{policy}: {text}"
        );
        assert!(text.ends_with("\nreplay: gilcheck replay …\n"), "{text}");
    }
}

/// EX-6: every schedule, up to two preemptions (a lock take without the GIL needs both), under
/// 3.9 and 3.11, of two threads that each take the lock twice replays from its bare events to the
/// same events, outcome, step count and preemptions; the events with one more step are refused
/// as left over, and without their last step as ending early, each message naming the step where
/// it happened.
#[test]
fn ex6_every_schedule_with_lock_takes_replays() {
    use support::naive::Naive;
    // A thread that takes the lock again while the other waits for it is a lock-take decision.
    let worker = |s| {
        vec![
            Op::Loop(2, vec![Op::Acquire, Op::Add(1), Op::Release]),
            Op::Print(s),
        ]
    };
    let p = Prog::new(vec![worker("A"), worker("B")]).build();
    for policy in [Policy::Py39, Policy::Py311] {
        let (mut runs, mut with_grabs) = (0, 0);
        let mut n = Naive::new(2);
        loop {
            let e = execute(&p, policy, &mut n, Options::default());
            let what = format!("{policy}, execution {runs}: {:?}", e.events);
            with_grabs += usize::from(e.events.iter().any(|ev| matches!(ev, Event::Grab(_))));
            let again = engine::replay_events(&p, policy, &e.events, 1_000_000)
                .unwrap_or_else(|err| panic!("{what}: {err}"));
            assert_eq!(again.events, e.events, "{what}");
            assert_eq!(again.outcome, e.outcome, "{what}");
            assert_eq!(
                (again.steps, again.preemptions),
                (e.steps, e.preemptions),
                "{what}"
            );
            let mut longer = e.events.clone();
            longer.push(Event::Step(0));
            let err = engine::replay_events(&p, policy, &longer, 1_000_000).unwrap_err();
            assert!(
                err.contains(&format!("ended after step {},", e.steps)),
                "{what}: {err}"
            );
            let mut shorter = e.events.clone();
            while let Some(Event::Grab(_)) = shorter.pop() {}
            let err = engine::replay_events(&p, policy, &shorter, 1_000_000).unwrap_err();
            assert!(
                err.contains(&format!("step {}", e.steps - 1)),
                "{what}: {err}"
            );
            runs += 1;
            if !n.next() {
                break;
            }
        }
        assert!(
            with_grabs > 0,
            "{policy}: no schedule of {runs} took a lock without the GIL"
        );
        println!("{policy}: {runs} schedules replayed, {with_grabs} with lock takes");
    }
}

/// EX-8: a value in a step table is its repr cut at 40 characters (a 40-character repr shows
/// whole, a 41-character one as 39 and "…"), and a lock is named by its global.
#[test]
fn ex8_table_cuts_values_at_40_characters_and_names_locks() {
    let (a38, b39) = ("a".repeat(38), "b".repeat(39));
    let p = module(|m| {
        m.load_str(&a38)
            .store_name("x")
            .load_str(&b39)
            .store_name("y")
            .load_str(&"c".repeat(60))
            .store_name("z");
    });
    let full = Options {
        table: Table::Full,
        ..Options::default()
    };
    let e = execute(&p, Policy::Py311, &mut Dfs::new(0), full);
    let effects: Vec<&str> = e
        .table
        .iter()
        .filter_map(|l| match l {
            gilcheck::explore::report::Line::Row(r) => Some(r.effect.as_str()),
            _ => None,
        })
        .filter(|e| !e.is_empty())
        .collect();
    let cut = |s: &str| format!("{}…", &s[..39]);
    assert!(
        effects.contains(&format!("write x ← '{a38}'").as_str()),
        "{effects:?}"
    );
    assert!(
        effects.contains(&format!("write y ← {}", cut(&format!("'{b39}'"))).as_str()),
        "{effects:?}"
    );
    assert!(
        effects.contains(&format!("write z ← {}", cut(&format!("'{}'", "c".repeat(60)))).as_str()),
        "{effects:?}"
    );
    let p = Prog {
        main_acquires: true,
        ..Prog::new(vec![vec![Op::Release]])
    }
    .build();
    let e = execute(&p, Policy::Py311, &mut Dfs::new(0), full);
    let effects: Vec<String> = e
        .table
        .iter()
        .filter_map(|l| match l {
            gilcheck::explore::report::Line::Row(r) => Some(r.effect.clone()),
            _ => None,
        })
        .collect();
    for want in ["acquire lock", "release lock"] {
        assert!(
            effects.iter().any(|e| e.starts_with(want)),
            "{want}: {effects:?}"
        );
    }
}

/// EX-13: the counts of an exploration add up. Without the cache every schedule is one
/// execution, as many as the naive search runs, and none is pruned; with it, some are pruned
/// (ended early, at a state seen before), never all, and no more run; with a step budget that runs out, the executions cut short are
/// counted as the naive search counts them.
#[test]
fn ex13_exploration_counts_add_up() {
    let p = scenario("seed-unsafe-increment", 2, 1);
    for policy in [Policy::Py39, Policy::Py311] {
        // The naive search has no partial-order reduction (EX-17): neither has this one.
        let opts = |state_cache, max_steps| CheckOptions {
            state_cache,
            max_steps,
            reduce: false,
            ..dfs(Some(1))
        };
        let naive = support::naive::search(&p, policy, 1, 1_000_000, 100_000);
        let full = engine::explore_all(&p, policy, &opts(false, 1_000_000)).unwrap();
        assert_eq!(
            (full.executions, full.pruned, full.out_of_steps),
            (naive.executions, 0, 0),
            "{policy}"
        );
        let cached = engine::explore_all(&p, policy, &opts(true, 1_000_000)).unwrap();
        assert!(
            0 < cached.pruned
                && cached.pruned < cached.executions
                && cached.executions <= full.executions,
            "{policy}: {} pruned of {} executions ({} without the cache)",
            cached.pruned,
            cached.executions,
            full.executions
        );
        let short = support::naive::search(&p, policy, 1, 100, 100_000);
        let cut = engine::explore_all(&p, policy, &opts(false, 100)).unwrap();
        assert!(short.out_of_steps > 0, "{policy}");
        assert_eq!(
            (cut.executions, cut.out_of_steps),
            (short.executions, short.out_of_steps),
            "{policy}"
        );
    }
}

/// EX-21: at a size where DFS under bound 1 tries preemptions in a poor order, PCT's
/// schedule of the lost update is shrunk to one preemption by deleting runs, and the verdict
/// calls it minimal after the bound-0 DFS. The shrunk counterexample replays through the
/// ordinary VM to the failure it claims.
#[test]
fn ex21_shrinking_reaches_one_preemption_at_size() {
    let p = scenario("seed-unsafe-increment", 3, 300);
    for policy in [Policy::Py38, Policy::Py39] {
        let h = header("seed-unsafe-increment", policy, 3, 300);
        for seed in 0..4 {
            let c = fail(
                check(
                    &p,
                    &h,
                    policy,
                    &CheckOptions {
                        seed,
                        preemptions: Some(4),
                        ..opts(Engine::Pct)
                    },
                )
                .unwrap(),
            );
            let what = format!("{policy} seed {seed}: {}", c.found);
            assert_eq!(c.execution.preemptions, 1, "{what}");
            assert!(
                c.found
                    .contains("every schedule with at most 0 preemptions was explored"),
                "{what}"
            );
            let replayed = engine::replay(&p, policy, &c.schedule, 5_000_000, Table::Off).unwrap();
            assert_eq!(replayed.preemptions, 1, "{what}");
            assert_ne!(
                replayed.outcome, c.reference,
                "{what}: the schedule does not fail"
            );
            println!("{what}");
        }
    }
}

/// EX-21, the twin: a shrink that keeps tries whose execution passes ends with a schedule
/// that does not fail; replaying the counterexample shows it.
#[test]
fn ex21_twin_shrink_that_keeps_a_passing_schedule_is_caught() {
    let p = scenario("seed-unsafe-increment", 3, 300);
    let policy = Policy::Py39;
    let h = header("seed-unsafe-increment", policy, 3, 300);
    let mut caught = 0;
    for seed in 0..4 {
        let v = check(
            &p,
            &h,
            policy,
            &CheckOptions {
                seed,
                preemptions: Some(4),
                faults: engine::SearchFaults {
                    shrink_keeps_passing: true,
                    ..Default::default()
                },
                ..opts(Engine::Pct)
            },
        );
        let c = fail(v.unwrap());
        let replayed = engine::replay(&p, policy, &c.schedule, 5_000_000, Table::Off).unwrap();
        if replayed.outcome == c.reference {
            caught += 1;
        }
    }
    assert!(caught > 0, "the twin's counterexamples all fail");
}

/// EX-20, the twin: two threads spin on a value nobody changes. At bound 0 the first one spins
/// and the other never runs, an unfair loop the correct search ends; a search that never
/// fingerprints a poll point with no preemption left runs out of steps instead.
#[test]
fn ex20_twin_spent_poll_points_never_fingerprinted_are_caught() {
    let p = Prog {
        start: 1000,
        ..Prog::new(vec![vec![Op::SpinWhile(1000)]; 2])
    }
    .build();
    for (twin, policy) in [(false, Policy::Py311), (true, Policy::Py311)] {
        let opts = Options {
            max_steps: 200_000,
            reduce: true,
            state_faults: gilcheck::explore::world::StateFaults {
                spent_never_fingerprinted: twin,
                ..Default::default()
            },
            ..Options::default()
        };
        let e = execute(&p, policy, &mut Dfs::with_state_cache(0), opts);
        if twin {
            assert!(e.out_of_steps(), "the twin ended the spin: {:?}", e.stop);
        } else {
            assert!(
                matches!(e.stop, Some(Stop::Unfair { .. })),
                "{:?} {:?}",
                e.stop,
                e.failure
            );
        }
    }
}

/// EX-22: where the first schedule is long, DFS runs a sampled pass between bounds 0 and 1;
/// it finds the lost update, shrinking brings it to one preemption, and bound 0 having found
/// nothing, it is minimal. Where the first schedule is short there is no sampled pass.
#[test]
fn ex22_sampled_pass_before_bound_1_finds_the_lost_update_at_size() {
    let p = scenario("seed-unsafe-increment", 3, 2_000);
    let h = header("seed-unsafe-increment", Policy::Py39, 3, 2_000);
    let c = fail(check(&p, &h, Policy::Py39, &dfs(None)).unwrap());
    assert!(
        c.found
            .contains("(the sampled pass before dfs's bound 1, seed 0,"),
        "{}",
        c.found
    );
    assert_eq!(c.execution.preemptions, 1, "{}", c.found);
    assert!(
        c.found
            .contains("every schedule with at most 0 preemptions was explored without failure"),
        "{}",
        c.found
    );
    let replayed = engine::replay(&p, Policy::Py39, &c.schedule, 5_000_000, Table::Off).unwrap();
    assert_ne!(replayed.outcome, c.reference);
    let small = scenario("seed-unsafe-increment", 2, 1);
    let h = header("seed-unsafe-increment", Policy::Py39, 2, 1);
    let c = fail(check(&small, &h, Policy::Py39, &dfs(None)).unwrap());
    assert!(
        c.found.starts_with("found by dfs at execution"),
        "{}",
        c.found
    );
}
