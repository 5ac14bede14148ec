//! The partial-order reduction's test of an instruction (rule EX-17 of `spec/explore.md`):
//! whether the next instruction of a thread is invisible to every other thread.
//!
//! An instruction is *local* when it reads and writes only its own frame (the value stack and
//! fast locals), immortal objects and objects no other thread can reach, raises nothing, calls
//! nothing, and neither allocates nor frees a heap object. Such an instruction commutes with
//! every instruction of every other thread: the two orders end in the same state, slot numbers
//! included. It may change the reference count of a shared object (`LOAD_FAST` of a shared
//! list); counts are added to, and two additions commute, so only a program that reads a count
//! (`sys.getrefcount`) can tell the orders apart, and in such a program nothing is local.

use crate::heap::{Heap, IterObj, ObjRef, Object};
use crate::platform::Std;
use crate::runtime::Token;
use crate::vm::code::{BinOp, Const};
use crate::vm::interp::PyThread;
use crate::vm::policy::Mark;
use crate::vm::{Instr, Policy, Program};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// Names that reach the globals other than through `LOAD_GLOBAL`/`STORE_GLOBAL` and their
/// module-level forms: with any of them in a program, a read of a global is never local.
const GLOBALS_BY_OTHER_MEANS: &[&str] = &[
    "globals",
    "vars",
    "locals",
    "exec",
    "eval",
    "compile",
    "__dict__",
    "setattr",
    "delattr",
    "getattr",
    "__import__",
    "builtins",
    "__builtins__",
    "modules",
];

/// What the reduction knows of a program (EX-17), made once per search.
pub struct Reduction {
    /// Global reads are never local (see [`GLOBALS_BY_OTHER_MEANS`]).
    globals_off: bool,
    /// Globals some function (or class body) may write: `STORE_GLOBAL` and `DELETE_GLOBAL`.
    function_writes: HashSet<String>,
    /// Per instruction of the module's code, the globals the module's code may still write
    /// from there (`STORE_NAME`, `DELETE_NAME`, `STORE_GLOBAL`, `DELETE_GLOBAL` reachable
    /// along jumps and exception handlers), computed when first asked.
    module_writes: RefCell<HashMap<u32, HashSet<String>>>,
    /// The planted defect of the twin check: `STORE_SUBSCR` counts as local.
    store_subscript_is_local: bool,
}

impl Reduction {
    /// The reduction for `program`, unless the program reads a reference count
    /// (`getrefcount`), in which case nothing is local.
    pub fn new(program: &Program, store_subscript_is_local: bool) -> Option<Reduction> {
        let mentions = |word: &str| {
            fn in_const(c: &Const, word: &str) -> bool {
                match c {
                    Const::Str(s) => s.contains(word),
                    Const::Tuple(v) | Const::FrozenSet(v) => v.iter().any(|c| in_const(c, word)),
                    _ => false,
                }
            }
            program.codes.iter().any(|code| {
                code.names.iter().any(|n| n == word)
                    || code.consts.iter().any(|c| in_const(c, word))
            })
        };
        if mentions("getrefcount") {
            return None;
        }
        let mut function_writes = HashSet::new();
        for (i, code) in program.codes.iter().enumerate() {
            for ins in &code.instrs {
                match *ins {
                    Instr::StoreGlobal(n) | Instr::DeleteGlobal(n) if i != 0 => {
                        function_writes.insert(code.names[n as usize].clone());
                    }
                    _ => {}
                }
            }
        }
        Some(Reduction {
            globals_off: GLOBALS_BY_OTHER_MEANS.iter().any(|w| mentions(w)),
            function_writes,
            module_writes: RefCell::default(),
            store_subscript_is_local,
        })
    }

