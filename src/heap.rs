//! The object heap: refcounted objects, deallocation, containers (rules RC-1 … RC-8).
//!
//! Objects live in slots. A handle ([`ObjRef`]) names a slot and the generation of the object that
//! was allocated in it, so a handle that outlives its object is detected (RC-5) instead of reading
//! whatever the slot holds now. Immortal objects (None, False, True, the small ints) have no slot
//! at all: their handles decode to their value and incref/decref do nothing (RC-3).

use crate::builtins::Builtin;
use crate::error::RtError;
use crate::lock::{LockCore, LockState};
use crate::platform::Platform;
use crate::refcount::{PlainRefcount, RefcountField};
use crate::runtime::Token;
use crate::setobj::{self, SetTable};
use std::fmt;
use std::sync::Arc;

/// Smallest and largest cached small int (CPython `_PY_NSMALLNEGINTS`, `_PY_NSMALLPOSINTS`).
pub const SMALL_INT_MIN: i64 = -5;
pub const SMALL_INT_MAX: i64 = 256;
const FIRST_SMALL_INT: u32 = 3;
const FIRST_BUILTIN: u32 = FIRST_SMALL_INT + (SMALL_INT_MAX - SMALL_INT_MIN + 1) as u32;
/// Room for the static objects of [`Builtin`] (more than there are, checked at compile time).
const MAX_BUILTINS: u32 = 256;
const _: () = assert!(Builtin::ALL.len() <= MAX_BUILTINS as usize);
const IMMORTAL_COUNT: u32 = FIRST_BUILTIN + MAX_BUILTINS;

/// What `getrefcount` reports for an immortal object: CPython 3.12+ on 64-bit (`_Py_IMMORTAL_REFCNT`
/// seen through `sys.getrefcount`, 4294967295).
pub const IMMORTAL_REFCNT: isize = u32::MAX as isize;

/// A handle to an object: a slot index and the generation of the object in it. Copying a handle
/// does not change any count; [`Heap::incref`] does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef {
    index: u32,
    generation: u32,
}

impl ObjRef {
    pub const NONE: ObjRef = ObjRef {
        index: 0,
        generation: 0,
    };
    pub const FALSE: ObjRef = ObjRef {
        index: 1,
        generation: 0,
    };
    pub const TRUE: ObjRef = ObjRef {
        index: 2,
        generation: 0,
    };

    /// The immortal small int `value`, if it is in `SMALL_INT_MIN..=SMALL_INT_MAX`.
    pub fn small_int(value: i64) -> Option<ObjRef> {
        (SMALL_INT_MIN..=SMALL_INT_MAX)
            .contains(&value)
            .then(|| ObjRef {
                index: FIRST_SMALL_INT + (value - SMALL_INT_MIN) as u32,
                generation: 0,
            })
    }

    /// The static object `b` (a built-in function, module, class or method descriptor).
    pub fn builtin(b: Builtin) -> ObjRef {
        debug_assert!(b.index() < MAX_BUILTINS);
        ObjRef {
            index: FIRST_BUILTIN + b.index(),
            generation: 0,
        }
    }

    pub fn from_bool(b: bool) -> ObjRef {
        if b { ObjRef::TRUE } else { ObjRef::FALSE }
    }

    /// RC-3: immortal objects ignore incref and decref and are never freed.
    pub fn is_immortal(self) -> bool {
        self.index < IMMORTAL_COUNT
    }

    fn immortal_value<P: Platform>(self) -> Object<P> {
        match self.index {
            0 => Object::None,
            1 => Object::Bool(false),
            2 => Object::Bool(true),
            i if i >= FIRST_BUILTIN => match Builtin::from_index(i - FIRST_BUILTIN) {
                Some(b) => Object::Builtin(b),
                None => Object::None,
            },
            i => Object::Int(i64::from(i - FIRST_SMALL_INT) + SMALL_INT_MIN),
        }
    }

    /// The handle's slot number (immortal objects: their fixed number).
    pub fn index(self) -> u32 {
        self.index
    }

    fn slot_index(self) -> usize {
        (self.index - IMMORTAL_COUNT) as usize
    }
}

impl fmt::Display for ObjRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_immortal() {
            write!(f, "<immortal #{}>", self.index)
        } else {
            write!(f, "<object #{}.{}>", self.index, self.generation)
        }
    }
}

impl fmt::Debug for ObjRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An object's value. Containers hold strong references to their items (RC-6).
pub enum Object<P: Platform> {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    /// A `bytes` object.
    Bytes(Arc<[u8]>),
    Tuple(Vec<ObjRef>),
    List(Vec<ObjRef>),
    /// Insertion-ordered pairs; keys compare by value like Python's (RC-8 does not depend on this).
    /// A `Counter` or `defaultdict` is a dict that says what a missing key reads as.
    Dict(DictObj),
    Lock(Arc<LockCore<P>>),
    /// A static object: built-in function, module, class or method descriptor (immortal).
    Builtin(Builtin),
    /// A code object (an index into the running program's code objects).
    Code {
        index: u32,
        name: Arc<str>,
    },
    /// A Python function: its code, the globals it runs with and the tuple of its parameters'
    /// default values (strong references).
    Function {
        code: u32,
        globals: ObjRef,
        name: Arc<str>,
        defaults: Option<ObjRef>,
        /// The keyword-only parameters' defaults, a dict (MAKE_FUNCTION flag 2).
        kwdefaults: Option<ObjRef>,
        /// The cells of its free variables, a tuple (MAKE_FUNCTION flag 8, CO-7).
        closure: Option<ObjRef>,
    },
    /// A cell of a closure: a variable a nested function shares with the one around it.
    Cell(Option<ObjRef>),
    /// A built-in method bound to its receiver (`lock.__exit__`, `thread.start`).
    BoundMethod {
        func: Builtin,
        receiver: ObjRef,
    },
    Range {
        start: i64,
        stop: i64,
        step: i64,
    },
    Iter(IterObj),
    /// A `threading.Thread` or `multiprocessing.Process`.
    Thread(ThreadObj),
    /// A `types.SimpleNamespace`: its attributes live in a dict it holds.
    Namespace {
        dict: ObjRef,
    },
    /// An exception instance (`AssertionError("message")`).
    Exception {
        class: Builtin,
        message: Arc<str>,
    },
    /// A generator (`RETURN_GENERATOR`): its frame while suspended.
    Generator(GenObj),
    /// A class made by a `class` statement: its name, its base (single inheritance; `None` for
    /// `object`) and the dict its body filled (strong references).
    Class {
        name: Arc<str>,
        base: Option<ObjRef>,
        dict: ObjRef,
    },
    /// An instance of a [`Object::Class`]: its attributes live in a dict it holds.
    Instance {
        class: ObjRef,
        dict: ObjRef,
    },
    /// A Python function bound to its first argument (`obj.method` as a value; a classmethod
    /// bound to its class).
    Method {
        func: ObjRef,
        receiver: ObjRef,
    },
    /// `property(fget, fset)`: a data descriptor whose getter and setter are called from inside
    /// `LOAD_ATTR` and `STORE_ATTR`.
    Property {
        fget: Option<ObjRef>,
        fset: Option<ObjRef>,
    },
    /// A `collections.deque`: its items, its `maxlen`, and CPython's mutation counter (`state`),
    /// which an iterator checks.
    Deque {
        items: std::collections::VecDeque<ObjRef>,
        maxlen: Option<usize>,
        state: u64,
    },
    /// A `set` or a `frozenset`: its keys in CPython's table layout (see `setobj`).
    Set {
        table: SetTable<ObjRef>,
        frozen: bool,
    },
    /// `d.keys()`, `d.values()`, `d.items()`: a live view of the dict it holds.
    DictView {
        dict: ObjRef,
        kind: View,
    },
    /// `staticmethod(f)`.
    StaticMethod(ObjRef),
    /// `classmethod(f)`.
    ClassMethod(ObjRef),
    /// `super()` or `super(class, receiver)`: looks names up past `class` in the receiver's
    /// chain of bases (strong references; CO-8).
    Super {
        class: ObjRef,
        receiver: ObjRef,
    },
    /// `threading.Condition`, `Semaphore`, `BoundedSemaphore`, `Event` (LOCK-6, LOCK-7).
    Sync(SyncObj),
    /// `slice(start, stop, step)` of ints or None (`BUILD_SLICE`).
    Slice {
        start: Option<i64>,
        stop: Option<i64>,
        step: Option<i64>,
    },
}

/// A dict's items, and what reading a missing key does (`__missing__`): a plain dict raises
/// KeyError, a `collections.Counter` calls its Python `__missing__` (which returns 0), a
/// `collections.defaultdict` calls its factory in C and stores the result (VM-14).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DictObj {
    pub items: Vec<(ObjRef, ObjRef)>,
    pub missing: Missing,
}

/// What a dict does for a missing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Missing {
    /// `dict`: KeyError.
    #[default]
    KeyError,
    /// `collections.Counter`: the Python `Counter.__missing__`, a frame of its own.
    Counter,
    /// `collections.defaultdict(factory)` (the factory owned; None raises KeyError).
    Default(ObjRef),
}

impl DictObj {
    pub fn new(missing: Missing) -> Self {
        DictObj {
            items: Vec::new(),
            missing,
        }
    }
}

impl std::ops::Deref for DictObj {
    type Target = Vec<(ObjRef, ObjRef)>;
    fn deref(&self) -> &Self::Target {
        &self.items
    }
}

impl std::ops::DerefMut for DictObj {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.items
    }
}

