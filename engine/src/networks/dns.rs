//! The embedded DNS server at 127.0.0.11, as dockerd's: containers on user-defined
//! networks resolve each other by container name, network alias and short id, and other
//! names are forwarded to the host's resolvers.
//!
//! One server lives in berthd's own runtime; for each container it listens on a UDP and a
//! TCP socket bound to 127.0.0.11:53 inside that container's namespace (the sockets are
//! opened on a thread that has entered it, then served from here), so no process runs per
//! container and no NAT rule is needed. Forwarded queries leave from the host's namespace,
//! so a resolver on the host's loopback works as the host's own programs see it. Messages
//! are decoded and encoded with hickory-proto.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// Where the server listens inside each container.
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
/// Answers' TTL, as dockerd's.
const TTL: u32 = 600;
/// How long a forwarded query may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// One name-bearing member of a network.
#[derive(Debug, Clone)]
pub struct Member {
    /// The network's id.
    pub network: String,
    /// The container's id.
    pub container: String,
    /// Names it answers to, lower case.
    pub names: Vec<String>,
    /// Its address on that network.
    pub ip: Ipv4Addr,
    /// Its IPv6 address there, on a network with IPv6 (answered to AAAA queries).
    pub ip6: Option<Ipv6Addr>,
}

/// The sockets of one container's server, bound in its namespace.
pub struct Sockets {
    /// UDP 127.0.0.11:53.
    pub udp: std::net::UdpSocket,
    /// TCP 127.0.0.11:53.
    pub tcp: std::net::TcpListener,
}

impl Sockets {
    /// Binds them; must run on a thread inside the container's namespace, with `lo` up.
    pub fn bind() -> std::io::Result<Self> {
        let addr = SocketAddr::from((DNS_ADDR, 53));
        let udp = std::net::UdpSocket::bind(addr)?;
        let tcp = std::net::TcpListener::bind(addr)?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        Ok(Self { udp, tcp })
    }
}

/// The server: who is on which network, and the per-container listeners.
pub struct Dns {
    members: RwLock<Vec<Member>>,
    upstreams: Vec<SocketAddr>,
    servers: Mutex<HashMap<String, Vec<JoinHandle<()>>>>,
}

impl Dns {
    /// A server forwarding to `upstreams` (port 53 each).
    pub fn new(upstreams: Vec<Ipv4Addr>) -> Arc<Self> {
        Arc::new(Self {
            members: RwLock::new(Vec::new()),
            upstreams: upstreams
                .into_iter()
                .map(|ip| SocketAddr::from((ip, 53)))
                .collect(),
            servers: Mutex::new(HashMap::new()),
        })
    }

    /// Registers a container's names on a network.
    pub fn register(&self, m: Member) {
        let mut members = self.members.write().unwrap_or_else(|e| e.into_inner());
        members.retain(|x| !(x.network == m.network && x.container == m.container));
        members.push(m);
    }

    /// Removes a container's names from a network (or from all, with None).
    pub fn unregister(&self, container: &str, network: Option<&str>) {
        let mut members = self.members.write().unwrap_or_else(|e| e.into_inner());
        members.retain(|x| !(x.container == container && network.is_none_or(|n| n == x.network)));
    }

