//! `--threads N` and `--iterations N` on a Python file: a smaller instance of the same program,
//! made by replacing integer literals, without editing the file (rule CO-5 of
//! `spec/compile.md`). The literals replaced are found from what the program does with them:
//!
//! - threads: the literal `K` of `range(K)` that a comprehension or `for` loop creating
//!   `Thread(…)`/`Process(…)` objects iterates over;
//! - iterations: the integer literals a thread is started with (`args=(K, …)` of a
//!   `Thread`/`Process` call, or the arguments of a call of a class deriving from
//!   `threading.Thread`) and those its target function is called with directly
//!   (`target(K)`), so that the sequential and the threaded parts of a program shrink alike.
//!
//! Every replacement is reported with its place, and the verdict prints them.

use super::{CompileError, ErrorKind, Lines};
use ruff_python_ast::visitor::{Visitor, walk_expr, walk_stmt};
use ruff_python_ast::{Expr, ModModule, Number, Stmt};
use ruff_text_size::Ranged;
use std::collections::{BTreeMap, BTreeSet};

/// What to shrink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shrink {
    pub threads: Option<u64>,
    pub iterations: Option<u64>,
}

/// One literal replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub line: u32,
    pub column: u32,
    pub from: String,
    pub to: u64,
    /// "threads" or "iterations".
    pub what: &'static str,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}:{}: {} → {} ({})",
            self.line, self.column, self.from, self.to, self.what
        )
    }
}

pub(crate) struct Plan {
    /// Start offset of an integer literal → its new value.
    pub replace: BTreeMap<usize, u64>,
    pub changes: Vec<Change>,
}

fn is_thread_class(e: &Expr, subclasses: &BTreeSet<String>) -> bool {
    match e {
        Expr::Attribute(a) => matches!(a.attr.as_str(), "Thread" | "Process"),
        Expr::Name(n) => {
            matches!(n.id.as_str(), "Thread" | "Process") || subclasses.contains(n.id.as_str())
        }
        _ => false,
    }
}

fn is_thread_call(e: &Expr, subclasses: &BTreeSet<String>) -> bool {
    let Expr::Call(c) = e else { return false };
    is_thread_class(&c.func, subclasses)
}

/// The module's classes that derive from `threading.Thread` (or `Process`), directly or
/// through another of them.
fn thread_subclasses(module: &ModModule) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in &module.body {
        if let Stmt::ClassDef(c) = s
            && let Some(a) = &c.arguments
            && a.args.iter().any(|b| is_thread_class(b, &out))
        {
            out.insert(c.name.to_string());
        }
    }
    out
}

fn int_literal(e: &Expr) -> Option<usize> {
    match e {
        Expr::NumberLiteral(n) if matches!(n.value, Number::Int(_)) => Some(n.start().to_usize()),
        _ => None,
    }
}

/// `range(K)` with an integer literal `K`: the literal's offset.
fn range_literal(e: &Expr) -> Option<usize> {
    let Expr::Call(c) = e else { return None };
    let Expr::Name(n) = &*c.func else { return None };
    if n.id.as_str() != "range" || c.arguments.args.len() != 1 || !c.arguments.keywords.is_empty() {
        return None;
    }
    int_literal(&c.arguments.args[0])
}

/// Whether a thread is created anywhere inside.
struct HasThread<'s>(bool, &'s BTreeSet<String>);
impl<'a> Visitor<'a> for HasThread<'_> {
    fn visit_expr(&mut self, e: &'a Expr) {
        if is_thread_call(e, self.1) {
            self.0 = true;
        }
        walk_expr(self, e);
    }
}

fn creates_thread_expr(e: &Expr, subclasses: &BTreeSet<String>) -> bool {
    let mut v = HasThread(false, subclasses);
    v.visit_expr(e);
    v.0
}

fn creates_thread_stmts(body: &[Stmt], subclasses: &BTreeSet<String>) -> bool {
    let mut v = HasThread(false, subclasses);
    for s in body {
        v.visit_stmt(s);
    }
    v.0
}

