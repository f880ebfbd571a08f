//! `/networks`: create, list (with filters), inspect, remove, prune, connect and
//! disconnect, with dockerd's bodies, statuses and words. Bodies are decoded into the
//! typed requests below; the logic is in `crate::networks` and, for what touches a
//! container's record, in `crate::containers::network`.

use super::{query_get, query_pairs, ApiError, ApiResult, AppState};
use crate::networks::{self, CreateRequest, EndpointRecord, NetworkRecord};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
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

/// One `IPAM.Config` entry.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    /// CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// CIDR.
    #[serde(default, rename = "IPRange", skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// Address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Reserved addresses (accepted, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aux_address: Option<BTreeMap<String, String>>,
}

/// `IPAM`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    /// Only `default`.
    #[serde(default)]
    pub driver: Option<String>,
    /// Subnets.
    #[serde(default)]
    pub config: Option<Vec<IpamConfig>>,
    /// Options.
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
}

/// `POST /networks/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateBody {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Driver.
    #[serde(default)]
    pub driver: Option<String>,
    /// No route out.
    #[serde(default)]
    pub internal: bool,
    /// Attachable.
    #[serde(default)]
    pub attachable: bool,
    /// Ingress (swarm): refused.
    #[serde(default)]
    pub ingress: bool,
    /// IPAM.
    #[serde(default, rename = "IPAM")]
    pub ipam: Option<Ipam>,
    /// IPv6.
    #[serde(default, rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// Driver options.
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    /// Labels.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// Scope (swarm): only local.
    #[serde(default)]
    pub scope: Option<String>,
}

/// An endpoint's config, as connect and create send it.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointConfig {
    /// Static addresses.
    #[serde(default, rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpam>,
    /// Network aliases.
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    /// Legacy links (kept, not used).
    #[serde(default)]
    pub links: Option<Vec<String>>,
}

/// `EndpointConfig.IPAMConfig`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct EndpointIpam {
    /// Static IPv4 address.
    #[serde(
        default,
        rename = "IPv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_address: Option<String>,
    /// Static IPv6 address (accepted, not allocated).
    #[serde(
        default,
        rename = "IPv6Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_address: Option<String>,
}

/// `POST /networks/{id}/connect`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConnectBody {
    /// Container name or id.
    #[serde(default)]
    pub container: String,
    /// Its endpoint config.
    #[serde(default)]
    pub endpoint_config: Option<EndpointConfig>,
}

/// `POST /networks/{id}/disconnect`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DisconnectBody {
    /// Container name or id.
    #[serde(default)]
    pub container: String,
    /// Also when the container is gone.
    #[serde(default)]
    pub force: bool,
}

/// A member in `network inspect`'s `Containers`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MemberView {
    /// Container name.
    pub name: String,
    /// Endpoint id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// MAC.
    pub mac_address: String,
    /// `ip/len`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// Empty: no IPv6.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// A network as `GET /networks` and `GET /networks/{id}` show it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkView {
    /// Name.
    pub name: String,
    /// Id.
    pub id: String,
    /// Created.
    pub created: String,
    /// `local`.
    pub scope: &'static str,
    /// Driver.
    pub driver: &'static str,
    /// IPv6.
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// IPAM.
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    /// Internal.
    pub internal: bool,
    /// Attachable.
    pub attachable: bool,
    /// Ingress.
    pub ingress: bool,
    /// ConfigFrom.
    pub config_from: BTreeMap<&'static str, &'static str>,
    /// ConfigOnly.
    pub config_only: bool,
    /// Members (running containers).
    pub containers: BTreeMap<String, MemberView>,
    /// Options.
    pub options: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

