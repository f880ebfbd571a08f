//! Port forwarding over a SPDY session (`portforward.k8s.io`): for each connection the
//! client opens a pair of streams with the same `requestid` and `port` headers, an
//! `error` stream and a `data` stream. The data is copied to and from a TCP connection
//! to `127.0.0.1:PORT` made inside the pod's network namespace; a failure is written
//! to the error stream.

use super::session::{Session, Stream};
use crate::cri::{cri, netns, Cri};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The subprotocol.
pub const PROTOCOL: &str = "portforward.k8s.io";

/// Serves a port-forward session until the client ends it.
pub async fn serve(cri: Arc<Cri>, mut session: Session, req: cri::PortForwardRequest) {
    let netns = cri
        .store
        .sandbox(&req.pod_sandbox_id)
        .ok()
        .and_then(|s| s.get().netns);
    let mut errors: HashMap<String, Stream> = HashMap::new();
    let mut data: HashMap<String, Stream> = HashMap::new();
    while let Some(st) = session.incoming.recv().await {
        let id = st.header("requestid").unwrap_or("").to_string();
        match st.header("streamtype") {
            Some("error") => {
                errors.insert(id.clone(), st);
            }
            Some("data") => {
                data.insert(id.clone(), st);
            }
            _ => {
                st.writer().reset().await;
                continue;
            }
        }
        if errors.contains_key(&id) && data.contains_key(&id) {
            if let (Some(e), Some(d)) = (errors.remove(&id), data.remove(&id)) {
                tokio::spawn(forward(netns.clone(), e, d));
            }
        } else if errors.len() + data.len() > 1000 {
            // Halves of pairs that never complete: a misbehaving client.
            break;
        }
    }
    session.shutdown().await;
}

async fn forward(netns: Option<std::path::PathBuf>, err: Stream, mut data: Stream) {
    let ew = err.writer();
    let port = match data
        .header("port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p > 0)
    {
        Some(p) => p,
        None => {
            let _ = ew.write(b"invalid port header").await;
            ew.close().await;
            data.writer().close().await;
            return;
        }
    };
    let conn = match netns::connect_in(netns, port).await {
        Ok(c) => c,
        Err(e) => {
            let _ = ew
                .write(
                    format!("failed to connect to localhost:{port} inside the pod: {e}").as_bytes(),
                )
                .await;
            ew.close().await;
            data.writer().close().await;
            return;
        }
    };
    let (mut r, mut w) = conn.into_split();
    let dw = data.writer();
    let up = async move {
        while let Some(b) = data.read().await {
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if dw.write(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        dw.close().await;
    };
    tokio::join!(up, down);
    ew.close().await;
}
