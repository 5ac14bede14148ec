//! The Python front end's rules that need no CPython: what it refuses and how (CO-1), that no
//! input makes it panic (CO-1), and which literals a smaller instance replaces (CO-5). Its
//! agreement with CPython 3.11 is checked in `tests/cpython_oracle.rs` (CO-2 … CO-4).

use gilcheck::compile::{self, ErrorKind, Shrink};
use proptest::prelude::*;
use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("readable")
}

const SEEDS: [&str; 4] = [
    "examples/seed/refcount.py",
    "examples/seed/cpu_bound.py",
    "examples/seed/unsafe_increment.py",
    "examples/seed/locked_increment.py",
];

/// CO-5: `--threads` replaces the `range(K)` that creates the threads and `--iterations` the
/// literals the threads start with and their target is called with — nothing else; each
/// replacement is reported with its place; a file with nothing to replace is refused.
#[test]
fn co5_shrink_replaces_the_thread_and_iteration_literals() {
    let both = Shrink {
        threads: Some(2),
        iterations: Some(3),
    };
    let source = read("examples/seed/unsafe_increment.py");
    let (program, changes) = compile::compile(&source, "u.py", "u", &both).expect("compiles");
    let listed: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        listed,
        [
            "line 11:53: 10000 → 3 (iterations)",
            "line 11:77: 4 → 2 (threads)"
        ],
        "{listed:?}"
    );
    // The constants: the new args tuple (in the comprehension) and the new thread count (in
    // the module); the expected total in the f-string's text is left alone.
    use gilcheck::vm::Const;
    let listcomp = program
        .codes
        .iter()
        .find(|c| c.name == "<listcomp>")
        .expect("a listcomp");
    assert!(
        listcomp.consts.contains(&Const::Tuple(vec![Const::Int(3)])),
        "{:?}",
        listcomp.consts
    );
    let consts = &program.module().consts;
    assert!(consts.contains(&Const::Int(2)), "{consts:?}");
    assert!(!consts.contains(&Const::Int(4)), "{consts:?}");
    assert!(
        consts.contains(&Const::Str("Expected: 40000, Got: ".into())),
        "{consts:?}"
    );
    // cpu_bound.py: the two direct calls of the target and both args tuples; its threads are
    // started one by one, so --threads does not apply.
    let source = read("examples/seed/cpu_bound.py");
    let iters = Shrink {
        threads: None,
        iterations: Some(5),
    };
    let (_, changes) = compile::compile(&source, "c.py", "c", &iters).expect("compiles");
    let lines: Vec<u32> = changes.iter().map(|c| c.line).collect();
    assert_eq!(lines, [11, 12, 17, 18], "{changes:?}");
    let e = compile::compile(&source, "c.py", "c", &both).expect_err("no thread count to replace");
    assert_eq!(e.kind, ErrorKind::Option);
    assert!(
        e.to_string()
            .starts_with("--threads does not apply to c.py"),
        "{e}"
    );
    // A file without threads: neither applies.
    let e = compile::compile("x = 1\n", "x.py", "x", &iters).expect_err("nothing to replace");
    assert!(
        e.to_string().starts_with("--iterations does not apply"),
        "{e}"
    );
    // Without options nothing changes.
    for seed in SEEDS {
        let (_, changes) =
            compile::compile(&read(seed), seed, "s", &Shrink::default()).expect("compiles");
        assert!(changes.is_empty(), "{seed}: {changes:?}");
    }
}

/// A mutation of a source text.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteByte(usize),
    InsertByte(usize, u8),
    SwapLines(usize, usize),
    DuplicateLine(usize),
    Truncate(usize),
}

