//! Code objects: the instruction set (named and shaped after CPython 3.11's), constants, and a
//! builder with labels that resolves names to indices (rules VM-1, VM-2 of `spec/bytecode.md`).
//!
//! An instruction's argument is an index into its code object's tables, as in CPython: `consts`
//! for `LOAD_CONST`, `varnames` for `LOAD_FAST`, `names` for `LOAD_GLOBAL` and the attribute
//! instructions. Jump targets are instruction indices; `dis` prints them as byte offsets (two
//! bytes per instruction, CPython's inline caches left out).

use std::fmt;

/// A binary operator of `BINARY_OP` (CPython 3.11's `NB_*` numbering; in-place forms add 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    TrueDiv,
    FloorDiv,
    Mod,
    Pow,
    /// `&`, `|`, `^`: of ints and bools bitwise, of sets their intersection, union and
    /// symmetric difference.
    And,
    Or,
    Xor,
}

impl BinOp {
    pub const ALL: [BinOp; 10] = [
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::TrueDiv,
        BinOp::FloorDiv,
        BinOp::Mod,
        BinOp::Pow,
        BinOp::And,
        BinOp::Or,
        BinOp::Xor,
    ];

    /// CPython's `NB_*` number of the plain form.
    pub fn number(self) -> u32 {
        match self {
            BinOp::Add => 0,
            BinOp::FloorDiv => 2,
            BinOp::Mul => 5,
            BinOp::Mod => 6,
            BinOp::Pow => 8,
            BinOp::Sub => 10,
            BinOp::TrueDiv => 11,
            BinOp::And => 1,
            BinOp::Or => 7,
            BinOp::Xor => 12,
        }
    }

    /// The stem of its dunder methods (`add` for `__add__`, `__iadd__`, `__radd__`).
    pub fn dunder(self) -> &'static str {
        match self {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::Mul => "mul",
            BinOp::TrueDiv => "truediv",
            BinOp::FloorDiv => "floordiv",
            BinOp::Mod => "mod",
            BinOp::Pow => "pow",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Xor => "xor",
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::TrueDiv => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::And => "&",
            BinOp::Or => "|",
            BinOp::Xor => "^",
        }
    }
}

/// A comparison of `COMPARE_OP` (CPython 3.11's argument order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Lt,
    Le,
    Eq,
    Ne,
    Gt,
    Ge,
}

impl CmpOp {
    /// Its dunder method and the reflected one the right operand is asked for.
    pub fn dunders(self) -> (&'static str, &'static str) {
        match self {
            CmpOp::Lt => ("__lt__", "__gt__"),
            CmpOp::Le => ("__le__", "__ge__"),
            CmpOp::Eq => ("__eq__", "__eq__"),
            CmpOp::Ne => ("__ne__", "__ne__"),
            CmpOp::Gt => ("__gt__", "__lt__"),
            CmpOp::Ge => ("__ge__", "__le__"),
        }
    }

    pub const ALL: [CmpOp; 6] = [
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Gt,
        CmpOp::Ge,
    ];

    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn number(self) -> u32 {
        CmpOp::ALL.iter().position(|&c| c == self).unwrap_or(0) as u32
    }
}

/// The conversion of `FORMAT_VALUE` (`!s`, `!r`), in CPython's low two flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conversion {
    None,
    Str,
    Repr,
}

