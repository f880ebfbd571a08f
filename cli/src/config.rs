//! The CLI's own configuration file, `$BERTH_CONFIG/config.json` (default
//! `~/.berth/config.json`), in docker's format: registry logins as
//! `{"auths": {"HOST": {"auth": base64(user:password)}}}`, kept mode 0600. Keys the CLI
//! does not know are kept as they are.

use crate::error::{Error, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

/// The key docker uses for Docker Hub in `auths`.
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// The directory holding `config.json`: `$BERTH_CONFIG`, else `~/.berth`.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BERTH_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    // Without $HOME (a bare service environment), the root directory, as Go's
    // os.UserHomeDir fallback in docker would fail anyway.
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".berth")
}

/// The path of `config.json`.
pub fn path() -> PathBuf {
    dir().join("config.json")
}

/// The registry key a server address is stored under: `host[:port]` without scheme or
/// path, and [`DOCKER_HUB`] for Docker Hub and its aliases (as docker stores them).
pub fn registry_key(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

/// The registry an image reference lives in, as a [`registry_key`]: the first path
/// component when it looks like a host (has `.` or `:`, or is `localhost`), else
/// Docker Hub.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
            registry_key(first)
        }
        _ => DOCKER_HUB.to_string(),
    }
}

/// Reads the config file; a missing file is an empty config.
fn load() -> Result<Map<String, Value>> {
    let p = path();
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(Error::io(format!("reading {}", p.display()), e)),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::Usage(format!("{}: not a JSON object", p.display()))),
        Err(e) => Err(Error::Usage(format!("{}: {e}", p.display()))),
    }
}

/// Writes the config file atomically (a temp file renamed over it), mode 0600: it
/// holds passwords.
fn store(cfg: &Map<String, Value>) -> Result<()> {
    let d = dir();
    std::fs::create_dir_all(&d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
    let p = path();
    let tmp = d.join(format!(".config.json.{}.tmp", std::process::id()));
    let io = |e| Error::io(format!("writing {}", p.display()), e);
    let text = serde_json::to_string_pretty(&Value::Object(cfg.clone()))
        .map_err(|e| Error::Usage(format!("encoding {}: {e}", p.display())))?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // An existing temp file keeps its old mode: set it explicitly.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// Saved credentials (user, password) for a registry key.
pub fn credentials(key: &str) -> Result<Option<(String, String)>> {
    let cfg = load()?;
    let Some(auth) = cfg
        .get("auths")
        .and_then(|a| a.get(key))
        .and_then(|e| e.get("auth"))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| Error::Usage(format!("{}: bad auth for {key}: {e}", path().display())))?;
    let text = String::from_utf8_lossy(&raw);
    Ok(text
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string())))
}

/// Saves credentials for a registry key.
pub fn save_credentials(key: &str, user: &str, password: &str) -> Result<()> {
    let mut cfg = load()?;
    let auths = cfg.entry("auths").or_insert_with(|| json!({}));
    if !auths.is_object() {
        *auths = json!({});
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    if let Some(m) = auths.as_object_mut() {
        m.insert(key.to_string(), json!({ "auth": auth }));
    }
    store(&cfg)
}

/// Removes the credentials of a registry key; whether there were any.
pub fn remove_credentials(key: &str) -> Result<bool> {
    let mut cfg = load()?;
    let removed = cfg
        .get_mut("auths")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove(key))
        .is_some();
    if removed {
        store(&cfg)?;
    }
    Ok(removed)
}

/// The `X-Registry-Auth` header value for credentials: base64url of
/// `{"username","password","serveraddress"}`, as the docker CLI sends it.
pub fn auth_header(user: &str, password: &str, server: &str) -> String {
    let body = json!({"username": user, "password": password, "serveraddress": server});
    base64::engine::general_purpose::URL_SAFE.encode(body.to_string())
}

/// The `X-Registry-Auth` header for the registry of an image, if a login is saved.
pub fn auth_header_for_image(image: &str) -> Result<Option<String>> {
    let key = registry_of(image);
    Ok(credentials(&key)?.map(|(u, p)| auth_header(&u, &p, &key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_keys_are_hosts_and_hub_has_docker_s_key() {
        assert_eq!(registry_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(registry_key("docker.io"), DOCKER_HUB);
        assert_eq!(registry_key(""), DOCKER_HUB);
        assert_eq!(registry_of("127.0.0.1:5000/a/b:t"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/a"), "localhost");
        assert_eq!(registry_of("library/busybox"), DOCKER_HUB);
        assert_eq!(registry_of("busybox:1"), DOCKER_HUB);
    }

    #[test]
    fn auth_header_is_base64url_json() {
        let h = auth_header("u", "p?>", "h:1");
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(h)
            .expect("base64url");
        let v: Value = serde_json::from_slice(&raw).expect("json");
        assert_eq!(v["username"], "u");
        assert_eq!(v["password"], "p?>");
        assert_eq!(v["serveraddress"], "h:1");
    }
}