fn mutate(source: &str, ms: &[Mutation]) -> Vec<u8> {
    let mut bytes = source.as_bytes().to_vec();
    for m in ms {
        let n = bytes.len().max(1);
        match *m {
            Mutation::DeleteByte(i) => {
                if !bytes.is_empty() {
                    bytes.remove(i % n);
                }
            }
            Mutation::InsertByte(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Truncate(i) => bytes.truncate(i % n),
            Mutation::SwapLines(a, b) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                let k = lines.len().max(1);
                if !lines.is_empty() {
                    lines.swap(a % k, b % k);
                }
                bytes = lines.join("\n").into_bytes();
            }
            Mutation::DuplicateLine(a) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let k = a % lines.len();
                    lines.insert(k, lines[k]);
                }
                bytes = lines.join("\n").into_bytes();
            }
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteByte),
        (
            any::<usize>(),
            prop::sample::select(b"()[]{}:=+-*/ \n\t\"'#fx0_.,\\".to_vec())
        )
            .prop_map(|(i, b)| Mutation::InsertByte(i, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// CO-1: mutated example files (bytes deleted, inserted, lines swapped and duplicated, the
    /// text cut short) compile or are refused with a SyntaxError (an IndentationError among them)
    /// or an `unsupported` message,
    /// with or without a smaller instance asked for; the front end never panics. Whatever
    /// compiles also validates (`compile` validates every program it returns).
    #[test]
    fn co1_mutated_sources_never_panic(
        file in prop::sample::select(vec![
            "examples/seed/refcount.py",
            "examples/seed/cpu_bound.py",
            "examples/seed/unsafe_increment.py",
            "examples/seed/locked_increment.py",
            "examples/convoy.py",
            "tests/compile/control_flow.py",
            "tests/compile/generators.py",
            "tests/compile/values.py",
            "tests/compile/super_calls.py",
            "tests/compile/thread_subclass.py",
            "tests/compile/formatting.py",
            "tests/compile/finally_exits.py",
            "tests/compile/exceptions.py",
        ]),
        ms in prop::collection::vec(mutation(), 1..4),
        shrink in any::<bool>(),
    ) {
        let bytes = mutate(&read(file), &ms);
        let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
        let s = if shrink {
            Shrink { threads: Some(2), iterations: Some(2) }
        } else {
            Shrink::default()
        };
        match compile::compile(&text, "m.py", "m", &s) {
            Ok((program, _)) => prop_assert!(program.validate().is_ok()),
            Err(e) => {
                let shown = e.to_string();
                prop_assert!(e.line >= 1 && e.column >= 1, "{shown}");
                prop_assert!(
                    shown.starts_with("SyntaxError: ")
                        || shown.starts_with("IndentationError: ")
                        || shown.starts_with("unsupported: ")
                        || shown.contains("does not apply"),
                    "{shown}"
                );
            }
        }
    }
}

/// CO-5: a scenario at its run size is its file as written — no literal is replaced. (Before
/// this held, `convoy` at its run size replaced its I/O thread's call count `10` by the CPU
/// thread's 3 000 000 and ran for hours.)
#[test]
fn co5_a_scenario_at_its_run_size_is_its_file_as_written() {
    use gilcheck::scenarios::{self, Params};
    for s in scenarios::SCENARIOS {
        let params = Params {
            threads: s.run_size.threads,
            iterations: s.run_size.iterations,
            processes: false,
        };
        let (program, changes) = scenarios::build_with_changes(s.name, params).expect("builds");
        assert!(changes.is_empty(), "{}: {changes:?}", s.name);
        let (as_written, _) =
            compile::compile(s.source, s.file, s.name, &Shrink::default()).expect("compiles");
        assert_eq!(
            format!("{:?}", program.codes),
            format!("{:?}", as_written.codes),
            "{}",
            s.name
        );
    }
    // The smaller instance of the same scenario does replace its literals.
    let (_, changes) = scenarios::build_with_changes(
        "convoy",
        Params {
            threads: 2,
            iterations: 2,
            processes: false,
        },
    )
    .expect("builds");
    assert!(changes.len() >= 2, "{changes:?}");
}

mod support;

/// CO-6: `lock.acquire(); try: … finally: lock.release()` runs its ordinary path as CPython
/// does: the conformance program loses no update on any version, every schedule at 2 threads
/// × 1; its twin without the acquire and the release loses on 3.8/3.9. Leaving the `try` by
/// `continue` or by `return` (from a function the loop calls) runs the finally body first, as
/// 3.11 compiles it (a copy of the body at the exit): both lose nothing under 3.9, and the
/// `continue` twin whose finally does not release deadlocks.
#[test]
fn co6_try_finally_lock_is_mutual_exclusion() {
    use gilcheck::explore::engine::Verdict;
    use gilcheck::vm::Policy;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/try_finally_lock.py");
    let source = std::fs::read_to_string(&path).expect("readable");
    let shrink = Shrink {
        threads: Some(2),
        iterations: Some(1),
    };
    let twin = source
        .replace("        lock.acquire()", "        pass")
        .replace("            lock.release()", "            pass");
    assert_ne!(twin, source);
    for (text, locked) in [(&source, true), (&twin, false)] {
        let (p, _) = compile::compile(text, "try_finally_lock.py", "try", &shrink).unwrap();
        for policy in Policy::ALL {
            let v = support::verdict(&p, policy, &support::dfs(None));
            let lost = matches!(v, Verdict::Fail(_));
            let expected = !locked && matches!(policy, Policy::Py38 | Policy::Py39 | Policy::Every);
            assert_eq!(lost, expected, "locked {locked} {policy}: {v:?}");
        }
    }
    let with_continue = source.replace(
        "            shared[\"n\"] += 1\n",
        "            shared[\"n\"] += 1\n            continue\n",
    );
    let with_return = source.replace(
        "def work(iterations):\n    for _ in range(iterations):\n        lock.acquire()\n        try:\n            shared[\"n\"] += 1\n        finally:\n            lock.release()\n",
        "def bump():\n    lock.acquire()\n    try:\n        shared[\"n\"] += 1\n        return shared[\"n\"]\n    finally:\n        lock.release()\n\n\ndef work(iterations):\n    for _ in range(iterations):\n        bump()\n",
    );
    let no_release = with_continue.replace("            lock.release()", "            pass");
    for (text, what) in [(&with_continue, "continue"), (&with_return, "return")] {
        assert_ne!(text, &source, "{what}");
        let (p, _) = compile::compile(text, "try_finally_lock.py", what, &shrink).unwrap();
        let v = support::verdict(&p, Policy::Py39, &support::dfs(None));
        assert!(matches!(v, Verdict::Pass { .. }), "{what}: {v:?}");
    }
    let (p, _) = compile::compile(&no_release, "try_finally_lock.py", "n", &shrink).unwrap();
    match support::verdict(&p, Policy::Py39, &support::dfs(None)) {
        Verdict::Fail(c) => assert!(c.what.contains("deadlock"), "{}", c.what),
        v => panic!("the twin whose finally does not release must deadlock: {v:?}"),
    }
}

/// CO-6, VM-15: exceptions go to the handlers CPython's exception table names. An exception
/// leaving a `with lock:` block runs the lock's `__exit__`, so no schedule deadlocks or loses an
/// update (every schedule at 2 threads × 1, where each thread's one increment raises); its twin
/// with `acquire()`/`release()`, whose release the exception skips, deadlocks in every version.
/// A caught exception between the read and the write of a counter loses updates exactly where
/// CPython does (measured, tests/conformance/README.md): 3.8–3.10 poll when the handler starts,
/// 3.12 polls on the jump back from it, 3.11 and 3.13 never poll there.
#[test]
fn co6_exceptions_unwind_to_their_handlers() {
    use gilcheck::explore::engine::Verdict;
    use gilcheck::vm::Policy;
    let read = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/conformance")
            .join(name);
        std::fs::read_to_string(&path).expect("readable")
    };
    let shrink = Shrink {
        threads: Some(2),
        iterations: Some(1),
    };
    let with_lock = read("exception_in_with.py");
    let skips_release = read("exception_skips_release.py");
    for policy in [Policy::Py39, Policy::Py311] {
        let (p, _) = compile::compile(&with_lock, "exception_in_with.py", "w", &shrink).unwrap();
        let v = support::verdict(&p, policy, &support::dfs(None));
        assert!(matches!(v, Verdict::Pass { .. }), "with, {policy}: {v:?}");
        let (p, _) =
            compile::compile(&skips_release, "exception_skips_release.py", "s", &shrink).unwrap();
        match support::verdict(&p, policy, &support::dfs(None)) {
            Verdict::Fail(c) => assert!(c.what.contains("deadlock"), "{policy}: {}", c.what),
            v => panic!("the twin without with must deadlock under {policy}: {v:?}"),
        }
    }
    let between = read("except_between.py");
    let (p, _) = compile::compile(&between, "except_between.py", "b", &shrink).unwrap();
    for policy in Policy::ALL {
        let v = support::verdict(&p, policy, &support::dfs(None));
        let lost = matches!(v, Verdict::Fail(_));
        let expected = !matches!(policy, Policy::Py311 | Policy::Py313);
        assert_eq!(lost, expected, "except between, {policy}: {v:?}");
    }
}

