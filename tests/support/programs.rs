//! Small threaded programs described by a list of operations per worker, assembled as CPython
//! 3.11 compiles their source (the source is kept too, for messages). They are made to differ
//! between schedules in one thing at a time: a large integer, a lock's state, what a worker
//! prints, the switch interval, the order in which threads finish (EX-13).
#![allow(dead_code)]

use gilcheck::vm::code::{BinOp, CodeBuilder, Const, Instr, Program};
use proptest::prelude::*;

/// One statement of a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `shared["value"] = shared["value"] + k` (read and write are separate instructions).
    Add(i64),
    /// `print("s")`
    Print(&'static str),
    /// `lock.acquire(False)`, the result dropped.
    TryAcquire,
    /// `lock.release()` (raises RuntimeError when the lock is not held).
    Release,
    /// `lock.acquire()`, blocking, the result dropped.
    Acquire,
    /// `sys.setswitchinterval(x)`
    SetInterval(f64),
    /// `order.append(k)`
    Record(i64),
    /// `time.sleep(0.0)`
    Sleep,
    /// `for _ in range(n): …`
    Loop(i64, Vec<Op>),
    /// `while shared["value"] == k: pass` (spins while another thread has not changed it).
    SpinWhile(i64),
    /// `while shared["value"] == k: …`, the body's ops in the loop.
    SpinWhileWith(i64, Vec<Op>),
}

/// A program: `shared = {"value": start}`, `order = []`, `lock = threading.Lock()` (acquired by
/// the main thread first when `main_acquires`), one thread per worker started in order and
/// joined in order, then `print(shared["value"], order, sys.getswitchinterval())`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prog {
    pub start: i64,
    pub main_acquires: bool,
    pub workers: Vec<Vec<Op>>,
    /// What the last lines print.
    pub last: Last,
}

/// The end of a [`Prog`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Last {
    /// `print(shared["value"], order, sys.getswitchinterval())`
    All,
    /// `print(sys.getswitchinterval())`
    Interval,
    /// `print(shared["value"] == k)`, then `shared["value"] = 0`: schedules differ only in
    /// whether the value was `k`.
    Flag(i64),
}

impl Prog {
    pub fn new(workers: Vec<Vec<Op>>) -> Prog {
        Prog {
            start: 0,
            main_acquires: false,
            workers,
            last: Last::All,
        }
    }
}

struct Src {
    lines: Vec<String>,
}

impl Src {
    fn line(&mut self, indent: usize, text: impl AsRef<str>) -> u32 {
        self.lines
            .push(format!("{}{}", "    ".repeat(indent), text.as_ref()));
        self.lines.len() as u32
    }
}

fn call_method(f: &mut CodeBuilder, obj: &str, method: &str, args: &[Const]) {
    f.load_global(obj).load_method(method);
    for a in args {
        f.load_const(a.clone());
    }
    f.call(args.len() as u32).op(Instr::PopTop);
}

