//! `threading.RLock`, `Condition`, `Semaphore`, `BoundedSemaphore` and `Event` (LOCK-5 …
//! LOCK-7 of `spec/lock.md`).
//!
//! CPython writes the last four in Python (`Lib/threading.py`) over `_thread` locks: each keeps
//! its state under an internal lock, and a thread that has to wait allocates a Lock of its own
//! (its *waiter*), takes it, queues it, and blocks taking it a second time until another thread
//! releases it. gilcheck keeps that shape: the state lives in the heap object (`SyncObj`), each
//! method is one step (the internal lock is never observable, LOCK-7), and a wait blocks on a
//! real waiter Lock through the host, so the explorer and the real-thread driver need nothing
//! beyond what a Lock needs. A wait that has begun is [`SyncWait`] on the thread: the call runs
//! again after every wake-up until it completes.

use crate::RtError;
use crate::builtins::Builtin;
use crate::heap::{ObjRef, Object, SyncObj, WaitOn};
use crate::platform::Platform;
use crate::vm::interp::{Acquire, Cx, PyThread, SyncWait, note};
use crate::vm::native::{Outcome, kwarg};
use crate::vm::ops;

/// The argument at `pos` or under `key`, if given.
fn arg(args: &[ObjRef], kwargs: &[(String, ObjRef)], pos: usize, key: &str) -> Option<ObjRef> {
    args.get(pos).copied().or_else(|| kwarg(kwargs, key))
}

fn check_args(
    what: &str,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
    names: &[&str],
) -> Result<(), RtError> {
    if args.len() > names.len() {
        return Err(RtError::TypeError(format!(
            "{what}() takes at most {} arguments ({} given)",
            names.len(),
            args.len()
        )));
    }
    for (k, _) in kwargs {
        if !names.contains(&k.as_str()) {
            return Err(RtError::TypeError(format!(
                "{what}() got an unexpected keyword argument '{k}'"
            )));
        }
    }
    Ok(())
}

/// Timed waits are not modelled: time does not pass in the explorer (GIL-5).
fn no_timeout(
    what: &str,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
    pos: usize,
) -> Result<(), RtError> {
    match arg(args, kwargs, pos, "timeout") {
        None | Some(ObjRef::NONE) => Ok(()),
        Some(_) => Err(RtError::Unsupported(format!(
            "{what}(timeout=…) is not modelled: gilcheck has no clock (GIL-5); wait without a timeout"
        ))),
    }
}

fn sync_obj<P: Platform>(cx: &Cx<'_, '_, P>, o: ObjRef, what: &str) -> Result<SyncObj, RtError> {
    match cx.heap.get(cx.py, o)? {
        Object::Sync(s) => Ok(s),
        other => Err(RtError::TypeError(format!(
            "{what} needs its own object, not {}",
            other.type_name()
        ))),
    }
}

fn update<P: Platform, T>(
    cx: &Cx<'_, '_, P>,
    o: ObjRef,
    f: impl FnOnce(&mut SyncObj) -> T,
) -> Result<T, RtError> {
    let mut out = None;
    cx.heap.update(cx.py, o, |obj| {
        if let Object::Sync(s) = obj {
            out = Some(f(s));
        }
        Ok(())
    })?;
    out.ok_or_else(|| RtError::TypeError("expected a threading object".into()))
}

/// A fresh waiter: a Lock held by `me`, queued on `obj` (the queue's reference) and returned as
/// the thread's own reference.
fn enqueue_waiter<P: Platform>(
    cx: &Cx<'_, '_, P>,
    me: u32,
    obj: ObjRef,
) -> Result<ObjRef, RtError> {
    enqueue_on(cx, me, obj, WaitOn::Main)
}

/// As [`enqueue_waiter`], on the waiter queue `on`.
fn enqueue_on<P: Platform>(
    cx: &Cx<'_, '_, P>,
    me: u32,
    obj: ObjRef,
    on: WaitOn,
) -> Result<ObjRef, RtError> {
    let waiter = cx.heap.new_lock(cx.py);
    let took = cx.heap.lock_core(cx.py, waiter)?.try_acquire(me);
    debug_assert!(took, "a new lock is free");
    cx.heap.incref(cx.py, waiter)?;
    update(cx, obj, |s| s.waiters_mut(on).push_back(waiter))?;
    Ok(waiter)
}

