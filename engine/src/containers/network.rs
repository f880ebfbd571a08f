//! The container side of networking: the network mode and endpoints checked at create,
//! the namespace set up before the supervisor's task (berthd makes and configures it,
//! the spec joins it by path), /etc/hosts, /etc/resolv.conf and /etc/hostname written
//! as dockerd writes them, NetworkSettings for inspect and ps, connect and disconnect,
//! and the teardown once a run's task is gone. The networking itself is in
//! `crate::networks`.

use super::container::Container;
use super::record::Record;
use super::{ContainerService, Error, Result};
use crate::networks::{self, ports, AttachRequest, EndpointRequest, NetworkService};
use berth_api::container::{HostConfig, NetworkMode, NetworkSettings, Port, PortBinding, PortMap};
use berth_api::events::{Actor, Message};
use berth_api::network::{EndpointIpamConfig, EndpointSettings, NetworkingConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A container's endpoints as its record keeps them: network name → what was asked.
pub type Endpoints = BTreeMap<String, EndpointSettings>;

/// How a container is networked, from HostConfig.NetworkMode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Loopback only (a namespace the runtime makes).
    None,
    /// The host's stack.
    Host,
    /// Another container's namespace.
    Container(String),
    /// Bridge networks (the default `bridge` or user-defined ones).
    Bridge(String),
}

impl Mode {
    /// Parses NetworkMode (empty and `default` are the default bridge).
    pub fn of(mode: &NetworkMode) -> Self {
        match mode.as_str() {
            "none" => Mode::None,
            "host" => Mode::Host,
            m => match m.strip_prefix("container:") {
                Some(c) => Mode::Container(c.to_string()),
                None if m.is_empty() || m == "default" => Mode::Bridge("bridge".into()),
                None => Mode::Bridge(m.to_string()),
            },
        }
    }
}

impl From<networks::Error> for Error {
    fn from(e: networks::Error) -> Self {
        use networks::Error as N;
        match e {
            N::NotFound(_) | N::Plugin(_) => Error::NotFound(e.to_string()),
            N::Invalid(_) => Error::Invalid(e.to_string()),
            N::Conflict(_) => Error::Conflict(e.to_string()),
            N::Forbidden(_) => Error::Forbidden(e.to_string()),
            _ => Error::Internal(e.to_string()),
        }
    }
}

/// The bindings of HostConfig.PortBindings, key by key.
fn bindings(hc: &HostConfig) -> impl Iterator<Item = (&String, &PortBinding)> {
    hc.port_bindings
        .iter()
        .flatten()
        .flat_map(|(k, list)| list.iter().flatten().map(move |b| (k, b)))
}

fn port_request(key: &str, b: &PortBinding) -> Result<ports::PortRequest> {
    ports::parse_binding(key, &b.host_ip, &b.host_port).map_err(|e| Error::Invalid(e.to_string()))
}

