//! Text formatting as CPython does it: the format-spec mini-language of `format()`, f-strings
//! and `str.format` (`Python/formatter_unicode.c`), and printf-style `str % values`
//! (`PyUnicode_Format` in `Objects/unicodeobject.c`). What is not modelled is refused with
//! `RtError::Unsupported`, never formatted differently (rule VM-16).

use crate::RtError;
use crate::heap::{Heap, ObjRef, Object, format_float};
use crate::platform::Platform;
use crate::runtime::Token;
use crate::vm::ops;

/// A value as the formatter sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
        }
    }
}

/// What `format(obj, spec)` formats for `obj` (borrowed): ints and bools as int, floats, strs.
pub fn value_of<P: Platform>(heap: &Heap<P>, py: Token<'_>, o: ObjRef) -> Result<Value, RtError> {
    Ok(match heap.get(py, o)? {
        Object::Bool(b) => Value::Int(i64::from(b)),
        Object::Int(i) => Value::Int(i),
        Object::Float(x) => Value::Float(x),
        Object::Str(s) => Value::Str(s.to_string()),
        Object::Instance { .. } => {
            return Err(RtError::Unsupported(
                "a format spec applied to an instance of a class statement (__format__)".into(),
            ));
        }
        other => {
            return Err(RtError::TypeError(format!(
                "unsupported format string passed to {}.__format__",
                other.type_name()
            )));
        }
    })
}

/// A parsed spec: `[[fill]align][sign][#][0][width][grouping][.precision][type]`.
#[derive(Debug, Default)]
struct Spec {
    fill: Option<char>,
    align: Option<char>,
    sign: Option<char>,
    alt: bool,
    zero: bool,
    width: usize,
    grouping: Option<char>,
    precision: Option<usize>,
    kind: Option<char>,
}

fn parse(spec: &str) -> Result<Spec, RtError> {
    let chars: Vec<char> = spec.chars().collect();
    let mut s = Spec::default();
    let mut i = 0;
    let is_align = |c: char| matches!(c, '<' | '>' | '=' | '^');
    if chars.len() >= 2 && is_align(chars[1]) {
        s.fill = Some(chars[0]);
        s.align = Some(chars[1]);
        i = 2;
    } else if chars.first().is_some_and(|&c| is_align(c)) {
        s.align = Some(chars[0]);
        i = 1;
    }
    if let Some(&c) = chars.get(i)
        && matches!(c, '+' | '-' | ' ')
    {
        s.sign = Some(c);
        i += 1;
    }
    if chars.get(i) == Some(&'#') {
        s.alt = true;
        i += 1;
    }
    if chars.get(i) == Some(&'0') {
        s.zero = true;
        i += 1;
    }
    let digits = |i: &mut usize| -> Result<Option<usize>, RtError> {
        let start = *i;
        while chars.get(*i).is_some_and(|c| c.is_ascii_digit()) {
            *i += 1;
        }
        if *i == start {
            return Ok(None);
        }
        let text: String = chars[start..*i].iter().collect();
        text.parse::<usize>()
            .ok()
            .filter(|&n| n <= 1 << 16)
            .map(Some)
            .ok_or_else(|| RtError::ValueError("Too many decimal digits in format string".into()))
    };
    s.width = digits(&mut i)?.unwrap_or(0);
    if let Some(&c) = chars.get(i)
        && matches!(c, ',' | '_')
    {
        s.grouping = Some(c);
        i += 1;
    }
    if chars.get(i) == Some(&'.') {
        i += 1;
        s.precision = Some(
            digits(&mut i)?
                .ok_or_else(|| RtError::ValueError("Format specifier missing precision".into()))?,
        );
    }
    if let Some(&c) = chars.get(i) {
        s.kind = Some(c);
        i += 1;
    }
    if i < chars.len() {
        return Err(RtError::ValueError("Invalid format specifier".into()));
    }
    Ok(s)
}

fn unknown(kind: char, v: &Value) -> RtError {
    RtError::ValueError(format!(
        "Unknown format code '{kind}' for object of type '{}'",
        v.type_name()
    ))
}

