//! Printing what the explorer found: step tables and counterexamples (rule EX-8 of
//! `spec/explore.md`).

use crate::explore::engine::{Counterexample, thousands};
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

/// One line of a step table: one step, a run of steps of one thread that touch nothing shared,
/// or lines left out to keep the table short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Row(Row),
    /// `n` consecutive steps of `first.thread`, the first of them `first`, the last `last_step`,
    /// over source lines `lines`.
    Run {
        first: Row,
        last_step: usize,
        n: usize,
        lines: Option<(u32, u32)>,
    },
    /// `lines` lines of the table, over steps `from..=to`, left out (of one thread's stretch
    /// when `thread` names it).
    Elided {
        from: usize,
        to: usize,
        lines: usize,
        thread: Option<String>,
    },
}

impl Line {
    fn steps(&self) -> (usize, usize) {
        match self {
            Line::Row(r) => (r.step, r.step),
            Line::Run {
                first, last_step, ..
            } => (first.step, *last_step),
            Line::Elided { from, to, .. } => (*from, *to),
        }
    }

    fn thread(&self) -> Option<&str> {
        match self {
            Line::Row(r) | Line::Run { first: r, .. } => Some(&r.thread),
            Line::Elided { thread, .. } => thread.as_deref(),
        }
    }

    fn count(&self) -> usize {
        match self {
            Line::Elided { lines, .. } => *lines,
            _ => 1,
        }
    }
}

/// Lines kept at the start and at the end of one thread's stretch between two GIL passages.
const STRETCH_HEAD: usize = 20;
const STRETCH_TAIL: usize = 20;
/// Lines kept at the start and at the end of the whole table.
const TABLE_HEAD: usize = 150;
const TABLE_TAIL: usize = 100;

/// Lines of which the first `head` and the last `tail` are kept; the others are counted.
#[derive(Debug)]
struct Capped {
    head: Vec<Line>,
    tail: std::collections::VecDeque<Line>,
    left_out: Option<Line>,
    keep: (usize, usize),
}

impl Capped {
    fn new(head: usize, tail: usize) -> Self {
        Capped {
            head: Vec::new(),
            tail: Default::default(),
            left_out: None,
            keep: (head, tail),
        }
    }

    fn push(&mut self, l: Line) {
        if self.head.len() < self.keep.0 {
            self.head.push(l);
            return;
        }
        self.tail.push_back(l);
        if self.tail.len() > self.keep.1 {
            let old = self.tail.pop_front().expect("longer than the tail");
            self.left_out = Some(merge(self.left_out.take(), &old));
        }
    }

    fn drain(&mut self) -> Vec<Line> {
        let mut out = std::mem::take(&mut self.head);
        out.extend(self.left_out.take());
        out.extend(self.tail.drain(..));
        out
    }
}

/// `old` (lines left out so far, if any) with `l` left out too.
fn merge(old: Option<Line>, l: &Line) -> Line {
    let (a, b) = l.steps();
    match old {
        None => Line::Elided {
            from: a,
            to: b,
            lines: l.count(),
            thread: l.thread().map(String::from),
        },
        Some(Line::Elided {
            from,
            to,
            lines,
            thread,
        }) => Line::Elided {
            from: from.min(a),
            to: to.max(b),
            lines: lines + l.count(),
            thread: thread.filter(|t| Some(t.as_str()) == l.thread()),
        },
        Some(other) => merge(Some(merge(None, &other)), l),
    }
}

/// Folds a step table as its rows are made, so that it stays short whatever the length of the
/// execution: steps that touch nothing shared become one line per run, one step of context is
/// kept before every GIL passage, a thread's stretch between two passages keeps its first and
/// last [`STRETCH_HEAD`] and [`STRETCH_TAIL`] lines, and the table its first [`TABLE_HEAD`] and
/// last [`TABLE_TAIL`] lines. What is left out is counted on one line.
#[derive(Debug)]
pub struct Folder {
    /// Rows not placed yet: whether a row is kept depends on the row after it, and a row can
    /// still become a GIL passage until the next one arrives.
    pending: std::collections::VecDeque<Row>,
    run: Option<Line>,
    stretch: Capped,
    table: Capped,
}

impl Default for Folder {
    fn default() -> Self {
        Folder {
            pending: Default::default(),
            run: None,
            stretch: Capped::new(STRETCH_HEAD, STRETCH_TAIL),
            table: Capped::new(TABLE_HEAD, TABLE_TAIL),
        }
    }
}

impl Folder {
    pub fn push(&mut self, r: Row) {
        self.pending.push_back(r);
        if self.pending.len() > 2 {
            let r = self.pending.pop_front().expect("three rows");
            let keep_for_next = self
                .pending
                .front()
                .is_some_and(|n| n.switch && n.thread == r.thread);
            self.place(r, keep_for_next);
        }
    }

    /// The newest row (its GIL note is written after the step).
    pub fn last_mut(&mut self) -> Option<&mut Row> {
        self.pending.back_mut()
    }

    pub fn finish(mut self) -> Vec<Line> {
        while let Some(r) = self.pending.pop_front() {
            let keep_for_next = self
                .pending
                .front()
                .is_some_and(|n| n.switch && n.thread == r.thread);
            self.place(r, keep_for_next);
        }
        self.close_run();
        self.end_stretch();
        self.table.drain()
    }

