//! Docker's container events (`GET /events`): published live to subscribers and kept,
//! the last 1024, for `since`.

use super::record::Record;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Events kept for `since`.
const KEPT: usize = 1024;

/// The event log.
pub struct Events {
    live: broadcast::Sender<Value>,
    recent: Mutex<VecDeque<Value>>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            live: broadcast::channel(KEPT).0,
            recent: Mutex::new(VecDeque::new()),
        }
    }
}

impl Events {
    /// Records and publishes a container event (`start`, `die`, ...) with extra
    /// attributes.
    pub fn emit(&self, action: &str, rec: &Record, extra: &[(&str, String)]) {
        let mut attrs = rec.labels();
        attrs.insert("image".into(), json!(rec.image));
        attrs.insert("name".into(), json!(rec.name));
        for (k, v) in extra {
            attrs.insert(k.to_string(), json!(v));
        }
        let now = chrono::Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or(0);
        let ev = json!({
            "status": action, "id": rec.id, "from": rec.image,
            "Type": "container", "Action": action,
            "Actor": {"ID": rec.id, "Attributes": attrs},
            "scope": "local", "time": now.timestamp(), "timeNano": nanos,
        });
        let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        r.push_back(ev.clone());
        if r.len() > KEPT {
            r.pop_front();
        }
        drop(r);
        let _ = self.live.send(ev);
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Value> {
        self.live.subscribe()
    }

    /// Kept events at or after `since` (nanoseconds since the epoch).
    pub fn since(&self, since: i64) -> Vec<Value> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| e["timeNano"].as_i64().unwrap_or(0) >= since)
            .cloned()
            .collect()
    }
}
