//! IP address management: subnets picked from address pools so that they overlap nothing
//! on the host, and container addresses allocated inside a network's subnet (or its
//! `--ip-range`), never twice. Pure logic: what is taken comes in as arguments, so the
//! callers decide where it comes from (the store, the host's routes).

use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A pool subnets are carved from, as dockerd's `--default-address-pool base=,size=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// The range the pool covers.
    pub base: Ipv4Net,
    /// Prefix length of each subnet taken from it.
    pub size: u8,
}

/// A malformed subnet, pool or address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Not CIDR notation.
    #[error("invalid CIDR address: {0}")]
    Cidr(String),
    /// Not an IPv4 address.
    #[error("invalid IP address: {0}")]
    Address(String),
    /// A `--default-address-pool` that is not `base=CIDR,size=N` with N no shorter than
    /// the base's prefix.
    #[error("invalid default address pool {0:?}: expected base=CIDR,size=N")]
    Pool(String),
}

/// dockerd 20.10's default pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<Pool> {
    vec![
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(172, 17, 0, 0), 16).expect("static prefix"),
            size: 16,
        },
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(172, 18, 0, 0), 15).expect("static prefix"),
            size: 16,
        },
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(172, 20, 0, 0), 14).expect("static prefix"),
            size: 16,
        },
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(172, 24, 0, 0), 14).expect("static prefix"),
            size: 16,
        },
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(172, 28, 0, 0), 14).expect("static prefix"),
            size: 16,
        },
        Pool {
            base: Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16).expect("static prefix"),
            size: 20,
        },
    ]
}

/// Parses `base=10.10.0.0/16,size=24` (dockerd's `--default-address-pool`).
pub fn parse_pool(raw: &str) -> Result<Pool, Error> {
    let bad = || Error::Pool(raw.to_string());
    let (mut base, mut size) = (None, None);
    for part in raw.split(',') {
        match part.split_once('=') {
            Some(("base", v)) => base = Some(parse_cidr(v).map_err(|_| bad())?),
            Some(("size", v)) => size = Some(v.parse::<u8>().map_err(|_| bad())?),
            _ => return Err(bad()),
        }
    }
    let (base, size) = (base.ok_or_else(bad)?, size.ok_or_else(bad)?);
    if size < base.prefix_len() || size > 30 {
        return Err(bad());
    }
    Ok(Pool {
        base: base.trunc(),
        size,
    })
}

/// Parses an IPv4 CIDR as dockerd does: the address may have host bits (`--bip
/// 10.1.2.1/24` names the gateway and its subnet).
pub fn parse_cidr(raw: &str) -> Result<Ipv4Net, Error> {
    raw.parse::<Ipv4Net>()
        .map_err(|_| Error::Cidr(raw.to_string()))
}

/// Parses an IPv4 address.
pub fn parse_addr(raw: &str) -> Result<Ipv4Addr, Error> {
    raw.parse::<Ipv4Addr>()
        .map_err(|_| Error::Address(raw.to_string()))
}

/// Whether two subnets share any address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first subnet of the pools that overlaps none of `taken`.
pub fn pick_subnet(pools: &[Pool], taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    pools.iter().find_map(|p| {
        p.base
            .subnets(p.size)
            .ok()?
            .find(|s| !taken.iter().any(|t| overlaps(s, t)))
    })
}

/// The gateway dockerd gives a subnet: its first host address.
pub fn default_gateway(subnet: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1))
}

/// The lowest free address of `range` (a sub-range of `subnet`, or the subnet itself)
/// that is neither the network, the broadcast, nor in `used`.
pub fn allocate(subnet: &Ipv4Net, range: &Ipv4Net, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    range
        .hosts()
        .filter(|a| subnet.contains(a) && *a != subnet.network() && *a != subnet.broadcast())
        .find(|a| !used.contains(a))
}

/// The MAC dockerd 20.10 derives from an address: 02:42 then the four address bytes, so
/// an address always gets the same MAC (no stale ARP entries after reuse).
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Parses an IPv6 CIDR (host bits allowed, as dockerd).
pub fn parse_cidr6(raw: &str) -> Result<Ipv6Net, Error> {
    raw.parse::<Ipv6Net>()
        .map_err(|_| Error::Cidr(raw.to_string()))
}

/// Parses an IPv6 address.
pub fn parse_addr6(raw: &str) -> Result<Ipv6Addr, Error> {
    raw.parse::<Ipv6Addr>()
        .map_err(|_| Error::Address(raw.to_string()))
}

/// Whether two IPv6 subnets share any address.
pub fn overlaps6(a: &Ipv6Net, b: &Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The IPv6 gateway dockerd gives a subnet: its first address after the network's.
pub fn default_gateway6(subnet: &Ipv6Net) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(subnet.network()).saturating_add(1))
}

/// How many IPv6 candidates `allocate6` looks at: a /64 has 2^64 addresses, and a
/// bridge never has more members than this, so the scan stays bounded.
const V6_SCAN: u128 = 1 << 20;

