//! proptest (+ shuttle): reference counts against an independent oracle (RC-2 … RC-8, GIL-1).
//!
//! * `proptest_heap_concurrent_shuttle`: proptest generates a scenario (2–3 threads of 1–4 object
//!   operations on objects the main thread created, plus a shuttle seed); shuttle's random
//!   scheduler runs it under many interleavings. The oracle is a plain count of the references
//!   held by each thread, container and the main thread, kept by the test itself. It is checked
//!   against `Heap::refcount`/`Heap::is_live` after every operation (under the GIL, where the
//!   running thread can see the whole heap) and, at the end, against a schedule-independent
//!   prediction computed before the run.
//! * `proptest_heap_sequential_model`: a random sequence of heap operations on one thread against a
//!   full model of the heap (containers holding containers, replacement, deletion, deallocation
//!   cascades, cycles, immortal objects, misuse of freed handles), checking RC-2, RC-3, RC-4, RC-5,
//!   RC-6 after every step and RC-8 at the end.

use gilcheck::heap::IMMORTAL_REFCNT;
use gilcheck::platform::{Shuttle, Std};
use gilcheck::{Attached, ObjRef, Object, Poll, RtError, Runtime};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, FailurePersistence, FileFailurePersistence, TestRunner};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

// ---------------------------------------------------------------------------------------------
// Part (a): concurrent scenarios under shuttle.
// ---------------------------------------------------------------------------------------------

/// Work multiplier: the optimized build (`cargo test --release`, the CI run) does 4x the cases
/// and schedules of a debug build, where each execution is about 10x slower.
const SCALE: u32 = if cfg!(debug_assertions) { 1 } else { 4 };
/// Number of proptest cases (scenarios) and shuttle iterations (schedules) per scenario.
const CONCURRENT_CASES: u32 = 64 * SCALE;
const SHUTTLE_ITERATIONS: usize = 50 * SCALE as usize;

/// Polls that switched the GIL, over every run: proves the runs interleaved threads mid-sequence.
static SWITCHES: AtomicU64 = AtomicU64::new(0);
/// Frees of thread-created objects by the threads themselves, before main looks (their slots are
/// reused by later allocations of any thread, so stale handles must be detected by generation).
static THREAD_FREES: AtomicU64 = AtomicU64::new(0);

/// The logical name of an object, the same in every schedule (handles are not: slots are reused
/// in allocation order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Id {
    /// The shared dict `{"a": F0, "b": S0, "c": Inner}`; main holds it.
    Dict,
    /// A shared list; main holds it.
    List,
    /// A second list, held by main and by the dict; threads may store it into `List` or `Dict`
    /// and store leaves into it, never itself (so no reference cycle can form).
    Inner,
    KeyA,
    KeyB,
    KeyC,
    /// Values of "a" and "b": held by the dict only.
    F0,
    S0,
    /// Held by main only.
    F1,
    S1,
    /// Immortal objects (RC-3): stored like the others, never counted.
    None,
    Int42,
    /// Thread `thread`'s private dict key `slot` (a str the thread creates when it starts).
    Key {
        thread: usize,
        slot: usize,
    },
    /// The `n`-th object thread `thread` created.
    New {
        thread: usize,
        n: usize,
    },
}

impl Id {
    fn immortal(self) -> bool {
        matches!(self, Id::None | Id::Int42)
    }
}

/// Objects a thread may store without holding its own reference (it borrows main's or the
/// dict's, which outlive every thread).
const SHAREABLE: [Id; 7] = [
    Id::F0,
    Id::S0,
    Id::F1,
    Id::S1,
    Id::Inner,
    Id::None,
    Id::Int42,
];
/// The dict's fixed entries (key, value, key text). No thread writes them, so a load from them
/// returns the same object in every schedule.
const FIXED: [(Id, Id, &str); 3] = [
    (Id::KeyA, Id::F0, "a"),
    (Id::KeyB, Id::S0, "b"),
    (Id::KeyC, Id::Inner, "c"),
];
/// Private dict keys per thread: a thread's `dict_set`s replace only its own values, so which
/// value a replacement drops does not depend on the schedule.
const SLOTS: usize = 2;

/// Which object an operation stores.
#[derive(Clone, Debug)]
enum Item {
    /// One of the thread's own references (index modulo how many it holds; falls back to a
    /// shareable object when it holds none).
    Held(usize),
    /// `SHAREABLE[i % len]`.
    Shared(usize),
}

/// One operation of a thread (always with the GIL held).
#[derive(Clone, Debug)]
enum Op {
    /// `dict[FIXED[k].key]`: a new reference, held by the thread.
    Load(usize),
    /// `List.append(item)` or `Inner.append(item)`.
    Append { inner: bool, item: Item },
    /// `dict[thread's private key slot] = item`: may replace (and decref) the thread's old value.
    DictSet { slot: usize, item: Item },
    /// Incref one held reference: the thread now holds one more.
    Incref(usize),
    /// Decref one held reference and forget it.
    Drop(usize),
    /// Create a float or str, held by the thread.
    New { string: bool },
    /// A poll point: a possible GIL switch (GIL-7).
    Poll,
}

