//! The last set-up of a user process, shared by a container's init and by processes that
//! `exec` adds: terminal, rlimits, cwd, seccomp, user, capabilities, then the exec itself.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::Process;

use super::exec;
use crate::capabilities::CapabilityPlan;
use crate::error::{Context, Result, RuntimeError};
use crate::seccomp::SeccompProgram;

/// What a process needs for its final steps.
pub struct Finalize<'a> {
    /// The OCI process.
    pub process: &'a Process,
    /// The console socket, when the process has a terminal.
    pub console: Option<&'a OwnedFd>,
    /// Capability sets to end with.
    pub capabilities: &'a CapabilityPlan,
    /// The compiled seccomp filter, if the container has a profile.
    pub seccomp: Option<&'a SeccompProgram>,
    /// The AppArmor profile to change to at exec, if the process names one.
    pub apparmor: Option<&'a crate::apparmor::Change>,
    /// Descriptors 3 .. 3+N-1 stay open for the program.
    pub preserve_fds: i32,
    /// Make a missing cwd (the container's init, as runc); an exec'd process whose cwd
    /// is missing fails instead, as with runc, rather than changing the container.
    pub make_cwd: bool,
}

/// The program, resolved, ready for `exec`.
pub struct Prepared {
    /// Absolute path of the program.
    pub program: PathBuf,
    /// argv.
    pub args: Vec<String>,
    /// The environment.
    pub env: Vec<String>,
}

impl Finalize<'_> {
    /// Everything up to the exec, in the order the kernel needs: capabilities are dropped
    /// last because the earlier steps need them.
    pub fn prepare(&self) -> Result<Prepared> {
        let process = self.process;
        // Before any seccomp filter: a profile may not allow close_range. Everything we
        // open from here on is close-on-exec anyway.
        close_inherited_fds(self.preserve_fds)?;
        reset_signals()?;
        if process.terminal().unwrap_or(false) {
            let console = self.console.ok_or_else(|| {
                RuntimeError::Init("terminal requested but no console socket".into())
            })?;
            crate::terminal::setup(console, process.console_size().as_ref())?;
        }
        crate::rlimits::apply(&process.rlimits().clone().unwrap_or_default())?;
        if let Some(score) = process.oom_score_adj() {
            std::fs::write("/proc/self/oom_score_adj", score.to_string()).with_context(|| {
                format!("set oom_score_adj {score} (lowering it needs CAP_SYS_RESOURCE)")
            })?;
        }
        enter_cwd(process, self.make_cwd)?;
        // Looked up before any seccomp filter, which may refuse stat calls (statx is
        // missing from older profiles).
        let env = exec::environment(process);
        let args = process.args().clone().unwrap_or_default();
        let name = args
            .first()
            .ok_or_else(|| RuntimeError::InvalidConfig("process.args is empty".into()))?;
        let program = exec::find_executable(name, &env, process.cwd())?;

        if let Some(change) = self.apparmor {
            // Before seccomp (a profile may refuse the write) and before the user and
            // capabilities change, as runc orders it; it takes effect at exec.
            crate::apparmor::apply(change)?;
        }
        let no_new_privileges = process.no_new_privileges().unwrap_or(false);
        if let (Some(seccomp), false) = (self.seccomp, no_new_privileges) {
            // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while
            // the process still has it.
            seccomp.load()?;
        }
        self.capabilities.apply_bounding()?;
        exec::switch_user(process.user())?;
        self.capabilities.apply_process_sets()?;
        if no_new_privileges {
            nix::sys::prctl::set_no_new_privs().context("set no_new_privs")?;
        }
        let umask = process.user().umask().unwrap_or(0o022);
        // SAFETY: umask only sets the process's mask (nix's wrapper panics if a seccomp
        // profile refuses the call; the mask then stays as it is).
        unsafe { libc::umask(umask as libc::mode_t) };

        Ok(Prepared { program, args, env })
    }

    /// Replace this process with the program.
    pub fn exec(&self, prepared: &Prepared) -> Result<std::convert::Infallible> {
        if let (Some(seccomp), true) = (
            self.seccomp,
            self.process.no_new_privileges().unwrap_or(false),
        ) {
            // As late as possible, so the filter constrains the program, not our set-up.
            seccomp.load()?;
        }
        exec::exec(&prepared.program, &prepared.args, &prepared.env)
    }
}

/// chdir to process.cwd (made if missing and `make` says so), then check the result is
/// inside the container's root: a cwd reached through a leaked host descriptor
/// (`/proc/self/fd/N`) would be outside it (CVE-2024-21626).
fn enter_cwd(process: &Process, make: bool) -> Result<()> {
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        return Err(RuntimeError::InvalidConfig(format!(
            "process.cwd {} must be absolute",
            cwd.display()
        )));
    }
    if make {
        std::fs::create_dir_all(cwd).with_context(|| format!("create cwd {}", cwd.display()))?;
    }
    nix::unistd::chdir(cwd).with_context(|| format!("chdir to cwd {}", cwd.display()))?;
    match nix::unistd::getcwd() {
        Ok(path) if path.is_absolute() => Ok(()),
        _ => Err(RuntimeError::Init(format!(
            "process.cwd {} resolves outside the container",
            cwd.display()
        ))),
    }
}

/// Mark every descriptor above stdio and the preserved ones close-on-exec, so nothing of
/// the host (a directory, a socket) leaks into the container (CVE-2024-21626).
pub fn close_inherited_fds(preserve: i32) -> Result<()> {
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
    if ret == 0 {
        return Ok(());
    }
    // Older kernels: walk /proc/self/fd instead.
    let entries = std::fs::read_dir("/proc/self/fd").context("list /proc/self/fd")?;
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as i32)
        .collect();
    for fd in fds {
        // The directory's own descriptor is gone by now: EBADF is fine.
        match nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        ) {
            Ok(_) | Err(nix::Error::EBADF) => {}
            Err(e) => return Err(e).context("mark inherited descriptors close-on-exec"),
        }
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