/// The threading objects CPython writes in Python over `_thread` locks (`Lib/threading.py`).
/// A thread that waits in one owns a fresh, held Lock (its *waiter*) in `waiters` and blocks on
/// it; waking it is releasing that Lock, as in CPython (LOCK-6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncObj {
    /// `Condition(lock)`: the Lock or RLock it is built on, and its waiters in arrival order.
    Condition {
        lock: ObjRef,
        waiters: std::collections::VecDeque<ObjRef>,
    },
    /// `Semaphore(value)`, or with `bound`, `BoundedSemaphore(value)`.
    Semaphore {
        value: u64,
        bound: Option<u64>,
        waiters: std::collections::VecDeque<ObjRef>,
    },
    /// `Event()`: its flag and the threads in `wait`.
    Event {
        flag: bool,
        waiters: std::collections::VecDeque<ObjRef>,
    },
    /// `queue.Queue(maxsize)`: its items (owned), the count of tasks not yet done, and the
    /// waiters of its three Conditions.
    Queue {
        items: std::collections::VecDeque<ObjRef>,
        maxsize: usize,
        unfinished: u64,
        not_empty: std::collections::VecDeque<ObjRef>,
        not_full: std::collections::VecDeque<ObjRef>,
        all_done: std::collections::VecDeque<ObjRef>,
    },
}

/// Which of a threading object's waiter queues: a Queue has three (its Conditions
/// `not_empty`, `not_full` and `all_tasks_done`), the others one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOn {
    /// The only queue of a Condition, Semaphore or Event; a Queue's `not_empty` (getters).
    Main,
    /// A Queue's `not_full` (putters on a full bounded queue).
    NotFull,
    /// A Queue's `all_tasks_done` (`join`).
    AllDone,
}

impl SyncObj {
    /// Every waiter, in the order the fingerprint and the refcount audit see them.
    pub fn waiters(&self) -> Vec<ObjRef> {
        match self {
            SyncObj::Condition { waiters, .. }
            | SyncObj::Semaphore { waiters, .. }
            | SyncObj::Event { waiters, .. } => waiters.iter().copied().collect(),
            SyncObj::Queue {
                not_empty,
                not_full,
                all_done,
                ..
            } => not_empty
                .iter()
                .chain(not_full)
                .chain(all_done)
                .copied()
                .collect(),
        }
    }

    pub fn waiters_mut(&mut self, on: WaitOn) -> &mut std::collections::VecDeque<ObjRef> {
        match (self, on) {
            (SyncObj::Queue { not_full, .. }, WaitOn::NotFull) => not_full,
            (SyncObj::Queue { all_done, .. }, WaitOn::AllDone) => all_done,
            (SyncObj::Queue { not_empty, .. }, _) => not_empty,
            (
                SyncObj::Condition { waiters, .. }
                | SyncObj::Semaphore { waiters, .. }
                | SyncObj::Event { waiters, .. },
                _,
            ) => waiters,
        }
    }
}

/// A generator's frame between two resumptions: it owns every reference in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenFrame {
    pub code: u32,
    pub pc: u32,
    pub stack: Vec<Option<ObjRef>>,
    pub locals: Vec<Option<ObjRef>>,
    pub globals: ObjRef,
}

/// A generator object (CPython's `PyGenObject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenObj {
    pub name: Arc<str>,
    /// The suspended frame; `None` while it runs on a thread (the thread's frame stack holds
    /// it then) and once it has finished.
    pub frame: Option<GenFrame>,
    pub running: bool,
}

/// The state of an iterator object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IterObj {
    Range {
        next: i64,
        stop: i64,
        step: i64,
    },
    /// Over a list or tuple, which it holds a reference to.
    Seq {
        seq: ObjRef,
        index: usize,
    },
    /// Over a dict's keys, values or items, holding the dict; `size` is the dict's length when
    /// the iteration began (a change is CPython's "dictionary changed size during iteration").
    Dict {
        dict: ObjRef,
        index: usize,
        size: usize,
        kind: View,
    },
    /// `enumerate(it, start)`: the iterator it draws from.
    Enumerate {
        inner: ObjRef,
        count: i64,
    },
    /// `zip(a, b, …)`: one iterator per argument.
    Zip {
        iters: Vec<ObjRef>,
    },
    /// Over a set, which it holds: the next slot, and the set's size when it began (a change
    /// is CPython's "Set changed size during iteration").
    Set {
        set: ObjRef,
        slot: usize,
        size: usize,
    },
    /// Over a deque, which it holds, with the deque's mutation counter when it began.
    Deque {
        deque: ObjRef,
        index: usize,
        state: u64,
    },
}

/// Which part of a dict a view or a dict iterator shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Keys,
    Values,
    Items,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::Keys => "dict_keys",
            View::Values => "dict_values",
            View::Items => "dict_items",
        }
    }
}

/// Where a thread object is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadRun {
    Initial,
    Started,
    Stopped,
}

/// A `threading.Thread` (or, with `process`, a `multiprocessing.Process`). It holds `target` and
/// `args` until its run ends, as CPython's `Thread.run` deletes them in its `finally`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadObj {
    pub target: Option<ObjRef>,
    pub args: Option<ObjRef>,
    /// `kwargs=`: a dict of str keys (owned), dropped with the target and args.
    pub kwargs: Option<ObjRef>,
    pub name: Arc<str>,
    /// The runtime thread running it, once started.
    pub ident: Option<u32>,
    pub run: ThreadRun,
    pub process: bool,
    /// `daemon=True`: the program does not wait for it at exit.
    pub daemon: bool,
    /// For an instance of a class statement deriving from `threading.Thread`: its class and
    /// the dict of its attributes (owned; CO-8).
    pub class: Option<ObjRef>,
    pub dict: Option<ObjRef>,
    /// Whether `Thread.__init__` has run (a subclass's `__init__` may not call it).
    pub initialized: bool,
}

impl ThreadObj {
    /// A thread object `Thread.__init__` has not yet filled.
    pub fn blank(process: bool) -> ThreadObj {
        ThreadObj {
            target: None,
            args: None,
            kwargs: None,
            name: "".into(),
            ident: None,
            run: ThreadRun::Initial,
            process,
            daemon: false,
            class: None,
            dict: None,
            initialized: false,
        }
    }
}

impl<P: Platform> Clone for Object<P> {
    fn clone(&self) -> Self {
        match self {
            Object::None => Object::None,
            Object::Bool(b) => Object::Bool(*b),
            Object::Int(i) => Object::Int(*i),
            Object::Float(x) => Object::Float(*x),
            Object::Str(s) => Object::Str(Arc::clone(s)),
            Object::Bytes(b) => Object::Bytes(Arc::clone(b)),
            Object::Tuple(v) => Object::Tuple(v.clone()),
            Object::List(v) => Object::List(v.clone()),
            Object::Dict(v) => Object::Dict(v.clone()),
            Object::Lock(l) => Object::Lock(Arc::clone(l)),
            Object::Builtin(b) => Object::Builtin(*b),
            Object::Code { index, name } => Object::Code {
                index: *index,
                name: Arc::clone(name),
            },
            Object::Function {
                code,
                globals,
                name,
                defaults,
                kwdefaults,
                closure,
            } => Object::Function {
                code: *code,
                globals: *globals,
                name: Arc::clone(name),
                defaults: *defaults,
                kwdefaults: *kwdefaults,
                closure: *closure,
            },
            Object::Cell(v) => Object::Cell(*v),
            Object::BoundMethod { func, receiver } => Object::BoundMethod {
                func: *func,
                receiver: *receiver,
            },
            Object::Range { start, stop, step } => Object::Range {
                start: *start,
                stop: *stop,
                step: *step,
            },
            Object::Iter(it) => Object::Iter(it.clone()),
            Object::Thread(t) => Object::Thread(t.clone()),
            Object::Namespace { dict } => Object::Namespace { dict: *dict },
            Object::Sync(o) => Object::Sync(o.clone()),
            Object::Slice { start, stop, step } => Object::Slice {
                start: *start,
                stop: *stop,
                step: *step,
            },
            Object::Exception { class, message } => Object::Exception {
                class: *class,
                message: Arc::clone(message),
            },
            Object::Generator(g) => Object::Generator(g.clone()),
            Object::Class { name, base, dict } => Object::Class {
                name: Arc::clone(name),
                base: *base,
                dict: *dict,
            },
            Object::Instance { class, dict } => Object::Instance {
                class: *class,
                dict: *dict,
            },
            Object::Method { func, receiver } => Object::Method {
                func: *func,
                receiver: *receiver,
            },
            Object::Property { fget, fset } => Object::Property {
                fget: *fget,
                fset: *fset,
            },
            Object::Deque {
                items,
                maxlen,
                state,
            } => Object::Deque {
                items: items.clone(),
                maxlen: *maxlen,
                state: *state,
            },
            Object::Set { table, frozen } => Object::Set {
                table: table.clone(),
                frozen: *frozen,
            },
            Object::DictView { dict, kind } => Object::DictView {
                dict: *dict,
                kind: *kind,
            },
            Object::StaticMethod(f) => Object::StaticMethod(*f),
            Object::ClassMethod(f) => Object::ClassMethod(*f),
            Object::Super { class, receiver } => Object::Super {
                class: *class,
                receiver: *receiver,
            },
        }
    }
}

