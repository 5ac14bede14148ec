//! The built-in scenarios: the seed's four programs and three more, each as Python source and
//! as the code objects CPython 3.11 compiles it to (`PRECALL` folded into `CALL`, inline caches
//! left out). `spec/scenarios.md` ties each to the seed's claims, the rules and the checks.

use crate::vm::code::{BinOp, Code, CodeBuilder, Const, Conversion, Instr, Label, Program};

/// A built-in scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    /// One line for `gilcheck list`.
    pub summary: &'static str,
    /// Sizes for `run` (the seed's) and for `check` (small enough to explore).
    pub run_size: Size,
    pub check_size: Size,
    /// Whether `--threads` applies (some scenarios have a fixed shape).
    pub threads_option: bool,
    /// What `--iterations` counts.
    pub iterations_mean: &'static str,
}

/// Threads and iterations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub threads: u32,
    pub iterations: u64,
}

const fn size(threads: u32, iterations: u64) -> Size {
    Size {
        threads,
        iterations,
    }
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "seed-refcount",
        summary: "claim 1: threads read shared_data[\"revenue\"]; the GIL keeps plain refcounts exact",
        run_size: size(4, 100_000),
        check_size: size(2, 2),
        threads_option: true,
        iterations_mean: "reads per thread",
    },
    Scenario {
        name: "seed-cpu-bound",
        summary: "claim 2: CPU-bound threads are no faster than sequential code (--processes: they are)",
        run_size: size(2, 300_000),
        check_size: size(2, 3),
        threads_option: true,
        iterations_mean: "the limit of compute_sum",
    },
    Scenario {
        name: "seed-unsafe-increment",
        summary: "claim 3: shared_counter[\"value\"] += 1 from threads; loses updates on 3.8/3.9 only",
        run_size: size(4, 10_000),
        check_size: size(2, 2),
        threads_option: true,
        iterations_mean: "increments per thread",
    },
    Scenario {
        name: "seed-locked-increment",
        summary: "claim 4: the same increment inside `with lock:`; never loses an update",
        run_size: size(4, 10_000),
        check_size: size(2, 2),
        threads_option: true,
        iterations_mean: "increments per thread",
    },
    Scenario {
        name: "call-between",
        summary: "read, call a Python function, write: loses updates on every version",
        run_size: size(4, 10_000),
        check_size: size(2, 2),
        threads_option: true,
        iterations_mean: "increments per thread",
    },
    Scenario {
        name: "io-bound",
        summary: "claim 4: threads that sleep (blocking I/O releases the GIL) take one sleep, not N",
        run_size: size(4, 1),
        check_size: size(2, 1),
        threads_option: true,
        iterations_mean: "sleeps of 0.1 s per thread",
    },
    Scenario {
        name: "convoy",
        summary: "an I/O thread beside a CPU-bound one: each blocking call costs about one switch interval",
        run_size: size(2, 3_000_000),
        check_size: size(2, 2),
        threads_option: false,
        iterations_mean: "loop iterations of the CPU-bound thread",
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Options that change a scenario's program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub threads: u32,
    pub iterations: u64,
    /// `seed-cpu-bound`: `multiprocessing.Process` instead of `threading.Thread`.
    pub processes: bool,
}

/// The program of scenario `name` with `params`.
pub fn build(name: &str, params: Params) -> Result<Program, String> {
    let p = params;
    let program = match name {
        "seed-refcount" => seed_refcount(p),
        "seed-cpu-bound" => seed_cpu_bound(p),
        "seed-unsafe-increment" => increment(name, p, Rmw::Plain),
        "seed-locked-increment" => increment(name, p, Rmw::Locked),
        "call-between" => increment(name, p, Rmw::CallBetween),
        "io-bound" => io_bound(p),
        "convoy" => convoy(p),
        _ => return Err(format!("unknown scenario '{name}' (see `gilcheck list`)")),
    };
    program
        .validate()
        .map_err(|e| format!("internal error: scenario {name} does not validate: {e}"))?;
    Ok(program)
}

