//! Where berthd is and how to reach it, as the docker CLI decides it: `-H` (else
//! `BERTH_HOST`, else `DOCKER_HOST`), and TLS from `--tls`, `--tlsverify`,
//! `--tlscacert`, `--tlscert`, `--tlskey`, `DOCKER_TLS`, `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH`.

use crate::error::{Error, Result};
use std::path::PathBuf;

/// Where berthd listens unless `-H`, `BERTH_HOST` or `DOCKER_HOST` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// The port of `tcp://HOST` without one (IANA's "docker").
const DEFAULT_HTTP_PORT: u16 = 2375;

/// The default host once TLS is on: `tcp://localhost:2376` (IANA's "docker-s").
const DEFAULT_TLS_HTTP_PORT: u16 = 2376;

/// The connection flags, docker's global options.
#[derive(Debug, Default, clap::Args)]
pub struct ConnectOptions {
    /// Daemon socket to connect to: unix:///path or tcp://HOST:PORT (also BERTH_HOST,
    /// then DOCKER_HOST).
    #[arg(short = 'H', long = "host", global = true, value_name = "HOST")]
    pub host: Vec<String>,
    /// Use TLS; implied by --tlsverify (also DOCKER_TLS).
    #[arg(long, global = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool, value_name = "BOOL")]
    pub tls: Option<bool>,
    /// Use TLS and verify the remote (also DOCKER_TLS_VERIFY).
    #[arg(long, global = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool, value_name = "BOOL")]
    pub tlsverify: Option<bool>,
    /// Trust certs signed only by this CA [default: $DOCKER_CERT_PATH/ca.pem, with
    /// DOCKER_CERT_PATH defaulting to $DOCKER_CONFIG, else ~/.docker].
    #[arg(long, global = true, value_name = "PATH")]
    pub tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file [default: $DOCKER_CERT_PATH/cert.pem].
    #[arg(long, global = true, value_name = "PATH")]
    pub tlscert: Option<PathBuf>,
    /// Path to TLS key file [default: $DOCKER_CERT_PATH/key.pem].
    #[arg(long, global = true, value_name = "PATH")]
    pub tlskey: Option<PathBuf>,
}

/// A boolean flag value as Go's strconv.ParseBool reads it (docker's flags are Go's).
fn parse_go_bool(raw: &str) -> std::result::Result<bool, String> {
    match raw {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "strconv.ParseBool: parsing {raw:?}: invalid syntax"
        )),
    }
}

/// berthd's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP port, with TLS or without.
    Tcp {
        /// A host name or an address (IPv6 without brackets).
        host: String,
        /// The port.
        port: u16,
        /// TLS, if on.
        tls: Option<TlsFiles>,
    },
}

/// TLS as the flags ask for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Check berthd's certificate against the CA (`--tlsverify`); else accept any.
    pub verify: bool,
    /// The CA file (read whenever TLS is on, as docker reads it).
    pub ca: PathBuf,
    /// The client certificate, if any.
    pub cert: Option<PathBuf>,
    /// Its key.
    pub key: Option<PathBuf>,
}

