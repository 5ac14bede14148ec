//! Small programs for the tests, assembled as CPython 3.11 compiles them.
#![allow(dead_code)]

pub mod naive;
pub mod programs;

use gilcheck::explore::Header;
use gilcheck::explore::engine::{CheckOptions, Engine, Verdict, check};
use gilcheck::scenarios::{self, Params};
use gilcheck::vm::Policy;
use gilcheck::vm::code::{BinOp, CmpOp, CodeBuilder, Const, Conversion, Instr, Program};
use std::path::PathBuf;
use std::process::Command;

/// Code that emits a worker function's body.
pub type Body = Box<dyn Fn(&mut CodeBuilder)>;

/// A program whose module imports threading, makes `shared = {"value": 0}` and the locks
/// `locks`, defines one worker per entry of `workers` (built by the closure), runs each on its
/// own thread (started in order, then joined in order), and prints `shared["value"]`.
pub fn threads_program(locks: &[&str], workers: Vec<Body>) -> Program {
    threads_program_then(locks, workers, |m| {
        m.line(7)
            .op(Instr::PushNull)
            .load_name("print")
            .load_name("shared")
            .load_str("value")
            .op(Instr::BinarySubscr)
            .call(1)
            .op(Instr::PopTop);
    })
}

/// [`threads_program`] whose module ends with `last` instead of the print.
pub fn threads_program_then(
    locks: &[&str],
    workers: Vec<Body>,
    last: impl FnOnce(&mut CodeBuilder),
) -> Program {
    let mut m = CodeBuilder::module();
    m.line(1)
        .op(Instr::Resume(0))
        .import_name("threading")
        .store_name("threading");
    m.line(2)
        .load_str("value")
        .load_int(0)
        .op(Instr::BuildMap(1))
        .store_name("shared");
    for l in locks {
        m.line(3)
            .op(Instr::PushNull)
            .load_name("threading")
            .load_attr("Lock")
            .call(0)
            .store_name(l);
    }
    let mut codes = vec![];
    for (i, body) in workers.iter().enumerate() {
        let name = format!("worker{i}");
        let mut f = CodeBuilder::function(&name, &[], 10 + i as u32);
        f.line(10 + i as u32).op(Instr::Resume(0));
        body(&mut f);
        f.load_none().op(Instr::ReturnValue);
        codes.push(f.finish());
        m.line(4).make_function(i + 1).store_name(&name);
    }
    for i in 0..workers.len() {
        m.line(5)
            .op(Instr::PushNull)
            .load_name("threading")
            .load_attr("Thread")
            .load_name(&format!("worker{i}"))
            .call_kw(1, &["target"])
            .store_name(&format!("t{i}"));
    }
    for method in ["start", "join"] {
        for i in 0..workers.len() {
            m.line(6)
                .load_name(&format!("t{i}"))
                .load_method(method)
                .call(0)
                .op(Instr::PopTop);
        }
    }
    last(&mut m);
    m.load_none().op(Instr::ReturnValue);
    let mut all = vec![m.finish()];
    all.extend(codes);
    let p = Program {
        name: "test-program".into(),
        source: String::new(),
        codes: all,
    };
    p.validate().unwrap();
    p
}

/// A module of `body` alone (after `RESUME`, before `return None`), validated.
pub fn module(body: impl FnOnce(&mut CodeBuilder)) -> Program {
    let mut m = CodeBuilder::module();
    m.op(Instr::Resume(0));
    body(&mut m);
    m.load_none().op(Instr::ReturnValue);
    let p = Program {
        name: "m".into(),
        source: String::new(),
        codes: vec![m.finish()],
    };
    p.validate().unwrap();
    p
}

/// `with <lock>:` around `body`, as 3.11 compiles it (normal exit only).
pub fn with_lock(f: &mut CodeBuilder, lock: &str, body: impl FnOnce(&mut CodeBuilder)) {
    f.load_global(lock).op(Instr::BeforeWith).op(Instr::PopTop);
    body(f);
    f.load_none()
        .load_none()
        .load_none()
        .call(2)
        .op(Instr::PopTop);
}

/// `shared["value"] += 1` in a function.
pub fn increment(f: &mut CodeBuilder) {
    f.load_global("shared")
        .load_str("value")
        .op(Instr::Copy(2))
        .op(Instr::Copy(2))
        .op(Instr::BinarySubscr)
        .load_int(1)
        .inplace(gilcheck::vm::BinOp::Add)
        .op(Instr::Swap(3))
        .op(Instr::Swap(2))
        .op(Instr::StoreSubscr);
}

