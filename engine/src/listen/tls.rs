//! TLS on berthd's tcp:// listeners (rustls with the ring provider): the server
//! configuration from dockerd's flags and files, and a listener that completes each
//! handshake on its own task so that a slow or hostile client never holds up others.

use super::os_text;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once per listener; more wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 128;

/// What Go's HTTP server (so dockerd) answers a plain HTTP request on a TLS port.
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// How dockerd's flags turn TLS on: `--tlsverify` (any value) implies `--tls`, and once
/// TLS is on clients must show a certificate unless `--tlsverify=false` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsMode {
    /// TLS on tcp:// listeners.
    pub enabled: bool,
    /// Clients must present a certificate signed by the CA.
    pub verify_clients: bool,
    /// A TLS flag was given at all (`--tls=false` included): plain TCP on a public
    /// address is then the user's explicit choice.
    pub explicit: bool,
}

impl TlsMode {
    /// From `--tls` and `--tlsverify` as given (None: not on the command line).
    pub fn from_flags(tls: Option<bool>, tlsverify: Option<bool>) -> Self {
        let tls = if tlsverify.is_some() { Some(true) } else { tls };
        let verify = tlsverify.or(tls);
        let enabled = tls == Some(true);
        TlsMode {
            enabled,
            verify_clients: enabled && verify != Some(false),
            explicit: tls.is_some(),
        }
    }
}

/// The files TLS is made of.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// CA whose signature client certificates need.
    pub ca: PathBuf,
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// Why the TLS configuration cannot be made, in dockerd's words.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate or the key cannot be read.
    #[error("could not load X509 key pair (cert: {cert:?}, key: {key:?}): open {}: {}", .path.display(), os_text(.cause))]
    KeyPairRead {
        /// --tlscert.
        cert: PathBuf,
        /// --tlskey.
        key: PathBuf,
        /// The one that failed.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// They can be read but make no usable pair.
    #[error("error reading X509 key pair - make sure the key is not encrypted (cert: {cert:?}, key: {key:?}): {reason}")]
    KeyPair {
        /// --tlscert.
        cert: PathBuf,
        /// --tlskey.
        key: PathBuf,
        /// What is wrong with them.
        reason: String,
    },
    /// The CA file cannot be read.
    #[error("could not read CA certificate {path:?}: open {}: {}", .path.display(), os_text(.cause))]
    CaRead {
        /// --tlscacert.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The CA file holds no certificate rustls accepts.
    #[error("failed to append certificates from PEM file: {0:?}")]
    CaEmpty(PathBuf),
    /// rustls refused the CA as a client verifier's root.
    #[error("client certificate verifier for {path:?}: {reason}")]
    Verifier {
        /// --tlscacert.
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
}

fn read(path: &Path, files: &TlsFiles) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|cause| TlsError::KeyPairRead {
        cert: files.cert.clone(),
        key: files.key.clone(),
        path: path.to_path_buf(),
        cause,
    })
}

/// The rustls server configuration for these files: TLS 1.2 and 1.3 with ring's
/// algorithms, HTTP/1.1 offered by ALPN, and client certificates required and checked
/// against the CA alone when `verify_clients` (the CA is not read otherwise, as dockerd).
pub fn server_config(files: &TlsFiles, verify_clients: bool) -> Result<ServerConfig, TlsError> {
    let bad_pair = |reason: String| TlsError::KeyPair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason,
    };
    let cert_pem = read(&files.cert, files)?;
    let key_pem = read(&files.key, files)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pair(format!("certificate: {e}")))?;
    if chain.is_empty() {
        return Err(bad_pair(
            "tls: failed to find any PEM data in certificate input".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            bad_pair("tls: failed to find any PEM data in key input".into())
        }
        e => bad_pair(format!("key: {e}")),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad_pair(e.to_string()))?;
    let builder = if verify_clients {
        let pem = std::fs::read(&files.ca).map_err(|cause| TlsError::CaRead {
            path: files.ca.clone(),
            cause,
        })?;
        // Only this CA: the system's roots never vouch for a client (dockerd's
        // ExclusiveRootPools).
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            // A certificate webpki cannot use as a root is skipped, as Go skips it.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err(TlsError::CaEmpty(files.ca.clone()));
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Verifier {
                path: files.ca.clone(),
                reason: e.to_string(),
            })?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| bad_pair(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A TCP listener whose connections come out with TLS done. Handshakes run on their
/// own tasks (bounded in number and time); dropping the listener stops accepting.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp` with `config`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: wait, as axum's own loop does.
                        tracing::warn!(error = %e, "accepting a TCP connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Answers go out as several TLS records: without this, Nagle holds the
                // last one back until the client's delayed ACK (40 ms a request).
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(acceptor, stream));
                    match done.await {
                        Ok(Ok(Some(tls))) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Ok(None)) => {}
                        // Go's server logs these as "http: TLS handshake error from ...".
                        Ok(Err(e)) => tracing::info!(%peer, "TLS handshake error: {e}"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                    drop(slot);
                });
            }
        });
        Ok(Self {
            ready,
            local,
            accepting,
        })
    }
}

/// The TLS handshake, or None when the client spoke plain HTTP and got Go's answer.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
) -> std::io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    // A TLS connection starts with a handshake record (type 22); an HTTP request with
    // a method in capitals.
    if n == 1 && first[0] != 0x16 {
        let mut stream = stream;
        if first[0].is_ascii_uppercase() {
            stream.write_all(PLAIN_HTTP_ANSWER).await?;
            let _ = stream.shutdown().await;
            return Ok(None);
        }
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "first record does not look like a TLS handshake",
        ));
    }
    acceptor.accept(stream).await.map(Some)
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task is gone (only when dropped): no more connections.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_dockerd_flags() {
        let m = TlsMode::from_flags;
        // Nothing given: no TLS, and not explicitly so.
        assert_eq!(
            m(None, None),
            TlsMode {
                enabled: false,
                verify_clients: false,
                explicit: false
            }
        );
        // --tls alone verifies clients: dockerd sets TLSVerify from TLS.
        assert_eq!(
            m(Some(true), None),
            TlsMode {
                enabled: true,
                verify_clients: true,
                explicit: true
            }
        );
        assert_eq!(
            m(Some(true), Some(false)),
            TlsMode {
                enabled: true,
                verify_clients: false,
                explicit: true
            }
        );
        // --tlsverify=false still means TLS (any client), as in dockerd.
        assert_eq!(
            m(None, Some(false)),
            TlsMode {
                enabled: true,
                verify_clients: false,
                explicit: true
            }
        );
        assert_eq!(
            m(Some(false), Some(true)),
            TlsMode {
                enabled: true,
                verify_clients: true,
                explicit: true
            }
        );
        assert_eq!(
            m(Some(false), None),
            TlsMode {
                enabled: false,
                verify_clients: false,
                explicit: true
            }
        );
    }

    #[test]
    fn missing_files_are_named_in_dockerd_words() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        let e = server_config(&files, true).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "could not load X509 key pair (cert: {:?}, key: {:?}): open {}: no such file or directory",
                files.cert,
                files.key,
                files.cert.display()
            )
        );
        std::fs::write(&files.cert, "not pem").unwrap();
        std::fs::write(&files.key, "not pem").unwrap();
        let e = server_config(&files, true).unwrap_err().to_string();
        assert!(
            e.ends_with("tls: failed to find any PEM data in certificate input"),
            "{e}"
        );
    }
}
