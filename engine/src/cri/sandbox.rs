//! Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus,
//! ListPodSandbox. A sandbox is a pinned network namespace attached through CNI, the
//! pod's /etc files and /dev/shm, and the pause process holding its namespaces, run
//! from the sandbox image through the supervisor. Whatever fails part way is undone:
//! a sandbox either is made whole or leaves nothing behind.

use super::cni::{Attachment, PortMapping};
use super::store::{Sandbox, SandboxState};
use super::{cri, internal, netns, spec, Cri, Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The cgroup parent of pods whose config names none.
pub const DEFAULT_CGROUP_PARENT: &str = "/berth-k8s";

/// Runs blocking host work (files, mounts) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(internal("background work"))?
}

/// The pod's /etc/resolv.conf: its DNS config, else the host's.
fn resolv_conf(dns: Option<&cri::DnsConfig>) -> String {
    match dns {
        Some(d) if !(d.servers.is_empty() && d.searches.is_empty() && d.options.is_empty()) => {
            let mut s = String::new();
            if !d.searches.is_empty() {
                s.push_str(&format!("search {}\n", d.searches.join(" ")));
            }
            for n in &d.servers {
                s.push_str(&format!("nameserver {n}\n"));
            }
            if !d.options.is_empty() {
                s.push_str(&format!("options {}\n", d.options.join(" ")));
            }
            s
        }
        _ => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    }
}

fn hosts_file(host_net: bool) -> String {
    if host_net {
        return std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    }
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".into()
}

