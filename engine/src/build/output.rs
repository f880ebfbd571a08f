//! What the build prints: Docker's JSON messages (`{"stream": ...}`, `{"aux": ...}`,
//! `{"errorDetail": ...}`), one per line, as the docker CLI's classic build shows them.
//! With `q`, the step output is held back and only the image ID is sent (or, on
//! failure, what was held back and the error), as dockerd does.

use crate::progress::Progress;
use bytes::Bytes;
use serde_json::json;
use std::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;

/// Held-back output kept at most (the rest of a long quiet build's log is dropped).
const QUIET_BUFFER: usize = 16 << 20;

/// The build's output stream.
pub struct Output {
    tx: UnboundedSender<Bytes>,
    quiet: bool,
    held: Mutex<(Vec<Bytes>, usize)>,
}

fn line(v: serde_json::Value) -> Bytes {
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    Bytes::from(b)
}

impl Output {
    /// Output into `tx`; with `quiet`, step output is held back.
    pub fn new(tx: UnboundedSender<Bytes>, quiet: bool) -> Self {
        Self {
            tx,
            quiet,
            held: Mutex::new((Vec::new(), 0)),
        }
    }

    fn send(&self, b: Bytes) {
        if self.quiet {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if held.1 + b.len() <= QUIET_BUFFER {
                held.1 += b.len();
                held.0.push(b);
            }
            return;
        }
        let _ = self.tx.send(b);
    }

    /// Text on the build's stdout.
    pub fn stream(&self, text: impl Into<String>) {
        self.send(line(json!({ "stream": text.into() })));
    }

    /// Text a RUN step wrote to stderr (shown in red, as dockerd marks it).
    pub fn stderr(&self, text: &str) {
        self.stream(format!("\u{1b}[91m{text}\u{1b}[0m"));
    }

    /// The ID of a stage's image.
    pub fn aux_id(&self, id: &str) {
        self.send(line(json!({ "aux": { "ID": id } })));
    }

    /// Whether the client has gone away.
    pub fn closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves when the client has gone away.
    pub async fn gone(&self) {
        self.tx.closed().await
    }

    /// A progress sender for a pull made by the build (nothing with `q`).
    pub fn progress(&self) -> Progress {
        if self.quiet {
            Progress::discard()
        } else {
            Progress::from_sender(self.tx.clone())
        }
    }

    /// Ends a successful build: with `q`, the image ID alone.
    pub fn done(&self, id: &str) {
        if self.quiet {
            let _ = self.tx.send(line(json!({ "stream": format!("{id}\n") })));
        }
    }

    /// Ends a failed build: what was held back, then the error (with the exit code of
    /// a failed RUN, which the CLI exits with).
    pub fn error(&self, message: &str, code: Option<i64>) {
        if self.quiet {
            let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()));
            for b in held.0 {
                let _ = self.tx.send(b);
            }
        }
        let detail = match code {
            Some(c) => json!({ "code": c, "message": message }),
            None => json!({ "message": message }),
        };
        let _ = self
            .tx
            .send(line(json!({ "errorDetail": detail, "error": message })));
    }
}