/// `v = shared["value"]` in a function.
pub fn read_into(f: &mut CodeBuilder, local: &str) {
    f.load_global("shared")
        .load_str("value")
        .op(Instr::BinarySubscr)
        .store_fast(local);
}

/// `shared["value"] = v + 1` in a function.
pub fn write_plus_one(f: &mut CodeBuilder, local: &str) {
    f.load_fast(local)
        .load_int(1)
        .binary(gilcheck::vm::BinOp::Add)
        .load_global("shared")
        .load_str("value")
        .op(Instr::StoreSubscr);
}

/// A header for a program that is not a scenario.
pub fn header(name: &str, policy: Policy) -> Header {
    Header {
        scenario: name.into(),
        policy: policy.name().into(),
        threads: 2,
        iterations: 1,
    }
}

/// DFS with the state cache, unbounded (or up to `preemptions`).
pub fn dfs(preemptions: Option<usize>) -> CheckOptions {
    CheckOptions {
        engine: Engine::Dfs,
        preemptions,
        max_executions: 5_000_000,
        seed: 0,
        max_steps: 1_000_000,
        progress: false,
        state_cache: true,
        ..CheckOptions::default()
    }
}

/// Checks `program` and returns the verdict.
pub fn verdict(program: &Program, policy: Policy, opts: &CheckOptions) -> Verdict {
    check(program, &header(&program.name, policy), policy, opts).unwrap()
}

/// A constant tuple of ints.
pub fn ints(v: &[i64]) -> Const {
    Const::Tuple(v.iter().map(|&i| Const::Int(i)).collect())
}

