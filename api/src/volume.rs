//! Volumes: `/volumes` bodies and answers.

use crate::json::{Ty, STR_MAP};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

go_struct! {
    /// `POST /volumes/create`'s body (dockerd 20.10 names it `VolumeCreateBody`, as its
    /// errors say).
    pub struct VolumeCreateOptions = "volume.VolumeCreateBody" {
        /// Name (empty: a random one).
        #[serde(skip_serializing_if = "String::is_empty")]
        name: String = "Name": Ty::Str,
        /// Driver (empty: `local`).
        #[serde(skip_serializing_if = "String::is_empty")]
        driver: String = "Driver": Ty::Str,
        /// Driver options (`type`, `device`, `o` for `local`).
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        driver_opts: BTreeMap<String, String> = "DriverOpts": STR_MAP,
        /// Labels.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String> = "Labels": STR_MAP,
    }
}

/// Usage of a volume (`system df`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageData {
    /// Containers using it (-1: not computed).
    #[serde(rename = "RefCount")]
    pub ref_count: i64,
    /// Bytes (-1: not computed).
    #[serde(rename = "Size")]
    pub size: i64,
}

/// A volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    /// RFC 3339.
    #[serde(rename = "CreatedAt", skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    /// Driver.
    #[serde(rename = "Driver")]
    pub driver: String,
    /// Labels.
    #[serde(rename = "Labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Host path of its data.
    #[serde(rename = "Mountpoint")]
    pub mountpoint: String,
    /// Name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Driver options.
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
    /// `local`.
    #[serde(rename = "Scope")]
    pub scope: String,
    /// Driver status.
    #[serde(rename = "Status", skip_serializing_if = "Option::is_none")]
    pub status: Option<BTreeMap<String, serde_json::Value>>,
    /// Usage (`system df`).
    #[serde(rename = "UsageData", skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<UsageData>,
}

/// `GET /volumes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeListResponse {
    /// Volumes.
    #[serde(rename = "Volumes", default)]
    pub volumes: Option<Vec<Volume>>,
    /// Warnings.
    #[serde(rename = "Warnings", default)]
    pub warnings: Option<Vec<String>>,
}

/// `POST /volumes/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumesPruneReport {
    /// Names removed.
    #[serde(rename = "VolumesDeleted")]
    pub volumes_deleted: Option<Vec<String>>,
    /// Bytes freed.
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}
