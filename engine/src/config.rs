//! berthd's command line, following dockerd's.

use clap::Parser;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The runtime berthd runs containers with unless told otherwise: berth-runtime, found
/// by the supervisor (and shim) beside themselves.
pub const BERTH_RUNTIME: &str = "berth";

/// berthd: the Berth engine, serving the Docker Engine API.
#[derive(Debug, Clone, Parser)]
#[command(name = "berthd", version, about)]
pub struct Config {
    /// Root of persistent state (content, snapshots, metadata).
    #[arg(long, default_value = "/var/lib/berth")]
    pub data_root: PathBuf,
    /// Root of runtime state (pid file).
    #[arg(long, default_value = "/run/berth")]
    pub exec_root: PathBuf,
    /// Where to listen: unix://PATH or tcp://HOST:PORT (repeatable).
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Registry (host or host:port) trusted without TLS checks, or over plain HTTP
    /// (repeatable); loopback registries always are.
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// The berth-supervisor to use (unix://PATH); without it berthd starts its own under
    /// the exec root.
    #[arg(long)]
    pub supervisor: Option<String>,
    /// The OCI runtime containers get when they name none (`berth`, `runc`, or a name
    /// given with --add-runtime).
    #[arg(long, default_value = BERTH_RUNTIME)]
    pub default_runtime: String,
    /// Another OCI runtime, NAME=PATH (repeatable); `docker run --runtime NAME` uses it.
    #[arg(long = "add-runtime")]
    pub add_runtimes: Vec<String>,
    /// The cgroup under which containers that name none (HostConfig.CgroupParent) get
    /// their own, as dockerd's `--cgroup-parent`.
    #[arg(long, default_value = "/berth", value_parser = parse_cgroup_parent)]
    pub cgroup_parent: String,
    /// A registry mirror, tried before the registry it mirrors for pulls: URL (for
    /// Docker Hub, as dockerd's flag) or REGISTRY=URL (repeatable). Plain HTTP only
    /// to registries marked insecure.
    #[arg(long = "registry-mirror")]
    pub registry_mirrors: Vec<String>,
    /// Serve the Kubernetes CRI (runtime.v1) on this unix socket (mode 0600); off
    /// unless given.
    #[arg(long)]
    pub cri_socket: Option<PathBuf>,
    /// Where the CRI streaming server (the exec, attach and port-forward URLs) listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub cri_stream_address: String,
    /// The cgroup driver the kubelet uses: cgroupfs or systemd.
    #[arg(long, default_value = "cgroupfs")]
    pub cri_cgroup_driver: crate::cri::CgroupDriver,
    /// The pod sandbox image (pulled beforehand); default: Berth's own pause image,
    /// made from the berth-pause binary inside berthd.
    #[arg(long)]
    pub cri_sandbox_image: Option<String>,
    /// Where pod network (CNI) configurations are.
    #[arg(long, default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// A directory of CNI plugins (repeatable; default /opt/cni/bin and /usr/lib/cni).
    #[arg(long = "cni-bin-dir")]
    pub cni_bin_dirs: Vec<PathBuf>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(short = 'l', long, default_value = "info")]
    pub log_level: String,
}

impl Config {
    /// The listen addresses, with the default socket when none is given.
    pub fn listen_addresses(&self) -> Vec<String> {
        if self.hosts.is_empty() {
            vec!["unix:///run/berth/berth.sock".into()]
        } else {
            self.hosts.clone()
        }
    }

    /// The runtimes containers may name: `berth` and `runc` (as dockerd registers its
    /// runc), then those of --add-runtime, and the default among them.
    pub fn runtimes(&self) -> Result<Runtimes, RuntimeError> {
        let mut paths = BTreeMap::new();
        paths.insert(BERTH_RUNTIME.to_string(), "berth-runtime".to_string());
        paths.insert("runc".to_string(), "runc".to_string());
        for arg in &self.add_runtimes {
            let (name, path) = arg
                .split_once('=')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                .ok_or_else(|| RuntimeError::BadArgument(arg.clone()))?;
            // As dockerd: the built-in names cannot be redefined.
            if name == BERTH_RUNTIME || name == "runc" {
                return Err(RuntimeError::Reserved(name.to_string()));
            }
            paths.insert(name.to_string(), path.to_string());
        }
        if !paths.contains_key(&self.default_runtime) {
            return Err(RuntimeError::UnknownDefault(self.default_runtime.clone()));
        }
        Ok(Runtimes {
            default: self.default_runtime.clone(),
            paths,
        })
    }
}