/// `format(value, spec)`.
pub fn apply(value: &Value, spec: &str) -> Result<String, RtError> {
    if spec.is_empty() {
        return Ok(match value {
            Value::Int(i) => i.to_string(),
            Value::Float(x) => format_float(*x),
            Value::Str(s) => s.clone(),
        });
    }
    let s = parse(spec)?;
    match value {
        Value::Str(text) => {
            if let Some(k) = s.kind.filter(|&k| k != 's') {
                return Err(unknown(k, value));
            }
            if s.sign.is_some() {
                return Err(RtError::ValueError(
                    "Sign not allowed in string format specifier".into(),
                ));
            }
            if s.alt {
                return Err(RtError::ValueError(
                    "Alternate form (#) not allowed in string format specifier".into(),
                ));
            }
            if s.grouping.is_some() {
                return Err(RtError::ValueError(format!(
                    "Cannot specify '{}' with 's'.",
                    s.grouping.unwrap_or(',')
                )));
            }
            if s.align == Some('=') {
                return Err(RtError::ValueError(
                    "'=' alignment not allowed in string format specifier".into(),
                ));
            }
            let body: String = match s.precision {
                Some(p) => text.chars().take(p).collect(),
                None => text.clone(),
            };
            let fill = s.fill.unwrap_or(if s.zero { '0' } else { ' ' });
            Ok(pad("", &body, fill, s.align.unwrap_or('<'), s.width))
        }
        Value::Int(i) => match s.kind {
            None | Some('d' | 'x' | 'X' | 'o' | 'b' | 'c') => {
                if s.precision.is_some() {
                    return Err(RtError::ValueError(
                        "Precision not allowed in integer format specifier".into(),
                    ));
                }
                let kind = s.kind.unwrap_or('d');
                if kind == 'c' {
                    // formatter_unicode.c's format_long_internal and the grouping check.
                    if s.sign.is_some() {
                        return Err(RtError::ValueError(
                            "Sign not allowed with integer format specifier 'c'".into(),
                        ));
                    }
                    if s.alt {
                        return Err(RtError::ValueError(
                            "Alternate form (#) not allowed with integer format specifier 'c'"
                                .into(),
                        ));
                    }
                    if let Some(g) = s.grouping {
                        return Err(RtError::ValueError(format!(
                            "Cannot specify '{g}' with 'c'."
                        )));
                    }
                }
                if s.grouping == Some(',') && !matches!(kind, 'd' | 'c') {
                    return Err(RtError::ValueError(format!(
                        "Cannot specify ',' with '{kind}'."
                    )));
                }
                integer(&s, *i, kind)
            }
            Some('e' | 'E' | 'f' | 'F' | 'g' | 'G' | '%') => float(&s, *i as f64),
            Some(k) => Err(unknown(k, value)),
        },
        Value::Float(x) => match s.kind {
            Some('e' | 'E' | 'f' | 'F' | 'g' | 'G' | '%') => float(&s, *x),
            None if s.precision.is_none() => {
                let mut text = format_float(x.abs());
                // `#` keeps the point of repr's exponent form (Py_DTSF_ALT).
                if s.alt
                    && let Some(at) = text.find('e')
                    && !text[..at].contains('.')
                {
                    text.insert(at, '.');
                }
                let (int, _) = text.split_once('.').unwrap_or((&text, ""));
                let int = int.to_string();
                let rest = text[int.len()..].to_string();
                Ok(number_parts(
                    &s,
                    x.is_sign_negative() && !x.is_nan(),
                    "",
                    &int,
                    &rest,
                    3,
                ))
            }
            // A precision and no type: `g`, with `.0` kept in fixed notation, which it leaves
            // one exponent earlier (`format_float_internal`'s Py_DTSF_ADD_DOT_0).
            None => float(&s, *x),
            Some(k) => Err(unknown(k, value)),
        },
    }
}

