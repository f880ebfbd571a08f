//! The Engine API client: HTTP/1.1 over berthd's unix socket or a TCP port (with TLS
//! when asked), one connection per request (as the docker CLI does), with helpers for
//! JSON, streamed bodies, JSON-lines progress streams and hijacked (upgraded)
//! connections for attach and exec. Failures to reach berthd are told in docker's words.

use crate::endpoint::{join_host_port, Endpoint};
use crate::error::{os_text, Error, Result};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

/// The API version the CLI speaks (berthd's newest).
pub const API_VERSION: &str = "1.43";

/// How long a TCP connection may take to open, as the docker client's dialer.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// A request body: nothing, bytes, or a stream (for uploads of any size).
pub type Body = BoxBody<Bytes, std::io::Error>;

/// An empty request body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A JSON request body.
pub fn json(value: &serde_json::Value) -> Body {
    Full::new(Bytes::from(value.to_string()))
        .map_err(|never| match never {})
        .boxed()
}

/// A request body streamed from a reader (a file, stdin), never held whole in memory.
pub fn stream(reader: impl AsyncRead + Send + Sync + 'static) -> Body {
    let frames = tokio_util::io::ReaderStream::new(reader).map_ok(Frame::data);
    BodyExt::boxed(StreamBody::new(frames))
}

/// A query string (`?a=1&b=2`, or nothing) from key/value pairs, percent-encoded.
pub fn query<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k.as_ref(), v.as_ref());
    }
    format!("?{}", q.finish())
}

/// A client of one berthd.
#[derive(Debug, Clone)]
pub struct Client {
    endpoint: Endpoint,
    /// The TLS configuration, made once from the files, when TLS is on.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    /// A client for this endpoint; reads the TLS files now, so a missing or bad one
    /// is reported before anything is sent.
    pub fn new(endpoint: Endpoint) -> Result<Self> {
        let tls = match &endpoint {
            Endpoint::Tcp {
                tls: Some(files), ..
            } => Some(crate::tls::client_config(files)?),
            _ => None,
        };
        Ok(Self { endpoint, tls })
    }

