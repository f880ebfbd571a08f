//! `GET /events`: one JSON message per event.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What an event is about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// The object's ID (a volume's or network's name for those).
    #[serde(rename = "ID")]
    pub id: String,
    /// Attributes (`name`, `image`, labels, `exitCode`, ...).
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event. The lower-case `status`/`id`/`from` fields are the pre-1.22 form that
/// dockerd still writes for container and image events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Deprecated: the action.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Deprecated: the actor's ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Deprecated: the image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// container, image, volume, network, daemon, ...
    #[serde(rename = "Type")]
    pub kind: String,
    /// create, start, die, `exec_start: CMD`, `health_status: healthy`, ...
    #[serde(rename = "Action")]
    pub action: String,
    /// The object.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// `local`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub time: i64,
    /// Unix nanoseconds.
    #[serde(rename = "timeNano", default, skip_serializing_if = "is_zero")]
    pub time_nano: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}