/// Wakes up to `n` waiters of `obj`, first come first served: releases each one's Lock and drops
/// the queue's reference to it. Returns how many were woken.
fn wake<P: Platform>(cx: &mut Cx<'_, '_, P>, obj: ObjRef, n: usize) -> Result<usize, RtError> {
    wake_on(cx, obj, n, WaitOn::Main)
}

fn wake_on<P: Platform>(
    cx: &mut Cx<'_, '_, P>,
    obj: ObjRef,
    n: usize,
    on: WaitOn,
) -> Result<usize, RtError> {
    let woken: Vec<ObjRef> = update(cx, obj, |s| {
        let q = s.waiters_mut(on);
        let k = n.min(q.len());
        q.drain(..k).collect()
    })?;
    for &w in &woken {
        cx.host.release(cx.py, cx.heap, w)?;
        cx.heap.decref(cx.py, w)?;
    }
    Ok(woken.len())
}

/// Blocks on the waiter of `t`'s wait under way. `Ok(None)`: it has been released and taken.
fn block_on_waiter<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    w: SyncWait,
) -> Result<Option<Outcome>, RtError> {
    match cx.host.acquire(cx.py, cx.heap, w.waiter, true)? {
        Acquire::Acquired => {
            cx.heap.decref(cx.py, w.waiter)?;
            Ok(None)
        }
        Acquire::Block(wait) => {
            t.sync = Some(w);
            Ok(Some(Outcome::Block(wait)))
        }
        Acquire::Busy => unreachable!("a blocking acquire is never busy"),
    }
}

/// The lock a Condition is built on.
fn cond_lock<P: Platform>(cx: &Cx<'_, '_, P>, cond: ObjRef) -> Result<ObjRef, RtError> {
    match sync_obj(cx, cond, "Condition")? {
        SyncObj::Condition { lock, .. } => Ok(lock),
        _ => Err(RtError::TypeError("expected a Condition".into())),
    }
}

/// `Semaphore.acquire` without waiting: takes one unit if there is one.
fn sem_take<P: Platform>(cx: &Cx<'_, '_, P>, sem: ObjRef) -> Result<bool, RtError> {
    update(cx, sem, |s| match s {
        SyncObj::Semaphore { value, .. } if *value > 0 => {
            *value -= 1;
            true
        }
        _ => false,
    })
}

/// `Semaphore.acquire(blocking)`: LOCK-7. A waiter woken by a release tries again (another
/// thread may have taken the unit first, as in CPython's `while self._value == 0` loop).
fn sem_acquire<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    sem: ObjRef,
    blocking: bool,
) -> Result<Outcome, RtError> {
    let name = cx.name_of_lock(sem);
    if blocking {
        let has_unit = |cx: &Cx<'_, '_, P>| {
            Ok(matches!(
                sync_obj(cx, sem, "Semaphore")?,
                SyncObj::Semaphore { value, .. } if value > 0
            ))
        };
        if let Some(out) = wait_until(t, cx, sem, WaitOn::Main, has_unit)? {
            return Ok(out);
        }
    }
    if sem_take(cx, sem)? {
        note!(cx, format!("acquire {name}"));
        Ok(Outcome::Return(ObjRef::TRUE))
    } else {
        note!(cx, format!("acquire {name}: no units left"));
        Ok(Outcome::Return(ObjRef::FALSE))
    }
}

/// Waits (a waiter queued on `on`, the GIL released) until `ready`; a woken waiter checks
/// again, as CPython's `while` loops around each `Condition.wait` do (another thread may have
/// taken what the wake-up was for). `Ok(None)`: ready now, in this step.
fn wait_until<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    obj: ObjRef,
    on: WaitOn,
    ready: impl Fn(&Cx<'_, '_, P>) -> Result<bool, RtError>,
) -> Result<Option<Outcome>, RtError> {
    loop {
        if let Some(w) = t.sync.take()
            && let Some(out) = block_on_waiter(t, cx, w)?
        {
            return Ok(Some(out));
        }
        if ready(cx)? {
            return Ok(None);
        }
        let waiter = enqueue_on(cx, t.ident, obj, on)?;
        t.sync = Some(SyncWait {
            waiter,
            saved: 0,
            reacquiring: false,
        });
    }
}

