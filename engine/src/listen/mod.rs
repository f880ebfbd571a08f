//! Where berthd listens and how, as dockerd: `-H` addresses, TLS on tcp:// listeners
//! (`--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`), the unix sockets'
//! `-G` group, and the refusal to serve plain TCP on an address other than loopback
//! unless the user said so (`--tls=false`). Everything is checked and bound before
//! berthd makes anything else, so a bad flag leaves nothing behind.

mod host;
mod tls;
mod unix;

pub use host::{Host, HostError, DEFAULT_UNIX_SOCKET};
pub use tls::{server_config, TlsError, TlsFiles, TlsListener, TlsMode};

use crate::config::Config;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

/// What keeps berthd from listening as asked.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// A `-H` value names no address.
    #[error("{0}")]
    Host(HostError),
    /// The TLS files do not make a configuration.
    #[error("invalid TLS configuration: {0}")]
    Tls(TlsError),
    /// A listener cannot be made.
    #[error("failed to load listeners: {0}")]
    Load(LoadError),
}

// By hand rather than #[from]: a #[from] field is also the error's source, and berthd
// prints the whole chain, which would say the reason twice.
impl From<HostError> for ListenError {
    fn from(e: HostError) -> Self {
        Self::Host(e)
    }
}

impl From<TlsError> for ListenError {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

impl From<LoadError> for ListenError {
    fn from(e: LoadError) -> Self {
        Self::Load(e)
    }
}

/// Why one listener cannot be made (dockerd's words where it has them).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Plain TCP on an address other than loopback, without a TLS flag. dockerd 27
    /// warns with these words and delays its start; berthd refuses, as dockerd has
    /// announced it will.
    #[error("{host}: Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network. You can override this by explicitly specifying '--tls=false' or '--tlsverify=false'")]
    Insecure {
        /// The -H value.
        host: Host,
    },
    /// `-G` names no group.
    #[error("group {0} not found")]
    GroupNotFound(String),
    /// Something that is not a socket is where the socket should be.
    #[error("can't create unix socket {}: file exists and is not a socket", .0.display())]
    NotASocket(PathBuf),
    /// bind(2) of the unix socket failed.
    #[error("can't create unix socket {path}: listen unix {path}: bind: {}", os_text(.cause), path = .path.display())]
    UnixBind {
        /// The socket.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// Making its directory, owner or mode failed.
    #[error("can't create unix socket {}: {}", .path.display(), os_text(.cause))]
    UnixSocket {
        /// The socket.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// bind(2) of the TCP port failed.
    #[error("listen tcp {addr}: {}", os_text(.cause))]
    Tcp {
        /// host:port.
        addr: String,
        /// Why.
        cause: std::io::Error,
    },
}

/// An OS error as Go prints it ("no such file or directory"), which is how dockerd's
/// messages read; other errors as they are.
fn os_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let desc = nix::errno::Errno::from_raw(n).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}

/// The listeners of one berthd, bound, and the socket files to remove when it ends.
pub struct Listeners {
    bound: Vec<Bound>,
    sockets: SocketFiles,
    /// Each unix socket's group.
    groups: Vec<(PathBuf, nix::unistd::Gid)>,
}

enum Bound {
    /// Bound at its starting path, published at this one when served.
    Unix(tokio::net::UnixListener, PathBuf),
    Tcp(tokio::net::TcpListener),
    Tls(tokio::net::TcpListener, Arc<rustls::ServerConfig>),
}

/// Unix socket files berthd made; removed when this is dropped (at exit, or when
/// start-up fails after they were bound).
#[derive(Default)]
pub struct SocketFiles(Vec<PathBuf>);

impl Drop for SocketFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Listeners {
    /// Checks the flags, loads the TLS files and binds every `-H` address, as dockerd
    /// does before anything else.
    pub async fn bind(cfg: &Config) -> Result<Self, ListenError> {
        let mode = TlsMode::from_flags(cfg.tls, cfg.tlsverify);
        let mut hosts: Vec<Host> = Vec::new();
        for raw in cfg.listen_addresses() {
            let h = Host::parse(&raw, mode.enabled)?;
            if !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        let tls = if mode.enabled {
            let dir = Config::cert_dir();
            let files = TlsFiles {
                ca: cfg.tlscacert.clone().unwrap_or_else(|| dir.join("ca.pem")),
                cert: cfg.tlscert.clone().unwrap_or_else(|| dir.join("cert.pem")),
                key: cfg.tlskey.clone().unwrap_or_else(|| dir.join("key.pem")),
            };
            // Reading a few small files: not worth a blocking-pool hop at start-up.
            Some(Arc::new(server_config(&files, mode.verify_clients)?))
        } else {
            None
        };
        for h in hosts.iter().filter(|h| h.is_tcp()) {
            if !mode.verify_clients {
                tracing::warn!(host = %h, "Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.");
            }
            if !mode.explicit && !is_loopback(h).await {
                return Err(LoadError::Insecure { host: h.clone() }.into());
            }
        }
        let mut out = Listeners {
            bound: Vec::new(),
            sockets: SocketFiles::default(),
            groups: Vec::new(),
        };
        for h in &hosts {
            match h {
                Host::Unix(path) => {
                    let gid = unix::socket_gid(&cfg.group, path)?;
                    let std_listener = unix::bind(path, gid)?;
                    out.sockets.0.push(unix::starting_path(path));
                    out.groups.push((path.clone(), gid));
                    let l = tokio::net::UnixListener::from_std(std_listener).map_err(|cause| {
                        LoadError::UnixSocket {
                            path: path.clone(),
                            cause,
                        }
                    })?;
                    tracing::info!(socket = %path.display(), "API listening");
                    out.bound.push(Bound::Unix(l, path.clone()));
                }
                Host::Tcp { host, port } => {
                    let addr = match host.contains(':') {
                        true => format!("[{host}]:{port}"),
                        false => format!("{host}:{port}"),
                    };
                    let l = tokio::net::TcpListener::bind(&addr)
                        .await
                        .map_err(|cause| LoadError::Tcp {
                            addr: addr.clone(),
                            cause,
                        })?;
                    match &tls {
                        Some(config) => {
                            tracing::info!(%addr, client_certificates = mode.verify_clients, "API listening on TCP with TLS");
                            out.bound.push(Bound::Tls(l, config.clone()));
                        }
                        None => {
                            tracing::info!(%addr, "API listening on TCP without TLS");
                            out.bound.push(Bound::Tcp(l));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Lets the group of a socket that lies directly in `dir` (berthd's private exec
    /// root, where the default socket is) pass through it: group `gid`, mode 0710, so
    /// its members reach the socket but cannot list the directory. They gain nothing
    /// else: whoever can use the socket already commands berthd. A socket of berthd's
    /// own group leaves `dir` as it is.
    pub fn open_socket_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let own = nix::unistd::getgid();
        let dir_id = std::fs::canonicalize(dir)?;
        for (path, gid) in &self.groups {
            let parent = path.parent().map(std::fs::canonicalize).transpose()?;
            if *gid == own || parent.as_deref() != Some(dir_id.as_path()) {
                continue;
            }
            nix::unistd::chown(dir, None, Some(*gid))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710))?;
        }
        Ok(())
    }

    /// Serves `app` on every listener until `stop` turns true; each server is a task of
    /// the returned set. Unix sockets appear at their paths now; they go when the
    /// returned guard is dropped.
    pub fn serve<S>(
        self,
        app: S,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<(tokio::task::JoinSet<std::io::Result<()>>, SocketFiles)>
    where
        S: tower::Service<
                axum::extract::Request,
                Response = axum::response::Response,
                Error = Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send,
    {
        let mut servers = tokio::task::JoinSet::new();
        let mut sockets = self.sockets;
        for b in self.bound {
            let make = axum::ServiceExt::<axum::extract::Request>::into_make_service(app.clone());
            let mut stop = stop.clone();
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            match b {
                Bound::Unix(l, path) => {
                    servers.spawn(async move {
                        axum::serve(l, make).with_graceful_shutdown(shutdown).await
                    });
                    unix::publish(&path)?;
                    let starting = unix::starting_path(&path);
                    sockets.0.retain(|p| *p != starting);
                    sockets.0.push(path);
                }
                Bound::Tcp(l) => {
                    // No Nagle delay on answers written in pieces (see tls.rs).
                    let l = axum::serve::ListenerExt::tap_io(l, |s| {
                        let _ = s.set_nodelay(true);
                    });
                    servers.spawn(async move {
                        axum::serve(l, make).with_graceful_shutdown(shutdown).await
                    });
                }
                Bound::Tls(l, config) => {
                    let l = TlsListener::new(l, config)?;
                    servers.spawn(async move {
                        axum::serve(l, make).with_graceful_shutdown(shutdown).await
                    });
                }
            }
        }
        Ok((servers, sockets))
    }
}

/// Whether a TCP host is loopback, as dockerd decides it: the name `localhost`, a
/// loopback address, or a name whose first address is one. A name that does not
/// resolve is not.
async fn is_loopback(h: &Host) -> bool {
    let Host::Tcp { host, port } = h else {
        return true;
    };
    if host == "localhost" {
        return true;
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    match tokio::net::lookup_host((host.as_str(), *port)).await {
        Ok(mut addrs) => addrs.next().is_some_and(|a| a.ip().is_loopback()),
        Err(e) => {
            tracing::error!(%host, error = %e, "Error looking up specified host address");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_is_decided_as_dockerd_decides_it() {
        let tcp = |h: &str| Host::Tcp {
            host: h.into(),
            port: 2375,
        };
        assert!(is_loopback(&tcp("localhost")).await);
        assert!(is_loopback(&tcp("127.0.0.1")).await);
        assert!(is_loopback(&tcp("127.8.9.10")).await);
        assert!(is_loopback(&tcp("::1")).await);
        assert!(!is_loopback(&tcp("0.0.0.0")).await);
        assert!(!is_loopback(&tcp("::")).await);
        assert!(!is_loopback(&tcp("192.0.2.1")).await);
    }

    #[tokio::test]
    async fn plain_tcp_on_a_public_address_needs_an_explicit_flag() {
        use clap::Parser as _;
        let cfg = Config::parse_from(["berthd", "-H", "tcp://0.0.0.0:1"]);
        let e = Listeners::bind(&cfg).await.err().unwrap().to_string();
        assert_eq!(
            e,
            "failed to load listeners: tcp://0.0.0.0:1: Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network. You can override this by explicitly specifying '--tls=false' or '--tlsverify=false'"
        );
    }

    #[test]
    fn os_errors_read_as_go_prints_them() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_text(&e), "no such file or directory");
        let e = std::io::Error::from_raw_os_error(libc::EADDRINUSE);
        assert_eq!(os_text(&e), "address already in use");
    }
}
