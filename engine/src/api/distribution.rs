//! `GET /distribution/{name}/json`: what a reference resolves to on its registry.

use super::{ApiError, ApiResult, AppState};
use crate::images::reference::Reference;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::Value;

/// `GET /distribution/{name}/json`.
pub async fn inspect(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let name = rest
        .strip_suffix("/json")
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "page not found"))?;
    let reference = Reference::parse_with_default_tag(name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let auth = headers.get("x-registry-auth").and_then(|v| v.to_str().ok());
    let creds = st.images.credentials(auth);
    Ok(Json(st.images.remote_descriptor(&reference, creds).await?))
}
