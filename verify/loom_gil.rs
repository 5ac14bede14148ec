//! loom: the GIL's own rules (GIL-1, GIL-2, GIL-3, GIL-6), each with a broken twin.
//!
//! Every test names its bound: `exhaustive` (all interleavings, C11 memory model) or a
//! preemption bound. Twins that deadlock run in a child process, because loom can abort the whole
//! process on a deadlock (`verify/common/mod.rs`).

mod common;

use gilcheck::platform::Loom;
use gilcheck::{Faults, Poll, Runtime};
use loom::cell::UnsafeCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Data that is not an object and has no lock of its own: only the GIL orders its accesses.
struct Unguarded(UnsafeCell<u32>);

// SAFETY: only accessed while the GIL is held (or, in the twin, deliberately not, under loom,
// which reports the race instead of performing it).
unsafe impl Sync for Unguarded {}

impl Unguarded {
    fn bump(&self) {
        // SAFETY: see the `Sync` impl; loom checks the claim.
        self.0.with_mut(|p| unsafe { *p += 1 });
    }
    fn get(&self) -> u32 {
        // SAFETY: see the `Sync` impl.
        self.0.with(|p| unsafe { *p })
    }
}

/// `threads` threads each bump the unguarded counter twice with a poll point between, holding
/// the GIL unless `with_gil` is false (the twin).
fn mutual_exclusion(threads: usize, with_gil: bool) {
    let rt = Runtime::<Loom>::new();
    let data = Arc::new(Unguarded(UnsafeCell::new(0)));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (mut ts, data) = (rt.thread_state(), data.clone());
            loom::thread::spawn(move || {
                if with_gil {
                    let g = ts.attach();
                    data.bump();
                    let _ = g.poll();
                    data.bump();
                } else {
                    data.bump();
                    data.bump();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let mut main = rt.thread_state();
    let _g = main.attach();
    assert_eq!(data.get(), 2 * threads as u32);
}

/// GIL-1: accesses made under the GIL are ordered by its handoffs: no data race, no lost bump.
#[test]
fn loom_gil_mutual_exclusion_2_threads_exhaustive() {
    let n = common::loom_model(None, || mutual_exclusion(2, true));
    println!("loom exhaustive, 2 threads: {n} executions, no race (GIL-1)");
}

/// GIL-1 at 3 threads, preemption bound 2.
#[test]
fn loom_gil_mutual_exclusion_3_threads_bound_2() {
    let n = common::loom_model(Some(2), || mutual_exclusion(3, true));
    println!("loom preemption bound 2, 3 threads: {n} executions, no race (GIL-1)");
}

/// GIL-1 twin: the same accesses without the GIL: loom reports the race.
#[test]
fn loom_twin_no_gil_race_caught() {
    let run = common::isolated("loom_twin_no_gil_race_caught", || {
        common::loom_model(None, || mutual_exclusion(2, false));
    });
    common::assert_caught(run, "Causality violation", "no GIL");
}

/// Three threads (main included) take and release the GIL twice each.
fn handoffs(faults: Faults) {
    let rt = Runtime::<Loom>::with_faults(faults);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let mut ts = rt.thread_state();
            loom::thread::spawn(move || {
                drop(ts.attach());
                drop(ts.attach());
            })
        })
        .collect();
    let mut main = rt.thread_state();
    drop(main.attach());
    handles.into_iter().for_each(|h| h.join().unwrap());
}

/// GIL-2, GIL-3: whatever the interleaving, every waiter is woken when the GIL is released:
/// loom would report a deadlock otherwise.
#[test]
fn loom_gil_no_lost_wakeup_3_threads_bound_3() {
    let n = common::loom_model(Some(3), || handoffs(Faults::default()));
    println!("loom preemption bound 3, 3 threads: {n} executions, no deadlock (GIL-2, GIL-3)");
}

/// GIL-2, GIL-3 twin: a release that does not signal the waiters leaves one asleep: deadlock.
#[test]
fn loom_twin_missing_notify_deadlock_caught() {
    let run = common::isolated("loom_twin_missing_notify_deadlock_caught", || {
        let faults = Faults {
            no_notify_on_drop: true,
            ..Faults::default()
        };
        common::loom_model(Some(3), move || handoffs(faults));
    });
    common::assert_caught(run, "deadlock; threads", "missing notify on drop");
}

/// Two threads attach and poll (the first attaches twice); every take appends the taker to a log,
/// under the GIL. Returns the log and the final `switch_number`.
fn switch_log(faults: Faults) -> (Vec<u64>, u64) {
    let rt = Runtime::<Loom>::with_faults(faults);
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let (mut ts, log) = (rt.thread_state(), log.clone());
            loom::thread::spawn(move || {
                for _ in 0..=(1 - i) {
                    let g = ts.attach();
                    log.lock().unwrap().push(g.thread_id());
                    if g.poll() == Poll::Released {
                        log.lock().unwrap().push(g.thread_id());
                    }
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let log = Arc::try_unwrap(log).unwrap().into_inner().unwrap();
    (log, rt.gil().switch_number())
}

/// GIL-4: the number of changes of holder in a take log (the first take is one: no holder before).
fn holder_changes(log: &[u64]) -> u64 {
    let mut previous = 0;
    log.iter()
        .filter(|&&id| std::mem::replace(&mut previous, id) != id)
        .count() as u64
}

/// GIL-4: every take records the taker; `switch_number` counts changes of holder exactly, and
/// a thread re-taking the GIL it held last is not a switch (such a re-take is reached: asserted).
#[test]
fn loom_gil_switch_counting_exhaustive() {
    static SAME_THREAD_RETOOK: AtomicBool = AtomicBool::new(false);
    let n = common::loom_model(None, || {
        let (log, switches) = switch_log(Faults::default());
        assert_eq!(
            switches,
            holder_changes(&log),
            "switch_number miscounted: takes {log:?}"
        );
        if log.windows(2).any(|w| w[0] == w[1]) {
            SAME_THREAD_RETOOK.store(true, Ordering::Relaxed);
        }
    });
    assert!(
        SAME_THREAD_RETOOK.load(Ordering::Relaxed),
        "no execution re-took the GIL by the same thread"
    );
    println!("loom exhaustive, 2 threads: {n} executions, switches counted exactly (GIL-4)");
}

/// GIL-4 twin: a GIL that counts every take as a switch is caught miscounting.
#[test]
fn loom_twin_count_every_take_caught() {
    static MISCOUNTED: AtomicBool = AtomicBool::new(false);
    let faults = Faults {
        count_every_take: true,
        ..Faults::default()
    };
    let n = common::loom_model(None, move || {
        let (log, switches) = switch_log(faults);
        if switches != holder_changes(&log) {
            MISCOUNTED.store(true, Ordering::Relaxed);
        }
    });
    assert!(
        MISCOUNTED.load(Ordering::Relaxed),
        "twin not caught: switch counting looked exact"
    );
    println!("twin caught (every take counted as a switch): miscount in some of {n} executions");
}

/// Set when some execution showed a thread re-taking the GIL right after a requested drop.
static RETOOK_FIRST: AtomicBool = AtomicBool::new(false);
/// Set when some execution switched at a poll at all (so the property is not vacuous).
static FORCED_DROP_SEEN: AtomicBool = AtomicBool::new(false);

/// Thread 1 polls twice while thread 2 waits. Every holder appends its id to a log when it takes
/// the GIL; after a poll gave the GIL up, the previous entry must belong to another thread.
/// Returns whether that held in this execution.
fn force_switching(faults: Faults) -> bool {
    let rt = Runtime::<Loom>::with_faults(faults);
    let log = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let handoff_ok = Arc::new(AtomicBool::new(true));
    let (mut t1, mut t2) = (rt.thread_state(), rt.thread_state());
    let (l1, l2, ok) = (log.clone(), log.clone(), handoff_ok.clone());
    let a = loom::thread::spawn(move || {
        let g = t1.attach();
        l1.lock().unwrap().push(g.thread_id());
        for _ in 0..2 {
            if g.poll() == Poll::Released {
                FORCED_DROP_SEEN.store(true, Ordering::Relaxed);
                let mut log = l1.lock().unwrap();
                if log.last() == Some(&g.thread_id()) {
                    ok.store(false, Ordering::Relaxed);
                }
                log.push(g.thread_id());
            }
        }
    });
    let b = loom::thread::spawn(move || {
        let g = t2.attach();
        l2.lock().unwrap().push(g.thread_id());
    });
    a.join().unwrap();
    b.join().unwrap();
    handoff_ok.load(Ordering::Relaxed)
}

/// GIL-5, GIL-6: a waiter's drop request reaches the holder's poll (asserted reachable), and a
/// thread that drops the GIL because of it never re-takes it before another thread has taken
/// it. Exhaustive.
#[test]
fn loom_gil_force_switching_exhaustive() {
    let n = common::loom_model(None, || {
        assert!(
            force_switching(Faults::default()),
            "dropper re-took the GIL first (GIL-6)"
        );
    });
    assert!(
        FORCED_DROP_SEEN.load(Ordering::Relaxed),
        "no execution honoured a drop request"
    );
    println!("loom exhaustive: {n} executions, every requested drop handed the GIL over (GIL-6)");
}

/// GIL-6 twin: without the FORCE_SWITCHING wait, an execution where the dropper re-takes the
/// GIL first is reachable, and loom finds it.
#[test]
fn loom_twin_no_force_switching_retake_reachable() {
    let faults = Faults {
        no_force_switching: true,
        ..Faults::default()
    };
    let n = common::loom_model(None, move || {
        if !force_switching(faults) {
            RETOOK_FIRST.store(true, Ordering::Relaxed);
        }
    });
    assert!(
        RETOOK_FIRST.load(Ordering::Relaxed),
        "twin not caught: no execution re-took the GIL first without FORCE_SWITCHING"
    );
    println!("twin caught (no FORCE_SWITCHING): dropper re-took first in some of {n} executions");
}

/// Thread 1 blocks on a channel inside `allow_threads` (or, in the twin, while holding the GIL);
/// thread 2 must take the GIL to send. Afterwards thread 1 holds the GIL again.
fn allow_threads(release: bool) {
    let rt = Runtime::<Loom>::new();
    let data = Arc::new(Unguarded(UnsafeCell::new(0)));
    let (tx, rx) = loom::sync::mpsc::channel::<()>();
    let (mut t1, mut t2) = (rt.thread_state(), rt.thread_state());
    let d1 = data.clone();
    let a = loom::thread::spawn(move || {
        let g = t1.attach();
        if release {
            g.allow_threads(move || rx.recv().unwrap());
        } else {
            rx.recv().unwrap();
        }
        d1.bump(); // GIL re-taken: ordered against thread 2's bump
    });
    let b = loom::thread::spawn(move || {
        let _g = t2.attach();
        data.bump();
        tx.send(()).unwrap();
    });
    a.join().unwrap();
    b.join().unwrap();
}

/// GIL-3: `allow_threads` releases the GIL around blocking work and takes it back after.
#[test]
fn loom_gil_allow_threads_exhaustive() {
    let n = common::loom_model(None, || allow_threads(true));
    println!("loom exhaustive: {n} executions, blocking work ran with the GIL released (GIL-3)");
}

/// GIL-3 twin: blocking while holding the GIL deadlocks, and loom reports it.
#[test]
fn loom_twin_blocking_with_gil_deadlock_caught() {
    let run = common::isolated("loom_twin_blocking_with_gil_deadlock_caught", || {
        common::loom_model(None, || allow_threads(false));
    });
    common::assert_caught(run, "deadlock; threads", "blocking while holding the GIL");
}
