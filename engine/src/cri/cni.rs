//! Pod networks through CNI plugins, as the CNI specification's runtime side (libcni)
//! does: the first network configuration in the configuration directory (`.conflist`,
//! or a single plugin's `.conf`/`.json`) is used; ADD runs its plugins in order, each
//! given the previous one's result, and DEL runs them in reverse with the cached ADD
//! result. The `portMappings` capability carries the pod's port mappings. The
//! loopback interface is brought up with the `loopback` plugin, as containerd does.
//!
//! No maintained crate invokes CNI plugins (the Rust ones write plugins); the protocol
//! is small: environment variables, the configuration on stdin, a JSON result or error
//! on stdout. Results are passed on verbatim (as libcni does), so every result format
//! version reaches the next plugin as the previous one wrote it.

use super::{Error, Result};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one plugin may take.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A network configuration list.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfList {
    /// The CNI spec version the list is written for.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// The network's name.
    pub name: String,
    /// The plugins, in order; every key is passed on as written.
    pub plugins: Vec<Map<String, Value>>,
}

/// A single plugin's configuration (`.conf`): one plugin, its name and version.
#[derive(Debug, Deserialize)]
struct SingleConf {
    #[serde(rename = "cniVersion", default)]
    cni_version: String,
    name: String,
    #[serde(rename = "type")]
    _type: String,
}

/// A CNI error result.
#[derive(Debug, Deserialize)]
struct ErrorResult {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// The part of an ADD result berthd reads: the addresses.
#[derive(Debug, Deserialize)]
struct AddResult {
    #[serde(default)]
    ips: Vec<IpConfig>,
}

#[derive(Debug, Deserialize)]
struct IpConfig {
    address: String,
}

/// A port mapping, as the portmap plugin takes it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Host port.
    pub host_port: i32,
    /// Container port.
    pub container_port: i32,
    /// tcp, udp or sctp.
    pub protocol: String,
    /// Host IP to bind (empty: all).
    #[serde(rename = "hostIP", skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

/// The pod an ADD or DEL is for.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The sandbox's ID (CNI_CONTAINERID).
    pub id: String,
    /// The pinned namespace (CNI_NETNS).
    pub netns: PathBuf,
    /// Pod name, namespace and UID (CNI_ARGS, as the kubelet's K8S_POD_* args).
    pub pod: (String, String, String),
    /// Port mappings.
    pub ports: Vec<PortMapping>,
}

/// The CNI set-up.
pub struct Cni {
    conf_dir: PathBuf,
    bin_dirs: Vec<PathBuf>,
}

impl Cni {
    /// Configurations from `conf_dir`, plugins from `bin_dirs`.
    pub fn new(conf_dir: PathBuf, bin_dirs: Vec<PathBuf>, _cache: PathBuf) -> Self {
        Self { conf_dir, bin_dirs }
    }