    /// Sends one request; a 4xx/5xx answer becomes `Error::Api` with berthd's message.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        content_type: Option<&str>,
    ) -> Result<Response<Incoming>> {
        self.send_with_headers(method, path, body, content_type, &[])
            .await
    }

    /// POST with an empty body for a registry operation on `image` (pull, push): with
    /// the `X-Registry-Auth` header of the saved login for its registry, if any.
    pub async fn post_for_registry(&self, path: &str, image: &str) -> Result<Response<Incoming>> {
        let auth = crate::config::auth_header_for_image(image)?;
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("X-Registry-Auth", a)])
            .unwrap_or_default();
        self.send_with_headers(Method::POST, path, empty(), None, &headers)
            .await
    }

    /// As [`Client::send`], with extra request headers (`X-Registry-Auth` for pull
    /// and push).
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Body,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let mut req = self.request(method.clone(), path, content_type);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(body)
            .map_err(|e| Error::Usage(format!("bad request path {path:?}: {e}")))?;
        let mut sender = self.connect(&method, path, false).await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.exchange_error(&method, path, e))?;
        check(resp).await
    }

    /// GET, decoding a JSON answer.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.send(Method::GET, path, empty(), None).await?;
        read_json(resp).await
    }

    /// POST of an optional JSON body, decoding a JSON answer.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        let resp = self.post_raw(path, body).await?;
        read_json(resp).await
    }

    /// POST of an optional JSON body whose answer has no content worth reading.
    pub async fn post(&self, path: &str, body: Option<&serde_json::Value>) -> Result<()> {
        let resp = self.post_raw(path, body).await?;
        drain(resp).await
    }

    /// POST of an optional JSON body, returning the response for streaming.
    pub async fn post_raw(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response<Incoming>> {
        match body {
            Some(v) => {
                self.send(Method::POST, path, json(v), Some("application/json"))
                    .await
            }
            None => self.send(Method::POST, path, empty(), None).await,
        }
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Result<()> {
        let resp = self.send(Method::DELETE, path, empty(), None).await?;
        drain(resp).await
    }

    /// POST that asks berthd to hijack the connection (attach, exec start): after a
    /// `101 Switching Protocols` the socket carries the container's raw streams both ways.
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
        let (body, ctype) = match body {
            Some(v) => (json(v), Some("application/json")),
            None => (empty(), None),
        };
        let req = self
            .request(Method::POST, path, ctype)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "tcp")
            .body(body)
            .map_err(|e| Error::Usage(format!("bad request path {path:?}: {e}")))?;
        let mut sender = self.connect(&Method::POST, path, true).await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.exchange_error(&Method::POST, path, e))?;
        let resp = check(resp).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(Error::BadResponse(format!(
                "expected 101 Switching Protocols for {path}, got {}",
                resp.status()
            )));
        }
        let upgraded = hyper::upgrade::on(resp).await?;
        Ok(TokioIo::new(upgraded))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
    ) -> hyper::http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("/v{API_VERSION}{path}"))
            .header(header::HOST, self.host_header())
            .header(
                header::USER_AGENT,
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(ct) = content_type {
            b = b.header(
                header::CONTENT_TYPE,
                HeaderValue::from_str(ct)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            );
        }
        b
    }

    /// The Host header: the address for TCP (as Go's client sends it), a fixed name on
    /// a socket.
    fn host_header(&self) -> String {
        match &self.endpoint {
            Endpoint::Unix(_) => "berthd".into(),
            Endpoint::Tcp { host, port, .. } => join_host_port(host, *port),
        }
    }

    /// The URL of a request as docker shows it in errors.
    fn url(&self, path: &str) -> String {
        match &self.endpoint {
            Endpoint::Unix(p) => {
                let host: String =
                    form_urlencoded::byte_serialize(p.as_os_str().as_encoded_bytes()).collect();
                format!("http://{host}/v{API_VERSION}{path}")
            }
            Endpoint::Tcp { host, port, .. } => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!(
                    "{scheme}://{}/v{API_VERSION}{path}",
                    join_host_port(host, *port)
                )
            }
        }
    }

    /// A failure past the socket, as docker reports it: `error during connect: Get
    /// "URL": reason`, with Go's TLS words when TLS broke.
    fn transport(&self, method: &Method, path: &str, reason: String) -> Error {
        let context = if reason.contains("bad certificate") {
            // docker's own hint for this alert.
            "the server probably has client authentication (--tlsverify) enabled; check your TLS client certification settings"
        } else {
            "error during connect"
        };
        let m = method.as_str();
        Error::Transport {
            context,
            // Go's url.Error writes the method as "Get", "Post".
            method: format!("{}{}", &m[..1], m[1..].to_ascii_lowercase()),
            url: self.url(path),
            reason,
        }
    }

    /// An error of the HTTP exchange: TLS failures (a rejected client certificate is
    /// only seen here, with TLS 1.3) in docker's words, the rest as they are.
    fn exchange_error(&self, method: &Method, path: &str, e: hyper::Error) -> Error {
        match crate::tls::find_rustls_error(&e) {
            Some(t) => self.transport(method, path, crate::tls::go_words(t)),
            None => Error::Http(e),
        }
    }

    /// A connect(2) failure: "Cannot connect" when nothing listens (or nothing
    /// answers), as docker says it.
    fn dial_error(&self, method: &Method, path: &str, e: std::io::Error) -> Error {
        let host = self.endpoint.url();
        match (&self.endpoint, e.raw_os_error()) {
            (_, Some(libc::EACCES)) => Error::Permission { host },
            (Endpoint::Unix(_), _) | (_, Some(libc::ECONNREFUSED)) | (_, Some(libc::ETIMEDOUT)) => {
                Error::Connect { host, source: e }
            }
            (Endpoint::Tcp { host, port, .. }, _) => {
                let reason = format!(
                    "dial tcp {}: connect: {}",
                    join_host_port(host, *port),
                    os_text(&e)
                );
                self.transport(method, path, reason)
            }
        }
    }

    async fn connect(
        &self,
        method: &Method,
        path: &str,
        upgrades: bool,
    ) -> Result<hyper::client::conn::http1::SendRequest<Body>> {
        let (host, port) = match &self.endpoint {
            Endpoint::Unix(socket) => {
                let stream = UnixStream::connect(socket)
                    .await
                    .map_err(|e| self.dial_error(method, path, e))?;
                return handshake(stream, upgrades).await;
            }
            Endpoint::Tcp { host, port, .. } => (host, *port),
        };
        let stream = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| Error::Connect {
                host: self.endpoint.url(),
                source: std::io::ErrorKind::TimedOut.into(),
            })?
            .map_err(|e| self.dial_error(method, path, e))?;
        let _ = stream.set_nodelay(true);
        let Some(config) = &self.tls else {
            return handshake(stream, upgrades).await;
        };
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| Error::endpoint(format!("invalid host name {host:?}: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, stream)
            .await
            .map_err(|e| {
                let reason = crate::tls::find_rustls_error(&e)
                    .map(crate::tls::go_words)
                    .unwrap_or_else(|| os_text(&e));
                self.transport(method, path, reason)
            })?;
        handshake(stream, upgrades).await
    }
}

