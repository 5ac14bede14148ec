//! The checks of `gilcheck check` (rules EX-4, EX-5, EX-8, EX-10, EX-12 of `spec/explore.md`):
//! DFS with a preemption bound raised 0, 1, 2, … so that the first counterexample has the fewest
//! preemptions, then unbounded; PCT and random sampling; minimization; verdicts that say exactly
//! what was covered; counterexamples and replay. The oracles themselves are in
//! [`crate::explore::oracles`].

pub use crate::explore::oracles::{Dfs, Guided, Pct, RandomWalk, Replay};
use crate::explore::schedule::{Header, Schedule};
use crate::explore::world::{
    Execution, Failure, Options, Oracle, Outcome, StateFaults, Table, Visit, execute,
    explore_stateful,
};
use crate::vm::{Policy, Program};
use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

/// The default step budget of one execution (`--max-steps`).
pub const DEFAULT_MAX_STEPS: usize = 5_000_000;

/// The largest step budget of one execution: memory grows with the longest execution (its
/// schedule takes 8 bytes a step), so the budget has a ceiling.
pub const MAX_STEPS_CEILING: usize = 100_000_000;

/// The PCT executions DFS runs between bounds 0 and 1 by default (EX-22), when the first
/// schedule has at least [`AUTO_SAMPLE_STEPS`] steps.
pub const AUTO_SAMPLE: usize = 32;

/// From how many steps of the first schedule DFS samples by default (EX-22): below it the
/// bound-1 search itself is quick.
pub const AUTO_SAMPLE_STEPS: usize = 50_000;

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
    /// The search budget: at most this many executions (and as many again to minimize).
    pub max_executions: usize,
    pub seed: u64,
    /// The step budget of each execution (EX-12).
    pub max_steps: usize,
    /// Print progress lines on stderr.
    pub progress: bool,
    /// DFS: explore each distinct state once (EX-7); off, every interleaving is executed.
    pub state_cache: bool,
    /// DFS: take each execution up at the decision whose choice changed, from the world saved
    /// there (EX-16); off, each execution re-runs the program from the start. The same
    /// schedules are explored in the same order either way.
    pub stateful: bool,
    /// DFS: the partial-order reduction (EX-17): no preemption is explored just before an
    /// instruction no other thread can see; it is explored at the next poll point.
    pub reduce: bool,
    /// DFS: OS threads for the unbounded phase (EX-19); 1 searches on the calling thread.
    pub jobs: usize,
    /// DFS: PCT executions between bounds 0 and 1 (EX-22); `None`: [`AUTO_SAMPLE`] when the
    /// first schedule has at least [`AUTO_SAMPLE_STEPS`] steps, else none.
    pub sample: Option<usize>,
    /// The counterexample's step table shows every step (default: folded, EX-8).
    pub full: bool,
    /// Time, state and memory budgets (EX-15).
    pub budget: Budget,
    #[doc(hidden)]
    pub faults: SearchFaults,
}

/// What ends a search early, besides `max_executions` (EX-15): each ends it with a verdict
/// that says what was covered, never an abort.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    /// `--time-limit`: wall-clock time of the whole check.
    pub time_limit: Option<Duration>,
    /// `--max-states`: distinct states of the current DFS phase (with the state cache).
    pub max_states: Option<usize>,
    /// `--max-memory`: the process's resident memory, in MiB (read from /proc/self/status).
    pub max_memory_mib: Option<u64>,
}

/// The process's resident memory in MiB, where the system says (the `VmRSS` line of Linux's
/// /proc/self/status, in kB whatever the page size).
pub fn resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            engine: Engine::Dfs,
            preemptions: None,
            max_executions: 1_000_000,
            seed: 0,
            max_steps: DEFAULT_MAX_STEPS,
            progress: false,
            state_cache: true,
            stateful: true,
            reduce: true,
            jobs: 1,
            sample: None,
            full: false,
            budget: Budget::default(),
            faults: SearchFaults::default(),
        }
    }
}

/// Deliberate defects of the search, used only by the broken twins of the checks of the state
/// cache (EX-7). All off in a correct search.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchFaults {
    /// Parts left out of the state fingerprint.
    pub state: StateFaults,
    /// A state is pruned whatever preemptions were left when it was explored.
    pub ignore_preemptions_left: bool,
    /// Defects of the interpreter (the runtime-rule twins, VM-2).
    pub vm: crate::vm::interp::VmFaults,
    /// The parallel search runs one execution of each part of the tree and leaves the rest of
    /// the part (the twin of EX-19).
    pub part_cut_short: bool,
    /// Shrinking keeps a try whose execution does not fail (the twin of EX-21).
    pub shrink_keeps_passing: bool,
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
    /// An execution ran out of its step budget (EX-12): neither a pass nor a failure.
    Inconclusive(Box<Counterexample>),
}

/// A failing (or, for an inconclusive verdict, unfinished) execution, with everything needed
/// to print and replay it.
#[derive(Debug)]
pub struct Counterexample {
    /// What is wrong, in one line.
    pub what: String,
    /// Which execution of the search it was, how it was found, and what the search covered.
    pub found: String,
    pub reference: Outcome,
    /// Preemptions of the schedule whose outcome is the reference (0 unless the schedule
    /// without preemptions loops, EX-4).
    pub reference_preemptions: usize,
    /// It is the reference execution itself (the first schedule failed or ran out of steps).
    pub first: bool,
    /// The execution re-run with its step table.
    pub execution: Execution,
    pub schedule: Schedule,
}

/// Why `e` fails, compared with the reference outcome; `None` if it does not, or if it was
/// cut short (a state explored before, an unfair loop, the step budget).
pub fn failure_of(e: &Execution, reference: &Outcome) -> Option<String> {
    if let Some(f) = &e.failure {
        return Some(f.to_string());
    }
    if e.stop.is_some() {
        return None;
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
    if ro.len() != go.len() {
        return format!(
            "the outcome differs between schedules: {} printed here, {} in the first schedule",
            plural(go.len(), "line", "lines"),
            plural(ro.len(), "line", "lines")
        );
    }
    "the outcome differs between schedules".into()
}

/// Progress lines on stderr, once a second: the phase, the executions of the whole check so
/// far, the cap, the states of the phase, the rates, the last execution's length and the
/// resident memory (EX-15).
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

    fn tick(&mut self, phase: &str, total: usize, cap: usize, states: Option<usize>, depth: usize) {
        if !self.on || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last = Instant::now();
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let states = states
            .map(|n| {
                format!(
                    ", {}, {} states/s",
                    plural(n, "state explored", "states explored"),
                    thousands((n as f64 / secs) as usize)
                )
            })
            .unwrap_or_default();
        let memory = resident_mib()
            .map(|m| format!(", {m} MiB resident"))
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "gilcheck: {phase}: {} of at most {} executions{states}, {} executions/s, depth {} steps{memory} ({secs:.0} s)",
            thousands(total),
            thousands(cap),
            thousands((total as f64 / secs) as usize),
            thousands(depth),
        );
    }
}

