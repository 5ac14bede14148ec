//! Value semantics of the operators: arithmetic, comparison, truth, `str()` and formatting
//! (rule VM-3 of `spec/bytecode.md`). Every function returns a *new* reference, or an immortal
//! object, and leaves its operands' counts alone.

use crate::RtError;
use crate::heap::{Heap, ObjRef, Object};
use crate::platform::Platform;
use crate::runtime::Token;
use crate::vm::code::{BinOp, CmpOp, Conversion};

/// A number as the operators see it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i64),
    Float(f64),
}

fn number<P: Platform>(heap: &Heap<P>, py: Token<'_>, o: ObjRef) -> Result<Option<Num>, RtError> {
    heap.with_object(py, o, |o| match *o {
        Object::Bool(b) => Some(Num::Int(i64::from(b))),
        Object::Int(i) => Some(Num::Int(i)),
        Object::Float(x) => Some(Num::Float(x)),
        _ => None,
    })
}

fn overflow() -> RtError {
    RtError::OverflowError(
        "integer result does not fit in 64 bits (gilcheck's ints are 64-bit)".into(),
    )
}

fn new_num<P: Platform>(heap: &Heap<P>, py: Token<'_>, n: Num) -> ObjRef {
    match n {
        Num::Int(i) => heap.new_int(py, i),
        Num::Float(x) => heap.new_float(py, x),
    }
}

/// `lhs op rhs` (`BINARY_OP`); the in-place forms behave the same on the immutable kinds.
pub fn binary<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    op: BinOp,
    lhs: ObjRef,
    rhs: ObjRef,
) -> Result<ObjRef, RtError> {
    let bitwise = matches!(op, BinOp::And | BinOp::Or | BinOp::Xor);
    if bitwise && let (Object::Bool(x), Object::Bool(y)) = (heap.get(py, lhs)?, heap.get(py, rhs)?)
    {
        return Ok(ObjRef::from_bool(match op {
            BinOp::And => x & y,
            BinOp::Or => x | y,
            _ => x ^ y,
        }));
    }
    if let (Some(a), Some(b)) = (number(heap, py, lhs)?, number(heap, py, rhs)?) {
        if let (true, Num::Int(x), Num::Int(y)) = (bitwise, a, b) {
            return Ok(heap.new_int(
                py,
                match op {
                    BinOp::And => x & y,
                    BinOp::Or => x | y,
                    _ => x ^ y,
                },
            ));
        }
        if !bitwise {
            return Ok(new_num(heap, py, arith(op, a, b)?));
        }
    }
    let (a, b) = (heap.get(py, lhs)?, heap.get(py, rhs)?);
    match (op, &a, &b) {
        (
            BinOp::Sub | BinOp::And | BinOp::Or | BinOp::Xor,
            Object::Set { .. },
            Object::Set { .. },
        ) => crate::vm::library::set_binary(heap, py, op, lhs, rhs),
        (BinOp::Add, Object::Str(x), Object::Str(y)) => Ok(heap.new_str(py, &format!("{x}{y}"))),
        (BinOp::Mod, Object::Str(x), _) => {
            Ok(heap.new_str(py, &crate::vm::format::percent(heap, py, x, rhs)?))
        }
        (BinOp::Mod, Object::Bytes(_), _) => Err(RtError::Unsupported(
            "printf-style formatting of bytes".into(),
        )),
        (BinOp::Add, Object::Bytes(x), Object::Bytes(y)) => {
            Ok(heap.new_bytes(py, &[&x[..], &y[..]].concat()))
        }
        (BinOp::Add, Object::List(x), Object::List(y)) => {
            heap.new_list(py, &[x.as_slice(), y.as_slice()].concat())
        }
        (BinOp::Add, Object::Tuple(x), Object::Tuple(y)) => {
            heap.new_tuple(py, &[x.as_slice(), y.as_slice()].concat())
        }
        (BinOp::Mul, Object::Str(x), Object::Int(n))
        | (BinOp::Mul, Object::Int(n), Object::Str(x)) => {
            let n = usize::try_from(*n).unwrap_or(0);
            if x.len().saturating_mul(n) > 1 << 20 {
                return Err(RtError::OverflowError(
                    "string too large for gilcheck".into(),
                ));
            }
            Ok(heap.new_str(py, &x.repeat(n)))
        }
        (BinOp::Add, Object::Str(_) | Object::List(_) | Object::Tuple(_), _) => {
            Err(RtError::TypeError(format!(
                "can only concatenate {} (not \"{}\") to {}",
                a.type_name(),
                b.type_name(),
                a.type_name()
            )))
        }
        _ => Err(RtError::TypeError(format!(
            "unsupported operand type(s) for {}: '{}' and '{}'",
            op.symbol(),
            a.type_name(),
            b.type_name()
        ))),
    }
}

