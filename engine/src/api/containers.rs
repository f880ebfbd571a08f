//! `/containers/...` and `/exec/...`: create, start, attach (hijacked streams), wait,
//! logs, stop, kill, restart, resize, delete, inspect, list, and exec.

use super::{query_bool, query_get, query_pairs, ApiError, ApiResult, AppState};
use crate::containers::io::{frame, Chunk, LogReader};
use crate::containers::{ContainerService, Entry, Error, Exec};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::NotModified(_) => StatusCode::NOT_MODIFIED,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// `POST /containers/create`.
pub async fn create(State(st): State<AppState>, uri: Uri, req: Request) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    // As dockerd: a create needs a body, and one with some Config field in it.
    let body = super::body::read(req, &super::body::CREATE)
        .await?
        .ok_or_else(|| ApiError::bad_request("invalid JSON: got EOF while reading request body"))?;
    if !super::body::has_config(&body) {
        return Err(ApiError::bad_request(
            "Config cannot be empty in order to create a container",
        ));
    }
    let (id, warnings) = st.containers.create(query_get(&q, "name"), &body)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"Id": id, "Warnings": warnings})),
    )
        .into_response())
}

fn human(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86400),
    }
}

fn ago(t: &str) -> i64 {
    chrono::Utc::now().timestamp() - crate::images::unix_time(t)
}

fn status_text(e: &Entry) -> String {
    let r = e.record();
    match r.state.status.as_str() {
        "running" => match r.state.health.as_ref().map(|h| h.status.as_str()) {
            // As dockerd: "(health: starting)", "(healthy)", "(unhealthy)".
            Some(s) if s == crate::containers::health::STARTING => {
                format!("Up {} (health: starting)", human(ago(&r.state.started_at)))
            }
            Some(s) if !s.is_empty() => format!("Up {} ({s})", human(ago(&r.state.started_at))),
            _ => format!("Up {}", human(ago(&r.state.started_at))),
        },
        "exited" => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            human(ago(&r.state.finished_at))
        ),
        "created" => "Created".into(),
        "paused" => format!("Up {} (Paused)", human(ago(&r.state.started_at))),
        other => other.to_string(),
    }
}

fn zero_time(t: &str) -> &str {
    if t.is_empty() {
        "0001-01-01T00:00:00Z"
    } else {
        t
    }
}

fn inspect(st: &AppState, e: &Entry) -> Value {
    let r = e.record();
    let dir = st.containers.dir(&r.id);
    let net = r.host_config["NetworkMode"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    let ids = st.containers.exec_ids(&r.id);
    let exec_ids = if ids.is_empty() {
        Value::Null
    } else {
        json!(ids)
    };
    let mut networks = serde_json::Map::new();
    networks.insert(net, json!({"NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}));
    let mut v = json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": {
            "Status": r.state.status,
            "Running": r.state.status == "running" || r.state.status == "paused",
            "Paused": r.state.status == "paused",
            "Restarting": false,
            "OOMKilled": false,
            "Dead": false,
            "Pid": r.state.pid,
            "ExitCode": r.state.exit_code,
            "Error": r.state.error,
            "StartedAt": zero_time(&r.state.started_at),
            "FinishedAt": zero_time(&r.state.finished_at),
        },
        "Image": r.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": st.containers.log_path(&r.id),
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": exec_ids,
        "HostConfig": r.host_config,
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
            }
        },
        "Mounts": r.mounts.iter().map(|m| {
            let mut m = m.clone();
            if let Some(o) = m.as_object_mut() {
                o.remove("Anonymous");
                o.remove("Create");
            }
            m
        }).collect::<Vec<_>>(),
        "Config": r.config,
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {},
            "Networks": networks,
        },
    });
    // Only containers with a health check have State.Health, as with dockerd.
    if let Some(h) = &r.state.health {
        v["State"]["Health"] = json!(h);
    }
    v
}

/// `GET /containers/{id}/json`.
pub async fn inspect_one(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let e = st.containers.get(&id)?;
    Ok(Json(inspect(&st, &e)).into_response())
}

/// The `filters` query (`{"key": ["value", ...]}` or `{"key": {"value": true}}`) as
/// key/value pairs; with `allowed`, a key not in it is refused, as dockerd does.
fn parse_filters(
    q: &[(String, String)],
    allowed: Option<&[&str]>,
) -> ApiResult<Vec<(String, String)>> {
    let Some(f) = query_get(q, "filters").filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_str(f)
        .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
    let mut out = Vec::new();
    for (k, vals) in v.as_object().into_iter().flatten() {
        if allowed.is_some_and(|a| !a.contains(&k.as_str())) {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
        match vals {
            Value::Object(m) => out.extend(m.keys().map(|x| (k.clone(), x.clone()))),
            Value::Array(a) => out.extend(
                a.iter()
                    .filter_map(|x| x.as_str())
                    .map(|x| (k.clone(), x.to_string())),
            ),
            _ => {}
        }
    }
    Ok(out)
}

fn filters(q: &[(String, String)]) -> ApiResult<Vec<(String, String)>> {
    let out = parse_filters(
        q,
        Some(&[
            "status", "name", "id", "label", "ancestor", "health", "before", "since", "exited",
            "volume",
        ]),
    )?;
    for (k, v) in &out {
        if k == "health" && !["starting", "healthy", "unhealthy", "none"].contains(&v.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unrecognised filter value for health: {v}"
            )));
        }
        if k == "exited" && v.parse::<i64>().is_err() {
            return Err(ApiError::bad_request(format!(
                "strconv.Atoi: parsing \"{v}\": invalid syntax"
            )));
        }
    }
    Ok(out)
}

