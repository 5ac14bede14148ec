//! The common built-in functions (`min`, `max`, `abs`, `int`, `float`, `str`, `bool`, `list`,
//! `tuple`, `dict`, `enumerate`, `zip`, `sorted`, `id`) and the common methods of `list`, `dict`
//! and `str` (rule VM-4). Each is C code in CPython (`Python/bltinmodule.c`,
//! `Objects/listobject.c`, `Objects/dictobject.c`, `Objects/unicodeobject.c`), so each runs as
//! one step here, with no poll inside; the call polls after it as any C call does (VM-7).
//!
//! Arguments are borrowed; the result is a new reference. What would need a Python function
//! called from C (`key=`, a generator consumed by anything but `sum` and `for`) is refused with
//! an error that says so.

use crate::RtError;
use crate::builtins::Builtin;
use crate::heap::{DictObj, Heap, IterObj, Missing, ObjRef, Object, View};
use crate::platform::Platform;
use crate::runtime::Token;
use crate::vm::code::{BinOp, CmpOp};
use crate::vm::interp::{get_iter, iter_next};
use crate::vm::ops;

type Kwargs<'a> = &'a [(String, ObjRef)];

/// Runs `b` if it is one of this module's; `None` otherwise.
pub fn call<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    b: Builtin,
    receiver: Option<ObjRef>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Option<Result<ObjRef, RtError>> {
    use Builtin::*;
    let r = match b {
        Min | Max => min_max(heap, py, b, args, kwargs),
        Abs => one(b, args, kwargs).and_then(|x| abs(heap, py, x)),
        IntClass => convert_int(heap, py, args, kwargs),
        FloatClass => convert_float(heap, py, args, kwargs),
        StrClass => at_most_one(b, args, kwargs).and_then(|x| match x {
            None => Ok(heap.new_str(py, "")),
            Some(x) => Ok(heap.new_str(py, &ops::to_str(heap, py, x)?)),
        }),
        BoolClass => at_most_one(b, args, kwargs).and_then(|x| match x {
            None => Ok(ObjRef::FALSE),
            Some(x) => Ok(ObjRef::from_bool(ops::truthy(heap, py, x)?)),
        }),
        ListClass | TupleClass => at_most_one(b, args, kwargs).and_then(|x| {
            let items = match x {
                None => Vec::new(),
                Some(x) => collect(heap, py, x)?,
            };
            owned(heap, py, items, b == TupleClass)
        }),
        DictClass => new_dict(heap, py, args, kwargs),
        Enumerate => enumerate(heap, py, args, kwargs),
        Zip => zip(heap, py, args, kwargs),
        Sorted => sorted(heap, py, args, kwargs),
        Id => one(b, args, kwargs).map(|x| heap.new_int(py, i64::from(x.index()))),
        DequeClass => new_deque(heap, py, args, kwargs),
        BytesClass => new_bytes(heap, py, args, kwargs),
        SetClass | FrozenSetClass => at_most_one(b, args, kwargs).and_then(|x| {
            let frozen = b == FrozenSetClass;
            let set = heap.new_set(py, &[], frozen)?;
            if let Some(x) = x
                && let Err(e) = set_update(heap, py, set, x)
            {
                heap.decref(py, set)?;
                return Err(e);
            }
            Ok(set)
        }),
        CounterClass => new_counter(heap, py, args, kwargs),
        Format => no_kwargs(b, kwargs, &[])
            .and_then(|()| arity(b, args, 1, 2))
            .and_then(|()| {
                use crate::vm::format::{apply, value_of_or_text};
                let spec = match args.get(1) {
                    Some(&s) => str_arg(heap, py, b, s)?,
                    None => String::new(),
                };
                let v = value_of_or_text(heap, py, args[0], &spec)?;
                Ok(heap.new_str(py, &apply(&v, &spec)?))
            }),
        DefaultDictClass => new_defaultdict(heap, py, args, kwargs),
        _ if b.methods_of().is_some() => {
            let Some(this) = receiver else {
                return Some(Err(RtError::TypeError(format!(
                    "{} needs an object to act on",
                    b.qualname()
                ))));
            };
            // A Counter and a defaultdict have dict's methods too; a frozenset, the set
            // methods that leave it as it is.
            let kind = match heap.with_object(py, this, |o| match o {
                Object::Dict(_) if b.methods_of() == Some("dict") => "dict",
                Object::Set { .. } if b.methods_of() == Some("set") => "set",
                o => o.type_name(),
            }) {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            if Some(kind) != b.methods_of() {
                return Some(Err(RtError::TypeError(format!(
                    "descriptor '{}' requires a '{}' object but received a '{kind}'",
                    b.name(),
                    b.methods_of().unwrap_or("?")
                ))));
            }
            method(heap, py, b, this, args, kwargs)
        }
        _ => return None,
    };
    Some(r)
}

fn arity(b: Builtin, args: &[ObjRef], min: usize, max: usize) -> Result<(), RtError> {
    if (min..=max).contains(&args.len()) {
        return Ok(());
    }
    let name = b.qualname();
    Err(RtError::TypeError(if min == max {
        format!(
            "{name}() takes exactly {min} argument{} ({} given)",
            if min == 1 { "" } else { "s" },
            args.len()
        )
    } else if args.len() < min {
        format!(
            "{name}() expected at least {min} argument(s), got {}",
            args.len()
        )
    } else {
        format!(
            "{name}() expected at most {max} argument(s), got {}",
            args.len()
        )
    }))
}

fn no_kwargs(b: Builtin, kwargs: Kwargs<'_>, allowed: &[&str]) -> Result<(), RtError> {
    match kwargs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) if k == "key" => Err(RtError::Unsupported(format!(
            "gilcheck cannot yet call a Python key function from {}()",
            b.qualname()
        ))),
        Some((k, _)) => Err(RtError::TypeError(format!(
            "{}() got an unexpected keyword argument '{k}'",
            b.qualname()
        ))),
        None => Ok(()),
    }
}

