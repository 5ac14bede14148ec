//! The `gilcheck` command line: `list`, `run`, `check`, `replay`, `dis`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use gilcheck::compile::{self, Change, Shrink};
use gilcheck::explore::engine::{self, Budget, CheckOptions, Engine, Verdict};
use gilcheck::explore::world::Table;
use gilcheck::explore::{Header, Schedule, report};
use gilcheck::gil::{self, IntervalWait};
use gilcheck::platform::Std;
use gilcheck::scenarios::{self, Params, SCENARIOS, Scenario};
use gilcheck::vm::policy::Mark;
use gilcheck::vm::threaded::{self, RunOptions};
use gilcheck::vm::{Policy, Program};
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

/// The first error met writing to stdout. Once there is one, nothing more is written, and
/// `main` exits with code 2.
static STDOUT_ERROR: Mutex<Option<io::Error>> = Mutex::new(None);

/// Writes `text` to stdout, each complete line without its trailing spaces (no line gilcheck
/// prints ends with a space), and records the first write error instead of panicking.
fn emit(text: &str) {
    let mut failed = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
    if failed.is_some() {
        return;
    }
    let mut out = io::stdout().lock();
    let mut result = Ok(());
    for piece in text.split_inclusive('\n') {
        result = match piece.strip_suffix('\n') {
            Some(line) => out
                .write_all(line.trim_end_matches(' ').as_bytes())
                .and_then(|()| out.write_all(b"\n")),
            None => out.write_all(piece.as_bytes()),
        };
        if result.is_err() {
            break;
        }
    }
    if let Err(e) = result {
        *failed = Some(e);
    }
}

/// Flushes stdout, recording an error as `emit` does.
fn flush_stdout() {
    let mut failed = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
    if failed.is_none()
        && let Err(e) = io::stdout().flush()
    {
        *failed = Some(e);
    }
}

/// `println!` through [`emit`].
macro_rules! out {
    () => {
        emit("\n")
    };
    ($($arg:tt)*) => {
        emit(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`emit`].
macro_rules! out_raw {
    ($($arg:tt)*) => {
        emit(&format!($($arg)*))
    };
}

/// An error's message without the ` (os error N)` that `io::Error` appends.
fn describe(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

#[derive(Parser)]
#[command(
    name = "gilcheck",
    version,
    about = "A model-checked specification of CPython's GIL and reference counting",
    long_about = "A model-checked specification of CPython's GIL and reference counting.\n\n\
                  Runs the seed's programs on real threads (`run`), explores their schedules per CPython \
                  version (`check`), replays a counterexample (`replay`) and shows where each version may \
                  switch threads (`dis`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Shape {
    /// A Python file (FILE.py), or a built-in scenario: a short name for one of the files in
    /// examples/ (see `gilcheck list`).
    #[arg(value_name = "FILE.py|SCENARIO")]
    scenario: String,
    /// Whose poll points apply: 3.8, 3.9, 3.10, 3.11, 3.12, 3.13, or `every` (a switch may
    /// fall between any two instructions).
    #[arg(long = "python", default_value = "3.13", value_parser = parse_policy)]
    python: Policy,
    /// Threads, 1 to 64 (where the scenario has a number of threads). On a FILE.py: the
    /// literal K of the range(K) that creates its threads becomes N (the verdict lists each
    /// literal replaced).
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = whole::<u32>("--threads", 1, 64, ""))]
    threads: Option<u32>,
    /// Iterations, 1 to 100 000 000 (what they count depends on the scenario; see `gilcheck
    /// list`). On a FILE.py: the integer literals its threads are started with (args=(K, …))
    /// and its thread targets are called with become N.
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = whole::<u64>("--iterations", 1, MAX_ITERATIONS, ""))]
    iterations: Option<u64>,
}

const MAX_ITERATIONS: u64 = 100_000_000;
const MAX_PREEMPTIONS: u64 = 1_000;
/// loom 0.7 keeps its preemption bound in a `u8`: `rt::Execution::new` converts it with
/// `try_into().expect("preemption_bound too big")`, so 256 and more panic inside loom.
const MAX_LOOM_PREEMPTIONS: u64 = u8::MAX as u64;
const MAX_EXECUTIONS: u64 = 1_000_000_000_000;
const MAX_STEPS: u64 = engine::MAX_STEPS_CEILING as u64;

/// A value parser for a whole number from `lo` to `hi`. Negative numbers, numbers past `hi`
/// (however many digits) and text that is not a number are refused with the range in the
/// message (clap then exits with code 2).
fn whole<T>(
    name: &'static str,
    lo: u64,
    hi: u64,
    note: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    move |s: &str| {
        let range = format!(
            "{name} takes a whole number from {} to {}{note}",
            engine::thousands_u64(lo),
            engine::thousands_u64(hi)
        );
        let unsigned = s.strip_prefix('+').unwrap_or(s);
        let (negative, digits) = match unsigned.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, unsigned),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("not a whole number: {range}"));
        }
        let n = if negative && digits.bytes().any(|b| b != b'0') {
            None
        } else {
            digits.parse::<u64>().ok()
        };
        n.filter(|n| (lo..=hi).contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| format!("out of range: {range}"))
    }
}