/// One instruction. Names, arguments and stack effects follow CPython 3.11 (`Lib/opcode.py`,
/// `Python/ceval.c`); `spec/bytecode.md` lists each with its stack and refcount effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Instr {
    Nop,
    /// Function entry (0) or resumption; a poll point on every version (VM-5).
    Resume(u32),
    LoadConst(u32),
    LoadFast(u32),
    StoreFast(u32),
    /// `LOAD_GLOBAL`; with `null`, pushes NULL first (3.11's `NULL + name`).
    LoadGlobal {
        name: u32,
        null: bool,
    },
    StoreGlobal(u32),
    /// Module-level name access (the module's locals are its globals).
    LoadName(u32),
    StoreName(u32),
    PushNull,
    PopTop,
    /// Pushes a new reference to the n-th item from the top (1 = top).
    Copy(u32),
    /// Swaps the top with the n-th item (2 = second).
    Swap(u32),
    BinarySubscr,
    StoreSubscr,
    BinaryOp {
        op: BinOp,
        inplace: bool,
    },
    CompareOp(CmpOp),
    /// `is` (false) or `is not` (true).
    IsOp(bool),
    /// `in` (false) or `not in` (true).
    ContainsOp(bool),
    UnaryNot,
    /// `-x`, `+x`, `~x` (UNARY_NEGATIVE, UNARY_POSITIVE, UNARY_INVERT).
    UnaryNegative,
    UnaryPositive,
    UnaryInvert,
    GetIter,
    /// Pushes the iterator's next item, or pops the iterator and jumps to the target.
    ForIter(u32),
    JumpForward(u32),
    JumpBackward(u32),
    PopJumpForwardIfFalse(u32),
    PopJumpForwardIfTrue(u32),
    PopJumpBackwardIfFalse(u32),
    PopJumpBackwardIfTrue(u32),
    /// `POP_JUMP_*_IF_NONE` / `…_IF_NOT_NONE`: 3.11's fusion of `LOAD_CONST None; IS_OP; POP_JUMP_IF_*`.
    PopJumpForwardIfNone(u32),
    PopJumpForwardIfNotNone(u32),
    PopJumpBackwardIfNone(u32),
    PopJumpBackwardIfNotNone(u32),
    /// `and`/`or` as a value: jumps keeping the value when its truth is true (false), pops it
    /// otherwise. Forward only.
    JumpIfTrueOrPop(u32),
    JumpIfFalseOrPop(u32),
    /// Names the keyword arguments of the next `CALL` (a tuple constant).
    KwNames(u32),
    /// `CALL argc`: stack `[NULL or method, callable or self, args…]` as in 3.11.
    Call(u32),
    LoadMethod(u32),
    LoadAttr(u32),
    StoreAttr(u32),
    BuildTuple(u32),
    BuildList(u32),
    /// `BUILD_SLICE n`: a slice of the n (2 or 3) values below it (`x[a:b]`, `x[a:b:c]`).
    BuildSlice(u32),
    /// `LIST_TO_TUPLE`: the list on top becomes a tuple (`f(a, *b)`).
    ListToTuple,
    /// `DICT_MERGE i`: merges the mapping on top into the dict i deep, refusing a key twice
    /// (`f(**kw)`).
    DictMerge(u32),
    /// `CALL_FUNCTION_EX flags`: stack `[NULL, callable, args tuple, (kwargs dict if flags & 1)]`.
    CallFunctionEx(u32),
    /// `MAKE_CELL i`: the slot's value (or nothing) goes into a new cell in the slot (CO-7).
    MakeCell(u32),
    /// `COPY_FREE_VARS n`: the function's closure cells fill the last n slots (done when the
    /// frame is made, so a no-op here).
    CopyFreeVars(u32),
    /// `LOAD_DEREF i`: the value in the slot's cell.
    LoadDeref(u32),
    /// `STORE_DEREF i`: into the slot's cell.
    StoreDeref(u32),
    /// `LOAD_CLOSURE i`: the slot's cell itself (for a closure tuple).
    LoadClosure(u32),
    /// Replaces a tuple or list of exactly n items by its items, the first on top.
    UnpackSequence(u32),
    BuildMap(u32),
    BuildConstKeyMap(u32),
    ListAppend(u32),
    /// Extends the list i deep with the items of the iterable on top (popped).
    ListExtend(u32),
    /// `BUILD_SET n`: a set of the n values on top, added in order.
    BuildSet(u32),
    /// `SET_ADD i`: adds the value on top (popped) to the set i deep (a set comprehension).
    SetAdd(u32),
    /// `SET_UPDATE i`: adds the items of the iterable on top (popped) to the set i deep.
    SetUpdate(u32),
    /// `MAP_ADD i`: `[dict … key value]`: stores the pair (popped) in the dict i deep below
    /// them (a dict comprehension).
    MapAdd(u32),
    FormatValue {
        conversion: Conversion,
        spec: bool,
    },
    BuildString(u32),
    MakeFunction(u32),
    ImportName(u32),
    /// `from m import name`: the module stays, its member is pushed.
    ImportFrom(u32),
    /// `with`: calls `__enter__` and pushes the bound `__exit__` and its result.
    BeforeWith,
    LoadAssertionError,
    /// Pushes `__build_class__` (a `class` statement calls it with the body and the name).
    LoadBuildClass,
    RaiseVarargs(u32),
    ReturnValue,
    /// First instruction of a generator's code: turns the new frame into a generator object
    /// and returns it to the caller.
    ReturnGenerator,
    /// Suspends the generator, handing the top of its stack to whoever resumed it.
    YieldValue,
    /// First instruction of an exception handler: the exception on top goes below the one
    /// being handled before (or None) and becomes the thread's current one (CO-6).
    PushExcInfo,
    /// Pops the exception saved by `PUSH_EXC_INFO` back into the thread's current one.
    PopExcept,
    /// `[exc, type]` → `[exc, bool]`: whether the exception is an instance of the type (or of
    /// one in a tuple of types).
    CheckExcMatch,
    /// Raises the exception on top again (n > 0: the n-th value below it is the `lasti` of
    /// the instruction that raised first).
    Reraise(u32),
    /// The exception path of `with`: calls the `__exit__` four deep with the exception on
    /// top, pushing its result.
    WithExceptStart,
    /// `del` of a local, a name, a global, a cell (`except … as name:` ends with one).
    DeleteFast(u32),
    DeleteName(u32),
    DeleteGlobal(u32),
    DeleteDeref(u32),
    /// `del container[key]` (a slice too).
    DeleteSubscr,
    /// `del obj.name`.
    DeleteAttr(u32),
}

