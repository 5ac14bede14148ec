//! One execution of a program under the explorer's model of the GIL (rules EX-1 … EX-5 of
//! `spec/explore.md`).
//!
//! All runtime threads run on the calling OS thread, one step at a time. Which thread holds the
//! GIL is the model's: the holder runs until its step is followed by a poll point (the policy,
//! VM-5…VM-8), where an [`Oracle`] may switch to another thread that wants the GIL (a
//! preemption, GIL-5/GIL-6/GIL-7), or until it blocks or ends, where the oracle picks the next
//! holder. A thread blocked on a lock takes the lock without the GIL when it is chosen, or, as a
//! preemption, just before the holder tries to take the same lock. The heap, the objects and
//! the instructions are the runtime's own (`Heap<Std>`, `vm::interp::step`).

use crate::RtError;
use crate::explore::por;
use crate::explore::report::{Folder, Line};
use crate::explore::schedule::Event;
use crate::heap::{Heap, HeapMark, IterObj, Missing, ObjRef, Object, SyncObj};
use crate::platform::Std;
use crate::runtime::{Runtime, Token};
use crate::vm::interp::{
    self, Acquire, Cx, Fault, Host, Image, PyThread, Ready, Ret, Step, VmFaults, Wait,
};
use crate::vm::{Instr, Policy, Program};
use std::collections::HashMap;

/// A choice the model leaves open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The holder reached a poll point. Option 0: it keeps the GIL; option `i`: it is preempted
    /// and `candidates[i - 1]` takes the GIL.
    Poll { holder: u32, candidates: Vec<u32> },
    /// Nobody holds the GIL (the holder blocked or ended): option `i` gives it to `candidates[i]`.
    Next { candidates: Vec<u32> },
    /// The holder is about to take `lock`, which is free, while threads blocked on it were woken
    /// by its release. Option 0: the holder takes it; option `i`: `waiters[i - 1]` takes it
    /// first, without the GIL (a preemption).
    Grab {
        holder: u32,
        lock: ObjRef,
        waiters: Vec<u32>,
    },
}

impl Decision {
    pub fn options(&self) -> usize {
        match self {
            Decision::Poll { candidates, .. } => candidates.len() + 1,
            Decision::Next { candidates } => candidates.len(),
            Decision::Grab { waiters, .. } => waiters.len() + 1,
        }
    }

    /// Preemptions that option `i` costs: a switch away from a thread that could continue.
    pub fn cost(&self, i: usize) -> usize {
        match self {
            Decision::Next { .. } => 0,
            _ => usize::from(i > 0),
        }
    }
}

/// Answers the model's decisions; the engines (DFS, PCT, random) and replay are oracles.
pub trait Oracle {
    fn choose(&mut self, d: &Decision) -> usize;
    /// Before each step: a thread that should take its lock without the GIL now (replay of
    /// schedules whose lock takes fall outside the decisions above, e.g. from loom).
    fn grab_now(&mut self) -> Option<u32> {
        None
    }
    /// After each step of thread `t`.
    fn on_step(&mut self, _t: u32) {}
    /// A reason the oracle could not follow the execution (replay of an invalid schedule).
    fn invalid(&self) -> Option<String> {
        None
    }
    /// Where the execution watches for a state that repeats (EX-11).
    fn watch(&self) -> Watch {
        Watch::NONE
    }
    /// The fingerprint of the state at the coming decision, when the oracle recorded it the
    /// first time it met this decision (DFS re-running its recorded prefix).
    fn known_state(&self) -> Option<u128> {
        None
    }
    /// At a decision the oracle meets for the first time, given the state's fingerprint:
    /// `true` ends the execution here, because everything reachable from this state has been
    /// explored already (EX-7).
    fn seen(&mut self, _state: u128) -> bool {
        false
    }
    /// Whether the oracle keeps the fingerprints of the current execution's decisions itself
    /// (DFS keeps its recorded prefix across executions), answered by [`Oracle::on_path`].
    fn keeps_path(&self) -> bool {
        false
    }
    /// Which of the current execution's decisions (counted from 0, decisions between steps
    /// only) had the state `state`, when [`Oracle::keeps_path`].
    fn on_path(&self, _state: u128) -> Option<usize> {
        None
    }
    /// The stateful search (EX-16): at a decision between steps met for the first time, the
    /// number the oracle gives it, when the world should be saved there so that the search can
    /// come back to it without re-running the execution.
    /// `costly`: its options other than 0 cost a preemption (a poll point); `options`: how
    /// many it has.
    fn snapshot_at(&self, _costly: bool, _options: usize) -> Option<usize> {
        None
    }
    /// Whether the coming decision, met for the first time, can only be answered with option 0
    /// because every other option would spend a preemption past the bound (`costly`: its
    /// options other than 0 cost one).
    fn spent(&self, _costly: bool) -> bool {
        false
    }
    /// After an execution: moves to the next unexplored schedule and returns the number of the
    /// decision whose choice changed (`None`: the search is over).
    fn next_path(&mut self) -> Option<usize> {
        None
    }
    /// The execution is taken up again just before decision `node`, whose world was saved:
    /// the oracle answers from that decision on as if it had re-run the prefix.
    fn rewind(&mut self, _node: usize) {}
    /// Whether preemptions are no longer counted (DFS's unbounded phase).
    fn unbounded(&self) -> bool {
        false
    }
    /// Whether the coming decision is one the oracle met before on this path (DFS re-running
    /// or taking up its recorded prefix): nothing is fingerprinted there.
    fn replaying(&self) -> bool {
        false
    }
    /// The number the coming decision gets, when the oracle meets it for the first time
    /// (DFS: its place on the path).
    fn fresh_decision(&self) -> Option<usize> {
        None
    }
    /// The partial-order reduction (EX-17): the preemptions decision `node` offered are
    /// offered again, to the same threads at the same cost, at a later decision that is
    /// explored, and only local instructions of the holder run in between; the oracle need not
    /// explore them at `node`.
    fn deferred(&mut self, _node: usize) {}
    /// Distinct states the oracle has recorded (DFS with the state cache), for progress lines
    /// and budgets.
    fn states(&self) -> usize {
        0
    }
}

/// Hashes a state fingerprint (already uniformly distributed) by folding its two halves.
#[derive(Default)]
pub struct FingerprintHasher(u64);

impl std::hash::Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, x: u128) {
        self.0 ^= (x as u64) ^ ((x >> 64) as u64);
    }
}

/// A map keyed by state fingerprints.
pub type FingerprintMap<V> = HashMap<u128, V, std::hash::BuildHasherDefault<FingerprintHasher>>;

/// Where an execution fingerprints its state to find one that repeats (EX-11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// Every decision from this step on is fingerprinted and compared with the earlier
    /// decisions of the same execution (`usize::MAX`: none).
    pub decisions_from: usize,
    /// Whether a stretch without decisions is watched too (after [`QUIET_STEPS`] steps).
    pub quiet: bool,
}

impl Watch {
    /// Nothing is watched (replay: a schedule says itself where it loops).
    pub const NONE: Watch = Watch {
        decisions_from: usize::MAX,
        quiet: false,
    };
    /// Every decision and every long stretch without one (DFS).
    pub const ALL: Watch = Watch {
        decisions_from: 0,
        quiet: true,
    };
}

/// At most this many light decisions in a row (EX-17): the next one is fingerprinted.
const LIGHT_RUN: usize = 64;

/// Steps without a decision after which the poll points of the running thread are watched for
/// a state that repeats (a loop that no other thread can interrupt).
pub const QUIET_STEPS: usize = 10_000;

/// Of the poll points of a watched stretch without decisions, every this many is fingerprinted.
const QUIET_STRIDE: u64 = 16;

/// A set of runtime threads (at most [`MAX_THREADS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreadSet(u128);

/// The most runtime threads one execution may start (the main thread included).
pub const MAX_THREADS: usize = 128;

impl ThreadSet {
    pub fn insert(&mut self, t: u32) {
        self.0 |= 1 << t;
    }
    pub fn contains(self, t: u32) -> bool {
        self.0 & (1 << t) != 0
    }
    pub fn union(self, other: ThreadSet) -> ThreadSet {
        ThreadSet(self.0 | other.0)
    }
    /// The threads of `self` that are not in `other`.
    pub fn minus(self, other: ThreadSet) -> ThreadSet {
        ThreadSet(self.0 & !other.0)
    }
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..MAX_THREADS as u32).filter(move |&t| self.contains(t))
    }
}

impl FromIterator<u32> for ThreadSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut s = ThreadSet::default();
        for t in iter {
            s.insert(t);
        }
        s
    }
}

/// What a thread is doing, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    /// Wants the GIL.
    Ready,
    Blocked(Wait),
    Finished,
}

