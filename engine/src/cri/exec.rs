//! ExecSync, and the Exec, Attach and PortForward requests whose streams the
//! streaming server serves: an exec'd process is added to the container's task with
//! its own FIFOs (read here, as the container's own streams are) and forgotten once
//! it has exited.

use super::io::{ContainerIo, Fifos, Output, Stream};
use super::sandbox::blocking;
use super::store::{ContainerState, SandboxState};
use super::{cri, internal, Cri, Error, Result};
use std::sync::Arc;
use std::time::Duration;

/// Most output ExecSync keeps per stream (as the kubelet's own limit for probes).
const MAX_EXEC_SYNC_OUTPUT: usize = 16 << 20;

/// A process exec'd into a container.
pub struct ExecProcess {
    /// The container's ID.
    pub container_id: String,
    /// The exec ID.
    pub exec_id: String,
    /// Its streams.
    pub io: Arc<ContainerIo>,
}

impl Cri {
    /// The ID of a running container (its full ID), or why not.
    pub(crate) fn running_container(&self, id: &str) -> Result<String> {
        let c = self.store.container(id)?.get();
        if c.state != ContainerState::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        Ok(c.id)
    }

    /// Starts `cmd` in a running container; with its output, subscribed before it
    /// started (so nothing is missed).
    pub(crate) async fn start_exec(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: bool,
        stdin: bool,
    ) -> Result<(ExecProcess, tokio::sync::broadcast::Receiver<Output>)> {
        if cmd.is_empty() {
            return Err(Error::Invalid("exec: cmd is empty".into()));
        }
        let entry = self.store.container(id)?;
        let c = entry.get();
        if c.state != ContainerState::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        let mut process = c
            .process
            .clone()
            .ok_or_else(|| Error::Internal(format!("container {} has no process spec", c.id)))?;
        process.set_args(Some(cmd));
        process.set_terminal(Some(tty));
        let exec_id = super::new_id()[..16].to_string();
        let fifos = Fifos::paths(&self.io_dir(&c.id), &format!("exec-{exec_id}"), stdin, tty);
        let f = fifos.clone();
        blocking(move || f.make().map_err(internal("making exec FIFOs"))).await?;
        let io = ContainerIo::start(fifos.clone(), tty, None)
            .map_err(internal("opening exec streams"))?;
        let output = io.out.subscribe();
        let started = async {
            self.sv
                .exec(&c.id, &exec_id, &process, &fifos.stdio(tty))
                .await?;
            self.sv.start(&c.id, &exec_id).await
        }
        .await;
        if let Err(e) = started {
            io.finish().await;
            self.sv.delete_process(&c.id, &exec_id).await;
            fifos.remove();
            return Err(e);
        }
        Ok((
            ExecProcess {
                container_id: c.id,
                exec_id,
                io,
            },
            output,
        ))
    }

    /// Waits for an exec'd process to exit; its exit status.
    pub(crate) async fn wait_exec(&self, p: &ExecProcess) -> Result<u32> {
        self.sv
            .wait(&p.container_id, &p.exec_id)
            .await
            .map(|(s, _)| s)
    }

    /// Forgets an exec'd process once it has exited (its output drained).
    pub(crate) async fn end_exec(&self, p: &ExecProcess) {
        let _ = tokio::time::timeout(Duration::from_secs(5), p.io.finish()).await;
        self.sv.delete_process(&p.container_id, &p.exec_id).await;
        p.io.fifos.remove();
    }

    /// ExecSync: runs `cmd`, returns its output and exit code; past `timeout` seconds
    /// (0: none) the process is killed and DeadlineExceeded returned.
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> Result<cri::ExecSyncResponse> {
        let (p, mut output) = self.start_exec(id, cmd.clone(), false, false).await?;
        let mut out = Vec::new();
        let mut err = Vec::new();
        let collect = async {
            loop {
                match output.recv().await {
                    Ok(Output::Data(Stream::Stdout, b)) if out.len() < MAX_EXEC_SYNC_OUTPUT => {
                        out.extend_from_slice(&b)
                    }
                    Ok(Output::Data(Stream::Stderr, b)) if err.len() < MAX_EXEC_SYNC_OUTPUT => {
                        err.extend_from_slice(&b)
                    }
                    Ok(Output::Data(..)) => {}
                    Ok(Output::End) | Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        break
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                }
            }
        };
        let run = async {
            let status = self.wait_exec(&p).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), p.io.finish()).await;
            status
        };
        let both = async {
            let (status, ()) = tokio::join!(run, collect);
            status
        };
        let status = if timeout > 0 {
            match tokio::time::timeout(Duration::from_secs(timeout as u64), both).await {
                Ok(s) => s,
                Err(_) => {
                    let _ = self.sv.kill(&p.container_id, &p.exec_id, 9, false).await;
                    let _ = tokio::time::timeout(Duration::from_secs(5), self.wait_exec(&p)).await;
                    self.end_exec(&p).await;
                    return Err(Error::DeadlineExceeded(format!(
                        "command {cmd:?} timed out after {timeout}s"
                    )));
                }
            }
        } else {
            both.await
        };
        self.end_exec(&p).await;
        let status = status?;
        Ok(cri::ExecSyncResponse {
            stdout: out,
            stderr: err,
            exit_code: status as i32,
        })
    }

    /// Exec: checks the request and returns the URL of its stream.
    pub fn exec_url(&self, req: cri::ExecRequest) -> Result<String> {
        if req.cmd.is_empty() {
            return Err(Error::Invalid("Exec: cmd is empty".into()));
        }
        if !(req.stdin || req.stdout || req.stderr) {
            return Err(Error::Invalid(
                "Exec: one of stdin, stdout or stderr must be set".into(),
            ));
        }
        if req.tty && req.stderr {
            return Err(Error::Invalid(
                "Exec: tty and stderr cannot both be set".into(),
            ));
        }
        let id = self.running_container(&req.container_id)?;
        Ok(self
            .streams
            .add(super::streaming::Request::Exec(cri::ExecRequest {
                container_id: id,
                ..req
            })))
    }

    /// Attach: checks the request and returns the URL of its stream.
    pub fn attach_url(&self, req: cri::AttachRequest) -> Result<String> {
        if !(req.stdin || req.stdout || req.stderr) {
            return Err(Error::Invalid(
                "Attach: one of stdin, stdout or stderr must be set".into(),
            ));
        }
        let id = self.running_container(&req.container_id)?;
        let c = self.store.container(&id)?.get();
        if req.stdin && !c.config.stdin {
            return Err(Error::Invalid(format!(
                "Attach: container {id} has no stdin"
            )));
        }
        Ok(self
            .streams
            .add(super::streaming::Request::Attach(cri::AttachRequest {
                container_id: id,
                tty: c.config.tty,
                ..req
            })))
    }

    /// PortForward: checks the pod and returns the URL of its stream.
    pub fn port_forward_url(&self, req: cri::PortForwardRequest) -> Result<String> {
        let sb = self.store.sandbox(&req.pod_sandbox_id)?.get();
        if sb.state != SandboxState::Ready {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                sb.id
            )));
        }
        for p in &req.port {
            if !(1..=65535).contains(p) {
                return Err(Error::Invalid(format!("PortForward: invalid port {p}")));
            }
        }
        Ok(self.streams.add(super::streaming::Request::PortForward(
            cri::PortForwardRequest {
                pod_sandbox_id: sb.id,
                ..req
            },
        )))
    }
}