/// An operation resolved against the thread's own logical state: what the heap must do.
#[derive(Debug)]
enum Action {
    Load { key: Id, value: Id },
    Append { list: Id, item: Id },
    DictSet { key: Id, value: Id },
    Incref(Id),
    Decref(Id),
    New { id: Id, string: bool },
    Skip,
}

type Counts = BTreeMap<Id, isize>;

fn inc(counts: &mut Counts, id: Id) {
    if !id.immortal() {
        *counts.entry(id).or_insert(0) += 1;
    }
}

fn dec(counts: &mut Counts, id: Id) {
    if !id.immortal() {
        let c = counts
            .get_mut(&id)
            .expect("oracle: decref of an unknown object");
        *c -= 1;
        assert!(*c >= 0, "oracle: {id:?} went negative (test bug)");
    }
}

/// The counts right after the main thread's setup.
fn initial_counts() -> Counts {
    [
        (Id::Dict, 1),
        (Id::List, 1),
        (Id::Inner, 2), // main + the dict ("c")
        (Id::KeyA, 1),
        (Id::KeyB, 1),
        (Id::KeyC, 1),
        (Id::F0, 1), // the dict only
        (Id::S0, 1),
        (Id::F1, 1), // main only
        (Id::S1, 1),
    ]
    .into_iter()
    .collect()
}

/// What one thread holds, in logical names. Depends only on the thread's own operations, never on
/// the schedule.
struct ThreadModel {
    thread: usize,
    held: Vec<Id>,
    slot_values: [Option<Id>; SLOTS],
    created: usize,
}

impl ThreadModel {
    /// The thread starts by creating its private keys (one reference each, its own).
    fn start(thread: usize, counts: &mut Counts) -> Self {
        for slot in 0..SLOTS {
            counts.insert(Id::Key { thread, slot }, 1);
        }
        ThreadModel {
            thread,
            held: Vec::new(),
            slot_values: [None; SLOTS],
            created: 0,
        }
    }

    fn resolve(&self, item: &Item) -> Id {
        match *item {
            Item::Held(i) if !self.held.is_empty() => self.held[i % self.held.len()],
            Item::Held(i) | Item::Shared(i) => SHAREABLE[i % SHAREABLE.len()],
        }
    }

    /// Applies `op` to the logical state and to `counts`; returns what the heap must do.
    fn step(&mut self, op: &Op, counts: &mut Counts) -> Action {
        match *op {
            Op::Load(k) => {
                let (key, value, _) = FIXED[k % FIXED.len()];
                inc(counts, value);
                self.held.push(value);
                Action::Load { key, value }
            }
            Op::Append { inner, ref item } => {
                let item = self.resolve(item);
                let list = if inner && item != Id::Inner {
                    Id::Inner
                } else {
                    Id::List
                };
                inc(counts, item);
                Action::Append { list, item }
            }
            Op::DictSet { slot, ref item } => {
                let slot = slot % SLOTS;
                let key = Id::Key {
                    thread: self.thread,
                    slot,
                };
                let value = self.resolve(item);
                let old = self.slot_values[slot].replace(value);
                if old.is_none() {
                    inc(counts, key); // a new entry: the dict takes the key
                }
                inc(counts, value);
                if let Some(old) = old {
                    dec(counts, old); // RC-6: the replaced value is dropped
                }
                Action::DictSet { key, value }
            }
            Op::Incref(i) if !self.held.is_empty() => {
                let id = self.held[i % self.held.len()];
                inc(counts, id);
                self.held.push(id);
                Action::Incref(id)
            }
            Op::Drop(i) if !self.held.is_empty() => {
                let id = self.held.remove(i % self.held.len());
                dec(counts, id);
                Action::Decref(id)
            }
            Op::Incref(_) | Op::Drop(_) => Action::Skip,
            Op::New { string } => {
                let id = Id::New {
                    thread: self.thread,
                    n: self.created,
                };
                self.created += 1;
                counts.insert(id, 1);
                self.held.push(id);
                Action::New { id, string }
            }
            Op::Poll => unreachable!("polls are not heap operations"),
        }
    }

    /// The thread's end: it releases every reference it holds, its private keys included.
    fn finish(&mut self, counts: &mut Counts) -> Vec<Id> {
        let mut released: Vec<Id> = self.held.drain(..).collect();
        released.extend((0..SLOTS).map(|slot| Id::Key {
            thread: self.thread,
            slot,
        }));
        for &id in &released {
            dec(counts, id);
        }
        released
    }
}

#[derive(Clone, Debug)]
struct Scenario {
    threads: Vec<Vec<Op>>,
    seed: u64,
}

impl Scenario {
    /// The schedule-independent prediction: run the threads' logical models one after the other.
    /// Every operation's effect on the totals commutes with every other thread's (loads read
    /// entries nobody writes, appends commute, dict writes use private keys), so any interleaving
    /// must end with these counts.
    fn final_counts(&self) -> Counts {
        let mut counts = initial_counts();
        for (t, ops) in self.threads.iter().enumerate() {
            let mut m = ThreadModel::start(t, &mut counts);
            for op in ops.iter().filter(|op| !matches!(op, Op::Poll)) {
                m.step(op, &mut counts);
            }
            m.finish(&mut counts);
        }
        counts
    }
}