fn kwarg(kwargs: Kwargs<'_>, key: &str) -> Option<ObjRef> {
    kwargs.iter().find(|(k, _)| k == key).map(|&(_, v)| v)
}

fn one(b: Builtin, args: &[ObjRef], kwargs: Kwargs<'_>) -> Result<ObjRef, RtError> {
    no_kwargs(b, kwargs, &[])?;
    arity(b, args, 1, 1)?;
    Ok(args[0])
}

fn at_most_one(b: Builtin, args: &[ObjRef], kwargs: Kwargs<'_>) -> Result<Option<ObjRef>, RtError> {
    no_kwargs(b, kwargs, &[])?;
    arity(b, args, 0, 1)?;
    Ok(args.first().copied())
}

/// Every item of an iterable, as new references, drawn in one go (C code: no poll between).
pub fn collect<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    v: ObjRef,
) -> Result<Vec<ObjRef>, RtError> {
    let it = get_iter(heap, py, v)?;
    let mut out = Vec::new();
    loop {
        match iter_next(heap, py, it) {
            Ok(Some(x)) => out.push(x),
            Ok(None) => break,
            Err(e) => {
                for x in out {
                    heap.decref(py, x)?;
                }
                heap.decref(py, it)?;
                return Err(e);
            }
        }
    }
    heap.decref(py, it)?;
    Ok(out)
}

/// A new list (or tuple) of `items`, whose references it takes over.
fn owned<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    items: Vec<ObjRef>,
    tuple: bool,
) -> Result<ObjRef, RtError> {
    let r = if tuple {
        heap.new_tuple(py, &items)
    } else {
        heap.new_list(py, &items)
    };
    for x in items {
        heap.decref(py, x)?;
    }
    r
}

fn release<P: Platform>(heap: &Heap<P>, py: Token<'_>, items: Vec<ObjRef>) -> Result<(), RtError> {
    for x in items {
        heap.decref(py, x)?;
    }
    Ok(())
}

fn less<P: Platform>(heap: &Heap<P>, py: Token<'_>, a: ObjRef, b: ObjRef) -> Result<bool, RtError> {
    ops::compare(heap, py, CmpOp::Lt, a, b)
}

fn min_max<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    b: Builtin,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    no_kwargs(b, kwargs, &["default"])?;
    let items = match args {
        [] => {
            return Err(RtError::TypeError(format!(
                "{} expected at least 1 argument, got 0",
                b.name()
            )));
        }
        [one] => collect(heap, py, *one)?,
        many => {
            for &x in many {
                heap.incref(py, x)?;
            }
            many.to_vec()
        }
    };
    let mut best: Option<ObjRef> = None;
    for &x in &items {
        best = Some(match best {
            None => x,
            // The first of equal items wins, as in CPython.
            Some(cur) => {
                let better = match b {
                    Builtin::Min => less(heap, py, x, cur),
                    _ => less(heap, py, cur, x),
                };
                match better {
                    Ok(true) => x,
                    Ok(false) => cur,
                    Err(e) => {
                        release(heap, py, items)?;
                        return Err(e);
                    }
                }
            }
        });
    }
    let r = match best.or_else(|| kwarg(kwargs, "default")) {
        Some(r) => {
            heap.incref(py, r)?;
            Ok(r)
        }
        None => Err(RtError::ValueError(format!(
            "{}() iterable argument is empty",
            b.name()
        ))),
    };
    release(heap, py, items)?;
    r
}

fn abs<P: Platform>(heap: &Heap<P>, py: Token<'_>, x: ObjRef) -> Result<ObjRef, RtError> {
    match heap.get(py, x)? {
        Object::Int(i) => i
            .checked_abs()
            .map(|v| heap.new_int(py, v))
            .ok_or_else(|| RtError::OverflowError("integer overflow in abs()".into())),
        Object::Bool(v) => Ok(heap.new_int(py, i64::from(v))),
        Object::Float(f) => Ok(heap.new_float(py, f.abs())),
        _ => Err(RtError::TypeError(format!(
            "bad operand type for abs(): '{}'",
            heap.type_name_of(py, x)?
        ))),
    }
}

fn convert_int<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    no_kwargs(Builtin::IntClass, kwargs, &[])?;
    arity(Builtin::IntClass, args, 0, 1)?;
    let Some(&x) = args.first() else {
        return Ok(heap.new_int(py, 0));
    };
    let v = match heap.get(py, x)? {
        Object::Int(i) => i,
        Object::Bool(b) => i64::from(b),
        Object::Float(f) => {
            if !f.is_finite() {
                return Err(if f.is_nan() {
                    RtError::ValueError("cannot convert float NaN to integer".into())
                } else {
                    RtError::OverflowError("cannot convert float infinity to integer".into())
                });
            }
            let t = f.trunc();
            if t.abs() >= 9.2e18 {
                return Err(RtError::OverflowError(
                    "gilcheck's ints are 64-bit: this float is too large".into(),
                ));
            }
            t as i64
        }
        Object::Str(s) => {
            let text = s.trim().replace('_', "");
            text.parse::<i64>().map_err(|_| {
                RtError::ValueError(format!(
                    "invalid literal for int() with base 10: {}",
                    crate::heap::repr_str(&s)
                ))
            })?
        }
        _ => {
            return Err(RtError::TypeError(format!(
                "int() argument must be a string, a bytes-like object or a real number, not '{}'",
                heap.type_name_of(py, x)?
            )));
        }
    };
    Ok(heap.new_int(py, v))
}