impl Config {
    /// The registry mirrors of --registry-mirror.
    pub fn mirrors(&self) -> Result<Vec<crate::registry::Mirror>, crate::registry::MirrorError> {
        self.registry_mirrors
            .iter()
            .map(|m| crate::registry::Mirror::parse(m))
            .collect()
    }

    /// The CNI plugin directories: those given, else /opt/cni/bin and /usr/lib/cni.
    pub fn cni_bin_dirs(&self) -> Vec<PathBuf> {
        if self.cni_bin_dirs.is_empty() {
            vec!["/opt/cni/bin".into(), "/usr/lib/cni".into()]
        } else {
            self.cni_bin_dirs.clone()
        }
    }
}

/// A bad --add-runtime or --default-runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Not NAME=PATH.
    #[error("invalid --add-runtime {0:?}: expected NAME=PATH")]
    BadArgument(String),
    /// `berth` or `runc`.
    #[error("runtime name '{0}' is reserved")]
    Reserved(String),
    /// --default-runtime names no known runtime.
    #[error("specified default runtime '{0}' does not exist")]
    UnknownDefault(String),
}

/// The OCI runtimes berthd knows, by name.
#[derive(Debug, Clone)]
pub struct Runtimes {
    /// The one a container gets when it names none.
    pub default: String,
    /// Name → runtime binary (a path, or a name looked up in PATH).
    pub paths: BTreeMap<String, String>,
}

impl Runtimes {
    /// The binary the supervisor should run for `name`: empty for `berth` (the
    /// supervisor and shim find berth-runtime beside themselves); None if unknown.
    pub fn binary(&self, name: &str) -> Option<&str> {
        let path = self.paths.get(name)?;
        Some(if name == BERTH_RUNTIME { "" } else { path })
    }
}

/// A cgroup parent as berthd uses it: absolute, no trailing slash, no `..` (which would
/// put containers outside the hierarchy it names).
pub fn parse_cgroup_parent(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim_matches('/');
    if trimmed.split('/').any(|c| c == ".." || c == ".") {
        return Err(format!(
            "invalid cgroup parent {raw:?}: no \".\" or \"..\" components"
        ));
    }
    Ok(format!("/{trimmed}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_from_flags() {
        let cfg = Config::parse_from(["berthd", "--add-runtime", "crun2=/usr/bin/crun"]);
        let rt = cfg.runtimes().unwrap();
        assert_eq!(rt.default, "berth");
        assert_eq!(rt.binary("berth"), Some(""));
        assert_eq!(rt.binary("runc"), Some("runc"));
        assert_eq!(rt.binary("crun2"), Some("/usr/bin/crun"));
        assert_eq!(rt.binary("nope"), None);
        let bad = Config::parse_from(["berthd", "--add-runtime", "crun2"]);
        assert!(matches!(bad.runtimes(), Err(RuntimeError::BadArgument(_))));
        let reserved = Config::parse_from(["berthd", "--add-runtime", "runc=/x"]);
        assert!(matches!(
            reserved.runtimes(),
            Err(RuntimeError::Reserved(_))
        ));
        let default = Config::parse_from(["berthd", "--default-runtime", "x"]);
        assert!(matches!(
            default.runtimes(),
            Err(RuntimeError::UnknownDefault(_))
        ));
        let runc = Config::parse_from(["berthd", "--default-runtime", "runc"]);
        assert_eq!(runc.runtimes().unwrap().default, "runc");
    }

    #[test]
    fn cri_is_off_unless_asked_and_mirrors_parse() {
        let cfg = Config::parse_from(["berthd"]);
        assert!(cfg.cri_socket.is_none());
        assert_eq!(cfg.cni_bin_dirs().len(), 2);
        let cfg = Config::parse_from([
            "berthd",
            "--cri-socket",
            "/run/x.sock",
            "--registry-mirror",
            "registry.k8s.io=http://127.0.0.1:5000",
            "--cri-cgroup-driver",
            "systemd",
        ]);
        assert_eq!(cfg.mirrors().unwrap()[0].registry, "registry.k8s.io");
        assert_eq!(cfg.cri_cgroup_driver, crate::cri::CgroupDriver::Systemd);
        assert!(Config::try_parse_from(["berthd", "--cri-cgroup-driver", "x"]).is_err());
        let bad = Config::parse_from(["berthd", "--registry-mirror", "nope"]);
        assert!(bad.mirrors().is_err());
    }

    #[test]
    fn cgroup_parents_are_absolute_and_stay_inside() {
        assert_eq!(parse_cgroup_parent("berth").unwrap(), "/berth");
        assert_eq!(parse_cgroup_parent("/a/b/").unwrap(), "/a/b");
        assert!(parse_cgroup_parent("a/../../b").is_err());
        assert!(parse_cgroup_parent("./a").is_err());
    }
}
