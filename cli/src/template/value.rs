//! The values a template works on, with Go's distinctions that show in output and
//! errors: a struct (a missing field is an error naming its type; printed `{a b}`), a
//! map (a missing key is `<no value>`, or an error with `missingkey=error`; printed
//! `map[k:v]` in key order), a list, the scalars, `nil`, and the "no value" of a key
//! that is not there.

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::rc::Rc;

/// What a Go `nil` was declared as, which decides how it prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NilKind {
    /// A pointer or interface: `<nil>`.
    Pointer,
    /// A slice: `[]`.
    Slice,
    /// A map: `map[]`.
    Map,
}

/// A method of a struct value: receives the struct and the call's arguments.
pub type Method = fn(&Struct, &[Value]) -> Result<Value, String>;

/// A Go struct as templates see it (docker's formatter contexts, inspect objects).
#[derive(Clone)]
pub struct Struct {
    /// Go's type name, as errors name it (`*formatter.ContainerContext`).
    pub type_name: String,
    /// Exported fields (and argument-less methods, which templates call alike), in
    /// declaration order.
    pub fields: Vec<(String, Value)>,
    /// Methods that take arguments (`Label "key"`).
    pub methods: Vec<(&'static str, Method)>,
    /// Data for the methods (labels), not visible as fields.
    pub hidden: Vec<(String, String)>,
    /// Whether `json` writes the fields sorted (docker's contexts marshal as maps).
    pub json_sorted: bool,
    /// A map with methods (docker's header context): an unknown field is `<no value>`.
    pub map_like: bool,
}

impl fmt::Debug for Struct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Struct")
            .field("type_name", &self.type_name)
            .field("fields", &self.fields)
            .finish()
    }
}

/// Go field names whose JSON key differs (Go name, JSON key), in the types docker's
/// templates run on.
const GO_NAMES: &[(&str, &str)] = &[("ID", "Id"), ("APIVersion", "ApiVersion")];

impl Struct {
    /// A struct of the named Go type with these fields.
    pub fn new(type_name: &str, fields: Vec<(String, Value)>) -> Self {
        Self {
            type_name: type_name.to_string(),
            fields,
            methods: Vec::new(),
            hidden: Vec::new(),
            json_sorted: false,
            map_like: false,
        }
    }

    /// A field's value, by its Go name: the few fields whose JSON key is not their Go
    /// name (`ID` is `"Id"`, `APIVersion` is `"ApiVersion"`) are found by the Go name
    /// only, as docker's templates see them.
    pub fn field(&self, name: &str) -> Option<&Value> {
        let find = |n: &str| self.fields.iter().find(|(k, _)| k == n).map(|(_, v)| v);
        if GO_NAMES.iter().any(|(_, json)| *json == name) {
            return None;
        }
        match GO_NAMES.iter().find(|(go, _)| *go == name) {
            Some((_, json)) => find(json).or_else(|| find(name)),
            None => find(name),
        }
    }

