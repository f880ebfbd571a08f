//! `/build`, `/build/prune`, `/commit`, and a container's `changes` and `export`.
//!
//! `POST /build` reads the whole context first (streamed to disk as it arrives), then
//! parses the Dockerfile and checks the options: an error up to there is an HTTP error
//! with its status, as dockerd answers before its first output. Then the build runs in
//! its own task, its output streamed as Docker's JSON messages; if the client goes away
//! the build stops and cleans up after itself.

use super::{query_bool, query_get, query_pairs, ApiError, ApiResult, AppState};
use crate::build::commit::CommitOptions;
use crate::build::options::BuildOptions;
use crate::build::output::Output;
use crate::build::{BuildError, BuildService};
use crate::images::config::RunConfig;
use crate::images::reference::Reference;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};

impl From<BuildError> for ApiError {
    fn from(e: BuildError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.to_string())
    }
}

/// `POST /build`.
pub async fn build(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let registry = headers
        .get("x-registry-config")
        .and_then(|v| v.to_str().ok());
    let opts = BuildOptions::parse(&q, registry)?;
    // The context: pumped from the body into a blocking unpacker a few chunks ahead,
    // so memory stays flat whatever its size. A body that breaks is an error, never a
    // shorter context.
    let (tx, reader) = crate::streams::FallibleChannelReader::new(16);
    let pump = tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let item =
                chunk.map_err(|e| std::io::Error::other(format!("reading the build context: {e}")));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    let received = st.builds.receive(reader).await;
    pump.abort();
    let mut ctx = received?;
    tracing::debug!(
        entries = ctx.entries,
        bytes = ctx.size,
        "build context received"
    );
    let plan = BuildService::plan(&mut ctx, &opts)?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let svc = st.builds.clone();
    tokio::spawn(async move {
        let out = Output::new(tx, opts.quiet);
        match svc.build(ctx, plan, &opts, &out).await {
            Ok(id) => out.done(id.as_str()),
            Err(BuildError::Cancelled) => {
                tracing::info!("build cancelled: the client went away");
            }
            Err(e) => {
                tracing::debug!(error = %e, "build failed");
                out.error(&e.to_string(), e.code());
            }
        }
    });
    Ok(super::json_stream(rx))
}

/// `POST /build/prune`: clears build cache entries nothing else holds.
pub async fn prune(State(st): State<AppState>, uri: Uri) -> ApiResult<Json<Value>> {
    let q = query_pairs(&uri);
    if let Some(ks) = query_get(&q, "keep-storage").filter(|v| !v.is_empty()) {
        ks.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!(
                "keep-storage is in bytes and expects an integer, got {ks}"
            ))
        })?;
    }
    let (removed, freed) = st.images.prune_build_cache(query_bool(&q, "all")).await?;
    Ok(Json(json!({
        "CachesDeleted": if removed.is_empty() { Value::Null } else { json!(removed) },
        "SpaceReclaimed": freed,
    })))
}

/// `POST /commit`.
pub async fn commit(State(st): State<AppState>, uri: Uri, body: Body) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    let container = query_get(&q, "container").unwrap_or("").to_string();
    let repo = query_get(&q, "repo").unwrap_or("");
    let tag = query_get(&q, "tag").unwrap_or("");
    let reference = if repo.is_empty() {
        None
    } else {
        let full = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        let r = Reference::parse_with_default_tag(&full)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if r.digest.is_some() {
            return Err(ApiError::bad_request(
                "refusing to create a tag with a digest reference",
            ));
        }
        Some(r)
    };
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    let config: Option<RunConfig> = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
        if v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) {
            None
        } else {
            Some(serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?)
        }
    };
    let pause = match query_get(&q, "pause") {
        None | Some("") => true,
        Some(_) => query_bool(&q, "pause"),
    };
    let opts = CommitOptions {
        reference,
        comment: query_get(&q, "comment").unwrap_or("").to_string(),
        author: query_get(&q, "author").unwrap_or("").to_string(),
        pause,
        changes: q
            .iter()
            .filter(|(k, _)| k == "changes")
            .map(|(_, v)| v.clone())
            .collect(),
        config,
    };
    let id = st.builds.commit(&container, opts).await?;
    Ok((StatusCode::CREATED, Json(json!({ "Id": id }))).into_response())
}

/// `GET /containers/{id}/changes`.
pub async fn changes(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let svc = st.builds.clone();
    let list = tokio::task::spawn_blocking(move || svc.changes(&id))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(Value::Array(
        list.into_iter()
            .map(|c| json!({ "Path": c.path, "Kind": c.kind }))
            .collect(),
    )))
}

/// `GET /containers/{id}/export`: the container's file system as a tar, streamed.
pub async fn export(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    // A missing container is a 404 before any byte of the tar.
    st.containers.get(&id)?;
    let svc = st.builds.clone();
    let body = crate::streams::body_from_blocking("export", |writer| {
        crate::streams::on_blocking_pool(move || svc.export(&id, writer))
    });
    Ok(([("content-type", "application/x-tar")], body).into_response())
}
