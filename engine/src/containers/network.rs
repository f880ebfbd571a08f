//! The container side of networking: the network mode and endpoints checked at create,
//! the namespace set up between the supervisor's container record and its task (as
//! dockerd's libnetwork hook), /etc/hosts, /etc/resolv.conf and /etc/hostname written as
//! dockerd writes them, and NetworkSettings for inspect and ps. The networking itself is
//! in `crate::networks`.

use super::{Entry, Error, Record, Result};
use crate::networks::{self, ports, AttachRequest, EndpointRequest, NetworkService};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Parses NetworkMode.
    pub fn of(rec_mode: &str) -> Self {
        match rec_mode {
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

/// Checks NetworkMode, NetworkingConfig and PortBindings at create; fills the default
/// mode in. Returns the endpoints config to keep.
pub fn check_create(
    nets: &NetworkService,
    hc: &mut Value,
    body: &Value,
    find_container: impl Fn(&str) -> bool,
) -> Result<Value> {
    let mode = hc["NetworkMode"].as_str().unwrap_or("").to_string();
    match Mode::of(&mode) {
        Mode::None | Mode::Host => {}
        Mode::Container(c) => {
            if !find_container(&c) {
                return Err(Error::NotFound(format!("No such container: {c}")));
            }
        }
        Mode::Bridge(ref n) => {
            match nets.find(n) {
                Ok(_) => {}
                // With `--bridge none` the default is no network, as dockerd's.
                Err(networks::Error::NotFound(_))
                    if n == "bridge" && (mode.is_empty() || mode == "default") =>
                {
                    hc["NetworkMode"] = json!("none");
                    return Ok(Value::Null);
                }
                Err(e) => return Err(e.into()),
            }
            if mode.is_empty() {
                hc["NetworkMode"] = json!("default");
            }
        }
    }
    for (key, list) in hc["PortBindings"].as_object().cloned().unwrap_or_default() {
        for b in list.as_array().cloned().unwrap_or_default() {
            ports::parse_binding(
                &key,
                b["HostIp"].as_str().unwrap_or(""),
                b["HostPort"].as_str().unwrap_or(""),
            )
            .map_err(|e| Error::Invalid(e.to_string()))?;
        }
    }
    let mut eps = body["NetworkingConfig"]["EndpointsConfig"].clone();
    if let Some(map) = eps.as_object_mut() {
        if let Some(v) = map.remove("default") {
            map.insert("bridge".into(), v);
        }
    }
    if let Some(map) = eps.as_object() {
        if map.len() > 1 {
            return Err(Error::Invalid(
                "Container cannot be connected to network endpoints: only one network can be given at create (connect the others after)".into(),
            ));
        }
        for (name, cfg) in map {
            let n = nets.find(name)?;
            if let Some(ip) = cfg["IPAMConfig"]["IPv4Address"]
                .as_str()
                .filter(|s| !s.is_empty())
            {
                let ip = crate::networks::ipam::parse_addr(ip)
                    .map_err(|e| Error::Invalid(e.to_string()))?;
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
        }
    }
    // The record's endpoints are every network it is on, its NetworkMode's included
    // (connect and disconnect change them, as dockerd's NetworkSettings.Networks).
    if let Mode::Bridge(n) = Mode::of(hc["NetworkMode"].as_str().unwrap_or("")) {
        if !eps.is_object() {
            eps = json!({});
        }
        let id = nets.find(&n).map(|x| x.id).ok();
        let have = eps
            .as_object()
            .is_some_and(|m| m.keys().any(|k| nets.find(k).ok().map(|x| x.id) == id));
        if !have {
            eps[n.as_str()] = json!({});
        }
    }
    Ok(eps)
}

fn endpoint_request(network: &str, cfg: &Value) -> EndpointRequest {
    EndpointRequest {
        network: network.to_string(),
        aliases: cfg["Aliases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        ipv4: cfg["IPAMConfig"]["IPv4Address"]
            .as_str()
            .and_then(|s| s.parse().ok()),
    }
}

/// The published ports a record asks for: PortBindings, and with PublishAllPorts every
/// exposed port not bound otherwise (on an ephemeral host port).
fn port_requests(rec: &Record) -> Result<Vec<ports::PortRequest>> {
    let mut out = Vec::new();
    let bindings = rec.host_config["PortBindings"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (key, list) in &bindings {
        for b in list.as_array().cloned().unwrap_or_default() {
            out.push(
                ports::parse_binding(
                    key,
                    b["HostIp"].as_str().unwrap_or(""),
                    b["HostPort"].as_str().unwrap_or(""),
                )
                .map_err(|e| Error::Invalid(e.to_string()))?,
            );
        }
    }
    if rec.host_config["PublishAllPorts"]
        .as_bool()
        .unwrap_or(false)
    {
        for key in rec.config["ExposedPorts"]
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if !bindings.contains_key(&key) {
                out.push(
                    ports::parse_binding(&key, "", "")
                        .map_err(|e| Error::Invalid(e.to_string()))?,
                );
            }
        }
    }
    Ok(out)
}

/// Sets a container's network up before its task: the namespace path for the spec
/// (None: the runtime makes one, or the host's with `host`).
pub async fn attach(
    nets: &Arc<NetworkService>,
    rec: &Record,
    other: impl Fn(&str) -> Option<(String, u32)>,
) -> Result<Option<PathBuf>> {
    let mode = Mode::of(rec.host_config["NetworkMode"].as_str().unwrap_or(""));
    match mode {
        Mode::None | Mode::Host => Ok(None),
        Mode::Container(c) => {
            let (id, pid) = other(&c).ok_or_else(|| {
                Error::Conflict(format!(
                    "cannot join network of a non running container: {c}"
                ))
            })?;
            Ok(Some(nets.namespace_of(&id).unwrap_or_else(|| {
                PathBuf::from(format!("/proc/{pid}/ns/net"))
            })))
        }
        Mode::Bridge(first) => {
            let eps = rec.endpoints.as_object().cloned().unwrap_or_default();
            let first_id = nets.find(&first).ok().map(|n| n.id);
            // Its NetworkMode's network first (eth0, the published ports), then the
            // others it was connected to.
            let mut endpoints: Vec<EndpointRequest> = Vec::new();
            for (k, v) in &eps {
                let req = endpoint_request(k, v);
                if nets.find(k).ok().map(|n| n.id) == first_id {
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

/// /etc/hosts, /etc/hostname and /etc/resolv.conf of a container, as dockerd writes them.
pub fn etc_files(nets: &NetworkService, rec: &Record) -> (String, String, String) {
    let hostname = rec.config["Hostname"].as_str().unwrap_or("");
    let domain = rec.config["Domainname"].as_str().unwrap_or("");
    let mode = Mode::of(rec.host_config["NetworkMode"].as_str().unwrap_or(""));
    let host_net = mode == Mode::Host;
    let mut hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string()
    };
    let eps = nets.endpoints_of(&rec.id);
    let gateway = nets
        .find("bridge")
        .ok()
        .and_then(|n| n.gateway)
        .or_else(|| eps.first().and_then(|(n, _)| n.gateway));
    for h in rec.host_config["ExtraHosts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if let Some((name, ip)) = h.as_str().and_then(|s| s.split_once(':')) {
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
    }
    let user_net = eps.iter().any(|(n, _)| n.dns);
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    for l in host_resolv.lines() {
        let mut w = l.split_whitespace();
        match w.next() {
            Some("nameserver") => servers.extend(w.next().map(String::from)),
            Some("search") | Some("domain") => search = w.map(String::from).collect(),
            Some("options") => options.extend(w.map(String::from)),
            _ => {}
        }
    }
    let strs = |k: &str| -> Vec<String> {
        rec.host_config[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (dns, dns_search, dns_opt) = (strs("Dns"), strs("DnsSearch"), strs("DnsOptions"));
    if !dns.is_empty() {
        servers = dns;
    } else if !nets.dns_servers().is_empty() {
        servers = nets.dns_servers().iter().map(|s| s.to_string()).collect();
    }
    if !dns_search.is_empty() {
        search = dns_search;
    }
    if !dns_opt.is_empty() {
        options = dns_opt;
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
fn ports_map(nets: &NetworkService, rec: &Record) -> Value {
    let mut m = Map::new();
    for k in rec.config["ExposedPorts"]
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        m.insert(k, Value::Null);
    }
    for (_, e) in nets.endpoints_of(&rec.id) {
        for p in &e.ports {
            let key = format!("{}/{}", p.container_port, p.proto.as_str());
            let entry = m.entry(key).or_insert(json!([]));
            if !entry.is_array() {
                *entry = json!([]);
            }
            if let Some(a) = entry.as_array_mut() {
                a.push(json!({
                    "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                    "HostPort": p.host_port.to_string(),
                }));
            }
        }
    }
    Value::Object(m)
}

/// NetworkSettings as `GET /containers/{id}/json` shows it.
pub fn settings(nets: &NetworkService, e: &Entry) -> Value {
    let rec = e.record();
    let live = nets.endpoints_of(&rec.id);
    let mut networks = Map::new();
    let mode = rec.host_config["NetworkMode"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    for (n, ep) in &live {
        let aliases: Vec<String> = if n.dns {
            let mut a = ep.aliases.clone();
            a.push(rec.id[..12].to_string());
            a
        } else {
            Vec::new()
        };
        networks.insert(
            n.name.clone(),
            json!({
                "IPAMConfig": if ep.static_ip { json!({"IPv4Address": ep.ip.to_string()}) } else { Value::Null },
                "Links": null,
                "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
                "NetworkID": n.id,
                "EndpointID": ep.id,
                "Gateway": n.gateway.map(|g| g.to_string()).unwrap_or_default(),
                "IPAddress": ep.ip.to_string(),
                "IPPrefixLen": n.subnet.map(|s| s.prefix_len()).unwrap_or(0),
                "IPv6Gateway": "",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "MacAddress": networks::ipam::format_mac(&ep.mac),
                "DriverOpts": null,
            }),
        );
    }
    if networks.is_empty() {
        // Stopped (or none/host): the networks it is configured for, without addresses.
        let mut names: Vec<String> = rec
            .endpoints
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        if mode == "none" || mode == "host" {
            names = vec![mode.clone()];
        }
        for name in names {
            let id = nets.find(&name).map(|n| n.id).unwrap_or_default();
            networks.insert(
                name,
                json!({"IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": id, "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": null}),
            );
        }
    }
    let default = live.iter().find(|(n, _)| n.name == "bridge");
    let sandbox = nets.namespace_of(&rec.id).filter(|_| e.running());
    json!({
        "Bridge": "",
        "SandboxID": if sandbox.is_some() { rec.id.clone() } else { String::new() },
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": if e.running() { ports_map(nets, &rec) } else { json!({}) },
        "SandboxKey": sandbox.map(|p| p.display().to_string()).unwrap_or_default(),
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": default.map(|(_, ep)| ep.id.clone()).unwrap_or_default(),
        "Gateway": default.and_then(|(n, _)| n.gateway).map(|g| g.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": default.map(|(_, ep)| ep.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": default.and_then(|(n, _)| n.subnet).map(|s| s.prefix_len()).unwrap_or(0),
        "IPv6Gateway": "",
        "MacAddress": default.map(|(_, ep)| networks::ipam::format_mac(&ep.mac)).unwrap_or_default(),
        "Networks": networks,
    })
}

/// `Ports` and `NetworkSettings.Networks` as `GET /containers/json` lists them.
pub fn summary(nets: &NetworkService, rec: &Record) -> (Value, Value) {
    let live = nets.endpoints_of(&rec.id);
    let mut ports = Vec::new();
    for (_, e) in &live {
        for p in &e.ports {
            ports.push(json!({
                "IP": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                "PrivatePort": p.container_port,
                "PublicPort": p.host_port,
                "Type": p.proto.as_str(),
            }));
        }
    }
    let mut networks = Map::new();
    for (n, e) in &live {
        networks.insert(
            n.name.clone(),
            json!({"NetworkID": n.id, "EndpointID": e.id, "Gateway": n.gateway.map(|g| g.to_string()).unwrap_or_default(), "IPAddress": e.ip.to_string(), "IPPrefixLen": n.subnet.map(|s| s.prefix_len()).unwrap_or(0), "MacAddress": networks::ipam::format_mac(&e.mac)}),
        );
    }
    if networks.is_empty() {
        let mode = rec.host_config["NetworkMode"].as_str().unwrap_or("none");
        networks.insert(
            if mode == "default" {
                "bridge".into()
            } else {
                mode.to_string()
            },
            json!({}),
        );
    }
    (json!(ports), Value::Object(networks))
}

impl super::ContainerService {
    /// `POST /networks/{id}/connect`: on a running container the interface appears now;
    /// on a stopped one at its next start. Either way its record keeps the endpoint.
    pub async fn connect_network(&self, container: &str, network: &str, cfg: Value) -> Result<()> {
        let entry = self.get(container)?;
        let rec = entry.record();
        let n = self.networks.find(network)?;
        let mode = Mode::of(rec.host_config["NetworkMode"].as_str().unwrap_or(""));
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
        let configured = |r: &Record| {
            r.endpoints.as_object().is_some_and(|m| {
                m.keys()
                    .any(|k| self.networks.find(k).is_ok_and(|x| x.id == n.id))
            })
        };
        if configured(&rec) {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        if entry.running() {
            self.networks
                .connect_running(&rec.id, &rec.name, endpoint_request(&n.name, &cfg))
                .await?;
        }
        entry.update(|r| {
            if !r.endpoints.is_object() {
                r.endpoints = json!({});
            }
            r.endpoints[&n.name] = cfg;
        });
        self.save(&entry.record())?;
        if entry.running() {
            // As dockerd: on a network with names, its resolv.conf now points at the
            // embedded server (rewritten in place: the bind mount shows the new text).
            self.write_etc(&entry.record())?;
            self.emit_network("connect", &n, &rec.id);
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
        let n = self.networks.find(network)?;
        let entry = match self.get(container) {
            Ok(e) => e,
            // As dockerd, force removes a gone container's endpoint too.
            Err(_) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let rec = entry.record();
        let mode = Mode::of(rec.host_config["NetworkMode"].as_str().unwrap_or(""));
        if mode == Mode::Host || n.driver != networks::Driver::Bridge {
            return Err(Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        let key = rec.endpoints.as_object().and_then(|m| {
            m.keys()
                .find(|k| self.networks.find(k).is_ok_and(|x| x.id == n.id))
                .cloned()
        });
        let live = entry.running() && self.networks.disconnect_running(&rec.id, &n.id).await?;
        if key.is_none() && !live {
            return Err(Error::Forbidden(format!(
                "container {} is not connected to network {}",
                rec.id, n.name
            )));
        }
        entry.update(|r| {
            if let (Some(k), Some(m)) = (&key, r.endpoints.as_object_mut()) {
                m.remove(k);
            }
        });
        self.save(&entry.record())?;
        self.emit_network("disconnect", &n, &rec.id);
        Ok(())
    }

    fn emit_network(&self, action: &str, n: &networks::NetworkRecord, container: &str) {
        let ev = json!({
            "Type": "network",
            "Action": action,
            "Actor": {"ID": n.id, "Attributes": {"container": container, "name": n.name, "type": n.driver.as_str()}},
            "scope": "local",
            "time": chrono::Utc::now().timestamp(),
            "timeNano": chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
        });
        let _ = self.events.send(ev);
    }
}
