//! The interpreter: frames, threads, and one instruction at a time (rules VM-1 … VM-4 of
//! `spec/bytecode.md`).
//!
//! [`step`] runs exactly one instruction of one thread while that thread holds the GIL (the token
//! in [`Cx`] proves it), and tells the caller whether a poll point follows (the policy's answer,
//! VM-5 … VM-8), whether the instruction is blocked (a blocking call released the GIL before it
//! could complete), or whether the thread has ended. What happens at a poll point or a block is
//! up to the driver: [`crate::vm::threaded`] polls the real GIL; the explorer
//! ([`crate::explore`]) chooses.
//!
//! Reference discipline (VM-2): every value on a stack or in a local owns one reference, as in
//! CPython. An instruction first *peeks* at its operands, computes, and only when that succeeded
//! pops them (decref) and pushes its result (a new reference). A failing instruction therefore
//! leaves the stack as it was, and unwinding releases every reference the frames hold.

use crate::RtError;
use crate::builtins::{Builtin, CallPoll};
use crate::heap::{GenFrame, GenObj, Heap, IterObj, ObjRef, Object, ThreadRun, View};
use crate::platform::Platform;
use crate::runtime::Token;
use crate::vm::code::{BinOp, CmpOp, Const, ExcEntry, Instr, Program};
use crate::vm::native;
use crate::vm::ops;
use crate::vm::policy::{Callee, Executed, Policy};

/// Why a blocked instruction waits (with the GIL released).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// For a `threading.Lock` held by another thread.
    Lock(ObjRef),
    /// For runtime thread `n` to finish (`Thread.join`).
    Join(u32),
    /// In `time.sleep`.
    Sleep,
}

/// The answer of a blocking host operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Done (on real threads, after blocking with the GIL released).
    Now,
    /// Not yet: the instruction must wait and run again once the wait is over.
    Block(Wait),
}

/// The answer of `lock.acquire`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    Acquired,
    /// A non-blocking acquire found the lock held.
    Busy,
    Block(Wait),
}

/// Everything an instruction needs from outside the heap: threads, locks, time, output. The
/// real-thread driver blocks inside these calls (with the GIL released) and always answers
/// `Now`/`Acquired`; the explorer answers `Block` and runs the instruction again later.
pub trait Host<P: Platform> {
    /// `Thread.start()` / `Process.start()`: runs the thread object's target on a new runtime
    /// thread; returns its ident.
    fn start(
        &mut self,
        py: Token<'_>,
        heap: &Heap<P>,
        thread: ObjRef,
        process: bool,
    ) -> Result<u32, RtError>;
    /// `join()` on the runtime thread `ident`.
    fn join(
        &mut self,
        py: Token<'_>,
        heap: &Heap<P>,
        ident: u32,
        process: bool,
    ) -> Result<Ready, RtError>;
    /// `lock.acquire(blocking)`.
    fn acquire(
        &mut self,
        py: Token<'_>,
        heap: &Heap<P>,
        lock: ObjRef,
        blocking: bool,
    ) -> Result<Acquire, RtError>;
    /// `lock.release()`.
    fn release(&mut self, py: Token<'_>, heap: &Heap<P>, lock: ObjRef) -> Result<(), RtError>;
    /// `time.sleep(seconds)`.
    fn sleep(&mut self, seconds: f64) -> Ready;
    /// `time.time()` / `time.perf_counter()`, in seconds.
    fn now(&mut self) -> f64;
    /// Writes program output (`print`), or an uncaught exception's report with `stderr`.
    fn print(&mut self, text: &str, stderr: bool);
    /// An uncaught exception ended the current thread; `text` is CPython's report of it.
    fn uncaught(&mut self, error: &RtError, text: &str) {
        let _ = error;
        self.print(text, true);
    }
    fn switch_interval(&mut self) -> f64;
    fn set_switch_interval(&mut self, seconds: f64) -> Result<(), RtError>;
    /// The name of the next `Thread-N` / `Process-N`.
    fn next_thread_name(&mut self, process: bool) -> String;
    /// Whether a daemon thread can be left behind when the program ends (not under loom or
    /// shuttle, whose executions end when every thread has).
    fn daemons(&self) -> bool {
        true
    }
}

/// Empties the `__class__` cells still alive when the image is gone (CO-8): a class, its
/// methods and their cell form a cycle that CPython's collector frees at shutdown and
/// gilcheck, which has no collector (RC-8), breaks here instead. Only that cycle is broken:
/// a cell of a function in a class's dict whose value is that class.
fn empty_class_cells<P: Platform>(py: Token<'_>, heap: &Heap<P>) -> Result<(), RtError> {
    for class in heap.live_objects(py) {
        // An earlier class's cycle may have freed this one.
        if !heap.is_live(py, class) {
            continue;
        }
        let Object::Class { dict, .. } = heap.get(py, class)? else {
            continue;
        };
        // The cells first, then the emptying: the last one may free the class and its dict.
        let mut cells = Vec::new();
        for (_, v) in heap.dict_entries(py, dict)? {
            let funcs = match heap.get(py, v)? {
                Object::StaticMethod(f) | Object::ClassMethod(f) => vec![f],
                Object::Property { fget, fset } => fget.into_iter().chain(fset).collect(),
                _ => vec![v],
            };
            for f in funcs {
                if let Object::Function {
                    closure: Some(tuple),
                    ..
                } = heap.get(py, f)?
                    && let Object::Tuple(items) = heap.get(py, tuple)?
                {
                    for cell in items {
                        if heap.with_object(
                            py,
                            cell,
                            |o| matches!(o, Object::Cell(Some(c)) if *c == class),
                        )? {
                            cells.push(cell);
                        }
                    }
                }
            }
        }
        cells.dedup();
        for cell in cells {
            if !heap.is_live(py, cell) {
                continue;
            }
            let taken = heap.update(py, cell, |o| match o {
                Object::Cell(c) if *c == Some(class) => Ok(c.take()),
                _ => Ok(None),
            })?;
            if let Some(c) = taken {
                heap.decref(py, c)?;
            }
        }
    }
    Ok(())
}

/// The constants of every code object and the module's globals, loaded into one runtime's heap.
/// The image owns one reference to each.
#[derive(Debug, Clone)]
pub struct Image {
    pub consts: Vec<Vec<ObjRef>>,
    pub globals: ObjRef,
    /// A function object for each library code object (`Code::library`), with its code's
    /// index: the Python code CPython's own library runs (VM-14).
    pub library: Vec<(u32, ObjRef)>,
}

impl Image {
    /// Allocates the program's constants and an empty module namespace (`__name__` only).
    pub fn load<P: Platform>(
        program: &Program,
        py: Token<'_>,
        heap: &Heap<P>,
    ) -> Result<Image, RtError> {
        let mut consts = Vec::with_capacity(program.codes.len());
        for code in &program.codes {
            let mut table = Vec::with_capacity(code.consts.len());
            for c in &code.consts {
                table.push(load_const(program, py, heap, c)?);
            }
            consts.push(table);
        }
        let globals = heap.new_dict(py);
        let main = heap.new_str(py, "__main__");
        heap.dict_set_str(py, globals, "__name__", main)?;
        heap.decref(py, main)?;
        let mut library = Vec::new();
        for (i, code) in program.codes.iter().enumerate().filter(|(_, c)| c.library) {
            // Its own module namespace, as `collections` has its own.
            let module = heap.new_dict(py);
            let f = heap.new_object(
                py,
                Object::Function {
                    code: i as u32,
                    globals: module,
                    name: code.name.as_str().into(),
                    defaults: None,
                    kwdefaults: None,
                    closure: None,
                },
            );
            library.push((i as u32, f));
        }
        Ok(Image {
            consts,
            globals,
            library,
        })
    }

    /// The function object of the library code object called `name`.
    pub fn library_function(&self, program: &Program, name: &str) -> Option<ObjRef> {
        self.library
            .iter()
            .find(|&&(i, _)| program.codes[i as usize].name == name)
            .map(|&(_, f)| f)
    }

    /// Releases the image's references: the module namespace is cleared first (CPython clears
    /// module dicts at shutdown, which breaks the function ↔ globals cycles), then dropped.
    pub fn release<P: Platform>(self, py: Token<'_>, heap: &Heap<P>) -> Result<(), RtError> {
        heap.dict_clear(py, self.globals)?;
        heap.decref(py, self.globals)?;
        for (_, f) in self.library {
            heap.decref(py, f)?;
        }
        for table in self.consts {
            for c in table {
                heap.decref(py, c)?;
            }
        }
        empty_class_cells(py, heap)
    }

    /// Every reference the image holds, for the refcount audit.
    pub fn roots(&self) -> impl Iterator<Item = ObjRef> + '_ {
        self.consts
            .iter()
            .flatten()
            .copied()
            .chain([self.globals])
            .chain(self.library.iter().map(|&(_, f)| f))
    }
}

fn load_const<P: Platform>(
    program: &Program,
    py: Token<'_>,
    heap: &Heap<P>,
    c: &Const,
) -> Result<ObjRef, RtError> {
    Ok(match c {
        Const::None => ObjRef::NONE,
        Const::Bool(b) => ObjRef::from_bool(*b),
        Const::Int(i) => heap.new_int(py, *i),
        Const::Float(x) => heap.new_float(py, *x),
        Const::Str(s) => heap.new_str(py, s),
        Const::Bytes(b) => heap.new_bytes(py, b),
        Const::Tuple(items) => {
            let refs = items
                .iter()
                .map(|c| load_const(program, py, heap, c))
                .collect::<Result<Vec<_>, _>>()?;
            let t = heap.new_tuple(py, &refs)?;
            for r in refs {
                heap.decref(py, r)?;
            }
            t
        }
        // Built as the compiler builds it, adding the items in order (the same layout).
        Const::FrozenSet(items) => {
            let refs = items
                .iter()
                .map(|c| load_const(program, py, heap, c))
                .collect::<Result<Vec<_>, _>>()?;
            let t = heap.new_set(py, &refs, true)?;
            for r in refs {
                heap.decref(py, r)?;
            }
            t
        }
        Const::Code(i) => heap.new_object(
            py,
            Object::Code {
                index: *i as u32,
                name: program.codes[*i].name.as_str().into(),
            },
        ),
    })
}

/// One activation of a code object.
#[derive(Debug, Clone)]
pub struct Frame {
    pub code: u32,
    pub pc: u32,
    /// `None` is CPython's NULL (pushed by `PUSH_NULL` / `LOAD_GLOBAL (NULL + …)`).
    pub stack: Vec<Option<ObjRef>>,
    pub locals: Vec<Option<ObjRef>>,
    /// The globals the code runs with (owned).
    pub globals: ObjRef,
    kw_names: Option<u32>,
    /// The generator whose frame this is, while it runs (borrowed: whoever resumed it holds a
    /// reference).
    pub generator: Option<ObjRef>,
    /// A built-in that consumes a generator for this frame's `CALL` (`sum(x for x in …)`),
    /// while the generator runs above it.
    pub pending: Option<Pending>,
    /// A class body's namespace (owned): where `LOAD_NAME`/`STORE_NAME` look first.
    pub namespace: Option<ObjRef>,
    /// What this frame's return completes in the frame below it.
    pub ret: Ret,
}

/// What a frame's `RETURN_VALUE` completes in the frame below it. A Python function that
/// CPython calls from inside an instruction (a property's getter, a dunder method, `__init__`)
/// runs as a frame of its own, with its own poll at `RESUME` (VM-13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// The `CALL` that pushed it (or the thread's start): the value is the call's result.
    Call,
    /// The instruction called it from inside (a getter, `__add__`, `__getitem__`, `__eq__`,
    /// `__enter__`): the value is the instruction's result.
    Inside(Instr),
    /// As `Inside`, but the value is dropped (a setter, `__setitem__`).
    Discard(Instr),
    /// C code called it for the `CALL` at `site` (a bound method in the call's method slot,
    /// `len()` calling `__len__`): the value is the call's result, and the call completes as
    /// a call of a C function.
    CCall { site: Instr },
    /// `__init__` of a class called by the `CALL` at `site`: the instance (owned) is the
    /// call's result; the value must be None.
    Init { instance: ObjRef, site: Instr },
    /// A key's Python `__hash__`, called by the dict operation `Instr` before it looks the key
    /// up: the value must be an int and is dropped, and the instruction runs again (VM-14).
    Hashed(Instr),
    /// A class body run by `__build_class__` for the `CALL` at `site`: the class is made from
    /// the frame's namespace with this name (owned, a str) and base (owned).
    Class {
        name: ObjRef,
        base: Option<ObjRef>,
        site: Instr,
    },
}

impl Ret {
    /// The references it owns.
    pub fn refs(&self) -> impl Iterator<Item = ObjRef> + '_ {
        let (a, b) = match *self {
            Ret::Init { instance, .. } => (Some(instance), None),
            Ret::Class { name, base, .. } => (Some(name), base),
            _ => (None, None),
        };
        a.into_iter().chain(b)
    }
}

/// A `CALL` of a built-in waiting on the generator it consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub argc: u32,
    pub builtin: Builtin,
    /// The running result (owned).
    pub acc: ObjRef,
}

impl Frame {
    /// The keyword names a `KW_NAMES` set for the coming `CALL` (a constant's index).
    pub fn kw_names(&self) -> Option<u32> {
        self.kw_names
    }

    fn refs(&self) -> impl Iterator<Item = ObjRef> + '_ {
        self.stack
            .iter()
            .chain(&self.locals)
            .flatten()
            .copied()
            .chain([self.globals])
            .chain(self.pending.map(|p| p.acc))
            .chain(self.namespace)
            .chain(self.ret.refs())
    }
}

/// A runtime thread as the interpreter sees it: its frames, or the call that will start it.
#[derive(Debug, Clone)]
pub struct PyThread {
    pub ident: u32,
    pub name: String,
    pub frames: Vec<Frame>,
    /// Before the first step: the target and the argument tuple (owned).
    pub start: Option<(ObjRef, ObjRef)>,
    /// The `Thread` object it runs for (owned), told when the run ends.
    pub thread_obj: Option<ObjRef>,
    /// A wait in a Condition, Semaphore or Event under way (LOCK-6): the instruction that
    /// called it runs again until the wait is over.
    pub sync: Option<SyncWait>,
    /// The instruction of the top frame has called its key's Python `__hash__`, which has
    /// returned: when it runs again it goes on with the dict operation (VM-14).
    pub hash_done: bool,
    /// A daemon thread (`Thread(daemon=True)`): the program ends without waiting for it
    /// (VM-11).
    pub daemon: bool,
    /// The exception being handled (`sys.exception()`, owned), set by `PUSH_EXC_INFO` and
    /// restored by `POP_EXCEPT` (CO-6).
    pub exc_info: Option<ObjRef>,
    /// An instance of an exception class statement being raised (owned), from the raising
    /// instruction to its handler, which gets this very object (`RtError::Instance`).
    pub raised: Option<ObjRef>,
    /// `RERAISE n`: the instruction that first raised (its `lasti`), which CPython restores as
    /// the frame's last instruction: the next handler gets it as its `lasti`, and a report
    /// names its line. Set and used within one step.
    pub reraise_lasti: Option<u32>,
}

/// Where a thread is in a wait on a `threading.Condition`, `Semaphore` or `Event` (LOCK-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncWait {
    /// The held Lock the thread blocks on (a reference it owns); a notify, release or set
    /// releases it.
    pub waiter: ObjRef,
    /// `Condition.wait`: how many times the thread held the condition's lock before it let go.
    pub saved: u32,
    /// `Condition.wait`: the waiter has been released and the thread is taking the condition's
    /// lock back.
    pub reacquiring: bool,
}

