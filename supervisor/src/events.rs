//! The event bus: shims forward their events over ttrpc (Events/Forward, on the
//! address given to them as TTRPC_ADDRESS); the supervisor adds its own; subscribers
//! receive them in the order they arrived, filtered.

use std::sync::Arc;
use std::time::SystemTime;

use berth_proto::v1::{self as pb, event::Kind};
use containerd_shim_protos::events::task as ct;
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::ttrpc;
use tokio::sync::broadcast;

/// Called with (namespace, exit) for every TaskExit before it is fanned out.
pub type ExitHook = Arc<dyn Fn(&str, &pb::TaskExit) + Send + Sync>;

/// Fan-out of envelopes. They are shared, not copied: the channel's 4096 slots are
/// allocated up front, and a slot of a pointer keeps them at 128 kB whatever an
/// envelope's size (the heap at rest: 2.6 -> 2.3 MB).
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<pb::Envelope>>,
    on_exit: ExitHook,
}

/// A protobuf timestamp from seconds and nanos.
pub fn ts((seconds, nanos): (i64, i32)) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos }
}

/// Now as (seconds, nanos).
pub fn now() -> (i64, i32) {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i32)
}

use berth_proto::prost_types;

impl Bus {
    /// A bus; `on_exit(namespace, exit)` is called for every TaskExit first.
    pub fn new(on_exit: ExitHook) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self { tx, on_exit }
    }

    /// Publish one event.
    pub fn publish(&self, namespace: &str, topic: &str, kind: Kind, at: Option<(i64, i32)>) {
        if let Kind::TaskExit(e) = &kind {
            (self.on_exit)(namespace, e);
        }
        let env = pb::Envelope {
            timestamp: Some(ts(at.unwrap_or_else(now))),
            namespace: namespace.to_string(),
            topic: topic.to_string(),
            event: Some(pb::Event { kind: Some(kind) }),
        };
        let _ = self.tx.send(Arc::new(env));
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<pb::Envelope>> {
        self.tx.subscribe()
    }
}

/// Whether an envelope passes a subscription's filters.
pub fn matches(f: &pb::SubscribeRequest, e: &pb::Envelope) -> bool {
    if !f.namespace.is_empty() && f.namespace != e.namespace {
        return false;
    }
    if !f.topics.is_empty() && !f.topics.iter().any(|t| e.topic.starts_with(t.as_str())) {
        return false;
    }
    if !f.container_id.is_empty() && container_of(e) != Some(f.container_id.as_str()) {
        return false;
    }
    true
}

/// The container an event is about.
pub fn container_of(e: &pb::Envelope) -> Option<&str> {
    Some(match e.event.as_ref()?.kind.as_ref()? {
        Kind::TaskCreate(x) => &x.container_id,
        Kind::TaskStart(x) => &x.container_id,
        Kind::TaskExit(x) => &x.container_id,
        Kind::TaskDelete(x) => &x.container_id,
        Kind::TaskOom(x) => &x.container_id,
        Kind::TaskExecAdded(x) => &x.container_id,
        Kind::TaskExecStarted(x) => &x.container_id,
        Kind::TaskPaused(x) => &x.container_id,
        Kind::TaskResumed(x) => &x.container_id,
        Kind::Container(x) => &x.id,
        _ => return None,
    })
}

fn tstamp(
    t: Option<&containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp>,
) -> Option<prost_types::Timestamp> {
    t.map(|t| prost_types::Timestamp {
        seconds: t.seconds,
        nanos: t.nanos,
    })
}