fn sem_release<P: Platform>(
    cx: &mut Cx<'_, '_, P>,
    sem: ObjRef,
    n: i64,
) -> Result<Outcome, RtError> {
    if n < 1 {
        return Err(RtError::ValueError("n must be one or more".into()));
    }
    let n = n as u64;
    let ok = update(cx, sem, |s| match s {
        SyncObj::Semaphore { value, bound, .. } => {
            if bound.is_some_and(|b| *value + n > b) {
                false
            } else {
                *value += n;
                true
            }
        }
        _ => false,
    })?;
    if !ok {
        return Err(RtError::ValueError(
            "Semaphore released too many times".into(),
        ));
    }
    wake(cx, sem, n as usize)?;
    let name = cx.name_of_lock(sem);
    note!(cx, format!("release {name}"));
    Ok(Outcome::Return(ObjRef::NONE))
}

/// `Condition.wait()`: LOCK-6. Queues a waiter, lets go of the condition's lock entirely
/// (`_release_save`), blocks until notified, then takes the lock back as many times as it was
/// held (`_acquire_restore`).
fn cond_wait<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    cond: ObjRef,
) -> Result<Outcome, RtError> {
    let lock = cond_lock(cx, cond)?;
    let core = cx.heap.lock_core(cx.py, lock)?;
    let mut w = match t.sync.take() {
        Some(w) => w,
        None => {
            if !core.is_owned(t.ident) {
                return Err(RtError::RuntimeError(
                    "cannot wait on un-acquired lock".into(),
                ));
            }
            let waiter = enqueue_waiter(cx, t.ident, cond)?;
            let saved = core.release_all(t.ident)?;
            SyncWait {
                waiter,
                saved,
                reacquiring: false,
            }
        }
    };
    if !w.reacquiring {
        if let Some(out) = block_on_waiter(t, cx, w)? {
            return Ok(out);
        }
        w.reacquiring = true;
    }
    match cx.host.acquire(cx.py, cx.heap, lock, true)? {
        Acquire::Acquired => {
            core.restore(t.ident, w.saved);
            let name = cx.name_of_lock(cond);
            note!(cx, format!("{name}.wait: notified, lock taken back"));
            Ok(Outcome::Return(ObjRef::TRUE))
        }
        Acquire::Block(wait) => {
            t.sync = Some(w);
            Ok(Outcome::Block(wait))
        }
        Acquire::Busy => unreachable!("a blocking acquire is never busy"),
    }
}

fn cond_notify<P: Platform>(
    t: &PyThread,
    cx: &mut Cx<'_, '_, P>,
    cond: ObjRef,
    n: Option<usize>,
) -> Result<Outcome, RtError> {
    let lock = cond_lock(cx, cond)?;
    if !cx.heap.lock_core(cx.py, lock)?.is_owned(t.ident) {
        return Err(RtError::RuntimeError(
            "cannot notify on un-acquired lock".into(),
        ));
    }
    let woken = wake(cx, cond, n.unwrap_or(usize::MAX))?;
    let name = cx.name_of_lock(cond);
    note!(cx, format!("{name}.notify: {woken} woken"));
    Ok(Outcome::Return(ObjRef::NONE))
}

fn event_wait<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    ev: ObjRef,
) -> Result<Outcome, RtError> {
    if let Some(w) = t.sync.take() {
        if let Some(out) = block_on_waiter(t, cx, w)? {
            return Ok(out);
        }
        // Set since it began waiting, whatever the flag is now (CPython returns the result of
        // its `Condition.wait`, which is True).
        return Ok(Outcome::Return(ObjRef::TRUE));
    }
    if matches!(
        sync_obj(cx, ev, "Event")?,
        SyncObj::Event { flag: true, .. }
    ) {
        return Ok(Outcome::Return(ObjRef::TRUE));
    }
    let waiter = enqueue_waiter(cx, t.ident, ev)?;
    let w = SyncWait {
        waiter,
        saved: 0,
        reacquiring: false,
    };
    match block_on_waiter(t, cx, w)? {
        Some(out) => Ok(out),
        None => Ok(Outcome::Return(ObjRef::TRUE)),
    }
}

/// What a Queue operation needs before it can go on.
fn queue_ready<P: Platform>(cx: &Cx<'_, '_, P>, q: ObjRef, on: WaitOn) -> Result<bool, RtError> {
    Ok(match sync_obj(cx, q, "Queue")? {
        SyncObj::Queue {
            items,
            maxsize,
            unfinished,
            ..
        } => match on {
            WaitOn::Main => !items.is_empty(),
            WaitOn::NotFull => maxsize == 0 || items.len() < maxsize,
            WaitOn::AllDone => unfinished == 0,
        },
        _ => false,
    })
}

