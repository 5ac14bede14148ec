//! Schedules and their printed form, the schedule string (rules EX-6, EX-7 of
//! `spec/explore.md`).
//!
//! A schedule is the sequence of events of one execution: which runtime thread ran each step
//! (an instruction, or a thread's start call), and when a thread blocked on a lock took it
//! without the GIL. It says nothing about *how* it was found, so the same string replays a
//! schedule found by DFS, PCT, random search or loom.
//!
//! ```text
//! gc1:seed-unsafe-increment:3.9:2x1:0*88,1*10,2*25,1*8,0*12:5f0c2e1a
//!     scenario               |   |   events (thread*steps, or thread g) |  CRC-32
//!                            policy, threads x iterations
//! ```
//!
//! A schedule that ends in a loop (EX-11) ends with `@N`: the state after step `N` comes back
//! at the end, and repeating the steps after `N` forever is a schedule too.

use std::fmt;

/// One event of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// Runtime thread `n` ran one step (holding the GIL).
    Step(u32),
    /// Runtime thread `n`, blocked on a lock that is now free, took it without the GIL.
    Grab(u32),
}

/// What a schedule string is for: the scenario and options that make the program.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub scenario: String,
    pub policy: String,
    pub threads: u32,
    pub iterations: u64,
}

/// A parsed schedule string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub header: Header,
    pub events: Vec<Event>,
    /// For a schedule that ends in a loop: the step after which the state is the final one.
    pub loop_from: Option<usize>,
}

const MAGIC: &str = "gc1";

/// The most events a schedule string may hold: twice the ceiling of `--max-steps`, so that any
/// execution gilcheck can run, lock takes included, has a string.
const MAX_EVENTS: usize = 2 * crate::explore::engine::MAX_STEPS_CEILING;

impl Schedule {
    /// The printed form: run-length encoded events and a CRC-32 of everything before it.
    pub fn encode(&self) -> String {
        let mut items = Vec::new();
        let mut i = 0;
        while i < self.events.len() {
            match self.events[i] {
                Event::Grab(t) => {
                    items.push(format!("{t}g"));
                    i += 1;
                }
                Event::Step(t) => {
                    let run = self.events[i..]
                        .iter()
                        .take_while(|&&e| e == Event::Step(t))
                        .count();
                    items.push(format!("{t}*{run}"));
                    i += run;
                }
            }
        }
        if let Some(n) = self.loop_from {
            items.push(format!("@{n}"));
        }
        let h = &self.header;
        let body = format!(
            "{MAGIC}:{}:{}:{}x{}:{}",
            h.scenario,
            h.policy,
            h.threads,
            h.iterations,
            items.join(",")
        );
        format!("{body}:{:08x}", crc32fast::hash(body.as_bytes()))
    }

    /// Parses a schedule string of at most 10^8 steps (the ceiling of `--max-steps`); every way
    /// it can be malformed or corrupted is an error that says what is wrong.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        Schedule::parse_within(text, usize::MAX)
    }

    /// [`Schedule::parse`] of a schedule that may run at most `max_steps` steps (and take as
    /// many locks): a longer one is refused before its events are made.
    pub fn parse_within(text: &str, max_steps: usize) -> Result<Schedule, String> {
        let text = text.trim();
        let (body, crc) = text.rsplit_once(':').ok_or(
            "not a gilcheck schedule string (expected gc1:scenario:version:NxM:events:checksum)",
        )?;
        let fields: Vec<&str> = body.split(':').collect();
        if fields.first() != Some(&MAGIC) {
            return Err(format!(
                "not a gilcheck schedule string: it should start with '{MAGIC}:' (as printed after --schedule)"
            ));
        }
        if fields.len() != 5 {
            return Err(
                "malformed schedule string: expected gc1:scenario:version:NxM:events:checksum"
                    .into(),
            );
        }
        let expected = format!("{:08x}", crc32fast::hash(body.as_bytes()));
        if crc != expected {
            return Err("corrupted schedule string: its checksum does not match (was it truncated or edited?)".into());
        }
        let (threads, iterations) = fields[3]
            .split_once('x')
            .and_then(|(t, i)| Some((t.parse().ok()?, i.parse().ok()?)))
            .ok_or_else(|| format!("malformed schedule string: bad size '{}'", fields[3]))?;
        let mut events = Vec::new();
        let mut loop_from = None;
        let (mut steps, mut grabs) = (0usize, 0usize);
        let max_steps = max_steps.min(MAX_EVENTS / 2);
        let too_long = || {
            format!(
                "schedule string too long: more than {max_steps} steps or lock takes (--max-steps)"
            )
        };
        for item in fields[4].split(',').filter(|s| !s.is_empty()) {
            let bad = || format!("malformed schedule string: bad event '{item}'");
            if loop_from.is_some() {
                return Err(format!(
                    "malformed schedule string: '@…' must be the last item, but '{item}' follows it"
                ));
            }
            if let Some(n) = item.strip_prefix('@') {
                let n: usize = n.parse().map_err(|_| bad())?;
                if n == 0 || n >= steps {
                    return Err(format!(
                        "malformed schedule string: '@{n}' must name a step before the last ({steps})"
                    ));
                }
                loop_from = Some(n);
            } else if let Some(t) = item.strip_suffix('g') {
                if grabs >= max_steps {
                    return Err(too_long());
                }
                grabs += 1;
                events.push(Event::Grab(t.parse().map_err(|_| bad())?));
            } else {
                let (t, n) = item.split_once('*').ok_or_else(bad)?;
                let (t, n): (u32, usize) =
                    (t.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
                if n == 0 || n > max_steps - steps {
                    return Err(if n == 0 { bad() } else { too_long() });
                }
                steps += n;
                events.extend(std::iter::repeat_n(Event::Step(t), n));
            }
        }
        Ok(Schedule {
            header: Header {
                scenario: fields[1].into(),
                policy: fields[2].into(),
                threads,
                iterations,
            },
            events,
            loop_from,
        })
    }
}

