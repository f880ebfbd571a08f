//! Exec and attach over a session (SPDY streams, or WebSocket channels made into
//! streams), as Kubernetes' remotecommand protocols define them: the client opens an
//! `error` stream and, as the request asks, `stdin`,
//! `stdout`, `stderr` and (v3 and later, with a terminal) `resize` streams, each named
//! by its `streamtype` header. Output goes to stdout/stderr, stdin to the process, each
//! resize (a JSON `{"Width":..,"Height":..}`) to its terminal; at the end v4 writes a
//! `metav1.Status` on the error stream (Success, or Failure with the exit code as
//! client-go reads it), older versions a plain message on failure only.

use super::session::{Session, Stream, Writer};
use crate::cri::io::{Output, Stream as Out};
use crate::cri::{cri, Cri};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The subprotocols served, best first.
pub const PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// Whether the protocol ends with a `metav1.Status` on the error stream (v4, and
/// WebSocket's v5, which reports as v4 does).
pub fn reports_status(proto: &str) -> bool {
    matches!(proto, "v4.channel.k8s.io" | "v5.channel.k8s.io")
}

/// Whether the protocol carries terminal resizes (v3 and later).
pub fn resizes(proto: &str) -> bool {
    reports_status(proto) || proto == "v3.channel.k8s.io"
}

/// How long the client has to open its streams.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the session runs.
pub enum Target {
    /// A new process.
    Exec(cri::ExecRequest),
    /// The container's own.
    Attach(cri::AttachRequest),
}

/// A terminal size, as the resize stream carries it.
#[derive(Debug, Deserialize)]
struct TermSize {
    #[serde(rename = "Width")]
    width: u16,
    #[serde(rename = "Height")]
    height: u16,
}

/// metav1.Status, as much of it as the protocol uses.
#[derive(Debug, Serialize)]
struct Status {
    metadata: Empty,
    status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
}

#[derive(Debug, Serialize)]
struct Empty {}

#[derive(Debug, Serialize)]
struct Details {
    causes: Vec<Cause>,
}

#[derive(Debug, Serialize)]
struct Cause {
    reason: &'static str,
    message: String,
}

/// The outcome to report.
enum Outcome {
    Exited(u32),
    Failed(String),
}

fn status_json(o: &Outcome) -> Vec<u8> {
    let s = match o {
        Outcome::Exited(0) => Status {
            metadata: Empty {},
            status: "Success",
            message: String::new(),
            reason: String::new(),
            details: None,
        },
        Outcome::Exited(code) => Status {
            metadata: Empty {},
            status: "Failure",
            message: format!("command terminated with non-zero exit code: exit status {code}"),
            reason: "NonZeroExitCode".into(),
            details: Some(Details {
                causes: vec![Cause {
                    reason: "ExitCode",
                    message: code.to_string(),
                }],
            }),
        },
        Outcome::Failed(m) => Status {
            metadata: Empty {},
            status: "Failure",
            message: m.clone(),
            reason: "InternalError".into(),
            details: None,
        },
    };
    serde_json::to_vec(&s).unwrap_or_default()
}

#[derive(Default)]
struct Streams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

/// Waits for the streams the request needs (or the timeout, or the client's end).
async fn accept(session: &mut Session, want: usize) -> Streams {
    let mut s = Streams::default();
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + STREAM_CREATION_TIMEOUT;
    while got < want {
        let next = tokio::time::timeout_at(deadline, session.incoming.recv()).await;
        let Ok(Some(st)) = next else { break };
        let slot = match st.header("streamtype") {
            Some("error") => &mut s.error,
            Some("stdin") => &mut s.stdin,
            Some("stdout") => &mut s.stdout,
            Some("stderr") => &mut s.stderr,
            Some("resize") => &mut s.resize,
            other => {
                tracing::debug!(?other, "unexpected stream type");
                st.writer().reset().await;
                continue;
            }
        };
        if slot.is_none() {
            got += 1;
        }
        *slot = Some(st);
    }
    s
}

/// Copies resize events to the process's terminal.
fn pump_resize(cri: Arc<Cri>, mut st: Stream, id: String, exec_id: String) {
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        while let Some(b) = st.read().await {
            buf.extend_from_slice(&b);
            let mut consumed = 0;
            let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<TermSize>();
            while let Some(Ok(size)) = it.next() {
                consumed = it.byte_offset();
                let _ = cri
                    .sv
                    .resize(&id, &exec_id, u32::from(size.width), u32::from(size.height))
                    .await;
            }
            buf.drain(..consumed);
        }
    });
}

/// Copies output to the client until the process's output ends.
async fn pump_output(
    mut rx: tokio::sync::broadcast::Receiver<Output>,
    stdout: Option<Writer>,
    stderr: Option<Writer>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match rx.recv().await {
            Ok(Output::Data(Out::Stdout, b)) => {
                if let Some(w) = &stdout {
                    if w.write(&b).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Output::Data(Out::Stderr, b)) => {
                if let Some(w) = stderr.as_ref().or(stdout.as_ref()) {
                    if w.write(&b).await.is_err() {
                        return;
                    }
                }
            }
            Ok(Output::End) | Err(RecvError::Closed) => return,
            Err(RecvError::Lagged(n)) => {
                tracing::debug!(n, "attach client too slow; output skipped")
            }
        }
    }
}