fn convert_float<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    no_kwargs(Builtin::FloatClass, kwargs, &[])?;
    arity(Builtin::FloatClass, args, 0, 1)?;
    let Some(&x) = args.first() else {
        return Ok(heap.new_float(py, 0.0));
    };
    let v = match heap.get(py, x)? {
        Object::Int(i) => i as f64,
        Object::Bool(b) => f64::from(u8::from(b)),
        Object::Float(f) => f,
        Object::Str(s) => {
            let t = s.trim().to_ascii_lowercase();
            match t.as_str() {
                "inf" | "+inf" | "infinity" => f64::INFINITY,
                "-inf" | "-infinity" => f64::NEG_INFINITY,
                "nan" | "+nan" | "-nan" => f64::NAN,
                _ => t.replace('_', "").parse::<f64>().map_err(|_| {
                    RtError::ValueError(format!(
                        "could not convert string to float: {}",
                        crate::heap::repr_str(&s)
                    ))
                })?,
            }
        }
        _ => {
            return Err(RtError::TypeError(format!(
                "float() argument must be a string or a real number, not '{}'",
                heap.type_name_of(py, x)?
            )));
        }
    };
    Ok(heap.new_float(py, v))
}

fn new_dict<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    arity(Builtin::DictClass, args, 0, 1)?;
    let d = heap.new_dict(py);
    fill_dict(heap, py, d, args.first().copied(), kwargs)
}

/// `d` filled from a mapping or an iterable of pairs, then keyword items; released on error.
fn fill_dict<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    d: ObjRef,
    src: Option<ObjRef>,
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    let filled = (|| {
        if let Some(src) = src {
            update(heap, py, d, src)?;
        }
        for (k, v) in kwargs {
            heap.dict_set_str(py, d, k, *v)?;
        }
        Ok(())
    })();
    kept_or_released(heap, py, d, filled)
}

/// `obj` if filling it went well; otherwise it is released and the error returned.
fn kept_or_released<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    obj: ObjRef,
    filled: Result<(), RtError>,
) -> Result<ObjRef, RtError> {
    match filled {
        Ok(()) => Ok(obj),
        Err(e) => {
            heap.decref(py, obj)?;
            Err(e)
        }
    }
}

/// `d.update(src)`: a dict's entries, or an iterable of pairs.
fn update<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    d: ObjRef,
    src: ObjRef,
) -> Result<(), RtError> {
    if let Object::Dict(entries) = heap.get(py, src)? {
        for (k, v) in entries.items {
            heap.dict_set(py, d, k, v)?;
        }
        return Ok(());
    }
    let items = collect(heap, py, src)?;
    let mut result = Ok(());
    for (i, &pair) in items.iter().enumerate() {
        let kv = match heap.get(py, pair)? {
            Object::Tuple(v) | Object::List(v) if v.len() == 2 => Some((v[0], v[1])),
            _ => None,
        };
        match kv {
            Some((k, v)) => {
                if let Err(e) = heap.dict_set(py, d, k, v) {
                    result = Err(e);
                    break;
                }
            }
            None => {
                result = Err(RtError::ValueError(format!(
                    "dictionary update sequence element #{i} has the wrong length or type"
                )));
                break;
            }
        }
    }
    release(heap, py, items)?;
    result
}

fn enumerate<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    no_kwargs(Builtin::Enumerate, kwargs, &["start"])?;
    arity(Builtin::Enumerate, args, 1, 2)?;
    let start = match args.get(1).copied().or_else(|| kwarg(kwargs, "start")) {
        Some(s) => heap.int_value(py, s)?,
        None => 0,
    };
    let inner = get_iter(heap, py, args[0])?;
    Ok(heap.new_object(
        py,
        Object::Iter(IterObj::Enumerate {
            inner,
            count: start,
        }),
    ))
}

fn zip<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    no_kwargs(Builtin::Zip, kwargs, &[])?;
    let mut iters = Vec::new();
    for &a in args {
        match get_iter(heap, py, a) {
            Ok(i) => iters.push(i),
            Err(e) => {
                release(heap, py, iters)?;
                return Err(e);
            }
        }
    }
    Ok(heap.new_object(py, Object::Iter(IterObj::Zip { iters })))
}

/// A stable sort by `<` (insertion into place, so that equal items keep their order and a
/// failing comparison leaves nothing half-done).
fn sort_items<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    items: &mut Vec<ObjRef>,
    reverse: bool,
) -> Result<(), RtError> {
    let mut out: Vec<ObjRef> = Vec::with_capacity(items.len());
    for &x in items.iter() {
        let mut at = out.len();
        while at > 0 {
            let before = if reverse {
                less(heap, py, out[at - 1], x)?
            } else {
                less(heap, py, x, out[at - 1])?
            };
            if !before {
                break;
            }
            at -= 1;
        }
        out.insert(at, x);
    }
    *items = out;
    Ok(())
}

fn reverse_flag<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    kwargs: Kwargs<'_>,
) -> Result<bool, RtError> {
    match kwarg(kwargs, "reverse") {
        Some(r) => ops::truthy(heap, py, r),
        None => Ok(false),
    }
}

fn sorted<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    no_kwargs(Builtin::Sorted, kwargs, &["reverse"])?;
    arity(Builtin::Sorted, args, 1, 1)?;
    let reverse = reverse_flag(heap, py, kwargs)?;
    let mut items = collect(heap, py, args[0])?;
    if let Err(e) = sort_items(heap, py, &mut items, reverse) {
        release(heap, py, items)?;
        return Err(e);
    }
    owned(heap, py, items, false)
}

fn str_arg<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    b: Builtin,
    x: ObjRef,
) -> Result<String, RtError> {
    match heap.get(py, x)? {
        Object::Str(s) => Ok(s.to_string()),
        _ => Err(RtError::TypeError(format!(
            "{}() argument must be str, not {}",
            b.qualname(),
            heap.type_name_of(py, x)?
        ))),
    }
}

