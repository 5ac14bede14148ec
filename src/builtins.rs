//! The static objects of the runtime: built-in functions, modules, classes and method
//! descriptors. Like CPython's statically allocated objects (immortal since 3.12, RC-3), they
//! have no heap slot and ignore reference counting; their behaviour is in `vm::native`.

/// How a call of a built-in is treated by the 3.11–3.13 poll policies (VM-7): CPython polls
/// after a call of a C function, except for the specialized forms that never poll once a call
/// site has warmed up. gilcheck classes every built-in as `Polls` (see `Len` below); `Fast`
/// stays for the policy tables and a future model of warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPoll {
    /// Polls after the call (CPython's generic `CALL` and most `CALL_BUILTIN_*` forms).
    Polls,
    /// Never polls on 3.11+: `CALL_NO_KW_LEN`, `CALL_NO_KW_ISINSTANCE`,
    /// `CALL_NO_KW_LIST_APPEND`, `CALL_NO_KW_TYPE_1` (after warm-up; see spec/bytecode.md).
    Fast,
}

macro_rules! builtins {
    ($($variant:ident = $name:literal, $qual:literal, $poll:ident;)*) => {
        /// A static object.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Builtin { $($variant),* }

        impl Builtin {
            pub const ALL: &'static [Builtin] = &[$(Builtin::$variant),*];

            /// The attribute or global name it is found under.
            pub fn name(self) -> &'static str {
                match self { $(Builtin::$variant => $name),* }
            }

            /// Its qualified name, as `repr` shows it (`time.sleep`, `Thread.start`).
            pub fn qualname(self) -> &'static str {
                match self { $(Builtin::$variant => $qual),* }
            }

            /// Whether a 3.11+ interpreter polls after calling it.
            pub fn call_poll(self) -> CallPoll {
                match self { $(Builtin::$variant => CallPoll::$poll),* }
            }
        }
    };
}