/// Why an execution failed (besides an outcome that differs from another schedule's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Failure {
    /// A runtime rule was violated (RC-2 … RC-8): a refcount error, a leak, a bad audit.
    Rule(String),
    /// An `assert` in the program failed.
    Assertion(String),
    /// Threads remain, all blocked, none can proceed.
    Deadlock(String),
    /// The state after step `from` comes back after step `to`, and every thread that could
    /// take the GIL on the way ran on the way: the program loops forever even under a fair GIL
    /// (a livelock or an infinite loop, EX-11).
    Loop { from: usize, to: usize },
    /// The oracle could not follow the execution (a schedule that does not replay).
    Invalid(String),
    /// The program did something gilcheck does not model (`RtError::Unsupported`): no verdict.
    Unsupported(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Rule(m) => write!(f, "runtime rule violated: {m}"),
            Failure::Assertion(m) => write!(f, "assertion failed: {m}"),
            Failure::Deadlock(m) => write!(f, "deadlock: {m}"),
            Failure::Loop { from, to } => write!(
                f,
                "no termination: the state after step {from} comes back after step {to}, and every thread that could take the GIL meanwhile ran, so the program loops forever (a livelock or an infinite loop)"
            ),
            Failure::Invalid(m) => write!(f, "schedule does not replay: {m}"),
            Failure::Unsupported(m) => write!(f, "{m}"),
        }
    }
}

/// What an execution printed and left behind (EX-4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Everything printed, uncaught exceptions included.
    pub output: String,
    /// The module's globals at the end: (name, repr), in definition order, `__name__` left out.
    pub state: Vec<(String, String)>,
}

impl Outcome {
    /// The globals that hold data (not functions, modules, classes or built-ins), as
    /// `name = repr` lines.
    pub fn data_state(&self) -> Vec<String> {
        self.state
            .iter()
            .filter(|(_, r)| {
                !r.starts_with("<function")
                    && !r.starts_with("<module")
                    && !r.starts_with("<class")
                    && !r.starts_with("<built-in")
            })
            .map(|(n, r)| format!("{n} = {r}"))
            .collect()
    }
}

/// One row of a step table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub step: usize,
    pub thread: String,
    pub code: String,
    pub line: u32,
    pub instr: String,
    pub effect: String,
    /// What happened to the GIL after this step (switch, block, end), empty otherwise.
    pub gil: String,
    /// Whether a thread switch or a lock take without the GIL happened here.
    pub switch: bool,
}

/// The result of one execution.
#[derive(Debug, Clone)]
pub struct Execution {
    pub outcome: Outcome,
    pub failure: Option<Failure>,
    pub events: Vec<Event>,
    pub preemptions: usize,
    pub steps: usize,
    /// The step table, when asked for (folded unless [`Table::Full`]).
    pub table: Vec<Line>,
    /// Why the execution stopped before the program ended, when it was not a failure.
    pub stop: Option<Stop>,
}

/// Why an execution stopped without an outcome and without a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It reached a state explored before (EX-7): what follows has been explored.
    Explored,
    /// The state after step `from` came back while a thread that could take the GIL never
    /// ran: repeating this forever is not a schedule of a fair GIL (EX-11), and every way out
    /// of the loop is explored from its first visit.
    Unfair { from: usize },
    /// It ran `--max-steps` steps: the step budget ran out (EX-12), which says nothing about
    /// the program.
    Budget,
}

impl Execution {
    /// Whether the explorer ended the execution early because what follows is covered
    /// elsewhere (a state explored before, or an unfair loop).
    pub fn pruned(&self) -> bool {
        matches!(self.stop, Some(Stop::Explored | Stop::Unfair { .. }))
    }

    /// Whether the step budget ran out.
    pub fn out_of_steps(&self) -> bool {
        self.stop == Some(Stop::Budget)
    }

    /// The rows of the step table that show one step each (all of them with [`Table::Full`]).
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.table.iter().filter_map(|l| match l {
            Line::Row(r) => Some(r),
            _ => None,
        })
    }
}

/// Which step table an execution makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Off,
    /// Folded as it is made, so that it stays a few hundred lines long (EX-8).
    Folded,
    /// Every step (memory grows with the execution).
    Full,
}

/// Options of one execution.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The step budget: an execution that runs this many steps stops (EX-12).
    pub max_steps: usize,
    pub table: Table,
    /// Audit every reference count after every step, not only at the end (slow; for tests).
    pub audit_every_step: bool,
    /// Replay of a schedule that ends in a loop: (from, to), the steps after which the state
    /// must be the same (EX-11).
    pub loop_claim: Option<(usize, usize)>,
    /// The partial-order reduction (EX-17): a preemption before a local instruction is
    /// offered at the next poll point instead, when the oracle numbers its decisions (DFS).
    pub reduce: bool,
    #[doc(hidden)]
    pub vm_faults: VmFaults,
    #[doc(hidden)]
    pub state_faults: StateFaults,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_steps: 5_000_000,
            table: Table::Off,
            audit_every_step: false,
            loop_claim: None,
            reduce: false,
            vm_faults: VmFaults::default(),
            state_faults: StateFaults::default(),
        }
    }
}

/// Deliberate omissions from the state fingerprint, used only by the broken twins of the
/// checks of the state cache (EX-7): each leaves out one thing that decides how an execution
/// goes on or what it prints, and the check must then find an outcome the cached search lost.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateFaults {
    /// Integer values (of the objects that are not immortal small ints).
    pub ignore_ints: bool,
    /// Whether each lock is held.
    pub ignore_lock_state: bool,
    /// The switch interval `sys.setswitchinterval` set.
    pub ignore_interval: bool,
    /// What was printed so far.
    pub ignore_output: bool,
    /// The stateful search (EX-16) takes an execution up without putting the heap back.
    pub restore_keeps_heap: bool,
    /// The reduction (EX-17) takes `STORE_SUBSCR`, a write of shared state, for local.
    pub store_subscript_is_local: bool,
    /// A poll point with no preemption left (EX-20) is never fingerprinted, not even every
    /// `LIGHT_RUN`-th in a row.
    pub spent_never_fingerprinted: bool,
}

/// The explorer's host: threads are entries of `status`; blocking answers `Block`.
struct XHost<'o> {
    me: u32,
    status: Vec<Status>,
    /// The wait a blocked thread was in is over: its instruction completes when it runs again.
    granted: Vec<bool>,
    names: Vec<String>,
    spawned: Vec<PyThread>,
    thread_counter: u32,
    output: String,
    oracle: &'o mut dyn Oracle,
    events: Vec<Event>,
    preemptions: usize,
    /// `sys.setswitchinterval`'s value, stored as the GIL stores it (GIL-8).
    interval_us: u64,
    /// Rows of lock takes without the GIL, made inside a step, for the step table.
    grab_rows: Vec<(u32, String)>,
    /// The waiters offered a lock at lock-take decisions during the current step.
    grab_offered: Option<ThreadSet>,
    failure: Option<Failure>,
}

/// Whether runtime thread `t` could take `lock` now.
fn lock_free(heap: &Heap<Std>, py: Token<'_>, lock: ObjRef, t: u32) -> bool {
    heap.lock_core(py, lock)
        .map(|c| c.can_take(t))
        .unwrap_or(false)
}

impl XHost<'_> {
    /// Threads other than `except` that could take the GIL now.
    fn candidates(&self, heap: &Heap<Std>, py: Token<'_>, except: Option<u32>) -> Vec<u32> {
        (0..self.status.len() as u32)
            .filter(|&t| Some(t) != except && self.can_run(heap, py, t))
            .collect()
    }

    fn can_run(&self, heap: &Heap<Std>, py: Token<'_>, t: u32) -> bool {
        match self.status[t as usize] {
            Status::Ready => true,
            Status::Blocked(Wait::Sleep) => true,
            Status::Blocked(Wait::Join(u)) => self.status[u as usize] == Status::Finished,
            Status::Blocked(Wait::Lock(l)) => lock_free(heap, py, l, t),
            Status::Running | Status::Finished => false,
        }
    }

    /// `t` takes the GIL; a blocked `t` first completes its wait (a lock is taken here).
    fn wake(&mut self, heap: &Heap<Std>, py: Token<'_>, t: u32) {
        if let Status::Blocked(w) = self.status[t as usize] {
            if let Wait::Lock(l) = w {
                let took = heap
                    .lock_core(py, l)
                    .map(|c| c.try_acquire(t))
                    .unwrap_or(false);
                debug_assert!(took, "woken for a lock that is not free");
            }
            self.granted[t as usize] = true;
        }
        self.status[t as usize] = Status::Running;
    }

    /// Thread `w`, blocked on a free lock, takes it without the GIL and then wants the GIL.
    fn grab(&mut self, heap: &Heap<Std>, py: Token<'_>, w: u32) -> bool {
        let Status::Blocked(Wait::Lock(l)) = self.status[w as usize] else {
            return false;
        };
        if !heap.lock_core(py, l).is_ok_and(|c| c.try_acquire(w)) {
            return false; // not free yet
        }
        self.status[w as usize] = Status::Ready;
        self.granted[w as usize] = true;
        self.events.push(Event::Grab(w));
        // A lock taken while the GIL's holder could go on is a preemption (EX-3).
        self.preemptions += 1;
        true
    }

    fn waiters(&self, lock: ObjRef) -> Vec<u32> {
        (0..self.status.len() as u32)
            .filter(|&t| {
                t != self.me && self.status[t as usize] == Status::Blocked(Wait::Lock(lock))
            })
            .collect()
    }

    fn take_grant(&mut self) -> bool {
        std::mem::take(&mut self.granted[self.me as usize])
    }
}

