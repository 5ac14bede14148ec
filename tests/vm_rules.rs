//! The VM's rules (VM-1 … VM-13 of `spec/bytecode.md`) on the built-in scenarios and on small
//! programs written here, each positive check next to a broken twin it must catch.

mod support;
use support::{one_of_each_instr, scenario};

use gilcheck::builtins::CallPoll;
use gilcheck::explore::engine::{Dfs, RandomWalk};
use gilcheck::explore::world::Table;
use gilcheck::explore::{Execution, Failure, Options, execute};
use gilcheck::platform::Std;
use gilcheck::scenarios::{self, Params, SCENARIOS};
use gilcheck::vm::code::{BinOp, CodeBuilder, Const, Instr, Program};
use gilcheck::vm::interp::VmFaults;
use gilcheck::vm::policy::{Callee, Executed};
use gilcheck::vm::threaded::{self, RunOptions};
use gilcheck::vm::{Policy, policy};
use std::sync::Arc;

/// Fewer schedules in debug builds (plain `cargo test`), the stated bounds in `--release`.
const SCALE: usize = if cfg!(debug_assertions) { 1 } else { 10 };

/// The first schedule (no preemption), with a step table.
fn first(program: &Program, policy: Policy) -> Execution {
    execute(
        program,
        policy,
        &mut Dfs::new(0),
        Options {
            table: Table::Full,
            ..Options::default()
        },
    )
}

fn with_faults(program: &Program, vm_faults: VmFaults) -> Execution {
    execute(
        program,
        Policy::Py313,
        &mut Dfs::new(0),
        Options {
            vm_faults,
            ..Options::default()
        },
    )
}

/// A module that runs `body` (a function with no arguments) on one thread and joins it, then
/// prints `done`.
fn one_thread(body: impl FnOnce(&mut CodeBuilder)) -> Program {
    let mut f = CodeBuilder::function("work", &[], 3);
    f.line(3).op(Instr::Resume(0));
    f.line(4);
    body(&mut f);
    f.load_none().op(Instr::ReturnValue);
    let mut m = CodeBuilder::module();
    m.op(Instr::Resume(0))
        .import_name("threading")
        .store_name("threading");
    m.line(2)
        .load_str("a")
        .load_int(1)
        .op(Instr::BuildMap(1))
        .store_name("shared");
    m.make_function(1).store_name("work");
    m.line(6)
        .op(Instr::PushNull)
        .load_name("threading")
        .load_attr("Thread")
        .load_name("work")
        .call_kw(1, &["target"])
        .store_name("t");
    m.line(7)
        .load_name("t")
        .load_method("start")
        .call(0)
        .op(Instr::PopTop);
    m.line(8)
        .load_name("t")
        .load_method("join")
        .call(0)
        .op(Instr::PopTop);
    m.line(9)
        .op(Instr::PushNull)
        .load_name("print")
        .load_str("done")
        .call(1)
        .op(Instr::PopTop);
    m.load_none().op(Instr::ReturnValue);
    let p = Program {
        name: "test".into(),
        source: "import threading\nshared = {'a': 1}\ndef work():\n    ...\n\nt = threading.Thread(target=work)\nt.start()\nt.join()\nprint('done')\n".into(),
        codes: vec![m.finish(), f.finish()],
    };
    p.validate().unwrap();
    p
}

// ---------------------------------------------------------------------------------------------
// VM-1

/// VM-1: every scenario builds and validates at several sizes (`scenarios::build` validates).
#[test]
fn vm1_scenarios_validate() {
    for s in SCENARIOS {
        for threads in 1..=4 {
            for iterations in [1, 2, 10_000] {
                let p = scenarios::build(
                    s.name,
                    Params {
                        threads,
                        iterations,
                        processes: false,
                    },
                );
                assert!(
                    p.is_ok(),
                    "{} {threads}x{iterations}: {:?}",
                    s.name,
                    p.err()
                );
            }
        }
    }
    assert!(
        scenarios::build(
            "seed-cpu-bound",
            Params {
                threads: 2,
                iterations: 3,
                processes: true
            }
        )
        .is_ok()
    );
    assert!(
        scenarios::build(
            "no-such",
            Params {
                threads: 1,
                iterations: 1,
                processes: false
            }
        )
        .is_err()
    );
}

