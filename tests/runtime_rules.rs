//! Focused tests of single rules on the real runtime ([`Std`]: OS threads, `parking_lot`).
//!
//! Each test cites the rule of `spec/*.md` it checks. Single-threaded unless stated.

use gilcheck::heap::IMMORTAL_REFCNT;
use gilcheck::platform::Std;
use gilcheck::{Heap, ObjRef, Object, Poll, RtError, Runtime, Token};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

mod support;

/// The `#index` of a handle's Display (`<object #index.generation>`), to see slot reuse.
/// Runs `f` with the GIL of a fresh runtime held.
fn with_gil(f: impl FnOnce(Token<'_>, &Heap<Std>)) {
    let rt = Runtime::<Std>::new();
    let mut ts = rt.thread_state();
    let g = ts.attach();
    f(g.token(), g.heap());
}

fn slot_of(x: ObjRef) -> String {
    let s = x.to_string();
    s[..s.find('.').expect("a mortal handle")].to_string()
}

// ---------------------------------------------------------------------------------------------
// RC-3
// ---------------------------------------------------------------------------------------------

/// RC-3: None, False, True and the small ints -5 and 256 are immortal: incref/decref are no-ops,
/// getrefcount reports 4294967295, and they are never freed (no heap slot, no stats change);
/// 257 and -6 are ordinary objects.
#[test]
fn rc3_immortal_objects() {
    with_gil(|py, heap| {
        let immortals = [
            ObjRef::NONE,
            ObjRef::FALSE,
            ObjRef::TRUE,
            heap.new_int(py, -5),
            heap.new_int(py, 256),
        ];
        assert_eq!(ObjRef::small_int(-5), Some(immortals[3]));
        assert_eq!(ObjRef::small_int(256), Some(immortals[4]));
        assert_eq!(heap.stats(py).allocated, 0, "small ints are not allocated");
        for x in immortals {
            assert!(x.is_immortal(), "{x}");
            assert_eq!(heap.getrefcount(py, x).unwrap(), 4294967295, "{x}");
            for _ in 0..1000 {
                heap.decref(py, x).unwrap(); // would free a mortal object at once
            }
            assert!(heap.is_live(py, x), "{x} freed");
            for _ in 0..10 {
                heap.incref(py, x).unwrap();
            }
            assert_eq!(heap.refcount(py, x).unwrap(), IMMORTAL_REFCNT, "{x}");
            assert_eq!(heap.getrefcount(py, x).unwrap(), 4294967295, "{x}");
        }
        assert_eq!(heap.int_value(py, immortals[3]).unwrap(), -5);
        assert_eq!(heap.int_value(py, immortals[4]).unwrap(), 256);
        assert!(matches!(heap.get(py, ObjRef::NONE).unwrap(), Object::None));
        assert!(matches!(
            heap.get(py, ObjRef::TRUE).unwrap(),
            Object::Bool(true)
        ));
        let stats = heap.stats(py);
        assert_eq!((stats.allocated, stats.freed), (0, 0));

        // 257 and -6 are not cached: mortal, counted, freed by their last decref.
        for v in [257, -6] {
            assert_eq!(ObjRef::small_int(v), None);
            let x = heap.new_int(py, v);
            assert!(!x.is_immortal());
            assert_eq!(heap.getrefcount(py, x).unwrap(), 2);
            heap.decref(py, x).unwrap();
            assert!(!heap.is_live(py, x), "{v} should be freed");
        }
        assert!(heap.leak_report(py).unwrap().is_clean());
    });
}

// ---------------------------------------------------------------------------------------------
// RC-5
// ---------------------------------------------------------------------------------------------

/// RC-5: incref, read and write of a freed object are `UseAfterFree`, not undefined behaviour.
#[test]
fn rc5_use_after_free() {
    with_gil(|py, heap| {
        let x = heap.new_float(py, 1.5);
        let l = heap.new_list(py, &[]).unwrap();
        heap.decref(py, x).unwrap();
        assert!(!heap.is_live(py, x));
        assert_eq!(
            heap.incref(py, x),
            Err(RtError::UseAfterFree {
                obj: x,
                op: "incref"
            })
        );
        assert!(matches!(
            heap.get(py, x),
            Err(RtError::UseAfterFree { obj, op: "read" }) if obj == x
        ));
        assert!(matches!(
            heap.refcount(py, x),
            Err(RtError::UseAfterFree { obj, .. }) if obj == x
        ));
        // Storing a freed object into a container is caught before the container changes.
        assert!(matches!(
            heap.list_append(py, l, x),
            Err(RtError::UseAfterFree { obj, op: "store" }) if obj == x
        ));
        assert_eq!(heap.len(py, l).unwrap(), 0);
        // Writing into a freed container.
        heap.decref(py, l).unwrap();
        assert!(matches!(
            heap.list_append(py, l, ObjRef::NONE),
            Err(RtError::UseAfterFree { obj, op: "write" }) if obj == l
        ));
        assert!(
            heap.incref(py, x).unwrap_err().is_rule_violation(),
            "RC-5 errors are rule violations, not Python exceptions"
        );
        assert!(heap.leak_report(py).unwrap().is_clean());
    });
}

/// RC-5: a decref of a freed object (its count is already 0) is `NegativeRefcount`, both directly
/// and when a container's deallocation finds an item that was freed behind its back.
#[test]
fn rc5_negative_refcount() {
    with_gil(|py, heap| {
        let x = heap.new_float(py, 1.5);
        heap.decref(py, x).unwrap();
        assert_eq!(
            heap.decref(py, x),
            Err(RtError::NegativeRefcount { obj: x })
        );
        assert_eq!(heap.stats(py).freed, 1, "the failed decref freed nothing");

        // A list holds y; two decrefs by a caller that owns one reference free y too early.
        let y = heap.new_float(py, 2.5);
        let l = heap.new_list(py, &[y]).unwrap();
        heap.decref(py, y).unwrap(); // the caller's own reference
        heap.decref(py, y).unwrap(); // the bug: steals the list's reference, y is freed
        assert!(!heap.is_live(py, y));
        assert_eq!(
            heap.decref(py, l),
            Err(RtError::NegativeRefcount { obj: y })
        );
    });
}

/// RC-5: a handle to a freed object stays detectably dead after its slot is reused by a new
/// object (generation check), and using it does not touch the new object.
#[test]
fn rc5_reused_slot_detected_by_generation() {
    with_gil(|py, heap| {
        let x = heap.new_float(py, 1.5);
        heap.decref(py, x).unwrap();
        let y = heap.new_str(py, "new tenant");
        assert_eq!(slot_of(x), slot_of(y), "the freed slot is reused: {x} {y}");
        assert_ne!(x, y, "but the handles differ (generation)");
        assert!(!heap.is_live(py, x));
        assert!(heap.is_live(py, y));
        assert!(matches!(
            heap.incref(py, x),
            Err(RtError::UseAfterFree { obj, .. }) if obj == x
        ));
        assert!(matches!(
            heap.get(py, x),
            Err(RtError::UseAfterFree { obj, .. }) if obj == x
        ));
        assert_eq!(
            heap.decref(py, x),
            Err(RtError::NegativeRefcount { obj: x })
        );
        assert_eq!(
            heap.refcount(py, y).unwrap(),
            1,
            "the new object was not touched"
        );
        assert_eq!(heap.repr(py, y).unwrap(), "'new tenant'");
        heap.decref(py, y).unwrap();
        assert!(heap.leak_report(py).unwrap().is_clean());
    });
}

/// RC-5 (double free): the public API cannot deallocate an object twice while the GIL is held:
/// every path into deallocation first checks the object is live (a freed object's decref is
/// `NegativeRefcount`), and a cascade only frees an object the moment its count reaches zero.
/// This test pins that down: each attempt to free an object twice through the public API ends
/// in `NegativeRefcount` and the heap's free counter moves exactly once per object.
/// `RtError::DoubleFree` is a defensive check inside the deallocator that the public API does
/// not reach.
#[test]
fn rc5_double_free_is_prevented_through_public_api() {
    with_gil(|py, heap| {
        // Twice directly.
        let x = heap.new_float(py, 1.0);
        heap.decref(py, x).unwrap();
        assert_eq!(
            heap.decref(py, x),
            Err(RtError::NegativeRefcount { obj: x })
        );
        // Once directly, once through a container holding it (the container's reference was stolen).
        let y = heap.new_float(py, 2.0);
        let l = heap.new_list(py, &[y]).unwrap();
        heap.decref(py, y).unwrap();
        heap.decref(py, y).unwrap(); // freed here
        assert_eq!(
            heap.decref(py, l),
            Err(RtError::NegativeRefcount { obj: y })
        );
        // Twice through two containers, after a slot reuse in between.
        let z = heap.new_float(py, 3.0);
        let a = heap.new_list(py, &[z]).unwrap();
        let b = heap.new_list(py, &[z]).unwrap();
        heap.decref(py, z).unwrap();
        heap.decref(py, a).unwrap(); // z: 2 -> 1
        heap.decref(py, z).unwrap(); // bug: steals b's reference; z freed
        let w = heap.new_float(py, 4.0); // may reuse z's slot
        assert_eq!(
            heap.decref(py, b),
            Err(RtError::NegativeRefcount { obj: z })
        );
        assert!(heap.is_live(py, w) && heap.refcount(py, w).unwrap() == 1);
        let stats = heap.stats(py);
        // x, y, l, z, a, b freed once each; w alive.
        assert_eq!((stats.allocated, stats.freed), (7, 6));
    });
}

// ---------------------------------------------------------------------------------------------
// RC-7
// ---------------------------------------------------------------------------------------------

/// RC-7: `getrefcount` counts the reference its argument holds: an object held once reports 2,
/// one more after an extra incref, and the call itself leaves the count unchanged.
#[test]
fn rc7_getrefcount() {
    with_gil(|py, heap| {
        // Python: `x = 1.5; sys.getrefcount(x)` == 2 (the name x, and the argument).
        let x = heap.new_float(py, 1.5);
        assert_eq!(heap.getrefcount(py, x).unwrap(), 2);
        assert_eq!(
            heap.refcount(py, x).unwrap(),
            1,
            "getrefcount changed the count"
        );
        heap.incref(py, x).unwrap();
        assert_eq!(heap.getrefcount(py, x).unwrap(), 3);
        heap.decref(py, x).unwrap();
        heap.decref(py, x).unwrap();

        // Python: `sys.getrefcount([])` == 1: the new list's only reference is the one the
        // argument tuple holds, there is no name. Here the caller always owns the object it created
        // (count 1, as the temporary `[]` on CPython's stack before the call), and getrefcount adds
        // the argument's reference, so a fresh list referenced only by the caller reports 2: the
        // counterpart of `l = []; sys.getrefcount(l)` == 2.
        let l = heap.new_list(py, &[]).unwrap();
        assert_eq!(heap.getrefcount(py, l).unwrap(), 2);
        heap.decref(py, l).unwrap();
        assert!(!heap.is_live(py, l));
        assert!(heap.leak_report(py).unwrap().is_clean());
    });
}

// ---------------------------------------------------------------------------------------------
// RC-8
// ---------------------------------------------------------------------------------------------

/// RC-8: a reference never released is reported as a leak with `external > 0`.
#[test]
fn rc8_forgotten_reference_reported() {
    with_gil(|py, heap| {
        let x = heap.new_float(py, 142500.0);
        heap.incref(py, x).unwrap(); // an extra reference that is never released
        heap.decref(py, x).unwrap();
        let report = heap.leak_report(py).unwrap();
        assert!(!report.is_clean());
        assert_eq!(report.leaks.len(), 1, "{report}");
        let leak = &report.leaks[0];
        assert_eq!(
            (leak.obj, leak.type_name, leak.refcount, leak.external),
            (x, "float", 1, 1)
        );
        assert_eq!(report.unreachable().count(), 0);
        assert!(report.to_string().contains("1 reference(s) never released"));
    });
}

/// RC-8: a two-list cycle (`a.append(b); b.append(a); del a, b`) is never freed (no cycle
/// collector): both lists are reported, as unreachable (`external == 0`).
#[test]
fn rc8_cycle_leaks_and_is_unreachable() {
    with_gil(|py, heap| {
        let a = heap.new_list(py, &[]).unwrap();
        let b = heap.new_list(py, &[]).unwrap();
        heap.list_append(py, a, b).unwrap();
        heap.list_append(py, b, a).unwrap();
        heap.decref(py, a).unwrap();
        heap.decref(py, b).unwrap();
        assert!(
            heap.is_live(py, a) && heap.is_live(py, b),
            "a cycle is not freed"
        );
        let report = heap.leak_report(py).unwrap();
        let mut leaked: Vec<_> = report
            .leaks
            .iter()
            .map(|l| (l.obj, l.refcount, l.external))
            .collect();
        leaked.sort();
        let mut expected = vec![(a, 1, 0), (b, 1, 0)];
        expected.sort();
        assert_eq!(leaked, expected, "{report}");
        assert_eq!(report.unreachable().count(), 2);
        assert!(report.to_string().contains("a cycle"));
    });
}

/// RC-8: an acyclic structure released by its owner is freed entirely: the report is clean.
#[test]
fn rc8_acyclic_structure_clean_report() {
    with_gil(|py, heap| {
        let d = heap.new_dict(py);
        let k = heap.new_str(py, "rows");
        let inner = heap.new_list(py, &[]).unwrap();
        let f = heap.new_float(py, 0.5);
        heap.list_append(py, inner, f).unwrap();
        heap.list_append(py, inner, f).unwrap();
        let t = heap.new_tuple(py, &[inner, f]).unwrap();
        heap.dict_set(py, d, k, t).unwrap();
        for o in [k, inner, f, t] {
            heap.decref(py, o).unwrap();
        }
        let report = heap.leak_report(py).unwrap();
        assert_eq!(report.leaks.len(), 5, "all alive while d is: {report}");
        assert!(report.leaks.iter().all(|l| l.obj == d || l.external == 0));
        heap.decref(py, d).unwrap();
        let report = heap.leak_report(py).unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(heap.live_count(py), 0);
    });
}

// ---------------------------------------------------------------------------------------------
// RC-4
// ---------------------------------------------------------------------------------------------

/// RC-4: a list nested 100 000 levels deep is freed by one decref, iteratively (no stack
/// overflow), every level exactly once.
#[test]
fn rc4_deep_nesting_freed_without_recursion() {
    const DEPTH: u64 = 100_000;
    with_gil(|py, heap| {
        let mut top = heap.new_list(py, &[]).unwrap();
        let bottom = top;
        for _ in 1..DEPTH {
            let outer = heap.new_list(py, &[top]).unwrap();
            heap.decref(py, top).unwrap(); // only `outer` holds it now
            top = outer;
        }
        assert_eq!(heap.live_count(py), DEPTH as usize);
        assert_eq!(heap.refcount(py, bottom).unwrap(), 1);
        heap.decref(py, top).unwrap();
        assert!(!heap.is_live(py, top) && !heap.is_live(py, bottom));
        let stats = heap.stats(py);
        assert_eq!((stats.allocated, stats.freed), (DEPTH, DEPTH));
        assert!(heap.leak_report(py).unwrap().is_clean());
    });
}

// ---------------------------------------------------------------------------------------------
// GIL-8
// ---------------------------------------------------------------------------------------------

/// GIL-8: the default interval is 5 ms; `set_switch_interval` rejects exactly what
/// `sys.setswitchinterval` rejects (`x <= 0.0`: 0, -0.0, negatives, -inf) with CPython's
/// ValueError, leaving the interval unchanged, and accepts NaN and +inf as CPython does. What
/// `switch_interval` reads back afterwards is what CPython 3.8–3.13 on x86-64 read back
/// (measured; `gil8_read_back_matches_cpython` re-measures it): whole microseconds, truncated,
/// through gcc's double → unsigned long conversion.
#[test]
fn gil8_switch_interval() {
    let rt = Runtime::<Std>::new();
    let gil = rt.gil();
    assert_eq!(gil.switch_interval(), 0.005);
    for bad in [0.0, -0.0, -1.0, -1e-300, -1e300, f64::NEG_INFINITY] {
        assert_eq!(
            gil.set_switch_interval(bad),
            Err(RtError::ValueError(
                "switch interval must be strictly positive".into()
            )),
            "{bad}"
        );
        assert_eq!(gil.switch_interval(), 0.005, "{bad} changed the interval");
    }
    // (what is set, what sys.getswitchinterval() returns afterwards under CPython)
    let accepted: [(f64, f64); 10] = [
        (f64::NAN, 9223372036854.775), // 2^63 µs: cvttsd2si's "integer indefinite"
        (f64::INFINITY, 0.0),
        (1e300, 0.0),
        (18446744073709.55, 0.0), // 2^64 / 1e6: 2^64 µs wraps to 0
        (1e10, 1e10),
        (4294.967295, 4294.9672949999995), // 1e-6 * 4294967295, not 4294967295 / 1e6
        (1e-7, 0.0),
        (1e-9, 0.0),
        (2.5e-6, 2e-6),
        (0.25, 0.25),
    ];
    for (set, read) in accepted {
        gil.set_switch_interval(set).unwrap();
        assert_eq!(
            gil.switch_interval().to_bits(),
            read.to_bits(),
            "set {set:?}: read {:?}, CPython reads {read:?}",
            gil.switch_interval()
        );
    }
    // What a waiter does with the stored value (gilcheck's choice beyond CPython's code).
    use gilcheck::gil::{IntervalWait, LONGEST_TIMED_WAIT_US, interval_micros, interval_wait};
    let wait = |s: f64| interval_wait(interval_micros(s).unwrap());
    assert_eq!(wait(1e-7), IntervalWait::Timed(1), "0 µs waits 1 µs");
    assert_eq!(wait(f64::INFINITY), IntervalWait::Timed(1));
    assert_eq!(wait(0.005), IntervalWait::Timed(5000));
    assert_eq!(
        interval_wait(LONGEST_TIMED_WAIT_US),
        IntervalWait::Timed(LONGEST_TIMED_WAIT_US)
    );
    assert_eq!(
        interval_wait(LONGEST_TIMED_WAIT_US + 1),
        IntervalWait::Untimed
    );
    assert_eq!(wait(1e10), IntervalWait::Untimed);
    assert_eq!(interval_wait((1 << 63) - 1), IntervalWait::Untimed);
    assert_eq!(wait(f64::NAN), IntervalWait::Expired);
    assert_eq!(wait(1e13), IntervalWait::Expired, "1e19 µs >= 2^63");
}

/// GIL-8: the values CPython 3.8–3.13 read back after `sys.setswitchinterval(x)` equal
/// gilcheck's, bit for bit, for accepted inputs around each edge of the conversion, and CPython
/// rejects exactly the inputs gilcheck rejects. Inputs travel as IEEE bit patterns, so both sides
/// see the same doubles. Versions absent from pyenv are skipped with the reason printed.
#[test]
fn gil8_read_back_matches_cpython() {
    let inputs: Vec<f64> = vec![
        0.0,
        -0.0,
        -1.0,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::INFINITY,
        1e300,
        18446744073709.55,
        18446744073709.55_f64.next_down(), // just below 2^64 µs
        9223372036854.775,                 // 2^63 µs
        9223372036854.775_f64.next_down(),
        1e13,
        1e10,
        4294.967295,
        4294.967296,
        1.0,
        0.005,
        0.25,
        2.5e-6,
        1e-6,
        1e-6_f64.next_down(),
        1e-7,
        1e-9,
        5e-324,
    ];
    let ours: Vec<String> = inputs
        .iter()
        .map(|&x| {
            let rt = Runtime::<Std>::new();
            match rt.gil().set_switch_interval(x) {
                Ok(()) => rt.gil().switch_interval().to_bits().to_string(),
                Err(_) => "ValueError".to_string(),
            }
        })
        .collect();
    let bits: Vec<String> = inputs.iter().map(|x| x.to_bits().to_string()).collect();
    let script = format!(
        "import struct, sys\n\
         for b in [{}]:\n\
         \x20   x = struct.unpack('<d', struct.pack('<Q', b))[0]\n\
         \x20   try:\n\
         \x20       sys.setswitchinterval(x)\n\
         \x20       print(struct.unpack('<Q', struct.pack('<d', sys.getswitchinterval()))[0])\n\
         \x20   except ValueError:\n\
         \x20       print('ValueError')\n",
        bits.join(", ")
    );
    let mut compared = 0;
    for minor in 8..=13 {
        let python = match support::cpython(minor) {
            Ok(p) => p,
            Err(why) => {
                println!("skipped CPython 3.{minor}: {why}");
                continue;
            }
        };
        let out = std::process::Command::new(&python)
            .args(["-c", &script])
            .output()
            .expect("run CPython");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(theirs.len(), inputs.len());
        for ((x, o), t) in inputs.iter().zip(&ours).zip(&theirs) {
            assert_eq!(
                o,
                t,
                "setswitchinterval({x:?}): gilcheck {o}, {} {t}",
                python.display()
            );
        }
        println!(
            "CPython 3.{minor} ({}): the same {} results",
            python.display(),
            inputs.len()
        );
        compared += 1;
    }
    println!("compared with {compared} CPython versions");
}

/// GIL-8 on real threads: intervals at the edges of what a waiter does neither panic nor hang.
/// With 1e10 s (longer than a year: no timeout) the holder never sees a drop request while the
/// other thread waits, and a voluntary release hands the GIL over; with NaN (2^63 µs: the wait
/// ends at once, as on CPython 3.12+) and +inf (0 µs: 1 µs waits) the waiter posts a request,
/// which the holder's polls honour. Bounded loops only.
#[test]
fn gil8_huge_and_zero_intervals_on_real_threads() {
    const MAX_POLLS: u64 = 50_000_000;
    for (interval, request_expected) in [(1e10, false), (f64::NAN, true), (f64::INFINITY, true)] {
        let rt = Runtime::<Std>::new();
        rt.gil().set_switch_interval(interval).unwrap();
        let mut holder = rt.thread_state();
        let g = holder.attach();
        let waiting = Arc::new(AtomicBool::new(false));
        let mut ts = rt.thread_state();
        let w = Arc::clone(&waiting);
        let waiter = std::thread::spawn(move || {
            w.store(true, Ordering::Relaxed);
            let g = ts.attach(); // blocks: the holder has the GIL
            drop(g);
        });
        while !waiting.load(Ordering::Relaxed) {
            std::thread::yield_now();
        }
        let mut released = false;
        if request_expected {
            for _ in 0..MAX_POLLS {
                if g.poll() == Poll::Released {
                    released = true;
                    break;
                }
                std::thread::yield_now();
            }
            assert!(released, "{interval}: no drop request in {MAX_POLLS} polls");
        } else {
            // Give the waiter time to block in its wait (not a timing assertion: a request may
            // never come, however long this lasts).
            std::thread::sleep(std::time::Duration::from_millis(50));
            for _ in 0..1000 {
                assert_eq!(
                    g.poll(),
                    Poll::Kept,
                    "{interval}: a drop request was posted"
                );
            }
            assert!(!rt.gil().drop_requested());
        }
        drop(g); // a voluntary release wakes the waiter, whatever its wait
        waiter.join().unwrap();
        assert!(!rt.gil().is_locked());
        assert!(rt.gil().switch_number() >= 2, "{interval}");
    }
}

// ---------------------------------------------------------------------------------------------
// GIL-3, GIL-5 on real threads
// ---------------------------------------------------------------------------------------------

/// GIL-5, GIL-6, GIL-7 on real threads: with a 100 µs interval, two threads that each hold the
/// GIL and poll in a loop hand it back and forth at their polls. Both run, both give the GIL up
/// at a poll, and the switch number grows well beyond the 2 switches of the two first takes.
/// Bounded loops only: a thread stops when the target is reached or after `MAX_POLLS` polls.
#[test]
fn gil5_polls_switch_between_real_threads() {
    const TARGET_SWITCHES: u64 = 12;
    const MAX_POLLS: u64 = 5_000_000;
    let rt = Runtime::<Std>::new();
    rt.gil().set_switch_interval(1e-4).unwrap();
    let start = Arc::new(std::sync::Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (mut ts, start) = (rt.thread_state(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let g = ts.attach();
                let gil = g.runtime().gil();
                let (mut polls, mut released) = (0u64, 0u64);
                while gil.switch_number() < TARGET_SWITCHES && polls < MAX_POLLS {
                    polls += 1;
                    if g.poll() == Poll::Released {
                        released += 1;
                    }
                    std::thread::yield_now(); // let the waiter's timer thread run on small CI boxes
                }
                (polls, released)
            })
        })
        .collect();
    let results: Vec<(u64, u64)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let switches = rt.gil().switch_number();
    println!("switches {switches}, (polls, released) per thread {results:?}");
    assert!(
        switches >= TARGET_SWITCHES,
        "only {switches} switches in {MAX_POLLS} polls per thread"
    );
    for (i, &(polls, released)) in results.iter().enumerate() {
        assert!(polls > 0, "thread {i} never ran");
        assert!(released > 0, "thread {i} never gave the GIL up at a poll");
    }
    assert!(!rt.gil().is_locked());
}

