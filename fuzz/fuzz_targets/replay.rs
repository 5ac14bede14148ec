//! EX-6: schedule strings, as `gilcheck replay` takes them. The input is parsed as it is (the
//! checksum usually stops it), then re-signed so that its events reach the replay of the
//! scenario its header names. Any panic is a bug: a bad string must be refused with a message.
#![no_main]

use gilcheck::explore::Schedule;
use gilcheck::explore::engine;
use gilcheck::explore::world::Table;
use gilcheck::scenarios::{self, Params};
use gilcheck::vm::Policy;
use libfuzzer_sys::fuzz_target;

/// The step budget of each replay (small, so that the fuzzer runs many).
const MAX_STEPS: usize = 20_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Schedule::parse_within(text, MAX_STEPS);
    let body = text.rsplit_once(':').map_or(text, |(b, _)| b);
    let signed = format!("{body}:{:08x}", crc32fast::hash(body.as_bytes()));
    let Ok(schedule) = Schedule::parse_within(&signed, MAX_STEPS) else {
        return;
    };
    let h = &schedule.header;
    let (Ok(policy), Some(scenario)) = (h.policy.parse::<Policy>(), scenarios::find(&h.scenario))
    else {
        return;
    };
    if !(1..=4).contains(&h.threads) || !(1..=4).contains(&h.iterations) {
        return;
    }
    let params = Params {
        threads: h.threads,
        iterations: h.iterations,
        processes: false,
    };
    let Ok(program) = scenarios::build(scenario.name, params) else {
        return;
    };
    let _ = engine::replay(&program, policy, &schedule, MAX_STEPS, Table::Folded);
});
