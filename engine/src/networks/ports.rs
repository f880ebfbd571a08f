//! Published ports: host ports chosen (from the ephemeral range when none is given) and
//! held by a bound socket for as long as they are published, so no other program (nor a
//! second container) can take them; traffic reaches the container through the firewall's
//! DNAT rules, before any socket is looked up. No userland proxy runs: 127.0.0.1 works
//! through `route_localnet` on Berth's bridges and a masquerade rule (see `firewall`).

use super::firewall::Proto;
use super::store::PortMapping;
use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

/// A port binding as asked for: `HostConfig.PortBindings` entries, one per (container
/// port, host binding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    /// Protocol.
    pub proto: Proto,
    /// The container's port.
    pub container_port: u16,
    /// Host address; None for all.
    pub host_ip: Option<Ipv4Addr>,
    /// Host ports to pick from (one port, a range, or None for an ephemeral one).
    pub host_ports: Option<(u16, u16)>,
}

/// A bad or unavailable port.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Not `80`, `80/tcp`, `53/udp`.
    #[error("invalid port specification: {0:?}")]
    Spec(String),
    /// A host port that is not a number or range in 1-65535.
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    /// A host address that is not IPv4 (IPv6 bindings are not published).
    #[error("invalid IP address: {0}")]
    HostIp(String),
    /// Held by another container.
    #[error("Bind for {0} failed: port is already allocated")]
    Allocated(String),
    /// Held by some other program.
    #[error("Error starting userland proxy: listen {proto}4 {addr}: bind: address already in use")]
    InUse {
        /// tcp or udp.
        proto: &'static str,
        /// host:port.
        addr: String,
    },
    /// Every port of the range is taken.
    #[error("Bind for {0} failed: port is already allocated")]
    Exhausted(String),
}

/// Parses a `PortBindings` key (`80/tcp`) and one of its bindings.
pub fn parse_binding(key: &str, host_ip: &str, host_port: &str) -> Result<PortRequest, Error> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = match proto {
        "tcp" | "" => Proto::Tcp,
        "udp" => Proto::Udp,
        "sctp" => Proto::Sctp,
        _ => return Err(Error::Spec(key.to_string())),
    };
    let container_port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Error::Spec(key.to_string()))?;
    let host_ip = match host_ip {
        "" | "0.0.0.0" => None,
        ip => Some(
            ip.parse::<Ipv4Addr>()
                .map_err(|_| Error::HostIp(ip.to_string()))?,
        ),
    };
    let host_ports = match host_port {
        "" | "0" => None,
        p => {
            let one = |s: &str| {
                s.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| Error::HostPort(p.to_string()))
            };
            let (lo, hi) = match p.split_once('-') {
                Some((a, b)) => (one(a)?, one(b)?),
                None => (one(p)?, one(p)?),
            };
            if lo > hi {
                return Err(Error::HostPort(p.to_string()));
            }
            Some((lo, hi))
        }
    };
    Ok(PortRequest {
        proto,
        container_port,
        host_ip,
        host_ports,
    })
}

/// The ephemeral range host ports come from when none is asked (as dockerd reads it).
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

fn show(ip: Option<Ipv4Addr>, port: u16) -> String {
    format!("{}:{port}", ip.unwrap_or(Ipv4Addr::UNSPECIFIED))
}

/// Holds a host port: a socket bound to it (TCP not listening: it accepts nothing, the
/// firewall sends the traffic on before it could).
fn hold(proto: Proto, ip: Option<Ipv4Addr>, port: u16) -> nix::Result<OwnedFd> {
    let ty = match proto {
        Proto::Udp => SockType::Datagram,
        _ => SockType::Stream,
    };
    let fd = socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)?;
    let addr = SockaddrIn::from(SocketAddrV4::new(ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port));
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    Ok(fd)
}

/// Whether two bindings collide (same protocol and port, and one address covers the other).
fn collides(a: &PortMapping, proto: Proto, ip: Option<Ipv4Addr>, port: u16) -> bool {
    a.proto == proto
        && a.host_port == port
        && (a.host_ip.is_none() || ip.is_none() || a.host_ip == ip)
}