impl Instr {
    /// The CPython name.
    pub fn name(&self) -> &'static str {
        use Instr::*;
        match self {
            Nop => "NOP",
            Resume(_) => "RESUME",
            LoadConst(_) => "LOAD_CONST",
            LoadFast(_) => "LOAD_FAST",
            StoreFast(_) => "STORE_FAST",
            LoadGlobal { .. } => "LOAD_GLOBAL",
            StoreGlobal(_) => "STORE_GLOBAL",
            LoadName(_) => "LOAD_NAME",
            StoreName(_) => "STORE_NAME",
            PushNull => "PUSH_NULL",
            PopTop => "POP_TOP",
            Copy(_) => "COPY",
            Swap(_) => "SWAP",
            BinarySubscr => "BINARY_SUBSCR",
            StoreSubscr => "STORE_SUBSCR",
            BinaryOp { .. } => "BINARY_OP",
            CompareOp(_) => "COMPARE_OP",
            IsOp(_) => "IS_OP",
            ContainsOp(_) => "CONTAINS_OP",
            UnaryNot => "UNARY_NOT",
            UnaryNegative => "UNARY_NEGATIVE",
            UnaryPositive => "UNARY_POSITIVE",
            UnaryInvert => "UNARY_INVERT",
            GetIter => "GET_ITER",
            ForIter(_) => "FOR_ITER",
            JumpForward(_) => "JUMP_FORWARD",
            JumpBackward(_) => "JUMP_BACKWARD",
            PopJumpForwardIfFalse(_) => "POP_JUMP_FORWARD_IF_FALSE",
            PopJumpForwardIfTrue(_) => "POP_JUMP_FORWARD_IF_TRUE",
            PopJumpBackwardIfFalse(_) => "POP_JUMP_BACKWARD_IF_FALSE",
            PopJumpBackwardIfTrue(_) => "POP_JUMP_BACKWARD_IF_TRUE",
            PopJumpForwardIfNone(_) => "POP_JUMP_FORWARD_IF_NONE",
            PopJumpForwardIfNotNone(_) => "POP_JUMP_FORWARD_IF_NOT_NONE",
            PopJumpBackwardIfNone(_) => "POP_JUMP_BACKWARD_IF_NONE",
            PopJumpBackwardIfNotNone(_) => "POP_JUMP_BACKWARD_IF_NOT_NONE",
            JumpIfTrueOrPop(_) => "JUMP_IF_TRUE_OR_POP",
            JumpIfFalseOrPop(_) => "JUMP_IF_FALSE_OR_POP",
            KwNames(_) => "KW_NAMES",
            Call(_) => "CALL",
            LoadMethod(_) => "LOAD_METHOD",
            LoadAttr(_) => "LOAD_ATTR",
            StoreAttr(_) => "STORE_ATTR",
            BuildTuple(_) => "BUILD_TUPLE",
            BuildSlice(_) => "BUILD_SLICE",
            ListToTuple => "LIST_TO_TUPLE",
            DictMerge(_) => "DICT_MERGE",
            CallFunctionEx(_) => "CALL_FUNCTION_EX",
            MakeCell(_) => "MAKE_CELL",
            CopyFreeVars(_) => "COPY_FREE_VARS",
            LoadDeref(_) => "LOAD_DEREF",
            StoreDeref(_) => "STORE_DEREF",
            LoadClosure(_) => "LOAD_CLOSURE",
            BuildList(_) => "BUILD_LIST",
            BuildSet(_) => "BUILD_SET",
            SetAdd(_) => "SET_ADD",
            SetUpdate(_) => "SET_UPDATE",
            MapAdd(_) => "MAP_ADD",
            UnpackSequence(_) => "UNPACK_SEQUENCE",
            BuildMap(_) => "BUILD_MAP",
            BuildConstKeyMap(_) => "BUILD_CONST_KEY_MAP",
            ListAppend(_) => "LIST_APPEND",
            ListExtend(_) => "LIST_EXTEND",
            FormatValue { .. } => "FORMAT_VALUE",
            BuildString(_) => "BUILD_STRING",
            MakeFunction(_) => "MAKE_FUNCTION",
            ImportName(_) => "IMPORT_NAME",
            ImportFrom(_) => "IMPORT_FROM",
            BeforeWith => "BEFORE_WITH",
            LoadAssertionError => "LOAD_ASSERTION_ERROR",
            LoadBuildClass => "LOAD_BUILD_CLASS",
            RaiseVarargs(_) => "RAISE_VARARGS",
            ReturnValue => "RETURN_VALUE",
            ReturnGenerator => "RETURN_GENERATOR",
            YieldValue => "YIELD_VALUE",
            PushExcInfo => "PUSH_EXC_INFO",
            PopExcept => "POP_EXCEPT",
            CheckExcMatch => "CHECK_EXC_MATCH",
            Reraise(_) => "RERAISE",
            WithExceptStart => "WITH_EXCEPT_START",
            DeleteFast(_) => "DELETE_FAST",
            DeleteName(_) => "DELETE_NAME",
            DeleteGlobal(_) => "DELETE_GLOBAL",
            DeleteDeref(_) => "DELETE_DEREF",
            DeleteSubscr => "DELETE_SUBSCR",
            DeleteAttr(_) => "DELETE_ATTR",
        }
    }

    /// The numeric argument `dis` prints, if the instruction has one.
    pub fn arg(&self) -> Option<u32> {
        use Instr::*;
        Some(match *self {
            Nop | PushNull | PopTop | BinarySubscr | StoreSubscr | UnaryNot | UnaryNegative
            | UnaryPositive | UnaryInvert | GetIter | ListToTuple | BeforeWith
            | LoadAssertionError | LoadBuildClass | ReturnValue | ReturnGenerator | YieldValue
            | PushExcInfo | PopExcept | CheckExcMatch | WithExceptStart | DeleteSubscr => {
                return None;
            }
            Resume(a) | LoadConst(a) | LoadFast(a) | StoreFast(a) | StoreGlobal(a)
            | LoadName(a) | StoreName(a) | Copy(a) | Swap(a) | KwNames(a) | Call(a)
            | LoadMethod(a) | LoadAttr(a) | StoreAttr(a) | BuildTuple(a) | BuildList(a)
            | BuildSlice(a) | DictMerge(a) | CallFunctionEx(a) | MakeCell(a) | CopyFreeVars(a)
            | LoadDeref(a) | StoreDeref(a) | LoadClosure(a) | UnpackSequence(a) | BuildMap(a)
            | BuildConstKeyMap(a) | ListAppend(a) | ListExtend(a) | BuildString(a)
            | MakeFunction(a) | ImportName(a) | ImportFrom(a) | RaiseVarargs(a) | Reraise(a)
            | BuildSet(a) | SetAdd(a) | SetUpdate(a) | MapAdd(a) | DeleteAttr(a)
            | DeleteFast(a) | DeleteName(a) | DeleteGlobal(a) | DeleteDeref(a) => a,
            LoadGlobal { name, null } => name * 2 + u32::from(null),
            BinaryOp { op, inplace } => op.number() + if inplace { 13 } else { 0 },
            CompareOp(c) => c.number(),
            IsOp(b) | ContainsOp(b) => u32::from(b),
            ForIter(t)
            | JumpForward(t)
            | JumpBackward(t)
            | PopJumpForwardIfFalse(t)
            | PopJumpForwardIfTrue(t)
            | PopJumpBackwardIfFalse(t)
            | PopJumpBackwardIfTrue(t)
            | PopJumpForwardIfNone(t)
            | PopJumpForwardIfNotNone(t)
            | PopJumpBackwardIfNone(t)
            | PopJumpBackwardIfNotNone(t)
            | JumpIfTrueOrPop(t)
            | JumpIfFalseOrPop(t) => t,
            FormatValue { conversion, spec } => {
                let c = match conversion {
                    Conversion::None => 0,
                    Conversion::Str => 1,
                    Conversion::Repr => 2,
                };
                c | if spec { 4 } else { 0 }
            }
        })
    }

    /// The jump target (an instruction index), for jumps and `FOR_ITER`.
    pub fn target(&self) -> Option<usize> {
        use Instr::*;
        match *self {
            ForIter(t)
            | JumpForward(t)
            | JumpBackward(t)
            | PopJumpForwardIfFalse(t)
            | PopJumpForwardIfTrue(t)
            | PopJumpBackwardIfFalse(t)
            | PopJumpBackwardIfTrue(t)
            | PopJumpForwardIfNone(t)
            | PopJumpForwardIfNotNone(t)
            | PopJumpBackwardIfNone(t)
            | PopJumpBackwardIfNotNone(t)
            | JumpIfTrueOrPop(t)
            | JumpIfFalseOrPop(t) => Some(t as usize),
            _ => None,
        }
    }

    /// How many values the instruction reads from the top of the stack and how many it leaves
    /// there in their place, on its fall-through path (`FOR_ITER`: the path that continues).
    /// `COPY n` and `LIST_APPEND i` read deeper than they pop; they count as reading that deep.
    pub fn stack_io(&self) -> (u32, u32) {
        use Instr::*;
        match *self {
            Nop | Resume(_) | JumpForward(_) | JumpBackward(_) | KwNames(_) => (0, 0),
            LoadConst(_) | LoadFast(_) | LoadName(_) | PushNull | LoadAssertionError
            | LoadBuildClass => (0, 1),
            LoadGlobal { null, .. } => (0, 1 + u32::from(null)),
            StoreFast(_) | StoreGlobal(_) | StoreName(_) | PopTop => (1, 0),
            PopJumpForwardIfFalse(_)
            | PopJumpForwardIfTrue(_)
            | PopJumpBackwardIfFalse(_)
            | PopJumpBackwardIfTrue(_)
            | PopJumpForwardIfNone(_)
            | PopJumpForwardIfNotNone(_)
            | PopJumpBackwardIfNone(_)
            | PopJumpBackwardIfNotNone(_)
            | JumpIfTrueOrPop(_)
            | JumpIfFalseOrPop(_) => (1, 0),
            Copy(n) => (n, n + 1),
            Swap(n) => (n, n),
            BinarySubscr | BinaryOp { .. } | CompareOp(_) | IsOp(_) | ContainsOp(_) => (2, 1),
            StoreSubscr => (3, 0),
            UnaryNot | UnaryNegative | UnaryPositive | UnaryInvert | GetIter | LoadAttr(_) => {
                (1, 1)
            }
            MakeFunction(flags) => (1 + (flags & 1) + ((flags >> 1) & 1) + ((flags >> 3) & 1), 1),
            ForIter(_) | LoadMethod(_) | BeforeWith => (1, 2),
            Call(n) => (n + 2, 1),
            StoreAttr(_) => (2, 0),
            BuildTuple(n) | BuildList(n) | BuildString(n) | BuildSlice(n) => (n, 1),
            ListToTuple => (1, 1),
            DictMerge(i) => (i + 1, i),
            CallFunctionEx(f) => (3 + (f & 1), 1),
            MakeCell(_) | CopyFreeVars(_) => (0, 0),
            LoadDeref(_) | LoadClosure(_) => (0, 1),
            StoreDeref(_) => (1, 0),
            UnpackSequence(n) => (1, n),
            BuildMap(n) => (2 * n, 1),
            BuildConstKeyMap(n) => (n + 1, 1),
            ListAppend(i) | ListExtend(i) | SetAdd(i) | SetUpdate(i) => (i + 1, i),
            BuildSet(n) => (n, 1),
            MapAdd(i) => (i + 2, i),
            FormatValue { spec, .. } => (1 + u32::from(spec), 1),
            ImportName(_) => (2, 1),
            ImportFrom(_) => (1, 2),
            RaiseVarargs(n) => (n, 0),
            ReturnValue => (1, 0),
            // On resumption the generator's frame is handed the value sent in (None).
            ReturnGenerator => (0, 1),
            YieldValue => (1, 1),
            PushExcInfo => (1, 2),
            PopExcept => (1, 0),
            CheckExcMatch => (2, 2),
            Reraise(n) => (n + 1, n),
            WithExceptStart => (4, 5),
            DeleteFast(_) | DeleteName(_) | DeleteGlobal(_) | DeleteDeref(_) => (0, 0),
            DeleteSubscr => (2, 0),
            DeleteAttr(_) => (1, 0),
        }
    }

    /// The change of stack depth on the fall-through path (CPython's `stack_effect`).
    pub fn stack_effect(&self) -> i32 {
        let (pops, pushes) = self.stack_io();
        pushes as i32 - pops as i32
    }
}