/// Whether a dockerd filter value, a regular expression (Go's `regexp.MatchString`),
/// matches `text` anywhere; a value that is no valid expression matches nothing, as in
/// dockerd.
fn regex_match(pattern: &str, text: &str) -> bool {
    regex::Regex::new(pattern).is_ok_and(|re| re.is_match(text))
}

/// The creation time of the container a `before`/`since` filter names.
fn filter_anchor(st: &AppState, fs: &[(String, String)], key: &str) -> ApiResult<Option<String>> {
    match fs.iter().find(|(k, _)| k == key) {
        Some((_, name)) => Ok(Some(st.containers.get(name)?.record().created)),
        None => Ok(None),
    }
}

/// `GET /containers/json`.
pub async fn list(State(st): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let all = query_bool(&q, "all");
    let size = query_bool(&q, "size");
    let fs = filters(&q)?;
    let before = filter_anchor(&st, &fs, "before")?;
    let since = filter_anchor(&st, &fs, "since")?;
    let mut out = Vec::new();
    for e in st.containers.all() {
        let r = e.record();
        if !all && !e.running() && !fs.iter().any(|(k, _)| k == "status") {
            continue;
        }
        let labels = r.config["Labels"].as_object().cloned().unwrap_or_default();
        let ok_for = |key: &str, pass: &dyn Fn(&str) -> bool| {
            let vals: Vec<&String> = fs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v)
                .collect();
            vals.is_empty() || vals.iter().any(|v| pass(v))
        };
        let keep = ok_for("status", &|v| v == r.state.status)
            // As dockerd: regular expressions against `/NAME` or `NAME`, and the full ID.
            && ok_for("name", &|v| {
                regex_match(v, &format!("/{}", r.name)) || regex_match(v, &r.name)
            })
            && ok_for("id", &|v| r.id.starts_with(v) || regex_match(v, &r.id))
            && ok_for("exited", &|v| {
                !e.running()
                    && !r.state.started_at.is_empty()
                    && !r.state.started_at.starts_with("0001-")
                    && v.parse::<i64>() == Ok(r.state.exit_code)
            })
            && ok_for("volume", &|v| {
                r.mounts.iter().any(|m| {
                    (m["Type"] == "volume" && m["Name"] == v) || m["Destination"] == v
                })
            })
            && before.as_ref().is_none_or(|b| r.created < *b)
            && since.as_ref().is_none_or(|s| r.created > *s)
            && ok_for("health", &|v| {
                let status = r.state.health.as_ref().map(|h| h.status.as_str());
                v == status.filter(|s| !s.is_empty()).unwrap_or("none")
            })
            && ok_for("ancestor", &|v| {
                r.image == v
                    || r.image_id == v
                    || r.image_id.trim_start_matches("sha256:").starts_with(v)
            })
            && fs
                .iter()
                .filter(|(k, _)| k == "label")
                .all(|(_, v)| match v.split_once('=') {
                    Some((k, val)) => labels.get(k).and_then(|x| x.as_str()) == Some(val),
                    None => labels.contains_key(v.as_str()),
                });
        if !keep {
            continue;
        }
        out.push(if size {
            summary_with_size(&st, &e)
        } else {
            summary(&e)
        });
    }
    if let Some(n) = query_get(&q, "limit").and_then(|l| l.parse::<usize>().ok()) {
        if n > 0 {
            out.truncate(n);
        }
    }
    Ok(Json(out).into_response())
}

/// A container's summary with its sizes as dockerd counts them: SizeRw, its own bytes
/// (one walk of its upper dir), and SizeRootFs, those plus its image's.
pub(super) fn summary_with_size(st: &AppState, e: &Entry) -> Value {
    let r = e.record();
    let rw = st.containers.size_rw(&r.id);
    let image = st
        .images
        .resolve(&r.image_id)
        .map(|i| i.size())
        .unwrap_or(0);
    let mut item = summary(e);
    item["SizeRw"] = json!(rw);
    item["SizeRootFs"] = json!(rw + image);
    item
}