    /// A hidden value.
    pub fn hidden(&self, name: &str) -> Option<&str> {
        self.hidden
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A template value.
#[derive(Debug, Clone)]
pub enum Value {
    /// What a missing map key yields: prints `<no value>`.
    Missing,
    /// Go's `nil` of some kind.
    Nil(NilKind),
    /// A bool.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too big for `i64`.
    Uint(u64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A slice.
    List(Vec<Value>),
    /// A map with string keys, in the order given (printed and ranged sorted).
    Map(Vec<(String, Value)>),
    /// A struct.
    Struct(Rc<Struct>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<Struct> for Value {
    fn from(s: Struct) -> Self {
        Value::Struct(Rc::new(s))
    }
}

/// Keys whose JSON objects are Go maps in the Engine API types (the rest are structs),
/// and whose `null`s print as `map[]`.
const MAP_KEYS: &[&str] = &[
    "Labels",
    "Volumes",
    "ExposedPorts",
    "Ports",
    "PortBindings",
    "Networks",
    "Options",
    "DriverOpts",
    "Tmpfs",
    "Sysctls",
    "StorageOpt",
    "Annotations",
    "Data",
    "Config",
    "Status",
    "Runtimes",
    "Containers",
    "DriverOptions",
    "Plugins",
    "IndexConfigs",
    "Mirrors",
    "Attributes",
];

/// Keys whose `null` is a Go pointer or interface (`<nil>`); other `null`s are slices.
const POINTER_KEYS: &[&str] = &[
    "Health",
    "Healthcheck",
    "StopTimeout",
    "OomKillDisable",
    "PidsLimit",
    "MemorySwappiness",
    "Node",
    "State",
    "IPAMConfig",
    "Error",
    "NetworkingConfig",
    "HostConfig",
    "NetworkSettings",
    "Init",
    "UsageData",
    "Metadata",
    "Server",
    "Platform",
    "aux",
];

impl Value {
    /// A JSON document as Go sees the Engine API's typed answers: objects are structs
    /// (fields in the order given) except the known map fields; `null`s of the kind
    /// their key implies. `type_name` names the top-level struct in errors.
    pub fn typed_from_json(json: &str, type_name: &str) -> Result<Value, String> {
        let raw: Raw = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(raw.into_typed(None, type_name))
    }

    /// A JSON document as docker's raw fallback sees it: every object a map.
    pub fn raw_from_json(json: &str) -> Result<Value, String> {
        let raw: Raw = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(raw.into_raw())
    }

    /// Go's truth: false, 0, nil, empty string, slice or map are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil(_) => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Uint(n) => *n != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// Go's name of the value's type, for errors.
    pub fn type_name(&self) -> String {
        match self {
            Value::Missing => "<nil>".into(),
            Value::Nil(NilKind::Pointer) => "interface {}".into(),
            Value::Nil(NilKind::Slice) | Value::List(_) => "[]interface {}".into(),
            Value::Nil(NilKind::Map) | Value::Map(_) => "map[string]interface {}".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Uint(_) => "uint64".into(),
            Value::Float(_) => "float64".into(),
            Value::Str(_) => "string".into(),
            Value::Struct(s) => s.type_name.clone(),
        }
    }

    /// The value as `{{.}}` prints it (Go's `fmt.Print`).
    pub fn print(&self) -> String {
        let mut out = String::new();
        self.print_into(&mut out, true);
        out
    }

    fn print_into(&self, out: &mut String, top: bool) {
        match self {
            Value::Missing => out.push_str("<no value>"),
            Value::Nil(NilKind::Pointer) => out.push_str("<nil>"),
            Value::Nil(NilKind::Slice) => out.push_str("[]"),
            Value::Nil(NilKind::Map) => out.push_str("map[]"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::Uint(n) => out.push_str(&n.to_string()),
            Value::Float(f) => out.push_str(&super::printf::format_g(*f, -1, false)),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.print_into(out, false);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in sorted(m).into_iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.print_into(out, false);
                }
                out.push(']');
            }
            Value::Struct(s) => {
                // Go prints a pointer to a struct at the top as &{...}; docker's
                // contexts are pointers, inspect objects are not: {...} either way
                // for nested ones.
                let _ = top;
                out.push('{');
                for (i, (_, v)) in s.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.print_into(out, false);
                }
                out.push('}');
            }
        }
    }

    /// The value as Go's `encoding/json` writes it (no HTML escaping, as docker's
    /// `json` function sets it).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.json_into(&mut out);
        out
    }

    fn json_into(&self, out: &mut String) {
        match self {
            Value::Missing | Value::Nil(_) => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::Uint(n) => out.push_str(&n.to_string()),
            Value::Float(f) => out.push_str(&json_float(*f)),
            Value::Str(s) => json_string(s, out),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.json_into(out);
                }
                out.push(']');
            }
            Value::Map(m) => json_object(sorted(m).into_iter(), out),
            Value::Struct(s) => {
                if s.json_sorted {
                    let pairs: Vec<(&String, &Value)> =
                        s.fields.iter().map(|(k, v)| (k, v)).collect();
                    let mut pairs = pairs;
                    pairs.sort_by(|a, b| a.0.cmp(b.0));
                    json_object(pairs.into_iter(), out)
                } else {
                    json_object(s.fields.iter().map(|(k, v)| (k, v)), out)
                }
            }
        }
    }
}

