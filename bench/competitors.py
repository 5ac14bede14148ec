"""Run gilcheck's conformance programs through two Python interleaving explorers.

Two modes:

  competitors.py one --tool TOOL --program FILE.py --threads T --iterations N
      Explore one program with one tool (frontrun or interleave-test) and print
      one JSON line: verdict, executions explored, elapsed seconds, rate.

  competitors.py all --programs DIR --threads T --iterations N --timeout S --out FILE.md
      Run `one` for every program and tool in a child process (so a hung
      exploration is killed after S seconds), print a Markdown table and write
      it, with notes, to FILE.md.

How a program is driven: its source is parsed; the top-level statements before
`threads = ...` (imports, the shared state, the worker functions) are compiled
with the program's own file name (so both tools trace it as user code, with the
real line numbers) and executed afresh for every explored execution; the thread
targets are read from the `threads = ...` statement (`[Thread(target=work, ...)
for _ in range(K)]` becomes T copies of `work`; an explicit list keeps its
targets); each target is called with N; afterwards the expression the program's
final `print(f"Got: {...}")` prints is evaluated and compared with its
`# expect:` expression evaluated at T and N. A thread made by a class deriving from
`threading.Thread` (`[Worker(10000) for _ in range(K)]`) becomes a function that makes the
object with its integer arguments replaced by N and calls its `run()`.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, List, Optional

TOOLS = ("frontrun", "interleave-test")
DIST = {"frontrun": "frontrun", "interleave-test": "interleave-test"}


# --------------------------------------------------------------------------------------
# Loading a conformance program
# --------------------------------------------------------------------------------------


@dataclass
class Program:
    path: str
    code: Any  # code object of the statements before `threads = ...`
    targets: List[str]  # worker function names, one per thread
    got_expr: str  # what the program prints after "Got: "
    expected: int
    threads: int
    iterations: int

    def setup(self) -> dict:
        """Fresh shared state: run the program's statements before `threads = ...`."""
        ns = {"__name__": "conformance_" + os.path.basename(self.path)[:-3], "__file__": self.path}
        exec(self.code, ns)
        return ns

    def got(self, ns: dict) -> Any:
        return eval(self.got_expr, ns)

    def holds(self, ns: dict) -> bool:
        return self.got(ns) == self.expected


def _thread_target(call: ast.expr) -> str:
    if not isinstance(call, ast.Call):
        raise ValueError("thread creation is not a call: " + ast.unparse(call))
    for kw in call.keywords:
        if kw.arg == "target" and isinstance(kw.value, ast.Name):
            return kw.value.id
    raise ValueError("no target=NAME in " + ast.unparse(call))


def _thread_classes(body: list) -> set:
    """The classes of `body` that derive from threading.Thread (or from one of them)."""
    out: set = set()
    for stmt in body:
        if isinstance(stmt, ast.ClassDef):
            for b in stmt.bases:
                name = b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", None)
                if name == "Thread" or name in out:
                    out.add(stmt.name)
    return out


def _subclass_worker(call: ast.expr, classes: set, extra: list) -> Optional[str]:
    """For `Worker(10000, …)` of a Thread subclass: a worker function, added to `extra`, that
    makes the object with the integer literals replaced by its argument and runs it."""
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in classes):
        return None

    class ToN(ast.NodeTransformer):
        def visit_Constant(self, node):
            if isinstance(node.value, int) and not isinstance(node.value, bool):
                return ast.Name(id="n", ctx=ast.Load())
            return node

    made = ast.unparse(ToN().visit(ast.parse(ast.unparse(call), mode="eval")).body)
    name = "_driver_" + call.func.id
    extra.append(ast.parse(f"def {name}(n):\n    {made}.run()\n").body[0])
    return name


def load_program(path: str, threads: int, iterations: int) -> Program:
    path = os.path.abspath(path)
    with open(path) as f:
        source = f.read()
    m = re.search(r"^# expect:\s*(.+)$", source, re.M)
    if not m:
        raise ValueError("no '# expect:' line")
    tree = ast.parse(source, path)
    cut = None
    for i, stmt in enumerate(tree.body):
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id == "threads"
        ):
            cut = i
            break
    if cut is None:
        raise ValueError("no top-level `threads = ...` statement")
    value = tree.body[cut].value
    classes = _thread_classes(tree.body[:cut])
    extra: list = []
    if isinstance(value, ast.ListComp) and (sub := _subclass_worker(value.elt, classes, extra)):
        targets = [sub] * threads
    elif isinstance(value, ast.ListComp):
        targets = [_thread_target(value.elt)] * threads
    elif isinstance(value, ast.List):
        targets = [_thread_target(e) for e in value.elts]  # explicit list: its own thread count
    else:
        raise ValueError("unrecognised `threads = ...`: " + ast.unparse(value))
    got_expr = None
    for stmt in reversed(tree.body):
        if (
            isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name)
            and stmt.value.func.id == "print"
            and stmt.value.args
            and isinstance(stmt.value.args[0], ast.JoinedStr)
        ):
            for part in stmt.value.args[0].values:
                if isinstance(part, ast.FormattedValue):
                    got_expr = ast.unparse(part.value)
            break
    if got_expr is None:
        raise ValueError('no final print(f"Got: {...}")')
    t = len(targets)
    expected = eval(m.group(1), {"T": t, "N": iterations})
    prefix = ast.Module(body=tree.body[:cut] + extra, type_ignores=[])
    ast.fix_missing_locations(prefix)
    code = compile(prefix, path, "exec")
    return Program(path, code, targets, got_expr, expected, t, iterations)


