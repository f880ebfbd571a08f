//! Talking to shims: launching one with the runtime v2 `start` protocol, calling its
//! task API over ttrpc (`containerd.task.v2.Task`, which both berth-shim and
//! containerd 1.6's runc-v2 shim serve), and the `delete` subcommand for dead shims.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::ttrpc::{self, asynchronous::Client, Code};
use tokio::process::Command;

use crate::error::{Error, Result};

/// The task service name shims serve.
pub const TASK_SERVICE: &str = "containerd.task.v2.Task";

/// A connected shim.
#[derive(Clone)]
pub struct ShimClient {
    client: Client,
}

/// Where and how to start a shim.
pub struct Launch<'a> {
    /// Shim binary.
    pub binary: &'a Path,
    /// Namespace.
    pub namespace: &'a str,
    /// Container ID.
    pub id: &'a str,
    /// Bundle directory (the shim's working directory).
    pub bundle: &'a Path,
    /// The supervisor's gRPC address (for the shim's bookkeeping).
    pub address: &'a Path,
    /// Where shims publish events (TTRPC_ADDRESS).
    pub events_address: &'a Path,
}

fn status_error(what: &str, e: ttrpc::Error) -> Error {
    match e {
        ttrpc::Error::RpcStatus(s) => {
            let msg = format!("{what}: {}", s.message);
            match s.code.enum_value_or_default() {
                Code::NOT_FOUND => Error::NotFound(msg),
                Code::ALREADY_EXISTS => Error::AlreadyExists(msg),
                Code::INVALID_ARGUMENT => Error::InvalidArgument(msg),
                Code::FAILED_PRECONDITION => Error::FailedPrecondition(msg),
                Code::UNIMPLEMENTED => Error::Unimplemented(msg),
                _ => Error::Internal(msg),
            }
        }
        other => Error::Unavailable(format!("{what}: shim unreachable: {other}")),
    }
}

impl Launch<'_> {
    fn command(&self, sub: &str) -> Command {
        let mut cmd = Command::new(self.binary);
        cmd.arg("-namespace")
            .arg(self.namespace)
            .arg("-address")
            .arg(self.address)
            .arg("-publish-binary")
            .arg(std::env::current_exe().unwrap_or_else(|_| PathBuf::from("berth-supervisor")))
            .arg("-id")
            .arg(self.id);
        if sub == "delete" {
            cmd.arg("-bundle").arg(self.bundle);
        }
        cmd.arg(sub)
            .current_dir(self.bundle)
            .env("TTRPC_ADDRESS", self.events_address)
            .env("NAMESPACE", self.namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Run `start`; returns the shim's address.
    pub async fn start(&self) -> Result<String> {
        let out = tokio::time::timeout(Duration::from_secs(20), self.command("start").output())
            .await
            .map_err(|_| {
                Error::Internal(format!("shim {} start: timed out", self.binary.display()))
            })?
            .map_err(|e| {
                Error::FailedPrecondition(format!("shim {}: {e}", self.binary.display()))
            })?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "shim {} start: {}",
                self.binary.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let addr = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if addr.is_empty() {
            return Err(Error::Internal(format!(
                "shim {} start: printed no address",
                self.binary.display()
            )));
        }
        Ok(addr)
    }

    /// Run `delete` (the shim is gone): the runtime's container is removed, the rootfs
    /// unmounted. Returns the exit status and time the shim recorded, if any.
    pub async fn delete(&self) -> Option<(u32, (i64, i32))> {
        let out = tokio::time::timeout(Duration::from_secs(20), self.command("delete").output())
            .await
            .ok()?
            .ok()?;
        let resp =
            containerd_shim_protos::api::DeleteResponse::parse_from_bytes(&out.stdout).ok()?;
        let at = resp
            .exited_at
            .as_ref()
            .map(|t| (t.seconds, t.nanos))
            .unwrap_or_default();
        Some((resp.exit_status, at))
    }
}

impl ShimClient {
    /// Connect to a shim address (`unix:///path`).
    pub async fn connect(address: &str) -> Result<Self> {
        let addr = if address.starts_with("unix://") {
            address.to_string()
        } else {
            format!("unix://{address}")
        };
        let path = addr.trim_start_matches("unix://").to_string();
        // Fail fast (and without the client's background task) when nobody listens.
        tokio::net::UnixStream::connect(&path)
            .await
            .map_err(|e| Error::Unavailable(format!("shim at {addr}: {e}")))?;
        let client = tokio::time::timeout(Duration::from_secs(5), Client::connect(&addr))
            .await
            .map_err(|_| Error::Unavailable(format!("shim at {addr}: connect timed out")))?
            .map_err(|e| Error::Unavailable(format!("shim at {addr}: {e}")))?;
        Ok(Self { client })
    }

    /// Call `method` with `req`; `timeout` None waits as long as it takes (Wait).
    pub async fn call<Q: Message, A: Message>(
        &self,
        method: &str,
        req: &Q,
        timeout: Option<Duration>,
    ) -> Result<A> {
        let mut r = ttrpc::Request::new();
        r.service = TASK_SERVICE.into();
        r.method = method.into();
        r.payload = req
            .write_to_bytes()
            .map_err(|e| Error::Internal(format!("encode {method}: {e}")))?;
        r.timeout_nano = timeout.map(|d| d.as_nanos() as i64).unwrap_or(0);
        let resp = self
            .client
            .request(r)
            .await
            .map_err(|e| status_error(method, e))?;
        A::parse_from_bytes(&resp.payload)
            .map_err(|e| Error::Internal(format!("decode {method}: {e}")))
    }
}