/// Collects code objects; index 0 is the module.
struct ProgramBuilder {
    name: String,
    source: String,
    codes: Vec<Option<Code>>,
}

impl ProgramBuilder {
    fn new(name: &str, source: String) -> Self {
        ProgramBuilder {
            name: name.into(),
            source,
            codes: vec![None],
        }
    }

    /// The 1-based line of the first source line containing `needle`.
    fn line(&self, needle: &str) -> u32 {
        self.source
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u32 + 1)
            .unwrap_or_else(|| panic!("scenario source has no line containing {needle:?}"))
    }

    /// The line containing `first` that is followed by a line containing `next`.
    fn line_pair(&self, first: &str, next: &str) -> u32 {
        let lines: Vec<&str> = self.source.lines().collect();
        lines
            .windows(2)
            .position(|w| w[0].contains(first) && w[1].contains(next))
            .map(|i| i as u32 + 1)
            .unwrap_or_else(|| panic!("scenario source has no {first:?} line before {next:?}"))
    }

    fn add(&mut self, code: Code) -> usize {
        self.codes.push(Some(code));
        self.codes.len() - 1
    }

    fn finish(mut self, module: Code) -> Program {
        self.codes[0] = Some(module);
        Program {
            name: self.name,
            source: self.source,
            codes: self
                .codes
                .into_iter()
                .map(|c| c.expect("every code object added"))
                .collect(),
        }
    }
}

/// `import name` at `line`.
fn import(b: &mut CodeBuilder, line: u32, name: &str) {
    b.line(line).import_name(name).store_name(name);
}

/// `for _ in range(<local n>):` in a function: emits the loop head and returns the labels
/// (top, end); the caller emits the body, then [`end_loop`].
fn for_range_fast(b: &mut CodeBuilder, line: u32, n: &str, var: &str) -> Loop {
    b.line(line)
        .load_global_null("range")
        .load_fast(n)
        .call(1)
        .op(Instr::GetIter);
    let top = b.here();
    let end = b.new_label();
    b.jump(Instr::ForIter, end).store_fast(var);
    Loop { top, end, line }
}

/// A `for` loop being built: its head and exit labels and its line.
struct Loop {
    top: Label,
    end: Label,
    line: u32,
}

/// Closes the loop; what follows is attributed to the `for` line, as CPython does.
fn end_loop(b: &mut CodeBuilder, l: Loop) {
    b.jump(Instr::JumpBackward, l.top).bind(l.end).line(l.line);
}

/// `threads = [<module>.<class>(target=<target>, args=(<args>,)) for _ in range(n)]` as 3.11
/// compiles it: a `<listcomp>` function called with the range iterator.
fn thread_list(
    p: &mut ProgramBuilder,
    b: &mut CodeBuilder,
    module: &str,
    class: &str,
    target: &str,
    args: Vec<Const>,
    n: u32,
) {
    let line = p.line(&format!("{module}.{class}(target={target}"));
    let mut lc = CodeBuilder::function("<listcomp>", &[".0"], line);
    lc.line(line)
        .op(Instr::Resume(0))
        .op(Instr::BuildList(0))
        .load_fast(".0");
    let top = lc.here();
    let end = lc.new_label();
    lc.jump(Instr::ForIter, end)
        .store_fast("_")
        .load_global_null(module)
        .load_attr(class)
        .load_global(target)
        .load_const(Const::Tuple(args))
        .call_kw(2, &["target", "args"])
        .op(Instr::ListAppend(2));
    lc.jump(Instr::JumpBackward, top)
        .bind(end)
        .op(Instr::ReturnValue);
    let code = p.add(lc.finish());
    b.line(line)
        .make_function(code)
        .op(Instr::PushNull)
        .load_name("range")
        .load_int(i64::from(n))
        .call(1)
        .op(Instr::GetIter)
        .call(0)
        .store_name("threads");
}