/// `--switch-interval`: seconds, refused exactly when `sys.setswitchinterval` refuses them
/// (`<= 0.0`, so -inf too) or when they are not a number.
fn parse_switch_interval(s: &str) -> Result<f64, String> {
    const RANGE: &str = "--switch-interval takes a number of seconds > 0, nan and inf included";
    let x: f64 = s.parse().map_err(|_| format!("not a number: {RANGE}"))?;
    gil::interval_micros(x)
        .map_err(|e| format!("{RANGE}; sys.setswitchinterval({s}) raises {e}"))?;
    Ok(x)
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    s.parse()
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EngineArg {
    /// Depth-first search, preemption bound raised 0, 1, 2, … (minimal counterexamples)
    Dfs,
    /// Probabilistic Concurrency Testing (sampled)
    Pct,
    /// A uniformly random choice at every decision (sampled)
    Random,
    /// loom over the real-thread driver and the runtime's real GIL (C11 memory model)
    Loom,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in scenarios.
    List,
    /// Run a scenario on real threads, with the runtime's GIL and refcount checks on.
    Run {
        #[command(flatten)]
        shape: Shape,
        /// The GIL's switch interval in seconds, as `sys.setswitchinterval`: any number > 0,
        /// nan and inf included (0, negatives and -inf are refused).
        ///
        /// Stored as CPython 3.8–3.13 store it on x86-64: whole microseconds, truncated, inf
        /// and 2^64 µs or more as 0, nan as 2^63 µs. A waiter waits at least 1 µs; beyond a
        /// year it waits without a timeout (it never asks for the GIL), and from 2^63 µs its
        /// wait ends at once, as on CPython 3.12 and 3.13 (spec/gil.md, GIL-8). The run's
        /// footer says which applies.
        #[arg(long, value_name = "SECONDS", default_value = "0.005", allow_hyphen_values = true, value_parser = parse_switch_interval)]
        switch_interval: f64,
        /// seed-cpu-bound: run the workers as processes (one runtime each: its own GIL and heap).
        #[arg(long)]
        processes: bool,
    },
    /// Explore a scenario's schedules; print a replayable counterexample or what was covered.
    Check {
        #[command(flatten)]
        shape: Shape,
        /// The search (default: dfs; for a FILE.py as written, without --threads or
        /// --iterations, pct with 10 executions: every schedule of a full-size program is out
        /// of reach, and the verdict says it is sampled).
        #[arg(long, value_enum)]
        engine: Option<EngineArg>,
        /// dfs: the largest preemption bound, 0 to 1 000 (default: raise it until every
        /// schedule is covered); pct: priority change points per execution, 0 to 1 000
        /// (default 2); loom: loom's preemption bound, 0 to 255 (default 2; loom 0.7 keeps it
        /// in a u8); random: does not apply.
        #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = whole::<u64>("--preemptions", 0, MAX_PREEMPTIONS, " (--engine loom: 0 to 255)"))]
        preemptions: Option<u64>,
        /// Stop after this many executions, 1 to 1 000 000 000 000 (dfs default 100 000 000;
        /// pct, random and loom 10 000).
        #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = whole::<u64>("--max-executions", 1, MAX_EXECUTIONS, ""))]
        max_executions: Option<u64>,
        /// Seed of the pct and random engines, 0 to 18 446 744 073 709 551 615.
        #[arg(long, value_name = "S", default_value = "0", allow_hyphen_values = true, value_parser = whole::<u64>("--seed", 0, u64::MAX, ""))]
        seed: u64,
        /// The step budget of one execution, 1 to 100 000 000: an execution that runs this
        /// many steps stops, and the verdict is inconclusive (exit 3). Memory grows with it
        /// (about 8 bytes a step for the schedule).
        #[arg(long, value_name = "N", default_value = "5000000", allow_hyphen_values = true, value_parser = whole::<u64>("--max-steps", 1, MAX_STEPS, ""))]
        max_steps: u64,
        /// Print every step of a counterexample (default: fold runs without shared accesses).
        #[arg(long)]
        full: bool,
        /// dfs: execute every interleaving, also those that reach a state explored before
        /// (slower; counts interleavings as loom does).
        #[arg(long)]
        no_state_cache: bool,
        /// dfs: explore a preemption before every instruction, also before those no other
        /// thread can see (turns the partial-order reduction off; slower, for comparison).
        #[arg(long)]
        no_reduction: bool,
        /// dfs: re-run every execution from the start instead of taking it up from the state
        /// saved where it branches (slower, for comparison: the same schedules are explored).
        #[arg(long)]
        stateless: bool,
        /// dfs: OS threads for the unbounded search, 1 to 256 (default 1). The verdict is the
        /// one --jobs 1 gives; a pass counts the states and executions of all jobs. Not faster
        /// yet: the jobs share only the states explored completely, so they redo each other's
        /// work (see BENCHMARKS.md).
        #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = whole::<u64>("--jobs", 1, 256, ""))]
        jobs: Option<u64>,
        /// dfs: PCT executions (from --seed) between the searches under bounds 0 and 1, 0 to
        /// 1 000 000; 0 turns the pass off. A failure they find is minimized as pct's are.
        /// Default: 32 when the first schedule has at least 50 000 steps, else 0.
        #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = whole::<u64>("--sample", 0, 1_000_000, ""))]
        sample: Option<u64>,
        /// dfs: search only shard I of N disjoint parts of the unbounded search (1 ≤ I ≤ N ≤
        /// 4 096) and print what it found as JSON on stdout; `gilcheck merge` combines the
        /// files of all N shards into one verdict. A failure is reported as found, not
        /// minimized.
        #[arg(long, value_name = "I/N", allow_hyphen_values = true, value_parser = gilcheck::explore::shard::parse_shard)]
        shard: Option<(usize, usize)>,
        /// Stop the search after this many seconds, 1 to 31 536 000, with a verdict that says
        /// what was covered (not exhaustive). Not for --engine loom.
        #[arg(long, value_name = "SECONDS", allow_hyphen_values = true, value_parser = whole::<u64>("--time-limit", 1, 31_536_000, ""))]
        time_limit: Option<u64>,
        /// dfs: stop once the phase under way has reached this many distinct states, 1 to
        /// 1 000 000 000 000 (with the state cache).
        #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = whole::<u64>("--max-states", 1, MAX_EXECUTIONS, ""))]
        max_states: Option<u64>,
        /// Stop once the process's resident memory reaches this many MiB, 16 to 16 777 216
        /// (read from /proc/self/status; Linux).
        #[arg(long, value_name = "MIB", allow_hyphen_values = true, value_parser = whole::<u64>("--max-memory", 16, 16_777_216, ""))]
        max_memory: Option<u64>,
    },
    /// Re-execute exactly the schedule of a counterexample and print it again.
    Replay {
        #[command(flatten)]
        shape: Shape,
        /// The schedule string printed by `check`.
        #[arg(long)]
        schedule: String,
        /// Print every step (default: fold runs without shared accesses).
        #[arg(long)]
        full: bool,
        /// The step budget, 1 to 100 000 000, as given to `check` (the printed replay line
        /// names it when it matters).
        #[arg(long, value_name = "N", default_value = "5000000", allow_hyphen_values = true, value_parser = whole::<u64>("--max-steps", 1, MAX_STEPS, ""))]
        max_steps: u64,
    },
    /// Combine the JSON files of `check --shard I/N` (every shard of one search, each once)
    /// into one verdict.
    Merge {
        /// The shard files.
        #[arg(required = true, value_name = "FILE.json")]
        files: Vec<std::path::PathBuf>,
    },
    /// Show a scenario's bytecode, marking after which instructions the version may switch.
    Dis {
        #[command(flatten)]
        shape: Shape,
    },
}

/// How a command ended badly.
enum Failure {
    /// Bad input: exit 2.
    BadInput(String),
    /// A failure the command was asked to look for: exit 1 (already printed).
    Found,
    /// Neither a pass nor a failure: an execution ran out of its step budget (exit 3).
    Inconclusive,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List => {
            list();
            Ok(())
        }
        Command::Run {
            shape,
            switch_interval,
            processes,
        } => run(&shape, switch_interval, processes),
        Command::Check {
            shape,
            engine,
            preemptions,
            max_executions,
            seed,
            max_steps,
            full,
            no_state_cache,
            no_reduction,
            stateless,
            jobs,
            sample,
            shard,
            time_limit,
            max_states,
            max_memory,
        } => {
            let limits = Limits {
                preemptions,
                max_executions,
                seed,
                max_steps: max_steps as usize,
                state_cache: !no_state_cache,
                reduce: !no_reduction,
                stateful: !stateless,
                jobs,
                sample,
                shard,
                budget: Budget {
                    time_limit: time_limit.map(std::time::Duration::from_secs),
                    max_states: max_states.map(|n| n.min(usize::MAX as u64) as usize),
                    max_memory_mib: max_memory,
                },
            };
            check(&shape, engine, limits, full)
        }
        Command::Replay {
            shape,
            schedule,
            full,
            max_steps,
        } => replay(&shape, &schedule, full, max_steps as usize),
        Command::Merge { files } => merge(&files),
        Command::Dis { shape } => dis(&shape),
    };
    flush_stdout();
    let mut code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Found) => ExitCode::from(1),
        Err(Failure::Inconclusive) => ExitCode::from(3),
        Err(Failure::BadInput(msg)) => {
            let _ = writeln!(io::stderr(), "gilcheck: {msg}");
            ExitCode::from(2)
        }
    };
    // Output that did not arrive is an error: exit 2. A closed pipe (`gilcheck … | head`) is
    // the reader's choice, so it goes without a message.
    let failed = STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(e) = failed {
        if e.kind() != io::ErrorKind::BrokenPipe {
            let _ = writeln!(
                io::stderr(),
                "gilcheck: cannot write to standard output: {}",
                describe(&e)
            );
        }
        code = ExitCode::from(2);
    }
    code
}