/// A constant of a code object. `Code` names another code object of the same program.
#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Const>),
    /// A frozenset constant (`x in {1, 2, 3}`, a set display of constants): its items in the
    /// order they were added, each once.
    FrozenSet(Vec<Const>),
    Code(usize),
}

impl Const {
    /// Its truth value, as `bool()` gives it (a code object is true).
    pub fn truth(&self) -> bool {
        match self {
            Const::None => false,
            Const::Bool(b) => *b,
            Const::Int(i) => *i != 0,
            Const::Float(x) => *x != 0.0,
            Const::Str(s) => !s.is_empty(),
            Const::Bytes(b) => !b.is_empty(),
            Const::Tuple(t) | Const::FrozenSet(t) => !t.is_empty(),
            Const::Code(_) => true,
        }
    }

    /// The constant as CPython's `dis` shows it.
    pub fn repr(&self, program: &Program) -> String {
        match self {
            Const::None => "None".into(),
            Const::Bool(b) => if *b { "True" } else { "False" }.into(),
            Const::Int(i) => i.to_string(),
            Const::Float(x) => crate::heap::format_float(*x),
            Const::Str(s) => crate::heap::repr_str(s),
            Const::Bytes(b) => crate::heap::repr_bytes(b),
            Const::Tuple(v) => {
                let items: Vec<_> = v.iter().map(|c| c.repr(program)).collect();
                if items.len() == 1 {
                    format!("({},)", items[0])
                } else {
                    format!("({})", items.join(", "))
                }
            }
            Const::FrozenSet(v) if v.is_empty() => "frozenset()".into(),
            Const::FrozenSet(v) => {
                let items: Vec<_> = Const::set_order(v)
                    .into_iter()
                    .map(|c| c.repr(program))
                    .collect();
                format!("frozenset({{{}}})", items.join(", "))
            }
            Const::Code(i) => format!("<code object {}>", program.codes[*i].name),
        }
    }

