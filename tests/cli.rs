//! The command line: output, exit codes, bad input; and CPython 3.8–3.13 as the oracle for the
//! seed's claim-1 program (RC-7: `sys.getrefcount` counts its own argument).

mod support;

use std::process::{Command, Output};
use support::{cpython, numbers};

fn gilcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gilcheck"))
        .args(args)
        .output()
        .expect("run gilcheck")
}

/// `check seed-unsafe-increment --python 3.9 --threads 2 --iterations 1`, the smallest lost
/// update, with `extra` options.
fn check_lost_update(extra: &[&str]) -> Output {
    let mut args = vec![
        "check",
        "seed-unsafe-increment",
        "--python",
        "3.9",
        "--threads",
        "2",
        "--iterations",
        "1",
    ];
    args.extend_from_slice(extra);
    gilcheck(&args)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// RC-7, RC-8: the seed's program on real threads: CPython's two lines, every object freed
/// (the audit after the run is exact), exit 0.
#[test]
fn cli_run_seed_refcount_is_clean() {
    let out = gilcheck(&[
        "run",
        "seed-refcount",
        "--iterations",
        "20000",
        "--switch-interval",
        "1e-5",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("Reference count after threading: 2\nNo corruption – GIL protected the reference count\n"),
        "{stdout}"
    );
    let (allocated, freed) = allocated_freed(&stdout);
    assert!(allocated > 80_000 && allocated == freed, "{stdout}");
    assert!(
        stdout.contains("no leaks: every object was freed"),
        "{stdout}"
    );
}

/// GIL-8: a switch interval CPython would reject (`<= 0.0`, -inf) or that is not a number is bad
/// input: exit 2, a message, no panic. (NaN and +inf are accepted, as by CPython.)
#[test]
fn cli_bad_switch_interval_exits_2() {
    for bad in ["0", "-0.0", "-1", "-1e-300", "-inf", "abc", ""] {
        let out = gilcheck(&["run", "seed-refcount", "--switch-interval", bad]);
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--switch-interval {bad}: {stdout}{stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
        assert!(
            stderr.contains("switch interval") || stderr.contains("invalid value"),
            "{stderr}"
        );
    }
}

/// GIL-8: the command line accepts what `sys.setswitchinterval` accepts and the footer says what
/// the GIL does with it: +inf is stored as 0 µs (read back 0.0) and waits last 1 µs; NaN is
/// stored as 2^63 µs, where a wait ends at once; 1e10 s is waited for without a timeout.
#[test]
fn cli_run_infinite_switch_interval_says_what_it_uses() {
    let cases = [
        (
            "inf",
            "switch interval: 0 µs (--switch-interval inf, stored as CPython stores it; sys.getswitchinterval() = 0.0); a waiter waits 1 µs",
        ),
        (
            "nan",
            "switch interval: 9 223 372 036 854 775 808 µs (--switch-interval nan, stored as CPython stores it; sys.getswitchinterval() = 9223372036854.775); 2^63 µs or more: a waiter's wait ends at once",
        ),
        (
            "1e10",
            "switch interval: 10 000 000 000 000 000 µs (--switch-interval 10000000000.0, stored as CPython stores it; sys.getswitchinterval() = 10000000000.0); longer than a year: a waiter waits without a timeout",
        ),
        (
            "2.5e-6",
            "switch interval: 2 µs (--switch-interval 2.5e-06, stored as CPython stores it; sys.getswitchinterval() = 2e-06)\n",
        ),
    ];
    for (interval, expected) in cases {
        let out = gilcheck(&[
            "run",
            "seed-refcount",
            "--iterations",
            "2000",
            "--switch-interval",
            interval,
        ]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{interval}: {stdout}{stderr}");
        assert!(
            stdout.starts_with("Reference count after threading: 2\n"),
            "{interval}: {stdout}"
        );
        assert!(stdout.contains(expected), "{interval}: {stdout}");
    }
}

/// Every numeric option refuses, before any work, a value just outside its documented range
/// (negative numbers included) with the range in the message and exit 2, and accepts the value
/// just inside. Accepted values run only quick commands: `dis` builds the program without
/// running it, and `check` stops after one execution or finishes a small exhaustive search.
#[test]
fn cli_numeric_options_have_checked_ranges() {
    let dis = |extra: &[&'static str]| {
        let mut v = vec!["dis", "seed-refcount", "--python", "3.11"];
        v.extend_from_slice(extra);
        v
    };
    let check = |engine: &'static str, extra: &[&'static str]| {
        let mut v = vec![
            "check",
            "seed-unsafe-increment",
            "--python",
            "3.11",
            "--engine",
            engine,
        ];
        v.extend_from_slice(extra);
        v
    };
    let one = ["--max-executions", "1"];
    let with_one = |extra: &[&'static str]| {
        let mut v = extra.to_vec();
        v.extend_from_slice(&one);
        v
    };
    // (arguments, the range the message must state)
    let refused: Vec<(Vec<&str>, &str)> = vec![
        (
            dis(&["--threads", "0"]),
            "--threads takes a whole number from 1 to 64",
        ),
        (dis(&["--threads", "65"]), "from 1 to 64"),
        (dis(&["--threads", "-1"]), "from 1 to 64"),
        (
            dis(&["--threads", "99999999999999999999999"]),
            "from 1 to 64",
        ),
        (dis(&["--threads", "two"]), "not a whole number"),
        (
            dis(&["--iterations", "0"]),
            "--iterations takes a whole number from 1 to 100 000 000",
        ),
        (dis(&["--iterations", "100000001"]), "from 1 to 100 000 000"),
        (dis(&["--iterations", "-5"]), "from 1 to 100 000 000"),
        (
            check("dfs", &with_one(&["--preemptions", "1001"])),
            "--preemptions takes a whole number from 0 to 1 000",
        ),
        (
            check("dfs", &with_one(&["--preemptions", "-1"])),
            "from 0 to 1 000",
        ),
        (
            check("pct", &with_one(&["--preemptions", "1001"])),
            "from 0 to 1 000",
        ),
        (
            check("pct", &with_one(&["--preemptions", "18446744073709551615"])),
            "from 0 to 1 000",
        ),
        (
            check("loom", &with_one(&["--preemptions", "256"])),
            "--engine loom: loom 0.7 keeps its preemption bound in a u8, so it takes 0 to 255",
        ),
        (
            check("random", &with_one(&["--preemptions", "0"])),
            "--preemptions does not apply to --engine random",
        ),
        (
            check("dfs", &["--max-executions", "0"]),
            "--max-executions takes a whole number from 1 to 1 000 000 000 000",
        ),
        (
            check("dfs", &["--max-executions", "1000000000001"]),
            "from 1 to 1 000 000 000 000",
        ),
        (
            check("dfs", &["--max-executions", "-1"]),
            "from 1 to 1 000 000 000 000",
        ),
        (
            check("dfs", &with_one(&["--max-steps", "0"])),
            "--max-steps takes a whole number from 1 to 100 000 000",
        ),
        (
            check("dfs", &with_one(&["--max-steps", "100000001"])),
            "from 1 to 100 000 000",
        ),
        (
            check("dfs", &with_one(&["--max-steps", "-5"])),
            "from 1 to 100 000 000",
        ),
        (
            check("random", &with_one(&["--seed", "18446744073709551616"])),
            "--seed takes a whole number from 0 to 18 446 744 073 709 551 615",
        ),
        (
            check("random", &with_one(&["--seed", "-1"])),
            "from 0 to 18 446 744 073 709 551 615",
        ),
        (
            check("dfs", &with_one(&["--time-limit", "0"])),
            "--time-limit takes a whole number from 1 to 31 536 000",
        ),
        (
            check("dfs", &with_one(&["--max-states", "0"])),
            "--max-states takes a whole number from 1 to 1 000 000 000 000",
        ),
        (
            check("dfs", &with_one(&["--max-memory", "15"])),
            "--max-memory takes a whole number from 16 to 16 777 216",
        ),
        (
            check("pct", &with_one(&["--max-states", "10"])),
            "--max-states applies to --engine dfs with the state cache",
        ),
        (
            check("loom", &with_one(&["--time-limit", "10"])),
            "do not apply to --engine loom",
        ),
    ];
    for (args, range) in refused {
        let out = gilcheck(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(range), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: work started: {stdout}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let accepted: Vec<Vec<&str>> = vec![
        dis(&["--threads", "1"]),
        dis(&["--threads", "64"]),
        dis(&["--iterations", "1"]),
        dis(&["--iterations", "100000000"]),
        check("dfs", &with_one(&["--preemptions", "0"])),
        check("dfs", &with_one(&["--preemptions", "1000"])),
        check("pct", &with_one(&["--preemptions", "0"])),
        check("pct", &with_one(&["--preemptions", "1000"])),
        check("loom", &with_one(&["--preemptions", "0"])),
        check("loom", &with_one(&["--preemptions", "255"])),
        check("dfs", &["--max-executions", "1000000000000"]), // exhaustive long before
        check("dfs", &with_one(&["--max-steps", "100000000"])),
        check("random", &with_one(&["--seed", "0"])),
        check("random", &with_one(&["--seed", "18446744073709551615"])),
        check("dfs", &with_one(&["--time-limit", "31536000"])),
        check("dfs", &with_one(&["--max-states", "1000000000000"])),
        check("pct", &with_one(&["--time-limit", "1"])),
    ];
    for args in accepted {
        let out = gilcheck(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
    }
    // The smallest step limit is accepted too; the seed's program cannot finish in one step,
    // which is the failure the limit is there to report (exit 1), not bad input.
    let out = gilcheck(&check("dfs", &with_one(&["--max-steps", "1"])));
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(!stderr.contains("invalid value"), "{stderr}");
}

/// A full or closed standard output is an error: exit 2. A full one (`> /dev/full`) gets a
/// message; a pipe whose reader has gone (`| head`) does not, and nothing panics.
#[test]
fn cli_stdout_errors_exit_2() {
    let args = ["check", "seed-unsafe-increment", "--python", "3.9"];
    match std::fs::OpenOptions::new().write(true).open("/dev/full") {
        Ok(full) => {
            let out = Command::new(env!("CARGO_BIN_EXE_gilcheck"))
                .args(args)
                .stdout(full)
                .output()
                .expect("run gilcheck");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert_eq!(
                stderr,
                "gilcheck: cannot write to standard output: No space left on device\n"
            );
        }
        Err(e) => println!("skipped /dev/full: {e}"),
    }
    // --full at 200 iterations prints about 300 KB, more than a pipe holds (64 KiB on Linux):
    // gilcheck is still writing when the reader goes away.
    let mut child = Command::new(env!("CARGO_BIN_EXE_gilcheck"))
        .args(args)
        .args(["--iterations", "200", "--full"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run gilcheck");
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"FAIL: seed-unsaf");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        !stderr.contains("cannot write") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// No line of `list`, `dis`, a counterexample of `check` or a `replay` ends with a space.
#[test]
fn cli_output_has_no_trailing_spaces() {
    let check = text(&gilcheck(&[
        "check",
        "seed-unsafe-increment",
        "--python",
        "3.9",
    ]))
    .0;
    let replay = check
        .lines()
        .last()
        .unwrap()
        .strip_prefix("replay: gilcheck ")
        .unwrap()
        .to_string();
    let replay: Vec<&str> = replay.split(' ').collect();
    let outputs = [
        ("list", text(&gilcheck(&["list"])).0),
        (
            "dis",
            text(&gilcheck(&[
                "dis",
                "seed-unsafe-increment",
                "--python",
                "3.9",
            ]))
            .0,
        ),
        ("check", check.clone()),
        (
            "check --full",
            text(&gilcheck(&[
                "check",
                "seed-unsafe-increment",
                "--python",
                "3.9",
                "--full",
            ]))
            .0,
        ),
        ("replay", text(&gilcheck(&replay)).0),
    ];
    for (what, out) in outputs {
        assert!(out.lines().count() > 3, "{what}: {out}");
        for (i, line) in out.lines().enumerate() {
            assert!(!line.ends_with(' '), "{what}, line {}: {line:?}", i + 1);
        }
    }
}

/// `run` prints progress on stderr only when it runs for more than 2 s: a short run prints
/// nothing there.
#[test]
fn cli_short_run_prints_nothing_on_stderr() {
    let out = gilcheck(&["run", "seed-refcount", "--iterations", "10"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stderr, "");
}

/// EX-15: a `check` that runs for more than a second prints progress on stderr: the phase, the
/// running total of executions (never going back), the cap, the states and the rates, the
/// depth and the resident memory. (About 4 s on the 2-core machine in release builds.)
#[test]
fn cli_long_check_prints_progress() {
    let cap: u64 = if cfg!(debug_assertions) {
        3_000
    } else {
        40_000
    };
    let started = std::time::Instant::now();
    let out = gilcheck(&[
        "check",
        "seed-locked-increment",
        "--python",
        "3.9",
        "--threads",
        "3",
        "--iterations",
        "2",
        "--max-executions",
        &cap.to_string(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let grouped = format!("{} {:03}", cap / 1000, cap % 1000);
    let mut last = 0u64;
    let mut lines = 0;
    for line in stderr.lines() {
        let rest = line
            .strip_prefix("gilcheck: dfs, ")
            .unwrap_or_else(|| panic!("not a progress line: {line:?}"));
        let (phase, rest) = rest.split_once(": ").expect(line);
        let bound = phase
            .strip_prefix("preemption bound ")
            .map(str::parse::<u32>);
        assert!(
            phase == "unbounded" || matches!(bound, Some(Ok(_))),
            "{line}"
        );
        let (total, rest) = rest.split_once(" of at most ").expect(line);
        let total: u64 = total.replace(' ', "").parse().expect(line);
        assert!(total >= last && total <= cap, "{line} after {last}");
        last = total;
        assert!(
            rest.starts_with(&format!("{grouped} executions, ")),
            "{line}"
        );
        assert!(
            rest.contains(" states explored, ")
                && rest.contains(" states/s, ")
                && rest.contains(" executions/s, depth ")
                && rest.contains(" MiB resident ("),
            "{line}"
        );
        lines += 1;
    }
    // The first line is due 1 s in; a machine fast enough to finish sooner owes none.
    if started.elapsed() > std::time::Duration::from_secs(2) {
        assert!(
            lines >= 1,
            "no progress line in a run this long: {stderr:?}"
        );
    }
}

/// EX-8: a step table's rows name the thread, the source line and the instruction each step ran;
/// a thread's first step, before it has a frame, is its start.
#[test]
fn cli_step_table_rows_name_line_and_instruction() {
    let out = check_lost_update(&["--full"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let has = |want: &[&str]| {
        rows.iter()
            .any(|r| r.len() > want.len() && r[1..want.len() + 1] == *want)
    };
    assert!(
        has(&[
            "Thread-1",
            "9",
            "BINARY_SUBSCR",
            "read",
            "shared_counter['value']"
        ]),
        "{stdout}"
    );
    assert!(
        has(&[
            "Thread-2",
            "9",
            "STORE_SUBSCR",
            "write",
            "shared_counter['value']"
        ]),
        "{stdout}"
    );
    assert!(has(&["Thread-1", "6", "RESUME", "0"]), "{stdout}");
    for t in ["Thread-1", "Thread-2"] {
        let starts = rows
            .iter()
            .filter(|r| r.get(1) == Some(&t) && r.get(3) == Some(&"(thread"))
            .count();
        assert_eq!(starts, 1, "{t}: {stdout}");
    }
}

/// EX-9: a loom check that finds a failure prints it on stdout; the panics that end loom's failing
/// executions by design are not printed on stderr.
#[test]
fn cli_loom_failure_prints_no_panic() {
    let out = check_lost_update(&["--engine", "loom", "--preemptions", "2"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.starts_with("FAIL: "), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Unknown scenarios and out-of-range options are bad input: exit 2 with a message.
#[test]
fn cli_bad_arguments_exit_2() {
    for args in [
        &["run", "no-such-scenario"][..],
        &["run", "seed-refcount", "--threads", "0"],
        &["frobnicate"],
    ] {
        let out = gilcheck(args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error") || stderr.starts_with("gilcheck: unknown scenario"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// RC-7: CPython 3.8–3.13 print the same two lines as gilcheck for the seed's program, the
/// very file `seed-refcount` runs (examples/seed/refcount.py). Versions that are absent are
/// skipped with the reason.
#[test]
fn cli_seed_refcount_matches_cpython() {
    let ours = text(&gilcheck(&["run", "seed-refcount"])).0;
    let ours: Vec<_> = ours.lines().take(2).collect();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed/refcount.py");
    let mut compared = 0;
    for minor in 8..=13 {
        let python = match cpython(minor) {
            Ok(p) => p,
            Err(why) => {
                println!("skipped CPython 3.{minor}: {why}");
                continue;
            }
        };
        let out = Command::new(&python)
            .arg(fixture)
            .output()
            .expect("run CPython");
        let theirs = String::from_utf8_lossy(&out.stdout).into_owned();
        let theirs: Vec<_> = theirs.lines().take(2).collect();
        assert_eq!(ours, theirs, "gilcheck differs from {}", python.display());
        println!("CPython 3.{minor} ({}): same output", python.display());
        compared += 1;
    }
    println!("compared with {compared} CPython versions");
}

// ---------------------------------------------------------------------------------------------
// check, replay, dis, list; real runs of the increments

/// EX-8: `check` under 3.9 prints the counterexample: what failed, the step where the GIL
/// passed after the read with the policy's reason, both outcomes, and as its last line the
/// command that replays it; it exits 1.
#[test]
fn cli_check_counterexample_names_the_switch() {
    let out = check_lost_update(&[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("FAIL: seed-unsafe-increment --python 3.9 (2 threads × 1 iteration)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("read shared_counter['value'] → 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("poll (3.8/3.9 poll before almost every instruction): preempted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("write shared_counter['value'] ← 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("printed: Expected: 40000, Got: 1")
            && stdout.contains("printed: Expected: 40000, Got: 2"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("replay: gilcheck replay seed-unsafe-increment --python 3.9 --threads 2 --iterations 1 --schedule gc1:"),
        "{last}"
    );
}

/// EX-6, EX-8: running the printed replay command re-executes the same schedule: the same step
/// table and outcome, exit 1.
#[test]
fn cli_replay_reproduces_the_counterexample() {
    let check = text(&gilcheck(&[
        "check",
        "call-between",
        "--python",
        "3.12",
        "--threads",
        "2",
        "--iterations",
        "1",
    ]))
    .0;
    let command = check
        .lines()
        .last()
        .unwrap()
        .strip_prefix("replay: gilcheck ")
        .unwrap();
    let args: Vec<&str> = command.split(' ').collect();
    let out = gilcheck(&args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let table = |s: &str| {
        s.lines()
            .skip_while(|l| !l.trim_start().starts_with("step  thread"))
            .take_while(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(!table(&check).is_empty());
    assert_eq!(table(&stdout), table(&check));
    assert!(
        stdout.contains("printed: Expected: 40000, Got: 1"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().last(), check.lines().last());
}

/// EX-6: a corrupted schedule string, one for another scenario, one replayed under another
/// version, and one that is not a schedule at all are refused with a message and exit 2.
#[test]
fn cli_replay_rejects_bad_schedules() {
    let check = text(&check_lost_update(&[])).0;
    let token = check
        .lines()
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let corrupted = token.replacen("0*", "0*1", 1);
    let cases: [(Vec<&str>, &str); 7] = [
        (
            vec!["replay", "seed-unsafe-increment", "--schedule", &corrupted],
            "checksum",
        ),
        (
            vec!["replay", "call-between", "--schedule", &token],
            "is for scenario seed-unsafe-increment",
        ),
        (
            vec![
                "replay",
                "seed-unsafe-increment",
                "--python",
                "3.11",
                "--schedule",
                &token,
            ],
            "recorded under --python 3.9",
        ),
        (
            vec!["replay", "seed-unsafe-increment", "--schedule", "hello"],
            "not a gilcheck schedule",
        ),
        (
            vec![
                "replay",
                "seed-unsafe-increment",
                "--threads",
                "3",
                "--schedule",
                &token,
            ],
            "recorded with --threads 2, not 3",
        ),
        (
            vec![
                "replay",
                "seed-unsafe-increment",
                "--iterations",
                "2",
                "--schedule",
                &token,
            ],
            "recorded with --iterations 1, not 2",
        ),
        (
            vec![
                "replay",
                "seed-unsafe-increment",
                "--max-steps",
                "100",
                "--schedule",
                &token,
            ],
            "more than 100 steps",
        ),
    ];
    for (args, expected) in cases {
        let out = gilcheck(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // The same token, as printed, replays.
    assert_eq!(
        gilcheck(&["replay", "seed-unsafe-increment", "--schedule", &token])
            .status
            .code(),
        Some(1)
    );
}

/// The `replay:` line a `check` printed last, as an argument vector without the program name.
fn replay_line(stdout: &str) -> Vec<String> {
    let line = stdout.lines().last().unwrap_or_default();
    let cmd = line
        .strip_prefix("replay: gilcheck ")
        .unwrap_or_else(|| panic!("the last line is not a replay line: {line}"));
    cmd.split(' ').map(String::from).collect()
}

/// EX-6, EX-8, EX-12: every `replay:` line `check` prints replays when pasted as printed (to the
/// same step table, outcome and exit code): counterexamples of dfs, loom, pct and random, one found
/// with a step budget that is not the default, and an inconclusive check whose budget ran out.
#[test]
fn cli_every_printed_replay_line_replays() {
    let cases: [&[&str]; 7] = [
        &["check", "seed-unsafe-increment", "--python", "3.9"],
        &[
            "check",
            "seed-unsafe-increment",
            "--python",
            "3.9",
            "--iterations",
            "1",
            "--engine",
            "loom",
            "--preemptions",
            "1",
        ],
        &[
            "check",
            "call-between",
            "--python",
            "3.12",
            "--threads",
            "3",
            "--iterations",
            "1",
        ],
        &[
            "check",
            "seed-unsafe-increment",
            "--python",
            "every",
            "--engine",
            "pct",
            "--seed",
            "3",
        ],
        &[
            "check",
            "call-between",
            "--python",
            "3.8",
            "--engine",
            "random",
            "--seed",
            "1",
        ],
        &[
            "check",
            "seed-unsafe-increment",
            "--python",
            "3.9",
            "--max-steps",
            "4000",
        ],
        &[
            "check",
            "seed-unsafe-increment",
            "--python",
            "3.11",
            "--iterations",
            "100000",
            "--max-steps",
            "2000",
        ],
    ];
    for args in cases {
        let out = gilcheck(args);
        let (stdout, stderr) = text(&out);
        let code = out.status.code();
        assert!(matches!(code, Some(1 | 3)), "{args:?}: {stdout}{stderr}");
        let line = replay_line(&stdout);
        let refs: Vec<&str> = line.iter().map(String::as_str).collect();
        let again = gilcheck(&refs);
        let (replayed, err) = text(&again);
        assert_eq!(again.status.code(), code, "{refs:?}: {replayed}{err}");
        // The same table and outcomes: everything from the table's header line on.
        let body = |s: &str| {
            s.lines()
                .skip_while(|l| !l.contains("  line  instruction"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(!body(&stdout).is_empty(), "{stdout}");
        assert_eq!(body(&replayed), body(&stdout), "{args:?}");
        println!("{args:?} → exit {code:?}, replayed");
    }
}

/// EX-12: a check whose execution runs its step budget out is inconclusive: exit 3, a verdict
/// that says what ran out and how to raise it (not FAIL), a short table, and a replay line that
/// names `--max-steps`.
#[test]
fn cli_inconclusive_exits_3_and_replays() {
    let out = gilcheck(&[
        "check",
        "seed-unsafe-increment",
        "--python",
        "3.11",
        "--iterations",
        "1000000",
        "--max-steps",
        "200000",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.starts_with("INCONCLUSIVE: "), "{stdout}");
    assert!(
        stdout.contains("ran out of its step budget of 200 000 steps")
            && stdout.contains("raise --max-steps"),
        "{stdout}"
    );
    assert!(
        stdout.lines().count() < 320,
        "{} lines",
        stdout.lines().count()
    );
    let line = replay_line(&stdout);
    assert!(line.join(" ").contains("--max-steps 200000"), "{line:?}");
    let refs: Vec<&str> = line.iter().map(String::as_str).collect();
    let again = gilcheck(&refs);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again).0);
}

/// EX-5: a check that finds nothing prints exactly one verdict line and exits 0.
#[test]
fn cli_check_pass_prints_one_verdict_line() {
    let out = gilcheck(&["check", "seed-unsafe-increment", "--python", "3.11"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("PASS: seed-unsafe-increment --python 3.11 (2 threads × 2 iterations): exhaustive, every schedule"), "{stdout}");
}

/// EX-12, EX-9: bad options of `check` and `dis` are refused with exit 2, a loom check of a
/// program too long for loom among them.
#[test]
fn cli_check_bad_options_exit_2() {
    for args in [
        &["check", "seed-unsafe-increment", "--python", "2.7"][..],
        &["check", "seed-unsafe-increment", "--engine", "tla"],
        &["check", "convoy", "--threads", "3"],
        &[
            "check",
            "seed-unsafe-increment",
            "--engine",
            "loom",
            "--threads",
            "4",
        ],
        &["run", "seed-unsafe-increment", "--processes"],
        &["dis", "nope"],
        // EX-9: loom 0.7's 16-bit vector clocks wrap beyond about 4 000 steps a thread.
        &[
            "check",
            "seed-unsafe-increment",
            "--engine",
            "loom",
            "--iterations",
            "500",
        ],
    ] {
        let out = gilcheck(args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        if args.contains(&"loom") {
            let why = if args.contains(&"4") {
                "the loom engine models at most 5 threads (loom's own, the main thread and 3 more); --threads 4 is too many"
            } else {
                "the loom engine follows at most 2 500 steps a thread"
            };
            assert!(stderr.contains(why), "{args:?}: {stderr}");
        }
    }
}

/// EX-9: the loom engine's verdicts: every execution explored, or stopped at
/// `--max-executions`; 3 worker threads are accepted; progress every 2 000 executions.
#[test]
fn cli_loom_verdicts_and_progress() {
    let loom = |args: &[&str]| {
        let mut all = vec!["check", "seed-locked-increment", "--engine", "loom"];
        all.extend_from_slice(args);
        let out = gilcheck(&all);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stdout}{stderr}");
        (stdout, stderr)
    };
    let (all, _) = loom(&["--python", "3.11", "--threads", "2", "--iterations", "1"]);
    assert!(
        all.contains("): loom explored all ")
            && all.contains(" executions with at most 2 preemptions"),
        "{all}"
    );
    let (three, _) = loom(&[
        "--python",
        "3.11",
        "--threads",
        "3",
        "--iterations",
        "1",
        "--max-executions",
        "10",
    ]);
    assert!(
        three.contains("): no failure in the first 10 loom executions with at most 2 preemptions")
            && three.contains("(stopped at --max-executions: not exhaustive)"),
        "{three}"
    );
    let (_, stderr) = loom(&[
        "--python",
        "3.9",
        "--threads",
        "2",
        "--iterations",
        "2",
        "--max-executions",
        "4000",
    ]);
    let counts: Vec<&str> = stderr
        .lines()
        .map(|l| {
            l.strip_prefix("gilcheck: loom: ")
                .and_then(|l| l.strip_suffix(" executions"))
                .unwrap_or_else(|| panic!("not a progress line: {l:?}"))
        })
        .collect();
    assert_eq!(counts, ["2 000", "4 000"], "{stderr}");
}

/// VM-5, VM-7: `dis` marks the poll points of each version: under 3.9 after `BINARY_SUBSCR`,
/// under 3.11 not, but after `JUMP_BACKWARD`; `list` shows every scenario.
#[test]
fn cli_list_and_dis() {
    let list = text(&gilcheck(&["list"])).0;
    for s in gilcheck::scenarios::SCENARIOS {
        assert!(list.contains(s.name), "{list}");
        assert!(list.contains(&format!("file: {}", s.file)), "{list}");
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(s.file)
                .is_file(),
            "{}",
            s.file
        );
    }
    let line = |out: &str, name: &str| -> String {
        let code = out
            .split("Disassembly of <code object increment>:")
            .nth(1)
            .unwrap();
        code.lines().find(|l| l.contains(name)).unwrap().to_string()
    };
    let dis39 = text(&gilcheck(&[
        "dis",
        "seed-unsafe-increment",
        "--python",
        "3.9",
    ]))
    .0;
    let dis311 = text(&gilcheck(&[
        "dis",
        "seed-unsafe-increment",
        "--python",
        "3.11",
    ]))
    .0;
    assert!(
        line(&dis39, "BINARY_SUBSCR").ends_with("<- poll"),
        "{dis39}"
    );
    assert!(!line(&dis311, "BINARY_SUBSCR").contains("poll"), "{dis311}");
    assert!(
        line(&dis311, "JUMP_BACKWARD").ends_with("<- poll"),
        "{dis311}"
    );
}

/// VM-9, LU-3: the seed's claim-3 program at its sizes (4 × 10 000) on real threads under the
/// 3.11 policy, switch interval 1 µs: never loses an update (no poll point inside the window).
#[test]
fn cli_run_unsafe_increment_311_never_loses() {
    for _ in 0..3 {
        assert_eq!(
            run_increment("seed-unsafe-increment", "3.11"),
            (40000, 40000)
        );
    }
}

/// Runs an increment scenario at the seed's sizes with a 1 µs switch interval; (expected, got).
fn run_increment(scenario: &str, policy: &str) -> (u64, u64) {
    let out = gilcheck(&[
        "run",
        scenario,
        "--python",
        policy,
        "--switch-interval",
        "1e-6",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{scenario} {policy}: {stdout}{stderr}"
    );
    got(&stdout)
}

/// VM-9, LU-3: the same under the 3.9 policy loses updates: on real threads this depends on
/// timing, so up to 10 runs are made, as CPython 3.9 loses updates in most runs.
#[test]
fn cli_run_unsafe_increment_39_loses() {
    let mut seen = Vec::new();
    for _ in 0..10 {
        let (expected, got) = run_increment("seed-unsafe-increment", "3.9");
        seen.push(got);
        if got < expected {
            println!(
                "lost {} of {expected} updates (runs: {seen:?})",
                expected - got
            );
            return;
        }
    }
    panic!("no run lost an update under 3.9: {seen:?}");
}

/// VM-9, LU-2: the locked increment never loses an update on real threads, under 3.9 and
/// `every`, switch interval 1 µs.
#[test]
fn cli_run_locked_increment_never_loses() {
    for policy in ["3.9", "every"] {
        assert_eq!(
            run_increment("seed-locked-increment", policy),
            (40000, 40000),
            "{policy}"
        );
    }
}

/// VM-9: `--processes` runs seed-cpu-bound's workers as separate runtimes: the output names
/// processes, every heap is clean (a leak in a child fails the run), exit 0.
#[test]
fn cli_run_processes_have_their_own_gil() {
    let out = gilcheck(&[
        "run",
        "seed-cpu-bound",
        "--processes",
        "--iterations",
        "20000",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("\nProcesses: ") && stdout.starts_with("Sequential: "),
        "{stdout}"
    );
    assert!(stdout.contains("real threads and 2 processes"), "{stdout}");
    assert!(stdout.contains("no leaks"), "{stdout}");
}

/// The numbers of the first line of `stdout` that starts with `prefix`, as a pair.
fn pair(stdout: &str, prefix: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' line in:\n{stdout}"));
    let n = numbers(line);
    (n[0], n[1])
}

/// The `objects allocated: A, freed: F` line of a run's footer.
fn allocated_freed(stdout: &str) -> (u64, u64) {
    pair(stdout, "objects allocated: ")
}

/// The seed's `Expected: E, Got: N` line.
fn got(stdout: &str) -> (u64, u64) {
    pair(stdout, "Expected: ")
}

/// Runs gilcheck with `args`, killing it after `limit`; `None` if it had to be killed.
fn gilcheck_within(args: &[String], limit: std::time::Duration) -> Option<Output> {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gilcheck"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gilcheck");
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// EX-6, EX-12: the command line given arguments drawn from every subcommand and option, with
/// values in range, at the ends of their ranges, past them, negative, and not numbers at all,
/// and schedule strings that are garbage or mutated: it always ends with exit code 0, 1, 2 or 3,
/// never a panic (exit 101) or an abort, and a refusal (exit 2) says why on stderr.
#[test]
fn cli_random_arguments_never_panic() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let value = |good: &'static [&'static str]| {
        let bad: &'static [&'static str] = &[
            "-1",
            "0",
            "-0",
            "18446744073709551616",
            "1e3",
            "abc",
            "",
            "--",
            "nan",
            "inf",
            "99999999999999999999999",
        ];
        prop_oneof![
            8 => prop::sample::select(good),
            1 => prop::sample::select(bad),
        ]
    };
    let option = prop_oneof![
        (
            Just("--python"),
            value(&["3.8", "3.9", "3.11", "3.13", "every", "2.7", "3.14"])
        ),
        (Just("--threads"), value(&["1", "2", "3", "64", "65"])),
        (Just("--iterations"), value(&["1", "2", "100000001"])),
        (
            Just("--preemptions"),
            value(&["0", "1", "2", "255", "256", "1000", "1001"])
        ),
        (
            Just("--max-executions"),
            value(&["1", "3", "50", "1000000000001"])
        ),
        (
            Just("--max-steps"),
            value(&["1", "50", "2000", "100000001"])
        ),
        (Just("--seed"), value(&["0", "7", "18446744073709551615"])),
        (
            Just("--engine"),
            value(&["dfs", "pct", "random", "loom", "tla"])
        ),
        (
            Just("--switch-interval"),
            value(&["0.005", "1e-6", "inf", "nan", "-inf", "1e309"])
        ),
        (
            Just("--schedule"),
            value(&[
                "gc1:seed-unsafe-increment:3.9:2x1:0*70,1*15,2*22,1*7,0*23:5f0c2e1a",
                "gc1:seed-unsafe-increment:3.9:2x2:0*70,1*28,3g,2*35,1*7,0*23:4e81e885",
                "gc1:x:y:z",
                "gc1:::0x0::00000000",
            ]),
        ),
        (Just("--full"), Just("")),
        (Just("--no-state-cache"), Just("")),
        (Just("--processes"), Just("")),
    ];
    let command = prop::sample::select(vec!["list", "run", "check", "replay", "dis", "frobnicate"]);
    let scenario = prop_oneof![
        4 => prop::sample::select(gilcheck::scenarios::SCENARIOS.iter().map(|s| s.name).collect::<Vec<_>>()),
        1 => Just("no-such-scenario"),
    ];
    let strategy = (
        command,
        scenario,
        prop::collection::vec(option, 0..5),
        prop::bool::weighted(0.85),
    );
    let mut runner = TestRunner::new(Config {
        cases: if cfg!(debug_assertions) { 48 } else { 160 },
        failure_persistence: None,
        ..Config::default()
    });
    let killed = std::cell::Cell::new(0);
    let codes = std::cell::RefCell::new([0usize; 4]);
    let result = runner.run(&strategy, |(command, scenario, options, fitting)| {
        let mut args = vec![command.to_string(), scenario.to_string()];
        // Mostly options the command has (the rest test clap's refusals).
        let has = |name: &str| match command {
            "check" => !matches!(name, "--switch-interval" | "--processes" | "--schedule"),
            "run" => matches!(
                name,
                "--python" | "--threads" | "--iterations" | "--switch-interval" | "--processes"
            ),
            "replay" => matches!(
                name,
                "--python" | "--threads" | "--iterations" | "--schedule" | "--full" | "--max-steps"
            ),
            _ => matches!(name, "--python" | "--threads" | "--iterations"),
        };
        let mut seen = std::collections::BTreeSet::new();
        let options: Vec<_> = options
            .into_iter()
            .filter(|(name, _)| !fitting || (has(name) && seen.insert(*name)))
            .collect();
        let given = |name: &str| options.iter().any(|(n, _)| *n == name);
        for &(name, value) in &options {
            args.push(name.to_string());
            if !value.is_empty() {
                args.push(value.to_string());
            }
        }
        // Keep every run short: long explorations and runs are what the other tests time.
        if (command == "check" || command == "run") && !given("--iterations") {
            args.extend(["--iterations".into(), "1".into()]);
        }
        if command == "check" && !given("--max-executions") {
            args.extend(["--max-executions".into(), "20".into()]);
        }
        let Some(out) = gilcheck_within(&args, std::time::Duration::from_secs(20)) else {
            killed.set(killed.get() + 1);
            return Ok(());
        };
        let (stdout, stderr) = text(&out);
        let code = out.status.code();
        if !matches!(code, Some(0..=3)) || stderr.contains("panicked") {
            return Err(TestCaseError::fail(format!(
                "gilcheck {}: exit {code:?}\n{stdout}{stderr}",
                args.join(" ")
            )));
        }
        codes.borrow_mut()[code.unwrap_or(0) as usize] += 1;
        if code == Some(2) && stderr.trim().is_empty() && !stdout.contains("Usage") {
            return Err(TestCaseError::fail(format!(
                "gilcheck {}: exit 2 without a message",
                args.join(" ")
            )));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let codes = codes.into_inner();
    println!("exit codes 0, 1, 2, 3: {codes:?}; killed: {}", killed.get());
    assert!(killed.get() <= 2, "{} runs had to be killed", killed.get());
    assert!(codes[0] > 0 && codes[2] > 0, "{codes:?}");
}

/// A path under the repository.
fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// A file in a fresh temporary directory, for inputs the tests write.
fn temp_file(name: &str, contents: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("gilcheck-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.display().to_string()
}

/// CO-1, CO-6, EX-4: what only shows when the program runs — a Python `__hash__` in a dict display, a
/// timed wait, `raise E` of an exception class statement's class uncalled, a Python factory of a defaultdict — ends `check` and `run` with exit 2 and
/// `unsupported…`, never with a verdict (a refusal in the first schedule would otherwise be
/// every schedule's outcome, and the check would pass).
#[test]
fn co1_refusals_at_run_time_give_no_verdict() {
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "hash_display.py",
            b"class K:\n    def __hash__(self):\n        return 1\n\nd = {K(): 1}\n",
            "a Python __hash__",
        ),
        (
            "timed.py",
            b"import threading\nlock = threading.Lock()\nlock.acquire(timeout=1)\n",
            "timeout",
        ),
        (
            "raise_class.py",
            b"class E(Exception):\n    pass\n\nraise E\n",
            "without calling it",
        ),
        (
            "factory.py",
            b"from collections import defaultdict\nd = defaultdict(lambda: 0)\nd[1] += 1\n",
            "factory",
        ),
    ];
    for (name, source, want) in cases {
        let path = temp_file(name, source);
        for command in ["check", "run"] {
            let out = gilcheck(&[command, &path]);
            let (stdout, stderr) = text(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{name} {command}: {stdout}{stderr}"
            );
            assert!(
                stderr.contains("unsupported") && stderr.contains(want),
                "{name} {command}: {stderr}"
            );
            assert!(!stdout.contains("PASS"), "{name} {command}: {stdout}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

/// CO-1, CO-4: bad Python is refused before anything runs, with exit 2, the place
/// (`FILE:LINE:COL`) and no panic: syntax errors (CPython's wording where it has it), every kind
/// of construct the VM does not run yet, a missing file and a file that is not UTF-8.
#[test]
fn co1_bad_input_is_refused_with_its_place() {
    let cases: &[(&str, &[u8], &str)] = &[
        ("syntax.py", b"x = (1,\n", "SyntaxError: "),
        (
            "indent.py",
            b"def f():\nreturn 1\n",
            "IndentationError: expected an indented block after function definition on line 1",
        ),
        (
            "ret.py",
            b"x = 1\nreturn x\n",
            "SyntaxError: 'return' outside function at ",
        ),
        (
            "brk.py",
            b"if True:\n    break\n",
            "SyntaxError: 'break' outside loop at ",
        ),
        (
            "super.py",
            b"class A:\n    x = super()\n",
            "unsupported: super() or __class__ outside a method at ",
        ),
        (
            "async_def.py",
            b"async def f():\n    pass\n",
            "unsupported: async def at ",
        ),
        (
            "from.py",
            b"from collections import OrderedDict\n",
            "unsupported: 'OrderedDict' from the module 'collections' at ",
        ),
        (
            "closure.py",
            b"def f():\n    k = 1\n\n    class C:\n        x = k\n",
            "unsupported: closure over 'k'",
        ),
        (
            "walrus.py",
            b"if (n := 3) > 2:\n    pass\n",
            "unsupported: assignment expressions",
        ),
        (
            "big.py",
            b"x = 1000000000000000000000\n",
            "unsupported: an integer literal beyond 64 bits",
        ),
        (
            "posonly.py",
            b"def f(a, /):\n    pass\n",
            "unsupported: positional-only parameters at ",
        ),
        (
            "complex.py",
            b"x = 2j\n",
            "unsupported: complex numbers at ",
        ),
    ];
    for (name, source, want) in cases {
        let path = temp_file(name, source);
        for command in ["check", "run", "dis"] {
            let out = gilcheck(&[command, &path]);
            let (stdout, stderr) = text(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{name} {command}: {stdout}{stderr}"
            );
            assert!(stderr.contains(want), "{name}: {stderr}");
            assert!(
                stderr.contains(&format!("{path}:")),
                "{name}: the place: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert!(stdout.is_empty(), "{name}: {stdout}");
        }
    }
    let out = gilcheck(&["check", "/no/such/file.py"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot read /no/such/file.py"), "{stderr}");
    let path = temp_file("latin1.py", b"x = '\xe9'\n");
    let out = gilcheck(&["check", &path]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
}

/// CO-5, EX-6: `check FILE.py` on the seed's own files. The unsafe increment under 3.9, on a
/// smaller instance (`--threads 2 --iterations 2`): a lost update, the literals replaced listed,
/// a replay command naming the file, which replays; an edited file refuses that schedule. The
/// locked increment on the same instance: exhaustive PASS. The file as written: the sampled
/// default (pct, 10 executions) finds the 3.9 lost update and under 3.11 says what it explored.
#[test]
fn cli_check_file_finds_replays_and_proves() {
    let unsafe_file = repo("examples/seed/unsafe_increment.py");
    let small = ["--threads", "2", "--iterations", "2"];
    let mut args = vec!["check", unsafe_file.as_str(), "--python", "3.9"];
    args.extend(small);
    let out = gilcheck(&args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.starts_with(&format!("FAIL: {unsafe_file} --python 3.9 (a smaller instance, --threads 2 --iterations 2: line 11:53: 10000 → 2 (iterations), line 11:77: 4 → 2 (threads))")), "{stdout}");
    assert!(
        stdout.contains("printed: Expected: 40000, Got: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("shared_counter = {'value': 4} in the first schedule"),
        "{stdout}"
    );
    let replay = stdout
        .lines()
        .find_map(|l| l.strip_prefix("replay: gilcheck "))
        .expect("a replay command");
    let replay_args: Vec<&str> = replay.split(' ').collect();
    assert_eq!(
        &replay_args[..2],
        ["replay", unsafe_file.as_str()],
        "{replay}"
    );
    let out = gilcheck(&replay_args);
    let (replayed, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{replayed}{stderr}");
    assert!(
        replayed.contains("the outcome differs between schedules"),
        "{replayed}"
    );
    // The same schedule against an edited copy is refused.
    let edited = std::fs::read_to_string(&unsafe_file)
        .unwrap()
        .replace("# Not atomic", "# Edited");
    let copy = temp_file("unsafe_increment.py", edited.as_bytes());
    let mut other = replay_args.clone();
    other[1] = &copy;
    let out = gilcheck(&other);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("has changed since this schedule was recorded"),
        "{stderr}"
    );

    let locked = repo("examples/seed/locked_increment.py");
    let mut args = vec!["check", locked.as_str(), "--python", "3.9"];
    args.extend(small);
    let out = gilcheck(&args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("PASS: "), "{stdout}");
    assert!(stdout.contains(": exhaustive, every schedule"), "{stdout}");

    let out = gilcheck(&["check", &unsafe_file, "--python", "3.9"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("found by pct"), "{stdout}");
    let out = gilcheck(&["check", &unsafe_file, "--python", "3.11"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("no failure in 10 PCT executions"),
        "{stdout}"
    );
    assert!(stdout.contains("sampled, not a proof"), "{stdout}");
    assert!(stdout.contains("--threads 2 --iterations 2"), "{stdout}");
}

/// VM-12, CO-2: the seed's cpu-bound program, verbatim (a generator expression consumed by
/// `sum`), runs on real threads with CPython's output shape and every object freed.
#[test]
fn cli_run_seed_cpu_bound_file() {
    let file = repo("examples/seed/cpu_bound.py");
    let out = gilcheck(&["run", &file, "--iterations", "20000"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("Sequential: ") && lines[0].ends_with('s'),
        "{stdout}"
    );
    assert!(lines[1].starts_with("Threaded: "), "{stdout}");
    assert!(
        stdout.contains("no leaks: every object was freed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 11:13: 300000 → 20000 (iterations)"),
        "{stdout}"
    );
}

/// EX-15: `--max-states`, `--time-limit` and `--max-memory` end a search with a passing verdict
/// that names the budget and says what was covered and that it is not exhaustive (or, sampled,
/// not a proof), exit 0, never an abort; a long search prints progress lines on stderr with
/// its states, rates, depth and memory.
#[test]
fn cli_budgets_end_the_search_with_what_was_covered() {
    let base = [
        "check",
        "seed-locked-increment",
        "--python",
        "every",
        "--threads",
        "4",
        "--iterations",
        "4",
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let out = gilcheck(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {stdout}{stderr}");
        (stdout, stderr)
    };
    let (stdout, _) = run(&["--max-states", "5000"]);
    assert!(
        stdout.contains("stopped at --max-states 5 000: not exhaustive"),
        "{stdout}"
    );
    assert!(stdout.contains("every schedule with at most"), "{stdout}");
    // The whole search takes minutes here: two seconds cannot finish it.
    let (stdout, stderr) = run(&["--time-limit", "2"]);
    assert!(
        stdout.contains("stopped at --time-limit 2 s: not exhaustive"),
        "{stdout}"
    );
    assert!(
        stderr.contains("states explored") && stderr.contains("MiB resident"),
        "a progress line: {stderr}"
    );
    let (stdout, _) = run(&["--max-memory", "16"]);
    assert!(
        stdout.contains("stopped at --max-memory 16 MiB ("),
        "{stdout}"
    );
    // Sampled: the default pct of a file as written, at its own size, stopped by the clock.
    let out = gilcheck(&[
        "check",
        "examples/seed/locked_increment.py",
        "--python",
        "3.11",
        "--max-executions",
        "1000",
        "--time-limit",
        "1",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("stopped at --time-limit 1 s): sampled, not a proof"),
        "{stdout}"
    );
}

/// EX-23: four shards run as local processes, then merged. The locked increment passes
/// exhaustively, as the unsharded search does; the unsafe one fails in the merge whichever
/// shard met the lost update, with a schedule that replays to it; a merge missing a shard,
/// given one twice, or given something else refuses with exit 2.
#[test]
fn cli_shards_merge_to_the_verdict_of_one_search() {
    let dir = std::env::temp_dir().join(format!("gilcheck-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shards = |scenario: &str, python: &str, size: &str| -> Vec<String> {
        (1..=4)
            .map(|i| {
                let shard = format!("{i}/4");
                let out = gilcheck(&[
                    "check",
                    scenario,
                    "--python",
                    python,
                    "--threads",
                    size,
                    "--iterations",
                    "2",
                    "--shard",
                    &shard,
                ]);
                let (stdout, stderr) = text(&out);
                assert!(
                    matches!(out.status.code(), Some(0 | 1)),
                    "{shard}: {stdout}{stderr}"
                );
                let path = dir.join(format!("{scenario}-{i}.json"));
                std::fs::write(&path, &stdout).unwrap();
                path.display().to_string()
            })
            .collect()
    };
    let merge = |files: &[String]| {
        let mut args = vec!["merge"];
        args.extend(files.iter().map(String::as_str));
        let out = gilcheck(&args);
        let (stdout, stderr) = text(&out);
        (out.status.code(), stdout, stderr)
    };
    let locked = shards("seed-locked-increment", "every", "2");
    let (code, stdout, stderr) = merge(&locked);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("exhaustive, every schedule"), "{stdout}");
    let whole = gilcheck(&[
        "check",
        "seed-locked-increment",
        "--python",
        "every",
        "--threads",
        "2",
        "--iterations",
        "2",
    ]);
    assert!(text(&whole).0.contains("exhaustive, every schedule"));

    let unsafe_ = shards("seed-unsafe-increment", "3.9", "2");
    let (code, stdout, stderr) = merge(&unsafe_);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("FAIL: seed-unsafe-increment"),
        "{stdout}"
    );
    let token = stdout
        .lines()
        .find_map(|l| l.split("--schedule ").nth(1))
        .expect("a replay line");
    let replayed = gilcheck(&[
        "replay",
        "seed-unsafe-increment",
        "--python",
        "3.9",
        "--threads",
        "2",
        "--iterations",
        "2",
        "--schedule",
        token,
    ]);
    let (out, err) = text(&replayed);
    assert_eq!(replayed.status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains("the outcome differs between schedules"),
        "{out}"
    );

    let (code, _, stderr) = merge(&locked[..3]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("shard(s) 4 of 4 missing"), "{stderr}");
    let twice = [
        locked[0].clone(),
        locked[0].clone(),
        locked[2].clone(),
        locked[3].clone(),
    ];
    let (code, _, stderr) = merge(&twice);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("given twice"), "{stderr}");
    let mixed = [
        locked[0].clone(),
        unsafe_[1].clone(),
        locked[2].clone(),
        locked[3].clone(),
    ];
    let (code, _, stderr) = merge(&mixed);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("different searches"), "{stderr}");
    let junk = dir.join("junk.json");
    std::fs::write(&junk, "{\"format\": 1}").unwrap();
    let (code, _, stderr) = merge(&[junk.display().to_string()]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not a gilcheck shard file"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for bad in ["0/4", "5/4", "1/0", "a/b", "1/4097", "2"] {
        let out = check_lost_update(&["--shard", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
    }
    let out = check_lost_update(&["--shard", "1/2", "--preemptions", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
