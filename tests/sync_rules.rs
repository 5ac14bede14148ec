//! The checks of LOCK-5 … LOCK-7 (`spec/lock.md`): `threading.RLock`, `Condition`,
//! `Semaphore`/`BoundedSemaphore` and `Event` in the explorer's model, every schedule at 2
//! threads × 1 iteration under every policy, each property with a broken twin the explorer must catch, and the
//! errors CPython raises for their misuse. The same primitives on real (shuttle) threads are
//! checked in `verify/shuttle_vm.rs`; the cached search against the full one in
//! `tests/state_cache.rs`.

mod support;

use gilcheck::explore::engine::Verdict;
use gilcheck::platform::Std;
use gilcheck::vm::threaded::{self, RunOptions};
use gilcheck::vm::{Policy, Program};
use std::sync::Arc;

fn compile(source: &str, name: &str) -> Program {
    let shrink = gilcheck::compile::Shrink {
        threads: Some(2),
        iterations: Some(1),
    };
    let file = format!("{name}.py");
    // A program that starts its threads one by one is checked as written.
    gilcheck::compile::compile(source, &file, name, &shrink)
        .or_else(|_| gilcheck::compile::compile(source, &file, name, &Default::default()))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .0
}

fn conformance(file: &str) -> String {
    let path = format!("{}/tests/conformance/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("a conformance program")
}

/// The verdict of every schedule of `source` (at 2 threads × 1) under `policy`.
fn verdict(source: &str, name: &str, policy: Policy) -> Verdict {
    support::verdict(&compile(source, name), policy, &support::dfs(None))
}

fn assert_proved(source: &str, name: &str) {
    for policy in Policy::ALL {
        match verdict(source, name, policy) {
            Verdict::Pass { line, .. } => {
                assert!(line.starts_with("exhaustive"), "{name} {policy}: {line}")
            }
            other => panic!("{name} {policy}: {other:?}"),
        }
    }
}

/// The failure every policy must find in `source`, whose description contains `what`.
fn assert_caught(source: &str, name: &str, policies: &[Policy], what: &str) {
    for &policy in policies {
        match verdict(source, name, policy) {
            Verdict::Fail(c) => assert!(c.what.contains(what), "{name} {policy}: {}", c.what),
            other => panic!("{name} {policy}: not caught: {other:?}"),
        }
    }
}

fn edited(file: &str, from: &str, to: &str) -> String {
    let s = conformance(file);
    assert!(s.contains(from), "{file} has no {from:?}");
    s.replace(from, to)
}

/// What a program prints on real threads (one run, 3.11), and its uncaught-exception reports.
fn run(source: &str, name: &str) -> (String, Option<String>) {
    let p = compile(source, name);
    let opts = RunOptions {
        policy: Policy::Py311,
        ..RunOptions::default()
    };
    let r = threaded::run::<Std>(Arc::new(p), opts).unwrap();
    assert!(r.leaks.is_clean(), "{name}: {}", r.leaks);
    (r.output, r.failure.map(|f| format!("{f:?}")))
}

/// LOCK-5: an RLock taken twice by its owner around the increment loses no update on any
/// version, every schedule explored; the twin on a plain Lock deadlocks in its first schedule
/// (the owner blocks on itself, LOCK-3).
#[test]
fn lock5_rlock_reentry_is_mutual_exclusion() {
    assert_proved(&conformance("rlock_protected.py"), "rlock_protected");
    let twin = edited(
        "rlock_protected.py",
        "threading.RLock()",
        "threading.Lock()",
    );
    assert_caught(&twin, "rlock_twin", &Policy::ALL, "deadlock");
}

/// LOCK-5: only the owner releases an RLock, once per acquire; its count shows in its repr.
#[test]
fn lock5_rlock_owner_and_count() {
    let source = r#"
import threading
lock = threading.RLock()
lock.acquire()
lock.acquire()
print(repr(lock))
lock.release()
lock.release()
print(repr(lock))
def other():
    lock.release()
lock.acquire()
t = threading.Thread(target=other)
t.start()
t.join()
lock.release()
lock.release()
"#;
    let (out, failure) = run(source, "rlock_owner");
    assert!(
        out.contains("<locked _thread.RLock object owner=0 count=2>")
            && out.contains("<unlocked _thread.RLock object owner=0 count=0>"),
        "{out}"
    );
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("RuntimeError"))
        .collect();
    assert_eq!(
        errors,
        [
            "RuntimeError: cannot release un-acquired lock",
            "RuntimeError: cannot release un-acquired lock"
        ],
        "{out} {failure:?}"
    );
}

