//! berthd's command line, following dockerd's.

use clap::Parser;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The runtime berthd runs containers with unless told otherwise: berth-runtime, found
/// by the supervisor (and shim) beside themselves.
pub const BERTH_RUNTIME: &str = "berth";

/// The unix sockets' group unless -G says otherwise, as dockerd's.
pub const DEFAULT_SOCKET_GROUP: &str = "docker";

/// berthd: the Berth engine, serving the Docker Engine API.
#[derive(Debug, Clone, Parser)]
// As with dockerd's (Go) flags, the last of a repeated single-valued flag wins.
#[command(name = "berthd", version, about, args_override_self = true)]
pub struct Config {
    /// Root of persistent state (content, snapshots, metadata).
    #[arg(long, default_value = "/var/lib/berth")]
    pub data_root: PathBuf,
    /// Root of runtime state (pid file).
    #[arg(long, default_value = "/run/berth")]
    pub exec_root: PathBuf,
    /// Where to listen: unix://PATH or tcp://HOST:PORT (repeatable) [default:
    /// unix:///run/berth/berth.sock, or tcp://localhost:2376 when TLS is on, as dockerd].
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Use TLS on tcp:// listeners; implied by --tlsverify. Plain TCP on an address that
    /// is not loopback needs an explicit --tls=false.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = parse_go_bool, value_name = "BOOL")]
    pub tls: Option<bool>,
    /// Use TLS and require client certificates signed by --tlscacert (the default once
    /// TLS is on; --tlsverify=false serves TLS to any client).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          value_parser = parse_go_bool, value_name = "BOOL")]
    pub tlsverify: Option<bool>,
    /// Trust client certificates signed only by this CA [default: ca.pem in
    /// $DOCKER_CERT_PATH, else in $DOCKER_CONFIG, else in ~/.docker].
    #[arg(long, value_name = "PATH")]
    pub tlscacert: Option<PathBuf>,
    /// The server's TLS certificate [default: cert.pem in the same directory].
    #[arg(long, value_name = "PATH")]
    pub tlscert: Option<PathBuf>,
    /// The server's TLS key [default: key.pem in the same directory].
    #[arg(long, value_name = "PATH")]
    pub tlskey: Option<PathBuf>,
    /// Group for the unix sockets (a name or a GID; empty: berthd's own group). The
    /// default, `docker`, falls back to berthd's group when no such group exists.
    #[arg(short = 'G', long, default_value = DEFAULT_SOCKET_GROUP)]
    pub group: String,
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
    /// The default bridge network's Linux bridge (made if missing), or `none` for no
    /// default network (containers then get none unless they name one).
    #[arg(short = 'b', long, default_value = "berth0")]
    pub bridge: String,
    /// The default bridge's address and subnet (CIDR, e.g. 10.20.0.1/24).
    #[arg(long, value_parser = parse_cidr)]
    pub bip: Option<ipnet::Ipv4Net>,
    /// Where default-bridge containers get addresses (a CIDR inside its subnet).
    #[arg(long, value_parser = parse_cidr)]
    pub fixed_cidr: Option<ipnet::Ipv4Net>,
    /// Give the default bridge IPv6 (needs --fixed-cidr-v6: there is no default pool).
    #[arg(long)]
    pub ipv6: bool,
    /// The default bridge's IPv6 subnet, with --ipv6 (e.g. fd00:1::/64).
    #[arg(long = "fixed-cidr-v6", value_parser = parse_cidr6)]
    pub fixed_cidr_v6: Option<ipnet::Ipv6Net>,
    /// Pools new networks' subnets come from: base=CIDR,size=N (repeatable).
    #[arg(long = "default-address-pool", value_parser = parse_pool)]
    pub default_address_pools: Vec<crate::networks::ipam::Pool>,
    /// Let containers on the default bridge talk to each other.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub icc: bool,
    /// Enable IPv4 forwarding (net.ipv4.ip_forward).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub ip_forward: bool,
    /// Manage firewall rules (NAT, published ports, isolation).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub iptables: bool,
    /// Masquerade containers' outbound traffic.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub ip_masq: bool,
    /// MTU of bridges and container interfaces.
    #[arg(long)]
    pub mtu: Option<u32>,
    /// The firewall backend: nftables or iptables (default: nftables when `nft` runs).
    #[arg(long, value_enum)]
    pub firewall_backend: Option<crate::networks::firewall::Backend>,
    /// DNS servers for containers (repeatable); the embedded server forwards to them.
    #[arg(long = "dns")]
    pub dns: Vec<std::net::Ipv4Addr>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(short = 'l', long, default_value = "info")]
    pub log_level: String,
}

