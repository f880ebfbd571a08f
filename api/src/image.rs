//! Images: list, inspect, history, delete and prune answers; the JSON progress stream of
//! pull, push, load and build; the simple options of `POST /build`.

use crate::container::{Config, GraphDriverData};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `GET /images/json`: one image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageSummary {
    /// Containers using it (-1: not computed).
    #[serde(rename = "Containers")]
    pub containers: i64,
    /// Unix seconds.
    #[serde(rename = "Created")]
    pub created: i64,
    /// `sha256:...`.
    #[serde(rename = "Id")]
    pub id: String,
    /// Labels.
    #[serde(rename = "Labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Parent image ID.
    #[serde(rename = "ParentId")]
    pub parent_id: String,
    /// `name@sha256:...`.
    #[serde(rename = "RepoDigests")]
    pub repo_digests: Option<Vec<String>>,
    /// `name:tag`.
    #[serde(rename = "RepoTags")]
    pub repo_tags: Option<Vec<String>>,
    /// Bytes shared with other images (-1: not computed).
    #[serde(rename = "SharedSize")]
    pub shared_size: i64,
    /// Bytes.
    #[serde(rename = "Size")]
    pub size: i64,
    /// Bytes (deprecated: same as Size).
    #[serde(rename = "VirtualSize", skip_serializing_if = "is_zero")]
    pub virtual_size: i64,
}

/// `RootFS` in image inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RootFs {
    /// `layers`.
    #[serde(rename = "Type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Diff IDs.
    #[serde(rename = "Layers", skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
}

/// `Metadata` in image inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageMetadata {
    /// When it was last tagged (RFC 3339; Go's zero time if never).
    #[serde(rename = "LastTagTime", default)]
    pub last_tag_time: String,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageInspect {
    /// `sha256:...`.
    #[serde(rename = "Id")]
    pub id: String,
    /// `name:tag`.
    #[serde(rename = "RepoTags")]
    pub repo_tags: Vec<String>,
    /// `name@sha256:...`.
    #[serde(rename = "RepoDigests")]
    pub repo_digests: Vec<String>,
    /// Parent image ID (locally built images).
    #[serde(rename = "Parent")]
    pub parent: String,
    /// Comment (`docker commit -m`, import's message).
    #[serde(rename = "Comment")]
    pub comment: String,
    /// RFC 3339.
    #[serde(rename = "Created")]
    pub created: String,
    /// The container it was committed from.
    #[serde(rename = "Container")]
    pub container: String,
    /// That container's config.
    #[serde(rename = "ContainerConfig")]
    pub container_config: Option<Config>,
    /// The engine's version that built it.
    #[serde(rename = "DockerVersion")]
    pub docker_version: String,
    /// Author.
    #[serde(rename = "Author")]
    pub author: String,
    /// The config containers start from.
    #[serde(rename = "Config")]
    pub config: Option<Config>,
    /// `amd64`, ...
    #[serde(rename = "Architecture")]
    pub architecture: String,
    /// `v8`, ...
    #[serde(rename = "Variant", skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// `linux`.
    #[serde(rename = "Os")]
    pub os: String,
    /// OS version (Windows).
    #[serde(rename = "OsVersion", skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// Bytes.
    #[serde(rename = "Size")]
    pub size: i64,
    /// Bytes (deprecated).
    #[serde(rename = "VirtualSize", skip_serializing_if = "is_zero")]
    pub virtual_size: i64,
    /// Storage driver data.
    #[serde(rename = "GraphDriver")]
    pub graph_driver: GraphDriverData,
    /// Layers.
    #[serde(rename = "RootFS")]
    pub root_fs: RootFs,
    /// Local metadata.
    #[serde(rename = "Metadata")]
    pub metadata: ImageMetadata,
}