fn list() {
    out!("{:24} {}", "scenario", "what it shows");
    for s in SCENARIOS {
        out!("{:24} {}", s.name, s.summary);
        out!("{:24}   file: {}", "", s.file);
        let threads = |z: scenarios::Size| {
            if s.threads_option {
                format!("--threads {} ", z.threads)
            } else {
                String::new()
            }
        };
        out!(
            "{:24}   run: {}--iterations {}; check: {}--iterations {} (iterations: {})",
            "",
            threads(s.run_size),
            s.run_size.iterations,
            threads(s.check_size),
            s.check_size.iterations,
            s.iterations_mean
        );
    }
}

/// What a command runs: a built-in scenario or a user's file.
enum Target {
    Scenario(&'static Scenario),
    File {
        path: String,
        /// `basename#crc32` of the text: names the file in schedule strings, so that a replay
        /// of an edited file is refused.
        id: String,
    },
}

/// The target, its size, its program, and the literals `--threads`/`--iterations` replaced.
struct Resolved {
    target: Target,
    params: Params,
    program: Program,
    changes: Vec<Change>,
}

/// A file's name as a schedule string names it (`:` and `,` separate the string's fields).
fn file_base(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map_or(path.to_string(), |b| b.to_string_lossy().into_owned())
        .replace([':', ','], "_")
}

fn is_file(arg: &str) -> bool {
    arg.ends_with(".py")
}

/// The scenario or file, its size (defaults for `run` or `check`), and its program.
fn resolve(shape: &Shape, for_check: bool, processes: bool) -> Result<Resolved, Failure> {
    if is_file(&shape.scenario) {
        if processes {
            return Err(Failure::BadInput(
                "--processes applies to seed-cpu-bound only (a file says Process itself)".into(),
            ));
        }
        let path = shape.scenario.clone();
        let source = std::fs::read_to_string(&path)
            .map_err(|e| Failure::BadInput(format!("cannot read {path}: {}", describe(&e))))?;
        let shrink = Shrink {
            threads: shape.threads.map(u64::from),
            iterations: shape.iterations,
        };
        let stem = path.strip_suffix(".py").unwrap_or(&path);
        let (program, changes) = compile::compile(&source, &path, stem, &shrink)
            .map_err(|e| Failure::BadInput(e.to_string()))?;
        let base = file_base(&path);
        let id = format!("{base}#{:08x}", crc32fast::hash(source.as_bytes()));
        let params = Params {
            threads: shape.threads.unwrap_or(0),
            iterations: shape.iterations.unwrap_or(0),
            processes: false,
        };
        return Ok(Resolved {
            target: Target::File { path, id },
            params,
            program,
            changes,
        });
    }
    let s = scenarios::find(&shape.scenario).ok_or_else(|| {
        Failure::BadInput(format!(
            "unknown scenario '{}': give a Python file (FILE.py) or one of {} (see `gilcheck list`)",
            shape.scenario,
            SCENARIOS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
        ))
    })?;
    if shape.threads.is_some() && !s.threads_option {
        return Err(Failure::BadInput(format!(
            "{} has a fixed number of threads: --threads does not apply",
            s.name
        )));
    }
    if processes && s.name != "seed-cpu-bound" {
        return Err(Failure::BadInput(
            "--processes applies to seed-cpu-bound only".into(),
        ));
    }
    let size = if for_check { s.check_size } else { s.run_size };
    let params = Params {
        threads: shape.threads.unwrap_or(size.threads),
        iterations: shape.iterations.unwrap_or(size.iterations),
        processes,
    };
    let (program, changes) =
        scenarios::build_with_changes(s.name, params).map_err(Failure::BadInput)?;
    Ok(Resolved {
        target: Target::Scenario(s),
        params,
        program,
        changes,
    })
}

impl Resolved {
    fn title(&self, policy: Policy) -> String {
        match &self.target {
            Target::Scenario(s) => title(s, policy, self.params),
            Target::File { path, .. } => {
                let mut t = format!("{path} --python {policy}");
                if !self.changes.is_empty() {
                    let options: Vec<String> = [
                        opt_text("--threads", u64::from(self.params.threads)),
                        opt_text("--iterations", self.params.iterations),
                    ]
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect();
                    let changes: Vec<String> = self.changes.iter().map(|c| c.to_string()).collect();
                    t.push_str(&format!(
                        " (a smaller instance, {}: {})",
                        options.join(" "),
                        changes.join(", ")
                    ));
                }
                t
            }
        }
    }