/// `for thread in threads: thread.<method>()`.
fn each_thread(p: &ProgramBuilder, b: &mut CodeBuilder, method: &str) {
    let head = p.line_pair("for thread in threads:", &format!("thread.{method}()"));
    b.line(head).load_name("threads").op(Instr::GetIter);
    let top = b.here();
    let end = b.new_label();
    b.jump(Instr::ForIter, end).store_name("thread");
    b.line(head + 1)
        .load_name("thread")
        .load_method(method)
        .call(0)
        .op(Instr::PopTop);
    b.jump(Instr::JumpBackward, top).bind(end);
}

/// One part of an f-string.
enum Part<'a> {
    Lit(&'a str),
    /// Code that pushes one value, and the format spec (empty for none).
    Value(&'a dyn Fn(&mut CodeBuilder), &'a str),
}

/// `print(f"…")` at module level.
fn print_f(b: &mut CodeBuilder, line: u32, parts: &[Part<'_>]) {
    b.line(line).op(Instr::PushNull).load_name("print");
    for part in parts {
        match part {
            Part::Lit(s) => {
                b.load_str(s);
            }
            Part::Value(push, spec) => {
                push(b);
                if spec.is_empty() {
                    b.op(Instr::FormatValue {
                        conversion: Conversion::None,
                        spec: false,
                    });
                } else {
                    b.load_str(spec);
                    b.op(Instr::FormatValue {
                        conversion: Conversion::None,
                        spec: true,
                    });
                }
            }
        }
    }
    if parts.len() > 1 {
        b.op(Instr::BuildString(parts.len() as u32));
    }
    b.call(1).op(Instr::PopTop);
}

fn end_module(mut b: CodeBuilder) -> Code {
    b.load_none().op(Instr::ReturnValue);
    b.finish()
}

fn seed_refcount(p: Params) -> Program {
    let (n, iters) = (p.threads, p.iterations);
    let source = format!(
        r#"import sys
import threading

# Demonstrating that reference counts are consistent under the GIL
shared_data = {{"revenue": 142500.0, "costs": 98000.0}}


def read_data(iterations):
    for _ in range(iterations):
        # Safe – GIL ensures reference count operations are atomic
        value = shared_data["revenue"]
        _ = value + 1


threads = [threading.Thread(target=read_data, args=({iters},)) for _ in range({n})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Reference count after threading: {{sys.getrefcount(shared_data)}}")
print("No corruption – GIL protected the reference count")
"#
    );
    let mut p_ = ProgramBuilder::new("seed-refcount", source);
    let p = &mut p_;
    let mut f = CodeBuilder::function("read_data", &["iterations"], p.line("def read_data"));
    f.line(p.line("def read_data")).op(Instr::Resume(0));
    let lp = for_range_fast(
        &mut f,
        p.line("for _ in range(iterations)"),
        "iterations",
        "_",
    );
    f.line(p.line("value = shared_data"))
        .load_global("shared_data")
        .load_str("revenue")
        .op(Instr::BinarySubscr)
        .store_fast("value");
    f.line(p.line("_ = value + 1"))
        .load_fast("value")
        .load_int(1)
        .binary(BinOp::Add)
        .store_fast("_");
    end_loop(&mut f, lp);
    f.load_none().op(Instr::ReturnValue);
    let read_data = p.add(f.finish());

    let mut m = CodeBuilder::module();
    m.op(Instr::Resume(0));
    import(&mut m, 1, "sys");
    import(&mut m, 2, "threading");
    m.line(p.line("shared_data = {"))
        .load_const(Const::Float(142500.0))
        .load_const(Const::Float(98000.0))
        .load_const(Const::Tuple(vec![
            Const::Str("revenue".into()),
            Const::Str("costs".into()),
        ]))
        .op(Instr::BuildConstKeyMap(2))
        .store_name("shared_data");
    m.line(p.line("def read_data"))
        .make_function(read_data)
        .store_name("read_data");
    thread_list(
        p,
        &mut m,
        "threading",
        "Thread",
        "read_data",
        vec![Const::Int(iters as i64)],
        n,
    );
    each_thread(p, &mut m, "start");
    each_thread(p, &mut m, "join");
    let refcount = |b: &mut CodeBuilder| {
        b.op(Instr::PushNull)
            .load_name("sys")
            .load_attr("getrefcount")
            .load_name("shared_data")
            .call(1);
    };
    print_f(
        &mut m,
        p.line("Reference count after"),
        &[
            Part::Lit("Reference count after threading: "),
            Part::Value(&refcount, ""),
        ],
    );
    let l = p.line("No corruption");
    m.line(l)
        .op(Instr::PushNull)
        .load_name("print")
        .load_str("No corruption – GIL protected the reference count")
        .call(1)
        .op(Instr::PopTop);
    p_.finish(end_module(m))
}

fn seed_cpu_bound(p: Params) -> Program {
    let (n, limit) = (p.threads, p.iterations);
    let (module, class, label) = if p.processes {
        ("multiprocessing", "Process", "Processes")
    } else {
        ("threading", "Thread", "Threaded")
    };
    let why = if p.processes {
        "# Processes – each has its own GIL and heap"
    } else {
        "# Threaded – NOT faster due to GIL"
    };
    let source = format!(
        r#"import {module}
import time


# CPU-bound work – GIL prevents parallel execution
# (the seed's sum(value ** 2 for value in range(limit)), as a loop: no generators yet)
def compute_sum(limit):
    total = 0
    for value in range(limit):
        total += value ** 2
    return total


# Sequential
start_time = time.time()
for _ in range({n}):
    compute_sum({limit})
sequential_time = time.time() - start_time

{why}
start_time = time.time()
threads = [{module}.{class}(target=compute_sum, args=({limit},)) for _ in range({n})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
threaded_time = time.time() - start_time

print(f"Sequential: {{sequential_time:.2f}}s")
print(f"{label}: {{threaded_time:.2f}}s")
"#
    );
    let mut pb = ProgramBuilder::new("seed-cpu-bound", source);
    let p = &mut pb;
    let mut f = CodeBuilder::function("compute_sum", &["limit"], p.line("def compute_sum"));
    f.line(p.line("def compute_sum")).op(Instr::Resume(0));
    f.line(p.line("total = 0")).load_int(0).store_fast("total");
    let lp = for_range_fast(
        &mut f,
        p.line("    for value in range(limit):"),
        "limit",
        "value",
    );
    f.line(p.line("total += value ** 2"))
        .load_fast("total")
        .load_fast("value")
        .load_int(2)
        .binary(BinOp::Pow)
        .inplace(BinOp::Add)
        .store_fast("total");
    end_loop(&mut f, lp);
    f.line(p.line("return total"))
        .load_fast("total")
        .op(Instr::ReturnValue);
    let compute = p.add(f.finish());

    let mut m = CodeBuilder::module();
    m.op(Instr::Resume(0));
    import(&mut m, 1, module);
    import(&mut m, 2, "time");
    m.line(p.line("def compute_sum"))
        .make_function(compute)
        .store_name("compute_sum");
    let now = |b: &mut CodeBuilder| {
        b.op(Instr::PushNull)
            .load_name("time")
            .load_attr("time")
            .call(0);
    };
    let l = p.line("start_time = time.time()");
    now(m.line(l));
    m.store_name("start_time");
    let l = p.line(&format!("for _ in range({n}):"));
    m.line(l)
        .op(Instr::PushNull)
        .load_name("range")
        .load_int(i64::from(n))
        .call(1)
        .op(Instr::GetIter);
    let top = m.here();
    let end = m.new_label();
    m.jump(Instr::ForIter, end).store_name("_");
    m.line(l + 1)
        .op(Instr::PushNull)
        .load_name("compute_sum")
        .load_int(limit as i64)
        .call(1)
        .op(Instr::PopTop);
    m.jump(Instr::JumpBackward, top).bind(end);
    let l = p.line("sequential_time = ");
    now(m.line(l));
    m.load_name("start_time")
        .binary(BinOp::Sub)
        .store_name("sequential_time");
    let l = p.line(why) + 1;
    now(m.line(l));
    m.store_name("start_time");
    thread_list(
        p,
        &mut m,
        module,
        class,
        "compute_sum",
        vec![Const::Int(limit as i64)],
        n,
    );
    each_thread(p, &mut m, "start");
    each_thread(p, &mut m, "join");
    let l = p.line("threaded_time = ");
    now(m.line(l));
    m.load_name("start_time")
        .binary(BinOp::Sub)
        .store_name("threaded_time");
    let seq = |b: &mut CodeBuilder| {
        b.load_name("sequential_time");
    };
    let thr = |b: &mut CodeBuilder| {
        b.load_name("threaded_time");
    };
    print_f(
        &mut m,
        p.line("print(f\"Sequential"),
        &[
            Part::Lit("Sequential: "),
            Part::Value(&seq, ".2f"),
            Part::Lit("s"),
        ],
    );
    let label_text = format!("{label}: ");
    print_f(
        &mut m,
        p.line(&format!("print(f\"{label}")),
        &[
            Part::Lit(&label_text),
            Part::Value(&thr, ".2f"),
            Part::Lit("s"),
        ],
    );
    pb.finish(end_module(m))
}

/// The read–modify–write of the increment scenarios.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rmw {
    /// `shared_counter["value"] += 1`
    Plain,
    /// the same inside `with lock:`
    Locked,
    /// `shared_counter["value"] = bump(shared_counter["value"])`
    CallBetween,
}

fn increment(name: &str, p: Params, rmw: Rmw) -> Program {
    let (n, iters) = (p.threads, p.iterations);
    let total = u64::from(n) * iters;
    let (func, lock_line, body, extra_def, comment) = match rmw {
        Rmw::Plain => (
            "increment",
            "",
            "        # Not atomic – read + increment + write are separate bytecodes\n        shared_counter[\"value\"] += 1",
            "",
            "  # May not be {total}",
        ),
        Rmw::Locked => (
            "safe_increment",
            "lock = threading.Lock()\n",
            "        with lock:\n            shared_counter[\"value\"] += 1",
            "",
            "  # Always {total}",
        ),
        Rmw::CallBetween => (
            "increment",
            "",
            "        # read, call a Python function, write\n        shared_counter[\"value\"] = bump(shared_counter[\"value\"])",
            "def bump(value):\n    return value + 1\n\n\n",
            "  # loses updates on every version",
        ),
    };
    let comment = comment.replace("{total}", &total.to_string());
    let source = format!(
        r#"import threading

shared_counter = {{"value": 0}}
{lock_line}

{extra_def}def {func}(iterations):
    for _ in range(iterations):
{body}


threads = [threading.Thread(target={func}, args=({iters},)) for _ in range({n})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

print(f"Expected: {total}, Got: {{shared_counter['value']}}"){comment}
"#
    );
    let mut pb = ProgramBuilder::new(name, source);
    let p = &mut pb;
    let bump = (rmw == Rmw::CallBetween).then(|| {
        let l = p.line("def bump");
        let mut f = CodeBuilder::function("bump", &["value"], l);
        f.line(l).op(Instr::Resume(0));
        f.line(l + 1)
            .load_fast("value")
            .load_int(1)
            .binary(BinOp::Add)
            .op(Instr::ReturnValue);
        p.add(f.finish())
    });
    let def = p.line(&format!("def {func}"));
    let mut f = CodeBuilder::function(func, &["iterations"], def);
    f.line(def).op(Instr::Resume(0));
    let lp = for_range_fast(
        &mut f,
        p.line("for _ in range(iterations)"),
        "iterations",
        "_",
    );
    let rmw_line = p.line("shared_counter[\"value\"]");
    let plain = |f: &mut CodeBuilder| {
        f.line(rmw_line)
            .load_global("shared_counter")
            .load_str("value")
            .op(Instr::Copy(2))
            .op(Instr::Copy(2))
            .op(Instr::BinarySubscr)
            .load_int(1)
            .inplace(BinOp::Add)
            .op(Instr::Swap(3))
            .op(Instr::Swap(2))
            .op(Instr::StoreSubscr);
    };
    match rmw {
        Rmw::Plain => plain(&mut f),
        Rmw::Locked => {
            let with_line = p.line("with lock:");
            f.line(with_line)
                .load_global("lock")
                .op(Instr::BeforeWith)
                .op(Instr::PopTop);
            plain(&mut f);
            // The normal exit of the with block: __exit__(None, None, None), then 3.11's jump
            // over the exception handler (not modelled, so it lands on the next instruction).
            f.line(with_line)
                .load_none()
                .load_none()
                .load_none()
                .call(2)
                .op(Instr::PopTop);
            let after = f.new_label();
            f.jump(Instr::JumpForward, after).bind(after);
        }
        Rmw::CallBetween => {
            f.line(rmw_line)
                .load_global_null("bump")
                .load_global("shared_counter")
                .load_str("value")
                .op(Instr::BinarySubscr)
                .call(1)
                .load_global("shared_counter")
                .load_str("value")
                .op(Instr::StoreSubscr);
        }
    }
    end_loop(&mut f, lp);
    f.load_none().op(Instr::ReturnValue);
    let worker = p.add(f.finish());

    let mut m = CodeBuilder::module();
    m.op(Instr::Resume(0));
    import(&mut m, 1, "threading");
    m.line(p.line("shared_counter = {"))
        .load_str("value")
        .load_int(0)
        .op(Instr::BuildMap(1))
        .store_name("shared_counter");
    if rmw == Rmw::Locked {
        m.line(p.line("lock = threading.Lock()"))
            .op(Instr::PushNull)
            .load_name("threading")
            .load_attr("Lock")
            .call(0)
            .store_name("lock");
    }
    if let Some(bump) = bump {
        m.line(p.line("def bump"))
            .make_function(bump)
            .store_name("bump");
    }
    m.line(def).make_function(worker).store_name(func);
    thread_list(
        p,
        &mut m,
        "threading",
        "Thread",
        func,
        vec![Const::Int(iters as i64)],
        n,
    );
    each_thread(p, &mut m, "start");
    each_thread(p, &mut m, "join");
    let got = |b: &mut CodeBuilder| {
        b.load_name("shared_counter")
            .load_str("value")
            .op(Instr::BinarySubscr);
    };
    let expected = format!("Expected: {total}, Got: ");
    print_f(
        &mut m,
        p.line("print(f\"Expected"),
        &[Part::Lit(&expected), Part::Value(&got, "")],
    );
    pb.finish(end_module(m))
}

fn io_bound(p: Params) -> Program {
    let (n, calls) = (p.threads, p.iterations);
    let one = calls as f64 * 0.1;
    let all = one * f64::from(n);
    let source = format!(
        r#"import threading
import time


def io_task(calls):
    for _ in range(calls):
        time.sleep(0.1)  # blocking I/O: releases the GIL


start_time = time.time()
threads = [threading.Thread(target=io_task, args=({calls},)) for _ in range({n})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
elapsed = time.time() - start_time

print(f"{n} threads x {calls} sleep(0.1): {{elapsed:.2f}}s (one thread's share: {one:.2}s; one after another: {all:.2}s)")
"#
    );
    let mut pb = ProgramBuilder::new("io-bound", source);
    let p = &mut pb;
    let def = p.line("def io_task");
    let mut f = CodeBuilder::function("io_task", &["calls"], def);
    f.line(def).op(Instr::Resume(0));
    let lp = for_range_fast(&mut f, p.line("for _ in range(calls)"), "calls", "_");
    f.line(p.line("time.sleep(0.1)"))
        .load_global_null("time")
        .load_attr("sleep")
        .load_const(Const::Float(0.1))
        .call(1)
        .op(Instr::PopTop);
    end_loop(&mut f, lp);
    f.load_none().op(Instr::ReturnValue);
    let task = p.add(f.finish());

    let mut m = CodeBuilder::module();
    m.op(Instr::Resume(0));
    import(&mut m, 1, "threading");
    import(&mut m, 2, "time");
    m.line(def).make_function(task).store_name("io_task");
    let now = |b: &mut CodeBuilder| {
        b.op(Instr::PushNull)
            .load_name("time")
            .load_attr("time")
            .call(0);
    };
    now(m.line(p.line("start_time = time.time()")));
    m.store_name("start_time");
    thread_list(
        p,
        &mut m,
        "threading",
        "Thread",
        "io_task",
        vec![Const::Int(calls as i64)],
        n,
    );
    each_thread(p, &mut m, "start");
    each_thread(p, &mut m, "join");
    now(m.line(p.line("elapsed = ")));
    m.load_name("start_time")
        .binary(BinOp::Sub)
        .store_name("elapsed");
    let elapsed = |b: &mut CodeBuilder| {
        b.load_name("elapsed");
    };
    let head = format!("{n} threads x {calls} sleep(0.1): ");
    let tail = format!("s (one thread's share: {one:.2}s; one after another: {all:.2}s)");
    print_f(
        &mut m,
        p.line("print(f\""),
        &[
            Part::Lit(&head),
            Part::Value(&elapsed, ".2f"),
            Part::Lit(&tail),
        ],
    );
    pb.finish(end_module(m))
}

/// I/O calls the convoy's I/O thread makes, alone and beside the CPU-bound thread.
const CONVOY_CALLS: u32 = 10;

fn convoy(p: Params) -> Program {
    let iterations = p.iterations;
    let calls = CONVOY_CALLS;
    let source = format!(
        r#"import sys
import threading
import time

per_call = {{}}


def io_task(calls, label):
    start = time.perf_counter()
    for _ in range(calls):
        time.sleep(0.0001)  # blocking I/O that completes at once
    per_call[label] = (time.perf_counter() - start) / calls


def cpu_task(iterations):
    total = 0
    for i in range(iterations):
        total += i


io_task({calls}, "alone")
cpu = threading.Thread(target=cpu_task, args=({iterations},))
io = threading.Thread(target=io_task, args=({calls}, "beside"))
cpu.start()
io.start()
io.join()
cpu.join()

print(f"I/O call alone: {{per_call['alone'] * 1000:.2f}} ms")
print(f"I/O call beside a CPU-bound thread: {{per_call['beside'] * 1000:.2f}} ms")
print(f"switch interval: {{sys.getswitchinterval() * 1000:.2f}} ms")
"#
    );
    let mut pb = ProgramBuilder::new("convoy", source);
    let p = &mut pb;
    let perf = |b: &mut CodeBuilder| {
        b.load_global_null("time").load_attr("perf_counter").call(0);
    };
    let def = p.line("def io_task");
    let mut f = CodeBuilder::function("io_task", &["calls", "label"], def);
    f.line(def).op(Instr::Resume(0));
    perf(f.line(p.line("start = time.perf_counter()")));
    f.store_fast("start");
    let lp = for_range_fast(&mut f, p.line("for _ in range(calls)"), "calls", "_");
    f.line(p.line("time.sleep(0.0001)"))
        .load_global_null("time")
        .load_attr("sleep")
        .load_const(Const::Float(0.0001))
        .call(1)
        .op(Instr::PopTop);
    end_loop(&mut f, lp);
    perf(f.line(p.line("per_call[label] =")));
    f.load_fast("start")
        .binary(BinOp::Sub)
        .load_fast("calls")
        .binary(BinOp::TrueDiv)
        .load_global("per_call")
        .load_fast("label")
        .op(Instr::StoreSubscr);
    f.load_none().op(Instr::ReturnValue);
    let io_task = p.add(f.finish());

    let def = p.line("def cpu_task");
    let mut f = CodeBuilder::function("cpu_task", &["iterations"], def);
    f.line(def).op(Instr::Resume(0));
    f.line(p.line("total = 0")).load_int(0).store_fast("total");
    let lp = for_range_fast(
        &mut f,
        p.line("for i in range(iterations)"),
        "iterations",
        "i",
    );
    f.line(p.line("total += i"))
        .load_fast("total")
        .load_fast("i")
        .inplace(BinOp::Add)
        .store_fast("total");
    end_loop(&mut f, lp);
    f.load_none().op(Instr::ReturnValue);
    let cpu_task = p.add(f.finish());

    let mut m = CodeBuilder::module();
    m.op(Instr::Resume(0));
    import(&mut m, 1, "sys");
    import(&mut m, 2, "threading");
    import(&mut m, 3, "time");
    m.line(p.line("per_call = {}"))
        .op(Instr::BuildMap(0))
        .store_name("per_call");
    m.line(p.line("def io_task"))
        .make_function(io_task)
        .store_name("io_task");
    m.line(p.line("def cpu_task"))
        .make_function(cpu_task)
        .store_name("cpu_task");
    m.line(p.line(&format!("io_task({calls}, \"alone\")")))
        .op(Instr::PushNull)
        .load_name("io_task")
        .load_int(i64::from(calls))
        .load_str("alone")
        .call(2)
        .op(Instr::PopTop);
    let thread = |m: &mut CodeBuilder, line: u32, var: &str, target: &str, args: Vec<Const>| {
        m.line(line)
            .op(Instr::PushNull)
            .load_name("threading")
            .load_attr("Thread")
            .load_name(target)
            .load_const(Const::Tuple(args))
            .call_kw(2, &["target", "args"])
            .store_name(var);
    };
    thread(
        &mut m,
        p.line("cpu = threading"),
        "cpu",
        "cpu_task",
        vec![Const::Int(iterations as i64)],
    );
    thread(
        &mut m,
        p.line("io = threading"),
        "io",
        "io_task",
        vec![Const::Int(i64::from(calls)), Const::Str("beside".into())],
    );
    for (var, method) in [
        ("cpu", "start"),
        ("io", "start"),
        ("io", "join"),
        ("cpu", "join"),
    ] {
        m.line(p.line(&format!("{var}.{method}()")))
            .load_name(var)
            .load_method(method)
            .call(0)
            .op(Instr::PopTop);
    }
    for (label, key) in [
        ("I/O call alone: ", "alone"),
        ("I/O call beside a CPU-bound thread: ", "beside"),
    ] {
        let value = |b: &mut CodeBuilder| {
            b.load_name("per_call")
                .load_str(key)
                .op(Instr::BinarySubscr)
                .load_int(1000)
                .binary(BinOp::Mul);
        };
        print_f(
            &mut m,
            p.line(&format!("print(f\"{label}")),
            &[
                Part::Lit(label),
                Part::Value(&value, ".2f"),
                Part::Lit(" ms"),
            ],
        );
    }
    let interval = |b: &mut CodeBuilder| {
        b.op(Instr::PushNull)
            .load_name("sys")
            .load_attr("getswitchinterval")
            .call(0)
            .load_int(1000)
            .binary(BinOp::Mul);
    };
    print_f(
        &mut m,
        p.line("print(f\"switch interval"),
        &[
            Part::Lit("switch interval: "),
            Part::Value(&interval, ".2f"),
            Part::Lit(" ms"),
        ],
    );
    pb.finish(end_module(m))
}
