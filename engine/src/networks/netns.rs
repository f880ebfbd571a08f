//! Network namespaces that berthd makes for containers, bind-mounted as files under
//! `<exec-root>/netns/<container id>` (as `ip netns add` does), so that the namespace
//! exists and is configured before the container's first process runs, outlives a berthd
//! crash, and is found again by name at restart.
//!
//! Entering a namespace changes the calling thread's, so every operation runs on a
//! dedicated OS thread that ends afterwards: a tokio worker never changes namespace, and no
//! thread is left in the wrong one if a step fails.

use super::netlink::{self, Netlink};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// A failed namespace operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Making the mount point file.
    #[error("creating {0}: {1}")]
    File(PathBuf, std::io::Error),
    /// unshare(CLONE_NEWNET).
    #[error("creating a network namespace: {0}")]
    Unshare(nix::Error),
    /// The bind mount that keeps it.
    #[error("bind-mounting the network namespace on {0}: {1}")]
    Mount(PathBuf, nix::Error),
    /// Opening a kept namespace.
    #[error("opening network namespace {0}: {1}")]
    Open(PathBuf, std::io::Error),
    /// setns into it.
    #[error("entering network namespace {0}: {1}")]
    Enter(PathBuf, nix::Error),
    /// The thread died.
    #[error("network namespace worker thread failed")]
    Thread,
    /// A netlink request in it failed.
    #[error(transparent)]
    Netlink(#[from] netlink::Error),
}

/// What an operation inside a namespace gets: netlink sockets on both sides and the
/// namespace's file (to move links into it).
pub struct Inside<'a> {
    /// A socket in the host's (berthd's) namespace.
    pub host: &'a mut Netlink,
    /// A socket in the container's namespace.
    pub ns: &'a mut Netlink,
    /// The namespace, open.
    pub ns_file: &'a File,
}

fn on_thread<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, Error> + Send + 'static,
) -> Result<R, Error> {
    std::thread::Builder::new()
        .name("berthd-netns".into())
        .spawn(f)
        .map_err(|_| Error::Thread)?
        .join()
        .map_err(|_| Error::Thread)?
}

/// Makes a new namespace kept at `path` and runs `f` in it (the calling thread is a
/// fresh one that has entered the namespace, so `f` may also bind sockets there). On
/// failure nothing is left: the mount and file are removed.
pub fn create<R: Send + 'static>(
    path: PathBuf,
    f: impl FnOnce(Inside<'_>) -> Result<R, Error> + Send + 'static,
) -> Result<R, Error> {
    on_thread(move || {
        let mut host = Netlink::open()?;
        File::create(&path).map_err(|e| Error::File(path.clone(), e))?;
        let made = (|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(Error::Unshare)?;
            mount(
                Some(Path::new("/proc/thread-self/ns/net")),
                &path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| Error::Mount(path.clone(), e))?;
            let ns_file = File::open(&path).map_err(|e| Error::Open(path.clone(), e))?;
            let mut ns = Netlink::open()?;
            f(Inside {
                host: &mut host,
                ns: &mut ns,
                ns_file: &ns_file,
            })
        })();
        if made.is_err() {
            let _ = umount2(&path, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&path);
        }
        made
    })
}

/// Runs `f` inside the namespace kept at `path` (on a fresh thread that has entered it).
pub fn enter<R: Send + 'static>(
    path: PathBuf,
    f: impl FnOnce(Inside<'_>) -> Result<R, Error> + Send + 'static,
) -> Result<R, Error> {
    on_thread(move || {
        let mut host = Netlink::open()?;
        let ns_file = File::open(&path).map_err(|e| Error::Open(path.clone(), e))?;
        setns(ns_file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::Enter(path.clone(), e))?;
        let mut ns = Netlink::open()?;
        f(Inside {
            host: &mut host,
            ns: &mut ns,
            ns_file: &ns_file,
        })
    })
}

/// Unmounts and removes a kept namespace; the kernel frees it (and the veth ends in it)
/// once no process is left in it. Missing is fine.
pub fn remove(path: &Path) {
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}