/// `e`, `f`, `g`, `%` (and their capitals) of a float.
fn float(s: &Spec, x: f64) -> Result<String, RtError> {
    let add_dot_0 = s.kind.is_none();
    let kind = s.kind.unwrap_or('g');
    let upper = kind.is_ascii_uppercase();
    let negative = x.is_sign_negative() && !x.is_nan();
    let a = x.abs();
    if !a.is_finite() {
        let word = if a.is_nan() { "nan" } else { "inf" };
        let word = if upper {
            word.to_uppercase()
        } else {
            word.into()
        };
        let word = if kind == '%' {
            format!("{word}%")
        } else {
            word
        };
        return Ok(number_parts(s, negative, "", &word, "", 3));
    }
    let p = s.precision.unwrap_or(6);
    let (int, rest) = match kind.to_ascii_lowercase() {
        'f' => split_point(&format!("{a:.p$}"), s.alt),
        '%' => {
            let (i, r) = split_point(&format!("{:.p$}", a * 100.0), s.alt);
            (i, format!("{r}%"))
        }
        'e' => {
            let (m, e) = exponent(a, p);
            let (i, r) = split_point(&m, s.alt);
            (i, format!("{r}{}{e}", if upper { 'E' } else { 'e' }))
        }
        _ => {
            // `g`: scientific when the exponent is < -4 or >= the precision, trailing zeros
            // dropped unless `#`.
            let p = p.max(1);
            let (_, e) = exponent(a, p - 1);
            let e: i32 = e
                .parse()
                .map_err(|_| RtError::ValueError("exponent".into()))?;
            let last = if add_dot_0 { p as i32 - 1 } else { p as i32 };
            let (mut int, mut rest) = if (-4..last).contains(&e) {
                let q = (p as i32 - 1 - e) as usize;
                split_point(&format!("{a:.q$}"), s.alt)
            } else {
                let (m, e) = exponent(a, p - 1);
                let (i, r) = split_point(&m, s.alt);
                let r = if s.alt { r } else { trim_zeros(&r) };
                return Ok(number_parts(
                    s,
                    negative,
                    "",
                    &i,
                    &format!("{r}{}{e}", if upper { 'E' } else { 'e' }),
                    3,
                ));
            };
            if !s.alt {
                rest = trim_zeros(&rest);
            }
            if add_dot_0 && rest.is_empty() {
                rest = ".0".into();
            }
            if int.is_empty() {
                int = "0".into();
            }
            (int, rest)
        }
    };
    Ok(number_parts(s, negative, "", &int, &rest, 3))
}

/// `x` in scientific notation with `p` digits after the point: the mantissa and CPython's
/// exponent (a sign and at least two digits).
fn exponent(x: f64, p: usize) -> (String, String) {
    let text = format!("{x:.p$e}");
    let (m, e) = text.split_once('e').unwrap_or((&text, "0"));
    let n: i32 = e.parse().unwrap_or(0);
    let sign = if n < 0 { '-' } else { '+' };
    (m.to_string(), format!("{sign}{:02}", n.unsigned_abs()))
}

/// The integer digits and the rest (`.ddd`, or `.` with `#` and no digits).
fn split_point(text: &str, alt: bool) -> (String, String) {
    match text.split_once('.') {
        Some((i, r)) => (i.to_string(), format!(".{r}")),
        None if alt => (text.to_string(), ".".into()),
        None => (text.to_string(), String::new()),
    }
}

fn trim_zeros(rest: &str) -> String {
    let t = rest.trim_end_matches('0');
    if t == "." {
        String::new()
    } else {
        t.to_string()
    }
}

fn number(s: &Spec, negative: bool, prefix: &str, digits: &str, group: usize) -> String {
    number_parts(s, negative, prefix, digits, "", group)
}

/// Sign, prefix, grouped integer digits and the rest, padded as the spec says (`=` and `0`
/// pad between the sign and the digits).
fn number_parts(
    s: &Spec,
    negative: bool,
    prefix: &str,
    int: &str,
    rest: &str,
    group: usize,
) -> String {
    let sign = match (negative, s.sign) {
        (true, _) => "-",
        (false, Some('+')) => "+",
        (false, Some(' ')) => " ",
        _ => "",
    };
    let head = format!("{sign}{prefix}");
    let grouped = |digits: &str, width: usize| -> String {
        let Some(sep) = s.grouping else {
            return digits.to_string();
        };
        // With `0` padding the zeros are grouped too (`format(5, '08,')` is `0,000,005`).
        let mut d = digits.to_string();
        while width > 0
            && head.len() + d.len() + d.len().saturating_sub(1) / group + rest.len() < width
        {
            d.insert(0, '0');
        }
        let mut out = String::new();
        for (n, c) in d.chars().enumerate() {
            if n > 0 && (d.len() - n).is_multiple_of(group) {
                out.push(sep);
            }
            out.push(c);
        }
        out
    };
    let numeric = int.chars().all(|c| c.is_ascii_hexdigit());
    // The `0` flag: fill with zeros and pad after the sign, unless the spec says otherwise.
    let fill = s.fill.unwrap_or(if s.zero { '0' } else { ' ' });
    let align = s.align.unwrap_or(if s.zero { '=' } else { '>' });
    let width = if align == '=' && fill == '0' {
        s.width
    } else {
        0
    };
    let body = if numeric {
        grouped(int, width)
    } else {
        int.to_string()
    };
    pad(&head, &format!("{body}{rest}"), fill, align, s.width)
}