/// Groups digits by thousands with spaces: `1 234 567`.
pub fn thousands(n: usize) -> String {
    thousands_u64(n as u64)
}

/// [`thousands`] of a `u64` (option values, which may not fit a `usize`).
pub fn thousands_u64(n: u64) -> String {
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

/// The preemption bound of an unbounded search.
const UNBOUNDED: usize = usize::MAX;

/// The reference other schedules are compared with (EX-4): the first execution of DFS, under the
/// lowest preemption bound that has one, that is not cut short by a loop. That is the schedule
/// that never preempts and always gives the GIL to the lowest-numbered thread that can take it,
/// unless that schedule repeats a state unfairly forever (a spin loop that never lets the thread
/// it waits for run).
pub fn reference(program: &Program, policy: Policy, max_steps: usize) -> Execution {
    reference_within(program, policy, max_steps, REFERENCE_EXECUTIONS)
}

/// [`reference`], trying at most `cap` executions: when each of them loops unfairly, the last
/// one.
#[doc(hidden)]
pub fn reference_within(
    program: &Program,
    policy: Policy,
    max_steps: usize,
    cap: usize,
) -> Execution {
    let opts = Options {
        max_steps,
        ..Options::default()
    };
    let mut last = None;
    let mut tried = 0usize;
    for bound in 0..=REFERENCE_BOUNDS {
        let mut first = Dfs::new(bound);
        loop {
            let e = execute(program, policy, &mut first, opts);
            tried += 1;
            if !e.pruned() {
                return e;
            }
            last = Some(e);
            if tried >= cap || !first.advance() {
                break;
            }
        }
        if tried >= cap || !first.pruned {
            break;
        }
    }
    // Every schedule tried loops unfairly (`check` refuses such a program).
    last.expect("at least one execution")
}

/// [`reference`], or why a check cannot start: the program does not load, or no schedule ends.
pub fn first_schedule(
    program: &Program,
    policy: Policy,
    max_steps: usize,
) -> Result<Execution, String> {
    let first = reference(program, policy, max_steps);
    if let Some(Failure::Invalid(why) | Failure::Unsupported(why)) = &first.failure {
        return Err(why.clone());
    }
    if first.pruned() {
        return Err(format!(
            "no schedule with at most {REFERENCE_BOUNDS} preemptions among the first {} ends: each repeats a state while a thread that could run never does (EX-11), so there is no outcome to compare with",
            thousands(REFERENCE_EXECUTIONS)
        ));
    }
    Ok(first)
}

/// How far [`reference`] looks for a schedule that ends: preemption bounds and executions.
const REFERENCE_BOUNDS: usize = 8;
const REFERENCE_EXECUTIONS: usize = 100_000;

/// What every execution of one check shares, and the count of executions it made.
struct Search<'a> {
    program: &'a Program,
    header: &'a Header,
    policy: Policy,
    opts: &'a CheckOptions,
    reference: &'a Execution,
    exec_opts: Options,
    executions: usize,
    progress: Progress,
    started: Instant,
}

/// How far a minimization got (EX-10).
enum Minimized {
    /// A failing schedule with `bound` preemptions; every bound below it was explored.
    Smaller { bound: usize, executions: usize },
    /// Every bound asked for below the found one was explored (all of them: it has the fewest
    /// preemptions).
    Minimal { executions: usize },
    /// Shrinking (EX-21) brought it down to the lowest bound not yet explored, so it has the
    /// fewest preemptions with no DFS.
    Shrunk { executions: usize },
    /// Stopped before it was done: the bounds up to `complete` (if any) were explored.
    Stopped {
        complete: Option<usize>,
        executions: usize,
        why: String,
    },
}

impl Minimized {
    fn executions(&self) -> usize {
        match self {
            Minimized::Smaller { executions, .. }
            | Minimized::Minimal { executions }
            | Minimized::Shrunk { executions }
            | Minimized::Stopped { executions, .. } => *executions,
        }
    }
}

impl<'a> Search<'a> {
    fn new(
        program: &'a Program,
        header: &'a Header,
        policy: Policy,
        opts: &'a CheckOptions,
        reference: &'a Execution,
    ) -> Self {
        Search {
            program,
            header,
            policy,
            opts,
            reference,
            exec_opts: Options {
                max_steps: opts.max_steps,
                state_faults: opts.faults.state,
                vm_faults: opts.faults.vm,
                reduce: opts.reduce,
                ..Options::default()
            },
            executions: 0,
            progress: Progress::new(opts.progress),
            started: Instant::now(),
        }
    }

    fn dfs_oracle(&self, bound: usize) -> Dfs {
        let mut d = if self.opts.state_cache {
            Dfs::with_state_cache(bound)
        } else {
            Dfs::new(bound)
        };
        d.ignore_preemptions_left = self.opts.faults.ignore_preemptions_left;
        if self.opts.stateful { d.stateful() } else { d }
    }

    /// One execution of the check (counted in a total over all phases), with a progress line
    /// now and then against `cap`, the most executions the check may run by the end of the phase.
    fn execute(
        &mut self,
        oracle: &mut dyn Oracle,
        phase: &str,
        cap: usize,
        states: Option<usize>,
    ) -> Result<Execution, String> {
        let e = execute(self.program, self.policy, oracle, self.exec_opts);
        self.count(e, phase, cap, states)
    }

    /// Counts an execution of the check, as [`Search::execute`] does.
    fn count(
        &mut self,
        e: Execution,
        phase: &str,
        cap: usize,
        states: Option<usize>,
    ) -> Result<Execution, String> {
        self.executions += 1;
        self.progress
            .tick(phase, self.executions, cap, states, e.steps);
        match &e.failure {
            Some(Failure::Invalid(why) | Failure::Unsupported(why)) => Err(why.clone()),
            _ => Ok(e),
        }
    }

    /// The budget that has run out (EX-15), as the verdict names it: `--time-limit`,
    /// `--max-states` (against `states`, the phase's distinct states), `--max-memory` (read
    /// every 64 executions).
    fn out_of_budget(&self, states: Option<usize>) -> Option<String> {
        let b = &self.opts.budget;
        if let Some(limit) = b.time_limit
            && self.started.elapsed() >= limit
        {
            return Some(format!("--time-limit {} s", thousands_u64(limit.as_secs())));
        }
        if let (Some(max), Some(n)) = (b.max_states, states)
            && n >= max
        {
            return Some(format!("--max-states {}", thousands(max)));
        }
        if let Some(max) = b.max_memory_mib
            && self.executions.is_multiple_of(64)
            && let Some(m) = resident_mib()
            && m >= max
        {
            return Some(format!(
                "--max-memory {} MiB ({m} MiB resident)",
                thousands_u64(max)
            ));
        }
        None
    }

    fn schedule_of(&self, e: &Execution) -> Schedule {
        Schedule {
            header: self.header.clone(),
            events: e.events.clone(),
            loop_from: match e.failure {
                Some(Failure::Loop { from, .. }) => Some(from),
                _ => None,
            },
        }
    }

