//! proptest: the bytecode VM against an independent reference interpreter, and the lost-update
//! rule against an independent oracle (VM-2, VM-3, VM-5 … VM-8, EX-6, LU-1, LU-2).
//!
//! * `proptest_vm_matches_reference`: proptest generates small threaded programs (a shared dict,
//!   a global, an optional lock and helper function, 1–2 worker functions run by 2–3 threads,
//!   then prints), assembled as CPython 3.11 compiles them. Each runs under the explorer with a
//!   random scheduler, and the schedule it took (its events) is replayed through a reference
//!   interpreter written here from `spec/bytecode.md`: plain Rust values, no reference counts,
//!   nothing of gilcheck's interpreter, heap, policies or explorer. Output and final globals must
//!   agree, and the schedule must follow this file's own transcription of the policy tables: a
//!   thread switch only at a poll point (or where a thread blocked or ended), and, from a log of
//!   the random walk's decisions, a switch offered at every poll point, to exactly the threads
//!   that can run.
//! * `proptest_lost_update_iff_switch_point_between`: proptest generates two threads that each
//!   perform one read–modify–write of the same location with a random window (nothing, a Python
//!   call, a built-in call, a loop, a conditional jump, a sleep) between the read and the write,
//!   optionally under `with lock:`. For each policy the test predicts, from its own policy tables,
//!   whether a switch point falls inside a window; the explorer must find a lost update exactly
//!   then (and with the fewest preemptions the prediction allows).
//!
//! The unit tests at the end are the broken twins: they show that each oracle fails when it is
//! given a wrong table, wrong arithmetic, or a schedule that does not follow the rules. One more
//! (`lost_update_through_a_blocking_call_needs_no_preemption`) pins down the case of LU-1 where
//! the switch point is a blocking call rather than a poll point.

use gilcheck::explore::engine::{CheckOptions, Engine, RandomWalk, Verdict, check};
use gilcheck::explore::{Decision, Event, Execution, Header, Options, Oracle, execute};
use gilcheck::vm::Policy;
use gilcheck::vm::code::{BinOp, CmpOp, Code, CodeBuilder, Const, Conversion, Instr, Program};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, FailurePersistence, FileFailurePersistence, TestRunner};
use std::cell::Cell;
use std::collections::VecDeque;

/// Work multiplier: the optimized build (`cargo test --release`) does 4x the cases of a debug
/// build, where each execution is about 10x slower.
const SCALE: u32 = if cfg!(debug_assertions) { 1 } else { 4 };
/// Generated programs of the reference comparison, and random schedules run per program (each
/// under a policy drawn from `Policy::ALL`).
const REFERENCE_CASES: u32 = 512 * SCALE;
const SCHEDULES_PER_PROGRAM: usize = 8;
/// Generated read–modify–write pairs; each is checked under all seven policies.
const LOST_UPDATE_CASES: u32 = 48 * SCALE;

// ---------------------------------------------------------------------------------------------
// Poll tables: an independent transcription of spec/bytecode.md VM-5 … VM-8.
// ---------------------------------------------------------------------------------------------

/// The policy tables of `spec/bytecode.md` (3.11, 3.12 and 3.13 share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Py38,
    Py39,
    Py310,
    Py311,
    Every,
}

/// The table a gilcheck policy is specified by, found by its name only.
fn table_of(policy: Policy) -> Table {
    match policy.name() {
        "3.8" => Table::Py38,
        "3.9" => Table::Py39,
        "3.10" => Table::Py310,
        "3.11" | "3.12" | "3.13" => Table::Py311,
        "every" => Table::Every,
        other => panic!("policy {other} is not in spec/bytecode.md's tables"),
    }
}

/// When a poll point follows an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Always,
    Never,
    /// Only when the conditional jump jumped.
    IfTaken,
    /// Unless the jump's condition was exactly `True` or `False`.
    IfNotExactBool,
    /// After a call of a built-in; a Python callee polls at its own `RESUME`.
    AfterNativeCall,
    /// After a call of a built-in other than `len` and `list.append`.
    AfterSlowNativeCall,
    /// When the return goes back into a calling frame.
    IfReturnToCaller,
}

/// One version's table: rows of (instruction names, when), a default for every instruction not
/// listed, and whether an instruction followed by `BEFORE_WITH` is exempt (3.8/3.9).
struct PollTable {
    default: When,
    rows: &'static [(&'static [&'static str], When)],
    exempt_before_with: bool,
}

const POP_JUMPS: &[&str] = &[
    "POP_JUMP_FORWARD_IF_FALSE",
    "POP_JUMP_FORWARD_IF_TRUE",
    "POP_JUMP_BACKWARD_IF_FALSE",
    "POP_JUMP_BACKWARD_IF_TRUE",
];
/// VM-5: the instructions whose 3.8 counterparts end with `FAST_DISPATCH()`, and call setup.
const FAST_38: &[&str] = &[
    "NOP",
    "LOAD_FAST",
    "LOAD_CONST",
    "STORE_FAST",
    "POP_TOP",
    "COPY",
    "SWAP",
    "JUMP_FORWARD",
    "PUSH_NULL",
    "KW_NAMES",
];
/// VM-5: what 3.9 adds to them.
const FAST_39_ONLY: &[&str] = &["IS_OP", "CONTAINS_OP", "LOAD_ASSERTION_ERROR"];

/// VM-5 (3.8): a poll after almost every instruction.
const TABLE_38: PollTable = PollTable {
    default: When::Always,
    rows: &[
        (FAST_38, When::Never),
        (POP_JUMPS, When::IfNotExactBool),
        (&["CALL"], When::AfterNativeCall),
        (&["RETURN_VALUE"], When::IfReturnToCaller),
    ],
    exempt_before_with: true,
};
/// VM-5 (3.9).
const TABLE_39: PollTable = PollTable {
    default: When::Always,
    rows: &[
        (FAST_38, When::Never),
        (FAST_39_ONLY, When::Never),
        (POP_JUMPS, When::IfNotExactBool),
        (&["CALL"], When::AfterNativeCall),
        (&["RETURN_VALUE"], When::IfReturnToCaller),
    ],
    exempt_before_with: true,
};
/// VM-6 (3.10): frame entry, backward jumps, taken conditional jumps, call returns.
const TABLE_310: PollTable = PollTable {
    default: When::Never,
    rows: &[
        (&["RESUME", "JUMP_BACKWARD"], When::Always),
        (POP_JUMPS, When::IfTaken),
        (&["CALL"], When::AfterNativeCall),
        (&["RETURN_VALUE"], When::IfReturnToCaller),
    ],
    exempt_before_with: false,
};
/// VM-7 (3.11–3.13): `RESUME` 0/1 (this file emits only `RESUME 0`), `JUMP_BACKWARD`, taken
/// backward conditional jumps, C calls other than `len` and `list.append`.
const TABLE_311: PollTable = PollTable {
    default: When::Never,
    rows: &[
        (&["RESUME", "JUMP_BACKWARD"], When::Always),
        (
            &["POP_JUMP_BACKWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE"],
            When::IfTaken,
        ),
        (&["CALL"], When::AfterSlowNativeCall),
    ],
    exempt_before_with: false,
};
/// VM-8: every instruction boundary.
const TABLE_EVERY: PollTable = PollTable {
    default: When::Always,
    rows: &[],
    exempt_before_with: false,
};

impl Table {
    fn table(self) -> &'static PollTable {
        match self {
            Table::Py38 => &TABLE_38,
            Table::Py39 => &TABLE_39,
            Table::Py310 => &TABLE_310,
            Table::Py311 => &TABLE_311,
            Table::Every => &TABLE_EVERY,
        }
    }
}

/// What a call called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callee {
    Python,
    /// A built-in; `fast` for `len` (never polls on 3.11+).
    Native {
        fast: bool,
    },
}

/// One completed instruction, as the reference interpreter saw it.
#[derive(Debug, Clone, Copy)]
struct Done {
    instr: Instr,
    /// The thread's next instruction; `None` when the thread ended.
    next: Option<Instr>,
    taken: bool,
    exact_bool: bool,
    callee: Option<Callee>,
    returned_to_caller: bool,
}

impl Done {
    fn plain(instr: Instr) -> Self {
        Done {
            instr,
            next: None,
            taken: false,
            exact_bool: false,
            callee: None,
            returned_to_caller: false,
        }
    }
}

/// Whether `table` puts a poll point after `d` (never after a thread's last step).
fn polls(table: Table, d: &Done) -> bool {
    let Some(next) = d.next else {
        return false;
    };
    let t = table.table();
    if t.exempt_before_with && next == Instr::BeforeWith {
        return false;
    }
    let name = d.instr.name();
    let when = t
        .rows
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map_or(t.default, |&(_, w)| w);
    match when {
        When::Always => true,
        When::Never => false,
        When::IfTaken => d.taken,
        When::IfNotExactBool => !d.exact_bool,
        When::AfterNativeCall => matches!(d.callee, Some(Callee::Native { .. })),
        When::AfterSlowNativeCall => d.callee == Some(Callee::Native { fast: false }),
        When::IfReturnToCaller => d.returned_to_caller,
    }
}

// ---------------------------------------------------------------------------------------------
// The reference interpreter.
// ---------------------------------------------------------------------------------------------

/// A value: plain Rust data, no reference counts. Mutable containers, iterators, threads and
/// locks are indices into the interpreter's tables, so every name for one object sees its writes.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Val>),
    List(usize),
    Dict(usize),
    Code(usize),
    Func(usize),
    Module(&'static str),
    Native(Native),
    /// A method of a built-in type, as `LOAD_METHOD` pushes it (unbound).
    Method(Native),
    Thread(usize),
    Lock(usize),
    /// A lock's bound `__exit__`, as `BEFORE_WITH` pushes it.
    Exit(usize),
    Range(i64, i64, i64),
    Iter(usize),
}

/// The built-ins the generated programs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Native {
    Print,
    Range,
    Len,
    Repr,
    ThreadClass,
    LockClass,
    Sleep,
    Start,
    Join,
}

#[derive(Debug, Clone)]
enum Iter {
    Range { next: i64, stop: i64, step: i64 },
    List { list: usize, index: usize },
    Tuple { items: Vec<Val>, index: usize },
}

#[derive(Debug, Clone)]
struct ThreadObj {
    name: String,
    target: Val,
    args: Vec<Val>,
    /// The runtime thread that runs it, once started.
    runtime: Option<usize>,
    stopped: bool,
}

/// Why a blocked thread waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Lock(usize),
    Join(usize),
    Sleep,
}

#[derive(Debug, Clone)]
struct Frame {
    code: usize,
    pc: usize,
    stack: Vec<Option<Val>>,
    locals: Vec<Option<Val>>,
    kw_names: Option<Vec<String>>,
}

/// A runtime thread: frames, or before its first step the call that starts it.
#[derive(Debug, Clone)]
struct RThread {
    frames: Vec<Frame>,
    start: Option<(Val, Vec<Val>)>,
    obj: Option<usize>,
    /// The blocking instruction it retries when it runs again.
    wait: Option<Wait>,
    /// It took its lock without the GIL (a `Grab` event); the retried acquire completes.
    granted: bool,
    finished: bool,
}

/// How one step ended.
#[derive(Debug, Clone, Copy)]
enum End {
    Ran(Done),
    Blocked,
    Finished,
}

/// One step: where it was (code, pc; `None` for a thread's start call) and how it ended.
#[derive(Debug, Clone, Copy)]
struct Stepped {
    at: Option<(usize, usize)>,
    end: End,
}

/// Deliberate defects of the reference interpreter, for the broken twins only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Twin {
    /// `//` and `%` truncate toward zero (C's rule) instead of flooring (Python's, VM-3).
    truncating_division: bool,
}

/// The reference interpreter: executes exactly one instruction per `Step` event.
struct Reference<'p> {
    program: &'p Program,
    table: Table,
    twin: Twin,
    /// The module namespace, in insertion order (as a dict keeps it).
    globals: Vec<(String, Val)>,
    dicts: Vec<Vec<(Val, Val)>>,
    lists: Vec<Vec<Val>>,
    iters: Vec<Iter>,
    thread_objs: Vec<ThreadObj>,
    /// Whether each lock is held.
    locks: Vec<bool>,
    threads: Vec<RThread>,
    output: String,
    /// Steps that blocked, and lock takes without the GIL, for the statistics.
    blocked_steps: usize,
    grabs: usize,
}

/// What an instruction did, for the step's `Done`.
#[derive(Default)]
struct Flags {
    taken: bool,
    exact_bool: bool,
    callee: Option<Callee>,
    returned_to_caller: bool,
}

enum Exec {
    Ran(Flags),
    Blocked(Wait),
    Finished,
}

fn floor_div(a: i64, b: i64, twin: Twin) -> Result<i64, String> {
    if b == 0 {
        return Err("ZeroDivisionError".into());
    }
    let q = a.checked_div(b).ok_or("OverflowError")?;
    if !twin.truncating_division && a % b != 0 && ((a < 0) != (b < 0)) {
        Ok(q - 1)
    } else {
        Ok(q)
    }
}

fn floor_mod(a: i64, b: i64, twin: Twin) -> Result<i64, String> {
    if b == 0 {
        return Err("ZeroDivisionError".into());
    }
    let r = a.checked_rem(b).ok_or("OverflowError")?;
    if !twin.truncating_division && r != 0 && ((r < 0) != (b < 0)) {
        Ok(r + b)
    } else {
        Ok(r)
    }
}

/// Python's `a op b` on ints (VM-3: 64-bit, floor division and modulo).
fn arith(op: BinOp, a: i64, b: i64, twin: Twin) -> Result<i64, String> {
    let over = || "OverflowError".to_string();
    match op {
        BinOp::Add => a.checked_add(b).ok_or_else(over),
        BinOp::Sub => a.checked_sub(b).ok_or_else(over),
        BinOp::Mul => a.checked_mul(b).ok_or_else(over),
        BinOp::FloorDiv => floor_div(a, b, twin),
        BinOp::Mod => floor_mod(a, b, twin),
        other => Err(format!("operator {} is not generated", other.symbol())),
    }
}

