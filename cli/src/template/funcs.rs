//! The functions templates call: Go's builtins (`and`, `or`, `not`, `len`, `index`,
//! `slice`, `eq`..`ge`, `print`, `printf`, `println`, `html`, `js`, `urlquery`) and
//! docker's (`json`, `split`, `join`, `title`, `lower`, `upper`, `pad`, `truncate`);
//! for table headers docker's header set, where the text functions give back their
//! argument (so `{{upper .Names}}` heads its column `NAMES`).

use super::printf;
use super::value::{NilKind, Value};

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// Wrong number of arguments (Go's words).
    Arity(String),
    /// An argument of the wrong type (Go's words).
    Type(String),
    /// The function itself failed (`error calling NAME: ...`).
    Failed(String),
}

/// A set of functions.
pub trait Table {
    /// Whether `name` is defined.
    fn has(&self, name: &str) -> bool;
    /// Calls it.
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, CallError>;
}

const BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

const DOCKER: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

/// Go's builtins and docker's basic functions.
pub struct Basic;

/// As [`Basic`], with docker's header functions over it.
pub struct Header;

impl Table for Basic {
    fn has(&self, name: &str) -> bool {
        BUILTINS.contains(&name) || DOCKER.contains(&name)
    }
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, CallError> {
        call(name, args)
    }
}

