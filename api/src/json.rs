//! Request bodies decoded as dockerd decodes them with Go's `encoding/json`, so that a
//! client sees the same 400 for the same mistake:
//!
//! - the Content-Type must be `application/json` when there is a body;
//! - a malformed body is `invalid JSON: ...`, a cut-short one `invalid JSON: unexpected
//!   EOF`, and JSON followed by more is `unexpected content after JSON`;
//! - a value of the wrong JSON type for a field dockerd's struct declares is refused in
//!   Go's words (`json: cannot unmarshal string into Go struct field
//!   HostConfig.HostConfig.Memory of type int64`), an integer out of its Go type's range
//!   or with a fraction likewise (`number 1.5`);
//! - as in Go: unknown keys are ignored, keys match field names case-insensitively when
//!   no exact match exists (`{"image": ...}` works with dockerd), `null` leaves a field at
//!   its zero value, and a `null` element of a list or map is that element's zero value.
//!
//! Each request type declares its Go shape once, in the [`go_struct!`] that defines the
//! Rust struct, so the checks and the serde fields cannot drift apart. Decoding is a
//! check-and-normalise pass over a `serde_json::Value` followed by serde; bodies are
//! small, and the pass is what lets the errors carry Go's field paths.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The most a request body with JSON may hold (berthd answers 413 past it).
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// The JSON shape of a Go field, with the Go type names that go into the errors.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// `string` (and Go's string types: `NetworkMode`, `mount.Type`, ...).
    Str,
    /// `bool`.
    Bool,
    /// An integer of the named Go type (`int64`, `int`, `uint16`, `time.Duration`, ...)
    /// and its range.
    Int {
        /// Go's name.
        go: &'static str,
        /// Smallest value.
        min: i128,
        /// Largest value.
        max: i128,
    },
    /// `strslice.StrSlice`: a string or a list of strings (Go reports a bad one as its
    /// second try, a `string`).
    StrSlice,
    /// A slice of the given element type (Go's name of the slice).
    List(&'static str, &'static Ty),
    /// A fixed-size Go array (`[2]uint`): shorter input is padded with zeros, longer
    /// input is cut, as Go does.
    Array(&'static str, usize, &'static Ty),
    /// A map with string keys and the given value type.
    Map(&'static str, &'static Ty),
    /// `struct {}`: any object, its contents ignored.
    Empty,
    /// `interface{}`: anything.
    Any,
    /// A nested struct.
    Struct(&'static Schema),
    /// A Go slice, map or pointer in a list or map whose `null` stays `null` (an
    /// `Option` on the Rust side): `nat.PortMap`'s `"80/tcp": null`.
    Nullable(&'static Ty),
}

const fn int(go: &'static str, min: i128, max: i128) -> Ty {
    Ty::Int { go, min, max }
}

/// `int64`.
pub const I64: Ty = int("int64", i64::MIN as i128, i64::MAX as i128);
/// `int` (64 bits on the platforms dockerd runs on).
pub const INT: Ty = int("int", i64::MIN as i128, i64::MAX as i128);
/// `time.Duration` (nanoseconds).
pub const DURATION: Ty = int("time.Duration", i64::MIN as i128, i64::MAX as i128);
/// `uint16`.
pub const U16: Ty = int("uint16", 0, u16::MAX as i128);
/// `uint64`.
pub const U64: Ty = int("uint64", 0, u64::MAX as i128);
/// `uint`.
pub const UINT: Ty = int("uint", 0, u64::MAX as i128);
/// `os.FileMode` (a `uint32`).
pub const FILE_MODE: Ty = int("fs.FileMode", 0, u32::MAX as i128);
/// `[]string`.
pub const STRINGS: Ty = Ty::List("[]string", &Ty::Str);
/// `map[string]string`.
pub const STR_MAP: Ty = Ty::Map("map[string]string", &Ty::Str);
/// `[2]uint` (console sizes).
pub const CONSOLE_SIZE: Ty = Ty::Array("[2]uint", 2, &UINT);

/// A Go struct: its qualified name (`container.HostConfig`), its own fields (JSON name
/// and shape, in Go's order) and the structs it embeds (whose fields it promotes).
#[derive(Debug)]
pub struct Schema {
    /// Qualified Go name, as Go names it for a wrong top-level value.
    pub go: &'static str,
    /// Fields declared by the struct itself.
    pub fields: &'static [(&'static str, Ty)],
    /// Embedded structs.
    pub embeds: &'static [&'static Schema],
}

