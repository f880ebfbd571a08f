//! Exec and attach over WebSocket, as Kubernetes' `channel.k8s.io` protocols define
//! them (the kubelet's streaming server; client-go's WebSocket executor, which kubectl
//! uses from 1.30): every message is binary, its first byte the channel (0 stdin,
//! 1 stdout, 2 stderr, 3 error, 4 resize), the rest its data; from `v5.channel.k8s.io`
//! on, the client's message `[255, channel]` closes that channel (stdin's end of input,
//! which earlier versions cannot say). As the kubelet does, an empty message on the
//! lowest channel the server writes tells the client the session is up.
//!
//! The channels become the streams of a session, named as a SPDY client names them, so
//! exec and attach run as they do over SPDY. The base64 (text) variants are not
//! offered. The WebSocket itself is axum's (tungstenite): handshake, framing, masking,
//! pings.

use super::session::{Out, Session, Stream};
use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// The subprotocols served, best first.
pub const PROTOCOLS: [&str; 5] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5's close signal: `[CLOSE, channel]`.
const CLOSE: u8 = 255;

/// The channels an exec or attach request uses.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    /// The client sends input.
    pub stdin: bool,
    /// The client reads output.
    pub stdout: bool,
    /// The client reads errors apart (not with a terminal, which merges them).
    pub stderr: bool,
    /// A terminal: its size comes on the resize channel.
    pub tty: bool,
}

/// Starts a session over an upgraded WebSocket speaking `proto` (one of
/// [`PROTOCOLS`]): the streams of the channels `want` uses are there at once.
pub fn start(socket: WebSocket, proto: &str, want: Wanted) -> Session {
    let (tx, out_rx) = mpsc::channel::<Out>(256);
    let (in_tx, incoming) = mpsc::channel::<Stream>(8);
    let resize = want.tty && super::remotecommand::resizes(proto);
    let mut readers: HashMap<u8, mpsc::Sender<Bytes>> = HashMap::new();
    for (channel, kind, used) in [
        (ERROR, "error", true),
        (STDIN, "stdin", want.stdin),
        (STDOUT, "stdout", want.stdout),
        (STDERR, "stderr", want.stderr && !want.tty),
        (RESIZE, "resize", resize),
    ] {
        if !used {
            continue;
        }
        let (data_tx, data_rx) = mpsc::channel(64);
        if matches!(channel, STDIN | RESIZE) {
            readers.insert(channel, data_tx);
        }
        let headers = vec![("streamtype".to_string(), kind.to_string())];
        // Room for all five was made above.
        let _ = in_tx.try_send(Stream::new(
            u32::from(channel),
            headers,
            data_rx,
            tx.clone(),
        ));
    }
    let first = if want.stdout {
        STDOUT
    } else if want.stderr {
        STDERR
    } else {
        ERROR
    };
    let _ = tx.try_send(Out::Data(u32::from(first), Bytes::new(), false));
    let (sink, messages) = socket.split();
    tokio::spawn(write_loop(sink, out_rx));
    tokio::spawn(read_loop(messages, readers, in_tx, proto == PROTOCOLS[0]));
    Session::new(incoming, tx)
}

/// Frames what the session writes: data as `[channel, data...]`; the end as a close.
async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Out>,
) {
    while let Some(o) = rx.recv().await {
        match o {
            Out::Data(channel, data, false) => {
                let mut m = Vec::with_capacity(1 + data.len());
                // Channels are numbered below 5 here.
                m.push(channel as u8);
                m.extend_from_slice(&data);
                if sink.send(Message::Binary(m.into())).await.is_err() {
                    return;
                }
            }
            Out::Shutdown => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            // A channel's end is the session's; SPDY's replies, resets and pings have
            // no WebSocket counterpart (tungstenite answers pings itself).
            Out::Data(_, _, true) | Out::Reply(_) | Out::Rst(_) | Out::Ping(_) => {}
        }
    }
    let _ = sink.close().await;
}

/// Routes the client's messages to the stdin and resize streams until it goes away
/// (then the session's incoming side ends, as a SPDY connection's does).
async fn read_loop(
    mut messages: futures_util::stream::SplitStream<WebSocket>,
    mut readers: HashMap<u8, mpsc::Sender<Bytes>>,
    incoming: mpsc::Sender<Stream>,
    v5: bool,
) {
    while let Some(Ok(msg)) = messages.next().await {
        match msg {
            Message::Binary(b) if !b.is_empty() => {
                let channel = b[0];
                if channel == CLOSE && v5 {
                    // The client's side of that channel is done: its reader sees the end.
                    if let Some(c) = b.get(1) {
                        readers.remove(c);
                    }
                    continue;
                }
                if let Some(s) = readers.get(&channel) {
                    if b.len() > 1 {
                        // A stream nobody reads (its receiver dropped) loses its data.
                        let _ = s.send(b.slice(1..)).await;
                    }
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    drop(incoming);
}