    /// The hash CPython files the constant under in a set (see `crate::setobj`).
    fn set_hash(&self) -> i64 {
        use crate::setobj::*;
        match self {
            Const::None => hash_str("None"),
            Const::Bool(b) => i64::from(*b),
            Const::Int(i) => hash_int(*i),
            Const::Float(x) => hash_float(*x),
            Const::Str(s) => hash_str(s),
            Const::Bytes(b) => hash_bytes(b),
            Const::Tuple(v) => hash_tuple(&v.iter().map(Const::set_hash).collect::<Vec<_>>()),
            Const::FrozenSet(_) | Const::Code(_) => 0,
        }
    }

    /// Python's `==` between constants (numbers by value, so `1`, `1.0` and `True` are one
    /// key).
    fn same_key(&self, other: &Const) -> bool {
        let num = |c: &Const| match c {
            Const::Bool(b) => Some(f64::from(u8::from(*b))),
            Const::Int(i) => Some(*i as f64),
            Const::Float(x) => Some(*x),
            _ => None,
        };
        match (self, other) {
            (Const::Tuple(a), Const::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_key(y))
            }
            _ => match (num(self), num(other)) {
                (Some(x), Some(y)) => x == y,
                _ => self == other,
            },
        }
    }

    /// The frozenset constant CPython 3.11 makes of a display's constant `items`:
    /// `PyFrozenSet_New` adds them in order, and `merge_consts_recursive` then builds the
    /// constant again from that frozenset's iteration order; the items are kept in the order
    /// of that second build.
    pub fn frozenset(items: Vec<Const>) -> Const {
        let first = Const::set_items(items);
        Const::FrozenSet(Const::set_order(&first).into_iter().cloned().collect())
    }

    /// The distinct items of a set built by adding `items` in order.
    pub fn set_items(items: Vec<Const>) -> Vec<Const> {
        let mut out: Vec<Const> = Vec::new();
        for c in items {
            if !out.iter().any(|o| o.same_key(&c)) {
                out.push(c);
            }
        }
        out
    }

    /// The items of a set built by adding `items` (distinct) in order, in the order CPython's
    /// set iterates them.
    pub fn set_order(items: &[Const]) -> Vec<&Const> {
        let mut t = crate::setobj::SetTable::default();
        for (i, c) in items.iter().enumerate() {
            t.insert(c.set_hash(), i);
        }
        t.keys().map(|i| &items[i]).collect()
    }
}

/// A compiled function or module body.
#[derive(Debug, Clone)]
pub struct Code {
    pub name: String,
    pub argcount: u32,
    pub varnames: Vec<String>,
    pub names: Vec<String>,
    pub consts: Vec<Const>,
    pub instrs: Vec<Instr>,
    /// Source line of each instruction.
    pub lines: Vec<u32>,
    /// Module code reads and writes names in the globals (`LOAD_NAME`/`STORE_NAME`).
    pub is_module: bool,
    /// Code of CPython's own library that the program runs (`Counter.__missing__`), not the
    /// user's: `dis` and the comparison with CPython's `dis` leave it out (VM-14).
    pub library: bool,
    /// `def f(…, *args)`: the varname after the `argcount` positional ones takes the extra
    /// positional arguments as a tuple (CPython's `CO_VARARGS`).
    pub varargs: bool,
    /// How many keyword-only parameters follow the positional ones (`co_kwonlyargcount`).
    pub kwonlyargcount: u32,
    /// The exception table (3.11's `co_exceptiontable`, CO-6): where an exception raised by
    /// each instruction goes, in instruction order.
    pub exceptions: Vec<ExcEntry>,
    /// Per instruction: it is an exception handler's code, reached only through the exception
    /// table (3.12's cold blocks). Empty for code without handlers.
    pub cold: Vec<bool>,
    /// CO-7: locals nested scopes take (`co_cellvars`) and names taken from the functions
    /// around (`co_freevars`). The frame's slots are the varnames, then the cells that are not
    /// arguments, then the frees (3.11's localsplus).
    pub cellvars: Vec<String>,
    pub freevars: Vec<String>,
    /// `def f(…, **kwargs)`: the next varname takes the unknown keyword arguments as a dict
    /// (`CO_VARKEYWORDS`).
    pub varkeywords: bool,
}

/// One entry of a code object's exception table: an exception raised by an instruction in
/// `start..end` cuts the stack to `depth` values, pushes the raising instruction's index if
/// `lasti`, then the exception, and jumps to `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExcEntry {
    pub start: u32,
    pub end: u32,
    pub target: u32,
    pub depth: u32,
    pub lasti: bool,
}

impl Code {
    /// The handler of an exception raised by instruction `pc` (3.11's `get_exception_handler`).
    pub fn handler_at(&self, pc: u32) -> Option<ExcEntry> {
        self.exceptions
            .iter()
            .find(|e| e.start <= pc && pc < e.end)
            .copied()
    }

    /// Whether instruction `i` is an exception handler's (cold) code.
    pub fn is_cold(&self, i: usize) -> bool {
        self.cold.get(i).copied().unwrap_or(false)
    }