builtins! {
    Print = "print", "print", Polls;
    Range = "range", "range", Polls;
    // `len` and `list.append` poll like any C call: CPython 3.11+ specialize them to forms
    // that do not (CALL_NO_KW_LEN, …_LIST_APPEND), but only once the call site has warmed up,
    // and a specialization can fail and back off. Measured on 3.11 (tests/conformance,
    // len_between.py): 1 run in 5 lost 16 785 of 40 000 updates with `len()` between the read
    // and the write. Polling here reaches every outcome CPython can show (VM-7).
    Len = "len", "len", Polls;
    Repr = "repr", "repr", Polls;
    AssertionErrorClass = "AssertionError", "AssertionError", Polls;
    // The exceptions a program can raise itself (`raise ValueError(…)`).
    ExceptionClass = "Exception", "Exception", Polls;
    ValueErrorClass = "ValueError", "ValueError", Polls;
    RuntimeErrorClass = "RuntimeError", "RuntimeError", Polls;
    TypeErrorClass = "TypeError", "TypeError", Polls;
    KeyErrorClass = "KeyError", "KeyError", Polls;
    IndexErrorClass = "IndexError", "IndexError", Polls;
    // The rest of the hierarchy an `except` clause can name (CO-6); the runtime raises them.
    BaseExceptionClass = "BaseException", "BaseException", Polls;
    ArithmeticErrorClass = "ArithmeticError", "ArithmeticError", Polls;
    LookupErrorClass = "LookupError", "LookupError", Polls;
    ZeroDivisionErrorClass = "ZeroDivisionError", "ZeroDivisionError", Polls;
    OverflowErrorClass = "OverflowError", "OverflowError", Polls;
    NameErrorClass = "NameError", "NameError", Polls;
    UnboundLocalErrorClass = "UnboundLocalError", "UnboundLocalError", Polls;
    AttributeErrorClass = "AttributeError", "AttributeError", Polls;
    ImportErrorClass = "ImportError", "ImportError", Polls;
    ModuleNotFoundErrorClass = "ModuleNotFoundError", "ModuleNotFoundError", Polls;
    QueueEmptyClass = "Empty", "_queue.Empty", Polls;
    QueueFullClass = "Full", "queue.Full", Polls;
    ModThreading = "threading", "threading", Polls;
    ModTime = "time", "time", Polls;
    ModSys = "sys", "sys", Polls;
    ModMultiprocessing = "multiprocessing", "multiprocessing", Polls;
    ModTypes = "types", "types", Polls;
    SimpleNamespace = "SimpleNamespace", "types.SimpleNamespace", Polls;
    ThreadClass = "Thread", "threading.Thread", Polls;
    ProcessClass = "Process", "multiprocessing.Process", Polls;
    LockFactory = "Lock", "threading.Lock", Polls;
    TimeTime = "time", "time.time", Polls;
    TimePerfCounter = "perf_counter", "time.perf_counter", Polls;
    TimeSleep = "sleep", "time.sleep", Polls;
    SysGetrefcount = "getrefcount", "sys.getrefcount", Polls;
    SysSetswitchinterval = "setswitchinterval", "sys.setswitchinterval", Polls;
    SysGetswitchinterval = "getswitchinterval", "sys.getswitchinterval", Polls;
    ThreadStart = "start", "Thread.start", Polls;
    ThreadJoin = "join", "Thread.join", Polls;
    ThreadIsAlive = "is_alive", "Thread.is_alive", Polls;
    // `Thread.__init__`, as `super().__init__(…)` or `threading.Thread.__init__(self, …)`
    // call it from a subclass (CO-8).
    ThreadInit = "__init__", "Thread.__init__", Polls;
    CurrentThread = "current_thread", "threading.current_thread", Polls;
    GetIdent = "get_ident", "threading.get_ident", Polls;
    LockAcquire = "acquire", "lock.acquire", Polls;
    LockRelease = "release", "lock.release", Polls;
    LockLocked = "locked", "lock.locked", Polls;
    LockEnter = "__enter__", "lock.__enter__", Polls;
    LockExit = "__exit__", "lock.__exit__", Polls;
    ListAppend = "append", "list.append", Polls;
    Sum = "sum", "sum", Polls;
    ObjectClass = "object", "object", Polls;
    // `super()` and the `__init__` of the built-in bases it can reach (CO-8).
    Super = "super", "super", Polls;
    ObjectInit = "__init__", "object.__init__", Polls;
    ExceptionInit = "__init__", "BaseException.__init__", Polls;
    PropertyClass = "property", "property", Polls;
    PropertySetter = "setter", "property.setter", Polls;
    StaticMethodClass = "staticmethod", "staticmethod", Polls;
    ClassMethodClass = "classmethod", "classmethod", Polls;
    // What `LOAD_BUILD_CLASS` pushes; it runs the class body in a frame of its own.
    BuildClass = "__build_class__", "__build_class__", Polls;
    Isinstance = "isinstance", "isinstance", Polls;
    TypeBuiltin = "type", "type", Polls;
    // The common built-ins and the methods of str, list and dict (`vm::library`).
    Min = "min", "min", Polls;
    Max = "max", "max", Polls;
    Abs = "abs", "abs", Polls;
    IntClass = "int", "int", Polls;
    FloatClass = "float", "float", Polls;
    StrClass = "str", "str", Polls;
    BoolClass = "bool", "bool", Polls;
    ListClass = "list", "list", Polls;
    TupleClass = "tuple", "tuple", Polls;
    DictClass = "dict", "dict", Polls;
    Enumerate = "enumerate", "enumerate", Polls;
    Zip = "zip", "zip", Polls;
    Sorted = "sorted", "sorted", Polls;
    Id = "id", "id", Polls;
    ListPop = "pop", "list.pop", Polls;
    ListInsert = "insert", "list.insert", Polls;
    ListExtend = "extend", "list.extend", Polls;
    ListIndex = "index", "list.index", Polls;
    ListCount = "count", "list.count", Polls;
    ListRemove = "remove", "list.remove", Polls;
    ListReverse = "reverse", "list.reverse", Polls;
    ListSort = "sort", "list.sort", Polls;
    ListCopy = "copy", "list.copy", Polls;
    ListClear = "clear", "list.clear", Polls;
    DictGet = "get", "dict.get", Polls;
    DictKeys = "keys", "dict.keys", Polls;
    DictValues = "values", "dict.values", Polls;
    DictItems = "items", "dict.items", Polls;
    DictSetdefault = "setdefault", "dict.setdefault", Polls;
    DictUpdate = "update", "dict.update", Polls;
    DictCopy = "copy", "dict.copy", Polls;
    StrJoin = "join", "str.join", Polls;
    StrSplit = "split", "str.split", Polls;
    StrStrip = "strip", "str.strip", Polls;
    StrLower = "lower", "str.lower", Polls;
    StrUpper = "upper", "str.upper", Polls;
    StrStartswith = "startswith", "str.startswith", Polls;
    StrEndswith = "endswith", "str.endswith", Polls;
    StrReplace = "replace", "str.replace", Polls;
    StrCount = "count", "str.count", Polls;
    StrFind = "find", "str.find", Polls;
    StrEncode = "encode", "str.encode", Polls;
    StrFormat = "format", "str.format", Polls;
    Format = "format", "format", Polls;
    BytesClass = "bytes", "bytes", Polls;
    BytesDecode = "decode", "bytes.decode", Polls;
    ModCollections = "collections", "collections", Polls;
    SetClass = "set", "set", Polls;
    FrozenSetClass = "frozenset", "frozenset", Polls;
    SetAddMethod = "add", "set.add", Polls;
    SetDiscard = "discard", "set.discard", Polls;
    SetRemove = "remove", "set.remove", Polls;
    SetPop = "pop", "set.pop", Polls;
    SetClear = "clear", "set.clear", Polls;
    SetUpdateMethod = "update", "set.update", Polls;
    SetCopy = "copy", "set.copy", Polls;
    SetUnion = "union", "set.union", Polls;
    SetIntersection = "intersection", "set.intersection", Polls;
    SetDifference = "difference", "set.difference", Polls;
    SetIssubset = "issubset", "set.issubset", Polls;
    SetIssuperset = "issuperset", "set.issuperset", Polls;
    SetIsdisjoint = "isdisjoint", "set.isdisjoint", Polls;
    DequeClass = "deque", "collections.deque", Polls;
    DequeAppend = "append", "deque.append", Polls;
    DequeAppendleft = "appendleft", "deque.appendleft", Polls;
    DequePop = "pop", "deque.pop", Polls;
    DequePopleft = "popleft", "deque.popleft", Polls;
    DequeExtend = "extend", "deque.extend", Polls;
    DequeClear = "clear", "deque.clear", Polls;
    // collections.Counter (a dict whose `__missing__` is Python) and defaultdict (VM-14).
    CounterClass = "Counter", "collections.Counter", Polls;
    DefaultDictClass = "defaultdict", "collections.defaultdict", Polls;
    CounterUpdate = "update", "Counter.update", Polls;
    CounterSubtract = "subtract", "Counter.subtract", Polls;
    CounterMostCommon = "most_common", "Counter.most_common", Polls;
    // queue.Queue (Lib/queue.py: Python over a Lock and three Conditions; LOCK-7).
    ModQueue = "queue", "queue", Polls;
    QueueClass = "Queue", "queue.Queue", Polls;
    QueuePut = "put", "Queue.put", Polls;
    QueueGet = "get", "Queue.get", Polls;
    QueuePutNowait = "put_nowait", "Queue.put_nowait", Polls;
    QueueGetNowait = "get_nowait", "Queue.get_nowait", Polls;
    QueueTaskDone = "task_done", "Queue.task_done", Polls;
    QueueJoin = "join", "Queue.join", Polls;
    QueueQsize = "qsize", "Queue.qsize", Polls;
    QueueEmptyMethod = "empty", "Queue.empty", Polls;
    QueueFullMethod = "full", "Queue.full", Polls;
    // threading's other primitives (LOCK-5 … LOCK-7). RLock's methods are Lock's.
    RLockFactory = "RLock", "threading.RLock", Polls;
    ConditionClass = "Condition", "threading.Condition", Polls;
    SemaphoreClass = "Semaphore", "threading.Semaphore", Polls;
    BoundedSemaphoreClass = "BoundedSemaphore", "threading.BoundedSemaphore", Polls;
    EventClass = "Event", "threading.Event", Polls;
    CondAcquire = "acquire", "Condition.acquire", Polls;
    CondRelease = "release", "Condition.release", Polls;
    CondEnter = "__enter__", "Condition.__enter__", Polls;
    CondExit = "__exit__", "Condition.__exit__", Polls;
    CondWait = "wait", "Condition.wait", Polls;
    CondNotify = "notify", "Condition.notify", Polls;
    CondNotifyAll = "notify_all", "Condition.notify_all", Polls;
    SemAcquire = "acquire", "Semaphore.acquire", Polls;
    SemRelease = "release", "Semaphore.release", Polls;
    SemEnter = "__enter__", "Semaphore.__enter__", Polls;
    SemExit = "__exit__", "Semaphore.__exit__", Polls;
    EventSet = "set", "Event.set", Polls;
    EventClear = "clear", "Event.clear", Polls;
    EventIsSet = "is_set", "Event.is_set", Polls;
    EventWait = "wait", "Event.wait", Polls;
}

