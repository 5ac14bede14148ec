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
use crate::explore::schedule::Event;
use crate::heap::{Heap, ObjRef, Object};
use crate::platform::Std;
use crate::runtime::{Runtime, Token};
use crate::vm::interp::{self, Acquire, Cx, Fault, Host, Image, PyThread, Ready, Step, Wait};
use crate::vm::{Policy, Program};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A runtime rule was violated (RC-2 … RC-8): a refcount error, a leak, a bad audit.
    Rule(String),
    /// An `assert` in the program failed.
    Assertion(String),
    /// Threads remain, all blocked, none can proceed.
    Deadlock(String),
    /// The execution ran more than the step limit.
    NoTermination(usize),
    /// The oracle could not follow the execution (a schedule that does not replay).
    Invalid(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Rule(m) => write!(f, "runtime rule violated: {m}"),
            Failure::Assertion(m) => write!(f, "assertion failed: {m}"),
            Failure::Deadlock(m) => write!(f, "deadlock: {m}"),
            Failure::NoTermination(n) => write!(f, "no termination within {n} steps"),
            Failure::Invalid(m) => write!(f, "schedule does not replay: {m}"),
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
    /// The step table, when asked for.
    pub rows: Vec<Row>,
}

/// Options of one execution.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub max_steps: usize,
    /// Make a step table.
    pub table: bool,
    /// Audit every reference count after every step, not only at the end (slow; for tests).
    pub audit_every_step: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_steps: 5_000_000,
            table: false,
            audit_every_step: false,
        }
    }
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
    switch_interval: f64,
    /// Rows of lock takes without the GIL, made inside a step, for the step table.
    grab_rows: Vec<(u32, String)>,
    failure: Option<Failure>,
}