impl Schedule {
    /// How many steps the schedule runs (its events less its lock takes).
    pub fn steps(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Step(_)))
            .count()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Schedule {
        Schedule {
            header: Header {
                scenario: "seed-unsafe-increment".into(),
                policy: "3.9".into(),
                threads: 2,
                iterations: 1,
            },
            events: [Event::Step(0); 5]
                .into_iter()
                .chain([
                    Event::Step(1),
                    Event::Grab(2),
                    Event::Step(1),
                    Event::Step(0),
                ])
                .collect(),
            loop_from: None,
        }
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let text = s.encode();
        assert!(
            text.starts_with("gc1:seed-unsafe-increment:3.9:2x1:0*5,1*1,2g,1*1,0*1:"),
            "{text}"
        );
        assert_eq!(Schedule::parse(&text), Ok(s.clone()));
        let looping = Schedule {
            loop_from: Some(6),
            ..s
        };
        let text = looping.encode();
        assert!(text.contains(",0*1,@6:"), "{text}");
        assert_eq!(Schedule::parse(&text), Ok(looping));
    }

    fn signed(body: &str) -> String {
        format!("{body}:{:08x}", crc32fast::hash(body.as_bytes()))
    }

    #[test]
    fn loop_marker_must_be_last_and_inside() {
        let h = "gc1:s:3.9:2x1";
        for (events, why) in [
            ("0*5,@2,1*1", "must be the last"),
            ("0*5,@5", "before the last"),
            ("0*5,@0", "before the last"),
            ("0*5,@x", "bad event"),
        ] {
            let err = Schedule::parse(&signed(&format!("{h}:{events}"))).unwrap_err();
            assert!(err.contains(why), "{events}: {err}");
        }
        assert!(Schedule::parse(&signed(&format!("{h}:0*5,@4"))).is_ok());
    }

    #[test]
    fn corruption_is_detected() {
        let text = sample().encode();
        let flipped = text.replace("1*1,2g", "1*2,2g");
        assert!(Schedule::parse(&flipped).unwrap_err().contains("checksum"));
        assert!(Schedule::parse(&text[..text.len() - 3]).is_err());
        assert!(
            Schedule::parse("hello")
                .unwrap_err()
                .contains("not a gilcheck schedule")
        );
        assert!(Schedule::parse("").is_err());
    }

    #[test]
    fn oversized_schedule_is_refused() {
        let mut s = sample();
        s.events = vec![Event::Step(0); 3];
        let text = s.encode().replace("0*3", "0*999999999");
        // The checksum no longer matches; re-sign to reach the size check.
        let body = text.rsplit_once(':').unwrap().0;
        let signed = format!("{body}:{:08x}", crc32fast::hash(body.as_bytes()));
        // The limit is the ceiling of --max-steps, 10^8, whatever the string asks for.
        assert_eq!(
            Schedule::parse(&signed).unwrap_err(),
            "schedule string too long: more than 100000000 steps or lock takes (--max-steps)"
        );
    }

    /// `parse_within(text, n)` takes at most n steps and at most n lock takes.
    #[test]
    fn steps_and_lock_takes_are_limited_each() {
        let with_grabs = |k: usize| {
            let mut s = sample();
            s.events = vec![Event::Step(0); 2];
            s.events.extend(vec![Event::Grab(1); k]);
            s.encode()
        };
        assert_eq!(
            Schedule::parse_within(&with_grabs(3), 3)
                .unwrap()
                .events
                .len(),
            5
        );
        assert!(
            Schedule::parse_within(&with_grabs(4), 3)
                .unwrap_err()
                .contains("too long: more than 3 steps or lock takes")
        );
        let steps = sample().encode();
        assert!(Schedule::parse_within(&steps, 8).is_ok());
        assert!(
            Schedule::parse_within(&steps, 6)
                .unwrap_err()
                .contains("too long")
        );
    }
}
