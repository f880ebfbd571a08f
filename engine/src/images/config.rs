//! An image's configuration as Docker writes it (`application/vnd.docker.container.
//! image.v1+json`, a superset of the OCI image config): the run config containers start
//! from, the build's container config, history and root filesystem. Typed, so the
//! builder and commit never handle it as loose JSON; field names and omissions follow
//! Docker's Go structs, so what berthd writes reads the same to every client.

use crate::content::Digest;
use serde::{Deserialize, Deserializer, Serialize};

/// `null` reads as the default (Go decodes `null` into a zero value).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The run config: berth-api's `container.Config` (an image's config has its shape).
pub use berth_api::container::{Config as RunConfig, Empty, HealthConfig};

/// What the builder and commit do with a run config's environment.
pub trait EnvExt {
    /// The environment, empty if none.
    fn env(&self) -> &[String];
    /// Sets `key=value`, replacing an entry of the same key in place, as ENV does.
    fn set_env(&mut self, key: &str, value: &str);
}

impl EnvExt for RunConfig {
    fn env(&self) -> &[String] {
        self.env.as_deref().unwrap_or(&[])
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        let env = self.env.get_or_insert_with(Vec::new);
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }
}

/// One history entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created: String,
    /// Author.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// The command that made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// Comment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// True if it added no layer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

/// The layers of the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Uncompressed layer digests, base first.
    #[serde(default, deserialize_with = "null_default")]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        Self {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// An image config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// CPU architecture.
    #[serde(default)]
    pub architecture: String,
    /// What containers start with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    /// The container it was committed from (builds and commit).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// That container's config (for a build step: the step's command as its Cmd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<RunConfig>,
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created: String,
    /// Author.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// Commit message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The engine that made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    /// History, oldest first.
    #[serde(default, deserialize_with = "null_default")]
    pub history: Vec<History>,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// Architecture variant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// Layers.
    #[serde(default)]
    pub rootfs: RootFs,
}

impl ImageConfig {
    /// The run config, or an empty one.
    pub fn run_config(&self) -> RunConfig {
        self.config.clone().unwrap_or_default()
    }
}

/// The engine version written into images berthd makes.
pub const ENGINE_VERSION: &str = concat!("berth-", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_configs_and_writes_dockers_shape() {
        let text = r#"{"architecture":"amd64","config":{"Hostname":"","Env":["PATH=/bin"],
            "Cmd":["sh"],"Image":"sha256:x","Volumes":null,"WorkingDir":"","Entrypoint":null,
            "OnBuild":null,"Labels":{"a":"b"},"Healthcheck":{"Test":["NONE"]}},
            "created":"2024-01-01T00:00:00Z","history":[{"created_by":"x","empty_layer":true}],
            "os":"linux","rootfs":{"type":"layers","diff_ids":null},"unknown":1}"#;
        let c: ImageConfig = serde_json::from_str(text).unwrap();
        let rc = c.config.clone().unwrap();
        assert_eq!(rc.cmd, Some(vec!["sh".to_string()]));
        let _ = is_false;
        assert_eq!(rc.labels.as_ref().unwrap()["a"], "b");
        assert!(c.rootfs.diff_ids.is_empty());
        let out = serde_json::to_value(&c).unwrap();
        assert_eq!(out["config"]["Volumes"], serde_json::Value::Null);
        assert_eq!(out["config"]["Healthcheck"]["Test"][0], "NONE");
        assert!(out["config"].get("ExposedPorts").is_none());
        assert!(out["config"].get("ArgsEscaped").is_none());
        assert_eq!(out["history"][0]["empty_layer"], true);
    }

    #[test]
    fn set_env_replaces_in_place() {
        let mut rc = RunConfig {
            env: Some(vec!["A=1".into(), "B=2".into()]),
            ..Default::default()
        };
        rc.set_env("A", "3");
        rc.set_env("C", "4");
        assert_eq!(rc.env(), ["A=3", "B=2", "C=4"]);
    }
}
