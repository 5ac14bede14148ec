//! The built-in functions, classes and methods gilcheck models (rule VM-4): `print`, `range`,
//! `len`, `repr`, `threading.Thread`/`Lock`, `multiprocessing.Process`, `time.*`, `sys.*`,
//! `types.SimpleNamespace`, and the methods of threads, locks and lists. Each takes its
//! arguments borrowed and returns a new reference, or asks the caller to block.

use crate::RtError;
use crate::builtins::Builtin;
use crate::heap::{Heap, ObjRef, Object, ThreadObj, ThreadRun};
use crate::platform::Platform;
use crate::runtime::Token;
use crate::vm::interp::{Acquire, Cx, PyThread, Ready, Wait, note};
use crate::vm::ops;
use crate::vm::policy::Policy;

/// What a built-in did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Returned this new reference.
    Return(ObjRef),
    /// Must wait with the GIL released; the instruction runs again afterwards.
    Block(Wait),
    /// Consumes the generator `genobj` (borrowed from the call's arguments), adding each item it
    /// yields to `acc` (owned): `sum(<generator>)`. The interpreter runs the generator's
    /// frame on the calling thread and completes the call when it finishes.
    Consume { genobj: ObjRef, acc: ObjRef },
}

fn none() -> Result<Outcome, RtError> {
    Ok(Outcome::Return(ObjRef::NONE))
}

fn arity(name: &str, args: &[ObjRef], min: usize, max: usize) -> Result<(), RtError> {
    if (min..=max).contains(&args.len()) {
        Ok(())
    } else if min == max {
        Err(RtError::TypeError(format!(
            "{name}() takes exactly {min} argument(s) ({} given)",
            args.len()
        )))
    } else {
        Err(RtError::TypeError(format!(
            "{name}() takes {min} to {max} arguments ({} given)",
            args.len()
        )))
    }
}

fn no_kwargs(name: &str, kwargs: &[(String, ObjRef)]) -> Result<(), RtError> {
    match kwargs.first() {
        Some((k, _)) => Err(RtError::TypeError(format!(
            "{name}() got an unexpected keyword argument '{k}'"
        ))),
        None => Ok(()),
    }
}

pub(crate) fn kwarg(kwargs: &[(String, ObjRef)], key: &str) -> Option<ObjRef> {
    kwargs.iter().find(|(k, _)| k == key).map(|&(_, v)| v)
}

/// A Lock or an RLock, which share their methods.
fn expect_lock<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    o: ObjRef,
    what: &str,
) -> Result<(), RtError> {
    match heap.with_object(py, o, |o| o.type_name())? {
        "lock" | "RLock" => Ok(()),
        t => Err(RtError::TypeError(format!("{what} needs a lock, not {t}"))),
    }
}

