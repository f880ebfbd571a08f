//! `/containers/...` and `/exec/...`: create, start, attach (hijacked streams), wait,
//! logs, stop, kill, restart, resize, delete, inspect, list, and exec.

use super::{query_bool, query_get, query_pairs, ApiError, ApiResult, AppState};
use crate::containers::io::{frame, read_log, Chunk};
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

async fn json_body(req: Request) -> ApiResult<Value> {
    let bytes = axum::body::to_bytes(req.into_body(), 16 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// `POST /containers/create`.
pub async fn create(State(st): State<AppState>, uri: Uri, req: Request) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let body = json_body(req).await?;
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
        "running" => format!("Up {}", human(ago(&r.state.started_at))),
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
    json!({
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
    })
}

/// `GET /containers/{id}/json`.
pub async fn inspect_one(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let e = st.containers.get(&id)?;
    Ok(Json(inspect(&st, &e)).into_response())
}

fn filters(q: &[(String, String)]) -> ApiResult<Vec<(String, String)>> {
    let Some(f) = query_get(q, "filters").filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_str(f)
        .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
    let mut out = Vec::new();
    for (k, vals) in v.as_object().into_iter().flatten() {
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
    for (k, _) in &out {
        if !["status", "name", "id", "label", "ancestor"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
    }
    Ok(out)
}

/// `GET /containers/json`.
pub async fn list(State(st): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let all = query_bool(&q, "all");
    let fs = filters(&q)?;
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
            && ok_for("name", &|v| r.name.contains(v.trim_start_matches('/')))
            && ok_for("id", &|v| r.id.starts_with(v))
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
        let mut command = vec![r.path.clone()];
        command.extend(r.args.iter().cloned());
        let net = r.host_config["NetworkMode"]
            .as_str()
            .unwrap_or("none")
            .to_string();
        let mut networks = serde_json::Map::new();
        networks.insert(net.clone(), json!({}));
        out.push(json!({
            "Id": r.id,
            "Names": [format!("/{}", r.name)],
            "Image": r.image,
            "ImageID": r.image_id,
            "Command": command.join(" "),
            "Created": crate::images::unix_time(&r.created),
            "Ports": [],
            "Labels": labels,
            "State": r.state.status,
            "Status": status_text(&e),
            "HostConfig": {"NetworkMode": net},
            "NetworkSettings": {"Networks": networks},
            "Mounts": [],
        }));
    }
    if let Some(n) = query_get(&q, "limit").and_then(|l| l.parse::<usize>().ok()) {
        if n > 0 {
            out.truncate(n);
        }
    }
    Ok(Json(out).into_response())
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
    let since = query_get(&q, "since")
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    let until = query_get(&q, "until")
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    let tty = e.record().config["Tty"].as_bool().unwrap_or(false);
    let path = st.containers.log_path(&e.id);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let entry = e.clone();
    tokio::spawn(async move {
        let mut off = 0u64;
        let mut first = true;
        loop {
            let running = entry.running() || entry.record().state.status == "created";
            let mut lines = Vec::new();
            if first {
                // Rotated files first, oldest first.
                let files = crate::containers::io::log_files(&path);
                for f in &files[..files.len() - 1] {
                    lines.extend(read_log(f, 0).0);
                }
            } else if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < off {
                off = 0; // rotated while following
            }
            let (more, next) = read_log(&path, off);
            lines.extend(more);
            off = next;
            if first {
                if let Some(n) = tail {
                    let skip = lines.len().saturating_sub(n);
                    lines.drain(..skip);
                }
                first = false;
            }
            for l in lines {
                let t = chrono::DateTime::parse_from_rfc3339(&l.time)
                    .map(|d| d.timestamp() as f64 + d.timestamp_subsec_nanos() as f64 / 1e9)
                    .unwrap_or(0.0);
                if (since > 0.0 && t < since) || (until > 0.0 && t > until) {
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

struct Attach {
    svc: Arc<ContainerService>,
    target: Target,
    rx: Option<broadcast::Receiver<Chunk>>,
    tty: bool,
    stdin: bool,
    close_stdin_at_eof: bool,
}

async fn pump<S>(io: S, a: Attach)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let stdin_task = a.stdin.then(|| {
        let target = a.target.clone();
        let svc = a.svc.clone();
        let close = a.close_stdin_at_eof;
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
                let mut g = target.stdin().lock().await;
                let Some(w) = g.as_mut() else { break };
                if w.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            if close {
                let (id, exec) = target.ids();
                svc.close_stdin(&id, &exec, target.stdin()).await;
            }
        })
    });
    if let Some(mut rx) = a.rx {
        loop {
            match rx.recv().await {
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
        if let Some(mut brx) = a.rx {
            tokio::spawn(async move {
                loop {
                    match brx.recv().await {
                        Ok(Chunk::Data(s, b)) => {
                            let msg = if a.tty { b } else { Bytes::from(frame(s, &b)) };
                            if tx.send(msg).await.is_err() {
                                break;
                            }
                        }
                        Ok(Chunk::End) | Err(broadcast::error::RecvError::Closed) => break,
                        Err(_) => {}
                    }
                }
            });
        }
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
            svc.restart(&id, t).await?;
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
            let ended = !e.running() && rec.state.status != "created";
            let rx = (wants_out && !ended).then(|| e.out.subscribe());
            let stdin =
                query_bool(&q, "stdin") && rec.config["OpenStdin"].as_bool().unwrap_or(false);
            let a = Attach {
                svc: svc.clone(),
                target: Target::Container(e.clone()),
                rx: if ended { Some(closed_receiver()) } else { rx },
                tty,
                stdin,
                close_stdin_at_eof: rec.config["StdinOnce"].as_bool().unwrap_or(false),
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
            let body = json_body(req).await?;
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
            let body = json_body(req).await?;
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
    let exec = svc.exec(&id)?;
    match op.as_str() {
        "start" => {
            let (parts, body) = req.into_parts();
            let body = json_body(Request::from_parts(parts.clone(), body)).await?;
            let tty = body["Tty"]
                .as_bool()
                .unwrap_or(exec.config["Tty"].as_bool().unwrap_or(false));
            let detach = body["Detach"].as_bool().unwrap_or(false);
            let rx = exec.out.subscribe();
            svc.exec_start(&exec, tty).await?;
            if detach {
                return Ok(StatusCode::OK.into_response());
            }
            let a = Attach {
                svc: svc.clone(),
                target: Target::Exec(exec.clone()),
                rx: Some(rx),
                tty,
                stdin: exec.config["AttachStdin"].as_bool().unwrap_or(false),
                close_stdin_at_eof: true,
            };
            Ok(hijack(Request::from_parts(parts, Body::empty()), a))
        }
        "resize" => {
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
        "DetachKeys": "",
        "Pid": pid,
    }))
    .into_response())
}

/// `GET /containers/{id}/top`.
pub async fn top(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(st.containers.top(&id).await?).into_response())
}

/// `POST /containers/prune`.
pub async fn prune(State(st): State<AppState>) -> ApiResult<Response> {
    let gone = st.containers.prune().await;
    Ok(Json(json!({"ContainersDeleted": gone, "SpaceReclaimed": 0})).into_response())
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
    let view = st.containers.root_view(&id)?;
    let full = crate::containers::archive::secure_join(&view.path, &path, false)?;
    let stat = crate::containers::archive::path_stat(&full, &path)?;
    let hdr = base64::engine::general_purpose::STANDARD.encode(stat.to_string());
    Ok(([("x-docker-container-path-stat", hdr)], StatusCode::OK).into_response())
}

/// `GET /containers/{id}/archive`: a tar of the path.
pub async fn archive_get(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    use base64::Engine as _;
    let path = archive_path(&uri)?;
    let svc = st.containers.clone();
    let (stat, data) = tokio::task::spawn_blocking(move || -> ApiResult<(Value, Vec<u8>)> {
        let view = svc.root_view(&id)?;
        // A trailing "/." copies a directory's content: follow the last link then.
        let follow = path.ends_with("/.") || path.ends_with('/');
        let full = crate::containers::archive::secure_join(&view.path, &path, follow)?;
        let stat = crate::containers::archive::path_stat(&full, &path)?;
        let name = stat["name"].as_str().unwrap_or("").to_string();
        let data = crate::containers::archive::tar_path(&full, &name).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("archive {path}: {e}"),
            )
        })?;
        Ok((stat, data))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let hdr = base64::engine::general_purpose::STANDARD.encode(stat.to_string());
    Ok((
        [
            ("x-docker-container-path-stat", hdr),
            ("content-type", "application/x-tar".to_string()),
        ],
        data,
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
    let path = archive_path(&uri)?;
    let data = axum::body::to_bytes(req.into_body(), 1 << 30)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    let svc = st.containers.clone();
    tokio::task::spawn_blocking(move || -> ApiResult<()> {
        let view = svc.root_view(&id)?;
        let dir = crate::containers::archive::secure_join(&view.path, &path, true)?;
        if !dir.is_dir() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("Could not find the file {path} in container {id}"),
            ));
        }
        let rel = dir
            .strip_prefix(&view.path)
            .unwrap_or(&dir)
            .display()
            .to_string();
        crate::containers::archive::untar_into(&data, &view.path, &rel)
            .map_err(|e| ApiError::bad_request(format!("extracting archive into {path}: {e}")))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
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
        && check("event", &|v| ev["Action"] == v)
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
    let mut fs = Vec::new();
    if let Some(f) = query_get(&q, "filters").filter(|s| !s.is_empty()) {
        let v: Value = serde_json::from_str(f)
            .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
        for (k, vals) in v.as_object().into_iter().flatten() {
            match vals {
                Value::Object(m) => fs.extend(m.keys().map(|x| (k.clone(), x.clone()))),
                Value::Array(a) => fs.extend(
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .map(|x| (k.clone(), x.to_string())),
                ),
                _ => {}
            }
        }
    }
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
