//! The oracles that answer the model's decisions (rules EX-5, EX-6, EX-7, EX-10 of
//! `spec/explore.md`): DFS with a preemption bound and an optional state cache, PCT, a uniform
//! random walk, and the replay of a recorded schedule.

use crate::explore::schedule::Event;
use crate::explore::world::{Decision, FingerprintMap, Oracle, Watch};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Depth-first search of every schedule whose preemptions stay within `bound` (stateless: each
/// execution re-runs the program, following the recorded prefix of choices). Every decision's
/// state is fingerprinted, so that an execution whose state comes back is recognised as a loop
/// (EX-11); with the state cache, an execution that reaches a state whose whole subtree was
/// explored before, with at least as many preemptions left, ends there (EX-7).
pub struct Dfs {
    nodes: Vec<Node>,
    pos: usize,
    used: usize,
    bound: usize,
    /// Some option was skipped because it would exceed the bound.
    pub pruned: bool,
    mismatch: Option<String>,
    /// With state caching (EX-7): every state whose subtree has been explored completely, with
    /// the most preemptions that were left to spend when it was.
    cache: Option<FingerprintMap<usize>>,
    /// The states of the decisions on the current path, each with its number among the
    /// path's decisions between steps (EX-11).
    path: FingerprintMap<usize>,
    /// Decisions between steps (not lock takes) made so far in the current execution.
    checkpoints: usize,
    /// The fingerprint of the state at the fresh decision being met, for its node.
    pending: Option<u128>,
    /// Breaks EX-7 on purpose (the twin of the check of the preemption budget): a state is
    /// pruned whatever preemptions were left when it was explored.
    #[doc(hidden)]
    pub ignore_preemptions_left: bool,
}

#[derive(Debug, Clone)]
struct Node {
    options: usize,
    chosen: usize,
    /// Preemptions used before this decision.
    before: usize,
    /// Whether options above 0 cost a preemption.
    costly: bool,
    /// The state's fingerprint (decisions between steps; not lock takes inside a step).
    state: Option<u128>,
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
            path: FingerprintMap::default(),
            checkpoints: 0,
            pending: None,
            ignore_preemptions_left: false,
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

    /// Distinct states whose subtree was explored completely, when caching.
    pub fn states(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }

    /// Preemptions the current execution has used, by this oracle's count of its choices.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Moves to the next unexplored schedule; `false` when there is none. A decision whose
    /// options are all explored leaves the path, and its state enters the cache.
    pub fn advance(&mut self) -> bool {
        self.pos = 0;
        self.used = 0;
        self.checkpoints = 0;
        self.pending = None;
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
            let done = self.nodes.pop().expect("a node");
            if let Some(state) = done.state {
                self.path.remove(&state);
                if let Some(cache) = &mut self.cache {
                    let left = self.bound.saturating_sub(done.before);
                    let had = cache.entry(state).or_insert(left);
                    *had = (*had).max(left);
                }
            }
        }
        false
    }
}

impl Oracle for Dfs {
    fn choose(&mut self, d: &Decision) -> usize {
        let costly = !matches!(d, Decision::Next { .. });
        let checkpoint = self.checkpoints;
        if !matches!(d, Decision::Grab { .. }) {
            self.checkpoints += 1;
        }
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
        // Lock takes are decided inside a step, where no state is fingerprinted.
        let state = match d {
            Decision::Grab { .. } => None,
            _ => self.pending.take(),
        };
        if let Some(s) = state {
            self.path.insert(s, checkpoint);
        }
        self.nodes.push(Node {
            options: d.options(),
            chosen: 0,
            before: self.used,
            costly,
            state,
        });
        self.pos += 1;
        0
    }

    fn invalid(&self) -> Option<String> {
        self.mismatch.clone()
    }

    fn watch(&self) -> Watch {
        Watch::ALL
    }

    fn known_state(&self) -> Option<u128> {
        self.nodes.get(self.pos).and_then(|n| n.state)
    }

    fn keeps_path(&self) -> bool {
        true
    }

    fn on_path(&self, state: u128) -> Option<usize> {
        self.path.get(&state).copied()
    }

    fn seen(&mut self, state: u128) -> bool {
        if self.pos < self.nodes.len() {
            return false; // on the recorded prefix: an ancestor of what is explored now
        }
        let left = self.bound.saturating_sub(self.used);
        if let Some(cache) = &self.cache
            && let Some(&had) = cache.get(&state)
            && (had >= left || self.ignore_preemptions_left)
        {
            return true;
        }
        self.pending = Some(state);
        false
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
    watch_from: usize,
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
            watch_from: usize::MAX,
        }
    }

    /// Watches for a state that repeats from step `from` on (EX-11).
    pub fn watching_from(self, from: usize) -> Self {
        Pct {
            watch_from: from,
            ..self
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

    fn watch(&self) -> Watch {
        Watch {
            decisions_from: self.watch_from,
            quiet: true,
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
    watch_from: usize,
}

impl RandomWalk {
    pub fn new(seed: u64) -> Self {
        RandomWalk {
            rng: Pcg64::seed_from_u64(seed),
            watch_from: usize::MAX,
        }
    }

    /// Watches for a state that repeats from step `from` on (EX-11).
    pub fn watching_from(self, from: usize) -> Self {
        RandomWalk {
            watch_from: from,
            ..self
        }
    }
}

impl Oracle for RandomWalk {
    fn choose(&mut self, d: &Decision) -> usize {
        self.rng.gen_range(0..d.options())
    }

    fn watch(&self) -> Watch {
        Watch {
            decisions_from: self.watch_from,
            quiet: true,
        }
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
            // A recorded lock take comes before the step that made it, so `grab_now` has
            // already applied it when the lock was still free: the holder's acquire then finds
            // it taken and makes no decision. Here no take is due.
            Decision::Grab { .. } => 0,
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
