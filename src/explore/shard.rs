//! Shards of the unbounded search and their merge (rule EX-23 of `spec/explore.md`): `check
//! --shard I/N` writes what one shard found as JSON, and `gilcheck merge` combines the files of
//! all N shards into one verdict.

use crate::explore::engine::{ShardRun, thousands};
use serde::{Deserialize, Serialize};

/// The format tag of a shard file.
pub const FORMAT: &str = "gilcheck-shard/1";

/// The most shards a search is split into.
pub const MAX_SHARDS: usize = 4096;

/// One shard's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardFile {
    pub format: String,
    /// What was checked: the scenario or file, the version, the size, the step budget.
    pub scenario: String,
    pub python: String,
    pub threads: u32,
    pub iterations: u64,
    pub max_steps: usize,
    /// This shard (from 1) and the number of shards.
    pub shard: usize,
    pub shards: usize,
    /// The parts the tree was split into, how many were this shard's, and a digest of the
    /// split (equal in every shard of one search).
    pub parts: usize,
    pub mine: usize,
    pub split: String,
    pub executions: usize,
    /// Distinct states this shard explored completely.
    pub states: usize,
    /// The budget that stopped the shard before it had searched its parts.
    pub stopped: Option<String>,
    pub failure: Option<ShardFailure>,
}

/// A failure a shard met, as found (not minimized).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardFailure {
    /// `fail`, or `inconclusive` (an execution ran out of its step budget).
    pub kind: String,
    pub what: String,
    pub found: String,
    pub preemptions: usize,
    pub steps: usize,
    /// The schedule string, and the command that replays it.
    pub schedule: String,
    pub replay: String,
}

impl ShardFile {
    /// The file of a shard's run; `what` names the check (scenario, version, size).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: &str,
        python: &str,
        threads: u32,
        iterations: u64,
        max_steps: usize,
        shard: usize,
        shards: usize,
        run: &ShardRun,
        replay: impl Fn(&str) -> String,
    ) -> Self {
        ShardFile {
            format: FORMAT.into(),
            scenario: scenario.into(),
            python: python.into(),
            threads,
            iterations,
            max_steps,
            shard,
            shards,
            parts: run.parts,
            mine: run.mine,
            split: format!("{:016x}", run.split),
            executions: run.executions,
            states: run.states,
            stopped: run.stopped.clone(),
            failure: run.failure.as_ref().map(|c| {
                let schedule = c.schedule.encode();
                ShardFailure {
                    kind: if run.inconclusive {
                        "inconclusive"
                    } else {
                        "fail"
                    }
                    .into(),
                    what: c.what.clone(),
                    found: c.found.clone(),
                    preemptions: c.execution.preemptions,
                    steps: c.execution.steps,
                    replay: replay(&schedule),
                    schedule,
                }
            }),
        }
    }
}

/// Parses `I/N` (1 ≤ I ≤ N ≤ [`MAX_SHARDS`]).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || {
        format!(
            "--shard takes I/N, this shard's number I of N shards, with 1 ≤ I ≤ N ≤ {}: got {s:?}",
            thousands(MAX_SHARDS)
        )
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let digits = |t: &str| !t.is_empty() && t.len() <= 6 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(i) || !digits(n) {
        return Err(bad());
    }
    let (i, n): (usize, usize) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if i == 0 || i > n || n > MAX_SHARDS {
        return Err(bad());
    }
    Ok((i, n))
}

/// The merged verdict of all shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    /// Every shard searched its parts: `line` says what was covered.
    Pass { line: String },
    /// Some shard stopped at a budget and none failed.
    NotExhaustive { line: String },
    /// The failure with the fewest preemptions (then the lowest shard number), with the
    /// shard it came from; an `inconclusive` one only when no shard failed.
    Fail { failure: ShardFailure, shard: usize },
}

/// Merges the shard files `files` (each with the name it was read from): they must be the N
/// shards of one search, each once.
pub fn merge(files: &[(String, ShardFile)]) -> Result<Merged, String> {
    let Some((first_name, first)) = files.first() else {
        return Err("merge needs the files of every shard".into());
    };
    for (name, f) in files {
        if f.format != FORMAT {
            return Err(format!(
                "{name}: not a gilcheck shard file of this version (format {:?}, expected {FORMAT:?})",
                f.format
            ));
        }
        let same = (
            &f.scenario,
            &f.python,
            f.threads,
            f.iterations,
            f.max_steps,
            f.shards,
            f.parts,
            &f.split,
        ) == (
            &first.scenario,
            &first.python,
            first.threads,
            first.iterations,
            first.max_steps,
            first.shards,
            first.parts,
            &first.split,
        );
        if !same {
            return Err(format!(
                "{name} and {first_name} are shards of different searches ({} --python {} {}×{} --max-steps {}, {} shards, split {} into {} parts; against {} --python {} {}×{} --max-steps {}, {} shards, split {} into {} parts)",
                f.scenario,
                f.python,
                f.threads,
                f.iterations,
                f.max_steps,
                f.shards,
                f.split,
                f.parts,
                first.scenario,
                first.python,
                first.threads,
                first.iterations,
                first.max_steps,
                first.shards,
                first.split,
                first.parts
            ));
        }
        if f.shard == 0 || f.shard > f.shards {
            return Err(format!(
                "{name}: shard {} of {} does not exist",
                f.shard, f.shards
            ));
        }
    }
    let n = first.shards;
    let mut seen: Vec<Option<&str>> = vec![None; n];
    for (name, f) in files {
        if let Some(other) = seen[f.shard - 1] {
            return Err(format!(
                "shard {}/{n} is given twice: {other} and {name}",
                f.shard
            ));
        }
        seen[f.shard - 1] = Some(name);
    }
    let missing: Vec<String> = (1..=n)
        .filter(|i| seen[i - 1].is_none())
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shard(s) {} of {n} missing: merge needs the file of every shard",
            missing.join(", ")
        ));
    }
    let worst = |kind: &str| {
        files
            .iter()
            .filter_map(|(_, f)| {
                let x = f.failure.as_ref()?;
                (x.kind == kind).then_some((x.preemptions, f.shard, x))
            })
            .min_by_key(|(p, s, _)| (*p, *s))
            .map(|(_, s, x)| Merged::Fail {
                failure: x.clone(),
                shard: s,
            })
    };
    if let Some(m) = worst("fail").or_else(|| worst("inconclusive")) {
        return Ok(m);
    }
    let executions: usize = files.iter().map(|(_, f)| f.executions).sum();
    let states: usize = files.iter().map(|(_, f)| f.states).sum();
    let mut stopped: Vec<(usize, &str)> = files
        .iter()
        .filter_map(|(_, f)| f.stopped.as_deref().map(|w| (f.shard, w)))
        .collect();
    stopped.sort();
    let counts = format!(
        "{} states explored completely by {n} shard(s) (summed: a state two shards reach counts twice), {} executions in all, the tree split into {} parts",
        thousands(states),
        thousands(executions),
        thousands(first.parts)
    );
    if !stopped.is_empty() {
        let which: Vec<String> = stopped
            .iter()
            .map(|(s, w)| format!("shard {s} at {w}"))
            .collect();
        return Ok(Merged::NotExhaustive {
            line: format!(
                "no failure, not exhaustive: {} stopped before it had searched its parts; {counts}",
                which.join(", ")
            ),
        });
    }
    Ok(Merged::Pass {
        line: format!("exhaustive, every schedule: every reachable state explored, {counts}"),
    })
}
