//! The docker CLI's configuration, read and written as docker does so that both CLIs
//! share it (as podman and nerdctl do): `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`, or `--config DIR`), tab-indented, mode 0600. It holds
//! registry logins (`auths`, base64 `user:password`), the credential helpers that keep
//! them elsewhere (`credsStore` for all registries, `credHelpers` per registry: the
//! `docker-credential-NAME` programs, spoken to on stdin and stdout), `detachKeys`,
//! `currentContext` and the default formats (`psFormat`, `imagesFormat`, ...). Keys
//! berth does not know are kept as they are.

use crate::error::{Error, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The key docker uses for Docker Hub in `auths`.
pub const DOCKER_HUB: &str = "https://index.docker.io/v1/";

static DIR: OnceLock<PathBuf> = OnceLock::new();

/// Sets the directory from `--config`.
pub fn set_dir(dir: PathBuf) {
    let _ = DIR.set(dir);
}

/// The config directory: `--config`, `$DOCKER_CONFIG`, else `~/.docker`.
pub fn dir() -> PathBuf {
    if let Some(d) = DIR.get() {
        return d.clone();
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    // Without $HOME (a bare service environment), the root directory.
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    home.join(".docker")
}

/// The path of `config.json`.
pub fn path() -> PathBuf {
    dir().join("config.json")
}

/// One registry's entry in `auths`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthConfig {
    /// base64 of `user:password`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// An identity token instead of a password.
    #[serde(
        rename = "identitytoken",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub identity_token: String,
    /// What else docker wrote there.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// Logins kept in the file (or empty entries when a helper keeps them).
    #[serde(default)]
    pub auths: BTreeMap<String, AuthConfig>,
    /// The helper for every registry.
    #[serde(
        rename = "credsStore",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub creds_store: String,
    /// Helpers per registry.
    #[serde(
        rename = "credHelpers",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub cred_helpers: BTreeMap<String, String>,
    /// The detach sequence for attach, run and exec.
    #[serde(
        rename = "detachKeys",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub detach_keys: String,
    /// The context `berth context use` chose.
    #[serde(
        rename = "currentContext",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub current_context: String,
    /// Default `ps` format.
    #[serde(rename = "psFormat", default, skip_serializing_if = "String::is_empty")]
    pub ps_format: String,
    /// Default `images` format.
    #[serde(
        rename = "imagesFormat",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub images_format: String,
    /// Default `volume ls` format.
    #[serde(
        rename = "volumesFormat",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub volumes_format: String,
    /// Default `stats` format.
    #[serde(
        rename = "statsFormat",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub stats_format: String,
    /// Everything else, kept.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl ConfigFile {
    /// Reads the file; a missing or empty file is an empty config.
    pub fn load() -> Result<Self> {
        let p = path();
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io(format!("reading {}", p.display()), e)),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Usage(format!("loading config file: {}: {e}", p.display())))
    }

    /// Writes it atomically (a temp file renamed over it), mode 0600, tab-indented as
    /// docker writes it.
    pub fn save(&self) -> Result<()> {
        let d = dir();
        std::fs::create_dir_all(&d)
            .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        let p = path();
        let tmp = d.join(format!(".config.json.{}.tmp", std::process::id()));
        let mut text = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
        self.serialize(&mut ser)
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
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &p)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("writing {}", p.display()), e)
        })
    }

    /// The helper that keeps a registry's login, if any.
    fn helper_for(&self, key: &str) -> Option<String> {
        self.cred_helpers
            .get(key)
            .cloned()
            .or_else(|| (!self.creds_store.is_empty()).then(|| self.creds_store.clone()))
    }
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