fn arith(op: BinOp, a: Num, b: Num) -> Result<Num, RtError> {
    use Num::*;
    let zero = |m: &str| RtError::ZeroDivisionError(m.into());
    Ok(match (a, b) {
        (Int(x), Int(y)) => match op {
            BinOp::Add => Int(x.checked_add(y).ok_or_else(overflow)?),
            BinOp::Sub => Int(x.checked_sub(y).ok_or_else(overflow)?),
            BinOp::Mul => Int(x.checked_mul(y).ok_or_else(overflow)?),
            BinOp::TrueDiv if y == 0 => return Err(zero("division by zero")),
            BinOp::TrueDiv => Float(x as f64 / y as f64),
            BinOp::FloorDiv if y == 0 => return Err(zero("integer division or modulo by zero")),
            BinOp::Mod if y == 0 => return Err(zero("integer modulo by zero")),
            BinOp::FloorDiv => Int(floor_div(x, y).ok_or_else(overflow)?),
            BinOp::Mod => Int(floor_mod(x, y).ok_or_else(overflow)?),
            BinOp::Pow if y < 0 && x == 0 => {
                return Err(zero("0.0 cannot be raised to a negative power"));
            }
            BinOp::Pow if y < 0 => Float((x as f64).powf(y as f64)),
            BinOp::Pow => Int(u32::try_from(y)
                .ok()
                .and_then(|e| x.checked_pow(e))
                .ok_or_else(overflow)?),
            BinOp::And => Int(x & y),
            BinOp::Or => Int(x | y),
            BinOp::Xor => Int(x ^ y),
        },
        _ => {
            let (x, y) = (as_f64(a), as_f64(b));
            match op {
                BinOp::Add => Float(x + y),
                BinOp::Sub => Float(x - y),
                BinOp::Mul => Float(x * y),
                BinOp::TrueDiv if y == 0.0 => return Err(zero("float division by zero")),
                BinOp::FloorDiv if y == 0.0 => return Err(zero("float floor division by zero")),
                BinOp::Mod if y == 0.0 => return Err(zero("float modulo")),
                BinOp::TrueDiv => Float(x / y),
                BinOp::FloorDiv => Float(float_divmod(x, y).0),
                BinOp::Mod => Float(float_divmod(x, y).1),
                BinOp::Pow if x == 0.0 && y < 0.0 => {
                    return Err(zero("0.0 cannot be raised to a negative power"));
                }
                BinOp::Pow if x < 0.0 && y.fract() != 0.0 => {
                    return Err(RtError::ValueError("a negative number to a fractional power is complex; gilcheck has no complex numbers".into()));
                }
                BinOp::Pow => Float(x.powf(y)),
                BinOp::And | BinOp::Or | BinOp::Xor => {
                    return Err(RtError::TypeError(format!(
                        "unsupported operand type(s) for {}: 'float'",
                        op.symbol()
                    )));
                }
            }
        }
    })
}

/// CPython's `float_divmod` (`Objects/floatobject.c`): the remainder from `fmod` with the
/// divisor's sign, the quotient from it, rounded like CPython.
fn float_divmod(x: f64, y: f64) -> (f64, f64) {
    let mut m = x % y; // C's fmod
    let mut div = (x - m) / y;
    if m != 0.0 {
        if (y < 0.0) != (m < 0.0) {
            m += y;
            div -= 1.0;
        }
    } else {
        m = 0.0f64.copysign(y);
    }
    let floordiv = if div != 0.0 {
        let f = div.floor();
        if div - f > 0.5 { f + 1.0 } else { f }
    } else {
        0.0f64.copysign(x / y)
    };
    (floordiv, m)
}