/// `GET /images/{name}/history`: one layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryResponseItem {
    /// Comment.
    #[serde(rename = "Comment")]
    pub comment: String,
    /// Unix seconds.
    #[serde(rename = "Created")]
    pub created: i64,
    /// The instruction.
    #[serde(rename = "CreatedBy")]
    pub created_by: String,
    /// Image ID, or `<missing>`.
    #[serde(rename = "Id")]
    pub id: String,
    /// Bytes.
    #[serde(rename = "Size")]
    pub size: i64,
    /// Tags of that image.
    #[serde(rename = "Tags")]
    pub tags: Option<Vec<String>>,
}

/// `DELETE /images/{name}`: one line of the answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageDeleteResponseItem {
    /// An image ID removed.
    #[serde(rename = "Deleted", default, skip_serializing_if = "String::is_empty")]
    pub deleted: String,
    /// A reference removed.
    #[serde(rename = "Untagged", default, skip_serializing_if = "String::is_empty")]
    pub untagged: String,
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImagesPruneReport {
    /// What was removed.
    #[serde(rename = "ImagesDeleted")]
    pub images_deleted: Option<Vec<ImageDeleteResponseItem>>,
    /// Bytes freed.
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}

/// Progress of one layer in a [`JsonMessage`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressDetail {
    /// Bytes done.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: i64,
    /// Bytes in all.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: i64,
}

/// The error of a failed stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Code (rarely set).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: i64,
    /// The message.
    #[serde(default)]
    pub message: String,
}

/// One line of the JSON progress stream of pull, push, load, import and build (moby's
/// `jsonmessage.JSONMessage`). An error arrives as a line with `error` and
/// `errorDetail` after a 200 has been sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonMessage {
    /// Build output.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stream: String,
    /// `Pulling fs layer`, `Download complete`, ...
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Progress of the layer.
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    /// The progress bar as text (deprecated).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub progress: String,
    /// The layer or object.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Error (deprecated form).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Error.
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    /// Auxiliary data (`{"ID": "sha256:..."}` after a build, a push's digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl JsonMessage {
    /// A line reporting a failure.
    pub fn error(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            error: message.clone(),
            error_detail: Some(ErrorDetail { code: 0, message }),
            ..Default::default()
        }
    }
}

/// An option of `POST /build` that dockerd cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildOptionsError {
    /// A JSON-valued parameter that is not the JSON it should be.
    #[error("invalid {param}: {reason}")]
    Json {
        /// Parameter.
        param: &'static str,
        /// serde's reason.
        reason: String,
    },
    /// A number that is not one.
    #[error("invalid {param}: strconv.ParseInt: parsing \"{value}\": invalid syntax")]
    Int {
        /// Parameter.
        param: &'static str,
        /// Its value.
        value: String,
    },
}

/// The simple options of the classic builder's `POST /build` (query parameters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOptions {
    /// `t`: names to tag the result with.
    pub tags: Vec<String>,
    /// `dockerfile`: its path in the context (default `Dockerfile`).
    pub dockerfile: String,
    /// `q`: only the image ID.
    pub quiet: bool,
    /// `nocache`.
    pub no_cache: bool,
    /// `rm` (default true): remove intermediate containers after a success.
    pub remove: bool,
    /// `forcerm`: always remove them.
    pub force_remove: bool,
    /// `pull`: pull the base image.
    pub pull: bool,
    /// `buildargs`: ARG values (a value may be null: take it from the environment).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `labels`.
    pub labels: BTreeMap<String, String>,
    /// `target`: the stage to stop at.
    pub target: String,
    /// `networkmode` of RUN steps.
    pub network_mode: String,
    /// `platform`.
    pub platform: String,
    /// `cachefrom`: images to take cache from.
    pub cache_from: Vec<String>,
    /// `extrahosts`.
    pub extra_hosts: Vec<String>,
    /// `memory`, `memswap`, `cpushares`, `cpuperiod`, `cpuquota`, `shmsize`.
    pub memory: i64,
    /// Memory + swap.
    pub memory_swap: i64,
    /// CPU shares.
    pub cpu_shares: i64,
    /// CFS period.
    pub cpu_period: i64,
    /// CFS quota.
    pub cpu_quota: i64,
    /// /dev/shm size.
    pub shm_size: i64,
    /// `cpusetcpus`.
    pub cpuset_cpus: String,
    /// `cpusetmems`.
    pub cpuset_mems: String,
}

