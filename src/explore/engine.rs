//! The checks of `gilcheck check` (rules EX-4, EX-5, EX-8, EX-10 of `spec/explore.md`): DFS with
//! a preemption bound raised 0, 1, 2, … so that the first counterexample has the fewest
//! preemptions, then unbounded; PCT and random sampling; minimization; verdict lines;
//! counterexamples and replay. The oracles themselves are in [`crate::explore::oracles`].

pub use crate::explore::oracles::{Dfs, Pct, RandomWalk, Replay};
use crate::explore::schedule::{Event, Header, Schedule};
use crate::explore::world::{Execution, Failure, Options, Outcome, execute};
use crate::vm::{Policy, Program};
use std::time::{Duration, Instant};

/// The engines of `gilcheck check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Dfs,
    Pct,
    Random,
    Loom,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Dfs => "dfs",
            Engine::Pct => "pct",
            Engine::Random => "random",
            Engine::Loom => "loom",
        }
    }
}

/// Options of a check.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    pub engine: Engine,
    /// DFS: the largest preemption bound (`None`: raise it until the search is complete).
    /// PCT: priority change points. Loom: loom's preemption bound.
    pub preemptions: Option<usize>,
    pub max_executions: usize,
    pub seed: u64,
    pub max_steps: usize,
    /// Print progress lines on stderr.
    pub progress: bool,
    /// DFS: explore each distinct state once (EX-7); off, every interleaving is executed.
    pub state_cache: bool,
}

/// What a check found.
#[derive(Debug)]
pub enum Verdict {
    /// No failure; `line` says exactly what was covered.
    Pass {
        line: String,
        executions: usize,
    },
    Fail(Box<Counterexample>),
}

/// A failing execution, with everything needed to print and replay it.
#[derive(Debug)]
pub struct Counterexample {
    /// What is wrong, in one line.
    pub what: String,
    /// Which execution of the search it was, and how it was found.
    pub found: String,
    pub reference: Outcome,
    /// The execution re-run with its step table.
    pub execution: Execution,
    pub schedule: Schedule,
}

/// Why `e` fails, compared with the reference outcome; `None` if it does not.
pub fn failure_of(e: &Execution, reference: &Outcome) -> Option<String> {
    if let Some(f) = &e.failure {
        return Some(f.to_string());
    }
    (e.outcome != *reference).then(|| describe_difference(reference, &e.outcome))
}

fn describe_difference(reference: &Outcome, got: &Outcome) -> String {
    let first_diff = |a: &[String], b: &[String]| {
        a.iter()
            .zip(b)
            .find(|(x, y)| x != y)
            .map(|(x, y)| (x.clone(), y.clone()))
    };
    let (ra, ga) = (reference.data_state(), got.data_state());
    if let Some((want, have)) = first_diff(&ra, &ga) {
        return format!(
            "the outcome differs between schedules: {have} here, {want} in the first schedule"
        );
    }
    let (ro, go): (Vec<String>, Vec<String>) = (
        reference.output.lines().map(String::from).collect(),
        got.output.lines().map(String::from).collect(),
    );
    if let Some((want, have)) = first_diff(&ro, &go) {
        return format!(
            "the outcome differs between schedules: printed \"{have}\" here, \"{want}\" in the first schedule"
        );
    }
    "the outcome differs between schedules".into()
}

/// Progress lines on stderr, at most every two seconds.
struct Progress {
    on: bool,
    start: Instant,
    last: Instant,
}