impl PyThread {
    /// The main thread, about to run the module body.
    pub fn main<P: Platform>(
        program: &Program,
        image: &Image,
        py: Token<'_>,
        heap: &Heap<P>,
    ) -> Result<PyThread, RtError> {
        heap.incref(py, image.globals)?;
        let module = program.module();
        Ok(PyThread {
            ident: 0,
            name: "MainThread".into(),
            frames: vec![Frame {
                code: 0,
                pc: 0,
                stack: Vec::new(),
                locals: vec![None; module.varnames.len()],
                globals: image.globals,
                kw_names: None,
                generator: None,
                pending: None,
                namespace: None,
                ret: Ret::Call,
            }],
            start: None,
            thread_obj: None,
            sync: None,
            hash_done: false,
            daemon: false,
            exc_info: None,
            raised: None,
            reraise_lasti: None,
        })
    }

    /// A thread that will run `thread_obj`'s target with its args; takes new references.
    pub fn for_thread_object<P: Platform>(
        ident: u32,
        py: Token<'_>,
        heap: &Heap<P>,
        thread_obj: ObjRef,
    ) -> Result<PyThread, RtError> {
        let Object::Thread(t) = heap.get(py, thread_obj)? else {
            return Err(RtError::TypeError("start() needs a thread object".into()));
        };
        // What `Thread.run` is: a subclass's own `run(self)`, or Thread's, which calls the
        // target (none: a run that does nothing, `None` here).
        let (target, args) = match overridden_run(heap, py, thread_obj)? {
            Some(run) => {
                heap.incref(py, run)?;
                (run, heap.new_tuple(py, &[thread_obj])?)
            }
            None => match (t.target, t.args) {
                (Some(target), Some(args)) => {
                    heap.incref(py, target)?;
                    heap.incref(py, args)?;
                    (target, args)
                }
                _ => (ObjRef::NONE, heap.new_tuple(py, &[])?),
            },
        };
        heap.incref(py, thread_obj)?;
        // The step tables' name: `Thread-1`, without 3.10's ` (target)`.
        let short = t.name.split(" (").next().unwrap_or(&t.name).to_string();
        let daemon = t.daemon;
        Ok(PyThread {
            ident,
            name: short,
            frames: Vec::new(),
            start: Some((target, args)),
            thread_obj: Some(thread_obj),
            sync: None,
            hash_done: false,
            daemon,
            exc_info: None,
            raised: None,
            reraise_lasti: None,
        })
    }

    /// A thread that calls `target(*args)` with no thread object (a process's main); takes over
    /// the two references.
    pub fn for_call(ident: u32, name: String, target: ObjRef, args: ObjRef) -> PyThread {
        PyThread {
            ident,
            name,
            frames: Vec::new(),
            start: Some((target, args)),
            thread_obj: None,
            sync: None,
            hash_done: false,
            daemon: false,
            exc_info: None,
            raised: None,
            reraise_lasti: None,
        }
    }

    /// Every reference the thread holds, for the refcount audit.
    pub fn roots(&self) -> Vec<ObjRef> {
        let mut r: Vec<ObjRef> = self.frames.iter().flat_map(Frame::refs).collect();
        if let Some((t, a)) = self.start {
            r.extend([t, a]);
        }
        r.extend(self.thread_obj);
        r.extend(self.sync.map(|w| w.waiter));
        r.extend(self.exc_info);
        r.extend(self.raised);
        r
    }

    /// Where the thread is: (code index, instruction index) of its top frame.
    pub fn location(&self) -> Option<(u32, u32)> {
        self.frames.last().map(|f| (f.code, f.pc))
    }
}

/// What one call of [`step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The instruction completed; `poll` is the policy's reason when a poll point follows.
    Ran { poll: Option<&'static str> },
    /// The instruction could not complete: the thread waits with the GIL released, and will run
    /// the same instruction again once the wait is over.
    Blocked(Wait),
    /// The thread ended (its last frame returned, or an exception ended it).
    Finished,
}

/// Deliberate defects of the interpreter, used only by the broken twins of the checks. All
/// `false` in a correct VM; each names the rule its twin must violate.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmFaults {
    /// Breaks VM-2: `LOAD_FAST` pushes a local without increfing it.
    pub load_fast_without_incref: bool,
    /// Breaks VM-2: `STORE_FAST` overwrites a local without decrefing the old value (a leak).
    pub store_fast_without_decref: bool,
}

/// A rule violation that ends the execution (as opposed to a Python exception, which ends only
/// the thread that raised it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault(pub RtError);

/// The interpreter's view of the world for one step.
pub struct Cx<'a, 'py, P: Platform> {
    pub program: &'a Program,
    pub policy: Policy,
    pub image: &'a Image,
    pub py: Token<'py>,
    pub heap: &'a Heap<P>,
    pub host: &'a mut dyn Host<P>,
    /// When `Some`, the step describes what it read or wrote here (for step tables).
    pub effect: Option<String>,
    pub faults: VmFaults,
}

/// Records a step's effect when a step table is being made (the text is only built then).
macro_rules! note {
    ($cx:expr, $text:expr) => {
        if $cx.effect.is_some() {
            let text: String = $text;
            $cx.effect = Some(text);
        }
    };
}
pub(crate) use note;

impl<P: Platform> Cx<'_, '_, P> {
    /// A short text for a value in a step table: its repr, cut at 40 characters.
    fn show(&self, o: ObjRef) -> String {
        let r = self
            .heap
            .repr(self.py, o)
            .unwrap_or_else(|_| "<freed>".into());
        if r.chars().count() > 40 {
            format!("{}…", r.chars().take(39).collect::<String>())
        } else {
            r
        }
    }

    /// A lock's name in the running frame's globals, when a step table is being made.
    pub(crate) fn name_of_lock(&self, lock: ObjRef) -> String {
        if self.effect.is_some() {
            self.name_of(self.image.globals, lock)
        } else {
            String::new()
        }
    }

    /// The name of `o` in `globals`, or its repr.
    fn name_of(&self, globals: ObjRef, o: ObjRef) -> String {
        global_name(self.heap, self.py, globals, o).unwrap_or_else(|| self.show(o))
    }
}

/// The first name in the dict `globals` whose value is `o` (for step tables and reports).
pub fn global_name<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    globals: ObjRef,
    o: ObjRef,
) -> Option<String> {
    let key = heap
        .with_object(py, globals, |g| match g {
            Object::Dict(d) => d.iter().find(|&&(_, v)| v == o).map(|&(k, _)| k),
            _ => None,
        })
        .ok()??;
    ops::to_str(heap, py, key).ok()
}

/// The module's globals as (name, repr), in definition order, `__name__` left out: the state
/// part of an outcome (EX-4).
pub fn module_state<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    globals: ObjRef,
) -> Vec<(String, String)> {
    let Ok(Object::Dict(entries)) = heap.get(py, globals) else {
        return Vec::new();
    };
    entries
        .items
        .into_iter()
        .filter_map(|(k, v)| match heap.get(py, k).ok()? {
            Object::Str(s) if &*s != "__name__" => Some((
                s.to_string(),
                heap.repr(py, v).unwrap_or_else(|e| format!("<{e}>")),
            )),
            _ => None,
        })
        .collect()
}

/// The description of the instruction at `(code, pc)` as a step table prints it.
pub fn describe(program: &Program, code: u32, pc: u32) -> String {
    let c = &program.codes[code as usize];
    let ins = c.instrs[pc as usize];
    let arg = c.arg_repr(program, pc as usize);
    match (ins.arg(), arg.is_empty()) {
        (None, _) => ins.name().to_string(),
        (Some(a), true) => format!("{} {a}", ins.name()),
        (Some(a), false) => format!("{} {a} ({arg})", ins.name()),
    }
}

/// Runs one instruction of `t` (or its start call). Python exceptions end the thread (reported
/// through the host); rule violations are returned as a [`Fault`].
pub fn step<P: Platform>(t: &mut PyThread, cx: &mut Cx<'_, '_, P>) -> Result<Step, Fault> {
    let result = if t.start.is_some() {
        start_call(t, cx)
    } else {
        run_instruction(t, cx)
    };
    match result {
        Ok(s) => {
            if matches!(s, Step::Finished) {
                finish(t, cx).map_err(Fault)?;
            }
            Ok(s)
        }
        Err(e) if e.ends_execution() => Err(Fault(e)),
        Err(e) if let Some((k, entry, pc)) = handler_frame(t, cx.program) => {
            let (class, message) = e.exception().expect("a Python exception");
            let exc = match (&e, t.raised.take()) {
                (RtError::Instance { .. }, Some(obj)) => obj,
                (_, stale) => {
                    if let Some(s) = stale {
                        cx.heap.decref(cx.py, s).map_err(Fault)?;
                    }
                    cx.heap.new_object(
                        cx.py,
                        Object::Exception {
                            class,
                            message: message.into(),
                        },
                    )
                }
            };
            // The raising instruction, as the handler's `lasti`: after `RERAISE n`, the one it
            // restored (only for the frame that re-raised).
            let lasti = match t.reraise_lasti.take() {
                Some(l) if k + 1 == t.frames.len() => l,
                _ => pc,
            };
            unwind_to_handler(t, cx, k, entry, lasti, exc).map_err(Fault)?;
            let code = &cx.program.codes[t.frames[k].code as usize];
            note!(
                cx,
                format!(
                    "raises {e}; handler at {} in {}",
                    entry.target * 2,
                    code.name
                )
            );
            Ok(Step::Ran {
                poll: cx.policy.after_unwind(),
            })
        }
        Err(e) => {
            report_exception(t, cx, &e);
            unwind(t, cx).map_err(Fault)?;
            finish(t, cx).map_err(Fault)?;
            note!(cx, format!("raises {e}"));
            Ok(Step::Finished)
        }
    }
}

/// The thread's first step: `target(*args)`, as `Thread.run` does.
fn start_call<P: Platform>(t: &mut PyThread, cx: &mut Cx<'_, '_, P>) -> Result<Step, RtError> {
    let (target, args) = t.start.expect("checked by the caller");
    if target == ObjRef::NONE {
        // A thread with no target and no `run` of its own: Thread.run does nothing.
        t.start = None;
        cx.heap.decref(cx.py, args)?;
        return Ok(Step::Finished);
    }
    let items = match cx.heap.get(cx.py, args)? {
        Object::Tuple(v) | Object::List(v) => v,
        other => {
            return Err(RtError::TypeError(format!(
                "args must be a tuple, not {}",
                other.type_name()
            )));
        }
    };
    // `kwargs=` of the thread object: `target(*args, **kwargs)`, as `Thread.run` calls it.
    let kwdict = match t.thread_obj {
        Some(obj) => match cx.heap.get(cx.py, obj)? {
            Object::Thread(th) if th.target == Some(target) => th.kwargs,
            _ => None,
        },
        None => None,
    };
    let mut kwargs = Vec::new();
    if let Some(d) = kwdict {
        for (k, v) in cx.heap.dict_entries(cx.py, d)? {
            match cx.heap.get(cx.py, k)? {
                Object::Str(s) => kwargs.push((s.to_string(), v)),
                _ => return Err(RtError::TypeError("keywords must be strings".into())),
            }
        }
    }
    let site = Instr::Call((items.len() + kwargs.len()) as u32);
    let callee = match invoke(t, cx, target, None, &items, &kwargs, site)? {
        Invoked::Blocked(w) => return Ok(Step::Blocked(w)),
        Invoked::Consume { acc, .. } => {
            cx.heap.decref(cx.py, acc)?;
            return Err(RtError::Unsupported(
                "gilcheck cannot start a thread on a built-in that consumes a generator".into(),
            ));
        }
        Invoked::Pushed => Callee::Python,
        Invoked::Returned(r, poll) => {
            cx.heap.decref(cx.py, r)?;
            Callee::Native(poll)
        }
    };
    t.start = None;
    cx.heap.decref(cx.py, target)?;
    cx.heap.decref(cx.py, args)?;
    if t.frames.is_empty() {
        return Ok(Step::Finished);
    }
    let e = Executed {
        callee: Some(callee),
        ..Executed::plain(site, None)
    };
    Ok(finish_executed(t, cx, e))
}

/// The `run` a subclass of threading.Thread defines (borrowed), if any (CO-8).
fn overridden_run<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    thread_obj: ObjRef,
) -> Result<Option<ObjRef>, RtError> {
    let Some(class) = heap.class_of(py, thread_obj)? else {
        return Ok(None);
    };
    match heap.class_lookup(py, class, "run")? {
        Some(f) if matches!(heap.get(py, f)?, Object::Function { .. }) => Ok(Some(f)),
        Some(_) => Err(RtError::Unsupported(
            "a Thread subclass whose run is not a plain function".into(),
        )),
        None => Ok(None),
    }
}

/// When the thread ends: tell its thread object (which drops its target and args, as CPython's
/// `Thread.run` does in its `finally`) and drop the thread's reference to it.
fn finish<P: Platform>(t: &mut PyThread, cx: &mut Cx<'_, '_, P>) -> Result<(), RtError> {
    if let Some((target, args)) = t.start.take() {
        cx.heap.decref(cx.py, target)?;
        cx.heap.decref(cx.py, args)?;
    }
    if let Some(obj) = t.thread_obj.take() {
        // A subclass's own `run` leaves them: only Thread.run's `finally` deletes them.
        let keep = overridden_run(cx.heap, cx.py, obj)?.is_some();
        let (target, args, kwargs) = cx.heap.update(cx.py, obj, |o| match o {
            Object::Thread(th) if keep => {
                th.run = ThreadRun::Stopped;
                Ok((None, None, None))
            }
            Object::Thread(th) => {
                th.run = ThreadRun::Stopped;
                Ok((th.target.take(), th.args.take(), th.kwargs.take()))
            }
            _ => Ok((None, None, None)),
        })?;
        for r in target.into_iter().chain(args).chain(kwargs) {
            cx.heap.decref(cx.py, r)?;
        }
        cx.heap.decref(cx.py, obj)?;
    }
    Ok(())
}

/// Releases every reference held by the thread's frames, innermost first.
fn unwind<P: Platform>(t: &mut PyThread, cx: &mut Cx<'_, '_, P>) -> Result<(), RtError> {
    while let Some(f) = t.frames.pop() {
        discard_frame(f, cx)?;
    }
    t.hash_done = false;
    t.reraise_lasti = None;
    for e in [t.exc_info.take(), t.raised.take()].into_iter().flatten() {
        cx.heap.decref(cx.py, e)?;
    }
    Ok(())
}

/// A frame an exception leaves: its references go, a generator it ran is finished, and a
/// built-in consuming a generator for it drops its running result.
fn discard_frame<P: Platform>(mut f: Frame, cx: &Cx<'_, '_, P>) -> Result<(), RtError> {
    if let Some(g) = f.generator {
        cx.heap.update(cx.py, g, |o| {
            if let Object::Generator(g) = o {
                g.running = false;
                g.frame = None;
            }
            Ok(())
        })?;
    }
    if let Some(p) = f.pending.take() {
        cx.heap.decref(cx.py, p.acc)?;
    }
    drop_frame(f, cx)
}

/// The instruction frame `k` of `t` is running: the top frame's own, or for a frame below
/// another the instruction that made the frame above (`f.pc - 1` once a `CALL` or an
/// instruction calling a Python function from inside has moved on; `f.pc` itself where the
/// instruction runs again or stays in progress: a generator it resumes, a consuming
/// built-in, a key's `__hash__`).
fn running_pc(t: &PyThread, k: usize) -> u32 {
    let f = &t.frames[k];
    match t.frames.get(k + 1) {
        None => f.pc,
        Some(above)
            if above.generator.is_some()
                || f.pending.is_some()
                || matches!(above.ret, Ret::Hashed(_)) =>
        {
            f.pc
        }
        Some(_) => f.pc.saturating_sub(1),
    }
}

