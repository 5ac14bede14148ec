//! loom: `threading.Lock` (LOCK-1, LOCK-2, LOCK-3), exhaustive, each with a broken twin.
//!
//! Two threads run the seed's fixed program, `with lock: shared_counter["value"] += 1`, with a
//! poll point between the read and the write, so that without the lock a switch there loses an
//! update. Deadlocking twins run in a child process (loom may abort on a deadlock).

mod common;

use gilcheck::platform::Loom;
use gilcheck::{Attached, Faults, ObjRef, Runtime};
use std::sync::Arc;

struct Counter {
    dict: ObjRef,
    key: ObjRef,
    lock: ObjRef,
}

/// `shared_counter["value"] += 1`, optionally inside `with lock:`, with a poll point (a possible
/// GIL switch) between the read and the write.
fn increment(g: &Attached<'_, Loom>, c: &Counter, locked: bool) {
    let (py, heap) = (g.token(), g.heap());
    if locked {
        g.acquire_lock(c.lock).unwrap();
    }
    let old = heap.dict_get(py, c.dict, c.key).unwrap();
    let n = heap.int_value(py, old).unwrap();
    heap.decref(py, old).unwrap();
    let _ = g.poll();
    let new = heap.new_int(py, n + 1);
    heap.dict_set(py, c.dict, c.key, new).unwrap();
    heap.decref(py, new).unwrap();
    if locked {
        g.release_lock(c.lock).unwrap();
    }
}

/// Two threads increment once each; returns the final count.
fn run(faults: Faults, locked: bool) -> i64 {
    let rt = Runtime::<Loom>::with_faults(faults);
    let mut main = rt.thread_state();
    let counter = {
        let g = main.attach();
        let (py, heap) = (g.token(), g.heap());
        let (dict, key) = (heap.new_dict(py), heap.new_str(py, "value"));
        heap.dict_set(py, dict, key, ObjRef::small_int(0).unwrap())
            .unwrap();
        Arc::new(Counter {
            dict,
            key,
            lock: heap.new_lock(py),
        })
    };
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (mut ts, c) = (rt.thread_state(), counter.clone());
            loom::thread::spawn(move || increment(&ts.attach(), &c, locked))
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let g = main.attach();
    let v = g
        .heap()
        .dict_get(g.token(), counter.dict, counter.key)
        .unwrap();
    g.heap().int_value(g.token(), v).unwrap()
}

/// LOCK-1, LOCK-2: with the lock, no update is lost and no GIL/Lock deadlock exists.
#[test]
fn loom_lock_no_lost_update_exhaustive() {
    let n = common::loom_model(None, || {
        assert_eq!(run(Faults::default(), true), 2, "lost update")
    });
    println!("loom exhaustive, 2 threads: {n} executions, counter always 2 (LOCK-1, LOCK-2)");
}

/// LOCK-1 twin: without the lock, a switch between read and write loses an update.
#[test]
fn loom_twin_no_lock_lost_update_caught() {
    let run = common::isolated("loom_twin_no_lock_lost_update_caught", || {
        common::loom_model(None, || {
            assert_eq!(run(Faults::default(), false), 2, "lost update")
        });
    });
    common::assert_caught(run, "lost update", "no lock");
}

/// LOCK-2 twin: a Lock that blocks while keeping the GIL deadlocks against the GIL.
#[test]
fn loom_twin_lock_keeps_gil_deadlock_caught() {
    let run = common::isolated("loom_twin_lock_keeps_gil_deadlock_caught", || {
        let faults = Faults {
            lock_keeps_gil: true,
            ..Faults::default()
        };
        common::loom_model(None, move || {
            run(faults, true);
        });
    });
    common::assert_caught(
        run,
        "deadlock; threads",
        "Lock keeps the GIL while blocking",
    );
}

/// LOCK-3: the lock is not re-entrant: a second acquire by its holder blocks forever.
#[test]
fn loom_lock_not_reentrant_deadlock_caught() {
    let run = common::isolated("loom_lock_not_reentrant_deadlock_caught", || {
        common::loom_model(None, || {
            let rt = Runtime::<Loom>::new();
            let mut ts = rt.thread_state();
            let g = ts.attach();
            let lock = g.heap().new_lock(g.token());
            g.acquire_lock(lock).unwrap();
            g.acquire_lock(lock).unwrap();
        });
    });
    common::assert_caught(run, "deadlock; threads", "re-entrant acquire");
}