/// The oracle as the run goes: counts updated in the order the operations really happen (each
/// update made with the GIL held, next to the heap operation it mirrors), and the handle of each
/// logical object.
#[derive(Default)]
struct Live {
    counts: Counts,
    handles: BTreeMap<Id, ObjRef>,
}

fn handle(live: &Live, id: Id) -> ObjRef {
    live.handles[&id]
}

/// Takes the oracle. The caller holds the GIL, so no other thread can be inside: contention would
/// mean two threads hold the GIL at once (GIL-1).
fn lock_live(live: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    live.try_lock()
        .expect("oracle already in use by another thread: two threads hold the GIL (GIL-1)")
}

/// RC-2, RC-3, RC-4: every object's count equals the oracle; an object is alive iff its oracle
/// count is positive; nothing untracked is alive.
fn check_all(g: &Attached<'_, Shuttle>, live: &Live, when: &str) {
    let (py, heap) = (g.token(), g.heap());
    let mut alive = 0;
    for (&id, &h) in &live.handles {
        if id.immortal() {
            assert!(heap.is_live(py, h), "{when}: immortal {id:?} freed (RC-3)");
            assert_eq!(
                heap.refcount(py, h).unwrap(),
                IMMORTAL_REFCNT,
                "{when}: immortal {id:?} (RC-3)"
            );
            continue;
        }
        let expected = live.counts[&id];
        if expected > 0 {
            alive += 1;
            assert!(
                heap.is_live(py, h),
                "{when}: {id:?} freed but the oracle counts {expected} references (RC-4)"
            );
            assert_eq!(
                heap.refcount(py, h).unwrap(),
                expected,
                "{when}: refcount of {id:?} (RC-2)"
            );
        } else {
            assert!(
                !heap.is_live(py, h),
                "{when}: {id:?} alive with no reference left (RC-4)"
            );
            assert!(
                matches!(
                    heap.refcount(py, h),
                    Err(RtError::UseAfterFree { obj, .. }) if obj == h
                ),
                "{when}: a freed handle of {id:?} must be detected (RC-5)"
            );
        }
    }
    assert_eq!(
        heap.live_count(py),
        alive,
        "{when}: live objects the oracle does not know about"
    );
}

/// Main's setup: the shared objects, with the counts of `initial_counts`.
fn setup(g: &Attached<'_, Shuttle>, live: &mut Live) {
    let (py, heap) = (g.token(), g.heap());
    let h = &mut live.handles;
    h.insert(Id::None, ObjRef::NONE);
    h.insert(Id::Int42, heap.new_int(py, 42));
    h.insert(Id::Dict, heap.new_dict(py));
    h.insert(Id::List, heap.new_list(py, &[]).unwrap());
    h.insert(Id::Inner, heap.new_list(py, &[]).unwrap());
    h.insert(Id::F0, heap.new_float(py, 142500.0));
    h.insert(Id::S0, heap.new_str(py, "b-value"));
    h.insert(Id::F1, heap.new_float(py, 0.25));
    h.insert(Id::S1, heap.new_str(py, "s1"));
    for (key, value, text) in FIXED {
        let k = heap.new_str(py, text);
        heap.dict_set(py, h[&Id::Dict], k, h[&value]).unwrap();
        heap.decref(py, k).unwrap(); // only the dict holds the key
        h.insert(key, k);
    }
    heap.decref(py, h[&Id::F0]).unwrap(); // only the dict holds "a"'s and "b"'s values
    heap.decref(py, h[&Id::S0]).unwrap();
    live.counts = initial_counts();
    check_all(g, live, "after setup");
}

/// Performs `action` on the heap (the oracle has already been updated).
fn perform(g: &Attached<'_, Shuttle>, live: &mut Live, thread: usize, action: &Action) {
    let (py, heap) = (g.token(), g.heap());
    match *action {
        Action::Load { key, value } => {
            let got = heap
                .dict_get(py, handle(live, Id::Dict), handle(live, key))
                .unwrap();
            assert_eq!(
                got,
                handle(live, value),
                "dict[{key:?}] returned another object"
            );
        }
        Action::Append { list, item } => heap
            .list_append(py, handle(live, list), handle(live, item))
            .unwrap(),
        Action::DictSet { key, value } => heap
            .dict_set(
                py,
                handle(live, Id::Dict),
                handle(live, key),
                handle(live, value),
            )
            .unwrap(),
        Action::Incref(id) => heap.incref(py, handle(live, id)).unwrap(),
        Action::Decref(id) => {
            heap.decref(py, handle(live, id)).unwrap();
            if live.counts[&id] == 0 && matches!(id, Id::New { .. }) {
                THREAD_FREES.fetch_add(1, Ordering::Relaxed);
            }
        }
        Action::New { id, string } => {
            let h = if string {
                heap.new_str(py, &format!("{id:?}"))
            } else {
                heap.new_float(py, thread as f64 + 0.5)
            };
            live.handles.insert(id, h);
        }
        Action::Skip => {}
    }
}

