//! JSON request bodies read as dockerd reads them, into berth-api's typed requests: the
//! Content-Type checked, a malformed or trailing-garbage body a 400 `invalid JSON: ...`,
//! a value of the wrong type for a known field a 400 in Go's words, unknown keys
//! ignored (berth-api's decoder); a body over the limit a 413, answered once it has
//! been read.

use super::{ApiError, ApiResult};
use axum::extract::Request;
use axum::http::header;
use berth_api::container::ContainerCreateRequest;
use berth_api::json::{DecodeError, GoStruct};
use serde::de::DeserializeOwned;

fn bad(e: DecodeError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

fn content_type(req: &Request) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?").to_string())
}

/// The largest JSON body read.
pub const LIMIT: usize = berth_api::json::MAX_BODY_BYTES;

/// How much of an over-long body is read (and dropped) before the refusal is sent:
/// answering while the client still writes would reset its connection instead.
const DRAIN_LIMIT: usize = 1 << 30;

/// A request body of at most `limit` bytes; a longer one is a 413, sent once the rest
/// of it has been read (up to `DRAIN_LIMIT`), so the client sees the answer.
pub async fn collect(body: axum::body::Body, limit: usize) -> ApiResult<bytes::Bytes> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            buf.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > limit {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large: more than {limit} bytes"),
        ));
    }
    Ok(buf.freeze())
}

/// A request body decoded into `T`; no body (or `null`) is `T`'s zero value, as dockerd
/// lets most endpoints take none.
pub async fn read<T: GoStruct + DeserializeOwned + Default>(req: Request) -> ApiResult<T> {
    let ct = content_type(&req);
    let bytes = collect(req.into_body(), LIMIT).await?;
    berth_api::json::decode_body_or_default(ct.as_deref(), &bytes).map_err(bad)
}

/// `POST /containers/create`'s body (a body is needed, with some Config field in it).
pub async fn create_request(req: Request) -> ApiResult<ContainerCreateRequest> {
    let ct = content_type(&req);
    let bytes = collect(req.into_body(), LIMIT).await?;
    ContainerCreateRequest::decode(ct.as_deref(), &bytes).map_err(bad)
}