    /// Whether instruction `i` goes from an exception handler's code to ordinary code, by its
    /// jump or by falling through (3.12 makes that a `JUMP_BACKWARD`, VM-15).
    pub fn leaves_handler(&self, i: usize) -> bool {
        use Instr::*;
        if !self.is_cold(i) {
            return false;
        }
        let warm = |j: usize| j < self.instrs.len() && !self.is_cold(j);
        let ins = self.instrs[i];
        let falls = !matches!(
            ins,
            ReturnValue | RaiseVarargs(_) | Reraise(_) | JumpForward(_) | JumpBackward(_)
        );
        ins.target().is_some_and(warm) || (falls && warm(i + 1))
    }

    /// The number of frame slots: varnames, cells that are not arguments, frees.
    pub fn nlocalsplus(&self) -> usize {
        self.varnames.len()
            + self
                .cellvars
                .iter()
                .filter(|c| !self.varnames.contains(c))
                .count()
            + self.freevars.len()
    }

    /// The name of frame slot `i` (CO-7).
    pub fn slot_name(&self, i: u32) -> String {
        let i = i as usize;
        if let Some(v) = self.varnames.get(i) {
            return v.clone();
        }
        let extra: Vec<&String> = self
            .cellvars
            .iter()
            .filter(|c| !self.varnames.contains(c))
            .chain(&self.freevars)
            .collect();
        extra
            .get(i - self.varnames.len())
            .map_or_else(|| format!("<slot {i}>"), |s| s.to_string())
    }

    /// The argument of instruction `i` as `dis` explains it in parentheses.
    pub fn arg_repr(&self, program: &Program, i: usize) -> String {
        use Instr::*;
        let name = |n: u32| self.names[n as usize].clone();
        match self.instrs[i] {
            LoadConst(c) | KwNames(c) => self.consts[c as usize].repr(program),
            LoadFast(v) | StoreFast(v) | DeleteFast(v) => self.varnames[v as usize].clone(),
            MakeCell(v) | LoadDeref(v) | StoreDeref(v) | LoadClosure(v) | DeleteDeref(v) => {
                self.slot_name(v)
            }
            LoadGlobal { name: n, null } => {
                if null {
                    format!("NULL + {}", name(n))
                } else {
                    name(n)
                }
            }
            StoreGlobal(n) | LoadName(n) | StoreName(n) | LoadMethod(n) | LoadAttr(n)
            | StoreAttr(n) | ImportName(n) | ImportFrom(n) | DeleteName(n) | DeleteGlobal(n)
            | DeleteAttr(n) => name(n),
            BinaryOp { op, inplace } => {
                format!("{}{}", op.symbol(), if inplace { "=" } else { "" })
            }
            CompareOp(c) => c.symbol().into(),
            ForIter(t)
            | JumpForward(t)
            | JumpBackward(t)
            | PopJumpForwardIfFalse(t)
            | PopJumpForwardIfTrue(t)
            | PopJumpBackwardIfFalse(t)
            | PopJumpBackwardIfTrue(t)
            | PopJumpForwardIfNone(t)
            | PopJumpForwardIfNotNone(t)
            | PopJumpBackwardIfNone(t)
            | PopJumpBackwardIfNotNone(t)
            | JumpIfTrueOrPop(t)
            | JumpIfFalseOrPop(t) => {
                format!("to {}", t * 2)
            }
            FormatValue { conversion, spec } => {
                let mut parts = Vec::new();
                match conversion {
                    Conversion::Str => parts.push("str"),
                    Conversion::Repr => parts.push("repr"),
                    Conversion::None => {}
                }
                if spec {
                    parts.push("with format");
                }
                parts.join(", ")
            }
            _ => String::new(),
        }
    }
}

/// A whole program: code objects, the module first, and the Python source they were written
/// from (shown by `dis` and the step tables).
#[derive(Debug, Clone)]
pub struct Program {
    pub name: String,
    pub source: String,
    pub codes: Vec<Code>,
}

impl Program {
    /// The module's code object.
    pub fn module(&self) -> &Code {
        &self.codes[0]
    }

    /// Source line `n` (1-based), trimmed; empty when out of range.
    pub fn source_line(&self, n: u32) -> &str {
        self.source
            .lines()
            .nth((n as usize).wrapping_sub(1))
            .map_or("", str::trim)
    }

    /// Checks what the interpreter relies on: every index in range, jumps inside the code,
    /// `JUMP_BACKWARD` going back and the others forward, a line per instruction, and no path
    /// that makes the stack depth negative. Built-in programs are checked by a test; generated
    /// ones before they run.
    pub fn validate(&self) -> Result<(), String> {
        if self.codes.is_empty() || !self.codes[0].is_module {
            return Err("a program starts with its module code".into());
        }
        for code in &self.codes {
            validate_code(self, code).map_err(|e| format!("{}: {e}", code.name))?;
        }
        Ok(())
    }
}

