//! The command line: output, exit codes, bad input; and CPython 3.8–3.13 as the oracle for the
//! seed's claim-1 program (RC-7: `sys.getrefcount` counts its own argument).

use std::path::PathBuf;
use std::process::{Command, Output};

fn gilcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gilcheck"))
        .args(args)
        .output()
        .expect("run gilcheck")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// RC-7, RC-8: the seed's program on real threads: exact refcounts, no leaks, exit 0.
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
        stdout.starts_with("Reference count after threading: 2\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("after the threads: 1 (held by the dict only)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("objects allocated: 80006, freed: 80006"),
        "{stdout}"
    );
    assert!(stdout.contains("no leaks"), "{stdout}");
}

/// GIL-8: a switch interval CPython would reject is bad input: exit 2, a message, no panic.
#[test]
fn cli_bad_switch_interval_exits_2() {
    for bad in ["0", "-1", "nan", "inf", "abc"] {
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
        assert!(stderr.contains("error"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// The interpreter for CPython `3.minor` under pyenv, or why there is none.
fn cpython(minor: u32) -> Result<PathBuf, String> {
    let root = Command::new("pyenv")
        .arg("root")
        .output()
        .map_err(|e| format!("no pyenv ({e})"))?;
    let versions = PathBuf::from(String::from_utf8_lossy(&root.stdout).trim()).join("versions");
    let prefix = format!("3.{minor}.");
    std::fs::read_dir(&versions)
        .map_err(|e| format!("{}: {e}", versions.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .map(|p| p.join("bin/python3"))
        .find(|p| p.exists())
        .ok_or_else(|| {
            format!(
                "CPython 3.{minor} is not installed under {}",
                versions.display()
            )
        })
}

/// RC-7: CPython 3.8–3.13 print the same two lines as gilcheck for the seed's program
/// (`tests/fixtures/seed_refcount.py`). Versions that are absent are skipped with the reason.
#[test]
fn cli_seed_refcount_matches_cpython() {
    let ours = text(&gilcheck(&["run", "seed-refcount"])).0;
    let ours: Vec<_> = ours.lines().take(2).collect();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed_refcount.py"
    );
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