/// CO-6: the innermost frame whose exception table has a handler for the instruction it is
/// running, with the entry and that instruction.
fn handler_frame(t: &PyThread, program: &Program) -> Option<(usize, ExcEntry, u32)> {
    (0..t.frames.len()).rev().find_map(|k| {
        let pc = running_pc(t, k);
        program.codes[t.frames[k].code as usize]
            .handler_at(pc)
            .map(|e| (k, e, pc))
    })
}

/// CO-6: 3.11's `exception_unwind`: the frames above `k` go, frame `k`'s stack is cut to the
/// entry's depth, the raising instruction's index (with `lasti`) and the exception `exc`
/// (owned) are pushed, and the frame goes on at the handler.
fn unwind_to_handler<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    k: usize,
    entry: ExcEntry,
    pc: u32,
    exc: ObjRef,
) -> Result<(), RtError> {
    while t.frames.len() > k + 1 {
        let f = t.frames.pop().expect("above k");
        discard_frame(f, cx)?;
    }
    t.hash_done = false;
    let f = &mut t.frames[k];
    if let Some(p) = f.pending.take() {
        cx.heap.decref(cx.py, p.acc)?;
    }
    while f.stack.len() > entry.depth as usize {
        if let Some(r) = f.stack.pop().flatten() {
            cx.heap.decref(cx.py, r)?;
        }
    }
    if entry.lasti {
        let lasti = cx.heap.new_int(cx.py, i64::from(pc));
        f.stack.push(Some(lasti));
    }
    f.stack.push(Some(exc));
    f.pc = entry.target;
    f.kw_names = None;
    Ok(())
}

/// CPython's `UnboundLocalError` for local `name` (gilcheck's NameError with its wording).
fn unbound_local(name: &str) -> RtError {
    RtError::NameError(format!(
        "cannot access local variable '{name}' where it is not associated with a value"
    ))
}

/// The error that raising exception object `exc` (borrowed) is (`RAISE_VARARGS`, `RERAISE`, a
/// bare `raise`); an instance of an exception class statement is kept in `t.raised` for its
/// handler.
fn reraised<P: Platform>(
    t: &mut PyThread,
    cx: &Cx<'_, '_, P>,
    exc: ObjRef,
) -> Result<RtError, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    match heap.get(py, exc)? {
        Object::Exception { class, message } => Ok(RtError::raised(class, message.to_string())),
        Object::Builtin(b) if b.is_exception() => Ok(RtError::raised(b, String::new())),
        Object::Instance { class, .. } if let Some(base) = heap.exception_base(py, class)? => {
            let message = heap.exception_text(py, exc)?.unwrap_or_default();
            heap.incref(py, exc)?;
            if let Some(old) = t.raised.replace(exc) {
                heap.decref(py, old)?;
            }
            Ok(RtError::Instance {
                base,
                name: class_name(heap, py, class)?,
                message,
            })
        }
        Object::Class { .. } if heap.exception_base(py, exc)?.is_some() => {
            Err(RtError::Unsupported(
                "raise of an exception class statement's class without calling it (write E())"
                    .into(),
            ))
        }
        other => Err(RtError::TypeError(format!(
            "exceptions must derive from BaseException, not {}",
            other.type_name()
        ))),
    }
}

/// Whether exception `exc` matches `except` clause type `ty` (a class or a tuple of classes).
fn exception_matches<P: Platform>(
    cx: &Cx<'_, '_, P>,
    exc: ObjRef,
    ty: ObjRef,
) -> Result<bool, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    // The exception's built-in class, and for an instance of a class statement its class.
    let (class, own) = match heap.get(py, exc)? {
        Object::Exception { class, .. } => (class, None),
        Object::Instance { class, .. } => match heap.exception_base(py, class)? {
            Some(base) => (base, Some(class)),
            None => return Ok(false),
        },
        _ => return Ok(false),
    };
    let classes = match heap.get(py, ty)? {
        Object::Tuple(items) => items,
        _ => vec![ty],
    };
    let mut found = false;
    for c in classes {
        match heap.get(py, c)? {
            Object::Builtin(b) if b.is_exception() => found |= class.is_exception_subclass(b),
            Object::Class { .. } if heap.exception_base(py, c)?.is_some() => {
                if let Some(own) = own {
                    found |= heap.derives_from(py, own, c)?;
                }
            }
            _ => {
                return Err(RtError::TypeError(
                    "catching classes that do not inherit from BaseException is not allowed".into(),
                ));
            }
        }
    }
    Ok(found)
}

fn drop_frame<P: Platform>(f: Frame, cx: &Cx<'_, '_, P>) -> Result<(), RtError> {
    let owned: Vec<ObjRef> = f.ret.refs().chain(f.namespace).collect();
    for r in f.stack.into_iter().chain(f.locals).flatten().chain(owned) {
        cx.heap.decref(cx.py, r)?;
    }
    cx.heap.decref(cx.py, f.globals)
}

/// CPython's report of an uncaught exception: `threading.excepthook` for threads, the traceback
/// for the main thread: each frame's place and its source line, as 3.8–3.10 print them (3.11+
/// add `^^^` under the failing expression, which gilcheck does not; the frames of
/// `threading.py` above a thread's target are left out).
fn report_exception<P: Platform>(t: &PyThread, cx: &mut Cx<'_, '_, P>, e: &RtError) {
    let mut text = String::new();
    if t.ident != 0 {
        // The thread object's name (`Thread-1 (work)` since 3.10), as `threading.excepthook`.
        let name = t
            .thread_obj
            .and_then(|o| match cx.heap.get(cx.py, o) {
                Ok(Object::Thread(th)) => Some(th.name.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| t.name.clone());
        text.push_str(&format!("Exception in thread {name}:\n"));
    }
    text.push_str("Traceback (most recent call last):\n");
    let top = t.frames.len().saturating_sub(1);
    for (k, f) in t.frames.iter().enumerate() {
        let code = &cx.program.codes[f.code as usize];
        // A re-raise reports where the exception was first raised (CPython's `lasti`).
        let pc = match t.reraise_lasti {
            Some(l) if k == top => l,
            _ => f.pc,
        };
        let line = code.lines.get(pc as usize).copied().unwrap_or(0);
        text.push_str(&format!(
            "  File \"{}.py\", line {line}, in {}\n",
            cx.program.name, code.name
        ));
        let source = cx.program.source_line(line);
        if !code.library && !source.is_empty() {
            text.push_str(&format!("    {source}\n"));
        }
    }
    text.push_str(&e.to_string());
    cx.host.uncaught(e, &text);
}

fn frame(t: &mut PyThread) -> &mut Frame {
    t.frames.last_mut().expect("a running thread has a frame")
}

fn peek(f: &Frame, n: usize) -> Result<ObjRef, RtError> {
    f.stack[f.stack.len() - n]
        .ok_or_else(|| RtError::TypeError("NULL where a value was expected".into()))
}

/// Pops `n` values and releases their references.
fn pop_n<P: Platform>(f: &mut Frame, cx: &Cx<'_, '_, P>, n: usize) -> Result<(), RtError> {
    for r in f
        .stack
        .drain(f.stack.len() - n..)
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
    {
        cx.heap.decref(cx.py, r)?;
    }
    Ok(())
}

/// How a call went.
enum Invoked {
    /// A Python frame was pushed.
    Pushed,
    /// A built-in returned this new reference; how 3.11+ polls after it.
    Returned(ObjRef, CallPoll),
    Blocked(Wait),
    /// A built-in consumes a generator (see [`native::Outcome::Consume`]).
    Consume {
        genobj: ObjRef,
        acc: ObjRef,
        builtin: Builtin,
    },
}

/// Calls `callable` with borrowed `args` (and `receiver` first, for a method) for the `CALL`
/// at `site`; the callee takes its own references.
fn invoke<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    callable: ObjRef,
    receiver: Option<ObjRef>,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
    site: Instr,
) -> Result<Invoked, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    match heap.get(py, callable)? {
        Object::Function { .. } => {
            push_function(t, cx, callable, receiver, args, kwargs, Ret::Call, None)?;
            Ok(Invoked::Pushed)
        }
        Object::Builtin(Builtin::BuildClass) => build_class(t, cx, receiver, args, kwargs, site),
        Object::Builtin(Builtin::Len)
            if receiver.is_none() && args.len() == 1 && kwargs.is_empty() =>
        {
            match dunder(cx, args[0], "__len__")? {
                Some(f) => {
                    push_function(t, cx, f, Some(args[0]), &[], &[], Ret::CCall { site }, None)?;
                    Ok(Invoked::Pushed)
                }
                None => native_call(t, cx, Builtin::Len, None, args, kwargs),
            }
        }
        Object::Builtin(b) => native_call(t, cx, b, receiver, args, kwargs),
        Object::BoundMethod { func, receiver: r } => {
            // A bound method in 3.11's method slot: the "self" slot holds its first argument.
            let all: Vec<ObjRef> = receiver.into_iter().chain(args.iter().copied()).collect();
            native_call(t, cx, func, Some(r), &all, kwargs)
        }
        Object::Method { func, receiver: r } => {
            // 3.11's CALL unpacks a bound method whose method slot is NULL and runs the
            // function inline; one in the method slot (the `__exit__` a `with` calls) goes
            // through C code, and the call completes as a C call's does.
            let ret = match receiver {
                None => Ret::Call,
                Some(_) => Ret::CCall { site },
            };
            let all: Vec<ObjRef> = receiver.into_iter().chain(args.iter().copied()).collect();
            if !matches!(heap.get(py, func)?, Object::Function { .. }) {
                return Err(RtError::TypeError(
                    "gilcheck binds only Python functions as methods".into(),
                ));
            }
            push_function(t, cx, func, Some(r), &all, kwargs, ret, None)?;
            Ok(Invoked::Pushed)
        }
        Object::Class { .. } => instantiate(t, cx, callable, receiver, args, kwargs, site),
        other => Err(RtError::TypeError(format!(
            "'{}' object is not callable",
            other.type_name()
        ))),
    }
}

/// Pushes a frame running the Python function `callable` (borrowed) with `receiver` and `args`
/// bound to its parameters as CPython 3.11's `initialize_locals` binds them; the frame takes
/// its own references. `ret` says what its return completes.
#[allow(clippy::too_many_arguments)]
fn push_function<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    callable: ObjRef,
    receiver: Option<ObjRef>,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
    ret: Ret,
    namespace: Option<ObjRef>,
) -> Result<(), RtError> {
    let (py, heap) = (cx.py, cx.heap);
    let Object::Function {
        code,
        globals,
        name,
        defaults,
        kwdefaults,
        closure,
    } = heap.get(py, callable)?
    else {
        return Err(RtError::TypeError(format!(
            "'{}' object is not callable",
            heap.type_name_of(py, callable)?
        )));
    };
    let c = &cx.program.codes[code as usize];
    // CPython 3.11's `initialize_locals`: positional arguments, then keywords, then
    // the count of positionals, then the missing ones, each with CPython's message.
    let all: Vec<ObjRef> = receiver.into_iter().chain(args.iter().copied()).collect();
    let argcount = c.argcount as usize;
    let mut locals = vec![None; c.nlocalsplus()];
    for (i, &a) in all.iter().take(argcount).enumerate() {
        locals[i] = Some(a);
    }
    // CO-7: the closure's cells fill the last slots (3.11's COPY_FREE_VARS, done here).
    if let Some(cl) = closure
        && let Object::Tuple(cells) = heap.get(py, cl)?
    {
        let first = locals.len() - cells.len();
        for (i, cell) in cells.into_iter().enumerate() {
            locals[first + i] = Some(cell);
        }
    }
    // `*args` and `**kwargs` (CO_VARARGS, CO_VARKEYWORDS): what the named parameters do not
    // take, as a new tuple and a new dict in the varnames after them.
    // Keyword-only parameters follow the positional ones (3.11's co_varnames order).
    let named = argcount + c.kwonlyargcount as usize;
    let extra_kw: Vec<(String, ObjRef)> = kwargs
        .iter()
        .filter(|(k, _)| !c.varnames[..named].contains(k))
        .cloned()
        .collect();
    for (k, v) in kwargs {
        match c.varnames[..named].iter().position(|n| n == k) {
            Some(i) if locals[i].is_none() => locals[i] = Some(*v),
            Some(_) => {
                return Err(RtError::TypeError(format!(
                    "{name}() got multiple values for argument '{k}'"
                )));
            }
            None if c.varkeywords => {}
            None => {
                return Err(RtError::TypeError(format!(
                    "{name}() got an unexpected keyword argument '{k}'"
                )));
            }
        }
    }
    let mut made = Vec::new();
    if c.varargs {
        let rest = all.get(argcount..).unwrap_or(&[]);
        let tuple = heap.new_tuple(py, rest)?;
        locals[named] = Some(tuple);
        made.push(tuple);
    }
    if c.varkeywords {
        let dict = heap.new_dict(py);
        made.push(dict);
        for (k, v) in &extra_kw {
            if let Err(e) = heap.dict_set_str(py, dict, k, *v) {
                for m in made {
                    heap.decref(py, m)?;
                }
                return Err(e);
            }
        }
        locals[named + usize::from(c.varargs)] = Some(dict);
    }
    let release_made = |made: Vec<ObjRef>| -> Result<(), RtError> {
        for m in made {
            heap.decref(py, m)?;
        }
        Ok(())
    };
    let default_values = match defaults {
        Some(d) => match heap.get(py, d)? {
            Object::Tuple(v) => v,
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    if all.len() > argcount && !c.varargs {
        release_made(made)?;
        let given = all.len();
        let least = argcount.saturating_sub(default_values.len());
        let takes = if least < argcount {
            format!("from {least} to {argcount} positional arguments")
        } else {
            format!(
                "{argcount} positional argument{}",
                if argcount == 1 { "" } else { "s" }
            )
        };
        return Err(RtError::TypeError(format!(
            "{name}() takes {takes} but {given} {} given",
            if given == 1 { "was" } else { "were" }
        )));
    }
    // Then the defaults fill the last parameters still unbound.
    {
        let values = &default_values;
        let first = argcount.saturating_sub(values.len());
        for (i, &v) in values.iter().enumerate() {
            if let Some(slot) = locals.get_mut(first + i)
                && slot.is_none()
                && first + i < argcount
            {
                *slot = Some(v);
            }
        }
    }
    // Keyword-only defaults, from the function's dict of them.
    if let Some(kd) = kwdefaults {
        for (slot, var) in locals[argcount..named]
            .iter_mut()
            .zip(&c.varnames[argcount..named])
        {
            if slot.is_none() {
                *slot = heap.dict_get_str(py, kd, var)?;
                if let Some(v) = *slot {
                    heap.decref(py, v)?; // borrowed, like the other arguments
                }
            }
        }
    }
    let missing_kw: Vec<String> = (argcount..named)
        .filter(|&i| locals[i].is_none())
        .map(|i| format!("'{}'", c.varnames[i]))
        .collect();
    let missing: Vec<String> = (0..argcount)
        .filter(|&i| locals[i].is_none())
        .map(|i| format!("'{}'", c.varnames[i]))
        .collect();
    // Positional ones first, as CPython's `missing_arguments` reports them.
    for (names, kind) in [(&missing, "positional"), (&missing_kw, "keyword-only")] {
        if let Some((last, rest)) = names.split_last() {
            release_made(made)?;
            let list = match rest {
                [] => last.clone(),
                [a] => format!("{a} and {last}"),
                _ => format!("{}, and {last}", rest.join(", ")),
            };
            return Err(RtError::TypeError(format!(
                "{name}() missing {} required {kind} argument{}: {list}",
                names.len(),
                if names.len() == 1 { "" } else { "s" }
            )));
        }
    }
    for r in locals.iter().flatten().copied().chain([globals]) {
        heap.incref(py, r)?;
    }
    // The frame's own references to the new tuple and dict replace the ones they were made with.
    release_made(made)?;
    t.frames.push(Frame {
        code,
        pc: 0,
        stack: Vec::new(),
        locals,
        globals,
        kw_names: None,
        generator: None,
        pending: None,
        namespace,
        ret,
    });
    note!(cx, format!("call {name}()"));
    Ok(())
}

/// A Python dunder method of an instance's class (borrowed), if it has one.
fn dunder<P: Platform>(
    cx: &Cx<'_, '_, P>,
    obj: ObjRef,
    name: &str,
) -> Result<Option<ObjRef>, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    let Some(class) = heap.class_of(py, obj)? else {
        return Ok(None);
    };
    match heap.class_lookup(py, class, name)? {
        Some(f) if matches!(heap.get(py, f)?, Object::Function { .. }) => Ok(Some(f)),
        Some(_) => Err(RtError::Unsupported(format!(
            "gilcheck calls {name} only when it is a plain function of the class"
        ))),
        None => Ok(None),
    }
}

/// Calling a class: a new instance, then its `__init__` (a frame of its own) when the class
/// has one.
fn instantiate<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    class: ObjRef,
    receiver: Option<ObjRef>,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
    site: Instr,
) -> Result<Invoked, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    let all: Vec<ObjRef> = receiver.into_iter().chain(args.iter().copied()).collect();
    let init = heap.class_lookup(py, class, "__init__")?;
    let base = heap.native_base(py, class)?;
    let dict = heap.new_dict(py);
    heap.incref(py, class)?;
    // A class deriving from `threading.Thread` makes a thread object with the class and an
    // attribute dict (CO-8); its own `__init__` must call `Thread.__init__`, as in CPython.
    let thread = base == Some(Builtin::ThreadClass);
    let instance = if thread {
        heap.new_object(
            py,
            Object::Thread(crate::heap::ThreadObj {
                class: Some(class),
                dict: Some(dict),
                ..crate::heap::ThreadObj::blank(false)
            }),
        )
    } else {
        heap.new_object(py, Object::Instance { class, dict })
    };
    let exception = base.is_some_and(Builtin::is_exception);
    if exception {
        // `BaseException.__new__` keeps the call's arguments as `args`, whatever `__init__` does.
        let args = heap.new_tuple(py, args)?;
        let r = heap.dict_set_str(py, dict, "args", args);
        heap.decref(py, args)?;
        r?;
    }
    let Some(init) = init else {
        if thread {
            // Without an `__init__` of its own, `Thread.__init__` takes the arguments.
            return match native::call(t, cx, Builtin::ThreadInit, Some(instance), &all, kwargs) {
                Ok(native::Outcome::Return(v)) => {
                    heap.decref(py, v)?;
                    Ok(Invoked::Returned(
                        instance,
                        crate::builtins::CallPoll::Polls,
                    ))
                }
                Ok(_) => Err(RtError::RuntimeError(
                    "Thread.__init__ blocked (a gilcheck bug)".into(),
                )),
                Err(e) => {
                    heap.decref(py, instance)?;
                    Err(e)
                }
            };
        }
        if exception {
            if !kwargs.is_empty() {
                heap.decref(py, instance)?;
                return Err(RtError::TypeError(format!(
                    "{}() takes no keyword arguments",
                    class_name(heap, py, class)?
                )));
            }
            return Ok(Invoked::Returned(
                instance,
                crate::builtins::CallPoll::Polls,
            ));
        }
        if !all.is_empty() || !kwargs.is_empty() {
            heap.decref(py, instance)?;
            return Err(RtError::TypeError(format!(
                "{}() takes no arguments",
                class_name(heap, py, class)?
            )));
        }
        return Ok(Invoked::Returned(
            instance,
            crate::builtins::CallPoll::Polls,
        ));
    };
    let ret = Ret::Init { instance, site };
    if let Err(e) = push_function(t, cx, init, Some(instance), &all, kwargs, ret, None) {
        heap.decref(py, instance)?;
        return Err(e);
    }
    Ok(Invoked::Pushed)
}

