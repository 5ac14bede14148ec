//! Eval-breaker policies: after which instructions a thread polls for a GIL drop request, per
//! CPython version (rules VM-5 … VM-8 of `spec/bytecode.md`, where each table cites its source).
//!
//! A poll point between two instructions is the only place a thread running bytecode can be
//! switched away from (GIL-7); a blocking call releases the GIL inside the instruction (GIL-3).

use crate::builtins::CallPoll;
use crate::vm::code::Instr;
use std::fmt;
use std::str::FromStr;

/// One CPython version's poll points, or `Every` (a switch may fall between any two
/// instructions: all that the language itself guarantees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    Py38,
    Py39,
    Py310,
    Py311,
    Py312,
    Py313,
    Every,
}

/// What was called by a `CALL` (or by `BEFORE_WITH`'s `__enter__`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callee {
    /// A Python function: a new frame, entered at its `RESUME`.
    Python,
    /// A built-in (C) function, with how 3.11+ treats it.
    Native(CallPoll),
}

/// What the interpreter tells the policy about the instruction it just completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Executed {
    pub instr: Instr,
    /// The instruction this thread runs next (`None`: the thread ended).
    pub next: Option<Instr>,
    /// A conditional jump jumped.
    pub taken: bool,
    /// The condition of a `POP_JUMP_*` was exactly `True` or `False`.
    pub exact_bool: bool,
    /// For `CALL`: what it called; `Python` also for an instruction that pushed the frame of a
    /// getter or a dunder method (VM-13).
    pub callee: Option<Callee>,
    /// A `RETURN_VALUE` returned into a calling frame of the same thread.
    pub returned_to_caller: bool,
    /// It went from an exception handler's code to the code an exception does not reach (the
    /// end of an `except` clause), which 3.12 lays out before the handler: a backward jump.
    pub leaves_handler: bool,
}

impl Executed {
    pub fn plain(instr: Instr, next: Option<Instr>) -> Self {
        Executed {
            instr,
            next,
            taken: false,
            exact_bool: false,
            callee: None,
            returned_to_caller: false,
            leaves_handler: false,
        }
    }
}

/// A static description of when a version polls after an instruction, for `dis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Never,
    Always,
    /// Only when the jump is taken.
    IfTaken,
    /// Unless the condition is exactly `True`/`False` (3.8/3.9's FAST_DISPATCH paths).
    IfNotExactBool,
    /// After a call of a built-in (not after a Python function, whose RESUME polls).
    AfterNativeCall,
    /// After a call of a built-in other than len/isinstance/list.append/type.
    AfterSlowNativeCall,
    /// When it returns into a calling frame (the caller's call completes).
    AfterReturnToCaller,
    /// When it goes from an exception handler back to ordinary code (3.12).
    LeavingHandler,
}

impl Policy {
    pub const ALL: [Policy; 7] = [
        Policy::Py38,
        Policy::Py39,
        Policy::Py310,
        Policy::Py311,
        Policy::Py312,
        Policy::Py313,
        Policy::Every,
    ];