fn new_deque<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    no_kwargs(Builtin::DequeClass, kwargs, &["maxlen"])?;
    arity(Builtin::DequeClass, args, 0, 2)?;
    let maxlen = match args.get(1).copied().or_else(|| kwarg(kwargs, "maxlen")) {
        None => None,
        Some(m) if m == ObjRef::NONE => None,
        Some(m) => {
            let n = heap.int_value(py, m)?;
            if n < 0 {
                return Err(RtError::ValueError("maxlen must be non-negative".into()));
            }
            Some(n as usize)
        }
    };
    let mut items: std::collections::VecDeque<ObjRef> = match args.first() {
        Some(&x) => collect(heap, py, x)?.into(),
        None => Default::default(),
    };
    if let Some(m) = maxlen {
        while items.len() > m {
            let x = items.pop_front().expect("longer than maxlen");
            heap.decref(py, x)?;
        }
    }
    Ok(heap.new_object(
        py,
        Object::Deque {
            items,
            maxlen,
            state: 0,
        },
    ))
}

/// A deque method: one C call (`Modules/_collectionsmodule.c`), which bumps the deque's
/// mutation counter when it changes the deque.
fn deque_method<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    b: Builtin,
    this: ObjRef,
    args: &[ObjRef],
) -> Result<ObjRef, RtError> {
    use Builtin::*;
    let adds: Vec<ObjRef> = match b {
        DequeAppend | DequeAppendleft => {
            arity(b, args, 1, 1)?;
            heap.incref(py, args[0])?;
            vec![args[0]]
        }
        DequeExtend => {
            arity(b, args, 1, 1)?;
            collect(heap, py, args[0])?
        }
        _ => {
            arity(b, args, 0, 0)?;
            Vec::new()
        }
    };
    let (out, dropped) = heap.update(py, this, |o| {
        let Object::Deque {
            items,
            maxlen,
            state,
        } = o
        else {
            return Ok((Ok(ObjRef::NONE), Vec::new()));
        };
        let mut dropped = Vec::new();
        let out = match b {
            DequeAppend | DequeExtend | DequeAppendleft => {
                for x in adds {
                    if b == DequeAppendleft {
                        items.push_front(x);
                    } else {
                        items.push_back(x);
                    }
                    if let Some(m) = *maxlen
                        && items.len() > m
                    {
                        let gone = if b == DequeAppendleft {
                            items.pop_back()
                        } else {
                            items.pop_front()
                        };
                        dropped.extend(gone);
                    }
                }
                Ok(ObjRef::NONE)
            }
            DequePop | DequePopleft => {
                let x = if b == DequePop {
                    items.pop_back()
                } else {
                    items.pop_front()
                };
                // The deque's reference moves to the caller.
                x.ok_or_else(|| RtError::IndexError("pop from an empty deque".into()))
            }
            _ => {
                dropped.extend(items.drain(..));
                Ok(ObjRef::NONE)
            }
        };
        if out.is_ok() {
            *state += 1;
        }
        Ok((out, dropped))
    })?;
    release(heap, py, dropped)?;
    out
}