fn class_name<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    class: ObjRef,
) -> Result<String, RtError> {
    Ok(match heap.get(py, class)? {
        Object::Class { name, .. } => name.to_string(),
        other => other.type_name().to_string(),
    })
}

/// `__build_class__(body, name[, base])`: runs the class body in a frame of its own with a
/// fresh namespace; the class is made when it returns.
fn build_class<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    receiver: Option<ObjRef>,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
    site: Instr,
) -> Result<Invoked, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    let all: Vec<ObjRef> = receiver.into_iter().chain(args.iter().copied()).collect();
    if let Some((k, _)) = kwargs.first() {
        return Err(RtError::Unsupported(format!(
            "gilcheck models no class keyword arguments ({k}=)"
        )));
    }
    let (body, name, base) = match all[..] {
        [body, name] => (body, name, None),
        [body, name, base] => (body, name, Some(base)),
        _ => {
            return Err(RtError::Unsupported(
                "gilcheck models classes with at most one base".into(),
            ));
        }
    };
    let base = match base {
        None => None,
        Some(b) => match heap.get(py, b)? {
            Object::Class { .. } => Some(b),
            Object::Builtin(Builtin::ObjectClass) => None,
            // `class E(Exception)`, `class Worker(threading.Thread)`: the built-in class is the
            // end of its chain of bases.
            Object::Builtin(c) if c.is_exception() || c == Builtin::ThreadClass => Some(b),
            other => {
                return Err(RtError::Unsupported(format!(
                    "gilcheck models bases that are classes of class statements, not {}",
                    match other {
                        Object::Builtin(c) => c.qualname().to_string(),
                        o => o.type_name().to_string(),
                    }
                )));
            }
        },
    };
    for r in [name].into_iter().chain(base) {
        heap.incref(py, r)?;
    }
    let ns = heap.new_dict(py);
    let ret = Ret::Class { name, base, site };
    if let Err(e) = push_function(t, cx, body, None, &[], &[], ret, Some(ns)) {
        for r in [name, ns].into_iter().chain(base) {
            heap.decref(py, r)?;
        }
        return Err(e);
    }
    Ok(Invoked::Pushed)
}

fn native_call<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    b: Builtin,
    receiver: Option<ObjRef>,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
) -> Result<Invoked, RtError> {
    match native::call(t, cx, b, receiver, args, kwargs)? {
        native::Outcome::Return(r) => Ok(Invoked::Returned(r, b.call_poll())),
        native::Outcome::Block(w) => Ok(Invoked::Blocked(w)),
        native::Outcome::Consume { genobj, acc } => Ok(Invoked::Consume {
            genobj,
            acc,
            builtin: b,
        }),
    }
}

