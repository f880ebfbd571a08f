//! `POST /auth`: checks credentials against a registry (the client keeps them, as with
//! dockerd; berthd stores nothing).

use super::{ApiError, ApiResult, AppState};
use crate::images::reference::DEFAULT_DOMAIN;
use crate::registry::{self, auth::Credentials};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// The registry host a login names (`https://host:port/v1/` → `host:port`).
fn registry_host(server: &str) -> String {
    let s = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => DEFAULT_DOMAIN.into(),
        h => h.to_string(),
    }
}

/// `POST /auth`.
pub async fn login(State(st): State<AppState>, body: axum::body::Bytes) -> ApiResult<Json<Value>> {
    let creds: Credentials = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid auth configuration: {e}")))?;
    let creds = creds
        .normalized()
        .ok_or_else(|| ApiError::bad_request("username is required"))?;
    let host = registry_host(&creds.serveraddress);
    let session = st
        .images
        .registry
        .session(&host, "", Some(creds.clone()), false)
        .await
        .map_err(crate::images::Error::from)?;
    match session.ping().await {
        Ok(()) => {}
        Err(registry::Error::Unauthorized(_)) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!(
                    "login attempt to {}/v2/ failed with status: 401 Unauthorized",
                    session.base()
                ),
            ))
        }
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
            ))
        }
    }
    Ok(Json(
        json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_normalize() {
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_host("http://localhost:5000/"), "localhost:5000");
    }
}