/// GIL-3: `allow_threads` releases the GIL around its closure: while thread A is inside the
/// closure, thread B takes the GIL and changes the heap; A sees the change after the closure
/// returns (and has taken the GIL back).
#[test]
fn gil3_allow_threads_lets_another_thread_run() {
    let rt = Runtime::<Std>::new();
    let mut ts_a = rt.thread_state();
    let (inside_tx, inside_rx) = mpsc::channel::<ObjRef>();
    let (done_tx, done_rx) = mpsc::channel::<bool>();

    let mut ts_b = rt.thread_state();
    let b = std::thread::spawn(move || {
        let list = inside_rx.recv().unwrap();
        // A is inside its closure. If A still held the GIL, attaching would block forever, so
        // check first (no other thread can take it in between: only A and B exist).
        let free = !ts_b.runtime().gil().is_locked();
        if free {
            let g = ts_b.attach();
            g.heap().list_append(g.token(), list, ObjRef::TRUE).unwrap();
        }
        done_tx.send(free).unwrap();
    });

    let g = ts_a.attach();
    let (py, heap) = (g.token(), g.heap());
    let list = heap.new_list(py, &[]).unwrap();
    let switches_before = rt.gil().switch_number();
    let b_ran_inside = g.allow_threads(move || {
        inside_tx.send(list).unwrap();
        done_rx.recv().unwrap() // B has come and gone while we are in here
    });
    assert!(b_ran_inside, "the GIL was held during allow_threads");
    assert!(rt.gil().is_locked(), "A has the GIL back");
    assert_eq!(heap.len(py, list).unwrap(), 1, "B's append is visible to A");
    // B took it (+1) and A took it back (+1).
    assert_eq!(rt.gil().switch_number(), switches_before + 2);
    heap.decref(py, list).unwrap();
    drop(g);
    b.join().unwrap();
}