impl<P: Platform> Object<P> {
    /// The Python type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::None => "NoneType",
            Object::Bool(_) => "bool",
            Object::Int(_) => "int",
            Object::Float(_) => "float",
            Object::Str(_) => "str",
            Object::Bytes(_) => "bytes",
            Object::Tuple(_) => "tuple",
            Object::List(_) => "list",
            Object::Set { frozen: false, .. } => "set",
            Object::Set { frozen: true, .. } => "frozenset",
            Object::Iter(IterObj::Set { .. }) => "set_iterator",
            Object::Dict(d) => match d.missing {
                Missing::KeyError => "dict",
                Missing::Counter => "Counter",
                Missing::Default(_) => "collections.defaultdict",
            },
            Object::Lock(l) if l.is_reentrant() => "RLock",
            Object::Lock(_) => "lock",
            Object::Sync(SyncObj::Condition { .. }) => "Condition",
            Object::Sync(SyncObj::Semaphore { bound: None, .. }) => "Semaphore",
            Object::Sync(SyncObj::Semaphore { .. }) => "BoundedSemaphore",
            Object::Sync(SyncObj::Event { .. }) => "Event",
            Object::Sync(SyncObj::Queue { .. }) => "Queue",
            Object::Slice { .. } => "slice",
            Object::Builtin(b) if b.is_module() => "module",
            Object::Builtin(b) if b.is_class() => "type",
            Object::Builtin(_) => "builtin_function_or_method",
            Object::Code { .. } => "code",
            Object::Function { .. } => "function",
            Object::Cell(_) => "cell",
            Object::BoundMethod { .. } => "builtin_function_or_method",
            Object::Range { .. } => "range",
            Object::Iter(IterObj::Range { .. }) => "range_iterator",
            Object::Iter(IterObj::Seq { .. }) => "list_iterator",
            Object::Iter(IterObj::Dict {
                kind: View::Keys, ..
            }) => "dict_keyiterator",
            Object::Iter(IterObj::Dict {
                kind: View::Values, ..
            }) => "dict_valueiterator",
            Object::Iter(IterObj::Dict {
                kind: View::Items, ..
            }) => "dict_itemiterator",
            Object::Iter(IterObj::Enumerate { .. }) => "enumerate",
            Object::Iter(IterObj::Zip { .. }) => "zip",
            Object::DictView { kind, .. } => kind.name(),
            Object::Deque { .. } => "collections.deque",
            Object::Iter(IterObj::Deque { .. }) => "_collections._deque_iterator",
            Object::Thread(t) if t.process => "Process",
            Object::Thread(_) => "Thread",
            Object::Namespace { .. } => "types.SimpleNamespace",
            Object::Exception { class, .. } => class.name(),
            Object::Generator(_) => "generator",
            Object::Class { .. } => "type",
            // The class's own name is `Heap::type_name_of`'s.
            Object::Instance { .. } => "object",
            Object::Method { .. } => "method",
            Object::Property { .. } => "property",
            Object::StaticMethod(_) => "staticmethod",
            Object::ClassMethod(_) => "classmethod",
            Object::Super { .. } => "super",
        }
    }

    /// The references this object holds (RC-6).
    fn children(&self) -> Vec<ObjRef> {
        match self {
            Object::Tuple(v) | Object::List(v) => v.clone(),
            Object::Dict(d) => {
                let factory = match d.missing {
                    Missing::Default(f) => Some(f),
                    _ => None,
                };
                d.iter().flat_map(|&(k, v)| [k, v]).chain(factory).collect()
            }
            Object::Function {
                globals,
                defaults,
                kwdefaults,
                closure,
                ..
            } => [*globals]
                .into_iter()
                .chain(*defaults)
                .chain(*kwdefaults)
                .chain(*closure)
                .collect(),
            Object::Cell(v) => v.iter().copied().collect(),
            Object::BoundMethod { receiver, .. } => vec![*receiver],
            Object::Iter(IterObj::Seq { seq, .. }) => vec![*seq],
            Object::Iter(IterObj::Dict { dict, .. }) | Object::DictView { dict, .. } => vec![*dict],
            Object::Iter(IterObj::Enumerate { inner, .. }) => vec![*inner],
            Object::Iter(IterObj::Zip { iters }) => iters.clone(),
            Object::Iter(IterObj::Deque { deque, .. }) => vec![*deque],
            Object::Deque { items, .. } => items.iter().copied().collect(),
            Object::Set { table, .. } => table.keys().collect(),
            Object::Iter(IterObj::Set { set, .. }) => vec![*set],
            Object::Thread(t) => t
                .target
                .iter()
                .chain(&t.args)
                .chain(&t.kwargs)
                .chain(&t.class)
                .chain(&t.dict)
                .copied()
                .collect(),
            Object::Namespace { dict } => vec![*dict],
            Object::Sync(SyncObj::Condition { lock, waiters }) => std::iter::once(*lock)
                .chain(waiters.iter().copied())
                .collect(),
            Object::Sync(SyncObj::Queue { items, .. }) => {
                let mut v: Vec<ObjRef> = items.iter().copied().collect();
                if let Object::Sync(o) = self {
                    v.extend(o.waiters());
                }
                v
            }
            Object::Sync(o) => o.waiters(),
            Object::Class { base, dict, .. } => base.iter().copied().chain([*dict]).collect(),
            Object::Instance { class, dict } => vec![*class, *dict],
            Object::Method { func, receiver } => vec![*func, *receiver],
            Object::Property { fget, fset } => fget.iter().chain(fset).copied().collect(),
            Object::StaticMethod(f) | Object::ClassMethod(f) => vec![*f],
            Object::Super { class, receiver } => vec![*class, *receiver],
            Object::Generator(GenObj { frame: Some(f), .. }) => f
                .stack
                .iter()
                .chain(&f.locals)
                .flatten()
                .copied()
                .chain([f.globals])
                .collect(),
            _ => Vec::new(),
        }
    }

    fn number(&self) -> Option<f64> {
        match *self {
            Object::Bool(b) => Some(f64::from(u8::from(b))),
            Object::Int(i) => Some(i as f64),
            Object::Float(x) => Some(x),
            _ => None,
        }
    }
}

/// One heap slot: the refcount field and the object (or a hole where a freed object was).
struct Slot<P: Platform, R> {
    refcount: R,
    body: P::Cell<Body<P>>,
}

struct Body<P: Platform> {
    generation: u32,
    object: Option<Object<P>>,
}

/// Counters of a heap's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapStats {
    pub allocated: u64,
    pub freed: u64,
}

struct Table<P: Platform, R> {
    /// Boxed so a slot never moves when the table grows.
    slots: Vec<Box<Slot<P, R>>>,
    free: Vec<u32>,
    stats: HeapStats,
    /// The key whose Python `__hash__` the instruction under way has called (VM-14).
    hashed: Option<ObjRef>,
    /// The undo log, once [`Heap::mark`] has been called (EX-16).
    trail: Option<Trail<P>>,
    /// The slots that were given a lock, whose state lives behind an `Arc` the trail does not
    /// see (a mark copies it).
    locks: Vec<u32>,
}

/// The undo log of the stateful search (EX-16): the old count or the old body of each slot,
/// logged when it first changes after the newest mark.
struct Trail<P: Platform> {
    entries: Vec<Undo<P>>,
    /// The current epoch, and per slot the epoch in which its count and its body were logged.
    epoch: u32,
    count_logged: Vec<u32>,
    body_logged: Vec<u32>,
}

enum Undo<P: Platform> {
    Count {
        slot: u32,
        count: isize,
    },
    Body {
        slot: u32,
        generation: u32,
        object: Option<Object<P>>,
    },
}

/// Where a heap stood at [`Heap::mark`]: [`Heap::undo`] puts it back exactly, slot numbers
/// included.
pub struct HeapMark {
    trail: usize,
    slots: usize,
    free: Vec<u32>,
    stats: HeapStats,
    hashed: Option<ObjRef>,
    locks: usize,
    lock_states: Vec<(u32, LockState)>,
}

/// The objects of one runtime. Every method takes a [`Token`]: the GIL orders all accesses (RC-1).
pub struct Heap<P: Platform, R: RefcountField<P> = PlainRefcount<P>> {
    table: P::Cell<Table<P, R>>,
}

// SAFETY: all interior state is in platform cells that are only accessed through methods taking a
// `Token`, i.e. with the GIL held; the GIL's mutex orders those accesses (GIL-1, RC-1).
unsafe impl<P: Platform, R: RefcountField<P>> Sync for Heap<P, R> {}
// SAFETY: as above; the objects themselves are `Send` data (handles, strings, `Arc`s).
unsafe impl<P: Platform, R: RefcountField<P>> Send for Heap<P, R> {}

impl<P: Platform, R: RefcountField<P>> Default for Heap<P, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Platform, R: RefcountField<P>> Heap<P, R> {
    pub fn new() -> Self {
        Heap {
            table: P::cell(Table {
                slots: Vec::new(),
                free: Vec::new(),
                stats: HeapStats::default(),
                hashed: None,
                trail: None,
                locks: Vec::new(),
            }),
        }
    }

    /// Logs slot `slot`'s count before it changes, if it has not been since the newest mark.
    fn log_count(&self, py: Token<'_>, slot: usize) {
        self.with_table(py, |t| {
            let Some(tr) = &mut t.trail else { return };
            if tr.count_logged.len() <= slot {
                tr.count_logged.resize(slot + 1, 0);
            }
            if tr.count_logged[slot] != tr.epoch {
                tr.count_logged[slot] = tr.epoch;
                let count = t.slots[slot].refcount.get(py);
                tr.entries.push(Undo::Count {
                    slot: slot as u32,
                    count,
                });
            }
        })
    }

    /// Logs slot `slot`'s body before it changes, if it has not been since the newest mark.
    fn log_body(&self, py: Token<'_>, slot: usize) {
        self.with_table(py, |t| {
            let Some(tr) = &mut t.trail else { return };
            if tr.body_logged.len() <= slot {
                tr.body_logged.resize(slot + 1, 0);
            }
            if tr.body_logged[slot] != tr.epoch {
                tr.body_logged[slot] = tr.epoch;
                let (generation, object) = P::with(&t.slots[slot].body, |b| {
                    // SAFETY: GIL held (token); a shared read of one body while the table is
                    // borrowed, and nothing else touches either.
                    let b = unsafe { &*b };
                    (b.generation, b.object.clone())
                });
                tr.entries.push(Undo::Body {
                    slot: slot as u32,
                    generation,
                    object,
                });
            }
        })
    }

