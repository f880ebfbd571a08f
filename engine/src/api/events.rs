//! `GET /events`: Docker's container events, from those kept (`since`) and then live.

use super::{query_get, query_pairs, ApiError, ApiResult, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use berth_api::events::Message;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

fn event_matches(ev: &Message, fs: &[(String, String)]) -> bool {
    let attrs = &ev.actor.attributes;
    let attr = |k: &str| attrs.get(k).map(String::as_str);
    let id = ev.id.as_str();
    let check = |key: &str, pass: &dyn Fn(&str) -> bool| {
        let vals: Vec<&String> = fs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        vals.is_empty() || vals.iter().any(|v| pass(v))
    };
    // A network's connect and disconnect name the container in an attribute.
    let container = if ev.kind == "container" {
        Some((id, attr("name")))
    } else {
        attr("container").map(|c| (c, None))
    };
    check("type", &|v| v == ev.kind)
        && check("container", &|v| {
            container.is_some_and(|(id, name)| id.starts_with(v) || name == Some(v))
        })
        && check("event", &|v| {
            // As dockerd: these three match their "NAME: detail" actions by prefix.
            let action = ev.action.as_str();
            action == v
                || (["health_status", "exec_create", "exec_start"].contains(&v)
                    && action.starts_with(&format!("{v}:")))
        })
        && check("image", &|v| attr("image") == Some(v))
        && fs
            .iter()
            .filter(|(k, _)| k == "label")
            .all(|(_, v)| match v.split_once('=') {
                Some((k, val)) => attr(k) == Some(val),
                None => attrs.contains_key(v.as_str()),
            })
}

/// `GET /events`: container events from `since` (kept in memory: the last 1024),
/// then live until `until` or the client leaves; filters type, container, event,
/// image, label.
pub async fn events(State(st): State<AppState>, uri: Uri) -> ApiResult<Response> {
    let q = query_pairs(&uri);
    // Any key is taken: an unknown one matches nothing.
    let fs = super::containers::parse_filters(&q, None)?;
    let time = |k: &str| -> ApiResult<Option<i64>> {
        match query_get(&q, k).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .map(|f| Some((f * 1e9) as i64))
                .map_err(|_| ApiError::bad_request(format!("invalid {k}: {v}"))),
        }
    };
    let (since, until) = (time("since")?, time("until")?);
    let mut live = st.containers.events.subscribe();
    let past: Vec<Arc<Message>> = match since {
        Some(s) => st.containers.events.since(s),
        None => Vec::new(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let before_until = |e: &Message| until.is_none_or(|u| e.time_nano <= u);
        let line = |e: &Message| {
            let mut l = serde_json::to_vec(e).unwrap_or_default();
            l.push(b'\n');
            Bytes::from(l)
        };
        let mut last = 0i64;
        for e in past {
            if before_until(&e) && event_matches(&e, &fs) {
                last = e.time_nano;
                if tx.send(line(&e)).await.is_err() {
                    return;
                }
            }
        }
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        if until.is_some_and(|u| u <= now) {
            return;
        }
        let deadline = until.map(|u| Duration::from_nanos((u - now).max(0) as u64));
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout(d, live.recv()).await {
                    Ok(r) => r,
                    Err(_) => return,
                },
                None => live.recv().await,
            };
            match next {
                Ok(e) => {
                    if e.time_nano > last
                        && before_until(&e)
                        && event_matches(&e, &fs)
                        && tx.send(line(&e)).await.is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
            if until.is_some_and(|u| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) > u) {
                return;
            }
        }
    });
    let s = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(futures_util::StreamExt::map(
            s,
            Ok::<_, std::convert::Infallible>,
        )),
    )
        .into_response())
}