/// A method of list, dict or str on `this` (already checked to be of that type).
fn method<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    b: Builtin,
    this: ObjRef,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    use Builtin::*;
    if b == StrFormat {
        let Object::Str(template) = heap.get(py, this)? else {
            return Err(RtError::TypeError("str.format needs a str".into()));
        };
        let text = crate::vm::format::str_format(heap, py, &template, args, kwargs)?;
        return Ok(heap.new_str(py, &text));
    }
    no_kwargs(b, kwargs, if b == ListSort { &["reverse"] } else { &[] })?;
    if b.methods_of() == Some("collections.deque") {
        return deque_method(heap, py, b, this, args);
    }
    if b.methods_of() == Some("Counter") {
        return counter_method(heap, py, b, this, args);
    }
    if b.methods_of() == Some("set") {
        return set_method(heap, py, b, this, args);
    }
    let items = || -> Result<Vec<ObjRef>, RtError> {
        match heap.get(py, this)? {
            Object::List(v) => Ok(v),
            _ => Ok(Vec::new()),
        }
    };
    let set_items = |v: Vec<ObjRef>| {
        heap.update(py, this, |o| {
            if let Object::List(l) = o {
                *l = v;
            }
            Ok(())
        })
    };
    let text = || -> Result<String, RtError> {
        match heap.get(py, this)? {
            Object::Str(s) => Ok(s.to_string()),
            _ => Ok(String::new()),
        }
    };
    let find = |v: &[ObjRef], x: ObjRef| -> Result<Option<usize>, RtError> {
        for (i, &y) in v.iter().enumerate() {
            if heap.eq(py, y, x)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    };
    match b {
        ListPop => {
            arity(b, args, 0, 1)?;
            let mut v = items()?;
            if v.is_empty() {
                return Err(RtError::IndexError("pop from empty list".into()));
            }
            let n = v.len() as i64;
            let i = match args.first() {
                Some(&i) => heap.int_value(py, i)?,
                None => -1,
            };
            let at = if i < 0 { i + n } else { i };
            if !(0..n).contains(&at) {
                return Err(RtError::IndexError("pop index out of range".into()));
            }
            let x = v.remove(at as usize);
            set_items(v)?;
            Ok(x) // the list's reference moves to the caller
        }
        ListInsert => {
            arity(b, args, 2, 2)?;
            let mut v = items()?;
            let n = v.len() as i64;
            let i = heap.int_value(py, args[0])?;
            let at = if i < 0 { (i + n).max(0) } else { i.min(n) };
            heap.incref(py, args[1])?;
            v.insert(at as usize, args[1]);
            set_items(v)?;
            Ok(ObjRef::NONE)
        }
        ListExtend => {
            arity(b, args, 1, 1)?;
            let more = collect(heap, py, args[0])?;
            let mut v = items()?;
            v.extend(more); // the new references move into the list
            set_items(v)?;
            Ok(ObjRef::NONE)
        }
        ListIndex | ListCount | ListRemove => {
            arity(b, args, 1, 1)?;
            let mut v = items()?;
            match b {
                ListCount => {
                    let mut n = 0;
                    for &y in &v {
                        n += i64::from(heap.eq(py, y, args[0])?);
                    }
                    Ok(heap.new_int(py, n))
                }
                _ => {
                    let Some(i) = find(&v, args[0])? else {
                        return Err(RtError::ValueError(if b == ListIndex {
                            format!("{} is not in list", heap.repr(py, args[0])?)
                        } else {
                            "list.remove(x): x not in list".into()
                        }));
                    };
                    if b == ListIndex {
                        return Ok(heap.new_int(py, i as i64));
                    }
                    let x = v.remove(i);
                    set_items(v)?;
                    heap.decref(py, x)?;
                    Ok(ObjRef::NONE)
                }
            }
        }
        ListReverse => {
            arity(b, args, 0, 0)?;
            let mut v = items()?;
            v.reverse();
            set_items(v)?;
            Ok(ObjRef::NONE)
        }
        ListSort => {
            arity(b, args, 0, 0)?;
            let reverse = reverse_flag(heap, py, kwargs)?;
            let mut v = items()?;
            sort_items(heap, py, &mut v, reverse)?;
            set_items(v)?;
            Ok(ObjRef::NONE)
        }
        ListCopy => {
            arity(b, args, 0, 0)?;
            heap.new_list(py, &items()?)
        }
        ListClear => {
            arity(b, args, 0, 0)?;
            let old = items()?;
            set_items(Vec::new())?;
            release(heap, py, old)?;
            Ok(ObjRef::NONE)
        }
        DictGet => {
            arity(b, args, 1, 2)?;
            let default = args.get(1).copied().unwrap_or(ObjRef::NONE);
            match heap.dict_get(py, this, args[0]) {
                Ok(v) => Ok(v),
                Err(RtError::KeyError(_)) => {
                    heap.incref(py, default)?;
                    Ok(default)
                }
                Err(e) => Err(e),
            }
        }
        DictKeys | DictValues | DictItems => {
            arity(b, args, 0, 0)?;
            let kind = match b {
                DictKeys => View::Keys,
                DictValues => View::Values,
                _ => View::Items,
            };
            heap.incref(py, this)?;
            Ok(heap.new_object(py, Object::DictView { dict: this, kind }))
        }
        DictSetdefault => {
            arity(b, args, 1, 2)?;
            let default = args.get(1).copied().unwrap_or(ObjRef::NONE);
            match heap.dict_get(py, this, args[0]) {
                Ok(v) => Ok(v),
                Err(RtError::KeyError(_)) => {
                    heap.dict_set(py, this, args[0], default)?;
                    heap.incref(py, default)?;
                    Ok(default)
                }
                Err(e) => Err(e),
            }
        }
        DictUpdate => {
            arity(b, args, 0, 1)?;
            if let Some(&src) = args.first() {
                update(heap, py, this, src)?;
            }
            Ok(ObjRef::NONE)
        }
        DictCopy => {
            arity(b, args, 0, 0)?;
            let d = heap.new_dict(py);
            update(heap, py, d, this)?;
            Ok(d)
        }
        StrJoin => {
            arity(b, args, 1, 1)?;
            let sep = text()?;
            let parts = collect(heap, py, args[0])?;
            let mut out = Vec::new();
            for (i, &p) in parts.iter().enumerate() {
                match heap.get(py, p)? {
                    Object::Str(s) => out.push(s.to_string()),
                    _ => {
                        let t = heap.type_name_of(py, p)?;
                        release(heap, py, parts)?;
                        return Err(RtError::TypeError(format!(
                            "sequence item {i}: expected str instance, {t} found"
                        )));
                    }
                }
            }
            release(heap, py, parts)?;
            Ok(heap.new_str(py, &out.join(&sep)))
        }
        StrSplit => {
            arity(b, args, 0, 1)?;
            let s = text()?;
            let pieces: Vec<String> = match args.first() {
                Some(&sep) if sep != ObjRef::NONE => {
                    let sep = str_arg(heap, py, b, sep)?;
                    if sep.is_empty() {
                        return Err(RtError::ValueError("empty separator".into()));
                    }
                    s.split(sep.as_str()).map(str::to_string).collect()
                }
                _ => s.split_whitespace().map(str::to_string).collect(),
            };
            let refs: Vec<ObjRef> = pieces.iter().map(|p| heap.new_str(py, p)).collect();
            owned(heap, py, refs, false)
        }
        StrStrip | StrLower | StrUpper => {
            arity(b, args, 0, 0)?;
            let s = text()?;
            let r = match b {
                StrStrip => s.trim().to_string(),
                StrLower => s.to_lowercase(),
                _ => s.to_uppercase(),
            };
            Ok(heap.new_str(py, &r))
        }
        StrEncode | BytesDecode => {
            arity(b, args, 0, 1)?;
            if let Some(&enc) = args.first() {
                utf8_only(heap, py, b, enc)?;
            }
            match heap.get(py, this)? {
                Object::Str(s) => Ok(heap.new_bytes(py, s.as_bytes())),
                Object::Bytes(v) => match std::str::from_utf8(&v) {
                    Ok(s) => Ok(heap.new_str(py, s)),
                    Err(e) => Err(RtError::Raised {
                        class: Builtin::ValueErrorClass,
                        message: format!(
                            "'utf-8' codec can't decode byte 0x{:02x} in position {}: invalid start byte",
                            v[e.valid_up_to()],
                            e.valid_up_to()
                        ),
                    }),
                },
                _ => unreachable!("a str or bytes method"),
            }
        }
        StrStartswith | StrEndswith | StrCount | StrFind => {
            arity(b, args, 1, 1)?;
            let s = text()?;
            let x = str_arg(heap, py, b, args[0])?;
            Ok(match b {
                StrStartswith => ObjRef::from_bool(s.starts_with(x.as_str())),
                StrEndswith => ObjRef::from_bool(s.ends_with(x.as_str())),
                StrCount if x.is_empty() => heap.new_int(py, s.chars().count() as i64 + 1),
                StrCount => heap.new_int(py, s.matches(x.as_str()).count() as i64),
                _ => heap.new_int(
                    py,
                    s.find(x.as_str())
                        .map_or(-1, |i| s[..i].chars().count() as i64),
                ),
            })
        }
        StrReplace => {
            arity(b, args, 2, 2)?;
            let s = text()?;
            let (from, to) = (
                str_arg(heap, py, b, args[0])?,
                str_arg(heap, py, b, args[1])?,
            );
            Ok(heap.new_str(py, &s.replace(from.as_str(), &to)))
        }
        _ => Err(RtError::Unsupported(format!(
            "{} is not a method gilcheck models",
            b.qualname()
        ))),
    }
}