/// Checks NetworkMode, NetworkingConfig and PortBindings at create and fills the default
/// mode in; returns the endpoints to record: every network it is on, its NetworkMode's
/// included (connect and disconnect change them, as dockerd's NetworkSettings.Networks).
pub fn check_create(
    nets: Option<&NetworkService>,
    hc: &mut HostConfig,
    nc: Option<&NetworkingConfig>,
    mac: &str,
    container_exists: impl Fn(&str) -> bool,
) -> Result<Endpoints> {
    let given = hc.network_mode.as_str().to_string();
    let mode = Mode::of(&hc.network_mode);
    match &mode {
        Mode::None | Mode::Host => {}
        Mode::Container(c) => {
            if !container_exists(c) {
                return Err(Error::NotFound(format!("No such container: {c}")));
            }
        }
        Mode::Bridge(n) => {
            let defaulted = given.is_empty() || given == "default";
            let Some(nets) = nets else {
                return Err(Error::Invalid(
                    "this berthd has no networking: use --network none, host or container:NAME"
                        .into(),
                ));
            };
            match nets.find(n) {
                Ok(_) => {}
                // With `--bridge none` the default is no network, as dockerd's.
                Err(networks::Error::NotFound(_)) if defaulted && n == "bridge" => {
                    hc.network_mode = "none".into();
                    return Ok(Endpoints::new());
                }
                Err(e) => return Err(e.into()),
            }
            if given.is_empty() {
                hc.network_mode = "default".into();
            }
        }
    }
    for (key, b) in bindings(hc) {
        port_request(key, b)?;
    }
    check_mac(mac)?;
    let mut eps: Endpoints = nc
        .and_then(|n| n.endpoints_config.clone())
        .unwrap_or_default();
    if let Some(v) = eps.remove("default") {
        eps.insert("bridge".into(), v);
    }
    let Mode::Bridge(first) = mode else {
        return Ok(Endpoints::new());
    };
    let Some(nets) = nets else {
        return Ok(Endpoints::new());
    };
    for (name, cfg) in &eps {
        let n = nets.find(name)?;
        check_mac(&cfg.mac_address)?;
        check_ip6(&n, cfg)?;
        let Some(ip) = cfg
            .ipam_config
            .as_ref()
            .map(|c| c.ipv4_address.as_str())
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let ip = networks::ipam::parse_addr(ip).map_err(|e| Error::Invalid(e.to_string()))?;
        if n.predefined || !n.user_subnet {
            return Err(Error::Invalid(
                "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
            ));
        }
        if !n.subnet.is_some_and(|s| s.contains(&ip)) {
            return Err(Error::Invalid(format!(
                "no available IPv4 addresses on this network's address pools: {} ({}): requested address {ip} is out of range",
                n.name, n.id
            )));
        }
    }
    let id = nets.find(&first).map(|x| x.id).ok();
    if !eps.keys().any(|k| nets.find(k).ok().map(|x| x.id) == id) {
        eps.insert(first, EndpointSettings::default());
    }
    Ok(eps)
}

fn endpoint_request(network: &str, cfg: &EndpointSettings) -> EndpointRequest {
    EndpointRequest {
        network: network.to_string(),
        aliases: cfg.aliases.clone().unwrap_or_default(),
        ipv4: cfg
            .ipam_config
            .as_ref()
            .and_then(|c| c.ipv4_address.parse().ok()),
        ipv6: cfg
            .ipam_config
            .as_ref()
            .and_then(|c| c.ipv6_address.parse().ok()),
        mac: networks::ipam::parse_mac(&cfg.mac_address),
    }
}

/// An `--ip6` checked as dockerd checks it before anything is made: an IPv6 address,
/// on a network with a user-configured IPv6 subnet that contains it. (Whether it is
/// free is known only when the endpoint is made.)
fn check_ip6(n: &networks::NetworkRecord, cfg: &EndpointSettings) -> Result<()> {
    let Some(raw) = cfg
        .ipam_config
        .as_ref()
        .map(|c| c.ipv6_address.as_str())
        .filter(|s| !s.is_empty())
    else {
        return Ok(());
    };
    let ip = networks::ipam::parse_addr6(raw)
        .map_err(|_| Error::Invalid(format!("invalid IPv6 address: {raw}")))?;
    let Some(subnet) = n.subnet6.filter(|_| n.enable_ipv6 && !n.predefined) else {
        return Err(Error::Invalid(
            "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
        ));
    };
    if !subnet.contains(&ip) || ip == subnet.network() {
        return Err(Error::Invalid(format!(
            "Invalid address {ip}: It does not belong to any of this network's subnets"
        )));
    }
    Ok(())
}

/// A MAC address as given (`--mac-address`, an endpoint's MacAddress): dockerd takes
/// Go's `net.ParseMAC`, berthd six colon-separated bytes.
fn check_mac(raw: &str) -> Result<()> {
    if raw.is_empty() || networks::ipam::parse_mac(raw.trim()).is_some() {
        return Ok(());
    }
    Err(Error::Invalid(format!("invalid MAC address: {raw}")))
}

/// The published ports a record asks for: PortBindings, and with PublishAllPorts every
/// exposed port not bound otherwise (on an ephemeral host port).
fn port_requests(rec: &Record) -> Result<Vec<ports::PortRequest>> {
    let hc = &rec.host_config;
    let mut out = Vec::new();
    for (key, b) in bindings(hc) {
        out.push(port_request(key, b)?);
    }
    if hc.publish_all_ports {
        let bound = hc.port_bindings.clone().unwrap_or_default();
        for key in rec.config.exposed_ports.keys() {
            if !bound.contains_key(key) {
                out.push(port_request(key, &PortBinding::default())?);
            }
        }
    }
    Ok(out)
}

