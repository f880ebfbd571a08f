//! Registry client for the OCI distribution API: manifests, blobs, uploads, mounts,
//! tag lists, with bearer-token and basic auth. Loopback and `--insecure-registry` hosts
//! are tried over HTTPS without certificate checks, then plain HTTP, as dockerd does.
//! Registry mirrors (`--registry-mirror`) are tried before the registry they mirror,
//! as dockerd's mirrors of Docker Hub and containerd's `hosts.toml` hosts are.

pub mod auth;

use crate::content::{sha256_digest, Digest};
use auth::{parse_challenge, Challenge, Credentials};
use reqwest::{header, Method, RequestBuilder, Response, StatusCode};
use std::time::Duration;

/// Manifest media types this client accepts, in order of preference.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry could not be reached or the connection broke.
    #[error("{method} \"{url}\": {message}")]
    Transport {
        /// HTTP method.
        method: String,
        /// URL requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The manifest or blob does not exist.
    #[error("{what} not found: {detail}")]
    NotFound {
        /// What was asked for.
        what: String,
        /// The registry's words.
        detail: String,
    },
    /// Credentials are missing or wrong.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: registry answered {status}: {detail}")]
    Status {
        /// HTTP method.
        method: String,
        /// URL requested.
        url: String,
        /// Status received.
        status: StatusCode,
        /// The registry's words.
        detail: String,
    },
    /// The registry sent something that breaks the protocol.
    #[error("registry protocol error: {0}")]
    Protocol(String),
}

/// Result type of the registry client.
pub type Result<T> = std::result::Result<T, Error>;

/// The innermost cause of a transport error, as a short lower-case phrase.
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        msg = c.to_string();
        cur = c.source();
    }
    let msg = msg.split(" (os error").next().unwrap_or(&msg).to_string();
    if e.is_timeout() {
        format!("timeout: {msg}")
    } else {
        msg.to_lowercase()
    }
}

/// Reads a registry error body (`{"errors":[{"code","message"}]}`) into one line.
async fn error_detail(resp: Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Item>,
    }
    match serde_json::from_str::<Body>(&text) {
        Ok(b) if !b.errors.is_empty() => b
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code.to_lowercase().replace('_', " "), e.message))
            .collect::<Vec<_>>()
            .join(", "),
        _ => text.trim().chars().take(200).collect(),
    }
}

/// A registry mirror: pulls of `registry` try `url` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The registry mirrored (`docker.io`, `registry.k8s.io`, `host:port`).
    pub registry: String,
    /// The mirror's base URL (`https://mirror.example`, no trailing slash).
    pub url: String,
}

/// A bad `--registry-mirror`.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// Not `URL` or `REGISTRY=URL`.
    #[error("invalid --registry-mirror {0:?}: expected URL or REGISTRY=URL with an http(s) URL")]
    Syntax(String),
    /// Plain HTTP to a registry not marked insecure.
    #[error("registry mirror {0}: plain HTTP is only allowed for registries marked insecure (--insecure-registry, or loopback)")]
    PlainHttp(String),
}

impl Mirror {
    /// Parses `URL` (a mirror of Docker Hub, as dockerd's flag) or `REGISTRY=URL`.
    pub fn parse(arg: &str) -> std::result::Result<Self, MirrorError> {
        let bad = || MirrorError::Syntax(arg.to_string());
        let (registry, url) = match arg.split_once('=') {
            Some((r, u)) if !r.is_empty() && !r.contains('/') => (r.to_string(), u),
            Some(_) => return Err(bad()),
            None => (crate::images::reference::DEFAULT_DOMAIN.to_string(), arg),
        };
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            crate::images::reference::DEFAULT_DOMAIN.to_string()
        } else {
            registry
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() || rest.contains('?') || rest.contains('#') || rest.contains('@') {
            return Err(bad());
        }
        Ok(Self {
            registry,
            url: url.trim_end_matches('/').to_string(),
        })
    }

    fn host(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(&self.url);
        rest.split('/').next().unwrap_or(rest)
    }
}

/// The HTTP clients (connection pools), each built on first use: a daemon that never
/// pulls never pays for a TLS set-up and its root store, and its idle footprint is
/// smaller for it.
#[derive(Debug, Default)]
struct Clients {
    verified: std::sync::OnceLock<reqwest::Client>,
    /// For registries trusted without certificate checks (loopback, `--insecure-registry`).
    unverified: std::sync::OnceLock<reqwest::Client>,
}