/// `Counter(iterable or mapping, **counts)`: one step (VM-14; CPython's `Counter.__init__` and
/// `update` are Python, but what they change is the new object, which no other thread sees).
fn new_counter<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    arity(Builtin::CounterClass, args, 0, 1)?;
    let c = heap.new_object(py, Object::Dict(DictObj::new(Missing::Counter)));
    let filled = (|| {
        if let Some(&src) = args.first() {
            count_into(heap, py, c, src, 1)?;
        }
        for (k, v) in kwargs {
            let key = heap.new_str(py, k);
            let r = add_count(heap, py, c, key, *v, 1);
            heap.decref(py, key)?;
            r?;
        }
        Ok(())
    })();
    kept_or_released(heap, py, c, filled)
}

/// `c[key] = c.get(key, 0) + sign * by`, as one step.
fn add_count<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    c: ObjRef,
    key: ObjRef,
    by: ObjRef,
    sign: i64,
) -> Result<(), RtError> {
    let old = match heap.dict_find_value(py, c, key)? {
        Some(v) => v,
        None => heap.new_int(py, 0),
    };
    let by = if sign < 0 {
        let zero = heap.new_int(py, 0);
        let r = ops::binary(heap, py, crate::vm::code::BinOp::Sub, zero, by);
        heap.decref(py, zero)?;
        r?
    } else {
        heap.incref(py, by)?;
        by
    };
    let new = ops::binary(heap, py, crate::vm::code::BinOp::Add, old, by);
    heap.decref(py, old)?;
    heap.decref(py, by)?;
    let new = new?;
    let r = heap.dict_set(py, c, key, new);
    heap.decref(py, new)?;
    r
}

/// Counts `src` into `c`: a mapping's counts, or one per element of an iterable.
fn count_into<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    c: ObjRef,
    src: ObjRef,
    sign: i64,
) -> Result<(), RtError> {
    if let Object::Dict(entries) = heap.get(py, src)? {
        for (k, v) in entries.items {
            add_count(heap, py, c, k, v, sign)?;
        }
        return Ok(());
    }
    let items = collect(heap, py, src)?;
    let one = heap.new_int(py, 1);
    let mut result = Ok(());
    for &x in &items {
        if result.is_ok() {
            result = add_count(heap, py, c, x, one, sign);
        }
        heap.decref(py, x)?;
    }
    heap.decref(py, one)?;
    result
}

fn counter_method<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    b: Builtin,
    this: ObjRef,
    args: &[ObjRef],
) -> Result<ObjRef, RtError> {
    use Builtin::*;
    match b {
        CounterUpdate | CounterSubtract => {
            arity(b, args, 0, 1)?;
            if let Some(&src) = args.first() {
                count_into(
                    heap,
                    py,
                    this,
                    src,
                    if b == CounterSubtract { -1 } else { 1 },
                )?;
            }
            Ok(ObjRef::NONE)
        }
        CounterMostCommon => {
            arity(b, args, 0, 1)?;
            let entries = heap.dict_entries(py, this)?;
            let mut counts = Vec::with_capacity(entries.len());
            for &(_, v) in &entries {
                counts.push(heap.float_value(py, v)?);
            }
            let mut order: Vec<usize> = (0..entries.len()).collect();
            order.sort_by(|&a, &b| {
                counts[b]
                    .partial_cmp(&counts[a])
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            if let Some(&n) = args.first()
                && n != ObjRef::NONE
            {
                order.truncate(heap.int_value(py, n)?.max(0) as usize);
            }
            let mut pairs = Vec::with_capacity(order.len());
            for i in order {
                pairs.push(heap.new_tuple(py, &[entries[i].0, entries[i].1])?);
            }
            owned(heap, py, pairs, false)
        }
        _ => unreachable!("not a Counter method: {b:?}"),
    }
}

/// `defaultdict(factory=None, mapping=(), **items)`.
fn new_defaultdict<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    arity(Builtin::DefaultDictClass, args, 0, 2)?;
    let factory = args.first().copied().unwrap_or(ObjRef::NONE);
    let callable = factory == ObjRef::NONE
        || heap.with_object(py, factory, |o| {
            matches!(
                o,
                Object::Builtin(_) | Object::Function { .. } | Object::Class { .. }
            )
        })?;
    if !callable {
        return Err(RtError::TypeError(
            "first argument must be callable or None".into(),
        ));
    }
    heap.incref(py, factory)?;
    let d = heap.new_object(py, Object::Dict(DictObj::new(Missing::Default(factory))));
    fill_dict(heap, py, d, args.get(1).copied(), kwargs)
}

/// What `defaultdict.__missing__` stores for a missing key: its factory called with no
/// arguments (a new reference). A built-in factory is C code, one step with the read, as in
/// CPython; a Python one would be a frame inside the read, which gilcheck does not run yet.
pub fn default_value<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    factory: ObjRef,
    key: ObjRef,
) -> Result<ObjRef, RtError> {
    use Builtin::*;
    if factory == ObjRef::NONE {
        return Err(RtError::KeyError(heap.repr(py, key)?));
    }
    match heap.get(py, factory)? {
        Object::Builtin(
            b @ (IntClass | FloatClass | StrClass | BoolClass | ListClass | TupleClass | DictClass
            | DequeClass | CounterClass),
        ) => call(heap, py, b, None, &[], &[]).expect("a library built-in"),
        _ => Err(RtError::Unsupported(
            "gilcheck runs a defaultdict's factory only when it is int, float, str, bool, list, tuple, dict, deque or Counter (a Python factory would be a frame inside the read)"
                .into(),
        )),
    }
}