/// Sets a container's network up before its task: the namespace path for the spec
/// (None: the runtime makes one, or the host's with `host`). `other` finds a running
/// container's ID and PID by name (for `container:NAME`).
pub async fn attach(
    nets: Option<&Arc<NetworkService>>,
    rec: &Record,
    other: impl Fn(&str) -> Option<(String, u32)>,
) -> Result<Option<PathBuf>> {
    match Mode::of(&rec.host_config.network_mode) {
        Mode::None | Mode::Host => Ok(None),
        Mode::Container(c) => {
            let (id, pid) = other(&c).ok_or_else(|| {
                Error::Conflict(format!(
                    "cannot join network of a non running container: {c}"
                ))
            })?;
            Ok(Some(nets.and_then(|n| n.namespace_of(&id)).unwrap_or_else(
                || PathBuf::from(format!("/proc/{pid}/ns/net")),
            )))
        }
        Mode::Bridge(first) => {
            let Some(nets) = nets else {
                return Err(Error::Invalid(
                    "this berthd has no networking: use --network none, host or container:NAME"
                        .into(),
                ));
            };
            let first_id = nets.find(&first).ok().map(|n| n.id);
            // Its NetworkMode's network first (eth0, the published ports), then the
            // others it was connected to.
            let mut endpoints: Vec<EndpointRequest> = Vec::new();
            for (k, v) in &rec.endpoints {
                let mut req = endpoint_request(k, v);
                if nets.find(k).ok().map(|n| n.id) == first_id {
                    // Config.MacAddress (API < 1.44) is its NetworkMode's network's.
                    if req.mac.is_none() {
                        req.mac = networks::ipam::parse_mac(rec.config.mac_address.trim());
                    }
                    endpoints.insert(0, req);
                } else {
                    endpoints.push(req);
                }
            }
            if endpoints.is_empty() {
                // Disconnected from everything: loopback only, as dockerd.
                return Ok(None);
            }
            let path = nets
                .attach(AttachRequest {
                    container: rec.id.clone(),
                    name: rec.name.clone(),
                    endpoints,
                    ports: port_requests(rec)?,
                })
                .await?;
            Ok(Some(path))
        }
    }
}

const LOCAL_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The host's resolv.conf as its parts: nameservers, search domains, options.
fn parse_resolv(text: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut servers, mut search, mut options) = (Vec::new(), Vec::new(), Vec::new());
    for l in text.lines() {
        let mut w = l.split_whitespace();
        match w.next() {
            Some("nameserver") => servers.extend(w.next().map(String::from)),
            Some("search") | Some("domain") => search = w.map(String::from).collect(),
            Some("options") => options.extend(w.map(String::from)),
            _ => {}
        }
    }
    (servers, search, options)
}