/// A container's mounts as dockerd's list shows them (its MountPoint fields; the
/// volume's name and driver only for volumes).
fn list_mounts(mounts: &[Value]) -> Vec<Value> {
    mounts
        .iter()
        .map(|m| {
            let mut o = json!({
                "Type": m["Type"], "Source": m["Source"], "Destination": m["Destination"],
                "Mode": m["Mode"].as_str().unwrap_or(""), "RW": m["RW"].as_bool().unwrap_or(true),
                "Propagation": m["Propagation"].as_str().unwrap_or(""),
            });
            if m["Type"] == "volume" {
                o["Name"] = m["Name"].clone();
                o["Driver"] = json!(m["Driver"].as_str().unwrap_or("local"));
            }
            o
        })
        .collect()
}

/// A container as `GET /containers/json` (and `/system/df`) lists it.
pub(super) fn summary(e: &Entry) -> Value {
    let r = e.record();
    let labels = r.config["Labels"].as_object().cloned().unwrap_or_default();
    let mut command = vec![r.path.clone()];
    command.extend(r.args.iter().cloned());
    let net = r.host_config["NetworkMode"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    let mut networks = serde_json::Map::new();
    networks.insert(net.clone(), json!({}));
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": command.join(" "),
        "Created": crate::images::unix_time(&r.created),
        "Ports": [],
        "Labels": labels,
        "State": r.state.status,
        "Status": status_text(e),
        "HostConfig": {"NetworkMode": net},
        "NetworkSettings": {"Networks": networks},
        "Mounts": list_mounts(&r.mounts),
    })
}

/// `DELETE /containers/{id}`.
pub async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    st.containers
        .remove_with(&id, query_bool(&q, "force"), query_bool(&q, "v"))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A `since`/`until` of the logs query as nanoseconds since the epoch: the API sends
/// Unix seconds with up to nine decimals (`1700000000.123456789`), parsed exactly (an
/// f64 would round a bound past the line it names); absent or 0 means no bound.
fn log_time(q: &[(String, String)], key: &str) -> ApiResult<Option<i64>> {
    let Some(v) = query_get(q, key).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::bad_request(format!("invalid value for \"{key}\": {v:?}"));
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let nanos: i64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    let t = secs
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(bad)?;
    Ok((t != 0).then_some(t))
}