/// Picks and holds the host ports for `reqs`, given those other containers hold. On
/// failure nothing stays held.
pub fn allocate(
    reqs: &[PortRequest],
    taken: &[PortMapping],
    held: &mut Vec<OwnedFd>,
) -> Result<Vec<PortMapping>, Error> {
    let mut out: Vec<PortMapping> = Vec::new();
    let mut mine = Vec::new();
    let (eph_lo, eph_hi) = ephemeral_range();
    for r in reqs {
        let is_taken = |port: u16, out: &[PortMapping]| {
            taken
                .iter()
                .chain(out.iter())
                .any(|m| collides(m, r.proto, r.host_ip, port))
        };
        let mapping = |host_port| PortMapping {
            proto: r.proto,
            container_port: r.container_port,
            host_ip: r.host_ip,
            host_port,
        };
        match r.host_ports {
            Some((lo, hi)) if lo == hi => {
                if is_taken(lo, &out) {
                    return Err(Error::Allocated(show(r.host_ip, lo)));
                }
                let fd = hold(r.proto, r.host_ip, lo).map_err(|_| Error::InUse {
                    proto: if r.proto == Proto::Udp { "udp" } else { "tcp" },
                    addr: show(r.host_ip, lo),
                })?;
                mine.push(fd);
                out.push(mapping(lo));
            }
            range => {
                let (lo, hi) = range.unwrap_or((eph_lo, eph_hi));
                let used: BTreeSet<u16> = (lo..=hi).filter(|p| is_taken(*p, &out)).collect();
                let mut got = None;
                for p in (lo..=hi).filter(|p| !used.contains(p)) {
                    if let Ok(fd) = hold(r.proto, r.host_ip, p) {
                        got = Some((p, fd));
                        break;
                    }
                }
                let (p, fd) = got.ok_or_else(|| Error::Exhausted(show(r.host_ip, lo)))?;
                mine.push(fd);
                out.push(mapping(p));
            }
        }
    }
    held.extend(mine);
    Ok(out)
}

/// Holds ports allocated before a restart again (their sockets died with the old berthd).
pub fn rehold(maps: &[PortMapping], held: &mut Vec<OwnedFd>) {
    for m in maps {
        match hold(m.proto, m.host_ip, m.host_port) {
            Ok(fd) => held.push(fd),
            Err(e) => {
                tracing::warn!(port = m.host_port, error = %e, "could not hold a published port again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_parse_as_docker_sends_them() {
        let r = parse_binding("80/tcp", "", "8080").unwrap();
        assert_eq!(
            (r.proto, r.container_port, r.host_ip, r.host_ports),
            (Proto::Tcp, 80, None, Some((8080, 8080)))
        );
        let r = parse_binding("53/udp", "127.0.0.1", "").unwrap();
        assert_eq!(
            (r.proto, r.host_ip, r.host_ports),
            (Proto::Udp, Some(Ipv4Addr::LOCALHOST), None)
        );
        assert_eq!(
            parse_binding("80", "", "9000-9010").unwrap().host_ports,
            Some((9000, 9010))
        );
        assert_eq!(
            parse_binding("80/tcp", "", "70000"),
            Err(Error::HostPort("70000".into()))
        );
        assert_eq!(
            parse_binding("80/tcp", "", "9-3"),
            Err(Error::HostPort("9-3".into()))
        );
        assert_eq!(
            parse_binding("0/tcp", "", ""),
            Err(Error::Spec("0/tcp".into()))
        );
        assert_eq!(
            parse_binding("80/icmp", "", ""),
            Err(Error::Spec("80/icmp".into()))
        );
        assert_eq!(
            parse_binding("80/tcp", "x", ""),
            Err(Error::HostIp("x".into()))
        );
    }

    #[test]
    fn a_held_port_is_refused_in_dockerds_words() {
        let taken = [PortMapping {
            proto: Proto::Tcp,
            container_port: 80,
            host_ip: None,
            host_port: 18080,
        }];
        let req = parse_binding("80/tcp", "127.0.0.1", "18080").unwrap();
        let err = allocate(&[req], &taken, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Bind for 127.0.0.1:18080 failed: port is already allocated"
        );
        // Same port, other protocol: fine. And the socket really holds it.
        let mut held = Vec::new();
        let req = parse_binding("80/udp", "127.0.0.1", "").unwrap();
        let got = allocate(&[req], &taken, &mut held).unwrap();
        assert_eq!(held.len(), 1);
        let port = got[0].host_port;
        assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_err());
        let again = parse_binding("80/udp", "127.0.0.1", &port.to_string()).unwrap();
        assert!(matches!(
            allocate(&[again], &[], &mut Vec::new()),
            Err(Error::InUse { .. })
        ));
        drop(held);
        assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok());
    }
}