    fn header(&self, policy: Policy) -> Header {
        let scenario = match &self.target {
            Target::Scenario(s) => s.name.to_string(),
            Target::File { id, .. } => id.clone(),
        };
        Header {
            scenario,
            policy: policy.name().into(),
            threads: self.params.threads,
            iterations: self.params.iterations,
        }
    }

    /// The command that replays `token`; `--max-steps` is named when the budget is not the
    /// default or when the schedule ran it out.
    fn replay_command(&self, h: &Header, token: &str, max_steps: Option<usize>) -> String {
        let steps = max_steps
            .map(|n| format!(" --max-steps {n}"))
            .unwrap_or_default();
        match &self.target {
            Target::Scenario(s) => {
                let threads = if s.threads_option {
                    format!(" --threads {}", h.threads)
                } else {
                    String::new()
                };
                format!(
                    "gilcheck replay {} --python {}{threads} --iterations {}{steps} --schedule {token}",
                    s.name, h.policy, h.iterations
                )
            }
            Target::File { path, .. } => format!(
                "gilcheck replay {} --python {}{}{}{steps} --schedule {token}",
                shell_word(path),
                h.policy,
                opt_text(" --threads", u64::from(h.threads)),
                opt_text(" --iterations", h.iterations)
            ),
        }
    }
}

/// The `--threads`/`--iterations` options that apply to the file at `path` (each is tried).
fn smaller_instance_options(path: &str) -> String {
    let Ok(source) = std::fs::read_to_string(path) else {
        return String::new();
    };
    // An option that applies and changes something: a file already at 2 threads (or 2
    // iterations) has no smaller instance that way.
    let applies = |shrink: Shrink| {
        compile::compile(&source, path, "probe", &shrink)
            .is_ok_and(|(_, changes)| changes.iter().any(|c| c.from != c.to.to_string()))
    };
    let mut out = String::new();
    if applies(Shrink {
        threads: Some(2),
        iterations: None,
    }) {
        out.push_str(" --threads 2");
    }
    if applies(Shrink {
        threads: None,
        iterations: Some(2),
    }) {
        out.push_str(" --iterations 2");
    }
    out
}

/// `NAME N`, or nothing when N is 0 (not given).
fn opt_text(name: &str, n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("{name} {n}")
    }
}

