//! The parent side of container creation: clone the init, put it in its cgroup, write its
//! id maps, run the runtime-namespace hooks when it asks, and wait until it is ready.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use super::clone::{clone_into_cgroup, clone_with, Forked};
use super::init::{self, InitContext};
use super::sync::{Channel, Message};
use crate::capabilities::CapabilityPlan;
use crate::cgroups::{Cgroup, Join};
use crate::container::OciState;
use crate::error::{Context, Result, RuntimeError};
use crate::hooks::{self, HookKind};
use crate::namespaces::NamespacePlan;

/// What `launch` needs.
pub struct LaunchRequest<'a> {
    /// Container ID (for hook state).
    pub id: &'a str,
    /// The spec.
    pub spec: &'a Spec,
    /// Absolute bundle path.
    pub bundle: &'a Path,
    /// Absolute rootfs path.
    pub rootfs: &'a Path,
    /// The container's cgroup.
    pub cgroup: &'a Cgroup,
    /// O_PATH descriptor of the exec FIFO.
    pub exec_fifo: &'a OwnedFd,
    /// Console socket, when the process has a terminal.
    pub console: Option<&'a OwnedFd>,
    /// `--preserve-fds`.
    pub preserve_fds: i32,
    /// Creation time for hook state.
    pub created: &'a str,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring` unset: give the container its own session keyring.
    pub new_keyring: bool,
}

fn write_id_map(pid: i32, file: &str, mappings: &[LinuxIdMapping]) -> Result<()> {
    if mappings.is_empty() {
        return Err(RuntimeError::InvalidConfig(format!(
            "a new user namespace needs linux.{}",
            if file == "uid_map" {
                "uidMappings"
            } else {
                "gidMappings"
            }
        )));
    }
    let text: String = mappings
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    // The kernel takes the whole map in a single write.
    std::fs::write(format!("/proc/{pid}/{file}"), text).with_context(|| format!("write {file}"))
}

/// Create the init process and bring it to the `created` state. Returns its PID.
pub fn launch(req: &LaunchRequest) -> Result<i32> {
    let spec = req.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidConfig("config has no process".into()))?;
    let namespaces = NamespacePlan::from_spec(spec)?;
    let mut join_fds = namespaces.open_joins()?;
    // A PID namespace is entered by the next child, so the parent joins it before cloning.
    if let Some(index) = join_fds
        .iter()
        .position(|(kind, _)| *kind == LinuxNamespaceType::Pid)
    {
        let (_, fd) = join_fds.remove(index);
        setns(&fd, CloneFlags::CLONE_NEWPID).context("join pid namespace")?;
    }
    let capabilities = CapabilityPlan::from_spec(process.capabilities().as_ref());
    let unavailable = capabilities.unavailable();
    if !unavailable.is_empty() {
        let names: Vec<String> = unavailable.iter().map(|c| c.to_string()).collect();
        return Err(RuntimeError::InvalidConfig(format!(
            "capabilities not available to the runtime on this host: {}",
            names.join(", ")
        )));
    }
    let apparmor = crate::apparmor::plan_here(process.apparmor_profile().as_deref())?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => crate::seccomp::SeccompProgram::compile(profile)?,
        None => None,
    };
    let runtime_hooks =
        !HookKind::Prestart.of(spec).is_empty() || !HookKind::CreateRuntime.of(spec).is_empty();
    let (parent, child) = Channel::pair()?;
    // Where it can, the init joins its cgroups by itself (see cgroups/v1.rs).
    let cgroup_join = req.cgroup.prepare_join()?;
    let (forked, cloned_into) = match cgroup_join.as_ref().and_then(|j| j.clone_into()) {
        Some(dir) => clone_into_cgroup(namespaces.clone_flags, dir)?,
        None => (clone_with(namespaces.clone_flags)?, false),
    };
    let pid = match forked {
        Forked::Child => {
            drop(parent);
            let ctx = InitContext {
                spec,
                process,
                rootfs: req.rootfs,
                bundle: req.bundle,
                namespaces: &namespaces,
                join_fds: &join_fds,
                channel: &child,
                exec_fifo: req.exec_fifo,
                console: req.console,
                capabilities: &capabilities,
                preserve_fds: req.preserve_fds,
                runtime_hooks,
                seccomp: seccomp.as_ref(),
                apparmor: apparmor.as_ref(),
                no_pivot: req.no_pivot,
                new_keyring: req.new_keyring,
                id: req.id,
                cgroup_join: cgroup_join.as_ref(),
            };
            init::run(&ctx)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child);
    let joined = cgroup_join.as_ref().map(|j| (j, cloned_into));
    let result = drive(req, &namespaces, &parent, pid, joined);
    if result.is_err() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
    }
    result.map(|()| pid)
}

