//! The child side: runs inside the new namespaces, builds the container around itself,
//! waits for `start`, then executes the user's program.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::finalize::{Finalize, Prepared};
use super::sync::{Channel, Message};
use crate::capabilities::CapabilityPlan;
use crate::container::OciState;
use crate::error::{Context, Result, RuntimeError};
use crate::hooks::{self, HookKind};
use crate::namespaces::{self, NamespacePlan};
use crate::rootfs::{self, RootfsContext};

/// Everything the init needs; it is a copy of the parent's memory, so this is borrowed
/// rather than serialized.
pub struct InitContext<'a> {
    /// The spec being run.
    pub spec: &'a Spec,
    /// Its process section.
    pub process: &'a Process,
    /// Absolute rootfs path.
    pub rootfs: &'a Path,
    /// Absolute bundle path.
    pub bundle: &'a Path,
    /// Namespace decisions.
    pub namespaces: &'a NamespacePlan,
    /// Namespaces to join, already open.
    pub join_fds: &'a [(LinuxNamespaceType, OwnedFd)],
    /// The child end of the sync channel.
    pub channel: &'a Channel,
    /// O_PATH descriptor of the exec FIFO.
    pub exec_fifo: &'a OwnedFd,
    /// The console socket, when the process has a terminal.
    pub console: Option<&'a OwnedFd>,
    /// Capability sets to end with.
    pub capabilities: &'a CapabilityPlan,
    /// Descriptors from 3 up to 3+N-1 stay open for the program (`--preserve-fds`).
    pub preserve_fds: i32,
    /// Whether prestart/createRuntime hooks exist (the parent must be asked to run them).
    pub runtime_hooks: bool,
    /// The compiled seccomp profile.
    pub seccomp: Option<&'a crate::seccomp::SeccompProgram>,
    /// The AppArmor profile to change to at exec.
    pub apparmor: Option<&'a crate::apparmor::Change>,
    /// `--no-pivot`: move the rootfs onto / instead of pivot_root (for ramfs roots).
    pub no_pivot: bool,
    /// Give the container its own session keyring (unless `--no-new-keyring`).
    pub new_keyring: bool,
    /// The container ID, for the keyring's name and hook state.
    pub id: &'a str,
    /// The cgroups the init joins by itself, first thing (see cgroups/v1.rs); None: the
    /// parent puts it in its cgroup.
    pub cgroup_join: Option<&'a crate::cgroups::Join>,
}

impl InitContext<'_> {
    fn finalize(&self) -> Finalize<'_> {
        Finalize {
            process: self.process,
            console: self.console,
            capabilities: self.capabilities,
            seccomp: self.seccomp,
            apparmor: self.apparmor,
            preserve_fds: self.preserve_fds,
            make_cwd: true,
        }
    }
}

/// Run the init. Never returns: the process becomes the user's program or exits.
pub fn run(ctx: &InitContext) -> ! {
    let prepared = match set_up(ctx) {
        Ok(prepared) => prepared,
        Err(error) => {
            let _ = ctx.channel.send(&Message::Failed(error.to_string()));
            // SAFETY: _exit ends this forked copy without running the parent's exit handlers.
            unsafe { libc::_exit(1) };
        }
    };
    let error = match after_ready(ctx, &prepared) {
        Ok(never) => match never {},
        Err(error) => error,
    };
    // The runtime is gone by now; the container's stderr is the only place left to say it.
    let _ = writeln!(std::io::stderr(), "berth-runtime: {error}");
    tracing::error!("{error}");
    // SAFETY: as above.
    unsafe { libc::_exit(127) };
}

fn wait_for_parent(channel: &Channel) -> Result<String> {
    match channel.recv()? {
        Some(Message::Proceed(payload)) => Ok(payload),
        other => Err(RuntimeError::Init(format!(
            "unexpected message from runtime: {other:?}"
        ))),
    }
}

/// Waits (once) for the parent's word that the init is in its cgroup, then reads its
/// cgroup paths and makes its cgroup namespace. Until then the init may build its rootfs,
/// in parallel with the parent's cgroup work; it must not mount cgroups, run hooks or
/// start anything.
struct CgroupJoin<'a, 'b> {
    ctx: &'a InitContext<'b>,
    own: std::cell::OnceCell<String>,
}

impl CgroupJoin<'_, '_> {
    fn wait(&self) -> Result<String> {
        if let Some(own) = self.own.get() {
            return Ok(own.clone());
        }
        wait_for_parent(self.ctx.channel)?;
        // Inside a cgroup namespace /proc/self/cgroup shows "/", so the real paths (which
        // the cgroup mount binds) are read first.
        let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
        if self.ctx.namespaces.unshare_cgroup {
            unshare(CloneFlags::CLONE_NEWCGROUP).context("create cgroup namespace")?;
        }
        Ok(self.own.get_or_init(|| own).clone())
    }
}