/// The HTTP/1.1 handshake on a fresh connection, which is then driven on its own task
/// until the exchange ends.
async fn handshake<T>(
    io: T,
    upgrades: bool,
) -> Result<hyper::client::conn::http1::SendRequest<Body>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    if upgrades {
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
    } else {
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    Ok(sender)
}

/// Turns an error status into `Error::Api` carrying berthd's message.
async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(resp);
    }
    let body = resp.into_body().collect().await?.to_bytes();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
    let message = if message.is_empty() {
        status.to_string()
    } else {
        message
    };
    Err(Error::Api {
        status: status.as_u16(),
        message,
    })
}

/// Reads a whole JSON answer.
pub async fn read_json<T: DeserializeOwned>(resp: Response<Incoming>) -> Result<T> {
    let body = resp.into_body().collect().await?.to_bytes();
    serde_json::from_slice(&body).map_err(|e| {
        Error::BadResponse(format!(
            "{e} in {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })
}

/// Reads and drops an answer's body.
pub async fn drain(resp: Response<Incoming>) -> Result<()> {
    resp.into_body().collect().await?;
    Ok(())
}

/// The raw chunks of a streamed answer.
pub fn chunks(resp: Response<Incoming>) -> impl Stream<Item = Result<Bytes>> {
    BodyStream::new(resp.into_body()).filter_map(|frame| async move {
        match frame {
            Ok(f) => f.into_data().ok().map(Ok),
            Err(e) => Some(Err(Error::Http(e))),
        }
    })
}

/// A streamed answer of JSON values one after another (pull and push progress,
/// events, stats), decoded as they arrive whatever the chunking.
pub fn json_stream(resp: Response<Incoming>) -> impl Stream<Item = Result<serde_json::Value>> {
    let mut buf: Vec<u8> = Vec::new();
    chunks(resp)
        .map(move |chunk| {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return vec![Err(e)],
            };
            buf.extend_from_slice(&chunk);
            let mut out = Vec::new();
            let mut consumed = 0;
            let mut values =
                serde_json::Deserializer::from_slice(&buf).into_iter::<serde_json::Value>();
            loop {
                match values.next() {
                    Some(Ok(v)) => {
                        consumed = values.byte_offset();
                        out.push(Ok(v));
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => {
                        out.push(Err(Error::BadResponse(format!("in JSON stream: {e}"))));
                        consumed = buf.len();
                        break;
                    }
                    None => {
                        consumed = buf.len();
                        break;
                    }
                }
            }
            buf.drain(..consumed);
            out
        })
        .flat_map(futures_util::stream::iter)
}
