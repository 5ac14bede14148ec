//! The real-thread driver (rule VM-9 of `spec/bytecode.md`): one platform thread per runtime
//! thread, the runtime's GIL taken and polled for real. `gilcheck run` uses it on [`Std`]
//! (OS threads); the loom engine of `gilcheck check` on [`crate::platform::Loom`].
//!
//! Each thread attaches (takes the GIL), then steps its instructions; after every step that the
//! policy follows with a poll point it polls the GIL (GIL-7), which honours a drop request. A
//! blocking call releases the GIL inside the step (`allow_threads`, GIL-3; a contended
//! `Lock.acquire` through LOCK-2's path).
//!
//! [`Std`]: crate::platform::Std

use crate::RtError;
use crate::explore::schedule::Event;
use crate::gil::Faults;
use crate::heap::{Heap, HeapStats, LeakReport, ObjRef, Object, ThreadObj, ThreadRun};
use crate::platform::Platform;
use crate::runtime::{Attached, Runtime, Token};
use crate::vm::interp::{self, Acquire, Cx, Fault, Host, Image, PyThread, Ready, Step, VmFaults};
use crate::vm::{Policy, Program};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of a real run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub policy: Policy,
    pub switch_interval: f64,
    /// Record the schedule (which thread ran each step), as the loom engine needs.
    pub record: bool,
    /// Write program output to the process's stdout/stderr as it is printed.
    pub echo: bool,
    /// On real threads ([`Platform::MODELS_TIME`]), print a progress line on stderr every 2 s
    /// once the run has lasted 2 s: threads finished, GIL switches.
    pub progress: bool,
    /// Deliberate defects of the GIL and the VM, for the broken twins of the checks.
    #[doc(hidden)]
    pub faults: Faults,
    #[doc(hidden)]
    pub vm_faults: VmFaults,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            policy: Policy::Py313,
            switch_interval: 0.005,
            record: false,
            echo: false,
            progress: false,
            faults: Faults::default(),
            vm_faults: VmFaults::default(),
        }
    }
}

/// What a real run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub output: String,
    /// The module's globals at the end: (name, repr).
    pub state: Vec<(String, String)>,
    pub stats: HeapStats,
    pub leaks: LeakReport,
    /// GIL switches of the main runtime.
    pub switches: u64,
    pub elapsed: Duration,
    /// The schedule, when recorded.
    pub events: Vec<Event>,
    /// A rule violation (refcount, audit) or an internal failure.
    pub failure: Option<String>,
    /// Runtimes started by `multiprocessing.Process` (each with its own GIL and heap).
    pub processes: usize,
    /// Daemon threads still going when the program ended (left behind, as CPython leaves
    /// them; what they hold is not audited).
    pub daemons_left: Vec<String>,
}

/// Signalled when a runtime thread ends (CPython's `_tstate_lock`).
struct Done<P: Platform> {
    flag: P::Mutex<bool>,
    cv: P::Condvar,
}

impl<P: Platform> Done<P> {
    fn new() -> Self {
        Done {
            flag: P::mutex(false),
            cv: P::condvar(),
        }
    }
    fn set(&self) {
        *P::lock(&self.flag) = true;
        P::notify_all(&self.cv);
    }
    fn is_set(&self) -> bool {
        *P::lock(&self.flag)
    }
    fn wait(&self) {
        let mut f = P::lock(&self.flag);
        while !*f {
            f = P::wait(&self.cv, f);
        }
    }
}

/// One runtime (an interpreter: a GIL, a heap, a module namespace) and its threads.
struct Interp<P: Platform> {
    rt: Arc<Runtime<P>>,
    image: Image,
    threads: P::Mutex<Vec<Slot<P>>>,
    names: [AtomicU32; 2],
}

struct Slot<P: Platform> {
    done: Arc<Done<P>>,
    handle: Option<P::JoinHandle<()>>,
    /// A daemon thread (not waited for at exit), with its name.
    daemon: Option<String>,
}

/// What every thread of a run shares.
struct Shared<P: Platform> {
    program: Arc<Program>,
    opts: RunOptions,
    log: Mutex<Vec<Event>>,
    output: Mutex<String>,
    failure: Mutex<Option<String>>,
    start: Instant,
    /// Processes: their runtimes, by the ident their `Process` object got.
    processes: P::Mutex<HashMap<u32, Process<P>>>,
    process_counter: AtomicU32,
    main: Arc<Interp<P>>,
}