/// Convert a containerd task event (type URL `containerd.events.X`) to ours.
pub fn convert(type_url: &str, value: &[u8]) -> Kind {
    let name = type_url.rsplit('.').next().unwrap_or_default();
    fn p<M: Message>(v: &[u8]) -> M {
        M::parse_from_bytes(v).unwrap_or_default()
    }
    match name {
        "TaskCreate" => {
            let e: ct::TaskCreate = p(value);
            Kind::TaskCreate(pb::TaskCreate {
                container_id: e.container_id,
                bundle: e.bundle,
                pid: e.pid,
            })
        }
        "TaskStart" => {
            let e: ct::TaskStart = p(value);
            Kind::TaskStart(pb::TaskStart {
                container_id: e.container_id,
                pid: e.pid,
            })
        }
        "TaskExit" => {
            let e: ct::TaskExit = p(value);
            // containerd's ID is the container's for the init process.
            let exec_id = if e.id.is_empty() || e.id == e.container_id {
                String::new()
            } else {
                e.id.clone()
            };
            Kind::TaskExit(pb::TaskExit {
                exited_at: tstamp(e.exited_at.as_ref()),
                container_id: e.container_id,
                id: e.id,
                pid: e.pid,
                exit_status: e.exit_status,
                exec_id,
                exit_reason: String::new(),
            })
        }
        "TaskDelete" => {
            let e: ct::TaskDelete = p(value);
            Kind::TaskDelete(pb::TaskDelete {
                exited_at: tstamp(e.exited_at.as_ref()),
                container_id: e.container_id,
                id: e.id,
                pid: e.pid,
                exit_status: e.exit_status,
            })
        }
        "TaskOOM" => {
            let e: ct::TaskOOM = p(value);
            Kind::TaskOom(pb::TaskOom {
                container_id: e.container_id,
            })
        }
        "TaskExecAdded" => {
            let e: ct::TaskExecAdded = p(value);
            Kind::TaskExecAdded(pb::TaskExecAdded {
                container_id: e.container_id,
                exec_id: e.exec_id,
            })
        }
        "TaskExecStarted" => {
            let e: ct::TaskExecStarted = p(value);
            Kind::TaskExecStarted(pb::TaskExecStarted {
                container_id: e.container_id,
                exec_id: e.exec_id,
                pid: e.pid,
            })
        }
        "TaskPaused" => {
            let e: ct::TaskPaused = p(value);
            Kind::TaskPaused(pb::TaskPaused {
                container_id: e.container_id,
            })
        }
        "TaskResumed" => {
            let e: ct::TaskResumed = p(value);
            Kind::TaskResumed(pb::TaskResumed {
                container_id: e.container_id,
            })
        }
        _ => Kind::Custom(pb::Custom {
            type_url: type_url.to_string(),
            value: value.to_vec(),
        }),
    }
}

/// The ttrpc Events service the shims forward to.
pub struct Forwarder(pub Bus);

#[async_trait::async_trait]
impl containerd_shim_protos::shim_async::Events for Forwarder {
    async fn forward(
        &self,
        _ctx: &ttrpc::r#async::TtrpcContext,
        req: ForwardRequest,
    ) -> ttrpc::Result<Empty> {
        if let Some(env) = req.envelope.as_ref() {
            let (url, value) = env
                .event
                .as_ref()
                .map(|a| (a.type_url.as_str(), a.value.as_slice()))
                .unwrap_or_default();
            let at = env.timestamp.as_ref().map(|t| (t.seconds, t.nanos));
            self.0
                .publish(&env.namespace, &env.topic, convert(url, value), at);
        }
        Ok(Empty::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_task_exit_and_filters() {
        let mut e = ct::TaskExit::new();
        e.container_id = "c1".into();
        e.exit_status = 7;
        let k = convert("containerd.events.TaskExit", &e.write_to_bytes().unwrap());
        let Kind::TaskExit(x) = &k else {
            panic!("{k:?}")
        };
        assert_eq!((x.container_id.as_str(), x.exit_status), ("c1", 7));
        let env = pb::Envelope {
            timestamp: None,
            namespace: "default".into(),
            topic: "/tasks/exit".into(),
            event: Some(pb::Event { kind: Some(k) }),
        };
        let mut f = pb::SubscribeRequest {
            topics: vec!["/tasks/".into()],
            namespace: "default".into(),
            container_id: "c1".into(),
        };
        assert!(matches(&f, &env));
        f.container_id = "c2".into();
        assert!(!matches(&f, &env));
        f.container_id.clear();
        f.topics = vec!["/containers/".into()];
        assert!(!matches(&f, &env));
    }
}