/// `head` (sign and prefix) and `body` padded to `width` with `fill`, as `align` says.
fn pad(head: &str, body: &str, fill: char, align: char, width: usize) -> String {
    let len = head.chars().count() + body.chars().count();
    let n = width.saturating_sub(len);
    let fills = |k: usize| fill.to_string().repeat(k);
    match align {
        '<' => format!("{head}{body}{}", fills(n)),
        '^' => format!("{}{head}{body}{}", fills(n / 2), fills(n - n / 2)),
        '=' => format!("{head}{}{body}", fills(n)),
        _ => format!("{}{head}{body}", fills(n)),
    }
}

/// `fmt % values` for a str `fmt`: `%[flags][width][.precision]type` with the flags `-+ 0#`
/// and the types `s r d i u x X o e E f F g G c %`.
pub fn percent<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    fmt: &str,
    values: ObjRef,
) -> Result<String, RtError> {
    let items: Vec<ObjRef> = match heap.get(py, values)? {
        Object::Tuple(v) => v,
        Object::Dict(_) if fmt.contains("%(") => {
            return Err(RtError::Unsupported(
                "printf-style formatting with a mapping (%(name)s)".into(),
            ));
        }
        _ => vec![values],
    };
    let mut next = items.iter().copied();
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        let mut minus = false;
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => spec.sign = Some('+'),
                ' ' if spec.sign.is_none() => spec.sign = Some(' '),
                ' ' => {}
                '0' => spec.zero = true,
                '#' => spec.alt = true,
                _ => break,
            }
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
                chars.next();
            }
            n
        };
        if chars.peek() == Some(&'*') {
            return Err(RtError::Unsupported(
                "a * width in printf-style formatting".into(),
            ));
        }
        spec.width = number(&mut chars).unwrap_or(0).min(1 << 16);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(number(&mut chars).unwrap_or(0).min(1 << 16));
        }
        while matches!(chars.peek(), Some('h' | 'l' | 'L')) {
            chars.next();
        }
        let Some(kind) = chars.next() else {
            return Err(RtError::ValueError("incomplete format".into()));
        };
        if kind == '%' {
            out.push('%');
            continue;
        }
        if kind == '(' {
            return Err(RtError::Unsupported(
                "printf-style formatting with a mapping (%(name)s)".into(),
            ));
        }
        let arg = next
            .next()
            .ok_or_else(|| RtError::TypeError("not enough arguments for format string".into()))?;
        if minus {
            spec.align = Some('<');
            spec.zero = false;
        }
        let text = match kind {
            's' | 'r' => {
                let s = if kind == 's' {
                    ops::to_str(heap, py, arg)?
                } else {
                    heap.repr(py, arg)?
                };
                let body: String = match spec.precision {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                };
                pad("", &body, ' ', spec.align.unwrap_or('>'), spec.width)
            }
            'd' | 'i' | 'u' | 'x' | 'X' | 'o' | 'c' => {
                let v = match (heap.get(py, arg)?, kind) {
                    (Object::Int(i), _) => i,
                    (Object::Bool(b), _) => i64::from(b),
                    (Object::Float(x), 'd' | 'i' | 'u') if x.is_finite() => x.trunc() as i64,
                    (Object::Str(s), 'c') if s.chars().count() == 1 => {
                        out.push_str(&pad("", &s, ' ', spec.align.unwrap_or('>'), spec.width));
                        continue;
                    }
                    (other, 'd' | 'i' | 'u') => {
                        return Err(RtError::TypeError(format!(
                            "%{kind} format: a real number is required, not {}",
                            other.type_name()
                        )));
                    }
                    (other, 'c') => {
                        return Err(RtError::TypeError(format!(
                            "%c requires int or char, not {}",
                            other.type_name()
                        )));
                    }
                    (other, _) => {
                        return Err(RtError::TypeError(format!(
                            "%{kind} format: an integer is required, not {}",
                            other.type_name()
                        )));
                    }
                };
                if spec.precision.is_some() {
                    return Err(RtError::Unsupported(format!(
                        "a precision with %{kind} (a minimum number of digits)"
                    )));
                }
                integer(&spec, v, if matches!(kind, 'i' | 'u') { 'd' } else { kind })?
            }
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
                let x = match heap.get(py, arg)? {
                    Object::Int(i) => i as f64,
                    Object::Bool(b) => f64::from(u8::from(b)),
                    Object::Float(x) => x,
                    other => {
                        return Err(RtError::TypeError(format!(
                            "must be real number, not {}",
                            other.type_name()
                        )));
                    }
                };
                spec.kind = Some(kind);
                float(&spec, x)?
            }
            'a' => return Err(RtError::Unsupported("the %a conversion".into())),
            other => {
                return Err(RtError::ValueError(format!(
                    "unsupported format character '{other}' (0x{:x})",
                    other as u32
                )));
            }
        };
        out.push_str(&text);
    }
    if next.next().is_some() {
        return Err(RtError::TypeError(
            "not all arguments converted during string formatting".into(),
        ));
    }
    Ok(out)
}

