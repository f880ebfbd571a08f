//! `update`: change a running container's resource limits, and remember them.

use oci_spec::runtime::{LinuxResources, LinuxResourcesBuilder};

use super::{Container, Status};
use crate::error::Result;

/// Overlay `changes` on `current`: each section given in `changes` replaces the field it
/// sets, the rest is kept.
pub fn merge(current: &LinuxResources, changes: &LinuxResources) -> LinuxResources {
    let mut out = current.clone();
    if let Some(new) = changes.memory() {
        let mut memory = (*current.memory()).unwrap_or_default();
        if new.limit().is_some() {
            memory.set_limit(new.limit());
        }
        if new.reservation().is_some() {
            memory.set_reservation(new.reservation());
        }
        if new.swap().is_some() {
            memory.set_swap(new.swap());
        }
        if new.swappiness().is_some() {
            memory.set_swappiness(new.swappiness());
        }
        out.set_memory(Some(memory));
    }
    if let Some(new) = changes.cpu() {
        let mut cpu = current.cpu().clone().unwrap_or_default();
        if new.shares().is_some() {
            cpu.set_shares(new.shares());
        }
        if new.quota().is_some() {
            cpu.set_quota(new.quota());
        }
        if new.period().is_some() {
            cpu.set_period(new.period());
        }
        if new.realtime_runtime().is_some() {
            cpu.set_realtime_runtime(new.realtime_runtime());
        }
        if new.realtime_period().is_some() {
            cpu.set_realtime_period(new.realtime_period());
        }
        if new.cpus().is_some() {
            cpu.set_cpus(new.cpus().clone());
        }
        if new.mems().is_some() {
            cpu.set_mems(new.mems().clone());
        }
        out.set_cpu(Some(cpu));
    }
    if changes.pids().is_some() {
        out.set_pids(*changes.pids());
    }
    if let Some(new) = changes.block_io() {
        let mut io = current.block_io().clone().unwrap_or_default();
        if new.weight().is_some() {
            io.set_weight(new.weight());
        }
        out.set_block_io(Some(io));
    }
    out
}

impl Container {
    /// Apply new limits to a created, running or paused container and persist them.
    pub fn update(&mut self, changes: &LinuxResources) -> Result<()> {
        self.require(
            "update",
            &[Status::Created, Status::Running, Status::Paused],
        )?;
        let current = self
            .state
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_else(|| LinuxResourcesBuilder::default().build().unwrap_or_default());
        let merged = merge(&current, changes);
        self.state.cgroup()?.apply(&merged)?;
        let mut linux = self.state.spec.linux().clone().unwrap_or_default();
        linux.set_resources(Some(merged));
        self.state.spec.set_linux(Some(linux));
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_fields_replace_and_others_stay() {
        let current: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 100, "reservation": 50}, "cpu": {"shares": 512, "cpus": "0"}, "pids": {"limit": 10}}"#,
        )
        .unwrap();
        let changes: LinuxResources =
            serde_json::from_str(r#"{"memory": {"limit": 200}, "cpu": {"quota": 5000}}"#).unwrap();
        let merged = merge(&current, &changes);
        let memory = (*merged.memory()).unwrap();
        assert_eq!(
            (memory.limit(), memory.reservation()),
            (Some(200), Some(50))
        );
        let cpu = merged.cpu().clone().unwrap();
        assert_eq!(
            (cpu.shares(), cpu.quota(), cpu.cpus().as_deref()),
            (Some(512), Some(5000), Some("0"))
        );
        assert_eq!(merged.pids().as_ref().map(|p| p.limit()), Some(10));
    }
}
