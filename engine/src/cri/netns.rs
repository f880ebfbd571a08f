//! Pinned network namespaces for pods: a new namespace made on a thread of its own and
//! bind-mounted on a file under the CRI's state directory, so that it outlives the
//! thread (and berthd), can be handed to CNI plugins and the OCI runtime by path, and
//! is torn down by unmounting that file. Connections into a pod's namespace (port
//! forwarding) are made on a thread that enters it and leaves with the socket.

use super::{Error, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::path::{Path, PathBuf};

/// Makes a new network namespace pinned at `dir/name`.
pub async fn create(dir: &Path, name: &str) -> Result<PathBuf> {
    let dir = dir.to_path_buf();
    let path = dir.join(name);
    let p = path.clone();
    let made = std::thread::spawn(move || -> std::result::Result<(), String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        std::fs::File::create(&p).map_err(|e| format!("creating {}: {e}", p.display()))?;
        // This thread alone moves into the new namespace (namespaces are per task),
        // and ends right after: berthd's other threads stay where they are.
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
        let own = "/proc/thread-self/ns/net";
        mount(Some(own), &p, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| format!("pinning the network namespace on {}: {e}", p.display()))
    })
    .join()
    .map_err(|_| Error::Internal("network namespace thread panicked".into()))?;
    match made {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(Error::Internal(e))
        }
    }
}

/// Unpins a namespace (the kernel frees it once nothing is in it); fine if gone.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => {
            return Err(Error::Internal(format!(
                "unmounting {}: {e}",
                path.display()
            )))
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::Internal(format!("removing {}: {e}", path.display())))
        }
        _ => Ok(()),
    }
}

/// True if `path` is a pinned namespace (a mount of an nsfs file).
pub fn is_pinned(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.len() > 4 && Path::new(f[4]) == path && l.contains(" - nsfs ")
        })
}

/// Connects to `127.0.0.1:port` inside the namespace at `netns` (the host's when None).
pub async fn connect_in(
    netns: Option<PathBuf>,
    port: u16,
) -> std::io::Result<tokio::net::TcpStream> {
    let Some(ns) = netns else {
        return tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = (|| -> std::io::Result<std::net::TcpStream> {
            let f = std::fs::File::open(&ns)?;
            setns(&f, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            let s = std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                std::time::Duration::from_secs(10),
            )?;
            s.set_nonblocking(true)?;
            Ok(s)
        })();
        // The thread ends here, still in the pod's namespace: it is never reused.
        let _ = tx.send(r);
    });
    let s = rx
        .await
        .map_err(|_| std::io::Error::other("connect thread ended"))??;
    tokio::net::TcpStream::from_std(s)
}
