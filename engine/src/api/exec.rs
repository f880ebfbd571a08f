//! `/containers/{id}/exec` and `/exec/...`: create, start (hijacked or detached),
//! resize, inspect.

use super::attach::{hijack, Attach, StartExec, Target};
use super::{query_get, query_pairs, ApiError, ApiResult, AppState};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::exec::{ExecConfig, ExecInspect, ExecProcessConfig, ExecStartCheck, IdResponse};
use std::time::Duration;

/// `POST /containers/{id}/exec`.
pub async fn create(
    State(st): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let body: ExecConfig = super::body::read(req).await?;
    // Checked before the container is looked up, as dockerd does.
    if body.cmd.as_ref().is_none_or(|c| c.is_empty()) {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let exec_id = st.containers.exec_create(&id, &body)?;
    Ok((StatusCode::CREATED, Json(IdResponse { id: exec_id })).into_response())
}

/// `POST /exec/{id}/start`.
pub async fn start(
    State(st): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let svc = st.containers.clone();
    let (parts, body) = req.into_parts();
    // The body is read before the exec is looked up, as dockerd does.
    let body: Option<ExecStartCheck> = {
        let req = Request::from_parts(parts.clone(), body);
        let ct = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("?").to_string());
        let bytes = super::body::collect(req.into_body(), super::body::LIMIT).await?;
        berth_api::json::decode_body(ct.as_deref(), &bytes)
            .map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    let exec = svc.exec(&id)?;
    // The process has a terminal if its create asked for one; the start's Tty only says
    // whether the stream is raw or multiplexed (dockerd's reading of the two).
    // A start without a body (an old client) streams as its create asked.
    let raw = body.as_ref().map_or(exec.tty(), |b| b.tty);
    let detach = body.as_ref().is_some_and(|b| b.detach);
    // As dockerd: what fails before the process is tried is an HTTP error...
    svc.exec_startable(&exec)?;
    if detach {
        svc.exec_start(&exec).await?;
        return Ok(StatusCode::OK.into_response());
    }
    // ...and a process that cannot start is reported in the hijacked stream.
    let rx = exec.out.subscribe();
    let (starter, started) = (svc.clone(), exec.clone());
    let start: StartExec = Box::pin(async move {
        starter
            .exec_start(&started)
            .await
            .map_err(|e| e.to_string())
    });
    let a = Attach {
        svc: svc.clone(),
        target: Target::Exec(exec.clone()),
        rx: Some(rx),
        tty: raw,
        stdin: exec.config.attach_stdin,
        close_stdin_at_eof: true,
        // With a terminal, the client's detach keys (its create's, or dockerd's).
        detach_keys: exec.tty().then(|| exec.detach_keys()),
        start: Some(start),
    };
    Ok(hijack(Request::from_parts(parts, Body::empty()), a))
}

/// `POST /exec/{id}/resize`.
pub async fn resize(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let svc = st.containers.clone();
    let exec = svc.exec(&id)?;
    // As dockerd: the process starts only once exec start has hijacked its connection,
    // so a resize sent right after that waits for it (bounded).
    let mut launched = exec.launched.subscribe();
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        launched.wait_for(|l| *l).await.is_ok()
    })
    .await;
    if ready.is_err() {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "timeout waiting for exec session ready",
        ));
    }
    let q = query_pairs(&uri);
    let h = query_get(&q, "h").and_then(|v| v.parse().ok()).unwrap_or(0);
    let w = query_get(&q, "w").and_then(|v| v.parse().ok()).unwrap_or(0);
    svc.resize(&exec.container, &exec.id, w, h).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /exec/{id}/json`.
pub async fn inspect(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let exec = st.containers.exec(&id)?;
    let (running, code, pid) = exec.state();
    let c = &exec.config;
    let cmd = c.cmd.clone().unwrap_or_default();
    Ok(Json(ExecInspect {
        id: exec.id.clone(),
        running,
        exit_code: code,
        process_config: Some(ExecProcessConfig {
            tty: exec.tty(),
            entrypoint: cmd.first().cloned().unwrap_or_default(),
            arguments: cmd.get(1..).unwrap_or_default().to_vec(),
            privileged: Some(c.privileged),
            user: c.user.clone(),
        }),
        open_stdin: c.attach_stdin,
        open_stderr: c.attach_stderr,
        open_stdout: c.attach_stdout,
        can_remove: false,
        container_id: exec.container.clone(),
        detach_keys: c.detach_keys.clone(),
        pid: i64::from(pid),
    })
    .into_response())
}