impl Schema {
    /// The unqualified name, as Go names it before a field path.
    pub fn name(&self) -> &'static str {
        self.go.rsplit('.').next().unwrap_or(self.go)
    }

    /// Every field, embedded ones first (as Go lays them out for these structs).
    pub fn all_fields(&self) -> Vec<(&'static str, Ty)> {
        let mut out: Vec<(&'static str, Ty)> = Vec::new();
        for e in self.embeds {
            out.extend(e.all_fields());
        }
        out.extend(self.fields.iter().copied());
        out
    }

    /// Whether `key` names a field exactly, or else case-insensitively (Go's fold): the
    /// field's own name.
    pub fn field_name(&self, key: &str) -> Option<&'static str> {
        let all = self.all_fields();
        all.iter()
            .find(|(n, _)| *n == key)
            .or_else(|| all.iter().find(|(n, _)| n.eq_ignore_ascii_case(key)))
            .map(|(n, _)| *n)
    }
}

/// A type decoded with Go's rules: [`go_struct!`] implements it.
pub trait GoStruct {
    /// Its Go shape.
    const SCHEMA: Schema;
}

/// Why a request body was refused: each is a 400 with this message, in dockerd's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A body with no media type.
    #[error("malformed Content-Type header ({0}): mime: no media type")]
    MalformedContentType(String),
    /// A body that is declared as something else than JSON.
    #[error("unsupported Content-Type header ({0}): must be 'application/json'")]
    UnsupportedContentType(String),
    /// No body where one is needed.
    #[error("invalid JSON: got EOF while reading request body")]
    Empty,
    /// JSON cut short.
    #[error("invalid JSON: unexpected EOF")]
    UnexpectedEof,
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// JSON followed by more than whitespace.
    #[error("unexpected content after JSON")]
    TrailingContent,
    /// A value of the wrong type, in Go's words.
    #[error("invalid JSON: {0}")]
    Type(String),
    /// A create body that sets no Config field.
    #[error("Config cannot be empty in order to create a container")]
    EmptyConfig,
}

/// Refuses a body whose Content-Type is not JSON (no Content-Type is fine without a
/// body), as dockerd's `CheckForJSON`.
pub fn check_content_type(ct: Option<&str>, has_body: bool) -> Result<(), DecodeError> {
    let Some(ct) = ct else {
        return if has_body {
            Err(DecodeError::MalformedContentType(String::new()))
        } else {
            Ok(())
        };
    };
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.is_empty() {
        if ct.is_empty() && !has_body {
            return Ok(());
        }
        return Err(DecodeError::MalformedContentType(ct.to_string()));
    }
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(DecodeError::UnsupportedContentType(ct.to_string()));
    }
    Ok(())
}

/// Parses one JSON value and refuses anything but whitespace after it.
pub fn parse(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut it = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    let v = match it.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) if e.is_eof() => return Err(DecodeError::UnexpectedEof),
        Some(Err(e)) => return Err(DecodeError::Syntax(e.to_string())),
        None => return Err(DecodeError::Empty),
    };
    let rest = &bytes[it.byte_offset()..];
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::TrailingContent);
    }
    Ok(v)
}

/// Go's word for a JSON value's kind.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn mismatch(v: &Value, st: &str, path: &str, go: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field {st}.{path} of type {go}",
        kind(v)
    )
}

/// The zero value Go leaves for a `null` element of this type.
fn zero(ty: &Ty) -> Value {
    match ty {
        Ty::Str => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::Int { .. } => Value::from(0),
        Ty::Struct(_) | Ty::Map(..) | Ty::Empty => Value::Object(Map::new()),
        Ty::List(..) | Ty::StrSlice => Value::Array(Vec::new()),
        Ty::Array(_, n, elem) => Value::Array(vec![zero(elem); *n]),
        Ty::Any | Ty::Nullable(_) => Value::Null,
    }
}