/// The lowest free IPv6 address of `subnet` that is not its network address (the
/// subnet-router anycast) nor in `used`; dockerd's default IPAM hands them out in order
/// too.
pub fn allocate6(subnet: &Ipv6Net, used: &BTreeSet<Ipv6Addr>) -> Option<Ipv6Addr> {
    let first = u128::from(subnet.network());
    let last = u128::from(subnet.broadcast());
    (1..=V6_SCAN)
        .map_while(|i| first.checked_add(i).filter(|a| *a <= last))
        .map(Ipv6Addr::from)
        .find(|a| !used.contains(a))
}

/// A MAC as `02:42:ac:11:00:02`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `02:42:ac:11:00:02`.
pub fn parse_mac(raw: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = raw
        .split(':')
        .map(|p| {
            (p.len() == 2)
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    parts.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn pools_skip_what_the_host_has() {
        let pools = default_pools();
        assert_eq!(pick_subnet(&pools, &[]), Some(net("172.17.0.0/16")));
        // A dockerd's docker0 and a route inside 172.18/16 push the pick further.
        let taken = [net("172.17.0.1/16").trunc(), net("172.18.5.0/24")];
        assert_eq!(pick_subnet(&pools, &taken), Some(net("172.19.0.0/16")));
        // A host route covering all the 172 ranges leaves the 192.168 pool.
        let taken = [net("172.16.0.0/12")];
        assert_eq!(pick_subnet(&pools, &taken), Some(net("192.168.0.0/20")));
        let one = [parse_pool("base=10.9.0.0/23,size=24").unwrap()];
        assert_eq!(
            pick_subnet(&one, &[net("10.9.0.0/24")]),
            Some(net("10.9.1.0/24"))
        );
        assert_eq!(pick_subnet(&one, &[net("10.0.0.0/8")]), None);
    }

    #[test]
    fn pool_flags_parse_as_dockerd() {
        assert_eq!(
            parse_pool("base=10.10.0.0/16,size=24").unwrap(),
            Pool {
                base: net("10.10.0.0/16"),
                size: 24
            }
        );
        for bad in [
            "base=10.10.0.0/16",
            "size=24",
            "base=x,size=24",
            "base=10.0.0.0/16,size=8",
            "a=b",
        ] {
            assert!(parse_pool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_are_lowest_free_and_never_reserved_ones() {
        let s = net("10.1.0.0/29");
        let mut used = BTreeSet::from([default_gateway(&s)]);
        assert_eq!(default_gateway(&s), parse_addr("10.1.0.1").unwrap());
        let mut got = Vec::new();
        while let Some(a) = allocate(&s, &s, &used) {
            used.insert(a);
            got.push(a.to_string());
        }
        assert_eq!(
            got,
            ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
        );
        // Freed addresses come back; a range restricts.
        used.remove(&parse_addr("10.1.0.4").unwrap());
        assert_eq!(
            allocate(&s, &s, &used),
            Some(parse_addr("10.1.0.4").unwrap())
        );
        let wide = net("10.2.0.0/16");
        let range = net("10.2.3.0/24");
        assert_eq!(
            allocate(&wide, &range, &BTreeSet::new()),
            Some(parse_addr("10.2.3.1").unwrap())
        );
    }

    #[test]
    fn ipv6_addresses_in_order_from_the_subnet() {
        let s: Ipv6Net = "fd00:be:1::/64".parse().unwrap();
        let gw = default_gateway6(&s);
        assert_eq!(gw, parse_addr6("fd00:be:1::1").unwrap());
        let mut used = BTreeSet::from([gw]);
        let a = allocate6(&s, &used).unwrap();
        assert_eq!(a.to_string(), "fd00:be:1::2");
        used.insert(a);
        assert_eq!(allocate6(&s, &used).unwrap().to_string(), "fd00:be:1::3");
        // A /127 has one host address after the network's; taken, nothing is left.
        let tiny: Ipv6Net = "fd00:be:2::/127".parse().unwrap();
        let used = BTreeSet::from([default_gateway6(&tiny)]);
        assert_eq!(allocate6(&tiny, &used), None);
        assert!(overlaps6(&s, &"fd00:be::/32".parse().unwrap()));
        assert!(!overlaps6(&s, &"fd00:be:2::/64".parse().unwrap()));
        assert!(parse_cidr6("fd00::/129").is_err());
        assert!(parse_addr6("10.0.0.1").is_err());
    }

    #[test]
    fn overlap_and_macs() {
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.3.0.0/16")));
        assert!(overlaps(&net("10.3.0.0/16"), &net("10.0.0.0/8")));
        assert!(!overlaps(&net("10.3.0.0/16"), &net("10.4.0.0/16")));
        let mac = mac_for(parse_addr("172.17.0.2").unwrap());
        assert_eq!(format_mac(&mac), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some(mac));
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("zz:42:ac:11:00:02"), None);
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_addr("10.0.0").is_err());
    }
}