impl Host<Std> for XHost<'_> {
    fn start(
        &mut self,
        py: Token<'_>,
        heap: &Heap<Std>,
        thread: ObjRef,
        process: bool,
    ) -> Result<u32, RtError> {
        if process {
            return Err(RtError::RuntimeError(
                "multiprocessing.Process runs only under `gilcheck run`: each process is a separate runtime, and the checkers explore one"
                    .into(),
            ));
        }
        if self.status.len() >= MAX_THREADS {
            return Err(RtError::RuntimeError(format!(
                "can't start new thread: the explorer models at most {MAX_THREADS} threads per program (the main thread included)"
            )));
        }
        let ident = self.status.len() as u32;
        let t = PyThread::for_thread_object(ident, py, heap, thread)?;
        self.names.push(t.name.clone());
        self.spawned.push(t);
        self.status.push(Status::Ready);
        self.granted.push(false);
        Ok(ident)
    }

    fn join(
        &mut self,
        _py: Token<'_>,
        _heap: &Heap<Std>,
        ident: u32,
        _process: bool,
    ) -> Result<Ready, RtError> {
        if self.take_grant() || self.status[ident as usize] == Status::Finished {
            Ok(Ready::Now)
        } else {
            Ok(Ready::Block(Wait::Join(ident)))
        }
    }

    fn acquire(
        &mut self,
        py: Token<'_>,
        heap: &Heap<Std>,
        lock: ObjRef,
        blocking: bool,
    ) -> Result<Acquire, RtError> {
        let core = heap.lock_core(py, lock)?;
        if self.take_grant() {
            return Ok(Acquire::Acquired); // taken for us when we were woken
        }
        if !core.is_locked() {
            let waiters = self.waiters(lock);
            if !waiters.is_empty() {
                let offered = self.grab_offered.unwrap_or_default();
                self.grab_offered = Some(offered.union(waiters.iter().copied().collect()));
                let d = Decision::Grab {
                    holder: self.me,
                    lock,
                    waiters: waiters.clone(),
                };
                let i = self.oracle.choose(&d);
                if i > 0 {
                    let w = waiters[i - 1];
                    self.grab(heap, py, w);
                    self.grab_rows.push((
                        w,
                        format!(
                            "takes the lock without the GIL, before {}",
                            self.names[self.me as usize]
                        ),
                    ));
                }
            }
        }
        if core.try_acquire(self.me) {
            Ok(Acquire::Acquired)
        } else if blocking {
            Ok(Acquire::Block(Wait::Lock(lock)))
        } else {
            Ok(Acquire::Busy)
        }
    }

    fn release(&mut self, py: Token<'_>, heap: &Heap<Std>, lock: ObjRef) -> Result<(), RtError> {
        heap.lock_core(py, lock)?.release(self.me)
    }

    fn sleep(&mut self, _seconds: f64) -> Ready {
        if self.take_grant() {
            Ready::Now
        } else {
            Ready::Block(Wait::Sleep)
        }
    }

    fn now(&mut self) -> f64 {
        0.0 // time is not modelled (GIL-5): every clock reads 0
    }

    fn print(&mut self, text: &str, stderr: bool) {
        self.output.push_str(text);
        // A traceback ends its last line; `print(…, end="")` leaves the line open.
        if stderr && !text.ends_with('\n') {
            self.output.push('\n');
        }
    }

    fn uncaught(&mut self, error: &RtError, text: &str) {
        if let RtError::AssertionError(m) = error
            && self.failure.is_none()
        {
            let name = &self.names[self.me as usize];
            self.failure = Some(Failure::Assertion(if m.is_empty() {
                format!("in {name}")
            } else {
                format!("{m} (in {name})")
            }));
        }
        self.print(text, true);
    }

    fn switch_interval(&mut self) -> f64 {
        crate::gil::interval_seconds(self.interval_us)
    }

    fn set_switch_interval(&mut self, seconds: f64) -> Result<(), RtError> {
        self.interval_us = crate::gil::interval_micros(seconds)?;
        Ok(())
    }

    fn next_thread_name(&mut self, process: bool) -> String {
        self.thread_counter += 1;
        format!(
            "{}-{}",
            if process { "Process" } else { "Thread" },
            self.thread_counter
        )
    }
}

fn wait_text(
    w: Wait,
    names: &[String],
    heap: &Heap<Std>,
    py: Token<'_>,
    globals: ObjRef,
) -> String {
    match w {
        Wait::Lock(l) => {
            if let Some(name) = interp::global_name(heap, py, globals, l) {
                return format!("blocks on {name} (GIL released)");
            }
            // A waiter Lock (LOCK-6): name the Condition, Semaphore or Event it is queued on.
            let owner = heap
                .with_object(py, globals, |g| match g {
                    Object::Dict(d) => d.iter().map(|&(_, v)| v).collect::<Vec<_>>(),
                    _ => Vec::new(),
                })
                .unwrap_or_default()
                .into_iter()
                .find(
                    |&v| matches!(heap.get(py, v), Ok(Object::Sync(s)) if s.waiters().contains(&l)),
                );
            match owner.and_then(|o| interp::global_name(heap, py, globals, o)) {
                Some(name) => format!("waits on {name} (GIL released)"),
                None => "blocks on a lock (GIL released)".into(),
            }
        }
        Wait::Join(u) => format!("joins {} (GIL released)", names[u as usize]),
        Wait::Sleep => "sleeps (GIL released)".into(),
    }
}

/// How the loop of an execution ended.
enum End {
    /// Every thread finished.
    Done,
    /// The execution stopped early without an outcome (EX-7, EX-11, EX-12).
    Stopped(Stop),
    Fail(Failure),
}

/// A decision of the running execution, as the watch for repeated states records it (EX-11).
#[derive(Debug, Clone, Copy)]
struct Mark {
    steps: usize,
    /// Events before the decision.
    events: usize,
    /// The threads that could have taken the GIL at this decision, or a lock at a lock-take
    /// decision made before the next one.
    offered: ThreadSet,
}

/// The watch over a stretch without decisions: Brent's cycle detection over every
/// [`QUIET_STRIDE`]-th poll point, once [`QUIET_STEPS`] steps passed since the last decision.
/// Nothing can change the course of such a stretch, so a state that comes back loops forever.
#[derive(Debug, Default)]
struct Quiet {
    /// The step of the last decision.
    since: usize,
    polls: u64,
    /// The fingerprint compared with every later sample, and the step it was taken after.
    anchor: Option<(u128, usize)>,
    power: u64,
    count: u64,
}

/// A schedule's claim that it ends in a loop (replay of a lasso): the state after step `from`
/// is the state after step `to`, and every thread offered the GIL on the way ran.
#[derive(Debug)]
struct LoopClaim {
    from: usize,
    to: usize,
    start: Option<(u128, Mark)>,
}

/// Where the step table goes: nowhere, every row, or folded as it is made.
enum Rows {
    Off,
    Full(Vec<Row>),
    Folded(Box<Folder>),
}

impl Rows {
    fn push(&mut self, r: Row) {
        match self {
            Rows::Off => {}
            Rows::Full(v) => v.push(r),
            Rows::Folded(f) => f.push(r),
        }
    }

    fn last_mut(&mut self) -> Option<&mut Row> {
        match self {
            Rows::Off => None,
            Rows::Full(v) => v.last_mut(),
            Rows::Folded(f) => f.last_mut(),
        }
    }

    fn finish(self) -> Vec<Line> {
        match self {
            Rows::Off => Vec::new(),
            Rows::Full(v) => v.into_iter().map(Line::Row).collect(),
            Rows::Folded(f) => f.finish(),
        }
    }
}

/// One execution in progress.
struct Machine<'a, 'o> {
    program: &'a Program,
    policy: Policy,
    opts: Options,
    py: Token<'a>,
    heap: &'a Heap<Std>,
    host: XHost<'o>,
    image: Image,
    threads: Vec<PyThread>,
    holder: Option<u32>,
    /// Lock takes the oracle asked for that must wait until the lock is free (replay).
    pending_grabs: Vec<u32>,
    rows: Rows,
    steps: usize,
    /// The fingerprints of this execution's watched decisions, each with its place in `marks`
    /// (unless the oracle keeps them).
    path: FingerprintMap<usize>,
    marks: Vec<Mark>,
    quiet: Quiet,
    loop_claim: Option<LoopClaim>,
    /// The stateful search (EX-16): the worlds saved at the decisions of the current path,
    /// each with the oracle's number for its decision, in path order.
    saved: Vec<(usize, World)>,
    /// The world before the first step, for a search that must start over.
    start: Option<World>,
    /// The decision a restored world is taken up at.
    resume: Option<Resume>,
    /// The partial-order reduction, when on (EX-17).
    reduction: Option<por::Reduction>,
    /// Light decisions in a row (EX-17).
    light_run: usize,
    /// A fresh poll decision at which the holder kept the GIL before a local instruction, while
    /// only local instructions of the holder have run since (EX-17).
    local_run: Option<LocalRun>,
}

/// See [`Machine::local_run`].
#[derive(Debug, Clone, Copy)]
struct LocalRun {
    node: usize,
    holder: u32,
    offered: ThreadSet,
}

