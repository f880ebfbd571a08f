//! Docker's container events (`GET /events`): berth-api's messages, published live to
//! subscribers and kept, the last 1024, for `since`.

use super::record::Record;
use berth_api::events::{Actor, Message};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events kept for `since`.
const KEPT: usize = 1024;

/// The event log. Events are shared, not copied: the channel's slots are allocated up
/// front, and a slot of a pointer keeps its 1024 at 32 kB whatever a message's size.
pub struct Events {
    live: broadcast::Sender<Arc<Message>>,
    recent: Mutex<VecDeque<Arc<Message>>>,
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
    /// attributes (after the container's labels, its image and name, as dockerd's).
    pub fn emit(&self, action: &str, rec: &Record, extra: &[(&str, String)]) {
        let mut attributes = rec.labels();
        attributes.insert("image".into(), rec.image.clone());
        attributes.insert("name".into(), rec.name.clone());
        for (k, v) in extra {
            attributes.insert(k.to_string(), v.clone());
        }
        let now = chrono::Utc::now();
        let ev = Message {
            status: action.into(),
            id: rec.id.clone(),
            from: rec.image.clone(),
            kind: "container".into(),
            action: action.into(),
            actor: Actor {
                id: rec.id.clone(),
                attributes,
            },
            scope: "local".into(),
            time: now.timestamp(),
            time_nano: now.timestamp_nanos_opt().unwrap_or(0),
        };
        self.publish(ev);
    }

    /// Records and publishes an event made elsewhere (a network's connect and
    /// disconnect).
    pub fn publish(&self, ev: Message) {
        let ev = Arc::new(ev);
        let mut r = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        r.push_back(Arc::clone(&ev));
        if r.len() > KEPT {
            r.pop_front();
        }
        drop(r);
        let _ = self.live.send(ev);
    }

    /// Live events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Message>> {
        self.live.subscribe()
    }

    /// Kept events at or after `since` (nanoseconds since the epoch).
    pub fn since(&self, since: i64) -> Vec<Arc<Message>> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| e.time_nano >= since)
            .cloned()
            .collect()
    }
}
