//! Registry credentials: the `X-Registry-Auth` header, WWW-Authenticate challenges, and
//! a docker-style `config.json` of logins kept under the data root.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Credentials for one registry, as the Docker API carries them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password or token.
    #[serde(default)]
    pub password: String,
    /// `base64(user:password)`, as config.json stores it.
    #[serde(default)]
    pub auth: String,
    /// Registry the credentials are for.
    #[serde(default)]
    pub serveraddress: String,
}

impl Credentials {
    /// Decodes an `X-Registry-Auth` header (base64url JSON). Empty credentials are none.
    pub fn from_header(value: &str) -> Option<Self> {
        let engines = [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
            base64::engine::general_purpose::STANDARD,
        ];
        let json = engines.iter().find_map(|e| e.decode(value.trim()).ok())?;
        let creds: Credentials = serde_json::from_slice(&json).ok()?;
        creds.normalized()
    }

    /// Fills username/password from `auth` when only that is set; none if empty.
    pub fn normalized(mut self) -> Option<Self> {
        if self.username.is_empty() && !self.auth.is_empty() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&self.auth)
                .ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (u, p) = text.split_once(':')?;
            self.username = u.to_string();
            self.password = p.to_string();
        }
        (!self.username.is_empty()).then_some(self)
    }

    /// The `Basic` Authorization header value.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A WWW-Authenticate challenge from a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic auth.
    Basic,
    /// Token auth: get a token from `realm` for `service`.
    Bearer {
        /// Token server URL.
        realm: String,
        /// Service name to ask the token for.
        service: Option<String>,
    },
}

/// Parses a WWW-Authenticate header value.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    // key="value" pairs; values are quoted and may contain commas (scopes do).
    let mut rest = params;
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match key {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            _ => {}
        }
        rest = next;
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
    })
}

/// Errors of the login store.
#[derive(Debug, thiserror::Error)]
#[error("credentials store {path}: {source}")]
pub struct StoreError {
    path: PathBuf,
    source: std::io::Error,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, Credentials>,
}

/// Logins saved by `/auth`, in docker's `config.json` format (`{"auths": {host: {"auth":
/// base64(user:password)}}}`), used when a request carries no credentials.
#[derive(Debug, Clone)]
pub struct AuthStore {
    path: PathBuf,
}

impl AuthStore {
    /// A store at this file path.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    fn load(&self) -> ConfigFile {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Saved credentials for a registry host.
    pub fn get(&self, host: &str) -> Option<Credentials> {
        self.load().auths.remove(host).and_then(|c| c.normalized())
    }

    /// Saves credentials for a host (atomically, mode 0600).
    pub fn set(&self, host: &str, creds: &Credentials) -> Result<(), StoreError> {
        let err = |source| StoreError {
            path: self.path.clone(),
            source,
        };
        let mut cfg = self.load();
        let raw = format!("{}:{}", creds.username, creds.password);
        cfg.auths.insert(
            host.to_string(),
            Credentials {
                auth: base64::engine::general_purpose::STANDARD.encode(raw),
                ..Default::default()
            },
        );
        let bytes = serde_json::to_vec_pretty(&cfg).map_err(|e| err(e.into()))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
    }

    #[test]
    fn decodes_header_and_store_round_trips() {
        let json = r#"{"username":"u","password":"p","serveraddress":"h"}"#;
        let h = base64::engine::general_purpose::URL_SAFE.encode(json);
        let c = Credentials::from_header(&h).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        assert!(Credentials::from_header("e30=").is_none());
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(&dir.path().join("config.json"));
        store.set("h:1", &c).unwrap();
        let back = store.get("h:1").unwrap();
        assert_eq!((back.username.as_str(), back.password.as_str()), ("u", "p"));
    }
}