    /// Re-runs `e`'s schedule with a step table and packages it.
    fn counterexample(
        &self,
        e: Execution,
        what: String,
        found: String,
    ) -> Result<Counterexample, String> {
        let schedule = self.schedule_of(&e);
        let table = if self.opts.full {
            Table::Full
        } else {
            Table::Folded
        };
        let replayed = replay_with(
            self.program,
            self.policy,
            &schedule,
            Options {
                table,
                ..self.exec_opts
            },
        )?;
        if replayed.outcome != e.outcome || replayed.failure != e.failure || replayed.stop != e.stop
        {
            return Err(format!(
                "internal error: replaying the schedule gave a different outcome\n  found:    {:?} {:?} {:?}\n  replayed: {:?} {:?} {:?}",
                e.outcome, e.failure, e.stop, replayed.outcome, replayed.failure, replayed.stop
            ));
        }
        Ok(Counterexample {
            what,
            found,
            reference: self.reference.outcome.clone(),
            reference_preemptions: self.reference.preemptions,
            first: e.events == self.reference.events,
            execution: replayed,
            schedule,
        })
    }

    fn fail(&self, e: Execution, what: String, found: String) -> Result<Verdict, String> {
        Ok(Verdict::Fail(Box::new(
            self.counterexample(e, what, found)?,
        )))
    }

    /// An execution that ran out of its step budget: the verdict is inconclusive (EX-12).
    fn inconclusive(&self, e: Execution, covered: String) -> Result<Verdict, String> {
        let what = format!(
            "an execution ran out of its step budget of {} steps (--max-steps) before the program ended: not a failure of the program, and not a pass either; raise --max-steps (at most {}) or check a smaller size",
            thousands(self.opts.max_steps),
            thousands(MAX_STEPS_CEILING)
        );
        Ok(Verdict::Inconclusive(Box::new(
            self.counterexample(e, what, covered)?,
        )))
    }

    /// Minimizes `e` (EX-10), then fails with it; `how` says how it was found, `from` is the
    /// lowest bound not yet known to have no failure.
    fn fail_minimized(
        &mut self,
        e: Execution,
        why: String,
        how: &str,
        from: usize,
    ) -> Result<Verdict, String> {
        let had = e.preemptions;
        // EX-21: the schedule is shrunk down to the lowest bound not explored, but not to
        // no preemption (DFS under bound 0 is cheap and decides it); then DFS decides the
        // bounds it did not reach.
        let (e, used) = self.shrink(e, from.max(1), 0)?;
        let shrunk = e.preemptions;
        let (e, m) = self.minimize(e, from, usize::MAX, used)?;
        let dfs_ran = m.executions() > used;
        let m = match m {
            Minimized::Minimal { executions } if shrunk < had && !dfs_ran => {
                Minimized::Shrunk { executions }
            }
            m => m,
        };
        self.report_minimized(e, m, had, shrunk, why, how)
    }

    /// The verdict of a minimized failure (EX-10, EX-21): `had` preemptions when found,
    /// `shrunk` after EX-21.
    fn report_minimized(
        &mut self,
        e: Execution,
        m: Minimized,
        had: usize,
        shrunk: usize,
        why: String,
        how: &str,
    ) -> Result<Verdict, String> {
        // What brought the preemptions down: deleting runs of the schedule (EX-21), DFS
        // (EX-10), or both.
        let by = |dfs: bool| match (shrunk < had, dfs) {
            (true, true) => "deleting runs of its schedule (EX-21) and dfs",
            (true, false) => "deleting runs of its schedule (EX-21)",
            (false, _) => "dfs",
        };
        let fewer = |k: usize| {
            if k == 0 {
                "no schedule has fewer".to_string()
            } else {
                format!(
                    "every schedule with at most {} was explored without failure",
                    plural(k - 1, "preemption", "preemptions")
                )
            }
        };
        let found = match m {
            Minimized::Smaller { bound, executions } => format!(
                "{how}; it had {}, and {} minimized it to {} in {} ({})",
                plural(had, "preemption", "preemptions"),
                by(true),
                plural(bound, "preemption", "preemptions"),
                plural(executions, "execution", "executions"),
                fewer(bound)
            ),
            Minimized::Minimal { executions } | Minimized::Shrunk { executions }
                if shrunk < had =>
            {
                format!(
                    "{how}; it had {}, and {} minimized it to {} in {} ({})",
                    plural(had, "preemption", "preemptions"),
                    by(matches!(m, Minimized::Minimal { .. })),
                    plural(shrunk, "preemption", "preemptions"),
                    plural(executions, "execution", "executions"),
                    fewer(shrunk)
                )
            }
            Minimized::Minimal { executions } | Minimized::Shrunk { executions } => format!(
                "{how}; {}: {}{}",
                plural(had, "preemption", "preemptions"),
                fewer(had),
                if executions > 0 {
                    format!(
                        " (minimization: {})",
                        plural(executions, "execution", "executions")
                    )
                } else {
                    String::new()
                }
            ),
            Minimized::Stopped {
                complete,
                executions,
                why,
            } => format!(
                "{how}; {}{}, not minimized: minimization stopped after {} ({why}) {}, so a schedule with fewer preemptions may fail too",
                plural(had, "preemption", "preemptions"),
                if shrunk < had {
                    format!(
                        ", cut to {} by deleting runs of its schedule (EX-21)",
                        plural(shrunk, "preemption", "preemptions")
                    )
                } else {
                    String::new()
                },
                plural(executions, "execution", "executions"),
                match complete {
                    Some(k) => format!(
                        "with every schedule of at most {} explored without failure",
                        plural(k, "preemption", "preemptions")
                    ),
                    None => "before it had explored every schedule without preemption".into(),
                }
            ),
        };
        let why = failure_of(&e, &self.reference.outcome).unwrap_or(why);
        self.fail(e, why, found)
    }