    /// Whether the module's code, standing at instruction `pc`, may still write global `name`.
    fn module_may_write(&self, program: &Program, pc: u32, name: &str) -> bool {
        let mut memo = self.module_writes.borrow_mut();
        let writes = memo.entry(pc).or_insert_with(|| {
            let code = program.module();
            let n = code.instrs.len();
            let mut seen = vec![false; n];
            let mut todo = vec![pc as usize];
            let mut writes = HashSet::new();
            while let Some(i) = todo.pop() {
                if i >= n || std::mem::replace(&mut seen[i], true) {
                    continue;
                }
                let ins = code.instrs[i];
                if let Instr::StoreName(k)
                | Instr::DeleteName(k)
                | Instr::StoreGlobal(k)
                | Instr::DeleteGlobal(k) = ins
                {
                    writes.insert(code.names[k as usize].clone());
                }
                todo.push(i + 1);
                todo.extend(ins.target());
                todo.extend(
                    code.exceptions
                        .iter()
                        .filter(|e| (e.start as usize..e.end as usize).contains(&i))
                        .map(|e| e.target as usize),
                );
            }
            writes
        });
        writes.contains(name)
    }

    /// Whether reading global `name` now is local: no thread can write it from here on (no
    /// function writes it, and the module's code, where the main thread stands in it, cannot
    /// reach a write of it), and it is bound (in the globals or as a built-in), so the read
    /// raises nothing.
    fn stable_global(
        &self,
        program: &Program,
        heap: &Heap<Std>,
        py: Token<'_>,
        threads: &[PyThread],
        globals: ObjRef,
        name: &str,
    ) -> bool {
        if self.globals_off || self.function_writes.contains(name) {
            return false;
        }
        // The main thread's bottom frame runs the module's code until the program ends.
        if let Some(module) = threads.first().and_then(|t| t.frames.first())
            && module.code == 0
            && self.module_may_write(program, module.pc.saturating_sub(1), name)
        {
            return false;
        }
        heap.dict_find_str(py, globals, name)
            .is_ok_and(|i| i.is_some())
            || crate::builtins::Builtin::global(name).is_some()
    }
}

impl Reduction {
    /// Whether `policy` polls right after thread `t`'s next instruction whatever it finds
    /// (`Mark::Always` for each instruction that may follow it): a decision before a local
    /// instruction is light only then, so that the deferral of its preemptions to that poll
    /// point cannot fail, and no state the cache could prune at goes unfingerprinted.
    pub fn polls_after_next(&self, program: &Program, policy: Policy, t: &PyThread) -> bool {
        let Some(f) = t.frames.last() else {
            return false;
        };
        let code = &program.codes[f.code as usize];
        let pc = f.pc as usize;
        let Some(&instr) = code.instrs.get(pc) else {
            return false;
        };
        let after = |i: usize| code.instrs.get(i).copied();
        let mut next = vec![];
        match instr {
            Instr::JumpForward(t) | Instr::JumpBackward(t) => next.push(after(t as usize)),
            i => {
                next.push(after(pc + 1));
                next.extend(i.target().map(after));
            }
        }
        next.into_iter()
            .all(|n| n.is_some() && policy.mark(instr, n) == Mark::Always)
    }