fn validate_code(program: &Program, code: &Code) -> Result<(), String> {
    use Instr::*;
    let n = code.instrs.len();
    if code.lines.len() != n {
        return Err("one line number per instruction".into());
    }
    // Execution must not run off the end: the last instruction leaves the code or jumps back
    // (CPython 3.11 puts a `while True:` loop's exit before its back-edge).
    if !matches!(
        code.instrs.last(),
        Some(ReturnValue | JumpBackward(_) | JumpForward(_) | RaiseVarargs(_) | Reraise(_))
    ) {
        return Err("the last instruction must be RETURN_VALUE or an unconditional jump".into());
    }
    for (i, ins) in code.instrs.iter().enumerate() {
        let bad = |what: &str| Err(format!("instruction {i} ({}): {what}", ins.name()));
        let in_names = |k: u32| (k as usize) < code.names.len();
        match *ins {
            LoadConst(k) | KwNames(k) if k as usize >= code.consts.len() => {
                return bad("no such constant");
            }
            LoadFast(k) | StoreFast(k) | DeleteFast(k) if k as usize >= code.varnames.len() => {
                return bad("no such local");
            }
            LoadGlobal { name, .. } if !in_names(name) => return bad("no such name"),
            StoreGlobal(k) | LoadName(k) | StoreName(k) | LoadMethod(k) | LoadAttr(k)
            | StoreAttr(k) | ImportName(k) | ImportFrom(k) | DeleteName(k) | DeleteGlobal(k)
            | DeleteAttr(k)
                if !in_names(k) =>
            {
                return bad("no such name");
            }
            Copy(0) | Swap(0) | Swap(1) => return bad("COPY needs n >= 1, SWAP n >= 2"),
            _ => {}
        }
        if let Some(t) = ins.target() {
            let backward = matches!(
                ins,
                JumpBackward(_)
                    | PopJumpBackwardIfFalse(_)
                    | PopJumpBackwardIfTrue(_)
                    | PopJumpBackwardIfNone(_)
                    | PopJumpBackwardIfNotNone(_)
            );
            if t >= n || (backward && t > i) || (!backward && t <= i) {
                return bad("jump target out of place");
            }
        }
        if let KwNames(k) = *ins {
            if !matches!(code.consts[k as usize], Const::Tuple(_)) {
                return bad("KW_NAMES takes a tuple of names");
            }
            if !matches!(code.instrs.get(i + 1), Some(Call(_))) {
                return bad("KW_NAMES must come right before CALL");
            }
        }
        if let LoadConst(k) = *ins
            && let Const::Code(c) = code.consts[k as usize]
            && c >= program.codes.len()
        {
            return bad("no such code object");
        }
    }
    check_depths(code)
}

/// Walks every path, computing the stack depth before each instruction; the depths must agree
/// where paths meet and never go below zero.
fn check_depths(code: &Code) -> Result<(), String> {
    use Instr::*;
    let n = code.instrs.len();
    let mut depth: Vec<Option<i32>> = vec![None; n];
    let mut work = vec![(0usize, 0i32)];
    for e in &code.exceptions {
        if e.start >= e.end || e.end as usize > n || e.target as usize >= n {
            return Err(format!("exception table entry {e:?} out of place"));
        }
        work.push((e.target as usize, (e.depth + u32::from(e.lasti) + 1) as i32));
    }
    while let Some((i, d)) = work.pop() {
        if i >= n {
            return Err(format!("falls off the end after instruction {}", n - 1));
        }
        match depth[i] {
            Some(seen) if seen == d => continue,
            Some(seen) => {
                return Err(format!(
                    "instruction {i}: stack depth {d} here, {seen} on another path"
                ));
            }
            None => depth[i] = Some(d),
        }
        let ins = code.instrs[i];
        let need = ins.stack_io().0 as i32;
        if d < need {
            return Err(format!(
                "instruction {i} ({}) needs {need} values, the stack holds {d}",
                ins.name()
            ));
        }
        let after = d + ins.stack_effect();
        if let Some(e) = code.handler_at(i as u32)
            && (d as u32) < e.depth
        {
            return Err(format!(
                "instruction {i}: stack depth {d} below its handler's {}",
                e.depth
            ));
        }
        match ins {
            ReturnValue | RaiseVarargs(_) | Reraise(_) => {}
            JumpForward(t) | JumpBackward(t) => work.push((t as usize, after)),
            ForIter(t) => {
                work.push((i + 1, after));
                work.push((t as usize, d - 1));
            }
            PopJumpForwardIfFalse(t)
            | PopJumpForwardIfTrue(t)
            | PopJumpBackwardIfFalse(t)
            | PopJumpBackwardIfTrue(t)
            | PopJumpForwardIfNone(t)
            | PopJumpForwardIfNotNone(t)
            | PopJumpBackwardIfNone(t)
            | PopJumpBackwardIfNotNone(t) => {
                work.push((i + 1, after));
                work.push((t as usize, after));
            }
            // The jump keeps the value; falling through pops it.
            JumpIfTrueOrPop(t) | JumpIfFalseOrPop(t) => {
                work.push((i + 1, after));
                work.push((t as usize, d));
            }
            _ => work.push((i + 1, after)),
        }
    }
    Ok(())
}

/// A forward reference to an instruction index, bound later with [`CodeBuilder::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Builds a [`Code`], interning names, locals and constants, and resolving labels.
pub struct CodeBuilder {
    code: Code,
    line: u32,
    labels: Vec<Option<usize>>,
    /// (instruction index, label) pairs to patch when the code is finished.
    fixups: Vec<(usize, Label)>,
}

impl CodeBuilder {
    /// A function `name(params…)`.
    pub fn function(name: &str, params: &[&str], line: u32) -> Self {
        CodeBuilder {
            code: Code {
                name: name.into(),
                argcount: params.len() as u32,
                varnames: params.iter().map(|s| s.to_string()).collect(),
                names: Vec::new(),
                consts: Vec::new(),
                instrs: Vec::new(),
                lines: Vec::new(),
                is_module: false,
                library: false,
                varargs: false,
                varkeywords: false,
                kwonlyargcount: 0,
                exceptions: Vec::new(),
                cold: Vec::new(),
                cellvars: Vec::new(),
                freevars: Vec::new(),
            },
            line,
            labels: Vec::new(),
            fixups: Vec::new(),
        }
    }

    /// The module body.
    pub fn module() -> Self {
        let mut b = Self::function("<module>", &[], 1);
        b.code.is_module = true;
        b
    }

    /// Sets the source line of the instructions that follow.
    pub fn line(&mut self, line: u32) -> &mut Self {
        self.line = line;
        self
    }

    pub fn op(&mut self, ins: Instr) -> &mut Self {
        self.code.instrs.push(ins);
        self.code.lines.push(self.line);
        self
    }

    fn name(&mut self, n: &str) -> u32 {
        intern(&mut self.code.names, n)
    }

    fn var(&mut self, n: &str) -> u32 {
        intern(&mut self.code.varnames, n)
    }

    fn konst(&mut self, c: Const) -> u32 {
        match self.code.consts.iter().position(|k| *k == c) {
            Some(i) => i as u32,
            None => {
                self.code.consts.push(c);
                self.code.consts.len() as u32 - 1
            }
        }
    }

