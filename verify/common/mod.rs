//! Helpers shared by the model checks in `verify/`.
#![allow(dead_code)]

use std::process::Command;

/// What a check run in a child process printed and how it ended.
pub struct ChildRun {
    pub success: bool,
    pub output: String,
}

/// Runs `body` in a fresh child process (this test binary, filtered to `test_name`), so that a
/// failure which aborts the process (loom aborts on some deadlocks) cannot take the test run down.
/// Returns `None` inside the child, after running `body`; `Some` in the parent.
pub fn isolated(test_name: &str, body: impl FnOnce()) -> Option<ChildRun> {
    if std::env::var("GILCHECK_CHILD").as_deref() == Ok(test_name) {
        body();
        return None;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("GILCHECK_CHILD", test_name)
        .env_remove("LOOM_LOG")
        .output()
        .expect("spawn child test process");
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Some(ChildRun {
        success: out.status.success(),
        output,
    })
}

/// Asserts that a broken twin, run in a child process, failed with `expected` in its output, and
/// prints the line that shows it was caught.
pub fn assert_caught(run: Option<ChildRun>, expected: &str, what: &str) {
    let Some(run) = run else { return };
    assert!(
        !run.success,
        "twin `{what}` was NOT caught: the checker passed it\n{}",
        run.output
    );
    let line = run
        .output
        .lines()
        .find(|l| l.contains(expected) && !l.starts_with("test "));
    assert!(
        line.is_some(),
        "twin `{what}` failed, but not with `{expected}`:\n{}",
        run.output
    );
    println!("twin caught ({what}): {}", line.unwrap().trim());
}

/// Runs a loom model with a preemption bound (`None`: exhaustive) and returns how many executions
/// it explored.
pub fn loom_model<F>(preemption_bound: Option<usize>, f: F) -> usize
where
    F: Fn() + Sync + Send + 'static,
{
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemption_bound;
    builder.check(move || {
        c.fetch_add(1, Ordering::Relaxed);
        f()
    });
    count.load(Ordering::Relaxed)
}

/// A shuttle scheduler, as a check names it in its report line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sched {
    /// Probabilistic Concurrency Testing with this bug depth (number of priority change points).
    Pct { depth: usize },
    /// A uniformly random choice at every scheduling point.
    Random,
}

impl std::fmt::Display for Sched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sched::Pct { depth } => write!(f, "pct(depth {depth})"),
            Sched::Random => write!(f, "random"),
        }
    }
}

/// What one shuttle run found: how many executions it started, and the panic message of the
/// failing one, if any (a failed assertion, or shuttle's own `deadlock!` report).
pub struct ShuttleRun {
    pub executions: usize,
    pub failure: Option<String>,
}

/// The text of a panic payload (`String` or `&str`; anything else is named as such).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "<panic payload that is not a string>".to_string()
    }
}

/// Runs `body`, catching a panic; returns its message, or `None` when `body` returned.
pub fn panic_message(body: impl FnOnce()) -> Option<String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .err()
        .map(|payload| panic_text(&*payload))
}

/// Runs `f` under shuttle for at most `iterations` executions. A failure is caught and returned,
/// not raised: shuttle has already printed the schedule that replays it.
pub fn shuttle_run<F>(sched: Sched, iterations: usize, f: F) -> ShuttleRun
where
    F: Fn() + Send + Sync + 'static,
{
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    let body = move || {
        c.fetch_add(1, Ordering::Relaxed);
        f()
    };
    let failure = panic_message(|| match sched {
        Sched::Pct { depth } => shuttle::check_pct(body, iterations, depth),
        Sched::Random => shuttle::check_random(body, iterations),
    });
    ShuttleRun {
        executions: count.load(Ordering::Relaxed),
        failure,
    }
}

/// Runs `f` under shuttle and fails the test if any execution failed; prints the report line.
pub fn shuttle_passes<F>(test: &str, sched: Sched, threads: usize, iterations: usize, f: F)
where
    F: Fn() + Send + Sync + 'static,
{
    let run = shuttle_run(sched, iterations, f);
    if let Some(message) = run.failure {
        panic!(
            "{test}: shuttle {sched}, {threads} threads: FAILED at iteration {} of {iterations}:\n{message}",
            run.executions
        );
    }
    println!(
        "{test}: shuttle {sched}, {threads} threads, {} iterations: passed",
        run.executions
    );
}

