//! A runtime (one interpreter: one GIL, one heap), its threads, and the GIL token.

use crate::gil::{Faults, Gil, Poll, ThreadId};
use crate::heap::Heap;
use crate::platform::Platform;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Proof that the current thread holds the GIL (GIL-9), like PyO3's `Python<'py>`.
///
/// Zero-sized, `Copy`, neither `Send` nor `Sync`: it cannot leave the thread that holds the GIL, nor
/// be captured by the closure given to [`Attached::allow_threads`] (which must be `Send`). Every
/// refcount operation and object access on a [`Heap`] takes one.
///
/// A token cannot be sent to another thread:
///
/// ```compile_fail,E0277
/// fn needs_send<T: Send>(_: T) {}
/// fn try_send(py: gilcheck::Token<'_>) { needs_send(py) }
/// ```
///
/// nor shared with one:
///
/// ```compile_fail,E0277
/// fn needs_sync<T: Sync>(_: T) {}
/// fn try_share(py: gilcheck::Token<'_>) { needs_sync(py) }
/// ```
///
/// while a value that is `Send` passes the same functions (the twin of the two tests above):
///
/// ```
/// fn needs_send<T: Send>(_: T) {}
/// fn needs_sync<T: Sync>(_: T) {}
/// needs_send(gilcheck::ObjRef::NONE);
/// needs_sync(gilcheck::ObjRef::NONE);
/// ```
///
/// An object cannot be touched without one, and a token does not outlive the GIL it proves:
///
/// ```compile_fail,E0597
/// # use gilcheck::{Runtime, platform::Std};
/// let rt = Runtime::<Std>::new();
/// let mut ts = rt.thread_state();
/// let py = { let g = ts.attach(); g.token() }; // the GIL is released here
/// rt.heap().new_float(py, 1.5);
/// ```
///
/// The twin keeps the guard alive and compiles:
///
/// ```
/// # use gilcheck::{Runtime, platform::Std};
/// let rt = Runtime::<Std>::new();
/// let mut ts = rt.thread_state();
/// let g = ts.attach();
/// let x = rt.heap().new_float(g.token(), 1.5);
/// rt.heap().decref(g.token(), x).unwrap();
/// ```
///
/// A thread cannot attach twice (the GIL is not re-entrant; this would deadlock):
///
/// ```compile_fail,E0499
/// # use gilcheck::{Runtime, platform::Std};
/// let rt = Runtime::<Std>::new();
/// let mut ts = rt.thread_state();
/// let a = ts.attach();
/// let b = ts.attach();
/// drop((a, b));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Token<'py> {
    _not_send: PhantomData<(&'py (), *mut ())>,
}

impl Token<'_> {
    /// Makes a token without taking the GIL.
    ///
    /// # Safety
    /// The caller must hold the GIL of the runtime whose heap the token is used with, for as long
    /// as the token is used. Breaking this is a data race on reference counts; the broken twins of
    /// the model checks do exactly that, under loom, to show the race is caught.
    pub unsafe fn assume() -> Token<'static> {
        Token {
            _not_send: PhantomData,
        }
    }
}

/// One interpreter: a GIL and the heap it protects.
pub struct Runtime<P: Platform> {
    gil: Gil<P>,
    heap: Heap<P>,
    next_thread: AtomicU64,
}

impl<P: Platform> Runtime<P> {
    /// A runtime with a correct GIL and an empty heap (only the immortal objects).
    pub fn new() -> Arc<Self> {
        Self::with_faults(Faults::default())
    }

    #[doc(hidden)]
    pub fn with_faults(faults: Faults) -> Arc<Self> {
        Arc::new(Runtime {
            gil: Gil::with_faults(faults),
            heap: Heap::new(),
            next_thread: AtomicU64::new(1),
        })
    }

    pub fn gil(&self) -> &Gil<P> {
        &self.gil
    }

    pub fn heap(&self) -> &Heap<P> {
        &self.heap
    }