/// Calls the built-in `b` (with `receiver` for a method).
pub fn call<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    b: Builtin,
    receiver: Option<ObjRef>,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
) -> Result<Outcome, RtError> {
    use Builtin::*;
    let (py, heap) = (cx.py, cx.heap);
    // CPython 3.11 calls `callable(self, *args)` whenever a call's `self` slot is filled; only
    // a method descriptor takes the object apart. 3.11 compiles `assert x, msg` to
    // `LOAD_ASSERTION_ERROR; LOAD_CONST msg; CALL 0`, which fills the slot with the message.
    let joined: Vec<ObjRef>;
    let (receiver, args) = match receiver {
        Some(r) if !b.is_method() => {
            joined = std::iter::once(r).chain(args.iter().copied()).collect();
            (None, joined.as_slice())
        }
        _ => (receiver, args),
    };
    let this = || {
        receiver.ok_or_else(|| {
            RtError::TypeError(format!("{} needs an object to act on", b.qualname()))
        })
    };
    if let Some(r) = crate::vm::library::call(heap, py, b, receiver, args, kwargs) {
        return r.map(Outcome::Return);
    }
    if let Some(r) = crate::vm::sync::call(t, cx, b, receiver, args, kwargs) {
        return r;
    }
    if !matches!(
        b,
        Print | ThreadClass | ProcessClass | ThreadInit | SimpleNamespace | LockAcquire
    ) {
        no_kwargs(b.name(), kwargs)?;
    }
    match b {
        Print => {
            let text = |key: &str, default: &str| -> Result<String, RtError> {
                match kwarg(kwargs, key) {
                    Some(v) if v != ObjRef::NONE => ops::to_str(heap, py, v),
                    _ => Ok(default.to_string()),
                }
            };
            let (sep, end) = (text("sep", " ")?, text("end", "\n")?);
            let parts = args
                .iter()
                .map(|&a| ops::to_str(heap, py, a))
                .collect::<Result<Vec<_>, _>>()?;
            let line = format!("{}{end}", parts.join(&sep));
            note!(cx, format!("print {}", line.trim_end()));
            cx.host.print(&line, false);
            none()
        }
        Range => {
            arity("range", args, 1, 3)?;
            let ints = args
                .iter()
                .map(|&a| heap.int_value(py, a))
                .collect::<Result<Vec<_>, _>>()?;
            let (start, stop, step) = match ints[..] {
                [stop] => (0, stop, 1),
                [start, stop] => (start, stop, 1),
                [start, stop, step] => (start, stop, step),
                _ => unreachable!("arity checked"),
            };
            if step == 0 {
                return Err(RtError::ValueError("range() arg 3 must not be zero".into()));
            }
            Ok(Outcome::Return(
                heap.new_object(py, Object::Range { start, stop, step }),
            ))
        }
        Len => {
            arity("len", args, 1, 1)?;
            let n = match heap.get(py, args[0])? {
                Object::Range { start, stop, step } => ops::range_len(start, stop, step) as usize,
                _ => heap.len(py, args[0])?,
            };
            Ok(Outcome::Return(heap.new_int(py, n as i64)))
        }
        Sum => {
            arity("sum", args, 1, 2)?;
            let start = match args.get(1) {
                Some(&s) => {
                    if matches!(heap.get(py, s)?, Object::Str(_)) {
                        return Err(RtError::TypeError(
                            "sum() can't sum strings [use ''.join(seq) instead]".into(),
                        ));
                    }
                    heap.incref(py, s)?;
                    s
                }
                None => heap.new_int(py, 0),
            };
            if matches!(heap.get(py, args[0])?, Object::Generator(_)) {
                return Ok(Outcome::Consume {
                    genobj: args[0],
                    acc: start,
                });
            }
            // Anything else is iterated here, inside the one CALL (C code: no poll).
            let mut acc = start;
            let it = crate::vm::interp::get_iter(heap, py, args[0]);
            let it = match it {
                Ok(it) => it,
                Err(e) => {
                    heap.decref(py, acc)?;
                    return Err(e);
                }
            };
            loop {
                let item = match crate::vm::interp::iter_next(heap, py, it) {
                    Ok(Some(v)) => v,
                    Ok(None) => break,
                    Err(e) => {
                        heap.decref(py, acc)?;
                        heap.decref(py, it)?;
                        return Err(e);
                    }
                };
                let r = ops::binary(heap, py, crate::vm::code::BinOp::Add, acc, item);
                heap.decref(py, item)?;
                heap.decref(py, acc)?;
                match r {
                    Ok(r) => acc = r,
                    Err(e) => {
                        heap.decref(py, it)?;
                        return Err(e);
                    }
                }
            }
            heap.decref(py, it)?;
            Ok(Outcome::Return(acc))
        }
        Repr => {
            arity("repr", args, 1, 1)?;
            Ok(Outcome::Return(heap.new_str(py, &heap.repr(py, args[0])?)))
        }
        _ if b.is_exception() => {
            arity(b.name(), args, 0, 1)?;
            // `str(KeyError(k))` is `repr(k)`; the others show their argument as `str`.
            let message = match args.first() {
                Some(&m) if b == KeyErrorClass => heap.repr(py, m)?,
                Some(&m) => ops::to_str(heap, py, m)?,
                None => String::new(),
            };
            Ok(Outcome::Return(heap.new_object(
                py,
                Object::Exception {
                    class: b,
                    message: message.into(),
                },
            )))
        }
        ThreadClass | ProcessClass => new_thread(cx, b == ProcessClass, args, kwargs),
        ThreadInit => {
            let (obj, rest) = unbound(receiver, args, "Thread")?;
            let mut th = thread_obj(heap, py, obj)?;
            if th.run != ThreadRun::Initial {
                return Err(RtError::Unsupported(
                    "Thread.__init__ on a thread already started".into(),
                ));
            }
            init_thread(cx, &mut th, rest, kwargs)?;
            heap.update(py, obj, |o| {
                if let Object::Thread(t) = o {
                    *t = th;
                }
                Ok(())
            })?;
            none()
        }
        Super => super_object(t, cx, args),
        ObjectInit => {
            // `object.__init__` of a class that overrides `__init__` takes no arguments.
            let (_, args) = unbound(receiver, args, "object")?;
            if !args.is_empty() {
                return Err(RtError::TypeError(
                    "object.__init__() takes exactly one argument (the instance to initialize)"
                        .into(),
                ));
            }
            none()
        }
        ExceptionInit => {
            // `BaseException.__init__(self, *args)` sets `args`.
            let (obj, args) = unbound(receiver, args, "BaseException")?;
            let Some((_, dict)) = heap.instance_parts(py, obj)? else {
                return Err(RtError::TypeError(
                    "BaseException.__init__ needs an exception instance".into(),
                ));
            };
            let tuple = heap.new_tuple(py, args)?;
            let r = heap.dict_set_str(py, dict, "args", tuple);
            heap.decref(py, tuple)?;
            r?;
            none()
        }
        LockFactory => {
            arity("Lock", args, 0, 0)?;
            Ok(Outcome::Return(heap.new_lock(py)))
        }
        TimeTime | TimePerfCounter => {
            arity(b.name(), args, 0, 0)?;
            let now = cx.host.now();
            Ok(Outcome::Return(heap.new_float(py, now)))
        }
        TimeSleep => {
            arity("sleep", args, 1, 1)?;
            let secs = heap.float_value(py, args[0])?;
            if secs.is_nan() || secs < 0.0 {
                return Err(RtError::ValueError(
                    "sleep length must be non-negative".into(),
                ));
            }
            match cx.host.sleep(secs) {
                Ready::Now => {
                    note!(
                        cx,
                        format!(
                            "sleep({}) with the GIL released",
                            crate::heap::format_float(secs)
                        )
                    );
                    none()
                }
                Ready::Block(w) => Ok(Outcome::Block(w)),
            }
        }
        SysGetrefcount => {
            arity("getrefcount", args, 1, 1)?;
            // The argument's reference is the one the caller's stack holds (RC-7).
            let n = heap.refcount(py, args[0])?;
            Ok(Outcome::Return(heap.new_int(py, n as i64)))
        }
        SysSetswitchinterval => {
            arity("setswitchinterval", args, 1, 1)?;
            let secs = heap.float_value(py, args[0])?;
            cx.host.set_switch_interval(secs)?;
            none()
        }
        SysGetswitchinterval => {
            arity("getswitchinterval", args, 0, 0)?;
            let s = cx.host.switch_interval();
            Ok(Outcome::Return(heap.new_float(py, s)))
        }
        ThreadStart => {
            arity("start", args, 0, 0)?;
            let obj = this()?;
            let th = thread_obj(heap, py, obj)?;
            if !th.initialized {
                return Err(RtError::RuntimeError("thread.__init__() not called".into()));
            }
            if th.run != ThreadRun::Initial {
                return Err(RtError::RuntimeError(
                    "threads can only be started once".into(),
                ));
            }
            if th.daemon && !cx.host.daemons() {
                return Err(RtError::Unsupported(
                    "a daemon thread under loom or shuttle, whose model checks need every \
                     thread to end"
                        .into(),
                ));
            }
            let ident = cx.host.start(py, heap, obj, th.process)?;
            heap.update(py, obj, |o| {
                if let Object::Thread(th) = o {
                    th.ident = Some(ident);
                    th.run = ThreadRun::Started;
                }
                Ok(())
            })?;
            note!(cx, format!("start {}", th.name));
            none()
        }
        CurrentThread => {
            arity("current_thread", args, 0, 0)?;
            let obj = match t.thread_obj {
                Some(o) => o,
                None => {
                    // The main thread's object (`threading._MainThread`), made when first asked.
                    let o = heap.new_object(
                        py,
                        Object::Thread(ThreadObj {
                            target: None,
                            args: None,
                            kwargs: None,
                            name: t.name.as_str().into(),
                            ident: Some(t.ident),
                            run: ThreadRun::Started,
                            process: false,
                            daemon: false,
                            class: None,
                            dict: None,
                            initialized: true,
                        }),
                    );
                    t.thread_obj = Some(o);
                    o
                }
            };
            heap.incref(py, obj)?;
            Ok(Outcome::Return(obj))
        }
        GetIdent => {
            arity("get_ident", args, 0, 0)?;
            Ok(Outcome::Return(heap.new_int(py, i64::from(t.ident))))
        }
        ThreadIsAlive => {
            arity("is_alive", args, 0, 0)?;
            let th = thread_obj(heap, py, this()?)?;
            Ok(Outcome::Return(ObjRef::from_bool(
                th.run == ThreadRun::Started,
            )))
        }
        ThreadJoin => {
            arity("join", args, 0, 0)?;
            let th = thread_obj(heap, py, this()?)?;
            if !th.initialized {
                return Err(RtError::RuntimeError("Thread.__init__() not called".into()));
            }
            let Some(ident) = th.ident else {
                return Err(RtError::RuntimeError(
                    "cannot join thread before it is started".into(),
                ));
            };
            if ident == t.ident && !th.process {
                return Err(RtError::RuntimeError("cannot join current thread".into()));
            }
            match cx.host.join(py, heap, ident, th.process)? {
                Ready::Now => {
                    note!(cx, format!("join {}: it has finished", th.name));
                    none()
                }
                Ready::Block(w) => Ok(Outcome::Block(w)),
            }
        }
        LockAcquire | LockEnter => {
            arity(b.name(), args, 0, 2)?;
            for (k, _) in kwargs {
                if k != "blocking" && k != "timeout" {
                    return Err(RtError::TypeError(format!(
                        "acquire() got an unexpected keyword argument '{k}'"
                    )));
                }
            }
            let timeout = args.get(1).copied().or_else(|| kwarg(kwargs, "timeout"));
            if let Some(t) = timeout
                && heap.float_value(py, t).map_or(true, |x| x != -1.0)
            {
                return Err(RtError::Unsupported(
                    "lock.acquire(timeout=…) is not modelled: gilcheck has no clock (GIL-5)".into(),
                ));
            }
            let lock = this()?;
            expect_lock(heap, py, lock, b.qualname())?;
            let blocking = match args.first().copied().or_else(|| kwarg(kwargs, "blocking")) {
                Some(v) => ops::truthy(heap, py, v)?,
                None => true,
            };
            acquire(cx, lock, blocking)
        }
        LockRelease | LockExit => {
            if b == LockRelease {
                arity("release", args, 0, 0)?;
            }
            let lock = this()?;
            expect_lock(heap, py, lock, b.qualname())?;
            cx.host.release(py, heap, lock)?;
            let name = cx.name_of_lock(lock);
            note!(cx, format!("release {name}"));
            none()
        }
        LockLocked => {
            arity("locked", args, 0, 0)?;
            let lock = this()?;
            let held = match heap.get(py, lock)? {
                Object::Lock(l) => l.is_locked(),
                _ => return Err(RtError::TypeError("locked() needs a lock".into())),
            };
            note!(
                cx,
                format!(
                    "{} is {}",
                    cx.name_of_lock(lock),
                    if held { "held" } else { "free" }
                )
            );
            Ok(Outcome::Return(ObjRef::from_bool(held)))
        }
        ListAppend => {
            arity("append", args, 1, 1)?;
            heap.list_append(py, this()?, args[0])?;
            none()
        }
        SimpleNamespace => {
            arity("SimpleNamespace", args, 0, 0)?;
            let dict = heap.new_dict(py);
            for (k, v) in kwargs {
                heap.dict_set_str(py, dict, k, *v)?;
            }
            Ok(Outcome::Return(
                heap.new_object(py, Object::Namespace { dict }),
            ))
        }
        ModThreading | ModTime | ModSys | ModMultiprocessing | ModTypes | ModCollections
        | ModQueue => Err(RtError::TypeError("'module' object is not callable".into())),
        PropertyClass => {
            arity("property", args, 0, 2)?;
            let fget = args.first().copied().filter(|&f| f != ObjRef::NONE);
            let fset = args.get(1).copied().filter(|&f| f != ObjRef::NONE);
            for f in fget.iter().chain(&fset) {
                heap.incref(py, *f)?;
            }
            Ok(Outcome::Return(
                heap.new_object(py, Object::Property { fget, fset }),
            ))
        }
        PropertySetter => {
            arity("setter", args, 1, 1)?;
            let Object::Property { fget, .. } = heap.get(py, this()?)? else {
                return Err(RtError::TypeError("setter needs a property".into()));
            };
            for f in fget.iter().chain([&args[0]]) {
                heap.incref(py, *f)?;
            }
            Ok(Outcome::Return(heap.new_object(
                py,
                Object::Property {
                    fget,
                    fset: Some(args[0]),
                },
            )))
        }
        StaticMethodClass | ClassMethodClass => {
            arity(b.name(), args, 1, 1)?;
            heap.incref(py, args[0])?;
            Ok(Outcome::Return(heap.new_object(
                py,
                if b == StaticMethodClass {
                    Object::StaticMethod(args[0])
                } else {
                    Object::ClassMethod(args[0])
                },
            )))
        }
        Isinstance => {
            arity("isinstance", args, 2, 2)?;
            let classes = match heap.get(py, args[1])? {
                Object::Tuple(v) => v,
                _ => vec![args[1]],
            };
            let mut found = false;
            for c in classes {
                found |= is_instance(heap, py, args[0], c)?;
            }
            Ok(Outcome::Return(ObjRef::from_bool(found)))
        }
        TypeBuiltin => {
            if args.len() != 1 {
                return Err(RtError::Unsupported(
                    "type() with three arguments (a class made at run time)".into(),
                ));
            }
            if let Some(c) = heap.class_of(py, args[0])? {
                heap.incref(py, c)?;
                return Ok(Outcome::Return(c));
            }
            let t = heap.with_object(py, args[0], |o| o.type_name())?;
            match Builtin::ALL
                .iter()
                .find(|b| b.is_class() && (b.name() == t || b.qualname() == t))
            {
                Some(&b) => Ok(Outcome::Return(ObjRef::builtin(b))),
                None => Err(RtError::Unsupported(format!(
                    "type() of a '{t}' object (gilcheck has no object for its type)"
                ))),
            }
        }
        ObjectClass => Err(RtError::Unsupported(
            "gilcheck does not model instances of object itself".into(),
        )),
        BuildClass => Err(RtError::TypeError(
            "__build_class__: func must be a function".into(),
        )),
        // `vm::library` runs these (above).
        _ => Err(RtError::TypeError(format!(
            "{} cannot be called here",
            b.qualname()
        ))),
    }
}

