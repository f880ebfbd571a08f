//! `/containers/...`: one handler per operation: create, inspect, list, start, stop,
//! restart, kill, wait, pause, unpause, rename, update, resize, delete (and links),
//! logs, top, prune, stats and `docker cp`'s archive. Attached streams are in
//! `attach`, execs in `exec`.

use super::{query_bool, query_get, query_pairs, ApiError, ApiResult, AppState};
use crate::containers::io::{frame, LogReader};
use crate::containers::lifecycle::WaitCondition;
use crate::containers::state::Status;
use crate::containers::{Container, Error};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::container::{
    ContainerInspect, ContainerState, ContainerSummary, ContainersPruneReport, CreateResponse,
    GraphDriverData, SummaryHostConfig, SummaryNetworkSettings, UpdateConfig, UpdateResponse,
    WaitResponse,
};
use berth_api::state::HealthStatus;
use bytes::Bytes;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match &e {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Invalid(_) => StatusCode::BAD_REQUEST,
            Error::NotModified(_) => StatusCode::NOT_MODIFIED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// `POST /containers/create`.
pub async fn create(State(st): State<AppState>, uri: Uri, req: Request) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let body = super::body::create_request(req).await?;
    let (id, warnings) = st.containers.create(query_get(&q, "name"), body).await?;
    Ok((StatusCode::CREATED, Json(CreateResponse { id, warnings })).into_response())
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

fn status_text(e: &Container) -> String {
    let r = e.record();
    let up = || human(ago(&r.state.started_at));
    match r.state.status() {
        Status::Running => match r.state.health.as_ref().map(|h| h.status) {
            // As dockerd: "(health: starting)", "(healthy)", "(unhealthy)".
            Some(HealthStatus::Starting) => format!("Up {} (health: starting)", up()),
            Some(HealthStatus::None) | None => format!("Up {}", up()),
            Some(s) => format!("Up {} ({})", up(), s.as_str()),
        },
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            human(ago(&r.state.finished_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            human(ago(&r.state.finished_at))
        ),
        Status::Created => "Created".into(),
        Status::Paused => format!("Up {} (Paused)", up()),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

fn zero_time(t: &str) -> &str {
    if t.is_empty() {
        "0001-01-01T00:00:00Z"
    } else {
        t
    }
}

fn zero_time_of(t: &str) -> String {
    zero_time(t).to_string()
}

/// The network a container is on, as inspect and list key it.
fn network_of(hc: &berth_api::container::HostConfig) -> String {
    match hc.network_mode.network_name() {
        "" => "none".to_string(),
        n => n.to_string(),
    }
}

fn inspect(st: &AppState, e: &Container) -> ContainerInspect {
    let r = e.record();
    let dir = st.containers.dir(&r.id);
    let path = |p: std::path::PathBuf| p.display().to_string();
    let ids = st.containers.exec_ids(&r.id);
    let status = r.state.status();
    ContainerInspect {
        id: r.id.clone(),
        created: r.created.clone(),
        path: r.path.clone(),
        args: r.args.clone(),
        state: Some(ContainerState {
            status,
            running: status.is_running(),
            paused: status == Status::Paused,
            restarting: status == Status::Restarting,
            oom_killed: r.state.oom_killed,
            dead: status == Status::Dead,
            pid: i64::from(r.state.pid),
            exit_code: r.state.exit_code,
            error: r.state.error.clone(),
            started_at: zero_time_of(&r.state.started_at),
            finished_at: zero_time_of(&r.state.finished_at),
            // Only containers with a health check have State.Health, as with dockerd.
            health: r.state.health.clone(),
        }),
        image: r.image_id.clone(),
        resolv_conf_path: path(dir.join("resolv.conf")),
        hostname_path: path(dir.join("hostname")),
        hosts_path: path(dir.join("hosts")),
        log_path: path(st.containers.log_path(&r.id)),
        name: format!("/{}", r.name),
        restart_count: r.restart_count,
        driver: "overlay".into(),
        platform: "linux".into(),
        exec_ids: (!ids.is_empty()).then_some(ids),
        host_config: Some(r.host_config.clone()),
        graph_driver: GraphDriverData {
            name: "overlay".into(),
            data: Some(BTreeMap::from([
                ("UpperDir".to_string(), path(dir.join("upper"))),
                ("WorkDir".to_string(), path(dir.join("work"))),
            ])),
        },
        mounts: r.mounts.iter().map(|m| m.point.clone()).collect(),
        config: Some(r.config.clone()),
        network_settings: Some(crate::containers::network::settings(Some(&st.networks), e)),
        ..Default::default()
    }
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
pub(super) fn parse_filters(
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
        let status = r.state.status();
        if !all && !status.is_running() && !fs.iter().any(|(k, _)| k == "status") {
            continue;
        }
        let labels = r.labels();
        let ok_for = |key: &str, pass: &dyn Fn(&str) -> bool| {
            let vals: Vec<&String> = fs
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v)
                .collect();
            vals.is_empty() || vals.iter().any(|v| pass(v))
        };
        let keep = ok_for("status", &|v| v == status.as_str())
            // As dockerd: regular expressions against `/NAME` or `NAME`, and the full ID.
            && ok_for("name", &|v| {
                regex_match(v, &format!("/{}", r.name)) || regex_match(v, &r.name)
            })
            && ok_for("id", &|v| r.id.starts_with(v) || regex_match(v, &r.id))
            && ok_for("exited", &|v| {
                !status.is_running()
                    && !r.state.started_at.is_empty()
                    && !r.state.started_at.starts_with("0001-")
                    && v.parse::<i64>() == Ok(r.state.exit_code)
            })
            && ok_for("volume", &|v| {
                r.mounts
                    .iter()
                    .any(|m| m.volume() == Some(v) || m.point.destination == v)
            })
            && before.as_ref().is_none_or(|b| r.created < *b)
            && since.as_ref().is_none_or(|s| r.created > *s)
            && ok_for("health", &|v| {
                let status = r.state.health.as_ref().map(|h| h.status.as_str());
                v == status.unwrap_or("none")
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
                    Some((k, val)) => labels.get(k).map(String::as_str) == Some(val),
                    None => labels.contains_key(v.as_str()),
                });
        if !keep {
            continue;
        }
        out.push(if size {
            summary_with_size(&st, &e).await
        } else {
            summary(&st, &e)
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
/// (one walk of its upper dir), and SizeRootFs, those plus its image's. Blocking.
pub(super) fn summary_sized(st: &AppState, e: &Container) -> ContainerSummary {
    let r = e.record();
    let rw = crate::disk_usage::disk_usage(&st.containers.dir(&r.id).join("upper"));
    let image = st
        .images
        .resolve(&r.image_id)
        .map(|i| i.size())
        .unwrap_or(0);
    let mut item = summary(st, e);
    item.size_rw = rw as i64;
    item.size_root_fs = (rw + image) as i64;
    item
}

/// As [`summary_sized`], on the blocking pool.
async fn summary_with_size(st: &AppState, e: &std::sync::Arc<Container>) -> ContainerSummary {
    let (st2, e2) = (st.clone(), e.clone());
    tokio::task::spawn_blocking(move || summary_sized(&st2, &e2))
        .await
        .unwrap_or_else(|_| summary(st, e))
}

/// A container as `GET /containers/json` (and `/system/df`) lists it.
pub(super) fn summary(st: &AppState, e: &Container) -> ContainerSummary {
    let r = e.record();
    let mut command = vec![r.path.clone()];
    command.extend(r.args.iter().cloned());
    let net = network_of(&r.host_config);
    let (ports, networks) = crate::containers::network::summary(Some(&st.networks), &r);
    ContainerSummary {
        id: r.id.clone(),
        names: vec![format!("/{}", r.name)],
        image: r.image.clone(),
        image_id: r.image_id.clone(),
        command: command.join(" "),
        created: crate::images::unix_time(&r.created),
        labels: r.labels(),
        state: r.state.status().as_str().to_string(),
        status: status_text(e),
        host_config: SummaryHostConfig { network_mode: net },
        network_settings: Some(SummaryNetworkSettings { networks }),
        mounts: r.mounts.iter().map(|m| m.point.clone()).collect(),
        ports,
        ..Default::default()
    }
}

/// `DELETE /containers/{id}`: with `link=1`, the link `{id}` of the container whose
/// name it starts with (as dockerd's `rmLink`).
pub async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    if query_bool(&q, "link") {
        st.containers.remove_link(&id).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    st.containers
        .remove_with(&id, query_bool(&q, "force"), query_bool(&q, "v"))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /containers/{parent}/{alias}`: a link name (dockerd routes every name with
/// its slashes); with `link=1` the link is removed, else the container it names.
pub async fn delete_link(
    State(st): State<AppState>,
    Path((parent, alias)): Path<(String, String)>,
    uri: Uri,
) -> ApiResult<Response> {
    let name = format!("{parent}/{alias}");
    let q = query_pairs(&uri);
    if query_bool(&q, "link") {
        st.containers.remove_link(&name).await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let target = st.containers.linked(&name)?;
    st.containers
        .remove_with(&target, query_bool(&q, "force"), query_bool(&q, "v"))
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
    let (tty, driver) = e.read(|r| (r.tty(), r.host_config.log_config.kind.clone()));
    if driver == "none" {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "configured logging driver does not support reading",
        ));
    }
    let path = st.containers.log_path(&e.id);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let entry = e.clone();
    tokio::spawn(async move {
        let mut reader = Some(LogReader::new(&path));
        let mut first = true;
        loop {
            let status = entry.status();
            let running = status.is_running() || status == Status::Created;
            // Rotated files first, oldest first; then what was written since (read on
            // the blocking pool).
            let Some(mut r) = reader.take() else { return };
            let Ok((r, mut lines)) = tokio::task::spawn_blocking(move || {
                let lines = r.next_lines();
                (r, lines)
            })
            .await
            else {
                return;
            };
            reader = Some(r);
            // The shim writes the log at the container's pace, not berthd's: a follower
            // that just read something looks again soon, before rotation (max-file)
            // takes what it has not read yet.
            let busy = !lines.is_empty();
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
            let pause = if busy { 10 } else { 100 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
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
            let labels = r.labels();
            until.is_none_or(|u| crate::images::unix_time(&r.created) < u)
                && labels_match_all(&labels, &with)
                && (without.is_empty() || !labels_match_all(&labels, &without))
        })
        .await;
    Ok(Json(ContainersPruneReport {
        containers_deleted: Some(gone),
        space_reclaimed: reclaimed,
    })
    .into_response())
}

/// The filters of `POST /containers/prune`; others are refused, as dockerd does.
fn prune_filters(q: &[(String, String)]) -> ApiResult<Vec<(String, String)>> {
    parse_filters(q, Some(&["until", "label", "label!"]))
}

/// Whether labels satisfy every `KEY` or `KEY=VALUE` (dockerd's `MatchKVList`).
fn labels_match_all(labels: &BTreeMap<String, String>, filters: &[String]) -> bool {
    filters.iter().all(|l| match l.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(l.as_str()),
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
    let body = crate::streams::body_from_blocking("archive", |writer| {
        crate::streams::on_blocking_pool(move || {
            // The view (for a stopped container, its mount) lasts as long as the walk.
            let _view = view;
            source.write_to(writer)
        })
    });
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
                let pid = r.state.pid;
                match tokio::task::spawn_blocking(move || sample(pid)).await {
                    Ok(s) => s,
                    Err(_) => return,
                }
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

/// A stop/restart timeout (`t`, seconds).
fn timeout_of(q: &[(String, String)]) -> ApiResult<Option<i64>> {
    Ok(query_get(q, "t").and_then(|t| t.parse().ok()))
}

/// 304 for what was already so, 204 otherwise.
fn done_or_not_modified(r: crate::containers::Result<()>) -> ApiResult<Response> {
    match r {
        Err(Error::NotModified(_)) => Ok(StatusCode::NOT_MODIFIED.into_response()),
        r => r
            .map(|_| StatusCode::NO_CONTENT.into_response())
            .map_err(Into::into),
    }
}

/// `POST /containers/{id}/start`.
pub async fn start(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    done_or_not_modified(st.containers.start(&id).await)
}

/// `POST /containers/{id}/stop`.
pub async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let t = timeout_of(&q)?;
    done_or_not_modified(st.containers.stop(&id, t, query_get(&q, "signal")).await)
}

/// `POST /containers/{id}/restart`.
pub async fn restart(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let t = timeout_of(&q)?;
    st.containers
        .restart(&id, t, query_get(&q, "signal"))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/kill`.
pub async fn kill(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    st.containers.kill(&id, query_get(&q, "signal")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/wait`: the status code once the condition holds, streamed
/// (the headers go at once, as dockerd sends them).
pub async fn wait(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let c = st.containers.get(&id)?;
    let cond = WaitCondition::parse(query_get(&q, "condition").unwrap_or(""))?;
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let svc = st.containers.clone();
    // Waiting starts now (a run that ends while the headers go is not missed).
    let code = async move { svc.wait(&c, cond).await };
    tokio::spawn(async move {
        let code = code.await;
        let body = serde_json::to_string(&WaitResponse {
            error: None,
            status_code: code,
        })
        .unwrap_or_default();
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

/// `POST /containers/{id}/pause`.
pub async fn pause(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.containers.pause(&id, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/unpause`.
pub async fn unpause(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.containers.pause(&id, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/rename`.
pub async fn rename(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let new = query_get(&q, "name").unwrap_or("");
    st.containers.rename(&id, new).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/update`.
pub async fn update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let body: UpdateConfig = super::body::read(req).await?;
    let warnings = st.containers.update(&id, body).await?;
    Ok(Json(UpdateResponse {
        warnings: Some(warnings),
    })
    .into_response())
}

/// `POST /containers/{id}/resize`.
pub async fn resize(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let h = query_get(&q, "h").and_then(|v| v.parse().ok()).unwrap_or(0);
    let w = query_get(&q, "w").and_then(|v| v.parse().ok()).unwrap_or(0);
    st.containers.resize(&id, "", w, h).await?;
    Ok(StatusCode::OK.into_response())
}
