//! Publishing task events to whoever started the shim (containerd or berth-supervisor):
//! `containerd.services.events.ttrpc.v1.Events/Forward` on the ttrpc address given in
//! `TTRPC_ADDRESS`. Best effort: when nobody listens the event is dropped, and the exit
//! status stays recorded in the bundle and in the shim's State/Wait answers.

use std::io;
use std::os::unix::net::UnixStream;
use std::time::{Duration, SystemTime};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::ttrpc::{Request, Response};

use crate::frame;

/// Sends events over one ttrpc connection, reconnecting when it breaks.
pub struct Publisher {
    address: Option<String>,
    namespace: String,
    conn: Option<UnixStream>,
    next_stream: u32,
}

impl Publisher {
    /// A publisher to `address` (a path or `unix://path`); None publishes nothing.
    pub fn new(address: Option<String>, namespace: String) -> Self {
        let address = address
            .filter(|a| !a.is_empty())
            .map(|a| a.trim_start_matches("unix://").to_string());
        Self {
            address,
            namespace,
            conn: None,
            next_stream: 1,
        }
    }

    /// Publish `event` (of containerd type `containerd.events.<name>`) on `topic`.
    pub fn publish(&mut self, topic: &str, name: &str, event: &dyn MessageDyn) {
        if self.address.is_none() {
            return;
        }
        let mut any = Any::new();
        any.type_url = format!("containerd.events.{name}");
        any.value = event.bytes();
        let mut env = Envelope::new();
        env.timestamp = MessageField::some(crate::timestamp(SystemTime::now()));
        env.namespace = self.namespace.clone();
        env.topic = topic.to_string();
        env.event = MessageField::some(any);
        let mut fwd = ForwardRequest::new();
        fwd.envelope = MessageField::some(env);
        let mut req = Request::new();
        req.service = "containerd.services.events.ttrpc.v1.Events".into();
        req.method = "Forward".into();
        req.payload = fwd.write_to_bytes().unwrap_or_default();
        req.timeout_nano = 5_000_000_000;
        let payload = req.write_to_bytes().unwrap_or_default();
        // One retry on a fresh connection: the old one may have died with its peer.
        for _ in 0..2 {
            match self.send(&payload) {
                Ok(()) => return,
                Err(e) => {
                    self.conn = None;
                    crate::log(&format!("publish {topic}: {e}"));
                }
            }
        }
    }

    fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        if self.conn.is_none() {
            let path = self.address.as_deref().unwrap_or_default();
            let c = UnixStream::connect(path)?;
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            c.set_write_timeout(Some(Duration::from_secs(5)))?;
            self.conn = Some(c);
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| io::Error::other("no connection"))?;
        let sid = self.next_stream;
        self.next_stream = self.next_stream.wrapping_add(2);
        frame::write_frame(conn, sid, frame::TYPE_REQUEST, payload)?;
        loop {
            let (rsid, ty, body) = frame::read_frame(conn)?;
            if rsid != sid || ty != frame::TYPE_RESPONSE {
                continue;
            }
            let resp = Response::parse_from_bytes(&body).map_err(io::Error::other)?;
            if let Some(st) = resp.status.as_ref() {
                if st.code.value() != 0 {
                    return Err(io::Error::other(st.message.clone()));
                }
            }
            return Ok(());
        }
    }
}

/// Object-safe encoding of the event messages.
pub trait MessageDyn {
    /// The message's protobuf bytes.
    fn bytes(&self) -> Vec<u8>;
}

impl<M: Message> MessageDyn for M {
    fn bytes(&self) -> Vec<u8> {
        self.write_to_bytes().unwrap_or_default()
    }
}