    /// Whether thread `t`'s next instruction is local (see the module's documentation).
    pub fn next_is_local(
        &self,
        program: &Program,
        heap: &Heap<Std>,
        py: Token<'_>,
        threads: &[PyThread],
        t: u32,
    ) -> bool {
        let t = &threads[t as usize];
        if t.start.is_some() || t.sync.is_some() || t.hash_done || t.raised.is_some() {
            return false;
        }
        let Some(f) = t.frames.last() else {
            return false;
        };
        if f.pending.is_some() {
            return false;
        }
        let code = &program.codes[f.code as usize];
        let Some(&instr) = code.instrs.get(f.pc as usize) else {
            return false;
        };
        // The k-th value from the top of the stack (0: the top); `None` for NULL or no value.
        let top = |k: usize| f.stack.len().checked_sub(k + 1).and_then(|j| f.stack[j]);
        // Dropping `n` references to `o` leaves it alive.
        let survives = |o: ObjRef, n: isize| {
            o.is_immortal() || heap.refcount(py, o).is_ok_and(|count| count > n)
        };
        let int = |o: ObjRef| {
            heap.with_object(py, o, |x| match x {
                Object::Int(v) => Some(*v),
                Object::Bool(b) => Some(i64::from(*b)),
                _ => None,
            })
            .ok()
            .flatten()
        };
        // A condition whose truth is read without a call: a bool, None or an int.
        let plain_truth =
            |o: ObjRef| o == ObjRef::from_bool(true) || o.index() <= 2 || int(o).is_some();
        // Two operands popped and dropped, both staying alive.
        let both_survive = |a: ObjRef, b: ObjRef| {
            if a == b {
                survives(a, 2)
            } else {
                survives(a, 1) && survives(b, 1)
            }
        };
        use Instr::*;
        match instr {
            Nop | Resume(_) | PushNull | KwNames(_) | JumpForward(_) | JumpBackward(_)
            | LoadConst(_) | Copy(_) | Swap(_) => true,
            LoadFast(n) => f.locals.get(n as usize).is_some_and(|v| v.is_some()),
            StoreSubscr => self.store_subscript_is_local,
            // A global no thread can write any more reads like a constant.
            LoadGlobal { name, .. } => {
                let name = &code.names[name as usize];
                self.stable_global(program, heap, py, threads, f.globals, name)
            }
            LoadName(name) if f.code == 0 && f.namespace.is_none() => {
                let name = &code.names[name as usize];
                self.stable_global(program, heap, py, threads, f.globals, name)
            }
            StoreFast(n) => f
                .locals
                .get(n as usize)
                .is_some_and(|old| old.is_none_or(|o| survives(o, 1))),
            PopTop => top(0).is_none_or(|o| survives(o, 1)),
            IsOp(_) => match (top(1), top(0)) {
                (Some(a), Some(b)) => both_survive(a, b),
                _ => false,
            },
            CompareOp(_) => match (top(1), top(0)) {
                (Some(a), Some(b)) => int(a).is_some() && int(b).is_some() && both_survive(a, b),
                _ => false,
            },
            BinaryOp { op, .. } => {
                let (Some(a), Some(b)) = (top(1), top(0)) else {
                    return false;
                };
                let (Some(x), Some(y)) = (int(a), int(b)) else {
                    return false;
                };
                let result = match op {
                    BinOp::Add => x.checked_add(y),
                    BinOp::Sub => x.checked_sub(y),
                    BinOp::Mul => x.checked_mul(y),
                    BinOp::And => Some(x & y),
                    BinOp::Or => Some(x | y),
                    BinOp::Xor => Some(x ^ y),
                    _ => None,
                };
                // The result must be a small int: no allocation.
                result.and_then(ObjRef::small_int).is_some() && both_survive(a, b)
            }
            PopJumpForwardIfFalse(_)
            | PopJumpForwardIfTrue(_)
            | PopJumpBackwardIfFalse(_)
            | PopJumpBackwardIfTrue(_)
            | JumpIfTrueOrPop(_)
            | JumpIfFalseOrPop(_)
            | UnaryNot => top(0).is_some_and(|o| plain_truth(o) && survives(o, 1)),
            PopJumpForwardIfNone(_)
            | PopJumpForwardIfNotNone(_)
            | PopJumpBackwardIfNone(_)
            | PopJumpBackwardIfNotNone(_) => top(0).is_some_and(|o| survives(o, 1)),
            // A range iterator only this stack holds, with a small int still to give.
            ForIter(_) => top(0).is_some_and(|it| {
                !it.is_immortal()
                    && heap.refcount(py, it).is_ok_and(|c| c == 1)
                    && heap
                        .with_object(py, it, |x| match x {
                            Object::Iter(IterObj::Range { next, stop, step }) => {
                                let more = if *step > 0 { next < stop } else { next > stop };
                                more && ObjRef::small_int(*next).is_some()
                            }
                            _ => false,
                        })
                        .unwrap_or(false)
            }),
            _ => false,
        }
    }
}