/// One thread of a scenario: attach, run the operations, release everything, detach.
fn worker(thread: usize, rt: &Arc<Runtime<Shuttle>>, ops: &[Op], live: &Mutex<Live>) {
    let mut ts = rt.thread_state();
    let g = ts.attach();
    let mut model = {
        let mut l = lock_live(live);
        let model = ThreadModel::start(thread, &mut l.counts);
        for slot in 0..SLOTS {
            let k = g
                .heap()
                .new_str(g.token(), &format!("t{thread}-slot{slot}"));
            l.handles.insert(Id::Key { thread, slot }, k);
        }
        check_all(&g, &l, &format!("thread {thread} start"));
        model
    };
    for (i, op) in ops.iter().enumerate() {
        if let Op::Poll = op {
            if g.poll() == Poll::Released {
                SWITCHES.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let mut l = lock_live(live);
        let action = model.step(op, &mut l.counts);
        perform(&g, &mut l, thread, &action);
        check_all(
            &g,
            &l,
            &format!("thread {thread} op {i} {op:?} => {action:?}"),
        );
    }
    let mut l = lock_live(live);
    for id in model.finish(&mut l.counts) {
        g.heap().decref(g.token(), handle(&l, id)).unwrap();
        if l.counts[&id] == 0 && matches!(id, Id::New { .. }) {
            THREAD_FREES.fetch_add(1, Ordering::Relaxed);
        }
    }
    check_all(&g, &l, &format!("thread {thread} end"));
}

/// One shuttle execution of a scenario.
fn run_scenario(sc: &Scenario, expected: &Counts) {
    let rt = Runtime::<Shuttle>::new();
    let live = Arc::new(Mutex::new(Live::default()));
    let mut main = rt.thread_state();
    {
        let g = main.attach();
        setup(&g, &mut lock_live(&live));
    }
    let joins: Vec<_> = sc
        .threads
        .iter()
        .enumerate()
        .map(|(t, ops)| {
            let (rt, ops, live) = (Arc::clone(&rt), ops.clone(), Arc::clone(&live));
            shuttle::thread::spawn(move || worker(t, &rt, &ops, &live))
        })
        .collect();
    for j in joins {
        j.join().unwrap();
    }

    let g = main.attach();
    let (py, heap) = (g.token(), g.heap());
    let mut l = lock_live(&live);
    // The oracle followed this schedule; the prediction was made before any schedule existed.
    assert_eq!(
        &l.counts, expected,
        "the oracle's totals depend on the schedule (test design bug)"
    );
    check_all(&g, &l, "after join");
    // Main drops its references: everything must go (no cycle can form), exactly once (RC-4).
    for id in [Id::Dict, Id::List, Id::Inner, Id::F1, Id::S1] {
        heap.decref(py, handle(&l, id)).unwrap();
    }
    for c in l.counts.values_mut() {
        *c = 0;
    }
    check_all(&g, &l, "after main's release");
    let stats = heap.stats(py);
    assert_eq!(
        stats.freed, stats.allocated,
        "every object freed exactly once"
    );
    let report = heap.leak_report(py).unwrap();
    assert!(report.is_clean(), "{report}");
}

fn item_strategy() -> impl Strategy<Value = Item> {
    prop_oneof![
        (0..4usize).prop_map(Item::Held),
        (0..SHAREABLE.len()).prop_map(Item::Shared),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..FIXED.len()).prop_map(Op::Load),
        2 => (any::<bool>(), item_strategy()).prop_map(|(inner, item)| Op::Append { inner, item }),
        2 => (0..SLOTS, item_strategy()).prop_map(|(slot, item)| Op::DictSet { slot, item }),
        1 => (0..4usize).prop_map(Op::Incref),
        2 => (0..4usize).prop_map(Op::Drop),
        2 => any::<bool>().prop_map(|string| Op::New { string }),
        3 => Just(Op::Poll),
    ]
}

fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    (vec(vec(op_strategy(), 1..=4), 2..=3), any::<u64>())
        .prop_map(|(threads, seed)| Scenario { threads, seed })
}

/// `default`, unless `PROPTEST_CASES` asks for another number (e.g. a longer run by hand).
fn cases(default: u32) -> u32 {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        Config::default().cases
    } else {
        default
    }
}

/// Failing cases are saved to `path` (under `proptest-regressions/` at the crate root, since
/// `tests/` has no `lib.rs` for proptest's default `SourceParallel` to find) and replayed first on
/// later runs; `PROPTEST_DISABLE_FAILURE_PERSISTENCE` turns this off.
fn regressions(path: &'static str) -> Option<Box<dyn FailurePersistence>> {
    Config::default()
        .failure_persistence
        .map(|_| Box::new(FileFailurePersistence::Direct(path)) as Box<dyn FailurePersistence>)
}