/// /etc/hosts, /etc/hostname and /etc/resolv.conf of a container, as dockerd writes
/// them. Blocking (reads the host's files).
pub fn etc_files(nets: Option<&NetworkService>, rec: &Record) -> (String, String, String) {
    let hostname = rec.config.hostname.as_str();
    let domain = rec.config.domainname.as_str();
    let host_net = Mode::of(&rec.host_config.network_mode) == Mode::Host;
    let mut hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        LOCAL_HOSTS.to_string()
    };
    let eps = nets.map(|n| n.endpoints_of(&rec.id)).unwrap_or_default();
    let gateway = nets
        .and_then(|n| n.find("bridge").ok())
        .and_then(|n| n.gateway)
        .or_else(|| eps.first().and_then(|(n, _)| n.gateway));
    for h in rec.host_config.extra_hosts.iter().flatten() {
        if let Some((name, ip)) = h.split_once(':') {
            let ip = if ip == "host-gateway" {
                gateway.map(|g| g.to_string()).unwrap_or_default()
            } else {
                ip.to_string()
            };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    if let Some((_, e)) = eps.first() {
        let full = if domain.is_empty() {
            hostname.to_string()
        } else {
            format!("{hostname}.{domain} {hostname}")
        };
        hosts.push_str(&format!("{}\t{full}\n", e.ip));
        if let Some(ip6) = e.ip6 {
            hosts.push_str(&format!("{ip6}\t{full}\n"));
        }
    }
    let user_net = eps.iter().any(|(n, _)| n.dns);
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let (mut servers, mut search, mut options) = parse_resolv(&host_resolv);
    let hc = &rec.host_config;
    let given = |v: &Option<Vec<String>>| v.clone().filter(|v| !v.is_empty());
    if let Some(dns) = given(&hc.dns) {
        servers = dns;
    } else if let Some(n) = nets.filter(|n| !n.dns_servers().is_empty()) {
        servers = n.dns_servers().iter().map(|s| s.to_string()).collect();
    }
    if let Some(s) = given(&hc.dns_search) {
        search = s;
    }
    if let Some(o) = given(&hc.dns_options) {
        options = o;
    }
    let mut resolv = String::new();
    if !search.is_empty() {
        resolv.push_str(&format!("search {}\n", search.join(" ")));
    }
    if host_net {
        for s in &servers {
            resolv.push_str(&format!("nameserver {s}\n"));
        }
    } else if user_net {
        // The embedded server answers for the network and forwards the rest.
        resolv.push_str(&format!("nameserver {}\n", networks::dns::DNS_ADDR));
        options.retain(|o| !o.starts_with("ndots"));
        options.insert(0, "ndots:0".into());
    } else {
        // Loopback resolvers are unreachable from the container's own network.
        for s in servers
            .iter()
            .filter(|s| !(s.starts_with("127.") || *s == "::1"))
        {
            resolv.push_str(&format!("nameserver {s}\n"));
        }
    }
    if !options.is_empty() {
        resolv.push_str(&format!("options {}\n", options.join(" ")));
    }
    (hosts, format!("{hostname}\n"), resolv)
}

/// The `Ports` map of inspect (`"80/tcp": [{"HostIp", "HostPort"}]`, null when exposed
/// but not published).
fn ports_map(
    live: &[(networks::NetworkRecord, networks::EndpointRecord)],
    rec: &Record,
) -> PortMap {
    let mut m = PortMap::new();
    for k in rec.config.exposed_ports.keys() {
        m.insert(k.clone(), None);
    }
    for (_, e) in live {
        for p in &e.ports {
            let key = format!("{}/{}", p.container_port, p.proto.as_str());
            m.entry(key)
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p
                        .host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    host_port: p.host_port.to_string(),
                });
        }
    }
    m
}

/// One live endpoint as inspect and ps show it.
fn endpoint_view(
    n: &networks::NetworkRecord,
    ep: &networks::EndpointRecord,
    short_id: &str,
) -> EndpointSettings {
    let aliases = n.dns.then(|| {
        let mut a = ep.aliases.clone();
        a.push(short_id.to_string());
        a
    });
    EndpointSettings {
        ipam_config: (ep.static_ip || ep.static_ip6).then(|| EndpointIpamConfig {
            ipv4_address: if ep.static_ip {
                ep.ip.to_string()
            } else {
                String::new()
            },
            ipv6_address: ep
                .ip6
                .filter(|_| ep.static_ip6)
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
            ..Default::default()
        }),
        aliases,
        network_id: n.id.clone(),
        endpoint_id: ep.id.clone(),
        gateway: n.gateway.map(|g| g.to_string()).unwrap_or_default(),
        ip_address: ep.ip.to_string(),
        ip_prefix_len: n.subnet.map(|s| i64::from(s.prefix_len())).unwrap_or(0),
        mac_address: networks::ipam::format_mac(&ep.mac),
        // As dockerd: the IPv6 fields are filled only for an endpoint that has one.
        ipv6_gateway: ep
            .ip6
            .and(n.gateway6)
            .map(|g| g.to_string())
            .unwrap_or_default(),
        global_ipv6_address: ep.ip6.map(|ip| ip.to_string()).unwrap_or_default(),
        global_ipv6_prefix_len: ep
            .ip6
            .and(n.subnet6)
            .map(|s| i64::from(s.prefix_len()))
            .unwrap_or(0),
        ..Default::default()
    }
}

