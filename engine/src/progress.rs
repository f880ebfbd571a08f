//! Docker's JSON progress messages (`{"status","id","progressDetail","progress"}` lines),
//! streamed to API clients during pull, push, load and import.

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

/// `progressDetail` of a message.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Detail {
    /// Bytes done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// Bytes in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// `errorDetail` of a message.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorDetail {
    /// The error, one line.
    pub message: String,
}

/// One JSON message line.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// What is happening.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The layer or tag it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Byte counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<Detail>,
    /// A drawn progress bar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Text output (load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The error that ended the operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The same error, structured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    /// Extra structured result (push's digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

/// Sends progress messages to the response stream. Sending never fails: a client that
/// went away must not stop the work it started.
#[derive(Debug, Clone)]
pub struct Progress {
    tx: Option<mpsc::UnboundedSender<Bytes>>,
}

fn human(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.3}GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.2}MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}kB", n / 1e3)
    } else {
        format!("{n}B")
    }
}

/// Draws Docker's `[=====>     ]  1.2MB/3.4MB` bar.
pub fn bar(current: u64, total: u64) -> String {
    if total == 0 {
        return human(current);
    }
    let width = 50u64;
    let filled = (current.min(total) * width / total) as usize;
    let mut s = String::from("[");
    s.push_str(&"=".repeat(filled.saturating_sub(1)));
    if filled > 0 {
        s.push('>');
    }
    s.push_str(&" ".repeat(width as usize - filled.max(1) + usize::from(filled == 0)));
    s.push_str(&format!("] {:>8}/{}", human(current), human(total)));
    s
}

impl Progress {
    /// A sender and the stream of encoded lines it feeds.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Bytes>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx: Some(tx) }, rx)
    }

    /// A sender into an existing stream (a build's output).
    pub fn from_sender(tx: mpsc::UnboundedSender<Bytes>) -> Self {
        Self { tx: Some(tx) }
    }

    /// A sender that drops everything.
    pub fn discard() -> Self {
        Self { tx: None }
    }

    /// Sends one message.
    pub fn send(&self, msg: Message) {
        if let Some(tx) = &self.tx {
            if let Ok(mut line) = serde_json::to_vec(&msg) {
                line.push(b'\n');
                let _ = tx.send(Bytes::from(line));
            }
        }
    }

    /// A status line, optionally about one id.
    pub fn status(&self, id: Option<&str>, status: impl Into<String>) {
        self.send(Message {
            status: Some(status.into()),
            id: id.map(str::to_string),
            ..Default::default()
        });
    }

    /// A status line with an empty progressDetail, as Docker sends for layer states.
    pub fn layer(&self, id: &str, status: &str) {
        self.send(Message {
            status: Some(status.into()),
            id: Some(id.into()),
            progress_detail: Some(Detail::default()),
            ..Default::default()
        });
    }

    /// A byte-count progress line.
    pub fn bytes(&self, id: &str, action: &str, current: u64, total: u64) {
        self.send(Message {
            status: Some(action.into()),
            id: Some(id.into()),
            progress_detail: Some(Detail {
                current: Some(current),
                total: (total > 0).then_some(total),
            }),
            progress: Some(bar(current, total)),
            ..Default::default()
        });
    }

    /// Text output.
    pub fn stream(&self, text: impl Into<String>) {
        self.send(Message {
            stream: Some(text.into()),
            ..Default::default()
        });
    }

    /// The error that ends the stream.
    pub fn error(&self, message: impl Into<String>) {
        let message = message.into();
        self.send(Message {
            error: Some(message.clone()),
            error_detail: Some(ErrorDetail { message }),
            ..Default::default()
        });
    }

    /// An aux result.
    pub fn aux(&self, value: serde_json::Value) {
        self.send(Message {
            aux: Some(value),
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_has_fixed_width() {
        assert_eq!(bar(0, 100).find(']'), Some(51));
        assert_eq!(bar(50, 100).find(']'), Some(51));
        assert_eq!(bar(100, 100).find(']'), Some(51));
    }
}