fn emit(src: &mut Src, f: &mut CodeBuilder, op: &Op, indent: usize) {
    match op {
        Op::Add(k) => {
            let l = src.line(
                indent,
                format!("shared[\"value\"] = shared[\"value\"] + {k}"),
            );
            f.line(l)
                .load_global("shared")
                .load_str("value")
                .op(Instr::BinarySubscr)
                .load_int(*k)
                .binary(BinOp::Add)
                .load_global("shared")
                .load_str("value")
                .op(Instr::StoreSubscr);
        }
        Op::Print(s) => {
            let l = src.line(indent, format!("print(\"{s}\")"));
            f.line(l)
                .load_global_null("print")
                .load_str(s)
                .call(1)
                .op(Instr::PopTop);
        }
        Op::TryAcquire => {
            let l = src.line(indent, "lock.acquire(False)");
            f.line(l);
            call_method(f, "lock", "acquire", &[Const::Bool(false)]);
        }
        Op::Release => {
            let l = src.line(indent, "lock.release()");
            f.line(l);
            call_method(f, "lock", "release", &[]);
        }
        Op::Acquire => {
            let l = src.line(indent, "lock.acquire()");
            f.line(l);
            call_method(f, "lock", "acquire", &[]);
        }
        Op::SetInterval(x) => {
            let l = src.line(indent, format!("sys.setswitchinterval({x:?})"));
            f.line(l);
            call_method(f, "sys", "setswitchinterval", &[Const::Float(*x)]);
        }
        Op::Record(k) => {
            let l = src.line(indent, format!("order.append({k})"));
            f.line(l);
            call_method(f, "order", "append", &[Const::Int(*k)]);
        }
        Op::Sleep => {
            let l = src.line(indent, "time.sleep(0.0)");
            f.line(l);
            call_method(f, "time", "sleep", &[Const::Float(0.0)]);
        }
        Op::Loop(n, body) => {
            let l = src.line(indent, format!("for _ in range({n}):"));
            f.line(l)
                .load_global_null("range")
                .load_int(*n)
                .call(1)
                .op(Instr::GetIter);
            let top = f.here();
            let end = f.new_label();
            f.jump(Instr::ForIter, end).store_fast("_");
            for op in body {
                emit(src, f, op, indent + 1);
            }
            f.line(l).jump(Instr::JumpBackward, top).bind(end);
        }
        Op::SpinWhile(k) => emit(src, f, &Op::SpinWhileWith(*k, Vec::new()), indent),
        Op::SpinWhileWith(k, body) => {
            let l = src.line(indent, format!("while shared[\"value\"] == {k}:"));
            if body.is_empty() {
                src.line(indent + 1, "pass");
            }
            // 3.11: the test at the top, then again before the backward jump.
            let end = f.new_label();
            let test = |f: &mut CodeBuilder| {
                f.line(l)
                    .load_global("shared")
                    .load_str("value")
                    .op(Instr::BinarySubscr)
                    .load_int(*k)
                    .op(Instr::CompareOp(gilcheck::vm::code::CmpOp::Eq));
            };
            test(f);
            f.jump(Instr::PopJumpForwardIfFalse, end);
            let top = f.here();
            for op in body {
                emit(src, f, op, indent + 1);
            }
            test(f);
            f.jump(Instr::PopJumpBackwardIfTrue, top);
            f.bind(end);
        }
    }
}