/// Python's `repr` of a str.
fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `format(i, ',')`: thousands separated by commas.
fn group_thousands(i: i64) -> String {
    let digits = i.unsigned_abs().to_string();
    let mut out = String::new();
    for (n, c) in digits.chars().enumerate() {
        if n > 0 && (digits.len() - n).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if i < 0 { format!("-{out}") } else { out }
}

impl<'p> Reference<'p> {
    fn new(program: &'p Program, table: Table, twin: Twin) -> Self {
        let module = program.module();
        Reference {
            program,
            table,
            twin,
            globals: Vec::new(),
            dicts: Vec::new(),
            lists: Vec::new(),
            iters: Vec::new(),
            thread_objs: Vec::new(),
            locks: Vec::new(),
            threads: vec![RThread {
                frames: vec![Frame {
                    code: 0,
                    pc: 0,
                    stack: Vec::new(),
                    locals: vec![None; module.varnames.len()],
                    kw_names: None,
                }],
                start: None,
                obj: None,
                wait: None,
                granted: false,
                finished: false,
            }],
            output: String::new(),
            blocked_steps: 0,
            grabs: 0,
        }
    }

    /// Follows a whole schedule, checking that it is one the rules allow: each step belongs to
    /// a thread that exists, has not finished and whose wait (if any) is over; a lock take
    /// without the GIL is by a thread blocked on that lock while it is free; a switch to
    /// another thread happens only after a poll point of the table, a block or a thread's end;
    /// and when the schedule ends every thread has finished.
    ///
    /// With the explorer's `log` of decisions, it also checks the converse: after every step
    /// the table follows with a poll point, while another thread could run, the explorer
    /// offered exactly those threads a switch (and nowhere else); when a thread blocked or
    /// ended it offered the GIL to exactly the threads that can run; before a thread took a
    /// free lock that others wait for, it offered them the lock first.
    fn run(&mut self, events: &[Event], log: Option<&[Rec]>) -> Result<(), String> {
        let mut last: Option<(usize, Stepped)> = None;
        let mut k = 0; // position in the log
        let mut synced = false; // the decisions before the coming step have been checked
        let mut grabs: VecDeque<u32> = VecDeque::new();
        for (i, e) in events.iter().enumerate() {
            let fail = |why: String| format!("event {i} ({e:?}): {why}");
            if let Some(log) = log
                && !synced
            {
                let t = events[i..]
                    .iter()
                    .find_map(|e| match e {
                        Event::Step(t) => Some(*t as usize),
                        Event::Grab(_) => None,
                    })
                    .ok_or_else(|| fail("the schedule ends with a lock take".into()))?;
                self.check_decisions_before(t, last, log, &mut k, &mut grabs)
                    .map_err(fail)?;
                synced = true;
            }
            match *e {
                Event::Grab(w) => {
                    if log.is_some() && grabs.pop_front() != Some(w) {
                        return Err(fail("a lock take no decision chose".into()));
                    }
                    self.grab(w as usize).map_err(fail)?
                }
                Event::Step(t) => {
                    let t = t as usize;
                    if let Some((prev, s)) = last
                        && prev != t
                        && let End::Ran(d) = s.end
                        && !polls(self.table, &d)
                    {
                        return Err(fail(format!(
                            "switch from thread {prev} to thread {t} after {} ({}), where {:?} has no poll point",
                            d.instr,
                            self.place(s.at),
                            self.table
                        )));
                    }
                    let s = self.step(t).map_err(fail)?;
                    if let Some(log) = log {
                        match log.get(k) {
                            Some(Rec::Step(u)) if *u as usize == t => k += 1,
                            other => {
                                return Err(fail(format!("the explorer's log has {other:?}")));
                            }
                        }
                        self.check_poll_after(t, s, log, &mut k).map_err(fail)?;
                    }
                    last = Some((t, s));
                    synced = false;
                }
            }
        }
        if let Some(t) = self.threads.iter().position(|t| !t.finished) {
            return Err(format!(
                "the schedule ends while thread {t} has not finished"
            ));
        }
        if let Some(log) = log
            && k != log.len()
        {
            return Err(format!("the explorer's log goes on: {:?}", &log[k..]));
        }
        Ok(())
    }

    /// Whether thread `u` could take the GIL now.
    fn can_run(&self, u: usize) -> bool {
        let th = &self.threads[u];
        !th.finished
            && match th.wait {
                None => true,
                Some(Wait::Lock(l)) => th.granted || !self.locks[l],
                Some(Wait::Join(v)) => self.threads[v].finished,
                Some(Wait::Sleep) => true,
            }
    }

    /// The threads other than `except` that could take the GIL now, in order.
    fn runnable(&self, except: Option<usize>) -> Vec<u32> {
        (0..self.threads.len())
            .filter(|&u| Some(u) != except && self.can_run(u))
            .map(|u| u as u32)
            .collect()
    }

    /// The lock thread `t`'s next instruction takes, if it is a `BEFORE_WITH`.
    fn pending_acquire(&self, t: usize) -> Option<usize> {
        let th = &self.threads[t];
        let f = th.frames.last().filter(|_| th.start.is_none())?;
        match (self.program.codes[f.code].instrs[f.pc], f.stack.last()) {
            (Instr::BeforeWith, Some(Some(Val::Lock(l)))) => Some(*l),
            _ => None,
        }
    }

    /// Before thread `t`'s step: the explorer chose `t` among exactly the threads that can run
    /// when the last holder blocked or ended; and if `t` is about to take a free lock that
    /// others wait for, it offered them the lock first.
    fn check_decisions_before(
        &self,
        t: usize,
        last: Option<(usize, Stepped)>,
        log: &[Rec],
        k: &mut usize,
        grabs: &mut VecDeque<u32>,
    ) -> Result<(), String> {
        let released =
            matches!(last, Some((_, s)) if matches!(s.end, End::Blocked | End::Finished));
        if released {
            let want = self.runnable(None);
            match log.get(*k) {
                Some(Rec::Choice(Decision::Next { candidates }, c))
                    if *candidates == want && candidates.get(*c) == Some(&(t as u32)) =>
                {
                    *k += 1
                }
                other => {
                    return Err(format!(
                        "the GIL is free and threads {want:?} can run, but the explorer's log has {other:?}"
                    ));
                }
            }
        }
        let resumed_on_lock = matches!(self.threads[t].wait, Some(Wait::Lock(_)));
        if let Some(l) = self.pending_acquire(t)
            && !resumed_on_lock
            && !self.threads[t].granted
            && !self.locks[l]
        {
            let waiters: Vec<u32> = (0..self.threads.len())
                .filter(|&u| {
                    u != t
                        && self.threads[u].wait == Some(Wait::Lock(l))
                        && !self.threads[u].granted
                })
                .map(|u| u as u32)
                .collect();
            if !waiters.is_empty() {
                match log.get(*k) {
                    Some(Rec::Choice(
                        Decision::Grab {
                            holder, waiters: w, ..
                        },
                        c,
                    )) if *holder as usize == t && *w == waiters => {
                        if *c > 0 {
                            grabs.push_back(waiters[*c - 1]);
                        }
                        *k += 1;
                    }
                    other => {
                        return Err(format!(
                            "thread {t} takes a free lock that threads {waiters:?} wait for, but the explorer's log has {other:?}"
                        ));
                    }
                }
            }
        }
        match log.get(*k) {
            Some(Rec::Choice(d, _)) => Err(format!(
                "before thread {t}'s step the explorer asked {d:?}, which the rules do not ask there"
            )),
            _ => Ok(()),
        }
    }

    /// After thread `t`'s step `s`: the explorer offered a switch exactly where the table puts
    /// a poll point and another thread can run, to exactly those threads.
    fn check_poll_after(
        &self,
        t: usize,
        s: Stepped,
        log: &[Rec],
        k: &mut usize,
    ) -> Result<(), String> {
        let want = match s.end {
            End::Ran(d) if polls(self.table, &d) => self.runnable(Some(t)),
            _ => Vec::new(),
        };
        match (log.get(*k), want.is_empty()) {
            (Some(Rec::Choice(Decision::Poll { holder, candidates }, _)), false)
                if *holder as usize == t && *candidates == want =>
            {
                *k += 1;
                Ok(())
            }
            (Some(Rec::Choice(d @ Decision::Poll { .. }, _)), true) => Err(format!(
                "after thread {t}'s step ({}, {:?}) the explorer offered a switch ({d:?}), but the table has no poll point there or no other thread can run",
                self.place(s.at),
                s.end,
            )),
            (other, false) => Err(format!(
                "after thread {t}'s step ({}, {:?}) the table has a poll point and threads {want:?} can run, but the explorer's log has {other:?}",
                self.place(s.at),
                s.end,
            )),
            _ => Ok(()),
        }
    }

    fn place(&self, at: Option<(usize, usize)>) -> String {
        match at {
            Some((c, pc)) => format!(
                "{} instruction {pc}, line {}",
                self.program.codes[c].name, self.program.codes[c].lines[pc]
            ),
            None => "the thread's start call".into(),
        }
    }

    /// `Grab(w)`: thread `w`, blocked on a free lock, takes it without the GIL.
    fn grab(&mut self, w: usize) -> Result<(), String> {
        let th = self
            .threads
            .get(w)
            .ok_or_else(|| format!("thread {w} does not exist"))?;
        match th.wait {
            Some(Wait::Lock(l)) if !self.locks[l] && !th.granted => {
                self.locks[l] = true;
                self.threads[w].granted = true;
                self.grabs += 1;
                Ok(())
            }
            other => Err(format!(
                "thread {w} takes a lock without the GIL, but it waits for {other:?} (lock states {:?})",
                self.locks
            )),
        }
    }

    /// Runs one step of thread `t`.
    fn step(&mut self, t: usize) -> Result<Stepped, String> {
        let th = self
            .threads
            .get(t)
            .ok_or_else(|| format!("thread {t} was never started"))?;
        if th.finished {
            return Err(format!("thread {t} runs a step after it finished"));
        }
        let mut resumed = false;
        if let Some(w) = th.wait {
            let over = match w {
                Wait::Lock(l) => th.granted || !self.locks[l],
                Wait::Join(u) => self.threads[u].finished,
                Wait::Sleep => true,
            };
            if !over {
                return Err(format!(
                    "thread {t} runs while it waits for {w:?}, which is not over"
                ));
            }
            self.threads[t].wait = None;
            resumed = true;
        }
        if let Some((target, args)) = self.threads[t].start.take() {
            // A started thread's first step: the call of its target (a CALL of a Python
            // function; the callee polls at its RESUME).
            let Val::Func(code) = target else {
                return Err(format!("thread target {target:?} is not a Python function"));
            };
            let n = args.len() as u32;
            self.push_frame(t, code, args, Vec::new())?;
            let next = self.next_instr(t);
            return Ok(Stepped {
                at: None,
                end: End::Ran(Done {
                    next,
                    callee: Some(Callee::Python),
                    ..Done::plain(Instr::Call(n))
                }),
            });
        }
        let f = self.threads[t].frames.last().expect("a running thread");
        let at = (f.code, f.pc);
        let instr = self.program.codes[at.0].instrs[at.1];
        let end = match self.exec(t, resumed)? {
            Exec::Ran(fl) => End::Ran(Done {
                instr,
                next: self.next_instr(t),
                taken: fl.taken,
                exact_bool: fl.exact_bool,
                callee: fl.callee,
                returned_to_caller: fl.returned_to_caller,
            }),
            Exec::Blocked(w) => {
                self.threads[t].wait = Some(w);
                self.blocked_steps += 1;
                End::Blocked
            }
            Exec::Finished => {
                let th = &mut self.threads[t];
                th.finished = true;
                if let Some(o) = th.obj {
                    let obj = &mut self.thread_objs[o];
                    obj.stopped = true;
                    obj.target = Val::None;
                    obj.args.clear();
                }
                End::Finished
            }
        };
        Ok(Stepped { at: Some(at), end })
    }

    fn next_instr(&self, t: usize) -> Option<Instr> {
        self.threads[t]
            .frames
            .last()
            .map(|f| self.program.codes[f.code].instrs[f.pc])
    }

    fn frame(&mut self, t: usize) -> &mut Frame {
        self.threads[t].frames.last_mut().expect("a running thread")
    }

    fn push(&mut self, t: usize, v: Val) {
        self.frame(t).stack.push(Some(v));
    }

    fn pop(&mut self, t: usize) -> Result<Val, String> {
        self.frame(t)
            .stack
            .pop()
            .ok_or("stack underflow")?
            .ok_or_else(|| "NULL where a value was expected".to_string())
    }

    fn konst(&self, c: &Const) -> Val {
        match c {
            Const::None => Val::None,
            Const::Bool(b) => Val::Bool(*b),
            Const::Int(i) => Val::Int(*i),
            Const::Float(x) => Val::Float(*x),
            Const::Str(s) => Val::Str(s.clone()),
            Const::Tuple(items) => Val::Tuple(items.iter().map(|c| self.konst(c)).collect()),
            Const::Code(i) => Val::Code(*i),
            Const::FrozenSet(_) | Const::Bytes(_) => {
                unreachable!("generated programs have no frozenset or bytes constant")
            }
        }
    }

    /// A name in the module globals, else the built-ins.
    fn lookup(&self, name: &str) -> Result<Val, String> {
        if let Some((_, v)) = self.globals.iter().find(|(n, _)| n == name) {
            return Ok(v.clone());
        }
        Ok(match name {
            "print" => Val::Native(Native::Print),
            "range" => Val::Native(Native::Range),
            "len" => Val::Native(Native::Len),
            "repr" => Val::Native(Native::Repr),
            _ => return Err(format!("NameError: name '{name}' is not defined")),
        })
    }

    fn set_global(&mut self, name: &str, v: Val) {
        match self.globals.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => self.globals.push((name.to_string(), v)),
        }
    }

    fn int(v: &Val) -> Result<i64, String> {
        match v {
            Val::Int(i) => Ok(*i),
            Val::Bool(b) => Ok(i64::from(*b)),
            other => Err(format!("TypeError: expected an int, got {other:?}")),
        }
    }

    fn truthy(&self, v: &Val) -> bool {
        match v {
            Val::None => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Float(x) => *x != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::Tuple(items) => !items.is_empty(),
            Val::List(l) => !self.lists[*l].is_empty(),
            Val::Dict(d) => !self.dicts[*d].is_empty(),
            _ => true,
        }
    }

    fn repr(&self, v: &Val) -> String {
        let join = |items: &[Val]| {
            items
                .iter()
                .map(|x| self.repr(x))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match v {
            Val::None => "None".into(),
            Val::Bool(b) => if *b { "True" } else { "False" }.into(),
            Val::Int(i) => i.to_string(),
            Val::Float(x) => format!("{x:?}"),
            Val::Str(s) => repr_str(s),
            Val::Tuple(items) if items.len() == 1 => format!("({},)", join(items)),
            Val::Tuple(items) => format!("({})", join(items)),
            Val::List(l) => format!("[{}]", join(&self.lists[*l])),
            Val::Dict(d) => format!(
                "{{{}}}",
                self.dicts[*d]
                    .iter()
                    .map(|(k, v)| format!("{}: {}", self.repr(k), self.repr(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Val::Code(c) | Val::Func(c) => format!("<function {}>", self.program.codes[*c].name),
            Val::Module(m) => format!("<module '{m}'>"),
            Val::Native(n) | Val::Method(n) => format!("<built-in {n:?}>"),
            Val::Thread(i) => {
                let o = &self.thread_objs[*i];
                let state = if o.stopped {
                    "stopped"
                } else if o.runtime.is_some() {
                    "started"
                } else {
                    "initial"
                };
                format!("<Thread({}, {state})>", o.name)
            }
            Val::Lock(l) | Val::Exit(l) => format!(
                "<{} _thread.lock object>",
                if self.locks[*l] { "locked" } else { "unlocked" }
            ),
            Val::Range(a, b, s) => format!("range({a}, {b}, {s})"),
            Val::Iter(_) => "<iterator>".into(),
        }
    }

    /// Python's `str`.
    fn str_of(&self, v: &Val) -> String {
        match v {
            Val::Str(s) => s.clone(),
            other => self.repr(other),
        }
    }

    /// Whether `v` is data (compared by value with gilcheck's final state).
    fn is_data(&self, v: &Val) -> bool {
        match v {
            Val::None | Val::Bool(_) | Val::Int(_) | Val::Float(_) | Val::Str(_) => true,
            Val::Tuple(items) => items.iter().all(|x| self.is_data(x)),
            Val::List(l) => self.lists[*l].iter().all(|x| self.is_data(x)),
            Val::Dict(d) => self.dicts[*d]
                .iter()
                .all(|(k, v)| self.is_data(k) && self.is_data(v)),
            _ => false,
        }
    }

    fn format(&self, v: &Val, conversion: Conversion, spec: &str) -> Result<String, String> {
        match conversion {
            Conversion::Repr => return Ok(self.repr(v)),
            Conversion::Str => return Ok(self.str_of(v)),
            Conversion::None if spec.is_empty() => return Ok(self.str_of(v)),
            Conversion::None => {}
        }
        let i = Self::int(v)?;
        if let Some(digits) = spec.strip_prefix('.').and_then(|s| s.strip_suffix('f')) {
            let n: usize = digits.parse().map_err(|_| format!("bad spec {spec}"))?;
            return Ok(format!("{:.*}", n, i as f64));
        }
        match spec {
            "d" => Ok(i.to_string()),
            "," | ",d" => Ok(group_thousands(i)),
            _ => Err(format!("format spec {spec:?} is not generated")),
        }
    }

    fn dict_get(&self, d: usize, k: &Val) -> Result<Val, String> {
        self.dicts[d]
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("KeyError: {}", self.repr(k)))
    }

    fn dict_set(&mut self, d: usize, k: Val, v: Val) {
        match self.dicts[d].iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => self.dicts[d].push((k, v)),
        }
    }

    fn new_dict(&mut self, items: Vec<(Val, Val)>) -> Val {
        self.dicts.push(Vec::new());
        let d = self.dicts.len() - 1;
        for (k, v) in items {
            self.dict_set(d, k, v);
        }
        Val::Dict(d)
    }

    fn getattr(&self, obj: &Val, name: &str) -> Result<Val, String> {
        Ok(match (obj, name) {
            (Val::Module("threading"), "Thread") => Val::Native(Native::ThreadClass),
            (Val::Module("threading"), "Lock") => Val::Native(Native::LockClass),
            (Val::Module("time"), "sleep") => Val::Native(Native::Sleep),
            _ => return Err(format!("AttributeError: {obj:?} has no attribute {name}")),
        })
    }

    /// A new frame for the Python function of code object `code`.
    fn push_frame(
        &mut self,
        t: usize,
        code: usize,
        args: Vec<Val>,
        kwargs: Vec<(String, Val)>,
    ) -> Result<(), String> {
        let c = &self.program.codes[code];
        let argc = c.argcount as usize;
        if args.len() > argc {
            return Err(format!("TypeError: {}() given too many arguments", c.name));
        }
        let mut locals: Vec<Option<Val>> = vec![None; c.varnames.len()];
        for (i, a) in args.into_iter().enumerate() {
            locals[i] = Some(a);
        }
        for (k, v) in kwargs {
            let i = c.varnames[..argc]
                .iter()
                .position(|n| *n == k)
                .ok_or_else(|| format!("TypeError: unexpected keyword {k}"))?;
            locals[i] = Some(v);
        }
        if locals[..argc].iter().any(Option::is_none) {
            return Err(format!("TypeError: {}() is missing an argument", c.name));
        }
        self.threads[t].frames.push(Frame {
            code,
            pc: 0,
            stack: Vec::new(),
            locals,
            kw_names: None,
        });
        Ok(())
    }

    /// Takes lock `l` for thread `t`, or says it must wait.
    fn acquire(&mut self, t: usize, l: usize) -> Option<Wait> {
        if std::mem::take(&mut self.threads[t].granted) {
            None // taken for it by a Grab event
        } else if !self.locks[l] {
            self.locks[l] = true;
            None
        } else {
            Some(Wait::Lock(l))
        }
    }

    /// Calls the built-in `b` (a method gets its receiver first in `args`): its result, or the
    /// wait of a blocking call that cannot complete yet.
    fn native(
        &mut self,
        b: Native,
        args: Vec<Val>,
        kwargs: Vec<(String, Val)>,
        resumed: bool,
    ) -> Result<Result<Val, Wait>, String> {
        if b != Native::ThreadClass && !kwargs.is_empty() {
            return Err(format!("{b:?} called with keyword arguments"));
        }
        Ok(Ok(match b {
            Native::Print => {
                let parts: Vec<String> = args.iter().map(|a| self.str_of(a)).collect();
                self.output.push_str(&parts.join(" "));
                self.output.push('\n');
                Val::None
            }
            Native::Range => {
                let ints = args.iter().map(Self::int).collect::<Result<Vec<_>, _>>()?;
                match ints[..] {
                    [stop] => Val::Range(0, stop, 1),
                    [start, stop] => Val::Range(start, stop, 1),
                    [start, stop, step] if step != 0 => Val::Range(start, stop, step),
                    _ => return Err("bad range() call".into()),
                }
            }
            Native::Len => {
                let [x] = &args[..] else {
                    return Err("len() takes one argument".into());
                };
                let n = match x {
                    Val::Dict(d) => self.dicts[*d].len(),
                    Val::List(l) => self.lists[*l].len(),
                    Val::Tuple(items) => items.len(),
                    Val::Str(s) => s.chars().count(),
                    other => return Err(format!("TypeError: len() of {other:?}")),
                };
                Val::Int(n as i64)
            }
            Native::Repr => {
                let [x] = &args[..] else {
                    return Err("repr() takes one argument".into());
                };
                Val::Str(self.repr(x))
            }
            Native::ThreadClass => {
                let mut target = None;
                let mut targs = Vec::new();
                for (k, v) in kwargs {
                    match (k.as_str(), v) {
                        ("target", v) => target = Some(v),
                        ("args", Val::Tuple(items)) => targs = items,
                        (k, v) => return Err(format!("Thread({k}={v:?}) is not generated")),
                    }
                }
                let target = target.ok_or("Thread() without a target")?;
                // 3.10+ (`Lib/threading.py`): a default name ends with the target's name.
                let suffix = match (self.table, &target) {
                    (Table::Py38 | Table::Py39, _) => String::new(),
                    (_, Val::Func(c)) => format!(" ({})", self.program.codes[*c].name),
                    _ => String::new(),
                };
                self.thread_objs.push(ThreadObj {
                    name: format!("Thread-{}{suffix}", self.thread_objs.len() + 1),
                    target,
                    args: targs,
                    runtime: None,
                    stopped: false,
                });
                Val::Thread(self.thread_objs.len() - 1)
            }
            Native::LockClass => {
                self.locks.push(false);
                Val::Lock(self.locks.len() - 1)
            }
            Native::Sleep => {
                if !resumed {
                    return Ok(Err(Wait::Sleep)); // every sleep releases the GIL (VM-4)
                }
                Val::None
            }
            Native::Start => {
                let Some(Val::Thread(o)) = args.first() else {
                    return Err("start() of a non-thread".into());
                };
                let o = *o;
                if self.thread_objs[o].runtime.is_some() {
                    return Err("RuntimeError: threads can only be started once".into());
                }
                let obj = &self.thread_objs[o];
                let start = (obj.target.clone(), obj.args.clone());
                self.threads.push(RThread {
                    frames: Vec::new(),
                    start: Some(start),
                    obj: Some(o),
                    wait: None,
                    granted: false,
                    finished: false,
                });
                self.thread_objs[o].runtime = Some(self.threads.len() - 1);
                Val::None
            }
            Native::Join => {
                let Some(Val::Thread(o)) = args.first() else {
                    return Err("join() of a non-thread".into());
                };
                let u = self.thread_objs[*o]
                    .runtime
                    .ok_or("RuntimeError: cannot join thread before it is started")?;
                if !self.threads[u].finished {
                    return Ok(Err(Wait::Join(u)));
                }
                Val::None
            }
        }))
    }

    /// `CALL n` (3.11's convention: `[NULL or method, callable or self, args…]`).
    fn call(&mut self, t: usize, n: usize, resumed: bool) -> Result<Exec, String> {
        let f = self.frame(t);
        let kw_names = f.kw_names.take().unwrap_or_default();
        let base = f
            .stack
            .len()
            .checked_sub(n + 2)
            .ok_or("CALL: stack underflow")?;
        let slots = f.stack[base..].to_vec();
        let mut all: Vec<Val> = Vec::new();
        let func = match (&slots[0], &slots[1]) {
            (Some(m), s) => {
                all.push(s.clone().ok_or("CALL: NULL self")?);
                m.clone()
            }
            (None, Some(c)) => c.clone(),
            (None, None) => return Err("TypeError: 'NULL' object is not callable".into()),
        };
        for a in &slots[2..] {
            all.push(a.clone().ok_or("CALL: NULL argument")?);
        }
        let npos = all
            .len()
            .checked_sub(kw_names.len())
            .ok_or("too many keyword names")?;
        let kwargs: Vec<(String, Val)> =
            kw_names.iter().cloned().zip(all.split_off(npos)).collect();
        let callee = match func {
            Val::Func(code) => {
                let f = self.frame(t);
                f.stack.truncate(base);
                f.pc += 1;
                self.push_frame(t, code, all, kwargs)?;
                return Ok(Exec::Ran(Flags {
                    callee: Some(Callee::Python),
                    ..Flags::default()
                }));
            }
            Val::Native(b) | Val::Method(b) => match self.native(b, all, kwargs, resumed)? {
                Ok(r) => {
                    let f = self.frame(t);
                    f.stack.truncate(base);
                    f.stack.push(Some(r));
                    // VM-7: every built-in call polls, `len` included (warm-up and backed-off
                    // specializations run the generic CALL).
                    Callee::Native { fast: false }
                }
                Err(w) => {
                    self.frame(t).kw_names = Some(kw_names);
                    return Ok(Exec::Blocked(w));
                }
            },
            Val::Exit(l) => {
                if !self.locks[l] {
                    return Err("RuntimeError: release unlocked lock".into());
                }
                self.locks[l] = false;
                let f = self.frame(t);
                f.stack.truncate(base);
                f.stack.push(Some(Val::None));
                Callee::Native { fast: false }
            }
            other => return Err(format!("TypeError: {other:?} is not callable")),
        };
        self.frame(t).pc += 1;
        Ok(Exec::Ran(Flags {
            callee: Some(callee),
            ..Flags::default()
        }))
    }

    /// Runs the instruction at thread `t`'s program counter (spec/bytecode.md's table).
    fn exec(&mut self, t: usize, resumed: bool) -> Result<Exec, String> {
        use Instr::*;
        let program = self.program;
        let (ci, pc) = {
            let f = self.frame(t);
            (f.code, f.pc)
        };
        let code: &Code = &program.codes[ci];
        let name = |a: u32| code.names[a as usize].as_str();
        let mut next_pc = pc + 1;
        let mut flags = Flags::default();
        match code.instrs[pc] {
            Nop | Resume(_) => {}
            LoadConst(k) => {
                let v = self.konst(&code.consts[k as usize]);
                self.push(t, v);
            }
            LoadFast(v) => {
                let x = self.frame(t).locals[v as usize]
                    .clone()
                    .ok_or("NameError: unbound local")?;
                self.push(t, x);
            }
            StoreFast(v) => {
                let x = self.pop(t)?;
                self.frame(t).locals[v as usize] = Some(x);
            }
            LoadGlobal { name: a, null } => {
                let v = self.lookup(name(a))?;
                if null {
                    self.frame(t).stack.push(None);
                }
                self.push(t, v);
            }
            LoadName(a) => {
                let v = self.lookup(name(a))?;
                self.push(t, v);
            }
            StoreGlobal(a) | StoreName(a) => {
                let v = self.pop(t)?;
                self.set_global(name(a), v);
            }
            PushNull => self.frame(t).stack.push(None),
            PopTop => {
                self.frame(t).stack.pop().ok_or("stack underflow")?;
            }
            Copy(n) => {
                let s = &mut self.frame(t).stack;
                let v = s[s.len() - n as usize].clone();
                s.push(v);
            }
            Swap(n) => {
                let s = &mut self.frame(t).stack;
                let len = s.len();
                s.swap(len - 1, len - n as usize);
            }
            BinarySubscr => {
                let k = self.pop(t)?;
                let c = self.pop(t)?;
                let v = match &c {
                    Val::Dict(d) => self.dict_get(*d, &k)?,
                    other => return Err(format!("subscript of {other:?} is not generated")),
                };
                self.push(t, v);
            }
            StoreSubscr => {
                let k = self.pop(t)?;
                let c = self.pop(t)?;
                let v = self.pop(t)?;
                match c {
                    Val::Dict(d) => self.dict_set(d, k, v),
                    other => return Err(format!("item assignment on {other:?}")),
                }
            }
            BinaryOp { op, .. } => {
                let b = Self::int(&self.pop(t)?)?;
                let a = Self::int(&self.pop(t)?)?;
                let r = arith(op, a, b, self.twin)?;
                self.push(t, Val::Int(r));
            }
            CompareOp(c) => {
                let b = Self::int(&self.pop(t)?)?;
                let a = Self::int(&self.pop(t)?)?;
                let r = match c {
                    CmpOp::Lt => a < b,
                    CmpOp::Le => a <= b,
                    CmpOp::Eq => a == b,
                    CmpOp::Ne => a != b,
                    CmpOp::Gt => a > b,
                    CmpOp::Ge => a >= b,
                };
                self.push(t, Val::Bool(r));
            }
            GetIter => {
                let it = match self.pop(t)? {
                    Val::Range(start, stop, step) => Iter::Range {
                        next: start,
                        stop,
                        step,
                    },
                    Val::List(l) => Iter::List { list: l, index: 0 },
                    Val::Tuple(items) => Iter::Tuple { items, index: 0 },
                    other => return Err(format!("TypeError: {other:?} is not iterable")),
                };
                self.iters.push(it);
                let v = Val::Iter(self.iters.len() - 1);
                self.push(t, v);
            }
            ForIter(target) => {
                let Some(Some(Val::Iter(i))) = self.frame(t).stack.last().cloned() else {
                    return Err("FOR_ITER without an iterator".into());
                };
                let item = match &mut self.iters[i] {
                    Iter::Range { next, stop, step } => {
                        let more = if *step > 0 { next < stop } else { next > stop };
                        more.then(|| {
                            let v = *next;
                            *next += *step;
                            Val::Int(v)
                        })
                    }
                    Iter::List { list, index } => {
                        let v = self.lists[*list].get(*index).cloned();
                        *index += 1;
                        v
                    }
                    Iter::Tuple { items, index } => {
                        let v = items.get(*index).cloned();
                        *index += 1;
                        v
                    }
                };
                match item {
                    Some(v) => self.push(t, v),
                    None => {
                        self.pop(t)?;
                        next_pc = target as usize;
                        flags.taken = true;
                    }
                }
            }
            JumpForward(target) | JumpBackward(target) => next_pc = target as usize,
            i @ (PopJumpForwardIfFalse(target)
            | PopJumpForwardIfTrue(target)
            | PopJumpBackwardIfFalse(target)
            | PopJumpBackwardIfTrue(target)) => {
                let x = self.pop(t)?;
                flags.exact_bool = matches!(x, Val::Bool(_));
                let on_true = matches!(i, PopJumpForwardIfTrue(_) | PopJumpBackwardIfTrue(_));
                if self.truthy(&x) == on_true {
                    next_pc = target as usize;
                    flags.taken = true;
                }
            }
            KwNames(k) => {
                let Const::Tuple(names) = &code.consts[k as usize] else {
                    return Err("KW_NAMES of a non-tuple".into());
                };
                let names = names
                    .iter()
                    .map(|c| match c {
                        Const::Str(s) => Ok(s.clone()),
                        other => Err(format!("keyword name {other:?}")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.frame(t).kw_names = Some(names);
            }
            Call(n) => return self.call(t, n as usize, resumed),
            LoadMethod(a) => {
                let x = self.pop(t)?;
                match (&x, name(a)) {
                    (Val::Thread(_), m @ ("start" | "join")) => {
                        let meth = if m == "start" {
                            Native::Start
                        } else {
                            Native::Join
                        };
                        self.push(t, Val::Method(meth));
                        self.push(t, x);
                    }
                    (_, attr) => {
                        let v = self.getattr(&x, attr)?;
                        self.frame(t).stack.push(None);
                        self.push(t, v);
                    }
                }
            }
            LoadAttr(a) => {
                let x = self.pop(t)?;
                let v = self.getattr(&x, name(a))?;
                self.push(t, v);
            }
            BuildTuple(n) | BuildList(n) => {
                let s = &mut self.frame(t).stack;
                let items = s
                    .split_off(s.len() - n as usize)
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or("NULL item")?;
                let v = if matches!(code.instrs[pc], BuildTuple(_)) {
                    Val::Tuple(items)
                } else {
                    self.lists.push(items);
                    Val::List(self.lists.len() - 1)
                };
                self.push(t, v);
            }
            BuildMap(n) => {
                let s = &mut self.frame(t).stack;
                let items = s
                    .split_off(s.len() - 2 * n as usize)
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or("NULL item")?;
                let pairs = items
                    .chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect();
                let d = self.new_dict(pairs);
                self.push(t, d);
            }
            BuildConstKeyMap(n) => {
                let Val::Tuple(keys) = self.pop(t)? else {
                    return Err("BUILD_CONST_KEY_MAP without a key tuple".into());
                };
                let s = &mut self.frame(t).stack;
                let values = s
                    .split_off(s.len() - n as usize)
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or("NULL item")?;
                let d = self.new_dict(keys.into_iter().zip(values).collect());
                self.push(t, d);
            }
            ListAppend(i) => {
                let x = self.pop(t)?;
                let s = &self.frame(t).stack;
                let Some(Some(Val::List(l))) = s.get(s.len() - i as usize).cloned() else {
                    return Err("LIST_APPEND without a list".into());
                };
                self.lists[l].push(x);
            }
            FormatValue { conversion, spec } => {
                let spec_text = if spec {
                    match self.pop(t)? {
                        Val::Str(s) => s,
                        other => return Err(format!("format spec {other:?}")),
                    }
                } else {
                    String::new()
                };
                let v = self.pop(t)?;
                let s = self.format(&v, conversion, &spec_text)?;
                self.push(t, Val::Str(s));
            }
            BuildString(n) => {
                let s = &mut self.frame(t).stack;
                let parts = s.split_off(s.len() - n as usize);
                let mut out = String::new();
                for p in parts {
                    match p {
                        Some(Val::Str(x)) => out.push_str(&x),
                        other => return Err(format!("BUILD_STRING of {other:?}")),
                    }
                }
                self.push(t, Val::Str(out));
            }
            MakeFunction(_) => match self.pop(t)? {
                Val::Code(c) => self.push(t, Val::Func(c)),
                other => return Err(format!("MAKE_FUNCTION of {other:?}")),
            },
            ImportName(a) => {
                self.pop(t)?;
                self.pop(t)?;
                let m = match name(a) {
                    "threading" => "threading",
                    "time" => "time",
                    other => return Err(format!("ModuleNotFoundError: {other}")),
                };
                self.push(t, Val::Module(m));
            }
            BeforeWith => {
                let Some(Some(Val::Lock(l))) = self.frame(t).stack.last().cloned() else {
                    return Err("BEFORE_WITH on a non-lock".into());
                };
                if let Some(w) = self.acquire(t, l) {
                    return Ok(Exec::Blocked(w));
                }
                self.pop(t)?;
                self.push(t, Val::Exit(l));
                self.push(t, Val::Bool(true));
            }
            ReturnValue => {
                let v = self.pop(t)?;
                self.threads[t].frames.pop();
                if self.threads[t].frames.is_empty() {
                    return Ok(Exec::Finished);
                }
                self.push(t, v);
                flags.returned_to_caller = true;
                return Ok(Exec::Ran(flags)); // the caller's pc is already past its CALL
            }
            other => return Err(format!("{other} is not generated")),
        }
        self.frame(t).pc = next_pc;
        Ok(Exec::Ran(flags))
    }

    /// Whether gilcheck's final globals (`(name, repr)`, in insertion order) agree with this
    /// interpreter's: the same names in the same order; data values (ints, strs, dicts, …) with
    /// the same repr; functions, modules, threads and locks of the same kind and state.
    fn compare_state(&self, state: &[(String, String)]) -> Result<(), String> {
        let mine: Vec<&str> = self.globals.iter().map(|(n, _)| n.as_str()).collect();
        let theirs: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
        if mine != theirs {
            return Err(format!(
                "global names differ: reference {mine:?}, gilcheck {theirs:?}"
            ));
        }
        for ((name, v), (_, r)) in self.globals.iter().zip(state) {
            let ok = if self.is_data(v) {
                self.repr(v) == *r
            } else {
                match v {
                    Val::Func(c) => {
                        r.starts_with(&format!("<function {}", self.program.codes[*c].name))
                    }
                    Val::Module(m) => r.starts_with("<module") && r.contains(m),
                    Val::Thread(i) => {
                        let o = &self.thread_objs[*i];
                        r.contains(&format!("{},", o.name)) && r.contains("stopped") == o.stopped
                    }
                    Val::Lock(l) => r.starts_with(if self.locks[*l] {
                        "<locked"
                    } else {
                        "<unlocked"
                    }),
                    Val::List(l) => {
                        r.starts_with('[')
                            && self.lists[*l].iter().all(|x| match x {
                                Val::Thread(i) => {
                                    r.contains(&format!("{},", self.thread_objs[*i].name))
                                }
                                _ => true,
                            })
                    }
                    _ => true,
                }
            };
            if !ok {
                return Err(format!(
                    "global {name}: reference {}, gilcheck {r}",
                    self.repr(v)
                ));
            }
        }
        Ok(())
    }
}

/// One entry of the explorer's log: a step, or a decision and the option chosen.
#[derive(Debug, Clone)]
enum Rec {
    Step(u32),
    Choice(Decision, usize),
}

/// gilcheck's `RandomWalk`, logging every decision it is asked and every step. The log changes
/// no choice: the schedule is the random walk's own.
struct Recorder {
    walk: RandomWalk,
    log: Vec<Rec>,
}

impl Recorder {
    fn new(seed: u64) -> Self {
        Recorder {
            walk: RandomWalk::new(seed),
            log: Vec::new(),
        }
    }
}

impl Oracle for Recorder {
    fn choose(&mut self, d: &Decision) -> usize {
        let i = self.walk.choose(d);
        self.log.push(Rec::Choice(d.clone(), i));
        i
    }

    fn on_step(&mut self, t: u32) {
        self.log.push(Rec::Step(t));
    }
}

/// Replays `e`'s schedule through the reference interpreter and compares everything: the
/// schedule is allowed by the policy table, the output and the final globals are the same.
fn compare_with_reference<'p>(
    program: &'p Program,
    table: Table,
    e: &Execution,
    log: Option<&[Rec]>,
    twin: Twin,
) -> Result<Reference<'p>, String> {
    let mut r = Reference::new(program, table, twin);
    r.run(&e.events, log)?;
    if r.output != e.outcome.output {
        return Err(format!(
            "output differs:\n--- reference\n{}--- gilcheck\n{}---",
            r.output, e.outcome.output
        ));
    }
    r.compare_state(&e.outcome.state)?;
    Ok(r)
}

/// A schedule in the compact form of schedule strings (`thread*steps`, `threadg`).
fn show_events(events: &[Event]) -> String {
    let mut items: Vec<String> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        match events[i] {
            Event::Grab(t) => {
                items.push(format!("{t}g"));
                i += 1;
            }
            Event::Step(t) => {
                let run = events[i..]
                    .iter()
                    .take_while(|&&e| e == Event::Step(t))
                    .count();
                items.push(format!("{t}*{run}"));
                i += run;
            }
        }
    }
    items.join(",")
}

// ---------------------------------------------------------------------------------------------
// Program assembly shared by both tests.
// ---------------------------------------------------------------------------------------------

/// Collects source lines and function code objects (program index = position + 1).
struct Gen {
    lines: Vec<String>,
    codes: Vec<Code>,
}

impl Gen {
    fn new() -> Self {
        Gen {
            lines: Vec::new(),
            codes: Vec::new(),
        }
    }

    /// Appends a source line; returns its 1-based number.
    fn line(&mut self, indent: usize, text: impl AsRef<str>) -> u32 {
        self.lines
            .push(format!("{}{}", "    ".repeat(indent), text.as_ref()));
        self.lines.len() as u32
    }

    fn add(&mut self, code: Code) -> usize {
        self.codes.push(code);
        self.codes.len()
    }

    fn finish(self, name: &str, module: Code) -> Program {
        let mut codes = vec![module];
        codes.extend(self.codes);
        Program {
            name: name.into(),
            source: self.lines.join("\n") + "\n",
            codes,
        }
    }
}

/// `import name` (`LOAD_CONST 0; LOAD_CONST None; IMPORT_NAME; STORE_NAME`).
fn emit_import(g: &mut Gen, m: &mut CodeBuilder, name: &str) {
    let l = g.line(0, format!("import {name}"));
    m.line(l).import_name(name).store_name(name);
}

/// `lock = threading.Lock()`.
fn emit_lock(g: &mut Gen, m: &mut CodeBuilder) {
    let l = g.line(0, "lock = threading.Lock()");
    m.line(l)
        .op(Instr::PushNull)
        .load_name("threading")
        .load_attr("Lock")
        .call(0)
        .store_name("lock");
}

/// `<var> = threading.Thread(target=<target>, args=(<args>))`, as `src/scenarios.rs` builds it.
fn emit_thread(g: &mut Gen, m: &mut CodeBuilder, var: &str, target: &str, args: &[i64]) {
    let shown = match args {
        [] => "()".to_string(),
        [a] => format!("({a},)"),
        many => format!(
            "({})",
            many.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let l = g.line(
        0,
        format!("{var} = threading.Thread(target={target}, args={shown})"),
    );
    m.line(l)
        .op(Instr::PushNull)
        .load_name("threading")
        .load_attr("Thread")
        .load_name(target)
        .load_const(Const::Tuple(args.iter().map(|&a| Const::Int(a)).collect()))
        .call_kw(2, &["target", "args"])
        .store_name(var);
}

/// `<var>.<method>()` as a statement.
fn emit_method_call(g: &mut Gen, m: &mut CodeBuilder, var: &str, method: &str) {
    let l = g.line(0, format!("{var}.{method}()"));
    m.line(l)
        .load_name(var)
        .load_method(method)
        .call(0)
        .op(Instr::PopTop);
}

/// The body of a `with lock:` block: entry, then `body`, then the normal exit (3.11's
/// `LOAD_CONST None` ×3, `CALL 2`, `POP_TOP`).
fn emit_with_lock(
    g: &mut Gen,
    f: &mut CodeBuilder,
    indent: usize,
    body: impl FnOnce(&mut Gen, &mut CodeBuilder, usize),
) {
    let l = g.line(indent, "with lock:");
    f.line(l)
        .load_global("lock")
        .op(Instr::BeforeWith)
        .op(Instr::PopTop);
    body(g, f, indent + 1);
    f.line(l)
        .load_none()
        .load_none()
        .load_none()
        .call(2)
        .op(Instr::PopTop);
}

/// `for _ in <iterable>: <body>`; `head` pushes the iterable.
fn emit_for(
    g: &mut Gen,
    f: &mut CodeBuilder,
    indent: usize,
    iterable: &str,
    head: impl FnOnce(&mut CodeBuilder),
    body: impl FnOnce(&mut Gen, &mut CodeBuilder, usize),
) {
    let l = g.line(indent, format!("for _ in {iterable}:"));
    f.line(l);
    head(f);
    f.op(Instr::GetIter);
    let top = f.here();
    let end = f.new_label();
    f.jump(Instr::ForIter, end).store_fast("_");
    body(g, f, indent + 1);
    f.line(l).jump(Instr::JumpBackward, top).bind(end);
}

fn check_options() -> CheckOptions {
    CheckOptions {
        engine: Engine::Dfs,
        preemptions: Some(2),
        max_executions: 100_000,
        seed: 0,
        max_steps: 100_000,
        progress: false,
        state_cache: true,
        ..CheckOptions::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Test 1: generated programs, random schedules, the reference interpreter.
// ---------------------------------------------------------------------------------------------

/// A location shared by the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    /// `shared["a"]` (0) or `shared["b"]` (1).
    Key(usize),
    /// The global `g`.
    Global,
}

const KEYS: [&str; 2] = ["a", "b"];

/// Where a call of the helper `bump` sits in a read–modify–write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallAt {
    No,
    /// `loc = bump(loc) op k`
    AroundRead,
    /// `loc op= bump(k)`
    Operand,
}

/// One read–modify–write of a shared location.
#[derive(Debug, Clone)]
struct Rmw {
    loc: Loc,
    op: BinOp,
    k: i64,
    /// `loc op= k` (else `loc = loc op k`).
    inplace: bool,
    locked: bool,
    call: CallAt,
}

#[derive(Debug, Clone)]
enum Stmt {
    Rmw(Rmw),
    /// `for _ in range(n)` (`None`: the worker's argument) or `range(c)`.
    Loop(Option<i64>, Vec<Rmw>),
    /// `if loc cmp k:` around the body.
    If(Loc, CmpOp, i64, Vec<Rmw>),
    /// `print(loc)` from a worker.
    Print(Loc),
    /// `len(shared)`, result discarded.
    Len,
    /// `time.sleep(0.0)`: a blocking call.
    Sleep,
}

#[derive(Debug, Clone)]
enum PArg {
    Lit(&'static str),
    Value(Loc),
}

#[derive(Debug, Clone)]
enum FPart {
    Lit(&'static str),
    /// A value with a format spec, or with `!r`.
    Value(Loc, &'static str, bool),
}

#[derive(Debug, Clone)]
enum PrintStmt {
    /// `print(shared)`
    Shared,
    /// `print(a, b, …)`
    Args(Vec<PArg>),
    /// `print(f"…")`
    FStr(Vec<FPart>),
}

/// A generated program of test 1.
#[derive(Debug, Clone)]
struct VmSpec {
    shared: Vec<i64>,
    global: Option<i64>,
    lock: bool,
    /// `def bump(x): return x op c`
    helper: Option<(BinOp, i64)>,
    workers: Vec<Vec<Stmt>>,
    /// (worker, argument) of each thread, in creation and start order.
    threads: Vec<(usize, i64)>,
    /// `threads = [threading.Thread(...) for _ in range(n)]` (all threads like the first).
    listcomp: bool,
    join_reversed: bool,
    prints: Vec<PrintStmt>,
}

impl Rmw {
    /// The divisor of a `//` or `%`: the constant, or `bump(k)` when the helper is the operand.
    fn divisor(&self, helper: Option<(BinOp, i64)>) -> i64 {
        match (self.call, helper) {
            (CallAt::Operand, Some((hop, c))) => {
                arith(hop, self.k, c, Twin::default()).unwrap_or(0)
            }
            _ => self.k,
        }
    }
}

impl VmSpec {
    /// Makes a generated spec well-formed: locations, the lock and the helper exist where
    /// used; no division by zero; no 64-bit overflow on any schedule (Python exceptions are
    /// outside what this test compares).
    fn normalize(mut self) -> Self {
        let n_keys = self.shared.len();
        let has_global = self.global.is_some();
        let fix_loc = |l: &mut Loc| match *l {
            Loc::Key(i) => *l = Loc::Key(i % n_keys),
            Loc::Global if !has_global => *l = Loc::Key(0),
            Loc::Global => {}
        };
        let (lock, helper) = (self.lock, self.helper);
        let fix = |r: &mut Rmw| {
            fix_loc(&mut r.loc);
            r.locked &= lock;
            if helper.is_none() {
                r.call = CallAt::No;
            }
            if matches!(r.op, BinOp::FloorDiv | BinOp::Mod) && r.divisor(helper) == 0 {
                r.op = BinOp::Add;
            }
        };
        for w in &mut self.workers {
            for s in w.iter_mut() {
                match s {
                    Stmt::Rmw(r) => fix(r),
                    Stmt::Loop(_, body) => body.iter_mut().for_each(fix),
                    Stmt::If(l, _, _, body) => {
                        fix_loc(l);
                        body.iter_mut().for_each(fix);
                    }
                    Stmt::Print(l) => fix_loc(l),
                    Stmt::Len | Stmt::Sleep => {}
                }
            }
        }
        let n_workers = self.workers.len();
        for t in &mut self.threads {
            t.0 %= n_workers;
        }
        if self.listcomp {
            let first = self.threads[0];
            self.threads.iter_mut().for_each(|t| *t = first);
        }
        for p in &mut self.prints {
            match p {
                PrintStmt::Shared => {}
                PrintStmt::Args(args) => args.iter_mut().for_each(|a| {
                    if let PArg::Value(l) = a {
                        fix_loc(l)
                    }
                }),
                PrintStmt::FStr(parts) => parts.iter_mut().for_each(|a| {
                    if let FPart::Value(l, ..) = a {
                        fix_loc(l)
                    }
                }),
            }
        }
        // Demote multiplications (first the workers', then the helper's) until no value can
        // leave 2^60 in magnitude, whatever the schedule.
        while self.magnitude_bound() > 1 << 60 {
            let mul = self.workers.iter_mut().flatten().find_map(|s| match s {
                Stmt::Rmw(r) if r.op == BinOp::Mul => Some(r),
                Stmt::Loop(_, b) | Stmt::If(_, _, _, b) => {
                    b.iter_mut().find(|r| r.op == BinOp::Mul)
                }
                _ => None,
            });
            match (mul, self.helper) {
                (Some(r), _) => r.op = BinOp::Add,
                (None, Some((BinOp::Mul, c))) => self.helper = Some((BinOp::Add, c)),
                _ => break,
            }
        }
        self
    }

    /// A bound on the magnitude of every value any schedule can compute: every value is the
    /// start value with some of the executed operations applied, so it stays below
    /// (start + every added or subtracted constant) × every multiplier.
    fn magnitude_bound(&self) -> i128 {
        let mut sum: i128 = self
            .shared
            .iter()
            .chain(&self.global)
            .map(|v| i128::from(v.abs()))
            .sum();
        let mut product: i128 = 1;
        let mut apply = |op: BinOp, k: i64| {
            if op == BinOp::Mul {
                product = product.saturating_mul(i128::from(k.abs().max(1)));
            } else {
                sum += i128::from(k.abs());
            }
        };
        for &(w, n) in &self.threads {
            for s in &self.workers[w] {
                let (times, body): (i64, &[Rmw]) = match s {
                    Stmt::Rmw(r) => (1, std::slice::from_ref(r)),
                    Stmt::Loop(c, b) => (c.unwrap_or(n), b),
                    Stmt::If(_, _, _, b) => (1, b),
                    Stmt::Print(_) | Stmt::Len | Stmt::Sleep => (0, &[]),
                };
                for _ in 0..times {
                    for r in body {
                        match (r.call, self.helper) {
                            (CallAt::Operand, Some(_)) => {
                                apply(r.op, r.divisor(self.helper));
                            }
                            (CallAt::AroundRead, Some((hop, c))) => {
                                apply(hop, c);
                                apply(r.op, r.k);
                            }
                            _ => apply(r.op, r.k),
                        }
                    }
                }
            }
        }
        sum.saturating_mul(product)
    }

    fn uses_global(&self, w: usize) -> bool {
        self.workers[w].iter().any(|s| match s {
            Stmt::Rmw(r) => r.loc == Loc::Global,
            Stmt::Loop(_, b) | Stmt::If(_, _, _, b) => b.iter().any(|r| r.loc == Loc::Global),
            _ => false,
        })
    }
}

fn loc_src(loc: Loc) -> String {
    match loc {
        Loc::Key(i) => format!("shared[\"{}\"]", KEYS[i]),
        Loc::Global => "g".into(),
    }
}

/// Pushes the location's value from a function (`LOAD_GLOBAL`).
fn emit_load_loc(f: &mut CodeBuilder, loc: Loc) {
    match loc {
        Loc::Key(i) => {
            f.load_global("shared")
                .load_str(KEYS[i])
                .op(Instr::BinarySubscr);
        }
        Loc::Global => {
            f.load_global("g");
        }
    }
}

/// Pushes the location's value from module code (`LOAD_NAME`).
fn emit_load_loc_module(m: &mut CodeBuilder, loc: Loc) {
    match loc {
        Loc::Key(i) => {
            m.load_name("shared")
                .load_str(KEYS[i])
                .op(Instr::BinarySubscr);
        }
        Loc::Global => {
            m.load_name("g");
        }
    }
}

/// Stores the top of the stack into the location (`loc = value`).
fn emit_store_loc(f: &mut CodeBuilder, loc: Loc) {
    match loc {
        Loc::Key(i) => {
            f.load_global("shared")
                .load_str(KEYS[i])
                .op(Instr::StoreSubscr);
        }
        Loc::Global => {
            f.store_global("g");
        }
    }
}

fn emit_rmw(g: &mut Gen, f: &mut CodeBuilder, r: &Rmw, indent: usize) {
    if r.locked {
        let plain = Rmw {
            locked: false,
            ..r.clone()
        };
        emit_with_lock(g, f, indent, |g, f, ind| emit_rmw(g, f, &plain, ind));
        return;
    }
    let target = loc_src(r.loc);
    let sym = r.op.symbol();
    let k = r.k;
    let operand_src = match r.call {
        CallAt::Operand => format!("bump({k})"),
        _ => k.to_string(),
    };
    let operand = |f: &mut CodeBuilder| {
        if r.call == CallAt::Operand {
            f.load_global_null("bump").load_int(k).call(1);
        } else {
            f.load_int(k);
        }
    };
    match r.call {
        CallAt::AroundRead => {
            let l = g.line(indent, format!("{target} = bump({target}) {sym} {k}"));
            f.line(l).load_global_null("bump");
            emit_load_loc(f, r.loc);
            f.call(1).load_int(k).binary(r.op);
            emit_store_loc(f, r.loc);
        }
        _ if r.inplace => {
            // CPython 3.11's augmented assignment: the container and key are kept on the
            // stack (COPY 2; COPY 2) and rotated under the result (SWAP 3; SWAP 2).
            let l = g.line(indent, format!("{target} {sym}= {operand_src}"));
            f.line(l);
            match r.loc {
                Loc::Key(i) => {
                    f.load_global("shared")
                        .load_str(KEYS[i])
                        .op(Instr::Copy(2))
                        .op(Instr::Copy(2))
                        .op(Instr::BinarySubscr);
                    operand(f);
                    f.inplace(r.op)
                        .op(Instr::Swap(3))
                        .op(Instr::Swap(2))
                        .op(Instr::StoreSubscr);
                }
                Loc::Global => {
                    f.load_global("g");
                    operand(f);
                    f.inplace(r.op).store_global("g");
                }
            }
        }
        _ => {
            let l = g.line(indent, format!("{target} = {target} {sym} {operand_src}"));
            f.line(l);
            emit_load_loc(f, r.loc);
            operand(f);
            f.binary(r.op);
            emit_store_loc(f, r.loc);
        }
    }
}

fn emit_stmt(g: &mut Gen, f: &mut CodeBuilder, s: &Stmt, indent: usize) {
    match s {
        Stmt::Rmw(r) => emit_rmw(g, f, r, indent),
        Stmt::Loop(count, body) => {
            let iterable = match count {
                Some(c) => format!("range({c})"),
                None => "range(n)".into(),
            };
            let head = |f: &mut CodeBuilder| {
                f.load_global_null("range");
                match count {
                    Some(c) => f.load_int(*c),
                    None => f.load_fast("n"),
                };
                f.call(1);
            };
            emit_for(g, f, indent, &iterable, head, |g, f, ind| {
                body.iter().for_each(|r| emit_rmw(g, f, r, ind))
            });
        }
        Stmt::If(loc, cmp, k, body) => {
            let l = g.line(
                indent,
                format!("if {} {} {k}:", loc_src(*loc), cmp.symbol()),
            );
            f.line(l);
            emit_load_loc(f, *loc);
            f.load_int(*k).op(Instr::CompareOp(*cmp));
            let end = f.new_label();
            f.jump(Instr::PopJumpForwardIfFalse, end);
            body.iter().for_each(|r| emit_rmw(g, f, r, indent + 1));
            f.bind(end);
        }
        Stmt::Print(loc) => {
            let l = g.line(indent, format!("print({})", loc_src(*loc)));
            f.line(l).load_global_null("print");
            emit_load_loc(f, *loc);
            f.call(1).op(Instr::PopTop);
        }
        Stmt::Len => {
            let l = g.line(indent, "len(shared)");
            f.line(l)
                .load_global_null("len")
                .load_global("shared")
                .call(1)
                .op(Instr::PopTop);
        }
        Stmt::Sleep => emit_sleep(g, f, indent),
    }
}

/// `time.sleep(0.0)` as a statement.
fn emit_sleep(g: &mut Gen, f: &mut CodeBuilder, indent: usize) {
    let l = g.line(indent, "time.sleep(0.0)");
    f.line(l)
        .load_global_null("time")
        .load_attr("sleep")
        .load_const(Const::Float(0.0))
        .call(1)
        .op(Instr::PopTop);
}

fn emit_print(g: &mut Gen, m: &mut CodeBuilder, p: &PrintStmt) {
    match p {
        PrintStmt::Shared => {
            let l = g.line(0, "print(shared)");
            m.line(l)
                .op(Instr::PushNull)
                .load_name("print")
                .load_name("shared")
                .call(1)
                .op(Instr::PopTop);
        }
        PrintStmt::Args(args) => {
            let shown: Vec<String> = args
                .iter()
                .map(|a| match a {
                    PArg::Lit(s) => format!("\"{s}\""),
                    PArg::Value(l) => loc_src(*l),
                })
                .collect();
            let l = g.line(0, format!("print({})", shown.join(", ")));
            m.line(l).op(Instr::PushNull).load_name("print");
            for a in args {
                match a {
                    PArg::Lit(s) => {
                        m.load_str(s);
                    }
                    PArg::Value(loc) => emit_load_loc_module(m, *loc),
                }
            }
            m.call(args.len() as u32).op(Instr::PopTop);
        }
        PrintStmt::FStr(parts) => {
            let shown: String = parts
                .iter()
                .map(|p| match p {
                    FPart::Lit(s) => s.to_string(),
                    FPart::Value(loc, spec, repr) => {
                        let target = loc_src(*loc).replace('"', "'");
                        let conv = if *repr { "!r" } else { "" };
                        let spec = if spec.is_empty() {
                            String::new()
                        } else {
                            format!(":{spec}")
                        };
                        format!("{{{target}{conv}{spec}}}")
                    }
                })
                .collect();
            let l = g.line(0, format!("print(f\"{shown}\")"));
            m.line(l).op(Instr::PushNull).load_name("print");
            for p in parts {
                match p {
                    FPart::Lit(s) => {
                        m.load_str(s);
                    }
                    FPart::Value(loc, spec, repr) => {
                        emit_load_loc_module(m, *loc);
                        let conversion = if *repr {
                            Conversion::Repr
                        } else {
                            Conversion::None
                        };
                        if !spec.is_empty() {
                            m.load_str(spec);
                        }
                        m.op(Instr::FormatValue {
                            conversion,
                            spec: !spec.is_empty(),
                        });
                    }
                }
            }
            if parts.len() > 1 {
                m.op(Instr::BuildString(parts.len() as u32));
            }
            m.call(1).op(Instr::PopTop);
        }
    }
}

/// Assembles a test-1 program as CPython 3.11 compiles its source.
fn build_vm_program(s: &VmSpec) -> Program {
    let mut g = Gen::new();
    let mut m = CodeBuilder::module();
    m.op(Instr::Resume(0));
    emit_import(&mut g, &mut m, "threading");
    if s.workers
        .iter()
        .flatten()
        .any(|st| matches!(st, Stmt::Sleep))
    {
        emit_import(&mut g, &mut m, "time");
    }
    let items: Vec<String> = s
        .shared
        .iter()
        .zip(KEYS)
        .map(|(v, k)| format!("\"{k}\": {v}"))
        .collect();
    let l = g.line(0, format!("shared = {{{}}}", items.join(", ")));
    m.line(l);
    if s.shared.len() == 1 {
        m.load_str(KEYS[0])
            .load_int(s.shared[0])
            .op(Instr::BuildMap(1));
    } else {
        for &v in &s.shared {
            m.load_int(v);
        }
        m.load_const(Const::Tuple(
            KEYS[..s.shared.len()]
                .iter()
                .map(|k| Const::Str(k.to_string()))
                .collect(),
        ))
        .op(Instr::BuildConstKeyMap(s.shared.len() as u32));
    }
    m.store_name("shared");
    if let Some(v) = s.global {
        let l = g.line(0, format!("g = {v}"));
        m.line(l).load_int(v).store_name("g");
    }
    if s.lock {
        emit_lock(&mut g, &mut m);
    }
    if let Some((op, c)) = s.helper {
        let def = g.line(0, "def bump(x):");
        let ret = g.line(1, format!("return x {} {c}", op.symbol()));
        let mut f = CodeBuilder::function("bump", &["x"], def);
        f.line(def).op(Instr::Resume(0));
        f.line(ret)
            .load_fast("x")
            .load_int(c)
            .binary(op)
            .op(Instr::ReturnValue);
        let idx = g.add(f.finish());
        m.line(def).make_function(idx).store_name("bump");
    }
    for (w, body) in s.workers.iter().enumerate() {
        let name = format!("worker{w}");
        let def = g.line(0, format!("def {name}(n):"));
        if s.uses_global(w) {
            g.line(1, "global g");
        }
        let mut f = CodeBuilder::function(&name, &["n"], def);
        f.line(def).op(Instr::Resume(0));
        for st in body {
            emit_stmt(&mut g, &mut f, st, 1);
        }
        f.load_none().op(Instr::ReturnValue);
        let idx = g.add(f.finish());
        m.line(def).make_function(idx).store_name(&name);
    }
    if s.listcomp {
        emit_thread_list(&mut g, &mut m, s);
    } else {
        for (i, &(w, n)) in s.threads.iter().enumerate() {
            emit_thread(
                &mut g,
                &mut m,
                &format!("t{i}"),
                &format!("worker{w}"),
                &[n],
            );
        }
        for i in 0..s.threads.len() {
            emit_method_call(&mut g, &mut m, &format!("t{i}"), "start");
        }
        let mut order: Vec<usize> = (0..s.threads.len()).collect();
        if s.join_reversed {
            order.reverse();
        }
        for i in order {
            emit_method_call(&mut g, &mut m, &format!("t{i}"), "join");
        }
    }
    for p in &s.prints {
        emit_print(&mut g, &mut m, p);
    }
    m.load_none().op(Instr::ReturnValue);
    g.finish("proptest-vm", m.finish())
}

/// `threads = [threading.Thread(target=worker, args=(n,)) for _ in range(k)]` as 3.11 compiles
/// it (a `<listcomp>` function called with the range iterator), then
/// `for thread in threads: thread.start()` and the same with `join`.
fn emit_thread_list(g: &mut Gen, m: &mut CodeBuilder, s: &VmSpec) {
    let (w, n) = s.threads[0];
    let count = s.threads.len();
    let line = g.line(
        0,
        format!(
            "threads = [threading.Thread(target=worker{w}, args=({n},)) for _ in range({count})]"
        ),
    );
    let mut lc = CodeBuilder::function("<listcomp>", &[".0"], line);
    lc.line(line)
        .op(Instr::Resume(0))
        .op(Instr::BuildList(0))
        .load_fast(".0");
    let top = lc.here();
    let end = lc.new_label();
    lc.jump(Instr::ForIter, end)
        .store_fast("_")
        .load_global_null("threading")
        .load_attr("Thread")
        .load_global(&format!("worker{w}"))
        .load_const(Const::Tuple(vec![Const::Int(n)]))
        .call_kw(2, &["target", "args"])
        .op(Instr::ListAppend(2));
    lc.jump(Instr::JumpBackward, top)
        .bind(end)
        .op(Instr::ReturnValue);
    let code = g.add(lc.finish());
    m.line(line)
        .make_function(code)
        .op(Instr::PushNull)
        .load_name("range")
        .load_int(count as i64)
        .call(1)
        .op(Instr::GetIter)
        .call(0)
        .store_name("threads");
    for method in ["start", "join"] {
        let head = g.line(0, "for thread in threads:");
        let body = g.line(1, format!("thread.{method}()"));
        m.line(head).load_name("threads").op(Instr::GetIter);
        let top = m.here();
        let end = m.new_label();
        m.jump(Instr::ForIter, end).store_name("thread");
        m.line(body)
            .load_name("thread")
            .load_method(method)
            .call(0)
            .op(Instr::PopTop);
        m.jump(Instr::JumpBackward, top).bind(end);
    }
}

fn binop_strategy() -> impl Strategy<Value = BinOp> {
    prop_oneof![
        3 => Just(BinOp::Add),
        2 => Just(BinOp::Sub),
        2 => Just(BinOp::Mul),
        1 => Just(BinOp::FloorDiv),
        1 => Just(BinOp::Mod),
    ]
}

fn nonzero() -> impl Strategy<Value = i64> {
    prop_oneof![1i64..=5, -5i64..=-1]
}

fn loc_strategy() -> impl Strategy<Value = Loc> {
    prop_oneof![2 => (0usize..2).prop_map(Loc::Key), 1 => Just(Loc::Global)]
}

fn rmw_strategy() -> impl Strategy<Value = Rmw> {
    let call = prop_oneof![
        3 => Just(CallAt::No),
        1 => Just(CallAt::AroundRead),
        1 => Just(CallAt::Operand),
    ];
    (
        loc_strategy(),
        binop_strategy(),
        nonzero(),
        any::<bool>(),
        any::<bool>(),
        call,
    )
        .prop_map(|(loc, op, k, inplace, locked, call)| Rmw {
            loc,
            op,
            k,
            inplace,
            locked,
            call,
        })
}

fn stmt_strategy() -> impl Strategy<Value = Stmt> {
    let cmp = prop::sample::select(CmpOp::ALL.to_vec());
    prop_oneof![
        4 => rmw_strategy().prop_map(Stmt::Rmw),
        2 => (prop::option::of(0i64..=2), vec(rmw_strategy(), 1..=2))
            .prop_map(|(c, b)| Stmt::Loop(c, b)),
        1 => (loc_strategy(), cmp, -3i64..=8, vec(rmw_strategy(), 1..=2))
            .prop_map(|(l, c, k, b)| Stmt::If(l, c, k, b)),
        1 => loc_strategy().prop_map(Stmt::Print),
        1 => Just(Stmt::Len),
        1 => Just(Stmt::Sleep),
    ]
}

fn print_strategy() -> impl Strategy<Value = PrintStmt> {
    let lit = prop::sample::select(vec!["total", "a =", "g:", "x=", "done "]);
    let parg = prop_oneof![
        lit.clone().prop_map(PArg::Lit),
        loc_strategy().prop_map(PArg::Value)
    ];
    let spec = prop::sample::select(vec!["", "", "d", ",", ",d", ".1f"]);
    let fpart = prop_oneof![
        lit.prop_map(FPart::Lit),
        (loc_strategy(), spec, any::<bool>()).prop_map(|(l, s, r)| FPart::Value(
            l,
            s,
            r && s.is_empty()
        )),
    ];
    prop_oneof![
        1 => Just(PrintStmt::Shared),
        2 => vec(parg, 1..=3).prop_map(PrintStmt::Args),
        2 => vec(fpart, 1..=3).prop_map(PrintStmt::FStr),
    ]
}

fn vm_spec_strategy() -> impl Strategy<Value = VmSpec> {
    let value = prop_oneof![3 => -20i64..=20, 1 => 900i64..=5000];
    (
        vec(value.clone(), 1..=2),
        prop::option::of(value),
        any::<bool>(),
        prop::option::of((binop_strategy(), nonzero())),
        vec(vec(stmt_strategy(), 1..=3), 1..=2),
        vec((0usize..2, 1i64..=2), 2..=3),
        (any::<bool>(), any::<bool>()),
        vec(print_strategy(), 1..=3),
    )
        .prop_map(
            |(
                shared,
                global,
                lock,
                helper,
                workers,
                threads,
                (listcomp, join_reversed),
                prints,
            )| {
                VmSpec {
                    shared,
                    global,
                    lock,
                    helper,
                    workers,
                    threads,
                    listcomp,
                    join_reversed,
                    prints,
                }
                .normalize()
            },
        )
}

/// `default`, unless `PROPTEST_CASES` asks for another number (e.g. a longer run by hand).
fn cases(default: u32) -> u32 {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        Config::default().cases
    } else {
        default
    }
}

/// Failing cases are saved to `path` (under `proptest-regressions/` at the crate root, since
/// `tests/` has no `lib.rs` for proptest's default `SourceParallel` to find) and replayed first on
/// later runs; `PROPTEST_DISABLE_FAILURE_PERSISTENCE` turns this off.
fn regressions(path: &'static str) -> Option<Box<dyn FailurePersistence>> {
    Config::default()
        .failure_persistence
        .map(|_| Box::new(FileFailurePersistence::Direct(path)) as Box<dyn FailurePersistence>)
}

/// VM-2, VM-3, EX-6 (and VM-5 … VM-8 for where switches fall): for generated threaded programs
/// run by `RandomWalk` under policies drawn from `Policy::ALL`, gilcheck's output and final
/// globals equal those of an independent reference interpreter that follows the same schedule
/// (the execution's events, as a schedule string records them), and gilcheck reports no refcount
/// audit failure or leak after the execution. The reference interpreter also checks that the
/// schedule is one the rules allow: a thread switch only after a poll point of the policy (this
/// file's transcription of the tables), a block or a thread's end; blocked instructions retried
/// only once their wait is over; lock takes without the GIL only of free locks. From a log of
/// the random walk's decisions (which changes none of them) it checks the converse too: at every
/// poll point with another thread able to run, the explorer offered a switch to exactly those
/// threads; when a thread blocked or ended, it offered the GIL to exactly the threads that can
/// run; before a thread took a free lock that others waited for, it offered them the lock.
#[test]
fn proptest_vm_matches_reference() {
    let config = Config {
        cases: cases(REFERENCE_CASES),
        source_file: Some(file!()),
        failure_persistence: regressions(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_vm_reference.txt"
        )),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let (executions, steps, preemptions) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    let (blocked, grabs, longest) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0usize));
    let strategy = (
        vm_spec_strategy(),
        vec(0..Policy::ALL.len(), SCHEDULES_PER_PROGRAM),
        any::<u64>(),
    );
    let result = runner.run(&strategy, |(spec, policies, seed)| {
        let program = build_vm_program(&spec);
        prop_assert!(
            program.validate().is_ok(),
            "generated program does not validate: {:?}\n{}",
            program.validate(),
            program.source
        );
        for (i, &p) in policies.iter().enumerate() {
            let policy = Policy::ALL[p];
            let seed = seed.wrapping_add(i as u64);
            let mut walk = Recorder::new(seed);
            let e = execute(&program, policy, &mut walk, Options::default());
            let context = || {
                format!(
                    "policy {policy}, RandomWalk seed {seed}\nschedule: {}\nprogram:\n{}",
                    show_events(&e.events),
                    program.source
                )
            };
            prop_assert!(
                e.failure.is_none(),
                "gilcheck failed the execution: {}\n{}",
                e.failure
                    .as_ref()
                    .map(|f| f.to_string())
                    .unwrap_or_default(),
                context()
            );
            prop_assert!(
                e.stop.is_none(),
                "a random walk was cut short\n{}",
                context()
            );
            let table = table_of(policy);
            let r = compare_with_reference(&program, table, &e, Some(&walk.log), Twin::default());
            let r = match r {
                Ok(r) => r,
                Err(why) => {
                    return Err(TestCaseError::fail(format!(
                        "gilcheck disagrees with the reference interpreter: {why}\n\
                         gilcheck output:\n{}gilcheck state: {:?}\n{}",
                        e.outcome.output,
                        e.outcome.state,
                        context()
                    )));
                }
            };
            executions.set(executions.get() + 1);
            steps.set(steps.get() + e.steps as u64);
            longest.set(longest.get().max(e.steps));
            preemptions.set(preemptions.get() + e.preemptions as u64);
            blocked.set(blocked.get() + r.blocked_steps as u64);
            grabs.set(grabs.get() + r.grabs as u64);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
    println!(
        "{} programs, {} executions, {} steps (longest {}): {} preemptions, {} blocked steps, \
         {} lock takes without the GIL",
        runner.config().cases,
        executions.get(),
        steps.get(),
        longest.get(),
        preemptions.get(),
        blocked.get(),
        grabs.get()
    );
    assert!(
        preemptions.get() > 0,
        "no execution switched threads at a poll point"
    );
    assert!(
        blocked.get() > 0,
        "no execution blocked (join, lock or sleep)"
    );
    if runner.config().cases >= 256 {
        assert!(grabs.get() > 0, "no lock was taken without the GIL");
    }
}

// ---------------------------------------------------------------------------------------------
// Test 2: lost updates happen exactly when a switch point falls inside the window.
// ---------------------------------------------------------------------------------------------

/// What a thread does between its read and its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    /// `x = helper(x)`, a Python function (`def helper(v): return v`).
    Helper,
    /// `repr(x)`, result discarded: a built-in that polls.
    Repr,
    /// `len(shared)`, result discarded: never polls on 3.11+.
    Len,
    /// `for _ in (1, …, n): pass`: `n` backward jumps, no call.
    ForTuple(u8),
    /// `for _ in range(n): pass`: a call of `range` and `n` backward jumps.
    ForRange(u8),
    /// `if x < K: y = 1` with `K` chosen so that the forward jump is taken (or not) when `x`
    /// holds the start value.
    If { taken: bool },
    /// `time.sleep(0.0)`: a blocking call (VM-4), a switch point without a poll.
    Sleep,
}

/// One thread's read–modify–write.
#[derive(Debug, Clone)]
struct Side {
    items: Vec<Item>,
    /// With no items: `loc += k` (3.11's augmented assignment) instead of `x = loc; loc = x + k`.
    compact: bool,
    locked: bool,
    k: i64,
}

#[derive(Debug, Clone)]
struct LostSpec {
    /// The location: the global `g`, else `shared["a"]`.
    global: bool,
    start: i64,
    sides: Vec<Side>,
}

impl LostSpec {
    fn uses(&self, item: Item) -> bool {
        self.sides.iter().any(|s| s.items.contains(&item))
    }
}

fn emit_item(g: &mut Gen, f: &mut CodeBuilder, item: Item, start: i64, indent: usize) {
    match item {
        Item::Helper => {
            let l = g.line(indent, "x = helper(x)");
            f.line(l)
                .load_global_null("helper")
                .load_fast("x")
                .call(1)
                .store_fast("x");
        }
        Item::Repr => {
            let l = g.line(indent, "repr(x)");
            f.line(l)
                .load_global_null("repr")
                .load_fast("x")
                .call(1)
                .op(Instr::PopTop);
        }
        Item::Len => {
            let l = g.line(indent, "len(shared)");
            f.line(l)
                .load_global_null("len")
                .load_global("shared")
                .call(1)
                .op(Instr::PopTop);
        }
        Item::ForTuple(n) => {
            let items: Vec<i64> = (1..=i64::from(n)).collect();
            let shown = match items.len() {
                1 => "(1,)".to_string(),
                _ => format!(
                    "({})",
                    items
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let tuple = Const::Tuple(items.iter().map(|&i| Const::Int(i)).collect());
            emit_for(
                g,
                f,
                indent,
                &shown,
                |f| {
                    f.load_const(tuple);
                },
                |g, _, ind| {
                    g.line(ind, "pass");
                },
            );
        }
        Item::ForRange(n) => emit_for(
            g,
            f,
            indent,
            &format!("range({n})"),
            |f| {
                f.load_global_null("range").load_int(i64::from(n)).call(1);
            },
            |g, _, ind| {
                g.line(ind, "pass");
            },
        ),
        Item::If { taken } => {
            // POP_JUMP_FORWARD_IF_FALSE jumps when `x < K` is false: K = start makes it false
            // for x = start (taken), K = start + 1 true (not taken).
            let k = if taken { start } else { start + 1 };
            let l = g.line(indent, format!("if x < {k}:"));
            f.line(l)
                .load_fast("x")
                .load_int(k)
                .op(Instr::CompareOp(CmpOp::Lt));
            let end = f.new_label();
            f.jump(Instr::PopJumpForwardIfFalse, end);
            let body = g.line(indent + 1, "y = 1");
            f.line(body).load_int(1).store_fast("y");
            f.bind(end);
        }
        Item::Sleep => emit_sleep(g, f, indent),
    }
}

fn emit_side(g: &mut Gen, f: &mut CodeBuilder, spec: &LostSpec, side: &Side, indent: usize) {
    let loc = if spec.global {
        Loc::Global
    } else {
        Loc::Key(0)
    };
    let target = loc_src(loc);
    let k = side.k;
    if side.items.is_empty() && side.compact {
        let r = Rmw {
            loc,
            op: BinOp::Add,
            k,
            inplace: true,
            locked: false,
            call: CallAt::No,
        };
        emit_rmw(g, f, &r, indent);
        return;
    }
    let l = g.line(indent, format!("x = {target}"));
    f.line(l);
    emit_load_loc(f, loc);
    f.store_fast("x");
    for &item in &side.items {
        emit_item(g, f, item, spec.start, indent);
    }
    let l = g.line(indent, format!("{target} = x + {k}"));
    f.line(l).load_fast("x").load_int(k).binary(BinOp::Add);
    emit_store_loc(f, loc);
}

/// Assembles a test-2 program: two threads, one read–modify–write each.
fn build_lost_program(spec: &LostSpec) -> Program {
    let mut g = Gen::new();
    let mut m = CodeBuilder::module();
    m.op(Instr::Resume(0));
    emit_import(&mut g, &mut m, "threading");
    if spec.uses(Item::Sleep) {
        emit_import(&mut g, &mut m, "time");
    }
    let l = g.line(0, format!("shared = {{\"a\": {}}}", spec.start));
    m.line(l)
        .load_str("a")
        .load_int(spec.start)
        .op(Instr::BuildMap(1))
        .store_name("shared");
    if spec.global {
        let l = g.line(0, format!("g = {}", spec.start));
        m.line(l).load_int(spec.start).store_name("g");
    }
    if spec.sides.iter().any(|s| s.locked) {
        emit_lock(&mut g, &mut m);
    }
    if spec.uses(Item::Helper) {
        let def = g.line(0, "def helper(v):");
        let ret = g.line(1, "return v");
        let mut f = CodeBuilder::function("helper", &["v"], def);
        f.line(def).op(Instr::Resume(0));
        f.line(ret).load_fast("v").op(Instr::ReturnValue);
        let idx = g.add(f.finish());
        m.line(def).make_function(idx).store_name("helper");
    }
    for (i, side) in spec.sides.iter().enumerate() {
        let name = format!("worker{}", i + 1);
        let def = g.line(0, format!("def {name}():"));
        if spec.global {
            g.line(1, "global g");
        }
        let mut f = CodeBuilder::function(&name, &[], def);
        f.line(def).op(Instr::Resume(0));
        if side.locked {
            emit_with_lock(&mut g, &mut f, 1, |g, f, ind| {
                emit_side(g, f, spec, side, ind)
            });
        } else {
            emit_side(&mut g, &mut f, spec, side, 1);
        }
        f.load_none().op(Instr::ReturnValue);
        let idx = g.add(f.finish());
        m.line(def).make_function(idx).store_name(&name);
    }
    for i in 1..=spec.sides.len() {
        emit_thread(&mut g, &mut m, &format!("t{i}"), &format!("worker{i}"), &[]);
    }
    for method in ["start", "join"] {
        for i in 1..=spec.sides.len() {
            emit_method_call(&mut g, &mut m, &format!("t{i}"), method);
        }
    }
    m.load_none().op(Instr::ReturnValue);
    g.finish("proptest-lost-update", m.finish())
}

/// What can happen inside one thread's window (from the completion of its read to the start of
/// its write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Window {
    /// A poll point follows the read or an instruction executed before the write.
    poll: bool,
    /// A blocking call inside the window releases the GIL.
    blocking: bool,
}

impl Window {
    fn switch(self) -> bool {
        self.poll || self.blocking
    }
}

/// The window of the worker of runtime thread `t` (1 or 2), found by executing it alone in the
/// reference interpreter from the start state (so it reads the start value, as a thread that is
/// switched away inside its window must) and asking `table` after each instruction from the
/// read up to the write.
fn window_by_execution(program: &Program, table: Table, t: usize, global: bool) -> Window {
    let mut r = Reference::new(program, table, Twin::default());
    loop {
        match r
            .step(0)
            .expect("module code runs in the reference interpreter")
        {
            Stepped {
                end: End::Blocked, ..
            } => break, // the main thread waits in t1.join(); both threads have started
            Stepped {
                end: End::Finished, ..
            } => panic!("the main thread ended before joining"),
            _ => {}
        }
    }
    let code = program
        .codes
        .iter()
        .position(|c| c.name == format!("worker{t}"))
        .expect("the worker's code object");
    let is_read = |i: Instr| match i {
        Instr::BinarySubscr => !global,
        Instr::LoadGlobal { name, null: false } => {
            global && program.codes[code].names[name as usize] == "g"
        }
        _ => false,
    };
    let is_write = |i: Instr| {
        matches!(
            (i, global),
            (Instr::StoreSubscr, false) | (Instr::StoreGlobal(_), true)
        )
    };
    let mut inside = false;
    let mut w = Window::default();
    loop {
        let s = r
            .step(t)
            .expect("the worker runs in the reference interpreter");
        let instr =
            s.at.filter(|&(c, _)| c == code)
                .map(|(c, pc)| program.codes[c].instrs[pc]);
        if let Some(i) = instr {
            if is_write(i) {
                assert!(inside, "the worker writes before it reads");
                return w;
            }
            if is_read(i) {
                inside = true;
            }
        }
        if inside {
            match s.end {
                End::Ran(d) => w.poll |= polls(table, &d),
                End::Blocked => w.blocking = true,
                End::Finished => panic!("the worker ended inside its window"),
            }
        }
    }
}

/// The same question answered item by item, from the tables as a reader would apply them by
/// hand (a cross-check of `window_by_execution` and of this file's own program assembly).
fn window_by_items(table: Table, side: &Side) -> Window {
    use Table::*;
    // On 3.8/3.9 the read itself (BINARY_SUBSCR, LOAD_GLOBAL) polls; under `every` so does
    // every instruction; on 3.10–3.13 nothing of the read–modify–write frame does.
    let frame = matches!(table, Py38 | Py39 | Every);
    let mut w = Window {
        poll: frame,
        blocking: false,
    };
    for &item in &side.items {
        match item {
            // RESUME polls on every version.
            Item::Helper => w.poll = true,
            // A call of a C function that polls, on every version (range included).
            Item::Repr | Item::ForRange(_) => w.poll = true,
            // len: a C call that polls on every version (3.11+'s CALL_NO_KW_LEN does not,
            // but only once the call site has warmed up; VM-7).
            Item::Len => w.poll = true,
            // GET_ITER and FOR_ITER poll on 3.8/3.9; JUMP_BACKWARD on 3.10+.
            Item::ForTuple(n) => w.poll |= frame || n > 0,
            // COMPARE_OP polls on 3.8/3.9; a taken jump on 3.10; never on 3.11+.
            Item::If { taken } => w.poll |= frame || (table == Py310 && taken),
            // Blocks (releasing the GIL), and the completed call of a C function polls.
            Item::Sleep => {
                w.blocking = true;
                w.poll = true;
            }
        }
    }
    w
}

/// What the explorer must find for a program under one policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Prediction {
    lost: bool,
    /// The fewest preemptions of a lost update: 0 when a blocking call in a window lets the
    /// other thread run without a preemption, 1 when only poll points do.
    preemptions: usize,
}

/// LU-1 and LU-2: an update can be lost iff a switch point can fall inside some thread's window
/// and the two read–modify–writes are not both inside `with lock:`.
fn predict(windows: &[Window], sides: &[Side]) -> Prediction {
    let both_locked = sides.iter().all(|s| s.locked);
    let lost = !both_locked && windows.iter().any(|w| w.switch());
    let blocking = windows.iter().any(|w| w.blocking);
    Prediction {
        lost,
        preemptions: if blocking { 0 } else { 1 },
    }
}

fn header(policy: Policy) -> Header {
    Header {
        scenario: "proptest-lost-update".into(),
        policy: policy.name().into(),
        threads: 2,
        iterations: 1,
    }
}

/// Runs the explorer (DFS, preemption bound 2, state cache) and checks its verdict against the
/// prediction; a lost update found is replayed through the reference interpreter, which must
/// agree that the final value misses an increment.
fn check_lost_update(program: &Program, spec: &LostSpec, policy: Policy) -> Result<String, String> {
    let table = table_of(policy);
    let windows: Vec<Window> = (1..=spec.sides.len())
        .map(|t| window_by_execution(program, table, t, spec.global))
        .collect();
    let by_items: Vec<Window> = spec
        .sides
        .iter()
        .map(|s| window_by_items(table, s))
        .collect();
    if windows != by_items {
        return Err(format!(
            "test bug: the two oracles disagree under {policy}: by execution {windows:?}, by items {by_items:?}"
        ));
    }
    let want = predict(&windows, &spec.sides);
    let verdict = check(program, &header(policy), policy, &check_options())?;
    let what = format!("under {policy}: windows {windows:?}, predicted {want:?}");
    match verdict {
        Verdict::Pass { line, .. } if !want.lost => {
            if line.contains("not exhaustive") {
                return Err(format!("{what}; the search was cut short: {line}"));
            }
            Ok(format!("{policy}: pass ({line})"))
        }
        Verdict::Pass { line, .. } => Err(format!(
            "{what}, but the explorer found no lost update: {line}"
        )),
        Verdict::Fail(c) if want.lost => {
            let got = c.execution.preemptions;
            if got != want.preemptions {
                return Err(format!(
                    "{what}; the counterexample has {got} preemptions ({}), schedule {}",
                    c.found,
                    show_events(&c.execution.events)
                ));
            }
            // The counterexample is a real lost update by the reference interpreter's account.
            let r = compare_with_reference(program, table, &c.execution, None, Twin::default())
                .map_err(|why| format!("{what}; the counterexample does not replay: {why}"))?;
            let total = spec.start + spec.sides.iter().map(|s| s.k).sum::<i64>();
            let name = if spec.global { "g" } else { "shared" };
            let final_value = r
                .globals
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .map(|v| match v {
                    Val::Dict(d) => r.dicts[d][0].1.clone(),
                    other => other,
                });
            if final_value == Some(Val::Int(total)) {
                return Err(format!(
                    "{what}; the counterexample ({}) loses no update by the reference interpreter",
                    c.what
                ));
            }
            Ok(format!("{policy}: lost update with {got} preemption(s)"))
        }
        Verdict::Fail(c) | Verdict::Inconclusive(c) => Err(format!(
            "{what}, but the explorer failed: {} ({})\nschedule {}",
            c.what,
            c.found,
            show_events(&c.execution.events)
        )),
    }
}

fn item_strategy() -> impl Strategy<Value = Item> {
    prop_oneof![
        2 => Just(Item::Helper),
        2 => Just(Item::Repr),
        2 => Just(Item::Len),
        2 => (0u8..=2).prop_map(Item::ForTuple),
        1 => (0u8..=2).prop_map(Item::ForRange),
        2 => any::<bool>().prop_map(|taken| Item::If { taken }),
        1 => Just(Item::Sleep),
    ]
}

fn side_strategy() -> impl Strategy<Value = Side> {
    (vec(item_strategy(), 0..=2), any::<bool>(), 1i64..=3).prop_map(|(items, compact, k)| Side {
        items,
        compact,
        locked: false,
        k,
    })
}

fn lost_spec_strategy() -> impl Strategy<Value = LostSpec> {
    // Which threads run their read–modify–write under the lock: neither, both, or one.
    let locking = prop_oneof![3 => Just((false, false)), 3 => Just((true, true)),
        1 => Just((true, false)), 1 => Just((false, true))];
    (
        any::<bool>(),
        -3i64..=3,
        side_strategy(),
        side_strategy(),
        locking,
    )
        .prop_map(|(global, start, mut a, mut b, (la, lb))| {
            a.locked = la;
            b.locked = lb;
            LostSpec {
                global,
                start,
                sides: vec![a, b],
            }
        })
}

/// LU-1 and LU-2 against VM-5, VM-6, VM-7, VM-8: two threads each perform one read–modify–write
/// of the same location, with a generated window between the read and the write. Under every
/// policy, the explorer (DFS, preemption bound 2, exhaustive with the state cache, EX-7) finds a lost
/// update if and only if this file's own transcription of the poll tables puts a switch point
/// inside a window (after the read or after any instruction executed before the write, inside
/// called Python functions too) and the two read–modify–writes are not both inside `with lock:`.
/// A lost update it finds has exactly one preemption (none when a blocking call sits in the
/// window), and replayed through the reference interpreter it misses an increment.
#[test]
fn proptest_lost_update_iff_switch_point_between() {
    let config = Config {
        cases: cases(LOST_UPDATE_CASES),
        source_file: Some(file!()),
        failure_persistence: regressions(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_vm_lost_update.txt"
        )),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let (lost, safe) = (Cell::new(0u32), Cell::new(0u32));
    let result = runner.run(&lost_spec_strategy(), |spec| {
        let program = build_lost_program(&spec);
        prop_assert!(
            program.validate().is_ok(),
            "generated program does not validate: {:?}\n{}",
            program.validate(),
            program.source
        );
        for policy in Policy::ALL {
            match check_lost_update(&program, &spec, policy) {
                Ok(note) if note.contains("lost") => lost.set(lost.get() + 1),
                Ok(_) => safe.set(safe.get() + 1),
                Err(why) => {
                    return Err(TestCaseError::fail(format!(
                        "{why}\nprogram:\n{}",
                        program.source
                    )));
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
    println!(
        "{} programs x {} policies: {} lost updates found as predicted, {} passes as predicted",
        runner.config().cases,
        Policy::ALL.len(),
        lost.get(),
        safe.get()
    );
    assert!(lost.get() > 0 && safe.get() > 0, "both verdicts must occur");
}

// ---------------------------------------------------------------------------------------------
// Broken twins: each oracle bites.
// ---------------------------------------------------------------------------------------------

fn call_between(locked: bool) -> LostSpec {
    let side = |k| Side {
        items: vec![Item::Helper],
        compact: false,
        locked,
        k,
    };
    LostSpec {
        global: false,
        start: 0,
        sides: vec![side(1), side(1)],
    }
}

/// LU-1, LU-2: the oracle's two verdicts on fixed programs, and twins of the oracle with a
/// wrong table, which contradict the explorer (so the property test would fail with them).
#[test]
fn lost_update_oracle_bites() {
    let policy = Policy::Py311;
    // A Python call between read and write: lost on 3.11, with one preemption.
    let spec = call_between(false);
    let program = build_lost_program(&spec);
    program.validate().unwrap();
    let note = check_lost_update(&program, &spec, policy).unwrap();
    assert!(note.contains("lost update with 1 preemption"), "{note}");
    let Verdict::Fail(c) = check(&program, &header(policy), policy, &check_options()).unwrap()
    else {
        panic!("expected a lost update");
    };
    assert_eq!(c.execution.preemptions, 1);
    // The same inside `with lock:`: no lost update.
    let locked = call_between(true);
    let locked_program = build_lost_program(&locked);
    let note = check_lost_update(&locked_program, &locked, policy).unwrap();
    assert!(note.contains("pass"), "{note}");
    assert!(matches!(
        check(&locked_program, &header(policy), policy, &check_options()).unwrap(),
        Verdict::Pass { .. }
    ));

    // Twin 1: a 3.11 table that forgets that RESUME polls predicts no switch point for the
    // Python call, but the explorer finds a lost update.
    let table = Table::Py311;
    let windows: Vec<Window> = (1..=2)
        .map(|t| window_by_execution(&program, table, t, false))
        .collect();
    assert!(predict(&windows, &spec.sides).lost);
    let forgetful = |w: Window| Window {
        poll: false, // RESUME no longer counted: the only poll in this window
        ..w
    };
    let twin: Vec<Window> = windows.into_iter().map(forgetful).collect();
    assert!(
        !predict(&twin, &spec.sides).lost,
        "the twin predicts no lost update"
    );

    // Twin 2: a table that polls after BINARY_SUBSCR on 3.11 predicts a lost update for the
    // seed's `shared["a"] += 1`, where the explorer proves none.
    let seed = LostSpec {
        global: false,
        start: 0,
        sides: vec![
            Side {
                items: vec![],
                compact: true,
                locked: false,
                k: 1,
            };
            2
        ],
    };
    let seed_program = build_lost_program(&seed);
    assert!(matches!(
        check(&seed_program, &header(policy), policy, &check_options()).unwrap(),
        Verdict::Pass { .. }
    ));
    let honest: Vec<Window> = (1..=2)
        .map(|t| window_by_execution(&seed_program, table, t, false))
        .collect();
    assert!(!predict(&honest, &seed.sides).lost);
    let wrong = vec![
        Window {
            poll: true,
            blocking: false
        };
        2
    ];
    assert!(
        predict(&wrong, &seed.sides).lost,
        "the twin predicts a lost update"
    );
}

/// LU-1's "a switch point … or a blocking call": with `time.sleep` inside one thread's window,
/// the update is lost on every policy without any preemption. The sleeping thread gives the
/// GIL away itself, and which thread takes it next is a free choice of the model (GIL-5), so the
/// other thread runs its whole read–modify–write in between. (LU-1's closing sentence, "the
/// lost update then needs exactly one preemption", holds for poll points only.)
#[test]
fn lost_update_through_a_blocking_call_needs_no_preemption() {
    let spec = LostSpec {
        global: true,
        start: 0,
        sides: vec![
            Side {
                items: vec![Item::Sleep],
                compact: false,
                locked: false,
                k: 1,
            },
            Side {
                items: vec![],
                compact: true,
                locked: false,
                k: 1,
            },
        ],
    };
    let program = build_lost_program(&spec);
    program.validate().unwrap();
    for policy in Policy::ALL {
        let Verdict::Fail(c) = check(&program, &header(policy), policy, &check_options()).unwrap()
        else {
            panic!("{policy}: expected a lost update");
        };
        assert_eq!(c.execution.preemptions, 0, "{policy}: {}", c.found);
        let note = check_lost_update(&program, &spec, policy).unwrap();
        assert!(note.contains("lost update with 0 preemption"), "{note}");
    }
}

/// A fixed program with a negative floor division, modulo and an f-string.
fn floor_program() -> Program {
    let rmw = |op, k| {
        Stmt::Rmw(Rmw {
            loc: Loc::Key(0),
            op,
            k,
            inplace: true,
            locked: false,
            call: CallAt::No,
        })
    };
    let spec = VmSpec {
        shared: vec![-7],
        global: Some(7),
        lock: false,
        helper: None,
        workers: vec![vec![rmw(BinOp::FloorDiv, 2), rmw(BinOp::Mod, 5)]],
        threads: vec![(0, 1), (0, 1)],
        listcomp: false,
        join_reversed: false,
        prints: vec![
            PrintStmt::Shared,
            PrintStmt::FStr(vec![
                FPart::Lit("a="),
                FPart::Value(Loc::Key(0), ",", false),
            ]),
        ],
    }
    .normalize();
    let p = build_vm_program(&spec);
    p.validate().unwrap();
    p
}

/// VM-3, VM-5 … VM-8, EX-6: the reference comparison fails with a twin interpreter that
/// truncates division, with schedules the rules do not allow (a step after a thread ended;
/// switches where the policy has no poll point), and with a table that has poll points where
/// the explorer offered no switch.
#[test]
fn reference_interpreter_bites() {
    let program = floor_program();
    let mut walk = Recorder::new(7);
    let e = execute(&program, Policy::Py311, &mut walk, Options::default());
    assert!(e.failure.is_none(), "{:?}", e.failure);
    let log = Some(walk.log.as_slice());
    compare_with_reference(&program, Table::Py311, &e, log, Twin::default()).unwrap();
    let twin = Twin {
        truncating_division: true,
    };
    let err = compare_with_reference(&program, Table::Py311, &e, log, twin)
        .err()
        .expect("truncating division is caught");
    assert!(err.contains("differs"), "{err}");

    // A step of the main thread after it finished.
    let mut extra = e.clone();
    extra.events.push(Event::Step(0));
    let err = compare_with_reference(&program, Table::Py311, &extra, None, Twin::default())
        .err()
        .expect("a step after the end is caught");
    assert!(err.contains("after it finished"), "{err}");

    // The 3.11 run checked against the 3.9 table: 3.9 polls after almost every instruction,
    // and the explorer offered no switch there.
    let err = compare_with_reference(&program, Table::Py39, &e, log, Twin::default())
        .err()
        .expect("missing poll points are caught");
    assert!(err.contains("the table has a poll point"), "{err}");

    // Schedules taken under `every` replayed against the 3.11 table: some switch falls where
    // 3.11 has no poll point. Against the `every` table they are fine.
    let mut caught = 0;
    for seed in 0..20 {
        let mut walk = Recorder::new(seed);
        let e = execute(&program, Policy::Every, &mut walk, Options::default());
        compare_with_reference(&program, Table::Every, &e, Some(&walk.log), Twin::default())
            .unwrap();
        if let Err(why) = compare_with_reference(&program, Table::Py311, &e, None, Twin::default())
        {
            assert!(why.contains("has no poll point"), "{why}");
            caught += 1;
        }
    }
    assert!(
        caught > 0,
        "no schedule under `every` switched off 3.11's poll points"
    );
}