/// `set |= x`, `s.update(x)`, `SET_UPDATE`: another set's keys in its table order (into an
/// empty set, its table as it is: CPython's `set_merge`), a dict's keys, or an iterable's items.
pub fn set_update<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    set: ObjRef,
    other: ObjRef,
) -> Result<(), RtError> {
    // A set or a dict: one resize first (`set_merge`, `set_update_internal`).
    let reserve = |n: usize| {
        heap.update(py, set, |o| {
            if let Object::Set { table, .. } = o {
                table.prepare_merge(n);
            }
            Ok(())
        })
    };
    if let Object::Set { table, .. } = heap.get(py, other)? {
        let empty = matches!(heap.get(py, set)?, Object::Set { table: t, .. } if t.fill == 0);
        if empty {
            let mut fresh = crate::setobj::SetTable::default();
            fresh.merge_into_empty(&table);
            for k in fresh.keys() {
                heap.incref(py, k)?;
            }
            return heap.update(py, set, |o| {
                if let Object::Set { table, .. } = o {
                    *table = fresh;
                }
                Ok(())
            });
        }
        if table.used == 0 {
            return Ok(());
        }
        reserve(table.used)?;
        for k in table.keys() {
            heap.set_add(py, set, k)?;
        }
        return Ok(());
    }
    if let Object::Dict(d) = heap.get(py, other)? {
        reserve(d.len())?;
    }
    let items = collect(heap, py, other)?;
    let mut result = Ok(());
    for &x in &items {
        if result.is_ok() {
            result = heap.set_add(py, set, x).map(|_| ());
        }
    }
    for x in items {
        heap.decref(py, x)?;
    }
    result
}

/// The keys of `x` as a set would see them (borrowed for a set, new references otherwise),
/// and whether they are owned.
fn set_operand<P: Platform>(heap: &Heap<P>, py: Token<'_>, x: ObjRef) -> Result<ObjRef, RtError> {
    match heap.get(py, x)? {
        Object::Set { .. } => {
            heap.incref(py, x)?;
            Ok(x)
        }
        _ => {
            let s = heap.new_set(py, &[], true)?;
            if let Err(e) = set_update(heap, py, s, x) {
                heap.decref(py, s)?;
                return Err(e);
            }
            Ok(s)
        }
    }
}

/// `a | b`, `a & b`, `a - b`, `a ^ b` of two sets, with the left operand's kind, in the order
/// CPython's `set_or`, `set_intersection`, `set_difference` and `set_symmetric_difference`
/// build them.
pub fn set_binary<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    op: BinOp,
    a: ObjRef,
    b: ObjRef,
) -> Result<ObjRef, RtError> {
    let frozen = matches!(heap.get(py, a)?, Object::Set { frozen: true, .. });
    match op {
        BinOp::Or => {
            let r = heap.copy_set(py, a, frozen)?;
            set_update(heap, py, r, b).map(|_| r)
        }
        BinOp::Sub => {
            let r = heap.new_set(py, &[], frozen)?;
            let mut out = Ok(r);
            for k in heap.set_keys(py, a)? {
                if heap.set_find(py, b, k)?.is_none()
                    && let Err(e) = heap.set_add(py, r, k)
                {
                    out = Err(e);
                    break;
                }
            }
            out
        }
        BinOp::And => {
            // CPython iterates the smaller set and keeps what the larger one has.
            let (small, large) = if heap.len(py, b)? > heap.len(py, a)? {
                (a, b)
            } else {
                (b, a)
            };
            let r = heap.new_set(py, &[], frozen)?;
            for k in heap.set_keys(py, small)? {
                if heap.set_find(py, large, k)?.is_some() {
                    heap.set_add(py, r, k)?;
                }
            }
            Ok(r)
        }
        BinOp::Xor => {
            let r = heap.copy_set(py, b, frozen)?;
            for k in heap.set_keys(py, a)? {
                if !heap.set_discard(py, r, k)? {
                    heap.set_add(py, r, k)?;
                }
            }
            Ok(r)
        }
        _ => unreachable!("the caller passes a set operator"),
    }
}

/// A method of set (or, for those that do not change it, of frozenset): one C call.
fn set_method<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    b: Builtin,
    this: ObjRef,
    args: &[ObjRef],
) -> Result<ObjRef, RtError> {
    use Builtin::*;
    let none = || Ok(ObjRef::NONE);
    match b {
        SetAddMethod => {
            arity(b, args, 1, 1)?;
            heap.set_add(py, this, args[0])?;
            none()
        }
        SetDiscard | SetRemove => {
            arity(b, args, 1, 1)?;
            if !heap.set_discard(py, this, args[0])? && b == SetRemove {
                return Err(RtError::KeyError(heap.repr(py, args[0])?));
            }
            none()
        }
        SetPop => {
            arity(b, args, 0, 0)?;
            let k = heap.update(py, this, |o| match o {
                Object::Set { table, .. } => Ok(table.pop()),
                _ => Ok(None),
            })?;
            k.ok_or_else(|| RtError::KeyError("'pop from an empty set'".into()))
        }
        SetClear => {
            arity(b, args, 0, 0)?;
            let keys = heap.update(py, this, |o| match o {
                Object::Set { table, .. } => Ok(table.clear()),
                _ => Ok(Vec::new()),
            })?;
            for k in keys {
                heap.decref(py, k)?;
            }
            none()
        }
        SetUpdateMethod => {
            for &x in args {
                set_update(heap, py, this, x)?;
            }
            none()
        }
        SetCopy => {
            arity(b, args, 0, 0)?;
            let frozen = matches!(heap.get(py, this)?, Object::Set { frozen: true, .. });
            heap.copy_set(py, this, frozen)
        }
        SetUnion => {
            let frozen = matches!(heap.get(py, this)?, Object::Set { frozen: true, .. });
            let r = heap.copy_set(py, this, frozen)?;
            for &x in args {
                if let Err(e) = set_update(heap, py, r, x) {
                    heap.decref(py, r)?;
                    return Err(e);
                }
            }
            Ok(r)
        }
        SetIntersection | SetDifference => {
            arity(b, args, 1, 1)?;
            let other = set_operand(heap, py, args[0])?;
            let op = if b == SetIntersection {
                BinOp::And
            } else {
                BinOp::Sub
            };
            let r = set_binary(heap, py, op, this, other);
            heap.decref(py, other)?;
            r
        }
        SetIssubset | SetIssuperset | SetIsdisjoint => {
            arity(b, args, 1, 1)?;
            let other = set_operand(heap, py, args[0])?;
            let (from, to) = if b == SetIssuperset {
                (other, this)
            } else {
                (this, other)
            };
            let mut answer = true;
            for k in heap.set_keys(py, from)? {
                let found = heap.set_find(py, to, k)?.is_some();
                if (b == SetIsdisjoint && found) || (b != SetIsdisjoint && !found) {
                    answer = false;
                    break;
                }
            }
            heap.decref(py, other)?;
            Ok(ObjRef::from_bool(answer))
        }
        _ => unreachable!("a set method"),
    }
}