    /// Deletes runs from the schedule of the failing execution `found` while it still fails
    /// with fewer preemptions or fewer runs (EX-21): each try is one execution of a
    /// [`Guided`] plan. It stops at `from` preemptions, `from` being the lowest bound not yet
    /// explored. Returns the smallest failing execution it met and the executions minimization
    /// has made with it (`used` before), which count against its `--max-executions`.
    fn shrink(
        &mut self,
        found: Execution,
        from: usize,
        used: usize,
    ) -> Result<(Execution, usize), String> {
        let budget = self.opts.max_executions;
        let cap = budget.saturating_mul(2);
        let watch_from = self.reference.steps.saturating_mul(2).saturating_add(1_000);
        let mut best = found;
        let mut plan = Guided::plan_of(&best.events);
        let mut used = used;
        let phase = "minimizing: deleting runs of the failing schedule";
        // Chunks of runs are deleted, from the last back (the runs after the failure took
        // shape go first), halving the chunk until it is one run; then each run is also let
        // go on until its thread blocks or ends. Passes of single runs repeat while one keeps
        // a try.
        let mut size = (plan.len() / 2).max(1);
        while best.preemptions > from {
            let mut kept = false;
            let mut end = plan.len();
            while end > 0 && best.preemptions > from {
                let start = end.saturating_sub(size);
                let mut edits = vec![false];
                if size == 1 {
                    edits.push(true);
                }
                let mut next = start;
                for extend in edits {
                    if used >= budget || self.out_of_budget(None).is_some() {
                        return Ok((best, used));
                    }
                    let mut trial = plan.clone();
                    if extend {
                        trial[start].1 = usize::MAX;
                    } else {
                        trial.drain(start..end);
                    }
                    let mut guided = Guided::new(trial).watching_from(watch_from);
                    let e = self.execute(&mut guided, phase, cap, None)?;
                    used += 1;
                    let fails = !e.pruned()
                        && !e.out_of_steps()
                        && failure_of(&e, &self.reference.outcome).is_some();
                    if !fails && !self.opts.faults.shrink_keeps_passing {
                        continue;
                    }
                    let runs = Guided::plan_of(&e.events);
                    if (e.preemptions, runs.len()) < (best.preemptions, plan.len()) {
                        (best, plan, kept) = (e, runs, true);
                        next = start.min(plan.len());
                        break;
                    }
                }
                end = next;
            }
            if size > 1 {
                size = (size / 2).max(1);
            } else if !kept {
                break;
            }
        }
        Ok((best, used))
    }

    /// Looks for a failing schedule with fewer preemptions than `found`: DFS (with the state
    /// cache) under bounds `from`, `from + 1`, … below it and below `to`, with
    /// `--max-executions` executions in all, `used` of them already spent.
    fn minimize(
        &mut self,
        found: Execution,
        from: usize,
        to: usize,
        used: usize,
    ) -> Result<(Execution, Minimized), String> {
        let budget = self.opts.max_executions;
        // The progress lines' cap: the search's plus this one.
        let cap = budget.saturating_mul(2);
        let mut used = used;
        for bound in from..found.preemptions.min(to) {
            let mut search = self.dfs_oracle(bound);
            let stopped = |used: usize, why: &str| Minimized::Stopped {
                complete: bound.checked_sub(1),
                executions: used,
                why: why.into(),
            };
            let phase = format!(
                "minimizing (at most {} more), preemption bound {bound}",
                thousands(budget)
            );
            enum Ended {
                Stopped(String),
                Smaller(Execution),
                Error(String),
            }
            let mut ended = None;
            let (program, policy, exec_opts) = (self.program, self.policy, self.exec_opts);
            drive(program, policy, &mut search, exec_opts, &mut |o, v| {
                let e = match v {
                    Visit::Ran(e) => e,
                    Visit::Next => {
                        if used >= budget {
                            ended = Some(Ended::Stopped("--max-executions".into()));
                        } else if let Some(why) = self.out_of_budget(None) {
                            ended = Some(Ended::Stopped(why));
                        }
                        return ended.is_none();
                    }
                };
                let e = match self.count(e, &phase, cap, Some(o.states())) {
                    Ok(e) => e,
                    Err(why) => {
                        ended = Some(Ended::Error(why));
                        return false;
                    }
                };
                used += 1;
                if e.out_of_steps() {
                    ended = Some(Ended::Stopped(
                        "an execution ran out of its step budget".into(),
                    ));
                } else if !e.pruned() && failure_of(&e, &self.reference.outcome).is_some() {
                    ended = Some(Ended::Smaller(e));
                }
                ended.is_none()
            });
            match ended {
                None => {}
                Some(Ended::Error(why)) => return Err(why),
                Some(Ended::Stopped(why)) => return Ok((found, stopped(used, &why))),
                Some(Ended::Smaller(e)) => {
                    return Ok((
                        e,
                        Minimized::Smaller {
                            bound,
                            executions: used,
                        },
                    ));
                }
            }
        }
        Ok((found, Minimized::Minimal { executions: used }))
    }
}

/// Runs the executions of `search` one after another until `each` says stop or the search is
/// over: statefully when the oracle was made so (EX-16), else each from the start. `each` is
/// asked before each execution ([`Visit::Next`]) and shown it when it has run.
fn drive(
    program: &Program,
    policy: Policy,
    search: &mut Dfs,
    opts: Options,
    each: &mut dyn FnMut(&mut dyn Oracle, Visit) -> bool,
) {
    if search.is_stateful() {
        return explore_stateful(program, policy, search, opts, each);
    }
    loop {
        if !each(search, Visit::Next) {
            return;
        }
        let e = execute(program, policy, search, opts);
        if !each(search, Visit::Ran(e)) || !search.advance() {
            return;
        }
    }
}

/// Runs the check `opts` describes (all engines but loom, see `crate::explore::loom`).
pub fn check(
    program: &Program,
    header: &Header,
    policy: Policy,
    opts: &CheckOptions,
) -> Result<Verdict, String> {
    let first = first_schedule(program, policy, opts.max_steps)?;
    let mut search = Search::new(program, header, policy, opts, &first);
    let first_schedule = if first.preemptions == 0 {
        "the first execution: the schedule with no preemption".to_string()
    } else {
        format!(
            "the first execution that ends: a schedule with {} (every one with fewer loops unfairly)",
            plural(first.preemptions, "preemption", "preemptions")
        )
    };
    if first.out_of_steps() {
        return search.inconclusive(first.clone(), format!("it was {first_schedule}"));
    }
    if let Some(why) = failure_of(&first, &first.outcome) {
        return search.fail(first.clone(), why, format!("found in {first_schedule}"));
    }
    match opts.engine {
        Engine::Dfs => dfs(&mut search),
        Engine::Pct | Engine::Random => sample(&mut search),
        Engine::Loom => Err("the loom engine is run by crate::explore::loom".into()),
    }
}

fn phase_name(bound: usize) -> String {
    if bound == UNBOUNDED {
        "dfs, unbounded".into()
    } else {
        format!("dfs, preemption bound {bound}")
    }
}

