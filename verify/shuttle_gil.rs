//! shuttle, randomized (PCT and random schedulers), 3–4 threads: the GIL (GIL-1, GIL-2, GIL-3,
//! GIL-6, GIL-7) and reference counts under it (RC-2, RC-4, RC-6).
//!
//! Where loom is exhaustive but small, shuttle samples schedules of bigger programs. Each check runs
//! a small program on the [`Shuttle`] platform and asserts its property in every execution; a
//! reachability flag shows that the interesting interleaving (a switch at a poll, a waiter at a
//! release) was actually explored, so no check passes vacuously. Each broken twin runs the same
//! program on a runtime with one deliberate fault, and shuttle must find the failing execution.
//! A failure prints a schedule that `shuttle::replay` reproduces (see `shuttle_lock.rs`).

mod common;

use common::Sched;
use gilcheck::platform::Shuttle;
use gilcheck::{Attached, Faults, Poll, Runtime, ThreadId};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const PCT: Sched = Sched::Pct { depth: 3 };
const RANDOM: Sched = Sched::Random;

/// Executions per check of a correct program (each binary runs in a few seconds in --release).
const ITERATIONS: usize = 10_000;
/// At most this many executions for a broken twin; shuttle stops at the first failure.
const TWIN_ITERATIONS: usize = 2_000;

/// Records in `flag` that a poll handed the GIL over (and took it back).
fn poll_noting(g: &Attached<'_, Shuttle>, flag: &AtomicBool) {
    if g.poll() == Poll::Released {
        flag.store(true, Ordering::Relaxed);
    }
}

fn assert_reached(flag: &AtomicBool, what: &str) {
    assert!(
        flag.load(Ordering::Relaxed),
        "no explored execution {what}: the check passed vacuously"
    );
}

// ---------------------------------------------------------------------------------------------
// GIL-1: mutual exclusion.

/// State that only the GIL protects: std atomics, which are not scheduling points, so shuttle
/// interleaves threads only at the GIL's own operations and the explicit yield below.
#[derive(Default)]
struct Occupancy {
    /// Threads inside a GIL section now; more than one is a GIL-1 violation.
    inside: AtomicUsize,
    /// Incremented by a read, a scheduling point, then a write: overlap loses increments.
    count: AtomicUsize,
}

