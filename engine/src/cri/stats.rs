//! ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats: CPU and
//! memory from the cgroups of a container's process (as `docker stats` reads them),
//! process counts, and the bytes its writable layer holds.

use super::sandbox::blocking;
use super::store::{Container, ContainerState, Sandbox};
use super::{cri, Cri, Result};
use std::path::Path;

fn value(v: u64) -> Option<cri::UInt64Value> {
    Some(cri::UInt64Value { value: v })
}

/// Bytes and inodes used below `dir` (not following symlinks, not crossing mounts).
pub(crate) fn usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(root) = std::fs::symlink_metadata(dir) else {
        return (0, 0);
    };
    let dev = root.dev();
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            inodes += 1;
            bytes += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    (bytes, inodes)
}

fn attributes(c: &Container) -> cri::ContainerAttributes {
    cri::ContainerAttributes {
        id: c.id.clone(),
        metadata: c.config.metadata.clone(),
        labels: c.config.labels.clone(),
        annotations: c.config.annotations.clone(),
    }
}

/// One sample of a container (blocking: reads cgroup files and its layer).
fn sample(c: &Container, fs_dir: &Path, mountpoint: &Path) -> cri::ContainerStats {
    let now = super::now_ns();
    let (cpu, memory) = if c.state == ContainerState::Running && c.pid > 0 {
        let s = crate::containers::stats::sample(c.pid);
        (
            Some(cri::CpuUsage {
                timestamp: now,
                usage_core_nano_seconds: value(s.cpu_ns),
                usage_nano_cores: None,
            }),
            Some(cri::MemoryUsage {
                timestamp: now,
                working_set_bytes: value(s.mem_usage),
                available_bytes: value(s.mem_limit.saturating_sub(s.mem_usage)),
                usage_bytes: value(s.mem_usage),
                rss_bytes: None,
                page_faults: None,
                major_page_faults: None,
            }),
        )
    } else {
        (
            Some(cri::CpuUsage {
                timestamp: now,
                usage_core_nano_seconds: value(0),
                usage_nano_cores: value(0),
            }),
            Some(cri::MemoryUsage {
                timestamp: now,
                working_set_bytes: value(0),
                ..Default::default()
            }),
        )
    };
    let (bytes, inodes) = usage(&fs_dir.join("upper"));
    cri::ContainerStats {
        attributes: Some(attributes(c)),
        cpu,
        memory,
        writable_layer: Some(cri::FilesystemUsage {
            timestamp: now,
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: mountpoint.display().to_string(),
            }),
            used_bytes: value(bytes),
            inodes_used: value(inodes),
        }),
        swap: None,
    }
}

impl Cri {
    async fn stats_of(&self, cs: Vec<Container>) -> Result<Vec<cri::ContainerStats>> {
        let base = self.opts.data_dir.join("containers-fs");
        blocking(move || {
            Ok(cs
                .iter()
                .map(|c| sample(c, &base.join(&c.id), &base))
                .collect())
        })
        .await
    }

    /// ContainerStats.
    pub async fn container_stats(&self, id: &str) -> Result<cri::ContainerStats> {
        let c = self.store.container(id)?.get();
        Ok(self.stats_of(vec![c]).await?.pop().unwrap_or_default())
    }

    /// ListContainerStats.
    pub async fn list_container_stats(
        &self,
        f: Option<cri::ContainerStatsFilter>,
    ) -> Result<Vec<cri::ContainerStats>> {
        let f = f.unwrap_or_default();
        let cs: Vec<Container> = self
            .store
            .containers()
            .into_iter()
            .map(|e| e.get())
            .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
            .filter(|c| f.pod_sandbox_id.is_empty() || c.sandbox_id.starts_with(&f.pod_sandbox_id))
            .filter(|c| super::labels_match(&c.config.labels, &f.label_selector))
            .collect();
        self.stats_of(cs).await
    }

    async fn pod_stats(&self, sb: Sandbox) -> Result<cri::PodSandboxStats> {
        let cs: Vec<Container> = self
            .store
            .containers_of(&sb.id)
            .into_iter()
            .map(|e| e.get())
            .collect();
        let containers = self.stats_of(cs).await?;
        let now = super::now_ns();
        let sum = |f: &dyn Fn(&cri::ContainerStats) -> u64| containers.iter().map(f).sum::<u64>();
        let cpu = sum(&|c| {
            c.cpu
                .as_ref()
                .and_then(|u| u.usage_core_nano_seconds.as_ref())
                .map(|v| v.value)
                .unwrap_or(0)
        });
        let mem = sum(&|c| {
            c.memory
                .as_ref()
                .and_then(|u| u.working_set_bytes.as_ref())
                .map(|v| v.value)
                .unwrap_or(0)
        });
        let procs = if sb.pid > 0 {
            let pid = sb.pid;
            blocking(move || Ok(crate::containers::stats::sample(pid).pids)).await?
        } else {
            0
        };
        Ok(cri::PodSandboxStats {
            attributes: Some(cri::PodSandboxAttributes {
                id: sb.id.clone(),
                metadata: sb.config.metadata.clone(),
                labels: sb.config.labels.clone(),
                annotations: sb.config.annotations.clone(),
            }),
            linux: Some(cri::LinuxPodSandboxStats {
                cpu: Some(cri::CpuUsage {
                    timestamp: now,
                    usage_core_nano_seconds: value(cpu),
                    usage_nano_cores: None,
                }),
                memory: Some(cri::MemoryUsage {
                    timestamp: now,
                    working_set_bytes: value(mem),
                    usage_bytes: value(mem),
                    ..Default::default()
                }),
                network: None,
                process: Some(cri::ProcessUsage {
                    timestamp: now,
                    process_count: value(procs),
                }),
                containers,
            }),
            windows: None,
        })
    }

    /// PodSandboxStats.
    pub async fn pod_sandbox_stats(&self, id: &str) -> Result<cri::PodSandboxStats> {
        let sb = self.store.sandbox(id)?.get();
        self.pod_stats(sb).await
    }

    /// ListPodSandboxStats.
    pub async fn list_pod_sandbox_stats(
        &self,
        f: Option<cri::PodSandboxStatsFilter>,
    ) -> Result<Vec<cri::PodSandboxStats>> {
        let f = f.unwrap_or_default();
        let mut out = Vec::new();
        for sb in self.store.sandboxes().into_iter().map(|e| e.get()) {
            if (f.id.is_empty() || sb.id.starts_with(&f.id))
                && super::labels_match(&sb.config.labels, &f.label_selector)
            {
                out.push(self.pod_stats(sb).await?);
            }
        }
        Ok(out)
    }
}