struct Process<P: Platform> {
    done: Arc<Done<P>>,
    handle: Option<P::JoinHandle<()>>,
}

impl<P: Platform> Shared<P> {
    fn record(&self, e: Event) {
        if self.opts.record {
            self.log.lock().unwrap_or_else(|p| p.into_inner()).push(e);
        }
    }

    fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert(why);
    }

    fn write(&self, text: &str, stderr: bool) {
        let mut text = text.to_string();
        // A traceback ends its last line; `print(…, end="")` leaves the line open.
        if stderr && !text.ends_with('\n') {
            text.push('\n');
        }
        if self.opts.echo {
            use std::io::Write;
            if stderr {
                let _ = std::io::stderr().write_all(text.as_bytes());
            } else {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
        }
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_str(&text);
    }
}

/// The host of one runtime thread on real (or loom) threads: blocking calls block here.
struct THost<'a, 'g, P: Platform> {
    g: &'a Attached<'g, P>,
    shared: &'a Arc<Shared<P>>,
    interp: &'a Arc<Interp<P>>,
    me: u32,
}

impl<P: Platform> Host<P> for THost<'_, '_, P> {
    fn start(
        &mut self,
        py: Token<'_>,
        heap: &Heap<P>,
        thread: ObjRef,
        process: bool,
    ) -> Result<u32, RtError> {
        if process {
            return start_process(self.shared, py, heap, thread);
        }
        let mut slots = P::lock(&self.interp.threads);
        let ident = slots.len() as u32;
        let t = PyThread::for_thread_object(ident, py, heap, thread)?;
        let daemon = t.daemon.then(|| t.name.clone());
        let done = Arc::new(Done::new());
        let (shared, interp, d) = (
            Arc::clone(self.shared),
            Arc::clone(self.interp),
            Arc::clone(&done),
        );
        let ts = self.interp.rt.thread_state();
        let handle = P::spawn(move || thread_main(shared, interp, ts, t, d));
        slots.push(Slot {
            done,
            handle: Some(handle),
            daemon,
        });
        Ok(ident)
    }

    fn join(
        &mut self,
        _py: Token<'_>,
        _heap: &Heap<P>,
        ident: u32,
        process: bool,
    ) -> Result<Ready, RtError> {
        let done = if process {
            P::lock(&self.shared.processes)
                .get(&ident)
                .map(|p| Arc::clone(&p.done))
        } else {
            P::lock(&self.interp.threads)
                .get(ident as usize)
                .map(|s| Arc::clone(&s.done))
        };
        let done = done.ok_or_else(|| RtError::RuntimeError("join of an unknown thread".into()))?;
        if !done.is_set() {
            self.shared.record(Event::Step(self.me)); // the attempt that blocks
            self.g.allow_threads(|| done.wait());
        }
        Ok(Ready::Now)
    }

    fn acquire(
        &mut self,
        py: Token<'_>,
        heap: &Heap<P>,
        lock: ObjRef,
        blocking: bool,
    ) -> Result<Acquire, RtError> {
        let core = heap.lock_core(py, lock)?;
        if core.try_acquire(self.me) {
            return Ok(Acquire::Acquired);
        }
        if !blocking {
            return Ok(Acquire::Busy);
        }
        self.shared.record(Event::Step(self.me));
        let (shared, me) = (Arc::clone(self.shared), self.me);
        // LOCK-2: wait for the lock with the GIL released; take the GIL back once it is ours.
        self.g.allow_threads(move || {
            core.acquire_blocking(me);
            shared.record(Event::Grab(me));
        });
        Ok(Acquire::Acquired)
    }

    fn release(&mut self, py: Token<'_>, heap: &Heap<P>, lock: ObjRef) -> Result<(), RtError> {
        heap.lock_core(py, lock)?.release(self.me)
    }

    fn sleep(&mut self, seconds: f64) -> Ready {
        self.shared.record(Event::Step(self.me));
        let d = Duration::from_secs_f64(seconds.min(1e6));
        self.g.allow_threads(move || P::sleep(d));
        Ready::Now
    }

    fn now(&mut self) -> f64 {
        if P::MODELS_TIME {
            self.shared.start.elapsed().as_secs_f64()
        } else {
            0.0
        }
    }

    fn print(&mut self, text: &str, stderr: bool) {
        self.shared.write(text, stderr);
    }

    fn switch_interval(&mut self) -> f64 {
        self.interp.rt.gil().switch_interval()
    }