    fn place(&mut self, r: Row, context: bool) {
        if context || interesting(&r) {
            self.close_run();
            let passage = r.switch;
            self.stretch.push(Line::Row(r));
            if passage {
                self.end_stretch();
            }
            return;
        }
        if let Some(Line::Run {
            first,
            last_step,
            n,
            lines,
        }) = &mut self.run
            && first.thread == r.thread
        {
            *last_step = r.step;
            *n += 1;
            if r.line > 0 {
                *lines =
                    Some(lines.map_or((r.line, r.line), |(a, b)| (a.min(r.line), b.max(r.line))));
            }
            return;
        }
        self.close_run();
        let lines = (r.line > 0).then_some((r.line, r.line));
        self.run = Some(Line::Run {
            last_step: r.step,
            first: r,
            n: 1,
            lines,
        });
    }

    fn close_run(&mut self) {
        if let Some(run) = self.run.take() {
            self.stretch.push(run);
        }
    }

    fn end_stretch(&mut self) {
        for l in self.stretch.drain() {
            self.table.push(l);
        }
    }
}

/// The step table of `lines` (as an execution made them: folded, or every step).
pub fn table(lines: &[Line]) -> String {
    let rows = || {
        lines.iter().filter_map(|l| match l {
            Line::Row(r) | Line::Run { first: r, .. } => Some(r),
            Line::Elided { .. } => None,
        })
    };
    let iw = rows()
        .map(|r| r.instr.chars().count())
        .max()
        .unwrap_or(11)
        .clamp(11, 34);
    let tw = lines
        .iter()
        .filter_map(|l| l.thread())
        .map(|t| t.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let sw = lines
        .iter()
        .map(|l| match l.steps() {
            (a, b) if a == b => a.to_string().len(),
            (a, b) => a.to_string().len() + b.to_string().len() + 1,
        })
        .max()
        .unwrap_or(9)
        .max(9);
    let mut out = String::new();
    let mut put = |line: String| {
        out.push_str(line.trim_end());
        out.push('\n');
    };
    put(format!(
        "{:>sw$}  {:tw$}  line  {:iw$}  {:44}  GIL",
        "step", "thread", "instruction", "effect"
    ));
    for l in lines {
        match l {
            Line::Row(r) => {
                let line = if r.line == 0 {
                    "-".to_string()
                } else {
                    r.line.to_string()
                };
                let instr: String = r.instr.chars().take(iw).collect();
                put(format!(
                    "{:sw$}  {:tw$}  {:>4}  {:iw$}  {:44}  {}",
                    r.step, r.thread, line, instr, r.effect, r.gil
                ));
            }
            Line::Run {
                first,
                last_step,
                n,
                lines,
            } => {
                let span = match lines {
                    Some((a, b)) if a == b => format!("line {a}"),
                    Some((a, b)) => format!("lines {a}–{b}"),
                    None => String::new(),
                };
                let (steps, what) = if *n == 1 {
                    (first.step.to_string(), first.instr.clone())
                } else {
                    (
                        format!("{}–{last_step}", first.step),
                        format!("{n} steps ({span})"),
                    )
                };
                put(format!(
                    "{steps:>sw$}  {:tw$}  {:>4}  {what}",
                    first.thread, "…"
                ));
            }
            Line::Elided {
                from,
                to,
                lines,
                thread,
            } => {
                let who = thread.as_deref().unwrap_or("");
                let n = super::engine::thousands(*lines);
                put(format!(
                    "{:>sw$}  {who:tw$}  {:>4}  … {n} line{} of the table left out (--full shows every step)",
                    format!("{from}–{to}"),
                    "…",
                    if *lines == 1 { "" } else { "s" }
                ));
            }
        }
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

/// The whole counterexample (`verdict`: FAIL or INCONCLUSIVE); its last line is the command
/// that replays it.
pub fn counterexample(
    c: &Counterexample,
    verdict: &str,
    title: &str,
    replay_command: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{verdict}: {title}");
    let _ = writeln!(out, "  {}", c.what);
    let _ = writeln!(out, "  {}", c.found);
    let _ = writeln!(out);
    out.push_str(&table(&c.execution.table));
    let _ = writeln!(out);
    if c.first {
        out.push_str(&outcome_of(&c.execution, "this schedule"));
    } else {
        out.push_str(&outcomes(
            &c.execution,
            &c.reference,
            c.reference_preemptions,
        ));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "replay: {replay_command}");
    out
}

/// What execution `e` printed and left behind, its failure, and whether its budget ran out.
pub fn outcome_of(e: &Execution, what: &str) -> String {
    let mut out = String::new();
    let so_far = if e.out_of_steps() { " so far" } else { "" };
    let _ = writeln!(
        out,
        "outcome of {what}{so_far} ({} steps, {} preemption{}):",
        thousands(e.steps),
        e.preemptions,
        if e.preemptions == 1 { "" } else { "s" }
    );
    out.push_str(&outcome(&e.outcome));
    if let Some(f) = &e.failure {
        let _ = writeln!(out, "    {f}");
    }
    if e.out_of_steps() {
        let _ = writeln!(out, "    (the step budget ran out here)");
    }
    out
}

/// This schedule's outcome next to the reference's: the first schedule that ends, which has
/// no preemption unless that one loops (EX-4).
pub fn outcomes(e: &Execution, reference: &Outcome, reference_preemptions: usize) -> String {
    let mut out = outcome_of(e, "this schedule");
    if reference_preemptions == 0 {
        let _ = writeln!(out, "outcome of the first schedule (no preemption):");
    } else {
        let _ = writeln!(
            out,
            "outcome of the first schedule that ends ({reference_preemptions} preemption{}; the one without loops forever unfairly):",
            if reference_preemptions == 1 { "" } else { "s" }
        );
    }
    out.push_str(&outcome(reference));
    out
}