#[test]
fn proptest_heap_concurrent_shuttle() {
    let config = Config {
        cases: cases(CONCURRENT_CASES),
        source_file: Some(file!()),
        failure_persistence: regressions(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_heap_concurrent.txt"
        )),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&scenario_strategy(), |sc| {
        let (expected, seed) = (Arc::new(sc.final_counts()), sc.seed);
        let sc = Arc::new(sc);
        shuttle::check_random_with_seed(
            move || run_scenario(&sc, &expected),
            seed,
            SHUTTLE_ITERATIONS,
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n{runner}");
    }
    let switches = SWITCHES.load(Ordering::Relaxed);
    println!(
        "{} scenarios x {SHUTTLE_ITERATIONS} shuttle schedules: {switches} GIL \
         switches at polls, {} frees of thread-created objects mid-run",
        runner.config().cases,
        THREAD_FREES.load(Ordering::Relaxed)
    );
    assert!(switches > 0, "no schedule switched the GIL at a poll point");
}

// ---------------------------------------------------------------------------------------------
// Part (b): a sequential model of the whole heap.
// ---------------------------------------------------------------------------------------------

/// The model's view of one object.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// None, False, True, or a small int (RC-3).
    Immortal,
    Float(f64),
    Str(String),
    List(Vec<usize>),
    Dict(Vec<(usize, usize)>),
}

#[derive(Debug)]
struct MObj {
    handle: ObjRef,
    kind: Kind,
    count: isize,
    alive: bool,
}

/// A value a dict key compares by (Python `==` for the kinds used here: numbers by value, so
/// `True == 1 == 1.0`, strings by content). Unhashable objects have none.
#[derive(Debug, PartialEq)]
enum KeyVal {
    None,
    Num(f64),
    Str(String),
}

struct Model {
    objs: Vec<MObj>,
    /// The test's own references (model indices; immortals may appear too).
    held: Vec<usize>,
    /// Indices of the immortal objects, always usable.
    immortals: Vec<usize>,
    /// Immortal key values, by index.
    immortal_keys: HashMap<usize, KeyVal>,
    allocated: u64,
    freed: u64,
}

/// One step of the sequential test. Selectors are resolved modulo the candidates available.
#[derive(Clone, Debug)]
enum SOp {
    NewFloat(u8),
    NewStr(u8),
    NewList(Vec<usize>),
    NewDict,
    Incref(usize),
    Decref(usize),
    /// Decref an immortal several times (RC-3: no effect).
    DecrefImmortal(usize),
    Append(usize, usize),
    ListSet(usize, i64, usize),
    SeqGet(usize, i64),
    DictSet(usize, usize, usize),
    DictGet(usize, usize),
    DictDel(usize, usize),
    /// Misuse a freed handle (RC-5): incref, read and decref must all fail without effect.
    UseFreed(usize),
}

/// Number of proptest cases of the sequential model test, and the longest operation sequence.
const SEQUENTIAL_CASES: u32 = 512 * SCALE;
const SEQUENTIAL_MAX_OPS: usize = 80;

const FLOATS: [f64; 3] = [0.0, 1.0, 2.5];
const STRS: [&str; 3] = ["k0", "k1", "k2"];

impl Model {
    fn new(heap: &gilcheck::Heap<Std>, py: gilcheck::Token<'_>) -> Self {
        let mut m = Model {
            objs: Vec::new(),
            held: Vec::new(),
            immortals: Vec::new(),
            immortal_keys: HashMap::new(),
            allocated: 0,
            freed: 0,
        };
        let imm = [
            (ObjRef::NONE, KeyVal::None),
            (ObjRef::TRUE, KeyVal::Num(1.0)),
            (ObjRef::FALSE, KeyVal::Num(0.0)),
            (heap.new_int(py, -5), KeyVal::Num(-5.0)),
            (heap.new_int(py, 0), KeyVal::Num(0.0)),
            (heap.new_int(py, 1), KeyVal::Num(1.0)),
            (heap.new_int(py, 256), KeyVal::Num(256.0)),
        ];
        for (h, kv) in imm {
            assert!(h.is_immortal());
            m.immortal_keys.insert(m.objs.len(), kv);
            m.immortals.push(m.objs.len());
            m.objs.push(MObj {
                handle: h,
                kind: Kind::Immortal,
                count: 0,
                alive: true,
            });
        }
        m
    }

    fn add(&mut self, handle: ObjRef, kind: Kind) -> usize {
        self.allocated += 1;
        self.objs.push(MObj {
            handle,
            kind,
            count: 1,
            alive: true,
        });
        let i = self.objs.len() - 1;
        self.held.push(i);
        i
    }

    fn immortal(&self, i: usize) -> bool {
        self.objs[i].kind == Kind::Immortal
    }

    fn inc(&mut self, i: usize) {
        if !self.immortal(i) {
            assert!(self.objs[i].alive, "model: incref of a dead object");
            self.objs[i].count += 1;
        }
    }

