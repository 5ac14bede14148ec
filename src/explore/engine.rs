//! Search engines over the model's decisions (rules EX-5 … EX-9 of `spec/explore.md`): DFS
//! with a preemption bound, raised 0, 1, 2, … so that the first counterexample has the fewest
//! preemptions; PCT; uniform random; and the replay of a recorded schedule.

use crate::explore::schedule::{Event, Header, Schedule};
use crate::explore::world::{Decision, Execution, Failure, Options, Oracle, Outcome, execute};
use crate::vm::{Policy, Program};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::time::{Duration, Instant};

/// Depth-first search of every schedule whose preemptions stay within `bound` (stateless: each
/// execution re-runs the program, following the recorded prefix of choices).
pub struct Dfs {
    nodes: Vec<Node>,
    pos: usize,
    used: usize,
    bound: usize,
    /// Some option was skipped because it would exceed the bound.
    pub pruned: bool,
    mismatch: Option<String>,
    /// With state caching (EX-7): every state met at a decision, with the most preemptions
    /// that were left to spend when it was explored.
    cache: Option<std::collections::HashMap<u128, usize>>,
    /// Executions ended at a state explored before.
    pub cuts: usize,
}

#[derive(Debug, Clone)]
struct Node {
    options: usize,
    chosen: usize,
    /// Preemptions used before this decision.
    before: usize,
    /// Whether options above 0 cost a preemption.
    costly: bool,
}

impl Dfs {
    pub fn new(bound: usize) -> Self {
        Dfs {
            nodes: Vec::new(),
            pos: 0,
            used: 0,
            bound,
            pruned: false,
            mismatch: None,
            cache: None,
            cuts: 0,
        }
    }

    /// The same search, but an execution that reaches a state explored before (with at least
    /// as many preemptions left) ends there: what follows has been explored (EX-7).
    pub fn with_state_cache(bound: usize) -> Self {
        Dfs {
            cache: Some(Default::default()),
            ..Dfs::new(bound)
        }
    }

    /// Distinct states met at decisions, when caching.
    pub fn states(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }

    /// Moves to the next unexplored schedule; `false` when there is none.
    pub fn advance(&mut self) -> bool {
        self.pos = 0;
        self.used = 0;
        while let Some(node) = self.nodes.last_mut() {
            let next = node.chosen + 1;
            if next < node.options {
                if node.costly && node.before + 1 > self.bound {
                    self.pruned = true; // every remaining option costs one more
                } else {
                    node.chosen = next;
                    return true;
                }
            }
            self.nodes.pop();
        }
        false
    }
}

impl Oracle for Dfs {
    fn choose(&mut self, d: &Decision) -> usize {
        let costly = !matches!(d, Decision::Next { .. });
        if self.pos < self.nodes.len() {
            let node = &self.nodes[self.pos];
            if node.options != d.options() && self.mismatch.is_none() {
                self.mismatch = Some(format!(
                    "internal error: the program is not deterministic (decision {} had {} options, now {})",
                    self.pos,
                    node.options,
                    d.options()
                ));
            }
            let c = node.chosen.min(d.options().saturating_sub(1));
            self.pos += 1;
            self.used += d.cost(c);
            return c;
        }
        self.nodes.push(Node {
            options: d.options(),
            chosen: 0,
            before: self.used,
            costly,
        });
        self.pos += 1;
        0
    }

    fn invalid(&self) -> Option<String> {
        self.mismatch.clone()
    }

    fn wants_state(&self) -> bool {
        // Decisions on the recorded prefix are ancestors of what is explored now: no lookup.
        self.cache.is_some() && self.pos >= self.nodes.len()
    }

    fn seen(&mut self, state: u128) -> bool {
        if self.pos < self.nodes.len() {
            return false; // on the recorded prefix: an ancestor of what is explored now
        }
        let left = self.bound.saturating_sub(self.used);
        let Some(cache) = &mut self.cache else {
            return false;
        };
        match cache.get(&state) {
            Some(&had) if had >= left => {
                self.cuts += 1;
                true
            }
            _ => {
                cache.insert(state, left);
                false
            }
        }
    }
}

/// Probabilistic Concurrency Testing (Burckhardt et al., ASPLOS 2010): random thread
/// priorities, the highest-priority thread that can run always runs, and at `depth` random
/// steps the running thread's priority drops below all others.
pub struct Pct {
    rng: Pcg64,
    changes: usize,
    priorities: Vec<u64>,
    change_points: Vec<usize>,
    step: usize,
    longest: usize,
    next_low: u64,
}