/// VM-1, the twin: malformed code objects are refused before they run.
#[test]
fn vm1_validate_rejects_broken_code() {
    let module = |build: &dyn Fn(&mut CodeBuilder)| {
        let mut m = CodeBuilder::module();
        build(&mut m);
        Program {
            name: "bad".into(),
            source: String::new(),
            codes: vec![m.finish()],
        }
    };
    type Build<'a> = &'a dyn Fn(&mut CodeBuilder);
    let cases: [(&str, Build); 6] = [
        ("no RETURN_VALUE at the end", &|m| {
            m.load_none().op(Instr::PopTop);
        }),
        ("stack underflow", &|m| {
            m.op(Instr::PopTop).load_none().op(Instr::ReturnValue);
        }),
        ("constant out of range", &|m| {
            m.op(Instr::LoadConst(7)).op(Instr::ReturnValue);
        }),
        ("forward jump backwards", &|m| {
            m.load_none()
                .op(Instr::JumpForward(0))
                .op(Instr::ReturnValue);
        }),
        ("KW_NAMES without CALL", &|m| {
            m.load_const(Const::Tuple(vec![Const::Str("x".into())]));
            m.op(Instr::KwNames(0)).op(Instr::ReturnValue);
        }),
        ("depths disagree where paths meet", &|m| {
            let end = m.new_label();
            m.load_const(Const::Bool(true))
                .jump(Instr::PopJumpForwardIfTrue, end)
                .load_none()
                .bind(end);
            m.load_none().op(Instr::ReturnValue);
        }),
    ];
    for (what, build) in cases {
        assert!(module(build).validate().is_err(), "accepted: {what}");
    }
    let good = module(&|m| {
        m.load_none().op(Instr::ReturnValue);
    });
    assert_eq!(good.validate(), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// VM-2, LU-4

/// VM-2, LU-4: in every scenario, under random schedules of 3.9 and 3.13, every reference count
/// equals the references that exist after every single step, and every object is freed at the
/// end.
#[test]
fn vm2_every_step_audited_in_every_scenario() {
    let runs = 20 * SCALE;
    for s in SCENARIOS {
        let p = scenario(s.name, s.check_size.threads, s.check_size.iterations);
        for policy in [Policy::Py39, Policy::Py313] {
            for seed in 0..runs as u64 {
                let opts = Options {
                    audit_every_step: true,
                    ..Options::default()
                };
                let e = execute(&p, policy, &mut RandomWalk::new(seed), opts);
                assert_eq!(e.failure, None, "{} {policy} seed {seed}", s.name);
            }
        }
        println!(
            "{}: {runs} random schedules × 2 policies, audited after every step",
            s.name
        );
    }
}

/// VM-2, EX-4, the twin: `LOAD_FAST` without an incref frees a value the local still holds;
/// the runtime reports it and the execution fails there, instead of misbehaving or raising a
/// Python exception.
#[test]
fn vm2_twin_missing_incref_caught() {
    let p = scenario("seed-refcount", 1, 2);
    assert_eq!(with_faults(&p, VmFaults::default()).failure, None);
    let e = with_faults(
        &p,
        VmFaults {
            load_fast_without_incref: true,
            ..VmFaults::default()
        },
    );
    let Some(Failure::Rule(why)) = e.failure else {
        panic!("not caught: {:?}", e.failure)
    };
    assert!(why.contains("RC-"), "{why}");
    // A violated rule stops the execution where it happened; it is not a Python exception that
    // the program could report and go on from.
    assert!(
        !e.outcome.output.contains("Traceback"),
        "{}",
        e.outcome.output
    );
    println!("twin caught: {why}");
}

/// VM-2, EX-4, the twin: `STORE_FAST` without decrefing the old value leaks it; the audit at
/// the end of the execution finds the count too high and the execution fails.
#[test]
fn vm2_twin_missing_decref_leak_caught() {
    let p = scenario("seed-refcount", 1, 2);
    let e = with_faults(
        &p,
        VmFaults {
            store_fast_without_decref: true,
            ..VmFaults::default()
        },
    );
    let Some(Failure::Rule(why)) = e.failure else {
        panic!("not caught: {:?}", e.failure)
    };
    assert!(why.contains("RC-2") && why.contains("refcount"), "{why}");
    println!("twin caught: {why}");
}

/// VM-2, VM-11: an exception ends its thread, releasing every reference its frames held (the
/// audit and leak check pass), and prints CPython's report; the other thread goes on.
#[test]
fn vm2_exception_unwinds_every_reference() {
    let p = one_thread(|f| {
        f.load_int(10)
            .load_int(20)
            .op(Instr::BuildList(2))
            .store_fast("keep");
        f.load_global("shared")
            .load_str("missing")
            .op(Instr::BinarySubscr)
            .op(Instr::PopTop);
    });
    let e = first(&p, Policy::Py313);
    assert_eq!(e.failure, None);
    assert!(
        e.outcome
            .output
            .contains("Exception in thread Thread-1 (work):\nTraceback"),
        "{}",
        e.outcome.output
    );
    assert!(
        e.outcome.output.contains("KeyError: 'missing'"),
        "{}",
        e.outcome.output
    );
    assert!(e.outcome.output.ends_with("done\n"), "{}", e.outcome.output);
}

/// VM-11: an uncaught exception is reported with the thread's name, the location, and the
/// exception, as CPython's `threading.excepthook`, under the explorer and on real threads.
#[test]
fn vm11_exception_in_thread_reported() {
    let p = one_thread(|f| {
        f.load_int(1)
            .load_int(0)
            .binary(BinOp::FloorDiv)
            .op(Instr::PopTop);
    });
    let explored = first(&p, Policy::Py311).outcome.output;
    let real = threaded::run::<Std>(Arc::new(p), RunOptions::default())
        .unwrap()
        .output;
    for (how, out) in [("explorer", explored), ("real threads", real)] {
        // Named as 3.10+ name a thread: `Thread-1 (work)`.
        assert!(
            out.starts_with("Exception in thread Thread-1 (work):\n"),
            "{how}: {out}"
        );
        assert!(out.contains("line 4, in work"), "{how}: {out}");
        assert!(
            out.contains("ZeroDivisionError: integer division or modulo by zero"),
            "{how}: {out}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// VM-4, VM-11

/// VM-4: `time.sleep`, `Thread.join` of an unfinished thread and a contended `with lock:` block
/// with the GIL released, and another thread runs before the blocked one completes.
#[test]
fn vm4_blocking_calls_release_the_gil() {
    let cases = [
        ("io-bound", "sleeps (GIL released)"),
        ("seed-unsafe-increment", "joins Thread-1 (GIL released)"),
        ("seed-locked-increment", "blocks on lock (GIL released)"),
    ];
    for (name, note) in cases {
        let p = scenario(name, 2, 2);
        // Find a schedule in which the call blocks and another thread runs next.
        let mut search = Dfs::new(1);
        let mut seen = false;
        loop {
            let e = execute(
                &p,
                Policy::Py39,
                &mut search,
                Options {
                    table: Table::Full,
                    ..Options::default()
                },
            );
            // A step of another thread right after the blocked one released the GIL.
            let rows: Vec<_> = e.rows().collect();
            let other_ran = rows.windows(2).any(|w| {
                w[0].gil.starts_with(note) && w[1].thread != w[0].thread && w[1].instr != "—"
            });
            if other_ran {
                seen = true;
                break;
            }
            if !search.advance() {
                break;
            }
        }
        assert!(
            seen,
            "{name}: no schedule where another thread runs while one {note}"
        );
    }
}

/// VM-4, VM-11: starting a thread twice, joining before start, and joining the current thread
/// raise `RuntimeError` as in CPython.
#[test]
fn vm4_thread_lifecycle_errors() {
    let start_twice = one_thread(|_| {});
    let mut p = start_twice.clone();
    // Insert a second `t.start()` right after the first.
    let m = &mut p.codes[0];
    let at = m.instrs.iter().position(|i| *i == Instr::PopTop).unwrap() + 1;
    let dup: Vec<Instr> = m.instrs[at - 4..at].to_vec();
    let lines: Vec<u32> = m.lines[at - 4..at].to_vec();
    m.instrs.splice(at..at, dup);
    m.lines.splice(at..at, lines);
    for ins in m.instrs.iter_mut() {
        if let Instr::JumpForward(t) | Instr::JumpBackward(t) | Instr::ForIter(t) = ins {
            *t += 4;
        }
    }
    p.validate().unwrap();
    let out = first(&p, Policy::Py313).outcome.output;
    assert!(
        out.contains("RuntimeError: threads can only be started once"),
        "{out}"
    );

    let mut m = CodeBuilder::module();
    m.op(Instr::Resume(0))
        .import_name("threading")
        .store_name("threading");
    m.op(Instr::PushNull)
        .load_name("threading")
        .load_attr("Thread")
        .load_name("print")
        .call_kw(1, &["target"])
        .store_name("t");
    m.load_name("t")
        .load_method("join")
        .call(0)
        .op(Instr::PopTop);
    m.load_none().op(Instr::ReturnValue);
    let p = Program {
        name: "join".into(),
        source: String::new(),
        codes: vec![m.finish()],
    };
    p.validate().unwrap();
    let out = first(&p, Policy::Py313).outcome.output;
    assert!(
        out.contains("RuntimeError: cannot join thread before it is started"),
        "{out}"
    );
}

/// VM-4, RC-7: `sys.getrefcount(shared_data)` at module level is 2 (the global and the
/// argument), under the explorer and on real threads.
#[test]
fn vm4_getrefcount_counts_the_argument() {
    let p = scenario("seed-refcount", 2, 3);
    let e = first(&p, Policy::Py311);
    assert!(
        e.outcome
            .output
            .starts_with("Reference count after threading: 2\n"),
        "{}",
        e.outcome.output
    );
    let r = threaded::run::<Std>(Arc::new(p), RunOptions::default()).unwrap();
    assert!(
        r.output.starts_with("Reference count after threading: 2\n"),
        "{}",
        r.output
    );
}

// ---------------------------------------------------------------------------------------------
// VM-5 … VM-8: the policy tables, transcribed again from spec/bytecode.md

/// The dynamic cases of an instruction: taken or not, exact bool or not, what a call called,
/// whether a return went to a caller, whether it left an exception handler, and whether
/// `BEFORE_WITH` follows.
fn cases(i: Instr) -> Vec<Executed> {
    let mut out = Vec::new();
    for next in [Instr::Nop, Instr::BeforeWith] {
        for taken in [false, true] {
            for exact_bool in [false, true] {
                for callee in [
                    None,
                    Some(Callee::Python),
                    Some(Callee::Native(CallPoll::Polls)),
                    Some(Callee::Native(CallPoll::Fast)),
                ] {
                    for returned_to_caller in [false, true] {
                        for leaves_handler in [false, true] {
                            out.push(Executed {
                                instr: i,
                                next: Some(next),
                                taken,
                                exact_bool,
                                callee,
                                returned_to_caller,
                                leaves_handler,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// The spec's tables, written independently of `policy.rs`.
fn spec_polls(p: Policy, e: &Executed) -> bool {
    use Instr::*;
    let cond_jump = matches!(
        e.instr,
        PopJumpForwardIfFalse(_)
            | PopJumpForwardIfTrue(_)
            | PopJumpBackwardIfFalse(_)
            | PopJumpBackwardIfTrue(_)
    );
    // `and`/`or` as values: 3.8/3.9 fast-dispatch on an exact bool; 3.10 and 3.11+ never poll
    // there (no CHECK_EVAL_BREAKER in JUMP_IF_*_OR_POP; forward only in 3.11).
    let or_pop = matches!(e.instr, JumpIfTrueOrPop(_) | JumpIfFalseOrPop(_));
    let native_call = matches!(e.callee, Some(Callee::Native(_)))
        && matches!(e.instr, Call(_) | CallFunctionEx(_));
    let none_jump = matches!(
        e.instr,
        PopJumpForwardIfNone(_)
            | PopJumpForwardIfNotNone(_)
            | PopJumpBackwardIfNone(_)
            | PopJumpBackwardIfNotNone(_)
    );
    match p {
        Policy::Every => true,
        // VM-15: 3.12 puts handlers after the code and jumps back from them (JUMP_BACKWARD).
        Policy::Py312 if e.leaves_handler => true,
        // 3.8/3.9 compile `x is None` to LOAD_CONST, COMPARE_OP (3.8, polls) or IS_OP (3.9,
        // fast), and a jump on an exact bool (fast).
        // A Python frame was pushed (by a CALL or from inside the instruction, VM-13): the
        // instruction completes, and dispatches, when the frame returns.
        Policy::Py38 | Policy::Py39 if e.callee == Some(Callee::Python) => false,
        Policy::Py38 | Policy::Py39 if none_jump => p == Policy::Py38 && e.next != Some(BeforeWith),
        Policy::Py38 | Policy::Py39 => {
            let fast = matches!(
                e.instr,
                Nop | LoadFast(_)
                    | LoadConst(_)
                    | StoreFast(_)
                    | PopTop
                    | Copy(_)
                    | Swap(_)
                    | JumpForward(_)
                    | PushNull
                    | KwNames(_)
                    // 3.11's frame prologue: 3.8/3.9 make cells when they make the frame.
                    | MakeCell(_)
                    | CopyFreeVars(_)
            ) || (p == Policy::Py39
                && matches!(e.instr, IsOp(_) | ContainsOp(_) | LoadAssertionError));
            let silent_return =
                matches!(e.instr, ReturnValue | ReturnGenerator) && !e.returned_to_caller;
            // YIELD_VALUE leaves the frame without dispatching (VM-5).
            let silent = e.next == Some(BeforeWith)
                || fast
                || e.instr == YieldValue
                || ((cond_jump || or_pop) && e.exact_bool)
                || silent_return;
            !silent
        }
        Policy::Py310 => match e.instr {
            Resume(_) | JumpBackward(_) => true,
            _ if cond_jump || none_jump => e.taken,
            Call(_) | CallFunctionEx(_) => native_call,
            ReturnValue | ReturnGenerator => e.returned_to_caller,
            _ => false,
        },
        Policy::Py311 | Policy::Py312 | Policy::Py313 => match e.instr {
            Resume(a) => a < 2,
            JumpBackward(_) => true,
            PopJumpBackwardIfFalse(_)
            | PopJumpBackwardIfTrue(_)
            | PopJumpBackwardIfNone(_)
            | PopJumpBackwardIfNotNone(_) => e.taken,
            Call(_) | CallFunctionEx(_) => e.callee == Some(Callee::Native(CallPoll::Polls)),
            _ => false,
        },
    }
}

/// One instruction of each kind, and `RESUME` with each argument: where the frame resumes (0:
/// function start, 1: after `yield`, 2: after `yield from`, 3: after `await`); 3.11+ poll only
/// for 0 and 1.
fn instrs_and_every_resume() -> Vec<Instr> {
    let resumes = (1..4).map(Instr::Resume);
    one_of_each_instr().into_iter().chain(resumes).collect()
}

fn check_table(policies: &[Policy]) {
    let mut checked = 0;
    for &p in policies {
        for i in instrs_and_every_resume() {
            for e in cases(i) {
                assert_eq!(
                    p.polls(&e),
                    spec_polls(p, &e),
                    "{p} after {} in {e:?}",
                    i.name()
                );
                checked += 1;
            }
            // A thread's last step never polls.
            assert!(
                !p.polls(&Executed::plain(i, None)),
                "{p}: poll after the last step"
            );
        }
    }
    println!("{checked} cases agree with the spec's table");
}

/// VM-5 … VM-8, VM-15: the mark `dis` prints for an instruction says exactly in which of its run-time
/// cases the policy polls after it.
#[test]
fn vm5_dis_marks_agree_with_the_policies() {
    use policy::Mark;
    let mut checked = 0;
    for p in Policy::ALL {
        for i in instrs_and_every_resume() {
            for next in [Instr::Nop, Instr::BeforeWith] {
                let m = p.mark(i, Some(next));
                let call = matches!(i, Instr::Call(_) | Instr::CallFunctionEx(_));
                for e in cases(i) {
                    // Leaving a handler is marked from the code object (`Code::leaves_handler`,
                    // `Policy::polls_leaving_handler`), checked below.
                    if e.next != Some(next) || e.callee.is_some() != call || e.leaves_handler {
                        continue;
                    }
                    let said = match m {
                        Mark::Never => false,
                        Mark::Always => true,
                        Mark::IfTaken => e.taken,
                        Mark::IfNotExactBool => !e.exact_bool,
                        Mark::AfterNativeCall => matches!(e.callee, Some(Callee::Native(_))),
                        Mark::AfterSlowNativeCall => {
                            e.callee == Some(Callee::Native(CallPoll::Polls))
                        }
                        Mark::AfterReturnToCaller => e.returned_to_caller,
                        Mark::LeavingHandler => e.leaves_handler,
                    };
                    assert_eq!(said, p.polls(&e), "{p}: {m:?} after {} in {e:?}", i.name());
                    checked += 1;
                }
            }
        }
    }
    for p in Policy::ALL {
        assert_eq!(p.polls_leaving_handler(), p == Policy::Py312, "{p}");
    }
    println!("{checked} cases agree with their marks");
}

/// VM-5: 3.8 and 3.9 poll before almost every instruction.
#[test]
fn vm5_policy_38_39_table() {
    check_table(&[Policy::Py38, Policy::Py39]);
    let e = Executed::plain(Instr::IsOp(false), Some(Instr::Nop));
    assert!(
        Policy::Py38.polls(&e) && !Policy::Py39.polls(&e),
        "IS_OP is 3.9's fast opcode"
    );
    // The step table says why: a frame's entry polls as in 3.10+, not as an ordinary instruction.
    let entry = Executed::plain(Instr::Resume(0), Some(Instr::Nop));
    for p in [Policy::Py38, Policy::Py39, Policy::Py310] {
        assert_eq!(p.reason(&entry), Some("frame entry"), "{p}");
    }
}

/// VM-6: 3.10 polls at frame entry, backward jumps, taken conditional jumps and after calls.
#[test]
fn vm6_policy_310_table() {
    check_table(&[Policy::Py310]);
}

/// VM-7: 3.11–3.13 poll at RESUME, JUMP_BACKWARD and after C calls other than the fast ones;
/// VM-15: 3.12 also where a handler jumps back to ordinary code (the shared table, `cases`).
#[test]
fn vm7_policy_311_313_table() {
    check_table(&[Policy::Py311, Policy::Py312, Policy::Py313]);
    // The read–modify–write of `shared_counter["value"] += 1` has no poll point on 3.11.
    let scenario = scenario("seed-unsafe-increment", 2, 1);
    let code = scenario
        .codes
        .iter()
        .find(|c| c.name == "increment")
        .unwrap();
    let read = code
        .instrs
        .iter()
        .position(|i| *i == Instr::BinarySubscr)
        .unwrap();
    let write = code
        .instrs
        .iter()
        .position(|i| *i == Instr::StoreSubscr)
        .unwrap();
    for at in read..write {
        let m = Policy::Py311.mark(code.instrs[at], Some(code.instrs[at + 1]));
        assert_eq!(
            m,
            policy::Mark::Never,
            "3.11 polls after {}",
            code.instrs[at].name()
        );
        let m = Policy::Py39.mark(code.instrs[at], Some(code.instrs[at + 1]));
        if matches!(
            code.instrs[at],
            Instr::BinarySubscr | Instr::BinaryOp { .. }
        ) {
            assert_eq!(
                m,
                policy::Mark::Always,
                "3.9 must poll after {}",
                code.instrs[at].name()
            );
        }
    }
}

/// VM-8: `every` polls between any two instructions.
#[test]
fn vm8_policy_every_table() {
    check_table(&[Policy::Every]);
}

// ---------------------------------------------------------------------------------------------
// VM-9, VM-10

/// VM-9: every scenario runs on real threads under each policy to a clean end: no rule
/// violated, the audit exact, every object freed, the same output as the explorer's first
/// schedule where the output does not depend on time or on the schedule.
#[test]
fn vm9_real_runs_are_clean() {
    for s in SCENARIOS {
        let (threads, iterations) = (s.check_size.threads, s.check_size.iterations);
        let p = scenario(s.name, threads, iterations);
        for policy in Policy::ALL {
            let opts = RunOptions {
                policy,
                switch_interval: 1e-5,
                ..RunOptions::default()
            };
            let r = threaded::run::<Std>(Arc::new(p.clone()), opts).unwrap();
            assert_eq!(r.failure, None, "{} {policy}", s.name);
            assert!(r.leaks.is_clean(), "{} {policy}: {}", s.name, r.leaks);
            assert_eq!(r.stats.allocated, r.stats.freed, "{} {policy}", s.name);
            if !matches!(
                s.name,
                "seed-cpu-bound" | "io-bound" | "convoy" | "seed-unsafe-increment" | "call-between"
            ) {
                let e = first(&p, policy);
                assert_eq!(r.output, e.outcome.output, "{} {policy}", s.name);
            }
        }
    }
}

/// VM-10, LU-4: the seed's claim-1 program at its own sizes on real threads with a 10 µs switch
/// interval (thousands of switches): exact counts (the audit), every object freed.
#[test]
fn vm10_refcount_scenario_exact_on_real_threads() {
    let iterations = if cfg!(debug_assertions) {
        5_000
    } else {
        100_000
    };
    let p = scenario("seed-refcount", 4, iterations);
    let opts = RunOptions {
        policy: Policy::Py39,
        switch_interval: 1e-5,
        ..RunOptions::default()
    };
    let r = threaded::run::<Std>(Arc::new(p), opts).unwrap();
    assert_eq!(r.failure, None);
    assert!(r.leaks.is_clean(), "{}", r.leaks);
    assert_eq!(r.stats.allocated, r.stats.freed);
    assert!(
        r.output.starts_with("Reference count after threading: 2\n"),
        "{}",
        r.output
    );
    println!(
        "4 × {iterations} reads, {} GIL switches, {} objects, all freed",
        r.switches, r.stats.allocated
    );
}

/// VM-11: a thread that ends with an uncaught exception releases every reference its frames held,
/// as one that returns does: after the join, the main thread's `sys.getrefcount(shared)` is the
/// same both ways (the thread's local `x` referred to `shared`), on the explorer and on real
/// threads.
#[test]
fn vm11_exception_releases_the_threads_references() {
    let program = |raises: bool| {
        let work: support::Body = Box::new(move |f| {
            f.load_global("shared").store_fast("x");
            if raises {
                f.load_int(1)
                    .load_int(0)
                    .binary(BinOp::FloorDiv)
                    .op(Instr::PopTop);
            }
        });
        support::threads_program_then(&[], vec![work], |m| {
            m.line(7)
                .import_name("sys")
                .store_name("sys")
                .op(Instr::PushNull)
                .load_name("print")
                .load_name("sys")
                .load_method("getrefcount")
                .load_name("shared")
                .call(1)
                .call(1)
                .op(Instr::PopTop);
        })
    };
    let count = |out: &str| out.lines().last().unwrap_or("").to_string();
    for raises in [false, true] {
        let p = program(raises);
        let explored = first(&p, Policy::Py311);
        assert_eq!(explored.failure, None, "raises: {raises}");
        let real = threaded::run::<Std>(Arc::new(p), RunOptions::default())
            .unwrap()
            .output;
        assert_eq!(
            explored.outcome.output.contains("ZeroDivisionError"),
            raises,
            "{}",
            explored.outcome.output
        );
        // `shared` is held by the module's globals and by getrefcount's argument.
        assert_eq!(count(&explored.outcome.output), "2", "raises: {raises}");
        assert_eq!(count(&real), "2", "real threads, raises: {raises}");
    }
}

/// VM-3: `is`, `is not`, `in`, `not in` (on a str, a list and a dict) and `not` give Python's
/// answers: each expression is its own program `print(repr(EXPR))`, run once.
#[test]
fn vm3_identity_membership_and_not_follow_python() {
    type Push = fn(&mut CodeBuilder);
    let none: Push = |m| {
        m.load_none();
    };
    let one: Push = |m| {
        m.load_int(1);
    };
    let s_a: Push = |m| {
        m.load_str("a");
    };
    let s_d: Push = |m| {
        m.load_str("d");
    };
    let s_abc: Push = |m| {
        m.load_str("abc");
    };
    let empty: Push = |m| {
        m.load_str("");
    };
    let list12: Push = |m| {
        m.load_int(1).load_int(2).op(Instr::BuildList(2));
    };
    let dict_a: Push = |m| {
        m.load_str("a").load_int(1).op(Instr::BuildMap(1));
    };
    let cases: Vec<(&str, Vec<Push>, Instr, &str)> = vec![
        ("None is None", vec![none, none], Instr::IsOp(false), "True"),
        ("1 is None", vec![one, none], Instr::IsOp(false), "False"),
        (
            "None is not None",
            vec![none, none],
            Instr::IsOp(true),
            "False",
        ),
        ("1 is not None", vec![one, none], Instr::IsOp(true), "True"),
        (
            "'a' in 'abc'",
            vec![s_a, s_abc],
            Instr::ContainsOp(false),
            "True",
        ),
        (
            "'d' in 'abc'",
            vec![s_d, s_abc],
            Instr::ContainsOp(false),
            "False",
        ),
        (
            "'a' not in 'abc'",
            vec![s_a, s_abc],
            Instr::ContainsOp(true),
            "False",
        ),
        (
            "'d' not in 'abc'",
            vec![s_d, s_abc],
            Instr::ContainsOp(true),
            "True",
        ),
        (
            "1 in [1, 2]",
            vec![one, list12],
            Instr::ContainsOp(false),
            "True",
        ),
        (
            "None in [1, 2]",
            vec![none, list12],
            Instr::ContainsOp(false),
            "False",
        ),
        (
            "'a' in {'a': 1}",
            vec![s_a, dict_a],
            Instr::ContainsOp(false),
            "True",
        ),
        (
            "1 not in {'a': 1}",
            vec![one, dict_a],
            Instr::ContainsOp(true),
            "True",
        ),
        ("not None", vec![none], Instr::UnaryNot, "True"),
        ("not 1", vec![one], Instr::UnaryNot, "False"),
        ("not ''", vec![empty], Instr::UnaryNot, "True"),
        ("not 'abc'", vec![s_abc], Instr::UnaryNot, "False"),
        ("not [1, 2]", vec![list12], Instr::UnaryNot, "False"),
    ];
    for (expr, operands, op, want) in cases {
        let mut m = CodeBuilder::module();
        m.op(Instr::Resume(0))
            .op(Instr::PushNull)
            .load_name("print")
            .op(Instr::PushNull)
            .load_name("repr");
        for push in &operands {
            push(&mut m);
        }
        m.op(op).call(1).call(1).op(Instr::PopTop);
        m.load_none().op(Instr::ReturnValue);
        let p = Program {
            name: "ops".into(),
            source: format!("print(repr({expr}))\n"),
            codes: vec![m.finish()],
        };
        p.validate().unwrap();
        let e = first(&p, Policy::Py311);
        assert_eq!(e.failure, None, "{expr}");
        assert_eq!(e.outcome.output, format!("{want}\n"), "{expr}");
    }
}

/// VM-1: instructions the scenarios do not reach behave as in CPython 3.11:
/// `BUILD_CONST_KEY_MAP` (`{'a': 1, 'b': 2}`), `FOR_ITER` over a range that counts down
/// (`range(3, 0, -1)`), and `RAISE_VARARGS` of `AssertionError('boom')`, whose message the failed
/// assertion reports (`assert False, 'boom'`).
#[test]
fn vm1_const_key_maps_falling_ranges_and_assert_messages() {
    let run = |body: &dyn Fn(&mut CodeBuilder)| first(&support::module(body), Policy::Py311);
    // print({'a': 1, 'b': 2})
    let e = run(&|m| {
        m.op(Instr::PushNull)
            .load_name("print")
            .load_int(1)
            .load_int(2)
            .load_const(Const::Tuple(vec![
                Const::Str("a".into()),
                Const::Str("b".into()),
            ]))
            .op(Instr::BuildConstKeyMap(2))
            .call(1)
            .op(Instr::PopTop);
    });
    assert_eq!(
        (e.failure, e.outcome.output.as_str()),
        (None, "{'a': 1, 'b': 2}\n")
    );
    // for i in range(3, 0, -1):
    //     print(i)
    let e = run(&|m| {
        m.op(Instr::PushNull)
            .load_name("range")
            .load_int(3)
            .load_int(0)
            .load_int(-1)
            .call(3)
            .op(Instr::GetIter);
        let top = m.here();
        let end = m.new_label();
        m.jump(Instr::ForIter, end)
            .store_name("i")
            .op(Instr::PushNull)
            .load_name("print")
            .load_name("i")
            .call(1)
            .op(Instr::PopTop);
        m.jump(Instr::JumpBackward, top).bind(end);
    });
    assert_eq!((e.failure, e.outcome.output.as_str()), (None, "3\n2\n1\n"));
    // assert False, 'boom'
    let e = run(&|m| {
        m.op(Instr::LoadAssertionError)
            .load_str("boom")
            .call(0)
            .op(Instr::RaiseVarargs(1));
    });
    assert_eq!(
        e.failure,
        Some(Failure::Assertion("boom (in MainThread)".into())),
        "{}",
        e.outcome.output
    );
    assert!(
        e.outcome.output.ends_with("\nAssertionError: boom\n"),
        "{}",
        e.outcome.output
    );
}

/// A file of the repository compiled at 2 threads × `iterations`.
fn compiled(path: &str, iterations: u64) -> Program {
    let shrink = gilcheck::compile::Shrink {
        threads: Some(2),
        iterations: Some(iterations),
    };
    support::compile_file(std::path::Path::new(path), shrink)
}

/// VM-12: a generator's frame runs on the thread that resumes it and polls at its own `RESUME 1`
/// and `JUMP_BACKWARD`: a generator expression consumed by `sum` between the read and the write
/// of a shared counter opens the window on every version, with one preemption, while the same
/// read and write with nothing between (the twin) never loses on 3.10–3.13. Every step's
/// refcounts are audited (the explorer's VM-2 audit), generator frames included.
#[test]
fn vm12_generator_frames_poll_at_their_resume() {
    let with_gen = compiled("tests/conformance/generator_between.py", 1);
    let plain = compiled("tests/conformance/dict_entry.py", 1);
    for policy in Policy::ALL {
        let v = support::verdict(&with_gen, policy, &support::dfs(None));
        let gilcheck::explore::engine::Verdict::Fail(c) = v else {
            panic!("{policy}: the generator between the read and the write lost nothing");
        };
        assert_eq!(c.execution.preemptions, 1, "{policy}: {}", c.found);
        assert!(c.what.contains("shared"), "{policy}: {}", c.what);
        let switch = c
            .execution
            .rows()
            .find(|r| r.gil.contains("preempted"))
            .expect("a preemption");
        assert!(
            matches!(policy, Policy::Py38 | Policy::Py39 | Policy::Every)
                || switch.code == "<genexpr>",
            "{policy}: switched in {} at {}",
            switch.code,
            switch.instr
        );
        let twin = support::verdict(&plain, policy, &support::dfs(None));
        let lost = matches!(twin, gilcheck::explore::engine::Verdict::Fail(_));
        assert_eq!(
            lost,
            matches!(policy, Policy::Py38 | Policy::Py39 | Policy::Every),
            "{policy}: the twin"
        );
    }
}

/// VM-13: a Python function CPython runs from inside an instruction is a frame of its own that
/// polls at its `RESUME`. A property's setter (from `STORE_ATTR`) and a user `__iadd__` (from
/// `BINARY_OP`) run between the read and the write, so the update is lost on every version, by
/// one preemption that falls in that frame (or one it calls) on 3.10–3.13. The twins keep the read and the write
/// together: a method doing `self.n += 1` (its frame polls before the read) and a getter that
/// reads and returns into `LOAD_ATTR` (3.10 polls after a returning call only at a `CALL`)
/// never lose on 3.10–3.13, and lose on 3.8/3.9 and under `every`.
#[test]
fn vm13_frames_run_from_inside_an_instruction_poll_at_their_resume() {
    use gilcheck::explore::engine::Verdict;
    let between = [
        ("tests/conformance/property_increment.py", &["value"][..]),
        // `__iadd__` builds its result with `Total(…)`, whose `__init__` returns into a CALL.
        (
            "tests/conformance/user_iadd.py",
            &["__iadd__", "__init__"][..],
        ),
    ];
    let together = [
        "tests/conformance/method_increment.py",
        "tests/conformance/property_getter_read.py",
    ];
    for policy in Policy::ALL {
        for (path, frame_code) in between {
            let v = support::verdict(&compiled(path, 2), policy, &support::dfs(None));
            let Verdict::Fail(c) = v else {
                panic!("{policy}: {path} lost nothing");
            };
            assert_eq!(c.execution.preemptions, 1, "{policy} {path}: {}", c.found);
            let switch = c
                .execution
                .rows()
                .find(|r| r.gil.contains("preempted"))
                .expect("a preemption");
            assert!(
                matches!(policy, Policy::Py38 | Policy::Py39 | Policy::Every)
                    || frame_code.contains(&switch.code.as_str()),
                "{policy} {path}: switched in {} at {}",
                switch.code,
                switch.instr
            );
        }
        for path in together {
            let v = support::verdict(&compiled(path, 2), policy, &support::dfs(None));
            assert_eq!(
                matches!(v, Verdict::Fail(_)),
                matches!(policy, Policy::Py38 | Policy::Py39 | Policy::Every),
                "{policy}: {path}"
            );
        }
    }
}

/// A conformance program compiled at 2 threads × 1 iteration, with `edit` applied.
fn conformance_edited(file: &str, edit: (&str, &str)) -> Program {
    let path = format!("{}/tests/conformance/{file}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).expect("a conformance program");
    assert!(source.contains(edit.0), "{file} has no {:?}", edit.0);
    let shrink = gilcheck::compile::Shrink {
        threads: Some(2),
        iterations: Some(1),
    };
    gilcheck::compile::compile(&source.replace(edit.0, edit.1), &path, file, &shrink)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

/// VM-14: a key with a Python `__hash__` makes `d[key] += 1` lose updates on every version (the
/// write's `__hash__` frame polls at its RESUME, between the read and the write), and so does a
/// Counter's first read of a missing key (`Counter.__missing__` is Python); with the default
/// hash (the twin), and with the key already in the Counter (the twin), 3.10–3.13 lose nothing.
/// A defaultdict(int)'s missing key is C: it loses only where the plain dict does (3.8/3.9).
#[test]
fn vm14_python_hash_and_missing_keys_run_frames() {
    use gilcheck::explore::engine::Verdict;
    let keep = ("\n", "\n");
    let loses = |p: &Program, policy: Policy| {
        matches!(
            support::verdict(p, policy, &support::dfs(None)),
            Verdict::Fail(_)
        )
    };
    let cases: [(&str, (&str, &str), bool); 5] = [
        ("python_hash_key.py", keep, true),
        (
            "python_hash_key.py",
            ("    def __hash__(self):\n        return 42\n", "    pass\n"),
            false,
        ),
        ("counter_increment.py", keep, true),
        (
            "counter_increment.py",
            ("counts = Counter()", "counts = Counter(n=0)"),
            false,
        ),
        ("defaultdict_increment.py", keep, false),
    ];
    for (file, edit, every_version) in cases {
        let p = conformance_edited(file, edit);
        for policy in Policy::ALL {
            let expected =
                every_version || matches!(policy, Policy::Py38 | Policy::Py39 | Policy::Every);
            assert_eq!(loses(&p, policy), expected, "{file} {edit:?} {policy}");
        }
    }
}

/// VM-11: `raise` of a built-in exception ends the thread with CPython's report — the thread's
/// name as each version gives it (`Thread-2 (check)` on 3.10+, `Thread-2` before), the line, the
/// exception with its message, and a class raised bare prints without a colon — and the
/// program goes on.
#[test]
fn vm11_raise_reports_as_cpython() {
    let source = "import threading\n\ndone = []\n\n\ndef check(n):\n    if n < 0:\n        raise ValueError(f\"negative: {n}\")\n    done.append(n)\n\n\ndef fails():\n    raise KeyError\n\n\nfor n in [1, -2]:\n    t = threading.Thread(target=check, args=(n,))\n    t.start()\n    t.join()\nt = threading.Thread(target=fails)\nt.start()\nt.join()\nprint(done)\n";
    let (p, _) = gilcheck::compile::compile(source, "raises.py", "raises", &Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    for (policy, name) in [
        (Policy::Py39, "Thread-2"),
        (Policy::Py311, "Thread-2 (check)"),
    ] {
        let out = first(&p, policy).outcome.output;
        assert!(
            out.contains(&format!(
                "Exception in thread {name}:\nTraceback (most recent call last):\n  File \"raises.py\", line 8, in check\n    raise ValueError(f\"negative: {{n}}\")\nValueError: negative: -2\n"
            )),
            "{policy}: {out}"
        );
        assert!(out.contains("\nKeyError\n"), "{policy}: {out}");
        assert!(out.ends_with("[1]\n"), "{policy}: {out}");
    }
}
