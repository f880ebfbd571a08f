//! Bad requests sent raw over berthd's unix socket, answered as dockerd (API 1.43)
//! answers them: 400 `{"message": "invalid JSON: ..."}` for a malformed body or a
//! value of the wrong type (named as Go names the field), 400 for a body that is not
//! JSON, dockerd's own messages for empty bodies, 400 for API versions out of range,
//! and 404 `{"message":"page not found"}` for unknown paths and methods. Nothing
//! half-made is left behind.

mod containers_support;

use containers_support::Berthd;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A response: status, Content-Type, body.
struct Resp {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or("").to_string()
    }
}

/// Decodes a chunked body.
fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 || raw.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[(eol + 4 + size).min(raw.len())..];
    }
}

/// One HTTP/1.1 request over the socket, with `content_type` when given and the body
/// when given (no Content-Length at all without one).
fn request(
    d: &Berthd,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> Resp {
    let mut s = UnixStream::connect(&d.socket).expect("connect berthd");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("send head");
    if let Some(b) = body {
        s.write_all(b).expect("send body");
    }
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let mut content_type = String::new();
    let mut chunked = false;
    for (k, v) in lines.filter_map(|l| l.split_once(':')) {
        if k.eq_ignore_ascii_case("content-type") {
            content_type = v.trim().to_string();
        }
        if k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked") {
            chunked = true;
        }
    }
    let rest = &raw[split + 4..];
    Resp {
        status,
        content_type,
        body: if chunked {
            unchunk(rest)
        } else {
            rest.to_vec()
        },
    }
}

const JSON: Option<&str> = Some("application/json");

/// POSTs `body` as JSON.
fn post(d: &Berthd, path: &str, body: &str) -> Resp {
    request(d, "POST", path, JSON, Some(body.as_bytes()))
}

