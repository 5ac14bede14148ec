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
mod scope;
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
    /// Not valid Python because of its indentation (CPython's `IndentationError`, a kind of
    /// `SyntaxError`).
    Indentation,
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
            ErrorKind::Indentation => write!(f, "IndentationError: {} at {at}", self.message),
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
        let offset = e.location.start().to_usize();
        let error = |kind, message, at: usize| {
            let (line, column) = lines.locate(source, at);
            CompileError {
                kind,
                message,
                file: file.to_string(),
                line,
                column,
            }
        };
        // CPython's tokenizer speaks first about brackets: one closed by the wrong kind, or one
        // still open at the end of the file.
        match brackets(source) {
            Some(Bracket::Mismatch {
                open,
                open_at,
                close,
                close_at,
            }) => {
                let (ol, _) = lines.locate(source, open_at);
                let (cl, _) = lines.locate(source, close_at);
                let on = if ol == cl {
                    String::new()
                } else {
                    format!(" on line {ol}")
                };
                return error(
                    ErrorKind::Syntax,
                    format!(
                        "closing parenthesis '{close}' does not match opening parenthesis '{open}'{on}"
                    ),
                    close_at,
                );
            }
            Some(Bracket::Unclosed { open, at }) if at <= offset => {
                return error(ErrorKind::Syntax, format!("'{open}' was never closed"), at);
            }
            _ => {}
        }
        let ruff = e.error.to_string();
        let (line, _) = lines.locate(source, offset);
        if ruff.trim().starts_with("Expected an indented block") {
            return error(
                ErrorKind::Indentation,
                expected_indent(source, line),
                offset,
            );
        }
        error(ErrorKind::Syntax, syntax_message(&ruff, line), offset)
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
fn syntax_message(ruff: &str, line: u32) -> String {
    let m = ruff.trim();
    if m.starts_with("Unexpected indentation") {
        return "unexpected indent".into();
    }
    if m.contains("unindent does not match") {
        return "unindent does not match any outer indentation level".into();
    }
    if m.starts_with("missing closing quote") || m.contains("unterminated string") {
        return format!("unterminated string literal (detected at line {line})");
    }
    if m.starts_with("Expected `:`") {
        return "expected ':'".into();
    }
    format!("invalid syntax ({m})")
}

/// CPython 3.10+'s `expected an indented block after 'for' statement on line 1`: the block
/// header is the last line with code before `line`.
fn expected_indent(source: &str, line: u32) -> String {
    let header = source
        .lines()
        .enumerate()
        .take(line.saturating_sub(1) as usize)
        .filter(|(_, l)| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with('#')
        })
        .last();
    let Some((n, text)) = header else {
        return "expected an indented block".into();
    };
    let word: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let what = match word.as_str() {
        "def" | "async" => "function definition".to_string(),
        "class" => "class definition".to_string(),
        "if" | "elif" | "else" | "for" | "while" | "with" | "try" | "except" | "finally" => {
            format!("'{word}' statement")
        }
        _ => return "expected an indented block".into(),
    };
    format!("expected an indented block after {what} on line {}", n + 1)
}

/// What the tokenizer finds wrong with the brackets of `source`, strings and comments left
/// out: the first closer of the wrong kind, or else the innermost bracket left open.
enum Bracket {
    Mismatch {
        open: char,
        open_at: usize,
        close: char,
        close_at: usize,
    },
    Unclosed {
        open: char,
        at: usize,
    },
}

fn brackets(source: &str) -> Option<Bracket> {
    let mut stack: Vec<(char, usize)> = Vec::new();
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            '#' => {
                while i < chars.len() && chars[i].1 != '\n' {
                    i += 1;
                }
                continue;
            }
            '\'' | '"' => {
                let triple = i + 2 < chars.len() && chars[i + 1].1 == c && chars[i + 2].1 == c;
                i += if triple { 3 } else { 1 };
                while i < chars.len() {
                    let d = chars[i].1;
                    if d == '\\' {
                        i += 2;
                        continue;
                    }
                    if !triple && d == '\n' {
                        break;
                    }
                    if d == c
                        && (!triple
                            || (i + 2 < chars.len() && chars[i + 1].1 == c && chars[i + 2].1 == c))
                    {
                        i += if triple { 3 } else { 1 };
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            '(' | '[' | '{' => stack.push((c, at)),
            ')' | ']' | '}' => {
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                match stack.pop() {
                    Some((open, _)) if open == want => {}
                    Some((open, open_at)) => {
                        return Some(Bracket::Mismatch {
                            open,
                            open_at,
                            close: c,
                            close_at: at,
                        });
                    }
                    None => {}
                }
            }
            _ => {}
        }
        i += 1;
    }
    stack
        .last()
        .map(|&(open, at)| Bracket::Unclosed { open, at })
}
