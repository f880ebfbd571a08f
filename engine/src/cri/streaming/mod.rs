//! The streaming server behind the URLs Exec, Attach and PortForward return, as the
//! kubelet's CRI streaming server: a single-use token per request (valid one minute),
//! an HTTP endpoint on loopback (`--cri-stream-address`), and an upgrade to SPDY/3.1
//! with the protocols client-go speaks: `v4.channel.k8s.io` (and v3, v2, v1) for exec
//! and attach, `portforward.k8s.io` for port forwarding.

pub mod portforward;
pub mod remotecommand;
pub mod session;
pub mod spdy;
pub mod websocket;

use super::{cri, Cri};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a URL stays valid.
const TOKEN_TTL: Duration = Duration::from_secs(60);

/// A request waiting for its stream.
#[derive(Debug, Clone)]
pub enum Request {
    /// Exec.
    Exec(cri::ExecRequest),
    /// Attach.
    Attach(cri::AttachRequest),
    /// PortForward.
    PortForward(cri::PortForwardRequest),
}

impl Request {
    fn kind(&self) -> &'static str {
        match self {
            Request::Exec(_) => "exec",
            Request::Attach(_) => "attach",
            Request::PortForward(_) => "portforward",
        }
    }
}

/// The requests waiting for their streams, by token.
pub struct Registry {
    base: OnceLock<String>,
    pending: Mutex<HashMap<String, (Instant, Request)>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// Empty; `serve` sets the base URL.
    pub fn new() -> Self {
        Self {
            base: OnceLock::new(),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps a request and returns its URL.
    pub fn add(&self, r: Request) -> String {
        let token = super::new_id()[..32].to_string();
        let kind = r.kind();
        let mut g = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|_, (t, _)| t.elapsed() < TOKEN_TTL);
        g.insert(token.clone(), (Instant::now(), r));
        let base = self
            .base
            .get()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1:0");
        format!("{base}/{kind}/{token}")
    }

    /// Takes a request out (a URL serves once).
    fn take(&self, token: &str) -> Option<Request> {
        let mut g = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        g.remove(token)
            .filter(|(t, _)| t.elapsed() < TOKEN_TTL)
            .map(|(_, r)| r)
    }
}

/// Binds the streaming server on `addr` and serves until `stop`; the bound address.
pub async fn serve(
    cri: Arc<Cri>,
    addr: &str,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let _ = cri.streams.base.set(format!("http://{local}"));
    let app = axum::Router::new()
        .route("/{kind}/{token}", axum::routing::any(handle))
        .with_state(cri);
    tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "CRI streaming server ended");
        }
    });
    Ok(local)
}

/// The subprotocols offered in `name` (SPDY's `X-Stream-Protocol-Version`,
/// WebSocket's `Sec-WebSocket-Protocol`), repeated or comma-joined.
fn offered(req: &axum::extract::Request, name: impl header::AsHeaderName) -> Vec<String> {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn refuse(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, msg.into()).into_response()
}

async fn handle(
    State(cri): State<Arc<Cri>>,
    Path((kind, token)): Path<(String, String)>,
    mut req: axum::extract::Request,
) -> Response {
    let Some(r) = cri.streams.take(&token) else {
        return refuse(StatusCode::NOT_FOUND, "unknown or expired streaming token");
    };
    if r.kind() != kind {
        return refuse(StatusCode::NOT_FOUND, "unknown or expired streaming token");
    }
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if upgrade == "websocket" {
        return websocket_upgrade(cri, r, req).await;
    }
    if upgrade != "spdy/3.1" {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: this server speaks SPDY/3.1 and WebSocket (Upgrade: SPDY/3.1 or websocket)",
        );
    }
    let server: &[&str] = match r {
        Request::PortForward(_) => &[portforward::PROTOCOL],
        _ => &remotecommand::PROTOCOLS,
    };
    let client = offered(&req, "x-stream-protocol-version");
    // The server's preference among what the client offers (as Kubernetes' handshake).
    let Some(proto) = server
        .iter()
        .find(|p| client.iter().any(|c| c == *p))
        .copied()
    else {
        return refuse(
            StatusCode::FORBIDDEN,
            format!("unable to upgrade: unable to negotiate protocol: client supports {client:?}, server supports {server:?}"),
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "stream upgrade failed");
                return;
            }
        };
        let session = match spdy::start(hyper_util::rt::TokioIo::new(upgraded)) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "SPDY session");
                return;
            }
        };
        match r {
            Request::PortForward(pf) => portforward::serve(cri, session, pf).await,
            Request::Exec(e) => {
                remotecommand::serve(cri, session, remotecommand::Target::Exec(e), proto).await
            }
            Request::Attach(a) => {
                remotecommand::serve(cri, session, remotecommand::Target::Attach(a), proto).await
            }
        }
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert("x-stream-protocol-version", HeaderValue::from_static(proto));
    resp
}

/// Exec or attach over WebSocket: the subprotocol is the server's preference among
/// the client's (`Sec-WebSocket-Protocol`); none offered is `channel.k8s.io`, one that
/// matches nothing is refused, as the kubelet refuses it.
async fn websocket_upgrade(cri: Arc<Cri>, r: Request, req: axum::extract::Request) -> Response {
    use axum::extract::{ws::WebSocketUpgrade, FromRequestParts};
    let wanted = match &r {
        Request::PortForward(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "unable to upgrade: port forwarding is served over SPDY/3.1 only",
            )
        }
        Request::Exec(e) => websocket::Wanted {
            stdin: e.stdin,
            stdout: e.stdout,
            stderr: e.stderr,
            tty: e.tty,
        },
        Request::Attach(a) => websocket::Wanted {
            stdin: a.stdin,
            stdout: a.stdout,
            stderr: a.stderr,
            tty: a.tty,
        },
    };
    let offered = offered(&req, header::SEC_WEBSOCKET_PROTOCOL);
    let (mut parts, _body) = req.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws.protocols(websocket::PROTOCOLS),
        Err(rejection) => return rejection.into_response(),
    };
    let proto = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(p) => p.to_string(),
        None if offered.is_empty() => "channel.k8s.io".to_string(),
        None => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "unable to upgrade: requested protocol(s) are not supported: {offered:?}; supports {:?}",
                    websocket::PROTOCOLS
                ),
            )
        }
    };
    ws.on_upgrade(move |socket| async move {
        let session = websocket::start(socket, &proto, wanted);
        let target = match r {
            Request::Exec(e) => remotecommand::Target::Exec(e),
            Request::Attach(a) => remotecommand::Target::Attach(a),
            Request::PortForward(_) => return,
        };
        remotecommand::serve(cri, session, target, &proto).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_serve_once() {
        let r = Registry::new();
        let _ = r.base.set("http://127.0.0.1:1".into());
        let url = r.add(Request::PortForward(Default::default()));
        assert!(url.starts_with("http://127.0.0.1:1/portforward/"));
        let token = url.rsplit('/').next().unwrap();
        assert!(r.take(token).is_some());
        assert!(r.take(token).is_none());
    }
}
