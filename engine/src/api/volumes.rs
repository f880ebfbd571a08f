//! `/volumes`: the local volume driver (create, list, inspect, remove, prune).

use super::{query_bool, query_pairs, ApiError, ApiResult, AppState};
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `POST /volumes/create`.
pub async fn create(State(st): State<AppState>, req: Request) -> ApiResult<Response> {
    let body: berth_api::volume::VolumeCreateOptions = super::body::read(req).await?;
    if let Some(d) = Some(body.driver.as_str()).filter(|d| !d.is_empty() && *d != "local") {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("error looking up volume plugin {d}: plugin \"{d}\" not found"),
        ));
    }
    let name = Some(body.name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| crate::containers::random_hex(32));
    let labels = serde_json::to_value(&body.labels).unwrap_or_default();
    let options = serde_json::to_value(&body.driver_opts).unwrap_or_default();
    let v = st.containers.volumes.create(&name, &labels, &options)?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// Filters of `GET /volumes` and `POST /volumes/prune` (`{"key": ["value"]}` or
/// `{"key": {"value": true}}`, as dockerd reads them).
#[derive(Debug, Default)]
struct VolumeFilters {
    dangling: Option<bool>,
    name: Vec<String>,
    driver: Vec<String>,
    label: Vec<String>,
    all: bool,
}

impl VolumeFilters {
    /// Parses the `filters` query; `prune` also takes `all`, `list` does not.
    fn parse(text: Option<&str>, prune: bool) -> ApiResult<Self> {
        let mut f = Self::default();
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Ok(f);
        };
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
        for (k, v) in map {
            let values: Vec<String> = match v {
                serde_json::Value::Array(a) => a
                    .into_iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                serde_json::Value::Object(o) => o
                    .into_iter()
                    .filter(|(_, b)| b.as_bool() == Some(true))
                    .map(|(k, _)| k)
                    .collect(),
                _ => Vec::new(),
            };
            let truth = |v: &str| -> ApiResult<bool> {
                match v {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    _ => Err(ApiError::bad_request(format!(
                        "invalid filter '{k}={v}': expected true or false"
                    ))),
                }
            };
            match k.as_str() {
                "dangling" => f.dangling = values.first().map(|v| truth(v)).transpose()?,
                "name" => f.name = values,
                "driver" => f.driver = values,
                "label" => f.label = values,
                "all" if prune => {
                    f.all = values.first().map(|v| truth(v)).transpose()? == Some(true)
                }
                other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
            }
        }
        Ok(f)
    }

    /// Whether a volume (as the API shows it) passes the filters; `in_use` says
    /// whether a container uses it.
    fn matches(&self, v: &serde_json::Value, in_use: bool) -> bool {
        let name = v["Name"].as_str().unwrap_or("");
        let labels = &v["Labels"];
        self.dangling.is_none_or(|d| d != in_use)
            && (self.name.is_empty() || self.name.iter().any(|n| name.contains(n.as_str())))
            && (self.driver.is_empty() || self.driver.iter().any(|d| v["Driver"] == d.as_str()))
            && self.label.iter().all(|l| match l.split_once('=') {
                Some((k, val)) => labels[k].as_str() == Some(val),
                None => !labels[l.as_str()].is_null(),
            })
    }
}

/// `GET /volumes`, with `dangling`, `name`, `driver` and `label` filters.
pub async fn list(State(st): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let filters = VolumeFilters::parse(super::query_get(&q, "filters"), false)?;
    let volumes: Vec<serde_json::Value> = st
        .containers
        .volumes
        .list()
        .into_iter()
        .filter(|v| {
            let name = v["Name"].as_str().unwrap_or("");
            let in_use = filters.dangling.is_some() && !st.containers.volume_users(name).is_empty();
            filters.matches(v, in_use)
        })
        .collect();
    Ok(Json(json!({"Volumes": volumes, "Warnings": null})).into_response())
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
    let filters = VolumeFilters::parse(super::query_get(&q, "filters"), true)?;
    let all = filters.all;
    let mut deleted = Vec::new();
    let mut reclaimed = 0;
    for v in st.containers.volumes.list() {
        let name = v["Name"].as_str().unwrap_or("").to_string();
        let anonymous = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if !((all || anonymous)
            && filters.matches(&v, false)
            && st.containers.volume_users(&name).is_empty())
        {
            continue;
        }
        // Measured before it goes: the bytes removing it frees.
        let size = st.containers.volumes.size(&name);
        if st.containers.volumes.remove(&name).is_ok() {
            deleted.push(name);
            reclaimed += size;
        }
    }
    Ok(Json(json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed})).into_response())
}
