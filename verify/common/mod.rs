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