/// GIL-3: `allow_threads` takes the GIL back even when its closure panics.
#[test]
fn gil3_allow_threads_retakes_after_panic() {
    let rt = Runtime::<Std>::new();
    let mut ts = rt.thread_state();
    let g = ts.attach();
    let released_inside = AtomicBool::new(false);
    let gil = rt.gil();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        g.allow_threads(|| {
            released_inside.store(!gil.is_locked(), Ordering::Relaxed);
            panic!("blocking call failed");
        })
    }));
    assert!(r.is_err());
    assert!(
        released_inside.load(Ordering::Relaxed),
        "not released inside"
    );
    assert!(
        gil.is_locked(),
        "the GIL was not taken back after the panic"
    );
    // The thread still holds it: it can use the heap and release normally.
    let x = g.heap().new_float(g.token(), 1.0);
    g.heap().decref(g.token(), x).unwrap();
    drop(g);
    assert!(!gil.is_locked());
}

// ---------------------------------------------------------------------------------------------
// LOCK-4
// ---------------------------------------------------------------------------------------------

/// LOCK-4: releasing an unlocked lock is `RuntimeError("release unlocked lock")`; a
/// non-blocking acquire takes a free lock and fails on a held one.
#[test]
fn lock4_release_unlocked_and_try_acquire() {
    let rt = Runtime::<Std>::new();
    let mut ts = rt.thread_state();
    let g = ts.attach();
    let (py, heap) = (g.token(), g.heap());
    let lock = heap.new_lock(py);
    let err = RtError::RuntimeError("release unlocked lock".into());
    assert_eq!(g.release_lock(lock), Err(err.clone()));
    assert!(!err.is_rule_violation(), "a Python exception");
    assert!(g.try_acquire_lock(lock).unwrap(), "a free lock is taken");
    assert!(!g.try_acquire_lock(lock).unwrap(), "a held lock is not");
    assert_eq!(heap.repr(py, lock).unwrap(), "<locked _thread.lock object>");
    g.release_lock(lock).unwrap();
    assert_eq!(g.release_lock(lock), Err(err), "released twice");
    assert!(
        g.try_acquire_lock(lock).unwrap(),
        "free again after release"
    );
    g.release_lock(lock).unwrap();
    assert!(matches!(
        g.try_acquire_lock(ObjRef::NONE),
        Err(RtError::TypeError(_))
    ));
    heap.decref(py, lock).unwrap();
}