fn dfs(s: &mut Search<'_>) -> Result<Verdict, String> {
    let opts = s.opts;
    let mut bound = 0usize;
    let mut parallel = opts.jobs > 1 && opts.stateful && opts.state_cache;
    loop {
        if bound == UNBOUNDED && parallel {
            match parallel_phase(s)? {
                Some(v) => return Ok(v),
                // A failure or a step budget run out: the sequential phase finds the same
                // first one as with --jobs 1 (EX-19).
                None => parallel = false,
            }
            continue;
        }
        let mut search = s.dfs_oracle(bound);
        let phase = phase_name(bound);
        enum Ended {
            Error(String),
            OutOfSteps(Execution),
            Fail(Execution, String),
            Capped(String),
        }
        let mut ended = None;
        let (program, policy, exec_opts) = (s.program, s.policy, s.exec_opts);
        drive(program, policy, &mut search, exec_opts, &mut |o, v| {
            let Visit::Ran(e) = v else { return true };
            let states = opts.state_cache.then(|| o.states());
            ended = match s.count(e, &phase, opts.max_executions, states) {
                Err(why) => Some(Ended::Error(why)),
                Ok(e) if e.out_of_steps() => Some(Ended::OutOfSteps(e)),
                Ok(e) => match failure_of(&e, &s.reference.outcome) {
                    Some(why) => Some(Ended::Fail(e, why)),
                    None if s.executions >= opts.max_executions => Some(Ended::Capped(format!(
                        "--max-executions {}",
                        thousands(opts.max_executions)
                    ))),
                    None => s.out_of_budget(states).map(Ended::Capped),
                },
            };
            ended.is_none()
        });
        let total = s.executions;
        match ended {
            None => {}
            Some(Ended::Error(why)) => return Err(why),
            Some(Ended::Capped(why)) => return Ok(capped(bound, total, &why)),
            Some(Ended::OutOfSteps(e)) => {
                let covered = format!(
                    "it was execution {} of dfs ({phase}; {})",
                    thousands(total),
                    done_before(bound)
                );
                return s.inconclusive(e, covered);
            }
            Some(Ended::Fail(e, why)) => {
                if bound == UNBOUNDED {
                    let how = format!(
                        "found by dfs at execution {} (unbounded, after bounds 0–2 found nothing)",
                        thousands(total)
                    );
                    return s.fail_minimized(e, why, &how, 3);
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
                    "found by dfs at execution {} (preemption bound {bound}: {}; {minimal})",
                    thousands(total),
                    plural(e.preemptions, "preemption", "preemptions"),
                );
                return s.fail(e, why, found);
            }
        }
        if !search.pruned || opts.preemptions == Some(bound) {
            return Ok(Verdict::Pass {
                line: covered(bound, s.executions, &search, opts),
                executions: s.executions,
            });
        }
        if bound == 0
            && let Some(v) = sampled_pass(s)?
        {
            return Ok(v);
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

/// The unbounded phase over `opts.jobs` OS threads (EX-19): the verdict when it passed or a
/// budget stopped it; `None` when an execution failed or ran out of steps, which the
/// sequential phase then finds first as it would with one job.
fn parallel_phase(s: &mut Search<'_>) -> Result<Option<Verdict>, String> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let opts = s.opts;
    let started = s.started;
    let before = s.executions;
    let executions = AtomicUsize::new(before);
    let error: Mutex<Option<String>> = Mutex::new(None);
    let stopped_by: Mutex<Option<String>> = Mutex::new(None);
    let failed = std::sync::atomic::AtomicBool::new(false);
    let progress = Mutex::new(Progress::new(opts.progress));
    let shared = std::sync::Arc::new(crate::explore::oracles::SharedCache::default());
    let reference = &s.reference.outcome;
    let phase = format!("dfs, unbounded, {} jobs", opts.jobs);
    let each = |e: Execution| -> bool {
        let n = executions.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(Failure::Invalid(why) | Failure::Unsupported(why)) = &e.failure {
            *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
            return false;
        }
        if e.out_of_steps() || failure_of(&e, reference).is_some() {
            failed.store(true, Ordering::Relaxed);
            return false;
        }
        if let Ok(mut p) = progress.try_lock() {
            p.tick(&phase, n, opts.max_executions, Some(shared.len()), e.steps);
        }
        let b = &opts.budget;
        let why = if n >= opts.max_executions {
            Some(format!(
                "--max-executions {}",
                thousands(opts.max_executions)
            ))
        } else if let Some(limit) = b.time_limit
            && started.elapsed() >= limit
        {
            Some(format!("--time-limit {} s", thousands_u64(limit.as_secs())))
        } else if let Some(max) = b.max_memory_mib
            && n.is_multiple_of(64)
            && let Some(m) = resident_mib()
            && m >= max
        {
            Some(format!(
                "--max-memory {} MiB ({m} MiB resident)",
                thousands_u64(max)
            ))
        } else {
            None
        };
        if let Some(why) = why {
            stopped_by
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(why);
            return false;
        }
        true
    };
    drive_parallel(
        s.program,
        s.policy,
        s.exec_opts,
        UNBOUNDED,
        opts.faults,
        opts.jobs,
        &shared,
        &each,
    );
    let total = executions.load(Ordering::Relaxed);
    if let Some(why) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(why);
    }
    if failed.load(Ordering::Relaxed) {
        // Counted as --jobs 1 would count: the sequential phase starts over.
        s.executions = before;
        return Ok(None);
    }
    s.executions = total;
    if let Some(why) = stopped_by.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Ok(Some(capped(UNBOUNDED, total, &why)));
    }
    Ok(Some(Verdict::Pass {
        line: covered_by(UNBOUNDED, total, shared.len(), false, opts),
        executions: total,
    }))
}

/// The executions of a DFS with preemption bound `bound` over `jobs` OS threads (EX-19): the
/// tree is split at the first decisions into parts (at least eight a job where the tree has
/// them), each part is searched statefully by whichever thread is free, and every thread
/// prunes at the states any of them has explored completely (`shared`). `each` is shown
/// every execution, from any thread, and stops the whole search by returning `false`.
/// Returns whether an option was skipped for the bound.
#[allow(clippy::too_many_arguments)]
fn drive_parallel(
    program: &Program,
    policy: Policy,
    opts: Options,
    bound: usize,
    faults: SearchFaults,
    jobs: usize,
    shared: &std::sync::Arc<crate::explore::oracles::SharedCache>,
    each: &(dyn Fn(Execution) -> bool + Sync),
) -> bool {
    let (parts, top, pruned) = split(program, policy, opts, bound, 8 * jobs);
    drive_parts(
        program, policy, opts, bound, faults, jobs, shared, parts, top, pruned, each,
    )
}

/// The top of the DFS tree under `bound` (EX-19, EX-23): the shallowest cut that gives `want`
/// parts, or the whole tree. Returns the paths of the parts, the executions that ended above
/// the cut, and whether an option was skipped for the bound there. The same program, policy
/// and `want` always give the same parts in the same order.
fn split(
    program: &Program,
    policy: Policy,
    opts: Options,
    bound: usize,
    want: usize,
) -> (Vec<Vec<usize>>, Vec<Execution>, bool) {
    let (mut parts, mut top, mut pruned) = (Vec::new(), Vec::new(), false);
    for depth in [2, 4, 8, 12, 16, 24, 32] {
        let mut cut = Dfs::cutting(bound, depth);
        let mut ended = Vec::new();
        explore_stateful(program, policy, &mut cut, opts, &mut |_, v| {
            if let Visit::Ran(e) = v
                && e.stop != Some(crate::explore::world::Stop::Explored)
            {
                ended.push(e);
            }
            true
        });
        pruned = cut.pruned;
        let grew = cut.parts.len() > parts.len();
        (parts, top) = (std::mem::take(&mut cut.parts), ended);
        if parts.len() >= want || !grew {
            break;
        }
    }
    (parts, top, pruned)
}

/// Searches `parts` over `jobs` OS threads after showing `each` the executions `top` that
/// ended above the cut (EX-19); see [`drive_parallel`].
#[allow(clippy::too_many_arguments)]
fn drive_parts(
    program: &Program,
    policy: Policy,
    opts: Options,
    bound: usize,
    faults: SearchFaults,
    jobs: usize,
    shared: &std::sync::Arc<crate::explore::oracles::SharedCache>,
    parts: Vec<Vec<usize>>,
    top: Vec<Execution>,
    pruned: bool,
    each: &(dyn Fn(Execution) -> bool + Sync),
) -> bool {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    let bounded = AtomicBool::new(pruned);
    // The executions of the top of the tree that ended above the cut.
    for e in top {
        if !each(e) {
            return bounded.load(Ordering::Relaxed);
        }
    }
    let queue = Mutex::new(parts);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some(part) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                        return;
                    };
                    let mut search = Dfs::part(bound, part, shared.clone());
                    search.ignore_preemptions_left = faults.ignore_preemptions_left;
                    explore_stateful(program, policy, &mut search, opts, &mut |_, v| match v {
                        Visit::Next => !stop.load(Ordering::Relaxed),
                        Visit::Ran(e) => {
                            if each(e) {
                                !faults.part_cut_short
                            } else {
                                stop.store(true, Ordering::Relaxed);
                                false
                            }
                        }
                    });
                    if search.pruned {
                        bounded.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    bounded.load(Ordering::Relaxed)
}

/// What one shard of the unbounded search found (EX-23).
#[derive(Debug)]
pub struct ShardRun {
    /// Parts of the split, and how many of them are this shard's.
    pub parts: usize,
    pub mine: usize,
    /// A digest of the split (the paths of all parts, in order): equal in every shard.
    pub split: u64,
    pub executions: usize,
    /// Distinct states this shard explored completely.
    pub states: usize,
    /// The budget that stopped it, if one did.
    pub stopped: Option<String>,
    /// The first failure (or execution out of steps) it met, not minimized.
    pub failure: Option<Box<Counterexample>>,
    pub inconclusive: bool,
}

/// Shard `index` (from 0) of `count` (EX-23): the unbounded DFS (stateful, with its own
/// visited set) of the parts of the tree whose number is `index` modulo `count`, after the
/// same split into at least eight parts a shard that every shard makes; the executions that
/// end above the cut are shard 0's. A failure is reported as found, not minimized.
pub fn check_shard(
    program: &Program,
    header: &Header,
    policy: Policy,
    opts: &CheckOptions,
    index: usize,
    count: usize,
) -> Result<ShardRun, String> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let first = first_schedule(program, policy, opts.max_steps)?;
    let mut s = Search::new(program, header, policy, opts, &first);
    let mut run = ShardRun {
        parts: 0,
        mine: 0,
        split: 0,
        executions: 1,
        states: 0,
        stopped: None,
        failure: None,
        inconclusive: false,
    };
    if first.out_of_steps() || failure_of(&first, &first.outcome).is_some() {
        let (what, inconclusive) = match failure_of(&first, &first.outcome) {
            Some(why) => (why, false),
            None => (
                "the first schedule ran out of its step budget (--max-steps)".into(),
                true,
            ),
        };
        run.failure = Some(Box::new(s.counterexample(
            first.clone(),
            what,
            "found in the first schedule".into(),
        )?));
        run.inconclusive = inconclusive;
        return Ok(run);
    }
    let (parts, top, _) = split(program, policy, s.exec_opts, UNBOUNDED, 8 * count);
    let mut digest = xxhash_rust::xxh3::Xxh3::new();
    for p in &parts {
        digest.update(&(p.len() as u64).to_le_bytes());
        for c in p {
            digest.update(&(*c as u64).to_le_bytes());
        }
    }
    run.parts = parts.len();
    run.split = digest.digest();
    let mine: Vec<Vec<usize>> = parts
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % count == index)
        .map(|(_, p)| p)
        .collect();
    run.mine = mine.len();
    let top = if index == 0 { top } else { Vec::new() };
    let executions = AtomicUsize::new(1);
    let found: Mutex<Option<(Execution, String, usize)>> = Mutex::new(None);
    let stopped: Mutex<Option<String>> = Mutex::new(None);
    let error: Mutex<Option<String>> = Mutex::new(None);
    let started = Instant::now();
    let progress = Mutex::new(Progress::new(opts.progress));
    let shared = std::sync::Arc::new(crate::explore::oracles::SharedCache::default());
    let phase = format!("dfs, unbounded, shard {}/{count}", index + 1);
    let each = |e: Execution| -> bool {
        let n = executions.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(Failure::Invalid(why) | Failure::Unsupported(why)) = &e.failure {
            *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
            return false;
        }
        if e.out_of_steps() {
            let why = "an execution ran out of its step budget (--max-steps)".to_string();
            *found.lock().unwrap_or_else(|p| p.into_inner()) = Some((e, why, n));
            return false;
        }
        if let Some(why) = failure_of(&e, &first.outcome) {
            *found.lock().unwrap_or_else(|p| p.into_inner()) = Some((e, why, n));
            return false;
        }
        if let Ok(mut p) = progress.try_lock() {
            p.tick(&phase, n, opts.max_executions, Some(shared.len()), e.steps);
        }
        let why = if n >= opts.max_executions {
            Some(format!(
                "--max-executions {}",
                thousands(opts.max_executions)
            ))
        } else {
            opts.budget
                .time_limit
                .filter(|limit| started.elapsed() >= *limit)
                .map(|limit| format!("--time-limit {} s", thousands_u64(limit.as_secs())))
        };
        if let Some(why) = why {
            *stopped.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
            return false;
        }
        true
    };
    drive_parts(
        program,
        policy,
        s.exec_opts,
        UNBOUNDED,
        opts.faults,
        1,
        &shared,
        mine,
        top,
        false,
        &each,
    );
    if let Some(why) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(why);
    }
    run.executions = executions.load(Ordering::Relaxed);
    run.states = shared.len();
    run.stopped = stopped.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some((e, why, n)) = found.into_inner().unwrap_or_else(|p| p.into_inner()) {
        run.inconclusive = e.out_of_steps();
        let had = e.preemptions;
        // A failure is shrunk (EX-21), down to one preemption; an execution out of steps is
        // reported as met.
        let e = if run.inconclusive {
            e
        } else {
            let (e, tries) = s.shrink(e, 1, 0)?;
            run.executions += tries;
            e
        };
        let shrunk = if e.preemptions < had {
            format!(
                "; it had {}, cut to {} by deleting runs of its schedule (EX-21)",
                plural(had, "preemption", "preemptions"),
                plural(e.preemptions, "preemption", "preemptions")
            )
        } else {
            String::new()
        };
        let how = format!(
            "found by shard {}/{count} at its execution {} (unbounded dfs of {} of the {} parts of the tree){shrunk}; not minimized: `gilcheck check` without --shard minimizes it",
            index + 1,
            thousands(n),
            run.mine,
            run.parts
        );
        run.failure = Some(Box::new(s.counterexample(e, why, how)?));
    }
    Ok(run)
}