    /// RC-4 in the model: iterative cascade.
    fn dec(&mut self, i: usize) {
        let mut stack = vec![i];
        while let Some(o) = stack.pop() {
            if self.immortal(o) {
                continue;
            }
            let obj = &mut self.objs[o];
            assert!(obj.alive && obj.count > 0, "model: bad decref of {o}");
            obj.count -= 1;
            if obj.count == 0 {
                obj.alive = false;
                match &mut obj.kind {
                    Kind::List(v) => stack.append(v),
                    Kind::Dict(d) => stack.extend(d.drain(..).flat_map(|(k, v)| [k, v])),
                    _ => {}
                }
                self.freed += 1;
            }
        }
    }

    /// Any usable object: one the test holds or an immortal.
    fn any(&self, sel: usize) -> usize {
        let n = self.held.len() + self.immortals.len();
        let s = sel % n;
        if s < self.held.len() {
            self.held[s]
        } else {
            self.immortals[s - self.held.len()]
        }
    }

    fn held_where(&self, sel: usize, pred: impl Fn(&Kind) -> bool) -> Option<usize> {
        let c: Vec<usize> = self
            .held
            .iter()
            .copied()
            .filter(|&i| pred(&self.objs[i].kind))
            .collect();
        (!c.is_empty()).then(|| c[sel % c.len()])
    }

    fn key_val(&self, i: usize) -> Option<KeyVal> {
        match &self.objs[i].kind {
            Kind::Immortal => Some(match &self.immortal_keys[&i] {
                KeyVal::None => KeyVal::None,
                KeyVal::Num(x) => KeyVal::Num(*x),
                KeyVal::Str(s) => KeyVal::Str(s.clone()),
            }),
            Kind::Float(x) => Some(KeyVal::Num(*x)),
            Kind::Str(s) => Some(KeyVal::Str(s.clone())),
            Kind::List(_) | Kind::Dict(_) => None,
        }
    }

    fn dict_find(&self, d: usize, key: usize) -> Option<usize> {
        let kv = self.key_val(key).expect("hashable");
        let Kind::Dict(entries) = &self.objs[d].kind else {
            unreachable!()
        };
        entries
            .iter()
            .position(|&(k, _)| k == key || self.key_val(k).as_ref() == Some(&kv))
    }

    fn list_items(&mut self, l: usize) -> &mut Vec<usize> {
        match &mut self.objs[l].kind {
            Kind::List(v) => v,
            _ => unreachable!(),
        }
    }

    fn dict_entries(&mut self, d: usize) -> &mut Vec<(usize, usize)> {
        match &mut self.objs[d].kind {
            Kind::Dict(e) => e,
            _ => unreachable!(),
        }
    }
}

fn py_index(len: usize, i: i64) -> Option<usize> {
    let j = if i < 0 { i + len as i64 } else { i };
    (0..len as i64).contains(&j).then_some(j as usize)
}