    pub fn load_const(&mut self, c: Const) -> &mut Self {
        let k = self.konst(c);
        self.op(Instr::LoadConst(k))
    }
    pub fn load_none(&mut self) -> &mut Self {
        self.load_const(Const::None)
    }
    pub fn load_int(&mut self, i: i64) -> &mut Self {
        self.load_const(Const::Int(i))
    }
    pub fn load_str(&mut self, s: &str) -> &mut Self {
        self.load_const(Const::Str(s.into()))
    }
    pub fn load_fast(&mut self, v: &str) -> &mut Self {
        let k = self.var(v);
        self.op(Instr::LoadFast(k))
    }
    pub fn store_fast(&mut self, v: &str) -> &mut Self {
        let k = self.var(v);
        self.op(Instr::StoreFast(k))
    }
    pub fn load_global(&mut self, n: &str) -> &mut Self {
        let name = self.name(n);
        self.op(Instr::LoadGlobal { name, null: false })
    }
    /// `LOAD_GLOBAL (NULL + n)`: the callable of a plain call.
    pub fn load_global_null(&mut self, n: &str) -> &mut Self {
        let name = self.name(n);
        self.op(Instr::LoadGlobal { name, null: true })
    }
    pub fn store_global(&mut self, n: &str) -> &mut Self {
        let k = self.name(n);
        self.op(Instr::StoreGlobal(k))
    }
    pub fn load_name(&mut self, n: &str) -> &mut Self {
        let k = self.name(n);
        self.op(Instr::LoadName(k))
    }
    pub fn store_name(&mut self, n: &str) -> &mut Self {
        let k = self.name(n);
        self.op(Instr::StoreName(k))
    }
    pub fn load_attr(&mut self, n: &str) -> &mut Self {
        let k = self.name(n);
        self.op(Instr::LoadAttr(k))
    }
    pub fn store_attr(&mut self, n: &str) -> &mut Self {
        let k = self.name(n);
        self.op(Instr::StoreAttr(k))
    }
    pub fn load_method(&mut self, n: &str) -> &mut Self {
        let k = self.name(n);
        self.op(Instr::LoadMethod(k))
    }
    pub fn import_name(&mut self, n: &str) -> &mut Self {
        self.load_int(0).load_none();
        let k = self.name(n);
        self.op(Instr::ImportName(k))
    }
    /// `KW_NAMES` with the tuple of `names`, then `CALL argc`.
    pub fn call_kw(&mut self, argc: u32, names: &[&str]) -> &mut Self {
        let k = self.konst(Const::Tuple(
            names.iter().map(|s| Const::Str(s.to_string())).collect(),
        ));
        self.op(Instr::KwNames(k)).op(Instr::Call(argc))
    }
    pub fn call(&mut self, argc: u32) -> &mut Self {
        self.op(Instr::Call(argc))
    }
    pub fn binary(&mut self, op: BinOp) -> &mut Self {
        self.op(Instr::BinaryOp { op, inplace: false })
    }
    pub fn inplace(&mut self, op: BinOp) -> &mut Self {
        self.op(Instr::BinaryOp { op, inplace: true })
    }
    /// `LOAD_CONST <code>; MAKE_FUNCTION 0` for the code object `index` of the program.
    pub fn make_function(&mut self, index: usize) -> &mut Self {
        self.load_const(Const::Code(index))
            .op(Instr::MakeFunction(0))
    }

    pub fn new_label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `label` to the next instruction.
    pub fn bind(&mut self, label: Label) -> &mut Self {
        self.labels[label.0] = Some(self.code.instrs.len());
        self
    }

    /// A label bound to the next instruction.
    pub fn here(&mut self) -> Label {
        let l = self.new_label();
        self.bind(l);
        l
    }

    /// Emits a jump-like instruction to `label`; `make` builds it from the resolved target.
    pub fn jump(&mut self, make: fn(u32) -> Instr, label: Label) -> &mut Self {
        self.fixups.push((self.code.instrs.len(), label));
        self.op(make(u32::MAX))
    }

    /// The finished code object. Panics on an unbound label (a bug in the builder's caller).
    pub fn finish(mut self) -> Code {
        for (at, label) in std::mem::take(&mut self.fixups) {
            let target = self.labels[label.0].expect("jump to an unbound label") as u32;
            use Instr::*;
            self.code.instrs[at] = match self.code.instrs[at] {
                ForIter(_) => ForIter(target),
                JumpForward(_) => JumpForward(target),
                JumpBackward(_) => JumpBackward(target),
                PopJumpForwardIfFalse(_) => PopJumpForwardIfFalse(target),
                PopJumpForwardIfTrue(_) => PopJumpForwardIfTrue(target),
                PopJumpBackwardIfFalse(_) => PopJumpBackwardIfFalse(target),
                PopJumpBackwardIfTrue(_) => PopJumpBackwardIfTrue(target),
                PopJumpForwardIfNone(_) => PopJumpForwardIfNone(target),
                PopJumpForwardIfNotNone(_) => PopJumpForwardIfNotNone(target),
                PopJumpBackwardIfNone(_) => PopJumpBackwardIfNone(target),
                PopJumpBackwardIfNotNone(_) => PopJumpBackwardIfNotNone(target),
                JumpIfTrueOrPop(_) => JumpIfTrueOrPop(target),
                JumpIfFalseOrPop(_) => JumpIfFalseOrPop(target),
                other => unreachable!("{} is not a jump", other.name()),
            };
        }
        self.code
    }
}

/// The index of `s` in `table`, added at the end when new (CPython's name and local tables).
pub(crate) fn intern(table: &mut Vec<String>, s: &str) -> u32 {
    match table.iter().position(|t| t == s) {
        Some(i) => i as u32,
        None => {
            table.push(s.to_string());
            table.len() as u32 - 1
        }
    }
}

impl fmt::Display for Instr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.arg() {
            Some(a) => write!(f, "{} {a}", self.name()),
            None => write!(f, "{}", self.name()),
        }
    }
}