impl Clients {
    /// The client that checks certificates (`verify`) or the one that does not.
    fn get(&self, verify: bool) -> Result<reqwest::Client> {
        let cell = if verify {
            &self.verified
        } else {
            &self.unverified
        };
        if let Some(c) = cell.get() {
            return Ok(c.clone());
        }
        let built = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("berthd/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(!verify)
            .build()
            .map_err(|e| Error::Protocol(format!("cannot build HTTP client: {e}")))?;
        // Two first uses at once build two; the first stored is kept by both.
        Ok(cell.get_or_init(|| built).clone())
    }
}

/// Connection pools and the daemon's registry settings.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    clients: std::sync::Arc<Clients>,
    insecure: Vec<String>,
    /// Mirrors, tried in order before the registry they mirror.
    mirrors: Vec<Mirror>,
    /// The endpoint that answered last time, per registry domain.
    chosen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

impl RegistryClient {
    /// A client; `insecure` lists hosts (`host` or `host:port`) reached over HTTPS without
    /// certificate checks or, failing that, plain HTTP. Loopback hosts are insecure too.
    pub fn new(insecure: Vec<String>) -> Self {
        Self {
            clients: Default::default(),
            insecure,
            mirrors: Vec::new(),
            chosen: Default::default(),
        }
    }

    /// The same client with these mirrors. A mirror reached over plain HTTP must be
    /// a registry marked insecure (loopback, or `--insecure-registry`).
    pub fn with_mirrors(mut self, mirrors: Vec<Mirror>) -> std::result::Result<Self, MirrorError> {
        for m in &mirrors {
            if m.url.starts_with("http://") && !self.is_insecure(m.host()) {
                return Err(MirrorError::PlainHttp(m.url.clone()));
            }
        }
        self.mirrors = mirrors;
        Ok(self)
    }

    /// True for hosts spoken to without TLS checks.
    pub fn is_insecure(&self, domain: &str) -> bool {
        let host = domain.rsplit_once(':').map(|(h, _)| h).unwrap_or(domain);
        let loopback = host == "localhost"
            || host.starts_with("127.")
            || host == "[::1]"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        loopback || self.insecure.iter().any(|i| i == domain || i == host)
    }

    /// Base URLs to try for a registry domain, in order (as dockerd: HTTPS first, then
    /// plain HTTP for insecure registries).
    pub fn endpoints(&self, domain: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .mirrors
            .iter()
            .filter(|m| m.registry == domain)
            .map(|m| m.url.clone())
            .collect();
        if domain == crate::images::reference::DEFAULT_DOMAIN {
            v.push("https://registry-1.docker.io".into());
            return v;
        }
        v.push(format!("https://{domain}"));
        if self.is_insecure(domain) {
            v.push(format!("http://{domain}"));
        }
        v
    }

    /// Picks the endpoint that answers `GET /v2/` (any HTTP status will do).
    async fn endpoint(&self, domain: &str, push: bool) -> String {
        let mut endpoints = self.endpoints(domain);
        if push {
            // Mirrors serve pulls only.
            endpoints.retain(|e| {
                !self
                    .mirrors
                    .iter()
                    .any(|m| m.registry == domain && &m.url == e)
            });
        }
        if endpoints.len() == 1 {
            return endpoints[0].clone();
        }
        let key = if push {
            format!("push:{domain}")
        } else {
            domain.to_string()
        };
        if let Some(b) = self.chosen.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return b;
        }
        // Without a client no endpoint can answer: the last one is tried below, and the
        // session reports why.
        let Ok(unverified) = self.clients.get(false) else {
            return endpoints[endpoints.len() - 1].clone();
        };
        for base in &endpoints {
            let probe = unverified
                .get(format!("{base}/v2/"))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            if probe.is_ok() {
                if let Ok(mut m) = self.chosen.lock() {
                    m.insert(key, base.clone());
                }
                return base.clone();
            }
        }
        // Nothing answers: the last one is tried, and its error is the one reported.
        endpoints[endpoints.len() - 1].clone()
    }

    /// A session on one repository; `push` asks for push rights as well as pull.
    pub async fn session(
        &self,
        domain: &str,
        repo: &str,
        creds: Option<Credentials>,
        push: bool,
    ) -> Result<Session> {
        let base = self.endpoint(domain, push).await;
        let host = base
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
            .unwrap_or(domain);
        let verify = !(self.is_insecure(domain) || self.is_insecure(host));
        let http = self.clients.get(verify)?;
        Ok(Session {
            http,
            base,
            repo: repo.to_string(),
            creds,
            scope: if repo.is_empty() {
                String::new()
            } else {
                format!(
                    "repository:{repo}:{}",
                    if push { "pull,push" } else { "pull" }
                )
            },
            authorization: tokio::sync::RwLock::new(None),
        })
    }
}

