//! CO-1: arbitrary bytes as a Python file. The front end compiles them or refuses them with a
//! SyntaxError (or IndentationError), an `unsupported: …` message or an option error, at a line and column; it never
//! panics or hangs, and whatever it compiles validates. Each input is also tried with
//! `--threads 2 --iterations 2`.
#![no_main]

use gilcheck::compile::{Shrink, compile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for shrink in [
        Shrink::default(),
        Shrink {
            threads: Some(2),
            iterations: Some(2),
        },
    ] {
        match compile(text, "fuzz.py", "fuzz", &shrink) {
            Ok((program, _)) => assert!(program.validate().is_ok()),
            Err(e) => assert!(e.line >= 1 && e.column >= 1, "{e}"),
        }
    }
});