/// Where a restored execution takes up its course: at the start, or at the decision it was
/// saved at (EX-16).
#[derive(Debug, Clone, Copy)]
enum Resume {
    Start,
    Next,
    Poll { holder: u32, reason: &'static str },
}

/// Everything an execution is at one decision between steps (EX-16): a mark in the heap's
/// undo log, the interpreter's threads, the host's view of them, and where the append-only records
/// (names, output, events, the loop watch's marks) stood.
struct World {
    heap: HeapMark,
    threads: Vec<PyThread>,
    status: Vec<Status>,
    granted: Vec<bool>,
    names: usize,
    output: usize,
    events: usize,
    thread_counter: u32,
    interval_us: u64,
    preemptions: usize,
    failure: Option<Failure>,
    holder: Option<u32>,
    steps: usize,
    marks: usize,
    last_mark: Option<Mark>,
    resume: Resume,
}

impl Machine<'_, '_> {
    /// Whether the reduction is on and thread `t`'s next instruction is local (EX-17).
    fn next_is_local(&self, t: u32) -> bool {
        self.reduction
            .as_ref()
            .is_some_and(|r| r.next_is_local(self.program, self.heap, self.py, &self.threads, t))
    }

    fn save(&self, resume: Resume) -> World {
        World {
            heap: self.heap.mark(self.py),
            threads: self.threads.clone(),
            status: self.host.status.clone(),
            granted: self.host.granted.clone(),
            names: self.host.names.len(),
            output: self.host.output.len(),
            events: self.host.events.len(),
            thread_counter: self.host.thread_counter,
            interval_us: self.host.interval_us,
            preemptions: self.host.preemptions,
            failure: self.host.failure.clone(),
            holder: self.holder,
            steps: self.steps,
            marks: self.marks.len(),
            last_mark: self.marks.last().copied(),
            resume,
        }
    }

    fn restore(&mut self, w: &World) {
        if !self.opts.state_faults.restore_keeps_heap {
            self.heap.undo(self.py, &w.heap);
        }
        self.threads.clone_from(&w.threads);
        let h = &mut self.host;
        h.status.clone_from(&w.status);
        h.granted.clone_from(&w.granted);
        h.names.truncate(w.names);
        h.output.truncate(w.output);
        h.events.truncate(w.events);
        h.thread_counter = w.thread_counter;
        h.interval_us = w.interval_us;
        h.preemptions = w.preemptions;
        h.failure.clone_from(&w.failure);
        h.spawned.clear();
        h.grab_rows.clear();
        h.grab_offered = None;
        self.holder = w.holder;
        self.steps = w.steps;
        self.marks.truncate(w.marks);
        if let (Some(m), Some(last)) = (w.last_mark, self.marks.last_mut()) {
            *last = m;
        }
        self.pending_grabs.clear();
        self.quiet = Quiet {
            since: w.steps,
            ..Quiet::default()
        };
        self.resume = Some(w.resume);
        self.local_run = None;
        self.light_run = 0;
    }

    /// Takes the execution up again just before decision `node` of the oracle (EX-16), from
    /// the nearest world saved at or before it.
    fn resume_at(&mut self, node: usize) {
        while self.saved.last().is_some_and(|(i, _)| *i > node) {
            self.saved.pop();
        }
        match self.saved.pop() {
            Some((at, w)) => {
                self.restore(&w);
                self.host.oracle.rewind(at);
                self.saved.push((at, w));
            }
            None => {
                let w = self.start.take().expect("the world at the start is saved");
                self.restore(&w);
                self.host.oracle.rewind(0);
                self.start = Some(w);
            }
        }
    }

    /// The decision a restored world was saved at, taken again.
    fn take_up(&mut self, r: Resume) -> Result<(), End> {
        let (heap, py) = (self.heap, self.py);
        match r {
            Resume::Start => Ok(()),
            Resume::Next => {
                let cands = self.host.candidates(heap, py, None);
                self.give_gil(cands).map(|_| ())
            }
            Resume::Poll { holder, reason } => {
                let cands = self.host.candidates(heap, py, Some(holder));
                self.decide_poll(holder, reason, cands)?;
                self.after_step()
            }
        }
    }

    fn run(&mut self) -> End {
        if let Some(r) = self.resume.take()
            && let Err(end) = self.take_up(r)
        {
            return end;
        }
        loop {
            if let Err(end) = self.apply_grabs() {
                return end;
            }
            if let Some(why) = self.host.oracle.invalid() {
                return End::Fail(Failure::Invalid(why));
            }
            let h = match self.holder {
                Some(h) => h,
                None => match self.next_holder() {
                    Ok(Some(t)) => t,
                    Ok(None) => return End::Done,
                    Err(end) => return end,
                },
            };
            if let Err(end) = self.step(h).and_then(|()| self.after_step()) {
                return end;
            }
        }
    }

    /// The checks after every step: the audit (when asked for) and the step budget.
    fn after_step(&mut self) -> Result<(), End> {
        if self.opts.audit_every_step {
            let roots = self.roots();
            if let Err(e) = self.heap.audit(self.py, roots) {
                return Err(End::Fail(Failure::Rule(e)));
            }
        }
        if self.steps >= self.opts.max_steps && !self.program_over() {
            return Err(End::Stopped(Stop::Budget));
        }
        Ok(())
    }

    /// The program has ended: the main thread and every thread that is not a daemon have
    /// finished (CPython's `threading._shutdown` waits for those only); a daemon thread still
    /// going is left where it is (VM-11).
    fn program_over(&self) -> bool {
        self.host.status.iter().enumerate().all(|(i, s)| {
            *s == Status::Finished || (i != 0 && self.threads.get(i).is_some_and(|t| t.daemon))
        })
    }

    fn roots(&self) -> Vec<ObjRef> {
        self.image
            .roots()
            .chain(self.threads.iter().flat_map(|t| t.roots()))
            .collect()
    }

    fn invalid_grab(&self, w: u32, why: &str) -> End {
        End::Fail(Failure::Invalid(format!(
            "after step {} the schedule has thread {w} take a lock without the GIL, but {why}",
            self.steps
        )))
    }

    /// Lock takes without the GIL that the oracle asks for outside a decision (replay), as
    /// soon as the lock is free. Each must name a thread that is waiting for a lock.
    fn apply_grabs(&mut self) -> Result<(), End> {
        while let Some(w) = self.host.oracle.grab_now() {
            self.pending_grabs.push(w);
        }
        self.apply_pending_grabs()
    }

    /// The pending lock takes whose lock is free now.
    fn apply_pending_grabs(&mut self) -> Result<(), End> {
        if self.pending_grabs.is_empty() {
            return Ok(());
        }
        let (heap, py) = (self.heap, self.py);
        let mut still = Vec::new();
        for w in std::mem::take(&mut self.pending_grabs) {
            match self.host.status.get(w as usize) {
                None => return Err(self.invalid_grab(w, &format!("there is no thread {w} then"))),
                Some(Status::Blocked(Wait::Lock(_))) => {}
                Some(_) => return Err(self.invalid_grab(w, "it is not waiting for a lock then")),
            }
            if self.host.grab(heap, py, w) {
                let row = grab_row(
                    self.steps,
                    &self.host.names,
                    w,
                    "takes the lock without the GIL",
                );
                self.rows.push(row);
            } else {
                still.push(w);
            }
        }
        self.pending_grabs = still;
        Ok(())
    }

    fn fingerprint(&self) -> u128 {
        self.fingerprint_as(false)
    }

    /// The fingerprint; `holder_blind`: the thread holding the GIL counts as one that wants it
    /// (EX-18).
    fn fingerprint_as(&self, holder_blind: bool) -> u128 {
        fingerprint(
            self.heap,
            self.py,
            &self.image,
            &self.threads,
            &self.host,
            self.opts.state_faults,
            holder_blind,
        )
    }

    /// A decision: the state is compared with this execution's earlier decisions (EX-11), then
    /// the oracle is asked whether it was explored before (EX-7). `offered`: who could take
    /// the GIL now.
    fn checkpoint(&mut self, offered: ThreadSet, resume: Resume) -> Result<(), End> {
        // EX-17: a local run of the holder ends at its next poll point with the same threads
        // offered; if that decision is explored (new, or explored before), the preemptions of
        // the one where the run began are offered here.
        let defer = self.local_run.take().filter(|r| {
            r.offered == offered
                && matches!(resume, Resume::Poll { holder, .. } if holder == r.holder)
        });
        let result = self.checkpoint_inner(offered, resume);
        if let Some(r) = defer
            && matches!(result, Ok(()) | Err(End::Stopped(Stop::Explored)))
        {
            self.host.oracle.deferred(r.node);
        }
        result
    }