impl Endpoint {
    /// The address as docker writes it in messages: `unix:///path`, `tcp://host:port`.
    pub fn url(&self) -> String {
        match self {
            Endpoint::Unix(p) => format!("unix://{}", p.display()),
            Endpoint::Tcp { host, port, .. } => format!("tcp://{}", join_host_port(host, *port)),
        }
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl ConnectOptions {
    /// Where to connect, from the flags and the process environment.
    pub fn resolve(&self) -> Result<Endpoint> {
        self.resolve_with(&|k| std::env::var(k).ok())
    }

    /// As [`ConnectOptions::resolve`], with the environment given (for tests).
    pub fn resolve_with(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Endpoint> {
        let set = |k: &str| env(k).filter(|v| !v.is_empty());
        // As docker: the variables only switch on; --tlsverify given at all (even
        // =false) turns TLS on, without verification then.
        let tlsverify = self.tlsverify.unwrap_or(set("DOCKER_TLS_VERIFY").is_some());
        let tls = self.tls.unwrap_or(set("DOCKER_TLS").is_some())
            || self.tlsverify.is_some()
            || tlsverify;
        let cert_dir = set("DOCKER_CERT_PATH")
            .or_else(|| set("DOCKER_CONFIG"))
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                set("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/"))
                    .join(".docker")
            });
        let raw = match self.host.as_slice() {
            [] => set("BERTH_HOST").or_else(|| set("DOCKER_HOST")),
            [one] => Some(one.clone()),
            _ => return Err(Error::endpoint("Specify only one -H")),
        };
        let files = tls.then(|| {
            // A default client certificate or key that does not exist is left out; one
            // named on the command line must be there.
            let optional = |given: &Option<PathBuf>, name: &str| match given {
                Some(p) => Some(p.clone()),
                None => Some(cert_dir.join(name)).filter(|p| p.exists()),
            };
            TlsFiles {
                verify: tlsverify,
                ca: self
                    .tlscacert
                    .clone()
                    .unwrap_or_else(|| cert_dir.join("ca.pem")),
                cert: optional(&self.tlscert, "cert.pem"),
                key: optional(&self.tlskey, "key.pem"),
            }
        });
        parse_host(raw.as_deref().unwrap_or("").trim(), files)
    }
}

