//! Code generation: ruff's AST → a control-flow graph per code object, following CPython 3.11's
//! `Python/compile.c` construct by construct (rule CO-2 of `spec/compile.md`; each function
//! names the 3.11 function it follows). Name resolution is 3.11's `symtable.c` for the scopes
//! gilcheck compiles: module, function, lambda and comprehension.

use super::ErrorKind;
use super::Lines;
use super::flow::{Flow, FlowError, Op, SetupKind};
use super::scope;
use crate::builtins::Builtin;
use crate::vm::code::{BinOp, CmpOp, Code, Const, Conversion, Instr, Program, intern};
use ruff_python_ast::{
    self as ast, BoolOp, Expr, ExprContext, FStringPart, InterpolatedStringElement, ModModule,
    Number, Operator, Stmt, UnaryOp,
};
use ruff_text_size::Ranged;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) struct GenError {
    pub kind: ErrorKind,
    pub message: String,
    pub offset: usize,
}

type R<T> = Result<T, GenError>;

fn unsupported<T>(what: impl Into<String>, at: &impl Ranged) -> R<T> {
    Err(GenError {
        kind: ErrorKind::Unsupported,
        message: what.into(),
        offset: at.start().to_usize(),
    })
}

fn syntax<T>(what: impl Into<String>, at: &impl Ranged) -> R<T> {
    Err(GenError {
        kind: ErrorKind::Syntax,
        message: what.into(),
        offset: at.start().to_usize(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Module,
    Function,
    Comprehension,
    /// A class body: names live in its namespace (LOAD_NAME/STORE_NAME) and are not seen by
    /// the functions inside it.
    Class,
}

/// A frame block of 3.11's compiler (`fblockinfo`): what `break`, `continue` and `return` must
/// unwind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FBlock {
    For {
        start: usize,
        exit: usize,
    },
    While {
        start: usize,
        exit: usize,
    },
    With {
        line: i32,
    },
    /// The body of a `try` with `except` clauses (3.11's TRY_EXCEPT).
    TryExcept,
    /// The body of a `try` with a `finally` (FINALLY_TRY), with the index of the finally
    /// body in the compiler's `finally_bodies`: `return`, `break` and `continue` leaving it
    /// run a copy of that body first.
    FinallyTry(usize),
    /// The value a `return` keeps on the stack while a finally body copied there runs
    /// (POP_VALUE).
    PopValue,
    /// Around the `except` clauses' tests (EXCEPTION_HANDLER): nothing to unwind.
    ExceptionHandler,
    /// The body of an `except` clause (HANDLER_CLEANUP), with the index of its `as` name in
    /// the compiler's `except_names`.
    HandlerCleanup {
        name: Option<usize>,
    },
    /// The `finally` body on the exception path (FINALLY_END).
    FinallyEnd,
}

/// The default values' expressions: the positional parameters', and the keyword-only ones'
/// with their names.
#[derive(Default)]
struct Params<'p> {
    positional: Vec<&'p Expr>,
    keyword: Vec<(String, &'p Expr)>,
}

/// A function's positional parameter count and star parameters (`*args`, `**kwargs`).
#[derive(Debug, Clone, Copy, Default)]
struct Star {
    argcount: u32,
    kwonly: u32,
    varargs: bool,
    varkeywords: bool,
}

impl Unit {
    /// Sets the code's parameter counts and star flags.
    fn star(&mut self, s: Star) {
        self.code.argcount = s.argcount;
        self.code.kwonlyargcount = s.kwonly;
        self.code.varargs = s.varargs;
        self.code.varkeywords = s.varkeywords;
    }
}

/// One code object being compiled.
struct Unit {
    code: Code,
    index: usize,
    flow: Flow,
    line: i32,
    first_line: i32,
    scope: Scope,
    /// Names that live in the frame's fast locals.
    locals: BTreeSet<String>,
    /// Names declared `global`.
    globals: BTreeSet<String>,
    fblocks: Vec<FBlock>,
    /// A generator's code (RETURN_GENERATOR first; `yield` allowed).
    generator: bool,
    /// Locals that nested scopes take (`co_cellvars`, sorted) and the names this scope takes
    /// from the functions around it (`co_freevars`, sorted); `LOAD_DEREF`/`STORE_DEREF` index
    /// their concatenation until `leave` turns that into 3.11's localsplus index (CO-7).
    cellvars: Vec<String>,
    freevars: Vec<String>,
}

struct Compiler<'a> {
    source: &'a str,
    lines: Lines,
    codes: Vec<Option<Code>>,
    units: Vec<Unit>,
    /// Names bound by an import at module level (3.11's `is_import_originated`).
    imports: BTreeSet<String>,
    replace: &'a BTreeMap<usize, u64>,
    /// The `as` names of `except` clauses, for `FBlock::HandlerCleanup`, and where each is.
    except_names: Vec<String>,
    except_at: Vec<ruff_text_size::TextRange>,
    /// The finally bodies of `FBlock::FinallyTry`.
    finally_bodies: Vec<Vec<Stmt>>,
}

pub(crate) fn compile_module(
    module: &ModModule,
    source: &str,
    _file: &str,
    name: &str,
    replace: &BTreeMap<usize, u64>,
) -> R<Program> {
    let mut c = Compiler {
        source,
        lines: Lines::new(source),
        codes: Vec::new(),
        units: Vec::new(),
        except_names: Vec::new(),
        except_at: Vec::new(),
        finally_bodies: Vec::new(),
        imports: BTreeSet::new(),
        replace,
    };
    collect_imports(&module.body, &mut c.imports);
    // A name declared `global` in any function is GLOBAL_EXPLICIT at module level too (3.11's
    // symtable records the declaration in the module's table): LOAD_GLOBAL/STORE_GLOBAL there.
    let mut declared = BTreeSet::new();
    collect_global_decls(&module.body, &mut declared);
    c.enter("<module>", Scope::Module, 1, &[], BTreeSet::new(), declared);
    // The module's RESUME has no line (CPython's `u_lineno = -1` for modules).
    c.unit().line = -1;
    c.emit(Instr::Resume(0));
    let body: &[Stmt] = &module.body;
    let rest = match body.first() {
        Some(Stmt::Expr(e)) if matches!(&*e.value, Expr::StringLiteral(_)) => {
            c.set_loc(&body[0]);
            c.expr(&e.value)?;
            c.store_name("__doc__", &body[0])?;
            &body[1..]
        }
        _ => body,
    };
    c.stmts(rest)?;
    let code = c.leave(true)?;
    c.codes[0] = Some(code);
    Ok(Program {
        name: name.to_string(),
        source: source.to_string(),
        codes: c
            .codes
            .into_iter()
            .map(|x| x.expect("every code object compiled"))
            .collect(),
    })
}

/// Every name a `global` statement declares, anywhere in the module.
fn collect_global_decls(body: &[Stmt], out: &mut BTreeSet<String>) {
    struct G<'b>(&'b mut BTreeSet<String>);
    impl<'a> ast::visitor::Visitor<'a> for G<'_> {
        fn visit_stmt(&mut self, s: &'a Stmt) {
            if let Stmt::Global(g) = s {
                self.0.extend(g.names.iter().map(|n| n.to_string()));
            }
            ast::visitor::walk_stmt(self, s);
        }
    }
    let mut g = G(out);
    for s in body {
        ast::visitor::Visitor::visit_stmt(&mut g, s);
    }
}

fn collect_imports(body: &[Stmt], out: &mut BTreeSet<String>) {
    for s in body {
        match s {
            Stmt::Import(i) => {
                for a in &i.names {
                    let bound = a.asname.as_ref().unwrap_or(&a.name);
                    let first = bound.as_str().split('.').next().unwrap_or("");
                    out.insert(first.to_string());
                }
            }
            Stmt::ImportFrom(i) => {
                for a in &i.names {
                    out.insert(a.asname.as_ref().unwrap_or(&a.name).to_string());
                }
            }
            Stmt::If(i) => {
                collect_imports(&i.body, out);
                for c in &i.elif_else_clauses {
                    collect_imports(&c.body, out);
                }
            }
            Stmt::For(f) => {
                collect_imports(&f.body, out);
                collect_imports(&f.orelse, out);
            }
            Stmt::While(w) => {
                collect_imports(&w.body, out);
                collect_imports(&w.orelse, out);
            }
            Stmt::With(w) => collect_imports(&w.body, out),
            Stmt::Try(t) => {
                collect_imports(&t.body, out);
                for h in &t.handlers {
                    let ast::ExceptHandler::ExceptHandler(h) = h;
                    collect_imports(&h.body, out);
                }
                collect_imports(&t.orelse, out);
                collect_imports(&t.finalbody, out);
            }
            _ => {}
        }
    }
}

/// The names a function body binds (its locals) and declares `global`, not looking into nested
/// scopes (3.11's symtable: assignment, augmented assignment, `for`, `with … as`, import, `def`,
/// `class`, `del`, `except … as`, `:=`).
pub(super) fn scan_body(
    body: &[Stmt],
    bound: &mut BTreeSet<String>,
    globals: &mut BTreeSet<String>,
) {
    for s in body {
        scan_stmt(s, bound, globals);
    }
}

fn scan_target(e: &Expr, bound: &mut BTreeSet<String>) {
    match e {
        Expr::Name(n) => {
            bound.insert(n.id.to_string());
        }
        Expr::Tuple(t) => t.elts.iter().for_each(|x| scan_target(x, bound)),
        Expr::List(l) => l.elts.iter().for_each(|x| scan_target(x, bound)),
        Expr::Starred(s) => scan_target(&s.value, bound),
        _ => {}
    }
}

fn scan_stmt(s: &Stmt, bound: &mut BTreeSet<String>, globals: &mut BTreeSet<String>) {
    match s {
        Stmt::FunctionDef(f) => {
            bound.insert(f.name.to_string());
        }
        Stmt::ClassDef(c) => {
            bound.insert(c.name.to_string());
        }
        Stmt::Assign(a) => a.targets.iter().for_each(|t| scan_target(t, bound)),
        Stmt::AugAssign(a) => scan_target(&a.target, bound),
        Stmt::AnnAssign(a) => scan_target(&a.target, bound),
        Stmt::Delete(d) => d.targets.iter().for_each(|t| scan_target(t, bound)),
        Stmt::For(f) => {
            scan_target(&f.target, bound);
            scan_body(&f.body, bound, globals);
            scan_body(&f.orelse, bound, globals);
        }
        Stmt::While(w) => {
            scan_body(&w.body, bound, globals);
            scan_body(&w.orelse, bound, globals);
        }
        Stmt::If(i) => {
            scan_body(&i.body, bound, globals);
            for c in &i.elif_else_clauses {
                scan_body(&c.body, bound, globals);
            }
        }
        Stmt::With(w) => {
            for item in &w.items {
                if let Some(v) = &item.optional_vars {
                    scan_target(v, bound);
                }
            }
            scan_body(&w.body, bound, globals);
        }
        Stmt::Try(t) => {
            scan_body(&t.body, bound, globals);
            for h in &t.handlers {
                let ast::ExceptHandler::ExceptHandler(h) = h;
                if let Some(n) = &h.name {
                    bound.insert(n.to_string());
                }
                scan_body(&h.body, bound, globals);
            }
            scan_body(&t.orelse, bound, globals);
            scan_body(&t.finalbody, bound, globals);
        }
        Stmt::Import(i) => {
            for a in &i.names {
                let n = a.asname.as_ref().unwrap_or(&a.name);
                bound.insert(n.as_str().split('.').next().unwrap_or("").to_string());
            }
        }
        Stmt::ImportFrom(i) => {
            for a in &i.names {
                bound.insert(a.asname.as_ref().unwrap_or(&a.name).to_string());
            }
        }
        Stmt::Global(g) => {
            for n in &g.names {
                globals.insert(n.to_string());
            }
        }
        _ => {}
    }
    // `:=` binds in the enclosing function scope wherever it appears in an expression.
    struct Walrus<'b>(&'b mut BTreeSet<String>);
    impl<'a> ast::visitor::Visitor<'a> for Walrus<'_> {
        fn visit_expr(&mut self, e: &'a Expr) {
            match e {
                Expr::Named(n) => {
                    scan_target(&n.target, self.0);
                    ast::visitor::walk_expr(self, e);
                }
                Expr::Lambda(_) => {}
                _ => ast::visitor::walk_expr(self, e),
            }
        }
        fn visit_stmt(&mut self, s: &'a Stmt) {
            match s {
                Stmt::FunctionDef(_) | Stmt::ClassDef(_) => {}
                _ => ast::visitor::walk_stmt(self, s),
            }
        }
    }
    if !matches!(s, Stmt::FunctionDef(_) | Stmt::ClassDef(_)) {
        let mut w = Walrus(bound);
        ast::visitor::Visitor::visit_stmt(&mut w, s);
    }
}

