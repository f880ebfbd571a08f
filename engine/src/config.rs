//! berthd's command line, following dockerd's.

use clap::Parser;
use std::path::PathBuf;

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
}
