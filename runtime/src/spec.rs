//! Reading and checking a bundle's config.json, and the default spec of `spec`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Context, Result, RuntimeError};
use crate::namespaces::NamespacePlan;

/// A bundle's config, with its absolute paths.
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
    /// The parsed, checked config.
    pub spec: Spec,
}

/// Load `<bundle>/config.json` and check everything that can be checked before any
/// process or state exists.
pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let dir =
        std::fs::canonicalize(bundle).with_context(|| format!("bundle {}", bundle.display()))?;
    let config = dir.join("config.json");
    if !config.exists() {
        return Err(RuntimeError::InvalidConfig(format!(
            "{} does not exist",
            config.display()
        )));
    }
    let spec = Spec::load(&config).map_err(|source| RuntimeError::ReadConfig {
        path: config.clone(),
        source,
    })?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidConfig("root is missing".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(RuntimeError::MissingRootfs(rootfs));
    }
    let rootfs =
        std::fs::canonicalize(&rootfs).with_context(|| format!("rootfs {}", rootfs.display()))?;
    validate(&spec)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Semantic checks on a parsed spec.
pub fn validate(spec: &Spec) -> Result<()> {
    let invalid = |msg: String| Err(RuntimeError::InvalidConfig(msg));
    let version = spec.version();
    if !version.starts_with("1.") {
        return invalid(format!(
            "unsupported ociVersion {version:?}: berth-runtime implements 1.x"
        ));
    }
    let Some(process) = spec.process() else {
        return invalid("process is missing".into());
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return invalid("process.args must name the program to run".into());
    }
    if !process.cwd().is_absolute() {
        return invalid(format!(
            "process.cwd {} must be an absolute path",
            process.cwd().display()
        ));
    }
    crate::rlimits::validate(&process.rlimits().clone().unwrap_or_default())?;
    let namespaces = NamespacePlan::from_spec(spec)?;
    if (spec.hostname().is_some() || spec.domainname().is_some())
        && !namespaces.has(LinuxNamespaceType::Uts)
    {
        return invalid("hostname and domainname need a uts namespace".into());
    }
    let linux = spec.linux().as_ref();
    if namespaces.is_new(LinuxNamespaceType::User) {
        let has = |m: Option<&Vec<_>>| m.is_some_and(|m: &Vec<_>| !m.is_empty());
        if !has(linux.and_then(|l| l.uid_mappings().as_ref()))
            || !has(linux.and_then(|l| l.gid_mappings().as_ref()))
        {
            return invalid(
                "a new user namespace needs linux.uidMappings and linux.gidMappings".into(),
            );
        }
    }
    for key in linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        check_sysctl(key, &namespaces)?;
    }
    crate::rootfs::root_propagation(spec)?;
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return invalid(format!(
                "mount destination {} must be an absolute path",
                m.destination().display()
            ));
        }
    }
    Ok(())
}

/// A sysctl may only be set if it belongs to a namespace the container owns; anything
/// else would change the host (the same rule as runc's).
fn check_sysctl(key: &str, namespaces: &NamespacePlan) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let (needed, ok) = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        ("ipc", namespaces.has(LinuxNamespaceType::Ipc))
    } else if key.starts_with("net.") {
        ("network", namespaces.has(LinuxNamespaceType::Network))
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        ("uts", namespaces.has(LinuxNamespaceType::Uts))
    } else {
        return Err(RuntimeError::InvalidConfig(format!(
            "sysctl {key:?} is not namespaced: it would change the host"
        )));
    };
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidConfig(format!(
            "sysctl {key:?} needs the container to have its own {needed} namespace"
        )))
    }
}

/// The config `spec` writes: runc's default (busybox-ready), with our hostname.
pub fn default_spec(rootless: bool) -> Result<Spec> {
    let mut spec = if rootless {
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        Spec::rootless(uid, gid)
    } else {
        Spec::default()
    };
    spec.set_hostname(Some("berth".to_string()));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_is_valid() {
        validate(&default_spec(false).unwrap()).unwrap();
        validate(&default_spec(true).unwrap()).unwrap();
    }

    #[test]
    fn bad_specs_are_named() {
        let mut spec = default_spec(false).unwrap();
        spec.set_version("0.9.0".into());
        assert!(validate(&spec)
            .unwrap_err()
            .to_string()
            .contains("unsupported ociVersion"));

        let mut spec = default_spec(false).unwrap();
        spec.process_mut().as_mut().unwrap().set_args(Some(vec![]));
        assert!(validate(&spec)
            .unwrap_err()
            .to_string()
            .contains("process.args"));

        let mut spec = default_spec(false).unwrap();
        let mut sysctl = std::collections::HashMap::new();
        sysctl.insert("vm.swappiness".to_string(), "10".to_string());
        spec.linux_mut().as_mut().unwrap().set_sysctl(Some(sysctl));
        assert!(validate(&spec)
            .unwrap_err()
            .to_string()
            .contains("not namespaced"));
    }

    #[test]
    fn net_sysctls_need_a_network_namespace() {
        let plan = NamespacePlan::from_spec(&default_spec(false).unwrap()).unwrap();
        check_sysctl("net.ipv4.ip_forward", &plan).unwrap();
        check_sysctl("kernel.shmmax", &plan).unwrap();
        let mut spec = default_spec(false).unwrap();
        let linux = spec.linux_mut().as_mut().unwrap();
        let kept: Vec<_> = linux
            .namespaces()
            .clone()
            .unwrap()
            .into_iter()
            .filter(|n| n.typ() != LinuxNamespaceType::Network)
            .collect();
        linux.set_namespaces(Some(kept));
        let plan = NamespacePlan::from_spec(&spec).unwrap();
        let err = check_sysctl("net.ipv4.ip_forward", &plan)
            .unwrap_err()
            .to_string();
        assert!(err.contains("own network namespace"), "{err}");
    }

    #[test]
    fn missing_bundle_and_rootfs_are_named() {
        let err = load_bundle(Path::new("/nonexistent/bundle"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/nonexistent/bundle"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        default_spec(false)
            .unwrap()
            .save(dir.path().join("config.json"))
            .unwrap();
        let err = load_bundle(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("rootfs") && err.contains("does not exist"),
            "{err}"
        );
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let err = load_bundle(dir.path()).err().unwrap().to_string();
        assert!(err.contains("config.json"), "{err}");
    }
}