#[derive(Default)]
struct Finder {
    subclasses: BTreeSet<String>,
    threads: BTreeSet<usize>,
    iterations: BTreeSet<usize>,
    targets: BTreeSet<String>,
    calls: Vec<(String, Vec<usize>)>,
}

impl<'a> Visitor<'a> for Finder {
    fn visit_stmt(&mut self, s: &'a Stmt) {
        if let Stmt::For(f) = s
            && let Some(k) = range_literal(&f.iter)
            && creates_thread_stmts(&f.body, &self.subclasses)
        {
            self.threads.insert(k);
        }
        walk_stmt(self, s);
    }

    fn visit_expr(&mut self, e: &'a Expr) {
        // `Worker(10_000)` of a Thread subclass: its arguments feed the thread.
        if let Expr::Call(c) = e
            && let Expr::Name(n) = &*c.func
            && self.subclasses.contains(n.id.as_str())
        {
            self.iterations
                .extend(c.arguments.args.iter().filter_map(int_literal));
            self.iterations.extend(
                c.arguments
                    .keywords
                    .iter()
                    .filter_map(|k| int_literal(&k.value)),
            );
        }
        if is_thread_call(e, &self.subclasses)
            && let Expr::Call(c) = e
        {
            for kw in &c.arguments.keywords {
                match kw.arg.as_ref().map(|a| a.as_str()) {
                    Some("target") => {
                        if let Expr::Name(n) = &kw.value {
                            self.targets.insert(n.id.to_string());
                        }
                    }
                    Some("args") => {
                        if let Expr::Tuple(t) = &kw.value {
                            self.iterations
                                .extend(t.elts.iter().filter_map(int_literal));
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Expr::ListComp(lc) = e
            && let Some(g) = lc.generators.first()
            && let Some(k) = range_literal(&g.iter)
            && creates_thread_expr(&lc.elt, &self.subclasses)
        {
            self.threads.insert(k);
        }
        if let Expr::Call(c) = e
            && let Expr::Name(n) = &*c.func
        {
            let ints: Vec<usize> = c.arguments.args.iter().filter_map(int_literal).collect();
            if !ints.is_empty() {
                self.calls.push((n.id.to_string(), ints));
            }
        }
        walk_expr(self, e);
    }
}

pub(crate) fn plan(
    module: &ModModule,
    shrink: &Shrink,
    source: &str,
    lines: &Lines,
    file: &str,
) -> Result<Plan, CompileError> {
    let mut plan = Plan {
        replace: BTreeMap::new(),
        changes: Vec::new(),
    };
    if shrink.threads.is_none() && shrink.iterations.is_none() {
        return Ok(plan);
    }
    let mut f = Finder {
        subclasses: thread_subclasses(module),
        ..Finder::default()
    };
    for s in &module.body {
        f.visit_stmt(s);
    }
    for (name, ints) in &f.calls {
        if f.targets.contains(name) {
            f.iterations.extend(ints.iter().copied());
        }
    }
    let refuse = |option: &str, why: &str| CompileError {
        kind: ErrorKind::Option,
        message: format!("{option} does not apply to {file}: {why}"),
        file: file.to_string(),
        line: 1,
        column: 1,
    };
    let mut add = |offsets: &BTreeSet<usize>, to: u64, what: &'static str| {
        for &at in offsets {
            let text: String = source[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let (line, column) = lines.locate(source, at);
            plan.replace.insert(at, to);
            plan.changes.push(Change {
                line,
                column,
                from: text,
                to,
                what,
            });
        }
    };
    if let Some(n) = shrink.threads {
        if f.threads.is_empty() {
            return Err(refuse(
                "--threads",
                "it creates no threads in a comprehension or loop over range(<integer>)",
            ));
        }
        add(&f.threads, n, "threads");
    }
    if let Some(n) = shrink.iterations {
        if f.iterations.is_empty() {
            return Err(refuse(
                "--iterations",
                "no thread is started with an integer literal (args=(<integer>, …)) and no thread target is called with one",
            ));
        }
        add(&f.iterations, n, "iterations");
    }
    plan.changes.sort_by_key(|c| (c.line, c.column));
    Ok(plan)
}