fn json_object<'a>(pairs: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(k, out);
        out.push(':');
        v.json_into(out);
    }
    out.push('}');
}

/// A string as Go's encoder writes it with HTML escaping off.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as Go's encoder writes it: like `%g`'s shortest form, but plain
/// notation between 1e-6 and 1e21.
fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{f:e}");
        // Go writes e-07 as e-07 and e+21 as e+21.
        match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = match e.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', e),
                };
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        }
    } else if f.fract() == 0.0 && a < 1e21 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

/// A map's entries sorted by key, as Go prints and ranges maps.
pub fn sorted(m: &[(String, Value)]) -> Vec<(&String, &Value)> {
    let mut v: Vec<(&String, &Value)> = m.iter().map(|(k, v)| (k, v)).collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

fn number(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else if let Some(u) = n.as_u64() {
        Value::Uint(u)
    } else {
        Value::Float(n.as_f64().unwrap_or(0.0))
    }
}

/// JSON as parsed with object keys kept in document order.
enum Raw {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    List(Vec<Raw>),
    Obj(Vec<(String, Raw)>),
}

impl Raw {
    fn into_typed(self, key: Option<&str>, type_name: &str) -> Value {
        match self {
            Raw::Null => Value::Nil(match key {
                Some(k) if MAP_KEYS.contains(&k) => NilKind::Map,
                Some(k) if POINTER_KEYS.contains(&k) => NilKind::Pointer,
                None => NilKind::Pointer,
                _ => NilKind::Slice,
            }),
            Raw::Bool(b) => Value::Bool(b),
            Raw::Num(n) => number(&n),
            Raw::Str(s) => Value::Str(s),
            Raw::List(l) => Value::List(l.into_iter().map(|v| v.into_typed(None, "")).collect()),
            Raw::Obj(o) => {
                if key.is_some_and(|k| MAP_KEYS.contains(&k)) {
                    Value::Map(
                        o.into_iter()
                            .map(|(k, v)| {
                                let v = v.into_typed(Some(&k), "");
                                (k, v)
                            })
                            .collect(),
                    )
                } else {
                    let name = match key {
                        None if !type_name.is_empty() => type_name.to_string(),
                        Some(k) => format!("types.{k}"),
                        None => "struct".to_string(),
                    };
                    let fields = o
                        .into_iter()
                        .map(|(k, v)| {
                            let v = v.into_typed(Some(&k), "");
                            (k, v)
                        })
                        .collect();
                    Value::Struct(Rc::new(Struct::new(&name, fields)))
                }
            }
        }
    }

    fn into_raw(self) -> Value {
        match self {
            Raw::Null => Value::Nil(NilKind::Pointer),
            Raw::Bool(b) => Value::Bool(b),
            Raw::Num(n) => number(&n),
            Raw::Str(s) => Value::Str(s),
            Raw::List(l) => Value::List(l.into_iter().map(Raw::into_raw).collect()),
            Raw::Obj(o) => Value::Map(o.into_iter().map(|(k, v)| (k, v.into_raw())).collect()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Raw, E> {
                Ok(Raw::Num(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Raw, E> {
                Ok(Raw::Num(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Raw, E> {
                Ok(serde_json::Number::from_f64(n).map_or(Raw::Null, Raw::Num))
            }
            fn visit_str<E>(self, s: &str) -> Result<Raw, E> {
                Ok(Raw::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Raw, E> {
                Ok(Raw::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Raw::List(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
                let mut v: Vec<(String, Raw)> = Vec::new();
                while let Some((k, x)) = a.next_entry::<String, Raw>()? {
                    // A repeated key: the last wins, as Go's decoder.
                    v.retain(|(e, _)| e != &k);
                    v.push((k, x));
                }
                Ok(Raw::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}
