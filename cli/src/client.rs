//! The Engine API client: HTTP/1.1 over berthd's unix socket, one connection per
//! request (as the docker CLI does), with helpers for JSON, streamed bodies, JSON-lines
//! progress streams and hijacked (upgraded) connections for attach and exec.

use crate::error::{Error, Result};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use tokio::io::AsyncRead;
use tokio::net::UnixStream;

/// The API version the CLI speaks (berthd's newest).
pub const API_VERSION: &str = "1.43";

/// Where berthd listens unless `-H` or `BERTH_HOST` says otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// A request body: nothing, bytes, or a stream (for uploads of any size).
pub type Body = BoxBody<Bytes, std::io::Error>;

/// An empty request body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A JSON request body.
pub fn json<B: serde::Serialize + ?Sized>(value: &B) -> Body {
    // Serializing the API's types (plain structs, string-keyed maps) cannot fail.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    Full::new(Bytes::from(bytes))
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
    socket: PathBuf,
}

impl Client {
    /// A client for `host`: `unix:///path/to.sock` or a bare socket path.
    pub fn from_host(host: &str) -> Result<Self> {
        let path = match host.split_once("://") {
            Some(("unix", path)) => path,
            Some((scheme, _)) => {
                return Err(Error::Usage(format!(
                    "unsupported host {host:?}: berthd listens on a unix socket (unix:///path), not {scheme}"
                )))
            }
            None => host,
        };
        if path.is_empty() {
            return Err(Error::Usage(format!("host {host:?} names no socket path")));
        }
        Ok(Self {
            socket: PathBuf::from(path),
        })
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
        let mut req = self.request(method, path, content_type);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(body)
            .map_err(|e| Error::Usage(format!("bad request path {path:?}: {e}")))?;
        let mut sender = self.connect(false).await?;
        let resp = sender.send_request(req).await?;
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

    /// POST of a typed body (one of the API's request types), decoding a typed answer.
    pub async fn post_typed<B: serde::Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let resp = self
            .send(Method::POST, path, json(body), Some("application/json"))
            .await?;
        read_json(resp).await
    }

    /// GET, the answer's bytes as berthd sent them.
    pub async fn get_raw(&self, path: &str) -> Result<Vec<u8>> {
        let resp = self.send(Method::GET, path, empty(), None).await?;
        Ok(resp.into_body().collect().await?.to_bytes().to_vec())
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
        let mut sender = self.connect(true).await?;
        let resp = sender.send_request(req).await?;
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
            .header(header::HOST, "berthd")
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

    async fn connect(
        &self,
        upgrades: bool,
    ) -> Result<hyper::client::conn::http1::SendRequest<Body>> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|source| Error::Connect {
                path: self.socket.clone(),
                source,
            })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection is driven on its own task; it ends with the exchange.
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