/// The network a stopped (or none/host) container is shown on, as dockerd keys it.
fn mode_key(mode: &NetworkMode) -> String {
    match mode.as_str() {
        "" | "default" => "bridge".into(),
        _ => mode.network_name().to_string(),
    }
}

/// NetworkSettings as `GET /containers/{id}/json` shows it.
pub fn settings(nets: Option<&NetworkService>, c: &Container) -> NetworkSettings {
    let rec = c.record();
    let running = c.running();
    let live = nets.map(|n| n.endpoints_of(&rec.id)).unwrap_or_default();
    let short = &rec.id[..12.min(rec.id.len())];
    let mut networks: BTreeMap<String, EndpointSettings> = live
        .iter()
        .map(|(n, ep)| (n.name.clone(), endpoint_view(n, ep, short)))
        .collect();
    if networks.is_empty() {
        // Stopped (or none/host/container:): the networks it is configured for, without
        // addresses.
        let names: Vec<String> = match Mode::of(&rec.host_config.network_mode) {
            Mode::Bridge(_) => rec.endpoints.keys().cloned().collect(),
            _ => vec![mode_key(&rec.host_config.network_mode)],
        };
        for name in names {
            let id = nets
                .and_then(|n| n.find(&name).ok())
                .map(|n| n.id)
                .unwrap_or_default();
            networks.insert(
                name,
                EndpointSettings {
                    network_id: id,
                    ..Default::default()
                },
            );
        }
    }
    let default = live.iter().find(|(n, _)| n.name == "bridge");
    let sandbox = nets
        .and_then(|n| n.namespace_of(&rec.id))
        .filter(|_| running);
    NetworkSettings {
        sandbox_id: if sandbox.is_some() {
            rec.id.clone()
        } else {
            String::new()
        },
        ports: Some(if running {
            ports_map(&live, &rec)
        } else {
            PortMap::new()
        }),
        sandbox_key: sandbox.map(|p| p.display().to_string()).unwrap_or_default(),
        endpoint_id: default.map(|(_, ep)| ep.id.clone()).unwrap_or_default(),
        gateway: default
            .and_then(|(n, _)| n.gateway)
            .map(|g| g.to_string())
            .unwrap_or_default(),
        ip_address: default.map(|(_, ep)| ep.ip.to_string()).unwrap_or_default(),
        ip_prefix_len: default
            .and_then(|(n, _)| n.subnet)
            .map(|s| i64::from(s.prefix_len()))
            .unwrap_or(0),
        mac_address: default
            .map(|(_, ep)| networks::ipam::format_mac(&ep.mac))
            .unwrap_or_default(),
        global_ipv6_address: default
            .and_then(|(_, ep)| ep.ip6)
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        global_ipv6_prefix_len: default
            .filter(|(_, ep)| ep.ip6.is_some())
            .and_then(|(n, _)| n.subnet6)
            .map(|s| i64::from(s.prefix_len()))
            .unwrap_or(0),
        ipv6_gateway: default
            .filter(|(_, ep)| ep.ip6.is_some())
            .and_then(|(n, _)| n.gateway6)
            .map(|g| g.to_string())
            .unwrap_or_default(),
        networks,
        ..Default::default()
    }
}

/// `Ports` and `NetworkSettings.Networks` as `GET /containers/json` lists them.
pub fn summary(
    nets: Option<&NetworkService>,
    rec: &Record,
) -> (Vec<Port>, BTreeMap<String, EndpointSettings>) {
    let live = nets.map(|n| n.endpoints_of(&rec.id)).unwrap_or_default();
    let mut ports = Vec::new();
    for (_, e) in &live {
        for p in &e.ports {
            ports.push(Port {
                ip: p
                    .host_ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                private_port: p.container_port,
                public_port: p.host_port,
                kind: p.proto.as_str().to_string(),
            });
        }
    }
    let short = &rec.id[..12.min(rec.id.len())];
    let mut networks: BTreeMap<String, EndpointSettings> = live
        .iter()
        .map(|(n, e)| {
            let mut v = endpoint_view(n, e, short);
            // The list has no aliases nor IPAM config, as dockerd's.
            v.aliases = None;
            v.ipam_config = None;
            (n.name.clone(), v)
        })
        .collect();
    if networks.is_empty() {
        networks.insert(
            mode_key(&rec.host_config.network_mode),
            EndpointSettings::default(),
        );
    }
    (ports, networks)
}

