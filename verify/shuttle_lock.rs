//! shuttle, randomized (PCT and random schedulers), 3–4 threads: `threading.Lock` under the GIL
//! (LOCK-1, LOCK-2, LOCK-3), and the replay of a failing schedule.
//!
//! Threads increment a counter stored in a dict: `with lock: d["count"] = d["count"] + 1`, with a
//! poll (a possible GIL switch) between the read and the write. With the lock the final count is
//! exact and no execution deadlocks; the broken twins drop the lock (a lost update), keep the GIL
//! while blocking on the lock (a GIL/Lock deadlock), or take the lock twice (a self-deadlock).
//! Last, the lost update is persisted by shuttle and replayed from the file to the same failure.

mod common;

use common::Sched;
use gilcheck::platform::Shuttle;
use gilcheck::{Attached, Faults, ObjRef, Object, Poll, Runtime, ThreadId, ThreadState};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const PCT: Sched = Sched::Pct { depth: 3 };
const RANDOM: Sched = Sched::Random;

/// Executions per check of a correct program (each binary runs in a few seconds in --release).
const ITERATIONS: usize = 20_000;
/// At most this many executions for a broken twin; shuttle stops at the first failure.
const TWIN_ITERATIONS: usize = 2_000;

/// The counter's first value: above the small ints, so every increment allocates (and frees).
const START: i64 = 1000;

/// One variant of the counter program.
#[derive(Debug, Clone, Copy)]
struct Program {
    threads: usize,
    faults: Faults,
    /// Take the lock around the read-modify-write (LOCK-1).
    use_lock: bool,
    /// The first worker takes the lock a second time while holding it (LOCK-3).
    first_acquires_twice: bool,
}

impl Program {
    fn locked(threads: usize) -> Self {
        Program {
            threads,
            faults: Faults::default(),
            use_lock: true,
            first_acquires_twice: false,
        }
    }
}

/// What the interesting interleavings set, so no check passes vacuously.
struct Reach {
    /// A poll inside the read-modify-write handed the GIL over.
    switched: AtomicBool,
    /// The lock holder, holding the GIL, saw a thread inside `acquire_lock`: that thread was
    /// blocked on the lock with the GIL released (LOCK-2).
    blocked_without_gil: AtomicBool,
}

impl Reach {
    const fn new() -> Self {
        Reach {
            switched: AtomicBool::new(false),
            blocked_without_gil: AtomicBool::new(false),
        }
    }

    fn assert_reached(&self) {
        assert!(
            self.switched.load(Ordering::Relaxed),
            "no execution switched the GIL inside the critical section"
        );
        assert!(
            self.blocked_without_gil.load(Ordering::Relaxed),
            "no execution blocked a thread on the lock"
        );
    }
}

/// The shared counter `d["count"]`, its lock, and what the threads saw.
struct Counter {
    dict: ObjRef,
    key: ObjRef,
    lock: ObjRef,
    /// (thread, value read), in the order of the reads: the story of a lost update.
    reads: Mutex<Vec<(ThreadId, i64)>>,
    /// Threads between `acquire_lock` and `release_lock` (LOCK-1: at most one).
    in_lock: AtomicUsize,
    /// Threads inside `acquire_lock`.
    acquiring: AtomicUsize,
}

fn setup(g: &Attached<'_, Shuttle>) -> Counter {
    let (py, heap) = (g.token(), g.heap());
    let dict = heap.new_dict(py);
    let key = heap.new_str(py, "count");
    let start = heap.new_int(py, START);
    heap.dict_set(py, dict, key, start).unwrap();
    heap.decref(py, start).unwrap();
    heap.decref(py, key).unwrap();
    Counter {
        dict,
        key,
        lock: heap.new_lock(py),
        reads: Mutex::new(Vec::new()),
        in_lock: AtomicUsize::new(0),
        acquiring: AtomicUsize::new(0),
    }
}

/// `lock.acquire()` (twice for the LOCK-3 twin), then the LOCK-1 occupancy check.
fn enter(g: &Attached<'_, Shuttle>, c: &Counter, twice: bool) {
    c.acquiring.fetch_add(1, Ordering::SeqCst);
    g.acquire_lock(c.lock).unwrap();
    if twice {
        g.acquire_lock(c.lock).unwrap(); // LOCK-3: blocks forever
    }
    c.acquiring.fetch_sub(1, Ordering::SeqCst);
    let others = c.in_lock.fetch_add(1, Ordering::SeqCst);
    assert_eq!(others, 0, "LOCK-1 violated: two threads inside the lock");
}