    /// Marks where the heap stands, for [`Heap::undo`]; from now on every change is logged
    /// (EX-16). Costs the free list and the states of the locks, not the heap.
    pub fn mark(&self, py: Token<'_>) -> HeapMark {
        self.with_table(py, |t| {
            let tr = t.trail.get_or_insert_with(|| Trail {
                entries: Vec::new(),
                epoch: 0,
                count_logged: Vec::new(),
                body_logged: Vec::new(),
            });
            tr.epoch += 1;
            let trail = tr.entries.len();
            let lock_states = t
                .locks
                .iter()
                .filter_map(|&slot| {
                    // SAFETY: GIL held (token); a shared read of one body.
                    P::with(&t.slots[slot as usize].body, |b| match unsafe { &*b } {
                        Body {
                            object: Some(Object::Lock(core)),
                            ..
                        } => Some((slot, core.state())),
                        _ => None,
                    })
                })
                .collect();
            HeapMark {
                trail,
                slots: t.slots.len(),
                free: t.free.clone(),
                stats: t.stats,
                hashed: t.hashed,
                locks: t.locks.len(),
                lock_states,
            }
        })
    }

    /// Puts the heap back where it stood at `m`, which must be the newest mark not yet undone
    /// past, or one below it (marks are undone in stack order). Slots made since are dropped:
    /// no reference into the table outlives a heap method, and the caller runs between steps.
    pub fn undo(&self, py: Token<'_>, m: &HeapMark) {
        self.with_table(py, |t| {
            let Some(tr) = &mut t.trail else { return };
            while tr.entries.len() > m.trail {
                match tr.entries.pop().expect("an entry") {
                    Undo::Count { slot, count } => t.slots[slot as usize].refcount.set(py, count),
                    Undo::Body {
                        slot,
                        generation,
                        object,
                    } => {
                        // SAFETY: GIL held (token); the table is borrowed mutably, so no other
                        // access to this body is live.
                        P::with_mut(&t.slots[slot as usize].body, |b| unsafe {
                            *b = Body { generation, object }
                        });
                    }
                }
            }
            tr.epoch += 1;
            t.slots.truncate(m.slots);
            t.free.clone_from(&m.free);
            t.stats = m.stats;
            t.hashed = m.hashed;
            t.locks.truncate(m.locks);
            for &(slot, state) in &m.lock_states {
                P::with(&t.slots[slot as usize].body, |b| {
                    // SAFETY: GIL held (token); a shared read of one body, nothing else
                    // touches it (the lock's state is behind its own mutex).
                    if let Some(Object::Lock(core)) = unsafe { &(*b).object } {
                        core.set_state(state);
                    }
                });
            }
        })
    }

    fn with_table<T>(&self, _py: Token<'_>, f: impl FnOnce(&mut Table<P, R>) -> T) -> T {
        // SAFETY: the token proves the GIL is held; no other access to the table is live, and `f`
        // cannot reach the heap (it gets only the table).
        P::with_mut(&self.table, |t| f(unsafe { &mut *t }))
    }

    fn slot(&self, _py: Token<'_>, obj: ObjRef) -> &Slot<P, R> {
        let ptr = P::with(&self.table, |t| {
            // SAFETY: GIL held (token); a shared read of the table.
            let t = unsafe { &*t };
            &*t.slots[obj.slot_index()] as *const Slot<P, R>
        });
        // SAFETY: slots are boxed and never removed until the heap is dropped, so the pointer
        // stays valid for `&self`'s lifetime even if the table grows.
        unsafe { &*ptr }
    }

    fn with_body<T>(&self, py: Token<'_>, obj: ObjRef, f: impl FnOnce(&mut Body<P>) -> T) -> T {
        let slot = self.slot(py, obj);
        // SAFETY: GIL held (token); `f` gets only this body and cannot reach the heap.
        P::with_mut(&slot.body, |b| f(unsafe { &mut *b }))
    }

    /// Whether `obj` names a live object of this heap. Handles from another heap whose index is
    /// out of range count as dead.
    pub fn is_live(&self, py: Token<'_>, obj: ObjRef) -> bool {
        if obj.is_immortal() {
            return true;
        }
        let in_range = self.with_table(py, |t| obj.slot_index() < t.slots.len());
        in_range
            && self.with_body(py, obj, |b| {
                b.generation == obj.generation && b.object.is_some()
            })
    }

    fn check_live(&self, py: Token<'_>, obj: ObjRef, op: &'static str) -> Result<(), RtError> {
        if self.is_live(py, obj) {
            Ok(())
        } else {
            Err(RtError::UseAfterFree { obj, op })
        }
    }

    /// RC-2: a new object with count 1, owned by the caller.
    fn alloc(&self, py: Token<'_>, object: Object<P>) -> ObjRef {
        let lock = matches!(object, Object::Lock(_));
        let (index, reused) = self.with_table(py, |t| {
            t.stats.allocated += 1;
            match t.free.pop() {
                Some(i) => (i, true),
                None => {
                    t.slots.push(Box::new(Slot {
                        refcount: R::new(1),
                        body: P::cell(Body {
                            generation: 0,
                            object: None,
                        }),
                    }));
                    (t.slots.len() as u32 - 1, false)
                }
            }
        });
        if reused {
            self.log_body(py, index as usize);
            self.log_count(py, index as usize);
        }
        if lock {
            self.with_table(py, |t| t.locks.push(index));
        }
        let mut obj = ObjRef {
            index: index + IMMORTAL_COUNT,
            generation: 0,
        };
        obj.generation = self.with_body(py, obj, |b| {
            if reused {
                b.generation = b.generation.wrapping_add(1);
            }
            b.object = Some(object);
            b.generation
        });
        if reused {
            self.slot(py, obj).refcount.set(py, 1);
        }
        obj
    }

    pub fn new_int(&self, py: Token<'_>, value: i64) -> ObjRef {
        ObjRef::small_int(value).unwrap_or_else(|| self.alloc(py, Object::Int(value)))
    }

    pub fn new_float(&self, py: Token<'_>, value: f64) -> ObjRef {
        self.alloc(py, Object::Float(value))
    }

    pub fn new_str(&self, py: Token<'_>, value: &str) -> ObjRef {
        self.alloc(py, Object::Str(value.into()))
    }

    pub fn new_bytes(&self, py: Token<'_>, value: &[u8]) -> ObjRef {
        self.alloc(py, Object::Bytes(value.into()))
    }

    /// A tuple holding new references to `items` (the caller keeps its own).
    pub fn new_tuple(&self, py: Token<'_>, items: &[ObjRef]) -> Result<ObjRef, RtError> {
        self.incref_all(py, items)?;
        Ok(self.alloc(py, Object::Tuple(items.to_vec())))
    }

    /// A list holding new references to `items` (the caller keeps its own).
    pub fn new_list(&self, py: Token<'_>, items: &[ObjRef]) -> Result<ObjRef, RtError> {
        self.incref_all(py, items)?;
        Ok(self.alloc(py, Object::List(items.to_vec())))
    }

    /// A new object of any kind. The caller must already own a reference for each reference the
    /// object holds (its `children`), which the object takes over.
    pub(crate) fn new_object(&self, py: Token<'_>, object: Object<P>) -> ObjRef {
        self.alloc(py, object)
    }

    pub fn new_dict(&self, py: Token<'_>) -> ObjRef {
        self.alloc(py, Object::Dict(DictObj::default()))
    }

    /// A new, unlocked `threading.Lock`.
    pub fn new_lock(&self, py: Token<'_>) -> ObjRef {
        self.alloc(py, Object::Lock(Arc::new(LockCore::new())))
    }

    /// A new, unlocked `threading.RLock` (LOCK-5).
    pub fn new_rlock(&self, py: Token<'_>) -> ObjRef {
        self.alloc(py, Object::Lock(Arc::new(LockCore::new_reentrant())))
    }

    fn incref_all(&self, py: Token<'_>, items: &[ObjRef]) -> Result<(), RtError> {
        items
            .iter()
            .try_for_each(|&o| self.check_live(py, o, "store"))?;
        items.iter().try_for_each(|&o| self.incref(py, o))
    }

    /// RC-2: `Py_INCREF`. RC-3: no effect on immortal objects.
    pub fn incref(&self, py: Token<'_>, obj: ObjRef) -> Result<(), RtError> {
        if obj.is_immortal() {
            return Ok(());
        }
        self.check_live(py, obj, "incref")?;
        self.log_count(py, obj.slot_index());
        self.slot(py, obj).refcount.increment(py);
        Ok(())
    }

    /// RC-2, RC-4: `Py_DECREF`: deallocates the object when its count reaches zero, then drops
    /// the references it held. RC-3: no effect on immortal objects.
    pub fn decref(&self, py: Token<'_>, obj: ObjRef) -> Result<(), RtError> {
        if obj.is_immortal() {
            return Ok(());
        }
        if !self.is_live(py, obj) {
            return Err(RtError::NegativeRefcount { obj });
        }
        self.log_count(py, obj.slot_index());
        if self.slot(py, obj).refcount.decrement(py) == 0 {
            self.dealloc(py, obj)?;
        }
        Ok(())
    }