/// `path` quoted for a POSIX shell when it needs it.
fn shell_word(path: &str) -> String {
    if path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        path.to_string()
    } else {
        format!("'{}'", path.replace('\'', "'\\''"))
    }
}

fn title(s: &Scenario, policy: Policy, p: Params) -> String {
    let threads = if s.threads_option {
        format!(
            "{} thread{} × ",
            p.threads,
            if p.threads == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    format!(
        "{} --python {policy} ({threads}{} iteration{})",
        s.name,
        p.iterations,
        if p.iterations == 1 { "" } else { "s" }
    )
}

fn run(shape: &Shape, interval: f64, processes: bool) -> Result<(), Failure> {
    let r = resolve(shape, false, processes)?;
    let opts = RunOptions {
        policy: shape.python,
        switch_interval: interval,
        record: false,
        echo: true,
        progress: true,
        ..RunOptions::default()
    };
    let t = r.title(shape.python);
    let r = threaded::run::<Std>(Arc::new(r.program), opts).map_err(Failure::BadInput)?;
    out!();
    out!(
        "gilcheck run: {}, real threads{}",
        t,
        if r.processes > 0 {
            format!(" and {} processes", r.processes)
        } else {
            String::new()
        }
    );
    out!("{}", interval_line(interval));
    out!(
        "elapsed: {:.2} s; GIL switches: {}",
        r.elapsed.as_secs_f64(),
        r.switches
    );
    out!(
        "objects allocated: {}, freed: {}",
        r.stats.allocated,
        r.stats.freed
    );
    if r.daemons_left.is_empty() {
        out!("{}", r.leaks.to_string().trim_end());
    } else {
        out!(
            "daemon thread(s) still going at exit, left behind as CPython leaves them: {} (what they hold is not audited)",
            r.daemons_left.join(", ")
        );
    }
    if let Some(f) = &r.failure {
        if f.starts_with("unsupported") {
            return Err(Failure::BadInput(format!(
                "{f} (no verdict: gilcheck refuses rather than guess)"
            )));
        }
        out!("runtime rule violated: {f}");
    }
    if r.failure.is_some() || !r.leaks.is_clean() {
        Err(Failure::Found)
    } else {
        Ok(())
    }
}

/// What the GIL does with `--switch-interval seconds` (already validated): what it stores, what
/// `sys.getswitchinterval()` reads, and how a waiter waits (GIL-8).
fn interval_line(seconds: f64) -> String {
    let stored = gil::interval_micros(seconds).unwrap_or(0);
    let read = gilcheck::heap::format_float(gil::interval_seconds(stored));
    let how = match gil::interval_wait(stored) {
        IntervalWait::Timed(_) if stored == 0 => {
            "; a waiter waits 1 µs before it asks for the GIL, as CPython's take_gil does"
                .to_string()
        }
        IntervalWait::Timed(_) => String::new(),
        IntervalWait::Untimed => {
            "; longer than a year: a waiter waits without a timeout and never asks for the GIL (the holder keeps it until it blocks or ends)".to_string()
        }
        IntervalWait::Expired => {
            "; 2^63 µs or more: a waiter's wait ends at once, so it asks for the GIL at every turn, as on CPython 3.12 and 3.13 (3.8–3.11 abort at the first contended wait)".to_string()
        }
    };
    format!(
        "switch interval: {} µs (--switch-interval {}, stored as CPython stores it; sys.getswitchinterval() = {read}){how}",
        engine::thousands_u64(stored),
        gilcheck::heap::format_float(seconds)
    )
}

/// The search limits of `check`.
struct Limits {
    preemptions: Option<u64>,
    max_executions: Option<u64>,
    seed: u64,
    max_steps: usize,
    state_cache: bool,
    reduce: bool,
    stateful: bool,
    jobs: Option<u64>,
    sample: Option<u64>,
    shard: Option<(usize, usize)>,
    budget: Budget,
}

/// Executions of the sampled default for a file as written (`check FILE.py`).
const FILE_SAMPLE_EXECUTIONS: usize = 10;

fn check(
    shape: &Shape,
    engine: Option<EngineArg>,
    limits: Limits,
    full: bool,
) -> Result<(), Failure> {
    // A file as written is sampled when it has a smaller instance to prove instead; one with
    // nothing to make smaller (no threads started in a `range(K)` loop, no iteration count) is
    // searched exhaustively, as a scenario is.
    let sampled_default = engine.is_none()
        && is_file(&shape.scenario)
        && shape.threads.is_none()
        && shape.iterations.is_none()
        && !smaller_instance_options(&shape.scenario).is_empty();
    let engine = engine.unwrap_or(if sampled_default {
        EngineArg::Pct
    } else {
        EngineArg::Dfs
    });
    let Limits {
        preemptions,
        max_executions,
        seed,
        max_steps,
        state_cache,
        reduce,
        stateful,
        jobs,
        sample,
        shard,
        budget,
    } = limits;
    if shard.is_some() {
        let refuse = if engine != EngineArg::Dfs {
            Some("--engine pct, random or loom")
        } else if preemptions.is_some() {
            Some("--preemptions (a shard searches the unbounded phase)")
        } else if !stateful || !state_cache {
            Some("--stateless or --no-state-cache")
        } else if jobs.is_some_and(|n| n > 1) {
            Some("--jobs")
        } else if budget.max_states.is_some() || budget.max_memory_mib.is_some() {
            Some("--max-states or --max-memory")
        } else {
            None
        };
        if let Some(what) = refuse {
            return Err(Failure::BadInput(format!(
                "--shard does not go with {what}"
            )));
        }
    }
    if sample.is_some() && engine != EngineArg::Dfs {
        return Err(Failure::BadInput(
            "--sample applies to --engine dfs (the sampled pass before its bound 1)".into(),
        ));
    }
    if jobs.is_some_and(|n| n > 1) && (engine != EngineArg::Dfs || !stateful || !state_cache) {
        return Err(Failure::BadInput(
            "--jobs applies to --engine dfs with the state cache, not --stateless".into(),
        ));
    }
    let jobs = jobs.map_or(1, |n| n as usize);
    if engine == EngineArg::Loom && budget != Budget::default() {
        return Err(Failure::BadInput(
            "--time-limit, --max-states and --max-memory do not apply to --engine loom (loom runs its own search); use --max-executions".into(),
        ));
    }
    if budget.max_states.is_some() && (engine != EngineArg::Dfs || !state_cache) {
        return Err(Failure::BadInput(
            "--max-states applies to --engine dfs with the state cache (it counts the distinct states the cache keeps)".into(),
        ));
    }
    if budget.max_memory_mib.is_some() && engine::resident_mib().is_none() {
        return Err(Failure::BadInput(
            "--max-memory needs /proc/self/status to read the resident memory (Linux)".into(),
        ));
    }
    match (engine, preemptions) {
        (EngineArg::Loom, Some(n)) if n > MAX_LOOM_PREEMPTIONS => {
            return Err(Failure::BadInput(format!(
                "--preemptions {n} is out of range for --engine loom: loom 0.7 keeps its preemption bound in a u8, so it takes 0 to {MAX_LOOM_PREEMPTIONS}"
            )));
        }
        (EngineArg::Random, Some(_)) => {
            return Err(Failure::BadInput(
                "--preemptions does not apply to --engine random (it bounds nothing there); use dfs, pct or loom".into(),
            ));
        }
        _ => {}
    }
    let r = resolve(shape, true, false)?;
    let program = &r.program;
    let engine = match engine {
        EngineArg::Dfs => Engine::Dfs,
        EngineArg::Pct => Engine::Pct,
        EngineArg::Random => Engine::Random,
        EngineArg::Loom => Engine::Loom,
    };
    let default_max = if sampled_default {
        FILE_SAMPLE_EXECUTIONS
    } else if engine == Engine::Dfs {
        100_000_000
    } else {
        10_000
    };
    let opts = CheckOptions {
        engine,
        preemptions: preemptions.map(|n| n as usize),
        max_executions: max_executions.map_or(default_max, |n| n.min(usize::MAX as u64) as usize),
        seed,
        max_steps,
        progress: true,
        state_cache,
        reduce,
        stateful,
        jobs,
        sample: sample.map(|n| n as usize),
        full,
        budget,
        ..CheckOptions::default()
    };
    let h = r.header(shape.python);
    if let Some((index, count)) = shard {
        let run = engine::check_shard(program, &h, shape.python, &opts, index - 1, count)
            .map_err(Failure::BadInput)?;
        let steps = (max_steps != engine::DEFAULT_MAX_STEPS).then_some(max_steps);
        let file = gilcheck::explore::shard::ShardFile::new(
            &h.scenario,
            &h.policy,
            h.threads,
            h.iterations,
            max_steps,
            index,
            count,
            &run,
            |token| r.replay_command(&h, token, steps),
        );
        let json = serde_json::to_string_pretty(&file)
            .map_err(|e| Failure::BadInput(format!("internal error: {e}")))?;
        out_raw!("{json}\n");
        let summary = match (&file.failure, &file.stopped) {
            (Some(f), _) => format!("{} ({})", f.kind.to_uppercase(), f.what),
            (None, Some(why)) => format!("no failure, stopped at {why}"),
            (None, None) => "no failure in its parts".into(),
        };
        eprintln!(
            "gilcheck: shard {index}/{count} of {}: {} of {} parts, {} executions, {} states: {summary}",
            r.title(shape.python),
            file.mine,
            file.parts,
            engine::thousands(file.executions),
            engine::thousands(file.states)
        );
        return match file.failure.as_ref().map(|f| f.kind.as_str()) {
            Some("fail") => Err(Failure::Found),
            Some(_) => Err(Failure::Inconclusive),
            None => Ok(()),
        };
    }
    let verdict = if engine == Engine::Loom {
        gilcheck::explore::loom::check(Arc::new(program.clone()), &h, shape.python, &opts)
            .map_err(Failure::BadInput)?
    } else {
        engine::check(program, &h, shape.python, &opts).map_err(Failure::BadInput)?
    };
    match verdict {
        Verdict::Pass { line, .. } => {
            out!(
                "PASS: {}: {line}; each had the first schedule's outcome and violated no runtime rule",
                r.title(shape.python)
            );
            if sampled_default {
                out!(
                    "  (the default for a file as written: {FILE_SAMPLE_EXECUTIONS} sampled executions, not every schedule; for a proof, check a smaller instance of it: gilcheck check {} --python {}{})",
                    shell_word(&shape.scenario),
                    shape.python,
                    smaller_instance_options(&shape.scenario)
                );
            }
            Ok(())
        }
        Verdict::Fail(c) => {
            let steps = (max_steps != engine::DEFAULT_MAX_STEPS).then_some(max_steps);
            let cmd = r.replay_command(&h, &c.schedule.encode(), steps);
            let t = r.title(shape.python);
            out_raw!("{}", report::counterexample(&c, "FAIL", &t, &cmd));
            Err(Failure::Found)
        }
        Verdict::Inconclusive(c) => {
            let cmd = r.replay_command(&h, &c.schedule.encode(), Some(max_steps));
            let t = r.title(shape.python);
            out_raw!("{}", report::counterexample(&c, "INCONCLUSIVE", &t, &cmd));
            Err(Failure::Inconclusive)
        }
    }
}

/// `gilcheck merge` (EX-23).
fn merge(paths: &[std::path::PathBuf]) -> Result<(), Failure> {
    use gilcheck::explore::shard::{Merged, ShardFile, merge};
    let mut files = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::BadInput(format!("{name}: cannot read it: {e}")))?;
        let file: ShardFile = serde_json::from_str(&text)
            .map_err(|e| Failure::BadInput(format!("{name}: not a gilcheck shard file: {e}")))?;
        files.push((name, file));
    }
    let merged = merge(&files).map_err(Failure::BadInput)?;
    let f = &files[0].1;
    let title = format!(
        "{} --python {} ({} threads × {} iterations), {} shards",
        f.scenario, f.python, f.threads, f.iterations, f.shards
    );
    match merged {
        Merged::Pass { line } => {
            out!("PASS: {title}: {line}");
            Ok(())
        }
        Merged::NotExhaustive { line } => {
            out!("PASS: {title}: {line}");
            Ok(())
        }
        Merged::Fail { failure, shard } => {
            let kind = if failure.kind == "fail" {
                "FAIL"
            } else {
                "INCONCLUSIVE"
            };
            out!("{kind}: {title}");
            out!("  {}", failure.what);
            out!(
                "  {} ({} steps, {}; the shard's failure with the fewest preemptions, from shard {shard})",
                failure.found,
                engine::thousands(failure.steps),
                if failure.preemptions == 1 {
                    "1 preemption".to_string()
                } else {
                    format!("{} preemptions", engine::thousands(failure.preemptions))
                }
            );
            out!("replay: {}", failure.replay);
            if failure.kind == "fail" {
                Err(Failure::Found)
            } else {
                Err(Failure::Inconclusive)
            }
        }
    }
}

