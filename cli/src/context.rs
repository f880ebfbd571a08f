//! docker's contexts: named endpoints kept in the docker CLI's store, so that both
//! CLIs see the same ones: `$DOCKER_CONFIG/contexts/meta/<sha256 of the name>/meta.json`
//! (`{"Name", "Metadata": {"Description"}, "Endpoints": {"docker": {"Host",
//! "SkipTLSVerify"}}}`), the current one in config.json's `currentContext`. The
//! endpoint berth talks to is chosen as docker chooses it: `-H`, else `--context`,
//! else `BERTH_HOST` or `DOCKER_HOST`, else `DOCKER_CONTEXT`, else the current
//! context, else the default socket.

use crate::config::{self, ConfigFile};
use crate::endpoint::{ConnectOptions, Endpoint as Target, TlsFiles, DEFAULT_SOCKET};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The context that stands for the environment (`DOCKER_HOST` or the default socket).
pub const DEFAULT: &str = "default";

/// A context's docker endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `unix:///path`, `tcp://host:port`.
    #[serde(rename = "Host", default)]
    pub host: String,
    /// Skip verifying the daemon's certificate.
    #[serde(rename = "SkipTLSVerify", default)]
    pub skip_tls_verify: bool,
}

/// `meta.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The name.
    #[serde(rename = "Name")]
    pub name: String,
    /// `{"Description": ...}` and whatever else docker keeps there.
    #[serde(rename = "Metadata", default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// `{"docker": {...}}`.
    #[serde(rename = "Endpoints", default)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl Meta {
    /// The description.
    pub fn description(&self) -> String {
        self.metadata
            .get("Description")
            .and_then(|d| d.as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// The docker endpoint's host.
    pub fn host(&self) -> String {
        self.endpoints
            .get("docker")
            .map(|e| e.host.clone())
            .unwrap_or_default()
    }
}

fn meta_root() -> PathBuf {
    config::dir().join("contexts").join("meta")
}

/// Where a context's metadata lives.
pub fn meta_dir(name: &str) -> PathBuf {
    let digest = sha2::Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    meta_root().join(hex)
}

/// docker's rule for context names.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c))
}

/// The default context: the environment's endpoint.
pub fn default_meta() -> Meta {
    let host = env_host().unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"));
    Meta {
        name: DEFAULT.into(),
        metadata: BTreeMap::from([(
            "Description".to_string(),
            serde_json::Value::from("Current DOCKER_HOST based configuration"),
        )]),
        endpoints: BTreeMap::from([(
            "docker".to_string(),
            Endpoint {
                host,
                skip_tls_verify: false,
            },
        )]),
    }
}

/// A stored context (the default one is made up from the environment).
pub fn load(name: &str) -> Result<Meta> {
    if name == DEFAULT {
        return Ok(default_meta());
    }
    let p = meta_dir(name).join("meta.json");
    let bytes = std::fs::read(&p).map_err(|e| {
        Error::Usage(format!(
            "context \"{name}\": context not found: open {}: {}",
            p.display(),
            if e.kind() == std::io::ErrorKind::NotFound {
                "no such file or directory".to_string()
            } else {
                e.to_string()
            }
        ))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Usage(format!("context \"{name}\": {}: {e}", p.display())))
}

/// Every stored context, by name.
pub fn list() -> Result<Vec<Meta>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(meta_root()) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(format!("reading {}", meta_root().display()), e)),
    };
    for e in entries.flatten() {
        if let Ok(bytes) = std::fs::read(e.path().join("meta.json")) {
            if let Ok(m) = serde_json::from_slice::<Meta>(&bytes) {
                out.push(m);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Stores a context (its directory 0755, the file 0644, as docker).
pub fn store(m: &Meta) -> Result<()> {
    let d = meta_dir(&m.name);
    std::fs::create_dir_all(&d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
    let text = serde_json::to_vec(m).map_err(|e| Error::Usage(format!("encoding context: {e}")))?;
    let tmp = d.join(format!(".meta.json.{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, d.join("meta.json")))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("writing {}", d.display()), e)
        })
}

/// Removes a stored context and its TLS files.
pub fn remove(name: &str) -> Result<()> {
    if let Some(tls) = tls_dir(name).parent() {
        match std::fs::remove_dir_all(tls) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(format!("removing {}", tls.display()), e))
            }
            _ => {}
        }
    }
    let d = meta_dir(name);
    std::fs::remove_dir_all(&d).map_err(|e| Error::io(format!("removing {}", d.display()), e))
}

/// `BERTH_HOST`, then `DOCKER_HOST`, if set.
pub fn env_host() -> Option<String> {
    ["BERTH_HOST", "DOCKER_HOST"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|h| !h.is_empty()))
}

/// The context in use: `--context`, else `DOCKER_CONTEXT`, else config.json's, else
/// the default.
pub fn current(flag: Option<&str>) -> String {
    if let Some(c) = flag.filter(|c| !c.is_empty()) {
        return c.to_string();
    }
    if let Some(c) = std::env::var("DOCKER_CONTEXT")
        .ok()
        .filter(|c| !c.is_empty())
    {
        return c;
    }
    ConfigFile::load()
        .ok()
        .map(|c| c.current_context)
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| DEFAULT.to_string())
}

/// Where a context's TLS files are: `contexts/tls/<sha256 of the name>/docker/`.
pub fn tls_dir(name: &str) -> PathBuf {
    let meta = meta_dir(name);
    config::dir()
        .join("contexts")
        .join("tls")
        .join(meta.file_name().unwrap_or_default())
        .join("docker")
}

/// Chooses the endpoint as docker does (see the module's header): the connection
/// flags and the environment for the default context, a stored context's host and TLS
/// files otherwise.
pub fn endpoint(connect: &ConnectOptions, context_flag: Option<&str>) -> Result<Target> {
    let context_flag = context_flag.filter(|c| !c.is_empty());
    if !connect.host.is_empty() {
        if context_flag.is_some() {
            return Err(Error::Usage(
                "conflicting options: cannot specify both --host and --context".into(),
            ));
        }
        return connect.resolve();
    }
    if context_flag.is_none() && env_host().is_some() {
        return connect.resolve();
    }
    let name = current(context_flag);
    if name == DEFAULT {
        return connect.resolve();
    }
    let m = load(&name)?;
    let ep = m.endpoints.get("docker").cloned().unwrap_or_default();
    // TLS when the context holds a CA, as docker's store keeps it; the flags and
    // DOCKER_TLS* belong to the default context only.
    let dir = tls_dir(&name);
    let tls = dir.join("ca.pem").exists().then(|| {
        let present = |f: &str| Some(dir.join(f)).filter(|p| p.exists());
        TlsFiles {
            verify: !ep.skip_tls_verify,
            ca: dir.join("ca.pem"),
            cert: present("cert.pem"),
            key: present("key.pem"),
        }
    });
    crate::endpoint::parse_host(ep.host.trim(), tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_store_paths_are_docker_s() {
        assert!(valid_name("bt"));
        assert!(valid_name("a.b_c+d-e"));
        assert!(!valid_name("b@d"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a"));
        // docker's store: the SHA-256 of the name.
        assert!(meta_dir("bt")
            .ends_with("5e73d6d7edd38daeae9f10721987e301e4d4b5421e88eb17063ac5a41b168273"));
    }
}