    /// RC-4: frees `obj` and, without recursion, every object whose last reference it held.
    fn dealloc(&self, py: Token<'_>, obj: ObjRef) -> Result<(), RtError> {
        let mut pending = vec![obj];
        while let Some(o) = pending.pop() {
            self.log_body(py, o.slot_index());
            let object = self.with_body(py, o, |b| {
                if b.generation == o.generation {
                    b.object.take()
                } else {
                    None
                }
            });
            let object = object.ok_or(RtError::DoubleFree { obj: o })?;
            self.with_table(py, |t| {
                t.free.push(o.index - IMMORTAL_COUNT);
                t.stats.freed += 1;
            });
            for child in object.children() {
                if child.is_immortal() {
                    continue;
                }
                if !self.is_live(py, child) {
                    return Err(RtError::NegativeRefcount { obj: child });
                }
                self.log_count(py, child.slot_index());
                match self.slot(py, child).refcount.decrement(py) {
                    0 => pending.push(child),
                    n if n < 0 => return Err(RtError::NegativeRefcount { obj: child }),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The stored count (`Py_REFCNT`); [`IMMORTAL_REFCNT`] for immortal objects.
    pub fn refcount(&self, py: Token<'_>, obj: ObjRef) -> Result<isize, RtError> {
        if obj.is_immortal() {
            return Ok(IMMORTAL_REFCNT);
        }
        self.check_live(py, obj, "refcount")?;
        Ok(self.slot(py, obj).refcount.get(py))
    }

    /// RC-7: `sys.getrefcount(obj)`: the count while the call holds its own reference to its
    /// argument, so one more than the references the caller can see.
    pub fn getrefcount(&self, py: Token<'_>, obj: ObjRef) -> Result<isize, RtError> {
        self.incref(py, obj)?;
        let n = self.refcount(py, obj);
        self.decref(py, obj)?;
        n
    }

    /// A copy of the object's value (handles inside containers are copied, not increfed).
    pub fn get(&self, py: Token<'_>, obj: ObjRef) -> Result<Object<P>, RtError> {
        if obj.is_immortal() {
            return Ok(obj.immortal_value());
        }
        self.check_live(py, obj, "read")?;
        Ok(self
            .with_body(py, obj, |b| b.object.clone())
            .expect("checked live"))
    }

    /// Runs `f` on the object's value without copying it. `f` must not reach the heap.
    pub(crate) fn with_object<T>(
        &self,
        py: Token<'_>,
        obj: ObjRef,
        f: impl FnOnce(&Object<P>) -> T,
    ) -> Result<T, RtError> {
        if obj.is_immortal() {
            return Ok(f(&obj.immortal_value()));
        }
        self.check_live(py, obj, "read")?;
        Ok(self.with_body(py, obj, |b| f(b.object.as_ref().expect("checked live"))))
    }

    /// Changes a mortal object's value in place; `f` must not reach the heap.
    pub(crate) fn update<T>(
        &self,
        py: Token<'_>,
        obj: ObjRef,
        f: impl FnOnce(&mut Object<P>) -> Result<T, RtError>,
    ) -> Result<T, RtError> {
        if obj.is_immortal() {
            return Err(RtError::TypeError(format!(
                "{} is immutable",
                obj.immortal_value::<P>().type_name()
            )));
        }
        self.check_live(py, obj, "write")?;
        self.log_body(py, obj.slot_index());
        self.with_body(py, obj, |b| f(b.object.as_mut().expect("checked live")))
    }

    pub fn int_value(&self, py: Token<'_>, obj: ObjRef) -> Result<i64, RtError> {
        match self.get(py, obj)? {
            Object::Int(i) => Ok(i),
            Object::Bool(b) => Ok(i64::from(b)),
            other => Err(RtError::TypeError(format!(
                "expected int, got {}",
                other.type_name()
            ))),
        }
    }

    pub fn float_value(&self, py: Token<'_>, obj: ObjRef) -> Result<f64, RtError> {
        self.get(py, obj)?
            .number()
            .ok_or_else(|| RtError::TypeError("expected a number".into()))
    }

    /// The lock object behind `obj`.
    pub(crate) fn lock_core(
        &self,
        py: Token<'_>,
        obj: ObjRef,
    ) -> Result<Arc<LockCore<P>>, RtError> {
        match self.get(py, obj)? {
            Object::Lock(l) => Ok(l),
            other => Err(RtError::TypeError(format!(
                "expected lock, got {}",
                other.type_name()
            ))),
        }
    }

    /// Python `==` for the kinds a dict key can be: numbers by value (so `1 == 1.0 == True`),
    /// strings and tuples by content, everything else by identity.
    pub fn eq(&self, py: Token<'_>, a: ObjRef, b: ObjRef) -> Result<bool, RtError> {
        if a == b {
            return Ok(true);
        }
        let (x, y) = (self.get(py, a)?, self.get(py, b)?);
        Ok(match (&x, &y) {
            (Object::Str(s), Object::Str(t)) => s == t,
            (Object::Bytes(s), Object::Bytes(t)) => s == t,
            (Object::Deque { items: s, .. }, Object::Deque { items: t, .. }) => {
                s.len() == t.len() && {
                    for (&p, &q) in s.iter().zip(t) {
                        if !self.eq(py, p, q)? {
                            return Ok(false);
                        }
                    }
                    true
                }
            }
            (Object::Tuple(s), Object::Tuple(t)) | (Object::List(s), Object::List(t)) => {
                s.len() == t.len() && {
                    for (&p, &q) in s.iter().zip(t) {
                        if !self.eq(py, p, q)? {
                            return Ok(false);
                        }
                    }
                    true
                }
            }
            (Object::Set { table: s, .. }, Object::Set { table: t, .. }) => {
                s.len() == t.len() && {
                    for k in s.keys() {
                        if self.set_find(py, b, k)?.is_none() {
                            return Ok(false);
                        }
                    }
                    true
                }
            }
            (Object::Dict(s), Object::Dict(t)) => {
                s.len() == t.len() && {
                    for &(k, v) in s.iter() {
                        let Some(i) = self.dict_find(py, b, k)? else {
                            return Ok(false);
                        };
                        if !self.eq(py, v, t[i].1)? {
                            return Ok(false);
                        }
                    }
                    true
                }
            }
            _ => match (x.number(), y.number()) {
                (Some(p), Some(q)) => p == q,
                _ => false,
            },
        })
    }

    /// The hash a set files `key` under (see `setobj`): CPython's for numbers and tuples of
    /// them, a fixed one for strs and None (CPython's vary by process), the object's identity
    /// for objects compared by identity.
    pub fn hash_of(&self, py: Token<'_>, key: ObjRef) -> Result<i64, RtError> {
        self.require_hashable(py, key)?;
        Ok(match self.get(py, key)? {
            Object::Int(i) => setobj::hash_int(i),
            Object::Bool(b) => i64::from(b),
            Object::Float(x) => setobj::hash_float(x),
            Object::Str(s) => setobj::hash_str(&s),
            Object::Bytes(b) => setobj::hash_bytes(&b),
            Object::None => setobj::hash_str("None"),
            Object::Tuple(items) => {
                let hashes = items
                    .iter()
                    .map(|&i| self.hash_of(py, i))
                    .collect::<Result<Vec<_>, _>>()?;
                setobj::hash_tuple(&hashes)
            }
            Object::Set { .. } => {
                return Err(RtError::Unsupported(
                    "a frozenset inside a set or as a dict key".into(),
                ));
            }
            _ => i64::from(key.index) << 4 | i64::from(key.generation & 0xf),
        })
    }

    /// The slot of `key` in set `set`, if it is there (`==` among the keys of the same hash).
    pub fn set_find(
        &self,
        py: Token<'_>,
        set: ObjRef,
        key: ObjRef,
    ) -> Result<Option<usize>, RtError> {
        let h = self.hash_of(py, key)?;
        self.set_find_hashed(py, set, key, h)
    }

    /// [`Heap::set_find`] for a key whose hash is known.
    fn set_find_hashed(
        &self,
        py: Token<'_>,
        set: ObjRef,
        key: ObjRef,
        h: i64,
    ) -> Result<Option<usize>, RtError> {
        let entries: Vec<(usize, ObjRef)> = match self.get(py, set)? {
            Object::Set { table, .. } => table
                .table
                .iter()
                .enumerate()
                .filter_map(|(j, s)| match *s {
                    setobj::Slot::Active(kh, k) if kh == h => Some((j, k)),
                    _ => None,
                })
                .collect(),
            other => {
                return Err(RtError::TypeError(format!(
                    "'{}' object is not a set",
                    other.type_name()
                )));
            }
        };
        for (j, k) in entries {
            if self.eq(py, k, key)? {
                return Ok(Some(j));
            }
        }
        Ok(None)
    }

    /// RC-6: `s.add(key)`: the set takes a reference to a key it did not have; true if added.
    pub fn set_add(&self, py: Token<'_>, set: ObjRef, key: ObjRef) -> Result<bool, RtError> {
        let h = self.hash_of(py, key)?;
        if self.set_find_hashed(py, set, key, h)?.is_some() {
            return Ok(false);
        }
        self.incref(py, key)?;
        self.update(py, set, |o| match o {
            Object::Set { table, .. } => {
                table.insert(h, key);
                Ok(())
            }
            _ => unreachable!("set_find checked the kind"),
        })?;
        Ok(true)
    }

    /// RC-6: `s.discard(key)`: drops the set's reference; true if it was there.
    pub fn set_discard(&self, py: Token<'_>, set: ObjRef, key: ObjRef) -> Result<bool, RtError> {
        let Some(j) = self.set_find(py, set, key)? else {
            return Ok(false);
        };
        let k = self.update(py, set, |o| match o {
            Object::Set { table, .. } => Ok(table.remove_slot(j)),
            _ => unreachable!("set_find checked the kind"),
        })?;
        if let Some(k) = k {
            self.decref(py, k)?;
        }
        Ok(true)
    }

    /// A new set (or frozenset) of `items`, added in order (new references).
    pub fn new_set(
        &self,
        py: Token<'_>,
        items: &[ObjRef],
        frozen: bool,
    ) -> Result<ObjRef, RtError> {
        let set = self.alloc(
            py,
            Object::Set {
                table: SetTable::default(),
                frozen,
            },
        );
        for &i in items {
            if let Err(e) = self.set_add(py, set, i) {
                self.decref(py, set)?;
                return Err(e);
            }
        }
        Ok(set)
    }

    /// A new set (or frozenset) with the table of set `other` (`set(s)`, `s.copy()`: CPython's
    /// `set_merge` into an empty set).
    pub fn copy_set(&self, py: Token<'_>, other: ObjRef, frozen: bool) -> Result<ObjRef, RtError> {
        let Object::Set { table: src, .. } = self.get(py, other)? else {
            return Err(RtError::TypeError("not a set".into()));
        };
        let mut table = SetTable::default();
        table.merge_into_empty(&src);
        for k in table.keys() {
            self.incref(py, k)?;
        }
        Ok(self.alloc(py, Object::Set { table, frozen }))
    }

    /// The keys of a set in iteration order (borrowed).
    pub fn set_keys(&self, py: Token<'_>, set: ObjRef) -> Result<Vec<ObjRef>, RtError> {
        match self.get(py, set)? {
            Object::Set { table, .. } => Ok(table.keys().collect()),
            other => Err(RtError::TypeError(format!(
                "'{}' object is not a set",
                other.type_name()
            ))),
        }
    }

    /// VM-14: the interpreter has called `key`'s Python `__hash__` for the dict operation under
    /// way (`Some`), or that operation is over (`None`).
    pub fn set_hashed(&self, py: Token<'_>, key: Option<ObjRef>) {
        self.with_table(py, |t| t.hashed = key);
    }

    fn require_hashable(&self, py: Token<'_>, key: ObjRef) -> Result<(), RtError> {
        if let Some(class) = self.class_of(py, key)? {
            let hashed = self.with_table(py, |t| t.hashed) == Some(key);
            for dunder in ["__hash__", "__eq__"] {
                if dunder == "__hash__" && hashed {
                    continue;
                }
                if self.class_lookup(py, class, dunder)?.is_some() {
                    let only = if dunder == "__hash__" {
                        " other than d[k], d[k] = v and k in d"
                    } else {
                        ""
                    };
                    return Err(RtError::Unsupported(format!(
                        "gilcheck cannot yet call a Python {dunder} from inside a dict \
                         operation{only} (a key of class '{}')",
                        self.type_name_of(py, key)?
                    )));
                }
            }
        }
        match self.get(py, key)? {
            Object::List(_)
            | Object::Dict(_)
            | Object::Slice { .. }
            | Object::Set { frozen: false, .. } => Err(RtError::TypeError(format!(
                "unhashable type: '{}'",
                self.get(py, key)?.type_name()
            ))),
            _ => Ok(()),
        }
    }

    /// The length of a list, tuple, dict or str.
    pub fn len(&self, py: Token<'_>, obj: ObjRef) -> Result<usize, RtError> {
        match self.get(py, obj)? {
            Object::List(v) | Object::Tuple(v) => Ok(v.len()),
            Object::Dict(d) => Ok(d.len()),
            Object::Str(s) => Ok(s.chars().count()),
            Object::Bytes(b) => Ok(b.len()),
            Object::DictView { dict, .. } => self.len(py, dict),
            Object::Deque { items, .. } => Ok(items.len()),
            Object::Set { table, .. } => Ok(table.len()),
            other => Err(RtError::TypeError(format!(
                "object of type '{}' has no len()",
                other.type_name()
            ))),
        }
    }

    /// RC-6: `list.append(item)`: the list takes a new reference to `item`.
    pub fn list_append(&self, py: Token<'_>, list: ObjRef, item: ObjRef) -> Result<(), RtError> {
        self.check_live(py, item, "store")?;
        self.update(py, list, |o| match o {
            Object::List(v) => {
                v.push(item);
                Ok(())
            }
            other => Err(RtError::TypeError(format!(
                "'{}' object has no attribute 'append'",
                other.type_name()
            ))),
        })?;
        self.incref(py, item)
    }

    fn index(len: usize, i: i64) -> Result<usize, RtError> {
        Self::position(len, i).ok_or_else(|| RtError::IndexError("index out of range".into()))
    }

    /// Python's index `i` (negative from the end) into a sequence of `len` items, if inside.
    pub fn position(len: usize, i: i64) -> Option<usize> {
        let j = if i < 0 { i + len as i64 } else { i };
        (0..len as i64).contains(&j).then_some(j as usize)
    }

    /// RC-6: `seq[i]` on a list or tuple: a new reference to the item.
    pub fn seq_get(&self, py: Token<'_>, seq: ObjRef, i: i64) -> Result<ObjRef, RtError> {
        let item = match self.get(py, seq)? {
            Object::List(v) | Object::Tuple(v) => v[Self::index(v.len(), i)?],
            other => {
                return Err(RtError::TypeError(format!(
                    "'{}' object is not subscriptable",
                    other.type_name()
                )));
            }
        };
        self.incref(py, item)?;
        Ok(item)
    }

    /// RC-6: `list[i] = item`: the list takes a reference to `item` and drops the old one.
    pub fn list_set(
        &self,
        py: Token<'_>,
        list: ObjRef,
        i: i64,
        item: ObjRef,
    ) -> Result<(), RtError> {
        self.check_live(py, item, "store")?;
        let old = self.update(py, list, |o| match o {
            Object::List(v) => {
                let j = Self::index(v.len(), i)?;
                Ok(std::mem::replace(&mut v[j], item))
            }
            other => Err(RtError::TypeError(format!(
                "'{}' object does not support item assignment",
                other.type_name()
            ))),
        })?;
        self.incref(py, item)?;
        self.decref(py, old)
    }

    /// The (key, value) pairs of a dict, borrowed, in insertion order.
    pub fn dict_entries(
        &self,
        py: Token<'_>,
        dict: ObjRef,
    ) -> Result<Vec<(ObjRef, ObjRef)>, RtError> {
        match self.get(py, dict)? {
            Object::Dict(d) => Ok(d.items),
            other => Err(RtError::TypeError(format!(
                "expected dict, got {}",
                other.type_name()
            ))),
        }
    }

    fn dict_find(
        &self,
        py: Token<'_>,
        dict: ObjRef,
        key: ObjRef,
    ) -> Result<Option<usize>, RtError> {
        self.require_hashable(py, key)?;
        for (i, (k, _)) in self.dict_entries(py, dict)?.into_iter().enumerate() {
            if self.eq(py, k, key)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// `dict.get(key)`: a new reference to the value, or None when the key is missing.
    pub fn dict_find_value(
        &self,
        py: Token<'_>,
        dict: ObjRef,
        key: ObjRef,
    ) -> Result<Option<ObjRef>, RtError> {
        match self.dict_find(py, dict, key)? {
            Some(i) => {
                let v = self.dict_entries(py, dict)?[i].1;
                self.incref(py, v)?;
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }

    /// `key in dict`.
    pub fn dict_contains(&self, py: Token<'_>, dict: ObjRef, key: ObjRef) -> Result<bool, RtError> {
        Ok(self.dict_find(py, dict, key)?.is_some())
    }

    /// RC-6: `dict[key]`: a new reference to the value, or `KeyError`.
    pub fn dict_get(&self, py: Token<'_>, dict: ObjRef, key: ObjRef) -> Result<ObjRef, RtError> {
        let i = self.dict_find(py, dict, key)?;
        let value = match i {
            Some(i) => self.dict_entries(py, dict)?[i].1,
            None => return Err(RtError::KeyError(self.repr(py, key)?)),
        };
        self.incref(py, value)?;
        Ok(value)
    }

    /// RC-6: `dict[key] = value`: the dict takes references to the key (when new) and the value,
    /// and drops its reference to a replaced value.
    pub fn dict_set(
        &self,
        py: Token<'_>,
        dict: ObjRef,
        key: ObjRef,
        value: ObjRef,
    ) -> Result<(), RtError> {
        self.check_live(py, value, "store")?;
        let i = self.dict_find(py, dict, key)?;
        let old = self.update(py, dict, |o| match o {
            Object::Dict(d) => Ok(match i {
                Some(i) => Some(std::mem::replace(&mut d[i].1, value)),
                None => {
                    d.push((key, value));
                    None
                }
            }),
            _ => unreachable!("dict_find checked the kind"),
        })?;
        if old.is_none() {
            self.incref(py, key)?;
        }
        self.incref(py, value)?;
        match old {
            Some(old) => self.decref(py, old),
            None => Ok(()),
        }
    }

    /// The index of the entry whose key is the string `name`, without allocating a key.
    pub(crate) fn dict_find_str(
        &self,
        py: Token<'_>,
        dict: ObjRef,
        name: &str,
    ) -> Result<Option<usize>, RtError> {
        let keys: Vec<ObjRef> = self.with_object(py, dict, |o| match o {
            Object::Dict(d) => Ok(d.iter().map(|&(k, _)| k).collect()),
            other => Err(RtError::TypeError(format!(
                "expected dict, got {}",
                other.type_name()
            ))),
        })??;
        for (i, k) in keys.into_iter().enumerate() {
            if self.with_object(py, k, |o| matches!(o, Object::Str(s) if &**s == name))? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// RC-6: `dict[name]` for a string key given as text: a new reference, or `None` when absent.
    pub fn dict_get_str(
        &self,
        py: Token<'_>,
        dict: ObjRef,
        name: &str,
    ) -> Result<Option<ObjRef>, RtError> {
        let Some(i) = self.dict_find_str(py, dict, name)? else {
            return Ok(None);
        };
        let value = self.with_object(py, dict, |o| match o {
            Object::Dict(d) => d[i].1,
            _ => unreachable!("dict_find_str checked the kind"),
        })?;
        self.incref(py, value)?;
        Ok(Some(value))
    }

    /// RC-6: `dict[name] = value` for a string key given as text (a key object is made when the
    /// entry is new).
    pub fn dict_set_str(
        &self,
        py: Token<'_>,
        dict: ObjRef,
        name: &str,
        value: ObjRef,
    ) -> Result<(), RtError> {
        match self.dict_find_str(py, dict, name)? {
            Some(i) => {
                self.check_live(py, value, "store")?;
                let old = self.update(py, dict, |o| match o {
                    Object::Dict(d) => Ok(std::mem::replace(&mut d[i].1, value)),
                    _ => unreachable!("dict_find_str checked the kind"),
                })?;
                self.incref(py, value)?;
                self.decref(py, old)
            }
            None => {
                let key = self.new_str(py, name);
                let r = self.dict_set(py, dict, key, value);
                self.decref(py, key)?;
                r
            }
        }
    }

    /// RC-6: `dict.clear()`: drops every key and value reference, in insertion order.
    pub fn dict_clear(&self, py: Token<'_>, dict: ObjRef) -> Result<(), RtError> {
        let entries = self.update(py, dict, |o| match o {
            Object::Dict(d) => Ok(std::mem::take(&mut d.items)),
            other => Err(RtError::TypeError(format!(
                "expected dict, got {}",
                other.type_name()
            ))),
        })?;
        for (k, v) in entries {
            self.decref(py, k)?;
            self.decref(py, v)?;
        }
        Ok(())
    }

    /// RC-6: `del dict[key]`: drops the dict's references to the key and the value.
    pub fn dict_del(&self, py: Token<'_>, dict: ObjRef, key: ObjRef) -> Result<(), RtError> {
        let Some(i) = self.dict_find(py, dict, key)? else {
            return Err(RtError::KeyError(self.repr(py, key)?));
        };
        let (k, v) = self.update(py, dict, |o| match o {
            Object::Dict(d) => Ok(d.remove(i)),
            _ => unreachable!("dict_find checked the kind"),
        })?;
        self.decref(py, k)?;
        self.decref(py, v)
    }

    /// Python's `repr`.
    pub fn repr(&self, py: Token<'_>, obj: ObjRef) -> Result<String, RtError> {
        let join = |items: &[ObjRef]| -> Result<String, RtError> {
            Ok(items
                .iter()
                .map(|&o| self.repr(py, o))
                .collect::<Result<Vec<_>, _>>()?
                .join(", "))
        };
        Ok(match self.get(py, obj)? {
            Object::None => "None".into(),
            Object::Bool(b) => if b { "True" } else { "False" }.into(),
            Object::Int(i) => i.to_string(),
            Object::Float(x) => format_float(x),
            Object::Str(s) => repr_str(&s),
            Object::Bytes(b) => repr_bytes(&b),
            Object::Tuple(v) if v.len() == 1 => format!("({},)", join(&v)?),
            Object::Tuple(v) => format!("({})", join(&v)?),
            Object::List(v) => format!("[{}]", join(&v)?),
            Object::Set { table, frozen } => {
                let keys: Vec<ObjRef> = table.keys().collect();
                match (keys.is_empty(), frozen) {
                    (true, false) => "set()".into(),
                    (true, true) => "frozenset()".into(),
                    (false, false) => format!("{{{}}}", join(&keys)?),
                    (false, true) => format!("frozenset({{{}}})", join(&keys)?),
                }
            }
            Object::Dict(d) => {
                let mut items = d.items.clone();
                if d.missing == Missing::Counter {
                    // Counter's repr lists `most_common()`: by count, highest first, ties in
                    // insertion order (a stable sort).
                    let mut counts = Vec::with_capacity(items.len());
                    for &(_, v) in &items {
                        counts.push(self.get(py, v)?.number().unwrap_or(f64::NAN));
                    }
                    let mut order: Vec<usize> = (0..items.len()).collect();
                    order.sort_by(|&a, &b| {
                        counts[b]
                            .partial_cmp(&counts[a])
                            .unwrap_or(std::cmp::Ordering::Equal)
                    });
                    items = order.into_iter().map(|i| items[i]).collect();
                }
                let parts = items
                    .iter()
                    .map(|&(k, v)| Ok(format!("{}: {}", self.repr(py, k)?, self.repr(py, v)?)))
                    .collect::<Result<Vec<_>, RtError>>()?;
                let body = format!("{{{}}}", parts.join(", "));
                match d.missing {
                    Missing::KeyError => body,
                    Missing::Counter if items.is_empty() => "Counter()".into(),
                    Missing::Counter => format!("Counter({body})"),
                    Missing::Default(f) => {
                        format!("defaultdict({}, {body})", self.repr(py, f)?)
                    }
                }
            }
            Object::Lock(l) if l.is_reentrant() => {
                let st = l.state();
                format!(
                    "<{} _thread.RLock object owner={} count={}>",
                    if st.held { "locked" } else { "unlocked" },
                    if st.held { st.owner } else { 0 },
                    st.count
                )
            }
            Object::Lock(l) => format!(
                "<{} _thread.lock object>",
                if l.is_locked() { "locked" } else { "unlocked" }
            ),
            Object::Sync(SyncObj::Condition { lock, waiters }) => {
                format!("<Condition({}, {})>", self.repr(py, lock)?, waiters.len())
            }
            Object::Sync(SyncObj::Semaphore { value, bound, .. }) => format!(
                "<threading.{} object: value={value}{}>",
                if bound.is_some() {
                    "BoundedSemaphore"
                } else {
                    "Semaphore"
                },
                bound.map(|b| format!("/{b}")).unwrap_or_default()
            ),
            Object::Sync(SyncObj::Event { flag, .. }) => format!(
                "<threading.Event object: {}>",
                if flag { "set" } else { "unset" }
            ),
            Object::Sync(SyncObj::Queue { items, .. }) => {
                format!("<queue.Queue object: {} items>", items.len())
            }
            Object::Slice { start, stop, step } => {
                let show = |x: Option<i64>| x.map_or("None".to_string(), |i| i.to_string());
                format!("slice({}, {}, {})", show(start), show(stop), show(step))
            }
            Object::Builtin(b) if b.is_module() => format!("<module '{}' (built-in)>", b.name()),
            Object::Builtin(b) if b.is_class() => format!("<class '{}'>", b.qualname()),
            Object::Builtin(b) => format!("<built-in function {}>", b.qualname()),
            Object::Code { name, .. } => format!("<code object {name}>"),
            Object::Function { name, .. } => format!("<function {name}>"),
            Object::Cell(_) => "<cell>".into(),
            Object::BoundMethod { func, receiver } => format!(
                "<built-in method {} of {} object>",
                func.name(),
                self.get(py, receiver)?.type_name()
            ),
            Object::Range {
                start,
                stop,
                step: 1,
            } => format!("range({start}, {stop})"),
            Object::Range { start, stop, step } => format!("range({start}, {stop}, {step})"),
            Object::Iter(IterObj::Range { .. }) => "<range_iterator object>".into(),
            Object::Iter(IterObj::Seq { .. }) => "<list_iterator object>".into(),
            Object::Iter(it) => format!("<{} object>", Object::<P>::Iter(it).type_name()),
            Object::Deque { items, maxlen, .. } => {
                let v: Vec<ObjRef> = items.into_iter().collect();
                let parts = v
                    .iter()
                    .map(|&o| self.repr(py, o))
                    .collect::<Result<Vec<_>, _>>()?;
                match maxlen {
                    Some(m) => format!("deque([{}], maxlen={m})", parts.join(", ")),
                    None => format!("deque([{}])", parts.join(", ")),
                }
            }
            Object::DictView { dict, kind } => {
                let entries = self.dict_entries(py, dict)?;
                let parts = entries
                    .iter()
                    .map(|&(k, v)| {
                        Ok(match kind {
                            View::Keys => self.repr(py, k)?,
                            View::Values => self.repr(py, v)?,
                            View::Items => {
                                format!("({}, {})", self.repr(py, k)?, self.repr(py, v)?)
                            }
                        })
                    })
                    .collect::<Result<Vec<_>, RtError>>()?;
                format!("{}([{}])", kind.name(), parts.join(", "))
            }
            Object::Generator(g) => format!("<generator object {}>", g.name),
            Object::Thread(t) => format!(
                "<{}({}, {})>",
                self.type_name_of(py, obj)?,
                t.name,
                match t.run {
                    ThreadRun::Initial => "initial",
                    ThreadRun::Started => "started",
                    ThreadRun::Stopped => "stopped",
                }
            ),
            Object::Namespace { dict } => {
                let parts = self
                    .dict_entries(py, dict)?
                    .into_iter()
                    .map(|(k, v)| {
                        let key = match self.get(py, k)? {
                            Object::Str(s) => s.to_string(),
                            _ => self.repr(py, k)?,
                        };
                        Ok(format!("{key}={}", self.repr(py, v)?))
                    })
                    .collect::<Result<Vec<_>, RtError>>()?;
                format!("namespace({})", parts.join(", "))
            }
            Object::Exception { class, message } => {
                format!("{}({})", class.name(), repr_str(&message))
            }
            Object::Class { name, .. } => format!("<class '__main__.{name}'>"),
            // CPython adds the address (`at 0x…`), which no two runs share.
            Object::Instance { class, .. } => {
                for dunder in ["__repr__", "__str__"] {
                    if self.class_lookup(py, class, dunder)?.is_some() {
                        return Err(RtError::Unsupported(format!(
                            "gilcheck cannot yet call a Python {dunder} implicitly (print, \
                             repr, an f-string)"
                        )));
                    }
                }
                format!("<__main__.{} object>", self.type_name_of(py, obj)?)
            }
            Object::Method { func, receiver } => format!(
                "<bound method {} of {}>",
                self.function_name(py, func)?,
                self.repr(py, receiver)?
            ),
            Object::Property { .. } => "<property object>".into(),
            Object::StaticMethod(f) => format!("<staticmethod({})>", self.repr(py, f)?),
            Object::ClassMethod(f) => format!("<classmethod({})>", self.repr(py, f)?),
            Object::Super { class, receiver } => format!(
                "<super: {}, <{} object>>",
                self.repr(py, class)?,
                self.type_name_of(py, receiver)?
            ),
        })
    }

    /// The name of `obj`'s type: the class's own name for an instance of a `class` statement.
    pub fn type_name_of(&self, py: Token<'_>, obj: ObjRef) -> Result<String, RtError> {
        match self.get(py, obj)? {
            Object::Instance { class, .. }
            | Object::Thread(ThreadObj {
                class: Some(class), ..
            }) => match self.get(py, class)? {
                Object::Class { name, .. } => Ok(name.to_string()),
                other => Ok(other.type_name().to_string()),
            },
            other => Ok(other.type_name().to_string()),
        }
    }

    /// The class and the attribute dict (borrowed) of an instance of a class statement,
    /// including one deriving from `threading.Thread`.
    pub fn instance_parts(
        &self,
        py: Token<'_>,
        obj: ObjRef,
    ) -> Result<Option<(ObjRef, ObjRef)>, RtError> {
        self.with_object(py, obj, |o| match o {
            Object::Instance { class, dict } => Some((*class, *dict)),
            Object::Thread(ThreadObj {
                class: Some(class),
                dict: Some(dict),
                ..
            }) => Some((*class, *dict)),
            _ => None,
        })
    }

    fn function_name(&self, py: Token<'_>, f: ObjRef) -> Result<String, RtError> {
        Ok(match self.get(py, f)? {
            Object::Function { name, .. } => name.to_string(),
            _ => self.repr(py, f)?,
        })
    }

    /// The class of an instance of a `class` statement (borrowed), or `None`.
    pub fn class_of(&self, py: Token<'_>, obj: ObjRef) -> Result<Option<ObjRef>, RtError> {
        self.with_object(py, obj, |o| match o {
            Object::Instance { class, .. } => Some(*class),
            Object::Thread(ThreadObj { class, .. }) => *class,
            _ => None,
        })
    }

    /// `name` looked up along a class's bases, as CPython's `_PyType_Lookup` walks the MRO
    /// (single inheritance: the class, its base, …): a borrowed reference, or `None`.
    pub fn class_lookup(
        &self,
        py: Token<'_>,
        class: ObjRef,
        name: &str,
    ) -> Result<Option<ObjRef>, RtError> {
        let mut c = Some(class);
        while let Some(k) = c {
            let Object::Class { base, dict, .. } = self.get(py, k)? else {
                return Ok(None);
            };
            if let Some(v) = self.dict_get_str(py, dict, name)? {
                self.decref(py, v)?; // the class's dict still holds it
                return Ok(Some(v));
            }
            c = base;
        }
        Ok(None)
    }

    /// Whether class statement `class` is `ancestor` or derives from it (its chain of bases).
    pub fn derives_from(
        &self,
        py: Token<'_>,
        class: ObjRef,
        ancestor: ObjRef,
    ) -> Result<bool, RtError> {
        let mut c = Some(class);
        while let Some(k) = c {
            if k == ancestor {
                return Ok(true);
            }
            c = match self.get(py, k)? {
                Object::Class { base, .. } => base,
                _ => None,
            };
        }
        Ok(false)
    }

    /// The built-in class at the end of a class statement's chain of bases (`Exception`,
    /// `threading.Thread`), if any.
    pub fn native_base(&self, py: Token<'_>, class: ObjRef) -> Result<Option<Builtin>, RtError> {
        let mut c = Some(class);
        while let Some(k) = c {
            match self.get(py, k)? {
                Object::Class { base, .. } => c = base,
                Object::Builtin(b) => return Ok(Some(b)),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The built-in exception class a class statement's class derives from (`class E(Exception)`),
    /// if any (CO-6).
    pub fn exception_base(&self, py: Token<'_>, class: ObjRef) -> Result<Option<Builtin>, RtError> {
        Ok(self.native_base(py, class)?.filter(|b| b.is_exception()))
    }

    /// `str(e)` of an instance of an exception class statement: its `args` as
    /// `BaseException.__str__` shows them (none: empty; one: `str` of it; more: the tuple).
    pub fn exception_text(&self, py: Token<'_>, obj: ObjRef) -> Result<Option<String>, RtError> {
        let Object::Instance { class, dict } = self.get(py, obj)? else {
            return Ok(None);
        };
        if self.exception_base(py, class)?.is_none() {
            return Ok(None);
        }
        let args = match self.dict_get_str(py, dict, "args")? {
            Some(a) => {
                self.decref(py, a)?;
                a
            }
            None => return Ok(Some(String::new())),
        };
        Ok(Some(match self.get(py, args)? {
            Object::Tuple(v) if v.is_empty() => String::new(),
            Object::Tuple(v) if v.len() == 1 => match self.get(py, v[0])? {
                Object::Str(s) => s.to_string(),
                _ => self.repr(py, v[0])?,
            },
            _ => self.repr(py, args)?,
        }))
    }

    /// How many non-immortal objects are alive.
    pub fn live_count(&self, py: Token<'_>) -> usize {
        self.with_table(py, |t| (t.stats.allocated - t.stats.freed) as usize)
    }

    pub fn stats(&self, py: Token<'_>) -> HeapStats {
        self.with_table(py, |t| t.stats)
    }

    /// The live non-immortal objects.
    pub fn live_objects(&self, py: Token<'_>) -> Vec<ObjRef> {
        let n = self.with_table(py, |t| t.slots.len());
        (0..n)
            .filter_map(|i| {
                let probe = ObjRef {
                    index: i as u32 + IMMORTAL_COUNT,
                    generation: 0,
                };
                let generation =
                    self.with_body(py, probe, |b| b.object.as_ref().map(|_| b.generation))?;
                Some(ObjRef {
                    generation,
                    ..probe
                })
            })
            .collect()
    }

    /// RC-2 on whole programs: every live object's count equals the references to it that
    /// exist, counting `roots` (references held outside the heap: stacks, locals, constants) and
    /// the references objects hold (RC-6). Returns a description of the first mismatch.
    pub fn audit(
        &self,
        py: Token<'_>,
        roots: impl IntoIterator<Item = ObjRef>,
    ) -> Result<(), String> {
        let mut expected = std::collections::HashMap::<ObjRef, isize>::new();
        let live = self.live_objects(py);
        let refs = roots.into_iter().chain(live.iter().flat_map(|&o| {
            self.with_object(py, o, |x| x.children())
                .unwrap_or_default()
        }));
        for r in refs {
            if r.is_immortal() {
                continue;
            }
            if !self.is_live(py, r) {
                return Err(format!(
                    "RC-5: a reference to {r} remains after it was freed"
                ));
            }
            *expected.entry(r).or_default() += 1;
        }
        for o in live {
            let have = self.refcount(py, o).map_err(|e| e.to_string())?;
            let want = expected.get(&o).copied().unwrap_or(0);
            if have != want {
                let what = self.repr(py, o).unwrap_or_default();
                return Err(format!(
                    "RC-2: {o} {what} has refcount {have}, but {want} reference(s) to it exist"
                ));
            }
        }
        Ok(())
    }

    /// RC-8: the leak report at shutdown. Call when the program has dropped every reference it
    /// meant to drop; any object still alive is reported, and objects whose whole count comes
    /// from other leaked objects are marked unreachable (garbage cycles, which gilcheck does not
    /// collect, as CPython with `gc.disable()`).
    pub fn leak_report(&self, py: Token<'_>) -> Result<LeakReport, RtError> {
        let live = self.live_objects(py);
        let mut internal = std::collections::HashMap::<ObjRef, isize>::new();
        for &o in &live {
            for child in self.get(py, o)?.children() {
                *internal.entry(child).or_default() += 1;
            }
        }
        let leaks = live
            .iter()
            .map(|&o| {
                let refcount = self.refcount(py, o)?;
                Ok(Leak {
                    obj: o,
                    type_name: self.get(py, o)?.type_name(),
                    refcount,
                    external: refcount - internal.get(&o).copied().unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, RtError>>()?;
        Ok(LeakReport { leaks })
    }
}

/// Python's `repr` of a `str`: single quotes unless the text holds one and no double quote.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr` of a bytes object (`bytes_repr`): single quotes unless it holds a `'` and
/// no `"`; `\\`, the quote, `\t`, `\n`, `\r` escaped, other bytes outside 32–126 as `\xhh`.
pub fn repr_bytes(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote as char);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c as char);
            }
            32..=126 => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote as char);
    out
}

/// Python's `repr` of a float: the shortest digits that read back as the same float, written
/// positionally when the decimal exponent is between -4 and 16 and in exponent form otherwise
/// (CPython's `float_repr`, `'r'` format of `PyOS_double_to_string`).
pub fn format_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d[.ddd]e<exp>`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("a decimal exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{text}")
    } else {
        let frac = if digits.len() > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        format!(
            "{sign}{}{frac}e{}{:02}",
            &digits[..1],
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// One object alive at shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub obj: ObjRef,
    pub type_name: &'static str,
    pub refcount: isize,
    /// References not held by other leaked objects: a handle someone forgot to decref. Zero means
    /// the object is only kept alive by other leaked objects (e.g. a reference cycle).
    pub external: isize,
}

/// RC-8: what is still alive when a runtime shuts down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeakReport {
    pub leaks: Vec<Leak>,
}

impl LeakReport {
    pub fn is_clean(&self) -> bool {
        self.leaks.is_empty()
    }

    /// Leaked objects only reachable from other leaked objects.
    pub fn unreachable(&self) -> impl Iterator<Item = &Leak> {
        self.leaks.iter().filter(|l| l.external == 0)
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return write!(f, "no leaks: every object was freed");
        }
        writeln!(
            f,
            "leak report: {} object(s) still alive at shutdown (RC-8)",
            self.leaks.len()
        )?;
        for l in &self.leaks {
            let why = if l.external == 0 {
                "only referenced by other leaked objects (a cycle: no cycle collector)".to_string()
            } else {
                format!("{} reference(s) never released", l.external)
            };
            writeln!(
                f,
                "  {} {}: refcount {}, {}",
                l.obj, l.type_name, l.refcount, why
            )?;
        }
        Ok(())
    }
}
