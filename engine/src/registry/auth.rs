//! Registry credentials: the `X-Registry-Auth` header and WWW-Authenticate challenges.
//! As dockerd, berthd keeps no logins of its own: credentials come with each request
//! (the client keeps them), so a client's logout really ends its access.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

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
    fn decodes_header() {
        let json = r#"{"username":"u","password":"p","serveraddress":"h"}"#;
        let h = base64::engine::general_purpose::URL_SAFE.encode(json);
        let c = Credentials::from_header(&h).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        assert!(Credentials::from_header("e30=").is_none());
    }
}