/// LOCK-4 (two real threads): a lock acquired by one thread may be released by another.
#[test]
fn lock4_release_from_another_thread() {
    let rt = Runtime::<Std>::new();
    let mut ts = rt.thread_state();
    let lock = {
        let g = ts.attach();
        let lock = g.heap().new_lock(g.token());
        assert!(g.try_acquire_lock(lock).unwrap());
        lock
    };
    let mut other = rt.thread_state();
    std::thread::spawn(move || {
        let g = other.attach();
        g.release_lock(lock).unwrap();
    })
    .join()
    .unwrap();
    let g = ts.attach();
    assert!(
        g.try_acquire_lock(lock).unwrap(),
        "the other thread released it"
    );
    g.release_lock(lock).unwrap();
    g.heap().decref(g.token(), lock).unwrap();
}

/// RC-5 (negative refcount inside a deallocation cascade). A caller over-decrefs `x` while a list
/// still holds two references to it; when the list is freed, the cascade's first decrement takes
/// `x` to 0 (x is queued for deallocation) and the second takes it to -1. CPython would free `x`
/// at the first decrement, so the second is a decref of a freed object, which RC-5 says must be
/// reported as `NegativeRefcount`. (Found by this test: the cascade once checked only `== 0`.)
#[test]
fn rc5_negative_refcount_inside_dealloc_cascade() {
    with_gil(|py, heap| {
        let x = heap.new_float(py, 1.0);
        let c = heap.new_list(py, &[x, x]).unwrap(); // x: 3
        heap.decref(py, x).unwrap(); // the caller's own reference: 2
        heap.decref(py, x).unwrap(); // misuse: steals one of c's references: 1
        assert_eq!(
            heap.decref(py, c),
            Err(RtError::NegativeRefcount { obj: x })
        );
    });
}