impl Table for Header {
    fn has(&self, name: &str) -> bool {
        Basic.has(name)
    }
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, CallError> {
        match name {
            "json" | "title" | "lower" | "upper" => {
                arity(name, args, 1)?;
                Ok(args[0].clone())
            }
            "split" | "join" | "truncate" => {
                arity(name, args, 2)?;
                Ok(args[0].clone())
            }
            _ => call(name, args),
        }
    }
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), CallError> {
    if args.len() != n {
        return Err(CallError::Arity(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn at_least(name: &str, args: &[Value], n: usize) -> Result<(), CallError> {
    if args.len() < n {
        return Err(CallError::Arity(format!(
            "wrong number of args for {name}: want at least {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn string(v: &Value) -> Result<&str, CallError> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(CallError::Type(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        ))),
    }
}

fn int(v: &Value) -> Result<i64, CallError> {
    match v {
        Value::Int(n) => Ok(*n),
        Value::Uint(n) => i64::try_from(*n).map_err(|_| CallError::Type("integer overflow".into())),
        other => Err(CallError::Type(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        ))),
    }
}

fn strings(v: &Value) -> Result<Vec<String>, CallError> {
    match v {
        Value::List(l) => l
            .iter()
            .map(|x| string(x).map(String::from))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                CallError::Type(
                    "wrong type for value; expected []string; got []interface {}".into(),
                )
            }),
        Value::Nil(NilKind::Slice) => Ok(Vec::new()),
        other => Err(CallError::Type(format!(
            "wrong type for value; expected []string; got {}",
            other.type_name()
        ))),
    }
}

fn call(name: &str, args: &[Value]) -> Result<Value, CallError> {
    match name {
        "json" => {
            arity(name, args, 1)?;
            Ok(Value::Str(args[0].to_json()))
        }
        "split" => {
            arity(name, args, 2)?;
            let (s, sep) = (string(&args[0])?, string(&args[1])?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::Str(c.to_string())).collect()
            } else {
                s.split(sep).map(Value::from).collect()
            };
            Ok(Value::List(parts))
        }
        "join" => {
            arity(name, args, 2)?;
            Ok(Value::Str(strings(&args[0])?.join(string(&args[1])?)))
        }
        "title" => {
            arity(name, args, 1)?;
            Ok(Value::Str(title(string(&args[0])?)))
        }
        "lower" => {
            arity(name, args, 1)?;
            Ok(Value::Str(string(&args[0])?.to_lowercase()))
        }
        "upper" => {
            arity(name, args, 1)?;
            Ok(Value::Str(string(&args[0])?.to_uppercase()))
        }
        "pad" => {
            arity(name, args, 3)?;
            let s = string(&args[0])?;
            let (pre, post) = (int(&args[1])?, int(&args[2])?);
            if s.is_empty() {
                return Ok(Value::Str(String::new()));
            }
            Ok(Value::Str(format!(
                "{}{s}{}",
                " ".repeat(pre.max(0) as usize),
                " ".repeat(post.max(0) as usize)
            )))
        }
        "truncate" => {
            arity(name, args, 2)?;
            let s = string(&args[0])?;
            let n = int(&args[1])?.max(0) as usize;
            if s.len() < n {
                return Ok(Value::Str(s.to_string()));
            }
            // Go cuts bytes; a cut inside a character keeps the whole characters before.
            let mut end = n.min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Ok(Value::Str(s[..end].to_string()))
        }
        "not" => {
            arity(name, args, 1)?;
            Ok(Value::Bool(!args[0].truth()))
        }
        "len" => {
            arity(name, args, 1)?;
            match &args[0] {
                Value::Str(s) => Ok(Value::Int(s.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                Value::Nil(NilKind::Slice | NilKind::Map) => Ok(Value::Int(0)),
                other => Err(CallError::Failed(format!(
                    "len of type {}",
                    other.type_name()
                ))),
            }
        }
        "index" => {
            at_least(name, args, 1)?;
            let mut cur = args[0].clone();
            for ix in &args[1..] {
                cur = match (&cur, ix) {
                    (Value::List(l), i) => {
                        let i = int(i).map_err(|_| {
                            CallError::Failed(format!(
                                "cannot index slice/array with type {}",
                                ix.type_name()
                            ))
                        })?;
                        if i < 0 || i as usize >= l.len() {
                            return Err(CallError::Failed(format!("index out of range: {i}")));
                        }
                        l[i as usize].clone()
                    }
                    (Value::Str(s), i) => {
                        let i = int(i)?;
                        match s.as_bytes().get(i.max(0) as usize) {
                            Some(b) if i >= 0 => Value::Int(i64::from(*b)),
                            _ => return Err(CallError::Failed(format!("index out of range: {i}"))),
                        }
                    }
                    (Value::Map(m), k) => {
                        let k = string(k)?;
                        match m.iter().find(|(x, _)| x == k) {
                            Some((_, v)) => v.clone(),
                            // The zero value of the map's element type.
                            None if m.iter().all(|(_, v)| matches!(v, Value::Str(_))) => {
                                Value::Str(String::new())
                            }
                            None => Value::Nil(NilKind::Pointer),
                        }
                    }
                    (Value::Nil(NilKind::Map), _) => Value::Str(String::new()),
                    (Value::Missing | Value::Nil(NilKind::Pointer), _) => {
                        return Err(CallError::Failed("index of untyped nil".into()))
                    }
                    (other, _) => {
                        return Err(CallError::Failed(format!(
                            "can't index item of type {}",
                            other.type_name()
                        )))
                    }
                };
            }
            Ok(cur)
        }
        "slice" => {
            at_least(name, args, 1)?;
            if args.len() > 4 {
                return Err(CallError::Failed("too many slice indexes: 4".into()));
            }
            let idx: Vec<i64> = args[1..].iter().map(int).collect::<Result<_, _>>()?;
            match &args[0] {
                Value::Str(s) => {
                    if idx.len() == 3 {
                        return Err(CallError::Failed("cannot 3-index slice a string".into()));
                    }
                    let (i, j) = (
                        idx.first().copied().unwrap_or(0),
                        idx.get(1).copied().unwrap_or(s.len() as i64),
                    );
                    if i < 0 || j < i || j as usize > s.len() {
                        return Err(CallError::Failed(format!("index out of range: {j}")));
                    }
                    Ok(Value::Str(
                        String::from_utf8_lossy(&s.as_bytes()[i as usize..j as usize]).into_owned(),
                    ))
                }
                Value::List(l) => {
                    let (i, j) = (
                        idx.first().copied().unwrap_or(0),
                        idx.get(1).copied().unwrap_or(l.len() as i64),
                    );
                    if i < 0 || j < i || j as usize > l.len() {
                        return Err(CallError::Failed(format!("index out of range: {j}")));
                    }
                    Ok(Value::List(l[i as usize..j as usize].to_vec()))
                }
                other => Err(CallError::Failed(format!(
                    "can't slice item of type {}",
                    other.type_name()
                ))),
            }
        }
        "print" => Ok(Value::Str(sprint(args))),
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::print).collect();
            Ok(Value::Str(format!("{}\n", parts.join(" "))))
        }
        "printf" => {
            at_least(name, args, 1)?;
            let f = string(&args[0])?;
            Ok(Value::Str(printf::sprintf(f, &args[1..])))
        }
        "html" => Ok(Value::Str(html(&sprint(args)))),
        "js" => Ok(Value::Str(js(&sprint(args)))),
        "urlquery" => Ok(Value::Str(
            form_urlencoded::byte_serialize(sprint(args).as_bytes()).collect(),
        )),
        "call" => {
            at_least(name, args, 1)?;
            Err(CallError::Failed(format!(
                "non-function of type {}",
                args[0].type_name()
            )))
        }
        "eq" => {
            at_least(name, args, 1)?;
            if args.len() < 2 {
                return Err(CallError::Failed("missing argument for comparison".into()));
            }
            for b in &args[1..] {
                if equal(&args[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            arity(name, args, 2)?;
            Ok(Value::Bool(!equal(&args[0], &args[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(name, args, 2)?;
            let o = order(&args[0], &args[1])?;
            Ok(Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            }))
        }
        other => Err(CallError::Failed(format!("function {other:?} not defined"))),
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&a.print());
    }
    out
}

/// Go's `strings.Title`: each word's first letter upper-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

fn html(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's basic kinds for comparison.
enum Kind<'a> {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
    Nil,
}

fn kind(v: &Value) -> Option<Kind<'_>> {
    Some(match v {
        Value::Bool(b) => Kind::Bool(*b),
        Value::Int(n) => Kind::Int(i128::from(*n)),
        Value::Uint(n) => Kind::Int(i128::from(*n)),
        Value::Float(f) => Kind::Float(*f),
        Value::Str(s) => Kind::Str(s),
        Value::Nil(_) | Value::Missing => Kind::Nil,
        _ => return None,
    })
}

fn equal(a: &Value, b: &Value) -> Result<bool, CallError> {
    let (Some(x), Some(y)) = (kind(a), kind(b)) else {
        return Err(CallError::Failed("invalid type for comparison".into()));
    };
    match (x, y) {
        (Kind::Bool(x), Kind::Bool(y)) => Ok(x == y),
        (Kind::Int(x), Kind::Int(y)) => Ok(x == y),
        (Kind::Float(x), Kind::Float(y)) => Ok(x == y),
        (Kind::Str(x), Kind::Str(y)) => Ok(x == y),
        (Kind::Nil, Kind::Nil) => Ok(true),
        (Kind::Nil, _) | (_, Kind::Nil) => Ok(false),
        _ => Err(CallError::Failed(
            "incompatible types for comparison".into(),
        )),
    }
}

fn order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, CallError> {
    let (Some(x), Some(y)) = (kind(a), kind(b)) else {
        return Err(CallError::Failed("invalid type for comparison".into()));
    };
    match (x, y) {
        (Kind::Int(x), Kind::Int(y)) => Ok(x.cmp(&y)),
        (Kind::Float(x), Kind::Float(y)) => x
            .partial_cmp(&y)
            .ok_or_else(|| CallError::Failed("invalid type for comparison".into())),
        (Kind::Str(x), Kind::Str(y)) => Ok(x.cmp(y)),
        (Kind::Bool(_), Kind::Bool(_)) | (Kind::Nil, _) | (_, Kind::Nil) => {
            Err(CallError::Failed("invalid type for comparison".into()))
        }
        _ => Err(CallError::Failed(
            "incompatible types for comparison".into(),
        )),
    }
}
