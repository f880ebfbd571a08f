//! Containers of pods: CreateContainer, StartContainer, StopContainer, RemoveContainer,
//! ListContainers, ContainerStatus, UpdateContainerResources, ReopenContainerLog. A
//! container's OCI spec and root filesystem are fixed at create (as containerd does) and
//! kept beside its root filesystem until start, when its record and task are made in the
//! supervisor; its output goes to its CRI log; its exit is followed from the
//! supervisor's events, with OOM kills told apart by its memory cgroup's counter.

use super::io::{ContainerIo, Fifos};
use super::sandbox::blocking;
use super::store::{Container, ContainerState, Entry, SandboxState};
use super::supervisor::ProcStatus;
use super::user::{Accounts, Wanted};
use super::{cri, internal, spec, Cri, Error, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Exit code recorded for a container whose process could not be started.
const START_ERROR_CODE: i32 = 128;

/// What CreateContainer fixed for StartContainer's task (`containers-fs/ID/task.json`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Prepared {
    spec: oci_spec::runtime::Spec,
    /// Options of the root filesystem's overlay mount.
    rootfs: Vec<String>,
    /// The OCI runtime binary of the pod's handler.
    runtime: String,
}

const PREPARED: &str = "task";

/// True if the kernel's OOM killer killed a process in the cgroup (v1 memory
/// controller's `oom_kill` count, or v2's `memory.events`).
fn oom_killed(cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    let count = |file: PathBuf| -> u64 {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let v1 = PathBuf::from("/sys/fs/cgroup/memory").join(rel);
    if v1.is_dir() {
        return count(v1.join("memory.oom_control")) > 0;
    }
    count(
        PathBuf::from("/sys/fs/cgroup")
            .join(rel)
            .join("memory.events"),
    ) > 0
}

fn state_name(s: ContainerState) -> &'static str {
    match s {
        ContainerState::Created => "CONTAINER_CREATED",
        ContainerState::Running => "CONTAINER_RUNNING",
        ContainerState::Exited => "CONTAINER_EXITED",
        ContainerState::Unknown => "CONTAINER_UNKNOWN",
    }
}

fn cri_state(s: ContainerState) -> i32 {
    match s {
        ContainerState::Created => cri::ContainerState::ContainerCreated as i32,
        ContainerState::Running => cri::ContainerState::ContainerRunning as i32,
        ContainerState::Exited => cri::ContainerState::ContainerExited as i32,
        ContainerState::Unknown => cri::ContainerState::ContainerUnknown as i32,
    }
}

impl Cri {
    /// The directory of a container's root filesystem (upper and work directories).
    fn container_dir(&self, id: &str) -> PathBuf {
        self.opts.data_dir.join("containers-fs").join(id)
    }

    /// The directory of a container's FIFOs.
    pub(crate) fn io_dir(&self, id: &str) -> PathBuf {
        self.opts.state_dir.join("io").join(id)
    }