/// GIL-5: a waiter posts a drop request only after a whole interval passed without a switch, not
/// whenever it wakes and finds the GIL taken again. With an interval far longer than the test,
/// two real threads that hand the GIL back and forth only by voluntary releases (each release
/// wakes the other, which often finds the GIL re-taken) never see a request at a poll. Each loops
/// until both have made 200 000 rounds, so their rounds overlap.
#[test]
fn gil5_no_request_before_an_interval_passes() {
    const ROUNDS: usize = 200_000;
    let rt = Runtime::<Std>::new();
    rt.gil().set_switch_interval(1000.0).unwrap();
    let rounds = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let released = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..2)
        .map(|me| {
            let (mut ts, rounds, released) = (rt.thread_state(), rounds.clone(), released.clone());
            std::thread::spawn(move || {
                while rounds.iter().any(|r| r.load(Ordering::Relaxed) < ROUNDS) {
                    let g = ts.attach();
                    let before = g.poll();
                    g.allow_threads(|| ());
                    let after = g.poll();
                    drop(g);
                    let n = [before, after]
                        .iter()
                        .filter(|&&p| p == Poll::Released)
                        .count();
                    released.fetch_add(n, Ordering::Relaxed);
                    rounds[me].fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(
        released.load(Ordering::Relaxed),
        0,
        "drop requests posted before an interval passed"
    );
    assert!(rt.gil().switch_number() >= 2, "both threads took the GIL");
}

/// GIL-5: on real threads, a waiter that sees no switch for a whole interval posts a drop request:
/// the holder observes it (`Gil::drop_requested`), and its next poll hands the GIL over. No
/// request exists before anyone waits.
#[test]
fn gil5_waiter_posts_request_seen_by_poll() {
    let rt = Runtime::<Std>::new();
    rt.gil().set_switch_interval(1e-4).unwrap();
    assert!(!rt.gil().drop_requested(), "no request on a fresh GIL");
    let mut holder = rt.thread_state();
    let g = holder.attach();
    let mut waiter_ts = rt.thread_state();
    let waiter = std::thread::spawn(move || drop(waiter_ts.attach()));
    let mut checks = 0;
    while !rt.gil().drop_requested() {
        checks += 1;
        assert!(
            checks < 100_000,
            "no drop request after 100 000 checks 10 µs apart"
        );
        std::thread::sleep(std::time::Duration::from_micros(10));
    }
    assert_eq!(
        g.poll(),
        Poll::Released,
        "a posted request is honoured at the next poll"
    );
    assert!(
        !rt.gil().drop_requested(),
        "the take that answered the request cleared it"
    );
    drop(g);
    waiter.join().unwrap();
}

/// RC-5: a handle that names no slot of this heap (here: from another runtime, just past the end
/// of this heap's table) is reported as freed, never a crash or a read of a foreign slot.
#[test]
fn rc5_handle_from_another_heap_is_not_live() {
    let (rt_a, rt_b) = (Runtime::<Std>::new(), Runtime::<Std>::new());
    let (mut ta, mut tb) = (rt_a.thread_state(), rt_b.thread_state());
    let (ga, gb) = (ta.attach(), tb.attach());
    let x = ga.heap().new_float(ga.token(), 1.0); // the first slot of heap A
    let (py, heap_b) = (gb.token(), gb.heap());
    assert!(!heap_b.is_live(py, x), "heap B has no slots yet");
    assert_eq!(
        heap_b.incref(py, x),
        Err(RtError::UseAfterFree {
            obj: x,
            op: "incref"
        })
    );
    let y = heap_b.new_float(py, 2.0); // heap B's first slot: same index, same generation as x
    assert!(
        heap_b.is_live(py, x),
        "documented limit: a foreign handle can alias a live slot"
    );
    heap_b.decref(py, y).unwrap();
    ga.heap().decref(ga.token(), x).unwrap();
}

/// Reading numbers back out of objects (used by the seed's `value + 1`): floats, ints and bools
/// convert as Python's `float()` would; anything else is a `TypeError`. Handles print the same
/// with `{}` and `{:?}`.
#[test]
fn number_values_and_handle_printing() {
    with_gil(|py, heap| {
        let x = heap.new_float(py, 142500.5);
        let n = heap.new_int(py, 1000);
        let s = heap.new_str(py, "revenue");
        assert_eq!(heap.float_value(py, x), Ok(142500.5));
        assert_eq!(heap.float_value(py, n), Ok(1000.0));
        assert_eq!(heap.float_value(py, ObjRef::TRUE), Ok(1.0));
        assert!(matches!(
            heap.float_value(py, s),
            Err(RtError::TypeError(_))
        ));
        assert_eq!(format!("{x:?}"), format!("{x}"));
        assert_eq!(format!("{:?}", ObjRef::NONE), "<immortal #0>");
        for o in [x, n, s] {
            heap.decref(py, o).unwrap();
        }
    });
}

/// RC-6 with tuple keys: a dict finds an entry through an equal tuple made separately (Python
/// compares tuple keys by content), and not through a tuple that differs in an item or a length.
#[test]
fn rc6_dict_tuple_keys_compare_by_content() {
    with_gil(|py, heap| {
        let (one, a, b) = (
            ObjRef::small_int(1).unwrap(),
            heap.new_str(py, "a"),
            heap.new_str(py, "b"),
        );
        let key = heap.new_tuple(py, &[one, a]).unwrap();
        let same = heap.new_tuple(py, &[one, a]).unwrap();
        let other = heap.new_tuple(py, &[one, b]).unwrap();
        let shorter = heap.new_tuple(py, &[one]).unwrap();
        let d = heap.new_dict(py);
        heap.dict_set(py, d, key, ObjRef::TRUE).unwrap();
        assert_eq!(heap.dict_get(py, d, same), Ok(ObjRef::TRUE));
        assert!(matches!(
            heap.dict_get(py, d, other),
            Err(RtError::KeyError(_))
        ));
        assert!(matches!(
            heap.dict_get(py, d, shorter),
            Err(RtError::KeyError(_))
        ));
        assert_eq!(
            heap.refcount(py, key),
            Ok(2),
            "the dict holds the first key, not the equal one"
        );
        assert_eq!(heap.refcount(py, same), Ok(1));
        for o in [d, key, same, other, shorter, a, b] {
            heap.decref(py, o).unwrap();
        }
        assert!(heap.leak_report(py).unwrap().is_clean());
    });
}

/// `repr` prints what CPython prints for the values the seed's programs show.
#[test]
fn repr_matches_python() {
    with_gil(|py, heap| {
        let one = ObjRef::small_int(1).unwrap();
        let (x, y, a) = (
            heap.new_float(py, 1.5),
            heap.new_float(py, 142500.0),
            heap.new_str(py, "a"),
        );
        let z = heap.new_float(py, 1.25);
        let single = heap.new_tuple(py, &[one]).unwrap();
        let pair = heap.new_tuple(py, &[one, a]).unwrap();
        let list = heap.new_list(py, &[ObjRef::NONE, ObjRef::TRUE, x]).unwrap();
        let d = heap.new_dict(py);
        heap.dict_set(py, d, a, y).unwrap();
        let cases = [
            (x, "1.5"),
            (y, "142500.0"),
            (z, "1.25"),
            (single, "(1,)"),
            (pair, "(1, 'a')"),
        ];
        for (o, want) in cases
            .into_iter()
            .chain([(list, "[None, True, 1.5]"), (d, "{'a': 142500.0}")])
        {
            assert_eq!(heap.repr(py, o).unwrap(), want);
        }
        for o in [x, y, z, a, single, pair, list, d] {
            heap.decref(py, o).unwrap();
        }
        assert!(heap.leak_report(py).unwrap().is_clean());
    });
}