fn lock_free(heap: &Heap<Std>, py: Token<'_>, lock: ObjRef) -> bool {
    heap.lock_core(py, lock)
        .map(|c| !c.is_locked())
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
            Status::Blocked(Wait::Lock(l)) => lock_free(heap, py, l),
            Status::Running | Status::Finished => false,
        }
    }

    /// `t` takes the GIL; a blocked `t` first completes its wait (a lock is taken here).
    fn wake(&mut self, heap: &Heap<Std>, py: Token<'_>, t: u32) {
        if let Status::Blocked(w) = self.status[t as usize] {
            if let Wait::Lock(l) = w {
                let took = heap
                    .lock_core(py, l)
                    .map(|c| c.try_acquire())
                    .unwrap_or(false);
                debug_assert!(took, "woken for a lock that is not free");
            }
            self.granted[t as usize] = true;
        }
        self.status[t as usize] = Status::Running;
    }

    /// Thread `w`, blocked on a free lock, takes it without the GIL and then wants the GIL.
    fn grab(&mut self, heap: &Heap<Std>, py: Token<'_>, w: u32) -> bool {
        match self.status[w as usize] {
            Status::Blocked(Wait::Lock(l)) if lock_free(heap, py, l) => {
                let _ = heap.lock_core(py, l).map(|c| c.try_acquire());
                self.status[w as usize] = Status::Ready;
                self.granted[w as usize] = true;
                self.events.push(Event::Grab(w));
                true
            }
            _ => false,
        }
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
                let d = Decision::Grab {
                    holder: self.me,
                    lock,
                    waiters: waiters.clone(),
                };
                let i = self.oracle.choose(&d);
                if i > 0 {
                    let w = waiters[i - 1];
                    self.grab(heap, py, w);
                    self.preemptions += 1;
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
        if core.try_acquire() {
            Ok(Acquire::Acquired)
        } else if blocking {
            Ok(Acquire::Block(Wait::Lock(lock)))
        } else {
            Ok(Acquire::Busy)
        }
    }

    fn release(&mut self, py: Token<'_>, heap: &Heap<Std>, lock: ObjRef) -> Result<(), RtError> {
        heap.lock_core(py, lock)?.release()
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

    fn print(&mut self, text: &str, _stderr: bool) {
        self.output.push_str(text);
        if !text.ends_with('\n') {
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
        self.switch_interval
    }

    fn set_switch_interval(&mut self, seconds: f64) -> Result<(), RtError> {
        if seconds.is_nan() || seconds <= 0.0 || seconds.is_infinite() {
            return Err(RtError::ValueError(
                "switch interval must be strictly positive".into(),
            ));
        }
        self.switch_interval = seconds;
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
            let name = heap
                .with_object(py, globals, |g| match g {
                    Object::Dict(d) => d.iter().find(|&&(_, v)| v == l).map(|&(k, _)| k),
                    _ => None,
                })
                .ok()
                .flatten()
                .and_then(|k| heap.get(py, k).ok())
                .and_then(|k| match k {
                    Object::Str(s) => Some(s.to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| "a lock".into());
            format!("blocks on {name} (GIL released)")
        }
        Wait::Join(u) => format!("joins {} (GIL released)", names[u as usize]),
        Wait::Sleep => "sleeps (GIL released)".into(),
    }
}

/// Runs `program` once under `policy`, letting `oracle` decide.
pub fn execute(
    program: &Program,
    policy: Policy,
    oracle: &mut dyn Oracle,
    opts: Options,
) -> Execution {
    let rt = Runtime::<Std>::new();
    let mut ts = rt.thread_state();
    let g = ts.attach();
    let (py, heap) = (g.token(), g.heap());
    let mut host = XHost {
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
        switch_interval: 0.005,
        grab_rows: Vec::new(),
        failure: None,
    };
    let mut rows = Vec::new();
    let mut steps = 0usize;
    let result =
        (|| -> Result<(Outcome, Vec<PyThread>, Image), (Failure, Option<Image>, Vec<PyThread>)> {
            let image = Image::load(program, py, heap)
                .map_err(|e| (Failure::Rule(e.to_string()), None, Vec::new()))?;
            let mut threads = match PyThread::main(program, &image, py, heap) {
                Ok(t) => vec![t],
                Err(e) => return Err((Failure::Rule(e.to_string()), Some(image), Vec::new())),
            };
            let mut holder = Some(0u32);
            let mut pending_grabs: Vec<u32> = Vec::new();
            loop {
                // Lock takes the oracle asks for outside a decision (replay), as soon as possible.
                while let Some(w) = host.oracle.grab_now() {
                    pending_grabs.push(w);
                }
                pending_grabs.retain(|&w| {
                    let done = host.grab(heap, py, w);
                    if done && opts.table {
                        rows.push(grab_row(
                            steps,
                            &host.names,
                            w,
                            "takes the lock without the GIL",
                        ));
                    }
                    !done
                });
                if let Some(why) = host.oracle.invalid() {
                    return Err((Failure::Invalid(why), Some(image), threads));
                }
                let h = match holder {
                    Some(h) => h,
                    None => {
                        let cands = host.candidates(heap, py, None);
                        if cands.is_empty() {
                            if host.status.iter().all(|s| *s == Status::Finished) {
                                break;
                            }
                            let why = deadlock_text(&host, heap, py, image.globals);
                            return Err((Failure::Deadlock(why), Some(image), threads));
                        }
                        let i = host.oracle.choose(&Decision::Next {
                            candidates: cands.clone(),
                        });
                        let Some(&t) = cands.get(i) else {
                            let why = host
                                .oracle
                                .invalid()
                                .unwrap_or_else(|| "no such thread".into());
                            return Err((Failure::Invalid(why), Some(image), threads));
                        };
                        host.wake(heap, py, t);
                        if opts.table
                            && let Some(last) = rows.last_mut()
                        {
                            let last: &mut Row = last;
                            last.gil =
                                format!("{}; {} takes the GIL", last.gil, host.names[t as usize]);
                        }
                        holder = Some(t);
                        t
                    }
                };
                host.me = h;
                let mut cx = Cx {
                    program,
                    policy,
                    image: &image,
                    py,
                    heap,
                    host: &mut host,
                    effect: opts.table.then(String::new),
                };
                let t = &mut threads[h as usize];
                let at = t.location();
                let starting = t.start.is_some();
                let result = interp::step(t, &mut cx);
                let effect = cx.effect.take().unwrap_or_default();
                steps += 1;
                host.events.push(Event::Step(h));
                host.oracle.on_step(h);
                threads.append(&mut host.spawned);
                if opts.table {
                    for (w, text) in std::mem::take(&mut host.grab_rows) {
                        rows.push(grab_row(steps, &host.names, w, &text));
                    }
                    let (code, line, instr) = match at {
                        Some((c, pc)) if !starting => (
                            program.codes[c as usize].name.clone(),
                            program.codes[c as usize].lines[pc as usize],
                            interp::describe(program, c, pc),
                        ),
                        _ => (String::new(), 0, "(thread start: calls its target)".into()),
                    };
                    rows.push(Row {
                        step: steps,
                        thread: host.names[h as usize].clone(),
                        code,
                        line,
                        instr,
                        effect,
                        gil: String::new(),
                        switch: false,
                    });
                }
                let result = match result {
                    Ok(r) => r,
                    Err(Fault(e)) => {
                        return Err((Failure::Rule(e.to_string()), Some(image), threads));
                    }
                };
                match result {
                    Step::Ran { poll: Some(reason) } => {
                        let cands = host.candidates(heap, py, Some(h));
                        if !cands.is_empty() {
                            let i = host.oracle.choose(&Decision::Poll {
                                holder: h,
                                candidates: cands.clone(),
                            });
                            if i > 0 {
                                let Some(&to) = cands.get(i - 1) else {
                                    let why = host
                                        .oracle
                                        .invalid()
                                        .unwrap_or_else(|| "no such thread".into());
                                    return Err((Failure::Invalid(why), Some(image), threads));
                                };
                                host.status[h as usize] = Status::Ready;
                                host.wake(heap, py, to);
                                host.preemptions += 1;
                                holder = Some(to);
                                if let Some(r) = rows.last_mut() {
                                    r.gil = format!(
                                        "poll ({reason}): preempted, {} takes the GIL",
                                        host.names[to as usize]
                                    );
                                    r.switch = true;
                                }
                            }
                        }
                    }
                    Step::Ran { poll: None } => {}
                    Step::Blocked(w) => {
                        host.status[h as usize] = Status::Blocked(w);
                        holder = None;
                        if let Some(r) = rows.last_mut() {
                            r.gil = wait_text(w, &host.names, heap, py, image.globals);
                            r.switch = true;
                        }
                    }
                    Step::Finished => {
                        host.status[h as usize] = Status::Finished;
                        holder = None;
                        if let Some(r) = rows.last_mut() {
                            r.gil = "thread ends (GIL released)".into();
                            r.switch = true;
                        }
                    }
                }
                if opts.audit_every_step {
                    let roots: Vec<ObjRef> = image
                        .roots()
                        .chain(threads.iter().flat_map(|t| t.roots()))
                        .collect();
                    if let Err(e) = heap.audit(py, roots) {
                        return Err((Failure::Rule(e), Some(image), threads));
                    }
                }
                if steps >= opts.max_steps {
                    return Err((Failure::NoTermination(steps), Some(image), threads));
                }
            }
            if let Some(why) = host.oracle.invalid() {
                return Err((Failure::Invalid(why), Some(image), threads));
            }
            let outcome = Outcome {
                output: std::mem::take(&mut host.output),
                state: final_state(heap, py, image.globals),
            };
            Ok((outcome, threads, image))
        })();
    let (outcome, failure) = match result {
        Ok((outcome, threads, image)) => {
            let failure = finish(heap, py, threads, image).err().map(Failure::Rule);
            (outcome, failure)
        }
        Err((failure, image, threads)) => {
            let outcome = Outcome {
                output: std::mem::take(&mut host.output),
                state: image
                    .as_ref()
                    .map(|i| final_state(heap, py, i.globals))
                    .unwrap_or_default(),
            };
            // Release what is left so the heap is dropped clean; a rule failure wins.
            if let Some(image) = image {
                let _ = release_all(heap, py, threads, image);
            }
            (outcome, Some(failure))
        }
    };
    let failure = failure.or(host.failure.take());
    Execution {
        outcome,
        failure,
        events: host.events,
        preemptions: host.preemptions,
        steps,
        rows,
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

/// The module's globals as (name, repr).
fn final_state(heap: &Heap<Std>, py: Token<'_>, globals: ObjRef) -> Vec<(String, String)> {
    let entries = match heap.get(py, globals) {
        Ok(Object::Dict(d)) => d,
        _ => return Vec::new(),
    };
    entries
        .into_iter()
        .filter_map(|(k, v)| {
            let name = match heap.get(py, k).ok()? {
                Object::Str(s) => s.to_string(),
                _ => return None,
            };
            (name != "__name__")
                .then(|| (name, heap.repr(py, v).unwrap_or_else(|e| format!("<{e}>"))))
        })
        .collect()
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