impl Config {
    /// The listen addresses as given; an empty list or an empty entry means the default
    /// (see `listen::Host::parse`).
    pub fn listen_addresses(&self) -> Vec<String> {
        if self.hosts.is_empty() {
            vec![String::new()]
        } else {
            self.hosts.clone()
        }
    }

    /// Where the TLS files are by default, as dockerd finds them: `$DOCKER_CERT_PATH`,
    /// else `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn cert_dir() -> PathBuf {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(d) = env("DOCKER_CERT_PATH").or_else(|| env("DOCKER_CONFIG")) {
            return PathBuf::from(d);
        }
        env("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"))
            .join(".docker")
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

fn parse_cidr(raw: &str) -> Result<ipnet::Ipv4Net, String> {
    crate::networks::ipam::parse_cidr(raw).map_err(|e| e.to_string())
}

fn parse_cidr6(raw: &str) -> Result<ipnet::Ipv6Net, String> {
    crate::networks::ipam::parse_cidr6(raw).map_err(|e| e.to_string())
}

fn parse_pool(raw: &str) -> Result<crate::networks::ipam::Pool, String> {
    crate::networks::ipam::parse_pool(raw).map_err(|e| e.to_string())
}

impl Config {
    /// The networking settings, from the flags.
    pub fn network(&self) -> crate::networks::NetConfig {
        use sha2::Digest;
        // One firewall table per berthd: named after its exec root unless it is the
        // default one, so that test instances never share (or remove) each other's.
        let firewall_name = if self.exec_root == std::path::Path::new("/run/berth") {
            "berth".to_string()
        } else {
            let h = sha2::Sha256::digest(self.exec_root.as_os_str().as_encoded_bytes());
            format!("berth-{}", &hex::encode(h)[..8])
        };
        crate::networks::NetConfig {
            bridge: (self.bridge != "none").then(|| self.bridge.clone()),
            bip: self.bip,
            fixed_cidr: self.fixed_cidr,
            // As dockerd: --fixed-cidr-v6 means nothing without --ipv6.
            fixed_cidr_v6: self.fixed_cidr_v6.filter(|_| self.ipv6).map(|s| s.trunc()),
            pools: self.default_address_pools.clone(),
            icc: self.icc,
            ip_forward: self.ip_forward,
            iptables: self.iptables,
            ip_masq: self.ip_masq,
            mtu: self.mtu,
            firewall_backend: self.firewall_backend,
            dns: self.dns.clone(),
            data_dir: self.data_root.join("network"),
            run_dir: self.exec_root.join("network"),
            firewall_name,
        }
    }
}

/// A boolean flag value as Go's strconv.ParseBool reads it (dockerd's flags are Go's):
/// 1, t, T, TRUE, true, True and their false counterparts.
pub fn parse_go_bool(raw: &str) -> Result<bool, String> {
    match raw {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {raw:?}: invalid syntax"
        )),
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
    fn tls_flags_take_go_booleans_only_with_equals() {
        let cfg = Config::parse_from(["berthd", "--tlsverify", "--tls=false"]);
        assert_eq!((cfg.tls, cfg.tlsverify), (Some(false), Some(true)));
        let cfg = Config::parse_from(["berthd", "--tls=1", "--tlsverify=F"]);
        assert_eq!((cfg.tls, cfg.tlsverify), (Some(true), Some(false)));
        let cfg = Config::parse_from(["berthd"]);
        assert_eq!((cfg.tls, cfg.tlsverify), (None, None));
        assert_eq!(cfg.group, "docker");
        assert!(Config::try_parse_from(["berthd", "--tls=maybe"]).is_err());
        // The last of a repeated flag wins; -H adds up.
        let cfg = Config::parse_from([
            "berthd",
            "--tlscacert=/a",
            "--tlscacert=/b",
            "-H",
            "unix:///x",
            "-H",
            "tcp://:1",
        ]);
        assert_eq!(cfg.tlscacert.as_deref(), Some(std::path::Path::new("/b")));
        assert_eq!(cfg.hosts, ["unix:///x", "tcp://:1"]);
        // As Go's flags: a separate word is not the flag's value.
        assert!(Config::try_parse_from(["berthd", "--tls", "false"]).is_err());
    }

    #[test]
    fn cgroup_parents_are_absolute_and_stay_inside() {
        assert_eq!(parse_cgroup_parent("berth").unwrap(), "/berth");
        assert_eq!(parse_cgroup_parent("/a/b/").unwrap(), "/a/b");
        assert!(parse_cgroup_parent("a/../../b").is_err());
        assert!(parse_cgroup_parent("./a").is_err());
    }
}
