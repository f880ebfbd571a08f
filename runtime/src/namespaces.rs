//! `linux.namespaces`: which namespaces the init gets new, and which it joins by path.

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Context, Result, RuntimeError};

/// The namespace decisions for one container.
#[derive(Debug, Clone)]
pub struct NamespacePlan {
    /// Namespaces created by the clone that makes the init.
    pub clone_flags: CloneFlags,
    /// A new cgroup namespace is unshared only after the init is in its cgroup, so that
    /// the namespace's root is the container's cgroup.
    pub unshare_cgroup: bool,
    /// Namespaces to join, in the order they must be joined.
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

/// The clone flag of a namespace type.
pub fn flag(kind: LinuxNamespaceType) -> CloneFlags {
    match kind {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

impl NamespacePlan {
    /// Read and check the namespaces section of a spec.
    pub fn from_spec(spec: &Spec) -> Result<Self> {
        let mut plan = Self {
            clone_flags: CloneFlags::empty(),
            unshare_cgroup: false,
            join: Vec::new(),
        };
        let mut seen = HashSet::new();
        let namespaces = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        for ns in &namespaces {
            let kind = ns.typ();
            if !seen.insert(kind) {
                return Err(RuntimeError::InvalidConfig(format!(
                    "namespace {kind} is listed twice"
                )));
            }
            if kind == LinuxNamespaceType::Time {
                return Err(RuntimeError::InvalidConfig(
                    "time namespaces are not supported by berth-runtime".into(),
                ));
            }
            match ns.path() {
                Some(path) if !path.as_os_str().is_empty() => plan.join.push((kind, path.clone())),
                _ if kind == LinuxNamespaceType::Cgroup => plan.unshare_cgroup = true,
                _ => plan.clone_flags |= flag(kind),
            }
        }
        // A joined user namespace must come first: it decides what the others may do.
        plan.join
            .sort_by_key(|(kind, _)| *kind != LinuxNamespaceType::User);
        Ok(plan)
    }

    /// Whether the container gets a new namespace of this kind.
    pub fn is_new(&self, kind: LinuxNamespaceType) -> bool {
        match kind {
            LinuxNamespaceType::Cgroup => self.unshare_cgroup,
            _ => self.clone_flags.contains(flag(kind)),
        }
    }

    /// Whether the container has its own namespace of this kind, new or joined.
    pub fn has(&self, kind: LinuxNamespaceType) -> bool {
        self.is_new(kind) || self.join.iter().any(|(k, _)| *k == kind)
    }

    /// Open the namespaces to join now, so that a bad path fails in the runtime with its
    /// name, before any process exists.
    pub fn open_joins(&self) -> Result<Vec<(LinuxNamespaceType, OwnedFd)>> {
        self.join
            .iter()
            .map(|(kind, path)| {
                let file = File::open(path)
                    .with_context(|| format!("open {kind} namespace {}", path.display()))?;
                Ok((*kind, OwnedFd::from(file)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder, SpecBuilder};

    fn spec_with(namespaces: &[(LinuxNamespaceType, Option<&str>)]) -> Spec {
        let namespaces = namespaces
            .iter()
            .map(|(kind, path)| {
                let mut b = LinuxNamespaceBuilder::default().typ(*kind);
                if let Some(p) = path {
                    b = b.path(PathBuf::from(p));
                }
                b.build().unwrap()
            })
            .collect::<Vec<_>>();
        let linux = LinuxBuilder::default()
            .namespaces(namespaces)
            .build()
            .unwrap();
        SpecBuilder::default().linux(linux).build().unwrap()
    }

    #[test]
    fn new_and_joined_namespaces_are_split() {
        use LinuxNamespaceType::*;
        let spec = spec_with(&[
            (Pid, None),
            (Mount, None),
            (Network, Some("/proc/1/ns/net")),
            (User, Some("/proc/1/ns/user")),
            (Cgroup, None),
        ]);
        let plan = NamespacePlan::from_spec(&spec).unwrap();
        assert_eq!(
            plan.clone_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        assert!(plan.unshare_cgroup);
        assert_eq!(plan.join[0].0, User, "user namespace is joined first");
        assert_eq!(plan.join[1].0, Network);
        assert!(plan.has(Network) && !plan.is_new(Network));
    }

    #[test]
    fn duplicates_and_time_are_rejected() {
        use LinuxNamespaceType::*;
        let dup = NamespacePlan::from_spec(&spec_with(&[(Mount, None), (Pid, None), (Pid, None)]));
        assert!(dup.unwrap_err().to_string().contains("pid is listed twice"));
        let time = NamespacePlan::from_spec(&spec_with(&[(Mount, None), (Time, None)]));
        assert!(time.unwrap_err().to_string().contains("time namespaces"));
        // Sharing the host's mount namespace is allowed, as in runc.
        let no_mount = NamespacePlan::from_spec(&spec_with(&[(Pid, None)])).unwrap();
        assert!(!no_mount.has(Mount));
    }

    #[test]
    fn a_missing_namespace_path_names_itself() {
        use LinuxNamespaceType::*;
        let plan =
            NamespacePlan::from_spec(&spec_with(&[(Mount, None), (Network, Some("/nope/ns"))]))
                .unwrap();
        let err = plan.open_joins().unwrap_err().to_string();
        assert!(err.contains("open net namespace /nope/ns"), "{err}");
    }
}