/// Runs the instruction at the thread's program counter.
fn run_instruction<P: Platform>(t: &mut PyThread, cx: &mut Cx<'_, '_, P>) -> Result<Step, RtError> {
    use Instr::*;
    let (py, heap) = (cx.py, cx.heap);
    let program = cx.program;
    let f = frame(t);
    let code_index = f.code as usize;
    let code = &program.codes[code_index];
    let pc = f.pc as usize;
    let ins = code.instrs[pc];
    let image = cx.image;
    let consts = &image.consts[code_index];
    let mut next_pc = pc + 1;
    let mut taken = false;
    let mut exact_bool = false;
    let mut callee = None;
    let name = |n: u32| code.names[n as usize].as_str();

    match ins {
        Nop => {}
        Resume(_) => {}
        LoadConst(k) => {
            let v = consts[k as usize];
            heap.incref(py, v)?;
            f.stack.push(Some(v));
        }
        LoadFast(i) => {
            let v =
                f.locals[i as usize].ok_or_else(|| unbound_local(&code.varnames[i as usize]))?;
            if !cx.faults.load_fast_without_incref {
                heap.incref(py, v)?;
            }
            f.stack.push(Some(v));
        }
        StoreFast(i) => {
            let v = f.stack.pop().flatten().expect("validated stack");
            if let Some(old) = f.locals[i as usize].replace(v)
                && !cx.faults.store_fast_without_decref
            {
                heap.decref(py, old)?;
            }
        }
        LoadGlobal { name: n, null } => {
            let v = load_global(cx, f.globals, name(n))?;
            let f = frame(t);
            if null {
                f.stack.push(None);
            }
            f.stack.push(Some(v));
            note!(cx, format!("read global {} → {}", name(n), cx.show(v)));
        }
        LoadName(n) => {
            let own = match f.namespace {
                Some(ns) => heap.dict_get_str(py, ns, name(n))?,
                None => None,
            };
            let v = match own {
                Some(v) => v,
                None => load_global(cx, f.globals, name(n))?,
            };
            frame(t).stack.push(Some(v));
            note!(cx, format!("read {} → {}", name(n), cx.show(v)));
        }
        StoreGlobal(n) | StoreName(n) => {
            let v = peek(f, 1)?;
            let into = match (ins, f.namespace) {
                (StoreName(_), Some(ns)) => ns,
                _ => f.globals,
            };
            heap.dict_set_str(py, into, name(n), v)?;
            pop_n(f, cx, 1)?;
            note!(cx, format!("write {} ← {}", name(n), cx.show(v)));
        }
        PushNull => f.stack.push(None),
        PopTop => pop_n(f, cx, 1)?,
        Copy(n) => {
            let v = f.stack[f.stack.len() - n as usize];
            if let Some(v) = v {
                heap.incref(py, v)?;
            }
            f.stack.push(v);
        }
        Swap(n) => {
            let len = f.stack.len();
            f.stack.swap(len - 1, len - n as usize);
        }
        BinarySubscr => {
            let (container, key) = (peek(f, 2)?, peek(f, 1)?);
            if let Some(d) = dunder(cx, container, "__getitem__")? {
                let args = [container, key];
                return call_inside(t, cx, ins, d, &args, 2, next_pc, Ret::Inside(ins));
            }
            if let Some(step) = python_hash_first(t, cx, ins, container, key)? {
                return Ok(step);
            }
            let found = hashed(cx, key, || missing_key(cx, container, key));
            if let MissingRead::Python(m) = found? {
                let args = [container, key];
                return call_inside(t, cx, ins, m, &args, 2, next_pc, Ret::Inside(ins));
            }
            let f = frame(t);
            let v = hashed(cx, key, || subscr(heap, py, container, key))?;
            let globals = f.globals;
            pop_n(f, cx, 2)?;
            frame(t).stack.push(Some(v));
            note!(
                cx,
                format!(
                    "read {}[{}] → {}",
                    cx.name_of(globals, container),
                    cx.show(key),
                    cx.show(v)
                )
            );
        }
        StoreSubscr => {
            let (value, container, key) = (peek(f, 3)?, peek(f, 2)?, peek(f, 1)?);
            if let Some(d) = dunder(cx, container, "__setitem__")? {
                let args = [container, key, value];
                return call_inside(t, cx, ins, d, &args, 3, next_pc, Ret::Discard(ins));
            }
            if let Some(step) = python_hash_first(t, cx, ins, container, key)? {
                return Ok(step);
            }
            let f = frame(t);
            hashed(cx, key, || store_subscr(heap, py, container, key, value))?;
            let globals = f.globals;
            note!(
                cx,
                format!(
                    "write {}[{}] ← {}",
                    cx.name_of(globals, container),
                    cx.show(key),
                    cx.show(value)
                )
            );
            pop_n(frame(t), cx, 3)?;
        }
        BinaryOp { op, inplace } => {
            let (a, b) = (peek(f, 2)?, peek(f, 1)?);
            if let Some((d, args)) = binary_dunder(cx, op, inplace, a, b)? {
                return call_inside(t, cx, ins, d, &args, 2, next_pc, Ret::Inside(ins));
            }
            let r = match inplace {
                true => match crate::vm::library::inplace(heap, py, op, a, b)? {
                    Some(r) => r,
                    None => ops::binary(heap, py, op, a, b)?,
                },
                false => ops::binary(heap, py, op, a, b)?,
            };
            note!(
                cx,
                format!(
                    "{} {}{} {} → {}",
                    cx.show(a),
                    op.symbol(),
                    if inplace { "=" } else { "" },
                    cx.show(b),
                    cx.show(r)
                )
            );
            let f = frame(t);
            pop_n(f, cx, 2)?;
            f.stack.push(Some(r));
        }
        CompareOp(op) => {
            let (a, b) = (peek(f, 2)?, peek(f, 1)?);
            if let Some((d, args)) = compare_dunder(cx, op, a, b)? {
                return call_inside(t, cx, ins, d, &args, 2, next_pc, Ret::Inside(ins));
            }
            let r = ObjRef::from_bool(ops::compare(heap, py, op, a, b)?);
            pop_n(f, cx, 2)?;
            f.stack.push(Some(r));
        }
        IsOp(invert) => {
            let (a, b) = (peek(f, 2)?, peek(f, 1)?);
            let r = ObjRef::from_bool((a == b) != invert);
            pop_n(f, cx, 2)?;
            f.stack.push(Some(r));
        }
        ContainsOp(invert) => {
            let (item, container) = (peek(f, 2)?, peek(f, 1)?);
            if let Some(step) = python_hash_first(t, cx, ins, container, item)? {
                return Ok(step);
            }
            let f = frame(t);
            let found = hashed(cx, item, || ops::contains(heap, py, container, item))?;
            let r = ObjRef::from_bool(found != invert);
            pop_n(f, cx, 2)?;
            f.stack.push(Some(r));
        }
        UnaryNot => {
            let v = peek(f, 1)?;
            let r = ObjRef::from_bool(!ops::truthy(heap, py, v)?);
            pop_n(f, cx, 1)?;
            f.stack.push(Some(r));
        }
        UnaryNegative | UnaryPositive | UnaryInvert => {
            let v = peek(f, 1)?;
            let r = ops::unary(heap, py, ins, v)?;
            pop_n(f, cx, 1)?;
            f.stack.push(Some(r));
        }
        GetIter => {
            let v = peek(f, 1)?;
            let it = get_iter(heap, py, v)?;
            pop_n(f, cx, 1)?;
            f.stack.push(Some(it));
        }
        ForIter(target) => {
            let it = peek(f, 1)?;
            let generator = heap.with_object(py, it, |o| matches!(o, Object::Generator(_)))?;
            if generator && resume_generator(t, cx, it)? {
                // The generator's frame runs above this one; FOR_ITER completes when it
                // yields or returns.
                return Ok(finish_step(t, cx, ins, taken, exact_bool, callee, false));
            }
            let f = frame(t);
            let next_item = if generator {
                None
            } else {
                iter_next(heap, py, it)?
            };
            match next_item {
                Some(v) => {
                    f.stack.push(Some(v));
                    note!(cx, format!("next → {}", cx.show(v)));
                }
                None => {
                    pop_n(f, cx, 1)?;
                    next_pc = target as usize;
                    taken = true;
                    note!(cx, "iterator exhausted".into());
                }
            }
        }
        JumpForward(target) | JumpBackward(target) => next_pc = target as usize,
        PopJumpForwardIfFalse(target)
        | PopJumpForwardIfTrue(target)
        | PopJumpBackwardIfFalse(target)
        | PopJumpBackwardIfTrue(target) => {
            let v = peek(f, 1)?;
            exact_bool = v == ObjRef::TRUE || v == ObjRef::FALSE;
            let truth = ops::truthy(heap, py, v)?;
            let on_true = matches!(ins, PopJumpForwardIfTrue(_) | PopJumpBackwardIfTrue(_));
            pop_n(f, cx, 1)?;
            if truth == on_true {
                next_pc = target as usize;
                taken = true;
            }
        }
        JumpIfTrueOrPop(target) | JumpIfFalseOrPop(target) => {
            // `and`/`or` as a value: the deciding value stays as the result.
            let v = peek(f, 1)?;
            exact_bool = v == ObjRef::TRUE || v == ObjRef::FALSE;
            let truth = ops::truthy(heap, py, v)?;
            if truth == matches!(ins, JumpIfTrueOrPop(_)) {
                next_pc = target as usize;
                taken = true;
            } else {
                pop_n(f, cx, 1)?;
            }
        }
        PopJumpForwardIfNone(target)
        | PopJumpForwardIfNotNone(target)
        | PopJumpBackwardIfNone(target)
        | PopJumpBackwardIfNotNone(target) => {
            // An identity test: no truth value is computed, nothing can fail.
            let v = peek(f, 1)?;
            let on_none = matches!(ins, PopJumpForwardIfNone(_) | PopJumpBackwardIfNone(_));
            pop_n(f, cx, 1)?;
            if (v == ObjRef::NONE) == on_none {
                next_pc = target as usize;
                taken = true;
            }
        }
        KwNames(k) => f.kw_names = Some(k),
        Call(argc) => {
            let n = argc as usize;
            let kw_names = f.kw_names.take();
            let len = f.stack.len();
            let method = f.stack[len - n - 2];
            let callable = f.stack[len - n - 1]
                .ok_or_else(|| RtError::TypeError("'NULL' object is not callable".into()))?;
            let args: Vec<ObjRef> = f.stack[len - n..]
                .iter()
                .map(|a| a.expect("arguments are never NULL"))
                .collect();
            // `KW_NAMES` names the last arguments (validated: a tuple constant).
            let names: &[Const] = match kw_names.map(|k| &code.consts[k as usize]) {
                Some(Const::Tuple(names)) => names,
                _ => &[],
            };
            let first_kw = n - names.len();
            let kwargs: Vec<(String, ObjRef)> = names
                .iter()
                .zip(&args[first_kw..])
                .map(|(name, &v)| match name {
                    Const::Str(s) => (s.clone(), v),
                    _ => (String::new(), v),
                })
                .collect();
            let positional = &args[..first_kw];
            // 3.11: with a method on the stack the "callable" slot holds `self`.
            let (func, receiver) = match method {
                Some(m) => (m, Some(callable)),
                None => (callable, None),
            };
            f.pc = next_pc as u32; // a pushed frame returns here
            let outcome = invoke(t, cx, func, receiver, positional, &kwargs, ins);
            let pushed = matches!(outcome, Ok(Invoked::Pushed));
            // The caller's frame is below a pushed one.
            let caller = if pushed {
                t.frames.len() - 2
            } else {
                t.frames.len() - 1
            };
            let f = &mut t.frames[caller];
            match outcome {
                Err(e) => {
                    f.pc = pc as u32;
                    f.kw_names = kw_names;
                    return Err(e);
                }
                Ok(Invoked::Blocked(w)) => {
                    f.pc = pc as u32;
                    f.kw_names = kw_names;
                    return Ok(Step::Blocked(w));
                }
                Ok(Invoked::Pushed) => {
                    pop_n(f, cx, n + 2)?;
                    callee = Some(Callee::Python);
                }
                Ok(Invoked::Returned(r, poll)) => {
                    pop_n(f, cx, n + 2)?;
                    f.stack.push(Some(r));
                    callee = Some(Callee::Native(poll));
                }
                Ok(Invoked::Consume {
                    genobj,
                    acc,
                    builtin,
                }) => {
                    // The CALL stays in progress until the generator finishes.
                    f.pc = pc as u32;
                    f.pending = Some(Pending { argc, builtin, acc });
                    if resume_generator(t, cx, genobj)? {
                        callee = Some(Callee::Python);
                    } else {
                        let f = frame(t);
                        let p = f.pending.take().expect("just set");
                        complete_pending(f, cx, p)?;
                        callee = Some(Callee::Native(builtin.call_poll()));
                    }
                }
            }
            return Ok(finish_step(t, cx, ins, taken, exact_bool, callee, false));
        }
        LoadMethod(n) => {
            let obj = peek(f, 1)?;
            if let Some(m) = native::method(heap, py, obj, name(n))? {
                // [method, self]: the stack slot of `obj` becomes `self`.
                let len = f.stack.len();
                f.stack.insert(len - 1, Some(ObjRef::builtin(m)));
            } else {
                let found = match native::instance_method(heap, py, obj, name(n))? {
                    Some(native::MethodLookup::Function(func)) => {
                        // A Python function of the class: [function, self], no bound method.
                        heap.incref(py, func)?;
                        let len = f.stack.len();
                        f.stack.insert(len - 1, Some(func));
                        None
                    }
                    Some(native::MethodLookup::Attr(a)) => Some(a),
                    None => Some(native::attribute(heap, py, obj, name(n))?),
                };
                match found {
                    None => {}
                    Some(native::Attr::Value(v)) => {
                        pop_n(f, cx, 1)?;
                        f.stack.push(None);
                        f.stack.push(Some(v));
                    }
                    Some(native::Attr::Getter(g, o)) => {
                        // [NULL, what the getter returns].
                        let len = f.stack.len();
                        f.stack.insert(len - 1, None);
                        return call_inside(t, cx, ins, g, &[o], 1, next_pc, Ret::Inside(ins));
                    }
                }
            }
        }
        LoadAttr(n) => {
            let obj = peek(f, 1)?;
            let v = match native::attribute(heap, py, obj, name(n))? {
                native::Attr::Value(v) => v,
                native::Attr::Getter(g, o) => {
                    note!(cx, format!("{}: call the property's getter", name(n)));
                    return call_inside(t, cx, ins, g, &[o], 1, next_pc, Ret::Inside(ins));
                }
            };
            let globals = f.globals;
            pop_n(f, cx, 1)?;
            frame(t).stack.push(Some(v));
            note!(
                cx,
                format!(
                    "read {}.{} → {}",
                    cx.name_of(globals, obj),
                    name(n),
                    cx.show(v)
                )
            );
        }
        StoreAttr(n) => {
            let (value, obj) = (peek(f, 2)?, peek(f, 1)?);
            if let native::Store::Setter(setter) =
                native::store_attribute(heap, py, obj, name(n), value)?
            {
                note!(cx, format!("{}: call the property's setter", name(n)));
                let args = [obj, value];
                return call_inside(t, cx, ins, setter, &args, 2, next_pc, Ret::Discard(ins));
            }
            let globals = f.globals;
            note!(
                cx,
                format!(
                    "write {}.{} ← {}",
                    cx.name_of(globals, obj),
                    name(n),
                    cx.show(value)
                )
            );
            pop_n(frame(t), cx, 2)?;
        }
        BuildTuple(n) | BuildList(n) => {
            let items: Vec<ObjRef> = f.stack[f.stack.len() - n as usize..]
                .iter()
                .map(|x| x.expect("validated"))
                .collect();
            let r = if matches!(ins, BuildTuple(_)) {
                heap.new_tuple(py, &items)?
            } else {
                heap.new_list(py, &items)?
            };
            pop_n(f, cx, n as usize)?;
            f.stack.push(Some(r));
        }
        BuildSlice(n) => {
            let mut parts = [None; 3];
            for (i, part) in parts.iter_mut().enumerate().take(n as usize) {
                let v = peek(f, n as usize - i)?;
                *part = match heap.get(py, v)? {
                    Object::None => None,
                    Object::Int(x) => Some(x),
                    Object::Bool(b) => Some(i64::from(b)),
                    _ => {
                        return Err(RtError::TypeError(
                            "slice indices must be integers or None or have an __index__ method"
                                .into(),
                        ));
                    }
                };
            }
            let r = heap.new_object(
                py,
                Object::Slice {
                    start: parts[0],
                    stop: parts[1],
                    step: parts[2],
                },
            );
            pop_n(f, cx, n as usize)?;
            f.stack.push(Some(r));
        }
        // CO-7: cells and free variables.
        MakeCell(i) => {
            let v = f.locals[i as usize].take();
            let cell = heap.new_object(py, Object::Cell(v));
            f.locals[i as usize] = Some(cell);
        }
        CopyFreeVars(_) => {} // the frame got its closure's cells when it was made
        LoadDeref(i) | LoadClosure(i) => {
            let cell = f.locals[i as usize]
                .ok_or_else(|| RtError::RuntimeError("a closure slot without its cell".into()))?;
            let v = if matches!(ins, LoadClosure(_)) {
                cell
            } else {
                match heap.get(py, cell)? {
                    Object::Cell(Some(v)) => v,
                    _ => {
                        let name = code.slot_name(i);
                        return Err(if code.freevars.contains(&name) {
                            RtError::NameError(format!(
                                "cannot access free variable '{name}' where it is not associated with a value in enclosing scope"
                            ))
                        } else {
                            unbound_local(&name)
                        });
                    }
                }
            };
            heap.incref(py, v)?;
            f.stack.push(Some(v));
            if matches!(ins, LoadDeref(_)) {
                note!(cx, format!("read {} → {}", code.slot_name(i), cx.show(v)));
            }
        }
        StoreDeref(i) => {
            let v = peek(f, 1)?;
            let cell = f.locals[i as usize]
                .ok_or_else(|| RtError::RuntimeError("a closure slot without its cell".into()))?;
            heap.incref(py, v)?;
            let mut old = None;
            heap.update(py, cell, |o| {
                if let Object::Cell(c) = o {
                    old = c.replace(v);
                }
                Ok(())
            })?;
            if let Some(o) = old {
                heap.decref(py, o)?;
            }
            note!(cx, format!("write {} ← {}", code.slot_name(i), cx.show(v)));
            pop_n(frame(t), cx, 1)?;
        }
        ListToTuple => {
            let list = peek(f, 1)?;
            let items = match heap.get(py, list)? {
                Object::List(v) => v,
                _ => return Err(RtError::TypeError("LIST_TO_TUPLE needs a list".into())),
            };
            let r = heap.new_tuple(py, &items)?;
            pop_n(f, cx, 1)?;
            f.stack.push(Some(r));
        }
        DictMerge(i) => {
            // 3.11: the mapping on top merges into the dict `i` deep below it; the callable
            // is `i + 2` deep, for the messages.
            let update = peek(f, 1)?;
            let dict = peek(f, 1 + i as usize)?;
            let func = peek(f, 3 + i as usize)?;
            let fname = match heap.get(py, func)? {
                Object::Function { name, .. } => name.to_string(),
                _ => heap.repr(py, func)?,
            };
            let entries = match heap.get(py, update)? {
                Object::Dict(d) => d.items,
                other => {
                    return Err(RtError::TypeError(format!(
                        "{fname}() argument after ** must be a mapping, not {}",
                        other.type_name()
                    )));
                }
            };
            for (k, v) in entries {
                if heap.dict_contains(py, dict, k)? {
                    return Err(RtError::TypeError(format!(
                        "{fname}() got multiple values for keyword argument '{}'",
                        ops::to_str(heap, py, k)?
                    )));
                }
                heap.dict_set(py, dict, k, v)?;
            }
            pop_n(f, cx, 1)?;
        }
        CallFunctionEx(flags) => {
            let kw = flags & 1 != 0;
            let depth = 3 + usize::from(kw);
            let callable = peek(f, depth - 1)?;
            let argsobj = peek(f, depth - 2)?;
            let kwobj = if kw { Some(peek(f, 1)?) } else { None };
            let items: Vec<ObjRef> = match heap.get(py, argsobj)? {
                Object::Tuple(v) | Object::List(v) => v,
                Object::Generator(_) => {
                    return Err(RtError::Unsupported(
                        "f(*generator): gilcheck does not run a generator from inside CALL_FUNCTION_EX yet".into(),
                    ));
                }
                Object::Iter(_)
                | Object::Range { .. }
                | Object::Str(_)
                | Object::Dict(_)
                | Object::Deque { .. } => {
                    let owned = crate::vm::library::collect(heap, py, argsobj)?;
                    for &x in &owned {
                        heap.decref(py, x)?; // the tuple below holds them while the call runs
                    }
                    owned
                }
                other => {
                    return Err(RtError::TypeError(format!(
                        "argument after * must be an iterable, not {}",
                        other.type_name()
                    )));
                }
            };
            // Keep the items alive for the call (a collected iterable's items are borrowed
            // from nothing else): a tuple of them, dropped after.
            let held = heap.new_tuple(py, &items)?;
            let mut kwargs = Vec::new();
            if let Some(d) = kwobj {
                for (k, v) in heap.dict_entries(py, d)? {
                    match heap.get(py, k)? {
                        Object::Str(s) => kwargs.push((s.to_string(), v)),
                        _ => {
                            heap.decref(py, held)?;
                            return Err(RtError::TypeError("keywords must be strings".into()));
                        }
                    }
                }
            }
            let f = frame(t);
            f.pc = next_pc as u32; // a pushed frame returns here
            // A Python function (or a method of one) is called from C (`do_call_core`): its
            // return completes the call as a C call's, which polls after it (3.11's
            // CHECK_EVAL_BREAKER at the end of CALL_FUNCTION_EX).
            let outcome = match heap.get(py, callable)? {
                Object::Function { .. } => push_function(
                    t,
                    cx,
                    callable,
                    None,
                    &items,
                    &kwargs,
                    Ret::CCall { site: ins },
                    None,
                )
                .map(|()| Invoked::Pushed),
                Object::Method { func, receiver } => push_function(
                    t,
                    cx,
                    func,
                    Some(receiver),
                    &items,
                    &kwargs,
                    Ret::CCall { site: ins },
                    None,
                )
                .map(|()| Invoked::Pushed),
                _ => invoke(t, cx, callable, None, &items, &kwargs, ins),
            };
            heap.decref(py, held)?;
            let pushed = matches!(outcome, Ok(Invoked::Pushed));
            let caller = if pushed {
                t.frames.len() - 2
            } else {
                t.frames.len() - 1
            };
            let f = &mut t.frames[caller];
            match outcome {
                Err(e) => {
                    f.pc = pc as u32;
                    return Err(e);
                }
                Ok(Invoked::Blocked(w)) => {
                    f.pc = pc as u32;
                    return Ok(Step::Blocked(w));
                }
                Ok(Invoked::Pushed) => {
                    pop_n(f, cx, depth)?;
                    callee = Some(Callee::Python);
                }
                Ok(Invoked::Returned(r, _)) => {
                    pop_n(f, cx, depth)?;
                    f.stack.push(Some(r));
                    // Not a specialized call: it polls after any C callee.
                    callee = Some(Callee::Native(crate::builtins::CallPoll::Polls));
                }
                Ok(Invoked::Consume { acc, .. }) => {
                    f.pc = pc as u32;
                    heap.decref(py, acc)?;
                    return Err(RtError::Unsupported(
                        "sum(*…) of a generator through CALL_FUNCTION_EX".into(),
                    ));
                }
            }
            return Ok(finish_step(t, cx, ins, taken, exact_bool, callee, false));
        }
        UnpackSequence(n) => {
            let seq = peek(f, 1)?;
            let items = match heap.get(py, seq)? {
                Object::Tuple(v) | Object::List(v) => v,
                other => {
                    return Err(RtError::TypeError(format!(
                        "cannot unpack non-iterable {} object",
                        other.type_name()
                    )));
                }
            };
            let want = n as usize;
            if items.len() < want {
                return Err(RtError::ValueError(format!(
                    "not enough values to unpack (expected {want}, got {})",
                    items.len()
                )));
            }
            if items.len() > want {
                return Err(RtError::ValueError(format!(
                    "too many values to unpack (expected {want})"
                )));
            }
            for &x in &items {
                heap.incref(py, x)?;
            }
            pop_n(f, cx, 1)?;
            f.stack.extend(items.into_iter().rev().map(Some));
        }
        BuildMap(n) => {
            let items: Vec<ObjRef> = f.stack[f.stack.len() - 2 * n as usize..]
                .iter()
                .map(|x| x.expect("validated"))
                .collect();
            let d = heap.new_dict(py);
            for pair in items.chunks(2) {
                if let Err(e) = heap.dict_set(py, d, pair[0], pair[1]) {
                    heap.decref(py, d)?;
                    return Err(e);
                }
            }
            pop_n(f, cx, 2 * n as usize)?;
            f.stack.push(Some(d));
        }
        BuildConstKeyMap(n) => {
            let keys = peek(f, 1)?;
            let Object::Tuple(keys) = heap.get(py, keys)? else {
                return Err(RtError::TypeError(
                    "BUILD_CONST_KEY_MAP needs a tuple of keys".into(),
                ));
            };
            let values: Vec<ObjRef> = f.stack[f.stack.len() - 1 - n as usize..f.stack.len() - 1]
                .iter()
                .map(|x| x.expect("validated"))
                .collect();
            let d = heap.new_dict(py);
            for (k, v) in keys.iter().zip(values) {
                heap.dict_set(py, d, *k, v)?;
            }
            pop_n(f, cx, n as usize + 1)?;
            f.stack.push(Some(d));
        }
        ListAppend(i) => {
            let v = peek(f, 1)?;
            let list = peek(f, i as usize + 1)?;
            heap.list_append(py, list, v)?;
            pop_n(f, cx, 1)?;
        }
        BuildSet(n) => {
            let items: Vec<ObjRef> = f.stack[f.stack.len() - n as usize..]
                .iter()
                .map(|x| x.expect("validated stack"))
                .collect();
            let set = heap.new_set(py, &items, false)?;
            pop_n(f, cx, n as usize)?;
            f.stack.push(Some(set));
        }
        SetAdd(i) => {
            let v = peek(f, 1)?;
            let set = peek(f, i as usize + 1)?;
            heap.set_add(py, set, v)?;
            pop_n(f, cx, 1)?;
        }
        SetUpdate(i) => {
            let v = peek(f, 1)?;
            let set = peek(f, i as usize + 1)?;
            crate::vm::library::set_update(heap, py, set, v)?;
            pop_n(f, cx, 1)?;
        }
        MapAdd(i) => {
            let value = peek(f, 1)?;
            let key = peek(f, 2)?;
            let dict = peek(f, i as usize + 2)?;
            heap.dict_set(py, dict, key, value)?;
            pop_n(f, cx, 2)?;
        }
        ListExtend(i) => {
            let v = peek(f, 1)?;
            let list = peek(f, i as usize + 1)?;
            for x in crate::vm::library::collect(heap, py, v)? {
                let r = heap.list_append(py, list, x);
                heap.decref(py, x)?;
                r?;
            }
            pop_n(f, cx, 1)?;
        }
        FormatValue { conversion, spec } => {
            let (v, spec_text) = if spec {
                (peek(f, 2)?, ops::to_str(heap, py, peek(f, 1)?)?)
            } else {
                (peek(f, 1)?, String::new())
            };
            let s = ops::format_value(heap, py, v, conversion, &spec_text)?;
            let r = heap.new_str(py, &s);
            pop_n(f, cx, 1 + usize::from(spec))?;
            f.stack.push(Some(r));
        }
        BuildString(n) => {
            let mut s = String::new();
            for x in &f.stack[f.stack.len() - n as usize..] {
                s.push_str(&ops::to_str(heap, py, x.expect("validated"))?);
            }
            let r = heap.new_str(py, &s);
            pop_n(f, cx, n as usize)?;
            f.stack.push(Some(r));
        }
        MakeFunction(flags) => {
            // Flag 1: a tuple of default values, flag 2: a dict of keyword-only defaults above
            // it, under the code object (3.11's order).
            let c = peek(f, 1)?;
            let has_closure = flags & 8 != 0;
            let closure = has_closure.then(|| peek(f, 2)).transpose()?;
            let at = 2 + usize::from(has_closure);
            let kw = flags & 2 != 0;
            let kwdefaults = kw.then(|| peek(f, at)).transpose()?;
            let defaults = (flags & 1 != 0)
                .then(|| peek(f, at + usize::from(kw)))
                .transpose()?;
            let Object::Code { index, name } = heap.get(py, c)? else {
                return Err(RtError::TypeError(
                    "MAKE_FUNCTION needs a code object".into(),
                ));
            };
            heap.incref(py, f.globals)?;
            for d in defaults.iter().chain(&kwdefaults).chain(&closure) {
                heap.incref(py, *d)?;
            }
            let func = heap.new_object(
                py,
                Object::Function {
                    code: index,
                    globals: f.globals,
                    name,
                    defaults,
                    kwdefaults,
                    closure,
                },
            );
            let popped =
                1 + usize::from(defaults.is_some()) + usize::from(kw) + usize::from(has_closure);
            pop_n(f, cx, popped)?;
            f.stack.push(Some(func));
        }
        ImportName(n) => {
            let m = Builtin::module(name(n))
                .ok_or_else(|| RtError::ImportError(format!("No module named '{}'", name(n))))?;
            pop_n(f, cx, 2)?;
            f.stack.push(Some(ObjRef::builtin(m)));
        }
        ImportFrom(n) => {
            let m = peek(f, 1)?;
            let member = match heap.get(py, m)? {
                Object::Builtin(b) if b.is_module() => b.module_attr(name(n)),
                _ => None,
            };
            let Some(member) = member else {
                return Err(RtError::ImportError(format!(
                    "cannot import name '{}'",
                    name(n)
                )));
            };
            f.stack.push(Some(ObjRef::builtin(member)));
        }
        BeforeWith => {
            let mgr = peek(f, 1)?;
            if heap.class_of(py, mgr)?.is_some() {
                let (Some(enter), Some(exit)) =
                    (dunder(cx, mgr, "__enter__")?, dunder(cx, mgr, "__exit__")?)
                else {
                    return Err(RtError::TypeError(format!(
                        "'{}' object does not support the context manager protocol",
                        heap.type_name_of(py, mgr)?
                    )));
                };
                heap.incref(py, exit)?;
                heap.incref(py, mgr)?;
                let bound = heap.new_object(
                    py,
                    Object::Method {
                        func: exit,
                        receiver: mgr,
                    },
                );
                let f = frame(t);
                let len = f.stack.len();
                f.stack.insert(len - 1, Some(bound));
                return call_inside(t, cx, ins, enter, &[mgr], 1, next_pc, Ret::Inside(ins));
            }
            let entered = native::enter(t, cx, mgr)?;
            let f = frame(t);
            match entered {
                native::Outcome::Block(w) => return Ok(Step::Blocked(w)),
                native::Outcome::Consume { acc, .. } => {
                    heap.decref(py, acc)?;
                    return Err(RtError::RuntimeError(
                        "__enter__ cannot consume a generator".into(),
                    ));
                }
                native::Outcome::Return(res) => {
                    let kind = heap.with_object(py, mgr, |o| o.type_name())?;
                    let func = crate::vm::sync::exit_method(kind).unwrap_or(Builtin::LockExit);
                    heap.incref(py, mgr)?;
                    let exit = heap.new_object(
                        py,
                        Object::BoundMethod {
                            func,
                            receiver: mgr,
                        },
                    );
                    pop_n(f, cx, 1)?;
                    f.stack.push(Some(exit));
                    f.stack.push(Some(res));
                }
            }
        }
        LoadAssertionError => f
            .stack
            .push(Some(ObjRef::builtin(Builtin::AssertionErrorClass))),
        LoadBuildClass => f.stack.push(Some(ObjRef::builtin(Builtin::BuildClass))),
        RaiseVarargs(0) => {
            return Err(match t.exc_info {
                Some(e) => reraised(t, cx, e)?,
                None => RtError::RuntimeError("No active exception to reraise".into()),
            });
        }
        PushExcInfo => {
            let v = f.stack.pop().flatten().expect("validated stack");
            heap.incref(py, v)?;
            let prev = t.exc_info.replace(v).unwrap_or(ObjRef::NONE);
            let f = frame(t);
            f.stack.push(Some(prev));
            f.stack.push(Some(v));
        }
        PopExcept => {
            let v = f.stack.pop().flatten().expect("validated stack");
            let restored = (v != ObjRef::NONE).then_some(v);
            if let Some(old) = std::mem::replace(&mut t.exc_info, restored) {
                heap.decref(py, old)?;
            }
        }
        CheckExcMatch => {
            let ty = f.stack.pop().flatten().expect("validated stack");
            let exc = peek(f, 1)?;
            let r = exception_matches(cx, exc, ty);
            heap.decref(py, ty)?;
            let m = r?;
            frame(t).stack.push(Some(ObjRef::from_bool(m)));
        }
        Reraise(n) => {
            if n > 0 {
                let at = f.stack.len() - 1 - n as usize;
                if let Some(Some(l)) = f.stack.get(at).copied()
                    && let Object::Int(i) = heap.get(py, l)?
                {
                    t.reraise_lasti = u32::try_from(i).ok();
                }
            }
            let f = frame(t);
            let exc = f.stack.pop().flatten().expect("validated stack");
            let e = reraised(t, cx, exc);
            heap.decref(py, exc)?;
            return Err(e?);
        }
        WithExceptStart => {
            // [exit, lasti, prev, exc]: `exit(type(exc), exc, None)`.
            let exit = peek(f, 4)?;
            let exc = peek(f, 1)?;
            let ty = match heap.get(py, exc)? {
                Object::Exception { class, .. } => ObjRef::builtin(class),
                Object::Instance { class, .. } => class,
                _ => ObjRef::NONE,
            };
            f.pc = next_pc as u32; // a pushed frame returns here
            let outcome = invoke(t, cx, exit, None, &[ty, exc, ObjRef::NONE], &[], ins);
            let pushed = matches!(outcome, Ok(Invoked::Pushed));
            let f = if pushed {
                let n = t.frames.len();
                &mut t.frames[n - 2]
            } else {
                frame(t)
            };
            match outcome {
                Err(e) => {
                    f.pc = pc as u32;
                    return Err(e);
                }
                Ok(Invoked::Blocked(_)) | Ok(Invoked::Consume { .. }) => {
                    f.pc = pc as u32;
                    return Err(RtError::Unsupported(
                        "an __exit__ that blocks or consumes a generator on the exception path"
                            .into(),
                    ));
                }
                Ok(Invoked::Pushed) => callee = Some(Callee::Python),
                Ok(Invoked::Returned(r, poll)) => {
                    f.stack.push(Some(r));
                    callee = Some(Callee::Native(poll));
                }
            }
            note!(cx, "call __exit__ with the exception".into());
            return Ok(finish_step(t, cx, ins, false, false, callee, false));
        }
        DeleteFast(i) => {
            let old = f.locals[i as usize]
                .take()
                .ok_or_else(|| unbound_local(&code.varnames[i as usize]))?;
            heap.decref(py, old)?;
        }
        DeleteDeref(i) => {
            let cell = f.locals[i as usize].expect("MAKE_CELL made it");
            let old = heap.update(py, cell, |o| match o {
                Object::Cell(v) => Ok(v.take()),
                _ => Ok(None),
            })?;
            let old = old.ok_or_else(|| {
                RtError::NameError(format!(
                    "cannot access free variable '{}' where it is not associated with a value in enclosing scope",
                    code.slot_name(i)
                ))
            })?;
            heap.decref(py, old)?;
        }
        DeleteSubscr => {
            let (container, key) = (peek(f, 2)?, peek(f, 1)?);
            if let Some(step) = python_hash_first(t, cx, ins, container, key)? {
                return Ok(step);
            }
            delete_subscr(heap, py, container, key)?;
            note!(
                cx,
                format!("delete {}[{}]", cx.show(container), cx.show(key))
            );
            pop_n(frame(t), cx, 2)?;
        }
        DeleteAttr(n) => {
            let obj = peek(f, 1)?;
            native::delete_attribute(heap, py, obj, name(n))?;
            pop_n(f, cx, 1)?;
        }
        DeleteName(n) | DeleteGlobal(n) => {
            let dict = match (ins, f.namespace) {
                (DeleteName(_), Some(ns)) => ns,
                _ => f.globals,
            };
            let key = heap.new_str(py, name(n));
            let r = heap.dict_del(py, dict, key);
            heap.decref(py, key)?;
            r.map_err(|e| match e {
                RtError::KeyError(_) => {
                    RtError::NameError(format!("name '{}' is not defined", name(n)))
                }
                e => e,
            })?;
        }
        RaiseVarargs(n) => {
            // `raise e from c`: the cause must be an exception, a class of one, or None; it is
            // not kept (the report does not chain it).
            if n == 2 {
                let cause = f.stack.pop().flatten().expect("validated stack");
                let ok = match heap.get(py, cause)? {
                    Object::None | Object::Exception { .. } => true,
                    Object::Builtin(b) => b.is_exception(),
                    _ => false,
                };
                heap.decref(py, cause)?;
                if !ok {
                    return Err(RtError::TypeError(
                        "exception causes must derive from BaseException".into(),
                    ));
                }
            }
            let f = frame(t);
            let exc = peek(f, 1)?;
            return Err(reraised(t, cx, exc)?);
        }
        ReturnGenerator => {
            let mut done = t.frames.pop().expect("a frame");
            let ret = std::mem::replace(&mut done.ret, Ret::Call);
            let g = heap.new_object(
                py,
                Object::Generator(GenObj {
                    name: code.name.as_str().into(),
                    frame: Some(GenFrame {
                        code: done.code,
                        pc: pc as u32 + 1,
                        stack: done.stack,
                        locals: done.locals,
                        globals: done.globals,
                    }),
                    running: false,
                }),
            );
            note!(cx, format!("return a new generator {}", cx.show(g)));
            return complete_return(t, cx, ins, ret, None, g);
        }
        YieldValue => {
            let genobj = f.generator.ok_or_else(|| {
                RtError::RuntimeError("YIELD_VALUE outside a generator's frame".into())
            })?;
            let v = f.stack.pop().flatten().expect("validated stack");
            let done = t.frames.pop().expect("a frame");
            suspend_generator(cx, genobj, done, pc as u32 + 1)?;
            note!(cx, format!("yield {}", cx.show(v)));
            let consumer = frame(t);
            if let Some(p) = consumer.pending {
                // A built-in consuming the generator: `sum` adds the item, then resumes it at
                // once (C code, no poll in between).
                let r = ops::binary(heap, py, BinOp::Add, p.acc, v);
                heap.decref(py, v)?;
                let r = r?;
                heap.decref(py, p.acc)?;
                frame(t).pending = Some(Pending { acc: r, ..p });
                resume_generator(t, cx, genobj)?;
                return Ok(finish_step(t, cx, ins, false, false, None, false));
            }
            // A FOR_ITER: it completes with the item.
            consumer.stack.push(Some(v));
            let for_iter = program.codes[consumer.code as usize].instrs[consumer.pc as usize];
            consumer.pc += 1;
            return Ok(finish_step(t, cx, for_iter, false, false, None, false));
        }
        ReturnValue if f.generator.is_some() => {
            let genobj = f.generator.expect("checked");
            let v = f.stack.pop().flatten().expect("validated stack");
            let done = t.frames.pop().expect("a frame");
            drop_frame(done, cx)?;
            heap.decref(py, v)?; // StopIteration's value: neither consumer uses it
            heap.update(py, genobj, |o| {
                if let Object::Generator(g) = o {
                    g.running = false;
                    g.frame = None;
                }
                Ok(())
            })?;
            note!(cx, "generator finished".into());
            let consumer = frame(t);
            if let Some(p) = consumer.pending.take() {
                complete_pending(consumer, cx, p)?;
                let e = Executed {
                    callee: Some(Callee::Native(p.builtin.call_poll())),
                    ..Executed::plain(Instr::Call(p.argc), None)
                };
                return Ok(finish_executed(t, cx, e));
            }
            let for_iter = program.codes[consumer.code as usize].instrs[consumer.pc as usize];
            let Instr::ForIter(target) = for_iter else {
                return Err(RtError::RuntimeError(
                    "a generator returned to no FOR_ITER".into(),
                ));
            };
            pop_n(consumer, cx, 1)?;
            consumer.pc = target;
            return Ok(finish_step(t, cx, for_iter, true, false, None, false));
        }
        ReturnValue => {
            let v = f.stack.pop().flatten().expect("validated stack");
            let mut done = t.frames.pop().expect("a frame");
            let ret = std::mem::replace(&mut done.ret, Ret::Call);
            let namespace = done.namespace.take();
            drop_frame(done, cx)?;
            if !t.frames.is_empty() {
                note!(cx, format!("return {}", cx.show(v)));
            }
            return complete_return(t, cx, ins, ret, namespace, v);
        }
    }
    frame(t).pc = next_pc as u32;
    let e = Executed {
        instr: ins,
        next: None,
        taken,
        exact_bool,
        callee,
        returned_to_caller: false,
        leaves_handler: code.is_cold(pc) && !code.is_cold(next_pc),
    };
    Ok(finish_executed(t, cx, e))
}