impl Pct {
    /// `changes` priority change points per execution (PCT's bug depth minus one).
    pub fn new(seed: u64, changes: usize) -> Self {
        Pct {
            rng: Pcg64::seed_from_u64(seed),
            changes,
            priorities: Vec::new(),
            change_points: Vec::new(),
            step: 0,
            longest: 200,
            next_low: 0,
        }
    }

    /// Starts a new execution: fresh priorities and change points.
    pub fn reset(&mut self) {
        self.longest = self.longest.max(self.step);
        self.step = 0;
        self.priorities.clear();
        self.next_low = self.changes as u64;
        let longest = self.longest;
        self.change_points = (0..self.changes)
            .map(|_| self.rng.gen_range(1..=longest))
            .collect();
    }

    fn priority(&mut self, t: u32) -> u64 {
        while self.priorities.len() <= t as usize {
            let p = self.rng.gen_range(1_000..u64::MAX / 2);
            self.priorities.push(p);
        }
        self.priorities[t as usize]
    }

    fn best(&mut self, threads: &[u32]) -> usize {
        let mut best = 0;
        for i in 1..threads.len() {
            if self.priority(threads[i]) > self.priority(threads[best]) {
                best = i;
            }
        }
        best
    }
}

impl Oracle for Pct {
    fn choose(&mut self, d: &Decision) -> usize {
        match d {
            Decision::Poll { holder, candidates }
            | Decision::Grab {
                holder,
                waiters: candidates,
                ..
            } => {
                let all: Vec<u32> = std::iter::once(*holder)
                    .chain(candidates.iter().copied())
                    .collect();
                self.best(&all)
            }
            Decision::Next { candidates } => self.best(candidates),
        }
    }

    fn on_step(&mut self, t: u32) {
        self.step += 1;
        if self.change_points.contains(&self.step) {
            let low = self.next_low;
            self.next_low = self.next_low.saturating_sub(1);
            self.priority(t);
            self.priorities[t as usize] = low;
        }
    }
}

/// A uniformly random choice at every decision.
pub struct RandomWalk {
    rng: Pcg64,
}

impl RandomWalk {
    pub fn new(seed: u64) -> Self {
        RandomWalk {
            rng: Pcg64::seed_from_u64(seed),
        }
    }
}

impl Oracle for RandomWalk {
    fn choose(&mut self, d: &Decision) -> usize {
        self.rng.gen_range(0..d.options())
    }
}

/// Follows a recorded schedule; reports where it stops matching the execution.
pub struct Replay {
    events: Vec<Event>,
    pos: usize,
    steps: usize,
    error: Option<String>,
}

impl Replay {
    pub fn new(events: Vec<Event>) -> Self {
        Replay {
            events,
            pos: 0,
            steps: 0,
            error: None,
        }
    }

    /// The next thread to run a step, looking past lock takes.
    fn next_stepper(&self) -> Option<u32> {
        self.events[self.pos..].iter().find_map(|e| match e {
            Event::Step(t) => Some(*t),
            Event::Grab(_) => None,
        })
    }

    fn fail(&mut self, why: String) -> usize {
        if self.error.is_none() {
            self.error = Some(why);
        }
        0
    }
}

impl Oracle for Replay {
    fn choose(&mut self, d: &Decision) -> usize {
        match d {
            Decision::Poll { holder, candidates } => match self.next_stepper() {
                Some(t) if t == *holder => 0,
                Some(t) => match candidates.iter().position(|&c| c == t) {
                    Some(i) => i + 1,
                    None => self.fail(format!("after step {} the schedule runs thread {t}, which cannot take the GIL then", self.steps)),
                },
                None => 0,
            },
            Decision::Next { candidates } => match self.next_stepper() {
                Some(t) => match candidates.iter().position(|&c| c == t) {
                    Some(i) => i,
                    None => self.fail(format!("after step {} the schedule runs thread {t}, which cannot take the GIL then", self.steps)),
                },
                None => self.fail(format!("the schedule ends after step {}, but threads remain", self.steps)),
            },
            Decision::Grab { waiters, .. } => match self.events.get(self.pos) {
                Some(Event::Grab(w)) => match waiters.iter().position(|c| c == w) {
                    Some(i) => {
                        self.pos += 1;
                        i + 1
                    }
                    None => 0,
                },
                _ => 0,
            },
        }
    }

    fn grab_now(&mut self) -> Option<u32> {
        match self.events.get(self.pos) {
            Some(Event::Grab(w)) => {
                self.pos += 1;
                Some(*w)
            }
            _ => None,
        }
    }

