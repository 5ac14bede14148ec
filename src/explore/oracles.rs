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
    cache: Option<Cache>,
    /// A search of one part of the tree (EX-19): the choices of the first decisions, which it
    /// makes and never comes back to.
    prefix: Vec<usize>,
    /// Splitting the tree (EX-19): at the first new fingerprinted decision with this many
    /// decisions of more than one option before it, the path so far is recorded as a part and
    /// the execution ends there.
    cut: Option<usize>,
    /// The parts recorded, when cutting.
    pub parts: Vec<Vec<usize>>,
    /// The states (with the preemptions used) the parts begin at.
    cut_states: std::collections::HashSet<(u128, usize)>,
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
    /// Run by [`crate::explore::world::explore_stateful`] (EX-16): asks for the world to be
    /// saved at each new decision between steps, and is rewound to one after each execution.
    stateful: bool,
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
    /// Decisions between steps made before this one in its execution.
    checkpoint: usize,
    /// Its preemptions are offered at a later decision that was explored (EX-17).
    covered: bool,
}

/// The states DFS has explored completely, each with the most preemptions that were left to
/// spend when it was (EX-7): its own, or one shared by the workers of a parallel search
/// (EX-19).
enum Cache {
    Own(FingerprintMap<usize>),
    Shared(std::sync::Arc<SharedCache>),
}

impl Cache {
    fn get(&self, state: u128) -> Option<usize> {
        match self {
            Cache::Own(m) => m.get(&state).copied(),
            Cache::Shared(c) => c.get(state),
        }
    }

    fn explored(&mut self, state: u128, left: usize) {
        match self {
            Cache::Own(m) => {
                let had = m.entry(state).or_insert(left);
                *had = (*had).max(left);
            }
            Cache::Shared(c) => c.explored(state, left),
        }
    }

    fn len(&self) -> usize {
        match self {
            Cache::Own(m) => m.len(),
            Cache::Shared(c) => c.len(),
        }
    }
}

/// A visited set the workers of a parallel search share (EX-19): 64 shards, each under its
/// own lock, chosen by the fingerprint's low bits.
pub struct SharedCache {
    shards: [std::sync::Mutex<FingerprintMap<usize>>; 64],
    len: std::sync::atomic::AtomicUsize,
}