/// Waits until `queue_ready(q, on)` ([`wait_until`]).
fn queue_wait<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    q: ObjRef,
    on: WaitOn,
) -> Result<Option<Outcome>, RtError> {
    wait_until(t, cx, q, on, |cx| queue_ready(cx, q, on))
}

/// `Queue.put(item, block)` and `get(block)`, `task_done()`, `join()` (LOCK-7).
fn queue_call<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    b: Builtin,
    q: ObjRef,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
) -> Result<Outcome, RtError> {
    use Builtin::*;
    let (py, heap) = (cx.py, cx.heap);
    let name = cx.name_of_lock(q);
    match b {
        QueuePut | QueuePutNowait => {
            let block = if b == QueuePut {
                check_args("put", args, kwargs, &["item", "block", "timeout"])?;
                no_timeout("Queue.put", args, kwargs, 2)?;
                match arg(args, kwargs, 1, "block") {
                    Some(v) => ops::truthy(heap, py, v)?,
                    None => true,
                }
            } else {
                check_args("put_nowait", args, kwargs, &["item"])?;
                false
            };
            let item = arg(args, kwargs, 0, "item").ok_or_else(|| {
                RtError::TypeError("put() missing 1 required positional argument: 'item'".into())
            })?;
            if block {
                if let Some(out) = queue_wait(t, cx, q, WaitOn::NotFull)? {
                    return Ok(out);
                }
            } else if !queue_ready(cx, q, WaitOn::NotFull)? {
                return Err(RtError::QueueFull);
            }
            heap.incref(py, item)?;
            update(cx, q, |s| {
                if let SyncObj::Queue {
                    items, unfinished, ..
                } = s
                {
                    items.push_back(item);
                    *unfinished += 1;
                }
            })?;
            wake_on(cx, q, 1, WaitOn::Main)?;
            note!(cx, format!("{name}.put({})", heap.repr(py, item)?));
            Ok(Outcome::Return(ObjRef::NONE))
        }
        QueueGet | QueueGetNowait => {
            let block = if b == QueueGet {
                check_args("get", args, kwargs, &["block", "timeout"])?;
                no_timeout("Queue.get", args, kwargs, 1)?;
                match arg(args, kwargs, 0, "block") {
                    Some(v) => ops::truthy(heap, py, v)?,
                    None => true,
                }
            } else {
                check_args("get_nowait", args, kwargs, &[])?;
                false
            };
            if block {
                if let Some(out) = queue_wait(t, cx, q, WaitOn::Main)? {
                    return Ok(out);
                }
            } else if !queue_ready(cx, q, WaitOn::Main)? {
                return Err(RtError::QueueEmpty);
            }
            let item = update(cx, q, |s| match s {
                SyncObj::Queue { items, .. } => items.pop_front(),
                _ => None,
            })?
            .expect("a ready queue has an item");
            wake_on(cx, q, 1, WaitOn::NotFull)?;
            note!(cx, format!("{name}.get() → {}", heap.repr(py, item)?));
            Ok(Outcome::Return(item))
        }
        QueueTaskDone => {
            check_args("task_done", args, kwargs, &[])?;
            let left = update(cx, q, |s| match s {
                SyncObj::Queue { unfinished, .. } if *unfinished > 0 => {
                    *unfinished -= 1;
                    Some(*unfinished)
                }
                _ => None,
            })?;
            match left {
                None => Err(RtError::ValueError(
                    "task_done() called too many times".into(),
                )),
                Some(0) => {
                    wake_on(cx, q, usize::MAX, WaitOn::AllDone)?;
                    Ok(Outcome::Return(ObjRef::NONE))
                }
                Some(_) => Ok(Outcome::Return(ObjRef::NONE)),
            }
        }
        QueueJoin => {
            check_args("join", args, kwargs, &[])?;
            match queue_wait(t, cx, q, WaitOn::AllDone)? {
                Some(out) => Ok(out),
                None => Ok(Outcome::Return(ObjRef::NONE)),
            }
        }
        QueueQsize | QueueEmptyMethod | QueueFullMethod => {
            check_args(b.name(), args, kwargs, &[])?;
            let (len, max) = match sync_obj(cx, q, "Queue")? {
                SyncObj::Queue { items, maxsize, .. } => (items.len(), maxsize),
                _ => (0, 0),
            };
            Ok(Outcome::Return(match b {
                QueueQsize => heap.new_int(py, len as i64),
                QueueEmptyMethod => ObjRef::from_bool(len == 0),
                _ => ObjRef::from_bool(max > 0 && len >= max),
            }))
        }
        _ => unreachable!("not a Queue method: {b:?}"),
    }
}

