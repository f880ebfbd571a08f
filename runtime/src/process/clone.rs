//! The one fork of the runtime: clone(2) with the container's new namespaces.

use nix::sched::CloneFlags;

use crate::error::{Context, Result};

/// Where a clone returned.
pub enum Forked {
    /// In the parent, with the child's PID.
    Parent(i32),
    /// In the child.
    Child,
}

/// Fork into new namespaces in one step. No re-exec of the runtime binary is needed: the
/// child is a copy of this process and goes on to set up the container, then executes the
/// user's program, so /proc/self/exe of the container never is the runtime binary.
pub fn clone_with(flags: CloneFlags) -> Result<Forked> {
    let flags = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone with a null stack behaves as fork: the child gets a copy-on-write copy
    // of the address space and continues from here. The runtime is single-threaded at this
    // point (no threads have been started), so no lock can be held by another thread.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(std::io::Error::last_os_error()).context("clone the container's init"),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}