fn replay(shape: &Shape, token: &str, full: bool, max_steps: usize) -> Result<(), Failure> {
    let schedule = Schedule::parse_within(token, max_steps).map_err(Failure::BadInput)?;
    let h = &schedule.header;
    if is_file(&shape.scenario) {
        let (base, _) = h.scenario.split_once('#').unwrap_or((&h.scenario, ""));
        let given = file_base(&shape.scenario);
        if base != given {
            return Err(Failure::BadInput(format!(
                "this schedule is for {}, not {}",
                if h.scenario.contains('#') {
                    base
                } else {
                    &h.scenario
                },
                shape.scenario
            )));
        }
    } else if h.scenario != shape.scenario {
        return Err(Failure::BadInput(format!(
            "this schedule is for scenario {}, not {}",
            h.scenario, shape.scenario
        )));
    }
    let policy: Policy = h.policy.parse().map_err(Failure::BadInput)?;
    let given_python = std::env::args().any(|a| a == "--python" || a.starts_with("--python="));
    if given_python && shape.python != policy {
        return Err(Failure::BadInput(format!(
            "this schedule was recorded under --python {policy}, not {}: replay it with the options it was found with",
            shape.python
        )));
    }
    let mismatch = |what: &str, given: String, recorded: String| {
        Failure::BadInput(format!(
            "this schedule was recorded with --{what} {recorded}, not {given}"
        ))
    };
    if let Some(t) = shape.threads
        && t != h.threads
    {
        return Err(mismatch("threads", t.to_string(), h.threads.to_string()));
    }
    if let Some(i) = shape.iterations
        && i != h.iterations
    {
        return Err(mismatch(
            "iterations",
            i.to_string(),
            h.iterations.to_string(),
        ));
    }
    let recorded = Shape {
        scenario: shape.scenario.clone(),
        python: policy,
        threads: Some(h.threads),
        iterations: Some(h.iterations),
    };
    let recorded = if is_file(&shape.scenario) {
        Shape {
            threads: (h.threads != 0).then_some(h.threads),
            iterations: (h.iterations != 0).then_some(h.iterations),
            ..recorded
        }
    } else {
        let s = scenarios::find(&shape.scenario)
            .ok_or_else(|| Failure::BadInput("unknown scenario".into()))?;
        Shape {
            threads: s.threads_option.then_some(h.threads),
            ..recorded
        }
    };
    let r = resolve(&recorded, true, false)?;
    if r.header(policy).scenario != h.scenario {
        return Err(Failure::BadInput(format!(
            "{} has changed since this schedule was recorded (its text differs): run check again",
            shape.scenario
        )));
    }
    let program = &r.program;
    let reference =
        engine::first_schedule(program, policy, max_steps).map_err(Failure::BadInput)?;
    let table = if full { Table::Full } else { Table::Folded };
    let e = engine::replay(program, policy, &schedule, max_steps, table)
        .map_err(|why| Failure::BadInput(format!("the schedule does not replay: {why}")))?;
    let t = r.title(policy);
    out!("replay: {t}");
    let failed = engine::failure_of(&e, &reference.outcome);
    match &failed {
        Some(why) => out!("  {why}"),
        None if e.out_of_steps() => out!(
            "  this schedule ran out of its step budget of {} steps before the program ended (inconclusive)",
            engine::thousands(max_steps)
        ),
        None => out!("  this schedule does not fail: its outcome is the first schedule's"),
    }
    out!();
    out_raw!("{}", report::table(&e.table));
    out!();
    if e.events == reference.events {
        out_raw!("{}", report::outcome_of(&e, "this schedule"));
    } else {
        out_raw!(
            "{}",
            report::outcomes(&e, &reference.outcome, reference.preemptions)
        );
    }
    out!();
    let steps = (e.out_of_steps() || max_steps != engine::DEFAULT_MAX_STEPS).then_some(max_steps);
    out!(
        "replay: {}",
        r.replay_command(&schedule.header, &schedule.encode(), steps)
    );
    match failed {
        Some(_) => Err(Failure::Found),
        None if e.out_of_steps() => Err(Failure::Inconclusive),
        None => Ok(()),
    }
}