/// LOCK-6: a Condition's lock excludes, and `wait` returns only after a `notify_all` with the
/// lock held again: the main thread that waits for every worker reads the full total on every
/// schedule. Twins: without the `notify_all` the main thread waits forever (a deadlock); with
/// the increment outside the lock, 3.8/3.9 lose updates; waiting with `if` instead of `while`
/// lets the main thread read before the second worker is done.
#[test]
fn lock6_condition_wait_and_notify() {
    assert_proved(
        &conformance("condition_protected.py"),
        "condition_protected",
    );
    let no_notify = edited("condition_protected.py", "cond.notify_all()", "pass");
    assert_caught(&no_notify, "no_notify", &Policy::ALL, "deadlock");
    let outside = edited(
        "condition_protected.py",
        "        with cond:\n            shared[\"n\"] += 1",
        "        shared[\"n\"] += 1",
    );
    assert_caught(
        &outside,
        "outside",
        &[Policy::Py38, Policy::Py39, Policy::Every],
        "differs",
    );
    let once = edited(
        "condition_protected.py",
        "while finished[\"n\"] < len(threads):",
        "if finished[\"n\"] < len(threads):",
    );
    assert_caught(&once, "once", &Policy::ALL, "differs");
}

/// LOCK-6: `wait` and `notify` need the lock held (CPython's RuntimeErrors).
#[test]
fn lock6_condition_needs_its_lock() {
    let source = r#"
import threading
cond = threading.Condition(threading.Lock())
def waits():
    cond.wait()
def notifies():
    cond.notify()
for f in [waits, notifies]:
    t = threading.Thread(target=f)
    t.start()
    t.join()
print("done")
"#;
    let (out, _) = run(source, "cond_errors");
    for e in [
        "RuntimeError: cannot wait on un-acquired lock",
        "RuntimeError: cannot notify on un-acquired lock",
    ] {
        assert!(out.contains(e), "{e} missing from {out}");
    }
}

/// LOCK-7: a BoundedSemaphore(1) excludes like a lock; the twin with two units lets two
/// threads in, and 3.8/3.9 lose updates. Releasing it past its bound is CPython's ValueError.
#[test]
fn lock7_semaphore_counts_units() {
    assert_proved(
        &conformance("semaphore_protected.py"),
        "semaphore_protected",
    );
    let two = edited(
        "semaphore_protected.py",
        "BoundedSemaphore(1)",
        "BoundedSemaphore(2)",
    );
    assert_caught(
        &two,
        "two_units",
        &[Policy::Py38, Policy::Py39, Policy::Every],
        "differs",
    );
    let source = r#"
import threading
gate = threading.BoundedSemaphore(1)
print(gate.acquire(False), gate.acquire(False))
gate.release()
gate.release()
"#;
    let (out, _) = run(source, "over_release");
    assert!(out.starts_with("True False\n"), "{out}");
    assert!(
        out.contains("ValueError: Semaphore released too many times"),
        "{out}"
    );
}

/// LOCK-7: `Event.wait` returns only once the event has been set: a worker that waits and then
/// reads what the main thread wrote before `set` always sees it. The twin sets the event before
/// writing, and the explorer finds the worker reading too early on every version.
#[test]
fn lock7_event_wait_returns_after_set() {
    let source = r#"
import threading
seen = {"n": 0}
box = {"n": 0}
ready = threading.Event()
def work():
    ready.wait()
    seen["n"] = box["n"]
t = threading.Thread(target=work)
t.start()
box["n"] = 1
ready.set()
t.join()
print(f"Got: {seen['n']} {ready.is_set()}")
"#;
    assert_proved(source, "event_gate");
    let twin = source.replace("box[\"n\"] = 1\nready.set()", "ready.set()\nbox[\"n\"] = 1");
    assert_ne!(twin, source);
    assert_caught(&twin, "event_twin", &Policy::ALL, "differs");
    assert_eq!(run(source, "event_gate").0, "Got: 1 True\n");
}

/// LOCK-7: `queue.Queue`: a worker that takes items until it gets None, marking each done, and a
/// main thread that puts through a bounded queue and joins it, reads the full sum on every
/// schedule; the twin whose worker never calls task_done leaves `join` waiting forever (a
/// deadlock). `get_nowait` on an empty queue and `put_nowait` on a full one raise CPython's
/// exceptions.
#[test]
fn lock7_queue_put_get_task_done_join() {
    let source = r#"
import threading
import queue
tasks = queue.Queue(maxsize=1)
total = {"n": 0}
def worker():
    while True:
        item = tasks.get()
        if item is None:
            tasks.task_done()
            break
        total["n"] += item
        tasks.task_done()
t = threading.Thread(target=worker)
t.start()
tasks.put(1)
tasks.put(2)
tasks.put(None)
tasks.join()
seen = total["n"]
t.join()
print(f"Got: {seen} {tasks.empty()}")
"#;
    assert_proved(source, "queue_worker");
    assert_eq!(run(source, "queue_worker").0, "Got: 3 True\n");
    let twin = source.replace(
        "        total[\"n\"] += item\n        tasks.task_done()",
        "        total[\"n\"] += item",
    );
    assert_ne!(twin, source);
    assert_caught(&twin, "queue_twin", &Policy::ALL, "deadlock");
    let empty = "import queue\nq = queue.Queue(1)\nq.put_nowait(1)\nq.put_nowait(2)\n";
    assert!(run(empty, "full").0.contains("queue.Full"));
    let empty = "import queue\nq = queue.Queue()\nq.get_nowait()\n";
    assert!(run(empty, "empty").0.contains("_queue.Empty"));
}