/// VM-3: `+=` on a list and `|=`, `&=`, `-=`, `^=` on a set change the object in place and
/// store it back, as CPython's `list_inplace_concat` and `set_ior` … do, so threads that `+=`
/// onto one shared list lose nothing (every schedule at 2 × 2 under 3.9 and every); the twin
/// `items = items + [1]`, which builds a new list, loses items under 3.9. The set forms give
/// CPython's sets (tests/compile/sets.py prints as CPython 3.11).
#[test]
fn vm3_inplace_operators_change_their_operand() {
    use gilcheck::explore::engine::Verdict;
    use gilcheck::vm::Policy;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/list_iadd_global.py");
    let source = std::fs::read_to_string(&path).expect("readable");
    let twin = source.replace("items += [1]", "items = items + [1]");
    assert_ne!(twin, source);
    let shrink = Shrink {
        threads: Some(2),
        iterations: Some(2),
    };
    for (text, in_place) in [(&source, true), (&twin, false)] {
        let (p, _) = compile::compile(text, "list_iadd_global.py", "l", &shrink).unwrap();
        for policy in [Policy::Py39, Policy::Every] {
            let v = support::verdict(&p, policy, &support::dfs(None));
            let lost = matches!(v, Verdict::Fail(_));
            assert_eq!(lost, !in_place, "in place {in_place}, {policy}: {v:?}");
        }
    }
}

