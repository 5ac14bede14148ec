//! Printing what the explorer found: step tables and counterexamples (rule EX-8 of
//! `spec/explore.md`).

use crate::explore::engine::Counterexample;
use crate::explore::world::{Execution, Outcome, Row};
use std::fmt::Write;

/// Whether a row is worth showing in a folded table: it switches threads, reads or writes an
/// item or attribute, writes a name with a data value, prints, or uses threads and locks.
fn interesting(r: &Row) -> bool {
    if r.switch {
        return true;
    }
    let e = &r.effect;
    // The value after the arrow; objects (modules, functions, threads) print as `<…>`.
    let value = e.split(['→', '←']).nth(1).map(str::trim).unwrap_or("");
    let data = !(value.starts_with('<') || value.starts_with("[<") || value.starts_with("(<"));
    let item =
        (e.starts_with("read ") || e.starts_with("write ")) && (e.contains('[') || e.contains('.'));
    let item = item
        && e.split(['→', '←'])
            .next()
            .is_some_and(|lhs| lhs.contains('[') || lhs.contains('.'));
    let name_write = e.starts_with("write ") && !item;
    ((item || name_write) && data)
        || [
            "print ",
            "start ",
            "join ",
            "acquire ",
            "release ",
            "raises ",
            "takes the lock",
        ]
        .iter()
        .any(|p| e.starts_with(p))
}

/// The step table. Folded (`full == false`), runs of uninteresting steps become one line each,
/// and one step of context is kept before every switch.
pub fn table(rows: &[Row], full: bool) -> String {
    let keep: Vec<bool> = (0..rows.len())
        .map(|i| {
            full || interesting(&rows[i])
                || rows
                    .get(i + 1)
                    .is_some_and(|n| n.switch && n.thread == rows[i].thread)
        })
        .collect();
    let iw = rows
        .iter()
        .map(|r| r.instr.chars().count())
        .max()
        .unwrap_or(11)
        .clamp(11, 34);
    let tw = rows
        .iter()
        .map(|r| r.thread.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "     step  {:tw$}  line  {:iw$}  {:44}  GIL",
        "thread", "instruction", "effect"
    );
    let mut i = 0;
    while i < rows.len() {
        if keep[i] {
            let r = &rows[i];
            let line = if r.line == 0 {
                "-".to_string()
            } else {
                r.line.to_string()
            };
            let instr: String = r.instr.chars().take(iw).collect();
            let _ = writeln!(
                out,
                "{:9}  {:tw$}  {:>4}  {:iw$}  {:44}  {}",
                r.step, r.thread, line, instr, r.effect, r.gil
            );
            i += 1;
            continue;
        }
        let start = i;
        while i < rows.len() && !keep[i] && rows[i].thread == rows[start].thread {
            i += 1;
        }
        let (first, last) = (&rows[start], &rows[i - 1]);
        let lines: Vec<u32> = rows[start..i]
            .iter()
            .map(|r| r.line)
            .filter(|&l| l > 0)
            .collect();
        let span = match (lines.iter().min(), lines.iter().max()) {
            (Some(a), Some(b)) if a == b => format!("line {a}"),
            (Some(a), Some(b)) => format!("lines {a}–{b}"),
            _ => String::new(),
        };
        let n = i - start;
        let what = if n == 1 {
            first.instr.clone()
        } else {
            format!("{n} steps ({span})")
        };
        let steps = if n == 1 {
            first.step.to_string()
        } else {
            format!("{}–{}", first.step, last.step)
        };
        let _ = writeln!(out, "{steps:>9}  {:tw$}  {:>4}  {what}", first.thread, "…");
    }
    out
}

/// An outcome as indented lines: what was printed, then the data globals.
pub fn outcome(o: &Outcome) -> String {
    let mut out = String::new();
    for l in o.output.lines() {
        let _ = writeln!(out, "    printed: {l}");
    }
    for s in o.data_state() {
        let _ = writeln!(out, "    {s}");
    }
    out
}

/// The whole counterexample; its last line is the command that replays it.
pub fn counterexample(c: &Counterexample, title: &str, replay_command: &str, full: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "FAIL: {title}");
    let _ = writeln!(out, "  {}", c.what);
    let _ = writeln!(out, "  found {}", c.found);
    let _ = writeln!(out);
    out.push_str(&table(&c.execution.rows, full));
    let _ = writeln!(out);
    out.push_str(&outcomes(&c.execution, &c.reference));
    let _ = writeln!(out);
    let _ = writeln!(out, "replay: {replay_command}");
    out
}

/// This schedule's outcome next to the first schedule's.
pub fn outcomes(e: &Execution, reference: &Outcome) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "outcome of this schedule ({} steps, {} preemption{}):",
        e.steps,
        e.preemptions,
        if e.preemptions == 1 { "" } else { "s" }
    );
    out.push_str(&outcome(&e.outcome));
    if let Some(f) = &e.failure {
        let _ = writeln!(out, "    {f}");
    }
    let _ = writeln!(out, "outcome of the first schedule (no preemption):");
    out.push_str(&outcome(reference));
    out
}