/// The same constant, as CPython's constant cache tells them apart (types and float bits).
fn same_const(a: &Const, b: &Const) -> bool {
    match (a, b) {
        (Const::Float(x), Const::Float(y)) => x.to_bits() == y.to_bits(),
        (Const::Tuple(x), Const::Tuple(y)) | (Const::FrozenSet(x), Const::FrozenSet(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_const(a, b))
        }
        _ => a == b,
    }
}

fn binop_of(op: Operator) -> Option<BinOp> {
    Some(match op {
        Operator::Add => BinOp::Add,
        Operator::Sub => BinOp::Sub,
        Operator::Mult => BinOp::Mul,
        Operator::Div => BinOp::TrueDiv,
        Operator::FloorDiv => BinOp::FloorDiv,
        Operator::Mod => BinOp::Mod,
        Operator::Pow => BinOp::Pow,
        Operator::BitAnd => BinOp::And,
        Operator::BitOr => BinOp::Or,
        Operator::BitXor => BinOp::Xor,
        _ => return None,
    })
}

fn operator_text(op: Operator) -> &'static str {
    match op {
        Operator::MatMult => "@",
        Operator::LShift => "<<",
        Operator::RShift => ">>",
        Operator::BitOr => "|",
        Operator::BitXor => "^",
        Operator::BitAnd => "&",
        _ => "?",
    }
}

impl<'a> Compiler<'a> {
    fn unit(&mut self) -> &mut Unit {
        self.units.last_mut().expect("a unit is being compiled")
    }

    fn line_of(&self, at: &impl Ranged) -> i32 {
        self.lines.line(at.start().to_usize()) as i32
    }

    fn end_line_of(&self, at: &impl Ranged) -> i32 {
        self.lines.line(at.end().to_usize().saturating_sub(1)) as i32
    }

    fn set_loc(&mut self, at: &impl Ranged) {
        let l = self.line_of(at);
        self.unit().line = l;
    }

    fn enter(
        &mut self,
        name: &str,
        scope: Scope,
        first_line: i32,
        params: &[String],
        locals: BTreeSet<String>,
        globals: BTreeSet<String>,
    ) {
        let index = self.codes.len();
        self.codes.push(None);
        self.units.push(Unit {
            code: Code {
                name: name.to_string(),
                argcount: params.len() as u32,
                varnames: params.to_vec(),
                names: Vec::new(),
                consts: Vec::new(),
                instrs: Vec::new(),
                lines: Vec::new(),
                is_module: scope == Scope::Module,
                library: false,
                varargs: false,
                varkeywords: false,
                kwonlyargcount: 0,
                exceptions: Vec::new(),
                cold: Vec::new(),
                cellvars: Vec::new(),
                freevars: Vec::new(),
            },
            index,
            flow: Flow::new(),
            line: first_line,
            first_line,
            scope,
            locals,
            globals,
            fblocks: Vec::new(),
            generator: false,
            cellvars: Vec::new(),
            freevars: Vec::new(),
        });
    }