# --------------------------------------------------------------------------------------
# The two tools
# --------------------------------------------------------------------------------------


def run_frontrun(prog: Program, budget: float) -> dict:
    import frontrun

    def make_worker(name: str) -> Callable[[dict], None]:
        def worker(ns: dict) -> None:
            ns[name](prog.iterations)

        return worker

    observed: list = []

    def invariant(ns: dict) -> bool:
        ok = prog.holds(ns)
        if not ok:
            observed.append(prog.got(ns))
        return ok

    t0 = time.perf_counter()
    result = frontrun.explore(
        setup=prog.setup,
        workers=[make_worker(n) for n in prog.targets],
        invariant=invariant,
        strategy="dpor",  # the default: systematic DPOR over bytecode-level accesses
        preemption_bound=2,  # the default
        stop_on_first=True,  # the default
        reproduce_on_failure=0,  # don't re-run the counterexample (keeps the rate honest)
        detect_io=False,  # no I/O in these programs
        total_timeout=budget,
        timeout_per_run=10.0,
        deadlock_timeout=2.0,
    )
    elapsed = time.perf_counter() - t0
    explanation = result.explanation or ""
    if result.property_holds is True:
        verdict = "no race"
    elif result.property_holds is False:
        if "deadlock" in explanation.lower():
            verdict = "deadlock"
        elif observed:
            verdict = "race (Got %s, expected %s)" % (observed[0], prog.expected)
        else:
            verdict = "fails: " + (explanation.strip().splitlines() or ["?"])[0]
    else:
        verdict = "inconclusive: %s" % (result.inconclusive_reason,)
    return {
        "verdict": verdict,
        "executions": result.num_explored,
        "elapsed": elapsed,
        "detail": explanation.strip().splitlines()[0] if explanation.strip() else "",
    }


def run_interleave_test(prog: Program, budget: float) -> dict:
    import interleave_test as it

    import threading

    observed: list = []

    def model() -> None:
        ns = prog.setup()  # threading.Lock is patched inside the run
        ts = [threading.Thread(target=ns[n], args=(prog.iterations,)) for n in prog.targets]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        got = prog.got(ns)
        if got != prog.expected:
            observed.append(got)
        assert got == prog.expected, "Got %r, expected %r" % (got, prog.expected)

    deadline = time.perf_counter() + budget

    class BudgetedDFS(it.DFSStrategy):
        """interleave-test's own DFS strategy, stopped when the time budget is spent."""

        def more(self):
            if time.perf_counter() > deadline:
                return False
            return super().more()

    t0 = time.perf_counter()
    result = it.explore(
        model,
        strategy=BudgetedDFS(max_preemptions=2),  # "dfs": bounded-exhaustive, CHESS-style, default bound 2
        granularity="opcode",  # the default: a switch point before every bytecode instruction
        iterations=1_000_000,  # cap on schedules; the per-program timeout is the real bound
        seed=0,
        timeout=10.0,  # per schedule, then reported as a hang
        include=[os.path.dirname(prog.path)],  # trace only the conformance program
        raise_on_failure=False,
    )
    elapsed = time.perf_counter() - t0
    f = result.failure
    if f is None:
        verdict = "no race" + ("" if result.exhausted else " (budget spent, not exhausted)")
    elif f.kind == "deadlock":
        verdict = "deadlock"
    elif f.kind == "exception" and observed:
        verdict = "race (Got %s, expected %s)" % (observed[-1], prog.expected)
    else:
        verdict = "%s: %r" % (f.kind, f.exception)
    return {
        "verdict": verdict,
        "executions": result.schedules_run,
        "elapsed": elapsed,
        "exhausted": result.exhausted,
        "detail": (f.format(max_steps=0).splitlines()[0] if f is not None else ""),
    }


def cmd_one(args: argparse.Namespace) -> int:
    prog = load_program(args.program, args.threads, args.iterations)
    runner = {"frontrun": run_frontrun, "interleave-test": run_interleave_test}[args.tool]
    out = runner(prog, args.budget)
    out["rate"] = out["executions"] / out["elapsed"] if out["elapsed"] > 0 else None
    out["tool"] = args.tool
    out["program"] = os.path.basename(prog.path)
    out["threads"] = prog.threads
    out["iterations"] = prog.iterations
    out["expected"] = prog.expected
    sys.stdout.flush()
    print("RESULT " + json.dumps(out), flush=True)
    return 0