async fn finish(streams: &Streams, session: &Session, v4: bool, outcome: Outcome) {
    for w in [&streams.stdout, &streams.stderr].into_iter().flatten() {
        w.writer().close().await;
    }
    if let Some(e) = &streams.error {
        let w = e.writer();
        if v4 {
            let _ = w.write(&status_json(&outcome)).await;
        } else if let Outcome::Failed(m) = &outcome {
            let _ = w.write(m.as_bytes()).await;
        } else if let Outcome::Exited(c) = outcome {
            if c != 0 {
                let _ = w
                    .write(
                        format!("command terminated with non-zero exit code: exit status {c}")
                            .as_bytes(),
                    )
                    .await;
            }
        }
        w.close().await;
    }
    session.shutdown().await;
}

/// Serves an exec or attach session to its end.
pub async fn serve(cri: Arc<Cri>, mut session: Session, target: Target, proto: &str) {
    let v4 = reports_status(proto);
    let resize_ok = resizes(proto);
    let (stdin, stdout, stderr, tty) = match &target {
        Target::Exec(e) => (e.stdin, e.stdout, e.stderr, e.tty),
        Target::Attach(a) => (a.stdin, a.stdout, a.stderr, a.tty),
    };
    let want = 1
        + usize::from(stdin)
        + usize::from(stdout)
        + usize::from(stderr && !tty)
        + usize::from(tty && resize_ok);
    let mut streams = accept(&mut session, want).await;
    if streams.error.is_none() {
        tracing::debug!("client opened no error stream; ending");
        session.shutdown().await;
        return;
    }
    let outcome = match target {
        Target::Exec(e) => exec(&cri, &mut streams, e).await,
        Target::Attach(a) => attach(&cri, &mut session, &mut streams, a).await,
    };
    finish(&streams, &session, v4, outcome).await;
}

fn pump_stdin(
    mut st: Stream,
    io: Arc<crate::cri::io::ContainerIo>,
    on_eof: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Some(b) = st.read().await {
            let mut g = io.stdin.lock().await;
            let Some(w) = g.as_mut() else { break };
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
        on_eof.await;
    })
}

async fn exec(cri: &Arc<Cri>, streams: &mut Streams, e: cri::ExecRequest) -> Outcome {
    let (p, rx) = match cri
        .start_exec(&e.container_id, e.cmd.clone(), e.tty, e.stdin)
        .await
    {
        Ok(p) => p,
        Err(err) => return Outcome::Failed(err.to_string()),
    };
    if let Some(st) = streams.stdin.take() {
        let (cri2, io, id, exec_id) = (
            cri.clone(),
            p.io.clone(),
            p.container_id.clone(),
            p.exec_id.clone(),
        );
        pump_stdin(st, p.io.clone(), async move {
            // End of input: the process reads end-of-file.
            io.stdin.lock().await.take();
            let _ = cri2.sv.close_stdin(&id, &exec_id).await;
        });
    }
    if let Some(st) = streams.resize.take() {
        pump_resize(cri.clone(), st, p.container_id.clone(), p.exec_id.clone());
    }
    let out = pump_output(
        rx,
        streams.stdout.as_ref().map(Stream::writer),
        streams.stderr.as_ref().map(Stream::writer),
    );
    let run = async {
        let status = cri.wait_exec(&p).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), p.io.finish()).await;
        status
    };
    let (status, ()) = tokio::join!(run, out);
    cri.end_exec(&p).await;
    match status {
        Ok(code) => Outcome::Exited(code),
        Err(err) => Outcome::Failed(err.to_string()),
    }
}

async fn attach(
    cri: &Arc<Cri>,
    session: &mut Session,
    streams: &mut Streams,
    a: cri::AttachRequest,
) -> Outcome {
    let io = cri
        .ios
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&a.container_id)
        .cloned();
    let Some(io) = io else {
        return Outcome::Failed(format!("container {} is not running", a.container_id));
    };
    let stdin_once = cri
        .store
        .container(&a.container_id)
        .map(|c| c.get().config.stdin_once)
        .unwrap_or(false);
    let rx = io.out.subscribe();
    if io.finished() {
        return Outcome::Exited(0);
    }
    if let Some(st) = streams.stdin.take() {
        let (cri2, io2, id) = (cri.clone(), io.clone(), a.container_id.clone());
        let tty = a.tty;
        pump_stdin(st, io.clone(), async move {
            // As containerd: with stdin_once (and no terminal) the container's stdin
            // closes when the first attached client's does.
            if stdin_once && !tty {
                io2.stdin.lock().await.take();
                let _ = cri2.sv.close_stdin(&id, "").await;
            }
        });
    }
    if let Some(st) = streams.resize.take() {
        pump_resize(cri.clone(), st, a.container_id.clone(), String::new());
    }
    let out = pump_output(
        rx,
        streams.stdout.as_ref().map(Stream::writer),
        streams.stderr.as_ref().map(Stream::writer),
    );
    // The session ends with the container's output, or when the client goes away.
    tokio::select! {
        () = out => {}
        () = async { while session.incoming.recv().await.is_some() {} } => {}
    }
    Outcome::Exited(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_client_go_reads_them() {
        let ok: serde_json::Value =
            serde_json::from_slice(&status_json(&Outcome::Exited(0))).unwrap();
        assert_eq!(ok, serde_json::json!({"metadata": {}, "status": "Success"}));
        let bad: serde_json::Value =
            serde_json::from_slice(&status_json(&Outcome::Exited(3))).unwrap();
        assert_eq!(bad["reason"], "NonZeroExitCode");
        assert_eq!(
            bad["details"]["causes"][0],
            serde_json::json!({"reason": "ExitCode", "message": "3"})
        );
        let err: serde_json::Value =
            serde_json::from_slice(&status_json(&Outcome::Failed("no".into()))).unwrap();
        assert_eq!(err["status"], "Failure");
        assert_eq!(err["message"], "no");
    }
}
