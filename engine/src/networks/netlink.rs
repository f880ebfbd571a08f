//! Links, addresses and routes through one rtnetlink socket, in process (no `ip`). The
//! socket is synchronous on purpose: it works in the network namespace it was opened in,
//! and the callers open it on a thread that has entered a container's namespace (see
//! `netns`), so one blocking request/ack loop is all it needs. Messages are built with
//! rtnetlink's builders over netlink-packet-route's types.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

/// A failed netlink request: what was asked, and the kernel's errno.
#[derive(Debug, thiserror::Error)]
#[error("netlink: {what}: {source}")]
pub struct Error {
    /// The request, as a short phrase ("add address 10.0.0.1/24 to br-x").
    pub what: String,
    /// The kernel's answer.
    #[source]
    pub source: std::io::Error,
}

impl Error {
    /// The errno, if the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

/// Result of netlink requests.
pub type Result<T> = std::result::Result<T, Error>;

fn err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error { what, source }
}

/// One rtnetlink socket, bound to the network namespace it was opened in.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl Netlink {
    /// Opens a socket in the calling thread's current network namespace.
    pub fn open() -> Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(err("open socket"))?;
        socket.bind_auto().map_err(err("bind socket"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(err("connect socket"))?;
        // Errors name the failing attribute (extended acks); harmless if unsupported.
        let _ = socket.set_ext_ack(true);
        Ok(Self { socket, seq: 0 })
    }

    /// Sends one request and collects the answers until the ack (or the dump's end).
    fn request(
        &mut self,
        what: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(err(what))?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(err(what))?;
            let mut offset = 0;
            while offset < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(|e| Error {
                        what: what.to_string(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number != self.seq {
                    // An answer to an earlier request we gave up on; not ours now.
                    offset += len.max(1);
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(_) => Err(Error {
                                what: what.to_string(),
                                source: e.to_io(),
                            }),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
            if flags & NLM_F_DUMP == 0 && flags & NLM_F_ACK == 0 {
                return Ok(out);
            }
        }
    }

    fn change(&mut self, what: &str, msg: RouteNetlinkMessage, create: bool) -> Result<()> {
        let flags = if create {
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        } else {
            NLM_F_ACK
        };
        self.request(what, msg, flags).map(|_| ())
    }

    /// The index of the link called `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let msg = LinkMessageBuilderExt::by_name(name);
        match self.request(
            &format!("look up link {name}"),
            RouteNetlinkMessage::GetLink(msg),
            NLM_F_ACK,
        ) {
            Ok(msgs) => Ok(msgs.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link's name and index.
    pub fn links(&mut self) -> Result<Vec<(String, u32)>> {
        let msgs = self.request(
            "list links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some((n.clone(), l.header.index)),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// Creates a bridge, down; the caller sets addresses then brings it up.
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<u32> {
        let mut b = LinkBridge::new(name);
        if let Some(mtu) = mtu {
            b = b.mtu(mtu);
        }
        self.change(
            &format!("create bridge {name}"),
            RouteNetlinkMessage::NewLink(b.build()),
            true,
        )?;
        self.link_index(name)?.ok_or_else(|| Error {
            what: format!("create bridge {name}"),
            source: std::io::Error::from_raw_os_error(libc::ENODEV),
        })
    }

    /// Creates a veth pair: `host` here, `peer` created directly in the namespace open
    /// as `peer_ns` (so it never shows up on the host), with its MAC and MTU.
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_ns: RawFd,
        peer_mac: [u8; 6],
        mtu: Option<u32>,
    ) -> Result<()> {
        let mut peer_msg = rtnetlink::LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .address(peer_mac.to_vec())
            .setns_by_fd(peer_ns);
        let mut v = LinkVeth::new(host, peer);
        if let Some(mtu) = mtu {
            peer_msg = peer_msg.mtu(mtu);
            v = v.mtu(mtu);
        }
        let v = v.set_info_data(netlink_packet_route::link::InfoData::Veth(
            netlink_packet_route::link::InfoVeth::Peer(peer_msg.build()),
        ));
        self.change(
            &format!("create veth {host}"),
            RouteNetlinkMessage::NewLink(v.build()),
            true,
        )
    }

    /// Brings a link up.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.change(
            &format!("bring link {index} up"),
            RouteNetlinkMessage::SetLink(msg),
            false,
        )
    }

    /// Attaches a link to a bridge and brings it up, in one request.
    pub fn set_master_up(&mut self, index: u32, bridge: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index)
            .controller(bridge)
            .up()
            .build();
        self.change(
            &format!("attach link {index} to bridge {bridge}"),
            RouteNetlinkMessage::SetLink(msg),
            false,
        )
    }

    /// Deletes a link (and, for a veth, its peer).
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.change(
            &format!("delete link {index}"),
            RouteNetlinkMessage::DelLink(msg),
            false,
        )
    }

    /// Deletes the link called `name` if it exists; true if it did.
    pub fn delete_link_named(&mut self, name: &str) -> Result<bool> {
        match self.link_index(name)? {
            Some(i) => match self.delete_link(i) {
                Ok(()) => Ok(true),
                Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
                Err(e) => Err(e),
            },
            None => Ok(false),
        }
    }

    /// Adds an IPv4 address to a link.
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        let msg = rtnetlink::AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(ip, prefix)
            .build();
        match self.change(
            &format!("add address {ip}/{prefix} to link {index}"),
            RouteNetlinkMessage::NewAddress(msg),
            true,
        ) {
            // Already there (a bridge berthd made before a restart): what we wanted.
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Adds an IPv6 address to a link, without duplicate address detection (as
    /// dockerd): the address is usable at once instead of tentative for a second or
    /// two, and on a bridge berthd owns nothing else may hold it.
    pub fn add_address6(&mut self, index: u32, ip: Ipv6Addr, prefix: u8) -> Result<()> {
        let mut msg = rtnetlink::AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(ip, prefix)
            .build();
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        match self.change(
            &format!("add address {ip}/{prefix} to link {index}"),
            RouteNetlinkMessage::NewAddress(msg),
            true,
        ) {
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Adds the IPv6 default route through `gateway`.
    pub fn add_default_route6(&mut self, gateway: Ipv6Addr) -> Result<()> {
        let msg = RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(gateway)
            .build();
        self.change(
            &format!("add default route via {gateway}"),
            RouteNetlinkMessage::NewRoute(msg),
            true,
        )
    }

    /// Every IPv4 address on the host with its prefix length and link index.
    pub fn addresses(&mut self) -> Result<Vec<(Ipv4Addr, u8, u32)>> {
        let mut req = AddressMessage::default();
        req.header.family = AddressFamily::Inet;
        let msgs = self.request(
            "list addresses",
            RouteNetlinkMessage::GetAddress(req),
            NLM_F_DUMP,
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Local(IpAddr::V4(ip))
                    | AddressAttribute::Address(IpAddr::V4(ip)) => {
                        Some((*ip, a.header.prefix_len, a.header.index))
                    }
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    /// Every IPv4 route destination of the main table (the default route excluded), as
    /// (network, prefix length).
    pub fn routes(&mut self) -> Result<Vec<(Ipv4Addr, u8)>> {
        let req = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let msgs = self.request(
            "list routes",
            RouteNetlinkMessage::GetRoute(req),
            NLM_F_DUMP,
        )?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) if r.header.destination_prefix_length > 0 => {
                    route_destination(&r).map(|d| (d, r.header.destination_prefix_length))
                }
                _ => None,
            })
            .collect())
    }

    /// Adds the default route through `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<()> {
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .build();
        self.change(
            &format!("add default route via {gateway}"),
            RouteNetlinkMessage::NewRoute(msg),
            true,
        )
    }
}

fn route_destination(r: &RouteMessage) -> Option<Ipv4Addr> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
        _ => None,
    })
}

/// A link message that names a link (for look-ups by name).
struct LinkMessageBuilderExt;

impl LinkMessageBuilderExt {
    fn by_name(name: &str) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.header.flags = LinkFlags::empty();
        msg
    }
}
