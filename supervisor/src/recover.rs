//! After a restart: every bundle under `<state>/tasks` is looked at (all at once, before
//! the API is served). A live shim of a known container is found again: its task is
//! registered and watched, and an exit it saw while the supervisor was away is published
//! (its OOM kill first). A dead shim, or one that no longer answers, is cleaned up after
//! as at run time (`dead_shim`) and its task kept, stopped, with exit 137. A task found
//! already stopped after its shim died stays so. Shims and bundles of containers nobody
//! has a record of are stopped and removed.
//!
//! A shim that answers slowly is not dead: only a shim whose process is gone, or that
//! does not answer after a few tries, is treated so (and a hung one is killed first).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use containerd_shim_protos::api as sh;
use tokio::task::JoinSet;

use crate::bundle::{self, Exit};
use crate::error::Result;
use crate::shim::ShimClient;
use crate::sys::PidFd;
use crate::tasks::{
    blocking, follow_shim_log, record_cgroups, shutdown_shim, watch_pid, Task, Tasks, CALL,
};

/// Connect to a shim address, a few times (a shim busy with a slow call still accepts
/// connections; one that refuses three times over a second is gone).
async fn connect(address: &str) -> Option<ShimClient> {
    for delay in [0, 200, 800] {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if let Ok(c) = ShimClient::connect(address).await {
            return Some(c);
        }
    }
    None
}