fn as_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(x) => x,
    }
}

/// Python's floor division of ints (rounds toward negative infinity); `None` on overflow.
fn floor_div(x: i64, y: i64) -> Option<i64> {
    let (q, r) = (x.checked_div(y)?, x.checked_rem(y)?);
    Some(if r != 0 && ((r < 0) != (y < 0)) {
        q - 1
    } else {
        q
    })
}

/// Python's `%` of ints (the result has the divisor's sign); `None` on overflow.
fn floor_mod(x: i64, y: i64) -> Option<i64> {
    let r = x.checked_rem(y)?;
    Some(if r != 0 && ((r < 0) != (y < 0)) {
        r + y
    } else {
        r
    })
}

/// `lhs op rhs` (`COMPARE_OP`): a bool.
pub fn compare<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    op: CmpOp,
    lhs: ObjRef,
    rhs: ObjRef,
) -> Result<bool, RtError> {
    if matches!(op, CmpOp::Eq | CmpOp::Ne) {
        let eq = heap.eq(py, lhs, rhs)?;
        return Ok(eq == (op == CmpOp::Eq));
    }
    let ord = match (number(heap, py, lhs)?, number(heap, py, rhs)?) {
        (Some(Num::Int(a)), Some(Num::Int(b))) => a.partial_cmp(&b),
        (Some(a), Some(b)) => as_f64(a).partial_cmp(&as_f64(b)),
        _ => match (heap.get(py, lhs)?, heap.get(py, rhs)?) {
            (Object::Str(a), Object::Str(b)) => a.partial_cmp(&b),
            // Sequences of one type compare item by item: the first unequal pair decides,
            // else the lengths (CPython's `list_richcompare` / `tuplerichcompare`).
            (Object::Tuple(a), Object::Tuple(b)) | (Object::List(a), Object::List(b)) => {
                for (&x, &y) in a.iter().zip(&b) {
                    if !heap.eq(py, x, y)? {
                        return compare(heap, py, op, x, y);
                    }
                }
                a.len().partial_cmp(&b.len())
            }
            (a, b) => {
                return Err(RtError::TypeError(format!(
                    "'{}' not supported between instances of '{}' and '{}'",
                    op.symbol(),
                    a.type_name(),
                    b.type_name()
                )));
            }
        },
    };
    let Some(ord) = ord else { return Ok(false) }; // NaN
    Ok(match op {
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Le => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Ge => ord.is_ge(),
        CmpOp::Eq | CmpOp::Ne => unreachable!("handled above"),
    })
}