fn dis(shape: &Shape) -> Result<(), Failure> {
    let r = resolve(shape, true, false)?;
    let program = &r.program;
    let policy = shape.python;
    out!(
        "# {} — python {policy} policy; the last column says where a thread may be switched away",
        r.title(policy)
    );
    out!("# (after the instruction; a blocking call also releases the GIL inside it)");
    for code in program.codes.iter().filter(|c| !c.library) {
        out!();
        out!("Disassembly of <code object {}>:", code.name);
        let targets: Vec<usize> = code
            .instrs
            .iter()
            .filter_map(|i| i.target())
            .chain(code.exceptions.iter().map(|e| e.target as usize))
            .collect();
        let mut last_line = 0;
        for (i, ins) in code.instrs.iter().enumerate() {
            let line = code.lines[i];
            // Line 0: an artificial instruction, which CPython's `dis` shows without a line.
            let line_col = if line != last_line && line != 0 {
                line.to_string()
            } else {
                String::new()
            };
            if line != last_line && i > 0 {
                out!();
            }
            last_line = line;
            let jump = if targets.contains(&i) { ">>" } else { "" };
            let arg = ins.arg().map(|a| a.to_string()).unwrap_or_default();
            let argrepr = code.arg_repr(program, i);
            let argrepr = if argrepr.is_empty() {
                String::new()
            } else {
                format!("({argrepr})")
            };
            // Module code returns to no caller: its RETURN_VALUE ends the thread.
            let mark = if code.is_module && *ins == gilcheck::vm::Instr::ReturnValue {
                Mark::Never
            } else if code.leaves_handler(i) && policy.polls_leaving_handler() {
                Mark::LeavingHandler
            } else {
                policy.mark(*ins, code.instrs.get(i + 1).copied())
            };
            let mark = match mark {
                Mark::Never => String::new(),
                m => format!("<- {}", m.describe()),
            };
            out!(
                "{line_col:>4} {jump:>6} {:>4} {:<26} {arg:>4} {argrepr:<32} {mark}",
                i * 2,
                ins.name()
            );
        }
        if !code.exceptions.is_empty() {
            out!("ExceptionTable:");
            for e in &code.exceptions {
                out!(
                    "  {} to {} -> {} [{}]{}",
                    e.start * 2,
                    e.end * 2 - 2,
                    e.target * 2,
                    e.depth,
                    if e.lasti { " lasti" } else { "" }
                );
            }
        }
    }
    Ok(())
}