/// The in-place forms that change their left operand (`list_inplace_concat`, `set_ior`,
/// `set_iand`, `set_isub`, `set_ixor`): the operand itself, changed, as a new reference; None
/// where `+=`, `|=`, … make a new object as the plain operator does.
pub fn inplace<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    op: BinOp,
    a: ObjRef,
    b: ObjRef,
) -> Result<Option<ObjRef>, RtError> {
    let (left, right) = (heap.get(py, a)?, heap.get(py, b)?);
    match (op, &left, &right) {
        (BinOp::Add, Object::List(_), _) => {
            let items = collect(heap, py, b)?;
            let mut r = Ok(());
            for &x in &items {
                if r.is_ok() {
                    r = heap.list_append(py, a, x);
                }
            }
            for x in items {
                heap.decref(py, x)?;
            }
            r?;
        }
        (
            BinOp::Or | BinOp::And | BinOp::Sub | BinOp::Xor,
            Object::Set { frozen: false, .. },
            Object::Set { .. },
        ) => match op {
            BinOp::Or => set_update(heap, py, a, b)?,
            BinOp::Sub => {
                for k in heap.set_keys(py, b)? {
                    heap.set_discard(py, a, k)?;
                }
            }
            BinOp::Xor => {
                for k in heap.set_keys(py, b)? {
                    if !heap.set_discard(py, a, k)? {
                        heap.set_add(py, a, k)?;
                    }
                }
            }
            _ => {
                // `set_intersection_update`: the intersection's table replaces the set's.
                let tmp = set_binary(heap, py, BinOp::And, a, b)?;
                let fresh = match heap.get(py, tmp)? {
                    Object::Set { table, .. } => table,
                    _ => unreachable!("a set"),
                };
                for k in fresh.keys() {
                    heap.incref(py, k)?;
                }
                let old = heap.update(py, a, |o| match o {
                    Object::Set { table, .. } => Ok(std::mem::replace(table, fresh)),
                    _ => unreachable!("a set"),
                })?;
                for k in old.keys() {
                    heap.decref(py, k)?;
                }
                heap.decref(py, tmp)?;
            }
        },
        _ => return Ok(None),
    }
    heap.incref(py, a)?;
    Ok(Some(a))
}

/// An encoding argument: UTF-8 under any of its names, else refused (the one codec modelled).
fn utf8_only<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    b: Builtin,
    enc: ObjRef,
) -> Result<(), RtError> {
    let enc = str_arg(heap, py, b, enc)?.to_lowercase().replace('_', "-");
    if enc == "utf-8" || enc == "utf8" {
        Ok(())
    } else {
        Err(RtError::Unsupported(format!(
            "the '{enc}' codec (gilcheck has UTF-8 only)"
        )))
    }
}

/// `bytes()`, `bytes(n)` (n zero bytes), `bytes(s, "utf-8")`, `bytes(iterable of ints)`.
fn new_bytes<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    args: &[ObjRef],
    kwargs: Kwargs<'_>,
) -> Result<ObjRef, RtError> {
    no_kwargs(Builtin::BytesClass, kwargs, &[])?;
    arity(Builtin::BytesClass, args, 0, 2)?;
    let Some(&x) = args.first() else {
        return Ok(heap.new_bytes(py, &[]));
    };
    match heap.get(py, x)? {
        Object::Str(s) => {
            if args.len() < 2 {
                return Err(RtError::TypeError(
                    "string argument without an encoding".into(),
                ));
            }
            utf8_only(heap, py, Builtin::BytesClass, args[1])?;
            Ok(heap.new_bytes(py, s.as_bytes()))
        }
        Object::Int(n) if n < 0 => Err(RtError::ValueError("negative count".into())),
        Object::Int(n) if n > 1 << 20 => Err(RtError::OverflowError(
            "bytes too large for gilcheck".into(),
        )),
        Object::Int(n) => Ok(heap.new_bytes(py, &vec![0; n as usize])),
        Object::Bytes(b) => Ok(heap.new_bytes(py, &b)),
        _ => {
            let items = collect(heap, py, x)?;
            let mut out = Vec::with_capacity(items.len());
            let mut bad = None;
            for &i in &items {
                match heap.get(py, i)? {
                    Object::Int(v) if (0..256).contains(&v) => out.push(v as u8),
                    Object::Int(_) => {
                        bad = Some(RtError::ValueError("bytes must be in range(0, 256)".into()));
                        break;
                    }
                    other => {
                        bad = Some(RtError::TypeError(format!(
                            "'{}' object cannot be interpreted as an integer",
                            other.type_name()
                        )));
                        break;
                    }
                }
            }
            release(heap, py, items)?;
            match bad {
                Some(e) => Err(e),
                None => Ok(heap.new_bytes(py, &out)),
            }
        }
    }
}