/// `GET /containers/{id}/logs`.
pub async fn logs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let e = st.containers.get(&id)?;
    let (want_out, want_err) = (query_bool(&q, "stdout"), query_bool(&q, "stderr"));
    if !want_out && !want_err {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let follow = query_bool(&q, "follow");
    let stamps = query_bool(&q, "timestamps");
    let tail = query_get(&q, "tail").and_then(|t| t.parse::<usize>().ok());
    let since = log_time(&q, "since")?;
    let until = log_time(&q, "until")?;
    let tty = e.record().config["Tty"].as_bool().unwrap_or(false);
    let path = st.containers.log_path(&e.id);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let entry = e.clone();
    tokio::spawn(async move {
        let mut reader = LogReader::new(&path);
        let mut first = true;
        loop {
            let running = entry.running() || entry.record().state.status == "created";
            // Rotated files first, oldest first; then what was written since.
            let mut lines = reader.next_lines();
            if first {
                if let Some(n) = tail {
                    let skip = lines.len().saturating_sub(n);
                    lines.drain(..skip);
                }
                first = false;
            }
            for l in lines {
                let t = chrono::DateTime::parse_from_rfc3339(&l.time)
                    .ok()
                    .and_then(|d| d.timestamp_nanos_opt())
                    .unwrap_or(0);
                // Both bounds include a line at exactly their time, as dockerd's.
                if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                    continue;
                }
                let s = if l.stream == "stderr" { 2 } else { 1 };
                if (s == 1 && !want_out) || (s == 2 && !want_err) {
                    continue;
                }
                let mut data = Vec::new();
                if stamps {
                    data.extend_from_slice(l.time.as_bytes());
                    data.push(b' ');
                }
                data.extend_from_slice(l.log.as_bytes());
                let msg = if tty { data } else { frame(s, &data) };
                if tx.send(Bytes::from(msg)).await.is_err() {
                    return;
                }
            }
            if !follow || !running {
                return;
            }
            // Following ends at `until`, though the container runs on.
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
            if until.is_some_and(|u| now > u) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok((
        [(header::CONTENT_TYPE, ct)],
        Body::from_stream(futures_util::StreamExt::map(
            stream,
            Ok::<_, std::convert::Infallible>,
        )),
    )
        .into_response())
}

/// Whose stdin an attached client feeds.
#[derive(Clone)]
enum Target {
    Container(Arc<Entry>),
    Exec(Arc<Exec>),
}

impl Target {
    fn stdin(&self) -> &tokio::sync::Mutex<Option<tokio::net::unix::pipe::Sender>> {
        match self {
            Target::Container(e) => &e.stdin,
            Target::Exec(x) => &x.stdin,
        }
    }
    fn ids(&self) -> (String, String) {
        match self {
            Target::Container(e) => (e.id.clone(), String::new()),
            Target::Exec(x) => (x.container.clone(), x.id.clone()),
        }
    }
}

/// Starts the process of an exec once its connection is hijacked; the error's text.
type StartExec = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

struct Attach {
    svc: Arc<ContainerService>,
    target: Target,
    rx: Option<broadcast::Receiver<Chunk>>,
    tty: bool,
    stdin: bool,
    close_stdin_at_eof: bool,
    /// The detach sequence to look for in stdin (with a TTY, as dockerd).
    detach_keys: Option<Vec<u8>>,
    /// Run first: exec start hijacks the connection, then starts the process.
    start: Option<StartExec>,
}

/// The text of a failed exec start as dockerd writes it into the stream.
fn start_failure(tty: bool, msg: &str) -> Vec<u8> {
    let text = format!("{msg}\r\n");
    if tty {
        text.into_bytes()
    } else {
        frame(1, text.as_bytes())
    }
}

async fn pump<S>(io: S, a: Attach)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    if let Some(start) = a.start {
        // As dockerd: the client already holds the stream, so it gets the reason there
        // and reads the exit code from the exec's inspect.
        if let Err(msg) = start.await {
            let _ = wr.write_all(&start_failure(a.tty, &msg)).await;
            let _ = wr.shutdown().await;
            return;
        }
    }
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
    let stdin_task = a.stdin.then(|| {
        let target = a.target.clone();
        let svc = a.svc.clone();
        let close = a.close_stdin_at_eof;
        let mut scanner = a
            .detach_keys
            .as_deref()
            .map(berth_api::detach::Scanner::new);
        tokio::spawn(async move {
            // Attached before start: stdin exists once the task runs.
            if let Target::Container(e) = &target {
                let mut g = e.gen.subscribe();
                let exits = g.borrow().exits;
                let _ = g
                    .wait_for(|g| g.running || g.exits > exits || g.removed)
                    .await;
            }
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = rd.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                let (data, detached) = match scanner.as_mut() {
                    Some(s) => s.feed(&buf[..n]),
                    None => (buf[..n].to_vec(), false),
                };
                if !data.is_empty() {
                    let mut g = target.stdin().lock().await;
                    let Some(w) = g.as_mut() else { break };
                    if w.write_all(&data).await.is_err() {
                        break;
                    }
                }
                if detached {
                    // The attach ends; the process and its stdin live on.
                    if let Target::Container(e) = &target {
                        svc.emit("detach", &e.record(), &[]);
                    }
                    let _ = detach_tx.send(());
                    return;
                }
            }
            if close {
                let (id, exec) = target.ids();
                svc.close_stdin(&id, &exec, target.stdin()).await;
            }
        })
    });
    if let Some(mut rx) = a.rx {
        // Until the stdin task ends without detaching (then the sender is dropped).
        let mut detach_watched = true;
        loop {
            let next = tokio::select! {
                r = rx.recv() => r,
                d = &mut detach_rx, if detach_watched => {
                    if d.is_ok() {
                        break;
                    }
                    detach_watched = false;
                    continue;
                }
            };
            match next {
                Ok(Chunk::Data(s, b)) => {
                    let msg = if a.tty { b.to_vec() } else { frame(s, &b) };
                    if wr.write_all(&msg).await.is_err() {
                        break;
                    }
                    let _ = wr.flush().await;
                }
                Ok(Chunk::End) | Err(broadcast::error::RecvError::Closed) => break,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
            }
        }
    } else if let Some(t) = stdin_task {
        let _ = t.await;
        return;
    }
    let _ = wr.shutdown().await;
    if let Some(t) = stdin_task {
        t.abort();
    }
}