impl ContainerService {
    /// Networking, if this service has it.
    pub fn networks(&self) -> Option<&Arc<NetworkService>> {
        self.networks.as_ref()
    }

    /// A running container's ID and PID, by name or ID.
    fn running_pid(&self, name: &str) -> Option<(String, u32)> {
        let c = self.get(name).ok()?;
        let pid = c.read(|r| r.state.pid);
        (c.running() && pid > 0).then(|| (c.id.clone(), pid))
    }

    /// Sets up the network of a run about to start (after removing what a crash of an
    /// earlier run left); the namespace path its spec joins.
    pub(crate) async fn attach_network(&self, rec: &Record) -> Result<Option<PathBuf>> {
        if let Some(n) = &self.networks {
            n.detach(&rec.id).await;
        }
        attach(self.networks.as_ref(), rec, |c| self.running_pid(c)).await
    }

    /// Tears down the network of a run whose task is gone (or never came): veths,
    /// addresses, ports, rules, names, the namespace. Idempotent.
    pub(crate) async fn detach_network(&self, id: &str) {
        if let Some(n) = &self.networks {
            n.detach(id).await;
        }
    }

    /// `POST /networks/{id}/connect`: on a running container the interface appears now;
    /// on a stopped one at its next start. Either way its record keeps the endpoint.
    pub async fn connect_network(
        &self,
        container: &str,
        network: &str,
        cfg: EndpointSettings,
    ) -> Result<()> {
        let nets = self.networks.as_ref().ok_or_else(no_networking)?;
        let c = self.get(container)?;
        let rec = c.record();
        let n = nets.find(network)?;
        let mode = Mode::of(&rec.host_config.network_mode);
        if n.driver != networks::Driver::Bridge || mode == Mode::Host {
            return Err(Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        if matches!(mode, Mode::None | Mode::Container(_)) {
            return Err(Error::Forbidden(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode".into(),
            ));
        }
        if rec
            .endpoints
            .keys()
            .any(|k| nets.find(k).is_ok_and(|x| x.id == n.id))
        {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        check_mac(&cfg.mac_address)?;
        check_ip6(&n, &cfg)?;
        if let Some(ip) = cfg
            .ipam_config
            .as_ref()
            .map(|c| c.ipv4_address.as_str())
            .filter(|s| !s.is_empty())
        {
            let ip = networks::ipam::parse_addr(ip).map_err(|e| Error::Invalid(e.to_string()))?;
            if n.predefined || !n.user_subnet {
                return Err(Error::Invalid(
                    "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
                ));
            }
            if !n.subnet.is_some_and(|s| s.contains(&ip)) {
                return Err(Error::Invalid(format!(
                    "no available IPv4 addresses on this network's address pools: {} ({}): requested address {ip} is out of range",
                    n.name, n.id
                )));
            }
        }
        let running = c.running();
        if running {
            nets.connect_running(&rec.id, &rec.name, endpoint_request(&n.name, &cfg))
                .await?;
        }
        c.update(|r| {
            r.endpoints.insert(n.name.clone(), cfg);
        });
        self.store.save(&c).await?;
        if running {
            // As dockerd: on a network with names, its resolv.conf now points at the
            // embedded server (rewritten in place: the bind mount shows the new text).
            let (this, rec) = (nets.clone(), c.record());
            let dir = self.dir(&rec.id);
            super::blocking(move || write_etc(Some(&this), &rec, &dir)).await?;
            self.emit_network("connect", &n, &c.id);
        }
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect_network(
        &self,
        container: &str,
        network: &str,
        force: bool,
    ) -> Result<()> {
        let nets = self.networks.as_ref().ok_or_else(no_networking)?;
        let n = nets.find(network)?;
        let c = match self.get(container) {
            Ok(c) => c,
            // As dockerd, force removes a gone container's endpoint too.
            Err(_) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let rec = c.record();
        if Mode::of(&rec.host_config.network_mode) == Mode::Host
            || n.driver != networks::Driver::Bridge
        {
            return Err(Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        let key = rec
            .endpoints
            .keys()
            .find(|k| nets.find(k).is_ok_and(|x| x.id == n.id))
            .cloned();
        let live = c.running() && nets.disconnect_running(&rec.id, &n.id).await?;
        if key.is_none() && !live {
            return Err(Error::Forbidden(format!(
                "container {} is not connected to network {}",
                rec.id, n.name
            )));
        }
        if let Some(k) = &key {
            c.update(|r| {
                r.endpoints.remove(k);
            });
        }
        self.store.save(&c).await?;
        self.emit_network("disconnect", &n, &rec.id);
        Ok(())
    }

    fn emit_network(&self, action: &str, n: &networks::NetworkRecord, container: &str) {
        let now = chrono::Utc::now();
        self.events.publish(Message {
            kind: "network".into(),
            action: action.into(),
            actor: Actor {
                id: n.id.clone(),
                attributes: BTreeMap::from([
                    ("container".to_string(), container.to_string()),
                    ("name".to_string(), n.name.clone()),
                    ("type".to_string(), n.driver.as_str().to_string()),
                ]),
            },
            scope: "local".into(),
            time: now.timestamp(),
            time_nano: now.timestamp_nanos_opt().unwrap_or(0),
            ..Default::default()
        });
    }
}

fn no_networking() -> Error {
    Error::Invalid("this berthd has no networking".into())
}

/// Writes hostname, hosts and resolv.conf into a container's directory. Blocking.
pub(crate) fn write_etc(
    nets: Option<&Arc<NetworkService>>,
    rec: &Record,
    dir: &std::path::Path,
) -> Result<()> {
    let (hosts, hostname, resolv) = etc_files(nets.map(|n| n.as_ref()), rec);
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text)
            .map_err(|e| Error::Internal(format!("writing {name}: {e}")))
    };
    write("hostname", hostname)?;
    write("hosts", hosts)?;
    write("resolv.conf", resolv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(Mode::of(&"".into()), Mode::Bridge("bridge".into()));
        assert_eq!(Mode::of(&"default".into()), Mode::Bridge("bridge".into()));
        assert_eq!(Mode::of(&"net1".into()), Mode::Bridge("net1".into()));
        assert_eq!(Mode::of(&"none".into()), Mode::None);
        assert_eq!(Mode::of(&"host".into()), Mode::Host);
        assert_eq!(
            Mode::of(&"container:web".into()),
            Mode::Container("web".into())
        );
        assert_eq!(mode_key(&"default".into()), "bridge");
        assert_eq!(mode_key(&"container:web".into()), "container");
    }

    #[test]
    fn resolv_parts() {
        let (s, d, o) = parse_resolv(
            "# x\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch a.example b.example\noptions edns0 ndots:2\n",
        );
        assert_eq!(s, ["127.0.0.53", "10.0.0.2"]);
        assert_eq!(d, ["a.example", "b.example"]);
        assert_eq!(o, ["edns0", "ndots:2"]);
    }

    #[test]
    fn without_networking_bridge_is_refused_and_none_passes() {
        let mut hc = HostConfig::default();
        let e = check_create(None, &mut hc, None, "", |_| true).unwrap_err();
        assert!(e.to_string().contains("no networking"), "{e}");
        let mut hc = HostConfig {
            network_mode: "none".into(),
            ..Default::default()
        };
        assert!(check_create(None, &mut hc, None, "", |_| true)
            .unwrap()
            .is_empty());
        let mut hc = HostConfig {
            network_mode: "container:gone".into(),
            ..Default::default()
        };
        let e = check_create(None, &mut hc, None, "", |_| false).unwrap_err();
        assert_eq!(e.to_string(), "No such container: gone");
        let mut hc = HostConfig {
            network_mode: "none".into(),
            ..Default::default()
        };
        let e = check_create(None, &mut hc, None, "02:42:zz", |_| true).unwrap_err();
        assert_eq!(e.to_string(), "invalid MAC address: 02:42:zz");
    }
}
