//! The Python front end: source text → the VM's code objects, as CPython 3.11 compiles them
//! (rules CO-1 … CO-5 of `spec/compile.md`).
//!
//! Parsing is Astral's `ruff_python_parser` (the parser of ruff): it accepts every syntax
//! CPython 3.8–3.13 accepts and keeps exact source ranges. [`codegen`] walks its AST the way
//! 3.11's `Python/compile.c` does and emits a control-flow graph per code object; [`flow`] runs
//! 3.11's graph passes and assembles it. The result is the same [`Program`] the hand-written
//! tests build with [`crate::vm::CodeBuilder`], so everything above the VM — the explorer, the
//! real-thread driver, `dis` — runs a user's file unchanged.
//!
//! What the VM cannot run yet is refused at compile time with the construct and its place
//! (`unsupported: … at FILE:LINE:COL`), never compiled to something that behaves differently.

mod codegen;
mod flow;
mod shrink;

use crate::vm::code::{CodeBuilder, Instr, Program};
use std::fmt;

pub use shrink::{Change, Shrink};

/// Why a file does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub kind: ErrorKind,
    pub message: String,
    /// The file as the user named it.
    pub file: String,
    /// 1-based line and column.
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The source is not valid Python.
    Syntax,
    /// Valid Python that gilcheck's VM does not run yet.
    Unsupported,
    /// An option that asks for something the file does not have (`--threads` on a file that
    /// starts no threads from a `range()`).
    Option,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = format!("{}:{}:{}", self.file, self.line, self.column);
        match self.kind {
            ErrorKind::Syntax => write!(f, "SyntaxError: {} at {at}", self.message),
            ErrorKind::Unsupported => write!(f, "unsupported: {} at {at}", self.message),
            ErrorKind::Option => write!(f, "{} ({at})", self.message),
        }
    }
}

impl std::error::Error for CompileError {}

/// Source offsets to 1-based lines and columns.
pub(crate) struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    pub(crate) fn new(source: &str) -> Self {
        let mut starts = vec![0];
        for (i, b) in source.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        Lines { starts }
    }

    /// (line, column), both 1-based; the column counts characters, as CPython's do.
    pub(crate) fn locate(&self, source: &str, offset: usize) -> (u32, u32) {
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.starts[line];
        let col = source
            .get(start..offset.min(source.len()))
            .map_or(0, |s| s.chars().count());
        (line as u32 + 1, col as u32 + 1)
    }

    pub(crate) fn line(&self, offset: usize) -> u32 {
        match self.starts.binary_search(&offset) {
            Ok(i) => i as u32 + 1,
            Err(i) => i as u32,
        }
    }
}

/// Compiles `source` (read from `file`, named `name` in reports and schedules), with the
/// integer literals that `shrink` names replaced; returns the program and what was replaced.
/// Appends the code objects of CPython's library that the program can reach (VM-14): today
/// `Counter.__missing__`, which `collections/__init__.py` writes in Python (`return 0`), so that
/// a missing key's read runs a frame of its own, with its `RESUME`, as in CPython.
fn add_library(program: &mut Program) {
    let names = |n: &str| program.codes.iter().any(|c| c.names.iter().any(|x| x == n));
    if names("collections") && names("Counter") {
        let mut b = CodeBuilder::function("Counter.__missing__", &["self", "key"], 0);
        b.op(Instr::Resume(0)).load_int(0).op(Instr::ReturnValue);
        let mut code = b.finish();
        code.library = true;
        program.codes.push(code);
    }
}

pub fn compile(
    source: &str,
    file: &str,
    name: &str,
    shrink: &Shrink,
) -> Result<(Program, Vec<Change>), CompileError> {
    let lines = Lines::new(source);
    let parsed = ruff_python_parser::parse_module(source).map_err(|e| {
        let (line, column) = lines.locate(source, e.location.start().to_usize());
        CompileError {
            kind: ErrorKind::Syntax,
            message: syntax_message(&e.error.to_string()),
            file: file.to_string(),
            line,
            column,
        }
    })?;
    let module = parsed.into_syntax();
    let plan = shrink::plan(&module, shrink, source, &lines, file)?;
    let mut program =
        codegen::compile_module(&module, source, file, name, &plan.replace).map_err(|e| {
            let (line, column) = lines.locate(source, e.offset);
            CompileError {
                kind: e.kind,
                message: e.message,
                file: file.to_string(),
                line,
                column,
            }
        })?;
    add_library(&mut program);
    program.validate().map_err(|e| CompileError {
        kind: ErrorKind::Unsupported,
        message: format!(
            "code gilcheck's VM would not run ({e}; a compiler bug, please report it)"
        ),
        file: file.to_string(),
        line: 1,
        column: 1,
    })?;
    Ok((program, plan.changes))
}

/// ruff's message, in CPython's words where they differ only in wording.
fn syntax_message(ruff: &str) -> String {
    let m = ruff.trim();
    if m.starts_with("Expected an indented block") {
        return "expected an indented block".into();
    }
    if m.starts_with("Unexpected indentation") {
        return "unexpected indent".into();
    }
    if m.contains("unindent does not match") {
        return "unindent does not match any outer indentation level".into();
    }
    if m.starts_with("missing closing quote") || m.contains("unterminated string") {
        return "unterminated string literal".into();
    }
    format!("invalid syntax ({m})")
}
