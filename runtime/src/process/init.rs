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

use super::exec;
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
}

/// Run the init. Never returns: the process becomes the user's program or exits.
pub fn run(ctx: &InitContext) -> ! {
    if let Err(error) = set_up(ctx) {
        let _ = ctx.channel.send(&Message::Failed(error.to_string()));
        // SAFETY: _exit ends this forked copy without running the parent's exit handlers.
        unsafe { libc::_exit(1) };
    }
    let error = match after_ready(ctx) {
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

fn set_up(ctx: &InitContext) -> Result<()> {
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
    // Inside a cgroup namespace /proc/self/cgroup shows "/", so the real paths (which
    // the cgroup mount binds) are read first.
    let own_cgroups =
        std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    if ctx.namespaces.unshare_cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP).context("create cgroup namespace")?;
    }
    nix::unistd::setsid().context("setsid")?;
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
        own_cgroups: &own_cgroups,
    };
    let root = rootfs::prepare(&rootfs_ctx)?;
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
    rootfs::pivot(&root, rootfs_ctx.mount_ns)?;
    drop(root);
    rootfs::finish(ctx.spec, rootfs_ctx.mount_ns)?;

    if ctx.process.terminal().unwrap_or(false) {
        let console = ctx
            .console
            .ok_or_else(|| RuntimeError::Init("terminal requested but no console socket".into()))?;
        crate::terminal::setup(console, ctx.process.console_size().as_ref())?;
    }
    crate::rlimits::apply(&ctx.process.rlimits().clone().unwrap_or_default())?;
    if let Some(score) = ctx.process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", score.to_string()).with_context(|| {
            format!("set oom_score_adj {score} (lowering it needs CAP_SYS_RESOURCE)")
        })?;
    }

    let cwd = ctx.process.cwd();
    if !cwd.is_absolute() {
        return Err(RuntimeError::InvalidConfig(format!(
            "process.cwd {} must be absolute",
            cwd.display()
        )));
    }
    std::fs::create_dir_all(cwd).with_context(|| format!("create cwd {}", cwd.display()))?;
    nix::unistd::chdir(cwd).with_context(|| format!("chdir to cwd {}", cwd.display()))?;

    ctx.capabilities.apply_bounding()?;
    exec::switch_user(ctx.process.user())?;
    ctx.capabilities.apply_process_sets()?;
    if ctx.process.no_new_privileges().unwrap_or(false) {
        nix::sys::prctl::set_no_new_privs().context("set no_new_privs")?;
    }
    let umask = ctx.process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(Mode::from_bits_truncate(umask as libc::mode_t));

    // Resolved now, so that a missing program fails `create`, not `start`.
    let env = exec::environment(ctx.process);
    let args = ctx.process.args().clone().unwrap_or_default();
    let program = args
        .first()
        .ok_or_else(|| RuntimeError::InvalidConfig("process.args is empty".into()))?;
    exec::find_executable(program, &env, cwd)?;
    ctx.channel.send(&Message::Ready)
}

/// Block on the exec FIFO until `start`, run startContainer hooks, exec.
fn after_ready(ctx: &InitContext) -> Result<std::convert::Infallible> {
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

    let env = exec::environment(ctx.process);
    let args = ctx.process.args().clone().unwrap_or_default();
    let start_hooks = HookKind::StartContainer.of(ctx.spec);
    if !start_hooks.is_empty() {
        let state = OciState {
            oci_version: ctx.spec.version().clone(),
            id: String::new(),
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
    let program = exec::find_executable(&args[0], &env, ctx.process.cwd())?;
    close_inherited_fds(ctx.preserve_fds)?;
    reset_signals()?;
    exec::exec(&program, &args, &env)
}

/// Mark every descriptor above stdio and the preserved ones close-on-exec, so nothing of
/// the host (a directory, a socket) leaks into the container (CVE-2024-21626).
fn close_inherited_fds(preserve: i32) -> Result<()> {
    let first = 3 + preserve.max(0) as u32;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes descriptor flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error())
            .context("mark inherited descriptors close-on-exec");
    }
    Ok(())
}

/// The program starts with default signal handling: Rust ignores SIGPIPE and `run` blocks
/// the signals it forwards, and both would survive exec.
fn reset_signals() -> Result<()> {
    use nix::sys::signal::{signal, SigHandler, SigSet, SigmaskHow, Signal};
    // SAFETY: installing SIG_DFL runs no code of ours in signal context.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.context("reset SIGPIPE")?;
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .context("reset signal mask")
}

fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: setdomainname reads `len` bytes from the pointer, which the &str provides.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("set domainname {name:?}"));
    }
    Ok(())
}