    fn checkpoint_inner(&mut self, offered: ThreadSet, resume: Resume) -> Result<(), End> {
        self.quiet = Quiet {
            since: self.steps,
            ..Quiet::default()
        };
        self.check_loop_claim(offered)?;
        if self.steps < self.host.oracle.watch().decisions_from {
            return Ok(());
        }
        let mark = Mark {
            steps: self.steps,
            events: self.host.events.len(),
            offered,
        };
        if self.host.oracle.replaying() || self.host.oracle.known_state().is_some() {
            // A decision the oracle recorded before: its state differed from every earlier one
            // when it was first met, and the path up to it is the same.
            self.marks.push(mark);
            return Ok(());
        }
        // EX-20: a poll point with no preemption left to spend has one way on; it is light
        // too (every LIGHT_RUN-th in a row is fingerprinted, for EX-11).
        if (self.light_run < LIGHT_RUN || self.opts.state_faults.spent_never_fingerprinted)
            && self.opts.reduce
            && self.host.oracle.fresh_decision().is_some()
            && self
                .host
                .oracle
                .spent(matches!(resume, Resume::Poll { .. }))
        {
            self.light_run += 1;
            self.marks.push(mark);
            return Ok(());
        }
        // EX-17: before a local instruction the decision is light: its preemptions will be
        // offered at the next poll point, so its state is neither fingerprinted nor saved
        // (except every LIGHT_RUN-th in a row, so that a loop of local instructions still
        // meets a fingerprinted decision, EX-11).
        if let Resume::Poll { holder, .. } = resume
            && self.light_run < LIGHT_RUN
            && self.host.oracle.fresh_decision().is_some()
            && self.next_is_local(holder)
            && self.reduction.as_ref().is_some_and(|r| {
                r.polls_after_next(self.program, self.policy, &self.threads[holder as usize])
            })
        {
            self.light_run += 1;
            self.marks.push(mark);
            return Ok(());
        }
        self.light_run = 0;
        // EX-18: once preemptions are not counted, who holds the GIL at a decision does not
        // matter: every thread that can run is an option, the holder as much as the others.
        let fp = self.fingerprint_as(self.reduction.is_some() && self.host.oracle.unbounded());
        let keeps = self.host.oracle.keeps_path();
        let earlier = if keeps {
            self.host.oracle.on_path(fp)
        } else {
            self.path.get(&fp).copied()
        };
        if let Some(i) = earlier {
            return Err(self.repeated(i));
        }
        if !keeps {
            self.path.insert(fp, self.marks.len());
        }
        self.marks.push(mark);
        if self.host.oracle.seen(fp) {
            return Err(End::Stopped(Stop::Explored));
        }
        let costly = matches!(resume, Resume::Poll { .. });
        let options = offered.iter().count() + usize::from(costly);
        if let Some(node) = self.host.oracle.snapshot_at(costly, options) {
            while self.saved.last().is_some_and(|(i, _)| *i >= node) {
                self.saved.pop();
            }
            let w = self.save(resume);
            self.saved.push((node, w));
        }
        Ok(())
    }

    /// The state of decision `i` came back: a loop. Fair (every thread offered the GIL on
    /// the way ran on the way) is a failure; unfair is not a schedule of a fair GIL (EX-11).
    fn repeated(&self, i: usize) -> End {
        let from = self.marks[i];
        let offered = self.marks[i..]
            .iter()
            .fold(ThreadSet::default(), |a, m| a.union(m.offered));
        match self.starved(from, offered) {
            None => End::Fail(Failure::Loop {
                from: from.steps,
                to: self.steps,
            }),
            Some(_) => End::Stopped(Stop::Unfair { from: from.steps }),
        }
    }

    /// A thread offered the GIL (or a lock) since `from` that has not run since.
    fn starved(&self, from: Mark, offered: ThreadSet) -> Option<u32> {
        let ran: ThreadSet = self.host.events[from.events..]
            .iter()
            .map(|e| match e {
                Event::Step(t) | Event::Grab(t) => *t,
            })
            .collect();
        offered.minus(ran).iter().next()
    }

    /// A poll point at which no other thread can take the GIL: in a long stretch of them,
    /// a state that comes back loops forever (EX-11).
    fn quiet_poll(&mut self) -> Result<(), End> {
        self.check_loop_claim(ThreadSet::default())?;
        if !self.host.oracle.watch().quiet || self.steps - self.quiet.since < QUIET_STEPS {
            return Ok(());
        }
        self.quiet.polls += 1;
        if !self.quiet.polls.is_multiple_of(QUIET_STRIDE) {
            return Ok(());
        }
        let fp = self.fingerprint();
        let q = &mut self.quiet;
        match q.anchor {
            Some((a, from)) if a == fp => {
                return Err(End::Fail(Failure::Loop {
                    from,
                    to: self.steps,
                }));
            }
            Some(_) if q.count + 1 < q.power => q.count += 1,
            _ => {
                q.anchor = Some((fp, self.steps));
                q.power = (q.power * 2).max(1);
                q.count = 0;
            }
        }
        Ok(())
    }

    /// Replay of a schedule that ends in a loop: the state is taken after step `from` and
    /// compared after step `to`.
    fn check_loop_claim(&mut self, offered: ThreadSet) -> Result<(), End> {
        let Some(claim) = &self.loop_claim else {
            return Ok(());
        };
        let (from, to) = (claim.from, claim.to);
        if self.steps == from && claim.start.is_none() {
            let fp = self.fingerprint();
            let mark = Mark {
                steps: self.steps,
                events: self.host.events.len(),
                offered,
            };
            if let Some(c) = &mut self.loop_claim {
                c.start = Some((fp, mark));
            }
            return Ok(());
        }
        if self.steps <= from {
            return Ok(());
        }
        let Some((at_from, mark)) = claim.start else {
            return Err(End::Fail(Failure::Invalid(format!(
                "the schedule says it loops from step {from}, but no decision or poll point follows step {from}"
            ))));
        };
        let mark = Mark {
            offered: mark.offered.union(offered),
            ..mark
        };
        if let Some(c) = &mut self.loop_claim {
            c.start = Some((at_from, mark));
        }
        if self.steps < to {
            return Ok(());
        }
        if self.fingerprint() != at_from {
            return Err(End::Fail(Failure::Invalid(format!(
                "the schedule says the state after step {from} comes back after step {to}, but it does not"
            ))));
        }
        match self.starved(mark, mark.offered) {
            None => Err(End::Fail(Failure::Loop { from, to })),
            Some(t) => Err(End::Fail(Failure::Invalid(format!(
                "the schedule loops from step {from} to step {to}, but {} could take the GIL meanwhile and never ran: a fair GIL would not repeat that loop forever",
                self.host.names[t as usize]
            )))),
        }
    }

    /// Nobody holds the GIL: the oracle picks the thread that takes it. `Ok(None)` when every
    /// thread has finished.
    fn next_holder(&mut self) -> Result<Option<u32>, End> {
        let (heap, py) = (self.heap, self.py);
        if self.program_over() {
            return Ok(None);
        }
        let cands = self.host.candidates(heap, py, None);
        if cands.is_empty() {
            let why = deadlock_text(&self.host, heap, py, self.image.globals);
            return Err(End::Fail(Failure::Deadlock(why)));
        }
        self.checkpoint(cands.iter().copied().collect(), Resume::Next)?;
        self.give_gil(cands).map(Some)
    }

    /// The oracle picks which of `cands` takes the free GIL.
    fn give_gil(&mut self, cands: Vec<u32>) -> Result<u32, End> {
        let (heap, py) = (self.heap, self.py);
        let i = self.host.oracle.choose(&Decision::Next {
            candidates: cands.clone(),
        });
        let t = *cands.get(i).ok_or_else(|| self.invalid())?;
        self.host.wake(heap, py, t);
        if let Some(last) = self.rows.last_mut() {
            last.gil = format!(
                "{}; {} takes the GIL",
                last.gil, self.host.names[t as usize]
            );
        }
        self.holder = Some(t);
        Ok(t)
    }

    fn invalid(&self) -> End {
        End::Fail(Failure::Invalid(
            self.host
                .oracle
                .invalid()
                .unwrap_or_else(|| "no such thread".into()),
        ))
    }

    /// Runs one step of the holder `h`, then handles a poll point, a block or the end.
    fn step(&mut self, h: u32) -> Result<(), End> {
        let (heap, py) = (self.heap, self.py);
        if let Some(r) = self.local_run
            && (r.holder != h || !self.next_is_local(h))
        {
            self.local_run = None;
        }
        self.host.me = h;
        let t = &mut self.threads[h as usize];
        let at = (t.start.is_none()).then(|| t.location()).flatten();
        let table = !matches!(self.rows, Rows::Off);
        let mut cx = Cx {
            program: self.program,
            policy: self.policy,
            image: &self.image,
            py,
            heap,
            host: &mut self.host,
            effect: table.then(String::new),
            faults: self.opts.vm_faults,
        };
        let result = interp::step(t, &mut cx);
        let effect = cx.effect.take().unwrap_or_default();
        self.steps += 1;
        self.host.events.push(Event::Step(h));
        self.host.oracle.on_step(h);
        self.threads.append(&mut self.host.spawned);
        if table {
            self.add_row(h, at, effect);
        }
        self.note_grab_decision();
        let result = result.map_err(|Fault(e)| {
            End::Fail(match e {
                RtError::Unsupported(m) => {
                    let line = at
                        .map(|(code, pc)| {
                            format!(
                                " (line {})",
                                self.program.codes[code as usize].lines[pc as usize]
                            )
                        })
                        .unwrap_or_default();
                    Failure::Unsupported(format!("unsupported at run time: {m}{line}"))
                }
                e => Failure::Rule(e.to_string()),
            })
        })?;
        // A lock this step released may be taken by a thread blocked on it before anything
        // else happens (replay of schedules recorded on real threads, where the waiter wakes
        // inside the releasing step).
        self.apply_grabs()?;
        let note = match result {
            Step::Ran { poll: Some(reason) } => return self.poll(h, reason),
            Step::Ran { poll: None } => return Ok(()),
            Step::Blocked(w) => {
                // A local instruction never blocks or ends its thread; a run ends here anyway.
                self.local_run = None;
                self.host.status[h as usize] = Status::Blocked(w);
                wait_text(w, &self.host.names, heap, py, self.image.globals)
            }
            Step::Finished => {
                self.local_run = None;
                self.host.status[h as usize] = Status::Finished;
                "thread ends (GIL released)".to_string()
            }
        };
        self.holder = None;
        self.mark_last(note);
        Ok(())
    }