/// Asserts a 400 whose message is `want` (or, with a trailing `*`, starts with it).
#[track_caller]
fn bad(r: Resp, want: &str) {
    assert_eq!(
        r.status,
        400,
        "want 400 {want:?}, got {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.content_type, "application/json");
    let m = r.message();
    match want.strip_suffix('*') {
        Some(prefix) => assert!(m.starts_with(prefix), "{m:?} should start with {prefix:?}"),
        None => assert_eq!(m, want),
    }
}

fn count_containers(d: &Berthd) -> usize {
    d.ok(&["ps", "-aq"]).lines().count()
}

fn count_volumes(d: &Berthd) -> usize {
    d.ok(&["volume", "ls", "-q"]).lines().count()
}

#[test]
fn malformed_and_mistyped_bodies_are_400_naming_the_problem() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "--network",
        "none",
        "busybox:test",
        "sleep",
        "300",
    ]);
    let exec = post(&d, "/v1.43/containers/live/exec", r#"{"Cmd":["true"]}"#);
    assert_eq!(exec.status, 201, "{}", String::from_utf8_lossy(&exec.body));
    let exec_id = exec.json()["Id"].as_str().unwrap().to_string();
    let (containers, volumes) = (count_containers(&d), count_volumes(&d));

    let endpoints = [
        "/v1.43/containers/create".to_string(),
        "/v1.43/containers/live/update".to_string(),
        "/v1.43/containers/live/exec".to_string(),
        format!("/v1.43/exec/{exec_id}/start"),
        "/v1.43/volumes/create".to_string(),
    ];
    for path in &endpoints {
        // Cut short, not JSON at all, and JSON followed by more.
        bad(
            post(&d, path, r#"{"Image": "#),
            "invalid JSON: unexpected EOF",
        );
        bad(post(&d, path, "nonsense"), "invalid JSON: *");
        bad(
            post(&d, path, r#"{"Image":"busybox:test"} {}"#),
            "unexpected content after JSON",
        );
        // A body that is not declared JSON.
        bad(
            request(&d, "POST", path, Some("text/plain"), Some(b"{}")),
            "unsupported Content-Type header (text/plain): must be 'application/json'",
        );
        // Not an object.
        bad(
            post(&d, path, "[1]"),
            "invalid JSON: json: cannot unmarshal array into Go value of type *",
        );
    }

    // Wrong JSON types, named as dockerd (Go's encoding/json) names them.
    let create = "/v1.43/containers/create";
    bad(
        post(&d, create, r#"{"Image":"busybox:test","Cmd":5}"#),
        "invalid JSON: json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Cmd of type string",
    );
    bad(
        post(
            &d,
            create,
            r#"{"Image":"busybox:test","HostConfig":{"NetworkMode":"none","Memory":"lots"}}"#,
        ),
        "invalid JSON: json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64",
    );
    bad(
        post(&d, create, r#"{"Image":"busybox:test","Env":"A=1"}"#),
        "invalid JSON: json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Env of type []string",
    );
    bad(
        post(&d, create, r#"{"Image":"busybox:test","Tty":"yes"}"#),
        "invalid JSON: json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Tty of type bool",
    );
    bad(
        post(
            &d,
            create,
            r#"{"Image":"busybox:test","Healthcheck":{"Interval":"1s"}}"#,
        ),
        "invalid JSON: json: cannot unmarshal string into Go struct field HealthConfig.Healthcheck.Interval of type time.Duration",
    );
    bad(
        post(
            &d,
            create,
            r#"{"Image":"busybox:test","HostConfig":{"Mounts":[{"Type":"tmpfs","Target":5}]}}"#,
        ),
        "invalid JSON: json: cannot unmarshal number into Go struct field Mount.HostConfig.Mounts.Target of type string",
    );
    bad(
        post(&d, create, r#"{"Image":"busybox:test","StopTimeout":1.5}"#),
        "invalid JSON: json: cannot unmarshal number 1.5 into Go struct field ContainerConfigWrapper.StopTimeout of type int",
    );
    bad(
        post(&d, "/v1.43/containers/live/update", r#"{"Memory":"lots"}"#),
        "invalid JSON: json: cannot unmarshal string into Go struct field UpdateConfig.Memory of type int64",
    );
    bad(
        post(&d, "/v1.43/containers/live/exec", r#"{"Cmd":"ls"}"#),
        "invalid JSON: json: cannot unmarshal string into Go struct field ExecConfig.Cmd of type []string",
    );
    bad(
        post(&d, &format!("/v1.43/exec/{exec_id}/start"), r#"{"Detach":"x"}"#),
        "invalid JSON: json: cannot unmarshal string into Go struct field ExecStartCheck.Detach of type bool",
    );
    bad(
        post(&d, "/v1.43/volumes/create", r#"{"Name":5}"#),
        "invalid JSON: json: cannot unmarshal number into Go struct field VolumeCreateBody.Name of type string",
    );
    bad(
        post(&d, "/v1.43/volumes/create", r#"{"Labels":{"a":1}}"#),
        "invalid JSON: json: cannot unmarshal number into Go struct field VolumeCreateBody.Labels of type string",
    );
    // The body is read before the container or exec is looked up, as dockerd does.
    bad(
        post(&d, "/v1.43/containers/nope/exec", "{"),
        "invalid JSON: unexpected EOF",
    );
    bad(
        post(&d, "/v1.43/exec/nope/start", "{"),
        "invalid JSON: unexpected EOF",
    );

    // Nothing was made, nothing was changed, and what runs still runs.
    assert_eq!(count_containers(&d), containers);
    assert_eq!(count_volumes(&d), volumes);
    assert_eq!(d.inspect("live", "{{.State.Status}}"), "running");
    assert_eq!(d.inspect("live", "{{.HostConfig.Memory}}"), "0");
}

#[test]
fn empty_bodies_versions_and_unknown_paths() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "live",
        "--network",
        "none",
        "busybox:test",
        "sleep",
        "300",
    ]);
    let (containers, volumes) = (count_containers(&d), count_volumes(&d));

    // create needs a body, with some Config in it.
    let create = "/v1.43/containers/create";
    bad(
        request(&d, "POST", create, None, None),
        "invalid JSON: got EOF while reading request body",
    );
    bad(
        request(&d, "POST", create, JSON, Some(b"")),
        "invalid JSON: got EOF while reading request body",
    );
    for body in ["{}", "null", r#"{"HostConfig":{"NetworkMode":"none"}}"#] {
        bad(
            post(&d, create, body),
            "Config cannot be empty in order to create a container",
        );
    }
    assert_eq!(count_containers(&d), containers);
    // exec: the command is checked first.
    bad(
        request(&d, "POST", "/v1.43/containers/live/exec", None, None),
        "No exec command specified",
    );
    bad(
        post(&d, "/v1.43/containers/nope/exec", r#"{"Cmd":[]}"#),
        "No exec command specified",
    );
    let r = post(&d, "/v1.43/containers/nope/exec", r#"{"Cmd":["true"]}"#);
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), "No such container: nope");
    // update and volume create take no body.
    let r = request(&d, "POST", "/v1.43/containers/live/update", None, None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = request(&d, "POST", "/v1.43/volumes/create", None, None);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(count_volumes(&d), volumes + 1);
    // A declared JSON type with parameters is JSON.
    let r = request(
        &d,
        "POST",
        "/v1.43/volumes/create",
        Some("application/json; charset=utf-8"),
        Some(br#"{"Name":"typed"}"#),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // A body without any Content-Type is refused, as dockerd refuses it.
    bad(
        request(
            &d,
            "POST",
            "/v1.43/volumes/create",
            None,
            Some(br#"{"Name":"untyped"}"#),
        ),
        "malformed Content-Type header (): *",
    );

    // API versions out of range.
    bad(
        request(&d, "GET", "/v9.99/containers/json", None, None),
        "client version 9.99 is too new. Maximum supported API version is 1.43",
    );
    bad(
        request(&d, "GET", "/v1.1/containers/json", None, None),
        "client version 1.1 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version",
    );
    // Unknown paths, and known paths with a method they do not have.
    for (method, path) in [
        ("GET", "/v1.43/nosuch"),
        ("GET", "/nosuch"),
        ("GET", "/vabc/containers/json"),
        ("POST", "/v1.43/containers/live/bogus"),
        ("GET", "/v1.43/containers/create"),
        ("PUT", "/v1.43/containers/live/start"),
    ] {
        let r = request(&d, method, path, None, None);
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(r.content_type, "application/json", "{method} {path}");
        assert_eq!(r.message(), "page not found", "{method} {path}");
    }
    // A good request still works after all that.
    let r = request(&d, "GET", "/v1.43/containers/live/json", None, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["State"]["Status"], "running");
}
