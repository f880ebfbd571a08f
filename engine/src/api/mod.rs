//! The Docker Engine API over HTTP: routing, API version negotiation, and the mapping
//! of engine errors to Docker's `{"message": ...}` bodies and status codes. One file per
//! resource; handlers only translate between HTTP and the image service.

mod attach;
mod auth;
pub(crate) mod body;
mod build;
mod containers;
mod distribution;
mod events;
mod exec;
mod images;
mod networks;
mod system;
mod volumes;

use crate::images::{Error as ImageError, ImageService};
use crate::{archive, content, registry, snapshots};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;

/// Newest API version served (and advertised in `Api-Version`).
pub const API_VERSION: &str = "1.43";
/// Oldest API version accepted, as dockerd.
pub const MIN_API_VERSION: &str = "1.24";

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The image store.
    pub images: Arc<ImageService>,
    /// Data root, for /info.
    pub data_root: std::path::PathBuf,
    /// Containers.
    pub containers: Arc<crate::containers::ContainerService>,
    /// Networks.
    pub networks: Arc<crate::networks::NetworkService>,
    /// The builder (build, commit, diff, export).
    pub builds: Arc<crate::build::BuildService>,
}

/// An API error: a status and Docker's `{"message": ...}` body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, message = %self.message, "request failed");
        } else {
            tracing::debug!(status = %self.status, message = %self.message, "request refused");
        }
        (
            self.status,
            Json(serde_json::json!({ "message": self.message })),
        )
            .into_response()
    }
}

/// The status an engine error deserves.
pub fn status_of(e: &ImageError) -> StatusCode {
    match e {
        ImageError::NotFound(_) => StatusCode::NOT_FOUND,
        ImageError::Reference(_) | ImageError::Invalid(_) | ImageError::Archive(_) => {
            StatusCode::BAD_REQUEST
        }
        ImageError::Conflict(_) => StatusCode::CONFLICT,
        ImageError::Snapshot(snapshots::Error::Archive(_)) => StatusCode::BAD_REQUEST,
        ImageError::Content(content::Error::NotFound(_)) => StatusCode::NOT_FOUND,
        ImageError::Registry(registry::Error::NotFound { .. }) => StatusCode::NOT_FOUND,
        // Not 401: on 401 the docker CLI prompts for a login and retries, which is
        // wrong for a daemon-side registry refusal (and hangs without a terminal).
        ImageError::Registry(registry::Error::Unauthorized(_)) => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        Self::new(status_of(&e), e.to_string())
    }
}

impl From<crate::images::store::Error> for ApiError {
    fn from(e: crate::images::store::Error) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<archive::Error> for ApiError {
    fn from(e: archive::Error) -> Self {
        Self::bad_request(e.to_string())
    }
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// Builds the router with every endpoint, wrapped in version negotiation.
pub fn router(state: AppState) -> Router {
    let inner: Router = Router::new()
        .route("/_ping", get(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/system/df", get(system::df))
        .route("/auth", post(auth::login))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/commit", post(build::commit))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route("/images/prune", post(images::prune))
        .route(
            "/images/{*rest}",
            get(images::get_sub)
                .post(images::post_sub)
                .delete(images::delete),
        )
        .route("/distribution/{*rest}", get(distribution::inspect))
        .route("/events", get(events::events))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/changes", get(build::changes))
        .route("/containers/{id}/export", get(build::export))
        .route("/containers/{id}/stats", get(containers::stats))
        .route(
            "/containers/{id}/archive",
            get(containers::archive_get)
                .head(containers::archive_head)
                .put(containers::archive_put),
        )
        .route("/containers/{id}", delete(containers::delete))
        .route("/containers/{id}/{alias}", delete(containers::delete_link))
        .route("/containers/{id}/json", get(containers::inspect_one))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/attach", post(attach::attach))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::delete),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::delete),
        )
        .route("/networks/{id}/{op}", post(networks::post_op))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "page not found") })
        // dockerd's router has no 405: a known path with another method is not found.
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "page not found")
        })
        .with_state(state);
    inner
}

/// The API version a request asked for (from its `/vX.Y` prefix), if any.
#[derive(Debug, Clone, Copy)]
pub struct RequestedVersion(pub Option<(u32, u32)>);

fn parse_version(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Strips and checks a `/v1.NN` prefix before routing (so it must wrap the router, not
/// be layered inside it), and adds Docker's headers to every response.
pub async fn negotiate(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut resp = route_version(req, next).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    let h = resp.headers_mut();
    h.insert("api-version", HeaderValue::from_static(API_VERSION));
    h.insert("docker-experimental", HeaderValue::from_static("false"));
    h.insert("ostype", HeaderValue::from_static("linux"));
    h.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

async fn route_version(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let mut version = None;
    if let Some(rest) = path.strip_prefix("/v") {
        let (v, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if let Some(parsed) = parse_version(v) {
            let max = parse_version(API_VERSION).unwrap_or((1, 43));
            let min = parse_version(MIN_API_VERSION).unwrap_or((1, 24));
            if parsed > max {
                return ApiError::bad_request(format!(
                    "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                ))
                .into_response();
            }
            if parsed < min {
                return ApiError::bad_request(format!(
                    "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
                ))
                .into_response();
            }
            version = Some(parsed);
            let new_path = if tail.is_empty() { "/" } else { tail };
            let pq = match req.uri().query() {
                Some(q) => format!("{new_path}?{q}"),
                None => new_path.to_string(),
            };
            if let Ok(uri) = pq.parse::<Uri>() {
                *req.uri_mut() = uri;
            }
        }
    }
    req.extensions_mut().insert(RequestedVersion(version));
    next.run(req).await
}

/// A streamed `application/json` response of progress lines.
pub fn json_stream(rx: tokio::sync::mpsc::UnboundedReceiver<Bytes>) -> Response {
    let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
        .map(Ok::<_, std::convert::Infallible>);
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The query string's pairs, repeated keys kept.
pub fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// The first value of a query key.
pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A Docker-style boolean query value (`1`, `true`, `True`).
pub fn query_bool(pairs: &[(String, String)], key: &str) -> bool {
    query_get(pairs, key).is_some_and(|v| matches!(v, "1" | "true" | "True" | "TRUE"))
}

/// Streams a request body into a temp file under `dir`.
pub async fn body_to_file(body: Body, dir: &std::path::Path) -> ApiResult<tempfile::TempPath> {
    use tokio::io::AsyncWriteExt;
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("temp file: {e}")))?;
    let (file, path) = tmp.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        file.write_all(&chunk).await.map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("writing upload: {e}"),
            )
        })?;
    }
    file.flush().await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing upload: {e}"),
        )
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare() {
        assert!(parse_version("1.43") > parse_version("1.24"));
        assert!(parse_version("1.9") < parse_version("1.24"));
        assert_eq!(parse_version("x"), None);
    }
}