/// `item in container`.
pub fn contains<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    container: ObjRef,
    item: ObjRef,
) -> Result<bool, RtError> {
    let items: Vec<ObjRef> = match heap.get(py, container)? {
        Object::List(v) | Object::Tuple(v) => v,
        Object::Dict(_) => return heap.dict_contains(py, container, item),
        Object::Set { .. } => return Ok(heap.set_find(py, container, item)?.is_some()),
        Object::Deque { items, .. } => items.into_iter().collect(),
        Object::Bytes(b) => {
            return match heap.get(py, item)? {
                Object::Int(i) => Ok(u8::try_from(i).is_ok_and(|i| b.contains(&i))),
                Object::Bytes(t) => Ok(t.is_empty() || b.windows(t.len()).any(|w| w == &t[..])),
                other => Err(RtError::TypeError(format!(
                    "a bytes-like object is required, not '{}'",
                    other.type_name()
                ))),
            };
        }
        Object::Str(s) => {
            return match heap.get(py, item)? {
                Object::Str(t) => Ok(s.contains(&*t)),
                other => Err(RtError::TypeError(format!(
                    "'in <string>' requires string as left operand, not {}",
                    other.type_name()
                ))),
            };
        }
        other => {
            return Err(RtError::TypeError(format!(
                "argument of type '{}' is not iterable",
                other.type_name()
            )));
        }
    };
    for x in items {
        if heap.eq(py, x, item)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Python's truth value (`bool(x)`).
pub fn truthy<P: Platform>(heap: &Heap<P>, py: Token<'_>, o: ObjRef) -> Result<bool, RtError> {
    if let Some(class) = heap.class_of(py, o)? {
        for dunder in ["__bool__", "__len__"] {
            if heap.class_lookup(py, class, dunder)?.is_some() {
                return Err(RtError::Unsupported(format!(
                    "gilcheck cannot yet call a Python {dunder} for a truth value"
                )));
            }
        }
    }
    heap.with_object(py, o, |o| match o {
        Object::None => false,
        Object::Bool(b) => *b,
        Object::Int(i) => *i != 0,
        Object::Float(x) => *x != 0.0,
        Object::Str(s) => !s.is_empty(),
        Object::Bytes(b) => !b.is_empty(),
        Object::Tuple(v) | Object::List(v) => !v.is_empty(),
        Object::Dict(d) => !d.is_empty(),
        Object::Deque { items, .. } => !items.is_empty(),
        Object::Set { table, .. } => !table.is_empty(),
        Object::Range { start, stop, step } => range_len(*start, *stop, *step) > 0,
        _ => true,
    })
}

/// The number of items of `range(start, stop, step)`.
pub fn range_len(start: i64, stop: i64, step: i64) -> i64 {
    let (lo, hi, s) = if step > 0 {
        (start, stop, step)
    } else {
        (stop, start, -step)
    };
    if lo >= hi { 0 } else { (hi - lo - 1) / s + 1 }
}

/// `str(x)`: the text itself for a `str`, `repr` otherwise.
pub fn to_str<P: Platform>(heap: &Heap<P>, py: Token<'_>, o: ObjRef) -> Result<String, RtError> {
    match heap.get(py, o)? {
        Object::Str(s) => Ok(s.to_string()),
        Object::Exception { message, .. } => Ok(message.to_string()),
        Object::Instance { .. } if let Some(text) = heap.exception_text(py, o)? => Ok(text),
        _ => heap.repr(py, o),
    }
}

/// `-x`, `+x`, `~x` of a number (a bool is an int here, as in CPython).
pub fn unary<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    op: crate::vm::code::Instr,
    x: ObjRef,
) -> Result<ObjRef, RtError> {
    use crate::vm::code::Instr;
    let overflow =
        || RtError::OverflowError("integer overflow (gilcheck's ints are 64-bit)".into());
    let (symbol, num) = match op {
        Instr::UnaryNegative => ('-', number(heap, py, x)?),
        Instr::UnaryPositive => ('+', number(heap, py, x)?),
        _ => (
            '~',
            match heap.get(py, x)? {
                Object::Bool(b) => Some(Num::Int(i64::from(b))),
                Object::Int(i) => Some(Num::Int(i)),
                _ => None,
            },
        ),
    };
    match (symbol, num) {
        ('-', Some(Num::Int(i))) => Ok(heap.new_int(py, i.checked_neg().ok_or_else(overflow)?)),
        ('-', Some(Num::Float(f))) => Ok(heap.new_float(py, -f)),
        ('+', Some(Num::Int(i))) => Ok(heap.new_int(py, i)),
        ('+', Some(Num::Float(f))) => Ok(heap.new_float(py, f)),
        ('~', Some(Num::Int(i))) => Ok(heap.new_int(py, !i)),
        _ => Err(RtError::TypeError(format!(
            "bad operand type for unary {symbol}: '{}'",
            heap.type_name_of(py, x)?
        ))),
    }
}

/// `format(x, spec)` after the conversion of `FORMAT_VALUE` (`vm::format`).
pub fn format_value<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    o: ObjRef,
    conversion: Conversion,
    spec: &str,
) -> Result<String, RtError> {
    use crate::vm::format::{Value, apply, value_of_or_text};
    let v = match conversion {
        Conversion::Repr => Value::Str(heap.repr(py, o)?),
        Conversion::Str => Value::Str(to_str(heap, py, o)?),
        Conversion::None => value_of_or_text(heap, py, o, spec)?,
    };
    apply(&v, spec)
}