# --------------------------------------------------------------------------------------
# Driving everything, and the report
# --------------------------------------------------------------------------------------


def version_of(tool: str) -> Optional[str]:
    try:
        return metadata.version(DIST[tool])
    except metadata.PackageNotFoundError:
        return None


def run_child(tool: str, program: str, args: argparse.Namespace) -> dict:
    # frontrun.explore() refuses to run outside its CLI wrapper (it sets FRONTRUN_ACTIVE=1
    # and LD_PRELOADs its I/O interceptor), so frontrun's child runs under `frontrun python`.
    prefix = [os.path.join(os.path.dirname(sys.executable), "frontrun"), "python"] if tool == "frontrun" else [sys.executable]
    cmd = prefix + [
        os.path.abspath(__file__),
        "one",
        "--tool", tool,
        "--program", program,
        "--threads", str(args.threads),
        "--iterations", str(args.iterations),
        "--budget", str(max(1.0, args.timeout - 5.0)),
    ]
    t0 = time.perf_counter()
    # Own process group, so a timeout ends the child and anything it started (the frontrun
    # wrapper runs python as its child) -- and only those.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"verdict": "timeout after %gs" % args.timeout, "executions": None, "rate": None,
                "elapsed": time.perf_counter() - t0}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"verdict": "error: " + tail[:160], "executions": None, "rate": None,
            "elapsed": time.perf_counter() - t0}


def fmt_rate(r: dict) -> str:
    if r.get("rate") is None:
        return "–"
    return "%.0f (%d in %.2fs)" % (r["rate"], r["executions"], r["elapsed"])


def cmd_all(args: argparse.Namespace) -> int:
    programs = sorted(
        os.path.join(args.programs, f) for f in os.listdir(args.programs) if f.endswith(".py")
    )
    versions = {t: version_of(t) for t in TOOLS}
    for t in TOOLS:
        if versions[t] is None:
            print("NOTE: %s is not installed in this environment; its column says so." % t, flush=True)
    results = {}
    for p in programs:
        name = os.path.basename(p)
        for t in TOOLS:
            if versions[t] is None:
                r = {"verdict": "not installed", "rate": None}
            else:
                r = run_child(t, p, args)
            results[(name, t)] = r
            print("  %-28s %-16s %-40s %s" % (name, t, r["verdict"], fmt_rate(r)), flush=True)

    header = (
        "| program | frontrun verdict | frontrun executions/s | interleave-test verdict | "
        "interleave-test executions/s |\n|---|---|---|---|---|\n"
    )
    rows = []
    for p in programs:
        name = os.path.basename(p)
        fr, it_ = results[(name, "frontrun")], results[(name, "interleave-test")]
        rows.append("| `%s` | %s | %s | %s | %s |" % (name, fr["verdict"], fmt_rate(fr), it_["verdict"], fmt_rate(it_)))
    table = header + "\n".join(rows) + "\n"
    print()
    print(table)

    with open(args.notes) as f:
        notes = f.read()
    env = "CPython %s (%s), frontrun %s, interleave-test %s; %d thread(s) × %d iteration(s) per program " \
          "(%s keeps its own 2 threads); per-(program, tool) timeout %gs; run %s." % (
              platform.python_version(), sys.executable.replace(os.getcwd() + os.sep, ""),
              versions["frontrun"] or "NOT INSTALLED", versions["interleave-test"] or "NOT INSTALLED",
              args.threads, args.iterations, "lock_order_inversion.py", args.timeout,
              time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    doc = notes.replace("{{ENV}}", env).replace("{{TABLE}}", table)
    with open(args.out, "w") as f:
        f.write(doc)
    print("wrote " + args.out)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    one = sub.add_parser("one")
    one.add_argument("--tool", choices=TOOLS, required=True)
    one.add_argument("--program", required=True)
    one.add_argument("--threads", type=int, default=2)
    one.add_argument("--iterations", type=int, default=2)
    one.add_argument("--budget", type=float, default=55.0, help="seconds the tool may search")
    al = sub.add_parser("all")
    al.add_argument("--programs", required=True)
    al.add_argument("--threads", type=int, default=2)
    al.add_argument("--iterations", type=int, default=2)
    al.add_argument("--timeout", type=float, default=60.0)
    al.add_argument("--notes", required=True, help="Markdown template with {{ENV}} and {{TABLE}}")
    al.add_argument("--out", required=True)
    args = ap.parse_args()
    return cmd_one(args) if args.cmd == "one" else cmd_all(args)


if __name__ == "__main__":
    sys.exit(main())