/// `isinstance(obj, class)` for one class: a class statement's (along the instance's bases) or
/// a built-in one (by type name).
fn is_instance<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    obj: ObjRef,
    class: ObjRef,
) -> Result<bool, RtError> {
    match heap.get(py, class)? {
        Object::Class { .. } => match heap.class_of(py, obj)? {
            Some(c) => heap.derives_from(py, c, class),
            None => Ok(false),
        },
        Object::Builtin(Builtin::ObjectClass) => Ok(true),
        // An instance of `class E(Exception)` is an instance of the built-in classes above it.
        Object::Builtin(b)
            if b.is_exception()
                && let Some(c) = heap.class_of(py, obj)?
                && let Some(base) = heap.exception_base(py, c)? =>
        {
            Ok(base.is_exception_subclass(b))
        }
        Object::Builtin(b) if b.is_class() => {
            let t = heap.with_object(py, obj, |o| o.type_name())?;
            // bool is a subclass of int; Counter and defaultdict of dict.
            Ok(t == b.name()
                || t == b.qualname()
                || (b == Builtin::IntClass && t == "bool")
                || (b == Builtin::DictClass && matches!(t, "Counter" | "collections.defaultdict")))
        }
        other => Err(RtError::TypeError(format!(
            "isinstance() arg 2 must be a type, a tuple of types, or a union, not {}",
            other.type_name()
        ))),
    }
}