/// Applies one step to the heap and the model, checking the result of the operation itself.
fn apply(g: &Attached<'_, Std>, m: &mut Model, op: &SOp) {
    let (py, heap) = (g.token(), g.heap());
    let h = |m: &Model, i: usize| m.objs[i].handle;
    match op {
        SOp::NewFloat(v) => {
            let x = FLOATS[*v as usize % FLOATS.len()];
            m.add(heap.new_float(py, x), Kind::Float(x));
        }
        SOp::NewStr(v) => {
            let s = STRS[*v as usize % STRS.len()];
            m.add(heap.new_str(py, s), Kind::Str(s.into()));
        }
        SOp::NewList(sels) => {
            let items: Vec<usize> = sels.iter().map(|&s| m.any(s)).collect();
            let handles: Vec<ObjRef> = items.iter().map(|&i| h(m, i)).collect();
            let l = heap.new_list(py, &handles).unwrap();
            for &i in &items {
                m.inc(i);
            }
            m.add(l, Kind::List(items));
        }
        SOp::NewDict => {
            m.add(heap.new_dict(py), Kind::Dict(Vec::new()));
        }
        SOp::Incref(s) => {
            let i = m.any(*s);
            heap.incref(py, h(m, i)).unwrap();
            m.inc(i);
            m.held.push(i);
        }
        SOp::Decref(s) => {
            if m.held.is_empty() {
                return;
            }
            let i = m.held.remove(s % m.held.len());
            heap.decref(py, h(m, i)).unwrap();
            m.dec(i);
        }
        SOp::DecrefImmortal(s) => {
            let i = m.immortals[s % m.immortals.len()];
            for _ in 0..3 {
                heap.decref(py, h(m, i)).unwrap();
            }
            heap.incref(py, h(m, i)).unwrap();
        }
        SOp::Append(l, item) => {
            let Some(l) = m.held_where(*l, |k| matches!(k, Kind::List(_))) else {
                return;
            };
            let item = m.any(*item);
            heap.list_append(py, h(m, l), h(m, item)).unwrap();
            m.inc(item);
            m.list_items(l).push(item);
        }
        SOp::ListSet(l, idx, item) => {
            let Some(l) = m.held_where(*l, |k| matches!(k, Kind::List(_))) else {
                return;
            };
            let item = m.any(*item);
            let r = heap.list_set(py, h(m, l), *idx, h(m, item));
            match py_index(m.list_items(l).len(), *idx) {
                None => assert!(matches!(r, Err(RtError::IndexError(_))), "{r:?}"),
                Some(j) => {
                    r.unwrap();
                    m.inc(item);
                    let old = std::mem::replace(&mut m.list_items(l)[j], item);
                    m.dec(old); // RC-6: replacement drops the old item
                }
            }
        }
        SOp::SeqGet(l, idx) => {
            let Some(l) = m.held_where(*l, |k| matches!(k, Kind::List(_))) else {
                return;
            };
            let r = heap.seq_get(py, h(m, l), *idx);
            match py_index(m.list_items(l).len(), *idx) {
                None => assert!(matches!(r, Err(RtError::IndexError(_))), "{r:?}"),
                Some(j) => {
                    let item = m.list_items(l)[j];
                    assert_eq!(r.unwrap(), h(m, item));
                    m.inc(item); // RC-6: loading returns a new reference
                    m.held.push(item);
                }
            }
        }
        SOp::DictSet(d, key, value) => {
            let Some(d) = m.held_where(*d, |k| matches!(k, Kind::Dict(_))) else {
                return;
            };
            let (key, value) = (m.any(*key), m.any(*value));
            let r = heap.dict_set(py, h(m, d), h(m, key), h(m, value));
            if m.key_val(key).is_none() {
                assert!(matches!(r, Err(RtError::TypeError(_))), "{r:?}");
                return;
            }
            r.unwrap();
            match m.dict_find(d, key) {
                Some(e) => {
                    m.inc(value);
                    let old = std::mem::replace(&mut m.dict_entries(d)[e].1, value);
                    m.dec(old); // RC-6: the old value is dropped, the old key kept
                }
                None => {
                    m.inc(key);
                    m.inc(value);
                    m.dict_entries(d).push((key, value));
                }
            }
        }
        SOp::DictGet(d, key) => {
            let Some(d) = m.held_where(*d, |k| matches!(k, Kind::Dict(_))) else {
                return;
            };
            let key = m.any(*key);
            let r = heap.dict_get(py, h(m, d), h(m, key));
            if m.key_val(key).is_none() {
                assert!(matches!(r, Err(RtError::TypeError(_))), "{r:?}");
                return;
            }
            match m.dict_find(d, key) {
                None => assert!(matches!(r, Err(RtError::KeyError(_))), "{r:?}"),
                Some(e) => {
                    let v = m.dict_entries(d)[e].1;
                    assert_eq!(r.unwrap(), h(m, v));
                    m.inc(v);
                    m.held.push(v);
                }
            }
        }
        SOp::DictDel(d, key) => {
            let Some(d) = m.held_where(*d, |k| matches!(k, Kind::Dict(_))) else {
                return;
            };
            let key = m.any(*key);
            let r = heap.dict_del(py, h(m, d), h(m, key));
            if m.key_val(key).is_none() {
                assert!(matches!(r, Err(RtError::TypeError(_))), "{r:?}");
                return;
            }
            match m.dict_find(d, key) {
                None => assert!(matches!(r, Err(RtError::KeyError(_))), "{r:?}"),
                Some(e) => {
                    r.unwrap();
                    let (k, v) = m.dict_entries(d).remove(e);
                    m.dec(k);
                    m.dec(v);
                }
            }
        }
        SOp::UseFreed(s) => {
            let dead: Vec<usize> = (0..m.objs.len()).filter(|&i| !m.objs[i].alive).collect();
            if dead.is_empty() {
                return;
            }
            let x = h(m, dead[s % dead.len()]);
            assert_eq!(
                heap.incref(py, x),
                Err(RtError::UseAfterFree {
                    obj: x,
                    op: "incref"
                })
            );
            assert!(matches!(heap.get(py, x), Err(RtError::UseAfterFree { obj, .. }) if obj == x));
            assert_eq!(
                heap.decref(py, x),
                Err(RtError::NegativeRefcount { obj: x })
            );
        }
    }
}