impl Builtin {
    /// Whether it is a method descriptor, which takes the object it acts on apart from its
    /// arguments (`LOAD_METHOD` leaves that object in the call's `self` slot).
    pub fn is_method(self) -> bool {
        use Builtin::*;
        matches!(
            self,
            ThreadStart
                | ThreadJoin
                | ThreadIsAlive
                | ThreadInit
                | ObjectInit
                | ExceptionInit
                | LockAcquire
                | LockRelease
                | LockLocked
                | LockEnter
                | LockExit
                | ListAppend
                | PropertySetter
        ) || self.methods_of().is_some()
            || self.sync_method()
    }

    /// Whether it is a method of Condition, Semaphore or Event (`vm::sync`).
    pub fn sync_method(self) -> bool {
        use Builtin::*;
        matches!(
            self,
            CondAcquire
                | CondRelease
                | CondEnter
                | CondExit
                | CondWait
                | CondNotify
                | CondNotifyAll
                | SemAcquire
                | SemRelease
                | SemEnter
                | SemExit
                | EventSet
                | EventClear
                | EventIsSet
                | EventWait
                | QueuePut
                | QueueGet
                | QueuePutNowait
                | QueueGetNowait
                | QueueTaskDone
                | QueueJoin
                | QueueQsize
                | QueueEmptyMethod
                | QueueFullMethod
        )
    }

