//! The firewall behind a trait, with nftables and iptables implementations picked at run
//! time (`--firewall-backend`, else nftables when `nft` works, else iptables).
//!
//! Berth's rules live only in its own table (nftables: `ip <name>`) or its own chains
//! (iptables: `<NAME>-PRE`, `-POST`, `-FWD`, jumped to from the built-in chains), one set
//! per berthd (the name comes from its exec root), so a dockerd's, a podman's or another
//! berthd's rules on the same host are never touched. Each change renders the whole
//! desired state and applies it in one atomic transaction (`nft -f -`, `iptables-restore
//! --noflush`), which also makes reconciling after a restart the same operation as any
//! other change. An unchanged ruleset is not applied again, so a container without
//! published ports costs no firewall work at all.

mod iptables;
mod nft;

use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

pub use iptables::Iptables;
pub use nft::Nftables;

/// A failed firewall change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tool could not be run.
    #[error("running {tool}: {source}")]
    Spawn {
        /// `nft`, `iptables-restore`...
        tool: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// It refused the ruleset.
    #[error("{tool} refused the ruleset: {stderr}")]
    Refused {
        /// The tool.
        tool: &'static str,
        /// What it said.
        stderr: String,
    },
}

/// Result of firewall changes.
pub type Result<T> = std::result::Result<T, Error>;

/// A transport protocol of a published port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Proto {
    /// As docker writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// The rules one bridge network needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// Its bridge.
    pub bridge: String,
    /// Its subnet.
    pub subnet: Ipv4Net,
    /// No route out (`--internal`).
    pub internal: bool,
    /// Containers on it may talk to each other (`--icc`).
    pub icc: bool,
    /// Outbound traffic is masqueraded (`--ip-masq`).
    pub masquerade: bool,
}

/// One published port: traffic to the host's `host_ip:host_port` goes to the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// Protocol.
    pub proto: Proto,
    /// Host address it is published on; None for all.
    pub host_ip: Option<Ipv4Addr>,
    /// Host port.
    pub host_port: u16,
    /// The container's address on the network the port goes through.
    pub container_ip: Ipv4Addr,
    /// The container's port.
    pub container_port: u16,
}

/// Everything berthd wants in the firewall.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// The bridge networks, isolated from each other.
    pub networks: Vec<NetworkRules>,
    /// Published ports.
    pub ports: Vec<PortRule>,
}

/// A firewall backend.
pub trait Firewall: Send + Sync {
    /// Its name, for logs and `docker info`.
    fn name(&self) -> &'static str;
    /// Makes the firewall hold exactly `rules` (in Berth's own table or chains).
    fn apply(&self, rules: &Ruleset) -> Result<()>;
    /// Removes Berth's table or chains (and the jumps to them).
    fn remove(&self) -> Result<()>;
}

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// nftables, through `nft`.
    Nftables,
    /// iptables (the nf_tables or legacy one Debian selects), through iptables-restore.
    Iptables,
}

/// The backend for `name` (the table/chain prefix): the one asked for, else nftables when
/// `nft` runs here, else iptables.
pub fn pick(asked: Option<Backend>, name: &str) -> Box<dyn Firewall> {
    let backend = asked.unwrap_or_else(|| {
        let nft_works = std::process::Command::new("nft")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if nft_works {
            Backend::Nftables
        } else {
            Backend::Iptables
        }
    });
    match backend {
        Backend::Nftables => Box::new(Nftables::new(name)),
        Backend::Iptables => Box::new(Iptables::new(name)),
    }
}

/// Runs `tool args` with `input` on stdin.
fn run_with_input(tool: &'static str, args: &[&str], input: &str) -> Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn { tool, source })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|source| Error::Spawn { tool, source })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| Error::Spawn { tool, source })?;
    if !out.status.success() {
        return Err(Error::Refused {
            tool,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Runs `tool args`; Ok(false) when it ran and said no.
fn run(tool: &'static str, args: &[&str]) -> Result<bool> {
    let out = std::process::Command::new(tool)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|source| Error::Spawn { tool, source })?;
    Ok(out.success())
}

#[cfg(test)]
pub(crate) fn sample() -> Ruleset {
    Ruleset {
        networks: vec![
            NetworkRules {
                bridge: "berth0".into(),
                subnet: "172.17.0.0/16".parse().unwrap(),
                internal: false,
                icc: true,
                masquerade: true,
            },
            NetworkRules {
                bridge: "br-0123456789ab".into(),
                subnet: "10.5.0.0/24".parse().unwrap(),
                internal: true,
                icc: false,
                masquerade: true,
            },
        ],
        ports: vec![
            PortRule {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 8080,
                container_ip: "172.17.0.2".parse().unwrap(),
                container_port: 80,
            },
            PortRule {
                proto: Proto::Udp,
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 5353,
                container_ip: "10.5.0.3".parse().unwrap(),
                container_port: 53,
            },
        ],
    }
}
