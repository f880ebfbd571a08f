//! A process added to an existing container (`exec`): it joins the init's namespaces, root
//! and cgroups, then goes through the same final steps as an init.
//!
//! Protocol with the parent (over the sync channel): the child joins every cgroup the init
//! is in (all hierarchies, `name=systemd` and unified too: cloned into the cgroup2 one,
//! moving itself into the v1 ones; see cgroups/v1.rs), the parent sends `Proceed`; the
//! child either sends `Failed(reason)` or execs, which closes its (close-on-exec) end: end
//! of file means the program runs.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process};

use super::clone::{clone_into_cgroup, clone_with, Forked};
use super::finalize::Finalize;
use super::sync::{Channel, Message};
use crate::capabilities::CapabilityPlan;
use crate::container::Container;
use crate::error::{Context, Result, RuntimeError};
use crate::namespaces;
use crate::seccomp::SeccompProgram;

/// What `spawn` needs.
pub struct TenantRequest<'a> {
    /// The container to enter.
    pub container: &'a Container,
    /// The process to run in it.
    pub process: &'a Process,
    /// Console socket, when the process has a terminal.
    pub console: Option<&'a OwnedFd>,
    /// `--preserve-fds`.
    pub preserve_fds: i32,
}

/// The /proc name of a namespace type.
fn proc_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// The init's namespaces that differ from ours, user namespace first, mount namespace last
/// (after it, host paths are gone).
fn open_namespaces(
    pid: i32,
    kinds: &[LinuxNamespaceType],
) -> Result<Vec<(LinuxNamespaceType, OwnedFd)>> {
    let mut out = Vec::new();
    let mut ordered: Vec<LinuxNamespaceType> = kinds.to_vec();
    ordered.sort_by_key(|k| match k {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
    for kind in ordered {
        let theirs = format!("/proc/{pid}/ns/{}", proc_name(kind));
        let ours = format!("/proc/self/ns/{}", proc_name(kind));
        let file = File::open(&theirs).with_context(|| format!("open {theirs}"))?;
        let (a, b) = (file.metadata(), std::fs::metadata(&ours));
        if let (Ok(a), Ok(b)) = (a, b) {
            if same_file(&a, &b) {
                continue;
            }
        }
        out.push((kind, OwnedFd::from(file)));
    }
    Ok(out)
}

/// Start the process inside the container; returns its PID once it has executed.
pub fn spawn(req: &TenantRequest) -> Result<i32> {
    let state = &req.container.state;
    let spec = &state.spec;
    let kinds: Vec<LinuxNamespaceType> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|ns| ns.iter().map(|n| n.typ()).collect())
        .unwrap_or_default();
    let mut join = open_namespaces(state.pid, &kinds)?;
    let root =
        File::open(format!("/proc/{}/root", state.pid)).context("open the container's root")?;
    if let Some(i) = join.iter().position(|(k, _)| *k == LinuxNamespaceType::Pid) {
        // Entered by the next child, so the parent joins it before cloning.
        let (_, fd) = join.remove(i);
        setns(&fd, CloneFlags::CLONE_NEWPID).context("join the container's pid namespace")?;
    }
    let capabilities = CapabilityPlan::from_spec(req.process.capabilities().as_ref());
    let apparmor = crate::apparmor::plan_here(req.process.apparmor_profile().as_deref())?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => SeccompProgram::compile(profile)?,
        None => None,
    };
    let (parent, child) = Channel::pair()?;

    let cgroups = crate::cgroups::prepare_join_of(state.pid)?;
    let (forked, cloned_into) = match cgroups.clone_into() {
        Some(dir) => clone_into_cgroup(CloneFlags::empty(), dir)?,
        None => (clone_with(CloneFlags::empty())?, false),
    };
    let pid = match forked {
        Forked::Child => {
            drop(parent);
            // While this process has one thread, it can move itself into its v1 cgroups
            // (before it joins the container's cgroup namespace).
            if let Err(reason) = cgroups.enter_v1() {
                let _ = child.send(&Message::Failed(reason));
                // SAFETY: _exit ends this forked copy without running the parent's exit
                // handlers.
                unsafe { libc::_exit(1) }
            }
            let finalize = Finalize {
                process: req.process,
                console: req.console,
                capabilities: &capabilities,
                seccomp: seccomp.as_ref(),
                apparmor: apparmor.as_ref(),
                preserve_fds: req.preserve_fds,
                make_cwd: false,
            };
            let error = match enter_and_exec(&child, &join, &root, &finalize) {
                Ok(never) => match never {},
                Err(error) => error,
            };
            let _ = child.send(&Message::Failed(error.to_string()));
            // SAFETY: _exit ends this forked copy without running the parent's exit handlers.
            unsafe { libc::_exit(1) }
        }
        Forked::Parent(pid) => pid,
    };
    drop(child);
    let result = (|| {
        if !cloned_into {
            cgroups.enter_cgroup2(pid)?;
        }
        if let Err(send_error) = parent.send(&Message::Proceed(String::new())) {
            // The child may have failed to join its cgroups: its reason is worth more
            // than our EPIPE.
            return Err(match parent.recv() {
                Ok(Some(Message::Failed(reason))) => {
                    RuntimeError::Init(format!("exec failed: {reason}"))
                }
                _ => send_error,
            });
        }
        match parent.recv()? {
            None => Ok(pid),
            Some(Message::Failed(reason)) => {
                Err(RuntimeError::Init(format!("exec failed: {reason}")))
            }
            Some(other) => Err(RuntimeError::Init(format!("protocol error: {other:?}"))),
        }
    })();
    if result.is_err() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
    }
    result
}

fn enter_and_exec(
    channel: &Channel,
    join: &[(LinuxNamespaceType, OwnedFd)],
    root: &File,
    finalize: &Finalize,
) -> Result<std::convert::Infallible> {
    // Until exec, this process is a copy of the runtime: keep the container's processes
    // from opening it through /proc (its exe is the host binary).
    nix::sys::prctl::set_dumpable(false).context("make the exec process non-dumpable")?;
    match channel.recv()? {
        Some(Message::Proceed(_)) => {}
        other => {
            return Err(RuntimeError::Init(format!(
                "unexpected message from runtime: {other:?}"
            )))
        }
    }
    for (kind, fd) in join {
        setns(fd, namespaces::flag(*kind))
            .with_context(|| format!("join the container's {kind} namespace"))?;
    }
    // The container's root, whichever way it was entered (pivot_root, chroot, --no-pivot).
    nix::unistd::fchdir(root.as_raw_fd()).context("enter the container's root")?;
    nix::unistd::chroot(".").context("chroot into the container")?;
    if finalize.process.terminal().unwrap_or(false) {
        nix::unistd::setsid().context("setsid")?;
    }
    let prepared = finalize.prepare()?;
    finalize.exec(&prepared)
}