    /// A lock-take decision during the last step: its waiters were offered the lock, and a
    /// stretch without decisions starts again.
    fn note_grab_decision(&mut self) {
        let Some(offered) = self.host.grab_offered.take() else {
            return;
        };
        self.quiet = Quiet {
            since: self.steps,
            ..Quiet::default()
        };
        if let Some(m) = self.marks.last_mut() {
            m.offered = m.offered.union(offered);
        }
        if let Some(LoopClaim {
            start: Some((_, m)),
            ..
        }) = &mut self.loop_claim
        {
            m.offered = m.offered.union(offered);
        }
    }

    /// A poll point after `h`'s step: the oracle may preempt `h` (GIL-5, GIL-6, GIL-7).
    fn poll(&mut self, h: u32, reason: &'static str) -> Result<(), End> {
        let (heap, py) = (self.heap, self.py);
        let cands = self.host.candidates(heap, py, Some(h));
        if cands.is_empty() {
            self.local_run = None;
            return self.quiet_poll();
        }
        let resume = Resume::Poll { holder: h, reason };
        self.checkpoint(cands.iter().copied().collect(), resume)?;
        self.decide_poll(h, reason, cands)
    }

    /// The oracle decides whether `h` keeps the GIL at its poll point or which of `cands`
    /// preempts it.
    fn decide_poll(&mut self, h: u32, reason: &str, cands: Vec<u32>) -> Result<(), End> {
        let (heap, py) = (self.heap, self.py);
        // At a spent poll point (EX-20) no preemption is explored, so none is deferred.
        let fresh = self
            .host
            .oracle
            .fresh_decision()
            .filter(|_| !self.host.oracle.spent(true));
        let i = self.host.oracle.choose(&Decision::Poll {
            holder: h,
            candidates: cands.clone(),
        });
        if i == 0 {
            if let Some(node) = fresh
                && self.next_is_local(h)
            {
                self.local_run = Some(LocalRun {
                    node,
                    holder: h,
                    offered: cands.iter().copied().collect(),
                });
            }
            return Ok(());
        }
        let to = *cands.get(i - 1).ok_or_else(|| self.invalid())?;
        self.host.status[h as usize] = Status::Ready;
        self.host.wake(heap, py, to);
        self.host.preemptions += 1;
        self.holder = Some(to);
        self.mark_last(format!(
            "poll ({reason}): preempted, {} takes the GIL",
            self.host.names[to as usize]
        ));
        Ok(())
    }

    fn add_row(&mut self, h: u32, at: Option<(u32, u32)>, effect: String) {
        for (w, text) in std::mem::take(&mut self.host.grab_rows) {
            let row = grab_row(self.steps, &self.host.names, w, &text);
            self.rows.push(row);
        }
        let program = self.program;
        let (code, line, instr) = match at {
            Some((c, pc)) => (
                program.codes[c as usize].name.clone(),
                program.codes[c as usize].lines[pc as usize],
                interp::describe(program, c, pc),
            ),
            None => (String::new(), 0, "(thread start: calls its target)".into()),
        };
        self.rows.push(Row {
            step: self.steps,
            thread: self.host.names[h as usize].clone(),
            code,
            line,
            instr,
            effect,
            gil: String::new(),
            switch: false,
        });
    }

    /// Notes what happened to the GIL after the last step.
    fn mark_last(&mut self, note: String) {
        if let Some(r) = self.rows.last_mut() {
            r.gil = note;
            r.switch = true;
        }
    }
}

thread_local! {
    static EXECUTIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many executions this OS thread has run (for the checks of the counts a verdict prints,
/// EX-14).
#[doc(hidden)]
pub fn executions_run() -> u64 {
    EXECUTIONS.with(|n| n.get())
}

/// Loads `program`'s image and main thread.
fn load(program: &Program, py: Token<'_>, heap: &Heap<Std>) -> Result<(Image, PyThread), RtError> {
    Image::load(program, py, heap)
        .and_then(|image| PyThread::main(program, &image, py, heap).map(|t| (image, t)))
}

/// The execution of a program that did not load.
fn not_loaded(e: RtError) -> Execution {
    Execution {
        outcome: Outcome::default(),
        failure: Some(Failure::Rule(e.to_string())),
        events: Vec::new(),
        preemptions: 0,
        steps: 0,
        table: Vec::new(),
        stop: None,
    }
}

impl<'a, 'o> Machine<'a, 'o> {
    /// An execution about to run its first step: the main thread holds the GIL.
    #[allow(clippy::too_many_arguments)]
    fn new(
        program: &'a Program,
        policy: Policy,
        opts: Options,
        py: Token<'a>,
        heap: &'a Heap<Std>,
        oracle: &'o mut dyn Oracle,
        image: Image,
        main: PyThread,
    ) -> Self {
        let host = XHost {
            me: 0,
            status: vec![Status::Running],
            granted: vec![false],
            names: vec!["MainThread".into()],
            spawned: Vec::new(),
            thread_counter: 0,
            output: String::new(),
            oracle,
            events: Vec::new(),
            preemptions: 0,
            interval_us: crate::gil::DEFAULT_INTERVAL.as_micros() as u64,
            grab_rows: Vec::new(),
            grab_offered: None,
            failure: None,
        };
        let rows = match opts.table {
            Table::Off => Rows::Off,
            Table::Full => Rows::Full(Vec::new()),
            Table::Folded => Rows::Folded(Box::default()),
        };
        Machine {
            program,
            policy,
            opts,
            py,
            heap,
            host,
            image,
            threads: vec![main],
            holder: Some(0),
            pending_grabs: Vec::new(),
            rows,
            steps: 0,
            path: FingerprintMap::default(),
            marks: Vec::new(),
            quiet: Quiet::default(),
            loop_claim: opts.loop_claim.map(|(from, to)| LoopClaim {
                from,
                to,
                start: None,
            }),
            saved: Vec::new(),
            start: None,
            resume: None,
            reduction: opts
                .reduce
                .then(|| por::Reduction::new(program, opts.state_faults.store_subscript_is_local))
                .flatten(),
            light_run: 0,
            local_run: None,
        }
    }
}

/// Runs `program` once under `policy`, letting `oracle` decide.
pub fn execute(
    program: &Program,
    policy: Policy,
    oracle: &mut dyn Oracle,
    opts: Options,
) -> Execution {
    EXECUTIONS.with(|n| n.set(n.get() + 1));
    let rt = Runtime::<Std>::new();
    let mut ts = rt.thread_state();
    let g = ts.attach();
    let (py, heap) = (g.token(), g.heap());
    let (image, main) = match load(program, py, heap) {
        Ok(x) => x,
        Err(e) => return not_loaded(e),
    };
    let mut m = Machine::new(program, policy, opts, py, heap, oracle, image, main);
    let end = m.run();
    let mut e = m.conclude(end);
    e.table = std::mem::replace(&mut m.rows, Rows::Off).finish();
    e
}

/// Explores `program` under `policy` statefully (EX-16): one runtime for the whole search,
/// the world saved at each decision the oracle asks for, and after each execution the next
/// one taken up at the decision whose choice changed, from the nearest saved world, instead
/// of re-running the program from the start. `each` gets every execution (without a step
/// table) and returns whether to go on; it is asked first, with [`Visit::Next`], before each
/// execution starts. The oracle must keep the path's states itself ([`Oracle::keeps_path`]),
/// as DFS does.
pub fn explore_stateful(
    program: &Program,
    policy: Policy,
    oracle: &mut dyn Oracle,
    opts: Options,
    each: &mut dyn FnMut(&mut dyn Oracle, Visit) -> bool,
) {
    debug_assert!(oracle.keeps_path() && opts.loop_claim.is_none());
    let rt = Runtime::<Std>::new();
    let mut ts = rt.thread_state();
    let g = ts.attach();
    let (py, heap) = (g.token(), g.heap());
    let (image, main) = match load(program, py, heap) {
        Ok(x) => x,
        Err(e) => {
            EXECUTIONS.with(|n| n.set(n.get() + 1));
            if each(oracle, Visit::Next) {
                each(oracle, Visit::Ran(not_loaded(e)));
            }
            return;
        }
    };
    let opts = Options {
        table: Table::Off,
        ..opts
    };
    let mut m = Machine::new(program, policy, opts, py, heap, oracle, image, main);
    m.start = Some(m.save(Resume::Start));
    loop {
        if !each(&mut *m.host.oracle, Visit::Next) {
            break;
        }
        EXECUTIONS.with(|n| n.set(n.get() + 1));
        let end = m.run();
        let e = m.conclude(end);
        if !each(&mut *m.host.oracle, Visit::Ran(e)) {
            break;
        }
        match m.host.oracle.next_path() {
            Some(node) => m.resume_at(node),
            None => break,
        }
    }
    // The heap goes with the runtime; what the last execution left is not audited again.
    let start = m.start.take().expect("saved at the start");
    m.heap.undo(py, &start.heap);
    let _ = release_all(heap, py, start.threads, m.image.clone());
}

/// What a search's `each` is shown: the next execution is about to start, or one has run.
pub enum Visit {
    Next,
    Ran(Execution),
}

impl Machine<'_, '_> {
    /// What the execution that ended with `end` printed, left and broke, with its audit at the
    /// end (RC-2, RC-4, RC-8). The machine's world is left released: an execution taken up
    /// again restores it first.
    fn conclude(&mut self, end: End) -> Execution {
        let (heap, py) = (self.heap, self.py);
        let end = match end {
            End::Done => match (self.host.oracle.invalid(), self.pending_grabs.first()) {
                (Some(why), _) => End::Fail(Failure::Invalid(why)),
                (None, Some(w)) => End::Fail(Failure::Invalid(format!(
                    "the schedule has thread {w} take a lock without the GIL, but that lock is never free while it waits"
                ))),
                (None, None) => End::Done,
            },
            other => other,
        };
        if let End::Stopped(stop @ (Stop::Explored | Stop::Unfair { .. })) = end
            && self.start.is_some()
        {
            // Stateful (EX-16): cut short with nothing to report, and the world is restored
            // before anything else runs, so it is neither read nor released, and its schedule
            // (as long as the execution) is not copied.
            self.host.failure = None;
            return Execution {
                outcome: Outcome::default(),
                failure: None,
                events: Vec::new(),
                preemptions: self.host.preemptions,
                steps: self.steps,
                table: Vec::new(),
                stop: Some(stop),
            };
        }
        let outcome = Outcome {
            output: self.host.output.clone(),
            state: interp::module_state(heap, py, self.image.globals),
        };
        let roots = self.roots();
        let (threads, image) = (self.threads.clone(), self.image.clone());
        let host = &mut self.host;
        let (failure, stop) = match end {
            End::Done => (
                finish(heap, py, threads, image).err().map(Failure::Rule),
                None,
            ),
            End::Fail(f) => {
                let _ = release_all(heap, py, threads, image);
                (Some(f), None)
            }
            End::Stopped(Stop::Budget) => {
                // What ran is audited (RC-2); the rest of the execution was never run.
                let audit = heap.audit(py, roots).err().map(Failure::Rule);
                let _ = release_all(heap, py, threads, image);
                (audit, Some(Stop::Budget))
            }
            End::Stopped(s) => {
                let _ = release_all(heap, py, threads, image);
                host.failure = None;
                (None, Some(s))
            }
        };
        let failure = failure.or(host.failure.take());
        let stop = if failure.is_some() { None } else { stop };
        Execution {
            outcome,
            failure,
            events: host.events.clone(),
            preemptions: host.preemptions,
            steps: self.steps,
            table: Vec::new(),
            stop,
        }
    }
}

/// An object as a fingerprint names it: an immortal one by its fixed number, any other by the
/// order in which the fingerprint reached it (so that slot numbers do not matter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Id {
    Immortal(u32),
    Reached(u32),
}

/// A 128-bit fingerprint of everything that decides how the execution goes on and what it
/// prints (EX-7): each thread's status and frames (with a call's pending keyword names), every
/// object reachable from them and from the program's constants and globals (canonically
/// numbered in the order they are reached, so that slot numbers do not matter), lock states,
/// the thread-name counter, the switch interval, an assertion that failed, and the output so
/// far. `faults` leaves parts out, for the broken twins of the checks only.
fn fingerprint(
    heap: &Heap<Std>,
    py: Token<'_>,
    image: &Image,
    threads: &[PyThread],
    host: &XHost<'_>,
    faults: StateFaults,
    holder_blind: bool,
) -> u128 {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let Scratch { vector, ids, queue } = &mut *scratch;
        vector.0.clear();
        let mut c = Canon { ids, queue };
        write_state(
            heap,
            py,
            image,
            threads,
            host,
            faults,
            holder_blind,
            &mut c,
            vector,
        );
        for o in c.queue.drain(..) {
            c.ids[o.index() as usize] = 0;
        }
        xxhash_rust::xxh3::xxh3_128(&vector.0)
    })
}

