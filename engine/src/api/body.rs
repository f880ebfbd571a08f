//! JSON request bodies read as dockerd (API 1.43) reads them: the Content-Type must be
//! `application/json` when there is a body, a malformed or trailing-garbage body is a
//! 400 `invalid JSON: ...`, and a value of the wrong JSON type for a known field is a
//! 400 naming the field in Go's words (`json: cannot unmarshal number into Go struct
//! field ContainerConfigWrapper.Cmd of type string`), as clients already know them.
//! The checks only look at the fields dockerd's structs declare; unknown keys pass, as
//! Go's decoder lets them.

use super::{ApiError, ApiResult};
use axum::extract::Request;
use axum::http::header;
use serde_json::Value;

/// The JSON type a field of a dockerd request struct has.
#[derive(Clone, Copy)]
pub enum Ty {
    /// `string`.
    Str,
    /// `bool`.
    Bool,
    /// An integer of this Go type (`int64`, `time.Duration`, ...).
    Int(&'static str),
    /// `strslice.StrSlice`: a string or a list of strings.
    StrSlice,
    /// `[]string`.
    Strings,
    /// `map[string]string`.
    StrMap,
    /// Any object (a set or map whose values are not checked), of this Go type.
    Object(&'static str),
    /// A list of this Go type whose elements have the given type.
    List(&'static str, &'static Ty),
    /// A nested struct.
    Struct(&'static Schema),
}

/// A dockerd request struct: its Go names and its fields (in groups, for embedded
/// structs such as `Resources`).
pub struct Schema {
    /// Qualified Go type, as Go names it for a wrong top-level value.
    pub go: &'static str,
    /// Unqualified Go type, as Go names it before a field path.
    pub name: &'static str,
    /// Field groups.
    pub fields: &'static [&'static [(&'static str, Ty)]],
}

const I64: Ty = Ty::Int("int64");
const DURATION: Ty = Ty::Int("time.Duration");

const HEALTH: Schema = Schema {
    go: "container.HealthConfig",
    name: "HealthConfig",
    fields: &[&[
        ("Test", Ty::Strings),
        ("Interval", DURATION),
        ("Timeout", DURATION),
        ("StartPeriod", DURATION),
        ("StartInterval", DURATION),
        ("Retries", Ty::Int("int")),
    ]],
};

const CONFIG: &[(&str, Ty)] = &[
    ("Hostname", Ty::Str),
    ("Domainname", Ty::Str),
    ("User", Ty::Str),
    ("AttachStdin", Ty::Bool),
    ("AttachStdout", Ty::Bool),
    ("AttachStderr", Ty::Bool),
    ("ExposedPorts", Ty::Object("nat.PortSet")),
    ("Tty", Ty::Bool),
    ("OpenStdin", Ty::Bool),
    ("StdinOnce", Ty::Bool),
    ("Env", Ty::Strings),
    ("Cmd", Ty::StrSlice),
    ("Healthcheck", Ty::Struct(&HEALTH)),
    ("ArgsEscaped", Ty::Bool),
    ("Image", Ty::Str),
    ("Volumes", Ty::Object("map[string]struct {}")),
    ("WorkingDir", Ty::Str),
    ("Entrypoint", Ty::StrSlice),
    ("NetworkDisabled", Ty::Bool),
    ("MacAddress", Ty::Str),
    ("OnBuild", Ty::Strings),
    ("Labels", Ty::StrMap),
    ("StopSignal", Ty::Str),
    ("StopTimeout", Ty::Int("int")),
    ("Shell", Ty::StrSlice),
];

const DEVICE: Schema = Schema {
    go: "container.DeviceMapping",
    name: "DeviceMapping",
    fields: &[&[
        ("PathOnHost", Ty::Str),
        ("PathInContainer", Ty::Str),
        ("CgroupPermissions", Ty::Str),
    ]],
};

const ULIMIT: Schema = Schema {
    go: "units.Ulimit",
    name: "Ulimit",
    fields: &[&[("Name", Ty::Str), ("Hard", I64), ("Soft", I64)]],
};

const RESOURCES: &[(&str, Ty)] = &[
    ("CpuShares", I64),
    ("Memory", I64),
    ("NanoCpus", I64),
    ("CgroupParent", Ty::Str),
    ("BlkioWeight", Ty::Int("uint16")),
    ("CpuPeriod", I64),
    ("CpuQuota", I64),
    ("CpuRealtimePeriod", I64),
    ("CpuRealtimeRuntime", I64),
    ("CpusetCpus", Ty::Str),
    ("CpusetMems", Ty::Str),
    (
        "Devices",
        Ty::List("[]container.DeviceMapping", &Ty::Struct(&DEVICE)),
    ),
    ("DeviceCgroupRules", Ty::Strings),
    ("KernelMemory", I64),
    ("KernelMemoryTCP", I64),
    ("MemoryReservation", I64),
    ("MemorySwap", I64),
    ("MemorySwappiness", I64),
    ("OomKillDisable", Ty::Bool),
    ("PidsLimit", I64),
    ("Ulimits", Ty::List("[]*units.Ulimit", &Ty::Struct(&ULIMIT))),
    ("CpuCount", I64),
    ("CpuPercent", I64),
];

const RESTART: Schema = Schema {
    go: "container.RestartPolicy",
    name: "RestartPolicy",
    fields: &[&[("Name", Ty::Str), ("MaximumRetryCount", Ty::Int("int"))]],
};

const LOG_CONFIG: Schema = Schema {
    go: "container.LogConfig",
    name: "LogConfig",
    fields: &[&[("Type", Ty::Str), ("Config", Ty::StrMap)]],
};

const TMPFS_OPTIONS: Schema = Schema {
    go: "mount.TmpfsOptions",
    name: "TmpfsOptions",
    fields: &[&[("SizeBytes", I64), ("Mode", Ty::Int("fs.FileMode"))]],
};

const VOLUME_OPTIONS: Schema = Schema {
    go: "mount.VolumeOptions",
    name: "VolumeOptions",
    fields: &[&[("NoCopy", Ty::Bool), ("Labels", Ty::StrMap)]],
};

const MOUNT: Schema = Schema {
    go: "mount.Mount",
    name: "Mount",
    fields: &[&[
        ("Type", Ty::Str),
        ("Source", Ty::Str),
        ("Target", Ty::Str),
        ("ReadOnly", Ty::Bool),
        ("Consistency", Ty::Str),
        ("BindOptions", Ty::Object("mount.BindOptions")),
        ("VolumeOptions", Ty::Struct(&VOLUME_OPTIONS)),
        ("TmpfsOptions", Ty::Struct(&TMPFS_OPTIONS)),
    ]],
};

const CONSOLE_SIZE: Ty = Ty::List("[2]uint", &Ty::Int("uint"));

const HOST_CONFIG: Schema = Schema {
    go: "container.HostConfig",
    name: "HostConfig",
    fields: &[
        &[
            ("Binds", Ty::Strings),
            ("ContainerIDFile", Ty::Str),
            ("LogConfig", Ty::Struct(&LOG_CONFIG)),
            ("NetworkMode", Ty::Str),
            ("PortBindings", Ty::Object("nat.PortMap")),
            ("RestartPolicy", Ty::Struct(&RESTART)),
            ("AutoRemove", Ty::Bool),
            ("VolumeDriver", Ty::Str),
            ("VolumesFrom", Ty::Strings),
            ("ConsoleSize", CONSOLE_SIZE),
            ("Annotations", Ty::StrMap),
            ("CapAdd", Ty::StrSlice),
            ("CapDrop", Ty::StrSlice),
            ("CgroupnsMode", Ty::Str),
            ("Dns", Ty::Strings),
            ("DnsOptions", Ty::Strings),
            ("DnsSearch", Ty::Strings),
            ("ExtraHosts", Ty::Strings),
            ("GroupAdd", Ty::Strings),
            ("IpcMode", Ty::Str),
            ("Cgroup", Ty::Str),
            ("Links", Ty::Strings),
            ("OomScoreAdj", Ty::Int("int")),
            ("PidMode", Ty::Str),
            ("Privileged", Ty::Bool),
            ("PublishAllPorts", Ty::Bool),
            ("ReadonlyRootfs", Ty::Bool),
            ("SecurityOpt", Ty::Strings),
            ("StorageOpt", Ty::StrMap),
            ("Tmpfs", Ty::StrMap),
            ("UTSMode", Ty::Str),
            ("UsernsMode", Ty::Str),
            ("ShmSize", I64),
            ("Sysctls", Ty::StrMap),
            ("Runtime", Ty::Str),
            ("Isolation", Ty::Str),
            ("Mounts", Ty::List("[]mount.Mount", &Ty::Struct(&MOUNT))),
            ("MaskedPaths", Ty::Strings),
            ("ReadonlyPaths", Ty::Strings),
            ("Init", Ty::Bool),
        ],
        RESOURCES,
    ],
};

/// `POST /containers/create`.
pub const CREATE: Schema = Schema {
    go: "runconfig.ContainerConfigWrapper",
    name: "ContainerConfigWrapper",
    fields: &[
        CONFIG,
        &[
            ("HostConfig", Ty::Struct(&HOST_CONFIG)),
            ("NetworkingConfig", Ty::Object("network.NetworkingConfig")),
        ],
    ],
};

/// `POST /containers/{id}/update`.
pub const UPDATE: Schema = Schema {
    go: "container.UpdateConfig",
    name: "UpdateConfig",
    fields: &[RESOURCES, &[("RestartPolicy", Ty::Struct(&RESTART))]],
};

/// `POST /containers/{id}/exec`.
pub const EXEC: Schema = Schema {
    go: "types.ExecConfig",
    name: "ExecConfig",
    fields: &[&[
        ("User", Ty::Str),
        ("Privileged", Ty::Bool),
        ("Tty", Ty::Bool),
        ("ConsoleSize", CONSOLE_SIZE),
        ("AttachStdin", Ty::Bool),
        ("AttachStderr", Ty::Bool),
        ("AttachStdout", Ty::Bool),
        ("Detach", Ty::Bool),
        ("DetachKeys", Ty::Str),
        ("Env", Ty::Strings),
        ("WorkingDir", Ty::Str),
        ("Cmd", Ty::Strings),
    ]],
};

/// `POST /exec/{id}/start`.
pub const EXEC_START: Schema = Schema {
    go: "types.ExecStartCheck",
    name: "ExecStartCheck",
    fields: &[&[
        ("Detach", Ty::Bool),
        ("Tty", Ty::Bool),
        ("ConsoleSize", CONSOLE_SIZE),
    ]],
};

/// `POST /volumes/create`.
pub const VOLUME_CREATE: Schema = Schema {
    go: "volume.VolumeCreateBody",
    name: "VolumeCreateBody",
    fields: &[&[
        ("Name", Ty::Str),
        ("Driver", Ty::Str),
        ("DriverOpts", Ty::StrMap),
        ("Labels", Ty::StrMap),
    ]],
};

/// Go's word for a JSON value's kind (`number 1.5` for a fraction where an integer
/// belongs, as Go says it).
fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

fn mismatch(v: &Value, st: &str, path: &str, ty: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field {st}.{path} of type {ty}",
        kind(v)
    )
}

/// Checks `v` (at `path`, inside the struct named `st`) against `ty`.
fn check(v: &Value, ty: &Ty, st: &str, path: &str) -> Result<(), String> {
    // As Go: null leaves any field at its zero value.
    if v.is_null() {
        return Ok(());
    }
    let ok = match ty {
        Ty::Str => v.is_string(),
        Ty::Bool => v.is_boolean(),
        Ty::Int(go) => {
            if !v.is_number() {
                return Err(mismatch(v, st, path, go));
            }
            if v.as_i64().is_none() && v.as_u64().is_none() {
                return Err(format!(
                    "json: cannot unmarshal number {v} into Go struct field {st}.{path} of type {go}"
                ));
            }
            true
        }
        Ty::StrSlice => match v {
            Value::String(_) => true,
            Value::Array(a) => a.iter().all(Value::is_string),
            _ => false,
        },
        Ty::Strings => match v {
            Value::Array(a) => {
                for x in a {
                    check(x, &Ty::Str, st, path)?;
                }
                true
            }
            _ => return Err(mismatch(v, st, path, "[]string")),
        },
        Ty::StrMap => match v {
            Value::Object(m) => {
                for x in m.values() {
                    check(x, &Ty::Str, st, path)?;
                }
                true
            }
            _ => return Err(mismatch(v, st, path, "map[string]string")),
        },
        Ty::Object(go) => {
            if !v.is_object() {
                return Err(mismatch(v, st, path, go));
            }
            true
        }
        Ty::List(go, elem) => match v {
            Value::Array(a) => {
                for x in a {
                    check(x, elem, st, path)?;
                }
                true
            }
            _ => return Err(mismatch(v, st, path, go)),
        },
        Ty::Struct(s) => match v {
            Value::Object(_) => return check_fields(v, s, &format!("{path}.")),
            _ => return Err(mismatch(v, st, path, s.go)),
        },
    };
    if ok {
        Ok(())
    } else {
        // A StrSlice that is neither is reported as its last try, a string.
        let go = match ty {
            Ty::Str | Ty::StrSlice => "string",
            Ty::Bool => "bool",
            _ => "value",
        };
        Err(mismatch(v, st, path, go))
    }
}

fn check_fields(v: &Value, s: &Schema, prefix: &str) -> Result<(), String> {
    for group in s.fields {
        for (name, ty) in group.iter() {
            check(&v[*name], ty, s.name, &format!("{prefix}{name}"))?;
        }
    }
    Ok(())
}

/// Checks a whole body against a request struct.
pub fn validate(v: &Value, s: &Schema) -> Result<(), String> {
    match v {
        Value::Object(_) => check_fields(v, s, ""),
        // Go decodes null into a struct as "nothing given".
        Value::Null => Ok(()),
        other => Err(format!(
            "json: cannot unmarshal {} into Go value of type {}",
            kind(other),
            s.go
        )),
    }
}

/// Whether a create body sets any Config field: without one, Go leaves the embedded
/// Config nil and dockerd answers "Config cannot be empty".
pub fn has_config(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| CONFIG.iter().any(|(k, _)| o.contains_key(*k)))
}

/// Refuses a body whose Content-Type is not JSON (no Content-Type is fine without a
/// body), as dockerd's `CheckForJSON`.
fn check_content_type(ct: Option<&str>, has_body: bool) -> ApiResult<()> {
    let Some(ct) = ct else {
        if has_body {
            return Err(ApiError::bad_request(
                "malformed Content-Type header (): mime: no media type",
            ));
        }
        return Ok(());
    };
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.is_empty() {
        if ct.is_empty() && !has_body {
            return Ok(());
        }
        return Err(ApiError::bad_request(format!(
            "malformed Content-Type header ({ct}): mime: no media type"
        )));
    }
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::bad_request(format!(
            "unsupported Content-Type header ({ct}): must be 'application/json'"
        )));
    }
    Ok(())
}

/// Parses one JSON value and refuses anything but whitespace after it.
pub fn parse(bytes: &[u8]) -> ApiResult<Value> {
    let mut it = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    let v = match it.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) if e.is_eof() => {
            return Err(ApiError::bad_request("invalid JSON: unexpected EOF"))
        }
        Some(Err(e)) => return Err(ApiError::bad_request(format!("invalid JSON: {e}"))),
        None => {
            return Err(ApiError::bad_request(
                "invalid JSON: got EOF while reading request body",
            ))
        }
    };
    let rest = &bytes[it.byte_offset()..];
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("unexpected content after JSON"));
    }
    Ok(v)
}

