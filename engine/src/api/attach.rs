//! Attached streams: `POST /containers/{id}/attach` and the stream of an exec start.
//! The connection is hijacked (HTTP upgrade to a raw stream, as dockerd does; a client
//! that does not ask for one gets the output as the response body); output is framed
//! (`stdout`/`stderr` multiplexing) unless the process has a terminal, and stdin is fed
//! to the process, scanned for the detach keys when it has a terminal.

use super::{query_bool, query_get, query_pairs, ApiError, ApiResult, AppState};
use crate::containers::io::{frame, Chunk};
use crate::containers::{Container, ContainerService, Exec};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

/// Whose stdin an attached client feeds.
#[derive(Clone)]
pub(super) enum Target {
    /// A container's main process.
    Container(Arc<Container>),
    /// An exec'd process.
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
pub(super) type StartExec =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

pub(super) struct Attach {
    pub(super) svc: Arc<ContainerService>,
    pub(super) target: Target,
    pub(super) rx: Option<broadcast::Receiver<Chunk>>,
    pub(super) tty: bool,
    pub(super) stdin: bool,
    pub(super) close_stdin_at_eof: bool,
    /// The detach sequence to look for in stdin (with a TTY, as dockerd).
    pub(super) detach_keys: Option<Vec<u8>>,
    /// Run first: exec start hijacks the connection, then starts the process.
    pub(super) start: Option<StartExec>,
}

/// The text of a failed exec start as dockerd writes it into the stream.
pub(super) fn start_failure(tty: bool, msg: &str) -> Vec<u8> {
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
                    .wait_for(|g| {
                        crate::containers::state::has_task(g.status) || g.exits > exits || g.removed
                    })
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

pub(super) fn hijack(mut req: Request, a: Attach) -> Response {
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

pub(super) fn closed_receiver() -> broadcast::Receiver<Chunk> {
    let (tx, rx) = broadcast::channel(1);
    let _ = tx.send(Chunk::End);
    rx
}

/// `POST /containers/{id}/attach`.
pub async fn attach(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    req: Request,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let svc = st.containers.clone();
    let e = svc.get(&id)?;
    let rec = e.record();
    let tty = rec.tty();
    let status = rec.state.status();
    let wants_out = query_bool(&q, "stdout") || query_bool(&q, "stderr");
    use crate::containers::state::Status;
    // As dockerd, a stream attached to a stopped container carries its next run:
    // `start -a` attaches first, then starts.
    let next_run = query_bool(&q, "stream") && status == Status::Exited;
    let ended = !status.is_running() && status != Status::Created && !next_run;
    let rx = (wants_out && !ended).then(|| e.out.subscribe());
    let stdin = query_bool(&q, "stdin") && rec.config.open_stdin;
    let detach_keys = match query_get(&q, "detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => berth_api::detach::parse(k)
            .map_err(|_| ApiError::bad_request(format!("Invalid detach keys ({k}) provided")))?,
        None => berth_api::detach::DEFAULT.to_vec(),
    };
    let a = Attach {
        svc: svc.clone(),
        target: Target::Container(e.clone()),
        rx: if ended { Some(closed_receiver()) } else { rx },
        tty,
        stdin,
        // As dockerd: only without a TTY does the end of an attached stdin close the
        // container's (a TTY session ends by detaching, and a later attach must still be
        // able to type).
        close_stdin_at_eof: rec.config.stdin_once && !tty,
        // As dockerd: only a TTY's input is scanned for the detach sequence.
        detach_keys: tty.then_some(detach_keys),
        start: None,
    };
    Ok(hijack(req, a))
}