impl Prog {
    /// The program, validated.
    pub fn build(&self) -> Program {
        let mut src = Src { lines: Vec::new() };
        let mut m = CodeBuilder::module();
        m.op(Instr::Resume(0));
        for module in ["threading", "sys", "time"] {
            let l = src.line(0, format!("import {module}"));
            m.line(l).import_name(module).store_name(module);
        }
        let l = src.line(0, format!("shared = {{\"value\": {}}}", self.start));
        m.line(l)
            .load_str("value")
            .load_int(self.start)
            .op(Instr::BuildMap(1))
            .store_name("shared");
        let l = src.line(0, "order = []");
        m.line(l).op(Instr::BuildList(0)).store_name("order");
        let l = src.line(0, "lock = threading.Lock()");
        m.line(l)
            .op(Instr::PushNull)
            .load_name("threading")
            .load_attr("Lock")
            .call(0)
            .store_name("lock");
        if self.main_acquires {
            let l = src.line(0, "lock.acquire()");
            m.line(l)
                .load_name("lock")
                .load_method("acquire")
                .call(0)
                .op(Instr::PopTop);
        }
        let mut codes = Vec::new();
        for (i, ops) in self.workers.iter().enumerate() {
            let name = format!("worker{i}");
            let def = src.line(0, format!("def {name}():"));
            let mut f = CodeBuilder::function(&name, &[], def);
            f.line(def).op(Instr::Resume(0));
            for op in ops {
                emit(&mut src, &mut f, op, 1);
            }
            if ops.is_empty() {
                src.line(1, "pass");
            }
            f.load_none().op(Instr::ReturnValue);
            codes.push(f.finish());
            m.line(def).make_function(i + 1).store_name(&name);
        }
        for i in 0..self.workers.len() {
            let l = src.line(0, format!("t{i} = threading.Thread(target=worker{i})"));
            m.line(l)
                .op(Instr::PushNull)
                .load_name("threading")
                .load_attr("Thread")
                .load_name(&format!("worker{i}"))
                .call_kw(1, &["target"])
                .store_name(&format!("t{i}"));
        }
        for method in ["start", "join"] {
            for i in 0..self.workers.len() {
                let l = src.line(0, format!("t{i}.{method}()"));
                m.line(l)
                    .load_name(&format!("t{i}"))
                    .load_method(method)
                    .call(0)
                    .op(Instr::PopTop);
            }
        }
        match self.last {
            Last::All | Last::Interval => {
                let all = self.last == Last::All;
                let l = if all {
                    src.line(
                        0,
                        "print(shared[\"value\"], order, sys.getswitchinterval())",
                    )
                } else {
                    src.line(0, "print(sys.getswitchinterval())")
                };
                m.line(l).op(Instr::PushNull).load_name("print");
                if all {
                    m.load_name("shared")
                        .load_str("value")
                        .op(Instr::BinarySubscr)
                        .load_name("order");
                }
                m.load_name("sys")
                    .load_method("getswitchinterval")
                    .call(0)
                    .call(if all { 3 } else { 1 })
                    .op(Instr::PopTop);
            }
            Last::Flag(k) => {
                let l = src.line(0, format!("print(shared[\"value\"] == {k})"));
                m.line(l)
                    .op(Instr::PushNull)
                    .load_name("print")
                    .load_name("shared")
                    .load_str("value")
                    .op(Instr::BinarySubscr)
                    .load_int(k)
                    .op(Instr::CompareOp(gilcheck::vm::code::CmpOp::Eq))
                    .call(1)
                    .op(Instr::PopTop);
                let l = src.line(0, "shared[\"value\"] = 0");
                m.line(l)
                    .load_int(0)
                    .load_name("shared")
                    .load_str("value")
                    .op(Instr::StoreSubscr);
            }
        }
        m.load_none().op(Instr::ReturnValue);
        let mut all = vec![m.finish()];
        all.extend(codes);
        let p = Program {
            name: "test-program".into(),
            source: src.lines.join("\n") + "\n",
            codes: all,
        };
        p.validate().unwrap_or_else(|e| panic!("{e}\n{}", p.source));
        p
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (250i64..=400).prop_map(Op::Add),
        1 => prop::sample::select(vec!["A", "B", "C"]).prop_map(Op::Print),
        1 => Just(Op::TryAcquire),
        1 => Just(Op::Release),
        1 => prop::sample::select(vec![0.001, 0.002]).prop_map(Op::SetInterval),
        1 => (0i64..3).prop_map(Op::Record),
        1 => Just(Op::Sleep),
        1 => (1i64..=2, prop::collection::vec((250i64..=400).prop_map(Op::Add), 1..=2)).prop_map(|(n, b)| Op::Loop(n, b)),
    ]
}

/// Generated programs for the proptests of what the explorer skips (EX-13, EX-16 … EX-18): two
/// workers of one to three statements (large-integer read–modify–writes, prints,
/// `acquire(False)`/`release()` of a lock the main thread may hold, `sys.setswitchinterval`,
/// appends that record who finished when, sleeps, short loops).
pub fn strategy() -> impl Strategy<Value = Prog> {
    (
        prop::sample::select(vec![0i64, 1000]),
        any::<bool>(),
        prop::collection::vec(prop::collection::vec(op_strategy(), 1..=3), 2..=2),
    )
        .prop_map(|(start, main_acquires, workers)| Prog {
            start,
            main_acquires,
            workers,
            last: Last::All,
        })
}