/// A frame whose return completes `ret` returned `v` (owned) by `ins` and was popped;
/// `namespace` is its class body's namespace (owned). The frame below gets the result.
fn complete_return<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    ins: Instr,
    ret: Ret,
    namespace: Option<ObjRef>,
    v: ObjRef,
) -> Result<Step, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    if t.frames.is_empty() {
        for r in ret.refs().chain(namespace).chain([v]).collect::<Vec<_>>() {
            heap.decref(py, r)?;
        }
        return Ok(Step::Finished);
    }
    let c_call = |site: Instr| Executed {
        callee: Some(Callee::Native(crate::builtins::CallPoll::Polls)),
        ..Executed::plain(site, None)
    };
    let (result, e) = match ret {
        Ret::Call => {
            frame(t).stack.push(Some(v));
            return Ok(finish_step(t, cx, ins, false, false, None, true));
        }
        Ret::Inside(i) => (Some(v), Executed::plain(i, None)),
        Ret::Hashed(_) => {
            let int = matches!(heap.get(py, v)?, Object::Int(_) | Object::Bool(_));
            heap.decref(py, v)?;
            if !int {
                return Err(RtError::TypeError(
                    "__hash__ method should return an integer".into(),
                ));
            }
            // Back inside the dict operation, which goes on at once: no poll (VM-14).
            t.hash_done = true;
            return Ok(Step::Ran { poll: None });
        }
        Ret::Discard(i) => {
            heap.decref(py, v)?;
            (None, Executed::plain(i, None))
        }
        Ret::CCall { site } => (Some(v), c_call(site)),
        Ret::Init { instance, site } => {
            if v != ObjRef::NONE {
                let what = heap.type_name_of(py, v)?;
                heap.decref(py, v)?;
                heap.decref(py, instance)?;
                return Err(RtError::TypeError(format!(
                    "__init__() should return None, not '{what}'"
                )));
            }
            (Some(instance), c_call(site))
        }
        Ret::Class { name, base, site } => {
            heap.decref(py, v)?;
            let dict = namespace.ok_or_else(|| {
                RtError::RuntimeError("a class body ran without a namespace".into())
            })?;
            let text: std::sync::Arc<str> = match heap.get(py, name)? {
                Object::Str(s) => s,
                _ => "?".into(),
            };
            heap.decref(py, name)?;
            let class = heap.new_object(
                py,
                Object::Class {
                    name: text,
                    base,
                    dict,
                },
            );
            // `type.__new__` fills the `__classcell__` cell with the class and takes it out of
            // the namespace (CO-8).
            if let Some(cell) = heap.dict_get_str(py, dict, "__classcell__")? {
                let filled = heap.update(py, cell, |o| match o {
                    Object::Cell(v) => Ok(v.replace(class)),
                    _ => Err(RtError::TypeError(
                        "__classcell__ must be a nonlocal cell".into(),
                    )),
                });
                let key = heap.new_str(py, "__classcell__");
                let deleted = heap.dict_del(py, dict, key);
                heap.decref(py, key)?;
                heap.decref(py, cell)?;
                deleted?;
                if let Some(old) = filled? {
                    heap.decref(py, old)?;
                }
                heap.incref(py, class)?;
            }
            note!(cx, format!("make class {}", cx.show(class)));
            (Some(class), c_call(site))
        }
    };
    if let Some(r) = result {
        frame(t).stack.push(Some(r));
    }
    Ok(finish_executed(t, cx, e))
}