    /// Ends the unit: the implicit `return None` (3.11's `assemble(c, addNone)`), the graph
    /// passes, and the finished code object.
    /// CO-7: the unit just entered: its cells (locals its nested scopes `need`) and its free
    /// variables (what it uses without binding, `free`, that a function around it has), then
    /// 3.11's prefix: `COPY_FREE_VARS n` and a `MAKE_CELL` per cell, in localsplus order, with
    /// no line (`insert_prefix_instructions`).
    fn closure_vars(&mut self, need: &BTreeSet<String>, free: &BTreeSet<String>) {
        let n = self.units.len();
        let mut visible = BTreeSet::new();
        // The functions directly around it: a class body or the module ends the chain.
        for u in self.units[..n - 1].iter().rev() {
            if !matches!(u.scope, Scope::Function | Scope::Comprehension) {
                // A class body's `__class__` cell reaches its methods (CO-8).
                if u.scope == Scope::Class && u.cellvars.iter().any(|c| c == "__class__") {
                    visible.insert("__class__".to_string());
                }
                break;
            }
            visible.extend(u.locals.iter().cloned());
            visible.extend(u.freevars.iter().cloned());
        }
        let u = self.unit();
        u.cellvars = u
            .locals
            .iter()
            .filter(|x| need.contains(*x) && !u.globals.contains(*x))
            .cloned()
            .collect();
        u.freevars = free
            .iter()
            .filter(|x| visible.contains(*x) && !u.locals.contains(*x) && !u.globals.contains(*x))
            .cloned()
            .collect();
        if u.cellvars.is_empty() && u.freevars.is_empty() {
            return;
        }
        let old = std::mem::replace(&mut u.line, -1);
        let nfree = u.freevars.len() as u32;
        if nfree > 0 {
            self.emit(Instr::CopyFreeVars(nfree));
        }
        // Argument cells first, by argument position, then the others in name order.
        let u = self.unit();
        let mut order: Vec<(usize, u32)> = u
            .cellvars
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let at = u
                    .code
                    .varnames
                    .iter()
                    .position(|v| v == c)
                    .unwrap_or(usize::MAX);
                (at, k as u32)
            })
            .collect();
        order.sort();
        for (_, k) in order {
            self.emit(Instr::MakeCell(k));
        }
        self.unit().line = old;
    }

    /// 3.11's `compiler_make_closure`: for a code object with free variables, a
    /// `LOAD_CLOSURE` of each from this unit and `BUILD_TUPLE`; MAKE_FUNCTION's flag 8.
    fn make_closure(&mut self, index: usize, flags: u32) -> R<u32> {
        let frees = self.codes[index]
            .as_ref()
            .map(|c| c.freevars.clone())
            .unwrap_or_default();
        if frees.is_empty() {
            return Ok(flags);
        }
        for name in &frees {
            let u = self.unit();
            let k = u
                .cellvars
                .iter()
                .chain(&u.freevars)
                .position(|x| x == name)
                .ok_or_else(|| GenError {
                    kind: ErrorKind::Unsupported,
                    message: format!("closure over '{name}' (a gilcheck compiler bug)"),
                    offset: 0,
                })?;
            self.emit(Instr::LoadClosure(k as u32));
        }
        self.emit(Instr::BuildTuple(frees.len() as u32));
        Ok(flags | 8)
    }

    fn leave(&mut self, add_none: bool) -> R<Code> {
        self.unit().line = -1;
        if add_none {
            self.load_const(Const::None);
        }
        self.emit(Instr::ReturnValue);
        let mut u = self.units.pop().expect("a unit");
        let flow = std::mem::take(&mut u.flow);
        let first = u.first_line;
        let assembled = flow.assemble(&mut u.code, first);
        // Cells and frees: from their index among the unit's cells then frees to 3.11's
        // localsplus index (an argument cell keeps its argument's slot; the other cells, then
        // the frees, follow the varnames).
        let nvar = u.code.varnames.len() as u32;
        let mut slots = Vec::new();
        let mut extra = 0;
        for c in &u.cellvars {
            match u.code.varnames.iter().position(|v| v == c) {
                Some(i) => slots.push(i as u32),
                None => {
                    slots.push(nvar + extra);
                    extra += 1;
                }
            }
        }
        for j in 0..u.freevars.len() as u32 {
            slots.push(nvar + extra + j);
        }
        for ins in &mut u.code.instrs {
            *ins = match *ins {
                Instr::MakeCell(k) => Instr::MakeCell(slots[k as usize]),
                Instr::LoadDeref(k) => Instr::LoadDeref(slots[k as usize]),
                Instr::StoreDeref(k) => Instr::StoreDeref(slots[k as usize]),
                Instr::DeleteDeref(k) => Instr::DeleteDeref(slots[k as usize]),
                Instr::LoadClosure(k) => Instr::LoadClosure(slots[k as usize]),
                other => other,
            };
        }
        u.code.cellvars = u.cellvars.clone();
        u.code.freevars = u.freevars.clone();
        assembled.map_err(|FlowError { what, line }| {
            let offset = self
                .source
                .lines()
                .take((line.max(1) - 1) as usize)
                .map(|l| l.len() + 1)
                .sum();
            GenError {
                kind: ErrorKind::Unsupported,
                message: what,
                offset,
            }
        })?;
        Ok(u.code)
    }

    /// 3.11's `insert_prefix_instructions` for a generator: `RETURN_GENERATOR; POP_TOP`
    /// before the `RESUME`, on the code's first line.
    fn generator_prefix(&mut self) {
        let first = self.unit().first_line;
        let old = std::mem::replace(&mut self.unit().line, first);
        self.emit(Instr::ReturnGenerator);
        self.emit(Instr::PopTop);
        self.unit().line = old;
    }

    fn emit(&mut self, i: Instr) {
        let u = self.unit();
        let line = u.line;
        u.flow.emit(Op::Real(i), None, line);
    }

    fn emit_op(&mut self, op: Op, target: Option<usize>) {
        let u = self.unit();
        let line = u.line;
        u.flow.emit(op, target, line);
    }

    /// An instruction with no line of its own (`UNSET_LOC` / `ADDOP_NOLINE`).
    fn emit_noline(&mut self, op: Op, target: Option<usize>) {
        self.unit().flow.emit(op, target, -1);
    }

    fn new_block(&mut self) -> usize {
        self.unit().flow.new_block()
    }

    fn use_block(&mut self, b: usize) {
        self.unit().flow.use_block(b);
    }

    fn konst(&mut self, c: Const) -> u32 {
        let consts = &mut self.unit().code.consts;
        match consts.iter().position(|k| same_const(k, &c)) {
            Some(i) => i as u32,
            None => {
                consts.push(c);
                consts.len() as u32 - 1
            }
        }
    }

    fn load_const(&mut self, c: Const) {
        let k = self.konst(c);
        self.emit(Instr::LoadConst(k));
    }

    fn name_index(&mut self, n: &str) -> u32 {
        intern(&mut self.unit().code.names, n)
    }

    fn var_index(&mut self, n: &str) -> u32 {
        intern(&mut self.unit().code.varnames, n)
    }

    // ----- names (3.11's compiler_nameop) -----

    /// How `name` is reached from the current unit.
    fn resolve(&self, name: &str) -> Resolved {
        let u = self.units.last().expect("a unit");
        match u.scope {
            Scope::Module | Scope::Class if u.globals.contains(name) => Resolved::Global,
            // A class body inside a function reading one of the function's locals would be
            // 3.11's LOAD_CLASSDEREF: refused (CO-7).
            Scope::Class
                if self.units[..self.units.len() - 1].iter().any(|e| {
                    matches!(e.scope, Scope::Function | Scope::Comprehension)
                        && e.locals.contains(name)
                }) =>
            {
                Resolved::Free
            }
            Scope::Module | Scope::Class => Resolved::Name,
            _ if u.globals.contains(name) => Resolved::Global,
            _ if let Some(k) = u.cellvars.iter().chain(&u.freevars).position(|x| x == name) => {
                Resolved::Deref(k as u32)
            }
            _ if u.locals.contains(name) => Resolved::Fast,
            _ => {
                // A local of an enclosing function would be a closure cell.
                let enclosing = &self.units[..self.units.len() - 1];
                if enclosing.iter().any(|e| {
                    matches!(e.scope, Scope::Function | Scope::Comprehension)
                        && e.locals.contains(name)
                }) {
                    Resolved::Free
                } else {
                    Resolved::Global
                }
            }
        }
    }

    fn load_name(&mut self, name: &str, at: &impl Ranged) -> R<()> {
        match self.resolve(name) {
            Resolved::Name => {
                let k = self.name_index(name);
                self.emit(Instr::LoadName(k));
            }
            Resolved::Global => {
                let k = self.name_index(name);
                self.emit(Instr::LoadGlobal {
                    name: k,
                    null: false,
                });
            }
            Resolved::Fast => {
                let k = self.var_index(name);
                self.emit(Instr::LoadFast(k));
            }
            Resolved::Deref(k) => self.emit(Instr::LoadDeref(k)),
            Resolved::Free => {
                return unsupported(
                    format!(
                        "closure over '{name}' (a nested function or comprehension reading a local of the function around it)"
                    ),
                    at,
                );
            }
        }
        Ok(())
    }

    fn store_name(&mut self, name: &str, at: &impl Ranged) -> R<()> {
        match self.resolve(name) {
            Resolved::Name => {
                let k = self.name_index(name);
                self.emit(Instr::StoreName(k));
            }
            Resolved::Global => {
                let k = self.name_index(name);
                self.emit(Instr::StoreGlobal(k));
            }
            Resolved::Fast => {
                let k = self.var_index(name);
                self.emit(Instr::StoreFast(k));
            }
            Resolved::Deref(k) => self.emit(Instr::StoreDeref(k)),
            Resolved::Free => {
                return unsupported(format!("assignment to the closure variable '{name}'"), at);
            }
        }
        Ok(())
    }

    /// `del name` (3.11's `compiler_nameop` with `Del`).
    fn delete_name(&mut self, name: &str, at: &impl Ranged) -> R<()> {
        match self.resolve(name) {
            Resolved::Name => {
                let k = self.name_index(name);
                self.emit(Instr::DeleteName(k));
            }
            Resolved::Global => {
                let k = self.name_index(name);
                self.emit(Instr::DeleteGlobal(k));
            }
            Resolved::Fast => {
                let k = self.var_index(name);
                self.emit(Instr::DeleteFast(k));
            }
            Resolved::Deref(k) => self.emit(Instr::DeleteDeref(k)),
            Resolved::Free => {
                return unsupported(format!("deletion of the closure variable '{name}'"), at);
            }
        }
        Ok(())
    }

    /// `name = None; del name` at the end of an `except … as name:` clause (artificial: no
    /// line of its own).
    fn clear_except_name(&mut self, name: usize) {
        let n = self.except_names[name].clone();
        let at = self.except_at[name];
        self.load_const(Const::None);
        // The name was stored by the same clause, so it resolves without a refusal.
        let _ = self.store_name(&n, &at);
        let _ = self.delete_name(&n, &at);
    }

    // ----- statements -----

    fn stmts(&mut self, body: &[Stmt]) -> R<()> {
        for s in body {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> R<()> {
        self.set_loc(s);
        match s {
            Stmt::Expr(e) => {
                if is_constant(&e.value) {
                    self.emit(Instr::Nop);
                    return Ok(());
                }
                self.expr(&e.value)?;
                self.emit_noline(Op::Real(Instr::PopTop), None);
            }
            Stmt::Pass(_) => self.emit(Instr::Nop),
            Stmt::Assign(a) => {
                self.expr(&a.value)?;
                let n = a.targets.len();
                for (i, t) in a.targets.iter().enumerate() {
                    if i + 1 < n {
                        self.emit(Instr::Copy(1));
                    }
                    self.store(t)?;
                }
            }
            Stmt::AugAssign(a) => self.augassign(a)?,
            Stmt::AnnAssign(a) => return unsupported("annotated assignment", a),
            Stmt::FunctionDef(f) => self.function_def(f)?,
            Stmt::Return(r) => self.return_stmt(r)?,
            Stmt::If(i) => self.if_stmt(&i.test, &i.body, &i.elif_else_clauses)?,
            Stmt::While(w) => self.while_stmt(w)?,
            Stmt::For(f) => self.for_stmt(f)?,
            Stmt::Break(b) => self.break_stmt(b)?,
            Stmt::Continue(c) => self.continue_stmt(c)?,
            Stmt::With(w) => {
                if w.is_async {
                    return unsupported("async with", w);
                }
                self.with_stmt(w, 0)?
            }
            Stmt::Import(i) => {
                for a in &i.names {
                    if a.name.as_str().contains('.') {
                        return unsupported(format!("import of a submodule ({})", a.name), a);
                    }
                    if Builtin::module(a.name.as_str()).is_none() {
                        return unsupported(format!("the module '{}'", a.name), a);
                    }
                    self.load_const(Const::Int(0));
                    self.load_const(Const::None);
                    let k = self.name_index(a.name.as_str());
                    self.emit(Instr::ImportName(k));
                    let bound = a.asname.as_ref().unwrap_or(&a.name).to_string();
                    self.store_name(&bound, a)?;
                }
            }
            // Declarations: resolved before the code is generated (`scan_body`).
            Stmt::Global(_) => {}
            Stmt::Assert(a) => {
                let end = self.new_block();
                self.jump_if(&a.test, end, true)?;
                self.emit(Instr::LoadAssertionError);
                if let Some(m) = &a.msg {
                    self.expr(m)?;
                    self.emit(Instr::Call(0));
                }
                self.emit(Instr::RaiseVarargs(1));
                self.use_block(end);
            }
            Stmt::ImportFrom(i) => self.import_from(i)?,
            Stmt::ClassDef(c) => self.class_def(c)?,
            Stmt::Delete(d) => {
                for t in &d.targets {
                    self.delete(t)?;
                }
            }
            Stmt::Try(t) => self.try_stmt(t)?,
            // 3.11's `compiler_visit_stmt` for Raise: the exception (and the cause of `raise …
            // from …`), RAISE_VARARGS 1 (2); a bare `raise`, RAISE_VARARGS 0.
            Stmt::Raise(r) => match (&r.exc, &r.cause) {
                (Some(e), cause) => {
                    self.expr(e)?;
                    if let Some(c) = cause {
                        self.expr(c)?;
                    }
                    self.emit(Instr::RaiseVarargs(1 + u32::from(cause.is_some())));
                }
                (None, _) => self.emit(Instr::RaiseVarargs(0)),
            },
            // A declaration, resolved when the function is entered (`closure_vars`).
            Stmt::Nonlocal(n) => {
                if self.unit().scope != Scope::Function {
                    return syntax("nonlocal declaration not allowed at module level", n);
                }
            }
            Stmt::Match(m) => return unsupported("match statements", m),
            Stmt::TypeAlias(t) => return unsupported("type aliases", t),
            Stmt::IpyEscapeCommand(i) => return syntax("invalid syntax", i),
        }
        Ok(())
    }

    /// 3.11's `compiler_augassign`.
    fn augassign(&mut self, a: &ast::StmtAugAssign) -> R<()> {
        let Some(op) = binop_of(a.op) else {
            return unsupported(format!("the operator {}=", operator_text(a.op)), a);
        };
        let old = self.unit().line;
        let target = &*a.target;
        self.set_loc(target);
        match target {
            Expr::Attribute(at) => {
                self.expr(&at.value)?;
                self.emit(Instr::Copy(1));
                let k = self.name_index(at.attr.as_str());
                self.emit(Instr::LoadAttr(k));
            }
            Expr::Subscript(sub) => {
                self.expr(&sub.value)?;
                self.expr(&sub.slice)?;
                self.emit(Instr::Copy(2));
                self.emit(Instr::Copy(2));
                self.emit(Instr::BinarySubscr);
            }
            Expr::Name(n) => self.load_name(n.id.as_str(), n)?,
            other => {
                return syntax(
                    "'expression' is an illegal expression for augmented assignment",
                    other,
                );
            }
        }
        self.unit().line = old;
        self.expr(&a.value)?;
        self.emit(Instr::BinaryOp { op, inplace: true });
        self.set_loc(target);
        match target {
            Expr::Attribute(at) => {
                self.emit(Instr::Swap(2));
                let k = self.name_index(at.attr.as_str());
                self.emit(Instr::StoreAttr(k));
            }
            Expr::Subscript(_) => {
                self.emit(Instr::Swap(3));
                self.emit(Instr::Swap(2));
                self.emit(Instr::StoreSubscr);
            }
            Expr::Name(n) => self.store_name(n.id.as_str(), n)?,
            _ => unreachable!("refused above"),
        }
        Ok(())
    }

    /// `del target` (3.11's visit of a target in `Del` context).
    fn delete(&mut self, t: &Expr) -> R<()> {
        let old = self.unit().line;
        self.set_loc(t);
        match t {
            Expr::Name(n) => self.delete_name(n.id.as_str(), n)?,
            Expr::Attribute(a) => {
                self.expr(&a.value)?;
                let k = self.name_index(a.attr.as_str());
                self.emit(Instr::DeleteAttr(k));
            }
            Expr::Subscript(s) => {
                self.expr(&s.value)?;
                self.expr(&s.slice)?;
                self.emit(Instr::DeleteSubscr);
            }
            Expr::Tuple(ast::ExprTuple { elts, .. }) | Expr::List(ast::ExprList { elts, .. }) => {
                for e in elts {
                    self.delete(e)?;
                }
            }
            other => return syntax("cannot delete expression", other),
        }
        self.unit().line = old;
        Ok(())
    }

    /// A store to an assignment target.
    fn store(&mut self, t: &Expr) -> R<()> {
        let old = self.unit().line;
        self.set_loc(t);
        match t {
            Expr::Name(n) => self.store_name(n.id.as_str(), n)?,
            Expr::Attribute(a) => {
                self.expr(&a.value)?;
                let k = self.name_index(a.attr.as_str());
                self.emit(Instr::StoreAttr(k));
            }
            Expr::Subscript(s) => {
                self.expr(&s.value)?;
                self.expr(&s.slice)?;
                self.emit(Instr::StoreSubscr);
            }
            Expr::Tuple(ast::ExprTuple { elts, .. }) | Expr::List(ast::ExprList { elts, .. }) => {
                // 3.11's `unpack_helper`: UNPACK_SEQUENCE, then each target in order.
                if let Some(s) = elts.iter().find(|e| matches!(e, Expr::Starred(_))) {
                    return unsupported("starred assignment (UNPACK_EX)", s);
                }
                self.emit(Instr::UnpackSequence(elts.len() as u32));
                for e in elts {
                    self.store(e)?;
                }
            }
            Expr::Starred(_) => return unsupported("starred assignment", t),
            other => return syntax("cannot assign to expression", other),
        }
        self.unit().line = old;
        Ok(())
    }

    /// 3.11's `compiler_function` for a plain `def`.
    fn function_def(&mut self, f: &ast::StmtFunctionDef) -> R<()> {
        if f.is_async {
            return unsupported("async def", f);
        }
        if let Some(t) = &f.type_params {
            return unsupported("type parameters", &**t);
        }
        if let Some(r) = &f.returns {
            return unsupported("annotations", &**r);
        }
        // The statement's line is the `def` line (ruff's range starts at the decorators).
        let def_line = self.line_of(&f.name);
        self.unit().line = def_line;
        let (params, defaults, star) = self.params(&f.parameters)?;
        self.decorators(&f.decorator_list)?;
        let flags = self.default_arguments(&defaults)?;
        let mut locals: BTreeSet<String> = params.iter().cloned().collect();
        let mut globals = BTreeSet::new();
        scan_body(&f.body, &mut locals, &mut globals);
        for g in &globals {
            locals.remove(g);
        }
        // `nonlocal x`: x is the function's around it, never a local here (CO-7).
        let declared = scope::nonlocals(&f.body);
        for n in &declared {
            locals.remove(n);
        }
        let need = scope::needed_by_nested(&f.body);
        let free = scope::function_free(&f.parameters, &f.body);
        let is_generator = uses_yield(&f.body);
        // 3.11: a decorated function's first line is its first decorator's.
        let line = match f.decorator_list.first() {
            Some(d) => self.line_of(d),
            None => self.line_of(f),
        };
        self.enter(
            f.name.as_str(),
            Scope::Function,
            line,
            &params,
            locals,
            globals,
        );
        self.unit().star(star);
        self.closure_vars(&need, &free);
        for n in &declared {
            if !self.unit().freevars.contains(n) {
                return syntax(format!("no binding for nonlocal '{n}' found"), f);
            }
        }
        self.unit().generator = is_generator;
        let body: &[Stmt] = &f.body;
        let doc = match body.first() {
            Some(Stmt::Expr(e)) => match &*e.value {
                Expr::StringLiteral(s) => Some(s.value.to_str().to_string()),
                _ => None,
            },
            _ => None,
        };
        // co_consts[0] is the docstring or None (3.11).
        let first = doc.clone().map_or(Const::None, Const::Str);
        self.konst(first);
        if is_generator {
            self.generator_prefix();
        }
        self.emit(Instr::Resume(0));
        let rest = if doc.is_some() { &body[1..] } else { body };
        self.stmts(rest)?;
        let index = self.units.last().expect("unit").index;
        let code = self.leave(true)?;
        self.codes[index] = Some(code);
        self.unit().line = def_line;
        let flags = self.make_closure(index, flags)?;
        self.load_const(Const::Code(index));
        self.emit(Instr::MakeFunction(flags));
        self.apply_decorators(&f.decorator_list);
        self.store_name(f.name.as_str(), f)
    }

    /// 3.11's `compiler_from_import`: `IMPORT_NAME` with the tuple of names, an `IMPORT_FROM`
    /// and a store per name, then the module popped.
    fn import_from(&mut self, i: &ast::StmtImportFrom) -> R<()> {
        if i.level > 0 {
            return unsupported("relative imports", i);
        }
        let module = i.module.as_ref().map_or("", |m| m.as_str());
        let Some(m) = Builtin::module(module) else {
            return unsupported(format!("the module '{module}'"), i);
        };
        for a in &i.names {
            if a.name.as_str() == "*" {
                return unsupported("from … import *", a);
            }
            if m.module_attr(a.name.as_str()).is_none() {
                return unsupported(format!("'{}' from the module '{module}'", a.name), a);
            }
        }
        self.load_const(Const::Int(0));
        let names = i
            .names
            .iter()
            .map(|a| Const::Str(a.name.to_string()))
            .collect();
        self.load_const(Const::Tuple(names));
        let k = self.name_index(module);
        self.emit(Instr::ImportName(k));
        for a in &i.names {
            let k = self.name_index(a.name.as_str());
            self.emit(Instr::ImportFrom(k));
            let bound = a.asname.as_ref().unwrap_or(&a.name).to_string();
            self.store_name(&bound, a)?;
        }
        self.emit(Instr::PopTop);
        Ok(())
    }

    /// 3.11's `compiler_decorators`: each decorator's value, first to last.
    fn decorators(&mut self, decorators: &[ast::Decorator]) -> R<()> {
        for d in decorators {
            self.expr(&d.expression)?;
        }
        Ok(())
    }

    /// 3.11's `compiler_apply_decorators`: `PRECALL 0; CALL 0` per decorator, last to first,
    /// each on its decorator's line (the decorator sits in the call's method slot, the
    /// function in its `self` slot).
    fn apply_decorators(&mut self, decorators: &[ast::Decorator]) {
        let old = self.unit().line;
        for d in decorators.iter().rev() {
            self.set_loc(&d.expression);
            self.emit(Instr::Call(0));
        }
        self.unit().line = old;
    }

    /// 3.11's `compiler_class`: the body compiled as a code object of its own, then
    /// `__build_class__(<function>, name, *bases)` and the decorators.
    fn class_def(&mut self, c: &ast::StmtClassDef) -> R<()> {
        if let Some(t) = &c.type_params {
            return unsupported("type parameters", &**t);
        }
        if let Some(a) = &c.arguments {
            if let Some(k) = a.keywords.first() {
                return unsupported("class keyword arguments (metaclass=, …)", k);
            }
            if let Some(b) = a.args.get(1) {
                return unsupported("multiple inheritance", b);
            }
            if let Some(Expr::Starred(s)) = a.args.first() {
                return unsupported("starred bases", s);
            }
        }
        // CO-8: `super` or `__class__` in a function of the body makes `__class__` a cell of
        // the class body; used by the body's own statements it would be a LOAD_CLASSDEREF.
        if let Some(at) = class_body_uses_class_cell(&c.body) {
            return unsupported("super() or __class__ outside a method", &at);
        }
        let class_cell = methods_use_class_cell(&c.body);
        let class_line = self.line_of(&c.name);
        self.unit().line = class_line;
        self.decorators(&c.decorator_list)?;
        let line = match c.decorator_list.first() {
            Some(d) => self.line_of(d),
            None => self.line_of(c),
        };
        let mut bound = BTreeSet::new();
        let mut globals = BTreeSet::new();
        scan_body(&c.body, &mut bound, &mut globals);
        self.enter(
            c.name.as_str(),
            Scope::Class,
            line,
            &[],
            BTreeSet::new(),
            globals,
        );
        if class_cell {
            self.unit().cellvars = vec!["__class__".to_string()];
            let old = std::mem::replace(&mut self.unit().line, -1);
            self.emit(Instr::MakeCell(0));
            self.unit().line = old;
        }
        self.emit(Instr::Resume(0));
        self.load_name("__name__", c)?;
        self.store_name("__module__", c)?;
        self.load_const(Const::Str(c.name.to_string()));
        self.store_name("__qualname__", c)?;
        let body: &[Stmt] = &c.body;
        let rest = match body.first() {
            Some(Stmt::Expr(e)) if matches!(&*e.value, Expr::StringLiteral(_)) => {
                self.set_loc(&body[0]);
                self.expr(&e.value)?;
                self.store_name("__doc__", &body[0])?;
                &body[1..]
            }
            _ => body,
        };
        self.stmts(rest)?;
        let index = self.units.last().expect("unit").index;
        // 3.11 returns the cell (stored as `__classcell__`, which `type.__new__` fills with
        // the new class) or None.
        let code = if class_cell {
            self.unit().line = -1;
            self.emit(Instr::LoadClosure(0));
            self.emit(Instr::Copy(1));
            self.store_name("__classcell__", c)?;
            self.leave(false)?
        } else {
            self.leave(true)?
        };
        self.codes[index] = Some(code);
        self.unit().line = class_line;
        self.emit(Instr::PushNull);
        self.emit(Instr::LoadBuildClass);
        self.load_const(Const::Code(index));
        self.emit(Instr::MakeFunction(0));
        self.load_const(Const::Str(c.name.to_string()));
        let bases = c.arguments.as_ref().map_or(&[][..], |a| &a.args[..]);
        for b in bases {
            self.expr(b)?;
        }
        self.emit(Instr::Call(2 + bases.len() as u32));
        self.apply_decorators(&c.decorator_list);
        self.store_name(c.name.as_str(), c)
    }

    /// The parameter names in 3.11's `co_varnames` order (the positional ones, then `*args`,
    /// then `**kwargs`), the default values' expressions, and the code's star flags.
    fn params<'p>(&self, p: &'p ast::Parameters) -> R<(Vec<String>, Params<'p>, Star)> {
        if let Some(x) = p.posonlyargs.first() {
            return unsupported("positional-only parameters", x);
        }
        let mut out = Vec::new();
        let mut defaults = Params::default();
        for a in &p.args {
            if let Some(d) = &a.default {
                defaults.positional.push(&**d);
            }
            if let Some(an) = &a.parameter.annotation {
                return unsupported("annotations", &**an);
            }
            out.push(a.parameter.name.to_string());
        }
        let argcount = out.len() as u32;
        for a in &p.kwonlyargs {
            if let Some(d) = &a.default {
                defaults.keyword.push((a.parameter.name.to_string(), &**d));
            }
            if let Some(an) = &a.parameter.annotation {
                return unsupported("annotations", &**an);
            }
            out.push(a.parameter.name.to_string());
        }
        let star = Star {
            argcount,
            kwonly: p.kwonlyargs.len() as u32,
            varargs: p.vararg.is_some(),
            varkeywords: p.kwarg.is_some(),
        };
        for extra in [&p.vararg, &p.kwarg].into_iter().flatten() {
            if let Some(an) = &extra.annotation {
                return unsupported("annotations", &**an);
            }
            out.push(extra.name.to_string());
        }
        Ok((out, defaults, star))
    }

    /// 3.11's `compiler_default_arguments`: the positional defaults as a tuple (flag 1), then
    /// the keyword-only ones as a dict (`compiler_visit_kwonlydefaults`, flag 2).
    fn default_arguments(&mut self, defaults: &Params<'_>) -> R<u32> {
        let mut flags = 0;
        if !defaults.positional.is_empty() {
            for d in &defaults.positional {
                self.expr(d)?;
            }
            self.emit(Instr::BuildTuple(defaults.positional.len() as u32));
            flags |= 1;
        }
        if !defaults.keyword.is_empty() {
            // The values, then the tuple of names: `BUILD_CONST_KEY_MAP`.
            for (_, d) in &defaults.keyword {
                self.expr(d)?;
            }
            let names = defaults.keyword.iter().map(|(n, _)| Const::Str(n.clone()));
            self.load_const(Const::Tuple(names.collect()));
            self.emit(Instr::BuildConstKeyMap(defaults.keyword.len() as u32));
            flags |= 2;
        }
        Ok(flags)
    }

    /// 3.11's `compiler_return`.
    fn return_stmt(&mut self, r: &ast::StmtReturn) -> R<()> {
        if self
            .units
            .last()
            .is_some_and(|u| u.scope != Scope::Function)
        {
            return syntax("'return' outside function", r);
        }
        let value = r.value.as_deref();
        let preserve = value.is_some_and(|v| !is_constant(v));
        if preserve {
            self.expr(value.expect("checked"))?;
        } else if let Some(v) = value {
            self.set_loc(v);
            self.emit(Instr::Nop);
        }
        if value.is_none_or(|v| self.line_of(v) != self.line_of(r)) {
            self.set_loc(r);
            self.emit(Instr::Nop);
        }
        self.unwind_stack(preserve, false)?;
        match value {
            None => self.load_const(Const::None),
            Some(v) if !preserve => {
                let c = self.constant_of(v).expect("a constant");
                self.load_const(c);
            }
            Some(_) => {}
        }
        self.emit(Instr::ReturnValue);
        Ok(())
    }

    /// 3.11's `compiler_unwind_fblock_stack`: unwinds the frame blocks innermost first (to
    /// the innermost loop, with `to_loop`, which it returns), each with the blocks inside it
    /// taken off the stack while its code is emitted (a finally body copied there sees only
    /// the blocks around it).
    fn unwind_stack(&mut self, preserve: bool, to_loop: bool) -> R<Option<FBlock>> {
        let Some(&top) = self.unit().fblocks.last() else {
            return Ok(None);
        };
        if to_loop && matches!(top, FBlock::For { .. } | FBlock::While { .. }) {
            return Ok(Some(top));
        }
        self.unit().fblocks.pop();
        let r = self
            .unwind(top, preserve)
            .and_then(|()| self.unwind_stack(preserve, to_loop));
        self.unit().fblocks.push(top);
        r
    }

    /// 3.11's `compiler_unwind_fblock`.
    fn unwind(&mut self, b: FBlock, preserve: bool) -> R<()> {
        match b {
            FBlock::For { .. } => {
                if preserve {
                    self.emit(Instr::Swap(2));
                }
                self.emit(Instr::PopTop);
            }
            FBlock::While { .. } => {}
            FBlock::TryExcept => self.emit_op(Op::PopBlock, None),
            FBlock::FinallyTry(k) => {
                // The POP_BLOCK has the unwinding statement's line; the finally body runs
                // with the returned value kept under it; what follows has no line.
                self.emit_op(Op::PopBlock, None);
                if preserve {
                    self.unit().fblocks.push(FBlock::PopValue);
                }
                let body = self.finally_bodies[k].clone();
                let r = self.stmts(&body);
                if preserve {
                    self.unit().fblocks.pop();
                }
                r?;
                self.unit().line = -1;
            }
            FBlock::PopValue => {
                if preserve {
                    self.emit(Instr::Swap(2));
                }
                self.emit(Instr::PopTop);
            }
            FBlock::ExceptionHandler => {}
            FBlock::HandlerCleanup { name } => {
                if name.is_some() {
                    self.emit_op(Op::PopBlock, None);
                }
                if preserve {
                    self.emit(Instr::Swap(2));
                }
                self.emit_op(Op::PopBlock, None);
                self.emit(Instr::PopExcept);
                if let Some(n) = name {
                    self.clear_except_name(n);
                }
            }
            FBlock::FinallyEnd => {
                if preserve {
                    self.emit(Instr::Swap(2));
                }
                self.emit(Instr::PopTop);
                if preserve {
                    self.emit(Instr::Swap(2));
                }
                self.emit_op(Op::PopBlock, None);
                self.emit(Instr::PopExcept);
            }
            FBlock::With { line } => {
                // The `with` statement's line, then `UNSET_LOC` (what follows has none).
                self.unit().line = line;
                self.emit_op(Op::PopBlock, None);
                if preserve {
                    self.emit(Instr::Swap(2));
                }
                self.call_exit_with_nones();
                self.emit(Instr::PopTop);
                self.unit().line = -1;
            }
        }
        Ok(())
    }

    fn call_exit_with_nones(&mut self) {
        self.load_const(Const::None);
        self.load_const(Const::None);
        self.load_const(Const::None);
        self.emit(Instr::Call(2));
    }

    /// `break` / `continue` (3.11's `compiler_break`, `compiler_continue`).
    fn loop_exit(&mut self, at: &impl Ranged, is_break: bool) -> R<()> {
        self.emit(Instr::Nop);
        let Some(the_loop) = self.unwind_stack(false, true)? else {
            return syntax(
                if is_break {
                    "'break' outside loop"
                } else {
                    "'continue' not properly in loop"
                },
                at,
            );
        };
        let (start, exit) = match the_loop {
            FBlock::For { start, exit } | FBlock::While { start, exit } => (start, exit),
            _ => unreachable!("a loop"),
        };
        if is_break {
            self.unwind(the_loop, false)?;
            self.emit_op(Op::Jump, Some(exit));
        } else {
            self.emit_op(Op::Jump, Some(start));
        }
        Ok(())
    }

    /// 3.11's `compiler_try`: `compiler_try_finally` with a `finally`, else
    /// `compiler_try_except`. The handlers are entered through the exception table that
    /// `Op::Setup` and `Op::PopBlock` delimit (CO-6).
    fn try_stmt(&mut self, t: &ast::StmtTry) -> R<()> {
        if t.is_star {
            return unsupported("except*", t);
        }
        if t.finalbody.is_empty() {
            self.try_except(t)
        } else {
            self.try_finally(t)
        }
    }

    /// `COPY 3; POP_EXCEPT; RERAISE 1`.
    fn pop_except_and_reraise(&mut self) {
        self.emit(Instr::Copy(3));
        self.emit(Instr::PopExcept);
        self.emit(Instr::Reraise(1));
    }

    fn try_finally(&mut self, t: &ast::StmtTry) -> R<()> {
        let body = self.new_block();
        let end = self.new_block();
        let exit = self.new_block();
        let cleanup = self.new_block();
        self.emit_op(Op::Setup(SetupKind::Finally), Some(end));
        self.use_block(body);
        let k = self.finally_bodies.len();
        self.finally_bodies.push(t.finalbody.to_vec());
        self.unit().fblocks.push(FBlock::FinallyTry(k));
        if t.handlers.is_empty() {
            self.stmts(&t.body)?;
        } else {
            self.try_except(t)?;
        }
        self.emit_noline(Op::PopBlock, None);
        self.unit().fblocks.pop();
        self.stmts(&t.finalbody)?;
        self.emit_noline(Op::Jump, Some(exit));
        // The `finally` block of the exception path.
        self.use_block(end);
        self.unit().line = -1;
        self.emit_op(Op::Setup(SetupKind::Cleanup), Some(cleanup));
        self.emit(Instr::PushExcInfo);
        self.unit().fblocks.push(FBlock::FinallyEnd);
        self.stmts(&t.finalbody)?;
        self.unit().fblocks.pop();
        self.emit(Instr::Reraise(0));
        self.use_block(cleanup);
        self.pop_except_and_reraise();
        self.use_block(exit);
        Ok(())
    }

    fn try_except(&mut self, t: &ast::StmtTry) -> R<()> {
        let body = self.new_block();
        let mut except = self.new_block();
        let end = self.new_block();
        let cleanup = self.new_block();
        self.emit_op(Op::Setup(SetupKind::Finally), Some(except));
        self.use_block(body);
        self.unit().fblocks.push(FBlock::TryExcept);
        self.stmts(&t.body)?;
        self.unit().fblocks.pop();
        self.emit_noline(Op::PopBlock, None);
        self.stmts(&t.orelse)?;
        self.emit_noline(Op::Jump, Some(end));
        self.use_block(except);
        self.unit().line = -1;
        self.emit_op(Op::Setup(SetupKind::Cleanup), Some(cleanup));
        self.emit(Instr::PushExcInfo);
        self.unit().fblocks.push(FBlock::ExceptionHandler);
        let n = t.handlers.len();
        for (i, h) in t.handlers.iter().enumerate() {
            let ast::ExceptHandler::ExceptHandler(h) = h;
            self.set_loc(h);
            if h.type_.is_none() && i + 1 < n {
                return syntax("default 'except:' must be last", h);
            }
            except = self.new_block();
            if let Some(ty) = &h.type_ {
                self.expr(ty)?;
                self.emit(Instr::CheckExcMatch);
                self.emit_op(Op::PopJumpIf(false), Some(except));
            }
            match &h.name {
                Some(name) => {
                    let cleanup_end = self.new_block();
                    let cleanup_body = self.new_block();
                    self.store_name(name.as_str(), h)?;
                    self.emit_op(Op::Setup(SetupKind::Cleanup), Some(cleanup_end));
                    self.use_block(cleanup_body);
                    self.except_names.push(name.to_string());
                    self.except_at.push(h.range);
                    let k = self.except_names.len() - 1;
                    self.unit()
                        .fblocks
                        .push(FBlock::HandlerCleanup { name: Some(k) });
                    self.stmts(&h.body)?;
                    self.unit().fblocks.pop();
                    self.unit().line = -1;
                    self.emit_op(Op::PopBlock, None);
                    self.emit_op(Op::PopBlock, None);
                    self.emit(Instr::PopExcept);
                    self.clear_except_name(k);
                    self.emit_op(Op::Jump, Some(end));
                    self.use_block(cleanup_end);
                    self.unit().line = -1;
                    self.clear_except_name(k);
                    self.emit(Instr::Reraise(1));
                }
                None => {
                    let cleanup_body = self.new_block();
                    self.emit(Instr::PopTop);
                    self.use_block(cleanup_body);
                    self.unit()
                        .fblocks
                        .push(FBlock::HandlerCleanup { name: None });
                    self.stmts(&h.body)?;
                    self.unit().fblocks.pop();
                    self.unit().line = -1;
                    self.emit_op(Op::PopBlock, None);
                    self.emit(Instr::PopExcept);
                    self.emit_op(Op::Jump, Some(end));
                }
            }
            self.use_block(except);
        }
        self.unit().fblocks.pop();
        self.unit().line = -1;
        self.emit(Instr::Reraise(0));
        self.use_block(cleanup);
        self.pop_except_and_reraise();
        self.use_block(end);
        Ok(())
    }

    fn break_stmt(&mut self, b: &ast::StmtBreak) -> R<()> {
        self.loop_exit(b, true)
    }

    fn continue_stmt(&mut self, c: &ast::StmtContinue) -> R<()> {
        self.loop_exit(c, false)
    }

    /// 3.11's `compiler_if`; `elif` clauses are nested ifs, as in CPython's AST.
    fn if_stmt(&mut self, test: &Expr, body: &[Stmt], clauses: &[ast::ElifElseClause]) -> R<()> {
        let end = self.new_block();
        let next = if clauses.is_empty() {
            end
        } else {
            self.new_block()
        };
        self.jump_if(test, next, false)?;
        self.stmts(body)?;
        if let Some((first, rest)) = clauses.split_first() {
            self.emit_noline(Op::Jump, Some(end));
            self.use_block(next);
            match &first.test {
                Some(t) => {
                    self.set_loc(first);
                    self.if_stmt(t, &first.body, rest)?;
                }
                None => self.stmts(&first.body)?,
            }
        }
        self.use_block(end);
        Ok(())
    }

    /// 3.11's `compiler_while` (the test is compiled twice: at the top and at the bottom).
    fn while_stmt(&mut self, w: &ast::StmtWhile) -> R<()> {
        let lp = self.new_block();
        let body = self.new_block();
        let anchor = self.new_block();
        let end = self.new_block();
        self.use_block(lp);
        self.unit().fblocks.push(FBlock::While {
            start: lp,
            exit: end,
        });
        self.jump_if(&w.test, anchor, false)?;
        self.use_block(body);
        self.stmts(&w.body)?;
        self.set_loc(w);
        self.jump_if(&w.test, body, true)?;
        self.unit().fblocks.pop();
        self.use_block(anchor);
        self.stmts(&w.orelse)?;
        self.use_block(end);
        Ok(())
    }

    /// 3.11's `compiler_for`.
    fn for_stmt(&mut self, f: &ast::StmtFor) -> R<()> {
        if f.is_async {
            return unsupported("async for", f);
        }
        let start = self.new_block();
        let body = self.new_block();
        let cleanup = self.new_block();
        let end = self.new_block();
        self.unit().fblocks.push(FBlock::For { start, exit: end });
        self.iterable(&f.iter)?;
        self.emit(Instr::GetIter);
        self.use_block(start);
        self.emit_op(Op::ForIter, Some(cleanup));
        self.use_block(body);
        self.store(&f.target)?;
        self.stmts(&f.body)?;
        self.emit_noline(Op::Jump, Some(start));
        self.use_block(cleanup);
        self.unit().fblocks.pop();
        self.stmts(&f.orelse)?;
        self.use_block(end);
        Ok(())
    }

    /// 3.11's `compiler_with`: the ordinary path runs; the exception path is built too (its
    /// blocks shape the passes) and left out of the assembled code.
    fn with_stmt(&mut self, w: &ast::StmtWith, pos: usize) -> R<()> {
        let item = &w.items[pos];
        let block = self.new_block();
        let final_ = self.new_block();
        let exit = self.new_block();
        let cleanup = self.new_block();
        self.expr(&item.context_expr)?;
        self.emit(Instr::BeforeWith);
        self.emit_op(Op::Setup(SetupKind::With), Some(final_));
        self.use_block(block);
        let line = self.line_of(w);
        self.unit().fblocks.push(FBlock::With { line });
        match &item.optional_vars {
            Some(v) => self.store(v)?,
            None => self.emit(Instr::PopTop),
        }
        if pos + 1 == w.items.len() {
            self.stmts(&w.body)?;
        } else {
            self.with_stmt(w, pos + 1)?;
        }
        self.emit_noline(Op::PopBlock, None);
        self.unit().fblocks.pop();
        self.unit().line = line;
        self.call_exit_with_nones();
        self.emit(Instr::PopTop);
        self.emit_op(Op::Jump, Some(exit));
        // The exception path (3.11's `compiler_with_except_finish`).
        self.use_block(final_);
        self.emit_op(Op::Setup(SetupKind::Cleanup), Some(cleanup));
        self.emit(Instr::PushExcInfo);
        self.emit(Instr::WithExceptStart);
        let inner_exit = self.new_block();
        self.emit_op(Op::PopJumpIf(true), Some(inner_exit));
        self.emit(Instr::Reraise(2));
        self.use_block(cleanup);
        self.pop_except_and_reraise();
        self.use_block(inner_exit);
        self.emit(Instr::PopTop);
        self.emit_op(Op::PopBlock, None);
        self.emit(Instr::PopExcept);
        self.emit(Instr::PopTop);
        self.emit(Instr::PopTop);
        self.use_block(exit);
        Ok(())
    }

    // ----- conditions (3.11's compiler_jump_if) -----

    fn jump_if(&mut self, e: &Expr, next: usize, cond: bool) -> R<()> {
        let old = self.unit().line;
        self.set_loc(e);
        let r = self.jump_if_inner(e, next, cond);
        self.unit().line = old;
        r
    }

    fn jump_if_inner(&mut self, e: &Expr, next: usize, cond: bool) -> R<()> {
        match e {
            Expr::UnaryOp(u) if u.op == UnaryOp::Not && self.constant_of(e).is_none() => {
                return self.jump_if(&u.operand, next, !cond);
            }
            Expr::BoolOp(b) => {
                let or = b.op == BoolOp::Or;
                let next2 = if or != cond { self.new_block() } else { next };
                let (last, rest) = b.values.split_last().expect("two or more values");
                for v in rest {
                    self.jump_if(v, next2, or)?;
                }
                self.jump_if(last, next, cond)?;
                if next2 != next {
                    self.use_block(next2);
                }
                return Ok(());
            }
            Expr::If(i) => {
                let end = self.new_block();
                let next2 = self.new_block();
                self.jump_if(&i.test, next2, false)?;
                self.jump_if(&i.body, next, cond)?;
                self.emit_noline(Op::Jump, Some(end));
                self.use_block(next2);
                self.jump_if(&i.orelse, next, cond)?;
                self.use_block(end);
                return Ok(());
            }
            Expr::Compare(c) if c.ops.len() > 1 => {
                let cleanup = self.new_block();
                self.expr(&c.left)?;
                let n = c.ops.len() - 1;
                for i in 0..n {
                    self.expr(&c.comparators[i])?;
                    self.emit(Instr::Swap(2));
                    self.emit(Instr::Copy(2));
                    self.compare_op(c.ops[i]);
                    self.emit_op(Op::PopJumpIf(false), Some(cleanup));
                }
                self.comparator(&c.comparators[n], c.ops[n], true)?;
                self.compare_op(c.ops[n]);
                self.emit_op(Op::PopJumpIf(cond), Some(next));
                let end = self.new_block();
                self.emit_noline(Op::Jump, Some(end));
                self.use_block(cleanup);
                self.emit(Instr::PopTop);
                if !cond {
                    self.emit_noline(Op::Jump, Some(next));
                }
                self.use_block(end);
                return Ok(());
            }
            _ => {}
        }
        self.expr(e)?;
        self.emit_op(Op::PopJumpIf(cond), Some(next));
        Ok(())
    }

    fn compare_op(&mut self, op: ast::CmpOp) {
        use ast::CmpOp as C;
        let i = match op {
            C::Eq => Instr::CompareOp(CmpOp::Eq),
            C::NotEq => Instr::CompareOp(CmpOp::Ne),
            C::Lt => Instr::CompareOp(CmpOp::Lt),
            C::LtE => Instr::CompareOp(CmpOp::Le),
            C::Gt => Instr::CompareOp(CmpOp::Gt),
            C::GtE => Instr::CompareOp(CmpOp::Ge),
            C::Is => Instr::IsOp(false),
            C::IsNot => Instr::IsOp(true),
            C::In => Instr::ContainsOp(false),
            C::NotIn => Instr::ContainsOp(true),
        };
        self.emit(i);
    }

    // ----- expressions -----

    /// The value of a constant expression after 3.11's AST optimizer (`Python/ast_opt.c`):
    /// literals, tuples of constants, and the folds of unary and binary operators on them
    /// that gilcheck reproduces exactly.
    fn constant_of(&self, e: &Expr) -> Option<Const> {
        Some(match e {
            Expr::NoneLiteral(_) => Const::None,
            Expr::BooleanLiteral(b) => Const::Bool(b.value),
            Expr::NumberLiteral(n) => match &n.value {
                Number::Int(i) => {
                    if let Some(&v) = self.replace.get(&n.start().to_usize()) {
                        Const::Int(v as i64)
                    } else {
                        Const::Int(i.as_i64()?)
                    }
                }
                Number::Float(x) => Const::Float(*x),
                Number::Complex { .. } => return None,
            },
            Expr::StringLiteral(s) => Const::Str(s.value.to_str().to_string()),
            Expr::BytesLiteral(b) => Const::Bytes(b.value.bytes().collect()),
            Expr::Tuple(t) if t.ctx == ExprContext::Load => Const::Tuple(
                t.elts
                    .iter()
                    .map(|x| self.constant_of(x))
                    .collect::<Option<Vec<_>>>()?,
            ),
            Expr::UnaryOp(u) => {
                let v = self.constant_of(&u.operand)?;
                match (u.op, v) {
                    (UnaryOp::USub, Const::Int(i)) => Const::Int(i.checked_neg()?),
                    (UnaryOp::USub, Const::Float(x)) => Const::Float(-x),
                    (UnaryOp::UAdd, Const::Int(i)) => Const::Int(i),
                    (UnaryOp::UAdd, Const::Float(x)) => Const::Float(x),
                    (UnaryOp::Invert, Const::Int(i)) => Const::Int(!i),
                    (UnaryOp::Invert, Const::Bool(b)) => Const::Int(!i64::from(b)),
                    (UnaryOp::Not, c) => Const::Bool(!c.truth()),
                    _ => return None,
                }
            }
            Expr::BinOp(b) => {
                let (l, r) = (self.constant_of(&b.left)?, self.constant_of(&b.right)?);
                fold_binop(b.op, &l, &r)?
            }
            _ => return None,
        })
    }

    fn expr(&mut self, e: &Expr) -> R<()> {
        let old = self.unit().line;
        self.set_loc(e);
        let r = self.expr_inner(e);
        self.unit().line = old;
        r
    }

    fn expr_inner(&mut self, e: &Expr) -> R<()> {
        if let Some(c) = self.constant_of(e) {
            self.load_const(c);
            return Ok(());
        }
        match e {
            Expr::NumberLiteral(n) => match n.value {
                Number::Int(_) => {
                    return unsupported(
                        "an integer literal beyond 64 bits (gilcheck's ints are 64-bit)",
                        n,
                    );
                }
                _ => return unsupported("complex numbers", n),
            },
            Expr::Name(n) => self.load_name(n.id.as_str(), n)?,
            Expr::Attribute(a) => {
                self.expr(&a.value)?;
                let k = self.name_index(a.attr.as_str());
                self.emit(Instr::LoadAttr(k));
            }
            Expr::Subscript(s) => {
                self.expr(&s.value)?;
                self.expr(&s.slice)?;
                self.emit(Instr::BinarySubscr);
            }
            Expr::BinOp(b)
                if b.op == Operator::Mod
                    && let Some(p) = self.percent_pieces(b)? =>
            {
                self.joined(&p)?;
            }
            Expr::BinOp(b) => {
                let Some(op) = binop_of(b.op) else {
                    return unsupported(format!("the operator {}", operator_text(b.op)), b);
                };
                self.expr(&b.left)?;
                self.expr(&b.right)?;
                self.emit(Instr::BinaryOp { op, inplace: false });
            }
            Expr::UnaryOp(u) => match u.op {
                UnaryOp::Not => {
                    self.expr(&u.operand)?;
                    self.emit(Instr::UnaryNot);
                }
                UnaryOp::USub | UnaryOp::UAdd | UnaryOp::Invert => {
                    self.expr(&u.operand)?;
                    self.emit(match u.op {
                        UnaryOp::USub => Instr::UnaryNegative,
                        UnaryOp::UAdd => Instr::UnaryPositive,
                        _ => Instr::UnaryInvert,
                    });
                }
            },
            Expr::Compare(c) => {
                if c.ops.len() > 1 {
                    // 3.11's `compiler_compare`: each link but the last keeps the value on a
                    // false result and jumps to the cleanup.
                    let cleanup = self.new_block();
                    self.expr(&c.left)?;
                    let n = c.ops.len() - 1;
                    for i in 0..n {
                        self.expr(&c.comparators[i])?;
                        self.emit(Instr::Swap(2));
                        self.emit(Instr::Copy(2));
                        self.compare_op(c.ops[i]);
                        self.emit_op(Op::JumpIfOrPop(false), Some(cleanup));
                    }
                    self.comparator(&c.comparators[n], c.ops[n], true)?;
                    self.compare_op(c.ops[n]);
                    let end = self.new_block();
                    self.emit_noline(Op::Jump, Some(end));
                    self.use_block(cleanup);
                    self.emit(Instr::Swap(2));
                    self.emit(Instr::PopTop);
                    self.use_block(end);
                    return Ok(());
                }
                self.expr(&c.left)?;
                self.comparator(&c.comparators[0], c.ops[0], true)?;
                self.compare_op(c.ops[0]);
            }
            Expr::BoolOp(b) => {
                // 3.11's `compiler_boolop`: each value but the last decides or is popped.
                let or = b.op == BoolOp::Or;
                let end = self.new_block();
                let (last, rest) = b.values.split_last().expect("two or more values");
                for v in rest {
                    self.expr(v)?;
                    self.emit_op(Op::JumpIfOrPop(or), Some(end));
                    let next = self.new_block();
                    self.use_block(next);
                }
                self.expr(last)?;
                self.use_block(end);
            }
            Expr::If(i) => {
                let end = self.new_block();
                let next = self.new_block();
                self.jump_if(&i.test, next, false)?;
                self.expr(&i.body)?;
                self.emit_noline(Op::Jump, Some(end));
                self.use_block(next);
                self.expr(&i.orelse)?;
                self.use_block(end);
            }
            Expr::Call(c) => self.call(c)?,
            Expr::Tuple(t) => {
                self.sequence_items(&t.elts)?;
                self.emit(Instr::BuildTuple(t.elts.len() as u32));
            }
            Expr::List(l) => {
                if l.elts.len() > 2 && l.elts.iter().all(|x| self.constant_of(x).is_some()) {
                    // 3.11's `starunpack_helper`: the constants as one tuple, extended into an
                    // empty list.
                    let items = l.elts.iter().filter_map(|x| self.constant_of(x)).collect();
                    self.emit(Instr::BuildList(0));
                    self.load_const(Const::Tuple(items));
                    self.emit(Instr::ListExtend(1));
                    return Ok(());
                }
                self.sequence_items(&l.elts)?;
                self.emit(Instr::BuildList(l.elts.len() as u32));
            }
            Expr::Dict(d) => self.dict(d)?,
            Expr::FString(f) => self.fstring(f)?,
            Expr::ListComp(lc) => self.comprehension(Comp::List, &lc.generators, &[&lc.elt], lc)?,
            Expr::Generator(g) => self.comprehension(Comp::Gen, &g.generators, &[&g.elt], g)?,
            Expr::Yield(y) => {
                if !self.units.last().is_some_and(|u| u.generator) {
                    return syntax("'yield' outside function", y);
                }
                match &y.value {
                    Some(v) => self.expr(v)?,
                    None => self.load_const(Const::None),
                }
                self.emit(Instr::YieldValue);
                self.emit(Instr::Resume(1));
            }
            Expr::Lambda(l) => self.lambda(l)?,
            Expr::Set(st) => {
                if st.elts.iter().any(|x| matches!(x, Expr::Starred(_))) {
                    return unsupported("a starred item in a set display", st);
                }
                if st.elts.len() > 2 && st.elts.iter().all(|x| self.constant_of(x).is_some()) {
                    // 3.11's `starunpack_helper`: the constants as one frozenset, merged into
                    // an empty set.
                    let items = st.elts.iter().filter_map(|x| self.constant_of(x)).collect();
                    self.emit(Instr::BuildSet(0));
                    self.load_const(Const::frozenset(items));
                    self.emit(Instr::SetUpdate(1));
                    return Ok(());
                }
                self.sequence_items(&st.elts)?;
                self.emit(Instr::BuildSet(st.elts.len() as u32));
            }
            Expr::SetComp(sc) => self.comprehension(Comp::Set, &sc.generators, &[&sc.elt], sc)?,
            Expr::DictComp(dc) => {
                let Some(key) = dc.key.as_deref() else {
                    return unsupported("a dict comprehension without a key", dc);
                };
                self.comprehension(Comp::Dict, &dc.generators, &[key, &dc.value], dc)?
            }

            Expr::Named(n) => return unsupported("assignment expressions (:=)", n),
            Expr::Await(a) => return unsupported("await", a),
            Expr::YieldFrom(y) => return unsupported("yield from", y),
            Expr::BytesLiteral(b) => {
                let bytes: Vec<u8> = b.value.bytes().collect();
                self.load_const(Const::Bytes(bytes));
            }
            Expr::EllipsisLiteral(x) => return unsupported("Ellipsis", x),
            Expr::Starred(s) => return unsupported("starred expressions", s),
            Expr::Slice(s) => {
                // 3.11: each bound, or None, then `BUILD_SLICE 2` (3 with a step).
                for part in [&s.lower, &s.upper] {
                    match part {
                        Some(e) => self.expr(e)?,
                        None => self.load_const(Const::None),
                    }
                }
                if let Some(step) = &s.step {
                    self.expr(step)?;
                }
                self.emit(Instr::BuildSlice(if s.step.is_some() { 3 } else { 2 }));
            }
            Expr::TString(t) => return unsupported("template strings", t),
            Expr::StringLiteral(_) | Expr::NoneLiteral(_) | Expr::BooleanLiteral(_) => {
                unreachable!("constants are loaded above")
            }
            Expr::IpyEscapeCommand(i) => return syntax("invalid syntax", i),
        }
        Ok(())
    }

    /// An iterable of `for` or a comprehension, or the right side of `in`: 3.11's `fold_iter`
    /// makes a list display a tuple (a constant one when every item is constant).
    fn iterable(&mut self, e: &Expr) -> R<()> {
        // `fold_iter`: a set display of constants is a frozenset constant.
        if let Expr::Set(st) = e
            && let Some(items) = st
                .elts
                .iter()
                .map(|x| self.constant_of(x))
                .collect::<Option<Vec<_>>>()
        {
            let old = self.unit().line;
            self.set_loc(e);
            self.load_const(Const::frozenset(items));
            self.unit().line = old;
            return Ok(());
        }
        let Expr::List(l) = e else {
            return self.expr(e);
        };
        if l.elts.iter().any(|x| matches!(x, Expr::Starred(_))) {
            return self.expr(e);
        }
        let old = self.unit().line;
        self.set_loc(e);
        match l
            .elts
            .iter()
            .map(|x| self.constant_of(x))
            .collect::<Option<Vec<_>>>()
        {
            Some(items) => self.load_const(Const::Tuple(items)),
            None => {
                self.sequence_items(&l.elts)?;
                self.emit(Instr::BuildTuple(l.elts.len() as u32));
            }
        }
        self.unit().line = old;
        Ok(())
    }

    /// The last comparator of a comparison: folded by `fold_iter` after `in` / `not in`.
    fn comparator(&mut self, e: &Expr, op: ast::CmpOp, last: bool) -> R<()> {
        if last && matches!(op, ast::CmpOp::In | ast::CmpOp::NotIn) {
            self.iterable(e)
        } else {
            self.expr(e)
        }
    }

    fn sequence_items(&mut self, elts: &[Expr]) -> R<()> {
        for x in elts {
            if let Expr::Starred(s) = x {
                return unsupported("starred expressions", s);
            }
            self.expr(x)?;
        }
        Ok(())
    }

    /// 3.11's `compiler_dict` / `compiler_subdict`.
    fn dict(&mut self, d: &ast::ExprDict) -> R<()> {
        if d.items.len() > 15 {
            return unsupported("a dict display of more than 15 items (DICT_UPDATE)", d);
        }
        let mut keys = Vec::new();
        for item in &d.items {
            match &item.key {
                None => return unsupported("** in a dict display", &item.value),
                Some(k) => keys.push(self.constant_of(k)),
            }
        }
        let n = d.items.len() as u32;
        if n > 1 && keys.iter().all(Option::is_some) {
            for item in &d.items {
                self.expr(&item.value)?;
            }
            self.load_const(Const::Tuple(keys.into_iter().flatten().collect()));
            self.emit(Instr::BuildConstKeyMap(n));
        } else {
            for item in &d.items {
                self.expr(item.key.as_ref().expect("checked"))?;
                self.expr(&item.value)?;
            }
            self.emit(Instr::BuildMap(n));
        }
        Ok(())
    }

    /// 3.11's `compiler_joined_str` and `compiler_formatted_value`.
    fn fstring(&mut self, f: &ast::ExprFString) -> R<()> {
        let mut pieces: Vec<Piece<'_>> = Vec::new();
        for part in f.value.iter() {
            match part {
                FStringPart::Literal(l) => push_lit(&mut pieces, &l.value),
                FStringPart::FString(fs) => {
                    for el in fs.elements.iter() {
                        match el {
                            InterpolatedStringElement::Literal(l) => {
                                push_lit(&mut pieces, &l.value)
                            }
                            InterpolatedStringElement::Interpolation(i) => {
                                if let Some(d) = &i.debug_text {
                                    let expr_text = &self.source[i.expression.range()];
                                    let text =
                                        format!("{}{}{}", d.leading(), expr_text, d.trailing());
                                    push_lit(&mut pieces, &text);
                                }
                                let mut conversion = match i.conversion {
                                    ast::ConversionFlag::None => Conversion::None,
                                    ast::ConversionFlag::Str => Conversion::Str,
                                    ast::ConversionFlag::Repr => Conversion::Repr,
                                    ast::ConversionFlag::Ascii => {
                                        return unsupported("the !a conversion", i);
                                    }
                                };
                                if i.debug_text.is_some()
                                    && conversion == Conversion::None
                                    && i.format_spec.is_none()
                                {
                                    conversion = Conversion::Repr;
                                }
                                let spec = match &i.format_spec {
                                    None => None,
                                    Some(s) => {
                                        let mut text = String::new();
                                        for el in s.elements.iter() {
                                            match el {
                                                InterpolatedStringElement::Literal(l) => {
                                                    text.push_str(&l.value)
                                                }
                                                InterpolatedStringElement::Interpolation(x) => {
                                                    return unsupported(
                                                        "a nested replacement field in a format spec",
                                                        x,
                                                    );
                                                }
                                            }
                                        }
                                        Some(text)
                                    }
                                };
                                pieces.push(Piece::Value {
                                    expr: &i.expression,
                                    conversion,
                                    spec,
                                    own_line: false,
                                });
                            }
                        }
                    }
                }
            }
        }
        self.joined(&pieces)
    }

    /// A JoinedStr's pieces: a constant per literal, each value formatted, `BUILD_STRING`
    /// unless there is exactly one piece.
    fn joined(&mut self, pieces: &[Piece<'_>]) -> R<()> {
        for p in pieces {
            match p {
                Piece::Lit {
                    text,
                    own_line: true,
                } => {
                    // ast_opt.c's constants have no location.
                    let old = std::mem::replace(&mut self.unit().line, -1);
                    self.load_const(Const::Str(text.clone()));
                    self.unit().line = old;
                }
                Piece::Lit { text, .. } => self.load_const(Const::Str(text.clone())),
                Piece::Value {
                    expr,
                    conversion,
                    spec,
                    own_line,
                } => {
                    let old = self.unit().line;
                    self.expr(expr)?;
                    if *own_line {
                        self.set_loc(*expr);
                    }
                    if let Some(text) = spec {
                        let at = self.unit().line;
                        if *own_line {
                            self.unit().line = -1;
                        }
                        self.load_const(Const::Str(text.clone()));
                        self.unit().line = at;
                    }
                    self.emit(Instr::FormatValue {
                        conversion: *conversion,
                        spec: spec.is_some(),
                    });
                    self.unit().line = old;
                }
            }
        }
        if pieces.len() != 1 {
            self.emit(Instr::BuildString(pieces.len() as u32));
        }
        Ok(())
    }

    /// 3.11's `optimize_format` (Python/ast_opt.c): `'…%s…%r…' % (a, b)`, with a literal
    /// tuple that is not all constants, is the f-string `f'…{a!s}…{b!r}…'` when every unit is
    /// `%s`, `%r` or `%a` with at most a `-` flag, a width and a precision of two digits.
    /// `None`: the `%` stays a BINARY_OP.
    fn percent_pieces<'e>(&self, b: &'e ast::ExprBinOp) -> R<Option<Vec<Piece<'e>>>> {
        let Some(Const::Str(fmt)) = self.constant_of(&b.left) else {
            return Ok(None);
        };
        let Expr::Tuple(t) = &*b.right else {
            return Ok(None);
        };
        if t.ctx != ExprContext::Load
            || t.elts.iter().any(|e| matches!(e, Expr::Starred(_)))
            || self.constant_of(&b.right).is_some()
        {
            return Ok(None);
        }
        let chars: Vec<char> = fmt.chars().collect();
        let (mut pos, mut cnt) = (0, 0);
        let mut pieces = Vec::new();
        loop {
            let mut lit = String::new();
            while pos < chars.len() {
                if chars[pos] != '%' {
                    lit.push(chars[pos]);
                    pos += 1;
                } else if chars.get(pos + 1) == Some(&'%') {
                    lit.push('%');
                    pos += 2;
                } else {
                    break;
                }
            }
            if !lit.is_empty() {
                pieces.push(Piece::Lit {
                    text: lit,
                    own_line: true,
                });
            }
            if pos >= chars.len() {
                break;
            }
            let Some(arg) = t.elts.get(cnt) else {
                return Ok(None);
            };
            pos += 1;
            let Some((kind, left, width, prec)) = simple_format_unit(&chars, &mut pos) else {
                return Ok(None);
            };
            let conversion = match kind {
                's' => Conversion::Str,
                'r' => Conversion::Repr,
                'a' => return unsupported("the %a conversion (!a)", b),
                _ => return Ok(None),
            };
            let mut spec = String::new();
            if !left && width.is_some_and(|w| w > 0) {
                spec.push('>');
            }
            if let Some(w) = width {
                spec.push_str(&w.to_string());
            }
            if let Some(p) = prec {
                spec.push_str(&format!(".{p}"));
            }
            pieces.push(Piece::Value {
                expr: arg,
                conversion,
                spec: (!spec.is_empty()).then_some(spec),
                own_line: true,
            });
            cnt += 1;
        }
        if cnt < t.elts.len() {
            return Ok(None);
        }
        Ok(Some(pieces))
    }

    /// 3.11's `compiler_call` (with `maybe_optimize_method_call`).
    fn call(&mut self, c: &ast::ExprCall) -> R<()> {
        let args = &c.arguments;
        let starred = args.args.iter().any(|a| matches!(a, Expr::Starred(_)))
            || args.keywords.iter().any(|k| k.arg.is_none());
        if starred {
            return self.call_ex(c);
        }
        let nargs = args.args.len() + args.keywords.len();
        if let Expr::Attribute(meth) = &*c.func
            && meth.ctx == ExprContext::Load
            && !self.import_originated(&meth.value)
            && nargs + usize::from(!args.keywords.is_empty()) < 30
        {
            self.expr(&meth.value)?;
            let old = self.unit().line;
            let end = self.end_line_of(meth);
            self.unit().line = end;
            let k = self.name_index(meth.attr.as_str());
            self.emit(Instr::LoadMethod(k));
            self.unit().line = old;
            self.call_args(args)?;
            self.unit().line = end;
            self.emit(Instr::Call(nargs as u32));
            self.unit().line = old;
            return Ok(());
        }
        let old = self.unit().line;
        self.set_loc(&*c.func);
        self.emit(Instr::PushNull);
        self.unit().line = old;
        self.expr(&c.func)?;
        self.call_args(args)?;
        self.emit(Instr::Call(nargs as u32));
        Ok(())
    }

    /// 3.11's `compiler_call` with `compiler_call_helper`'s `ex_call` path: a call with `*x`
    /// or `**y` is `PUSH_NULL`, the callable, the positional arguments as one tuple
    /// (`starunpack_helper`: `BUILD_LIST`, `LIST_APPEND`/`LIST_EXTEND`, `LIST_TO_TUPLE`; a lone
    /// `*x` as it is), the keywords as one dict (`compiler_subkwargs`, `DICT_MERGE`), then
    /// `CALL_FUNCTION_EX`.
    fn call_ex(&mut self, c: &ast::ExprCall) -> R<()> {
        let args = &c.arguments;
        if args.args.len() + 2 * args.keywords.len() > 30 {
            return unsupported("a call with * or ** and more than 30 arguments", c);
        }
        let old = self.unit().line;
        self.set_loc(&*c.func);
        self.emit(Instr::PushNull);
        self.unit().line = old;
        self.expr(&c.func)?;
        match &args.args[..] {
            [Expr::Starred(s)] => self.expr(&s.value)?,
            elts => {
                let mut built = false;
                for (i, e) in elts.iter().enumerate() {
                    if let Expr::Starred(s) = e {
                        if !built {
                            self.emit(Instr::BuildList(i as u32));
                            built = true;
                        }
                        self.expr(&s.value)?;
                        self.emit(Instr::ListExtend(1));
                    } else {
                        self.expr(e)?;
                        if built {
                            self.emit(Instr::ListAppend(1));
                        }
                    }
                }
                if elts.is_empty() {
                    // `BUILD_TUPLE 0`, which 3.11's `fold_tuple_on_constants` makes `()`.
                    self.load_const(Const::Tuple(Vec::new()));
                } else if !built {
                    // No star among them: only keywords are unpacked (`f(a, **k)`).
                    self.emit(Instr::BuildTuple(elts.len() as u32));
                } else {
                    self.emit(Instr::ListToTuple);
                }
            }
        }
        let kws = &args.keywords;
        if !kws.is_empty() {
            let mut have_dict = false;
            let mut seen = 0;
            for (i, k) in kws.iter().enumerate() {
                if k.arg.is_none() {
                    if seen > 0 {
                        self.subkwargs(&kws[i - seen..i])?;
                        if have_dict {
                            self.emit(Instr::DictMerge(1));
                        }
                        have_dict = true;
                        seen = 0;
                    }
                    if !have_dict {
                        self.emit(Instr::BuildMap(0));
                        have_dict = true;
                    }
                    self.expr(&k.value)?;
                    self.emit(Instr::DictMerge(1));
                } else {
                    seen += 1;
                }
            }
            if seen > 0 {
                self.subkwargs(&kws[kws.len() - seen..])?;
                if have_dict {
                    self.emit(Instr::DictMerge(1));
                }
            }
        }
        self.emit(Instr::CallFunctionEx(u32::from(!kws.is_empty())));
        Ok(())
    }

    /// 3.11's `compiler_subkwargs`: named keywords as one dict.
    fn subkwargs(&mut self, kws: &[ast::Keyword]) -> R<()> {
        let name = |k: &ast::Keyword| k.arg.as_ref().expect("a named keyword").to_string();
        if kws.len() > 1 {
            for k in kws {
                self.expr(&k.value)?;
            }
            let keys = kws.iter().map(|k| Const::Str(name(k))).collect();
            self.load_const(Const::Tuple(keys));
            self.emit(Instr::BuildConstKeyMap(kws.len() as u32));
        } else {
            for k in kws {
                self.load_const(Const::Str(name(k)));
                self.expr(&k.value)?;
            }
            self.emit(Instr::BuildMap(kws.len() as u32));
        }
        Ok(())
    }

    fn call_args(&mut self, args: &ast::Arguments) -> R<()> {
        for a in args.args.iter() {
            self.expr(a)?;
        }
        if !args.keywords.is_empty() {
            for k in args.keywords.iter() {
                self.expr(&k.value)?;
            }
            let names = args
                .keywords
                .iter()
                .map(|k| Const::Str(k.arg.as_ref().expect("checked").to_string()))
                .collect();
            let k = self.konst(Const::Tuple(names));
            self.emit(Instr::KwNames(k));
        }
        Ok(())
    }

    fn import_originated(&self, e: &Expr) -> bool {
        matches!(e, Expr::Name(n) if self.imports.contains(n.id.as_str()))
    }

    /// 3.11's `compiler_comprehension`: a list, set or dict comprehension or a generator
    /// expression (`elt`: the element, or a dict comprehension's key and value).
    fn comprehension(
        &mut self,
        kind: Comp,
        generators: &[ast::Comprehension],
        elt: &[&Expr],
        at: &impl Ranged,
    ) -> R<()> {
        let outer = &generators[0];
        if outer.is_async {
            return unsupported("async comprehensions", outer);
        }
        let mut locals = BTreeSet::new();
        for g in generators {
            scan_target(&g.target, &mut locals);
        }
        let line = self.line_of(at);
        let params = vec![".0".to_string()];
        locals.insert(".0".into());
        let name = match kind {
            Comp::List => "<listcomp>",
            Comp::Set => "<setcomp>",
            Comp::Dict => "<dictcomp>",
            Comp::Gen => "<genexpr>",
        };
        self.enter(
            name,
            Scope::Comprehension,
            line,
            &params,
            locals,
            BTreeSet::new(),
        );
        self.closure_vars(
            &scope::needed_by_nested_in_comprehension(generators, elt),
            &scope::comprehension_free(generators, elt),
        );
        if kind == Comp::Gen {
            self.unit().generator = true;
            self.generator_prefix();
        }
        self.emit(Instr::Resume(0));
        match kind {
            Comp::List => self.emit(Instr::BuildList(0)),
            Comp::Set => self.emit(Instr::BuildSet(0)),
            Comp::Dict => self.emit(Instr::BuildMap(0)),
            Comp::Gen => {}
        }
        self.comprehension_generator(kind, generators, 0, 0, elt)?;
        if kind != Comp::Gen {
            self.emit(Instr::ReturnValue);
        }
        let index = self.units.last().expect("unit").index;
        let code = self.leave(kind == Comp::Gen)?;
        self.codes[index] = Some(code);
        let flags = self.make_closure(index, 0)?;
        self.load_const(Const::Code(index));
        self.emit(Instr::MakeFunction(flags));
        self.iterable(&outer.iter)?;
        self.emit(Instr::GetIter);
        self.emit(Instr::Call(0));
        Ok(())
    }

    /// 3.11's `compiler_sync_comprehension_generator`.
    fn comprehension_generator(
        &mut self,
        kind: Comp,
        gens: &[ast::Comprehension],
        index: usize,
        depth: u32,
        elt: &[&Expr],
    ) -> R<()> {
        let g = &gens[index];
        if g.is_async {
            return unsupported("async comprehensions", g);
        }
        let start = self.new_block();
        let if_cleanup = self.new_block();
        let anchor = self.new_block();
        if index == 0 {
            let k = self.var_index(".0");
            self.emit(Instr::LoadFast(k));
        } else {
            self.iterable(&g.iter)?;
            self.emit(Instr::GetIter);
        }
        let depth = depth + 1;
        self.use_block(start);
        self.emit_op(Op::ForIter, Some(anchor));
        self.store(&g.target)?;
        for cond in &g.ifs {
            self.jump_if(cond, if_cleanup, false)?;
        }
        if index + 1 < gens.len() {
            self.comprehension_generator(kind, gens, index + 1, depth, elt)?;
        } else {
            for e in elt {
                self.expr(e)?;
            }
            match kind {
                Comp::List => self.emit(Instr::ListAppend(depth + 1)),
                Comp::Set => self.emit(Instr::SetAdd(depth + 1)),
                Comp::Dict => self.emit(Instr::MapAdd(depth + 1)),
                Comp::Gen => {
                    self.emit(Instr::YieldValue);
                    self.emit(Instr::Resume(1));
                    self.emit(Instr::PopTop);
                }
            }
        }
        self.use_block(if_cleanup);
        self.emit_op(Op::Jump, Some(start));
        self.use_block(anchor);
        Ok(())
    }

    /// 3.11's `compiler_lambda`.
    fn lambda(&mut self, l: &ast::ExprLambda) -> R<()> {
        let (params, defaults, star) = match &l.parameters {
            Some(p) => self.params(p)?,
            None => (Vec::new(), Params::default(), Star::default()),
        };
        let flags = self.default_arguments(&defaults)?;
        let locals: BTreeSet<String> = params.iter().cloned().collect();
        let line = self.line_of(l);
        self.enter(
            "<lambda>",
            Scope::Function,
            line,
            &params,
            locals,
            BTreeSet::new(),
        );
        self.unit().star(star);
        self.closure_vars(
            &scope::needed_by_nested_in_lambda(l),
            &scope::lambda_free(l),
        );
        self.konst(Const::None);
        self.emit(Instr::Resume(0));
        self.expr(&l.body)?;
        self.emit(Instr::ReturnValue);
        let index = self.units.last().expect("unit").index;
        let code = self.leave(false)?;
        self.codes[index] = Some(code);
        let flags = self.make_closure(index, flags)?;
        self.load_const(Const::Code(index));
        self.emit(Instr::MakeFunction(flags));
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comp {
    List,
    Set,
    Dict,
    Gen,
}

enum Resolved {
    Name,
    Global,
    Fast,
    /// A cell or free variable: its index among the unit's cells then frees.
    Deref(u32),
    Free,
}

fn is_constant(e: &Expr) -> bool {
    matches!(
        e,
        Expr::NoneLiteral(_)
            | Expr::BooleanLiteral(_)
            | Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::BytesLiteral(_)
            | Expr::EllipsisLiteral(_)
    )
}

/// 3.11's `fold_binop` for the cases gilcheck folds exactly: integer `+ - * // % **` whose
/// result fits 64 bits (a power only up to 128 result bits in CPython: here, while it fits),
/// float `+ - * /`, and `str + str` (CPython's limit: 4096 characters).
fn fold_binop(op: Operator, l: &Const, r: &Const) -> Option<Const> {
    use Const::*;
    if matches!(op, Operator::BitAnd | Operator::BitOr | Operator::BitXor) {
        let int = |c: &Const| match c {
            Bool(b) => Some(i64::from(*b)),
            Int(i) => Some(*i),
            _ => Option::None,
        };
        let (a, b) = (int(l)?, int(r)?);
        let v = match op {
            Operator::BitAnd => a & b,
            Operator::BitOr => a | b,
            _ => a ^ b,
        };
        return Some(match (l, r) {
            (Bool(_), Bool(_)) => Bool(v != 0),
            _ => Int(v),
        });
    }
    Some(match (l, r) {
        // Exact for ints below 2^53, where int and float division agree.
        (Int(a), Int(b)) if op == Operator::Div => {
            if *b == 0 || a.unsigned_abs() >= 1 << 53 || b.unsigned_abs() >= 1 << 53 {
                return Option::None;
            }
            Float(*a as f64 / *b as f64)
        }
        (Int(a), Int(b)) => match op {
            Operator::Add => Int(a.checked_add(*b)?),
            Operator::Sub => Int(a.checked_sub(*b)?),
            Operator::Mult => Int(a.checked_mul(*b)?),
            Operator::FloorDiv if *b != 0 => {
                let q = a.checked_div(*b)?;
                let rem = a % b;
                Int(if rem != 0 && ((rem < 0) != (*b < 0)) {
                    q - 1
                } else {
                    q
                })
            }
            Operator::Mod if *b != 0 => Int({
                let rem = a.checked_rem(*b)?;
                if rem != 0 && ((rem < 0) != (*b < 0)) {
                    rem + b
                } else {
                    rem
                }
            }),
            Operator::Pow if *b >= 0 => Int(a.checked_pow(u32::try_from(*b).ok()?)?),
            _ => return Option::None,
        },
        (Float(_) | Int(_), Float(_) | Int(_)) => {
            let f = |c: &Const| match c {
                Int(i) => *i as f64,
                Float(x) => *x,
                _ => 0.0,
            };
            let (a, b) = (f(l), f(r));
            match op {
                Operator::Add => Float(a + b),
                Operator::Sub => Float(a - b),
                Operator::Mult => Float(a * b),
                // Exact for ints below 2^53, where int and float division agree.
                Operator::Div if b != 0.0 && a.abs() < 9.0e15 && b.abs() < 9.0e15 => Float(a / b),
                _ => return Option::None,
            }
        }
        (Str(a), Str(b))
            if op == Operator::Add && a.chars().count() + b.chars().count() <= 4096 =>
        {
            Str(format!("{a}{b}"))
        }
        (Bytes(a), Bytes(b)) if op == Operator::Add && a.len() + b.len() <= 4096 => {
            Bytes([&a[..], &b[..]].concat())
        }
        _ => return Option::None,
    })
}

/// Whether a function body contains `yield` (outside nested scopes).
/// Where a function inside a class body names `super` or `__class__` (which would give the
/// class a `__class__` cell).
/// The first `super` or `__class__` a class body's own statements use (not its methods').
fn class_body_uses_class_cell(body: &[Stmt]) -> Option<ruff_text_size::TextRange> {
    struct V(Option<ruff_text_size::TextRange>);
    impl<'a> ast::visitor::Visitor<'a> for V {
        fn visit_stmt(&mut self, s: &'a Stmt) {
            match s {
                // A method's body has the cell; its decorators and defaults run in the body.
                Stmt::FunctionDef(f) => {
                    for d in &f.decorator_list {
                        self.visit_decorator(d);
                    }
                    let p = &f.parameters;
                    for a in p.posonlyargs.iter().chain(&p.args).chain(&p.kwonlyargs) {
                        if let Some(d) = &a.default {
                            self.visit_expr(d);
                        }
                    }
                }
                // A nested class has a cell of its own.
                Stmt::ClassDef(_) => {}
                _ => ast::visitor::walk_stmt(self, s),
            }
        }
        fn visit_expr(&mut self, e: &'a Expr) {
            match e {
                Expr::Name(n)
                    if (n.id.as_str() == "super" || n.id.as_str() == "__class__")
                        && self.0.is_none() =>
                {
                    self.0 = Some(n.range);
                }
                // A lambda is a function of the body: it would take the cell.
                Expr::Lambda(_) => {}
                _ => ast::visitor::walk_expr(self, e),
            }
        }
    }
    let mut v = V(None);
    for s in body {
        ast::visitor::Visitor::visit_stmt(&mut v, s);
    }
    v.0
}

/// Whether a function of a class body (a method, a function or lambda nested in one, not a
/// nested class) uses `super` or `__class__`: 3.11's `ste_needs_class_closure`.
fn methods_use_class_cell(body: &[Stmt]) -> bool {
    struct V {
        depth: usize,
        found: bool,
    }
    impl<'a> ast::visitor::Visitor<'a> for V {
        fn visit_stmt(&mut self, s: &'a Stmt) {
            match s {
                Stmt::FunctionDef(f) => {
                    self.depth += 1;
                    for st in &f.body {
                        self.visit_stmt(st);
                    }
                    self.depth -= 1;
                }
                Stmt::ClassDef(_) => {}
                _ => ast::visitor::walk_stmt(self, s),
            }
        }
        fn visit_expr(&mut self, e: &'a Expr) {
            match e {
                Expr::Name(n)
                    if self.depth > 0
                        && (n.id.as_str() == "super" || n.id.as_str() == "__class__") =>
                {
                    self.found = true;
                }
                Expr::Lambda(l) => {
                    self.depth += 1;
                    self.visit_expr(&l.body);
                    self.depth -= 1;
                }
                _ => ast::visitor::walk_expr(self, e),
            }
        }
    }
    let mut v = V {
        depth: 0,
        found: false,
    };
    for s in body {
        ast::visitor::Visitor::visit_stmt(&mut v, s);
    }
    v.found
}

fn uses_yield(body: &[Stmt]) -> bool {
    struct Y(bool);
    impl<'a> ast::visitor::Visitor<'a> for Y {
        fn visit_expr(&mut self, e: &'a Expr) {
            match e {
                Expr::Yield(_) | Expr::YieldFrom(_) => self.0 = true,
                Expr::Lambda(_)
                | Expr::ListComp(_)
                | Expr::SetComp(_)
                | Expr::DictComp(_)
                | Expr::Generator(_) => {}
                _ => ast::visitor::walk_expr(self, e),
            }
        }
        fn visit_stmt(&mut self, s: &'a Stmt) {
            match s {
                Stmt::FunctionDef(_) | Stmt::ClassDef(_) => {}
                _ => ast::visitor::walk_stmt(self, s),
            }
        }
    }
    let mut y = Y(false);
    for s in body {
        ast::visitor::Visitor::visit_stmt(&mut y, s);
    }
    y.0
}

/// A piece of a JoinedStr: a literal, or a value with its conversion and spec. `own_line`:
/// made by 3.11's AST optimizer from `%` (its constants have no line, its values the line of
/// their expression).
enum Piece<'e> {
    Lit {
        text: String,
        own_line: bool,
    },
    Value {
        expr: &'e Expr,
        conversion: Conversion,
        spec: Option<String>,
        own_line: bool,
    },
}