    fn on_step(&mut self, t: u32) {
        self.steps += 1;
        match self.events.get(self.pos) {
            Some(Event::Step(s)) if *s == t => self.pos += 1,
            Some(Event::Step(s)) => {
                let s = *s;
                self.fail(format!(
                    "at step {} the schedule runs thread {s}, but thread {t} holds the GIL and is not at a poll point, blocked or finished (a switch this policy does not allow)",
                    self.steps
                ));
            }
            _ => {
                self.fail(format!(
                    "the schedule ends at step {}, but the program goes on",
                    self.steps - 1
                ));
            }
        }
    }

    fn invalid(&self) -> Option<String> {
        self.error.clone()
    }
}

impl Replay {
    /// Whether every event was used (call after the execution).
    pub fn leftover(&self) -> Option<String> {
        (self.pos < self.events.len()).then(|| {
            format!(
                "the program ended after step {}, but the schedule has {} more event(s)",
                self.steps,
                self.events.len() - self.pos
            )
        })
    }
}

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

/// Runs the check `opts` describes (all engines but loom, see `crate::explore::loom`).
pub fn check(
    program: &Program,
    header: &Header,
    policy: Policy,
    opts: &CheckOptions,
) -> Result<Verdict, String> {
    let exec_opts = Options {
        max_steps: opts.max_steps,
        ..Options::default()
    };
    let reference = reference(program, policy, opts.max_steps);
    if let Some(Failure::Invalid(why)) = &reference.failure {
        return Err(why.clone());
    }
    if let Some(why) = failure_of(&reference, &reference.outcome) {
        let found = "in the first execution: the schedule with no preemption".to_string();
        return counterexample(
            program,
            header,
            policy,
            opts,
            &reference.outcome,
            reference.clone(),
            why,
            found,
        )
        .map(|c| Verdict::Fail(Box::new(c)));
    }
    match opts.engine {
        Engine::Dfs => dfs(program, header, policy, opts, &reference.outcome, exec_opts),
        Engine::Pct | Engine::Random => {
            sample(program, header, policy, opts, &reference.outcome, exec_opts)
        }
        Engine::Loom => Err("the loom engine is run by crate::explore::loom".into()),
    }
}