fn leave(g: &Attached<'_, Shuttle>, c: &Counter, reach: &Reach) {
    if c.acquiring.load(Ordering::SeqCst) > 0 {
        reach.blocked_without_gil.store(true, Ordering::Relaxed);
    }
    c.in_lock.fetch_sub(1, Ordering::SeqCst);
    g.release_lock(c.lock).unwrap();
}

/// `d["count"] = d["count"] + 1`, with a poll between the read and the write.
fn increment(g: &Attached<'_, Shuttle>, c: &Counter, reach: &Reach) {
    let (py, heap) = (g.token(), g.heap());
    let old = heap.dict_get(py, c.dict, c.key).unwrap();
    let n = heap.int_value(py, old).unwrap();
    c.reads.lock().unwrap().push((g.thread_id(), n));
    if g.poll() == Poll::Released {
        reach.switched.store(true, Ordering::Relaxed);
    }
    let new = heap.new_int(py, n + 1);
    heap.dict_set(py, c.dict, c.key, new).unwrap();
    heap.decref(py, new).unwrap();
    heap.decref(py, old).unwrap();
}

/// Runs `p`, then checks the final count and that the heap is clean.
fn counter(p: Program, reach: &'static Reach) {
    let rt = Runtime::<Shuttle>::with_faults(p.faults);
    let mut main = rt.thread_state();
    let c = Arc::new({
        let g = main.attach();
        setup(&g)
    });
    let shared = Arc::clone(&c);
    common::shuttle_threads(&rt, p.threads, move |i, mut ts| {
        let g = ts.attach();
        if p.use_lock {
            enter(&g, &shared, p.first_acquires_twice && i == 0);
        }
        increment(&g, &shared, reach);
        if p.use_lock {
            leave(&g, &shared, reach);
        }
    });

    // Checked after detaching: a panic that unwinds through no scheduling point is persisted with
    // its whole schedule, which then replays to the same failure.
    let end = final_state(&mut main, &c);
    assert_eq!(
        end.count,
        START + p.threads as i64,
        "lost update: {} increments from {START}; reads (thread, value): {:?}",
        p.threads,
        c.reads.lock().unwrap()
    );
    assert!(
        !end.lock_held,
        "the lock is still held after every thread finished"
    );
    assert!(end.heap_clean, "objects leaked");
}

/// What the counter program left behind.
struct End {
    count: i64,
    lock_held: bool,
    heap_clean: bool,
}

/// Reads the final count and the lock's state, then frees the counter's objects.
fn final_state(main: &mut ThreadState<Shuttle>, c: &Counter) -> End {
    let g = main.attach();
    let (py, heap) = (g.token(), g.heap());
    let last = heap.dict_get(py, c.dict, c.key).unwrap();
    let count = heap.int_value(py, last).unwrap();
    heap.decref(py, last).unwrap();
    let Object::Lock(core) = heap.get(py, c.lock).unwrap() else {
        unreachable!("the lock object is a lock")
    };
    let lock_held = core.is_locked();
    heap.decref(py, c.dict).unwrap();
    heap.decref(py, c.lock).unwrap();
    End {
        count,
        lock_held,
        heap_clean: heap.leak_report(py).unwrap().is_clean(),
    }
}

static LOCK_PCT: Reach = Reach::new();
static LOCK_RANDOM: Reach = Reach::new();
static TWIN: Reach = Reach::new();

/// LOCK-1, LOCK-2: four threads increment under the lock: exact count, no deadlock.
#[test]
fn shuttle_lock_counter_pct() {
    common::shuttle_passes("shuttle_lock_counter_pct", PCT, 4, ITERATIONS, || {
        counter(Program::locked(4), &LOCK_PCT)
    });
    LOCK_PCT.assert_reached();
}

/// LOCK-1, LOCK-2: the same program under the random scheduler.
#[test]
fn shuttle_lock_counter_random() {
    common::shuttle_passes("shuttle_lock_counter_random", RANDOM, 4, ITERATIONS, || {
        counter(Program::locked(4), &LOCK_RANDOM)
    });
    LOCK_RANDOM.assert_reached();
}