/// `lock.acquire(blocking)` through the host.
fn acquire<P: Platform>(
    cx: &mut Cx<'_, '_, P>,
    lock: ObjRef,
    blocking: bool,
) -> Result<Outcome, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    let name = cx.name_of_lock(lock);
    match cx.host.acquire(py, heap, lock, blocking)? {
        Acquire::Acquired => {
            note!(cx, format!("acquire {name}"));
            Ok(Outcome::Return(ObjRef::TRUE))
        }
        Acquire::Busy => {
            note!(cx, format!("acquire {name}: held by another thread"));
            Ok(Outcome::Return(ObjRef::FALSE))
        }
        Acquire::Block(w) => Ok(Outcome::Block(w)),
    }
}

/// `with mgr:` — calls `mgr.__enter__()`.
pub fn enter<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    mgr: ObjRef,
) -> Result<Outcome, RtError> {
    match cx.heap.with_object(cx.py, mgr, |o| o.type_name())? {
        "lock" | "RLock" => acquire(cx, mgr, true),
        "Condition" => call(t, cx, Builtin::CondEnter, Some(mgr), &[], &[]),
        "Semaphore" | "BoundedSemaphore" => call(t, cx, Builtin::SemEnter, Some(mgr), &[], &[]),
        other => Err(RtError::TypeError(format!(
            "'{other}' object does not support the context manager protocol"
        ))),
    }
}

fn thread_obj<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    obj: ObjRef,
) -> Result<ThreadObj, RtError> {
    match heap.get(py, obj)? {
        Object::Thread(t) => Ok(t),
        other => Err(RtError::TypeError(format!(
            "expected a thread, got {}",
            other.type_name()
        ))),
    }
}

/// The object an `__init__` acts on: its receiver, or (called through the class,
/// `Thread.__init__(self, …)`) its first argument.
fn unbound<'a>(
    receiver: Option<ObjRef>,
    args: &'a [ObjRef],
    class: &str,
) -> Result<(ObjRef, &'a [ObjRef]), RtError> {
    match (receiver, args.split_first()) {
        (Some(r), _) => Ok((r, args)),
        (None, Some((&first, rest))) => Ok((first, rest)),
        (None, None) => Err(RtError::TypeError(format!(
            "descriptor '__init__' of '{class}' object needs an argument"
        ))),
    }
}

/// `threading.Thread(target=…, args=(…))` / `multiprocessing.Process(…)`.
fn new_thread<P: Platform>(
    cx: &mut Cx<'_, '_, P>,
    process: bool,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
) -> Result<Outcome, RtError> {
    let mut th = ThreadObj::blank(process);
    init_thread(cx, &mut th, args, kwargs)?;
    Ok(Outcome::Return(
        cx.heap.new_object(cx.py, Object::Thread(th)),
    ))
}