/// A host value as docker reads it: empty means the default (the TLS port on localhost
/// when TLS is on, else berthd's socket); no scheme means TCP, except a path starting
/// with `/`, which berth has always taken as a socket.
fn parse_host(value: &str, tls: Option<TlsFiles>) -> Result<Endpoint> {
    if value.is_empty() {
        return Ok(match tls {
            Some(files) => Endpoint::Tcp {
                host: "localhost".into(),
                port: DEFAULT_TLS_HTTP_PORT,
                tls: Some(files),
            },
            None => Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET)),
        });
    }
    let (proto, addr) = match value.split_once("://") {
        Some(pa) => pa,
        None if value.starts_with('/') => ("unix", value),
        None => ("tcp", value),
    };
    match proto {
        "unix" => {
            if addr.contains("://") {
                return Err(Error::endpoint(format!("invalid unix address: {addr}")));
            }
            let path = if addr.is_empty() {
                DEFAULT_SOCKET
            } else {
                addr
            };
            Ok(Endpoint::Unix(PathBuf::from(path)))
        }
        "tcp" => {
            let bad_port = |p: &str| {
                Error::endpoint(format!(
                    "parse \"tcp://{addr}\": invalid port \":{p}\" after host"
                ))
            };
            // A path after the address is dropped, as the docker client keeps it only
            // as an API prefix berthd does not use.
            let hostport = addr.split(['/', '?', '#']).next().unwrap_or("");
            let (host, port) = match hostport.strip_prefix('[') {
                Some(rest) => {
                    let (h, after) = rest.split_once(']').ok_or_else(|| bad_port(rest))?;
                    match after {
                        "" => (h, None),
                        a => (h, Some(a.strip_prefix(':').ok_or_else(|| bad_port(a))?)),
                    }
                }
                None => match hostport.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (hostport, None),
                },
            };
            let port = match port {
                None | Some("") => DEFAULT_HTTP_PORT,
                Some(p) => p.parse::<u16>().map_err(|_| bad_port(p))?,
            };
            Ok(Endpoint::Tcp {
                host: if host.is_empty() { "localhost" } else { host }.to_string(),
                port,
                tls,
            })
        }
        _ => Err(Error::endpoint(format!(
            "invalid bind address format: {value}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(opts: &ConnectOptions, env: &[(&str, &str)]) -> Result<Endpoint> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        opts.resolve_with(&|k| env.get(k).cloned())
    }

    fn opts(host: &[&str]) -> ConnectOptions {
        ConnectOptions {
            host: host.iter().map(|h| h.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn hosts_and_their_defaults() {
        let e = resolve(&opts(&[]), &[]).unwrap();
        assert_eq!(e, Endpoint::Unix(DEFAULT_SOCKET.into()));
        let e = resolve(
            &opts(&[]),
            &[
                ("DOCKER_HOST", "unix:///d.sock"),
                ("BERTH_HOST", "unix:///b.sock"),
            ],
        );
        assert_eq!(e.unwrap(), Endpoint::Unix("/b.sock".into()));
        let e = resolve(&opts(&["tcp://127.0.0.1"]), &[]).unwrap();
        assert_eq!(e.url(), "tcp://127.0.0.1:2375");
        let e = resolve(&opts(&["tcp://[::1]:9"]), &[]).unwrap();
        assert_eq!(e.url(), "tcp://[::1]:9");
        let e = resolve(&opts(&["10.0.0.1:7"]), &[]).unwrap();
        assert_eq!(e.url(), "tcp://10.0.0.1:7");
        assert_eq!(
            resolve(&opts(&["a", "b"]), &[]).unwrap_err().to_string(),
            "Failed to initialize: unable to resolve docker endpoint: Specify only one -H"
        );
        assert_eq!(
            resolve(&opts(&["http://127.0.0.1:1"]), &[]).unwrap_err().to_string(),
            "Failed to initialize: unable to resolve docker endpoint: invalid bind address format: http://127.0.0.1:1"
        );
        assert_eq!(
            resolve(&opts(&["tcp://127.0.0.1:abc"]), &[]).unwrap_err().to_string(),
            "Failed to initialize: unable to resolve docker endpoint: parse \"tcp://127.0.0.1:abc\": invalid port \":abc\" after host"
        );
    }

    #[test]
    fn tls_follows_docker_flags_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        // Only the CA is named by default: cert.pem and key.pem are missing here.
        let mut o = opts(&["tcp://127.0.0.1:5"]);
        o.tlsverify = Some(true);
        let Endpoint::Tcp { tls: Some(t), .. } = resolve(&o, &[("DOCKER_CERT_PATH", d)]).unwrap()
        else {
            panic!("TLS expected")
        };
        assert_eq!(
            t,
            TlsFiles {
                verify: true,
                ca: dir.path().join("ca.pem"),
                cert: None,
                key: None
            }
        );
        std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
        std::fs::write(dir.path().join("key.pem"), "x").unwrap();
        // DOCKER_TLS_VERIFY (any value) and DOCKER_CERT_PATH alone; default TLS host.
        let e = resolve(
            &opts(&[]),
            &[("DOCKER_TLS_VERIFY", "0"), ("DOCKER_CERT_PATH", d)],
        )
        .unwrap();
        assert_eq!(e.url(), "tcp://localhost:2376");
        let Endpoint::Tcp { tls: Some(t), .. } = e else {
            panic!("TLS expected")
        };
        assert!(t.verify);
        assert_eq!(t.cert, Some(dir.path().join("cert.pem")));
        // --tlsverify=false: TLS without verification, whatever the environment says.
        let mut o = opts(&["tcp://h:1"]);
        o.tlsverify = Some(false);
        let Endpoint::Tcp { tls: Some(t), .. } =
            resolve(&o, &[("DOCKER_TLS_VERIFY", "1")]).unwrap()
        else {
            panic!("TLS expected")
        };
        assert!(!t.verify);
        // DOCKER_CONFIG is the fallback for the files, then ~/.docker.
        let mut o = opts(&["tcp://h:1"]);
        o.tls = Some(true);
        let Endpoint::Tcp { tls: Some(t), .. } =
            resolve(&o, &[("DOCKER_CONFIG", "/c"), ("HOME", "/h")]).unwrap()
        else {
            panic!("TLS expected")
        };
        assert_eq!((t.verify, t.ca), (false, PathBuf::from("/c/ca.pem")));
        let Endpoint::Tcp { tls: Some(t), .. } = resolve(&o, &[("HOME", "/h")]).unwrap() else {
            panic!("TLS expected")
        };
        assert_eq!(t.ca, PathBuf::from("/h/.docker/ca.pem"));
        // --tls=false and no variables: plain TCP.
        o.tls = Some(false);
        assert!(matches!(
            resolve(&o, &[]).unwrap(),
            Endpoint::Tcp { tls: None, .. }
        ));
    }
}
