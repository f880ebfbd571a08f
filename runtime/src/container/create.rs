//! `create`: from a bundle to a container whose init waits on the exec FIFO.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{state_dir, validate_id, Container, ContainerState, EXEC_FIFO};
use crate::cgroups::{self, Cgroup};
use crate::error::{Context, Result, RuntimeError};
use crate::process::{launch, LaunchRequest};
use crate::spec::Bundle;

/// Options of `create` (and of the create half of `run`).
pub struct CreateOptions<'a> {
    /// The runtime's state root (`--root`).
    pub root: &'a Path,
    /// Container ID.
    pub id: &'a str,
    /// The loaded bundle.
    pub bundle: Bundle,
    /// Where to send the pty master, if the process has a terminal.
    pub console: Option<OwnedFd>,
    /// Write the init's PID here.
    pub pid_file: Option<&'a Path>,
    /// `--preserve-fds`.
    pub preserve_fds: i32,
    /// `--systemd-cgroup`.
    pub systemd_cgroup: bool,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
}

/// Removes what a failed `create` made, in reverse order, unless disarmed.
struct Rollback {
    state_dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if let Some(cgroup) = self.cgroup.take() {
            let _ = cgroup.remove();
        }
        if let Some(dir) = self.state_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Write a file atomically so readers never see it half-written.
pub fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, contents).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
}

/// The host uid and gid of the container's root (0 and 0 without a user namespace).
fn container_root_ids(spec: &oci_spec::runtime::Spec) -> (u32, u32) {
    let linux = spec.linux().as_ref();
    let new_userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    if !new_userns {
        return (0, 0);
    }
    let host_of = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
            .unwrap_or(0)
    };
    (
        host_of(linux.and_then(|l| l.uid_mappings().as_ref())),
        host_of(linux.and_then(|l| l.gid_mappings().as_ref())),
    )
}

/// Socket activation (systemd's LISTEN_FDS protocol): descriptors 3.. handed to us are
/// passed on to the container's process, which is told about them with LISTEN_FDS and
/// LISTEN_PID=1. Returns how many descriptors that is.
fn pass_socket_activation(spec: &mut oci_spec::runtime::Spec) -> i32 {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !for_us || count <= 0 {
        return 0;
    }
    if let Some(process) = spec.process_mut() {
        let mut env = process.env().clone().unwrap_or_default();
        env.retain(|kv| !kv.starts_with("LISTEN_FDS=") && !kv.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={count}"));
        env.push("LISTEN_PID=1".to_string());
        process.set_env(Some(env));
    }
    count
}

/// Create a container.
pub fn create(opts: CreateOptions) -> Result<Container> {
    validate_id(opts.id)?;
    let mut bundle = opts.bundle;
    let preserve_fds = opts.preserve_fds + pass_socket_activation(&mut bundle.spec);
    let process = bundle
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidConfig("process is missing".into()))?;
    if process.terminal().unwrap_or(false) && opts.console.is_none() {
        return Err(RuntimeError::InvalidConfig(
            "process.terminal is true: pass --console-socket to receive the pty".into(),
        ));
    }

    std::fs::create_dir_all(opts.root)
        .with_context(|| format!("create state root {}", opts.root.display()))?;
    let dir = state_dir(opts.root, opts.id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(RuntimeError::AlreadyExists(opts.id.to_string()))
        }
        Err(e) => return Err(e).with_context(|| format!("create state dir {}", dir.display())),
    }
    let mut rollback = Rollback {
        state_dir: Some(dir.clone()),
        cgroup: None,
    };
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .context("chmod state dir")?;

    let fifo_path = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622)).context("create exec fifo")?;
    // Exactly 0622 whatever our umask: the init may run as another user by the time it
    // opens the FIFO. In a user namespace it is the container's root, another host user.
    std::fs::set_permissions(
        &fifo_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .context("chmod exec fifo")?;
    let (uid, gid) = container_root_ids(&bundle.spec);
    nix::unistd::chown(&fifo_path, Some(uid.into()), Some(gid.into()))
        .context("chown exec fifo")?;
    let fifo_raw = nix::fcntl::open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .context("open exec fifo")?;
    // SAFETY: open just returned this descriptor and nothing else owns it.
    let exec_fifo = unsafe { OwnedFd::from_raw_fd(fifo_raw) };

    let cgroup_path = cgroups::path_for(&bundle.spec, opts.id, opts.systemd_cgroup);
    let cgroup: &Cgroup =
        rollback
            .cgroup
            .insert(Cgroup::open(&cgroup_path, opts.systemd_cgroup, opts.id)?);
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let request = LaunchRequest {
        id: opts.id,
        spec: &bundle.spec,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        cgroup,
        exec_fifo: &exec_fifo,
        console: opts.console.as_ref(),
        preserve_fds,
        created: &created,
        no_pivot: opts.no_pivot,
        new_keyring: !opts.no_new_keyring,
    };
    let pid = launch(&request)?;

    let pid_start_time = super::process_start_time(pid)
        .ok_or_else(|| RuntimeError::Init("the init process died right after set-up".into()))?;
    let container = Container::new(
        opts.root,
        ContainerState {
            id: opts.id.to_string(),
            pid,
            pid_start_time,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created,
            cgroup_path,
            systemd_cgroup: opts.systemd_cgroup,
            spec: bundle.spec,
        },
    );
    if let Err(e) = container.save().and_then(|()| match opts.pid_file {
        Some(path) => write_atomically(path, &pid.to_string()),
        None => Ok(()),
    }) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        return Err(e);
    }
    rollback.cgroup = None;
    rollback.state_dir = None;
    Ok(container)
}