fn mount_shm(dir: &Path) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    std::fs::create_dir_all(dir).map_err(internal("creating the pod's shm directory"))?;
    mount(
        Some("shm"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(internal("mounting the pod's /dev/shm"))
}

fn umount_shm(dir: &Path) {
    let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
}

/// The pod's port mappings as the portmap plugin takes them.
fn port_mappings(c: &cri::PodSandboxConfig) -> Vec<PortMapping> {
    c.port_mappings
        .iter()
        .filter(|p| p.host_port > 0)
        .map(|p| PortMapping {
            host_port: p.host_port,
            container_port: p.container_port,
            protocol: match cri::Protocol::try_from(p.protocol).unwrap_or(cri::Protocol::Tcp) {
                cri::Protocol::Tcp => "tcp".into(),
                cri::Protocol::Udp => "udp".into(),
                cri::Protocol::Sctp => "sctp".into(),
            },
            host_ip: p.host_ip.clone(),
        })
        .collect()
}

fn attachment(sb: &Sandbox, netns: PathBuf) -> Attachment {
    let md = sb.config.metadata.clone().unwrap_or_default();
    Attachment {
        id: sb.id.clone(),
        netns,
        pod: (md.name, md.namespace, md.uid),
        ports: port_mappings(&sb.config),
    }
}

impl Cri {
    /// The directory of a pod's files (hosts, hostname, resolv.conf, shm, rootfs).
    pub(crate) fn pod_dir(&self, id: &str) -> PathBuf {
        self.opts.data_dir.join("pods").join(id)
    }

    /// The overlay options of a root filesystem: the image's layers under an upper
    /// and work directory in `dir`.
    pub(crate) fn rootfs_options(&self, image_id: &str, dir: &Path) -> Result<Vec<String>> {
        let rec = self
            .images
            .resolve(image_id)
            .map_err(|_| Error::NotFound(format!("image {image_id} not found")))?;
        let mut lowers: Vec<String> = crate::snapshots::chain_ids(&rec.diff_ids())
            .iter()
            .map(|c| self.images.snapshots.fs_path(c).display().to_string())
            .collect();
        lowers.reverse();
        if lowers.is_empty() {
            let empty = dir.join("empty");
            std::fs::create_dir_all(&empty).map_err(internal("creating an empty layer"))?;
            lowers.push(empty.display().to_string());
        }
        for d in ["upper", "work"] {
            std::fs::create_dir_all(dir.join(d)).map_err(internal(format!("creating {d}dir")))?;
        }
        Ok(vec![
            format!("lowerdir={}", lowers.join(":")),
            format!("upperdir={}", dir.join("upper").display()),
            format!("workdir={}", dir.join("work").display()),
        ])
    }

    /// The OCI runtime binary of a runtime handler (empty: the default runtime).
    pub(crate) fn runtime_binary(&self, handler: &str) -> Result<String> {
        let name = if handler.is_empty() {
            &self.opts.runtimes.default
        } else {
            handler
        };
        self.opts
            .runtimes
            .binary(name)
            .map(String::from)
            .ok_or_else(|| Error::Invalid(format!("no runtime for {handler:?} is configured")))
    }

    /// RunPodSandbox.
    pub async fn run_pod_sandbox(
        self: &Arc<Self>,
        req: cri::RunPodSandboxRequest,
    ) -> Result<String> {
        let config = req
            .config
            .ok_or_else(|| Error::Invalid("RunPodSandbox: config is required".into()))?;
        let md = config
            .metadata
            .clone()
            .ok_or_else(|| Error::Invalid("RunPodSandbox: config.metadata is required".into()))?;
        if md.name.is_empty() || md.namespace.is_empty() || md.uid.is_empty() {
            return Err(Error::Invalid(
                "RunPodSandbox: metadata needs a name, a namespace and a uid".into(),
            ));
        }
        let runtime = self.runtime_binary(&req.runtime_handler)?;
        let host_net = spec::host_network(&config);
        if !host_net {
            // No network, no pod: a clear error before anything is made.
            self.cni.config()?;
        }
        let image_id = self.sandbox_image().await?;
        let id = super::new_id();
        let parent = config
            .linux
            .as_ref()
            .map(|l| l.cgroup_parent.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| match self.opts.cgroup_driver {
                super::CgroupDriver::Cgroupfs => DEFAULT_CGROUP_PARENT.into(),
                super::CgroupDriver::Systemd => "system.slice".into(),
            });
        let ipc_host = spec::mode(spec::sandbox_ns(&config), |n| n.ipc) == cri::NamespaceMode::Node;
        let sb = Sandbox {
            id: id.clone(),
            name: format!("{}_{}_{}_{}", md.name, md.namespace, md.uid, md.attempt),
            cgroups_path: spec::cgroups_path(self.opts.cgroup_driver, &parent, &id),
            cgroup_parent: parent,
            config,
            runtime_handler: req.runtime_handler,
            created_at: super::now_ns(),
            state: SandboxState::NotReady,
            netns: None,
            ips: Vec::new(),
            cni_result: None,
            cni_network: String::new(),
            pid: 0,
            own_shm: !ipc_host,
        };
        let entry = self.store.add_sandbox(sb.clone())?;
        let _op = entry.op.lock().await;
        match self.set_up_sandbox(sb, &image_id, &runtime).await {
            Ok(sb) => {
                self.store.update_sandbox(&entry, |r| *r = sb)?;
                Ok(id)
            }
            Err(e) => {
                tracing::warn!(id = %id, error = %e, "RunPodSandbox failed; undoing it");
                let _ = self.store.remove_sandbox(&id);
                Err(e)
            }
        }
    }

    /// Makes the pod's files, network and pause process; on failure undoes them.
    async fn set_up_sandbox(
        &self,
        mut sb: Sandbox,
        image_id: &str,
        runtime: &str,
    ) -> Result<Sandbox> {
        let dir = self.pod_dir(&sb.id);
        let host_net = spec::host_network(&sb.config);
        let (d, own_shm) = (dir.clone(), sb.own_shm);
        let files = (
            spec::pod_hostname(&sb.config),
            hosts_file(host_net),
            resolv_conf(sb.config.dns_config.as_ref()),
        );
        blocking(move || {
            std::fs::create_dir_all(&d).map_err(internal("creating the pod directory"))?;
            std::fs::write(d.join("hostname"), format!("{}\n", files.0))
                .map_err(internal("writing hostname"))?;
            std::fs::write(d.join("hosts"), files.1).map_err(internal("writing hosts"))?;
            std::fs::write(d.join("resolv.conf"), files.2)
                .map_err(internal("writing resolv.conf"))?;
            if own_shm {
                mount_shm(&d.join("shm"))?;
            }
            Ok(())
        })
        .await
        .inspect_err(|_| self.undo_files(&dir))?;
        if !host_net {
            let ns = match netns::create(&self.opts.state_dir.join("netns"), &sb.id).await {
                Ok(p) => p,
                Err(e) => {
                    self.undo_files(&dir);
                    return Err(e);
                }
            };
            sb.netns = Some(ns.clone());
            match self.cni.add(&attachment(&sb, ns.clone())).await {
                Ok((network, result, ips)) => {
                    sb.cni_network = network;
                    sb.cni_result = Some(result);
                    sb.ips = ips;
                }
                Err(e) => {
                    let _ = netns::remove(&ns);
                    self.undo_files(&dir);
                    return Err(e);
                }
            }
        }
        match self.start_pause(&sb, &dir, image_id, runtime).await {
            Ok(pid) => {
                sb.pid = pid;
                sb.state = SandboxState::Ready;
                Ok(sb)
            }
            Err(e) => {
                let _ = self.sv.kill(&sb.id, "", 9, true).await;
                let _ = self.sv.delete(&sb.id).await;
                self.tear_down_network(&sb).await;
                self.undo_files(&dir);
                Err(e)
            }
        }
    }

    async fn start_pause(
        &self,
        sb: &Sandbox,
        dir: &Path,
        image_id: &str,
        runtime: &str,
    ) -> Result<u32> {
        let spec = spec::sandbox_spec(&spec::SandboxInput {
            sandbox: sb,
            dir,
            oom_floor: self.oom_floor,
        })?;
        let rootfs = self.rootfs_options(image_id, &dir.join("rootfs"))?;
        // A crash may have left a record of this ID behind (IDs are random: unlikely).
        let _ = self.sv.delete(&sb.id).await;
        self.sv
            .create(&sb.id, &spec, rootfs, runtime, &Default::default())
            .await?;
        self.sv.start(&sb.id, "").await
    }

    fn undo_files(&self, dir: &Path) {
        umount_shm(&dir.join("shm"));
        let _ = std::fs::remove_dir_all(dir);
    }

    /// CNI DEL and the namespace's unpinning (both fine to repeat).
    async fn tear_down_network(&self, sb: &Sandbox) -> Option<Error> {
        let ns = sb.netns.clone()?;
        let mut err = None;
        if sb.cni_result.is_some() || !sb.cni_network.is_empty() {
            if let Err(e) = self
                .cni
                .del(&attachment(sb, ns.clone()), sb.cni_result.as_ref())
                .await
            {
                tracing::warn!(id = %sb.id, error = %e, "CNI DEL");
                err = Some(e);
            }
        }
        if let Err(e) = netns::remove(&ns) {
            err.get_or_insert(e);
        }
        err
    }

    /// StopPodSandbox: its containers are killed, its pause process too, and its
    /// network torn down. Repeating it is fine.
    pub async fn stop_pod_sandbox(self: &Arc<Self>, id: &str) -> Result<()> {
        let entry = self.store.sandbox(id)?;
        let _op = entry.op.lock().await;
        let sb = entry.get();
        for c in self.store.containers_of(&sb.id) {
            self.stop_container_entry(&c, 0).await?;
        }
        self.kill_pause(&sb).await?;
        if let Some(e) = self.tear_down_network(&sb).await {
            // Stopped, but the network may still hold the address: the kubelet will
            // call again, and DEL is run again then.
            self.store.update_sandbox(&entry, |r| {
                r.state = SandboxState::NotReady;
                r.pid = 0;
            })?;
            return Err(e);
        }
        umount_shm(&self.pod_dir(&sb.id).join("shm"));
        self.store.update_sandbox(&entry, |r| {
            r.state = SandboxState::NotReady;
            r.pid = 0;
            r.netns = None;
            r.cni_result = None;
            r.cni_network.clear();
        })?;
        Ok(())
    }

    async fn kill_pause(&self, sb: &Sandbox) -> Result<()> {
        match self.sv.state(&sb.id, "").await {
            Err(Error::NotFound(_)) => return Ok(()),
            Ok((_, super::supervisor::ProcStatus::Stopped(..))) => {}
            _ => {
                match self.sv.kill(&sb.id, "", 9, true).await {
                    Ok(()) | Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    self.sv.wait(&sb.id, ""),
                )
                .await;
            }
        }
        self.sv.delete(&sb.id).await
    }

    /// RemovePodSandbox: stops it if needed, removes its containers and everything
    /// it made. An unknown ID is not an error (it may be gone already).
    pub async fn remove_pod_sandbox(self: &Arc<Self>, id: &str) -> Result<()> {
        let entry = match self.store.sandbox(id) {
            Ok(e) => e,
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let sb = entry.get();
        if sb.state == SandboxState::Ready || sb.netns.is_some() {
            self.stop_pod_sandbox(&sb.id).await?;
        }
        let _op = entry.op.lock().await;
        for c in self.store.containers_of(&sb.id) {
            self.remove_container_entry(&c).await?;
        }
        self.kill_pause(&sb).await?;
        self.sv.delete(&sb.id).await?;
        let dir = self.pod_dir(&sb.id);
        blocking(move || {
            umount_shm(&dir.join("shm"));
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(internal("removing the pod directory")(e))
                }
                _ => Ok(()),
            }
        })
        .await?;
        self.store.remove_sandbox(&sb.id)
    }

    pub(crate) fn sandbox_status(&self, sb: &Sandbox) -> cri::PodSandboxStatus {
        let nso = spec::sandbox_ns(&sb.config).cloned().unwrap_or_default();
        cri::PodSandboxStatus {
            id: sb.id.clone(),
            metadata: sb.config.metadata.clone(),
            state: match sb.state {
                SandboxState::Ready => cri::PodSandboxState::SandboxReady as i32,
                SandboxState::NotReady => cri::PodSandboxState::SandboxNotready as i32,
            },
            created_at: sb.created_at,
            network: Some(cri::PodSandboxNetworkStatus {
                ip: sb.ips.first().cloned().unwrap_or_default(),
                additional_ips: sb
                    .ips
                    .iter()
                    .skip(1)
                    .map(|ip| cri::PodIp { ip: ip.clone() })
                    .collect(),
            }),
            linux: Some(cri::LinuxPodSandboxStatus {
                namespaces: Some(cri::Namespace { options: Some(nso) }),
            }),
            labels: sb.config.labels.clone(),
            annotations: sb.config.annotations.clone(),
            runtime_handler: sb.runtime_handler.clone(),
        }
    }

    /// PodSandboxStatus.
    pub async fn pod_sandbox_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<cri::PodSandboxStatusResponse> {
        let sb = self.store.sandbox(id)?.get();
        let mut info = HashMap::new();
        if verbose {
            let v = serde_json::json!({
                "pid": sb.pid,
                "netns": sb.netns,
                "network": sb.cni_network,
                "cgroupsPath": sb.cgroups_path,
                "runtimeHandler": sb.runtime_handler,
                "config": sb.config,
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(cri::PodSandboxStatusResponse {
            status: Some(self.sandbox_status(&sb)),
            info,
            containers_statuses: Vec::new(),
            timestamp: super::now_ns(),
        })
    }

    /// ListPodSandbox.
    pub fn list_pod_sandbox(&self, filter: Option<cri::PodSandboxFilter>) -> Vec<cri::PodSandbox> {
        let f = filter.unwrap_or_default();
        let mut out: Vec<cri::PodSandbox> = self
            .store
            .sandboxes()
            .into_iter()
            .map(|e| e.get())
            .filter(|s| f.id.is_empty() || s.id.starts_with(&f.id))
            .map(|s| {
                let st = self.sandbox_status(&s);
                cri::PodSandbox {
                    id: s.id,
                    metadata: s.config.metadata.clone(),
                    state: st.state,
                    created_at: s.created_at,
                    labels: s.config.labels.clone(),
                    annotations: s.config.annotations.clone(),
                    runtime_handler: s.runtime_handler,
                }
            })
            .filter(|s| f.state.as_ref().is_none_or(|st| st.state == s.state))
            .filter(|s| super::labels_match(&s.labels, &f.label_selector))
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        out
    }

    /// After a restart: a Ready sandbox whose pause process is gone is NotReady (its
    /// network is kept until StopPodSandbox runs CNI DEL, as the issue asks).
    pub(crate) async fn recover_sandbox(&self, entry: &Arc<super::store::Entry<Sandbox>>) {
        let sb = entry.get();
        if sb.state != SandboxState::Ready {
            return;
        }
        let alive = matches!(
            self.sv.state(&sb.id, "").await,
            Ok((_, super::supervisor::ProcStatus::Running))
        );
        if let Some(ns) = &sb.netns {
            if !netns::is_pinned(ns) {
                tracing::warn!(id = %sb.id, netns = %ns.display(), "pod network namespace is gone");
            }
        }
        if !alive {
            tracing::info!(id = %sb.id, "pause process gone since the last run: sandbox not ready");
            let _ = self.store.update_sandbox(entry, |r| {
                r.state = SandboxState::NotReady;
                r.pid = 0;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_from_dns_config() {
        let d = cri::DnsConfig {
            servers: vec!["10.0.0.10".into(), "8.8.8.8".into()],
            searches: vec!["svc.cluster.local".into(), "cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(Some(&d)),
            "search svc.cluster.local cluster.local\nnameserver 10.0.0.10\nnameserver 8.8.8.8\noptions ndots:5\n"
        );
    }

    #[test]
    fn only_host_ports_are_mapped() {
        let c = cri::PodSandboxConfig {
            port_mappings: vec![
                cri::PortMapping {
                    protocol: 0,
                    container_port: 80,
                    host_port: 8080,
                    host_ip: String::new(),
                },
                cri::PortMapping {
                    protocol: 1,
                    container_port: 53,
                    host_port: 0,
                    host_ip: String::new(),
                },
            ],
            ..Default::default()
        };
        let p = port_mappings(&c);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].host_port, p[0].container_port, p[0].protocol.as_str()),
            (8080, 80, "tcp")
        );
    }
}