/// The canonical state vector (EX-16): what the `Hash` impls write, in order, as bytes.
#[derive(Default)]
struct StateVector(Vec<u8>);

impl std::hash::Hasher for StateVector {
    fn finish(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    fn write_u8(&mut self, x: u8) {
        self.0.push(x);
    }
    fn write_u16(&mut self, x: u16) {
        self.0.extend(x.to_le_bytes());
    }
    fn write_u32(&mut self, x: u32) {
        self.0.extend(x.to_le_bytes());
    }
    fn write_u64(&mut self, x: u64) {
        self.0.extend(x.to_le_bytes());
    }
    fn write_usize(&mut self, x: usize) {
        self.0.extend((x as u64).to_le_bytes());
    }
    fn write_i64(&mut self, x: i64) {
        self.0.extend(x.to_le_bytes());
    }
    fn write_isize(&mut self, x: isize) {
        self.0.extend((x as i64).to_le_bytes());
    }
}

/// Buffers a fingerprint reuses: the state vector, each object's canonical number plus one by
/// slot (0: not reached yet), and the objects reached, in order.
#[derive(Default)]
struct Scratch {
    vector: StateVector,
    ids: Vec<u32>,
    queue: Vec<ObjRef>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Canonical numbers of the objects a fingerprint reaches, in the order it reaches them.
struct Canon<'s> {
    ids: &'s mut Vec<u32>,
    queue: &'s mut Vec<ObjRef>,
}

impl Canon<'_> {
    fn id(&mut self, o: ObjRef) -> Id {
        if o.is_immortal() {
            return Id::Immortal(o.index());
        }
        let slot = o.index() as usize;
        if slot >= self.ids.len() {
            self.ids.resize(slot + 1, 0);
        }
        if self.ids[slot] == 0 {
            self.queue.push(o);
            self.ids[slot] = self.queue.len() as u32;
        }
        Id::Reached(self.ids[slot] - 1)
    }
    fn opt(&mut self, o: Option<ObjRef>) -> Option<Id> {
        o.map(|o| self.id(o))
    }
}

/// Writes the state [`fingerprint`] hashes into `h`.
#[allow(clippy::too_many_arguments)]
fn write_state(
    heap: &Heap<Std>,
    py: Token<'_>,
    image: &Image,
    threads: &[PyThread],
    host: &XHost<'_>,
    faults: StateFaults,
    holder_blind: bool,
    c: &mut Canon<'_>,
    h: &mut StateVector,
) {
    use std::hash::Hash;
    let h = &mut *h;
    if !faults.ignore_output {
        host.output.hash(h);
    }
    host.thread_counter.hash(h);
    if !faults.ignore_interval {
        host.interval_us.hash(h);
    }
    host.failure.hash(h);
    for (i, t) in threads.iter().enumerate() {
        match host.status[i] {
            Status::Running if holder_blind => 1u64.hash(h),
            Status::Running => 0u64.hash(h),
            Status::Ready => 1u64.hash(h),
            Status::Blocked(Wait::Sleep) => 2u64.hash(h),
            Status::Blocked(Wait::Join(u)) => (3u64, u).hash(h),
            Status::Blocked(Wait::Lock(l)) => (4u64, c.id(l)).hash(h),
            Status::Finished => 5u64.hash(h),
        }
        host.granted[i].hash(h);
        for f in &t.frames {
            (f.code, f.pc, f.stack.len(), f.kw_names()).hash(h);
            for &v in f.stack.iter().chain(&f.locals) {
                c.opt(v).hash(h);
            }
            c.id(f.globals).hash(h);
            c.opt(f.generator).hash(h);
            if let Some(p) = f.pending {
                (p.argc, c.id(p.acc)).hash(h);
            }
            c.opt(f.namespace).hash(h);
            // What the frame's return completes, with the objects it holds.
            let site = |i: &Instr| *i;
            match &f.ret {
                Ret::Call => 0u8.hash(h),
                Ret::Inside(i) => (1u8, site(i)).hash(h),
                Ret::Hashed(i) => (6u8, site(i)).hash(h),
                Ret::Discard(i) => (2u8, site(i)).hash(h),
                Ret::CCall { site: i } => (3u8, site(i)).hash(h),
                Ret::Init { instance, site: i } => (4u8, c.id(*instance), site(i)).hash(h),
                Ret::Class {
                    name,
                    base,
                    site: i,
                } => (5u8, c.id(*name), c.opt(*base), site(i)).hash(h),
            }
        }
        if let Some((a, b)) = t.start {
            (c.id(a), c.id(b)).hash(h);
        }
        c.opt(t.thread_obj).hash(h);
        if let Some(w) = t.sync {
            (c.id(w.waiter), w.saved, w.reacquiring).hash(h);
        }
        t.hash_done.hash(h);
        c.opt(t.exc_info).hash(h);
    }
    for r in image.roots() {
        c.id(r).hash(h);
    }
    let mut next = 0;
    while next < c.queue.len() {
        let o = c.queue[next];
        next += 1;
        heap.refcount(py, o).unwrap_or(-1).hash(h);
        let _ = heap.with_object(py, o, |obj| hash_object(obj, c, h, faults, |c, o| c.id(o)));
    }
    next.hash(h);
}