fn view(n: &NetworkRecord, members: &[EndpointRecord]) -> NetworkView {
    let config = match n.subnet {
        Some(s) => vec![IpamConfig {
            subnet: Some(s.to_string()),
            ip_range: n.ip_range.map(|r| r.to_string()),
            gateway: n.gateway.map(|g| g.to_string()),
            aux_address: None,
        }],
        None => Vec::new(),
    };
    NetworkView {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: "local",
        driver: n.driver.as_str(),
        enable_ipv6: n.enable_ipv6,
        ipam: Ipam {
            driver: Some("default".into()),
            options: (!n.predefined).then(BTreeMap::new),
            config: Some(config),
        },
        internal: n.internal,
        attachable: n.attachable,
        ingress: false,
        config_from: BTreeMap::from([("Network", "")]),
        config_only: false,
        containers: members
            .iter()
            .map(|e| {
                (
                    e.container.clone(),
                    MemberView {
                        name: e.name.clone(),
                        endpoint_id: e.id.clone(),
                        mac_address: networks::ipam::format_mac(&e.mac),
                        ipv4_address: format!(
                            "{}/{}",
                            e.ip,
                            n.subnet.map(|s| s.prefix_len()).unwrap_or(32)
                        ),
                        ipv6_address: String::new(),
                    },
                )
            })
            .collect(),
        options: n.options.clone(),
        labels: n.labels.clone(),
    }
}

fn decode<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
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
    let nets = st.containers.networks();
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
    let nets = st.containers.networks();
    let n = nets.find(&id)?;
    let members = nets.endpoints_on(&n.id);
    Ok(Json(view(&n, &members)).into_response())
}

/// `POST /networks/create`.
pub async fn create(State(st): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let b: CreateBody = decode(&body)?;
    if b.ingress {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ingress networks need swarm mode, which berthd does not have",
        ));
    }
    if b.scope
        .as_deref()
        .is_some_and(|s| !s.is_empty() && s != "local")
    {
        return Err(ApiError::bad_request(format!(
            "invalid scope {:?}: berthd has only local networks",
            b.scope.unwrap_or_default()
        )));
    }
    let ipam = b.ipam.unwrap_or_default();
    if let Some(d) = ipam
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "default")
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("plugin \"{d}\" not found"),
        ));
    }
    let mut configs = ipam.config.unwrap_or_default();
    if configs.len() > 1 {
        let v4: Vec<&IpamConfig> = configs
            .iter()
            .filter(|c| c.subnet.as_deref().is_some_and(|s| !s.contains(':')))
            .collect();
        if v4.len() > 1 {
            return Err(ApiError::bad_request(
                "berthd allocates from one IPv4 subnet per network: give one --subnet",
            ));
        }
    }
    // IPv6 subnets are accepted with EnableIPv6 but not allocated from.
    configs.retain(|c| !c.subnet.as_deref().is_some_and(|s| s.contains(':')));
    let c = configs.pop().unwrap_or_default();
    let rec = st
        .containers
        .networks()
        .create(CreateRequest {
            name: b.name,
            driver: b.driver.unwrap_or_default(),
            internal: b.internal,
            attachable: b.attachable,
            enable_ipv6: b.enable_ipv6,
            subnet: c.subnet,
            ip_range: c.ip_range,
            gateway: c.gateway,
            options: b.options.unwrap_or_default(),
            labels: b.labels.unwrap_or_default(),
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"Id": rec.id, "Warning": ""})),
    )
        .into_response())
}

/// `DELETE /networks/{id}`.
pub async fn delete(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.containers.networks().remove(&id).await?;
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
        .containers
        .networks()
        .prune(|n| !matches(n, false, &f).unwrap_or(false))
        .await;
    Ok(Json(serde_json::json!({"NetworksDeleted": removed})).into_response())
}

/// `POST /networks/{id}/{connect|disconnect}`.
pub async fn post_op(
    State(st): State<AppState>,
    Path((id, op)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    match op.as_str() {
        "connect" => {
            let b: ConnectBody = decode(&body)?;
            if b.container.is_empty() {
                return Err(ApiError::bad_request("no container given to connect"));
            }
            let cfg = serde_json::to_value(b.endpoint_config.unwrap_or_default())
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            if let Some(ip) = cfg["IPAMConfig"]["IPv4Address"]
                .as_str()
                .filter(|s| !s.is_empty())
            {
                networks::ipam::parse_addr(ip).map_err(|e| ApiError::bad_request(e.to_string()))?;
            }
            st.containers
                .connect_network(&b.container, &id, cfg)
                .await?;
        }
        "disconnect" => {
            let b: DisconnectBody = decode(&body)?;
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