impl BuildOptions {
    /// Reads the options from the query's pairs, as dockerd's `newImageBuildOptions`
    /// does for these (booleans as Go's `strconv.ParseBool`, unknown parameters
    /// ignored).
    pub fn from_query(q: &[(String, String)]) -> Result<Self, BuildOptionsError> {
        let get = |k: &str| {
            q.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let flag = |k: &str, default: bool| match get(k) {
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => true,
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => false,
            _ => default,
        };
        let int = |k: &'static str| -> Result<i64, BuildOptionsError> {
            match get(k).filter(|v| !v.is_empty()) {
                None => Ok(0),
                Some(v) => v.parse().map_err(|_| BuildOptionsError::Int {
                    param: k,
                    value: v.to_string(),
                }),
            }
        };
        fn json<T: serde::de::DeserializeOwned + Default>(
            v: Option<&str>,
            param: &'static str,
        ) -> Result<T, BuildOptionsError> {
            match v.filter(|v| !v.is_empty()) {
                None => Ok(T::default()),
                Some(v) => serde_json::from_str(v).map_err(|e| BuildOptionsError::Json {
                    param,
                    reason: e.to_string(),
                }),
            }
        }
        Ok(Self {
            tags: q
                .iter()
                .filter(|(k, v)| k == "t" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
            dockerfile: get("dockerfile").unwrap_or("").to_string(),
            quiet: flag("q", false),
            no_cache: flag("nocache", false),
            remove: flag("rm", true),
            force_remove: flag("forcerm", false),
            pull: flag("pull", false),
            build_args: json(get("buildargs"), "buildargs")?,
            labels: json(get("labels"), "labels")?,
            target: get("target").unwrap_or("").to_string(),
            network_mode: get("networkmode").unwrap_or("").to_string(),
            platform: get("platform").unwrap_or("").to_string(),
            cache_from: json(get("cachefrom"), "cachefrom")?,
            extra_hosts: q
                .iter()
                .filter(|(k, v)| k == "extrahosts" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
            memory: int("memory")?,
            memory_swap: int("memswap")?,
            cpu_shares: int("cpushares")?,
            cpu_period: int("cpuperiod")?,
            cpu_quota: int("cpuquota")?,
            shm_size: int("shmsize")?,
            cpuset_cpus: get("cpusetcpus").unwrap_or("").to_string(),
            cpuset_mems: get("cpusetmems").unwrap_or("").to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn build_options_read_as_dockerd_reads_them() {
        let o = BuildOptions::from_query(&q(&[
            ("t", "a:1"),
            ("t", "b"),
            ("q", "1"),
            ("rm", "0"),
            ("buildargs", r#"{"A":"1","B":null}"#),
            ("labels", r#"{"l":"v"}"#),
            ("memory", "1000"),
            ("cachefrom", r#"["x"]"#),
        ]))
        .unwrap();
        assert_eq!(o.tags, ["a:1", "b"]);
        assert!(o.quiet && !o.remove && !o.no_cache);
        assert_eq!(o.build_args["A"].as_deref(), Some("1"));
        assert_eq!(o.build_args["B"], None);
        assert_eq!(o.labels["l"], "v");
        assert_eq!((o.memory, o.cache_from.len()), (1000, 1));
        assert!(BuildOptions::from_query(&[]).unwrap().remove);
        assert_eq!(
            BuildOptions::from_query(&q(&[("memory", "lots")]))
                .unwrap_err()
                .to_string(),
            "invalid memory: strconv.ParseInt: parsing \"lots\": invalid syntax"
        );
        assert!(BuildOptions::from_query(&q(&[("buildargs", "[")]))
            .unwrap_err()
            .to_string()
            .starts_with("invalid buildargs: "));
    }

    #[test]
    fn stream_errors_carry_both_forms() {
        let v = serde_json::to_value(JsonMessage::error("boom")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": "boom", "errorDetail": {"message": "boom"}})
        );
    }
}
