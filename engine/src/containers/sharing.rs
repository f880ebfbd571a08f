//! What a container shares with another, as dockerd's spec gives it: `--pid
//! container:NAME` and `--ipc container:NAME` join the namespaces of the other's init
//! (`/proc/PID/ns/...`), checked at start; `--ipc shareable` gives the container a
//! tmpfs on the host (`mounts/shm` in its directory, dockerd's ShmPath) bound at
//! /dev/shm, which a container joining its IPC binds too. A private container's
//! /dev/shm is the runtime's own tmpfs, in its mount namespace, which no other
//! container can reach (the kernel binds only mounts of the caller's namespace).
//! The shareable tmpfs lives as long as the run: unmounted when its task is gone.

use super::spec::Joins;
use super::state::Status;
use super::{Container, ContainerService, Error, Record, Result};
use std::path::{Path, PathBuf};

/// dockerd's IpcMode for a container whose /dev/shm others may join.
const SHAREABLE: &str = "shareable";

impl ContainerService {
    /// Where a shareable container's /dev/shm lives on the host.
    fn shm_dir(&self, id: &str) -> PathBuf {
        self.dir(id).join("mounts/shm")
    }

    /// The namespaces and shared memory a run of `rec` joins, in dockerd's words when
    /// the other container is missing, stopped or restarting (500 at start, as
    /// dockerd's spec errors are).
    pub(crate) fn joins(&self, rec: &Record) -> Result<Joins> {
        let hc = &rec.host_config;
        let mut joins = Joins::default();
        if let Some(name) = hc.pid_mode.container() {
            let c = self.get(name).map_err(|e| {
                Error::Internal(format!(
                    "cannot join PID of a non running container: {name}: {e}"
                ))
            })?;
            joins.pid = Some(ns_path(c.read(running_pid)?, "pid"));
        }
        if let Some(name) = hc.ipc_mode.container() {
            let context =
                |e: Error| Error::Internal(format!("can't join IPC of container {name}: {e}"));
            let c = self.get(name).map_err(context)?;
            let (pid, other_ipc) = c.read(|r| (running_pid(r), r.host_config.ipc_mode.clone()));
            let pid = pid.map_err(context)?;
            joins.shm = Some(match other_ipc.as_str() {
                SHAREABLE => self.shm_dir(&c.id),
                "host" => PathBuf::from("/dev/shm"),
                _ => {
                    return Err(Error::Internal(format!(
                        "can't join IPC of container {name}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
                    )))
                }
            });
            joins.ipc = Some(ns_path(pid, "ipc"));
        } else if shareable(hc) {
            joins.shm = Some(self.shm_dir(&rec.id));
        }
        Ok(joins)
    }

    /// Mounts a shareable container's tmpfs before its start (what a crash left there
    /// is unmounted first); blocking.
    pub(crate) fn mount_shm(&self, rec: &Record) -> Result<()> {
        if !shareable(&rec.host_config) {
            return Ok(());
        }
        let dir = self.shm_dir(&rec.id);
        unmount_shm(&dir);
        let size = super::spec::shm_size(&rec.host_config);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Internal(format!("making {}: {e}", dir.display())))?;
        use nix::mount::MsFlags;
        nix::mount::mount(
            Some("shm"),
            &dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some(format!("mode=1777,size={size}").as_str()),
        )
        .map_err(|e| Error::Internal(format!("mounting shm tmpfs at {}: {e}", dir.display())))
    }

    /// Tears down what a run held outside its task once the task is gone (or never
    /// came): its network, and a shareable container's tmpfs. Idempotent.
    pub(crate) async fn release_run(&self, c: &Container) {
        self.detach_network(&c.id).await;
        // Only a shareable container has one: no blocking-pool trip on other exits.
        if c.read(|r| shareable(&r.host_config)) {
            let shm = self.shm_dir(&c.id);
            let _ = tokio::task::spawn_blocking(move || unmount_shm(&shm)).await;
        }
    }
}

/// Whether others may join the container's IPC (and bind its /dev/shm).
fn shareable(hc: &berth_api::container::HostConfig) -> bool {
    hc.ipc_mode.as_str() == SHAREABLE
}

/// The PID of a container's init when it can be joined: running, not restarting.
fn running_pid(rec: &Record) -> Result<u32> {
    match rec.state.status() {
        Status::Restarting => Err(Error::Conflict(format!(
            "container {} is restarting, wait until the container is running",
            rec.id
        ))),
        Status::Running | Status::Paused if rec.state.pid > 0 => Ok(rec.state.pid),
        _ => Err(Error::Conflict(format!(
            "container {} is not running",
            rec.id
        ))),
    }
}

fn ns_path(pid: u32, kind: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/{kind}"))
}

/// Unmounts `dir` if something is mounted there (lazily: a joiner that still runs keeps
/// its bind of it until it ends).
fn unmount_shm(dir: &Path) {
    match nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "unmounting shm"),
    }
}
