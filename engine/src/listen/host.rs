//! `-H` values as dockerd reads them: `unix://PATH`, `tcp://HOST:PORT` with dockerd's
//! defaults for what is left out, or nothing at all for the default socket.

use std::fmt;
use std::path::PathBuf;

/// berthd's socket when no `-H` is given (dockerd's is /var/run/docker.sock).
pub const DEFAULT_UNIX_SOCKET: &str = "/run/berth/berth.sock";

/// The port of `tcp://HOST` without one, as dockerd's (IANA's "docker" port).
pub const DEFAULT_HTTP_PORT: u16 = 2375;

/// The port of the default host when TLS is on and no `-H` is given (IANA's
/// "docker-s").
pub const DEFAULT_TLS_HTTP_PORT: u16 = 2376;

/// The host of `tcp://:PORT`, as dockerd's.
const DEFAULT_HTTP_HOST: &str = "localhost";

/// One address berthd listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A unix socket at this path.
    Unix(PathBuf),
    /// A TCP port on a host name or IP address.
    Tcp {
        /// A name or an address literal (IPv6 without brackets).
        host: String,
        /// The port.
        port: u16,
    },
}

/// A `-H` value that names no address berthd can listen on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HostError {
    /// A scheme other than unix:// and tcp://.
    #[error("invalid bind address ({raw}): unsupported proto '{proto}'")]
    UnsupportedProto {
        /// The value given.
        raw: String,
        /// Its scheme.
        proto: String,
    },
    /// `unix://` followed by another scheme.
    #[error("invalid bind address ({0}): invalid unix address")]
    BadUnix(String),
    /// A tcp:// address with a path after it.
    #[error("invalid bind address ({0}): should not contain a path element")]
    Path(String),
    /// A tcp:// port that is not a number from 1 to 65535.
    #[error("invalid bind address ({raw}): invalid port: {port}")]
    Port {
        /// The value given.
        raw: String,
        /// The port part.
        port: String,
    },
}

impl Host {
    /// Reads a `-H` value as dockerd does: empty means the default (the TLS port on
    /// localhost when TLS is on, else the unix socket); `tcp://` fills in localhost and
    /// port 2375; a value without a scheme is a TCP address, but one that starts with
    /// `/` is a socket path (berthd has always taken those).
    pub fn parse(raw: &str, tls: bool) -> Result<Self, HostError> {
        let value = raw.trim();
        if value.is_empty() {
            return Ok(if tls {
                Host::Tcp {
                    host: DEFAULT_HTTP_HOST.into(),
                    port: DEFAULT_TLS_HTTP_PORT,
                }
            } else {
                Host::Unix(PathBuf::from(DEFAULT_UNIX_SOCKET))
            });
        }
        let (proto, addr) = match value.split_once("://") {
            Some((p, a)) => (p, a),
            None if value.starts_with('/') => ("unix", value),
            None => ("tcp", value),
        };
        match proto {
            "unix" => {
                if addr.contains("://") {
                    return Err(HostError::BadUnix(raw.into()));
                }
                let path = if addr.is_empty() {
                    DEFAULT_UNIX_SOCKET
                } else {
                    addr
                };
                Ok(Host::Unix(PathBuf::from(path)))
            }
            "tcp" => parse_tcp(raw, addr),
            other => Err(HostError::UnsupportedProto {
                raw: raw.into(),
                proto: other.into(),
            }),
        }
    }

    /// Whether this is a TCP address (where TLS applies).
    pub fn is_tcp(&self) -> bool {
        matches!(self, Host::Tcp { .. })
    }
}

fn parse_tcp(raw: &str, addr: &str) -> Result<Host, HostError> {
    if addr.contains('/') || addr.contains('?') || addr.contains('#') {
        return Err(HostError::Path(raw.into()));
    }
    // [v6]:port, [v6], host:port, host, :port
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| HostError::Port {
            raw: raw.into(),
            port: addr.into(),
        })?;
        match after {
            "" => (h, None),
            p => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => {
                    return Err(HostError::Port {
                        raw: raw.into(),
                        port: p.into(),
                    })
                }
            },
        }
    } else {
        match addr.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        }
    };
    let port = match port {
        None | Some("") => DEFAULT_HTTP_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 => n,
            _ => {
                return Err(HostError::Port {
                    raw: raw.into(),
                    port: p.into(),
                })
            }
        },
    };
    let host = if host.is_empty() {
        DEFAULT_HTTP_HOST
    } else {
        host
    };
    Ok(Host::Tcp {
        host: host.to_string(),
        port,
    })
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(p) => write!(f, "unix://{}", p.display()),
            Host::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Host::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Host {
        Host::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn defaults_follow_dockerd() {
        assert_eq!(
            Host::parse("", false).unwrap(),
            Host::Unix(DEFAULT_UNIX_SOCKET.into())
        );
        assert_eq!(Host::parse(" ", true).unwrap(), tcp("localhost", 2376));
        assert_eq!(Host::parse("tcp://", true).unwrap(), tcp("localhost", 2375));
        assert_eq!(
            Host::parse("tcp://:2376", false).unwrap(),
            tcp("localhost", 2376)
        );
        assert_eq!(
            Host::parse("tcp://0.0.0.0", false).unwrap(),
            tcp("0.0.0.0", 2375)
        );
        assert_eq!(
            Host::parse("127.0.0.1:9", false).unwrap(),
            tcp("127.0.0.1", 9)
        );
        assert_eq!(Host::parse("tcp://[::1]:7", false).unwrap(), tcp("::1", 7));
        assert_eq!(Host::parse("tcp://[::1]", false).unwrap(), tcp("::1", 2375));
        assert_eq!(
            Host::parse("unix://", false).unwrap(),
            Host::Unix(DEFAULT_UNIX_SOCKET.into())
        );
        assert_eq!(
            Host::parse("/tmp/b.sock", false).unwrap(),
            Host::Unix("/tmp/b.sock".into())
        );
    }

    #[test]
    fn bad_addresses_are_named() {
        assert_eq!(
            Host::parse("tcp://1.2.3.4:99999", false)
                .unwrap_err()
                .to_string(),
            "invalid bind address (tcp://1.2.3.4:99999): invalid port: 99999"
        );
        assert_eq!(
            Host::parse("tcp://1.2.3.4:0", false)
                .unwrap_err()
                .to_string(),
            "invalid bind address (tcp://1.2.3.4:0): invalid port: 0"
        );
        assert_eq!(
            Host::parse("tcp://1.2.3.4:5/x", false)
                .unwrap_err()
                .to_string(),
            "invalid bind address (tcp://1.2.3.4:5/x): should not contain a path element"
        );
        assert_eq!(
            Host::parse("ssh://h", false).unwrap_err().to_string(),
            "invalid bind address (ssh://h): unsupported proto 'ssh'"
        );
        assert!(Host::parse("unix://tcp://x", false).is_err());
    }

    #[test]
    fn display_is_a_host_value_again() {
        for h in ["tcp://127.0.0.1:5", "tcp://[::1]:5", "unix:///a/b.sock"] {
            assert_eq!(Host::parse(h, false).unwrap().to_string(), h);
        }
    }
}