/// Outcome of asking a registry to mount a blob from another repository.
pub enum Mount {
    /// The registry linked the blob: nothing to upload.
    Mounted,
    /// The registry started an upload instead, at this location.
    Upload(String),
}

/// Requests against one repository of one registry, sharing the auth they earned.
pub struct Session {
    http: reqwest::Client,
    base: String,
    /// Repository path.
    pub repo: String,
    creds: Option<Credentials>,
    scope: String,
    authorization: tokio::sync::RwLock<Option<String>>,
}

impl Session {
    /// The registry's base URL this session uses (`https://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{}", self.base, self.repo, tail)
    }

    async fn send_once(&self, method: &Method, url: &str, req: RequestBuilder) -> Result<Response> {
        let req = match self.authorization.read().await.as_deref() {
            Some(a) => req.header(header::AUTHORIZATION, a),
            None => req,
        };
        req.send().await.map_err(|e| Error::Transport {
            method: method.as_str().to_string(),
            url: url.to_string(),
            message: describe(&e),
        })
    }

    /// Sends a request, answering one auth challenge if the registry sends it.
    async fn send(
        &self,
        method: Method,
        url: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let resp = self
            .send_once(&method, url, build(self.http.request(method.clone(), url)))
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
            .ok_or_else(|| Error::Unauthorized("authentication required".into()))?;
        self.authorize(challenge).await?;
        let resp = self
            .send_once(&method, url, build(self.http.request(method.clone(), url)))
            .await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(Error::Unauthorized(if self.creds.is_some() {
                "incorrect username or password".into()
            } else {
                "authentication required".into()
            }));
        }
        Ok(resp)
    }

    async fn authorize(&self, challenge: Challenge) -> Result<()> {
        let value = match challenge {
            Challenge::Basic => match &self.creds {
                Some(c) => c.basic_header(),
                None => return Err(Error::Unauthorized("authentication required".into())),
            },
            Challenge::Bearer { realm, service } => {
                let mut req = self.http.get(&realm);
                if !self.scope.is_empty() {
                    req = req.query(&[("scope", &self.scope)]);
                }
                if let Some(s) = &service {
                    req = req.query(&[("service", s)]);
                }
                if let Some(c) = &self.creds {
                    req = req.basic_auth(&c.username, Some(&c.password));
                }
                let resp = req.send().await.map_err(|e| Error::Transport {
                    method: "GET".into(),
                    url: realm.clone(),
                    message: describe(&e),
                })?;
                if matches!(
                    resp.status(),
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                ) {
                    return Err(Error::Unauthorized("incorrect username or password".into()));
                }
                if !resp.status().is_success() {
                    return Err(Error::Unauthorized(format!(
                        "token server answered {}",
                        resp.status()
                    )));
                }
                #[derive(serde::Deserialize)]
                struct Token {
                    #[serde(default)]
                    token: String,
                    #[serde(default)]
                    access_token: String,
                }
                let t: Token = resp
                    .json()
                    .await
                    .map_err(|e| Error::Protocol(format!("bad token response: {e}")))?;
                let token = if t.token.is_empty() {
                    t.access_token
                } else {
                    t.token
                };
                format!("Bearer {token}")
            }
        };
        *self.authorization.write().await = Some(value);
        Ok(())
    }

    async fn check(
        &self,
        what: impl Fn() -> String,
        method: &str,
        url: &str,
        resp: Response,
    ) -> Result<Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let detail = error_detail(resp).await;
        Err(match status {
            StatusCode::NOT_FOUND => Error::NotFound {
                what: what(),
                detail,
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized(detail),
            _ => Error::Status {
                method: method.into(),
                url: url.into(),
                status,
                detail,
            },
        })
    }

    /// Tags of the repository (`GET /v2/<name>/tags/list`), following pagination.
    pub async fn tags(&self) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct List {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut url = self.url("tags/list");
        let mut out = Vec::new();
        // Bounded: a registry that pages forever does not keep us here.
        for _ in 0..100 {
            let resp = self.send(Method::GET, &url, |r| r).await?;
            let resp = self
                .check(|| format!("repository {}", self.repo), "GET", &url, resp)
                .await?;
            let next = resp
                .headers()
                .get(header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split(';').next())
                .map(|l| {
                    l.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                });
            let list: List = resp
                .json()
                .await
                .map_err(|e| Error::Protocol(format!("bad tag list: {e}")))?;
            out.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) if n.starts_with('/') => url = format!("{}{n}", self.base),
                Some(n) if n.starts_with("http") => url = n,
                _ => break,
            }
        }
        Ok(out)
    }

    /// Checks that the registry accepts these credentials (`GET /v2/`).
    pub async fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send(Method::GET, &url, |r| r).await?;
        self.check(|| "registry".into(), "GET", &url, resp)
            .await
            .map(drop)
    }

    /// Fetches a manifest or index by tag or digest: its bytes, media type and digest.
    pub async fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String, Digest)> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self
            .send(Method::GET, &url, |r| {
                r.header(header::ACCEPT, MANIFEST_TYPES.join(", "))
            })
            .await?;
        let what = || format!("manifest for {}:{reference}", self.repo);
        let resp = self.check(what, "GET", &url, resp).await?;
        let media_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let bytes = resp.bytes().await.map_err(|e| Error::Transport {
            method: "GET".into(),
            url: url.clone(),
            message: describe(&e),
        })?;
        if bytes.len() > 4 * 1024 * 1024 {
            return Err(Error::Protocol(format!(
                "manifest {reference} is larger than 4 MiB"
            )));
        }
        let digest = sha256_digest(&bytes);
        if let Ok(expected) = Digest::parse(reference) {
            if expected != digest {
                return Err(Error::Protocol(format!(
                    "manifest digest mismatch: asked for {expected}, got {digest}"
                )));
            }
        }
        Ok((bytes.to_vec(), media_type, digest))
    }

    /// Starts downloading a blob; the caller streams and verifies the body.
    pub async fn blob(&self, digest: &Digest) -> Result<Response> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(Method::GET, &url, |r| r).await?;
        self.check(|| format!("blob {digest}"), "GET", &url, resp)
            .await
    }

    /// True if the repository already has this blob.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(Method::HEAD, &url, |r| r).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => self
                .check(|| format!("blob {digest}"), "HEAD", &url, resp)
                .await
                .map(|_| false),
        }
    }

    /// Asks the registry to link a blob from another repository of the same registry.
    pub async fn mount(&self, digest: &Digest, from: &str) -> Result<Mount> {
        let url = self.url("blobs/uploads/");
        let resp = self
            .send(Method::POST, &url, |r| {
                r.query(&[("mount", digest.as_str()), ("from", from)])
                    .header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(Mount::Mounted);
        }
        let resp = self.check(|| "upload".into(), "POST", &url, resp).await?;
        Ok(Mount::Upload(self.location(&resp)?))
    }

    /// Starts a blob upload; returns its location.
    pub async fn start_upload(&self) -> Result<String> {
        let url = self.url("blobs/uploads/");
        let resp = self
            .send(Method::POST, &url, |r| {
                r.header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        let resp = self.check(|| "upload".into(), "POST", &url, resp).await?;
        self.location(&resp)
    }

    fn location(&self, resp: &Response) -> Result<String> {
        let loc = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Protocol("upload answer without Location".into()))?;
        Ok(
            if loc.starts_with("http://") || loc.starts_with("https://") {
                loc.to_string()
            } else {
                format!("{}{}", self.base, loc)
            },
        )
    }

    /// Uploads a whole blob in one PUT to an upload location.
    pub async fn finish_upload(
        &self,
        location: &str,
        digest: &Digest,
        size: u64,
        body: reqwest::Body,
    ) -> Result<()> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let req = self
            .http
            .put(&url)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, size)
            .body(body);
        let resp = self.send_once(&Method::PUT, &url, req).await?;
        self.check(|| format!("upload of {digest}"), "PUT", &url, resp)
            .await
            .map(drop)
    }

    /// Uploads a manifest under a tag or digest; returns the digest the registry names.
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Digest> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self
            .send(Method::PUT, &url, |r| {
                r.header(header::CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        let resp = self.check(|| "manifest".into(), "PUT", &url, resp).await?;
        Ok(sha256_digest(&bytes)).map(|d| {
            resp.headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Digest::parse(v).ok())
                .unwrap_or(d)
        })
    }
}