    /// A new thread state (CPython: `PyThreadState_New`). Create one per thread that will run
    /// Python code; it may be made on one thread and moved to another before it is attached.
    pub fn thread_state(self: &Arc<Self>) -> ThreadState<P> {
        let id = self.next_thread.fetch_add(1, Ordering::Relaxed);
        ThreadState {
            rt: Arc::clone(self),
            id,
        }
    }
}

/// A thread of a runtime, detached until [`ThreadState::attach`] takes the GIL.
pub struct ThreadState<P: Platform> {
    rt: Arc<Runtime<P>>,
    id: ThreadId,
}

impl<P: Platform> ThreadState<P> {
    pub fn id(&self) -> ThreadId {
        self.id
    }

    pub fn runtime(&self) -> &Arc<Runtime<P>> {
        &self.rt
    }

    /// Takes the GIL (GIL-2) and returns the guard that holds it; dropping the guard releases it
    /// voluntarily (GIL-3). `&mut self` makes a second attach of the same thread a compile error
    /// instead of a self-deadlock.
    pub fn attach(&mut self) -> Attached<'_, P> {
        self.rt.gil.take(self.id);
        Attached {
            ts: self,
            _not_send: PhantomData,
        }
    }
}

/// The GIL, held by one thread of a runtime. Not `Send`.
pub struct Attached<'ts, P: Platform> {
    ts: &'ts ThreadState<P>,
    _not_send: PhantomData<*mut ()>,
}

impl<P: Platform> Attached<'_, P> {
    /// The token that proves the GIL is held, valid while this guard is borrowed.
    pub fn token(&self) -> Token<'_> {
        Token {
            _not_send: PhantomData,
        }
    }

    pub fn heap(&self) -> &Heap<P> {
        &self.ts.rt.heap
    }

    pub fn runtime(&self) -> &Arc<Runtime<P>> {
        &self.ts.rt
    }

    pub fn thread_id(&self) -> ThreadId {
        self.ts.id
    }

    /// GIL-7: a poll point. Honours a pending drop request.
    pub fn poll(&self) -> Poll {
        self.ts.rt.gil.poll(self.ts.id)
    }

    /// GIL-3: releases the GIL around blocking work `f` and takes it back afterwards, even if `f`
    /// panics (CPython: `Py_BEGIN_ALLOW_THREADS`; PyO3: `detach`). `f` must be `Send`, so it
    /// cannot capture a [`Token`].
    ///
    /// ```compile_fail,E0277
    /// # use gilcheck::{Runtime, platform::Std};
    /// let rt = Runtime::<Std>::new();
    /// let mut ts = rt.thread_state();
    /// let g = ts.attach();
    /// let (py, heap) = (g.token(), g.heap());
    /// let x = heap.new_float(py, 1.5);
    /// g.allow_threads(|| heap.incref(py, x).unwrap()); // touches x with the GIL released
    /// ```
    ///
    /// The twin, which compiles, captures nothing of the GIL:
    ///
    /// ```
    /// # use gilcheck::{Runtime, platform::Std};
    /// let rt = Runtime::<Std>::new();
    /// let mut ts = rt.thread_state();
    /// let g = ts.attach();
    /// let n = g.allow_threads(|| 40 + 2);
    /// assert_eq!(n, 42);
    /// ```
    pub fn allow_threads<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        struct Retake<'a, P: Platform>(&'a Gil<P>, ThreadId);
        impl<P: Platform> Drop for Retake<'_, P> {
            fn drop(&mut self) {
                self.0.take(self.1);
            }
        }
        let gil = &self.ts.rt.gil;
        gil.drop_gil(self.ts.id, false);
        let _retake = Retake(gil, self.ts.id);
        f()
    }
}

impl<P: Platform> Drop for Attached<'_, P> {
    fn drop(&mut self) {
        self.ts.rt.gil.drop_gil(self.ts.id, false);
    }
}
