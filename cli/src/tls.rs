//! TLS to berthd's tcp:// listeners (rustls, ring provider): the client configuration
//! from docker's TLS files, and TLS failures told in the words of Go's crypto/tls, which
//! is what docker users (and their scripts) know.

use crate::endpoint::TlsFiles;
use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
};
use std::path::Path;
use std::sync::Arc;

/// Reads a file as docker reports a failure to: `open PATH: no such file or directory`.
fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::endpoint(format!(
            "open {}: {}",
            path.display(),
            crate::error::os_text(&e)
        ))
    })
}

/// The rustls client configuration for these files: the CA alone as roots (docker's
/// "Trust certs signed only by this CA"), or no check at all without --tlsverify; the
/// client certificate when both it and its key are there.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>> {
    // Read in docker's order, so the first missing file is the one named.
    let ca = read(&files.ca)?;
    let cert = files.cert.as_deref().map(read).transpose()?;
    let key = files.key.as_deref().map(read).transpose()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Init(format!("failed to retrieve context tls info: {e}")))?;
    // The CA must hold a certificate even when it is not used (--tls alone), as docker
    // checks it.
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca).flatten() {
        // A certificate webpki cannot use as a root is skipped, as Go skips it.
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        return Err(Error::Init(
            "failed to retrieve context tls info: ca.pem seems invalid".into(),
        ));
    }
    let builder = if files.verify {
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
    };
    let mut config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<std::result::Result<Vec<_>, _>>()
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    Error::Init(
                        "failed to retrieve context tls info: tls: failed to find any PEM data in certificate input"
                            .into(),
                    )
                })?;
            let key = PrivateKeyDer::from_pem_slice(&key)
                .map_err(|_| Error::Init("no valid private key found".into()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                let why = match e {
                    rustls::Error::InconsistentKeys(_) => {
                        "tls: private key does not match public key".to_string()
                    }
                    e => e.to_string(),
                };
                Error::Init(format!("failed to retrieve context tls info: {why}"))
            })?
        }
        // Docker uses a client certificate only when it has both halves.
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `--tls` without `--tlsverify`: any server certificate is accepted (Go's
/// InsecureSkipVerify), but the handshake's signatures are still checked, so the peer
/// must hold the key of the certificate it shows.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls error somewhere in an error's chain (an io::Error carries it inside, which
/// `source()` skips).
pub fn find_rustls_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

/// A rustls error as Go's crypto/tls words it (what docker prints).
pub fn go_words(e: &rustls::Error) -> String {
    match e {
        rustls::Error::AlertReceived(a) => format!("remote error: tls: {}", alert_text(*a)),
        rustls::Error::InvalidCertificate(c) => {
            format!("tls: failed to verify certificate: {}", x509_text(c))
        }
        // A plain HTTP server answers a ClientHello with "HTTP/1.x ...", which is no
        // TLS record type.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "http: server gave HTTP response to HTTPS client".into()
        }
        other => format!("tls: {other}"),
    }
}

fn x509_text(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => "x509: certificate signed by unknown authority".into(),
        CertificateError::NotValidForName => "x509: certificate is not valid for this host".into(),
        CertificateError::NotValidForNameContext { expected, .. } => {
            let expected = match expected {
                ServerName::DnsName(d) => d.as_ref().to_string(),
                ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
                other => format!("{other:?}"),
            };
            format!("x509: certificate is not valid for {expected}")
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "x509: certificate has expired or is not yet valid".into()
        }
        other => format!("x509: {other:?}"),
    }
}

/// Go's names of TLS alerts (crypto/tls/alert.go).
fn alert_text(a: AlertDescription) -> String {
    let s = match a {
        AlertDescription::CloseNotify => "close notify",
        AlertDescription::UnexpectedMessage => "unexpected message",
        AlertDescription::BadRecordMac => "bad record MAC",
        AlertDescription::RecordOverflow => "record overflow",
        AlertDescription::HandshakeFailure => "handshake failure",
        AlertDescription::BadCertificate => "bad certificate",
        AlertDescription::UnsupportedCertificate => "unsupported certificate",
        AlertDescription::CertificateRevoked => "revoked certificate",
        AlertDescription::CertificateExpired => "expired certificate",
        AlertDescription::CertificateUnknown => "unknown certificate",
        AlertDescription::IllegalParameter => "illegal parameter",
        AlertDescription::UnknownCA => "unknown certificate authority",
        AlertDescription::AccessDenied => "access denied",
        AlertDescription::DecodeError => "error decoding message",
        AlertDescription::DecryptError => "error decrypting message",
        AlertDescription::ProtocolVersion => "protocol version not supported",
        AlertDescription::InsufficientSecurity => "insufficient security level",
        AlertDescription::InternalError => "internal error",
        AlertDescription::InappropriateFallback => "inappropriate fallback",
        AlertDescription::UserCanceled => "user canceled",
        AlertDescription::NoRenegotiation => "no renegotiation",
        AlertDescription::MissingExtension => "missing extension",
        AlertDescription::UnsupportedExtension => "unsupported extension",
        AlertDescription::UnrecognisedName => "unrecognized name",
        AlertDescription::CertificateRequired => "certificate required",
        AlertDescription::NoApplicationProtocol => "no application protocol",
        other => return format!("alert({})", u8::from(other)),
    };
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_go_words_them() {
        assert_eq!(
            go_words(&rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired
            )),
            "remote error: tls: certificate required"
        );
        assert_eq!(
            go_words(&rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        );
        // Found inside an io::Error inside another error.
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::BadCertificate),
        );
        let found = find_rustls_error(&io).map(go_words);
        assert_eq!(found.as_deref(), Some("remote error: tls: bad certificate"));
    }

    #[test]
    fn missing_and_bad_files_are_named_as_docker_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = TlsFiles {
            verify: true,
            ca: dir.path().join("ca.pem"),
            cert: None,
            key: None,
        };
        assert_eq!(
            client_config(&files).unwrap_err().to_string(),
            format!(
                "Failed to initialize: unable to resolve docker endpoint: open {}: no such file or directory",
                files.ca.display()
            )
        );
        std::fs::write(&files.ca, "garbage").unwrap();
        assert_eq!(
            client_config(&files).unwrap_err().to_string(),
            "Failed to initialize: failed to retrieve context tls info: ca.pem seems invalid"
        );
        // Without verification too, as docker checks it anyway.
        files.verify = false;
        assert!(client_config(&files).is_err());
        files.cert = Some(dir.path().join("ca.pem"));
        files.key = Some(dir.path().join("nokey.pem"));
        assert!(client_config(&files)
            .unwrap_err()
            .to_string()
            .ends_with("nokey.pem: no such file or directory"));
    }
}