/// The largest JSON body read.
pub const LIMIT: usize = 16 << 20;

/// How much of an over-long body is read (and dropped) before the refusal is sent:
/// answering while the client still writes would reset its connection instead.
const DRAIN_LIMIT: usize = 1 << 30;

/// A request body of at most `limit` bytes; a longer one is a 413, sent once the rest
/// of it has been read (up to `DRAIN_LIMIT`), so the client sees the answer.
pub async fn collect(body: axum::body::Body, limit: usize) -> ApiResult<bytes::Bytes> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > limit {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large: more than {limit} bytes"),
        ));
    }
    Ok(buf.freeze())
}

/// As [`read`], with no body (or `null`) read as `{}`.
pub async fn read_or_empty(req: Request, schema: &Schema) -> ApiResult<Value> {
    Ok(read(req, schema)
        .await?
        .filter(|v| !v.is_null())
        .unwrap_or_else(|| serde_json::json!({})))
}

/// Reads a JSON request body checked against `schema`: `None` when there is no body
/// (dockerd lets most endpoints take none).
pub async fn read(req: Request, schema: &Schema) -> ApiResult<Option<Value>> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?").to_string());
    let bytes = collect(req.into_body(), LIMIT).await?;
    check_content_type(ct.as_deref(), !bytes.is_empty())?;
    if bytes.is_empty() {
        return Ok(None);
    }
    let v = parse(&bytes)?;
    validate(&v, schema).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_named_as_go_names_them() {
        let e = validate(&json!({"Image": "x", "Cmd": 5}), &CREATE).unwrap_err();
        assert_eq!(
            e,
            "json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Cmd of type string"
        );
        let e = validate(&json!({"HostConfig": {"Memory": "lots"}}), &CREATE).unwrap_err();
        assert_eq!(
            e,
            "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64"
        );
        let e = validate(&json!({"HostConfig": {"Memory": 1.5}}), &CREATE).unwrap_err();
        assert!(e.contains("number 1.5"), "{e}");
        let e = validate(
            &json!({"HostConfig": {"RestartPolicy": {"Name": 5}}}),
            &CREATE,
        )
        .unwrap_err();
        assert!(
            e.ends_with("RestartPolicy.HostConfig.RestartPolicy.Name of type string"),
            "{e}"
        );
        let e = validate(&json!({"Labels": {"a": 1}}), &CREATE).unwrap_err();
        assert!(
            e.ends_with("ContainerConfigWrapper.Labels of type string"),
            "{e}"
        );
        let e = validate(&json!([1]), &EXEC).unwrap_err();
        assert_eq!(
            e,
            "json: cannot unmarshal array into Go value of type types.ExecConfig"
        );
        let e = validate(&json!({"Cmd": "ls"}), &EXEC).unwrap_err();
        assert!(e.ends_with("ExecConfig.Cmd of type []string"), "{e}");
        let e = validate(&json!({"HostConfig": {"Mounts": [{"Target": 5}]}}), &CREATE).unwrap_err();
        assert!(
            e.ends_with("Mount.HostConfig.Mounts.Target of type string"),
            "{e}"
        );
        assert!(validate(&json!({"Cmd": "echo hi", "Env": null}), &CREATE).is_ok());
        assert!(validate(&json!(null), &UPDATE).is_ok());
    }

    #[test]
    fn syntax_and_trailing_content() {
        assert_eq!(
            parse(b"{\"a\": ").unwrap_err().message,
            "invalid JSON: unexpected EOF"
        );
        assert_eq!(
            parse(b"{} {}").unwrap_err().message,
            "unexpected content after JSON"
        );
        assert!(parse(b"{}\n").is_ok());
        assert!(parse(b"nonsense")
            .unwrap_err()
            .message
            .starts_with("invalid JSON: "));
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(Some("application/json; charset=utf-8"), true).is_ok());
        assert!(check_content_type(None, false).is_ok());
        assert_eq!(
            check_content_type(Some("text/plain"), true)
                .unwrap_err()
                .message,
            "unsupported Content-Type header (text/plain): must be 'application/json'"
        );
        assert!(check_content_type(None, true).is_err());
    }
}
