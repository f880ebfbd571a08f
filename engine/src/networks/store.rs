//! Networks and their active endpoints (address and port allocations), persisted in an
//! embedded crash-safe redb database under `<data-root>/network/`. An endpoint is written
//! before its veth is made and removed after it is gone, so after a crash the store holds
//! every allocation that may be in use, and nothing is allocated twice; reconciling at
//! start then frees those of containers that are gone.

use super::firewall::Proto;
use ipnet::{Ipv4Net, Ipv6Net};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error("network store: {0}")]
    Db(Box<redb::Error>),
    /// A stored record does not decode.
    #[error("network store: corrupt record {key}: {source}")]
    Corrupt {
        /// Its key.
        key: String,
        /// Why.
        source: serde_json::Error,
    },
}

fn db<E: Into<redb::Error>>(e: E) -> Error {
    Error::Db(Box::new(e.into()))
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, Error>;

/// The driver of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// A Linux bridge with veth pairs.
    Bridge,
    /// The host's own stack.
    Host,
    /// Loopback only.
    Null,
}

impl Driver {
    /// As docker names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

/// A network as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// 64 hex characters.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Driver.
    pub driver: Driver,
    /// RFC 3339 creation time.
    pub created: String,
    /// IPv4 subnet (bridge only).
    pub subnet: Option<Ipv4Net>,
    /// Where container addresses come from (defaults to the subnet).
    pub ip_range: Option<Ipv4Net>,
    /// The bridge's address.
    pub gateway: Option<Ipv4Addr>,
    /// Whether the subnet was asked for (shown in IPAM.Config as given).
    pub user_subnet: bool,
    /// Whether the gateway was asked for (dockerd shows a gateway it chose itself for
    /// a subnet that was asked for only in the container's view, not in IPAM.Config).
    #[serde(default)]
    pub user_gateway: bool,
    /// The bridge's name.
    pub bridge: Option<String>,
    /// No route out.
    pub internal: bool,
    /// Attachable (recorded; no swarm here).
    pub attachable: bool,
    /// EnableIPv6: members get an address from `subnet6` too.
    pub enable_ipv6: bool,
    /// IPv6 subnet (with `enable_ipv6`).
    #[serde(default)]
    pub subnet6: Option<Ipv6Net>,
    /// The bridge's IPv6 address.
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    /// Whether the IPv6 gateway was asked for (shown in IPAM.Config only then).
    #[serde(default)]
    pub user_gateway6: bool,
    /// Containers on it may talk to each other.
    pub icc: bool,
    /// Outbound masquerade.
    pub masquerade: bool,
    /// MTU of the bridge and veths, if set.
    pub mtu: Option<u32>,
    /// Driver options as given.
    pub options: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// One of the predefined networks (bridge, host, none): never removed.
    pub predefined: bool,
    /// Whether its members resolve each other by name (user-defined bridges).
    pub dns: bool,
}

/// A published port of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Protocol.
    pub proto: Proto,
    /// The container's port.
    pub container_port: u16,
    /// Host address (None: all).
    pub host_ip: Option<Ipv4Addr>,
    /// Host port.
    pub host_port: u16,
}

/// A container's live attachment to a network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// 64 hex characters.
    pub id: String,
    /// The network's id.
    pub network: String,
    /// The container's id.
    pub container: String,
    /// The container's name (without `/`), for DNS and `network inspect`.
    pub name: String,
    /// Names it answers to besides its name and short id.
    pub aliases: Vec<String>,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Host end of the veth pair.
    pub veth: String,
    /// Interface name inside (eth0, eth1...).
    pub ifname: String,
    /// Published ports through this endpoint.
    pub ports: Vec<PortMapping>,
    /// Whether the address was asked for (`--ip`).
    pub static_ip: bool,
    /// Its IPv6 address (on a network with IPv6).
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    /// Whether the IPv6 address was asked for (`--ip6`).
    #[serde(default)]
    pub static_ip6: bool,
}

impl EndpointRecord {
    fn key(&self) -> String {
        format!("{}/{}", self.container, self.network)
    }
}

/// The store.
pub struct Store {
    db: redb::Database,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| db(redb::Error::Io(e)))?;
        let database = redb::Builder::new()
            .set_cache_size(crate::REDB_CACHE_BYTES)
            .create(dir.join("networks.redb"))
            .map_err(db)?;
        let tx = database.begin_write().map_err(db)?;
        tx.open_table(NETWORKS).map_err(db)?;
        tx.open_table(ENDPOINTS).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Self { db: database })
    }

    fn all<T: for<'de> Deserialize<'de>>(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>> {
        let tx = self.db.begin_read().map_err(db)?;
        let t = tx.open_table(table).map_err(db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|source| Error::Corrupt {
                    key: k.value().to_string(),
                    source,
                })?,
            );
        }
        Ok(out)
    }

    fn put<T: Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        v: &T,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(v).map_err(|source| Error::Corrupt {
            key: key.to_string(),
            source,
        })?;
        let tx = self.db.begin_write().map_err(db)?;
        tx.open_table(table)
            .map_err(db)?
            .insert(key, bytes.as_slice())
            .map_err(db)?;
        tx.commit().map_err(db)
    }

    fn delete(&self, table: TableDefinition<&str, &[u8]>, key: &str) -> Result<()> {
        let tx = self.db.begin_write().map_err(db)?;
        tx.open_table(table).map_err(db)?.remove(key).map_err(db)?;
        tx.commit().map_err(db)
    }

    /// Every network.
    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        self.all(NETWORKS)
    }

    /// Writes a network.
    pub fn put_network(&self, n: &NetworkRecord) -> Result<()> {
        self.put(NETWORKS, &n.id, n)
    }

    /// Removes a network.
    pub fn delete_network(&self, id: &str) -> Result<()> {
        self.delete(NETWORKS, id)
    }

    /// Every endpoint.
    pub fn endpoints(&self) -> Result<Vec<EndpointRecord>> {
        self.all(ENDPOINTS)
    }

    /// Writes an endpoint.
    pub fn put_endpoint(&self, e: &EndpointRecord) -> Result<()> {
        self.put(ENDPOINTS, &e.key(), e)
    }

    /// Removes an endpoint.
    pub fn delete_endpoint(&self, e: &EndpointRecord) -> Result<()> {
        self.delete(ENDPOINTS, &e.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ep = EndpointRecord {
            id: "e".repeat(64),
            network: "n".repeat(64),
            container: "c".repeat(64),
            name: "web".into(),
            aliases: vec!["www".into()],
            ip: "10.0.0.2".parse().unwrap(),
            mac: [2, 0x42, 10, 0, 0, 2],
            veth: "veth0123456".into(),
            ifname: "eth0".into(),
            ports: vec![PortMapping {
                proto: Proto::Tcp,
                container_port: 80,
                host_ip: None,
                host_port: 8080,
            }],
            static_ip: false,
            ip6: Some("fd00::2".parse().unwrap()),
            static_ip6: false,
        };
        {
            let s = Store::open(dir.path()).unwrap();
            s.put_endpoint(&ep).unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let eps = s.endpoints().unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].ports, ep.ports);
        assert_eq!(eps[0].ip6, ep.ip6);
        s.delete_endpoint(&ep).unwrap();
        assert!(s.endpoints().unwrap().is_empty());
    }
}