/// `Thread.__init__(self, group=None, target=None, name=None, args=(), kwargs=None, *,
/// daemon=None)` (Lib/threading.py; Process's is the same without `daemon` modelled): fills
/// `th`, which takes new references. No target: its run does nothing.
fn init_thread<P: Platform>(
    cx: &mut Cx<'_, '_, P>,
    th: &mut ThreadObj,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
) -> Result<(), RtError> {
    const PARAMS: [&str; 5] = ["group", "target", "name", "args", "kwargs"];
    let (py, heap) = (cx.py, cx.heap);
    let process = th.process;
    let class = if process { "Process" } else { "Thread" };
    if args.len() > PARAMS.len() {
        return Err(RtError::TypeError(format!(
            "{class}.__init__() takes from 1 to 6 positional arguments but {} were given",
            args.len() + 1
        )));
    }
    let mut given: Vec<(&str, ObjRef)> = PARAMS.iter().copied().zip(args.iter().copied()).collect();
    for (k, v) in kwargs {
        if !PARAMS.contains(&k.as_str()) && k != "daemon" {
            return Err(RtError::TypeError(format!(
                "{class}.__init__() got an unexpected keyword argument '{k}'"
            )));
        }
        if given.iter().any(|(g, _)| g == k) {
            return Err(RtError::TypeError(format!(
                "{class}.__init__() got multiple values for argument '{k}'"
            )));
        }
        given.push((k.as_str(), *v));
    }
    let get = |key: &str| {
        given
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, v)| v)
            .filter(|&v| v != ObjRef::NONE)
    };
    if get("group").is_some() {
        return Err(RtError::AssertionError(
            "group argument must be None for now".into(),
        ));
    }
    let target = get("target");
    let daemon = match get("daemon") {
        Some(d) => ops::truthy(heap, py, d)?,
        None => false,
    };
    if daemon && process {
        return Err(RtError::Unsupported(
            "Process(daemon=True) (a daemon process)".into(),
        ));
    }
    let name = match get("name") {
        Some(n) if ops::truthy(heap, py, n)? => ops::to_str(heap, py, n)?,
        _ => {
            let base = cx.host.next_thread_name(process);
            // Since 3.10 a default thread name ends with its target's name (`_newname` and
            // `Thread.__init__` in Lib/threading.py).
            let target_name = match target.map(|t| heap.get(py, t)).transpose()? {
                Some(Object::Function { name, .. }) => {
                    Some(name.rsplit('.').next().unwrap_or(&name).to_string())
                }
                _ => None,
            };
            match target_name {
                Some(n) if !process && !matches!(cx.policy, Policy::Py38 | Policy::Py39) => {
                    format!("{base} ({n})")
                }
                _ => base,
            }
        }
    };
    let kwdict = match get("kwargs") {
        None => None,
        Some(d) => {
            if !heap.with_object(py, d, |o| matches!(o, Object::Dict(_)))? {
                return Err(RtError::TypeError(
                    "kwargs must be a dict (gilcheck models no other mapping)".into(),
                ));
            }
            Some(d)
        }
    };
    let argtuple = match get("args") {
        Some(a) => {
            match heap.with_object(py, a, |o| o.type_name())? {
                "tuple" | "list" => {}
                other => {
                    return Err(RtError::TypeError(format!(
                        "args must be a tuple, not {other}"
                    )));
                }
            }
            heap.incref(py, a)?;
            a
        }
        None => heap.new_tuple(py, &[])?,
    };
    for r in target.into_iter().chain(kwdict) {
        heap.incref(py, r)?;
    }
    // A second `__init__` drops what the first one kept.
    let old = [th.target.take(), th.args.take(), th.kwargs.take()];
    th.target = target;
    th.args = Some(argtuple);
    th.kwargs = kwdict;
    th.name = name.into();
    th.daemon = daemon;
    th.initialized = true;
    for r in old.into_iter().flatten() {
        heap.decref(py, r)?;
    }
    Ok(())
}

const DICT_METHODS: &[Builtin] = &[
    Builtin::DictGet,
    Builtin::DictKeys,
    Builtin::DictValues,
    Builtin::DictItems,
    Builtin::DictSetdefault,
    Builtin::DictUpdate,
    Builtin::DictCopy,
];