/// Runs a broken twin under shuttle and fails the test unless some execution failed with
/// `expected` in its panic message; prints the report line.
pub fn shuttle_catches<F>(
    test: &str,
    sched: Sched,
    threads: usize,
    iterations: usize,
    expected: &str,
    f: F,
) where
    F: Fn() + Send + Sync + 'static,
{
    let run = shuttle_run(sched, iterations, f);
    let Some(message) = run.failure else {
        panic!(
            "{test}: twin NOT caught: shuttle {sched}, {threads} threads passed all {iterations} iterations"
        );
    };
    assert!(
        message.contains(expected),
        "{test}: twin failed, but not with `{expected}`:\n{message}"
    );
    let first_line = message.lines().next().unwrap_or_default();
    println!(
        "{test}: shuttle {sched}, {threads} threads: caught at iteration {} of {iterations}: {first_line}",
        run.executions
    );
}

/// Spawns `threads` shuttle threads, each running `work(index, thread_state)` with a fresh thread
/// state of `rt`, and joins them. Call inside a shuttle check.
pub fn shuttle_threads<F>(
    rt: &std::sync::Arc<gilcheck::Runtime<gilcheck::platform::Shuttle>>,
    threads: usize,
    work: F,
) where
    F: Fn(usize, gilcheck::ThreadState<gilcheck::platform::Shuttle>) + Send + Sync + 'static,
{
    let work = std::sync::Arc::new(work);
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (ts, work) = (rt.thread_state(), std::sync::Arc::clone(&work));
            shuttle::thread::spawn(move || work(i, ts))
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
}

/// Shared objects for the refcount checks: a dict `{"revenue": 142500.0}` (the seed's claim 1)
/// and an empty list.
pub struct Shared {
    pub dict: gilcheck::ObjRef,
    pub key: gilcheck::ObjRef,
    pub value: gilcheck::ObjRef,
    pub list: gilcheck::ObjRef,
}

/// Makes the [`Shared`] objects; afterwards only the dict holds its key and value.
pub fn setup<P: gilcheck::platform::Platform>(g: &gilcheck::Attached<'_, P>) -> Shared {
    let (py, heap) = (g.token(), g.heap());
    let dict = heap.new_dict(py);
    let key = heap.new_str(py, "revenue");
    let value = heap.new_float(py, 142500.0);
    heap.dict_set(py, dict, key, value).unwrap();
    heap.decref(py, value).unwrap();
    heap.decref(py, key).unwrap();
    let list = heap.new_list(py, &[]).unwrap();
    Shared {
        dict,
        key,
        value,
        list,
    }
}

/// RC-2, RC-4, RC-6: after `threads` workers each stored one reference to the shared value in
/// the list (which holds `list_len` items in all): exact counts, then the dict and the list are
/// dropped and every object is freed exactly once, the value the moment its last reference goes.
pub fn check_teardown<P: gilcheck::platform::Platform>(
    g: &gilcheck::Attached<'_, P>,
    s: &Shared,
    threads: usize,
    list_len: usize,
) -> gilcheck::heap::HeapStats {
    let (py, heap) = (g.token(), g.heap());
    assert_eq!(heap.refcount(py, s.value).unwrap(), 1 + threads as isize);
    assert_eq!(heap.len(py, s.list).unwrap(), list_len);
    heap.decref(py, s.dict).unwrap(); // frees the dict and the key; the value lives on
    assert!(!heap.is_live(py, s.dict) && !heap.is_live(py, s.key));
    assert_eq!(heap.refcount(py, s.value).unwrap(), threads as isize);
    heap.decref(py, s.list).unwrap(); // the last references go: freed now, exactly once
    assert!(!heap.is_live(py, s.value));
    let stats = heap.stats(py);
    assert_eq!(
        stats.freed, stats.allocated,
        "every object freed exactly once"
    );
    assert!(heap.leak_report(py).unwrap().is_clean());
    stats
}
