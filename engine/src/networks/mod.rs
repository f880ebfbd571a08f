//! Networks, as dockerd's bridge driver: the default `bridge` network (a Linux bridge
//! berthd owns, `berth0` unless `--bridge` says otherwise) beside `host` and `none`,
//! user-defined bridge networks with an embedded DNS server, published ports, and the
//! state that survives a restart.
//!
//! - `netlink`: links, addresses, routes in process; `netns`: the namespaces berthd makes
//!   for containers (before their task is created, kept as files under the exec root).
//! - `ipam`: subnets and addresses; `store`: networks and live endpoints, persisted.
//! - `firewall`: NAT, forwarding and isolation rules (nftables or iptables), in Berth's
//!   own table/chains; `ports`: published host ports; `dns`: names at 127.0.0.11.
//!
//! The containers module calls `attach` before a task is created (and gets the namespace
//! path to put in the spec), `detach` when the task is gone, and `reconcile` at start with
//! the containers still running. Nothing else here knows about containers.

pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod store;

use firewall::{Firewall, NetworkRules, PortRule, Ruleset};
use ipnet::Ipv4Net;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
pub use store::{Driver, EndpointRecord, NetworkRecord, PortMapping};

/// A refused or failed network operation; the API maps each kind to dockerd's status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such network (404).
    #[error("network {0} not found")]
    NotFound(String),
    /// Bad input (400).
    #[error("{0}")]
    Invalid(String),
    /// A name or endpoint that exists already (409).
    #[error("{0}")]
    Conflict(String),
    /// Not allowed in this state: predefined networks, active endpoints, overlapping
    /// pools (403, as dockerd).
    #[error("{0}")]
    Forbidden(String),
    /// A published port that cannot be had (500, as dockerd).
    #[error(
        "driver failed programming external connectivity on endpoint {endpoint} ({id}): {source}"
    )]
    Port {
        /// The container's name.
        endpoint: String,
        /// The endpoint id.
        id: String,
        /// What went wrong.
        source: ports::Error,
    },
    /// An unknown driver (404, as dockerd's plugin look-up).
    #[error("plugin \"{0}\" not found")]
    Plugin(String),
    /// No subnet left in the pools.
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoPool,
    /// No address left in a subnet.
    #[error("no available IPv4 addresses on this network's address pools: {0}")]
    NoAddress(String),
    /// No IPv6 address left in a subnet.
    #[error("no available IPv6 addresses on this network's address pools: {0}")]
    NoAddress6(String),
    /// The kernel refused a link, address or route.
    #[error(transparent)]
    Netlink(#[from] netlink::Error),
    /// A namespace operation failed.
    #[error(transparent)]
    Netns(#[from] netns::Error),
    /// The firewall refused the rules.
    #[error("firewall: {0}")]
    Firewall(#[from] firewall::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Something else on the host failed.
    #[error("{0}")]
    Internal(String),
}

/// Result of network operations.
pub type Result<T> = std::result::Result<T, Error>;

/// berthd's networking flags (as dockerd's).
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The default bridge's name; None with `--bridge none` (no default network).
    pub bridge: Option<String>,
    /// `--bip`: the default bridge's address and subnet.
    pub bip: Option<Ipv4Net>,
    /// `--fixed-cidr`: where default-bridge containers get addresses.
    pub fixed_cidr: Option<Ipv4Net>,
    /// `--ipv6 --fixed-cidr-v6`: the default bridge's IPv6 subnet.
    pub fixed_cidr_v6: Option<ipnet::Ipv6Net>,
    /// `--default-address-pool`s (dockerd's defaults when empty).
    pub pools: Vec<ipam::Pool>,
    /// `--icc`: containers on the default bridge may talk to each other.
    pub icc: bool,
    /// `--ip-forward`: enable net.ipv4.ip_forward.
    pub ip_forward: bool,
    /// `--iptables`: manage firewall rules at all.
    pub iptables: bool,
    /// `--ip-masq`: masquerade outbound traffic.
    pub ip_masq: bool,
    /// `--mtu`.
    pub mtu: Option<u32>,
    /// `--firewall-backend`.
    pub firewall_backend: Option<firewall::Backend>,
    /// `--dns`: resolvers for containers (and the embedded server's upstreams).
    pub dns: Vec<Ipv4Addr>,
    /// The persistent directory (the store).
    pub data_dir: PathBuf,
    /// The runtime directory (namespaces).
    pub run_dir: PathBuf,
    /// Name of Berth's firewall table/chains for this berthd.
    pub firewall_name: String,
}

/// How a network is asked for at creation.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Name.
    pub name: String,
    /// Driver (`bridge` or empty).
    pub driver: String,
    /// `--internal`.
    pub internal: bool,
    /// `--attachable`.
    pub attachable: bool,
    /// `--ipv6`.
    pub enable_ipv6: bool,
    /// `--subnet`.
    pub subnet: Option<String>,
    /// `--ip-range`.
    pub ip_range: Option<String>,
    /// `--gateway`.
    pub gateway: Option<String>,
    /// The IPv6 `--subnet` (with `--ipv6`).
    pub subnet6: Option<String>,
    /// The IPv6 `--gateway`.
    pub gateway6: Option<String>,
    /// `-o`.
    pub options: BTreeMap<String, String>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
}

/// One network a container asks to be on.
#[derive(Debug, Clone, Default)]
pub struct EndpointRequest {
    /// Network name, id or id prefix.
    pub network: String,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ipv4: Option<Ipv4Addr>,
    /// `--ip6`.
    pub ipv6: Option<Ipv6Addr>,
    /// `--mac-address` (else dockerd's: 02:42 and the IPv4 address).
    pub mac: Option<[u8; 6]>,
}

/// What a container's start needs from networking.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    /// Container id.
    pub container: String,
    /// Container name, without `/`.
    pub name: String,
    /// Bridge networks, the first gets eth0 and the published ports.
    pub endpoints: Vec<EndpointRequest>,
    /// Published ports.
    pub ports: Vec<ports::PortRequest>,
}

/// The state that changes: networks and live endpoints, mirrored from the store.
#[derive(Default)]
struct State {
    networks: BTreeMap<String, NetworkRecord>,
    endpoints: Vec<EndpointRecord>,
}