/// Checks `v` (the field at `path` in the struct named `st`) against `ty`, and
/// normalises it as Go would decode it.
fn check_value(v: &mut Value, ty: &Ty, st: &str, path: &str) -> Result<(), String> {
    match ty {
        Ty::Str if v.is_string() => Ok(()),
        Ty::Str => Err(mismatch(v, st, path, "string")),
        Ty::Bool if v.is_boolean() => Ok(()),
        Ty::Bool => Err(mismatch(v, st, path, "bool")),
        Ty::Int { go, min, max } => {
            if !v.is_number() {
                return Err(mismatch(v, st, path, go));
            }
            let n = v
                .as_i64()
                .map(i128::from)
                .or_else(|| v.as_u64().map(i128::from));
            match n {
                Some(n) if n >= *min && n <= *max => Ok(()),
                _ => Err(format!(
                    "json: cannot unmarshal number {v} into Go struct field {st}.{path} of type {go}"
                )),
            }
        }
        Ty::StrSlice => match v {
            Value::String(s) => {
                *v = Value::Array(vec![Value::String(std::mem::take(s))]);
                Ok(())
            }
            Value::Array(a) if a.iter().all(|x| x.is_string() || x.is_null()) => {
                for x in a.iter_mut().filter(|x| x.is_null()) {
                    *x = Value::String(String::new());
                }
                Ok(())
            }
            _ => Err(mismatch(v, st, path, "string")),
        },
        Ty::List(go, elem) => match v {
            Value::Array(a) => {
                for x in a.iter_mut() {
                    if x.is_null() {
                        *x = zero(elem);
                    } else {
                        check_value(x, elem, st, path)?;
                    }
                }
                Ok(())
            }
            _ => Err(mismatch(v, st, path, go)),
        },
        Ty::Array(go, n, elem) => match v {
            Value::Array(a) => {
                a.truncate(*n);
                for x in a.iter_mut() {
                    if x.is_null() {
                        *x = zero(elem);
                    } else {
                        check_value(x, elem, st, path)?;
                    }
                }
                while a.len() < *n {
                    a.push(zero(elem));
                }
                Ok(())
            }
            _ => Err(mismatch(v, st, path, go)),
        },
        Ty::Map(go, elem) => match v {
            Value::Object(m) => {
                for x in m.values_mut() {
                    if x.is_null() {
                        *x = zero(elem);
                    } else {
                        check_value(x, elem, st, path)?;
                    }
                }
                Ok(())
            }
            _ => Err(mismatch(v, st, path, go)),
        },
        Ty::Empty => match v {
            Value::Object(m) => {
                m.clear();
                Ok(())
            }
            _ => Err(mismatch(v, st, path, "struct {}")),
        },
        Ty::Any => Ok(()),
        Ty::Nullable(inner) => check_value(v, inner, st, path),
        Ty::Struct(s) => match v {
            Value::Object(_) => check_struct(v, s, &format!("{path}.")),
            _ => Err(mismatch(v, st, path, s.go)),
        },
    }
}

/// Checks and normalises an object decoded into the struct `s`; `prefix` is the field
/// path down to it (empty at the top).
fn check_struct(v: &mut Value, s: &Schema, prefix: &str) -> Result<(), String> {
    let Value::Object(obj) = v else {
        return Ok(());
    };
    // Keys that match a field only case-insensitively take the field's name (an exact
    // key wins over a folded one); keys that match nothing are dropped, as Go ignores
    // them.
    let keys: Vec<String> = obj.keys().cloned().collect();
    for k in keys {
        match s.field_name(&k) {
            Some(name) if name == k => {}
            Some(name) => {
                if let Some(val) = obj.remove(&k) {
                    if !obj.contains_key(name) {
                        obj.insert(name.to_string(), val);
                    }
                }
            }
            None => {
                obj.remove(&k);
            }
        }
    }
    for (name, ty) in s.all_fields() {
        let Some(val) = obj.get_mut(name) else {
            continue;
        };
        if val.is_null() {
            // Go leaves the field at its zero value: serde's default.
            obj.remove(name);
            continue;
        }
        check_value(val, &ty, s.name(), &format!("{prefix}{name}"))?;
    }
    Ok(())
}