/// VM-11, EX-2: a program ends when its main thread and every thread that is not a daemon have
/// finished: daemon workers blocked in `Queue.get()` are left behind, with no deadlock, and the
/// count is exact on 3.11 and lost on 3.9 (every schedule at 2 × 1); the twin whose workers
/// are not daemons deadlocks (the main thread waits for them at exit, as CPython's
/// `threading._shutdown` does). On real threads the run ends and names the workers left.
#[test]
fn vm11_daemon_threads_are_left_behind() {
    use gilcheck::explore::engine::Verdict;
    use gilcheck::vm::Policy;
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/daemon_queue_workers.py");
    let source = std::fs::read_to_string(&path).expect("readable");
    let twin = source.replace("daemon=True", "daemon=False");
    assert_ne!(twin, source);
    let shrink = Shrink {
        threads: Some(2),
        iterations: Some(1),
    };
    let (p, _) = compile::compile(&source, "daemon_queue_workers.py", "d", &shrink).unwrap();
    let v = support::verdict(&p, Policy::Py311, &support::dfs(None));
    assert!(matches!(v, Verdict::Pass { .. }), "3.11: {v:?}");
    match support::verdict(&p, Policy::Py39, &support::dfs(None)) {
        Verdict::Fail(c) => assert!(c.what.contains("differs"), "3.9: {}", c.what),
        v => panic!("3.9 must lose a count: {v:?}"),
    }
    let (t, _) = compile::compile(&twin, "daemon_queue_workers.py", "d", &shrink).unwrap();
    match support::verdict(&t, Policy::Py311, &support::dfs(None)) {
        Verdict::Fail(c) => assert!(c.what.contains("deadlock"), "twin: {}", c.what),
        v => panic!("the twin without daemons must deadlock: {v:?}"),
    }
    let report = gilcheck::vm::threaded::run::<gilcheck::platform::Std>(
        std::sync::Arc::new(p),
        gilcheck::vm::threaded::RunOptions::default(),
    )
    .expect("runs");
    assert_eq!(report.output, "Got: 2\n");
    assert_eq!(report.daemons_left.len(), 2, "{:?}", report.daemons_left);
}

/// CO-8: a class deriving from threading.Thread runs its own `run` on the new thread, with the
/// attributes its `__init__` set after `super().__init__()`: its read–modify–write of a shared
/// attribute loses updates under 3.9 and never under 3.11 (every schedule at 2 × 2), and the
/// twin whose `run` takes a lock loses nothing under 3.9. `super()` outside a method, and a
/// subclass whose `__init__` forgets `Thread.__init__`, fail as in CPython.
#[test]
fn co8_thread_subclasses_run_their_own_run() {
    use gilcheck::explore::engine::Verdict;
    use gilcheck::vm::Policy;
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/thread_subclass_run.py");
    let source = std::fs::read_to_string(&path).expect("readable");
    let locked = source
        .replace(
            "import threading\n",
            "import threading\n\nlock = threading.Lock()\n",
        )
        .replace(
            "            stats.total += 1",
            "            with lock:\n                stats.total += 1",
        );
    assert_ne!(locked, source);
    let shrink = Shrink {
        threads: Some(2),
        iterations: Some(2),
    };
    let (p, changes) = compile::compile(&source, "thread_subclass_run.py", "t", &shrink).unwrap();
    // `Worker(10000)` is what feeds the thread: --iterations found it.
    assert!(
        changes
            .iter()
            .any(|c| c.what == "iterations" && c.from == "10000"),
        "{changes:?}"
    );
    match support::verdict(&p, Policy::Py39, &support::dfs(None)) {
        Verdict::Fail(c) => assert!(c.what.contains("differs"), "3.9: {}", c.what),
        v => panic!("3.9 must lose an update: {v:?}"),
    }
    let v = support::verdict(&p, Policy::Py311, &support::dfs(None));
    assert!(matches!(v, Verdict::Pass { .. }), "3.11: {v:?}");
    let (l, _) = compile::compile(&locked, "thread_subclass_run.py", "l", &shrink).unwrap();
    let v = support::verdict(&l, Policy::Py39, &support::dfs(None));
    assert!(matches!(v, Verdict::Pass { .. }), "locked, 3.9: {v:?}");
    let run = |text: &str| {
        let (p, _) = compile::compile(text, "t.py", "t", &Shrink::default()).unwrap();
        gilcheck::vm::threaded::run::<gilcheck::platform::Std>(
            std::sync::Arc::new(p),
            gilcheck::vm::threaded::RunOptions::default(),
        )
        .expect("runs")
    };
    let full = run(&source);
    assert_eq!(full.output, "Got: 40000\n");
    let errors = run(concat!(
        "import threading\n",
        "class Forgot(threading.Thread):\n",
        "    def __init__(self):\n",
        "        self.x = 1\n",
        "try:\n",
        "    Forgot().start()\n",
        "except RuntimeError as e:\n",
        "    print(e)\n",
        "def f():\n",
        "    return super()\n",
        "try:\n",
        "    f()\n",
        "except RuntimeError as e:\n",
        "    print(e)\n",
    ));
    assert_eq!(
        errors.output,
        "thread.__init__() not called\nsuper(): no arguments\n"
    );
}