/// The network subsystem.
pub struct NetworkService {
    cfg: NetConfig,
    store: Arc<store::Store>,
    state: Mutex<State>,
    firewall: Option<Box<dyn Firewall>>,
    applied: tokio::sync::Mutex<Option<Ruleset>>,
    dns: Arc<dns::Dns>,
    held: Mutex<HashMap<String, Vec<OwnedFd>>>,
}

impl std::fmt::Debug for NetworkService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkService")
            .field("bridge", &self.cfg.bridge)
            .field("firewall", &self.firewall_name())
            .finish_non_exhaustive()
    }
}

/// `n` random hex characters.
fn random_hex(n: usize) -> String {
    let mut s = crate::containers::random_hex(n.div_ceil(2));
    s.truncate(n);
    s
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Host resolvers from resolv.conf (the embedded server's upstreams).
fn host_resolvers() -> Vec<Ipv4Addr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn write_sysctl(path: &str, value: &str) {
    if let Err(e) = std::fs::write(path, value) {
        tracing::warn!(path, error = %e, "could not set sysctl");
    }
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> Result<R> + Send + 'static) -> Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("network worker: {e}")))?
}

impl NetworkService {
    /// Opens the store, makes sure the predefined networks and every bridge exist.
    /// `reconcile` must follow once the running containers are known.
    pub async fn open(cfg: NetConfig) -> Result<Arc<Self>> {
        let (data_dir, run_dir) = (cfg.data_dir.clone(), cfg.run_dir.clone());
        let (store, state) = blocking(move || {
            let store = store::Store::open(&data_dir)?;
            std::fs::create_dir_all(run_dir.join("netns"))
                .map_err(|e| Error::Internal(format!("creating {}: {e}", run_dir.display())))?;
            let mut state = State::default();
            for n in store.networks()? {
                state.networks.insert(n.id.clone(), n);
            }
            state.endpoints = store.endpoints()?;
            Ok((Arc::new(store), state))
        })
        .await?;
        let firewall = cfg
            .iptables
            .then(|| firewall::pick(cfg.firewall_backend, &cfg.firewall_name));
        let upstreams = if cfg.dns.is_empty() {
            host_resolvers()
        } else {
            cfg.dns.clone()
        };
        if cfg.ip_forward {
            write_sysctl("/proc/sys/net/ipv4/ip_forward", "1");
        }
        let svc = Arc::new(Self {
            cfg,
            store,
            state: Mutex::new(state),
            firewall,
            applied: tokio::sync::Mutex::new(None),
            dns: dns::Dns::new(upstreams),
            held: Mutex::new(HashMap::new()),
        });
        svc.predefined().await?;
        Ok(svc)
    }

    // The store's writes wait for the disk (redb commits with fsync): they run on the
    // blocking pool, never on an async worker.
    async fn put_network(&self, n: &NetworkRecord) -> Result<()> {
        let (store, n) = (self.store.clone(), n.clone());
        blocking(move || Ok(store.put_network(&n)?)).await
    }

    async fn delete_network(&self, id: &str) -> Result<()> {
        let (store, id) = (self.store.clone(), id.to_string());
        blocking(move || Ok(store.delete_network(&id)?)).await
    }

    async fn put_endpoint(&self, e: &EndpointRecord) -> Result<()> {
        let (store, e) = (self.store.clone(), e.clone());
        blocking(move || Ok(store.put_endpoint(&e)?)).await
    }

    async fn delete_endpoint(&self, e: &EndpointRecord) -> Result<()> {
        let (store, e) = (self.store.clone(), e.clone());
        blocking(move || Ok(store.delete_endpoint(&e)?)).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The firewall backend's name, or none.
    pub fn firewall_name(&self) -> &'static str {
        self.firewall.as_ref().map(|f| f.name()).unwrap_or("none")
    }

    /// The resolvers containers get when not on a user-defined network.
    pub fn dns_servers(&self) -> &[Ipv4Addr] {
        &self.cfg.dns
    }

    fn netns_path(&self, container: &str) -> PathBuf {
        self.cfg.run_dir.join("netns").join(container)
    }

    /// The namespace berthd made for a running container, if it made one.
    pub fn namespace_of(&self, container: &str) -> Option<PathBuf> {
        let p = self.netns_path(container);
        p.exists().then_some(p)
    }

    async fn predefined(&self) -> Result<()> {
        let have: HashSet<String> = self
            .lock()
            .networks
            .values()
            .map(|n| n.name.clone())
            .collect();
        for (name, driver) in [("host", Driver::Host), ("none", Driver::Null)] {
            if !have.contains(name) {
                let rec = NetworkRecord {
                    id: random_hex(64),
                    name: name.into(),
                    driver,
                    created: now(),
                    subnet: None,
                    ip_range: None,
                    gateway: None,
                    user_subnet: false,
                    user_gateway: false,
                    bridge: None,
                    internal: false,
                    attachable: false,
                    enable_ipv6: false,
                    subnet6: None,
                    gateway6: None,
                    user_gateway6: false,
                    icc: true,
                    masquerade: false,
                    mtu: None,
                    options: BTreeMap::new(),
                    labels: BTreeMap::new(),
                    predefined: true,
                    dns: false,
                };
                self.put_network(&rec).await?;
                self.lock().networks.insert(rec.id.clone(), rec);
            }
        }
        let existing = self
            .lock()
            .networks
            .values()
            .find(|n| n.name == "bridge")
            .cloned();
        let Some(bridge) = self.cfg.bridge.clone() else {
            if let Some(old) = existing {
                self.delete_network(&old.id).await?;
                self.lock().networks.remove(&old.id);
            }
            return Ok(());
        };
        // The flags win over what was stored (dockerd re-reads them at every start).
        let changed = existing.as_ref().is_none_or(|n| {
            n.bridge.as_deref() != Some(bridge.as_str())
                || self.cfg.bip.is_some_and(|b| Some(b.trunc()) != n.subnet)
                || n.ip_range != self.cfg.fixed_cidr
                || n.icc != self.cfg.icc
                || n.masquerade != self.cfg.ip_masq
                || n.subnet6 != self.cfg.fixed_cidr_v6
        });
        if !changed {
            return Ok(());
        }
        let (subnet, gateway) = match self.cfg.bip {
            Some(bip) => (bip.trunc(), bip.addr()),
            None => {
                let taken = self
                    .taken_subnets(existing.as_ref().map(|n| n.id.as_str()))
                    .await?;
                let _lock = SubnetLock::take();
                let s = existing
                    .as_ref()
                    .and_then(|n| n.subnet)
                    .filter(|s| !taken.iter().any(|t| ipam::overlaps(s, t)))
                    .or_else(|| ipam::pick_subnet(&self.pools(), &taken))
                    .ok_or(Error::NoPool)?;
                (s, ipam::default_gateway(&s))
            }
        };
        let rec = NetworkRecord {
            id: existing
                .as_ref()
                .map(|n| n.id.clone())
                .unwrap_or_else(|| random_hex(64)),
            name: "bridge".into(),
            driver: Driver::Bridge,
            created: existing
                .as_ref()
                .map(|n| n.created.clone())
                .unwrap_or_else(now),
            subnet: Some(subnet),
            ip_range: self.cfg.fixed_cidr,
            gateway: Some(gateway),
            user_subnet: false,
            user_gateway: false,
            bridge: Some(bridge.clone()),
            internal: false,
            attachable: false,
            enable_ipv6: self.cfg.fixed_cidr_v6.is_some(),
            subnet6: self.cfg.fixed_cidr_v6,
            gateway6: self.cfg.fixed_cidr_v6.map(|s| ipam::default_gateway6(&s)),
            // Shown in IPAM.Config, as the default bridge's IPv4 gateway is.
            user_gateway6: self.cfg.fixed_cidr_v6.is_some(),
            icc: self.cfg.icc,
            masquerade: self.cfg.ip_masq,
            mtu: self.cfg.mtu,
            options: BTreeMap::from([
                (
                    "com.docker.network.bridge.default_bridge".into(),
                    "true".into(),
                ),
                (
                    "com.docker.network.bridge.enable_icc".into(),
                    self.cfg.icc.to_string(),
                ),
                (
                    "com.docker.network.bridge.enable_ip_masquerade".into(),
                    self.cfg.ip_masq.to_string(),
                ),
                (
                    "com.docker.network.bridge.host_binding_ipv4".into(),
                    "0.0.0.0".into(),
                ),
                ("com.docker.network.bridge.name".into(), bridge),
                (
                    "com.docker.network.driver.mtu".into(),
                    self.cfg.mtu.unwrap_or(1500).to_string(),
                ),
            ]),
            labels: BTreeMap::new(),
            predefined: true,
            dns: false,
        };
        if let Some(old) = existing.filter(|o| {
            o.bridge != rec.bridge || o.subnet != rec.subnet || o.subnet6 != rec.subnet6
        }) {
            if let Some(b) = old.bridge.clone() {
                blocking(move || {
                    netlink::Netlink::open()?.delete_link_named(&b)?;
                    Ok(())
                })
                .await?;
            }
        }
        self.put_network(&rec).await?;
        self.lock().networks.insert(rec.id.clone(), rec);
        Ok(())
    }

    fn pools(&self) -> Vec<ipam::Pool> {
        if self.cfg.pools.is_empty() {
            ipam::default_pools()
        } else {
            self.cfg.pools.clone()
        }
    }

    /// Subnets a new network must not overlap: the host's routes and addresses (a
    /// dockerd's docker0, a podman's, the LAN) and every other network's here.
    async fn taken_subnets(&self, except: Option<&str>) -> Result<Vec<Ipv4Net>> {
        let mut taken: Vec<Ipv4Net> = self
            .lock()
            .networks
            .values()
            .filter(|n| Some(n.id.as_str()) != except)
            .filter_map(|n| n.subnet)
            .collect();
        let host = blocking(|| {
            let mut nl = netlink::Netlink::open()?;
            let mut v: Vec<Ipv4Net> = nl
                .routes()?
                .into_iter()
                .filter_map(|(d, p)| Ipv4Net::new(d, p).ok())
                .collect();
            v.extend(
                nl.addresses()?
                    .into_iter()
                    .filter(|(ip, _, _)| !ip.is_loopback())
                    .filter_map(|(ip, p, _)| Ipv4Net::new(ip, p).ok().map(|n| n.trunc())),
            );
            Ok(v)
        })
        .await?;
        taken.extend(host);
        Ok(taken)
    }

    /// Makes sure a bridge network's bridge exists, with its address, up.
    async fn ensure_bridge(&self, n: &NetworkRecord) -> Result<()> {
        let (Some(bridge), Some(subnet), Some(gw)) = (n.bridge.clone(), n.subnet, n.gateway) else {
            return Ok(());
        };
        let mtu = n.mtu;
        let icc_off = !n.icc;
        let v6 = n.subnet6.zip(n.gateway6).filter(|_| n.enable_ipv6);
        blocking(move || {
            let mut nl = netlink::Netlink::open()?;
            let index = match nl.link_index(&bridge)? {
                Some(i) => i,
                None => nl.create_bridge(&bridge, mtu)?,
            };
            nl.add_address(index, gw, subnet.prefix_len())?;
            if let Some((s6, gw6)) = v6 {
                nl.add_address6(index, gw6, s6.prefix_len())?;
            }
            nl.set_up(index)?;
            Ok(())
        })
        .await?;
        let bridge = n.bridge.as_deref().unwrap_or_default();
        // 127.0.0.1 reaches published ports through NAT, not a proxy: the kernel must
        // route loopback-sourced packets out of this bridge.
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
            "1",
        );
        if icc_off {
            // icc=false is enforced on bridged traffic, which must then cross netfilter.
            write_sysctl("/proc/sys/net/bridge/bridge-nf-call-iptables", "1");
        }
        Ok(())
    }

    /// What the firewall should hold now.
    fn ruleset(&self) -> Ruleset {
        let st = self.lock();
        let networks = st
            .networks
            .values()
            .filter_map(|n| {
                Some(NetworkRules {
                    bridge: n.bridge.clone()?,
                    subnet: n.subnet?,
                    internal: n.internal,
                    icc: n.icc,
                    masquerade: n.masquerade,
                })
            })
            .collect();
        let ports = st
            .endpoints
            .iter()
            .flat_map(|e| {
                e.ports.iter().map(|p| PortRule {
                    proto: p.proto,
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    container_ip: e.ip,
                    container_port: p.container_port,
                })
            })
            .collect();
        Ruleset { networks, ports }
    }

    /// Makes the firewall match the state (nothing to do when it already does).
    async fn sync_firewall(self: &Arc<Self>) -> Result<()> {
        if self.firewall.is_none() {
            return Ok(());
        }
        let mut applied = self.applied.lock().await;
        let want = self.ruleset();
        // Nothing to hold and nothing held: no table at all (a berthd without bridges
        // leaves no trace in the firewall).
        let nothing = want.networks.is_empty() && want.ports.is_empty();
        if applied.as_ref() == Some(&want) || (applied.is_none() && nothing) {
            return Ok(());
        }
        let me = self.clone();
        let rules = want.clone();
        let began = std::time::Instant::now();
        blocking(move || {
            if let Some(fw) = &me.firewall {
                fw.apply(&rules)?;
            }
            Ok(())
        })
        .await?;
        tracing::debug!(
            backend = self.firewall_name(),
            ports = want.ports.len(),
            firewall_ms = began.elapsed().as_secs_f64() * 1e3,
            "firewall updated"
        );
        *applied = Some(want);
        Ok(())
    }

    /// After a restart: keeps what running containers use (re-holding their ports,
    /// serving their names again), removes every trace of the others, recreates missing
    /// bridges and rewrites the firewall.
    pub async fn reconcile(self: &Arc<Self>, running: &HashSet<String>) -> Result<()> {
        let nets: Vec<NetworkRecord> = self.lock().networks.values().cloned().collect();
        for n in nets.iter().filter(|n| n.driver == Driver::Bridge) {
            self.ensure_bridge(n).await?;
        }
        let (live, gone): (Vec<EndpointRecord>, Vec<EndpointRecord>) = self
            .lock()
            .endpoints
            .clone()
            .into_iter()
            .partition(|e| running.contains(&e.container));
        for e in &gone {
            tracing::info!(container = %e.container, veth = %e.veth, "removing the network leftovers of a container that is gone");
        }
        self.remove_endpoints(&gone).await;
        // Namespaces of containers that are gone.
        if let Ok(dir) = std::fs::read_dir(self.cfg.run_dir.join("netns")) {
            for f in dir.flatten() {
                let name = f.file_name().to_string_lossy().to_string();
                if !running.contains(&name) {
                    netns::remove(&f.path());
                }
            }
        }
        let mut by_container: BTreeMap<String, Vec<EndpointRecord>> = BTreeMap::new();
        for e in live {
            by_container.entry(e.container.clone()).or_default().push(e);
        }
        for (cid, eps) in by_container {
            let mut held = Vec::new();
            for e in &eps {
                ports::rehold(&e.ports, &mut held);
            }
            self.held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(cid.clone(), held);
            if let Err(e) = self.serve_dns(&cid, &eps).await {
                tracing::warn!(container = %cid, error = %e, "could not serve names again");
            }
        }
        self.sync_firewall().await
    }

    /// Registers a container's names and, if it is on a network with DNS, serves them
    /// inside its namespace.
    async fn serve_dns(&self, cid: &str, eps: &[EndpointRecord]) -> Result<()> {
        let nets = self.lock().networks.clone();
        let mut any = false;
        for e in eps {
            if nets.get(&e.network).is_some_and(|n| n.dns) {
                any = true;
                let mut names = vec![e.name.to_ascii_lowercase(), e.container[..12].to_string()];
                names.extend(e.aliases.iter().map(|a| a.to_ascii_lowercase()));
                self.dns.register(dns::Member {
                    network: e.network.clone(),
                    container: cid.to_string(),
                    names,
                    ip: e.ip,
                    ip6: e.ip6,
                });
            }
        }
        if any && !self.dns.serving(cid) {
            let path = self.netns_path(cid);
            let sockets = blocking(move || {
                Ok(netns::enter(path, |_| {
                    dns::Sockets::bind().map_err(|e| netns::Error::File("127.0.0.11:53".into(), e))
                })?)
            })
            .await?;
            self.dns
                .serve(cid, sockets)
                .map_err(|e| Error::Internal(format!("serving DNS: {e}")))?;
        }
        Ok(())
    }

    /// Deletes endpoints' veths, names, ports and records (best effort: what is already
    /// gone is fine).
    async fn remove_endpoints(self: &Arc<Self>, eps: &[EndpointRecord]) {
        if eps.is_empty() {
            return;
        }
        let veths: Vec<String> = eps.iter().map(|e| e.veth.clone()).collect();
        let _ = blocking(move || {
            let mut nl = netlink::Netlink::open()?;
            for v in veths {
                if let Err(e) = nl.delete_link_named(&v) {
                    tracing::warn!(veth = %v, error = %e, "could not delete veth");
                }
            }
            Ok(())
        })
        .await;
        for e in eps {
            self.dns.unregister(&e.container, Some(&e.network));
            if let Err(err) = self.delete_endpoint(e).await {
                tracing::warn!(error = %err, "could not forget an endpoint");
            }
        }
        let mut st = self.lock();
        st.endpoints.retain(|x| {
            !eps.iter()
                .any(|e| e.container == x.container && e.network == x.network)
        });
    }

    /// Finds a network by full id, name, or unique id prefix (dockerd's order).
    pub fn find(&self, key: &str) -> Result<NetworkRecord> {
        let st = self.lock();
        if let Some(n) = st.networks.get(key) {
            return Ok(n.clone());
        }
        if let Some(n) = st.networks.values().find(|n| n.name == key) {
            return Ok(n.clone());
        }
        let mut by_prefix = st
            .networks
            .values()
            .filter(|n| !key.is_empty() && n.id.starts_with(key));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(n), None) => Ok(n.clone()),
            (Some(_), Some(_)) => Err(Error::Invalid(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                st.networks
                    .values()
                    .filter(|n| n.id.starts_with(key))
                    .count()
            ))),
            _ => Err(Error::NotFound(key.to_string())),
        }
    }

    /// Every network.
    pub fn list(&self) -> Vec<NetworkRecord> {
        self.lock().networks.values().cloned().collect()
    }

    /// The live endpoints on a network.
    pub fn endpoints_on(&self, network: &str) -> Vec<EndpointRecord> {
        self.lock()
            .endpoints
            .iter()
            .filter(|e| e.network == network)
            .cloned()
            .collect()
    }

    /// A running container's endpoints, with their networks.
    pub fn endpoints_of(&self, container: &str) -> Vec<(NetworkRecord, EndpointRecord)> {
        let st = self.lock();
        st.endpoints
            .iter()
            .filter(|e| e.container == container)
            .filter_map(|e| Some((st.networks.get(&e.network)?.clone(), e.clone())))
            .collect()
    }

    /// Creates a user-defined bridge network; on any failure nothing of it is left.
    pub async fn create(self: &Arc<Self>, req: CreateRequest) -> Result<NetworkRecord> {
        if req.name.is_empty() {
            return Err(Error::Invalid("network name cannot be empty".into()));
        }
        if !valid_name(&req.name) {
            return Err(Error::Invalid(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        match req.driver.as_str() {
            "" | "bridge" => {}
            "host" | "null" => {
                return Err(Error::Forbidden(format!(
                    "only one instance of \"{}\" network is allowed",
                    req.driver
                )))
            }
            d => return Err(Error::Plugin(d.to_string())),
        }
        let subnet = req
            .subnet
            .as_deref()
            .map(ipam::parse_cidr)
            .transpose()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let ip_range = req
            .ip_range
            .as_deref()
            .map(ipam::parse_cidr)
            .transpose()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let gateway = req
            .gateway
            .as_deref()
            .map(ipam::parse_addr)
            .transpose()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let subnet6 = req
            .subnet6
            .as_deref()
            .map(ipam::parse_cidr6)
            .transpose()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let gateway6 = req
            .gateway6
            .as_deref()
            .map(ipam::parse_addr6)
            .transpose()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        if req.enable_ipv6 && subnet6.is_none() {
            // dockerd 20.10 has no default IPv6 pool either.
            return Err(Error::Forbidden("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network".into()));
        }
        if let Some(s6) = subnet6 {
            if s6.prefix_len() > 126 {
                return Err(Error::Invalid(format!(
                    "subnet {s6} is too small: a bridge network needs at least a /126"
                )));
            }
            if let Some(g) = gateway6.filter(|g| !s6.contains(g)) {
                return Err(Error::Invalid(format!(
                    "no matching subnet for gateway {g}"
                )));
            }
            let s6 = s6.trunc();
            if self
                .lock()
                .networks
                .values()
                .filter_map(|n| n.subnet6)
                .any(|o| ipam::overlaps6(&o, &s6))
            {
                return Err(Error::Forbidden(
                    "Pool overlaps with other one on this address space".into(),
                ));
            }
        } else if gateway6.is_some() {
            return Err(Error::Invalid(
                "ip-range or gateway given without a subnet".into(),
            ));
        }
        if subnet.is_none() && (ip_range.is_some() || gateway.is_some()) {
            return Err(Error::Invalid(
                "ip-range or gateway given without a subnet".into(),
            ));
        }
        if let Some(s) = subnet {
            if s.prefix_len() > 30 {
                return Err(Error::Invalid(format!(
                    "subnet {s} is too small: a bridge network needs at least a /30"
                )));
            }
            if let Some(g) = gateway {
                if !s.contains(&g) {
                    return Err(Error::Invalid(format!(
                        "no matching subnet for gateway {g}"
                    )));
                }
            }
            if let Some(r) = ip_range {
                if !s.contains(&r.trunc()) || r.prefix_len() < s.prefix_len() {
                    return Err(Error::Invalid(format!("no matching subnet for range {r}")));
                }
            }
        }
        let bool_opt = |k: &str, default: bool| -> Result<bool> {
            match req.options.get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<bool>()
                    .map_err(|_| Error::Invalid(format!("invalid value {v:?} for option {k}"))),
            }
        };
        let icc = bool_opt("com.docker.network.bridge.enable_icc", true)?;
        let masquerade = bool_opt(
            "com.docker.network.bridge.enable_ip_masquerade",
            self.cfg.ip_masq,
        )?;
        let mtu = match req.options.get("com.docker.network.driver.mtu") {
            None => self.cfg.mtu,
            Some(v) => Some(
                v.parse::<u32>()
                    .ok()
                    .filter(|m| (68..=65535).contains(m))
                    .ok_or_else(|| Error::Invalid(format!("invalid MTU {v:?}")))?,
            ),
        };
        let id = random_hex(64);
        let bridge = match req.options.get("com.docker.network.bridge.name") {
            Some(b)
                if b.is_empty()
                    || b.len() > 15
                    || b.contains('/')
                    || b.contains(char::is_whitespace) =>
            {
                return Err(Error::Invalid(format!("invalid bridge name {b:?}")))
            }
            Some(b) => b.clone(),
            None => format!("br-{}", &id[..12]),
        };
        let taken = self.taken_subnets(None).await?;
        let lock = SubnetLock::take();
        let (subnet, user_subnet) = match subnet {
            Some(s) => {
                let s = s.trunc();
                let others: Vec<Ipv4Net> = self
                    .lock()
                    .networks
                    .values()
                    .filter_map(|n| n.subnet)
                    .collect();
                if others.iter().any(|o| ipam::overlaps(o, &s)) {
                    return Err(Error::Forbidden(
                        "Pool overlaps with other one on this address space".into(),
                    ));
                }
                (s, true)
            }
            None => (
                ipam::pick_subnet(&self.pools(), &taken).ok_or(Error::NoPool)?,
                false,
            ),
        };
        let rec = NetworkRecord {
            id: id.clone(),
            name: req.name.clone(),
            driver: Driver::Bridge,
            created: now(),
            subnet: Some(subnet),
            ip_range,
            gateway: Some(gateway.unwrap_or_else(|| ipam::default_gateway(&subnet))),
            user_subnet,
            user_gateway: gateway.is_some(),
            bridge: Some(bridge.clone()),
            internal: req.internal,
            attachable: req.attachable,
            enable_ipv6: req.enable_ipv6,
            subnet6: subnet6.map(|s| s.trunc()),
            gateway6: subnet6
                .map(|s| gateway6.unwrap_or_else(|| ipam::default_gateway6(&s.trunc()))),
            user_gateway6: gateway6.is_some(),
            icc,
            masquerade,
            mtu,
            options: req.options.clone(),
            labels: req.labels.clone(),
            predefined: false,
            dns: true,
        };
        {
            let mut st = self.lock();
            if st.networks.values().any(|n| n.name == req.name) {
                return Err(Error::Conflict(format!(
                    "network with name {} already exists",
                    req.name
                )));
            }
            if st
                .networks
                .values()
                .any(|n| n.bridge.as_deref() == Some(bridge.as_str()))
            {
                return Err(Error::Conflict(format!(
                    "bridge name {bridge} is already in use by another network"
                )));
            }
            st.networks.insert(id.clone(), rec.clone());
        }
        let made = async {
            self.put_network(&rec).await?;
            self.ensure_bridge(&rec).await?;
            drop(lock);
            self.sync_firewall().await
        }
        .await;
        if let Err(e) = made {
            self.lock().networks.remove(&id);
            let _ = self.delete_network(&id).await;
            let _ = blocking(move || {
                netlink::Netlink::open()?.delete_link_named(&bridge)?;
                Ok(())
            })
            .await;
            return Err(e);
        }
        Ok(rec)
    }

    /// Removes a network: refused for predefined ones and while containers are on it.
    pub async fn remove(self: &Arc<Self>, key: &str) -> Result<()> {
        let n = self.find(key)?;
        if n.predefined {
            return Err(Error::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        {
            let mut st = self.lock();
            if st.endpoints.iter().any(|e| e.network == n.id) {
                return Err(Error::Forbidden(format!(
                    "error while removing network: network {} id {} has active endpoints",
                    n.name, n.id
                )));
            }
            st.networks.remove(&n.id);
        }
        self.delete_network(&n.id).await?;
        if let Some(b) = n.bridge.clone() {
            blocking(move || {
                netlink::Netlink::open()?.delete_link_named(&b)?;
                Ok(())
            })
            .await?;
        }
        self.sync_firewall().await
    }

    /// Sets a container's network up before its task is created: a namespace kept at the
    /// returned path, one veth per network, addresses, routes, names, published ports.
    /// On failure nothing of it is left.
    pub async fn attach(self: &Arc<Self>, req: AttachRequest) -> Result<PathBuf> {
        let cid = req.container.clone();
        let mut nets = Vec::new();
        for e in &req.endpoints {
            let n = self.find(&e.network)?;
            if n.driver != Driver::Bridge {
                return Err(Error::Invalid(format!(
                    "container cannot be connected to network {} and to others at once",
                    n.name
                )));
            }
            nets.push((n, e.clone()));
        }
        // Allocation: addresses and ports, reserved in memory under the lock, written
        // to the store before any link exists.
        let mut held = Vec::new();
        let eps = {
            let mut st = self.lock();
            let mut eps: Vec<EndpointRecord> = Vec::new();
            for (i, (n, e)) in nets.iter().enumerate() {
                if st
                    .endpoints
                    .iter()
                    .chain(eps.iter())
                    .any(|x| x.container == cid && x.network == n.id)
                {
                    return Err(Error::Forbidden(format!(
                        "endpoint with name {} already exists in network {}",
                        req.name, n.name
                    )));
                }
                let ip = self.pick_address(&st, n, e.ipv4, &eps)?;
                let ip6 = self.pick_address6(&st, n, e.ipv6, &eps)?;
                let id = random_hex(64);
                let ports = if i == 0 && !req.ports.is_empty() {
                    let taken: Vec<PortMapping> =
                        st.endpoints.iter().flat_map(|x| x.ports.clone()).collect();
                    ports::allocate(&req.ports, &taken, &mut held).map_err(|source| {
                        Error::Port {
                            endpoint: req.name.clone(),
                            id: id.clone(),
                            source,
                        }
                    })?
                } else {
                    Vec::new()
                };
                eps.push(EndpointRecord {
                    id,
                    network: n.id.clone(),
                    container: cid.clone(),
                    name: req.name.clone(),
                    aliases: e.aliases.clone(),
                    ip,
                    mac: e.mac.unwrap_or_else(|| ipam::mac_for(ip)),
                    veth: format!("veth{}", random_hex(7)),
                    ifname: format!("eth{i}"),
                    ports,
                    static_ip: e.ipv4.is_some(),
                    ip6,
                    static_ip6: e.ipv6.is_some(),
                });
            }
            st.endpoints.extend(eps.iter().cloned());
            eps
        };
        let result = self.plumb(&cid, &nets, &eps, held).await;
        if let Err(e) = result {
            self.remove_endpoints(&eps).await;
            netns::remove(&self.netns_path(&cid));
            self.held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&cid);
            self.dns.stop(&cid);
            let _ = self.sync_firewall().await;
            return Err(e);
        }
        Ok(self.netns_path(&cid))
    }

    async fn plumb(
        self: &Arc<Self>,
        cid: &str,
        nets: &[(NetworkRecord, EndpointRequest)],
        eps: &[EndpointRecord],
        held: Vec<OwnedFd>,
    ) -> Result<()> {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cid.to_string(), held);
        for e in eps {
            self.put_endpoint(e).await?;
        }
        let links: Vec<Link> = nets
            .iter()
            .zip(eps)
            .map(|((n, _), e)| Link::of(n, e))
            .collect();
        let with_dns = nets.iter().any(|(n, _)| n.dns);
        let path = self.netns_path(cid);
        let began = std::time::Instant::now();
        let sockets = blocking(move || {
            Ok(netns::create(path, move |mut inside| {
                let lo = inside.ns.link_index("lo")?.unwrap_or(1);
                inside.ns.set_up(lo)?;
                for l in &links {
                    l.plumb(&mut inside)?;
                }
                if let Some(gw) = links.iter().find(|l| !l.internal).map(|l| l.gateway) {
                    inside.ns.add_default_route(gw)?;
                }
                // The IPv6 default route: through the first network with IPv6 that has
                // a way out, as the IPv4 one.
                if let Some((_, _, gw6)) = links.iter().filter(|l| !l.internal).find_map(|l| l.ip6)
                {
                    inside.ns.add_default_route6(gw6)?;
                }
                if with_dns {
                    return dns::Sockets::bind()
                        .map(Some)
                        .map_err(|e| netns::Error::File("127.0.0.11:53".into(), e));
                }
                Ok(None)
            })?)
        })
        .await?;
        tracing::debug!(
            container = %cid,
            links = eps.len(),
            namespace_ms = began.elapsed().as_secs_f64() * 1e3,
            "namespace made and configured"
        );
        if let Some(s) = sockets {
            self.dns
                .serve(cid, s)
                .map_err(|e| Error::Internal(format!("serving DNS: {e}")))?;
        }
        self.serve_dns(cid, eps).await?;
        self.sync_firewall().await
    }

    fn pick_address(
        &self,
        st: &State,
        n: &NetworkRecord,
        asked: Option<Ipv4Addr>,
        pending: &[EndpointRecord],
    ) -> Result<Ipv4Addr> {
        let subnet = n
            .subnet
            .ok_or_else(|| Error::Internal(format!("network {} has no subnet", n.name)))?;
        let mut used: BTreeSet<Ipv4Addr> = st
            .endpoints
            .iter()
            .chain(pending)
            .filter(|e| e.network == n.id)
            .map(|e| e.ip)
            .collect();
        used.extend(n.gateway);
        match asked {
            Some(ip) => {
                if n.predefined || !n.user_subnet {
                    return Err(Error::Invalid(
                        "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
                    ));
                }
                if !subnet.contains(&ip) || ip == subnet.network() || ip == subnet.broadcast() {
                    return Err(Error::Invalid(format!("no available IPv4 addresses on this network's address pools: {} ({}): requested address {ip} is out of range", n.name, n.id)));
                }
                if used.contains(&ip) {
                    return Err(Error::Forbidden(format!("Address already in use: {ip}")));
                }
                Ok(ip)
            }
            None => ipam::allocate(&subnet, &n.ip_range.unwrap_or(subnet), &used)
                .ok_or_else(|| Error::NoAddress(n.name.clone())),
        }
    }

    /// The IPv6 address of a new endpoint: none on a network without IPv6, the one
    /// asked for with `--ip6` (refused in dockerd's words when it cannot be had), else
    /// the lowest free one.
    fn pick_address6(
        &self,
        st: &State,
        n: &NetworkRecord,
        asked: Option<Ipv6Addr>,
        pending: &[EndpointRecord],
    ) -> Result<Option<Ipv6Addr>> {
        let subnet = n.subnet6.filter(|_| n.enable_ipv6);
        let Some(subnet) = subnet.filter(|_| asked.is_none() || !n.predefined) else {
            return match asked {
                // dockerd: an --ip6 on a network without a user-configured IPv6 subnet.
                Some(_) => Err(Error::Invalid(
                    "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
                )),
                None => Ok(None),
            };
        };
        let mut used: BTreeSet<Ipv6Addr> = st
            .endpoints
            .iter()
            .chain(pending)
            .filter(|e| e.network == n.id)
            .filter_map(|e| e.ip6)
            .collect();
        used.extend(n.gateway6);
        match asked {
            Some(ip) => {
                if !subnet.contains(&ip) || ip == subnet.network() {
                    return Err(Error::Invalid(format!(
                        "Invalid address {ip}: It does not belong to any of this network's subnets"
                    )));
                }
                if used.contains(&ip) {
                    return Err(Error::Forbidden(format!("Address already in use: {ip}")));
                }
                Ok(Some(ip))
            }
            None => ipam::allocate6(&subnet, &used)
                .map(Some)
                .ok_or_else(|| Error::NoAddress6(n.name.clone())),
        }
    }

    /// Connects a running container to one more network (eth1, eth2...).
    pub async fn connect_running(
        self: &Arc<Self>,
        cid: &str,
        name: &str,
        req: EndpointRequest,
    ) -> Result<()> {
        let n = self.find(&req.network)?;
        if n.driver != Driver::Bridge {
            return Err(Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        let ep = {
            let mut st = self.lock();
            if st
                .endpoints
                .iter()
                .any(|x| x.container == cid && x.network == n.id)
            {
                return Err(Error::Forbidden(format!(
                    "endpoint with name {name} already exists in network {}",
                    n.name
                )));
            }
            let ip = self.pick_address(&st, &n, req.ipv4, &[])?;
            let ip6 = self.pick_address6(&st, &n, req.ipv6, &[])?;
            let used: BTreeSet<String> = st
                .endpoints
                .iter()
                .filter(|x| x.container == cid)
                .map(|x| x.ifname.clone())
                .collect();
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|f| !used.contains(f))
                .unwrap_or_default();
            let ep = EndpointRecord {
                id: random_hex(64),
                network: n.id.clone(),
                container: cid.to_string(),
                name: name.to_string(),
                aliases: req.aliases.clone(),
                ip,
                mac: req.mac.unwrap_or_else(|| ipam::mac_for(ip)),
                veth: format!("veth{}", random_hex(7)),
                ifname,
                ports: Vec::new(),
                static_ip: req.ipv4.is_some(),
                ip6,
                static_ip6: req.ipv6.is_some(),
            };
            st.endpoints.push(ep.clone());
            ep
        };
        let done = async {
            self.put_endpoint(&ep).await?;
            let link = Link::of(&n, &ep);
            let path = self.netns_path(cid);
            blocking(move || {
                Ok(netns::enter(path, move |mut inside| {
                    link.plumb(&mut inside)
                })?)
            })
            .await?;
            self.serve_dns(cid, std::slice::from_ref(&ep)).await
        }
        .await;
        if let Err(e) = done {
            self.remove_endpoints(std::slice::from_ref(&ep)).await;
            return Err(e);
        }
        Ok(())
    }

    /// Disconnects a running container from a network.
    pub async fn disconnect_running(self: &Arc<Self>, cid: &str, network: &str) -> Result<bool> {
        let eps: Vec<EndpointRecord> = self
            .lock()
            .endpoints
            .iter()
            .filter(|e| e.container == cid && e.network == network)
            .cloned()
            .collect();
        if eps.is_empty() {
            return Ok(false);
        }
        self.remove_endpoints(&eps).await;
        self.sync_firewall().await?;
        Ok(true)
    }

    /// Tears a container's network down once its task is gone: veths, addresses,
    /// names, ports, rules, the namespace. Best effort; idempotent.
    pub async fn detach(self: &Arc<Self>, cid: &str) {
        let eps: Vec<EndpointRecord> = self
            .lock()
            .endpoints
            .iter()
            .filter(|e| e.container == cid)
            .cloned()
            .collect();
        self.dns.stop(cid);
        self.dns.unregister(cid, None);
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(cid);
        self.remove_endpoints(&eps).await;
        netns::remove(&self.netns_path(cid));
        if let Err(e) = self.sync_firewall().await {
            tracing::warn!(error = %e, "could not update the firewall");
        }
    }

    /// At a clean shutdown with nothing running: removes Berth's bridges and firewall
    /// rules from the host (they are made again at the next start).
    pub async fn shutdown(self: &Arc<Self>, anything_running: bool) {
        if anything_running {
            return;
        }
        let bridges: Vec<String> = self
            .lock()
            .networks
            .values()
            .filter_map(|n| n.bridge.clone())
            .collect();
        let _ = blocking(move || {
            let mut nl = netlink::Netlink::open()?;
            for b in bridges {
                let _ = nl.delete_link_named(&b);
            }
            Ok(())
        })
        .await;
        if let Some(fw) = &self.firewall {
            if let Err(e) = fw.remove() {
                tracing::warn!(error = %e, "could not remove the firewall rules");
            }
        }
    }

    /// Removes networks no container uses; returns their names.
    pub async fn prune(self: &Arc<Self>, keep: impl Fn(&NetworkRecord) -> bool) -> Vec<String> {
        let unused: Vec<NetworkRecord> = {
            let st = self.lock();
            st.networks
                .values()
                .filter(|n| {
                    !n.predefined && !keep(n) && !st.endpoints.iter().any(|e| e.network == n.id)
                })
                .cloned()
                .collect()
        };
        let mut out = Vec::new();
        for n in unused {
            if self.remove(&n.id).await.is_ok() {
                out.push(n.name);
            }
        }
        out
    }
}

/// One veth to plumb, with what it needs from its network.
struct Link {
    veth: String,
    ifname: String,
    mac: [u8; 6],
    ip: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
    /// The IPv6 address, its prefix length and the network's IPv6 gateway.
    ip6: Option<(Ipv6Addr, u8, Ipv6Addr)>,
    bridge: String,
    mtu: Option<u32>,
    internal: bool,
}

impl Link {
    fn of(n: &NetworkRecord, e: &EndpointRecord) -> Self {
        Self {
            veth: e.veth.clone(),
            ifname: e.ifname.clone(),
            mac: e.mac,
            ip: e.ip,
            prefix: n.subnet.map(|s| s.prefix_len()).unwrap_or(16),
            gateway: n.gateway.unwrap_or(Ipv4Addr::UNSPECIFIED),
            ip6: e
                .ip6
                .zip(n.subnet6)
                .zip(n.gateway6)
                .map(|((ip, s), gw)| (ip, s.prefix_len(), gw)),
            bridge: n.bridge.clone().unwrap_or_default(),
            mtu: n.mtu,
            internal: n.internal,
        }
    }

    fn plumb(&self, inside: &mut netns::Inside<'_>) -> std::result::Result<(), netns::Error> {
        use std::os::fd::AsRawFd;
        let bridge = inside
            .host
            .link_index(&self.bridge)?
            .ok_or_else(|| netlink::Error {
                what: format!("find bridge {}", self.bridge),
                source: std::io::Error::from_raw_os_error(libc::ENODEV),
            })?;
        inside.host.create_veth(
            &self.veth,
            &self.ifname,
            inside.ns_file.as_raw_fd(),
            self.mac,
            self.mtu,
        )?;
        let host_end = inside
            .host
            .link_index(&self.veth)?
            .ok_or_else(|| netlink::Error {
                what: format!("find veth {}", self.veth),
                source: std::io::Error::from_raw_os_error(libc::ENODEV),
            })?;
        inside.host.set_master_up(host_end, bridge)?;
        // Hairpin: a container reaching its own published port through the host gets
        // the NATed frame back out of the port it came in by (dockerd does the same
        // without its userland proxy). sysfs shows the host's links whatever namespace
        // this thread is in.
        let hairpin = format!("/sys/class/net/{}/brport/hairpin_mode", self.veth);
        std::fs::write(&hairpin, "1").map_err(|e| netns::Error::File(hairpin.into(), e))?;
        let peer = inside
            .ns
            .link_index(&self.ifname)?
            .ok_or_else(|| netlink::Error {
                what: format!("find {} in the container", self.ifname),
                source: std::io::Error::from_raw_os_error(libc::ENODEV),
            })?;
        inside.ns.add_address(peer, self.ip, self.prefix)?;
        inside.ns.set_up(peer)?;
        if let Some((ip6, prefix6, _)) = self.ip6 {
            inside.ns.add_address6(peer, ip6, prefix6)?;
        }
        Ok(())
    }
}

/// Held while a subnet is picked and its bridge made, so that two berthd on one host
/// (parallel tests) never pick the same one: the second sees the first's route.
struct SubnetLock(#[allow(dead_code)] Option<nix::fcntl::Flock<std::fs::File>>);

impl SubnetLock {
    fn take() -> Self {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(Path::new("/run/lock/berth-subnets.lock"))
            .ok();
        Self(f.and_then(|f| nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).ok()))
    }
}

/// dockerd's rule for network names.
fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}