    fn set_switch_interval(&mut self, seconds: f64) -> Result<(), RtError> {
        self.interp.rt.gil().set_switch_interval(seconds)
    }

    fn daemons(&self) -> bool {
        P::MODELS_TIME
    }

    fn next_thread_name(&mut self, process: bool) -> String {
        let n = self.interp.names[usize::from(process)].fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}-{n}", if process { "Process" } else { "Thread" })
    }
}

/// Steps `t` until it ends, polling the GIL where the policy says; then drops what a fault
/// left it holding (a thread that ended normally holds nothing).
fn run_thread<P: Platform>(
    shared: &Arc<Shared<P>>,
    interp: &Arc<Interp<P>>,
    g: &Attached<'_, P>,
    t: &mut PyThread,
) {
    let mut host = THost {
        g,
        shared,
        interp,
        me: t.ident,
    };
    loop {
        let mut cx = Cx {
            program: &shared.program,
            policy: shared.opts.policy,
            image: &interp.image,
            py: g.token(),
            heap: g.heap(),
            host: &mut host,
            effect: None,
            faults: shared.opts.vm_faults,
        };
        let r = interp::step(t, &mut cx);
        shared.record(Event::Step(t.ident));
        match r {
            Ok(Step::Ran { poll: Some(_) }) => {
                let _ = g.poll(); // GIL-7: may hand the GIL over here
            }
            Ok(Step::Ran { poll: None }) => {}
            Ok(Step::Finished) => break,
            Ok(Step::Blocked(_)) => {
                shared.fail("internal error: a blocking call did not block on real threads".into());
                break;
            }
            Err(Fault(e)) => {
                shared.fail(e.to_string());
                break;
            }
        }
    }
    for r in t.roots() {
        let _ = g.heap().decref(g.token(), r);
    }
}

fn thread_main<P: Platform>(
    shared: Arc<Shared<P>>,
    interp: Arc<Interp<P>>,
    mut ts: crate::ThreadState<P>,
    mut t: PyThread,
    done: Arc<Done<P>>,
) {
    let g = ts.attach();
    run_thread(&shared, &interp, &g, &mut t);
    done.set();
}

/// The end of a runtime whose threads have all ended: the whole-program audit (VM-2, its
/// failure recorded through `fail`), the release of the image, and the leak report (RC-8).
fn shut_down<P: Platform>(
    g: &Attached<'_, P>,
    interp: &Interp<P>,
    fail: impl Fn(String),
) -> Result<LeakReport, String> {
    let (py, heap) = (g.token(), g.heap());
    if let Err(e) = heap.audit(py, interp.image.roots()) {
        fail(e);
    }
    // Every thread has been joined: the image's references are the last ones.
    interp
        .image
        .clone()
        .release(py, heap)
        .map_err(|e| e.to_string())?;
    heap.leak_report(py).map_err(|e| e.to_string())
}

/// Runs `program` on real threads of platform `P` (OS threads for [`crate::platform::Std`]).
pub fn run<P: Platform>(program: Arc<Program>, opts: RunOptions) -> Result<RunReport, String> {
    let rt = Runtime::<P>::with_faults(opts.faults);
    rt.gil()
        .set_switch_interval(opts.switch_interval)
        .map_err(|e| e.to_string())?;
    let mut main_ts = rt.thread_state();
    let (image, mut main_thread) = {
        let g = main_ts.attach();
        let image = Image::load(&program, g.token(), g.heap()).map_err(|e| e.to_string())?;
        let t = PyThread::main(&program, &image, g.token(), g.heap()).map_err(|e| e.to_string())?;
        (image, t)
    };
    let main_done = Arc::new(Done::new());
    let interp = Arc::new(Interp {
        rt: Arc::clone(&rt),
        image,
        threads: P::mutex(vec![Slot {
            done: Arc::clone(&main_done),
            handle: None,
            daemon: None,
        }]),
        names: [AtomicU32::new(0), AtomicU32::new(0)],
    });
    let shared = Arc::new(Shared {
        program: Arc::clone(&program),
        opts,
        log: Mutex::new(Vec::new()),
        output: Mutex::new(String::new()),
        failure: Mutex::new(None),
        start: Instant::now(),
        processes: P::mutex(HashMap::new()),
        process_counter: AtomicU32::new(1),
        main: Arc::clone(&interp),
    });
    let reporter = (opts.progress && P::MODELS_TIME).then(|| Reporter::start(&shared, &interp));
    {
        let g = main_ts.attach();
        run_thread(&shared, &interp, &g, &mut main_thread);
        main_done.set();
        // CPython's threading._shutdown: wait for every other thread with the GIL released.
        g.allow_threads(|| join_all(&interp, &shared, true));
    }
    let elapsed = shared.start.elapsed();
    if let Some(r) = reporter {
        r.stop();
    }
    let g = main_ts.attach();
    let state = interp::module_state(g.heap(), g.token(), interp.image.globals);
    let switches = rt.gil().switch_number();
    // The main thread keeps the GIL from here on: a daemon thread left behind never runs
    // again (CPython's finalization stops them when they ask for the GIL).
    let daemons_left: Vec<String> = P::lock(&interp.threads)
        .iter()
        .filter(|s| !s.done.is_set())
        .filter_map(|s| s.daemon.clone())
        .collect();
    let leaks = if daemons_left.is_empty() {
        shut_down(&g, &interp, |e| shared.fail(e))?
    } else {
        LeakReport { leaks: Vec::new() }
    };
    let stats = g.heap().stats(g.token());
    drop(g);
    let processes = P::lock(&shared.processes).len();
    Ok(RunReport {
        output: std::mem::take(&mut *shared.output.lock().unwrap_or_else(|p| p.into_inner())),
        state,
        stats,
        leaks,
        switches,
        elapsed,
        events: std::mem::take(&mut *shared.log.lock().unwrap_or_else(|p| p.into_inner())),
        failure: shared
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        processes,
        daemons_left,
    })
}