/// Feeds one object's value into `h`, naming the objects it refers to through `id`.
fn hash_object<C>(
    obj: &Object<Std>,
    c: &mut C,
    h: &mut impl std::hash::Hasher,
    faults: StateFaults,
    mut id: impl FnMut(&mut C, ObjRef) -> Id,
) {
    use std::hash::Hash;
    std::mem::discriminant(obj).hash(h);
    match obj {
        Object::None | Object::Builtin(_) => {}
        Object::Bool(b) => b.hash(h),
        Object::Int(_) if faults.ignore_ints => {}
        Object::Int(i) => i.hash(h),
        Object::Float(x) => x.to_bits().hash(h),
        Object::Str(s) => s.hash(h),
        Object::Bytes(b) => b.hash(h),
        Object::Tuple(v) | Object::List(v) => {
            v.len().hash(h);
            for &x in v {
                id(c, x).hash(h);
            }
        }
        // The layout decides the order the set iterates in, so it is part of the state.
        Object::Set { table, frozen } => {
            (
                frozen,
                table.used,
                table.fill,
                table.finger,
                table.table.len(),
            )
                .hash(h);
            for slot in &table.table {
                match *slot {
                    crate::setobj::Slot::Unused => 0u8.hash(h),
                    crate::setobj::Slot::Dummy => 1u8.hash(h),
                    crate::setobj::Slot::Active(kh, k) => (2u8, kh, id(c, k)).hash(h),
                }
            }
        }
        Object::Dict(d) => {
            d.len().hash(h);
            for &(k, v) in d.iter() {
                (id(c, k), id(c, v)).hash(h);
            }
            match d.missing {
                Missing::Default(f) => id(c, f).hash(h),
                m => m.hash(h),
            }
        }
        Object::Lock(_) if faults.ignore_lock_state => {}
        // A plain Lock's owner is never looked at (LOCK-4): only whether it is held counts.
        Object::Lock(l) if l.is_reentrant() => l.state().hash(h),
        Object::Lock(l) => l.is_locked().hash(h),
        Object::Sync(o) => {
            match o {
                SyncObj::Condition { lock, .. } => id(c, *lock).hash(h),
                SyncObj::Semaphore { value, bound, .. } => (value, bound).hash(h),
                SyncObj::Event { flag, .. } => flag.hash(h),
                SyncObj::Queue {
                    items,
                    maxsize,
                    unfinished,
                    not_empty,
                    not_full,
                    all_done,
                } => {
                    (items.len(), maxsize, unfinished).hash(h);
                    for &x in items {
                        id(c, x).hash(h);
                    }
                    (not_empty.len(), not_full.len(), all_done.len()).hash(h);
                }
            }
            for w in o.waiters() {
                id(c, w).hash(h);
            }
        }
        Object::Code { index, .. } => index.hash(h),
        Object::Function {
            code,
            globals,
            defaults,
            kwdefaults,
            closure,
            ..
        } => (
            code,
            id(c, *globals),
            defaults.map(|d| id(c, d)),
            kwdefaults.map(|d| id(c, d)),
            closure.map(|d| id(c, d)),
        )
            .hash(h),
        Object::Cell(v) => v.map(|x| id(c, x)).hash(h),
        Object::BoundMethod { func, receiver } => (func, id(c, *receiver)).hash(h),
        Object::Range { start, stop, step } => (start, stop, step).hash(h),
        Object::Iter(IterObj::Range { next, stop, step }) => (next, stop, step).hash(h),
        Object::Iter(IterObj::Seq { seq, index }) => (id(c, *seq), index).hash(h),
        Object::Iter(IterObj::Dict {
            dict,
            index,
            size,
            kind,
        }) => (id(c, *dict), index, size, kind).hash(h),
        Object::Iter(IterObj::Enumerate { inner, count }) => (id(c, *inner), count).hash(h),
        Object::Iter(IterObj::Zip { iters }) => {
            for &i in iters {
                id(c, i).hash(h);
            }
        }
        Object::DictView { dict, kind } => (id(c, *dict), kind).hash(h),
        Object::Slice { start, stop, step } => (start, stop, step).hash(h),
        Object::Deque {
            items,
            maxlen,
            state,
        } => {
            (items.len(), maxlen, state).hash(h);
            for &x in items {
                id(c, x).hash(h);
            }
        }
        Object::Iter(IterObj::Deque {
            deque,
            index,
            state,
        }) => (id(c, *deque), index, state).hash(h),
        Object::Iter(IterObj::Set { set, slot, size }) => (id(c, *set), slot, size).hash(h),
        Object::Thread(t) => {
            (&t.name, t.ident, t.run as u8, t.process, t.daemon).hash(h);
            let (a, b) = (t.target.map(|o| id(c, o)), t.args.map(|o| id(c, o)));
            (a, b, t.kwargs.map(|o| id(c, o))).hash(h);
            (
                t.class.map(|o| id(c, o)),
                t.dict.map(|o| id(c, o)),
                t.initialized,
            )
                .hash(h);
        }
        Object::Namespace { dict } => id(c, *dict).hash(h),
        Object::Exception { class, message } => (class, message).hash(h),
        Object::Class { name, base, dict } => (name, base.map(|b| id(c, b)), id(c, *dict)).hash(h),
        Object::Instance { class, dict } => (id(c, *class), id(c, *dict)).hash(h),
        Object::Method { func, receiver } => (id(c, *func), id(c, *receiver)).hash(h),
        Object::Property { fget, fset } => (fget.map(|f| id(c, f)), fset.map(|f| id(c, f))).hash(h),
        Object::StaticMethod(f) | Object::ClassMethod(f) => id(c, *f).hash(h),
        Object::Super { class, receiver } => (id(c, *class), id(c, *receiver)).hash(h),
        Object::Generator(g) => {
            g.running.hash(h);
            if let Some(f) = &g.frame {
                (f.code, f.pc, f.stack.len()).hash(h);
                for &v in f.stack.iter().chain(&f.locals) {
                    v.map(|o| id(c, o)).hash(h);
                }
                id(c, f.globals).hash(h);
            }
        }
    }
}

fn grab_row(step: usize, names: &[String], w: u32, text: &str) -> Row {
    Row {
        step,
        thread: names[w as usize].clone(),
        code: String::new(),
        line: 0,
        instr: "—".into(),
        effect: text.into(),
        gil: String::new(),
        switch: true,
    }
}

fn deadlock_text(host: &XHost<'_>, heap: &Heap<Std>, py: Token<'_>, globals: ObjRef) -> String {
    let parts: Vec<String> = host
        .status
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Status::Blocked(w) => Some(format!(
                "{} {}",
                host.names[i],
                wait_text(*w, &host.names, heap, py, globals)
            )),
            _ => None,
        })
        .collect();
    format!("every remaining thread waits: {}", parts.join("; "))
}

/// The end of a completed execution: audit every count (RC-2), release the image, check that
/// every object was freed (RC-4, RC-8).
fn finish(
    heap: &Heap<Std>,
    py: Token<'_>,
    threads: Vec<PyThread>,
    image: Image,
) -> Result<(), String> {
    let roots: Vec<ObjRef> = image
        .roots()
        .chain(threads.iter().flat_map(|t| t.roots()))
        .collect();
    heap.audit(py, roots)?;
    release_all(heap, py, threads, image)?;
    let leaks = heap.leak_report(py).map_err(|e| e.to_string())?;
    if leaks.is_clean() {
        Ok(())
    } else {
        Err(leaks.to_string().trim_end().to_string())
    }
}

fn release_all(
    heap: &Heap<Std>,
    py: Token<'_>,
    threads: Vec<PyThread>,
    image: Image,
) -> Result<(), String> {
    for t in threads {
        for r in t.roots() {
            heap.decref(py, r).map_err(|e| e.to_string())?;
        }
    }
    image.release(py, heap).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EX-5: only a switch away from a thread that could go on costs a preemption: any choice
    /// of who takes a free GIL is free, and at a poll or a lock take option 0 (the holder
    /// keeps going) is free and every other option costs one.
    #[test]
    fn ex5_what_a_choice_costs() {
        let next = Decision::Next {
            candidates: vec![0, 1, 2],
        };
        assert_eq!((0..3).map(|i| next.cost(i)).collect::<Vec<_>>(), [0, 0, 0]);
        let poll = Decision::Poll {
            holder: 0,
            candidates: vec![1, 2],
        };
        assert_eq!(poll.options(), 3);
        assert_eq!((0..3).map(|i| poll.cost(i)).collect::<Vec<_>>(), [0, 1, 1]);
    }

    #[test]
    fn thread_sets() {
        let a: ThreadSet = [0, 1, 127].into_iter().collect();
        let b: ThreadSet = [1, 2].into_iter().collect();
        assert_eq!(a.union(b).iter().collect::<Vec<_>>(), [0, 1, 2, 127]);
        assert_eq!(a.minus(b).iter().collect::<Vec<_>>(), [0, 127]);
        assert!(a.contains(127) && !a.contains(2));
    }
}