    /// The addresses `name` has for `asker`: members of the networks `asker` is on.
    /// Both families: A queries take the IPv4 ones, AAAA the IPv6 ones.
    pub fn lookup(&self, asker: &str, name: &str) -> Option<Vec<IpAddr>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let members = self.members.read().unwrap_or_else(|e| e.into_inner());
        let nets: Vec<&str> = members
            .iter()
            .filter(|m| m.container == asker)
            .map(|m| m.network.as_str())
            .collect();
        let ips: Vec<IpAddr> = members
            .iter()
            .filter(|m| nets.contains(&m.network.as_str()) && m.names.contains(&name))
            .flat_map(|m| std::iter::once(IpAddr::V4(m.ip)).chain(m.ip6.map(IpAddr::V6)))
            .collect();
        (!ips.is_empty()).then_some(ips)
    }

    /// Starts serving `container` on its sockets (replacing any earlier listeners).
    pub fn serve(self: &Arc<Self>, container: &str, sockets: Sockets) -> std::io::Result<()> {
        let udp = tokio::net::UdpSocket::from_std(sockets.udp)?;
        let tcp = tokio::net::TcpListener::from_std(sockets.tcp)?;
        let (me, cid) = (self.clone(), container.to_string());
        let u = tokio::spawn(async move {
            let udp = Arc::new(udp);
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                let (me, cid, udp, q) = (me.clone(), cid.clone(), udp.clone(), buf[..n].to_vec());
                tokio::spawn(async move {
                    if let Some(reply) = me.answer(&cid, &q).await {
                        let _ = udp.send_to(&reply, from).await;
                    }
                });
            }
        });
        let (me, cid) = (self.clone(), container.to_string());
        let t = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = tcp.accept().await else {
                    return;
                };
                let (me, cid) = (me.clone(), cid.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), async {
                        let len = conn.read_u16().await? as usize;
                        let mut q = vec![0u8; len];
                        conn.read_exact(&mut q).await?;
                        if let Some(reply) = me.answer(&cid, &q).await {
                            let len = u16::try_from(reply.len()).unwrap_or(u16::MAX);
                            conn.write_u16(len).await?;
                            conn.write_all(&reply[..len as usize]).await?;
                        }
                        Ok::<_, std::io::Error>(())
                    })
                    .await;
                });
            }
        });
        let old = self
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(container.to_string(), vec![u, t]);
        for h in old.into_iter().flatten() {
            h.abort();
        }
        Ok(())
    }

    /// Stops serving `container` (its sockets close).
    pub fn stop(&self, container: &str) {
        let old = self
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container);
        for h in old.into_iter().flatten() {
            h.abort();
        }
    }

    /// Whether a server runs for `container`.
    pub fn serving(&self, container: &str) -> bool {
        self.servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(container)
    }

    /// The reply to one query from `asker`: local names answered here, the rest forwarded.
    async fn answer(&self, asker: &str, query: &[u8]) -> Option<Vec<u8>> {
        let msg = Message::from_vec(query).ok()?;
        if msg.metadata.message_type != MessageType::Query {
            return None;
        }
        let q = msg.queries.first()?.clone();
        let mut reply = Message::response(msg.metadata.id, msg.metadata.op_code);
        reply.metadata.recursion_desired = msg.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.add_query(q.clone());
        if msg.metadata.op_code != OpCode::Query {
            reply.metadata.response_code = ResponseCode::NotImp;
            return reply.to_vec().ok();
        }
        if let Some(ips) = self.lookup(asker, &q.name().to_ascii()) {
            reply.metadata.authoritative = true;
            for ip in ips {
                let rdata = match (q.query_type(), ip) {
                    (RecordType::A, IpAddr::V4(v4)) => RData::A(A(v4)),
                    (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
                    _ => continue,
                };
                reply.add_answer(Record::from_rdata(q.name().clone(), TTL, rdata));
            }
            // Other types of a known name (and AAAA of one without IPv6): no data, never
            // forwarded (dockerd does the same).
            return reply.to_vec().ok();
        }
        match self.forward(query).await {
            Some(r) => Some(r),
            None => {
                reply.metadata.response_code = ResponseCode::ServFail;
                reply.to_vec().ok()
            }
        }
    }

    async fn forward(&self, query: &[u8]) -> Option<Vec<u8>> {
        for up in &self.upstreams {
            let Ok(sock) = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else {
                continue;
            };
            if sock.send_to(query, up).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; 4096];
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(FORWARD_TIMEOUT, sock.recv_from(&mut buf)).await
            {
                buf.truncate(n);
                return Some(buf);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;

    fn member(net: &str, cid: &str, names: &[&str], ip: &str) -> Member {
        Member {
            network: net.into(),
            container: cid.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ip: ip.parse().unwrap(),
            ip6: None,
        }
    }

    #[test]
    fn only_members_of_shared_networks_resolve() {
        let dns = Dns::new(vec![]);
        dns.register(member("n1", "a", &["web", "www"], "10.0.0.2"));
        dns.register(member("n1", "b", &["db"], "10.0.0.3"));
        dns.register(member("n2", "c", &["other"], "10.1.0.2"));
        let v4 = |s: &str| Some(vec![IpAddr::V4(s.parse().unwrap())]);
        assert_eq!(dns.lookup("b", "WEB."), v4("10.0.0.2"));
        assert_eq!(dns.lookup("b", "www"), v4("10.0.0.2"));
        assert_eq!(dns.lookup("b", "other"), None);
        assert_eq!(dns.lookup("c", "web"), None);
        dns.unregister("a", Some("n1"));
        assert_eq!(dns.lookup("b", "web"), None);
    }

    #[tokio::test]
    async fn answers_known_names_and_servfails_without_upstream() {
        let dns = Dns::new(vec![]);
        dns.register(member("n1", "a", &["web"], "10.0.0.2"));
        dns.register(member("n1", "b", &["db"], "10.0.0.3"));
        let ask = |name: &str, t: RecordType| {
            let mut m = Message::query();
            m.metadata.id = 7;
            m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
            m.to_vec().unwrap()
        };
        let r = Message::from_vec(&dns.answer("b", &ask("web.", RecordType::A)).await.unwrap())
            .unwrap();
        assert_eq!(r.metadata.id, 7);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.answers.len(), 1);
        let r = Message::from_vec(
            &dns.answer("b", &ask("web.", RecordType::AAAA))
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        // A member with IPv6 answers AAAA with it, and A with its IPv4 address only.
        let mut v6 = member("n1", "c", &["six"], "10.0.0.4");
        v6.ip6 = Some("fd00::4".parse().unwrap());
        dns.register(v6);
        let r = Message::from_vec(
            &dns.answer("b", &ask("six.", RecordType::AAAA))
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.answers.len(), 1);
        assert_eq!(
            r.answers[0].data,
            RData::AAAA(AAAA("fd00::4".parse().unwrap()))
        );
        let r = Message::from_vec(&dns.answer("b", &ask("six.", RecordType::A)).await.unwrap())
            .unwrap();
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].data, RData::A(A("10.0.0.4".parse().unwrap())));
        let r = Message::from_vec(
            &dns.answer("b", &ask("nowhere.", RecordType::A))
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        assert!(dns.answer("b", b"garbage").await.is_none());
    }
}