/// Runs the Python function `func` (borrowed) with `args` (borrowed) from inside the
/// instruction `ins`, as CPython calls a property's getter or a dunder method from C code: the
/// instruction's `pop` operands go, the function's frame goes on top (its `RESUME` polls), and
/// its return completes the instruction as `ret` says (VM-13).
#[allow(clippy::too_many_arguments)]
fn call_inside<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    ins: Instr,
    func: ObjRef,
    args: &[ObjRef],
    pop: usize,
    next_pc: usize,
    ret: Ret,
) -> Result<Step, RtError> {
    let pc = frame(t).pc;
    frame(t).pc = next_pc as u32;
    if let Err(e) = push_function(t, cx, func, None, args, &[], ret, None) {
        frame(t).pc = pc;
        return Err(e);
    }
    let n = t.frames.len();
    pop_n(&mut t.frames[n - 2], cx, pop)?;
    Ok(finish_step(
        t,
        cx,
        ins,
        false,
        false,
        Some(Callee::Python),
        false,
    ))
}

/// The Python method a binary operator calls on an instance of a class statement:
/// `__iadd__` then `__add__` for `+=`, `__add__` for `+`, else the right operand's `__radd__`.
fn binary_dunder<P: Platform>(
    cx: &Cx<'_, '_, P>,
    op: BinOp,
    inplace: bool,
    a: ObjRef,
    b: ObjRef,
) -> Result<Option<(ObjRef, [ObjRef; 2])>, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    let (left, right) = (heap.class_of(py, a)?, heap.class_of(py, b)?);
    if left.is_none() && right.is_none() {
        return Ok(None);
    }
    let name = op.dunder();
    if left.is_some() {
        if inplace && let Some(d) = dunder(cx, a, &format!("__i{name}__"))? {
            return Ok(Some((d, [a, b])));
        }
        if let Some(d) = dunder(cx, a, &format!("__{name}__"))? {
            return Ok(Some((d, [a, b])));
        }
    }
    if right.is_some()
        && let Some(d) = dunder(cx, b, &format!("__r{name}__"))?
    {
        return Ok(Some((d, [b, a])));
    }
    Err(RtError::TypeError(format!(
        "unsupported operand type(s) for {}{}: '{}' and '{}'",
        op.symbol(),
        if inplace { "=" } else { "" },
        heap.type_name_of(py, a)?,
        heap.type_name_of(py, b)?
    )))
}

/// The Python method a comparison calls on an instance of a class statement (the left
/// operand's, else the right one's reflection).
fn compare_dunder<P: Platform>(
    cx: &Cx<'_, '_, P>,
    op: CmpOp,
    a: ObjRef,
    b: ObjRef,
) -> Result<Option<(ObjRef, [ObjRef; 2])>, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    if heap.class_of(py, a)?.is_none() && heap.class_of(py, b)?.is_none() {
        return Ok(None);
    }
    let (name, reflected) = op.dunders();
    if let Some(d) = dunder(cx, a, name)? {
        return Ok(Some((d, [a, b])));
    }
    if let Some(d) = dunder(cx, b, reflected)? {
        return Ok(Some((d, [b, a])));
    }
    if op == CmpOp::Ne && (dunder(cx, a, "__eq__")?.is_some() || dunder(cx, b, "__eq__")?.is_some())
    {
        return Err(RtError::Unsupported(
            "gilcheck cannot yet derive != from a Python __eq__ (define __ne__)".into(),
        ));
    }
    Ok(None)
}

/// Completes the `CALL` a consuming built-in held open: its operands give way to the result,
/// and the frame goes on after the `CALL`.
fn complete_pending<P: Platform>(
    f: &mut Frame,
    cx: &Cx<'_, '_, P>,
    p: Pending,
) -> Result<(), RtError> {
    pop_n(f, cx, p.argc as usize + 2)?;
    f.stack.push(Some(p.acc));
    f.pc += 1;
    Ok(())
}

/// Moves a generator's frame from the thread into its generator object, to resume at `pc`.
fn suspend_generator<P: Platform>(
    cx: &mut Cx<'_, '_, P>,
    genobj: ObjRef,
    f: Frame,
    pc: u32,
) -> Result<(), RtError> {
    let frame = GenFrame {
        code: f.code,
        pc,
        stack: f.stack,
        locals: f.locals,
        globals: f.globals,
    };
    cx.heap.update(cx.py, genobj, move |o| match o {
        Object::Generator(g) => {
            g.frame = Some(frame);
            g.running = false;
            Ok(())
        }
        _ => Err(RtError::TypeError("not a generator".into())),
    })
}

/// Resumes `genobj` on `t`: its frame goes on top of the thread's frames with the value sent in
/// (None) pushed. `false` when it has finished already.
fn resume_generator<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    genobj: ObjRef,
) -> Result<bool, RtError> {
    let taken = cx.heap.update(cx.py, genobj, |o| match o {
        Object::Generator(g) if g.running => {
            Err(RtError::ValueError("generator already executing".into()))
        }
        Object::Generator(g) => {
            let f = g.frame.take();
            g.running = f.is_some();
            Ok(f)
        }
        other => Err(RtError::TypeError(format!(
            "'{}' object is not a generator",
            other.type_name()
        ))),
    })?;
    let Some(gf) = taken else { return Ok(false) };
    let mut stack = gf.stack;
    stack.push(Some(ObjRef::NONE));
    t.frames.push(Frame {
        code: gf.code,
        pc: gf.pc,
        stack,
        locals: gf.locals,
        globals: gf.globals,
        kw_names: None,
        generator: Some(genobj),
        pending: None,
        namespace: None,
        ret: Ret::Call,
    });
    Ok(true)
}

/// The policy's answer for `e` as the step's end; `e.next` is set to the thread's next
/// instruction.
fn finish_executed<P: Platform>(t: &PyThread, cx: &Cx<'_, '_, P>, e: Executed) -> Step {
    let next = t
        .frames
        .last()
        .map(|f| cx.program.codes[f.code as usize].instrs[f.pc as usize]);
    let e = Executed { next, ..e };
    Step::Ran {
        poll: cx.policy.reason(&e),
    }
}

/// Asks the policy whether a poll point follows the completed instruction.
fn finish_step<P: Platform>(
    t: &PyThread,
    cx: &Cx<'_, '_, P>,
    instr: Instr,
    taken: bool,
    exact_bool: bool,
    callee: Option<Callee>,
    returned_to_caller: bool,
) -> Step {
    let e = Executed {
        instr,
        next: None,
        taken,
        exact_bool,
        callee,
        returned_to_caller,
        leaves_handler: false,
    };
    finish_executed(t, cx, e)
}

fn load_global<P: Platform>(
    cx: &Cx<'_, '_, P>,
    globals: ObjRef,
    name: &str,
) -> Result<ObjRef, RtError> {
    if let Some(v) = cx.heap.dict_get_str(cx.py, globals, name)? {
        return Ok(v);
    }
    Builtin::global(name)
        .map(ObjRef::builtin)
        .ok_or_else(|| RtError::NameError(format!("name '{name}' is not defined")))
}

/// Whether `o` is a dict (a Counter and a defaultdict are dicts).
fn is_dict<P: Platform>(heap: &Heap<P>, py: Token<'_>, o: ObjRef) -> Result<bool, RtError> {
    heap.with_object(py, o, |o| matches!(o, Object::Dict(_)))
}

/// VM-14: a dict operation on a key whose class defines `__hash__` calls it first, from inside
/// the instruction, as a frame of its own (CPython's `slot_tp_hash`); when it has returned the
/// instruction runs again and goes on with the lookup. `Some` is the step that pushed the frame.
fn python_hash_first<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    ins: Instr,
    container: ObjRef,
    key: ObjRef,
) -> Result<Option<Step>, RtError> {
    if std::mem::take(&mut t.hash_done) || !is_dict(cx.heap, cx.py, container)? {
        return Ok(None);
    }
    let Some(h) = dunder(cx, key, "__hash__")? else {
        return Ok(None);
    };
    push_function(t, cx, h, None, &[key], &[], Ret::Hashed(ins), None)?;
    note!(
        cx,
        format!(
            "hash({}) calls {}.__hash__",
            cx.show(key),
            cx.heap.type_name_of(cx.py, key)?
        )
    );
    Ok(Some(finish_step(
        t,
        cx,
        ins,
        false,
        false,
        Some(Callee::Python),
        false,
    )))
}

/// Runs a dict operation on `key` with its Python `__hash__` already called, if it was.
fn hashed<P: Platform, T>(
    cx: &Cx<'_, '_, P>,
    key: ObjRef,
    op: impl FnOnce() -> Result<T, RtError>,
) -> Result<T, RtError> {
    cx.heap.set_hashed(cx.py, Some(key));
    let r = op();
    cx.heap.set_hashed(cx.py, None);
    r
}

/// What `container[key]` reads when the key is missing from a Counter or defaultdict.
enum MissingRead {
    /// The key is there, or the container is not one of those (or is a plain dict).
    Present,
    /// `Counter.__missing__`, a Python function, to call from inside the instruction.
    Python(ObjRef),
}

/// VM-14: a missing key of a Counter calls the Python `Counter.__missing__` (returning 0, not
/// stored); of a defaultdict, its factory, a C call here, whose value is stored under the key
/// before the read (`defaultdict.__missing__` is C). A Python factory is refused.
fn missing_key<P: Platform>(
    cx: &Cx<'_, '_, P>,
    container: ObjRef,
    key: ObjRef,
) -> Result<MissingRead, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    let kind = heap.with_object(py, container, |o| match o {
        Object::Dict(d) => d.missing,
        _ => crate::heap::Missing::KeyError,
    })?;
    if kind == crate::heap::Missing::KeyError || heap.dict_contains(py, container, key)? {
        return Ok(MissingRead::Present);
    }
    match kind {
        crate::heap::Missing::Counter => cx
            .image
            .library_function(cx.program, "Counter.__missing__")
            .map(MissingRead::Python)
            .ok_or_else(|| RtError::RuntimeError("Counter.__missing__ is not loaded".into())),
        crate::heap::Missing::Default(factory) => {
            let value = crate::vm::library::default_value(heap, py, factory, key)?;
            heap.dict_set(py, container, key, value)?;
            heap.decref(py, value)?;
            Ok(MissingRead::Present)
        }
        crate::heap::Missing::KeyError => Ok(MissingRead::Present),
    }
}