    /// For a method of str, list or dict: the type it belongs to.
    pub fn methods_of(self) -> Option<&'static str> {
        use Builtin::*;
        Some(match self {
            ListPop | ListInsert | ListExtend | ListIndex | ListCount | ListRemove
            | ListReverse | ListSort | ListCopy | ListClear => "list",
            DictGet | DictKeys | DictValues | DictItems | DictSetdefault | DictUpdate
            | DictCopy => "dict",
            StrJoin | StrSplit | StrStrip | StrLower | StrUpper | StrStartswith | StrEndswith
            | StrReplace | StrCount | StrFind | StrEncode | StrFormat => "str",
            BytesDecode => "bytes",
            DequeAppend | DequeAppendleft | DequePop | DequePopleft | DequeExtend | DequeClear => {
                "collections.deque"
            }
            CounterUpdate | CounterSubtract | CounterMostCommon => "Counter",
            SetAddMethod | SetDiscard | SetRemove | SetPop | SetClear | SetUpdateMethod
            | SetCopy | SetUnion | SetIntersection | SetDifference | SetIssubset
            | SetIssuperset | SetIsdisjoint => "set",
            _ => return None,
        })
    }

    /// The global names every module sees (CPython's `builtins` module, the part modelled).
    pub fn global(name: &str) -> Option<Builtin> {
        use Builtin::*;
        [
            Print,
            Range,
            Len,
            Repr,
            Sum,
            AssertionErrorClass,
            ExceptionClass,
            ValueErrorClass,
            RuntimeErrorClass,
            TypeErrorClass,
            KeyErrorClass,
            IndexErrorClass,
            BaseExceptionClass,
            ArithmeticErrorClass,
            LookupErrorClass,
            ZeroDivisionErrorClass,
            OverflowErrorClass,
            NameErrorClass,
            UnboundLocalErrorClass,
            AttributeErrorClass,
            ImportErrorClass,
            ModuleNotFoundErrorClass,
            ObjectClass,
            Super,
            PropertyClass,
            StaticMethodClass,
            ClassMethodClass,
            Isinstance,
            TypeBuiltin,
            Min,
            Max,
            Abs,
            IntClass,
            FloatClass,
            StrClass,
            BoolClass,
            ListClass,
            TupleClass,
            DictClass,
            SetClass,
            FrozenSetClass,
            BytesClass,
            Enumerate,
            Zip,
            Sorted,
            Id,
            Format,
        ]
        .into_iter()
        .find(|b| b.name() == name)
    }

    /// The modules `import` can load.
    pub fn module(name: &str) -> Option<Builtin> {
        use Builtin::*;
        [
            ModThreading,
            ModTime,
            ModSys,
            ModMultiprocessing,
            ModTypes,
            ModCollections,
            ModQueue,
        ]
        .into_iter()
        .find(|b| b.name() == name)
    }

    /// An attribute of a module.
    pub fn module_attr(self, name: &str) -> Option<Builtin> {
        use Builtin::*;
        let attrs: &[Builtin] = match self {
            ModThreading => &[
                ThreadClass,
                CurrentThread,
                GetIdent,
                LockFactory,
                RLockFactory,
                ConditionClass,
                SemaphoreClass,
                BoundedSemaphoreClass,
                EventClass,
            ],
            ModTime => &[TimeTime, TimePerfCounter, TimeSleep],
            ModSys => &[SysGetrefcount, SysSetswitchinterval, SysGetswitchinterval],
            ModMultiprocessing => &[ProcessClass],
            ModTypes => &[SimpleNamespace],
            ModCollections => &[DequeClass, CounterClass, DefaultDictClass],
            ModQueue => &[QueueClass, QueueEmptyClass, QueueFullClass],
            _ => &[],
        };
        attrs.iter().copied().find(|b| b.name() == name)
    }

    pub fn is_module(self) -> bool {
        use Builtin::*;
        matches!(
            self,
            ModThreading
                | ModTime
                | ModSys
                | ModMultiprocessing
                | ModTypes
                | ModCollections
                | ModQueue
        )
    }

    /// Classes: calling one makes an instance.
    pub fn is_class(self) -> bool {
        use Builtin::*;
        matches!(
            self,
            ThreadClass
                | ProcessClass
                | Range
                | SimpleNamespace
                | AssertionErrorClass
                | ExceptionClass
                | ValueErrorClass
                | RuntimeErrorClass
                | TypeErrorClass
                | KeyErrorClass
                | IndexErrorClass
                | BaseExceptionClass
                | ArithmeticErrorClass
                | LookupErrorClass
                | ZeroDivisionErrorClass
                | OverflowErrorClass
                | NameErrorClass
                | UnboundLocalErrorClass
                | AttributeErrorClass
                | ImportErrorClass
                | ModuleNotFoundErrorClass
                | QueueEmptyClass
                | QueueFullClass
                | ObjectClass
                | PropertyClass
                | StaticMethodClass
                | ClassMethodClass
                | IntClass
                | FloatClass
                | StrClass
                | BoolClass
                | ListClass
                | TupleClass
                | DictClass
                | SetClass
                | FrozenSetClass
                | BytesClass
                | Enumerate
                | Zip
                | DequeClass
                | CounterClass
                | DefaultDictClass
                | ConditionClass
                | SemaphoreClass
                | BoundedSemaphoreClass
                | EventClass
                | QueueClass
        )
    }

    /// The exception classes a program can raise.
    pub fn is_exception(self) -> bool {
        self == Builtin::BaseExceptionClass || self.exception_base().is_some()
    }

    /// The base class of an exception class (CPython's hierarchy, the part modelled).
    pub fn exception_base(self) -> Option<Builtin> {
        use Builtin::*;
        Some(match self {
            ExceptionClass => BaseExceptionClass,
            ArithmeticErrorClass | LookupErrorClass | AssertionErrorClass | ValueErrorClass
            | RuntimeErrorClass | TypeErrorClass | NameErrorClass | AttributeErrorClass
            | ImportErrorClass | QueueEmptyClass | QueueFullClass => ExceptionClass,
            ZeroDivisionErrorClass | OverflowErrorClass => ArithmeticErrorClass,
            KeyErrorClass | IndexErrorClass => LookupErrorClass,
            UnboundLocalErrorClass => NameErrorClass,
            ModuleNotFoundErrorClass => ImportErrorClass,
            _ => return None,
        })
    }

    /// Whether exception class `self` is `other` or derives from it.
    pub fn is_exception_subclass(self, other: Builtin) -> bool {
        let mut c = Some(self);
        while let Some(k) = c {
            if k == other {
                return true;
            }
            c = k.exception_base();
        }
        false
    }

    /// The immortal handle index of this object (see `ObjRef::builtin`).
    pub fn index(self) -> u32 {
        self as u32
    }

    pub fn from_index(i: u32) -> Option<Builtin> {
        Builtin::ALL.get(i as usize).copied()
    }
}