fn set_up(ctx: &InitContext) -> Result<Prepared> {
    // While this process has one thread, it can move itself into its v1 cgroups.
    if let Some(join) = ctx.cgroup_join {
        join.enter_v1().map_err(RuntimeError::Init)?;
    }
    let state_json = wait_for_parent(ctx.channel)?;
    for (kind, fd) in ctx.join_fds {
        setns(fd, namespaces::flag(*kind)).with_context(|| format!("join {kind} namespace"))?;
    }
    if ctx.namespaces.has(LinuxNamespaceType::User) {
        // The uid/gid maps are written; become the namespace's root.
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .context("become root in user namespace (gid)")?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .context("become root in user namespace (uid)")?;
    }
    // The parent puts us in our cgroup while we build the rootfs; we wait for it only
    // where the cgroup matters (see `CgroupJoin`).
    let cgroup = CgroupJoin {
        ctx,
        own: std::cell::OnceCell::new(),
    };
    let join_cgroup = || cgroup.wait();
    nix::unistd::setsid().context("setsid")?;
    if ctx.new_keyring {
        join_session_keyring(ctx.id)?;
    }
    if let Some(hostname) = ctx.spec.hostname() {
        nix::unistd::sethostname(hostname).with_context(|| format!("set hostname {hostname:?}"))?;
    }
    if let Some(domainname) = ctx.spec.domainname() {
        set_domainname(domainname)?;
    }

    // Devices and directories are made with exactly the modes asked for.
    nix::sys::stat::umask(Mode::empty());
    let rootfs_ctx = RootfsContext {
        spec: ctx.spec,
        rootfs: ctx.rootfs,
        bundle: ctx.bundle,
        user_ns: ctx.namespaces.has(LinuxNamespaceType::User),
        cgroup_ns: ctx.namespaces.unshare_cgroup,
        mount_ns: ctx.namespaces.has(LinuxNamespaceType::Mount),
        join_cgroup: &join_cgroup,
    };
    let root = rootfs::prepare(&rootfs_ctx)?;
    cgroup.wait()?;
    if ctx.runtime_hooks {
        ctx.channel.send(&Message::RunHooks)?;
        wait_for_parent(ctx.channel)?;
    }
    let state: Option<OciState> = serde_json::from_str(&state_json).ok();
    if let Some(state) = &state {
        hooks::run_all(
            HookKind::CreateContainer,
            &HookKind::CreateContainer.of(ctx.spec),
            state,
        )?;
    }
    rootfs::pivot(&root, rootfs_ctx.mount_ns, ctx.no_pivot)?;
    drop(root);
    rootfs::finish(ctx.spec, rootfs_ctx.mount_ns)?;
    // Everything up to the exec happens now, so that a missing program or a bad user
    // fails `create`, not `start`.
    let prepared = ctx.finalize().prepare()?;
    ctx.channel.send(&Message::Ready)?;
    Ok(prepared)
}

/// Block on the exec FIFO until `start`, run startContainer hooks, exec.
fn after_ready(ctx: &InitContext, prepared: &Prepared) -> Result<std::convert::Infallible> {
    let fifo_path = format!("/proc/self/fd/{}", ctx.exec_fifo.as_raw_fd());
    let fifo = open(
        fifo_path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open exec fifo")?;
    // SAFETY: open just returned this descriptor and nothing else owns it.
    let fifo = unsafe { OwnedFd::from_raw_fd(fifo) };
    nix::unistd::write(&fifo, b"0").context("write exec fifo")?;
    // The write end stays open until exec closes it (O_CLOEXEC): `start` waits for that
    // end of file, so it returns only once the user's program really runs.
    std::mem::forget(fifo);

    let start_hooks = HookKind::StartContainer.of(ctx.spec);
    if !start_hooks.is_empty() {
        let state = OciState {
            oci_version: ctx.spec.version().clone(),
            id: ctx.id.to_string(),
            pid: std::process::id() as i32,
            status: "created".into(),
            bundle: ctx.bundle.to_path_buf(),
            rootfs: ctx.rootfs.to_path_buf(),
            created: String::new(),
            owner: String::new(),
            annotations: ctx.spec.annotations().clone().unwrap_or_default(),
        };
        hooks::run_all(HookKind::StartContainer, &start_hooks, &state)?;
    }
    ctx.finalize().exec(prepared)
}

/// Join a new session keyring named after the container, so that it does not share the
/// keys of whoever started the runtime.
fn join_session_keyring(id: &str) -> Result<()> {
    let name = std::ffi::CString::new(format!("_ses.{id}"))
        .map_err(|_| RuntimeError::InvalidId(id.to_string()))?;
    // SAFETY: keyctl reads the NUL-terminated name for the duration of the call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if ret < 0 {
        let err = std::io::Error::last_os_error();
        // Kernels without keyrings, and keyrings refused inside user namespaces, are not
        // fatal, as in runc.
        if !matches!(
            err.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EDQUOT)
        ) {
            return Err(err).context("join a new session keyring");
        }
    }
    Ok(())
}

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;

fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: setdomainname reads `len` bytes from the pointer, which the &str provides.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("set domainname {name:?}"));
    }
    Ok(())
}