/// An int in the integer presentation `kind` (`d x X o b c`), the spec already checked:
/// digits grouped by 3 (decimal) or 4, `#`'s prefix (`0o` for octal, as printf's in Python 3).
fn integer(s: &Spec, i: i64, kind: char) -> Result<String, RtError> {
    let mag = i.unsigned_abs();
    let (digits, prefix, group) = match kind {
        'x' => (format!("{mag:x}"), "0x", 4),
        'X' => (format!("{mag:X}"), "0X", 4),
        'o' => (format!("{mag:o}"), "0o", 4),
        'b' => (format!("{mag:b}"), "0b", 4),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| RtError::OverflowError("%c arg not in range(0x110000)".into()))?;
            let fill = s.fill.unwrap_or(' ');
            return Ok(pad(
                "",
                &c.to_string(),
                fill,
                s.align.unwrap_or('>'),
                s.width,
            ));
        }
        _ => (mag.to_string(), "", 3),
    };
    let prefix = if s.alt { prefix } else { "" };
    Ok(number(s, i < 0, prefix, &digits, group))
}

/// `template.format(*args, **kwargs)`: `{}`, `{0}`, `{name}`, each with `!r`/`!s` and a spec.
pub fn str_format<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    template: &str,
    args: &[ObjRef],
    kwargs: &[(String, ObjRef)],
) -> Result<String, RtError> {
    let mut out = String::new();
    let mut auto = 0usize;
    let mut manual = false;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => {
                return Err(RtError::ValueError(
                    "Single '}' encountered in format string".into(),
                ));
            }
            '{' => {
                let mut field = String::new();
                let mut depth = 1;
                for c in chars.by_ref() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                    field.push(c);
                }
                if depth != 0 {
                    return Err(RtError::ValueError(
                        "expected '}' before end of string".into(),
                    ));
                }
                if field.contains('{') {
                    return Err(RtError::Unsupported(
                        "a nested replacement field in a format spec".into(),
                    ));
                }
                let (name, spec) = field.split_once(':').unwrap_or((&field, ""));
                let (name, conversion) = match name.split_once('!') {
                    Some((n, c)) => (n, Some(c)),
                    None => (name, None),
                };
                if name.contains(['.', '[']) {
                    return Err(RtError::Unsupported(format!(
                        "attribute or index access in a format field ({{{name}}})"
                    )));
                }
                let value = if name.is_empty() {
                    if manual {
                        return Err(RtError::ValueError(
                            "cannot switch from manual field specification to automatic field numbering".into(),
                        ));
                    }
                    auto += 1;
                    args.get(auto - 1).copied().ok_or_else(|| {
                        RtError::IndexError(format!(
                            "Replacement index {} out of range for positional args tuple",
                            auto - 1
                        ))
                    })?
                } else if let Ok(k) = name.parse::<usize>() {
                    if auto > 0 {
                        return Err(RtError::ValueError(
                            "cannot switch from automatic field numbering to manual field specification".into(),
                        ));
                    }
                    manual = true;
                    args.get(k).copied().ok_or_else(|| {
                        RtError::IndexError(format!(
                            "Replacement index {k} out of range for positional args tuple"
                        ))
                    })?
                } else {
                    kwargs
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|&(_, v)| v)
                        .ok_or_else(|| RtError::KeyError(format!("'{name}'")))?
                };
                let v = match conversion {
                    None => value_of_or_text(heap, py, value, spec)?,
                    Some("r") => Value::Str(heap.repr(py, value)?),
                    Some("s") => Value::Str(ops::to_str(heap, py, value)?),
                    Some("a") => return Err(RtError::Unsupported("the !a conversion".into())),
                    Some(_) => {
                        return Err(RtError::ValueError("Unknown conversion specifier".into()));
                    }
                };
                out.push_str(&apply(&v, spec)?);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// What `format(value, spec)` formats: with an empty spec, `str(value)` of anything.