fn dfs(
    program: &Program,
    header: &Header,
    policy: Policy,
    opts: &CheckOptions,
    reference: &Outcome,
    exec_opts: Options,
) -> Result<Verdict, String> {
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
            let e = execute(program, policy, &mut search, exec_opts);
            if let Some(Failure::Invalid(why)) = &e.failure {
                return Err(why.clone());
            }
            at_bound += 1;
            total += 1;
            if !e.cut
                && let Some(why) = failure_of(&e, reference)
            {
                if bound == UNBOUNDED {
                    let name = "dfs";
                    let (e, found) = minimize(
                        program,
                        policy,
                        opts,
                        reference,
                        e,
                        exec_opts,
                        |p, ex| {
                            format!(
                                "by {name} at execution {} (unbounded search after bounds 0–2 found nothing); {p} ({ex})",
                                thousands(total)
                            )
                        },
                    );
                    let why = failure_of(&e, reference).unwrap_or(why);
                    return counterexample(program, header, policy, opts, reference, e, why, found)
                        .map(|c| Verdict::Fail(Box::new(c)));
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
                return counterexample(program, header, policy, opts, reference, e, why, found)
                    .map(|c| Verdict::Fail(Box::new(c)));
            }
            if total >= opts.max_executions {
                let covered = match bound {
                    0 => "schedules without preemption, not all".to_string(),
                    UNBOUNDED => "every schedule with at most 2 preemptions, then part of the unbounded search".to_string(),
                    b => format!(
                        "every schedule with at most {}, then part of those with {b}",
                        plural(b - 1, "preemption", "preemptions")
                    ),
                };
                return Ok(Verdict::Pass {
                    line: format!(
                        "no failure in the first {} ({covered}; stopped at --max-executions {}: not exhaustive)",
                        plural(total, "execution", "executions"),
                        thousands(opts.max_executions)
                    ),
                    executions: total,
                });
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
        let covered = if opts.state_cache {
            format!(
                "{} reached at decisions, by {} (a state reached again is not explored again)",
                plural(search.states(), "distinct state", "distinct states"),
                plural(at_bound, "execution", "executions"),
            )
        } else {
            plural(at_bound, "interleaving", "interleavings")
        };
        if !search.pruned {
            let how = if bound == UNBOUNDED {
                format!("every reachable state explored, {covered}")
            } else if opts.state_cache {
                format!(
                    "every reachable state explored, {covered}; schedules with at most {} reach them all",
                    plural(bound, "preemption", "preemptions")
                )
            } else {
                format!(
                    "all {covered}, none needing more than {}",
                    plural(bound, "preemption", "preemptions")
                )
            };
            return Ok(Verdict::Pass {
                line: format!("exhaustive, every schedule: {how}"),
                executions: total,
            });
        }
        if opts.preemptions == Some(bound) {
            return Ok(Verdict::Pass {
                line: format!(
                    "exhaustive up to {}: every schedule with at most that many, {covered} (schedules with more were not explored)",
                    plural(bound, "preemption", "preemptions")
                ),
                executions: total,
            });
        }
        // With state caching, bounds 0–2 give minimal counterexamples for the usual bugs; past
        // them one unbounded search explores each state once instead of every bound again.
        bound = if opts.state_cache && opts.preemptions.is_none() && bound >= 2 {
            UNBOUNDED
        } else {
            bound + 1
        };
    }
}

/// The preemption bound of an unbounded search.
const UNBOUNDED: usize = usize::MAX;

fn sample(
    program: &Program,
    header: &Header,
    policy: Policy,
    opts: &CheckOptions,
    reference: &Outcome,
    exec_opts: Options,
) -> Result<Verdict, String> {
    let mut progress = Progress::new(opts.progress);
    let changes = opts.preemptions.unwrap_or(2);
    let mut pct = Pct::new(opts.seed, changes);
    let mut walk = RandomWalk::new(opts.seed);
    for i in 1..=opts.max_executions {
        let e = if opts.engine == Engine::Pct {
            pct.reset();
            execute(program, policy, &mut pct, exec_opts)
        } else {
            execute(program, policy, &mut walk, exec_opts)
        };
        if let Some(why) = failure_of(&e, reference) {
            let name = opts.engine.name();
            let (e, found) = minimize(program, policy, opts, reference, e, exec_opts, |p, ex| {
                format!(
                    "by {name} at execution {} (seed {}); {p} ({ex})",
                    thousands(i),
                    opts.seed
                )
            });
            let why = failure_of(&e, reference).unwrap_or(why);
            return counterexample(program, header, policy, opts, reference, e, why, found)
                .map(|c| Verdict::Fail(Box::new(c)));
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

/// Looks for a failing schedule with fewer preemptions than `found` (DFS with bounds 0, 1, …
/// below it, each capped at `--max-executions`).
fn minimize(
    program: &Program,
    policy: Policy,
    opts: &CheckOptions,
    reference: &Outcome,
    found: Execution,
    exec_opts: Options,
    describe: impl Fn(&str, &str) -> String,
) -> (Execution, String) {
    for bound in 0..found.preemptions {
        let mut search = Dfs::with_state_cache(bound);
        let mut n = 0;
        loop {
            let e = execute(program, policy, &mut search, exec_opts);
            n += 1;
            if !e.cut && failure_of(&e, reference).is_some() {
                let note = format!(
                    "minimized by dfs to {} (its preemption bound {bound}{})",
                    plural(e.preemptions, "preemption", "preemptions"),
                    if bound == 0 {
                        ""
                    } else {
                        "; lower bounds explored without failure"
                    }
                );
                let text = describe(
                    &format!(
                        "it had {}",
                        plural(found.preemptions, "preemption", "preemptions")
                    ),
                    &note,
                );
                return (e, text);
            }
            if n >= opts.max_executions || !search.advance() {
                break;
            }
        }
        if n >= opts.max_executions {
            break;
        }
    }
    let text = describe(
        &plural(found.preemptions, "preemption", "preemptions"),
        "no schedule with fewer preemptions fails",
    );
    (found, text)
}

/// Re-runs `e`'s schedule with a step table, and packages it.
#[allow(clippy::too_many_arguments)]
fn counterexample(
    program: &Program,
    header: &Header,
    policy: Policy,
    opts: &CheckOptions,
    reference: &Outcome,
    e: Execution,
    what: String,
    found: String,
) -> Result<Counterexample, String> {
    let schedule = Schedule {
        header: header.clone(),
        events: e.events.clone(),
    };
    let replayed = replay(program, policy, &schedule.events, opts.max_steps)?;
    if replayed.outcome != e.outcome || replayed.failure != e.failure {
        return Err(format!(
            "internal error: replaying the failing schedule gave a different outcome\n  found:    {:?} {:?}\n  replayed: {:?} {:?}",
            e.outcome, e.failure, replayed.outcome, replayed.failure
        ));
    }
    Ok(Counterexample {
        what,
        found,
        reference: reference.clone(),
        execution: replayed,
        schedule,
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
