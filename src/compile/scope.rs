//! Which names nested scopes take from the function around them (the part of CPython 3.11's
//! `Python/symtable.c` that closures need): a name a nested function, lambda or comprehension
//! uses without binding it, and that a function around it binds, is a *cell* there and a *free*
//! variable in every scope between (rule CO-7).

use super::codegen::scan_body;
use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, Stmt};
use std::collections::BTreeSet;

/// What one scope's own code uses, what its nested scopes need, and its `nonlocal` names.
#[derive(Default)]
struct Uses {
    used: BTreeSet<String>,
    nested: BTreeSet<String>,
    nonlocal: BTreeSet<String>,
}

impl Uses {
    fn defaults(&mut self, p: &ast::Parameters) {
        for a in p.posonlyargs.iter().chain(&p.args).chain(&p.kwonlyargs) {
            if let Some(d) = &a.default {
                self.visit_expr(d);
            }
        }
    }

    /// A comprehension: its first iterable is evaluated here, the rest in its own scope.
    fn comprehension(&mut self, generators: &[ast::Comprehension], elts: &[&Expr]) {
        if let Some(first) = generators.first() {
            self.visit_expr(&first.iter);
        }
        self.nested.extend(comprehension_free(generators, elts));
    }
}

impl<'a> Visitor<'a> for Uses {
    fn visit_stmt(&mut self, s: &'a Stmt) {
        match s {
            Stmt::FunctionDef(f) => {
                for d in &f.decorator_list {
                    self.visit_decorator(d);
                }
                self.defaults(&f.parameters);
                self.nested.extend(function_free(&f.parameters, &f.body));
            }
            // A class body is not a function scope: what it would take from a function around
            // it stays refused by the code generator.
            Stmt::ClassDef(c) => {
                for d in &c.decorator_list {
                    self.visit_decorator(d);
                }
                if let Some(a) = &c.arguments {
                    for b in &a.args {
                        self.visit_expr(b);
                    }
                }
            }
            Stmt::Nonlocal(n) => {
                self.nonlocal.extend(n.names.iter().map(|x| x.to_string()));
            }
            _ => visitor::walk_stmt(self, s),
        }
    }

    fn visit_expr(&mut self, e: &'a Expr) {
        match e {
            Expr::Name(n) => {
                self.used.insert(n.id.to_string());
                // Zero-argument `super()` reads the `__class__` cell (CO-8).
                if n.id.as_str() == "super" {
                    self.used.insert("__class__".to_string());
                }
            }
            Expr::Lambda(l) => {
                if let Some(p) = &l.parameters {
                    self.defaults(p);
                }
                self.nested.extend(lambda_free(l));
            }
            Expr::ListComp(c) => self.comprehension(&c.generators, &[&c.elt]),
            Expr::SetComp(c) => self.comprehension(&c.generators, &[&c.elt]),
            Expr::Generator(c) => self.comprehension(&c.generators, &[&c.elt]),
            Expr::DictComp(c) => {
                let mut elts: Vec<&Expr> = c.key.as_deref().into_iter().collect();
                elts.push(&c.value);
                self.comprehension(&c.generators, &elts)
            }
            _ => visitor::walk_expr(self, e),
        }
    }
}

fn param_names(p: &ast::Parameters) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = p
        .posonlyargs
        .iter()
        .chain(&p.args)
        .chain(&p.kwonlyargs)
        .map(|a| a.parameter.name.to_string())
        .collect();
    for v in [&p.vararg, &p.kwarg].into_iter().flatten() {
        out.insert(v.name.to_string());
    }
    out
}

fn free_from(
    uses: Uses,
    mut bound: BTreeSet<String>,
    globals: &BTreeSet<String>,
) -> BTreeSet<String> {
    for n in &uses.nonlocal {
        bound.remove(n);
    }
    let mut free: BTreeSet<String> = uses
        .used
        .iter()
        .chain(&uses.nested)
        .filter(|n| !bound.contains(*n) && !globals.contains(*n))
        .cloned()
        .collect();
    free.extend(uses.nonlocal);
    free
}

/// The names a function uses, or passes on to its nested scopes, without binding them.
pub fn function_free(p: &ast::Parameters, body: &[Stmt]) -> BTreeSet<String> {
    let mut bound = param_names(p);
    let mut globals = BTreeSet::new();
    scan_body(body, &mut bound, &mut globals);
    let mut u = Uses::default();
    for s in body {
        u.visit_stmt(s);
    }
    free_from(u, bound, &globals)
}

pub fn lambda_free(l: &ast::ExprLambda) -> BTreeSet<String> {
    let bound = l.parameters.as_deref().map(param_names).unwrap_or_default();
    let mut u = Uses::default();
    u.visit_expr(&l.body);
    free_from(u, bound, &BTreeSet::new())
}

fn comprehension_parts<'a>(u: &mut Uses, generators: &'a [ast::Comprehension], elts: &[&'a Expr]) {
    for e in elts {
        u.visit_expr(e);
    }
    for (i, g) in generators.iter().enumerate() {
        if i > 0 {
            u.visit_expr(&g.iter);
        }
        for c in &g.ifs {
            u.visit_expr(c);
        }
    }
}

pub fn comprehension_free(generators: &[ast::Comprehension], elts: &[&Expr]) -> BTreeSet<String> {
    let mut bound = BTreeSet::from([".0".to_string()]);
    for g in generators {
        target_names(&g.target, &mut bound);
    }
    let mut u = Uses::default();
    comprehension_parts(&mut u, generators, elts);
    free_from(u, bound, &BTreeSet::new())
}

fn target_names(e: &Expr, out: &mut BTreeSet<String>) {
    match e {
        Expr::Name(n) => {
            out.insert(n.id.to_string());
        }
        Expr::Tuple(t) => t.elts.iter().for_each(|x| target_names(x, out)),
        Expr::List(l) => l.elts.iter().for_each(|x| target_names(x, out)),
        Expr::Starred(s) => target_names(&s.value, out),
        _ => {}
    }
}

/// What the scopes nested directly in a function body need from it (or through it).
pub fn needed_by_nested(body: &[Stmt]) -> BTreeSet<String> {
    let mut u = Uses::default();
    for s in body {
        u.visit_stmt(s);
    }
    u.nested
}

/// The `nonlocal` names a function body declares (not those of its nested functions).
pub fn nonlocals(body: &[Stmt]) -> BTreeSet<String> {
    let mut u = Uses::default();
    for s in body {
        u.visit_stmt(s);
    }
    u.nonlocal
}

pub fn needed_by_nested_in_lambda(l: &ast::ExprLambda) -> BTreeSet<String> {
    let mut u = Uses::default();
    u.visit_expr(&l.body);
    u.nested
}

pub fn needed_by_nested_in_comprehension(
    generators: &[ast::Comprehension],
    elts: &[&Expr],
) -> BTreeSet<String> {
    let mut u = Uses::default();
    comprehension_parts(&mut u, generators, elts);
    u.nested
}
