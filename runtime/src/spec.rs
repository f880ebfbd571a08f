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
    let data = std::fs::read(&config).map_err(|source| RuntimeError::ReadConfig {
        path: config.clone(),
        source,
    })?;
    let spec = parse(&config, &data)?;
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

/// Parse a config.json (`Spec`) or an exec's process.json (`Process`). A capability name
/// that is no capability is named in the error; other mistakes get serde's message, with
/// the line and column.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    data: &[u8],
    capabilities_at: CapabilitiesAt,
) -> Result<T> {
    serde_json::from_slice(data).map_err(|source| match unknown_capability(data, capabilities_at) {
        Some((set, name)) => RuntimeError::UnknownCapability {
            path: path.to_path_buf(),
            set,
            name,
        },
        None => RuntimeError::ParseConfig {
            path: path.to_path_buf(),
            source,
        },
    })
}

fn parse(path: &Path, data: &[u8]) -> Result<Spec> {
    parse_json(path, data, CapabilitiesAt::Config)
}

/// Where a document keeps its capability sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilitiesAt {
    /// config.json: `process.capabilities`.
    Config,
    /// An exec's process.json: `capabilities`.
    Process,
}

#[derive(serde::Deserialize)]
struct ConfigView {
    process: Option<ProcessView>,
}

#[derive(serde::Deserialize)]
struct ProcessView {
    capabilities: Option<CapabilitySetsView>,
}

#[derive(serde::Deserialize)]
struct CapabilitySetsView {
    bounding: Option<Vec<String>>,
    effective: Option<Vec<String>>,
    inheritable: Option<Vec<String>>,
    permitted: Option<Vec<String>>,
    ambient: Option<Vec<String>>,
}

/// Only asked once parsing failed: the first capability name that oci-spec does not know,
/// with the set it is in.
fn unknown_capability(data: &[u8], at: CapabilitiesAt) -> Option<(String, String)> {
    use serde::de::IntoDeserializer;
    let (sets, prefix) = match at {
        CapabilitiesAt::Config => (
            serde_json::from_slice::<ConfigView>(data)
                .ok()?
                .process?
                .capabilities?,
            "process.capabilities",
        ),
        CapabilitiesAt::Process => (
            serde_json::from_slice::<ProcessView>(data)
                .ok()?
                .capabilities?,
            "capabilities",
        ),
    };
    let named = [
        ("bounding", sets.bounding),
        ("effective", sets.effective),
        ("inheritable", sets.inheritable),
        ("permitted", sets.permitted),
        ("ambient", sets.ambient),
    ];
    for (set, names) in named {
        for name in names.into_iter().flatten() {
            let known = <oci_spec::runtime::Capability as serde::Deserialize>::deserialize(
                IntoDeserializer::<serde::de::value::Error>::into_deserializer(name.as_str()),
            )
            .is_ok();
            if !known {
                return Some((format!("{prefix}.{set}"), name));
            }
        }
    }
    None
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
    fn an_unknown_capability_is_named_with_its_set() {
        let mut config = serde_json::to_value(default_spec(false).unwrap()).unwrap();
        config["process"]["capabilities"]["effective"]
            .as_array_mut()
            .unwrap()
            .push("CAP_BOGUS".into());
        let data = serde_json::to_vec(&config).unwrap();
        let err = parse(Path::new("/b/config.json"), &data)
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "/b/config.json: unknown capability \"CAP_BOGUS\" in process.capabilities.effective"
        );

        let mut process = config["process"].clone();
        process["capabilities"]["effective"] = serde_json::json!(["CAP_KILL"]);
        process["capabilities"]["ambient"] = serde_json::json!(["chown", "NOT_A_CAP"]);
        let data = serde_json::to_vec(&process).unwrap();
        let err = parse_json::<oci_spec::runtime::Process>(
            Path::new("p.json"),
            &data,
            CapabilitiesAt::Process,
        )
        .err()
        .unwrap()
        .to_string();
        assert_eq!(
            err,
            "p.json: unknown capability \"NOT_A_CAP\" in capabilities.ambient"
        );
    }

    #[test]
    fn other_parse_errors_keep_serdes_position() {
        let err = parse(
            Path::new("c.json"),
            b"{\"ociVersion\": \"1.0.2\", \"process\": [",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.starts_with("cannot parse c.json: ") && err.contains("line 1"),
            "{err}"
        );
        // Capabilities in any case and without the prefix are capabilities (oci-spec's rule).
        let mut config = serde_json::to_value(default_spec(false).unwrap()).unwrap();
        config["process"]["capabilities"]["bounding"] = serde_json::json!(["kill", "CAP_CHOWN"]);
        let spec = parse(Path::new("c.json"), &serde_json::to_vec(&config).unwrap()).unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 2);
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