impl Default for SharedCache {
    fn default() -> Self {
        SharedCache {
            shards: std::array::from_fn(|_| std::sync::Mutex::default()),
            len: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl SharedCache {
    fn shard(&self, state: u128) -> std::sync::MutexGuard<'_, FingerprintMap<usize>> {
        self.shards[(state as usize) % 64]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, state: u128) -> Option<usize> {
        self.shard(state).get(&state).copied()
    }

    fn explored(&self, state: u128, left: usize) {
        let mut shard = self.shard(state);
        match shard.get_mut(&state) {
            Some(had) => *had = (*had).max(left),
            None => {
                shard.insert(state, left);
                self.len.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// States explored completely, by every worker.
    pub fn len(&self) -> usize {
        self.len.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Dfs {
    /// The part of a search (EX-19) below the decisions `prefix` chooses, with the visited set
    /// `shared`, run statefully.
    pub fn part(bound: usize, prefix: Vec<usize>, shared: std::sync::Arc<SharedCache>) -> Self {
        Dfs {
            cache: Some(Cache::Shared(shared)),
            prefix,
            ..Dfs::new(bound).stateful()
        }
    }

    /// A search that splits the tree (EX-19): it records, as [`Dfs::parts`], the path to each
    /// first new fingerprinted decision with `depth` decisions of more than one option before
    /// it, and explores nothing below; it has no cache (nothing below a cut is explored).
    pub fn cutting(bound: usize, depth: usize) -> Self {
        Dfs {
            cut: Some(depth),
            ..Dfs::new(bound).stateful()
        }
    }

    pub fn new(bound: usize) -> Self {
        Dfs {
            nodes: Vec::new(),
            pos: 0,
            used: 0,
            bound,
            pruned: false,
            mismatch: None,
            cache: None,
            prefix: Vec::new(),
            cut: None,
            parts: Vec::new(),
            cut_states: Default::default(),
            path: FingerprintMap::default(),
            checkpoints: 0,
            pending: None,
            ignore_preemptions_left: false,
            stateful: false,
        }
    }

    /// The same search, run statefully (EX-16): it explores the same schedules in the same
    /// order, but each execution is taken up at the decision whose choice changed.
    pub fn stateful(mut self) -> Self {
        self.stateful = true;
        self
    }

    /// The same search, but an execution that reaches a state explored before (with at least
    /// as many preemptions left) ends there: what follows has been explored (EX-7).
    pub fn with_state_cache(bound: usize) -> Self {
        Dfs {
            cache: Some(Cache::Own(Default::default())),
            ..Dfs::new(bound)
        }
    }

    /// Whether it is run statefully (EX-16).
    pub fn is_stateful(&self) -> bool {
        self.stateful
    }

    /// Distinct states whose subtree was explored completely, when caching.
    pub fn states(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::len)
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
        while self.nodes.len() > self.prefix.len()
            && let Some(node) = self.nodes.last_mut()
        {
            let next = node.chosen + 1;
            if next < node.options && !node.covered {
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
                    cache.explored(state, self.bound.saturating_sub(done.before));
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
        let chosen = match self.prefix.get(self.pos) {
            Some(&c) if c < d.options() => c,
            Some(_) => {
                if self.mismatch.is_none() {
                    self.mismatch = Some(format!(
                        "internal error: part of the search does not replay (decision {} has {} options)",
                        self.pos,
                        d.options()
                    ));
                }
                0
            }
            None => 0,
        };
        self.nodes.push(Node {
            options: d.options(),
            chosen,
            before: self.used,
            costly,
            state,
            checkpoint,
            covered: false,
        });
        self.used += d.cost(chosen);
        self.pos += 1;
        chosen
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

    fn states(&self) -> usize {
        Dfs::states(self)
    }

    fn snapshot_at(&self, costly: bool, options: usize) -> Option<usize> {
        // A decision with one option, or a poll point with no preemption left to spend, is
        // never come back to (a lock take inside the next step resumes from an earlier world).
        let spent = costly && self.used.saturating_add(1) > self.bound;
        self.fresh_decision()
            .filter(|_| self.stateful && !spent && options > 1)
    }

    fn spent(&self, costly: bool) -> bool {
        costly && self.used.saturating_add(1) > self.bound
    }

    fn unbounded(&self) -> bool {
        self.bound == usize::MAX
    }

    fn replaying(&self) -> bool {
        self.pos < self.nodes.len()
    }

    fn fresh_decision(&self) -> Option<usize> {
        (self.pos == self.nodes.len()).then_some(self.pos)
    }

    fn deferred(&mut self, node: usize) {
        if let Some(n) = self.nodes.get_mut(node) {
            n.covered = true;
        }
    }

    fn next_path(&mut self) -> Option<usize> {
        self.advance().then(|| self.nodes.len() - 1)
    }

    fn rewind(&mut self, node: usize) {
        self.pos = node;
        self.pending = None;
        (self.used, self.checkpoints) = self
            .nodes
            .get(node)
            .map_or((0, 0), |n| (n.before, n.checkpoint));
    }

    fn seen(&mut self, state: u128) -> bool {
        if self.pos < self.nodes.len() {
            return false; // on the recorded prefix: an ancestor of what is explored now
        }
        let left = self.bound.saturating_sub(self.used);
        if let Some(cut) = self.cut
            && self.nodes.iter().filter(|n| n.options > 1).count() >= cut
        {
            // One part for each state at the cut and preemptions used: what lies below it
            // depends on nothing else (EX-7).
            if self.cut_states.insert((state, self.used)) {
                self.parts
                    .push(self.nodes.iter().map(|n| n.chosen).collect());
            }
            return true;
        }
        if let Some(cache) = &self.cache
            && let Some(had) = cache.get(state)
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

/// Follows a plan drawn from a failing schedule, as far as the execution lets it (EX-21): the
/// plan is the schedule's runs, each a thread and the number of its own steps it has taken when
/// the run ends. At each decision the first run not yet done names the thread that should
/// run: the holder keeps the GIL if it is that thread, or if that thread cannot take it now;
/// when nobody holds the GIL, it goes to that thread, else to the candidate whose run comes
/// first in the plan. Once the plan is used up, the holder keeps the GIL and a free GIL goes to
/// the first candidate, as in the schedule DFS tries first. Deleting runs from the plan
/// deletes the switches into and out of them; minimization (EX-21) deletes them as long as the
/// execution still fails.
pub struct Guided {
    plan: Vec<(u32, usize)>,
    at: usize,
    own: Vec<usize>,
    watch_from: usize,
}

impl Guided {
    pub fn new(plan: Vec<(u32, usize)>) -> Self {
        Guided {
            plan,
            at: 0,
            own: Vec::new(),
            watch_from: usize::MAX,
        }
    }

    /// Watches for a state that repeats from step `from` on (EX-11).
    pub fn watching_from(self, from: usize) -> Self {
        Guided {
            watch_from: from,
            ..self
        }
    }

    /// The runs of a schedule's steps: each thread with its own step count at the run's end.
    pub fn plan_of(events: &[Event]) -> Vec<(u32, usize)> {
        let mut own: Vec<usize> = Vec::new();
        let mut plan: Vec<(u32, usize)> = Vec::new();
        for e in events {
            let Event::Step(t) = *e else { continue };
            let i = t as usize;
            if own.len() <= i {
                own.resize(i + 1, 0);
            }
            own[i] += 1;
            match plan.last_mut() {
                Some((last, until)) if *last == t => *until = own[i],
                _ => plan.push((t, own[i])),
            }
        }
        plan
    }

    fn own(&self, t: u32) -> usize {
        self.own.get(t as usize).copied().unwrap_or(0)
    }

    /// The first run of the plan not yet done.
    fn target(&mut self) -> Option<u32> {
        while let Some(&(t, until)) = self.plan.get(self.at) {
            if self.own(t) < until {
                return Some(t);
            }
            self.at += 1;
        }
        None
    }
}

impl Oracle for Guided {
    fn choose(&mut self, d: &Decision) -> usize {
        let target = self.target();
        match d {
            Decision::Poll { holder, candidates } => match target {
                Some(t) if t != *holder => {
                    candidates.iter().position(|&c| c == t).map_or(0, |i| i + 1)
                }
                _ => 0,
            },
            Decision::Next { candidates } => {
                if let Some(i) = target.and_then(|t| candidates.iter().position(|&c| c == t)) {
                    return i;
                }
                // The run due cannot start (its thread is blocked or done): the plan goes on
                // from the next run of a thread that can.
                let from = self.at.min(self.plan.len());
                let ahead = self.plan[from..]
                    .iter()
                    .enumerate()
                    .find_map(|(j, &(t, until))| {
                        let i = candidates.iter().position(|&c| c == t)?;
                        (self.own(t) < until).then_some((from + j, i))
                    });
                match ahead {
                    Some((j, i)) => {
                        self.at = j;
                        i
                    }
                    None => 0,
                }
            }
            Decision::Grab { .. } => 0,
        }
    }

    fn watch(&self) -> Watch {
        Watch {
            decisions_from: self.watch_from,
            quiet: true,
        }
    }

    fn on_step(&mut self, t: u32) {
        let i = t as usize;
        if self.own.len() <= i {
            self.own.resize(i + 1, 0);
        }
        self.own[i] += 1;
    }
}