/// RC-2, RC-3, RC-4, RC-6 after a step: every count, liveness and container content matches the
/// model, and the model's counts are exactly the references held by the test and by live
/// containers.
fn check_model(g: &Attached<'_, Std>, m: &Model, when: &str) {
    let (py, heap) = (g.token(), g.heap());
    // The model's own invariant (RC-6): count = held + occurrences in live containers.
    let mut owners = vec![0isize; m.objs.len()];
    for &i in &m.held {
        owners[i] += 1;
    }
    for o in m.objs.iter().filter(|o| o.alive) {
        match &o.kind {
            Kind::List(v) => v.iter().for_each(|&i| owners[i] += 1),
            Kind::Dict(d) => d.iter().for_each(|&(k, v)| {
                owners[k] += 1;
                owners[v] += 1;
            }),
            _ => {}
        }
    }
    let mut alive = 0;
    for (i, o) in m.objs.iter().enumerate() {
        let x = o.handle;
        if o.kind == Kind::Immortal {
            // RC-3
            assert!(heap.is_live(py, x), "{when}: immortal {x} freed");
            assert_eq!(
                heap.refcount(py, x).unwrap(),
                IMMORTAL_REFCNT,
                "{when}: {x}"
            );
            continue;
        }
        if !o.alive {
            // RC-4: freed, and (RC-5) detected as freed
            assert!(!heap.is_live(py, x), "{when}: {x} should be freed");
            continue;
        }
        alive += 1;
        assert_eq!(o.count, owners[i], "{when}: model invariant broken for {x}");
        assert!(
            heap.is_live(py, x),
            "{when}: {x} freed with count {}",
            o.count
        );
        // RC-2
        assert_eq!(
            heap.refcount(py, x).unwrap(),
            o.count,
            "{when}: refcount {x}"
        );
        // RC-6: the container holds exactly the model's items
        let handles = |v: &[usize]| v.iter().map(|&i| m.objs[i].handle).collect::<Vec<_>>();
        match (&o.kind, heap.get(py, x).unwrap()) {
            (Kind::Float(a), Object::Float(b)) => assert_eq!(*a, b, "{when}"),
            (Kind::Str(a), Object::Str(b)) => assert_eq!(a.as_str(), &*b, "{when}"),
            (Kind::List(a), Object::List(b)) => assert_eq!(handles(a), b, "{when}: {x}"),
            (Kind::Dict(a), Object::Dict(b)) => {
                let a: Vec<(ObjRef, ObjRef)> = a
                    .iter()
                    .map(|&(k, v)| (m.objs[k].handle, m.objs[v].handle))
                    .collect();
                assert_eq!(a, b.items, "{when}: {x}");
            }
            (k, other) => panic!("{when}: {x} is a {}, model says {k:?}", other.type_name()),
        }
    }
    assert_eq!(heap.live_count(py), alive, "{when}: live count");
    // RC-4: each object freed exactly once (the heap counts frees; the model counts deaths)
    let stats = heap.stats(py);
    assert_eq!(
        (stats.allocated, stats.freed),
        (m.allocated, m.freed),
        "{when}: allocations/frees"
    );
}

fn sop_strategy() -> impl Strategy<Value = SOp> {
    let sel = || 0..64usize;
    prop_oneof![
        2 => any::<u8>().prop_map(SOp::NewFloat),
        2 => any::<u8>().prop_map(SOp::NewStr),
        2 => vec(sel(), 0..3).prop_map(SOp::NewList),
        2 => Just(SOp::NewDict),
        2 => sel().prop_map(SOp::Incref),
        4 => sel().prop_map(SOp::Decref),
        1 => sel().prop_map(SOp::DecrefImmortal),
        3 => (sel(), sel()).prop_map(|(l, i)| SOp::Append(l, i)),
        2 => (sel(), -3..3i64, sel()).prop_map(|(l, j, i)| SOp::ListSet(l, j, i)),
        1 => (sel(), -3..3i64).prop_map(|(l, j)| SOp::SeqGet(l, j)),
        3 => (sel(), sel(), sel()).prop_map(|(d, k, v)| SOp::DictSet(d, k, v)),
        1 => (sel(), sel()).prop_map(|(d, k)| SOp::DictGet(d, k)),
        2 => (sel(), sel()).prop_map(|(d, k)| SOp::DictDel(d, k)),
        1 => sel().prop_map(SOp::UseFreed),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(SEQUENTIAL_CASES),
        failure_persistence: regressions(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/proptest-regressions/proptest_heap_sequential.txt"
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn proptest_heap_sequential_model(ops in vec(sop_strategy(), 1..SEQUENTIAL_MAX_OPS)) {
        let rt = Runtime::<Std>::new();
        let mut ts = rt.thread_state();
        let g = ts.attach();
        let (py, heap) = (g.token(), g.heap());
        let mut m = Model::new(heap, py);
        check_model(&g, &m, "start");
        for (i, op) in ops.iter().enumerate() {
            apply(&g, &mut m, op);
            check_model(&g, &m, &format!("step {i} {op:?}"));
        }
        // Release everything the test holds: what stays alive is exactly what the model keeps
        // alive (reference cycles), and the leak report marks all of it unreachable (RC-8).
        while let Some(i) = m.held.pop() {
            heap.decref(py, m.objs[i].handle).unwrap();
            m.dec(i);
        }
        check_model(&g, &m, "after releasing everything");
        let report = heap.leak_report(py).unwrap();
        let mut leaked: Vec<ObjRef> = report.leaks.iter().map(|l| l.obj).collect();
        let mut expected: Vec<ObjRef> = m
            .objs
            .iter()
            .filter(|o| o.alive && o.kind != Kind::Immortal)
            .map(|o| o.handle)
            .collect();
        leaked.sort();
        expected.sort();
        prop_assert_eq!(leaked, expected);
        prop_assert!(report.leaks.iter().all(|l| l.external == 0), "{}", report);
        prop_assert_eq!(report.unreachable().count(), report.leaks.len());
    }
}
