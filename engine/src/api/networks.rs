//! `/networks`: create, list (with filters), inspect, remove, prune, connect and
//! disconnect, with dockerd's bodies, statuses and words. Bodies are decoded into
//! berth-api's types with dockerd's rules; the logic is in `crate::networks` and, for
//! what touches a container's record, in `crate::containers::network`.

use super::{query_get, query_pairs, ApiError, ApiResult, AppState};
use crate::networks::{self, CreateRequest, EndpointRecord, NetworkRecord};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_api::network::{
    ConfigReference, EndpointResource, Ipam, IpamConfig, NetworkConnect, NetworkCreateRequest,
    NetworkCreateResponse, NetworkDisconnect, NetworkResource, NetworksPruneReport,
};
use bytes::Bytes;
use serde::Deserialize;
use std::collections::BTreeMap;

impl From<networks::Error> for ApiError {
    fn from(e: networks::Error) -> Self {
        use networks::Error as N;
        let status = match &e {
            N::NotFound(_) | N::Plugin(_) => StatusCode::NOT_FOUND,
            N::Invalid(_) => StatusCode::BAD_REQUEST,
            N::Conflict(_) => StatusCode::CONFLICT,
            N::Forbidden(_) | N::NoAddress(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

fn view(n: &NetworkRecord, members: &[EndpointRecord]) -> NetworkResource {
    let mut config = match n.subnet {
        Some(sub) => vec![IpamConfig {
            subnet: sub.to_string(),
            ip_range: n.ip_range.map(|r| r.to_string()).unwrap_or_default(),
            gateway: n
                .gateway
                .filter(|_| !n.user_subnet || n.user_gateway)
                .map(|g| g.to_string())
                .unwrap_or_default(),
            auxiliary_addresses: BTreeMap::new(),
        }],
        None => Vec::new(),
    };
    // The IPv6 subnet follows, as dockerd lists it (its gateway only when asked for).
    if let Some(sub6) = n.subnet6 {
        config.push(IpamConfig {
            subnet: sub6.to_string(),
            ip_range: String::new(),
            gateway: n
                .gateway6
                .filter(|_| n.user_gateway6)
                .map(|g| g.to_string())
                .unwrap_or_default(),
            auxiliary_addresses: BTreeMap::new(),
        });
    }
    NetworkResource {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: "local".into(),
        driver: n.driver.as_str().into(),
        enable_ipv6: n.enable_ipv6,
        ipam: Ipam {
            driver: "default".into(),
            options: (!n.predefined).then(BTreeMap::new),
            config: Some(config),
        },
        internal: n.internal,
        attachable: n.attachable,
        ingress: false,
        config_from: ConfigReference::default(),
        config_only: false,
        containers: members
            .iter()
            .map(|e| {
                (
                    e.container.clone(),
                    EndpointResource {
                        name: e.name.clone(),
                        endpoint_id: e.id.clone(),
                        mac_address: networks::ipam::format_mac(&e.mac),
                        ipv4_address: format!(
                            "{}/{}",
                            e.ip,
                            n.subnet.map(|s| s.prefix_len()).unwrap_or(32)
                        ),
                        ipv6_address: e
                            .ip6
                            .zip(n.subnet6)
                            .map(|(ip, s)| format!("{ip}/{}", s.prefix_len()))
                            .unwrap_or_default(),
                    },
                )
            })
            .collect(),
        options: n.options.clone(),
        labels: n.labels.clone(),
    }
}

fn decode<T: berth_api::json::GoStruct + serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<T> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    berth_api::json::decode_body_or_default(ct, body)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// dockerd's `filters` query: `{"name":{"x":true}}` or `{"name":["x"]}`.
fn filters(uri: &Uri) -> ApiResult<BTreeMap<String, Vec<String>>> {
    let q = query_pairs(uri);
    let Some(raw) = query_get(&q, "filters").filter(|s| !s.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Values {
        List(Vec<String>),
        Set(BTreeMap<String, bool>),
    }
    let parsed: BTreeMap<String, Values> = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
    Ok(parsed
        .into_iter()
        .map(|(k, v)| {
            let vals = match v {
                Values::List(l) => l,
                Values::Set(s) => s
                    .into_iter()
                    .filter(|(_, on)| *on)
                    .map(|(k, _)| k)
                    .collect(),
            };
            (k, vals)
        })
        .collect())
}

fn label_matches(labels: &BTreeMap<String, String>, f: &str) -> bool {
    match f.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(f),
    }
}

fn matches(n: &NetworkRecord, used: bool, f: &BTreeMap<String, Vec<String>>) -> ApiResult<bool> {
    for (k, vals) in f {
        let ok = match k.as_str() {
            "name" => vals.iter().any(|v| n.name.contains(v.as_str())),
            "id" => vals.iter().any(|v| n.id.starts_with(v.as_str())),
            "driver" => vals.iter().any(|v| v == n.driver.as_str()),
            "label" => vals.iter().all(|v| label_matches(&n.labels, v)),
            "label!" => !vals.iter().any(|v| label_matches(&n.labels, v)),
            "scope" => vals.iter().any(|v| v == "local"),
            "type" => vals.iter().any(|v| match v.as_str() {
                "custom" => !n.predefined,
                "builtin" => n.predefined,
                other => other.is_empty(),
            }),
            "dangling" => vals.iter().any(|v| match v.as_str() {
                "true" | "1" => !used && !n.predefined,
                _ => used || n.predefined,
            }),
            "until" => true,
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /networks`.
pub async fn list(State(st): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let f = filters(&uri)?;
    let nets = &st.networks;
    let mut out = Vec::new();
    for n in nets.list() {
        let members = nets.endpoints_on(&n.id);
        if matches(&n, !members.is_empty(), &f)? {
            // As dockerd: the list leaves members out.
            out.push(view(&n, &[]));
        }
    }
    Ok(Json(out).into_response())
}

/// `GET /networks/{id}`.
pub async fn inspect(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let nets = &st.networks;
    let n = nets.find(&id)?;
    let members = nets.endpoints_on(&n.id);
    Ok(Json(view(&n, &members)).into_response())
}

/// `POST /networks/create`.
pub async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let b: NetworkCreateRequest = decode(&headers, &body)?;
    let c = b.create;
    if c.ingress {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ingress networks need swarm mode, which berthd does not have",
        ));
    }
    if c.config_only
        || c.config_from
            .as_ref()
            .is_some_and(|f| !f.network.is_empty())
    {
        return Err(ApiError::bad_request(
            "config-only networks need swarm mode, which berthd does not have",
        ));
    }
    if !c.scope.is_empty() && c.scope != "local" {
        return Err(ApiError::bad_request(format!(
            "invalid scope {:?}: berthd has only local networks",
            c.scope
        )));
    }
    let ipam = c.ipam.unwrap_or_default();
    if !ipam.driver.is_empty() && ipam.driver != "default" {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("plugin \"{}\" not found", ipam.driver),
        ));
    }
    // One IPv4 and one IPv6 subnet at most; the family is the subnet's (dockerd's rule).
    let (mut v6, mut configs): (Vec<IpamConfig>, Vec<IpamConfig>) = ipam
        .config
        .unwrap_or_default()
        .into_iter()
        .partition(|c| c.subnet.contains(':'));
    if configs.len() > 1 || v6.len() > 1 {
        return Err(ApiError::bad_request(
            "berthd allocates from one subnet of each family per network: give one IPv4 and at most one IPv6 --subnet",
        ));
    }
    let cfg = configs.pop().unwrap_or_default();
    let cfg6 = v6.pop().unwrap_or_default();
    if !cfg6.ip_range.is_empty() {
        return Err(ApiError::bad_request(
            "berthd does not take an --ip-range for an IPv6 subnet",
        ));
    }
    let some = |s: String| (!s.is_empty()).then_some(s);
    let rec = st
        .networks
        .create(CreateRequest {
            name: b.name,
            driver: c.driver,
            internal: c.internal,
            attachable: c.attachable,
            enable_ipv6: c.enable_ipv6,
            subnet: some(cfg.subnet),
            ip_range: some(cfg.ip_range),
            gateway: some(cfg.gateway),
            subnet6: some(cfg6.subnet),
            gateway6: some(cfg6.gateway),
            options: c.options.unwrap_or_default(),
            labels: c.labels.unwrap_or_default(),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NetworkCreateResponse {
            id: rec.id,
            warning: String::new(),
        }),
    )
        .into_response())
}

/// `DELETE /networks/{id}`.
pub async fn delete(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.networks.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /networks/prune`.
pub async fn prune(State(st): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let f = filters(&uri)?;
    for k in f.keys() {
        if !["label", "label!", "until"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
    }
    let removed = st
        .networks
        .prune(|n| !matches(n, false, &f).unwrap_or(false))
        .await;
    Ok(Json(NetworksPruneReport {
        networks_deleted: Some(removed),
    })
    .into_response())
}

/// `POST /networks/{id}/{connect|disconnect}`.
pub async fn post_op(
    State(st): State<AppState>,
    Path((id, op)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    match op.as_str() {
        "connect" => {
            let b: NetworkConnect = decode(&headers, &body)?;
            if b.container.is_empty() {
                return Err(ApiError::bad_request("no container given to connect"));
            }
            let ep = b.endpoint_config.unwrap_or_default();
            if let Some(ip) = ep
                .ipam_config
                .as_ref()
                .map(|c| c.ipv4_address.as_str())
                .filter(|s| !s.is_empty())
            {
                networks::ipam::parse_addr(ip).map_err(|e| ApiError::bad_request(e.to_string()))?;
            }
            if let Some(ip) = ep
                .ipam_config
                .as_ref()
                .map(|c| c.ipv6_address.as_str())
                .filter(|s| !s.is_empty())
            {
                networks::ipam::parse_addr6(ip)
                    .map_err(|_| ApiError::bad_request(format!("invalid IPv6 address: {ip}")))?;
            }
            st.containers.connect_network(&b.container, &id, ep).await?;
        }
        "disconnect" => {
            let b: NetworkDisconnect = decode(&headers, &body)?;
            if b.container.is_empty() {
                return Err(ApiError::bad_request("no container given to disconnect"));
            }
            st.containers
                .disconnect_network(&b.container, &id, b.force)
                .await?;
        }
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "page not found")),
    }
    Ok(StatusCode::OK.into_response())
}