fn hijack(mut req: Request, a: Attach) -> Response {
    let ct = if a.tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let wants_upgrade = req.headers().contains_key(header::UPGRADE);
    if !wants_upgrade {
        // A plain client: the output as the response body.
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        let (start, tty) = (a.start, a.tty);
        tokio::spawn(async move {
            if let Some(start) = start {
                if let Err(msg) = start.await {
                    let _ = tx.send(Bytes::from(start_failure(tty, &msg))).await;
                    return;
                }
            }
            let Some(mut brx) = a.rx else { return };
            loop {
                match brx.recv().await {
                    Ok(Chunk::Data(s, b)) => {
                        let msg = if tty { b } else { Bytes::from(frame(s, &b)) };
                        if tx.send(msg).await.is_err() {
                            break;
                        }
                    }
                    Ok(Chunk::End) | Err(broadcast::error::RecvError::Closed) => break,
                    Err(_) => {}
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        return (
            [(header::CONTENT_TYPE, ct)],
            Body::from_stream(futures_util::StreamExt::map(
                stream,
                Ok::<_, std::convert::Infallible>,
            )),
        )
            .into_response();
    }
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on.await {
            Ok(up) => pump(hyper_util::rt::TokioIo::new(up), a).await,
            Err(e) => tracing::debug!(error = %e, "attach upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, ct)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `POST /containers/{id}/{op}`.
pub async fn post_op(
    State(st): State<AppState>,
    Path((id, op)): Path<(String, String)>,
    uri: Uri,
    req: Request,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let svc = st.containers.clone();
    match op.as_str() {
        "start" => match svc.start(&id).await {
            Err(Error::NotModified(_)) => Ok(StatusCode::NOT_MODIFIED.into_response()),
            r => r
                .map(|_| StatusCode::NO_CONTENT.into_response())
                .map_err(Into::into),
        },
        "stop" => {
            let t = query_get(&q, "t").and_then(|t| t.parse().ok());
            match svc.stop(&id, t, query_get(&q, "signal")).await {
                Err(Error::NotModified(_)) => Ok(StatusCode::NOT_MODIFIED.into_response()),
                r => r
                    .map(|_| StatusCode::NO_CONTENT.into_response())
                    .map_err(Into::into),
            }
        }
        "restart" => {
            let t = query_get(&q, "t").and_then(|t| t.parse().ok());
            svc.restart(&id, t, query_get(&q, "signal")).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "kill" => {
            svc.kill(&id, query_get(&q, "signal")).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "wait" => {
            let e = svc.get(&id)?;
            let cond = query_get(&q, "condition")
                .unwrap_or("not-running")
                .to_string();
            let mut rx = e.gen.subscribe();
            let start = rx.borrow().clone();
            if !["not-running", "next-exit", "removed", ""].contains(&cond.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "invalid condition: \"{cond}\""
                )));
            }
            let status = e.record().state.status;
            let (tx, body_rx) = tokio::sync::mpsc::channel::<Bytes>(1);
            tokio::spawn(async move {
                let g = match cond.as_str() {
                    "next-exit" => rx
                        .wait_for(|g| g.exits > start.exits || g.removed)
                        .await
                        .map(|g| g.clone()),
                    "removed" => rx.wait_for(|g| g.removed).await.map(|g| g.clone()),
                    _ => {
                        if !start.running && status != "created" {
                            Ok(start)
                        } else {
                            rx.wait_for(|g| g.exits > start.exits || g.removed)
                                .await
                                .map(|g| g.clone())
                        }
                    }
                };
                let code = g.map(|g| g.exit_code).unwrap_or(0);
                let body = json!({"StatusCode": code, "Error": null}).to_string();
                let _ = tx.send(Bytes::from(body)).await;
            });
            let stream = tokio_stream::wrappers::ReceiverStream::new(body_rx);
            Ok((
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(futures_util::StreamExt::map(
                    stream,
                    Ok::<_, std::convert::Infallible>,
                )),
            )
                .into_response())
        }
        "attach" => {
            let e = svc.get(&id)?;
            let rec = e.record();
            let tty = rec.config["Tty"].as_bool().unwrap_or(false);
            let wants_out = query_bool(&q, "stdout") || query_bool(&q, "stderr");
            // As dockerd, a stream attached to a stopped container carries its next
            // run: `start -a` attaches first, then starts.
            let next_run = query_bool(&q, "stream") && rec.state.status == "exited";
            let ended = !e.running() && rec.state.status != "created" && !next_run;
            let rx = (wants_out && !ended).then(|| e.out.subscribe());
            let stdin =
                query_bool(&q, "stdin") && rec.config["OpenStdin"].as_bool().unwrap_or(false);
            let detach_keys = match query_get(&q, "detachKeys").filter(|k| !k.is_empty()) {
                Some(k) => berth_api::detach::parse(k).map_err(|_| {
                    ApiError::bad_request(format!("Invalid detach keys ({k}) provided"))
                })?,
                None => berth_api::detach::DEFAULT.to_vec(),
            };
            let a = Attach {
                svc: svc.clone(),
                target: Target::Container(e.clone()),
                rx: if ended { Some(closed_receiver()) } else { rx },
                tty,
                stdin,
                // As dockerd: only without a TTY does the end of an attached stdin
                // close the container's (a TTY session ends by detaching, and a later
                // attach must still be able to type).
                close_stdin_at_eof: rec.config["StdinOnce"].as_bool().unwrap_or(false) && !tty,
                // As dockerd: only a TTY's input is scanned for the detach sequence.
                detach_keys: tty.then_some(detach_keys),
                start: None,
            };
            Ok(hijack(req, a))
        }
        "pause" | "unpause" => {
            svc.pause(&id, op == "pause").await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "rename" => {
            let new = query_get(&q, "name").unwrap_or("");
            svc.rename(&id, new)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "update" => {
            let body = super::body::read_or_empty(req, &super::body::UPDATE).await?;
            svc.update(&id, &body).await?;
            Ok(Json(json!({"Warnings": []})).into_response())
        }
        "resize" => {
            let h = query_get(&q, "h").and_then(|v| v.parse().ok()).unwrap_or(0);
            let w = query_get(&q, "w").and_then(|v| v.parse().ok()).unwrap_or(0);
            svc.resize(&id, "", w, h).await?;
            Ok(StatusCode::OK.into_response())
        }
        "exec" => {
            let body = super::body::read_or_empty(req, &super::body::EXEC).await?;
            // Checked before the container is looked up, as dockerd does.
            if body["Cmd"].as_array().is_none_or(|c| c.is_empty()) {
                return Err(ApiError::bad_request("No exec command specified"));
            }
            let exec_id = svc.exec_create(&id, &body)?;
            Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))).into_response())
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "page not found")),
    }
}

fn closed_receiver() -> broadcast::Receiver<Chunk> {
    let (tx, rx) = broadcast::channel(1);
    let _ = tx.send(Chunk::End);
    rx
}

/// `POST /exec/{id}/{op}` (start, resize).
pub async fn exec_op(
    State(st): State<AppState>,
    Path((id, op)): Path<(String, String)>,
    uri: Uri,
    req: Request,
) -> ApiResult<Response> {
    let svc = st.containers.clone();
    match op.as_str() {
        "start" => {
            let (parts, body) = req.into_parts();
            // The body is read before the exec is looked up, as dockerd does.
            let body = super::body::read_or_empty(
                Request::from_parts(parts.clone(), body),
                &super::body::EXEC_START,
            )
            .await?;
            let exec = svc.exec(&id)?;
            let tty = body["Tty"]
                .as_bool()
                .unwrap_or(exec.config["Tty"].as_bool().unwrap_or(false));
            let detach = body["Detach"].as_bool().unwrap_or(false);
            // As dockerd: what fails before the process is tried is an HTTP error...
            svc.exec_startable(&exec)?;
            if detach {
                svc.exec_start(&exec, tty).await?;
                return Ok(StatusCode::OK.into_response());
            }
            // ...and a process that cannot start is reported in the hijacked stream.
            let rx = exec.out.subscribe();
            let (starter, started) = (svc.clone(), exec.clone());
            let start: StartExec = Box::pin(async move {
                starter
                    .exec_start(&started, tty)
                    .await
                    .map_err(|e| e.to_string())
            });
            let a = Attach {
                svc: svc.clone(),
                target: Target::Exec(exec.clone()),
                rx: Some(rx),
                tty,
                stdin: exec.config["AttachStdin"].as_bool().unwrap_or(false),
                close_stdin_at_eof: true,
                detach_keys: tty.then(|| ContainerService::exec_detach_keys(&exec)),
                start: Some(start),
            };
            Ok(hijack(Request::from_parts(parts, Body::empty()), a))
        }
        "resize" => {
            let exec = svc.exec(&id)?;
            // As dockerd: the process starts only once exec start has hijacked its
            // connection, so a resize sent right after that waits for it (bounded).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let (running, code, _) = *exec.state.lock().unwrap_or_else(|p| p.into_inner());
                if running || code.is_some() {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "timeout waiting for exec session ready",
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let q = query_pairs(&uri);
            let h = query_get(&q, "h").and_then(|v| v.parse().ok()).unwrap_or(0);
            let w = query_get(&q, "w").and_then(|v| v.parse().ok()).unwrap_or(0);
            svc.resize(&exec.container, &exec.id, w, h).await?;
            Ok(StatusCode::OK.into_response())
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "page not found")),
    }
}

/// `GET /exec/{id}/json`.
pub async fn exec_inspect(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let exec = st.containers.exec(&id)?;
    let (running, code, pid) = *exec.state.lock().unwrap_or_else(|p| p.into_inner());
    let c = &exec.config;
    let cmd: Vec<Value> = c["Cmd"].as_array().cloned().unwrap_or_default();
    Ok(Json(json!({
        "ID": exec.id,
        "Running": running,
        "ExitCode": code,
        "ProcessConfig": {
            "tty": c["Tty"].as_bool().unwrap_or(false),
            "entrypoint": cmd.first(),
            "arguments": cmd.get(1..).unwrap_or_default(),
            "privileged": c["Privileged"].as_bool().unwrap_or(false),
            "user": c["User"].as_str().unwrap_or(""),
        },
        "OpenStdin": c["AttachStdin"].as_bool().unwrap_or(false),
        "OpenStderr": c["AttachStderr"].as_bool().unwrap_or(false),
        "OpenStdout": c["AttachStdout"].as_bool().unwrap_or(false),
        "CanRemove": false,
        "ContainerID": exec.container,
        "DetachKeys": c["DetachKeys"].as_str().unwrap_or(""),
        "Pid": pid,
    }))
    .into_response())
}

/// `GET /containers/{id}/top`: `ps_args` runs the host's `ps` with them, as dockerd.
pub async fn top(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let ps_args = query_get(&q, "ps_args").filter(|a| !a.trim().is_empty());
    Ok(Json(st.containers.top(&id, ps_args).await?).into_response())
}

/// `POST /containers/prune`: stopped containers, narrowed as dockerd narrows them by
/// `until` (created before), `label` (all must match) and `label!` (not all match).
pub async fn prune(State(st): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let fs = prune_filters(&q)?;
    let mut until = None;
    for (_, v) in fs.iter().filter(|(k, _)| k == "until") {
        until =
            Some(crate::images::parse_until(v).map_err(|e| ApiError::bad_request(e.to_string()))?);
    }
    let values = |key: &str| -> Vec<String> {
        fs.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let (with, without) = (values("label"), values("label!"));
    let (gone, reclaimed) = st
        .containers
        .prune(|r| {
            let labels = &r.config["Labels"];
            until.is_none_or(|u| crate::images::unix_time(&r.created) < u)
                && labels_match_all(labels, &with)
                && (without.is_empty() || !labels_match_all(labels, &without))
        })
        .await;
    Ok(Json(json!({"ContainersDeleted": gone, "SpaceReclaimed": reclaimed})).into_response())
}

/// The filters of `POST /containers/prune`; others are refused, as dockerd does.
fn prune_filters(q: &[(String, String)]) -> ApiResult<Vec<(String, String)>> {
    parse_filters(q, Some(&["until", "label", "label!"]))
}

/// Whether labels satisfy every `KEY` or `KEY=VALUE` (dockerd's `MatchKVList`).
fn labels_match_all(labels: &Value, filters: &[String]) -> bool {
    filters.iter().all(|l| match l.split_once('=') {
        Some((k, v)) => labels[k].as_str() == Some(v),
        None => !labels[l.as_str()].is_null(),
    })
}

fn archive_path(uri: &Uri) -> ApiResult<String> {
    let q = query_pairs(uri);
    query_get(&q, "path")
        .filter(|p| !p.is_empty())
        .map(String::from)
        .ok_or_else(|| ApiError::bad_request("path is required"))
}

/// `HEAD /containers/{id}/archive`: the stat header only.
pub async fn archive_head(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    use base64::Engine as _;
    let path = archive_path(&uri)?;
    let svc = st.containers.clone();
    let stat = tokio::task::spawn_blocking(move || -> ApiResult<Value> {
        let view = svc.root_view(&id)?;
        Ok(crate::containers::archive::path_stat(&view, &path, &id)?)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let hdr = base64::engine::general_purpose::STANDARD.encode(stat.to_string());
    Ok(([("x-docker-container-path-stat", hdr)], StatusCode::OK).into_response())
}

/// `GET /containers/{id}/archive`: a tar of the path.
pub async fn archive_get(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    use crate::containers::archive::{tar_source, RootView, TarSource};
    use base64::Engine as _;
    let path = archive_path(&uri)?;
    let svc = st.containers.clone();
    // The path is resolved and stat'ed first: its stat is a header, and a missing path
    // must be a 404, not a broken body.
    let (view, stat, source) =
        tokio::task::spawn_blocking(move || -> ApiResult<(RootView, Value, TarSource)> {
            let view = svc.root_view(&id)?;
            let (stat, source) = tar_source(&view, &path, &id)?;
            Ok((view, stat, source))
        })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    // Then the tar is written as the walk goes, a few chunks ahead of the client.
    let (writer, rx) = crate::streams::ChannelWriter::new(8);
    let err_tx = writer.sender();
    tokio::spawn(async move {
        let res = tokio::task::spawn_blocking(move || {
            // The view (for a stopped container, its mount) lasts as long as the walk.
            let _view = view;
            source.write_to(writer)
        })
        .await;
        let err = match res {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(error = %err, "archive failed");
        // Breaking the body tells the client the archive is incomplete.
        let _ = err_tx.send(Err(std::io::Error::other(err))).await;
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let hdr = base64::engine::general_purpose::STANDARD.encode(stat.to_string());
    Ok((
        [
            ("x-docker-container-path-stat", hdr),
            ("content-type", "application/x-tar".to_string()),
        ],
        body,
    )
        .into_response())
}

/// `PUT /containers/{id}/archive`: unpack a tar into a directory of the container.
pub async fn archive_put(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    req: Request,
) -> ApiResult<Response> {
    use crate::containers::archive::{container_owner, untar_into, ExtractOptions};
    use futures_util::StreamExt;
    let path = archive_path(&uri)?;
    let q = query_pairs(&uri);
    let mut opts = ExtractOptions {
        no_overwrite_dir_non_dir: query_bool(&q, "noOverwriteDirNonDir"),
        owner: None,
    };
    let copy_owner = query_bool(&q, "copyUIDGID");
    let svc = st.containers.clone();
    // The body is unpacked as it arrives, a few chunks behind the network.
    let (tx, reader) = crate::streams::ChannelReader::new(16);
    let worker = tokio::task::spawn_blocking(move || -> ApiResult<()> {
        let view = svc.root_view(&id)?;
        if copy_owner {
            opts.owner = container_owner(&view, &svc.configured_user(&id)?)?;
        }
        Ok(untar_into(&view, &path, &id, reader, opts)?)
    });
    let mut stream = req.into_body().into_data_stream();
    let mut body_err = None;
    let mut tx = Some(tx);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                if let Some(t) = &tx {
                    if t.send(c).await.is_err() {
                        // The extraction stopped (its result says why). The rest of
                        // the body is still read, and dropped: a client that is cut
                        // off while it sends sees a broken pipe, not the error.
                        tx = None;
                    }
                }
            }
            Err(e) => {
                body_err = Some(e.to_string());
                break;
            }
        }
    }
    // The end of the body, or its failure, reads as the end of the archive: a file cut
    // short then fails its size check and is not left in place.
    drop(tx);
    let result = worker
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Some(e) = body_err {
        return Err(ApiError::bad_request(format!("reading request body: {e}")));
    }
    result?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /containers/{id}/stats`: one sample (`stream=false`, after a short second
/// sample for CPU usage unless `one-shot`), or one a second until the client goes or
/// the container stops.
pub async fn stats(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    use crate::containers::stats::{sample, to_json};
    let q = query_pairs(&uri);
    let stream = query_get(&q, "stream").is_none_or(|v| matches!(v, "1" | "true" | "True"));
    let one_shot = query_bool(&q, "one-shot");
    let e = st.containers.get(&id)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        let mut pre = None;
        loop {
            let r = e.record();
            let running = e.running() && r.state.pid > 0;
            let now = if running {
                sample(r.state.pid)
            } else {
                crate::containers::stats::Sample {
                    read: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    ..Default::default()
                }
            };
            if !stream && !one_shot && pre.is_none() && running {
                pre = Some(now);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let mut line = to_json(&r.id, &r.name, &now, pre.as_ref()).to_string();
            line.push('\n');
            if tx.send(Bytes::from(line)).await.is_err() || !stream || !running {
                return;
            }
            pre = Some(now);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let s = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::StreamExt::map(
            s,
            Ok::<_, std::convert::Infallible>,
        )),
    )
        .into_response())
}

fn event_matches(ev: &Value, fs: &[(String, String)]) -> bool {
    let attrs = &ev["Actor"]["Attributes"];
    let id = ev["id"].as_str().unwrap_or("");
    let check = |key: &str, pass: &dyn Fn(&str) -> bool| {
        let vals: Vec<&String> = fs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        vals.is_empty() || vals.iter().any(|v| pass(v))
    };
    check("type", &|v| v == "container")
        && check("container", &|v| id.starts_with(v) || attrs["name"] == v)
        && check("event", &|v| {
            // As dockerd: these three match their "NAME: detail" actions by prefix.
            let action = ev["Action"].as_str().unwrap_or("");
            action == v
                || (["health_status", "exec_create", "exec_start"].contains(&v)
                    && action.starts_with(&format!("{v}:")))
        })
        && check("image", &|v| attrs["image"] == v)
        && fs
            .iter()
            .filter(|(k, _)| k == "label")
            .all(|(_, v)| match v.split_once('=') {
                Some((k, val)) => attrs[k] == val,
                None => !attrs[v.as_str()].is_null(),
            })
}

/// `GET /events`: container events from `since` (kept in memory: the last 1024),
/// then live until `until` or the client leaves; filters type, container, event,
/// image, label.
pub async fn events(State(st): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    // Any key is taken: an unknown one matches nothing.
    let fs = parse_filters(&q, None)?;
    let time = |k: &str| -> ApiResult<Option<i64>> {
        match query_get(&q, k).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .map(|f| Some((f * 1e9) as i64))
                .map_err(|_| ApiError::bad_request(format!("invalid {k}: {v}"))),
        }
    };
    let (since, until) = (time("since")?, time("until")?);
    let mut live = st.containers.events.subscribe();
    let past: Vec<Value> = match since {
        Some(s) => st
            .containers
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| e["timeNano"].as_i64().unwrap_or(0) >= s)
            .cloned()
            .collect(),
        None => Vec::new(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let before_until =
            |e: &Value| until.is_none_or(|u| e["timeNano"].as_i64().unwrap_or(0) <= u);
        let mut last = 0i64;
        for e in past {
            if before_until(&e) && event_matches(&e, &fs) {
                last = e["timeNano"].as_i64().unwrap_or(0);
                if tx.send(Bytes::from(format!("{e}\n"))).await.is_err() {
                    return;
                }
            }
        }
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        if until.is_some_and(|u| u <= now) {
            return;
        }
        let deadline = until.map(|u| Duration::from_nanos((u - now).max(0) as u64));
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout(d, live.recv()).await {
                    Ok(r) => r,
                    Err(_) => return,
                },
                None => live.recv().await,
            };
            match next {
                Ok(e) => {
                    let t = e["timeNano"].as_i64().unwrap_or(0);
                    if t > last
                        && before_until(&e)
                        && event_matches(&e, &fs)
                        && tx.send(Bytes::from(format!("{e}\n"))).await.is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
            if until.is_some_and(|u| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) > u) {
                return;
            }
        }
    });
    let s = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::StreamExt::map(
            s,
            Ok::<_, std::convert::Infallible>,
        )),
    )
        .into_response())
}
