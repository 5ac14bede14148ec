//! An independent search for the checks of the explorer's own (EX-13, EX-14): plain depth-first
//! enumeration of every schedule with at most `bound` preemptions, counting preemptions from
//! the decisions it is asked, with no state cache and no watch for loops (an execution that
//! loops runs until its step budget). Nothing of gilcheck's `Dfs` is used.
#![allow(dead_code)]

use gilcheck::explore::engine::Ending;
use gilcheck::explore::{Decision, Execution, Options, Oracle, execute};
use gilcheck::vm::{Policy, Program};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy)]
struct Choice {
    options: usize,
    chosen: usize,
    /// Whether an option other than 0 is a preemption (a poll point or a lock take).
    costly: bool,
}

pub struct Naive {
    path: Vec<Choice>,
    pos: usize,
    bound: usize,
    /// Some option was left out for the bound.
    pub bounded: bool,
}

impl Naive {
    pub fn new(bound: usize) -> Naive {
        Naive {
            path: Vec::new(),
            pos: 0,
            bound,
            bounded: false,
        }
    }

    /// Preemptions of the choices before decision `at`.
    fn used(&self, at: usize) -> usize {
        self.path[..at]
            .iter()
            .filter(|c| c.costly && c.chosen > 0)
            .count()
    }

    /// Moves to the next schedule; `false` when every one has been run.
    pub fn next(&mut self) -> bool {
        self.pos = 0;
        while let Some(c) = self.path.last().copied() {
            let at = self.path.len() - 1;
            let next = c.chosen + 1;
            if next < c.options {
                let cost = usize::from(c.costly);
                if self.used(at) + cost <= self.bound {
                    self.path[at].chosen = next;
                    return true;
                }
                self.bounded = true;
            }
            self.path.pop();
        }
        false
    }

    /// Preemptions of the current execution's choices.
    pub fn preemptions(&self) -> usize {
        self.used(self.path.len())
    }
}

impl Oracle for Naive {
    fn choose(&mut self, d: &Decision) -> usize {
        let costly = !matches!(d, Decision::Next { .. });
        if self.pos == self.path.len() {
            self.path.push(Choice {
                options: d.options(),
                chosen: 0,
                costly,
            });
        }
        let c = self.path[self.pos];
        assert_eq!(c.options, d.options(), "the program is not deterministic");
        self.pos += 1;
        c.chosen
    }
}

/// What the naive search found.
#[derive(Debug, Default)]
pub struct Found {
    /// The endings of the executions that ended (not those that ran out of steps).
    pub endings: BTreeSet<Ending>,
    pub executions: usize,
    pub out_of_steps: usize,
    pub bounded: bool,
    /// The first execution (in DFS order) that fails, compared with the first that ended.
    pub first_failure: Option<Execution>,
}

/// Every schedule of `program` under `policy` with at most `bound` preemptions, each execution
/// with the step budget `max_steps`; at most `cap` executions (panics beyond, so that a check
/// never passes on a search cut short).
pub fn search(
    program: &Program,
    policy: Policy,
    bound: usize,
    max_steps: usize,
    cap: usize,
) -> Found {
    try_search(program, policy, bound, max_steps, cap)
        .unwrap_or_else(|| panic!("the naive search passed {cap} executions"))
}

/// [`search`], or `None` when it would take more than `cap` executions.
pub fn try_search(
    program: &Program,
    policy: Policy,
    bound: usize,
    max_steps: usize,
    cap: usize,
) -> Option<Found> {
    let mut n = Naive::new(bound);
    let mut found = Found::default();
    let mut reference: Option<Execution> = None;
    loop {
        let e = execute(
            program,
            policy,
            &mut n,
            Options {
                max_steps,
                ..Options::default()
            },
        );
        found.executions += 1;
        if found.executions > cap {
            return None;
        }
        if e.out_of_steps() {
            found.out_of_steps += 1;
        } else {
            found.endings.insert(Ending::of(&e));
            match &reference {
                None => reference = Some(e.clone()),
                Some(r) => {
                    if found.first_failure.is_none()
                        && (e.failure.is_some() || e.outcome != r.outcome)
                    {
                        found.first_failure = Some(e.clone());
                    }
                }
            }
            if found.first_failure.is_none() && e.failure.is_some() {
                found.first_failure = Some(e);
            }
        }
        if !n.next() {
            break;
        }
    }
    found.bounded = n.bounded;
    Some(found)
}