/// What the search had covered completely before the phase of `bound`.
fn done_before(bound: usize) -> String {
    match bound {
        0 => "nothing was explored completely before".into(),
        UNBOUNDED => {
            "every schedule with at most 2 preemptions was explored without failure before".into()
        }
        b => format!(
            "every schedule with at most {} was explored without failure before",
            plural(b - 1, "preemption", "preemptions")
        ),
    }
}

/// The verdict line of a DFS that stopped at a budget (`why`: `--max-executions N`, …).
fn capped(bound: usize, total: usize, why: &str) -> Verdict {
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
            "no failure in the first {} ({covered}; stopped at {why}: not exhaustive)",
            plural(total, "execution", "executions"),
        ),
        executions: total,
    }
}

/// The verdict line of a DFS that finished a bound: complete (nothing skipped for the bound)
/// or bounded (`--preemptions` reached). `executions` counts every phase.
fn covered(bound: usize, executions: usize, search: &Dfs, opts: &CheckOptions) -> String {
    covered_by(bound, executions, search.states(), search.pruned, opts)
}

/// [`covered`] from the counts: `states` explored, `pruned` (an option was skipped for the
/// bound).
fn covered_by(
    bound: usize,
    executions: usize,
    states: usize,
    pruned: bool,
    opts: &CheckOptions,
) -> String {
    let what = if opts.state_cache {
        format!(
            "{} reached at decisions, by {} in all (a state reached again is not explored again)",
            plural(states, "distinct state", "distinct states"),
            plural(executions, "execution", "executions"),
        )
    } else {
        format!(
            "{} in all",
            plural(executions, "interleaving", "interleavings")
        )
    };
    let at_most = plural(bound, "preemption", "preemptions");
    if pruned {
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
        format!("every interleaving explored, {what}, none needing more than {at_most}")
    };
    format!("exhaustive, every schedule: {how}")
}