/// The built-ins of this module; `None` for any other.
pub fn call<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    b: Builtin,
    receiver: Option<ObjRef>,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
) -> Option<Result<Outcome, RtError>> {
    use Builtin::*;
    if !matches!(
        b,
        RLockFactory
            | ConditionClass
            | SemaphoreClass
            | BoundedSemaphoreClass
            | EventClass
            | QueueClass
    ) && !b.sync_method()
    {
        return None;
    }
    Some(call_sync(t, cx, b, receiver, args, kwargs))
}

fn call_sync<P: Platform>(
    t: &mut PyThread,
    cx: &mut Cx<'_, '_, P>,
    b: Builtin,
    receiver: Option<ObjRef>,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
) -> Result<Outcome, RtError> {
    use Builtin::*;
    let (py, heap) = (cx.py, cx.heap);
    let this = || {
        receiver.ok_or_else(|| {
            RtError::TypeError(format!("{} needs an object to act on", b.qualname()))
        })
    };
    let expect = |o: ObjRef, kinds: &[&str]| -> Result<ObjRef, RtError> {
        let k = heap.with_object(py, o, |o| o.type_name())?;
        if kinds.contains(&k) {
            Ok(o)
        } else {
            Err(RtError::TypeError(format!(
                "{} needs a {}, not {k}",
                b.qualname(),
                kinds[0]
            )))
        }
    };
    let blocking = |pos: usize| -> Result<bool, RtError> {
        match arg(args, kwargs, pos, "blocking") {
            Some(v) => ops::truthy(heap, py, v),
            None => Ok(true),
        }
    };
    match b {
        RLockFactory => {
            check_args("RLock", args, kwargs, &[])?;
            Ok(Outcome::Return(heap.new_rlock(py)))
        }
        ConditionClass => {
            check_args("Condition", args, kwargs, &["lock"])?;
            let lock = match arg(args, kwargs, 0, "lock") {
                None | Some(ObjRef::NONE) => heap.new_rlock(py),
                Some(l) => {
                    expect(l, &["lock", "RLock"]).map_err(|_| {
                        RtError::Unsupported(
                            "Condition(lock) takes a threading.Lock or RLock (gilcheck models no other)"
                                .into(),
                        )
                    })?;
                    heap.incref(py, l)?;
                    l
                }
            };
            Ok(Outcome::Return(heap.new_object(
                py,
                Object::Sync(SyncObj::Condition {
                    lock,
                    waiters: Default::default(),
                }),
            )))
        }
        SemaphoreClass | BoundedSemaphoreClass => {
            let what = b.name();
            check_args(what, args, kwargs, &["value"])?;
            let value = match arg(args, kwargs, 0, "value") {
                Some(v) => heap.int_value(py, v)?,
                None => 1,
            };
            if value < 0 {
                return Err(RtError::ValueError(
                    "semaphore initial value must be >= 0".into(),
                ));
            }
            let value = value as u64;
            Ok(Outcome::Return(heap.new_object(
                py,
                Object::Sync(SyncObj::Semaphore {
                    value,
                    bound: (b == BoundedSemaphoreClass).then_some(value),
                    waiters: Default::default(),
                }),
            )))
        }
        EventClass => {
            check_args("Event", args, kwargs, &[])?;
            Ok(Outcome::Return(heap.new_object(
                py,
                Object::Sync(SyncObj::Event {
                    flag: false,
                    waiters: Default::default(),
                }),
            )))
        }
        CondAcquire | CondEnter | CondRelease | CondExit => {
            let cond = expect(this()?, &["Condition"])?;
            let lock = cond_lock(cx, cond)?;
            // The condition's own methods are its lock's (`self.acquire = lock.acquire`).
            let as_lock = match b {
                CondAcquire => LockAcquire,
                CondEnter => LockEnter,
                CondRelease => LockRelease,
                _ => LockExit,
            };
            crate::vm::native::call(t, cx, as_lock, Some(lock), args, kwargs)
        }
        CondWait => {
            check_args("wait", args, kwargs, &["timeout"])?;
            no_timeout("Condition.wait", args, kwargs, 0)?;
            let cond = expect(this()?, &["Condition"])?;
            cond_wait(t, cx, cond)
        }
        CondNotify | CondNotifyAll => {
            let cond = expect(this()?, &["Condition"])?;
            let n = if b == CondNotify {
                check_args("notify", args, kwargs, &["n"])?;
                Some(match arg(args, kwargs, 0, "n") {
                    Some(v) => heap.int_value(py, v)?.max(0) as usize,
                    None => 1,
                })
            } else {
                check_args("notify_all", args, kwargs, &[])?;
                None
            };
            cond_notify(t, cx, cond, n)
        }
        SemAcquire | SemEnter => {
            let sem = expect(this()?, &["Semaphore", "BoundedSemaphore"])?;
            let blocking = if b == SemAcquire {
                check_args("acquire", args, kwargs, &["blocking", "timeout"])?;
                no_timeout("Semaphore.acquire", args, kwargs, 1)?;
                blocking(0)?
            } else {
                true
            };
            sem_acquire(t, cx, sem, blocking)
        }
        SemRelease | SemExit => {
            let sem = expect(this()?, &["Semaphore", "BoundedSemaphore"])?;
            let n = if b == SemRelease {
                check_args("release", args, kwargs, &["n"])?;
                match arg(args, kwargs, 0, "n") {
                    Some(v) => heap.int_value(py, v)?,
                    None => 1,
                }
            } else {
                1
            };
            sem_release(cx, sem, n)
        }
        EventSet => {
            check_args("set", args, kwargs, &[])?;
            let ev = expect(this()?, &["Event"])?;
            update(cx, ev, |s| {
                if let SyncObj::Event { flag, .. } = s {
                    *flag = true;
                }
            })?;
            let woken = wake(cx, ev, usize::MAX)?;
            let name = cx.name_of_lock(ev);
            note!(cx, format!("{name}.set: {woken} woken"));
            Ok(Outcome::Return(ObjRef::NONE))
        }
        EventClear => {
            check_args("clear", args, kwargs, &[])?;
            let ev = expect(this()?, &["Event"])?;
            update(cx, ev, |s| {
                if let SyncObj::Event { flag, .. } = s {
                    *flag = false;
                }
            })?;
            Ok(Outcome::Return(ObjRef::NONE))
        }
        EventIsSet => {
            check_args("is_set", args, kwargs, &[])?;
            let ev = expect(this()?, &["Event"])?;
            let set = matches!(
                sync_obj(cx, ev, "Event")?,
                SyncObj::Event { flag: true, .. }
            );
            Ok(Outcome::Return(if set {
                ObjRef::TRUE
            } else {
                ObjRef::FALSE
            }))
        }
        EventWait => {
            check_args("wait", args, kwargs, &["timeout"])?;
            no_timeout("Event.wait", args, kwargs, 0)?;
            let ev = expect(this()?, &["Event"])?;
            event_wait(t, cx, ev)
        }
        QueueClass => {
            check_args("Queue", args, kwargs, &["maxsize"])?;
            let maxsize = match arg(args, kwargs, 0, "maxsize") {
                Some(v) => heap.int_value(py, v)?.max(0) as usize,
                None => 0,
            };
            Ok(Outcome::Return(heap.new_object(
                py,
                Object::Sync(SyncObj::Queue {
                    items: Default::default(),
                    maxsize,
                    unfinished: 0,
                    not_empty: Default::default(),
                    not_full: Default::default(),
                    all_done: Default::default(),
                }),
            )))
        }
        QueuePut | QueuePutNowait | QueueGet | QueueGetNowait | QueueTaskDone | QueueJoin
        | QueueQsize | QueueEmptyMethod | QueueFullMethod => {
            let q = expect(this()?, &["Queue"])?;
            queue_call(t, cx, b, q, args, kwargs)
        }
        _ => unreachable!("not a threading primitive: {b:?}"),
    }
}

/// The `__exit__` that `with obj:` calls for a lock or threading object, if it is one.
pub fn exit_method(type_name: &str) -> Option<Builtin> {
    Some(match type_name {
        "lock" | "RLock" => Builtin::LockExit,
        "Condition" => Builtin::CondExit,
        "Semaphore" | "BoundedSemaphore" => Builtin::SemExit,
        _ => return None,
    })
}