/// The built-in method `name` of `obj`'s type, if it has one (what `LOAD_METHOD` finds).
pub fn method<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    obj: ObjRef,
    name: &str,
) -> Result<Option<Builtin>, RtError> {
    use Builtin::*;
    let methods: &[Builtin] = match heap.with_object(py, obj, |o| o.type_name())? {
        "Thread" | "Process" => &[ThreadStart, ThreadJoin, ThreadIsAlive],
        "lock" => &[LockAcquire, LockRelease, LockLocked, LockEnter, LockExit],
        "RLock" => &[LockAcquire, LockRelease, LockEnter, LockExit],
        "Condition" => &[
            CondAcquire,
            CondRelease,
            CondEnter,
            CondExit,
            CondWait,
            CondNotify,
            CondNotifyAll,
        ],
        "Semaphore" | "BoundedSemaphore" => &[SemAcquire, SemRelease, SemEnter, SemExit],
        "Event" => &[EventSet, EventClear, EventIsSet, EventWait],
        "Queue" => &[
            QueuePut,
            QueueGet,
            QueuePutNowait,
            QueueGetNowait,
            QueueTaskDone,
            QueueJoin,
            QueueQsize,
            QueueEmptyMethod,
            QueueFullMethod,
        ],
        "list" => &[
            ListAppend,
            ListPop,
            ListInsert,
            ListExtend,
            ListIndex,
            ListCount,
            ListRemove,
            ListReverse,
            ListSort,
            ListCopy,
            ListClear,
        ],
        "dict" | "collections.defaultdict" => DICT_METHODS,
        // Counter's own `update` adds counts, and is found before dict's.
        "Counter" => &[
            CounterUpdate,
            CounterSubtract,
            CounterMostCommon,
            DictGet,
            DictKeys,
            DictValues,
            DictItems,
            DictSetdefault,
            DictCopy,
        ],
        "collections.deque" => &[
            DequeAppend,
            DequeAppendleft,
            DequePop,
            DequePopleft,
            DequeExtend,
            DequeClear,
        ],
        "str" => &[
            StrJoin,
            StrSplit,
            StrStrip,
            StrLower,
            StrUpper,
            StrStartswith,
            StrEndswith,
            StrReplace,
            StrCount,
            StrFind,
            StrEncode,
            StrFormat,
        ],
        "bytes" => &[BytesDecode],
        "property" => &[PropertySetter],
        "set" => &[
            SetAddMethod,
            SetDiscard,
            SetRemove,
            SetPop,
            SetClear,
            SetUpdateMethod,
            SetCopy,
            SetUnion,
            SetIntersection,
            SetDifference,
            SetIssubset,
            SetIssuperset,
            SetIsdisjoint,
        ],
        // A frozenset has the methods that do not change it.
        "frozenset" => &[
            SetCopy,
            SetUnion,
            SetIntersection,
            SetDifference,
            SetIssubset,
            SetIssuperset,
            SetIsdisjoint,
        ],
        _ => &[],
    };
    Ok(methods.iter().copied().find(|m| m.name() == name))
}

/// What an attribute lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    /// The value (a new reference).
    Value(ObjRef),
    /// A property's Python getter, to be called with the object (both borrowed): CPython runs
    /// it from inside `LOAD_ATTR`, a frame of its own with its own poll at `RESUME`.
    Getter(ObjRef, ObjRef),
}

/// What `STORE_ATTR` must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Done,
    /// Call a property's Python setter (borrowed) with the object and the value.
    Setter(ObjRef),
}

/// What `LOAD_METHOD` found on an instance of a class statement.
pub enum MethodLookup {
    /// A Python function of the class (borrowed): `[function, self]`, no bound method made.
    Function(ObjRef),
    /// Anything else: what `LOAD_ATTR` would find.
    Attr(Attr),
}

/// `LOAD_METHOD` on an instance: CPython's `_PyObject_GetMethod` finds a plain function in the
/// class unless a data descriptor or the instance's own dict comes first.
pub fn instance_method<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    obj: ObjRef,
    name: &str,
) -> Result<Option<MethodLookup>, RtError> {
    let Some((class, dict)) = heap.instance_parts(py, obj)? else {
        return Ok(None);
    };
    if let Some(t) = heap.class_lookup(py, class, name)?
        && matches!(heap.get(py, t)?, Object::Function { .. })
        && heap
            .dict_get_str(py, dict, name)?
            .map(|v| heap.decref(py, v))
            .transpose()?
            .is_none()
    {
        return Ok(Some(MethodLookup::Function(t)));
    }
    Ok(Some(MethodLookup::Attr(attribute(heap, py, obj, name)?)))
}

/// `obj.name` for any object: a value, or a getter to call.
pub fn attribute<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    obj: ObjRef,
    name: &str,
) -> Result<Attr, RtError> {
    if let Some((class, dict)) = heap.instance_parts(py, obj)? {
        return {
            let found = heap.class_lookup(py, class, name)?;
            let kind = match found {
                Some(t) => Some(heap.get(py, t)?),
                None => None,
            };
            if let Some(Object::Property { fget, .. }) = kind {
                return match fget {
                    Some(f) => Ok(Attr::Getter(f, obj)),
                    None => Err(RtError::AttributeError(format!(
                        "property '{name}' of '{}' object has no getter",
                        heap.type_name_of(py, obj)?
                    ))),
                };
            }
            if let Some(v) = heap.dict_get_str(py, dict, name)? {
                return Ok(Attr::Value(v));
            }
            match (found, kind) {
                (Some(f), Some(Object::Function { .. })) => {
                    Ok(Attr::Value(bind(heap, py, f, obj)?))
                }
                (Some(t), Some(_)) => class_attr_value(heap, py, class, t),
                _ if name == "__class__" => {
                    heap.incref(py, class)?;
                    Ok(Attr::Value(class))
                }
                // A subclass of threading.Thread: Thread's own methods and properties.
                _ if heap.with_object(py, obj, |o| matches!(o, Object::Thread(_)))? => {
                    getattr(heap, py, obj, name).map(Attr::Value)
                }
                _ => Err(RtError::AttributeError(format!(
                    "'{}' object has no attribute '{name}'",
                    heap.type_name_of(py, obj)?
                ))),
            }
        };
    }
    match heap.get(py, obj)? {
        Object::Super { class, receiver } => super_attribute(heap, py, class, receiver, name),
        Object::Class { name: cname, .. } => match heap.class_lookup(py, obj, name)? {
            Some(t) => class_attr_value(heap, py, obj, t),
            None if name == "__name__" => Ok(Attr::Value(heap.new_str(py, &cname))),
            None => Err(RtError::AttributeError(format!(
                "type object '{cname}' has no attribute '{name}'"
            ))),
        },
        Object::Method { func, receiver } => match name {
            "__func__" | "__self__" => {
                let v = if name == "__func__" { func } else { receiver };
                heap.incref(py, v)?;
                Ok(Attr::Value(v))
            }
            _ => Err(RtError::AttributeError(format!(
                "'method' object has no attribute '{name}'"
            ))),
        },
        _ => getattr(heap, py, obj, name).map(Attr::Value),
    }
}