fn hook_state(req: &LaunchRequest, pid: i32, status: &str) -> OciState {
    OciState {
        oci_version: req.spec.version().clone(),
        id: req.id.to_string(),
        pid,
        status: status.to_string(),
        bundle: req.bundle.to_path_buf(),
        rootfs: req.rootfs.to_path_buf(),
        created: req.created.to_string(),
        owner: String::new(),
        annotations: req.spec.annotations().clone().unwrap_or_default(),
    }
}

/// `joined`: the init joins its cgroups by itself, and whether it was cloned into the
/// cgroup2 one.
fn drive(
    req: &LaunchRequest,
    namespaces: &NamespacePlan,
    channel: &Channel,
    pid: i32,
    joined: Option<(&Join, bool)>,
) -> Result<()> {
    if namespaces.is_new(LinuxNamespaceType::User) {
        let linux = req.spec.linux().as_ref();
        write_id_map(
            pid,
            "uid_map",
            &linux
                .and_then(|l| l.uid_mappings().clone())
                .unwrap_or_default(),
        )?;
        write_id_map(
            pid,
            "gid_map",
            &linux
                .and_then(|l| l.gid_mappings().clone())
                .unwrap_or_default(),
        )?;
    }
    // prestart, createRuntime and createContainer hooks see status `created`, as crun gives
    // it and runtime-tools' hooks_stdin checks: the hooks run once the environment exists,
    // and `created` is the state `create` leaves behind (runc says `creating`).
    let state = hook_state(req, pid, "created");
    let state_json = serde_json::to_string(&state).unwrap_or_default();
    channel.send(&Message::Proceed(state_json))?;
    // The init builds its rootfs meanwhile (two cores, two jobs).
    match joined {
        Some((join, cloned_into)) => req.cgroup.apply_joined(pid, req.spec, join, cloned_into)?,
        None => req.cgroup.enter_and_apply(pid, req.spec)?,
    }
    if let Err(send_error) = channel.send(&Message::Proceed(String::new())) {
        // The init may have failed meanwhile: its reason is worth more than our EPIPE.
        return Err(match channel.recv() {
            Ok(Some(Message::Failed(reason))) => {
                RuntimeError::Init(format!("container set-up failed: {reason}"))
            }
            _ => send_error,
        });
    }
    loop {
        match channel.recv()? {
            Some(Message::RunHooks) => {
                hooks::run_all(HookKind::Prestart, &HookKind::Prestart.of(req.spec), &state)?;
                hooks::run_all(
                    HookKind::CreateRuntime,
                    &HookKind::CreateRuntime.of(req.spec),
                    &state,
                )?;
                channel.send(&Message::Proceed(String::new()))?;
            }
            Some(Message::Ready) => return Ok(()),
            Some(Message::Failed(reason)) => {
                return Err(RuntimeError::Init(format!(
                    "container set-up failed: {reason}"
                )))
            }
            Some(Message::Proceed(_)) => {
                return Err(RuntimeError::Init(
                    "protocol error: init sent Proceed".into(),
                ))
            }
            None => {
                return Err(RuntimeError::Init(
                    "the init process exited during set-up".into(),
                ))
            }
        }
    }
}
