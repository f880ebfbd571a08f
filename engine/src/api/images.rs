//! `/images/...`: list, create (pull and import), inspect, history, tag, push, delete,
//! save, load, prune.

use super::{
    body_to_file, json_stream, query_bool, query_get, query_pairs, ApiError, ApiResult, AppState,
};
use crate::images::reference::Reference;
use crate::images::{ImageFilters, ImportOptions, Platform};
use crate::progress::Progress;
use crate::streams::ChannelReader;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::Value;

fn registry_auth(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-registry-auth").and_then(|v| v.to_str().ok())
}

/// `GET /images/json`.
pub async fn list(State(st): State<AppState>, uri: Uri) -> ApiResult<Json<Value>> {
    let q = query_pairs(&uri);
    let mut filters = ImageFilters::parse(query_get(&q, "filters"))?;
    filters.all = query_bool(&q, "all");
    if let Some(f) = query_get(&q, "filter") {
        filters.reference.push(f.to_string()); // API < 1.41 spelling
    }
    Ok(Json(Value::Array(st.images.summaries(&filters)?)))
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc`).
pub async fn create(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let tag = query_get(&q, "tag").unwrap_or("");
    let platform = match query_get(&q, "platform").filter(|p| !p.is_empty()) {
        Some(p) => Some(Platform::parse(p)?),
        None => None,
    };
    if let Some(src) = query_get(&q, "fromSrc") {
        return import(st, &q, src, tag, platform, body).await;
    }
    let image = query_get(&q, "fromImage")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("fromImage or fromSrc is required"))?;
    let full = if tag.is_empty() {
        image.to_string()
    } else if tag.starts_with("sha256:") {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    };
    let reference = Reference::parse(&full).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let creds = st.images.credentials(registry_auth(&headers));
    // Only a platform the client named is checked against what a single-platform
    // image turns out to be (dockerd's warning below).
    let asked = platform.clone();
    let from_image = image.to_string();
    let platform = platform.unwrap_or_else(Platform::host);
    // No tag and no digest: every tag of the repository, as dockerd does (`pull -a`).
    let references = if reference.tag.is_none() && reference.digest.is_none() {
        let session = st
            .images
            .registry
            .session(&reference.domain, &reference.path, creds.clone(), false)
            .await
            .map_err(crate::images::Error::from)?;
        let mut tags = session.tags().await.map_err(crate::images::Error::from)?;
        tags.sort();
        if tags.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("repository {} has no tags", reference.familiar_name()),
            ));
        }
        tags.iter().map(|t| reference.with_tag(t)).collect()
    } else {
        vec![reference]
    };
    // Failures before any byte is streamed get a proper status code.
    let first = st
        .images
        .resolve_remote(&references[0], &platform, creds.clone())
        .await?;
    let (progress, rx) = Progress::channel();
    let svc = st.images.clone();
    tokio::spawn(async move {
        let mut next = Some(first);
        for r in &references {
            let resolved = match next.take() {
                Some(res) => Ok(res),
                None => svc.resolve_remote(r, &platform, creds.clone()).await,
            };
            let result = match resolved {
                Ok(res) => svc.pull(res, &progress).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(id) => {
                    // As dockerd since 20.10.7: a warning, not a failure (an index
                    // without the platform already failed in resolve_remote).
                    if let Some(actual) = asked
                        .as_ref()
                        .and_then(|want| svc.platform_mismatch(&id, want).map(|a| (want, a)))
                    {
                        progress.status(
                            None,
                            format!(
                                "WARNING: image with reference {from_image} was found but does not match the specified platform: wanted {}, actual: {}",
                                actual.0, actual.1
                            ),
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, reference = %r, "pull failed");
                    progress.error(e.to_string());
                    return;
                }
            }
        }
    });
    Ok(json_stream(rx))
}

async fn import(
    st: AppState,
    q: &[(String, String)],
    src: &str,
    tag: &str,
    platform: Option<Platform>,
    body: Body,
) -> ApiResult<Response> {
    if src != "-" {
        return Err(ApiError::bad_request(
            "importing from a URL is not supported: send the tarball as the request body (fromSrc=-)",
        ));
    }
    let repo = query_get(q, "repo").unwrap_or("");
    let reference = if repo.is_empty() {
        None
    } else {
        let full = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        Some(
            Reference::parse_with_default_tag(&full)
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        )
    };
    let opts = ImportOptions {
        reference,
        message: query_get(q, "message").unwrap_or("").to_string(),
        changes: q
            .iter()
            .filter(|(k, _)| k == "changes")
            .map(|(_, v)| v.clone())
            .collect(),
        platform,
    };
    let upload = body_to_file(body, st.images.tmp_dir()).await?;
    let svc = st.images.clone();
    let guard = svc.write_guard().await;
    let svc2 = svc.clone();
    let result = tokio::task::spawn_blocking(move || svc2.import(&upload, &opts))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    drop(guard);
    let id = result?;
    let (progress, rx) = Progress::channel();
    progress.status(None, id.to_string());
    Ok(json_stream(rx))
}

/// `GET|POST|DELETE /images/{name}/...`: the name may contain slashes, so the suffix
/// is split off here.
fn split_suffix<'a>(rest: &'a str, suffixes: &[&'a str]) -> Option<(&'a str, &'a str)> {
    suffixes
        .iter()
        .find_map(|s| {
            rest.strip_suffix(s)
                .map(|name| (name.trim_end_matches('/'), *s))
        })
        .filter(|(n, _)| !n.is_empty())
}

/// `GET /images/{name}/json|history|get`.
pub async fn get_sub(State(st): State<AppState>, Path(rest): Path<String>) -> ApiResult<Response> {
    let (name, what) = split_suffix(&rest, &["/json", "/history", "/get"])
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "page not found"))?;
    match what {
        "/json" => Ok(Json(st.images.inspect(name)?).into_response()),
        "/history" => Ok(Json(st.images.history(name)?).into_response()),
        _ => save(st, vec![name.to_string()]).await,
    }
}

/// `POST /images/{name}/tag|push`.
pub async fn post_sub(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (name, what) = split_suffix(&rest, &["/tag", "/push"])
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "page not found"))?;
    let q = query_pairs(&uri);
    let tag = query_get(&q, "tag").unwrap_or("");
    if what == "/tag" {
        let repo = query_get(&q, "repo")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ApiError::bad_request("repository name (repo) is required"))?;
        st.images.tag(name, repo, tag)?;
        return Ok(StatusCode::CREATED.into_response());
    }
    let base = Reference::parse(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let full = if tag.is_empty() {
        base.clone()
    } else {
        base.with_tag(tag)
    };
    let exists = match full.tag {
        Some(_) => st.images.meta.tag(&full.to_string())?.is_some(),
        None => st
            .images
            .meta
            .tags()?
            .iter()
            .any(|(t, _)| Reference::parse(t).is_ok_and(|r| r.name() == base.name())),
    };
    if !exists {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "An image does not exist locally with the tag: {}",
                full.familiar_name()
            ),
        ));
    }
    let creds = st.images.credentials(registry_auth(&headers));
    let (progress, rx) = Progress::channel();
    let svc = st.images.clone();
    let (name, tag) = (name.to_string(), tag.to_string());
    tokio::spawn(async move {
        if let Err(e) = svc.push(&name, &tag, creds, &progress).await {
            tracing::warn!(error = %e, "push failed");
            progress.error(e.to_string());
        }
    });
    Ok(json_stream(rx))
}

/// `DELETE /images/{name}`.
pub async fn delete(
    State(st): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
) -> ApiResult<Json<Value>> {
    let q = query_pairs(&uri);
    let out = st
        .images
        .delete(&name, query_bool(&q, "force"), query_bool(&q, "noprune"))
        .await?;
    Ok(Json(Value::Array(out)))
}

/// `POST /images/prune`.
pub async fn prune(State(st): State<AppState>, uri: Uri) -> ApiResult<Json<Value>> {
    let q = query_pairs(&uri);
    let filters = ImageFilters::parse(query_get(&q, "filters"))?;
    Ok(Json(st.images.prune(&filters).await?))
}

/// `GET /images/get?names=...`.
pub async fn save_many(State(st): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let names: Vec<String> = query_pairs(&uri)
        .into_iter()
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v)
        .collect();
    if names.is_empty() {
        return Err(ApiError::bad_request("no images named (names=...)"));
    }
    save(st, names).await
}

async fn save(st: AppState, names: Vec<String>) -> ApiResult<Response> {
    let items = st.images.save_items(&names)?;
    let svc = st.images.clone();
    let body = crate::streams::body_from_blocking("save", |writer| async move {
        // Blobs must outlive the stream: hold off GC until the archive is written.
        let _guard = svc.write_guard().await;
        let writing = svc.clone();
        crate::streams::on_blocking_pool(move || writing.save(&items, writer)).await
    });
    Ok(([(header::CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// `POST /images/load`. `quiet` only silences progress bars, which load does not draw:
/// the `Loaded image:` lines are always sent, as dockerd does. The body is unpacked as
/// it arrives.
pub async fn load(State(st): State<AppState>, body: Body) -> ApiResult<Response> {
    let svc = st.images.clone();
    let guard = svc.write_guard().await;
    let (progress, rx) = Progress::channel();
    let (tx, reader) = ChannelReader::new(16);
    let svc2 = svc.clone();
    let worker = tokio::task::spawn_blocking(move || {
        let r = svc2.load(reader, &progress);
        (r, progress)
    });
    let mut stream = body.into_data_stream();
    let mut body_err = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                if tx.send(c).await.is_err() {
                    break; // the loader stopped; its error says why
                }
            }
            Err(e) => {
                body_err = Some(e.to_string());
                break;
            }
        }
    }
    drop(tx);
    let (result, progress) = worker
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    drop(guard);
    let result = match body_err {
        Some(e) => Err(crate::images::Error::Invalid(format!(
            "reading request body: {e}"
        ))),
        None => result,
    };
    if let Err(e) = result {
        // Nothing of a failed load stays: collect what no image references.
        if let Err(gc) = svc.gc().await {
            tracing::warn!(error = %gc, "cleanup after failed load");
        }
        // As dockerd: the load's answer is a stream, and its failure the stream's last
        // message (clients such as docker-py raise their error from it).
        tracing::debug!(error = %e, "load failed");
        progress.error(e.to_string());
    }
    drop(progress);
    Ok(json_stream(rx))
}
