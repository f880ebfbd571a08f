//! Protection against CVE-2019-5736: a container overwriting the runtime binary through
//! /proc/PID/exe of a runtime process it can see (or by making the runtime exec
//! `#!/proc/self/exe`).
//!
//! Before a command that puts processes into containers does anything, the runtime
//! re-executes itself from a private, read-only bind mount of its own binary (open_tree +
//! mount_setattr + execveat). Every /proc/PID/exe of ours then points through a read-only
//! mount, so opening it for writing fails with EROFS. The bind mount shares the page cache
//! of the original file, so unlike a memfd copy it costs no memory per container.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Context, Result};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 1;
/// Set in the environment of the re-executed runtime, so a failed seal cannot loop.
const SEALED_ENV: &str = "_BERTH_RUNTIME_SEALED";

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Whether the running binary is reached through a read-only mount.
pub fn exe_is_readonly() -> bool {
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false)
}

/// Re-execute from a read-only bind of our binary unless that is already the case.
/// Returns only when no re-exec was needed (or possible: then a warning says why).
pub fn ensure() -> Result<()> {
    if exe_is_readonly() {
        return Ok(());
    }
    if std::env::var_os(SEALED_ENV).is_some() {
        tracing::warn!(
            "runtime binary is still writable after re-exec; CVE-2019-5736 protection is off"
        );
        return Ok(());
    }
    let tree = match open_readonly_tree() {
        Ok(tree) => tree,
        Err(error) => {
            // Old kernels (no open_tree) and unprivileged runs cannot do this.
            tracing::warn!(
                "cannot seal the runtime binary ({error}); CVE-2019-5736 protection is off"
            );
            return Ok(());
        }
    };
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut pair = k.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(v.as_bytes());
            CString::new(pair).ok()
        })
        .collect();
    env.push(CString::new(format!("{SEALED_ENV}=1")).unwrap_or_default());
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings that
    // outlive the call; the path is an empty C string used with AT_EMPTY_PATH.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            tree.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(std::io::Error::last_os_error()).context("re-execute the runtime from its sealed binary")
}

/// A detached, read-only bind mount of /proc/self/exe.
fn open_readonly_tree() -> Result<OwnedFd> {
    // SAFETY: open_tree reads the NUL-terminated path and returns a new descriptor.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("open_tree /proc/self/exe");
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `attr` (of the size given) during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error())
            .context("make the binary's bind mount read-only");
    }
    Ok(tree)
}