impl Occupancy {
    /// One step of a GIL section, with a scheduling point in the middle of it.
    fn step(&self) {
        let others = self.inside.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            others, 0,
            "GIL-1 violated: two threads inside a GIL section"
        );
        let n = self.count.load(Ordering::SeqCst);
        shuttle::thread::yield_now();
        self.count.store(n + 1, Ordering::SeqCst);
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `threads` workers, each attached for `steps` section steps with a poll between steps.
fn exclusion(threads: usize, steps: usize, switched: &'static AtomicBool) {
    let rt = Runtime::<Shuttle>::new();
    let occ = Arc::new(Occupancy::default());
    let o = Arc::clone(&occ);
    common::shuttle_threads(&rt, threads, move |_, mut ts| {
        let g = ts.attach();
        for _ in 0..steps {
            o.step();
            poll_noting(&g, switched);
        }
    });
    assert_eq!(
        occ.count.load(Ordering::SeqCst),
        threads * steps,
        "GIL-1 violated: increments lost"
    );
    assert!(
        !rt.gil().is_locked(),
        "GIL still held after every thread detached"
    );
}

/// The twin's workers run the same steps without attaching: nothing excludes them.
fn exclusion_without_gil(threads: usize, steps: usize) {
    let occ = Arc::new(Occupancy::default());
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let o = Arc::clone(&occ);
            shuttle::thread::spawn(move || {
                for _ in 0..steps {
                    o.step();
                    shuttle::thread::yield_now();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
}

static EXCLUSION_PCT_SWITCHED: AtomicBool = AtomicBool::new(false);
static EXCLUSION_RANDOM_SWITCHED: AtomicBool = AtomicBool::new(false);

/// GIL-1, GIL-7: four threads never overlap inside GIL sections, though polls switch between them.
#[test]
fn shuttle_gil_exclusion_pct() {
    let flag = &EXCLUSION_PCT_SWITCHED;
    common::shuttle_passes("shuttle_gil_exclusion_pct", PCT, 4, ITERATIONS, || {
        exclusion(4, 3, flag)
    });
    assert_reached(flag, "switched the GIL at a poll");
}

/// GIL-1, GIL-7: the same program under the random scheduler.
#[test]
fn shuttle_gil_exclusion_random() {
    let flag = &EXCLUSION_RANDOM_SWITCHED;
    common::shuttle_passes(
        "shuttle_gil_exclusion_random",
        RANDOM,
        4,
        ITERATIONS,
        || exclusion(4, 3, flag),
    );
    assert_reached(flag, "switched the GIL at a poll");
}

/// GIL-1: the overlap detector works: without the GIL, shuttle finds two threads in a section.
#[test]
fn shuttle_twin_gil_exclusion_without_gil_caught() {
    common::shuttle_catches(
        "shuttle_twin_gil_exclusion_without_gil_caught",
        RANDOM,
        4,
        TWIN_ITERATIONS,
        "GIL-1 violated",
        || exclusion_without_gil(4, 3),
    );
}

// ---------------------------------------------------------------------------------------------
// RC-2, RC-4, RC-6: reference counts under the GIL.

use common::{Shared, setup};

/// One worker: loads the shared value and stores it in the list, stores an object of its own,
/// makes and frees a temporary, then drops its loaded reference; a poll between operations.
fn worker_ops(g: &Attached<'_, Shuttle>, s: &Shared, switched: &AtomicBool) {
    let (py, heap) = (g.token(), g.heap());
    let v = heap.dict_get(py, s.dict, s.key).unwrap(); // RC-6: a new reference
    heap.list_append(py, s.list, v).unwrap(); // RC-6: the list's own reference
    poll_noting(g, switched);
    let own = heap.new_float(py, g.thread_id() as f64); // RC-2: count 1, ours
    heap.list_append(py, s.list, own).unwrap();
    heap.decref(py, own).unwrap(); // only the list holds it now
    poll_noting(g, switched);
    let tmp = heap.new_str(py, "tmp");
    heap.incref(py, tmp).unwrap();
    poll_noting(g, switched);
    heap.decref(py, tmp).unwrap();
    assert!(heap.is_live(py, tmp), "RC-4 violated: freed at count 1");
    heap.decref(py, tmp).unwrap(); // RC-4: zero: freed now
    assert!(
        !heap.is_live(py, tmp),
        "RC-4 violated: not freed at count 0"
    );
    assert_eq!(
        heap.refcount(py, own).unwrap(),
        1,
        "RC-2: the list's reference"
    );
    poll_noting(g, switched);
    heap.decref(py, v).unwrap();
}

/// `threads` workers with the GIL; then the exact-count and free-exactly-once checks.
fn refcounts_under_gil(threads: usize, switched: &'static AtomicBool) {
    let rt = Runtime::<Shuttle>::new();
    let mut main = rt.thread_state();
    let s = Arc::new({
        let g = main.attach();
        setup(&g)
    });
    let shared = Arc::clone(&s);
    common::shuttle_threads(&rt, threads, move |_, mut ts| {
        let g = ts.attach();
        worker_ops(&g, &shared, switched);
    });

    let g = main.attach();
    let stats = common::check_teardown(&g, &s, threads, 2 * threads);
    assert_eq!(stats.allocated, 4 + 2 * threads as u64);
}

static REFCOUNT_PCT_SWITCHED: AtomicBool = AtomicBool::new(false);
static REFCOUNT_RANDOM_SWITCHED: AtomicBool = AtomicBool::new(false);

/// RC-2, RC-4, RC-6: four workers share objects under the GIL; counts exact, each freed once.
#[test]
fn shuttle_refcount_pct() {
    let flag = &REFCOUNT_PCT_SWITCHED;
    common::shuttle_passes("shuttle_refcount_pct", PCT, 4, ITERATIONS, || {
        refcounts_under_gil(4, flag)
    });
    assert_reached(flag, "switched the GIL between refcount operations");
}

/// RC-2, RC-4, RC-6: the same program with three workers under the random scheduler.
#[test]
fn shuttle_refcount_random() {
    let flag = &REFCOUNT_RANDOM_SWITCHED;
    common::shuttle_passes("shuttle_refcount_random", RANDOM, 3, ITERATIONS, || {
        refcounts_under_gil(3, flag)
    });
    assert_reached(flag, "switched the GIL between refcount operations");
}

// ---------------------------------------------------------------------------------------------
// GIL-6: FORCE_SWITCHING.

/// How a thread came to hold the GIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Took {
    Attach,
    /// Took it back after a poll that handed it over.
    AfterPoll,
}

/// The holders of the GIL in order: each thread appends as soon as it has taken the GIL, before
/// it can give the GIL up again, so the log is the sequence of takes.
type HolderLog = Mutex<Vec<(ThreadId, Took)>>;

fn record(log: &HolderLog, g: &Attached<'_, Shuttle>, how: Took) {
    log.lock().unwrap().push((g.thread_id(), how));
}

/// GIL-6: a thread that handed the GIL over at a poll is never the next to take it.
fn check_force_switching(log: &[(ThreadId, Took)]) {
    for pair in log.windows(2) {
        if let [(before, _), (me, Took::AfterPoll)] = pair {
            assert_ne!(
                before, me,
                "GIL-6 violated: thread {me} dropped the GIL at a poll and re-took it first; takes: {log:?}"
            );
        }
    }
}

/// `threads` workers attach and poll `polls` times, logging every take.
fn force_switching(faults: Faults, threads: usize, polls: usize, switched: &'static AtomicBool) {
    let rt = Runtime::<Shuttle>::with_faults(faults);
    let log = Arc::new(HolderLog::default());
    let l = Arc::clone(&log);
    common::shuttle_threads(&rt, threads, move |_, mut ts| {
        let g = ts.attach();
        record(&l, &g, Took::Attach);
        for _ in 0..polls {
            if g.poll() == Poll::Released {
                record(&l, &g, Took::AfterPoll);
                switched.store(true, Ordering::Relaxed);
            }
        }
    });
    check_force_switching(&log.lock().unwrap());
}

static FORCE_PCT_SWITCHED: AtomicBool = AtomicBool::new(false);
static FORCE_RANDOM_SWITCHED: AtomicBool = AtomicBool::new(false);
static FORCE_TWIN_SWITCHED: AtomicBool = AtomicBool::new(false);

/// GIL-6: after a poll honours a drop request, another thread takes the GIL before the dropper.
#[test]
fn shuttle_force_switching_pct() {
    let flag = &FORCE_PCT_SWITCHED;
    common::shuttle_passes("shuttle_force_switching_pct", PCT, 3, ITERATIONS, || {
        force_switching(Faults::default(), 3, 3, flag)
    });
    assert_reached(flag, "honoured a drop request at a poll");
}

/// GIL-6: the same property with four threads under the random scheduler.
#[test]
fn shuttle_force_switching_random() {
    let flag = &FORCE_RANDOM_SWITCHED;
    common::shuttle_passes(
        "shuttle_force_switching_random",
        RANDOM,
        4,
        ITERATIONS,
        || force_switching(Faults::default(), 4, 3, flag),
    );
    assert_reached(flag, "honoured a drop request at a poll");
}

/// GIL-6: without FORCE_SWITCHING, shuttle finds a dropper that re-takes the GIL first.
#[test]
fn shuttle_twin_no_force_switching_caught() {
    let faults = Faults {
        no_force_switching: true,
        ..Faults::default()
    };
    common::shuttle_catches(
        "shuttle_twin_no_force_switching_caught",
        PCT,
        3,
        TWIN_ITERATIONS,
        "GIL-6 violated",
        move || force_switching(faults, 3, 3, &FORCE_TWIN_SWITCHED),
    );
}

// ---------------------------------------------------------------------------------------------
// GIL-2, GIL-3: no lost wake-up on a voluntary release.

/// `threads` workers attach, poll, release the GIL around a blocking call, and detach. Notes in
/// `waiter_seen` when a thread detaches while a waiter has posted a request and sleeps on the
/// GIL's condition variable: the wake-up the twin loses.
fn voluntary_release(faults: Faults, threads: usize, waiter_seen: &'static AtomicBool) {
    let rt = Runtime::<Shuttle>::with_faults(faults);
    common::shuttle_threads(&rt, threads, move |_, mut ts| {
        let g = ts.attach();
        let _ = g.poll();
        g.allow_threads(shuttle::thread::yield_now); // GIL-3: a voluntary release mid-section
        if g.runtime().gil().drop_requested() {
            waiter_seen.store(true, Ordering::Relaxed);
        }
        drop(g); // GIL-3: another voluntary release, which must wake that waiter (GIL-2)
    });
    assert!(
        !rt.gil().is_locked(),
        "GIL still held after every thread detached"
    );
}

static RELEASE_PCT_WAITER: AtomicBool = AtomicBool::new(false);
static RELEASE_RANDOM_WAITER: AtomicBool = AtomicBool::new(false);
static RELEASE_TWIN_WAITER: AtomicBool = AtomicBool::new(false);

/// GIL-2, GIL-3: voluntary releases wake a waiter: every execution ends, no deadlock.
#[test]
fn shuttle_voluntary_release_wakes_waiter_pct() {
    let flag = &RELEASE_PCT_WAITER;
    common::shuttle_passes(
        "shuttle_voluntary_release_wakes_waiter_pct",
        PCT,
        3,
        ITERATIONS,
        || voluntary_release(Faults::default(), 3, flag),
    );
    assert_reached(flag, "released the GIL with a waiter asleep");
}

/// GIL-2, GIL-3: the same program with four threads under the random scheduler.
#[test]
fn shuttle_voluntary_release_wakes_waiter_random() {
    let flag = &RELEASE_RANDOM_WAITER;
    common::shuttle_passes(
        "shuttle_voluntary_release_wakes_waiter_random",
        RANDOM,
        4,
        ITERATIONS,
        || voluntary_release(Faults::default(), 4, flag),
    );
    assert_reached(flag, "released the GIL with a waiter asleep");
}

/// GIL-2, GIL-3: a release that does not signal the waiters strands one: shuttle reports deadlock.
#[test]
fn shuttle_twin_no_notify_on_drop_deadlock_caught() {
    let faults = Faults {
        no_notify_on_drop: true,
        ..Faults::default()
    };
    common::shuttle_catches(
        "shuttle_twin_no_notify_on_drop_deadlock_caught",
        RANDOM,
        3,
        TWIN_ITERATIONS,
        "deadlock",
        move || voluntary_release(faults, 3, &RELEASE_TWIN_WAITER),
    );
}