/// A credential helper's answer to `get`.
#[derive(Debug, Deserialize, Serialize)]
struct HelperCredentials {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-NAME ACTION` with `input` on stdin; its stdout.
fn helper(name: &str, action: &str, input: &[u8]) -> Result<std::result::Result<Vec<u8>, String>> {
    use std::process::{Command, Stdio};
    let prog = format!("docker-credential-{name}");
    let mut child = Command::new(&prog)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Usage(format!(
                "error getting credentials - err: exec: \"{prog}\": {}",
                if e.kind() == std::io::ErrorKind::NotFound {
                    "executable file not found in $PATH".to_string()
                } else {
                    e.to_string()
                }
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gets EPIPE here: its answer says why.
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("running {prog}"), e))?;
    if out.status.success() {
        Ok(Ok(out.stdout))
    } else {
        let mut msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if msg.is_empty() {
            msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        Ok(Err(msg))
    }
}

/// Saved credentials (user, password) for a registry key: from its helper, else
/// from `auths`.
pub fn credentials(key: &str) -> Result<Option<(String, String)>> {
    let cfg = ConfigFile::load()?;
    if let Some(h) = cfg.helper_for(key) {
        return match helper(&h, "get", key.as_bytes())? {
            Ok(out) => {
                let c: HelperCredentials = serde_json::from_slice(&out).map_err(|e| {
                    Error::Usage(format!(
                        "error getting credentials - err: {e}, out: `{}`",
                        String::from_utf8_lossy(&out).trim()
                    ))
                })?;
                Ok((!c.username.is_empty() || !c.secret.is_empty())
                    .then_some((c.username, c.secret)))
            }
            // The helper has none: as docker, no credentials.
            Err(m) if m.contains("credentials not found") => Ok(None),
            Err(m) => Err(Error::Usage(format!(
                "error getting credentials - err: exit status 1, out: `{m}`"
            ))),
        };
    }
    let Some(entry) = cfg.auths.get(key) else {
        return Ok(None);
    };
    if entry.auth.is_empty() {
        return Ok(None);
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.trim())
        .map_err(|e| Error::Usage(format!("{}: bad auth for {key}: {e}", path().display())))?;
    let text = String::from_utf8_lossy(&raw);
    Ok(text
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string())))
}

/// Where a login was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// In config.json, base64 (docker warns about it).
    File(PathBuf),
    /// By the named helper.
    Helper(String),
}

/// Saves credentials for a registry key (through its helper if it has one).
pub fn save_credentials(key: &str, user: &str, password: &str) -> Result<Stored> {
    let mut cfg = ConfigFile::load()?;
    if let Some(h) = cfg.helper_for(key) {
        let body = serde_json::to_vec(&HelperCredentials {
            server_url: key.to_string(),
            username: user.to_string(),
            secret: password.to_string(),
        })
        .map_err(|e| Error::Usage(format!("encoding credentials: {e}")))?;
        if let Err(m) = helper(&h, "store", &body)? {
            return Err(Error::Usage(format!(
                "error storing credentials - err: exit status 1, out: `{m}`"
            )));
        }
        // As docker: an empty entry in the file says the registry has a login.
        cfg.auths.entry(key.to_string()).or_default();
        cfg.save()?;
        return Ok(Stored::Helper(h));
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let entry = cfg.auths.entry(key.to_string()).or_default();
    entry.auth = auth;
    cfg.save()?;
    Ok(Stored::File(path()))
}

/// Removes the credentials of a registry key; whether there were any.
pub fn remove_credentials(key: &str) -> Result<bool> {
    let mut cfg = ConfigFile::load()?;
    let mut removed = false;
    if let Some(h) = cfg.helper_for(key) {
        match helper(&h, "erase", key.as_bytes())? {
            Ok(_) => removed = true,
            Err(m) if m.contains("credentials not found") => {}
            Err(m) => {
                return Err(Error::Usage(format!(
                    "error erasing credentials - err: exit status 1, out: `{m}`"
                )))
            }
        }
    }
    if cfg.auths.remove(key).is_some() {
        removed = true;
        cfg.save()?;
    }
    Ok(removed)
}

/// The `X-Registry-Auth` header value for credentials: base64url of
/// `{"username","password","serveraddress"}`, as the docker CLI sends it.
pub fn auth_header(user: &str, password: &str, server: &str) -> String {
    let body = serde_json::json!({"username": user, "password": password, "serveraddress": server});
    base64::engine::general_purpose::URL_SAFE.encode(body.to_string())
}

/// The `X-Registry-Auth` header for the registry of an image, if a login is saved.
pub fn auth_header_for_image(image: &str) -> Result<Option<String>> {
    let key = registry_of(image);
    Ok(credentials(&key)?.map(|(u, p)| auth_header(&u, &p, &key)))
}

/// The configured detach keys, if any.
pub fn detach_keys() -> Option<String> {
    ConfigFile::load()
        .ok()
        .map(|c| c.detach_keys)
        .filter(|k| !k.is_empty())
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
        let v: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        assert_eq!(v["username"], "u");
        assert_eq!(v["password"], "p?>");
        assert_eq!(v["serveraddress"], "h:1");
    }

    #[test]
    fn unknown_keys_survive_a_round_trip() {
        let text = r#"{"auths":{"h:1":{"auth":"dTpw","email":"x@y"}},"credHelpers":{"r":"pass"},"proxies":{"default":{"httpProxy":"p"}},"detachKeys":"ctrl-a,a"}"#;
        let c: ConfigFile = serde_json::from_str(text).unwrap();
        assert_eq!(c.detach_keys, "ctrl-a,a");
        assert_eq!(c.helper_for("r").as_deref(), Some("pass"));
        assert_eq!(c.helper_for("h:1"), None);
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["proxies"]["default"]["httpProxy"], "p");
        assert_eq!(back["auths"]["h:1"]["email"], "x@y");
    }
}