/// `super()` in a method: its class is the method's `__class__` cell, its receiver the
/// method's first argument (3.11's `super_init_without_args` in Objects/typeobject.c);
/// `super(class, obj)` names both (CO-8).
fn super_object<P: Platform>(
    t: &PyThread,
    cx: &mut Cx<'_, '_, P>,
    args: &[ObjRef],
) -> Result<Outcome, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    let (class, receiver) = match *args {
        [class, receiver] => (class, receiver),
        [] => {
            let f = t
                .frames
                .last()
                .ok_or_else(|| RtError::RuntimeError("super(): no current frame".into()))?;
            let code = &cx.program.codes[f.code as usize];
            if code.argcount == 0 && !code.varargs {
                return Err(RtError::RuntimeError("super(): no arguments".into()));
            }
            let mut first = f.locals.first().copied().flatten();
            if code.cellvars.first() == code.varnames.first()
                && let Some(c) = first
                && let Object::Cell(v) = heap.get(py, c)?
            {
                first = v;
            }
            let first =
                first.ok_or_else(|| RtError::RuntimeError("super(): arg[0] deleted".into()))?;
            let k = code
                .freevars
                .iter()
                .position(|v| v == "__class__")
                .ok_or_else(|| RtError::RuntimeError("super(): __class__ cell not found".into()))?;
            let cells = code
                .cellvars
                .iter()
                .filter(|c| !code.varnames.contains(c))
                .count();
            let slot = code.varnames.len() + cells + k;
            let class = match f.locals.get(slot).copied().flatten() {
                Some(c) => match heap.get(py, c)? {
                    Object::Cell(Some(class)) => class,
                    _ => {
                        return Err(RtError::RuntimeError(
                            "super(): empty __class__ cell".into(),
                        ));
                    }
                },
                None => {
                    return Err(RtError::RuntimeError(
                        "super(): empty __class__ cell".into(),
                    ));
                }
            };
            (class, first)
        }
        _ => {
            return Err(RtError::Unsupported(
                "super() with one argument (an unbound super object)".into(),
            ));
        }
    };
    if !heap.with_object(py, class, |o| matches!(o, Object::Class { .. }))? {
        return Err(RtError::TypeError(format!(
            "super() argument 1 must be a type, not {}",
            heap.type_name_of(py, class)?
        )));
    }
    let of = match heap.class_of(py, receiver)? {
        Some(c) => c,
        None => receiver,
    };
    if !heap.derives_from(py, of, class)? {
        return Err(RtError::TypeError(
            "super(type, obj): obj must be an instance or subtype of type".into(),
        ));
    }
    heap.incref(py, class)?;
    heap.incref(py, receiver)?;
    Ok(Outcome::Return(
        heap.new_object(py, Object::Super { class, receiver }),
    ))
}

/// `super().name`: `name` looked up along the bases after `class` (single inheritance), bound
/// to the receiver as `super.__getattribute__` binds it; at the end of the chain, the
/// `__init__` of the built-in base (object, an exception class, threading.Thread) (CO-8).
fn super_attribute<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    class: ObjRef,
    receiver: ObjRef,
    name: &str,
) -> Result<Attr, RtError> {
    let missing = || RtError::AttributeError(format!("'super' object has no attribute '{name}'"));
    let receiver_is_class =
        heap.with_object(py, receiver, |o| matches!(o, Object::Class { .. }))?;
    let mut c = match heap.get(py, class)? {
        Object::Class { base, .. } => base,
        _ => None,
    };
    let bound = |func: Builtin| -> Result<Attr, RtError> {
        heap.incref(py, receiver)?;
        Ok(Attr::Value(
            heap.new_object(py, Object::BoundMethod { func, receiver }),
        ))
    };
    while let Some(k) = c {
        match heap.get(py, k)? {
            Object::Class { base, dict, .. } => {
                if let Some(v) = heap.dict_get_str(py, dict, name)? {
                    heap.decref(py, v)?; // the class's dict still holds it
                    return match heap.get(py, v)? {
                        Object::Function { .. } if !receiver_is_class => {
                            Ok(Attr::Value(bind(heap, py, v, receiver)?))
                        }
                        Object::Property { fget: Some(f), .. } if !receiver_is_class => {
                            Ok(Attr::Getter(f, receiver))
                        }
                        Object::ClassMethod(f) => {
                            let owner = heap.class_of(py, receiver)?.unwrap_or(receiver);
                            Ok(Attr::Value(bind(heap, py, f, owner)?))
                        }
                        _ => class_attr_value(heap, py, k, v),
                    };
                }
                c = base;
            }
            Object::Builtin(b) if b.is_exception() => {
                return match name {
                    "__init__" if !receiver_is_class => bound(Builtin::ExceptionInit),
                    _ => Err(missing()),
                };
            }
            Object::Builtin(Builtin::ThreadClass) if !receiver_is_class => {
                return match name {
                    "__init__" => bound(Builtin::ThreadInit),
                    "run" => Err(RtError::Unsupported(
                        "super().run() of threading.Thread (its run calls the target)".into(),
                    )),
                    _ => getattr(heap, py, receiver, name).map(Attr::Value),
                };
            }
            _ => break,
        }
    }
    match name {
        "__init__" if !receiver_is_class => bound(Builtin::ObjectInit),
        _ => Err(missing()),
    }
}

/// A value `t` (borrowed) found in a class's dict, as seen through the class (or through an
/// instance, for a non-function): a staticmethod unwraps, a classmethod binds to the class,
/// anything else is itself.
fn class_attr_value<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    class: ObjRef,
    t: ObjRef,
) -> Result<Attr, RtError> {
    let v = match heap.get(py, t)? {
        Object::StaticMethod(f) => f,
        Object::ClassMethod(f) => return Ok(Attr::Value(bind(heap, py, f, class)?)),
        _ => t,
    };
    heap.incref(py, v)?;
    Ok(Attr::Value(v))
}

