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

/// The source line of a row, `-` for a step outside any code (a thread's start).
fn line_of(r: &Row) -> String {
    if r.line == 0 {
        "-".to_string()
    } else {
        r.line.to_string()
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
                let line = line_of(r);
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
                // A run of one step names its line; a longer one says which lines it spans.
                let (steps, line, what) = if *n == 1 {
                    (first.step.to_string(), line_of(first), first.instr.clone())
                } else {
                    (
                        format!("{}–{last_step}", first.step),
                        "…".to_string(),
                        format!("{n} steps ({span})"),
                    )
                };
                put(format!(
                    "{steps:>sw$}  {:tw$}  {line:>4}  {what}",
                    first.thread
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: usize, thread: &str, line: u32, effect: &str) -> Row {
        Row {
            step,
            thread: thread.into(),
            code: "<module>".into(),
            line,
            instr: format!("OP_{step}"),
            effect: effect.into(),
            gil: String::new(),
            switch: false,
        }
    }

    /// Folds `rows` as an execution does: each row is pushed, and a passage is marked on the
    /// newest row after its step, through `last_mut`.
    fn fold(rows: impl IntoIterator<Item = Row>) -> Vec<Line> {
        let mut f = Folder::default();
        for r in rows {
            let switch = r.switch;
            f.push(Row { switch: false, ..r });
            if switch {
                let newest = f.last_mut().expect("a row was just pushed");
                newest.switch = true;
                newest.gil = "preempted".into();
            }
        }
        f.finish()
    }

    fn passage(r: Row) -> Row {
        Row { switch: true, ..r }
    }

    /// One short word per line: `R7` a row, `7-9x3 1:4 T` a run (steps, count, lines, thread),
    /// `cut 7-9 3 T` lines left out (steps, how many lines, whose).
    fn sketch(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| match l {
                Line::Row(r) => format!("R{}", r.step),
                Line::Run {
                    first,
                    last_step,
                    n,
                    lines,
                } => {
                    let span = lines.map_or("-".into(), |(a, b)| format!("{a}:{b}"));
                    format!("{}-{last_step}x{n} {span} {}", first.step, first.thread)
                }
                Line::Elided {
                    from,
                    to,
                    lines,
                    thread,
                } => format!(
                    "cut {from}-{to} {lines} {}",
                    thread.as_deref().unwrap_or("*")
                ),
            })
            .collect()
    }

    #[test]
    fn interesting_rows_touch_shared_data_threads_or_locks() {
        for (effect, expected) in [
            ("read shared_counter['value'] → 0", true),
            ("write shared_counter['value'] ← 1", true),
            ("read self.count → 3", true),
            ("write shared_counter ← {'value': 0}", true),
            ("write x ← 5", true),
            ("write t ← <Thread(Thread-1, initial)>", false),
            ("write threads ← [<Thread(Thread-1, initial)>]", false),
            ("write pair ← (<function f>, 1)", false),
            ("read d['k'] → <function f>", false),
            ("read x → 5", false),
            ("read x → [1, 2]", false),
            ("read x → a.b", false),
            ("1 += 1 → 2", false),
            ("[1] + [2] → [1, 2]", false),
            ("0.5 * 2 → 1.0", false),
            ("", false),
            ("print Expected: 4, Got: 2", true),
            ("start Thread-1", true),
            ("join Thread-1: it has finished", true),
            ("acquire <lock> (taken)", true),
            ("release <lock>", true),
            ("raises ValueError", true),
            ("takes the lock", true),
            ("prints", false),
        ] {
            let r = row(1, "T", 1, effect);
            assert_eq!(interesting(&r), expected, "{effect:?}");
            assert!(
                interesting(&passage(r)),
                "a passage always shows: {effect:?}"
            );
        }
    }

    #[test]
    fn quiet_steps_fold_into_runs_and_a_passage_keeps_one_step_of_context() {
        let rows = [
            row(1, "Main", 1, ""),
            row(2, "Main", 0, ""),
            row(3, "Main", 3, ""),
            row(4, "Main", 2, "write x ← 1"),
            row(5, "Main", 2, ""),
            row(6, "Main", 4, ""),
            passage(row(7, "Main", 4, "")),
            row(8, "T1", 5, ""),
            row(9, "T1", 6, ""),
            row(10, "T1", 0, ""),
            row(11, "T2", 7, ""),
            passage(row(12, "T1", 8, "")),
            row(13, "T1", 9, ""),
        ];
        assert_eq!(
            sketch(&fold(rows)),
            [
                "1-3x3 1:3 Main",
                "R4",
                "5-5x1 2:2 Main",
                "R6",
                "R7",
                "8-10x3 5:6 T1",
                "11-11x1 7:7 T2",
                "R12",
                "13-13x1 9:9 T1",
            ]
        );
        assert_eq!(
            sketch(&fold([row(1, "T", 0, ""), row(2, "T", 0, "")])),
            ["1-2x2 - T"]
        );
        assert!(fold([]).is_empty());
        // The last two rows: the context rule holds to the end of the table.
        assert_eq!(
            sketch(&fold([row(1, "A", 1, ""), passage(row(2, "A", 1, ""))])),
            ["R1", "R2"]
        );
        assert_eq!(
            sketch(&fold([row(1, "A", 1, ""), passage(row(2, "B", 1, ""))])),
            ["1-1x1 1:1 A", "R2"]
        );
    }

    #[test]
    fn a_long_stretch_keeps_its_first_and_last_20_lines() {
        let mut rows: Vec<Row> = (1..=50).map(|s| row(s, "T", 1, "write x ← 1")).collect();
        rows.push(passage(row(51, "T", 1, "")));
        rows.push(row(52, "U", 1, "write y ← 2"));
        let mut expected: Vec<String> = (1..=20).map(|s| format!("R{s}")).collect();
        expected.push("cut 21-31 11 T".into());
        expected.extend((32..=52).map(|s| format!("R{s}")));
        assert_eq!(sketch(&fold(rows.clone())), expected);
        // 40 lines (the passage among them) fit; one more is one line left out.
        let fits = fold(rows[11..].to_vec());
        assert_eq!(
            sketch(&fits),
            (12..=52).map(|s| format!("R{s}")).collect::<Vec<_>>()
        );
        let one_more = sketch(&fold(rows[10..].to_vec()));
        assert_eq!(one_more[20], "cut 31-31 1 T");
        assert_eq!(one_more.len(), 42);
    }

    #[test]
    fn a_long_table_keeps_its_first_150_and_last_100_lines() {
        // 300 stretches of one line each: 50 lines left out, of two threads.
        let rows = (1..=300).map(|s| passage(row(s, ["A", "B"][s % 2], 1, "")));
        let mut expected: Vec<String> = (1..=150).map(|s| format!("R{s}")).collect();
        expected.push("cut 151-200 50 *".into());
        expected.extend((201..=300).map(|s| format!("R{s}")));
        assert_eq!(sketch(&fold(rows)), expected);
        // 250 lines fit.
        let rows = (1..=250).map(|s| passage(row(s, "A", 1, "")));
        assert_eq!(fold(rows).len(), 250);
        // Ten stretches of 51 rows fold to 41 lines each; the table leaves out lines 151–310
        // of those 410, four of which already stood for 11 lines each, all of thread A.
        let rows = (0..10).flat_map(|k| {
            (1..=51).map(move |i| {
                let r = row(51 * k + i, "A", 1, "write x ← 1");
                if i == 51 { passage(r) } else { r }
            })
        });
        let folded = fold(rows);
        assert_eq!(folded.len(), 251);
        assert_eq!(sketch(&folded)[150], "cut 191-390 200 A");
    }

    #[test]
    fn table_columns_fit_their_widest_cell() {
        let mut long = row(1_000_000, "a-long-thread-name", 12, "write x ← 1");
        long.instr = "LOAD_ATTR 3 (a_very_long_attribute_name_indeed)".into();
        long.gil = "poll: preempted".into();
        let run = |first: Row, last_step, n, lines| Line::Run {
            first,
            last_step,
            n,
            lines,
        };
        let lines = [
            Line::Row(row(7, "Main", 0, "start Thread-1")),
            run(row(8, "Main", 3, ""), 8, 1, Some((3, 3))),
            run(row(9, "Main", 3, ""), 12, 4, Some((3, 3))),
            run(row(13, "Main", 2, ""), 20, 8, Some((2, 5))),
            run(row(21, "Main", 0, ""), 22, 2, None),
            Line::Elided {
                from: 23,
                to: 23,
                lines: 1,
                thread: Some("Main".into()),
            },
            Line::Elided {
                from: 24,
                to: 99_999_999,
                lines: 1_234,
                thread: None,
            },
            Line::Row(long),
        ];
        let text = table(&lines);
        let expected = [
            "       step  thread              line  instruction                         effect                                        GIL",
            "          7  Main                   -  OP_7                                start Thread-1",
            "          8  Main                   3  OP_8",
            "       9–12  Main                   …  4 steps (line 3)",
            "      13–20  Main                   …  8 steps (lines 2–5)",
            "      21–22  Main                   …  2 steps ()",
            "      23–23  Main                   …  … 1 line of the table left out (--full shows every step)",
            "24–99999999                         …  … 1 234 lines of the table left out (--full shows every step)",
            "    1000000  a-long-thread-name    12  LOAD_ATTR 3 (a_very_long_attribute  write x ← 1                                   poll: preempted",
        ];
        assert_eq!(text.lines().collect::<Vec<_>>(), expected);
        // Narrow cells still get the headers' widths.
        let narrow = table(&[Line::Row(row(1, "T", 1, ""))]);
        assert_eq!(
            narrow.lines().collect::<Vec<_>>(),
            [
                "     step  thread  line  instruction  effect                                        GIL",
                "        1  T          1  OP_1",
            ]
        );
    }
}