/// Whether `pid` is the shim of `bundle` (shims run with the bundle as their working
/// directory): never signal a process that merely reused a dead shim's PID.
fn is_shim_of(pid: u32, bundle: &Path) -> bool {
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
    let b = std::fs::canonicalize(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    cwd.is_ok_and(|c| c == b)
}

impl Tasks {
    /// Find every task again (see the module's description).
    pub async fn recover(self: &Arc<Self>) {
        let root = self.paths.state.join("tasks");
        let Ok(nss) = std::fs::read_dir(&root) else {
            return;
        };
        let mut set = JoinSet::new();
        for ns_entry in nss.flatten() {
            let ns = ns_entry.file_name().to_string_lossy().into_owned();
            let Ok(ids) = std::fs::read_dir(ns_entry.path()) else {
                continue;
            };
            for id_entry in ids.flatten() {
                let id = id_entry.file_name().to_string_lossy().into_owned();
                let this = self.clone();
                let ns = ns.clone();
                set.spawn(async move { this.recover_one(&ns, &id, &id_entry.path()).await });
            }
        }
        while set.join_next().await.is_some() {}
    }

    async fn recover_one(self: &Arc<Self>, ns: &str, id: &str, bundle: &Path) {
        let store = self.store.clone();
        let (n, i) = (ns.to_string(), id.to_string());
        let known = blocking(move || store.container(&n, &i).is_ok()).await;
        if let Some(exit) = bundle::read_tombstone(bundle) {
            let b = bundle.to_path_buf();
            if !known {
                let _ = blocking(move || bundle::remove(&b)).await;
                return;
            }
            // Finish an emptying cut short by a crash.
            let _ = blocking(move || bundle::empty_for_tombstone(&b)).await;
            let t = Arc::new(Task::stopped(ns, id, bundle, exit.clone()));
            self.registry.insert(t.clone());
            if !t.init_reported.load(Ordering::SeqCst) {
                if exit.oom {
                    self.publish_oom(ns, id);
                }
                self.publish_exit(ns, id, "", &exit);
            }
            tracing::info!(
                namespace = ns,
                id,
                "recovered a stopped task whose shim had died"
            );
            return;
        }
        let _ = follow_shim_log(bundle, ns, id);
        let shim_bin = std::fs::read_to_string(bundle.join(bundle::SHIM_BINARY))
            .ok()
            .map(PathBuf::from);
        let address = std::fs::read_to_string(bundle.join("address")).ok();
        if address.is_none() && !bundle.join(bundle::SHIM_PID).exists() {
            // Cut short before its shim was started: no task ever existed.
            let b = bundle.to_path_buf();
            if let Err(e) = blocking(move || bundle::remove(&b)).await {
                tracing::error!(namespace = ns, id, error = %e, "leaving a bundle behind");
            }
            return;
        }
        let client = match &address {
            Some(a) => connect(a.trim()).await,
            None => None,
        };
        let shim_pid = bundle::read_pid(bundle, bundle::SHIM_PID)
            .or_else(|| bundle::read_pid(bundle, "shim.pid"));
        if let Some(shim) = client {
            if known {
                match self
                    .adopt(ns, id, bundle, shim.clone(), shim_bin.clone())
                    .await
                {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(namespace = ns, id, error = %e, "a shim that answers but has no usable task");
                    }
                }
            } else {
                tracing::warn!(namespace = ns, id, "stopping a shim nobody claims");
            }
            stop_shim(&shim, id).await;
        } else if let Some(pid) = shim_pid {
            // Not answering: gone, or hung. A hung one is ended, by pidfd, so that a
            // process that reused its PID is never hit.
            if let Ok(fd) = PidFd::open(pid) {
                if is_shim_of(pid, bundle) && !fd.has_exited() {
                    tracing::warn!(
                        namespace = ns,
                        id,
                        pid,
                        "killing a shim that does not answer"
                    );
                    let _ = fd.signal(libc::SIGKILL);
                    fd.exits_within(Duration::from_secs(5)).await;
                }
            }
        }
        let reason = match shim_pid {
            Some(pid) => format!(
                "shim (pid {pid}) gone, hung or without its task when berth-supervisor restarted: it killed what was left of the container"
            ),
            None => "shim gone when berth-supervisor restarted: it killed what was left of the container".into(),
        };
        let init_pid = bundle::read_pid(bundle, bundle::INIT_PID).unwrap_or(0);
        let o = self
            .clean_up(ns, id, bundle, shim_bin.as_deref(), init_pid, &reason)
            .await;
        if known {
            let t = Arc::new(Task::stopped(ns, id, bundle, o.exit.clone()));
            self.registry.insert(t.clone());
            self.publish_death(&t, &o);
            tracing::warn!(
                namespace = ns,
                id,
                "the task's shim was gone: cleaned up, task stopped"
            );
        } else {
            let b = bundle.to_path_buf();
            if let Err(e) = blocking(move || bundle::remove(&b)).await {
                tracing::error!(namespace = ns, id, error = %e, "leaving a bundle behind");
            }
            tracing::info!(
                namespace = ns,
                id,
                "removed the bundle of a task nobody claims"
            );
        }
    }

    /// A live shim of a known container, found again.
    async fn adopt(
        self: &Arc<Self>,
        ns: &str,
        id: &str,
        bundle: &Path,
        shim: ShimClient,
        shim_bin: Option<PathBuf>,
    ) -> Result<()> {
        let pidfd = watch_pid(&shim, id, bundle).await?;
        let mut q = sh::StateRequest::new();
        q.id = id.into();
        let s: sh::StateResponse = shim.call("State", &q, CALL).await?;
        let status = s.status.enum_value_or_default();
        if status != sh::Status::STOPPED && !bundle.join(bundle::CGROUPS).exists() {
            // A bundle made before cgroups were recorded: the init is alive, record now.
            let (b, init, sp) = (bundle.to_path_buf(), s.pid, pidfd.pid());
            blocking(move || record_cgroups(&b, init, sp)).await;
        }
        let t = Arc::new(Task::live(ns, id, bundle, shim, shim_bin, pidfd, s.pid));
        self.registry.insert(t.clone());
        self.watch_shim(t.clone());
        tracing::info!(namespace = ns, id, status = ?status, "recovered task");
        if status == sh::Status::STOPPED && !t.init_reported.load(Ordering::SeqCst) {
            if bundle::read_init_exit(bundle).is_some_and(|(_, _, oom)| oom) {
                self.publish_oom(ns, id);
            }
            let x = Exit {
                pid: s.pid,
                status: s.exit_status,
                at: s
                    .exited_at
                    .as_ref()
                    .map(|t| (t.seconds, t.nanos))
                    .unwrap_or_default(),
                reason: String::new(),
                oom: false,
            };
            self.publish_exit(ns, id, "", &x);
        }
        Ok(())
    }
}

/// End a shim's task and the shim: kill everything, wait a little, delete, shut down.
async fn stop_shim(shim: &ShimClient, id: &str) {
    let mut k = sh::KillRequest::new();
    k.id = id.into();
    k.signal = 9;
    k.all = true;
    let _ = shim.call::<_, sh::Empty>("Kill", &k, CALL).await;
    let mut w = sh::WaitRequest::new();
    w.id = id.into();
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        shim.call::<_, sh::WaitResponse>("Wait", &w, None),
    )
    .await;
    let mut d = sh::DeleteRequest::new();
    d.id = id.into();
    let _ = shim.call::<_, sh::DeleteResponse>("Delete", &d, CALL).await;
    shutdown_shim(shim, id).await;
}