#[cfg(test)]
mod tests {
    //! The token flow against a minimal token server: Debian's docker-registry only does
    //! htpasswd (basic) auth without a separate token service, so bearer auth is checked
    //! here, over real HTTP on 127.0.0.1.
    use super::*;
    use axum::http::{HeaderMap, StatusCode as S};
    use axum::response::IntoResponse;
    use axum::routing::get;

    async fn serve() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let realm = format!("http://{addr}/token");
        let app = axum::Router::new()
            .route(
                "/v2/{*rest}",
                get(move |h: HeaderMap| {
                    let realm = realm.clone();
                    async move {
                        if h.get("authorization").and_then(|v| v.to_str().ok())
                            == Some("Bearer good-token")
                        {
                            return (
                                S::OK,
                                [("content-type", "application/vnd.oci.image.manifest.v1+json")],
                                "{}",
                            )
                                .into_response();
                        }
                        let challenge = format!(
                            r#"Bearer realm="{realm}",service="test",scope="repository:a/b:pull""#
                        );
                        (S::UNAUTHORIZED, [("www-authenticate", challenge)], "").into_response()
                    }
                }),
            )
            .route(
                "/token",
                get(|h: HeaderMap, q: axum::extract::RawQuery| async move {
                    let query = q.0.unwrap_or_default();
                    let basic = Credentials {
                        username: "u".into(),
                        password: "p".into(),
                        ..Default::default()
                    }
                    .basic_header();
                    let ok_auth = h.get("authorization").and_then(|v| v.to_str().ok())
                        == Some(basic.as_str());
                    if !ok_auth
                        || !query.contains("service=test")
                        || !query.contains("scope=repository%3Aa%2Fb%3Apull")
                    {
                        return (S::UNAUTHORIZED, "{}").into_response();
                    }
                    axum::Json(serde_json::json!({"token": "good-token"})).into_response()
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr.to_string()
    }

    #[tokio::test]
    async fn bearer_token_flow() {
        let host = serve().await;
        let client = RegistryClient::new(vec![]);
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        };
        let s = client
            .session(&host, "a/b", Some(creds), false)
            .await
            .unwrap();
        let (bytes, mt, _) = s.manifest("latest").await.unwrap();
        assert_eq!(bytes, b"{}");
        assert_eq!(mt, "application/vnd.oci.image.manifest.v1+json");

        let wrong = Credentials {
            username: "u".into(),
            password: "nope".into(),
            ..Default::default()
        };
        let s = client
            .session(&host, "a/b", Some(wrong), false)
            .await
            .unwrap();
        let err = s.manifest("latest").await.unwrap_err();
        assert!(matches!(err, Error::Unauthorized(_)), "{err}");
    }

    #[test]
    fn insecure_hosts_fall_back_to_http() {
        let c = RegistryClient::new(vec!["reg.test:5000".into()]);
        assert_eq!(
            c.endpoints("127.0.0.1:5000"),
            ["https://127.0.0.1:5000", "http://127.0.0.1:5000"]
        );
        assert_eq!(c.endpoints("localhost:1").len(), 2);
        assert_eq!(c.endpoints("reg.test:5000").len(), 2);
        assert_eq!(c.endpoints("example.com"), ["https://example.com"]);
        assert_eq!(c.endpoints("docker.io"), ["https://registry-1.docker.io"]);
    }

    #[test]
    fn mirrors_come_first_and_http_needs_an_insecure_host() {
        let m = |a: &str| Mirror::parse(a).unwrap();
        assert_eq!(m("https://mirror.test/").registry, "docker.io");
        assert_eq!(m("https://mirror.test/").url, "https://mirror.test");
        assert_eq!(
            m("registry.k8s.io=http://127.0.0.1:5000").registry,
            "registry.k8s.io"
        );
        for bad in [
            "ftp://x",
            "mirror.test",
            "=https://x",
            "a/b=https://x",
            "https://",
            "https://u@x",
        ] {
            assert!(Mirror::parse(bad).is_err(), "{bad}");
        }
        let c = RegistryClient::new(vec![])
            .with_mirrors(vec![
                m("registry.k8s.io=http://127.0.0.1:5000"),
                m("https://hub.mirror"),
            ])
            .unwrap();
        assert_eq!(
            c.endpoints("registry.k8s.io"),
            ["http://127.0.0.1:5000", "https://registry.k8s.io"]
        );
        assert_eq!(
            c.endpoints("docker.io"),
            ["https://hub.mirror", "https://registry-1.docker.io"]
        );
        assert_eq!(c.endpoints("gcr.io"), ["https://gcr.io"]);
        let plain = RegistryClient::new(vec![]).with_mirrors(vec![m("gcr.io=http://mirror.test")]);
        assert!(matches!(plain, Err(MirrorError::PlainHttp(_))));
        let marked = RegistryClient::new(vec!["mirror.test".into()])
            .with_mirrors(vec![m("gcr.io=http://mirror.test")]);
        assert!(marked.is_ok());
    }
}