/// A new bound method of the Python function `func` (borrowed) on `receiver` (borrowed).
fn bind<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    func: ObjRef,
    receiver: ObjRef,
) -> Result<ObjRef, RtError> {
    heap.incref(py, func)?;
    heap.incref(py, receiver)?;
    Ok(heap.new_object(py, Object::Method { func, receiver }))
}

/// `obj.name = value` for any object: stored, or a setter to call.
pub fn store_attribute<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    obj: ObjRef,
    name: &str,
    value: ObjRef,
) -> Result<Store, RtError> {
    if let Some((class, dict)) = heap.instance_parts(py, obj)? {
        if let Some(t) = heap.class_lookup(py, class, name)?
            && let Object::Property { fset, .. } = heap.get(py, t)?
        {
            return match fset {
                Some(f) => Ok(Store::Setter(f)),
                None => Err(RtError::AttributeError(format!(
                    "property '{name}' of '{}' object has no setter",
                    heap.type_name_of(py, obj)?
                ))),
            };
        }
        // Thread's `name` and `daemon` are properties of threading.Thread.
        if matches!(name, "name" | "daemon")
            && heap.with_object(py, obj, |o| matches!(o, Object::Thread(_)))?
        {
            return setattr(heap, py, obj, name, value).map(|()| Store::Done);
        }
        heap.dict_set_str(py, dict, name, value)?;
        return Ok(Store::Done);
    }
    match heap.get(py, obj)? {
        Object::Class { dict, .. } => {
            heap.dict_set_str(py, dict, name, value)?;
            Ok(Store::Done)
        }
        _ => setattr(heap, py, obj, name, value).map(|()| Store::Done),
    }
}

/// `del obj.name` (`DELETE_ATTR`): from an instance's or a class's dict.
pub fn delete_attribute<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    obj: ObjRef,
    name: &str,
) -> Result<(), RtError> {
    let dict = match heap.get(py, obj)? {
        Object::Instance { dict, .. }
        | Object::Class { dict, .. }
        | Object::Thread(ThreadObj {
            dict: Some(dict), ..
        }) => dict,
        other => {
            return Err(RtError::AttributeError(format!(
                "'{}' object attribute '{name}' is read-only",
                other.type_name()
            )));
        }
    };
    let key = heap.new_str(py, name);
    let r = heap.dict_del(py, dict, key);
    heap.decref(py, key)?;
    r.map_err(|e| match e {
        RtError::KeyError(_) => RtError::AttributeError(name.to_string()),
        e => e,
    })
}

/// `obj.name` (`LOAD_ATTR`): a new reference.
pub fn getattr<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    obj: ObjRef,
    name: &str,
) -> Result<ObjRef, RtError> {
    if let Some(m) = method(heap, py, obj, name)? {
        heap.incref(py, obj)?;
        return Ok(heap.new_object(
            py,
            Object::BoundMethod {
                func: m,
                receiver: obj,
            },
        ));
    }
    let missing =
        |t: &str| RtError::AttributeError(format!("'{t}' object has no attribute '{name}'"));
    match heap.get(py, obj)? {
        Object::Builtin(m) if m.is_module() => {
            m.module_attr(name).map(ObjRef::builtin).ok_or_else(|| {
                RtError::AttributeError(format!("module '{}' has no attribute '{name}'", m.name()))
            })
        }
        // `threading.Thread.__init__(self, …)`, `Exception.__init__(self, …)`: the unbound
        // `__init__` of a built-in base (CO-8).
        Object::Builtin(b) if name == "__init__" && b == Builtin::ThreadClass => {
            Ok(ObjRef::builtin(Builtin::ThreadInit))
        }
        Object::Builtin(b) if name == "__init__" && b.is_exception() => {
            Ok(ObjRef::builtin(Builtin::ExceptionInit))
        }
        Object::Builtin(Builtin::ObjectClass) if name == "__init__" => {
            Ok(ObjRef::builtin(Builtin::ObjectInit))
        }
        Object::Builtin(b) if b.is_class() && name == "__name__" => Ok(heap.new_str(py, b.name())),
        Object::Thread(t) if !t.initialized => Err(RtError::AssertionError(
            "Thread.__init__() not called".into(),
        )),
        Object::Thread(t) => match name {
            "name" => Ok(heap.new_str(py, &t.name)),
            "daemon" => Ok(ObjRef::from_bool(t.daemon)),
            "ident" => Ok(t
                .ident
                .map_or(ObjRef::NONE, |i| heap.new_int(py, i64::from(i)))),
            _ => Err(missing("Thread")),
        },
        Object::Namespace { dict } => heap
            .dict_get_str(py, dict, name)?
            .ok_or_else(|| missing("types.SimpleNamespace")),
        other => Err(missing(other.type_name())),
    }
}

/// `obj.name = value` (`STORE_ATTR`).
pub fn setattr<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    obj: ObjRef,
    name: &str,
    value: ObjRef,
) -> Result<(), RtError> {
    match heap.get(py, obj)? {
        Object::Namespace { dict } => heap.dict_set_str(py, dict, name, value),
        Object::Thread(t) if matches!(name, "name" | "daemon") => {
            if !t.initialized {
                return Err(RtError::AssertionError(
                    "Thread.__init__() not called".into(),
                ));
            }
            if name == "daemon" && t.run != ThreadRun::Initial {
                return Err(RtError::RuntimeError(
                    "cannot set daemon status of active thread".into(),
                ));
            }
            let text = (name == "name")
                .then(|| ops::to_str(heap, py, value))
                .transpose()?;
            let flag = ops::truthy(heap, py, value)?;
            heap.update(py, obj, |o| {
                if let Object::Thread(t) = o {
                    match text {
                        Some(n) => t.name = n.into(),
                        None => t.daemon = flag,
                    }
                }
                Ok(())
            })
        }
        other => Err(RtError::AttributeError(format!(
            "'{}' object attribute '{name}' is read-only in gilcheck",
            other.type_name()
        ))),
    }
}
