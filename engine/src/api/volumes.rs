//! `/volumes`: the local volume driver (create, list, inspect, remove, prune).

use super::{query_bool, query_pairs, ApiError, ApiResult, AppState};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// `POST /volumes/create`.
pub async fn create(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    let body: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    if let Some(d) = body["Driver"]
        .as_str()
        .filter(|d| !d.is_empty() && *d != "local")
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("error looking up volume plugin {d}: plugin \"{d}\" not found"),
        ));
    }
    let name = body["Name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(String::from)
        .unwrap_or_else(|| {
            let mut b = [0u8; 32];
            if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
                let _ = std::io::Read::read_exact(&mut f, &mut b);
            }
            hex::encode(b)
        });
    let v = st.containers.volumes.create(&name, &body["Labels"])?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `GET /volumes`.
pub async fn list(State(st): State<AppState>) -> ApiResult<Response> {
    Ok(Json(json!({"Volumes": st.containers.volumes.list(), "Warnings": null})).into_response())
}

/// `GET /volumes/{name}`.
pub async fn inspect(State(st): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(st.containers.volumes.inspect(&name)?).into_response())
}

/// `DELETE /volumes/{name}`: 409 while a container uses it.
pub async fn delete(
    State(st): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let _force = query_bool(&query_pairs(&uri), "force");
    st.containers.volumes.inspect(&name)?;
    let users = st.containers.volume_users(&name);
    if let Some(u) = users.first() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("remove {name}: volume is in use - [{u}]"),
        ));
    }
    st.containers.volumes.remove(&name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /volumes/prune`: unused volumes (anonymous ones only unless `all=true`, as
/// dockerd since API 1.42).
pub async fn prune(State(st): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let all = super::query_get(&q, "filters").is_some_and(|f| f.contains("\"all\""));
    let mut deleted = Vec::new();
    for v in st.containers.volumes.list() {
        let name = v["Name"].as_str().unwrap_or("").to_string();
        let anonymous = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if (all || anonymous)
            && st.containers.volume_users(&name).is_empty()
            && st.containers.volumes.remove(&name).is_ok()
        {
            deleted.push(name);
        }
    }
    Ok(Json(json!({"VolumesDeleted": deleted, "SpaceReclaimed": 0})).into_response())
}