/// The sampled pass between DFS's bounds 0 and 1 (EX-22): PCT executions from `--seed`, with
/// two priority change points; a failure is minimized from bound 1 on (bound 0 found none).
/// `None`: no failure, and DFS goes on.
fn sampled_pass(s: &mut Search<'_>) -> Result<Option<Verdict>, String> {
    let opts = s.opts;
    let n = opts
        .sample
        .unwrap_or(if s.reference.steps >= AUTO_SAMPLE_STEPS {
            AUTO_SAMPLE
        } else {
            0
        });
    let watch_from = s.reference.steps.saturating_mul(2).saturating_add(1_000);
    let mut pct = Pct::new(opts.seed, 2).watching_from(watch_from);
    let phase = format!("pct before dfs's bound 1 ({n} executions)");
    for i in 1..=n {
        if s.executions >= opts.max_executions || s.out_of_budget(None).is_some() {
            break; // the next phase reports the budget
        }
        pct.reset();
        let e = s.execute(&mut pct, &phase, opts.max_executions, None)?;
        // An execution out of steps is left to DFS, which reports it where it meets it.
        if e.pruned() || e.out_of_steps() {
            continue;
        }
        if let Some(why) = failure_of(&e, &s.reference.outcome) {
            let how = format!(
                "found by pct at execution {} (the sampled pass before dfs's bound 1, seed {}, its execution {i} of {n}; bound 0 found nothing)",
                thousands(s.executions),
                opts.seed
            );
            return s.fail_minimized(e, why, &how, 1).map(Some);
        }
    }
    Ok(None)
}

fn sample(s: &mut Search<'_>) -> Result<Verdict, String> {
    let opts = s.opts;
    let changes = opts.preemptions.unwrap_or(2);
    // A fair execution is rarely much longer than the first one: watch for states that repeat
    // from twice its length on.
    let watch_from = s.reference.steps.saturating_mul(2).saturating_add(1_000);
    let mut pct = Pct::new(opts.seed, changes).watching_from(watch_from);
    let mut walk = RandomWalk::new(opts.seed).watching_from(watch_from);
    let mut dropped = 0usize;
    let name = opts.engine.name();
    for i in 1..=opts.max_executions {
        if i > 1
            && let Some(why) = s.out_of_budget(None)
        {
            return Ok(Verdict::Pass {
                line: format!(
                    "no failure in the first {} of {name} (seed {}; stopped at {why}): sampled, not a proof",
                    plural(i - 1, "execution", "executions"),
                    opts.seed
                ),
                executions: i - 1,
            });
        }
        let e = if opts.engine == Engine::Pct {
            pct.reset();
            s.execute(&mut pct, name, opts.max_executions, None)?
        } else {
            s.execute(&mut walk, name, opts.max_executions, None)?
        };
        if e.out_of_steps() {
            let covered = format!(
                "it was execution {} of {name} (seed {}; no failure in the executions before it)",
                thousands(i),
                opts.seed
            );
            return s.inconclusive(e, covered);
        }
        if e.pruned() {
            dropped += 1;
            continue;
        }
        if let Some(why) = failure_of(&e, &s.reference.outcome) {
            let how = format!(
                "found by {name} at execution {} (seed {})",
                thousands(i),
                opts.seed
            );
            return s.fail_minimized(e, why, &how, 0);
        }
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
    let dropped = if dropped > 0 {
        format!(
            " ({} repeated a state unfairly and ended there)",
            plural(dropped, "execution", "executions")
        )
    } else {
        String::new()
    };
    Ok(Verdict::Pass {
        line: format!(
            "no failure in {} {how}{dropped}: sampled, not a proof",
            thousands(opts.max_executions)
        ),
        executions: opts.max_executions,
    })
}

/// Executes exactly `schedule`, with the step table `table`. A schedule the program does not
/// follow is an error that says where it diverges.
pub fn replay(
    program: &Program,
    policy: Policy,
    schedule: &Schedule,
    max_steps: usize,
    table: Table,
) -> Result<Execution, String> {
    let opts = Options {
        max_steps,
        table,
        ..Options::default()
    };
    replay_with(program, policy, schedule, opts)
}

/// [`replay`] with the options of an execution (its budget, table and, for the twins, faults).
pub fn replay_with(
    program: &Program,
    policy: Policy,
    schedule: &Schedule,
    opts: Options,
) -> Result<Execution, String> {
    let (steps, max_steps) = (schedule.steps(), opts.max_steps);
    if steps > max_steps {
        return Err(format!(
            "the schedule runs {} steps, more than the step budget of {} (--max-steps)",
            thousands(steps),
            thousands(max_steps)
        ));
    }
    let mut oracle = Replay::new(schedule.events.clone());
    let e = execute(
        program,
        policy,
        &mut oracle,
        Options {
            loop_claim: schedule.loop_from.map(|from| (from, steps)),
            ..opts
        },
    );
    if let Some(Failure::Invalid(why) | Failure::Unsupported(why)) = &e.failure {
        return Err(why.clone());
    }
    if let Some(why) = oracle.leftover() {
        return Err(why);
    }
    Ok(e)
}

/// [`replay`] of a bare list of events (a schedule that does not end in a loop), without a
/// step table.
pub fn replay_events(
    program: &Program,
    policy: Policy,
    events: &[crate::explore::Event],
    max_steps: usize,
) -> Result<Execution, String> {
    let schedule = Schedule {
        header: Header::default(),
        events: events.to_vec(),
        loop_from: None,
    };
    replay(program, policy, &schedule, max_steps, Table::Off)
}

/// How one execution ended, for comparing the outcomes of two searches (EX-13): what it
/// printed, the final globals, and the kind of failure (a loop's steps left out: the same loop
/// is met after different prefixes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ending {
    pub output: String,
    pub state: Vec<(String, String)>,
    pub failure: Option<String>,
}