impl Progress {
    fn new(on: bool) -> Self {
        Progress {
            on,
            start: Instant::now(),
            last: Instant::now(),
        }
    }
    fn tick(&mut self, what: impl FnOnce() -> String) {
        if self.on && self.last.elapsed() >= Duration::from_secs(2) {
            self.last = Instant::now();
            eprintln!(
                "gilcheck: {} ({:.0} s)",
                what(),
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

/// Groups digits by thousands with spaces: `1 234 567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// The outcome of the schedule that never preempts and always picks the lowest-numbered
/// thread: the reference other schedules are compared with (EX-4).
pub fn reference(program: &Program, policy: Policy, max_steps: usize) -> Execution {
    let mut first = Dfs::new(0);
    execute(
        program,
        policy,
        &mut first,
        Options {
            max_steps,
            ..Options::default()
        },
    )
}

/// What every execution of one check shares.
struct Search<'a> {
    program: &'a Program,
    header: &'a Header,
    policy: Policy,
    opts: &'a CheckOptions,
    reference: &'a Outcome,
    exec_opts: Options,
}

impl Search<'_> {
    fn execute(&self, oracle: &mut dyn crate::explore::Oracle) -> Execution {
        execute(self.program, self.policy, oracle, self.exec_opts)
    }

    /// Re-runs `e`'s schedule with a step table and packages it as the verdict.
    fn fail(&self, e: Execution, what: String, found: String) -> Result<Verdict, String> {
        let schedule = Schedule {
            header: self.header.clone(),
            events: e.events.clone(),
        };
        let replayed = replay(
            self.program,
            self.policy,
            &schedule.events,
            self.opts.max_steps,
        )?;
        if replayed.outcome != e.outcome || replayed.failure != e.failure {
            return Err(format!(
                "internal error: replaying the failing schedule gave a different outcome\n  found:    {:?} {:?}\n  replayed: {:?} {:?}",
                e.outcome, e.failure, replayed.outcome, replayed.failure
            ));
        }
        let reference = self.reference.clone();
        Ok(Verdict::Fail(Box::new(Counterexample {
            what,
            found,
            reference,
            execution: replayed,
            schedule,
        })))
    }

    /// Minimizes `e` (EX-10), then fails with it; `how` says how it was found.
    fn fail_minimized(&self, e: Execution, why: String, how: &str) -> Result<Verdict, String> {
        let had = e.preemptions;
        let (e, note) = self.minimize(e);
        let found = match note {
            Some(note) => format!(
                "{how}; it had {}, {note}",
                plural(had, "preemption", "preemptions")
            ),
            None => format!(
                "{how}; {}: no schedule with fewer fails",
                plural(had, "preemption", "preemptions")
            ),
        };
        let why = failure_of(&e, self.reference).unwrap_or(why);
        self.fail(e, why, found)
    }

    /// Looks for a failing schedule with fewer preemptions than `found` (DFS with the state
    /// cache under bounds 0, 1, … below it, each capped at `--max-executions`). Returns the one
    /// to report and, when it is a smaller one, how it was found.
    fn minimize(&self, found: Execution) -> (Execution, Option<String>) {
        for bound in 0..found.preemptions {
            let mut search = Dfs::with_state_cache(bound);
            for _ in 0..self.opts.max_executions {
                let e = self.execute(&mut search);
                if !e.cut && failure_of(&e, self.reference).is_some() {
                    let note = format!(
                        "minimized by dfs to {} (preemption bound {bound}{})",
                        plural(e.preemptions, "preemption", "preemptions"),
                        if bound == 0 {
                            ""
                        } else {
                            "; lower bounds explored without failure"
                        }
                    );
                    return (e, Some(note));
                }
                if !search.advance() {
                    break;
                }
            }
        }
        (found, None)
    }
}

/// Runs the check `opts` describes (all engines but loom, see `crate::explore::loom`).
pub fn check(
    program: &Program,
    header: &Header,
    policy: Policy,
    opts: &CheckOptions,
) -> Result<Verdict, String> {
    let first = reference(program, policy, opts.max_steps);
    if let Some(Failure::Invalid(why)) = &first.failure {
        return Err(why.clone());
    }
    let search = Search {
        program,
        header,
        policy,
        opts,
        reference: &first.outcome,
        exec_opts: Options {
            max_steps: opts.max_steps,
            ..Options::default()
        },
    };
    if let Some(why) = failure_of(&first, &first.outcome) {
        return search.fail(
            first.clone(),
            why,
            "in the first execution: the schedule with no preemption".into(),
        );
    }
    match opts.engine {
        Engine::Dfs => dfs(&search),
        Engine::Pct | Engine::Random => sample(&search),
        Engine::Loom => Err("the loom engine is run by crate::explore::loom".into()),
    }
}

/// The preemption bound of an unbounded search.
const UNBOUNDED: usize = usize::MAX;

fn dfs(s: &Search<'_>) -> Result<Verdict, String> {
    let opts = s.opts;
    let mut progress = Progress::new(opts.progress);
    let mut total = 0usize;
    let mut bound = 0usize;
    loop {
        let mut search = if opts.state_cache {
            Dfs::with_state_cache(bound)
        } else {
            Dfs::new(bound)
        };
        let mut at_bound = 0usize;
        loop {
            let e = s.execute(&mut search);
            if let Some(Failure::Invalid(why)) = &e.failure {
                return Err(why.clone());
            }
            at_bound += 1;
            total += 1;
            if !e.cut
                && let Some(why) = failure_of(&e, s.reference)
            {
                if bound == UNBOUNDED {
                    let how = format!(
                        "by dfs at execution {} (unbounded, after bounds 0–2 found nothing)",
                        thousands(total)
                    );
                    return s.fail_minimized(e, why, &how);
                }
                let minimal = if bound == 0 {
                    "no schedule with fewer preemptions exists".to_string()
                } else {
                    format!(
                        "every schedule with at most {} was explored without failure",
                        plural(bound - 1, "preemption", "preemptions")
                    )
                };
                let found = format!(
                    "by dfs at execution {} (preemption bound {bound}: {}; {minimal})",
                    thousands(total),
                    plural(e.preemptions, "preemption", "preemptions"),
                );
                return s.fail(e, why, found);
            }
            if total >= opts.max_executions {
                return Ok(capped(bound, total, opts.max_executions));
            }
            progress.tick(|| {
                let b = if bound == UNBOUNDED {
                    "unbounded".to_string()
                } else {
                    format!("preemption bound {bound}")
                };
                format!(
                    "dfs, {b}: {} executions, {} states",
                    thousands(at_bound),
                    thousands(search.states())
                )
            });
            if !search.advance() {
                break;
            }
        }
        if !search.pruned || opts.preemptions == Some(bound) {
            return Ok(Verdict::Pass {
                line: covered(bound, at_bound, &search, opts),
                executions: total,
            });
        }
        // With the state cache, bounds 0–2 give minimal counterexamples for the usual bugs; past
        // them one unbounded search explores each state once instead of every bound again.
        bound = if opts.state_cache && opts.preemptions.is_none() && bound >= 2 {
            UNBOUNDED
        } else {
            bound + 1
        };
    }
}

/// The verdict line of a DFS that stopped at `--max-executions`.
fn capped(bound: usize, total: usize, max: usize) -> Verdict {
    let covered = match bound {
        0 => "schedules without preemption, not all".to_string(),
        UNBOUNDED => "every schedule with at most 2 preemptions, then part of the unbounded search"
            .to_string(),
        b => format!(
            "every schedule with at most {}, then part of those with {b}",
            plural(b - 1, "preemption", "preemptions")
        ),
    };
    Verdict::Pass {
        line: format!(
            "no failure in the first {} ({covered}; stopped at --max-executions {}: not exhaustive)",
            plural(total, "execution", "executions"),
            thousands(max)
        ),
        executions: total,
    }
}

/// The verdict line of a DFS that finished a bound: complete (nothing skipped for the bound)
/// or bounded (`--preemptions` reached).
fn covered(bound: usize, executions: usize, search: &Dfs, opts: &CheckOptions) -> String {
    let what = if opts.state_cache {
        format!(
            "{} reached at decisions, by {} (a state reached again is not explored again)",
            plural(search.states(), "distinct state", "distinct states"),
            plural(executions, "execution", "executions"),
        )
    } else {
        plural(executions, "interleaving", "interleavings")
    };
    let at_most = plural(bound, "preemption", "preemptions");
    if search.pruned {
        return format!(
            "exhaustive up to {at_most}: every schedule with at most that many, {what} (schedules with more were not explored)"
        );
    }
    let how = if bound == UNBOUNDED {
        format!("every reachable state explored, {what}")
    } else if opts.state_cache {
        format!(
            "every reachable state explored, {what}; schedules with at most {at_most} reach them all"
        )
    } else {
        format!("all {what}, none needing more than {at_most}")
    };
    format!("exhaustive, every schedule: {how}")
}

fn sample(s: &Search<'_>) -> Result<Verdict, String> {
    let opts = s.opts;
    let mut progress = Progress::new(opts.progress);
    let changes = opts.preemptions.unwrap_or(2);
    let mut pct = Pct::new(opts.seed, changes);
    let mut walk = RandomWalk::new(opts.seed);
    for i in 1..=opts.max_executions {
        let e = if opts.engine == Engine::Pct {
            pct.reset();
            s.execute(&mut pct)
        } else {
            s.execute(&mut walk)
        };
        if let Some(why) = failure_of(&e, s.reference) {
            let how = format!(
                "by {} at execution {} (seed {})",
                opts.engine.name(),
                thousands(i),
                opts.seed
            );
            return s.fail_minimized(e, why, &how);
        }
        progress.tick(|| format!("{}: {} executions", opts.engine.name(), thousands(i)));
    }
    let how = if opts.engine == Engine::Pct {
        format!(
            "PCT executions ({} priority change points per execution, seed {})",
            thousands(changes),
            opts.seed
        )
    } else {
        format!("random executions (seed {})", opts.seed)
    };
    Ok(Verdict::Pass {
        line: format!(
            "no failure in {} {how}: sampled, not a proof",
            thousands(opts.max_executions)
        ),
        executions: opts.max_executions,
    })
}

/// Executes exactly the schedule `events`, with a step table. A schedule the program does not
/// follow is an error that says where it diverges.
pub fn replay(
    program: &Program,
    policy: Policy,
    events: &[Event],
    max_steps: usize,
) -> Result<Execution, String> {
    let mut oracle = Replay::new(events.to_vec());
    let e = execute(
        program,
        policy,
        &mut oracle,
        Options {
            max_steps,
            table: true,
            ..Options::default()
        },
    );
    if let Some(Failure::Invalid(why)) = &e.failure {
        return Err(why.clone());
    }
    if let Some(why) = oracle.leftover() {
        return Err(why);
    }
    Ok(e)
}