/// A built-in scenario's program at a size (threads, not processes).
/// The Python file at `path` (absolute, or relative to the repository) compiled by the front
/// end with `shrink`; panics with the compiler's message if it does not compile.
pub fn compile_file(path: &std::path::Path, shrink: gilcheck::compile::Shrink) -> Program {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let source = std::fs::read_to_string(&path).expect("readable");
    let name = path.file_stem().expect("a name").to_string_lossy();
    gilcheck::compile::compile(&source, &path.display().to_string(), &name, &shrink)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

pub fn scenario(name: &str, threads: u32, iterations: u64) -> Program {
    scenarios::build(
        name,
        Params {
            threads,
            iterations,
            processes: false,
        },
    )
    .unwrap()
}

/// The interpreter for CPython `3.minor` under pyenv (the newest patch release), or why there
/// is none.
pub fn cpython(minor: u32) -> Result<PathBuf, String> {
    let root = Command::new("pyenv")
        .arg("root")
        .output()
        .map_err(|e| format!("no pyenv ({e})"))?;
    if !root.status.success() {
        return Err("`pyenv root` failed".into());
    }
    let versions = PathBuf::from(String::from_utf8_lossy(&root.stdout).trim()).join("versions");
    let prefix = format!("3.{minor}.");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&versions)
        .map_err(|e| format!("{}: {e}", versions.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .map(|p| p.join("bin/python3"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop().ok_or_else(|| {
        format!(
            "CPython 3.{minor} is not installed under {}",
            versions.display()
        )
    })
}

/// Every unsigned integer in `line`, in order.
pub fn numbers(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// One instruction of each kind gilcheck has. The `match` below lists every variant with no
/// wildcard, so a new variant does not compile until it is added to the list too.
pub fn one_of_each_instr() -> Vec<Instr> {
    use Instr::*;
    let all = vec![
        Nop,
        Resume(0),
        LoadConst(0),
        LoadFast(0),
        StoreFast(0),
        LoadGlobal {
            name: 0,
            null: true,
        },
        StoreGlobal(0),
        LoadName(0),
        StoreName(0),
        PushNull,
        PopTop,
        Copy(1),
        Swap(2),
        BinarySubscr,
        StoreSubscr,
        BinaryOp {
            op: BinOp::Add,
            inplace: false,
        },
        CompareOp(CmpOp::Lt),
        IsOp(false),
        ContainsOp(false),
        UnaryNot,
        UnaryNegative,
        UnaryPositive,
        UnaryInvert,
        GetIter,
        ForIter(0),
        JumpForward(0),
        JumpBackward(0),
        PopJumpForwardIfFalse(0),
        PopJumpForwardIfTrue(0),
        PopJumpBackwardIfFalse(0),
        PopJumpBackwardIfTrue(0),
        PopJumpForwardIfNone(1),
        JumpIfTrueOrPop(1),
        JumpIfFalseOrPop(1),
        PopJumpForwardIfNotNone(1),
        PopJumpBackwardIfNone(0),
        PopJumpBackwardIfNotNone(0),
        KwNames(0),
        Call(0),
        LoadMethod(0),
        LoadAttr(0),
        StoreAttr(0),
        BuildTuple(0),
        BuildList(0),
        BuildSlice(2),
        ListToTuple,
        DictMerge(1),
        CallFunctionEx(0),
        MakeCell(0),
        CopyFreeVars(0),
        LoadDeref(0),
        StoreDeref(0),
        LoadClosure(0),
        BuildMap(0),
        UnpackSequence(2),
        BuildConstKeyMap(0),
        ListAppend(1),
        ListExtend(1),
        FormatValue {
            conversion: Conversion::None,
            spec: false,
        },
        BuildString(0),
        MakeFunction(0),
        ImportName(0),
        ImportFrom(0),
        BeforeWith,
        LoadAssertionError,
        LoadBuildClass,
        RaiseVarargs(1),
        ReturnValue,
        ReturnGenerator,
        YieldValue,
        PushExcInfo,
        PopExcept,
        CheckExcMatch,
        Reraise(0),
        WithExceptStart,
        DeleteFast(0),
        DeleteName(0),
        DeleteGlobal(0),
        DeleteDeref(0),
        BuildSet(0),
        SetAdd(1),
        SetUpdate(1),
        MapAdd(1),
        DeleteSubscr,
        DeleteAttr(0),
    ];
    for i in &all {
        match i {
            Nop
            | BuildSlice(_)
            | ListToTuple
            | DictMerge(_)
            | CallFunctionEx(_)
            | MakeCell(_)
            | CopyFreeVars(_)
            | LoadDeref(_)
            | StoreDeref(_)
            | LoadClosure(_)
            | Resume(_)
            | LoadConst(_)
            | LoadFast(_)
            | StoreFast(_)
            | LoadGlobal { .. }
            | StoreGlobal(_)
            | LoadName(_)
            | StoreName(_)
            | PushNull
            | PopTop
            | Copy(_)
            | Swap(_)
            | BinarySubscr
            | StoreSubscr
            | BinaryOp { .. }
            | CompareOp(_)
            | IsOp(_)
            | ContainsOp(_)
            | UnaryNot
            | UnaryNegative
            | UnaryPositive
            | UnaryInvert
            | GetIter
            | ForIter(_)
            | JumpForward(_)
            | JumpBackward(_)
            | PopJumpForwardIfFalse(_)
            | PopJumpForwardIfTrue(_)
            | PopJumpBackwardIfFalse(_)
            | PopJumpBackwardIfTrue(_)
            | PopJumpForwardIfNone(_)
            | JumpIfTrueOrPop(_)
            | JumpIfFalseOrPop(_)
            | PopJumpForwardIfNotNone(_)
            | PopJumpBackwardIfNone(_)
            | PopJumpBackwardIfNotNone(_)
            | KwNames(_)
            | Call(_)
            | LoadMethod(_)
            | LoadAttr(_)
            | StoreAttr(_)
            | BuildTuple(_)
            | BuildList(_)
            | BuildMap(_)
            | UnpackSequence(_)
            | BuildConstKeyMap(_)
            | ListAppend(_)
            | ListExtend(_)
            | FormatValue { .. }
            | BuildString(_)
            | MakeFunction(_)
            | ImportName(_)
            | ImportFrom(_)
            | BeforeWith
            | LoadAssertionError
            | LoadBuildClass
            | RaiseVarargs(_)
            | ReturnValue
            | ReturnGenerator
            | YieldValue
            | PushExcInfo
            | PopExcept
            | CheckExcMatch
            | Reraise(_)
            | WithExceptStart
            | DeleteFast(_)
            | DeleteName(_)
            | DeleteGlobal(_)
            | DeleteDeref(_)
            | BuildSet(_)
            | SetAdd(_)
            | SetUpdate(_)
            | MapAdd(_)
            | DeleteSubscr
            | DeleteAttr(_) => {}
        }
    }
    all
}
