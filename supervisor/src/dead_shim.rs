//! Cleaning up after a dead shim, as containerd does: the supervisor watches every
//! shim's process through a pidfd, and when one dies while its task exists it does what
//! the shim can no longer do. It kills every process left in the container's recorded
//! cgroups (thawing a frozen one so that the kill lands), runs the shim's `delete`
//! command (the OCI runtime's `delete --force`, the rootfs unmounted), unmounts whatever
//! is still mounted in the bundle, removes the cgroups, records the task's exit in the
//! bundle and empties the rest, then publishes the exits nobody delivered. The task
//! stays, stopped, until Delete (see `tasks`).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::bundle::{self, Exit};
use crate::cgroups;
use crate::events;
use crate::tasks::{blocking, shim_died_reason, Life, Task, Tasks};

/// What a clean-up found: the init's exit (recorded by the shim if the process had
/// exited before, else 137 now), whether the OOM killer ended it, and the reason given
/// to what the supervisor killed.
pub(crate) struct Outcome {
    pub exit: Exit,
    pub oom: bool,
    pub killed_reason: String,
}

impl Tasks {
    /// Watch a live task's shim; when it dies, clean up after it.
    pub(crate) fn watch_shim(self: &Arc<Self>, t: Arc<Task>) {
        let Some(pidfd) = t.pidfd.clone() else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            pidfd.exited().await;
            this.shim_died(t).await;
        });
    }

    async fn shim_died(&self, t: Arc<Task>) {
        // Waits for a Create or Delete of this container in progress: a Delete
        // unregisters the task before it lets the shim go, so that exit is not a death.
        let _guard = self.locks.lock(&t.ns, &t.id).await;
        if !self.registry.is_current(&t) || !matches!(*t.life.borrow(), Life::Alive) {
            return;
        }
        t.life.send_replace(Life::Dying);
        let shim_pid = t.pidfd.as_ref().map(|p| p.pid());
        tracing::warn!(
            namespace = %t.ns,
            id = %t.id,
            shim_pid,
            "the task's shim died: killing what is left of the container and cleaning up"
        );
        let reason = shim_died_reason(shim_pid);
        let o = self
            .clean_up(
                &t.ns,
                &t.id,
                &t.bundle,
                t.shim_binary.as_deref(),
                t.init_pid,
                &reason,
            )
            .await;
        t.life.send_replace(Life::Dead(o.exit.clone()));
        self.publish_death(&t, &o);
    }

    /// Everything a dead shim leaves: processes, the runtime's container, mounts,
    /// cgroups; then the tombstone. Each step is idempotent, and the tombstone is written
    /// last, so a supervisor that crashes half-way does it all again at its restart.
    pub(crate) async fn clean_up(
        &self,
        ns: &str,
        id: &str,
        bundle: &Path,
        shim_binary: Option<&Path>,
        init_pid: u32,
        reason: &str,
    ) -> Outcome {
        let b = bundle.to_path_buf();
        let (dirs, left) = blocking(move || {
            let dirs = bundle::read_cgroups(&b);
            let left = cgroups::kill_all(&dirs, Duration::from_secs(10));
            (dirs, left)
        })
        .await;
        if !left.is_empty() {
            tracing::error!(namespace = ns, id, pids = ?left, "processes survived SIGKILL");
        }
        if let Some(bin) = shim_binary {
            // As containerd: the shim binary's `delete` runs the runtime's
            // `delete --force` and unmounts the rootfs.
            self.launch(bin, ns, id, bundle).delete().await;
        }
        let b = bundle.to_path_buf();
        let reason = reason.to_string();
        let (ns2, id2) = (ns.to_string(), id.to_string());
        blocking(move || {
            let mounted = bundle::unmount_all(&b);
            if !mounted.is_empty() {
                tracing::error!(namespace = %ns2, id = %id2, ?mounted, "still mounted");
            }
            let cg = cgroups::remove(&dirs);
            if !cg.is_empty() {
                tracing::error!(namespace = %ns2, id = %id2, cgroups = ?cg, "cgroups not removed");
            }
            let (exit, oom) = match bundle::read_init_exit(&b) {
                Some((status, at, oom)) => (
                    Exit {
                        pid: init_pid,
                        status,
                        at,
                        reason: String::new(),
                        oom,
                    },
                    oom,
                ),
                None => (
                    Exit {
                        pid: init_pid,
                        status: 137,
                        at: events::now(),
                        reason: reason.clone(),
                        oom: false,
                    },
                    false,
                ),
            };
            if let Err(e) = bundle::write_tombstone(&b, &exit) {
                tracing::error!(namespace = %ns2, id = %id2, error = %e, "recording the exit");
            }
            if let Err(e) = bundle::empty_for_tombstone(&b) {
                tracing::error!(namespace = %ns2, id = %id2, error = %e, "emptying the bundle");
            }
            Outcome {
                exit,
                oom,
                killed_reason: reason,
            }
        })
        .await
    }

    /// Publish what subscribers have not been told: each exec'd process killed, then
    /// the init's end (OOM first if the OOM killer ended it), unless delivered before.
    pub(crate) fn publish_death(&self, t: &Task, o: &Outcome) {
        let pending: Vec<(String, u32)> = t
            .execs()
            .iter()
            .filter(|(_, i)| i.exit.is_none())
            .map(|(id, i)| (id.clone(), i.pid))
            .collect();
        for (exec_id, pid) in pending {
            let x = Exit {
                pid,
                status: 137,
                at: o.exit.at,
                reason: o.killed_reason.clone(),
                oom: false,
            };
            self.publish_exit(&t.ns, &t.id, &exec_id, &x);
        }
        if !t.init_reported.load(Ordering::SeqCst) {
            if o.oom {
                self.publish_oom(&t.ns, &t.id);
            }
            self.publish_exit(&t.ns, &t.id, "", &o.exit);
        }
    }
}
