//! A streaming session as the exec, attach and port-forward handlers see it, whatever
//! carries it (SPDY/3.1 streams, or WebSocket channels): streams with headers, read as
//! the client sends, written through a handle; what is written goes to the session's
//! writer as `Out` items, which the transport frames.

use bytes::Bytes;
use std::io;
use tokio::sync::mpsc;

/// Data is handed to the transport in pieces of this size.
const DATA_CHUNK: usize = 32 * 1024;

/// Header names and values of a stream (names lower-case).
pub type Headers = Vec<(String, String)>;

/// What the session's writer sends.
pub(super) enum Out {
    /// Accepts the stream (SPDY's SYN_REPLY).
    Reply(u32),
    /// Data on a stream; `true` closes the server's side.
    Data(u32, Bytes, bool),
    /// Refuses or ends a stream.
    Rst(u32),
    /// Answers a ping.
    Ping(u32),
    /// Ends the session once what was queued is written.
    Shutdown,
}

/// A stream the client opened.
pub struct Stream {
    /// Its ID.
    pub id: u32,
    /// Its headers (`streamtype`, `port`, `requestid`, ...).
    pub headers: Headers,
    rx: mpsc::Receiver<Bytes>,
    tx: mpsc::Sender<Out>,
}

impl Stream {
    /// A stream whose data arrives on `rx` and whose writes go to `tx`.
    pub(super) fn new(
        id: u32,
        headers: Headers,
        rx: mpsc::Receiver<Bytes>,
        tx: mpsc::Sender<Out>,
    ) -> Self {
        Self {
            id,
            headers,
            rx,
            tx,
        }
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next data the client sent; None once it closed its side.
    pub async fn read(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    /// A handle for writing, usable apart from the reading side.
    pub fn writer(&self) -> Writer {
        Writer {
            id: self.id,
            tx: self.tx.clone(),
        }
    }
}

/// The writing side of a stream.
#[derive(Clone)]
pub struct Writer {
    id: u32,
    tx: mpsc::Sender<Out>,
}

impl Writer {
    /// Sends data.
    pub async fn write(&self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(DATA_CHUNK) {
            self.tx
                .send(Out::Data(self.id, Bytes::copy_from_slice(chunk), false))
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        }
        Ok(())
    }

    /// Closes this side (FIN).
    pub async fn close(&self) {
        let _ = self.tx.send(Out::Data(self.id, Bytes::new(), true)).await;
    }

    /// Resets the stream.
    pub async fn reset(&self) {
        let _ = self.tx.send(Out::Rst(self.id)).await;
    }
}

/// A server-side session over an upgraded connection.
pub struct Session {
    /// Streams as the client opens them; None once the connection is gone.
    pub incoming: mpsc::Receiver<Stream>,
    tx: mpsc::Sender<Out>,
}

impl Session {
    /// A session whose streams arrive on `incoming` and whose writes go to `tx`.
    pub(super) fn new(incoming: mpsc::Receiver<Stream>, tx: mpsc::Sender<Out>) -> Self {
        Self { incoming, tx }
    }

    /// Ends the session once what was queued is written.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Out::Shutdown).await;
    }
}
