//! loom, exhaustive where it fits: reference counts under the GIL (RC-1, RC-2, RC-4, RC-6).
//!
//! Threads incref/decref shared objects, store them into and load them from containers, each
//! operation with the GIL held. loom checks every interleaving (and every GIL handoff order) for
//! data races on the plain refcount cells; the test then checks exact counts and that each object
//! is freed exactly once, when its last reference goes. The broken twin does the same without
//! the GIL, and loom must report the race.

mod common;

use gilcheck::platform::Loom;
use gilcheck::{Poll, Runtime, Token};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when some explored execution switched the GIL at a poll point between two operations, so
/// the checks below cannot pass vacuously with a GIL that never switches mid-sequence.
static SWITCHED: AtomicBool = AtomicBool::new(false);

fn assert_switch_reached() {
    assert!(
        SWITCHED.load(Ordering::Relaxed),
        "no execution switched the GIL between operations"
    );
}

use common::{Shared, setup};

/// One worker's operations: load from the dict (incref), store into the list (incref), drop the
/// loaded reference (decref), with a poll point (a possible GIL switch) between operations. `py`
/// is the proof the caller holds the GIL (or, in the twin, does not).
fn worker_ops(py: Token<'_>, heap: &gilcheck::Heap<Loom>, s: &Shared, poll: &dyn Fn()) {
    let v = heap.dict_get(py, s.dict, s.key).unwrap();
    heap.list_append(py, s.list, v).unwrap();
    poll();
    heap.decref(py, v).unwrap();
}

/// `threads` workers with the GIL; then the exact-count and free-exactly-once checks.
fn refcounts_under_gil(threads: usize) {
    let rt = Runtime::<Loom>::new();
    let mut main = rt.thread_state();
    let s = {
        let g = main.attach();
        setup(&g)
    };
    let s = std::sync::Arc::new(s);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (mut ts, s) = (rt.thread_state(), s.clone());
            loom::thread::spawn(move || {
                let g = ts.attach();
                worker_ops(g.token(), g.heap(), &s, &|| {
                    if g.poll() == Poll::Released {
                        SWITCHED.store(true, Ordering::Relaxed);
                    }
                });
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());

    let g = main.attach();
    common::check_teardown(&g, &s, threads, threads);
}

#[test]
fn loom_refcount_2_threads_exhaustive() {
    let n = common::loom_model(None, || refcounts_under_gil(2));
    assert_switch_reached();
    println!("loom exhaustive, 2 workers + main: {n} executions, no race, exact counts");
}

#[test]
fn loom_refcount_3_threads_bound_2() {
    let n = common::loom_model(Some(2), || refcounts_under_gil(3));
    println!("loom preemption bound 2, 3 workers + main: {n} executions, no race, exact counts");
}

#[test]
#[ignore = "heavy (minutes): cargo test --release --test loom_refcount -- --ignored"]
fn loom_refcount_3_threads_bound_3() {
    let n = common::loom_model(Some(3), || refcounts_under_gil(3));
    println!("loom preemption bound 3, 3 workers + main: {n} executions, no race, exact counts");
}

/// The twin: the same workers without taking the GIL. loom must report a data race on a cell.
fn refcounts_without_gil() {
    let rt = Runtime::<Loom>::new();
    let mut main = rt.thread_state();
    let s = std::sync::Arc::new({
        let g = main.attach();
        setup(&g)
    });
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (rt, s) = (rt.clone(), s.clone());
            loom::thread::spawn(move || {
                // SAFETY: deliberately broken: this thread does NOT hold the GIL. Under loom the
                // threads are coroutines on one OS thread, so the race is detected, not performed.
                let py = unsafe { Token::assume() };
                worker_ops(py, rt.heap(), &s, &|| {});
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
}

#[test]
fn loom_twin_refcount_without_gil_race_caught() {
    let run = common::isolated("loom_twin_refcount_without_gil_race_caught", || {
        common::loom_model(None, refcounts_without_gil);
    });
    common::assert_caught(run, "Causality violation", "refcounts without the GIL");
}