/// The lost-update twin: the counter program without the lock.
fn lost_update() {
    let p = Program {
        use_lock: false,
        ..Program::locked(3)
    };
    counter(p, &TWIN);
}

/// LOCK-1: without the lock, a GIL switch between read and write loses an update.
#[test]
fn shuttle_twin_counter_without_lock_lost_update_caught() {
    common::shuttle_catches(
        "shuttle_twin_counter_without_lock_lost_update_caught",
        RANDOM,
        3,
        TWIN_ITERATIONS,
        "lost update",
        lost_update,
    );
}

/// LOCK-2: blocking on the lock with the GIL held deadlocks against the lock's holder.
#[test]
fn shuttle_twin_lock_keeps_gil_deadlock_caught() {
    let p = Program {
        faults: Faults {
            lock_keeps_gil: true,
            ..Faults::default()
        },
        ..Program::locked(3)
    };
    common::shuttle_catches(
        "shuttle_twin_lock_keeps_gil_deadlock_caught",
        PCT,
        3,
        TWIN_ITERATIONS,
        "deadlock",
        move || counter(p, &TWIN),
    );
}

/// LOCK-3: a thread that acquires the lock it holds blocks forever: shuttle reports deadlock.
#[test]
fn shuttle_twin_lock_reacquire_deadlock_caught() {
    let p = Program {
        first_acquires_twice: true,
        ..Program::locked(3)
    };
    common::shuttle_catches(
        "shuttle_twin_lock_reacquire_deadlock_caught",
        RANDOM,
        3,
        TWIN_ITERATIONS,
        "deadlock",
        move || counter(p, &TWIN),
    );
}

// ---------------------------------------------------------------------------------------------
// Replay.

/// Finds the lost update with failure persistence to files in `dir`; returns the failure's
/// message and the schedule file shuttle wrote.
fn find_and_persist(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let mut config = shuttle::Config::new();
    config.failure_persistence = shuttle::FailurePersistence::File(Some(dir.to_path_buf()));
    let runner = shuttle::Runner::new(
        shuttle::scheduler::RandomScheduler::new(TWIN_ITERATIONS),
        config,
    );
    let original = common::panic_message(|| {
        runner.run(lost_update);
    })
    .expect("the lost update was not found");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // schedule000.txt, …: shuttle writes again, longer, if the panic unwinds through scheduling
    // points (`counter` checks after detaching, so it should not); the last file is the whole run.
    files.sort();
    let file = files.pop().expect("no schedule file persisted");
    (original, file)
}

/// The body of the round trip, run in a child process: the first shuttle run of a process fixes
/// the configuration of shuttle's panic hook, which is what persists the schedule of a task panic.
fn replay_round_trip() {
    let dir = std::env::temp_dir().join(format!("gilcheck-shuttle-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (original, file) = find_and_persist(&dir);
    assert!(
        original.contains("lost update"),
        "unexpected failure: {original}"
    );
    let encoded = std::fs::read_to_string(&file).unwrap();
    let from_file = common::panic_message(|| shuttle::replay_from_file(lost_update, &file));
    let from_string = common::panic_message(|| shuttle::replay(lost_update, encoded.trim()));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        from_file.as_deref(),
        Some(original.as_str()),
        "replay_from_file differs"
    );
    assert_eq!(
        from_string.as_deref(),
        Some(original.as_str()),
        "replay differs"
    );
    println!(
        "replay round-trip: schedule of {} bytes replayed from file and from string to: {}",
        encoded.trim().len(),
        original.lines().next().unwrap_or_default()
    );
}

/// LOCK-1: the lost update's persisted schedule replays (from file and string) to the same failure.
#[test]
fn shuttle_replay_lost_update_round_trip() {
    let Some(run) = common::isolated("shuttle_replay_lost_update_round_trip", replay_round_trip)
    else {
        return;
    };
    assert!(run.success, "replay round trip failed:\n{}", run.output);
    // libtest prints `test NAME ... ` before the child's own line, on the same line.
    let line = run
        .output
        .lines()
        .find_map(|l| l.find("replay round-trip").map(|at| &l[at..]));
    let line = line.expect("the child did not report the round trip");
    println!("shuttle_replay_lost_update_round_trip: shuttle random, 3 threads: {line}");
}