    /// The name used on the command line and in schedule strings.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Py38 => "3.8",
            Policy::Py39 => "3.9",
            Policy::Py310 => "3.10",
            Policy::Py311 => "3.11",
            Policy::Py312 => "3.12",
            Policy::Py313 => "3.13",
            Policy::Every => "every",
        }
    }

    /// Whether the policy polls between `e.instr` and the thread's next instruction.
    pub fn polls(self, e: &Executed) -> bool {
        self.reason(e).is_some()
    }

    /// Why the policy polls after `e`, in a few words for step tables; `None` when it does not.
    pub fn reason(self, e: &Executed) -> Option<&'static str> {
        use Instr::*;
        e.next?; // the thread ended: it releases the GIL for good
        match self {
            Policy::Every => Some("every instruction boundary is a switch point"),
            Policy::Py38 | Policy::Py39 => {
                if matches!(e.next, Some(BeforeWith)) {
                    return None; // no poll right before entering a with block
                }
                match e.instr {
                    // A Python frame was pushed (by a CALL, or from inside LOAD_ATTR, BINARY_OP,
                    // … for a getter or a dunder): it polls at its entry, and the instruction
                    // completes, with its own dispatch, when the frame returns.
                    _ if e.callee == Some(Callee::Python) => None,
                    Resume(_) => Some("frame entry"),
                    ReturnValue | ReturnGenerator => {
                        e.returned_to_caller.then_some("after the call returns")
                    }
                    // YIELD_VALUE leaves the frame (`goto exiting`): no dispatch, no poll; the
                    // resumed frame polls at its entry (RESUME 1 here).
                    YieldValue => None,
                    // `x is None` as a condition is `LOAD_CONST None; IS_OP/COMPARE_OP;
                    // POP_JUMP_IF_*` on 3.8/3.9: 3.8's COMPARE_OP polls, 3.9's IS_OP and the
                    // jump on an exact bool fast-dispatch.
                    PopJumpForwardIfNone(_)
                    | PopJumpForwardIfNotNone(_)
                    | PopJumpBackwardIfNone(_)
                    | PopJumpBackwardIfNotNone(_) => {
                        (self == Policy::Py38).then_some("3.8's `is` is a COMPARE_OP, which polls")
                    }
                    PopJumpForwardIfFalse(_)
                    | PopJumpForwardIfTrue(_)
                    | PopJumpBackwardIfFalse(_)
                    | PopJumpBackwardIfTrue(_)
                    | JumpIfTrueOrPop(_)
                    | JumpIfFalseOrPop(_) => (!e.exact_bool)
                        .then_some("a jump on a non-bool condition dispatches with a poll"),
                    i if self.fast_dispatch(i) => None,
                    _ => Some("3.8/3.9 poll before almost every instruction"),
                }
            }
            Policy::Py310 => match e.instr {
                Resume(_) => Some("frame entry"),
                JumpBackward(_) => Some("backward jump"),
                PopJumpForwardIfFalse(_)
                | PopJumpForwardIfTrue(_)
                | PopJumpBackwardIfFalse(_)
                | PopJumpBackwardIfTrue(_)
                | PopJumpForwardIfNone(_)
                | PopJumpForwardIfNotNone(_)
                | PopJumpBackwardIfNone(_)
                | PopJumpBackwardIfNotNone(_) => e.taken.then_some("taken conditional jump"),
                Call(_) | CallFunctionEx(_) if matches!(e.callee, Some(Callee::Native(_))) => {
                    Some("after a call returns")
                }
                ReturnValue | ReturnGenerator if e.returned_to_caller => {
                    Some("after a call returns")
                }
                _ => None,
            },
            Policy::Py311 | Policy::Py312 | Policy::Py313 => match e.instr {
                // 3.12 moves handlers to the end of the code (`push_cold_blocks_to_end`), so
                // leaving one is a JUMP_BACKWARD, which polls; 3.13 makes it
                // JUMP_BACKWARD_NO_INTERRUPT.
                _ if e.leaves_handler && self == Policy::Py312 => {
                    Some("3.12's jump back from an exception handler is a JUMP_BACKWARD")
                }
                Resume(a) if a < 2 => Some("RESUME at function entry"),
                JumpBackward(_) => Some("JUMP_BACKWARD"),
                PopJumpBackwardIfFalse(_)
                | PopJumpBackwardIfTrue(_)
                | PopJumpBackwardIfNone(_)
                | PopJumpBackwardIfNotNone(_) => e.taken.then_some("taken backward jump"),
                Call(_) | CallFunctionEx(_)
                    if e.callee == Some(Callee::Native(CallPoll::Polls)) =>
                {
                    Some("after a call of a C function")
                }
                _ => None,
            },
        }
    }

    /// Why the policy polls when an exception has been caught, before the handler's first
    /// instruction (CO-6): 3.8–3.10 resume at `main_loop`, which checks the eval breaker; 3.11+
    /// resume with `DISPATCH()`, which does not.
    pub fn after_unwind(self) -> Option<&'static str> {
        match self {
            Policy::Every => Some("every instruction boundary is a switch point"),
            Policy::Py38 | Policy::Py39 | Policy::Py310 => {
                Some("an exception was caught: the handler starts at main_loop, which polls")
            }
            Policy::Py311 | Policy::Py312 | Policy::Py313 => None,
        }
    }

    /// 3.8/3.9: the instructions whose CPython counterparts end with `FAST_DISPATCH()` (no poll
    /// before the next instruction).
    fn fast_dispatch(self, i: Instr) -> bool {
        use Instr::*;
        match i {
            Nop | LoadFast(_) | LoadConst(_) | StoreFast(_) | PopTop | Copy(_) | Swap(_)
            | JumpForward(_) | PushNull | KwNames(_) | MakeCell(_) | CopyFreeVars(_) => true,
            IsOp(_) | ContainsOp(_) | LoadAssertionError => self == Policy::Py39,
            _ => false,
        }
    }

    /// Whether leaving an exception handler for ordinary code polls (3.12, see `reason`).
    pub fn polls_leaving_handler(self) -> bool {
        let e = Executed {
            leaves_handler: true,
            ..Executed::plain(Instr::Nop, Some(Instr::Nop))
        };
        self == Policy::Py312 && self.polls(&e)
    }

    /// When the policy polls after `i` (followed by `next`), independent of run-time values.
    pub fn mark(self, i: Instr, next: Option<Instr>) -> Mark {
        use Instr::*;
        let probe = |e: Executed| self.polls(&e);
        let base = Executed::plain(i, next.or(Some(Nop)));
        match i {
            Call(_) | CallFunctionEx(_) => {
                let native = probe(Executed {
                    callee: Some(Callee::Native(CallPoll::Polls)),
                    ..base
                });
                let fast = probe(Executed {
                    callee: Some(Callee::Native(CallPoll::Fast)),
                    ..base
                });
                let python = probe(Executed {
                    callee: Some(Callee::Python),
                    ..base
                });
                match (native, fast, python) {
                    (true, true, true) => Mark::Always,
                    (true, true, false) => Mark::AfterNativeCall,
                    (true, false, false) => Mark::AfterSlowNativeCall,
                    _ => Mark::Never,
                }
            }
            ReturnValue | ReturnGenerator => {
                let to_caller = probe(Executed {
                    returned_to_caller: true,
                    ..base
                });
                match (to_caller, probe(base)) {
                    (true, true) => Mark::Always,
                    (true, false) => Mark::AfterReturnToCaller,
                    _ => Mark::Never,
                }
            }
            PopJumpForwardIfFalse(_)
            | PopJumpForwardIfTrue(_)
            | PopJumpBackwardIfFalse(_)
            | PopJumpBackwardIfTrue(_)
            | PopJumpForwardIfNone(_)
            | PopJumpForwardIfNotNone(_)
            | PopJumpBackwardIfNone(_)
            | PopJumpBackwardIfNotNone(_)
            | JumpIfTrueOrPop(_)
            | JumpIfFalseOrPop(_) => {
                let cases = [(false, false), (false, true), (true, false), (true, true)].map(
                    |(taken, exact_bool)| {
                        probe(Executed {
                            taken,
                            exact_bool,
                            ..base
                        })
                    },
                );
                // Cases (taken, exact bool): (no, no), (no, yes), (yes, no), (yes, yes).
                match cases {
                    [false, false, true, true] => Mark::IfTaken,
                    [true, false, true, false] => Mark::IfNotExactBool,
                    [false, false, false, false] => Mark::Never,
                    _ => Mark::Always,
                }
            }
            _ if probe(base) => Mark::Always,
            _ => Mark::Never,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown Python version '{s}': expected one of 3.8, 3.9, 3.10, 3.11, 3.12, 3.13, every"
                )
            })
    }
}

impl Mark {
    /// A short phrase for `dis`.
    pub fn describe(self) -> &'static str {
        match self {
            Mark::Never => "",
            Mark::Always => "poll",
            Mark::IfTaken => "poll if taken",
            Mark::IfNotExactBool => "poll unless the condition is a bool",
            Mark::AfterNativeCall => {
                "poll after a C call (a Python callee polls at its RESUME and its return)"
            }
            Mark::AfterSlowNativeCall => {
                "poll after a C call but len/list.append (a Python callee polls at its RESUME)"
            }
            Mark::AfterReturnToCaller => "poll when returning into a caller",
            Mark::LeavingHandler => "poll: 3.12 jumps back from the handler (JUMP_BACKWARD)",
        }
    }
}