fn push_lit(pieces: &mut Vec<Piece<'_>>, s: &str) {
    if s.is_empty() {
        return;
    }
    if let Some(Piece::Lit { text, .. }) = pieces.last_mut() {
        text.push_str(s);
    } else {
        pieces.push(Piece::Lit {
            text: s.to_string(),
            own_line: false,
        });
    }
}

/// 3.11's `simple_format_arg_parse`: after a `%`, the flags, a width and a precision of at
/// most two digits each, and the conversion character; `None` when the text ends first or a
/// number is longer. Returns the character, whether `-` was given, the width and precision.
fn simple_format_unit(
    chars: &[char],
    pos: &mut usize,
) -> Option<(char, bool, Option<u32>, Option<u32>)> {
    fn next(chars: &[char], p: &mut usize) -> Option<char> {
        let c = chars.get(*p).copied();
        *p += 1;
        c
    }
    fn number(chars: &[char], p: &mut usize, ch: &mut char) -> Option<Option<u32>> {
        if !ch.is_ascii_digit() {
            return Some(None);
        }
        let (mut n, mut digits) = (0, 0);
        while let Some(d) = ch.to_digit(10) {
            n = n * 10 + d;
            *ch = next(chars, p)?;
            digits += 1;
            if digits >= 3 {
                return None;
            }
        }
        Some(Some(n))
    }
    let mut p = *pos;
    let mut left = false;
    let mut ch;
    loop {
        ch = next(chars, &mut p)?;
        match ch {
            '-' => left = true,
            '+' | ' ' | '#' | '0' => {}
            _ => break,
        }
    }
    let width = number(chars, &mut p, &mut ch)?;
    let mut prec = None;
    if ch == '.' {
        ch = next(chars, &mut p)?;
        prec = Some(number(chars, &mut p, &mut ch)?.unwrap_or(0));
    }
    *pos = p;
    Some((ch, left, width, prec))
}