    /// The network to attach pods to: the first valid configuration by file name.
    pub fn config(&self) -> Result<ConfList> {
        let not_ready = |why: String| {
            Error::FailedPrecondition(format!(
                "cni config uninitialized: {why} (in {})",
                self.conf_dir.display()
            ))
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.conf_dir)
            .map_err(|e| not_ready(e.to_string()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conflist" | "conf" | "json")
                )
            })
            .collect();
        files.sort();
        let mut last = "no network configuration found".to_string();
        for f in files {
            match load(&f) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "skipping CNI configuration");
                    last = e;
                }
            }
        }
        Err(not_ready(last))
    }

    /// Whether pods can get a network now: a configuration and its plugins exist.
    pub fn ready(&self) -> std::result::Result<(), String> {
        let c = self.config().map_err(|e| e.to_string())?;
        for p in &c.plugins {
            let t = plugin_type(p).map_err(|e| e.to_string())?;
            self.find(&t).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn find(&self, plugin: &str) -> Result<PathBuf> {
        if plugin.contains('/') || plugin.is_empty() || plugin == "." || plugin == ".." {
            return Err(Error::Invalid(format!(
                "invalid CNI plugin type {plugin:?}"
            )));
        }
        self.bin_dirs
            .iter()
            .map(|d| d.join(plugin))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::FailedPrecondition(format!(
                    "CNI plugin {plugin:?} not found in {}",
                    self.bin_dirs
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":")
                ))
            })
    }

    /// Runs one plugin; its stdout on success.
    async fn exec(
        &self,
        command: &str,
        conf: &Map<String, Value>,
        a: &Attachment,
        ifname: &str,
    ) -> Result<Vec<u8>> {
        use tokio::io::AsyncWriteExt;
        let typ = plugin_type(conf)?;
        let bin = self.find(&typ)?;
        let stdin = serde_json::to_vec(conf).map_err(super::internal("encoding CNI config"))?;
        let path = self
            .bin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let (name, namespace, uid) = &a.pod;
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={uid}",
            a.id
        );
        let mut child = tokio::process::Command::new(&bin)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &a.id)
            .env("CNI_NETNS", &a.netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_ARGS", args)
            .env("CNI_PATH", path)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Internal(format!("running CNI plugin {}: {e}", bin.display())))?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(&stdin)
                .await
                .map_err(|e| Error::Internal(format!("writing to CNI plugin {typ}: {e}")))?;
        }
        let out = tokio::time::timeout(PLUGIN_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| Error::Internal(format!("CNI plugin {typ} ({command}) timed out")))?
            .map_err(|e| Error::Internal(format!("CNI plugin {typ} ({command}): {e}")))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let why = match serde_json::from_slice::<ErrorResult>(&out.stdout) {
            Ok(e) if !e.details.is_empty() => format!("{} (code {}): {}", e.msg, e.code, e.details),
            Ok(e) => format!("{} (code {})", e.msg, e.code),
            Err(_) => {
                let text = String::from_utf8_lossy(if out.stdout.is_empty() {
                    &out.stderr
                } else {
                    &out.stdout
                });
                format!("{} ({})", text.trim(), out.status)
            }
        };
        Err(Error::Internal(format!(
            "CNI plugin {typ} failed ({command}): {why}"
        )))
    }

    /// The configuration of one plugin as it is sent: the list's name and version,
    /// the previous result, and the runtime config its capabilities ask for.
    fn plugin_conf(
        list: &ConfList,
        plugin: &Map<String, Value>,
        prev: Option<&Value>,
        a: &Attachment,
    ) -> Map<String, Value> {
        let mut conf = plugin.clone();
        conf.insert("name".into(), Value::String(list.name.clone()));
        conf.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
        if let Some(p) = prev {
            conf.insert("prevResult".into(), p.clone());
        }
        let wants_ports = plugin
            .get("capabilities")
            .and_then(|c| c.get("portMappings"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if wants_ports && !a.ports.is_empty() {
            let mut rc = Map::new();
            rc.insert(
                "portMappings".into(),
                serde_json::to_value(&a.ports).unwrap_or(Value::Null),
            );
            conf.insert("runtimeConfig".into(), Value::Object(rc));
        }
        conf
    }

    fn loopback(version: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("cniVersion".into(), Value::String(version.into()));
        m.insert("name".into(), Value::String("cni-loopback".into()));
        m.insert("type".into(), Value::String("loopback".into()));
        m
    }

    /// Attaches a pod: loopback up, then the network's plugins. Returns the network's
    /// name, the final result and the pod's IPs. On failure, what was added is
    /// deleted again before the error returns.
    pub async fn add(&self, a: &Attachment) -> Result<(String, Value, Vec<String>)> {
        let list = self.config()?;
        let lo = Self::loopback(if list.cni_version.is_empty() {
            "0.3.1"
        } else {
            &list.cni_version
        });
        self.exec("ADD", &lo, a, "lo").await?;
        let mut prev: Option<Value> = None;
        for (i, p) in list.plugins.iter().enumerate() {
            let conf = Self::plugin_conf(&list, p, prev.as_ref(), a);
            match self.exec("ADD", &conf, a, "eth0").await {
                Ok(out) => {
                    let v: Value = serde_json::from_slice(&out).map_err(|e| {
                        Error::Internal(format!("CNI plugin result is not JSON: {e}"))
                    })?;
                    prev = Some(v);
                }
                Err(e) => {
                    // Undo what the plugins before it (and it) did.
                    let partial = ConfList {
                        plugins: list.plugins[..=i].to_vec(),
                        ..list.clone()
                    };
                    if let Err(d) = self.del_with(&partial, a, prev.as_ref()).await {
                        tracing::warn!(error = %d, "CNI DEL after a failed ADD");
                    }
                    return Err(e);
                }
            }
        }
        let result = prev.unwrap_or(Value::Null);
        let ips = serde_json::from_value::<AddResult>(result.clone())
            .map(|r| {
                r.ips
                    .into_iter()
                    .map(|ip| ip.address.split('/').next().unwrap_or("").to_string())
                    .filter(|ip| !ip.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok((list.name, result, ips))
    }

    /// Detaches a pod (plugins in reverse order, given the ADD result). Every plugin
    /// runs even if one fails; the first error is returned.
    pub async fn del(&self, a: &Attachment, prev: Option<&Value>) -> Result<()> {
        let list = self.config()?;
        self.del_with(&list, a, prev).await
    }

    async fn del_with(&self, list: &ConfList, a: &Attachment, prev: Option<&Value>) -> Result<()> {
        let mut first = None;
        for p in list.plugins.iter().rev() {
            let conf = Self::plugin_conf(list, p, prev, a);
            if let Err(e) = self.exec("DEL", &conf, a, "eth0").await {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn plugin_type(conf: &Map<String, Value>) -> Result<String> {
    conf.get("type")
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| Error::Invalid("CNI plugin configuration without \"type\"".into()))
}

/// Loads a `.conflist`, or a `.conf`/`.json` holding one plugin.
fn load(path: &Path) -> std::result::Result<ConfList, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if path.extension().and_then(|e| e.to_str()) == Some("conflist") {
        let list: ConfList =
            serde_json::from_slice(&bytes).map_err(|e| format!("invalid conflist: {e}"))?;
        if list.plugins.is_empty() {
            return Err("conflist has no plugins".into());
        }
        for p in &list.plugins {
            plugin_type(p).map_err(|e| e.to_string())?;
        }
        return Ok(list);
    }
    let single: SingleConf =
        serde_json::from_slice(&bytes).map_err(|e| format!("invalid conf: {e}"))?;
    let plugin: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|e| format!("invalid conf: {e}"))?;
    Ok(ConfList {
        cni_version: single.cni_version,
        name: single.name,
        plugins: vec![plugin],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att() -> Attachment {
        Attachment {
            id: "abc".into(),
            netns: "/x".into(),
            pod: ("p".into(), "ns".into(), "uid".into()),
            ports: vec![PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: String::new(),
            }],
        }
    }

    #[test]
    fn plugin_configs_carry_name_version_result_and_ports() {
        let list: ConfList = serde_json::from_str(
            r#"{"cniVersion":"0.4.0","name":"n","plugins":[{"type":"bridge","bridge":"b0","ipam":{"type":"host-local"}},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        let prev = serde_json::json!({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.2.3/24"}]});
        let c = Cni::plugin_conf(&list, &list.plugins[0], None, &att());
        assert_eq!(c["name"], "n");
        assert_eq!(c["bridge"], "b0");
        assert!(c.get("runtimeConfig").is_none());
        let c = Cni::plugin_conf(&list, &list.plugins[1], Some(&prev), &att());
        assert_eq!(c["prevResult"], prev, "results pass on verbatim");
        assert_eq!(c["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        assert_eq!(c["runtimeConfig"]["portMappings"][0]["protocol"], "tcp");
    }

    #[test]
    fn configs_load_in_name_order_and_bad_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let cni = Cni::new(dir.path().into(), vec![], dir.path().into());
        assert!(matches!(cni.config(), Err(Error::FailedPrecondition(_))));
        std::fs::write(dir.path().join("05-bad.conflist"), "{").unwrap();
        std::fs::write(
            dir.path().join("10-one.conf"),
            r#"{"cniVersion":"0.3.1","name":"one","type":"bridge"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("20-two.conflist"),
            r#"{"cniVersion":"1.0.0","name":"two","plugins":[{"type":"x"}]}"#,
        )
        .unwrap();
        let c = cni.config().unwrap();
        assert_eq!(c.name, "one");
        assert_eq!(c.plugins[0]["type"], "bridge");
        // Its plugin is nowhere: not ready, and the error names it.
        let e = cni.ready().unwrap_err();
        assert!(e.contains("\"bridge\" not found"), "{e}");
        assert!(cni.find("../bin/sh").is_err());
    }
}