/// Checks and normalises a whole body against a request struct, in Go's words.
pub fn check(v: &mut Value, s: &Schema) -> Result<(), String> {
    match v {
        Value::Object(_) => check_struct(v, s, ""),
        // Go decodes null into a struct as "nothing given".
        Value::Null => {
            *v = Value::Object(Map::new());
            Ok(())
        }
        other => Err(format!(
            "json: cannot unmarshal {} into Go value of type {}",
            kind(other),
            s.go
        )),
    }
}

/// Decodes a checked value (the second half of [`decode`]).
fn from_checked<T: DeserializeOwned>(v: Value) -> Result<T, DecodeError> {
    // The check leaves only values serde takes; an error here is a shape the schema
    // does not describe, reported rather than panicked on.
    serde_json::from_value(v).map_err(|e| DecodeError::Type(e.to_string()))
}

/// Decodes a body (already known to be there) into `T` with Go's rules.
pub fn decode<T: GoStruct + DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut v = parse(bytes)?;
    check(&mut v, &T::SCHEMA).map_err(DecodeError::Type)?;
    from_checked(v)
}

/// Decodes a request body as dockerd's handlers read one: its Content-Type checked,
/// `None` when there is no body (most endpoints take none), else `T`.
pub fn decode_body<T: GoStruct + DeserializeOwned>(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Option<T>, DecodeError> {
    check_content_type(content_type, !bytes.is_empty())?;
    if bytes.is_empty() {
        return Ok(None);
    }
    decode(bytes).map(Some)
}

/// As [`decode_body`], with no body (or `null`) read as the zero value.
pub fn decode_body_or_default<T: GoStruct + DeserializeOwned + Default>(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    Ok(decode_body(content_type, bytes)?.unwrap_or_default())
}

/// Defines a request struct once: the Rust struct (serde with Docker's JSON names,
/// every field defaulted, embedded Go structs flattened) and its [`GoStruct`] shape.
///
/// ```ignore
/// go_struct! {
///     /// Docs.
///     pub struct RestartPolicy = "container.RestartPolicy" {
///         /// Docs.
///         name: String = "Name": Ty::Str,
///         maximum_retry_count: i64 = "MaximumRetryCount": INT,
///     }
/// }
/// ```
#[macro_export]
macro_rules! go_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident = $go:literal
        $(embeds { $( $(#[$emeta:meta])* $efield:ident : $ety:ty ),* $(,)? })?
        {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty = $json:literal : $goty:expr
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $($(
                $(#[$emeta])*
                #[serde(flatten)]
                pub $efield: $ety,
            )*)?
            $(
                $(#[$fmeta])*
                #[serde(rename = $json)]
                pub $field: $ty,
            )*
        }

        impl $crate::json::GoStruct for $name {
            const SCHEMA: $crate::json::Schema = $crate::json::Schema {
                go: $go,
                fields: &[$(($json, $goty)),*],
                embeds: &[$($(&<$ety as $crate::json::GoStruct>::SCHEMA),*)?],
            };
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_and_trailing_content() {
        assert_eq!(parse(b"{\"a\": "), Err(DecodeError::UnexpectedEof));
        assert_eq!(
            DecodeError::UnexpectedEof.to_string(),
            "invalid JSON: unexpected EOF"
        );
        assert_eq!(parse(b"{} {}"), Err(DecodeError::TrailingContent));
        assert_eq!(
            DecodeError::TrailingContent.to_string(),
            "unexpected content after JSON"
        );
        assert!(parse(b"{}\n").is_ok());
        assert!(parse(b"nonsense")
            .unwrap_err()
            .to_string()
            .starts_with("invalid JSON: "));
        assert_eq!(parse(b"  "), Err(DecodeError::Empty));
        assert_eq!(parse(b""), Err(DecodeError::Empty));
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/json; charset=utf-8"), true).is_ok());
        assert!(check_content_type(Some("Application/JSON"), true).is_ok());
        assert!(check_content_type(None, false).is_ok());
        assert!(check_content_type(Some(""), false).is_ok());
        assert_eq!(
            check_content_type(Some("text/plain"), true)
                .unwrap_err()
                .to_string(),
            "unsupported Content-Type header (text/plain): must be 'application/json'"
        );
        assert_eq!(
            check_content_type(None, true).unwrap_err().to_string(),
            "malformed Content-Type header (): mime: no media type"
        );
    }
}