pub fn value_of_or_text<P: Platform>(
    heap: &Heap<P>,
    py: Token<'_>,
    o: ObjRef,
    spec: &str,
) -> Result<Value, RtError> {
    if spec.is_empty() {
        return Ok(Value::Str(ops::to_str(heap, py, o)?));
    }
    value_of(heap, py, o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: Value, spec: &str) -> String {
        apply(&v, spec).unwrap()
    }

    /// Each expected text is what CPython 3.11 prints for `format(value, spec)`.
    #[test]
    fn specs_format_as_cpython() {
        use Value::*;
        let cases: &[(Value, &str, &str)] = &[
            (Int(42), ">6", "    42"),
            (Int(42), "<6", "42    "),
            (Int(42), "^7", "  42   "),
            (Int(-42), "06", "-00042"),
            (Int(-42), "=+6", "-   42"),
            (Int(42), "+d", "+42"),
            (Int(1234567), ",", "1,234,567"),
            (Int(1234567), "_", "1_234_567"),
            (Int(5), "08,", "0,000,005"),
            (Int(255), "#x", "0xff"),
            (Int(255), "X", "FF"),
            (Int(255), "#010b", "0b11111111"),
            (Int(8), "o", "10"),
            (Int(65), "c", "A"),
            (Int(3), ".2f", "3.00"),
            (Float(1.23456), ".2f", "1.23"),
            (Float(-1.23456), "10.3f", "    -1.235"),
            (Float(1.23456), "010.3f", "000001.235"),
            (Float(1234567.891), ",.2f", "1,234,567.89"),
            (Float(0.256), ".1%", "25.6%"),
            (Float(12345.678), ".3e", "1.235e+04"),
            (Float(0.000123), "E", "1.230000E-04"),
            (Float(12345.678), "g", "12345.7"),
            (Float(0.0000123), "g", "1.23e-05"),
            (Float(100.0), "g", "100"),
            (Float(1e16), "g", "1e+16"),
            (Float(2.5), "", "2.5"),
            (Float(2.5), ">6", "   2.5"),
            (Float(f64::INFINITY), "f", "inf"),
            (Str("ab".into()), ">5", "   ab"),
            (Str("ab".into()), "*^6", "**ab**"),
            (Str("abcdef".into()), ".3", "abc"),
            (Str("ab".into()), "05", "ab000"),
            (Int(42), "<05", "42000"),
            (Int(-7), "x<+5", "-7xxx"),
        ];
        for (v, spec, want) in cases {
            assert_eq!(f(v.clone(), spec), *want, "format({v:?}, {spec:?})");
        }
    }

    #[test]
    fn errors_and_precision_only_specs_are_cpythons() {
        assert!(matches!(
            apply(&Value::Str("a".into()), "d"),
            Err(RtError::ValueError(m)) if m == "Unknown format code 'd' for object of type 'str'"
        ));
        assert!(matches!(
            apply(&Value::Int(1), ".2"),
            Err(RtError::ValueError(m)) if m.starts_with("Precision not allowed")
        ));
        for (x, spec, want) in [
            (10.0, ".2", "1e+01"),
            (10.0, ".3", "10.0"),
            (1.5, ".2", "1.5"),
            (2.0, ".1", "2e+00"),
            (99.99, ".3", "1e+02"),
            (123.456, ".5", "123.46"),
        ] {
            assert_eq!(apply(&Value::Float(x), spec).unwrap(), want, "{x} {spec}");
        }
    }
}