/// VM-16: `%` on a str, `str.format`, `format()` and f-string specs format as CPython's
/// formatter does (tests/compile/formatting.py prints as CPython 3.11, in
/// `co2_compiled_programs_print_what_cpython_prints`); what gilcheck does not model is
/// refused, never formatted differently, and CPython's errors keep their type.
#[test]
fn vm16_formatting_is_cpythons_or_refused() {
    let run = |text: &str| {
        let (p, _) = compile::compile(text, "f.py", "f", &Shrink::default()).unwrap();
        gilcheck::vm::threaded::run::<gilcheck::platform::Std>(
            std::sync::Arc::new(p),
            gilcheck::vm::threaded::RunOptions::default(),
        )
        .expect("runs")
    };
    let ok = run(concat!(
        "x = 7\n",
        "print('%d|%5.2f|%-4s|%r' % (x, x / 3, 'a', 'b'), '{:>4}|{!r}'.format(x, 'q'), f'{x:#06b}', format(x, '+'))\n",
        "try:\n",
        "    print('%d %d' % (1,))\n",
        "except TypeError as e:\n",
        "    print(e)\n",
        "try:\n",
        "    print(format('s', 'd'))\n",
        "except ValueError as e:\n",
        "    print(e)\n",
    ));
    assert_eq!(
        ok.output,
        "7| 2.33|a   |'b'    7|'q' 0b0111 +7\nnot enough arguments for format string\nUnknown format code 'd' for object of type 'str'\n"
    );
    for refused in [
        "print('%(a)s' % {'a': 1})",
        "print(b'%d' % 1)",
        "print('%*d' % (3, 1))",
    ] {
        let r = run(refused);
        let failure = r.failure.unwrap_or_default();
        assert!(
            failure.starts_with("unsupported"),
            "{refused}: {failure:?} {:?}",
            r.output
        );
    }
}

/// CO-1: the syntax errors users hit most, in CPython 3.11's words and at its place (line and
/// column of the bracket left open, of the wrong closer, of the line that lacks its block).
#[test]
fn co1_syntax_errors_in_cpythons_words() {
    let cases: &[(&str, &str, (u32, u32))] = &[
        ("x = (1,\n", "SyntaxError: '(' was never closed", (1, 5)),
        (
            "x = [1, 2\ny = 3\n",
            "SyntaxError: '[' was never closed",
            (1, 5),
        ),
        ("print(\"a\"\n", "SyntaxError: '(' was never closed", (1, 6)),
        (
            "x = '(' + [1\n",
            "SyntaxError: '[' was never closed",
            (1, 11),
        ),
        (
            "x = (1, 2]\n",
            "SyntaxError: closing parenthesis ']' does not match opening parenthesis '('",
            (1, 10),
        ),
        ("if x\n    pass\n", "SyntaxError: expected ':'", (1, 5)),
        (
            "for x in y:\npass\n",
            "IndentationError: expected an indented block after 'for' statement on line 1",
            (2, 1),
        ),
        (
            "def f():\n# c\nreturn 1\n",
            "IndentationError: expected an indented block after function definition on line 1",
            (3, 1),
        ),
        (
            "s = 'abc\n",
            "SyntaxError: unterminated string literal (detected at line 1)",
            (1, 5),
        ),
    ];
    for (source, want, (line, column)) in cases {
        let e = compile::compile(source, "e.py", "e", &Shrink::default()).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with(want), "{source:?}: {text}");
        assert_eq!((e.line, e.column), (*line, *column), "{source:?}: {text}");
    }
}