/// The progress lines of a long run (`RunOptions::progress`): an OS thread that wakes every
/// 2 s and prints how far the run has come, until it is stopped.
struct Reporter {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Reporter {
    const EVERY: Duration = Duration::from_secs(2);

    fn start<P: Platform>(shared: &Arc<Shared<P>>, interp: &Arc<Interp<P>>) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (shared, interp) = (Arc::clone(shared), Arc::clone(interp));
        let thread = std::thread::spawn(move || {
            // A message or a dropped sender both end the reporter.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Self::EVERY)
            {
                use std::io::Write;
                let line = progress_line(&shared, &interp);
                let _ = writeln!(std::io::stderr(), "gilcheck: run: {line}");
            }
        });
        Reporter { stop, thread }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// `3 s, 2 of 4 threads finished, 1 234 GIL switches` (and processes, when there are any).
fn progress_line<P: Platform>(shared: &Shared<P>, interp: &Interp<P>) -> String {
    // Slot 0 is the main thread, which ends last.
    let (threads, finished) = {
        let slots = P::lock(&interp.threads);
        let started = slots.len().saturating_sub(1);
        let done = slots.iter().skip(1).filter(|s| s.done.is_set()).count();
        (started, done)
    };
    let processes = {
        let ps = P::lock(&shared.processes);
        let done = ps.values().filter(|p| p.done.is_set()).count();
        (!ps.is_empty()).then(|| format!(", {done} of {} processes finished", ps.len()))
    };
    format!(
        "{:.0} s, {finished} of {threads} thread{} finished{}, {} GIL switches",
        shared.start.elapsed().as_secs_f64(),
        if threads == 1 { "" } else { "s" },
        processes.unwrap_or_default(),
        crate::explore::engine::thousands(interp.rt.gil().switch_number() as usize)
    )
}

/// Waits for every thread of `interp`, and with `processes`, for every process.
fn join_all<P: Platform>(interp: &Interp<P>, shared: &Shared<P>, processes: bool) {
    // Daemon threads are not waited for (CPython's `threading._shutdown`).
    join_each::<P>(shared, "a runtime thread", || {
        P::lock(&interp.threads)
            .iter_mut()
            .filter(|s| s.daemon.is_none())
            .find_map(|s| s.handle.take())
    });
    if processes {
        join_each::<P>(shared, "a process", || {
            P::lock(&shared.processes)
                .values_mut()
                .find_map(|p| p.handle.take())
        });
    }
}

/// Joins the handles `next` hands out until it has none left (new ones may appear meanwhile).
fn join_each<P: Platform>(
    shared: &Shared<P>,
    what: &str,
    mut next: impl FnMut() -> Option<P::JoinHandle<()>>,
) {
    while let Some(h) = next() {
        if P::join(h).is_err() {
            shared.fail(format!("internal error: {what} panicked"));
        }
    }
}

/// `Process.start()`: a new runtime (its own GIL and heap) on a new platform thread, whose
/// module namespace is a copy of the parent's, as `fork` gives a child a copy of the parent's
/// memory; it runs the target with a copy of the arguments.
fn start_process<P: Platform>(
    shared: &Arc<Shared<P>>,
    py: Token<'_>,
    heap: &Heap<P>,
    thread: ObjRef,
) -> Result<u32, RtError> {
    if !P::MODELS_TIME {
        return Err(RtError::RuntimeError(
            "multiprocessing.Process runs only under `gilcheck run`".into(),
        ));
    }
    let Object::Thread(ThreadObj {
        target: Some(target),
        args: Some(args),
        name,
        ..
    }) = heap.get(py, thread)?
    else {
        return Err(RtError::RuntimeError("process has no target".into()));
    };
    let ident = shared.process_counter.fetch_add(1, Ordering::Relaxed);
    let rt = Runtime::<P>::new();
    rt.gil().set_switch_interval(shared.opts.switch_interval)?;
    let mut ts = rt.thread_state();
    let (image, child) = {
        let cg = ts.attach();
        let (cpy, cheap) = (cg.token(), cg.heap());
        let image = Image::load(&shared.program, cpy, cheap)?;
        let mut copier = Copier {
            memo: HashMap::new(),
        };
        // Fork semantics: the parent's globals become the child's (the child's fresh namespace
        // is dropped).
        let globals = copier.copy(py, heap, cpy, cheap, shared.main.image.globals)?;
        let fresh = image.globals;
        let image = Image { globals, ..image };
        cheap.decref(cpy, fresh)?;
        let t = copier.copy(py, heap, cpy, cheap, target)?;
        let a = copier.copy(py, heap, cpy, cheap, args)?;
        (image, PyThread::for_call(0, name.to_string(), t, a))
    };
    let done = Arc::new(Done::new());
    let interp = Arc::new(Interp {
        rt,
        image,
        threads: P::mutex(vec![Slot {
            done: Arc::clone(&done),
            handle: None,
            daemon: None,
        }]),
        names: [AtomicU32::new(0), AtomicU32::new(0)],
    });
    let (s, d) = (Arc::clone(shared), Arc::clone(&done));
    let handle = P::spawn(move || process_main(s, interp, ts, child, d));
    P::lock(&shared.processes).insert(
        ident,
        Process {
            done,
            handle: Some(handle),
        },
    );
    Ok(ident)
}

fn process_main<P: Platform>(
    shared: Arc<Shared<P>>,
    interp: Arc<Interp<P>>,
    mut ts: crate::ThreadState<P>,
    mut t: PyThread,
    done: Arc<Done<P>>,
) {
    {
        let g = ts.attach();
        run_thread(&shared, &interp, &g, &mut t);
        g.allow_threads(|| join_all(&interp, &shared, false));
    }
    let g = ts.attach();
    let fail = |e: String| shared.fail(format!("in {}: {e}", t.name));
    match shut_down(&g, &interp, fail) {
        Ok(l) if l.is_clean() => {}
        Ok(l) => fail(l.to_string()),
        Err(e) => fail(e),
    }
    drop(g);
    done.set();
}

/// Deep copy of objects from one heap into another (a forked child's memory).
struct Copier {
    memo: HashMap<ObjRef, ObjRef>,
}

impl Copier {
    /// A new reference, in `to`, to the copy of `o`.
    fn copy<P: Platform>(
        &mut self,
        py: Token<'_>,
        from: &Heap<P>,
        cpy: Token<'_>,
        to: &Heap<P>,
        o: ObjRef,
    ) -> Result<ObjRef, RtError> {
        if o.is_immortal() {
            return Ok(o);
        }
        if let Some(&c) = self.memo.get(&o) {
            to.incref(cpy, c)?;
            return Ok(c);
        }
        let obj = from.get(py, o)?;
        let copied = match obj {
            Object::Int(i) => to.new_int(cpy, i),
            Object::Float(x) => to.new_float(cpy, x),
            Object::Str(s) => to.new_str(cpy, &s),
            Object::Bytes(b) => to.new_bytes(cpy, &b),
            Object::Tuple(items) | Object::List(items) => {
                let is_list = matches!(from.get(py, o)?, Object::List(_));
                let shell = if is_list {
                    to.new_list(cpy, &[])?
                } else {
                    ObjRef::NONE
                };
                if is_list {
                    self.memo.insert(o, shell);
                }
                let copies = items
                    .iter()
                    .map(|&i| self.copy(py, from, cpy, to, i))
                    .collect::<Result<Vec<_>, _>>()?;
                let made = if is_list {
                    for &c in &copies {
                        to.list_append(cpy, shell, c)?;
                    }
                    shell
                } else {
                    to.new_tuple(cpy, &copies)?
                };
                for c in copies {
                    to.decref(cpy, c)?;
                }
                made
            }
            Object::Dict(entries) => {
                if entries.missing != crate::heap::Missing::KeyError {
                    return Err(RtError::TypeError(
                        "cannot copy a Counter or defaultdict into a new process".into(),
                    ));
                }
                let d = to.new_dict(cpy);
                self.memo.insert(o, d);
                for (k, v) in entries.items {
                    let (k, v) = (
                        self.copy(py, from, cpy, to, k)?,
                        self.copy(py, from, cpy, to, v)?,
                    );
                    to.dict_set(cpy, d, k, v)?;
                    to.decref(cpy, k)?;
                    to.decref(cpy, v)?;
                }
                d
            }
            Object::Function {
                code,
                globals,
                name,
                defaults,
                kwdefaults,
                closure,
            } => {
                let g = self.copy(py, from, cpy, to, globals)?;
                let d = match defaults {
                    Some(d) => Some(self.copy(py, from, cpy, to, d)?),
                    None => None,
                };
                let kd = match kwdefaults {
                    Some(d) => Some(self.copy(py, from, cpy, to, d)?),
                    None => None,
                };
                let cl = match closure {
                    Some(d) => Some(self.copy(py, from, cpy, to, d)?),
                    None => None,
                };
                to.new_object(
                    cpy,
                    Object::Function {
                        code,
                        globals: g,
                        name,
                        defaults: d,
                        kwdefaults: kd,
                        closure: cl,
                    },
                )
            }
            Object::Code { index, name } => to.new_object(cpy, Object::Code { index, name }),
            Object::Lock(core) => {
                let st = core.state();
                let l = if core.is_reentrant() {
                    to.new_rlock(cpy)
                } else {
                    to.new_lock(cpy)
                };
                if st.held {
                    // A fork copies a held lock held (an RLock by the same owner, which is the
                    // forking thread's ident in the child only if it was the forking thread).
                    let c = to.lock_core(cpy, l)?;
                    let _ = c.try_acquire(st.owner);
                    c.restore(st.owner, st.count);
                }
                l
            }
            Object::Range { start, stop, step } => {
                to.new_object(cpy, Object::Range { start, stop, step })
            }
            Object::Slice { start, stop, step } => {
                to.new_object(cpy, Object::Slice { start, stop, step })
            }
            Object::Cell(v) => {
                let c = to.new_object(cpy, Object::Cell(None));
                self.memo.insert(o, c);
                if let Some(v) = v {
                    let x = self.copy(py, from, cpy, to, v)?;
                    to.update(cpy, c, |obj| {
                        *obj = Object::Cell(Some(x));
                        Ok(())
                    })?;
                }
                c
            }
            Object::Thread(t) => {
                // The child has none of the parent's threads: copies are thread objects that
                // never ran in it.
                to.new_object(
                    cpy,
                    Object::Thread(ThreadObj {
                        target: None,
                        args: None,
                        kwargs: None,
                        ident: None,
                        run: ThreadRun::Stopped,
                        class: None,
                        dict: None,
                        ..t
                    }),
                )
            }
            Object::Namespace { dict } => {
                let d = self.copy(py, from, cpy, to, dict)?;
                to.new_object(cpy, Object::Namespace { dict: d })
            }
            Object::Exception { class, message } => {
                to.new_object(cpy, Object::Exception { class, message })
            }
            Object::BoundMethod { func, receiver } => {
                let r = self.copy(py, from, cpy, to, receiver)?;
                to.new_object(cpy, Object::BoundMethod { func, receiver: r })
            }
            Object::Iter(_)
            | Object::DictView { .. }
            | Object::Deque { .. }
            | Object::Set { .. }
            | Object::Sync(_)
            | Object::Class { .. }
            | Object::Instance { .. }
            | Object::Method { .. }
            | Object::Property { .. }
            | Object::StaticMethod(_)
            | Object::ClassMethod(_)
            | Object::Super { .. }
            | Object::Generator(_)
            | Object::None
            | Object::Bool(_)
            | Object::Builtin(_) => {
                return Err(RtError::TypeError(
                    "cannot copy this object into a new process".into(),
                ));
            }
        };
        self.memo.insert(o, copied);
        Ok(copied)
    }
}