impl Ending {
    pub fn of(e: &Execution) -> Ending {
        Ending {
            output: e.outcome.output.clone(),
            state: e.outcome.state.clone(),
            failure: e.failure.as_ref().map(|f| match f {
                Failure::Loop { .. } => "no termination: a fair loop".to_string(),
                f => f.to_string(),
            }),
        }
    }
}

/// Everything one DFS found when it explores every schedule (EX-13): every distinct ending,
/// whether the search finished, and what cut executions short.
#[derive(Debug, Clone, Default)]
pub struct Exploration {
    pub endings: BTreeSet<Ending>,
    pub executions: usize,
    /// Executions ended at a state explored before or in an unfair loop.
    pub pruned: usize,
    /// Executions that ran out of their step budget.
    pub out_of_steps: usize,
    /// Stopped at `max_executions` before the search was done.
    pub capped: bool,
    /// Some schedule was left out for the preemption bound.
    pub bounded: bool,
}

impl Exploration {
    /// Counts `e` and keeps its ending; `false` once `cap` executions are counted.
    fn record(&mut self, e: &Execution, cap: usize) -> bool {
        self.executions += 1;
        if e.pruned() {
            self.pruned += 1;
        } else if e.out_of_steps() {
            self.out_of_steps += 1;
        } else {
            self.endings.insert(Ending::of(e));
        }
        self.capped = self.executions >= cap;
        !self.capped
    }
}

/// Explores every schedule with at most `opts.preemptions` preemptions (all of them with
/// `None`), with or without the state cache as `opts.state_cache` says, without stopping at
/// failures, and collects every distinct way an execution ended (EX-13).
pub fn explore_all(
    program: &Program,
    policy: Policy,
    opts: &CheckOptions,
) -> Result<Exploration, String> {
    let bound = opts.preemptions.unwrap_or(UNBOUNDED);
    let mut search = if opts.state_cache {
        Dfs::with_state_cache(bound)
    } else {
        Dfs::new(bound)
    };
    search.ignore_preemptions_left = opts.faults.ignore_preemptions_left;
    let exec_opts = Options {
        max_steps: opts.max_steps,
        state_faults: opts.faults.state,
        reduce: opts.reduce,
        ..Options::default()
    };
    if opts.jobs > 1 && opts.stateful && opts.state_cache {
        return explore_all_parallel(program, policy, opts, bound, exec_opts);
    }
    if opts.stateful {
        search = search.stateful();
    }
    let mut x = Exploration::default();
    let mut error = None;
    drive(program, policy, &mut search, exec_opts, &mut |_, v| {
        let Visit::Ran(e) = v else { return true };
        if let Some(Failure::Invalid(why) | Failure::Unsupported(why)) = &e.failure {
            error = Some(why.clone());
            return false;
        }
        x.record(&e, opts.max_executions)
    });
    if let Some(why) = error {
        return Err(why);
    }
    x.bounded = search.pruned;
    Ok(x)
}

/// [`explore_all`] over `opts.jobs` OS threads (EX-19).
fn explore_all_parallel(
    program: &Program,
    policy: Policy,
    opts: &CheckOptions,
    bound: usize,
    exec_opts: Options,
) -> Result<Exploration, String> {
    use std::sync::Mutex;
    let x = Mutex::new(Exploration::default());
    let error = Mutex::new(None);
    let shared = std::sync::Arc::new(crate::explore::oracles::SharedCache::default());
    let each = |e: Execution| -> bool {
        if let Some(Failure::Invalid(why) | Failure::Unsupported(why)) = &e.failure {
            *error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
            return false;
        }
        let mut x = x.lock().unwrap_or_else(|p| p.into_inner());
        x.record(&e, opts.max_executions)
    };
    let bounded = drive_parallel(
        program,
        policy,
        exec_opts,
        bound,
        opts.faults,
        opts.jobs,
        &shared,
        &each,
    );
    if let Some(why) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(why);
    }
    let mut x = x.into_inner().unwrap_or_else(|p| p.into_inner());
    x.bounded = bounded;
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(output: &str, state: &[(&str, &str)]) -> Outcome {
        Outcome {
            output: output.into(),
            state: state
                .iter()
                .map(|(n, r)| (n.to_string(), r.to_string()))
                .collect(),
        }
    }

    /// EX-4: the one-line reason names the first data global that differs, else the first printed
    /// line, else how many lines were printed; a difference in anything else is named as such.
    #[test]
    fn ex4_difference_names_what_differs_first() {
        let first = outcome("a\nb\n", &[("x", "1"), ("f", "<function f>")]);
        let state = outcome("a\nb\n", &[("x", "2"), ("f", "<function f>")]);
        assert_eq!(
            describe_difference(&first, &state),
            "the outcome differs between schedules: x = 2 here, x = 1 in the first schedule"
        );
        let line = outcome("a\nc\n", &[("x", "1"), ("f", "<function f>")]);
        assert_eq!(
            describe_difference(&first, &line),
            "the outcome differs between schedules: printed \"c\" here, \"b\" in the first schedule"
        );
        let longer = outcome("a\nb\nc\n", &[("x", "1"), ("f", "<function f>")]);
        assert_eq!(
            describe_difference(&first, &longer),
            "the outcome differs between schedules: 3 lines printed here, 2 lines in the first schedule"
        );
        let function = outcome("a\nb\n", &[("x", "1"), ("f", "<function g>")]);
        assert_eq!(
            describe_difference(&first, &function),
            "the outcome differs between schedules"
        );
    }

    /// The phase a progress line and an inconclusive verdict name, and what was covered before it.
    #[test]
    fn dfs_phases_are_named_by_their_bound() {
        assert_eq!(phase_name(0), "dfs, preemption bound 0");
        assert_eq!(phase_name(3), "dfs, preemption bound 3");
        assert_eq!(phase_name(UNBOUNDED), "dfs, unbounded");
        assert_eq!(done_before(0), "nothing was explored completely before");
        assert_eq!(
            done_before(2),
            "every schedule with at most 1 preemption was explored without failure before"
        );
        assert_eq!(
            done_before(UNBOUNDED),
            "every schedule with at most 2 preemptions was explored without failure before"
        );
    }
}