    /// CreateContainer.
    pub async fn create_container(
        self: &Arc<Self>,
        req: cri::CreateContainerRequest,
    ) -> Result<String> {
        let config = req
            .config
            .ok_or_else(|| Error::Invalid("CreateContainer: config is required".into()))?;
        let md = config
            .metadata
            .clone()
            .filter(|m| !m.name.is_empty())
            .ok_or_else(|| {
                Error::Invalid("CreateContainer: config.metadata.name is required".into())
            })?;
        let image_name = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| Error::Invalid("CreateContainer: config.image is required".into()))?;
        let sb_entry = self.store.sandbox(&req.pod_sandbox_id)?;
        let sb = sb_entry.get();
        if sb.state != SandboxState::Ready {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                sb.id
            )));
        }
        let rec = self
            .images
            .resolve(&image_name)
            .map_err(|_| Error::NotFound(format!("image {image_name:?} not found")))?;
        let image_config: oci_spec::image::ImageConfiguration = {
            let bytes = self
                .images
                .content
                .read(&rec.id)
                .map_err(internal("reading the image config"))?;
            serde_json::from_slice(&bytes).map_err(internal("decoding the image config"))?
        };
        let settings = spec::image_settings(&image_config);
        let sc = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref());
        let want = Wanted {
            uid: sc.and_then(|s| s.run_as_user.as_ref()).map(|v| v.value),
            username: sc.map(|s| s.run_as_username.clone()).unwrap_or_default(),
            gid: sc.and_then(|s| s.run_as_group.as_ref()).map(|v| v.value),
            supplemental: sc
                .map(|s| s.supplemental_groups.clone())
                .unwrap_or_default(),
        };
        let mut lowers: Vec<PathBuf> = crate::snapshots::chain_ids(&rec.diff_ids())
            .iter()
            .map(|c| self.images.snapshots.fs_path(c))
            .collect();
        lowers.reverse();
        let needs_accounts =
            want.uid.is_some() || !want.username.is_empty() || !settings.user.is_empty();
        let accounts = if needs_accounts && !lowers.is_empty() {
            let scratch = self.opts.state_dir.join("views");
            let l = lowers.clone();
            blocking(move || Accounts::read(&l, &scratch)).await?
        } else {
            Accounts::default()
        };
        let user = super::user::resolve(&want, &settings.user, &accounts)?;
        let id = super::new_id();
        let sb_md = sb.config.metadata.clone().unwrap_or_default();
        let cgroups_path = spec::cgroups_path(self.opts.cgroup_driver, &sb.cgroup_parent, &id);
        let oci = spec::container_spec(&spec::ContainerInput {
            id: &id,
            config: &config,
            sandbox: &sb,
            sandbox_dir: &self.pod_dir(&sb.id),
            image: &settings,
            user: user.clone(),
            cgroups_path: &cgroups_path,
            oom_floor: self.oom_floor,
        })?;
        let log_path = if sb.config.log_directory.is_empty() || config.log_path.is_empty() {
            String::new()
        } else {
            PathBuf::from(&sb.config.log_directory)
                .join(&config.log_path)
                .display()
                .to_string()
        };
        let stop_signal = spec::signal_number(&settings.stop_signal).unwrap_or(15);
        let c = Container {
            id: id.clone(),
            sandbox_id: sb.id.clone(),
            name: format!(
                "{}_{}_{}_{}_{}",
                md.name, sb_md.name, sb_md.namespace, sb_md.uid, md.attempt
            ),
            image_id: rec.id.to_string(),
            created_at: super::now_ns(),
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            state: ContainerState::Created,
            pid: 0,
            log_path,
            resources: config.linux.as_ref().and_then(|l| l.resources.clone()),
            cgroups_path,
            stop_signal,
            user,
            process: oci.process().clone(),
            config,
        };
        self.store.add_container(c)?;
        let dir = self.container_dir(&id);
        let made = async {
            let rootfs = {
                let (this, img, d) = (self.clone(), rec.id.to_string(), dir.clone());
                blocking(move || this.rootfs_options(&img, &d)).await?
            };
            let task = Prepared {
                spec: oci,
                rootfs,
                runtime: self.runtime_binary(&sb.runtime_handler)?,
            };
            let d = dir.clone();
            blocking(move || super::store::write(&d, PREPARED, &task)).await
        }
        .await;
        if let Err(e) = made {
            let _ = self.store.remove_container(&id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(id)
    }

    /// StartContainer.
    pub async fn start_container(self: &Arc<Self>, id: &str) -> Result<()> {
        let entry = self.store.container(id)?;
        let _op = entry.op.lock().await;
        let c = entry.get();
        if c.state != ContainerState::Created {
            return Err(Error::FailedPrecondition(format!(
                "container {} is in {} state, not CONTAINER_CREATED",
                c.id,
                state_name(c.state)
            )));
        }
        let sb = self.store.sandbox(&c.sandbox_id)?.get();
        if sb.state != SandboxState::Ready {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                sb.id
            )));
        }
        let tty = c.config.tty;
        let fifos = Fifos::paths(&self.io_dir(&c.id), "init", c.config.stdin, tty);
        let started = async {
            let f = fifos.clone();
            blocking(move || f.make().map_err(internal("making FIFOs"))).await?;
            let log = (!c.log_path.is_empty()).then(|| PathBuf::from(&c.log_path));
            let io = ContainerIo::start(fifos.clone(), tty, log.as_deref())
                .map_err(internal("opening the container's streams"))?;
            self.ios
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(c.id.clone(), io.clone());
            let path = self.container_dir(&c.id).join(format!("{PREPARED}.json"));
            let task: Prepared = blocking(move || {
                let bytes = std::fs::read(&path)
                    .map_err(internal(format!("reading {}", path.display())))?;
                serde_json::from_slice(&bytes)
                    .map_err(internal(format!("decoding {}", path.display())))
            })
            .await?;
            // An UpdateContainerResources before start is kept in the record: the spec
            // takes it now, with the device rules it was made with.
            let spec = match &c.resources {
                Some(r) => with_resources(task.spec, r, privileged(&c.config))?,
                None => task.spec,
            };
            self.sv
                .create(&c.id, &spec, task.rootfs, &task.runtime, &fifos.stdio(tty))
                .await?;
            self.sv.start(&c.id, "").await
        }
        .await;
        match started {
            Ok(pid) => {
                self.store.update_container(&entry, |r| {
                    r.state = ContainerState::Running;
                    r.pid = pid;
                    r.started_at = super::now_ns();
                })?;
                self.watch_exit(entry.clone());
                Ok(())
            }
            Err(e) => {
                let _ = self.sv.kill(&c.id, "", 9, true).await;
                let _ = self.sv.delete(&c.id).await;
                if let Some(io) = self
                    .ios
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&c.id)
                {
                    tokio::spawn(async move { io.finish().await });
                }
                fifos.remove();
                let now = super::now_ns();
                self.store.update_container(&entry, |r| {
                    r.state = ContainerState::Exited;
                    r.started_at = now;
                    r.finished_at = now;
                    r.exit_code = START_ERROR_CODE;
                    r.reason = "StartError".into();
                    r.message = e.to_string();
                })?;
                Err(Error::Internal(format!(
                    "failed to start container {}: {e}",
                    c.id
                )))
            }
        }
    }

    /// Watches a running container for its exit.
    pub(crate) fn watch_exit(self: &Arc<Self>, entry: Arc<Entry<Container>>) {
        let this = self.clone();
        tokio::spawn(async move {
            let id = entry.get().id;
            let (status, at) = loop {
                match this.sv.wait(&id, "").await {
                    Ok(r) => break r,
                    Err(Error::NotFound(_)) => break (255, super::now_ns()),
                    Err(e) => {
                        if this.store.container(&id).is_err() {
                            return;
                        }
                        tracing::debug!(%id, error = %e, "wait failed; again");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            };
            this.reap(&entry, status, at).await;
        });
    }

    /// Records a container's exit (once) and drains its output.
    pub(crate) async fn reap(&self, entry: &Entry<Container>, status: u32, at: i64) {
        let c = entry.get();
        let io = self
            .ios
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.id);
        if let Some(io) = io {
            let _ = tokio::time::timeout(Duration::from_secs(5), io.finish()).await;
        }
        if c.state != ContainerState::Running {
            return;
        }
        let oom = oom_killed(&c.cgroups_path);
        let code = status as i32;
        let _ = self.store.update_container(entry, |r| {
            if r.state != ContainerState::Running {
                return;
            }
            r.state = ContainerState::Exited;
            r.finished_at = if at > 0 { at } else { super::now_ns() };
            r.exit_code = code;
            r.pid = 0;
            r.reason = if oom {
                "OOMKilled".into()
            } else if code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            };
        });
    }

    /// StopContainer.
    pub async fn stop_container(self: &Arc<Self>, id: &str, timeout: i64) -> Result<()> {
        let entry = self.store.container(id)?;
        self.stop_container_entry(&entry, timeout).await
    }

    /// Sends the stop signal, waits `timeout` seconds, then kills; returns once it
    /// has exited. Fine for a container that does not run.
    pub(crate) async fn stop_container_entry(
        &self,
        entry: &Arc<Entry<Container>>,
        timeout: i64,
    ) -> Result<()> {
        let _op = entry.op.lock().await;
        let c = entry.get();
        if c.state != ContainerState::Running {
            return Ok(());
        }
        let wait = |d: Duration| tokio::time::timeout(d, self.sv.wait(&c.id, ""));
        let mut exit = None;
        if timeout > 0 {
            match self.sv.kill(&c.id, "", c.stop_signal, false).await {
                Ok(()) => {
                    if let Ok(r) = wait(Duration::from_secs(timeout as u64)).await {
                        exit = Some(r);
                    }
                }
                Err(Error::NotFound(_)) => exit = Some(Ok((255, super::now_ns()))),
                Err(e) => tracing::debug!(id = %c.id, error = %e, "stop signal"),
            }
        }
        let (status, at) = match exit {
            Some(Ok(r)) => r,
            _ => {
                match self.sv.kill(&c.id, "", 9, true).await {
                    Ok(()) | Err(Error::NotFound(_)) | Err(Error::FailedPrecondition(_)) => {}
                    Err(e) => return Err(e),
                }
                match wait(Duration::from_secs(30)).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(Error::NotFound(_))) => (137, super::now_ns()),
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        return Err(Error::Internal(format!(
                            "container {} did not exit after SIGKILL",
                            c.id
                        )))
                    }
                }
            }
        };
        self.reap(entry, status, at).await;
        Ok(())
    }

    /// RemoveContainer: a running container is killed first. An unknown ID is not an
    /// error (it may be gone already).
    pub async fn remove_container(self: &Arc<Self>, id: &str) -> Result<()> {
        let entry = match self.store.container(id) {
            Ok(e) => e,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        self.remove_container_entry(&entry).await
    }

    pub(crate) async fn remove_container_entry(&self, entry: &Arc<Entry<Container>>) -> Result<()> {
        self.stop_container_entry(entry, 0).await?;
        let _op = entry.op.lock().await;
        let c = entry.get();
        self.sv.delete(&c.id).await?;
        let io = self
            .ios
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&c.id);
        if let Some(io) = io {
            io.finish().await;
        }
        let (io_dir, fs_dir) = (self.io_dir(&c.id), self.container_dir(&c.id));
        blocking(move || {
            let _ = std::fs::remove_dir_all(io_dir);
            match std::fs::remove_dir_all(&fs_dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(internal("removing the container's files")(e))
                }
                _ => Ok(()),
            }
        })
        .await?;
        self.store.remove_container(&c.id)
    }

    fn to_status(&self, c: &Container) -> cri::ContainerStatus {
        cri::ContainerStatus {
            id: c.id.clone(),
            metadata: c.config.metadata.clone(),
            state: cri_state(c.state),
            created_at: c.created_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            exit_code: c.exit_code,
            image: c.config.image.clone(),
            image_ref: c.image_id.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            labels: c.config.labels.clone(),
            annotations: c.config.annotations.clone(),
            mounts: c.config.mounts.clone(),
            log_path: c.log_path.clone(),
            resources: c.resources.clone().map(|r| cri::ContainerResources {
                linux: Some(r),
                windows: None,
            }),
            image_id: c.image_id.clone(),
            user: Some(cri::ContainerUser {
                linux: Some(cri::LinuxContainerUser {
                    uid: i64::from(c.user.0),
                    gid: i64::from(c.user.1),
                    supplemental_groups: c.user.2.iter().map(|g| i64::from(*g)).collect(),
                }),
            }),
        }
    }

    /// ContainerStatus.
    pub async fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<cri::ContainerStatusResponse> {
        let c = self.store.container(id)?.get();
        let mut info = HashMap::new();
        if verbose {
            let v = serde_json::json!({
                "pid": c.pid,
                "sandboxID": c.sandbox_id,
                "cgroupsPath": c.cgroups_path,
                "process": c.process,
                "config": c.config,
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(cri::ContainerStatusResponse {
            status: Some(self.to_status(&c)),
            info,
        })
    }

    /// ListContainers.
    pub fn list_containers(&self, filter: Option<cri::ContainerFilter>) -> Vec<cri::Container> {
        let f = filter.unwrap_or_default();
        let mut out: Vec<cri::Container> = self
            .store
            .containers()
            .into_iter()
            .map(|e| e.get())
            .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
            .filter(|c| f.pod_sandbox_id.is_empty() || c.sandbox_id.starts_with(&f.pod_sandbox_id))
            .filter(|c| {
                f.state
                    .as_ref()
                    .is_none_or(|s| s.state == cri_state(c.state))
            })
            .filter(|c| super::labels_match(&c.config.labels, &f.label_selector))
            .map(|c| cri::Container {
                id: c.id.clone(),
                pod_sandbox_id: c.sandbox_id.clone(),
                metadata: c.config.metadata.clone(),
                image: c.config.image.clone(),
                image_ref: c.image_id.clone(),
                state: cri_state(c.state),
                created_at: c.created_at,
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
                image_id: c.image_id.clone(),
            })
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        out
    }

    /// UpdateContainerResources: recorded, and applied to a running container.
    pub async fn update_container_resources(
        &self,
        id: &str,
        linux: Option<cri::LinuxContainerResources>,
    ) -> Result<()> {
        let entry = self.store.container(id)?;
        let _op = entry.op.lock().await;
        let c = entry.get();
        let Some(r) = linux else { return Ok(()) };
        if c.state == ContainerState::Exited || c.state == ContainerState::Unknown {
            return Err(Error::FailedPrecondition(format!(
                "container {} is in {} state",
                c.id,
                state_name(c.state)
            )));
        }
        let privileged = privileged(&c.config);
        if c.state == ContainerState::Running {
            let mut res = spec::resources(Some(&r), privileged)?;
            // The device rules stay as they were made.
            res.set_devices(None);
            self.sv.update(&c.id, &res).await?;
        }
        self.store
            .update_container(&entry, |rec| rec.resources = Some(r))?;
        Ok(())
    }

    /// ReopenContainerLog: the log file is opened again (after the kubelet renamed it).
    pub async fn reopen_container_log(&self, id: &str) -> Result<()> {
        let c = self.store.container(id)?.get();
        if c.state != ContainerState::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                c.id
            )));
        }
        let io = self
            .ios
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&c.id)
            .cloned();
        match io.and_then(|io| io.log.clone()) {
            Some(log) => {
                blocking(move || {
                    log.reopen()
                        .map_err(internal("reopening the container log"))
                })
                .await
            }
            None => Err(Error::FailedPrecondition(format!(
                "container {} has no log",
                c.id
            ))),
        }
    }

    /// After a restart: a container recorded as running either still runs (its
    /// output is copied again and its exit watched) or has exited meanwhile.
    pub(crate) async fn recover_container(self: &Arc<Self>, entry: &Arc<Entry<Container>>) {
        let c = entry.get();
        if c.state != ContainerState::Running {
            return;
        }
        match self.sv.state(&c.id, "").await {
            Ok((pid, ProcStatus::Running)) => {
                let fifos = Fifos::paths(&self.io_dir(&c.id), "init", c.config.stdin, c.config.tty);
                let log = (!c.log_path.is_empty()).then(|| PathBuf::from(&c.log_path));
                match ContainerIo::start(fifos, c.config.tty, log.as_deref()) {
                    Ok(io) => {
                        self.ios
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(c.id.clone(), io);
                    }
                    Err(e) => {
                        tracing::warn!(id = %c.id, error = %e, "reopening the container's streams")
                    }
                }
                let _ = self.store.update_container(entry, |r| r.pid = pid);
                self.watch_exit(entry.clone());
            }
            Ok((_, ProcStatus::Stopped(status, at))) => self.reap(entry, status, at).await,
            Ok(_) | Err(Error::NotFound(_)) => self.reap(entry, 255, super::now_ns()).await,
            Err(e) => {
                tracing::warn!(id = %c.id, error = %e, "container state unknown after restart");
                let _ = self
                    .store
                    .update_container(entry, |r| r.state = ContainerState::Unknown);
            }
        }
    }
}

/// Whether a container's config asks for a privileged container.
fn privileged(config: &cri::ContainerConfig) -> bool {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .is_some_and(|s| s.privileged)
}

/// `spec` with its resources made from `r`, keeping the device rules it has.
fn with_resources(
    mut spec: oci_spec::runtime::Spec,
    r: &cri::LinuxContainerResources,
    privileged: bool,
) -> Result<oci_spec::runtime::Spec> {
    let mut res = spec::resources(Some(r), privileged)?;
    if let Some(linux) = spec.linux_mut() {
        res.set_devices(
            linux
                .resources()
                .as_ref()
                .and_then(|old| old.devices().clone()),
        );
        linux.set_resources(Some(res));
    }
    Ok(spec)
}