type SliceParts = (Option<i64>, Option<i64>, Option<i64>);

/// The indices a slice selects of a sequence of `len` items (CPython's `PySlice_AdjustIndices`).
fn slice_indices(len: usize, parts: SliceParts) -> Result<Vec<usize>, RtError> {
    let (from, to, step) = slice_bounds(len, parts)?;
    let mut out = Vec::new();
    let mut i = from;
    while (step > 0 && i < to) || (step < 0 && i > to) {
        out.push(i as usize);
        i += step;
    }
    Ok(out)
}

/// A slice's start, stop and step for `len` items, clamped (`PySlice_AdjustIndices`).
fn slice_bounds(len: usize, (start, stop, step): SliceParts) -> Result<(i64, i64, i64), RtError> {
    let n = len as i64;
    let step = step.unwrap_or(1);
    if step == 0 {
        return Err(RtError::ValueError("slice step cannot be zero".into()));
    }
    let (lower, upper) = if step > 0 { (0, n) } else { (-1, n - 1) };
    let clamp = |x: Option<i64>, default: i64| match x {
        None => default,
        Some(mut i) => {
            if i < 0 {
                i += n;
            }
            i.clamp(lower, upper)
        }
    };
    Ok(if step > 0 {
        (clamp(start, lower), clamp(stop, upper), step)
    } else {
        (clamp(start, upper), clamp(stop, lower), step)
    })
}

/// `seq[a:b:c]` of a list, tuple or str: a new object of the same type.
fn slice_get<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    container: ObjRef,
    parts: SliceParts,
) -> Result<ObjRef, RtError> {
    match heap.get(py, container)? {
        Object::List(v) | Object::Tuple(v) => {
            let picked: Vec<ObjRef> = slice_indices(v.len(), parts)?
                .into_iter()
                .map(|i| v[i])
                .collect();
            if heap.with_object(py, container, |o| matches!(o, Object::List(_)))? {
                heap.new_list(py, &picked)
            } else {
                heap.new_tuple(py, &picked)
            }
        }
        Object::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let text: String = slice_indices(chars.len(), parts)?
                .into_iter()
                .map(|i| chars[i])
                .collect();
            Ok(heap.new_str(py, &text))
        }
        Object::Bytes(b) => {
            let picked: Vec<u8> = slice_indices(b.len(), parts)?
                .into_iter()
                .map(|i| b[i])
                .collect();
            Ok(heap.new_bytes(py, &picked))
        }
        other => Err(RtError::TypeError(match other.type_name() {
            "collections.deque" => "sequence index must be integer, not 'slice'".to_string(),
            _ if matches!(other, Object::Dict(_)) => "unhashable type: 'slice'".to_string(),
            t => format!("'{t}' object is not subscriptable"),
        })),
    }
}

/// `list[a:b:c] = iterable`: a step of 1 replaces the range by the items (any number); another
/// step needs exactly as many items as it selects (CPython's `list_ass_subscript`).
fn slice_set<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    list: ObjRef,
    parts: SliceParts,
    value: ObjRef,
) -> Result<(), RtError> {
    let Object::List(old) = heap.get(py, list)? else {
        let t = heap.with_object(py, list, |o| o.type_name())?;
        return Err(RtError::TypeError(format!(
            "'{t}' object does not support item assignment"
        )));
    };
    let items = match heap.get(py, value)? {
        Object::List(v) | Object::Tuple(v) => v,
        _ => {
            return Err(RtError::TypeError(
                "can only assign an iterable (gilcheck: a list or a tuple)".into(),
            ));
        }
    };
    let picked = slice_indices(old.len(), parts)?;
    let mut new = old.clone();
    let (from, to, step) = slice_bounds(old.len(), parts)?;
    if step == 1 {
        let (from, to) = (from as usize, (to as usize).max(from as usize));
        new.splice(from..to, items.iter().copied());
    } else {
        if picked.len() != items.len() {
            return Err(RtError::ValueError(format!(
                "attempt to assign sequence of size {} to extended slice of size {}",
                items.len(),
                picked.len()
            )));
        }
        for (&i, &x) in picked.iter().zip(&items) {
            new[i] = x;
        }
    }
    for &x in &items {
        heap.incref(py, x)?;
    }
    heap.update(py, list, |o| {
        if let Object::List(v) = o {
            *v = new;
        }
        Ok(())
    })?;
    for x in old {
        heap.decref(py, x)?;
    }
    Ok(())
}

/// `container[key]`: a new reference.
fn subscr<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    container: ObjRef,
    key: ObjRef,
) -> Result<ObjRef, RtError> {
    if let Object::Slice { start, stop, step } = heap.get(py, key)? {
        return slice_get(heap, py, container, (start, stop, step));
    }
    match heap.with_object(py, container, |o| o.type_name())? {
        "dict" | "Counter" | "collections.defaultdict" => heap.dict_get(py, container, key),
        "list" | "tuple" => heap.seq_get(py, container, heap.int_value(py, key)?),
        "str" | "bytes" => {
            let i = heap.int_value(py, key)?;
            match heap.get(py, container)? {
                Object::Str(s) => {
                    let chars: Vec<char> = s.chars().collect();
                    let c = Heap::<P>::position(chars.len(), i)
                        .map(|at| chars[at])
                        .ok_or_else(|| RtError::IndexError("string index out of range".into()))?;
                    Ok(heap.new_str(py, c.encode_utf8(&mut [0; 4])))
                }
                Object::Bytes(b) => {
                    let c = Heap::<P>::position(b.len(), i)
                        .map(|at| b[at])
                        .ok_or_else(|| RtError::IndexError("index out of range".into()))?;
                    Ok(heap.new_int(py, i64::from(c)))
                }
                _ => unreachable!("the type name says"),
            }
        }
        "collections.deque" => {
            let i = heap.int_value(py, key)?;
            let item = heap.with_object(py, container, |o| match o {
                Object::Deque { items, .. } => {
                    Heap::<P>::position(items.len(), i).map(|at| items[at])
                }
                _ => None,
            })?;
            let item =
                item.ok_or_else(|| RtError::IndexError("deque index out of range".into()))?;
            heap.incref(py, item)?;
            Ok(item)
        }
        other => Err(RtError::TypeError(format!(
            "'{other}' object is not subscriptable"
        ))),
    }
}

/// `del container[key]`: a dict's key (`KeyError`), a list's item or slice.
fn delete_subscr<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    container: ObjRef,
    key: ObjRef,
) -> Result<(), RtError> {
    if heap.with_object(py, container, |o| matches!(o, Object::Dict(_)))? {
        return heap.dict_del(py, container, key);
    }
    let len = match heap.get(py, container)? {
        Object::List(v) => v.len(),
        other => {
            return Err(RtError::TypeError(format!(
                "'{}' object doesn't support item deletion",
                other.type_name()
            )));
        }
    };
    let picked: Vec<usize> = match heap.get(py, key)? {
        Object::Slice { start, stop, step } => slice_indices(len, (start, stop, step))?,
        _ => {
            let i = heap.int_value(py, key)?;
            let at = Heap::<P>::position(len, i)
                .ok_or_else(|| RtError::IndexError("list assignment index out of range".into()))?;
            vec![at]
        }
    };
    let gone = heap.update(py, container, |o| match o {
        Object::List(v) => {
            let mut gone = Vec::new();
            let mut sorted = picked.clone();
            sorted.sort_unstable();
            for &i in sorted.iter().rev() {
                gone.push(v.remove(i));
            }
            Ok(gone)
        }
        _ => Ok(Vec::new()),
    })?;
    for r in gone {
        heap.decref(py, r)?;
    }
    Ok(())
}

/// `container[key] = value`.
fn store_subscr<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    container: ObjRef,
    key: ObjRef,
    value: ObjRef,
) -> Result<(), RtError> {
    if let Object::Slice { start, stop, step } = heap.get(py, key)?
        && !heap.with_object(py, container, |o| matches!(o, Object::Dict(_)))?
    {
        return slice_set(heap, py, container, (start, stop, step), value);
    }
    match heap.with_object(py, container, |o| o.type_name())? {
        "dict" | "Counter" | "collections.defaultdict" => heap.dict_set(py, container, key, value),
        "list" => heap.list_set(py, container, heap.int_value(py, key)?, value),
        other => Err(RtError::TypeError(format!(
            "'{other}' object does not support item assignment"
        ))),
    }
}

/// `iter(v)`: a new reference to an iterator (holding a reference to what it iterates).
pub(crate) fn get_iter<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    v: ObjRef,
) -> Result<ObjRef, RtError> {
    let it = match heap.get(py, v)? {
        Object::Range { start, stop, step } => IterObj::Range {
            next: start,
            stop,
            step,
        },
        Object::List(_) | Object::Tuple(_) | Object::Str(_) | Object::Bytes(_) => {
            heap.incref(py, v)?;
            IterObj::Seq { seq: v, index: 0 }
        }
        Object::Deque { state, .. } => {
            heap.incref(py, v)?;
            IterObj::Deque {
                deque: v,
                index: 0,
                state,
            }
        }
        Object::Set { table, .. } => {
            heap.incref(py, v)?;
            IterObj::Set {
                set: v,
                slot: 0,
                size: table.len(),
            }
        }
        // A dict iterates over its keys; a view over what it shows.
        Object::Dict(d) => {
            heap.incref(py, v)?;
            IterObj::Dict {
                dict: v,
                index: 0,
                size: d.len(),
                kind: View::Keys,
            }
        }
        Object::DictView { dict, kind } => {
            heap.incref(py, dict)?;
            IterObj::Dict {
                dict,
                index: 0,
                size: heap.len(py, dict)?,
                kind,
            }
        }
        Object::Iter(_) | Object::Generator(_) => {
            heap.incref(py, v)?;
            return Ok(v);
        }
        other => {
            return Err(RtError::TypeError(format!(
                "'{}' object is not iterable",
                other.type_name()
            )));
        }
    };
    Ok(heap.new_object(py, Object::Iter(it)))
}

/// `next(it)`: a new reference, or `None` when exhausted.
pub(crate) fn iter_next<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    it: ObjRef,
) -> Result<Option<ObjRef>, RtError> {
    let state = heap.with_object(py, it, |o| match o {
        Object::Iter(s) => Ok(s.clone()),
        Object::Generator(_) => Err(RtError::Unsupported(
            "gilcheck runs a generator from a for loop or sum() only (not from this built-in yet)"
                .into(),
        )),
        other => Err(RtError::TypeError(format!(
            "'{}' object is not an iterator",
            other.type_name()
        ))),
    })??;
    match state {
        IterObj::Range { next, stop, step } => {
            let more = if step > 0 { next < stop } else { next > stop };
            if !more {
                return Ok(None);
            }
            heap.update(py, it, |o| {
                if let Object::Iter(IterObj::Range { next, .. }) = o {
                    *next += step;
                }
                Ok(())
            })?;
            Ok(Some(heap.new_int(py, next)))
        }
        IterObj::Seq { seq, index } => {
            // A str's items are new one-character strs; a bytes object's, ints.
            let ch = heap.with_object(py, seq, |o| match o {
                Object::Str(s) => Some(s.chars().nth(index).map(Ok)),
                Object::Bytes(b) => Some(b.get(index).map(|&c| Err(c))),
                _ => None,
            })?;
            let item = match ch {
                Some(None) => return Ok(None),
                Some(Some(Ok(c))) => heap.new_str(py, c.encode_utf8(&mut [0; 4])),
                Some(Some(Err(c))) => heap.new_int(py, i64::from(c)),
                None => {
                    let item = heap.with_object(py, seq, |o| match o {
                        Object::List(v) | Object::Tuple(v) => v.get(index).copied(),
                        _ => None,
                    })?;
                    let Some(item) = item else { return Ok(None) };
                    heap.incref(py, item)?;
                    item
                }
            };
            heap.update(py, it, |o| {
                if let Object::Iter(IterObj::Seq { index, .. }) = o {
                    *index += 1;
                }
                Ok(())
            })?;
            Ok(Some(item))
        }
        IterObj::Dict {
            dict,
            index,
            size,
            kind,
        } => {
            let entries = heap.dict_entries(py, dict)?;
            if entries.len() != size {
                return Err(RtError::RuntimeError(
                    "dictionary changed size during iteration".into(),
                ));
            }
            let Some(&(k, v)) = entries.get(index) else {
                return Ok(None);
            };
            heap.update(py, it, |o| {
                if let Object::Iter(IterObj::Dict { index, .. }) = o {
                    *index += 1;
                }
                Ok(())
            })?;
            Ok(Some(match kind {
                View::Keys => {
                    heap.incref(py, k)?;
                    k
                }
                View::Values => {
                    heap.incref(py, v)?;
                    v
                }
                View::Items => heap.new_tuple(py, &[k, v])?,
            }))
        }
        IterObj::Set { set, slot, size } => {
            let next = heap.with_object(py, set, |o| match o {
                Object::Set { table, .. } => (
                    table.len(),
                    table.table[slot.min(table.table.len())..]
                        .iter()
                        .enumerate()
                        .find_map(|(j, s)| match *s {
                            crate::setobj::Slot::Active(_, k) => Some((slot + j, k)),
                            _ => None,
                        }),
                ),
                _ => (size, None),
            })?;
            if next.0 != size {
                return Err(RtError::RuntimeError(
                    "Set changed size during iteration".into(),
                ));
            }
            let Some((j, item)) = next.1 else {
                return Ok(None);
            };
            heap.update(py, it, |o| {
                if let Object::Iter(IterObj::Set { slot, .. }) = o {
                    *slot = j + 1;
                }
                Ok(())
            })?;
            heap.incref(py, item)?;
            Ok(Some(item))
        }
        IterObj::Deque {
            deque,
            index,
            state,
        } => {
            let (now, item) = heap.with_object(py, deque, |o| match o {
                Object::Deque { items, state, .. } => (*state, items.get(index).copied()),
                _ => (state, None),
            })?;
            if now != state {
                return Err(RtError::RuntimeError(
                    "deque mutated during iteration".into(),
                ));
            }
            let Some(item) = item else { return Ok(None) };
            heap.update(py, it, |o| {
                if let Object::Iter(IterObj::Deque { index, .. }) = o {
                    *index += 1;
                }
                Ok(())
            })?;
            heap.incref(py, item)?;
            Ok(Some(item))
        }
        IterObj::Enumerate { inner, count } => {
            let Some(x) = iter_next(heap, py, inner)? else {
                return Ok(None);
            };
            heap.update(py, it, |o| {
                if let Object::Iter(IterObj::Enumerate { count, .. }) = o {
                    *count += 1;
                }
                Ok(())
            })?;
            let n = heap.new_int(py, count);
            let pair = heap.new_tuple(py, &[n, x]);
            heap.decref(py, n)?;
            heap.decref(py, x)?;
            Ok(Some(pair?))
        }
        IterObj::Zip { iters } => {
            let mut items = Vec::new();
            for i in iters {
                match iter_next(heap, py, i) {
                    Ok(Some(x)) => items.push(x),
                    r => {
                        for x in items {
                            heap.decref(py, x)?;
                        }
                        r?;
                        return Ok(None);
                    }
                }
            }
            let t = heap.new_tuple(py, &items);
            for x in items {
                heap.decref(py, x)?;
            }
            Ok(Some(t?))
        }
    }
}
