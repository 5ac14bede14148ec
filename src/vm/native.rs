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
        Print | ThreadClass | ProcessClass | SimpleNamespace | LockAcquire
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
            if th.run != ThreadRun::Initial {
                return Err(RtError::RuntimeError(
                    "threads can only be started once".into(),
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

/// `threading.Thread(target=…, args=(…))` / `multiprocessing.Process(…)`.
fn new_thread<P: Platform>(
    cx: &mut Cx<'_, '_, P>,
    process: bool,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
) -> Result<Outcome, RtError> {
    let (py, heap) = (cx.py, cx.heap);
    let class = if process { "Process" } else { "Thread" };
    if !args.is_empty() {
        return Err(RtError::TypeError(format!(
            "{class}() takes keyword arguments only (target=, args=, name=)"
        )));
    }
    for (k, _) in kwargs {
        if !["target", "args", "kwargs", "name", "daemon"].contains(&k.as_str()) {
            return Err(RtError::TypeError(format!(
                "{class}() got an unexpected keyword argument '{k}'"
            )));
        }
    }
    let target = kwarg(kwargs, "target")
        .filter(|&t| t != ObjRef::NONE)
        .ok_or_else(|| {
            RtError::Unsupported(format!(
                "{class}() needs a target (gilcheck models threads that run a function)"
            ))
        })?;
    let daemon = match kwarg(kwargs, "daemon") {
        Some(d) if d != ObjRef::NONE => ops::truthy(heap, py, d)?,
        _ => false,
    };
    if daemon && (process || !cx.host.daemons()) {
        return Err(RtError::Unsupported(format!(
            "{class}(daemon=True) {}",
            if process {
                "(a daemon process)"
            } else {
                "under loom or shuttle, whose model checks need every thread to end"
            }
        )));
    }
    let name = match kwarg(kwargs, "name") {
        Some(n) if n != ObjRef::NONE => ops::to_str(heap, py, n)?,
        _ => {
            let base = cx.host.next_thread_name(process);
            // Since 3.10 a default thread name ends with its target's name (`_newname` and
            // `Thread.__init__` in Lib/threading.py).
            let target_name = match heap.get(py, target)? {
                Object::Function { name, .. } => {
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
    let kwdict = match kwarg(kwargs, "kwargs") {
        None | Some(ObjRef::NONE) => None,
        Some(d) => {
            if !heap.with_object(py, d, |o| matches!(o, Object::Dict(_)))? {
                return Err(RtError::TypeError(
                    "kwargs must be a dict (gilcheck models no other mapping)".into(),
                ));
            }
            Some(d)
        }
    };
    let argtuple = match kwarg(kwargs, "args") {
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
    heap.incref(py, target)?;
    if let Some(d) = kwdict {
        heap.incref(py, d)?;
    }
    let obj = heap.new_object(
        py,
        Object::Thread(ThreadObj {
            target: Some(target),
            args: Some(argtuple),
            kwargs: kwdict,
            name: name.into(),
            ident: None,
            run: ThreadRun::Initial,
            process,
            daemon,
        }),
    );
    Ok(Outcome::Return(obj))
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
    let Object::Instance { class, dict } = heap.get(py, obj)? else {
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
    match heap.get(py, obj)? {
        Object::Instance { class, dict } => {
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
                _ => Err(RtError::AttributeError(format!(
                    "'{}' object has no attribute '{name}'",
                    heap.type_name_of(py, obj)?
                ))),
            }
        }
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
    match heap.get(py, obj)? {
        Object::Instance { class, dict } => {
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
            heap.dict_set_str(py, dict, name, value)?;
            Ok(Store::Done)
        }
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
        Object::Instance { dict, .. } | Object::Class { dict, .. } => dict,
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
        other => Err(RtError::AttributeError(format!(
            "'{}' object attribute '{name}' is read-only in gilcheck",
            other.type_name()
        ))),
    }
}
