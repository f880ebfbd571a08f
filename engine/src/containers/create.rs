//! `POST /containers/create`: what dockerd checks before anything is made (runtime,
//! network, log driver, capabilities, health check, resources, sysctls, name), the
//! request merged over the image's config as dockerd merges them, then the mounts and
//! the record. The name is claimed first, the disk work runs on the blocking pool, and a
//! failure leaves nothing behind.

use super::container::Container;
use super::record::Record;
use super::state::State;
use super::{health, io, random_hex, spec, strs, ContainerService, Error, Result};
use crate::snapshots::chain_ids;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

const ADJECTIVES: &[&str] = &[
    "admiring", "bold", "brave", "busy", "calm", "clever", "cool", "dazzling", "eager", "ecstatic",
    "elegant", "fervent", "festive", "focused", "gallant", "happy", "hopeful", "jolly", "keen",
    "kind", "lucid", "merry", "modest", "nimble", "peaceful", "quirky", "relaxed", "serene",
    "sharp", "tender", "vibrant", "wizardly",
];
const NAMES: &[&str] = &[
    "babbage", "bohr", "boole", "cerf", "curie", "darwin", "dijkstra", "einstein", "euler",
    "faraday", "fermi", "galileo", "gauss", "hamilton", "hopper", "hypatia", "kepler", "knuth",
    "lamport", "liskov", "lovelace", "maxwell", "newton", "noether", "pascal", "ritchie",
    "shannon", "thompson", "turing", "volta", "wozniak", "yalow",
];

/// A docker-style name (`adjective_scientist`) that `taken` does not refuse: each try
/// draws fresh randomness, and after the first collisions a number is added, so even a
/// busy engine finds a free one instead of failing the create.
fn generated_name(taken: impl Fn(&str) -> bool) -> String {
    let mut candidate = String::new();
    for attempt in 0..64 {
        let r = random_hex(4);
        let b = u32::from_str_radix(&r, 16).unwrap_or(attempt) as usize;
        candidate = format!(
            "{}_{}",
            ADJECTIVES[b % ADJECTIVES.len()],
            NAMES[(b >> 8) % NAMES.len()]
        );
        if attempt > 0 {
            candidate += &((b >> 16) % 10_000).to_string();
        }
        if !taken(&candidate) {
            break;
        }
    }
    candidate
}

/// The image of a create.
struct ImageOf {
    /// As asked for.
    name: String,
    record: crate::images::store::ImageRecord,
    /// Its config blob.
    config: Value,
}

/// Whether a container name is one dockerd takes.
pub fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && n.len() >= 2
        && n.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'))
}

/// dockerd's refusal of a bad name.
pub fn invalid_name(n: &str) -> Error {
    Error::Invalid(format!(
        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    ))
}

fn now() -> String {
    super::now()
}

/// The CPUs this host can give containers.
fn host_cpus() -> i64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1)
}

/// dockerd's checks of a HostConfig's resources (create and update).
pub fn check_resources(hc: &Value) -> Result<()> {
    const MIN_MEMORY: i64 = 6 << 20;
    let int = |k: &str| hc[k].as_i64().unwrap_or(0);
    if int("Memory") != 0 && int("Memory") < MIN_MEMORY {
        return Err(Error::Invalid("Minimum memory limit allowed is 6MB".into()));
    }
    let cpus = host_cpus();
    let nano = int("NanoCpus");
    if nano < 0 || nano > cpus * 1_000_000_000 {
        return Err(Error::Invalid(format!(
            "Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )));
    }
    if int("ShmSize") < 0 {
        return Err(Error::Invalid("SHM size can not be less than 0".into()));
    }
    let adj = int("OomScoreAdj");
    if !(-1000..=1000).contains(&adj) {
        return Err(Error::Invalid(format!(
            "Invalid value {adj}, range for oom score adj is [-1000, 1000]"
        )));
    }
    // A swap limit that overflows (or any limit oci-spec refuses) is refused now, not
    // at start.
    spec::resources(hc, false).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(())
}

/// The request's value of `k` over the image's, as dockerd's `merge`.
fn pick(body: &Value, image: &Value, k: &str) -> String {
    body[k]
        .as_str()
        .filter(|s| !s.is_empty())
        .or_else(|| image[k].as_str())
        .unwrap_or("")
        .to_string()
}

/// The union of two JSON objects, `over`'s entries winning.
fn union(base: &Value, over: &Value) -> Value {
    let mut out: Map<String, Value> = base.as_object().cloned().unwrap_or_default();
    if let Some(o) = over.as_object() {
        out.extend(o.clone());
    }
    if out.is_empty() && base.is_null() && over.is_null() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

/// Links as dockerd records them: `/TARGET:/NAME/ALIAS`, each target a container.
fn links(svc: &ContainerService, name: &str, hc: &Value) -> Result<Value> {
    let given = strs(&hc["Links"]);
    if given.is_empty() {
        return Ok(hc["Links"].clone());
    }
    let mut out = Vec::new();
    for l in given {
        let (target, alias) = l.split_once(':').unwrap_or((&l, &l));
        let target = target.trim_start_matches('/');
        let alias = alias.trim_start_matches('/');
        let c = svc
            .get(target)
            .map_err(|e| Error::NotFound(format!("could not get container for {target}: {e}")))?;
        out.push(json!(format!("/{}:/{name}/{alias}", c.name())));
    }
    Ok(json!(out))
}

impl ContainerService {
    /// POST /containers/create: the new container's ID and warnings.
    pub async fn create(
        self: &Arc<Self>,
        name: Option<&str>,
        body: &Value,
    ) -> Result<(String, Vec<String>)> {
        let image = body["Image"].as_str().unwrap_or("").to_string();
        if image.is_empty() {
            return Err(Error::Invalid("No image specified".into()));
        }
        let mut hc = if body["HostConfig"].is_object() {
            body["HostConfig"].clone()
        } else {
            json!({})
        };
        // As dockerd: no runtime means the default one, recorded by name; an unknown
        // one is refused before anything else is looked at.
        let runtime = match hc["Runtime"].as_str().filter(|r| !r.is_empty()) {
            None => self.runtimes.default.clone(),
            Some(r) if self.runtimes.paths.contains_key(r) => r.to_string(),
            Some(r) => return Err(Error::Invalid(format!("Unknown runtime specified {r}"))),
        };
        hc["Runtime"] = json!(runtime);
        match hc["NetworkMode"].as_str().unwrap_or("") {
            "none" | "host" => {}
            "" | "default" | "bridge" => {
                return Err(Error::Invalid(
                    "bridge networking is not supported by berthd yet: use --network none or --network host".into(),
                ))
            }
            other => {
                return Err(Error::NotFound(format!(
                    "network {other} not found (berthd supports only --network none and --network host)"
                )))
            }
        }
        // As dockerd: the default driver is filled in when the client names none.
        let driver = match hc["LogConfig"]["Type"].as_str().unwrap_or("") {
            "" | "json-file" => "json-file",
            "none" => "none",
            other => {
                return Err(Error::Invalid(format!(
                    "logger: no log driver named '{other}' is registered (berthd has json-file and none)"
                )))
            }
        };
        let log_options = match &hc["LogConfig"]["Config"] {
            Value::Object(o) => Value::Object(o.clone()),
            _ => json!({}),
        };
        hc["LogConfig"] = json!({"Type": driver, "Config": log_options});
        let c = &hc["LogConfig"]["Config"];
        if let Some(v) = c["max-size"].as_str() {
            if io::parse_size(v).is_none() {
                return Err(Error::Invalid(format!("invalid max-size: {v}")));
            }
        }
        // As dockerd: a count of files, at least one (not silently one when unreadable).
        if let Some(v) = c["max-file"].as_str() {
            match v.parse::<i64>() {
                Ok(n) if n >= 1 => {}
                Ok(_) => return Err(Error::Invalid("max-file cannot be less than 1".into())),
                Err(_) => return Err(Error::Invalid(format!("invalid max-file: {v}"))),
            }
        }
        for k in ["CapAdd", "CapDrop"] {
            if let Err(e) = spec::capabilities(false, &strs(&hc[k]), &[]) {
                let bad = match e {
                    spec::SpecError::Capability(c) => c,
                    other => other.to_string(),
                };
                return Err(Error::Invalid(format!(
                    "invalid {k}: unknown capability: \"{}\"",
                    spec::normalize_cap(&bad)
                )));
            }
        }
        check_resources(&hc)?;
        let host_net = hc["NetworkMode"].as_str() == Some("host");
        let host_ipc = hc["IpcMode"].as_str() == Some("host");
        for k in hc["Sysctls"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            spec::check_sysctl(k, host_net, host_ipc).map_err(|e| Error::Invalid(e.to_string()))?;
        }
        health::validate(&body["Healthcheck"])?;
        let id = random_hex(32);
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if !valid_name(n) {
                    return Err(invalid_name(n));
                }
                n.to_string()
            }
            None => generated_name(|n| self.store.name_taken(n)),
        };
        hc["Links"] = links(self, &name, &hc)?;
        let this = self.clone();
        let img = super::blocking(move || this.image_config(image)).await?;
        // Claimed before anything is made (volumes): a taken name fails cleanly, and two
        // creates of one name cannot both pass.
        self.store.reserve(&name, &id)?;
        let this = self.clone();
        let body = body.clone();
        let (rid, rname) = (id.clone(), name.clone());
        let made = super::blocking(move || this.make(rid, rname, img, body, hc)).await;
        let rec = match made {
            Ok(rec) => rec,
            Err(e) => {
                self.store.release(&name, &id);
                return Err(e);
            }
        };
        self.emit("create", &rec, &[]);
        self.store.insert(Arc::new(Container::new(rec)));
        Ok((id, Vec::new()))
    }

    /// The image a create names, and its config. Blocking.
    fn image_config(&self, image: String) -> Result<ImageOf> {
        let img = self.images.resolve(&image).map_err(|e| match e {
            crate::images::Error::NotFound(_) => {
                let shown = crate::images::reference::Reference::parse_with_default_tag(&image)
                    .map(|r| r.familiar())
                    .unwrap_or(image.clone());
                Error::NotFound(format!("No such image: {shown}"))
            }
            other => Error::Invalid(other.to_string()),
        })?;
        let config = self
            .images
            .config(&img)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(ImageOf {
            name: image,
            record: img,
            config,
        })
    }

    /// The disk half of create: the merged record, its mounts, its directory. Blocking.
    fn make(
        &self,
        id: String,
        name: String,
        img: ImageOf,
        body: Value,
        hc: Value,
    ) -> Result<Record> {
        let ImageOf {
            name: image,
            record: img,
            config: icfg,
        } = img;
        let ic = &icfg["config"];
        // Env: the image's, overridden key by key.
        let mut env = strs(&ic["Env"]);
        for e in strs(&body["Env"]) {
            let key = e.split('=').next().unwrap_or("").to_string();
            env.retain(|x| x.split('=').next() != Some(key.as_str()));
            env.push(e);
        }
        let given_entry = !body["Entrypoint"].is_null();
        let entrypoint = if given_entry {
            strs(&body["Entrypoint"])
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            strs(&ic["Entrypoint"])
        };
        let cmd = if !body["Cmd"].is_null() && !strs(&body["Cmd"]).is_empty() {
            strs(&body["Cmd"])
        } else if given_entry {
            Vec::new()
        } else {
            strs(&ic["Cmd"])
        };
        let argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
        if argv.is_empty() {
            return Err(Error::Invalid("No command specified".into()));
        }
        let healthcheck = health::merge(&body["Healthcheck"], &ic["Healthcheck"]);
        health::validate(&healthcheck)?;
        // Labels: the image's, then the request's over them.
        let labels = union(&ic["Labels"], &body["Labels"]);
        let labels = if labels.is_null() { json!({}) } else { labels };
        let hostname = body["Hostname"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(String::from)
            .unwrap_or_else(|| {
                if hc["NetworkMode"] == "host" {
                    nix::unistd::gethostname()
                        .map(|h| h.to_string_lossy().into_owned())
                        .unwrap_or_default()
                } else {
                    id[..12].to_string()
                }
            });
        let mut config = json!({
            "Hostname": hostname,
            "Domainname": body["Domainname"].as_str().unwrap_or(""),
            "User": pick(&body, ic, "User"),
            "AttachStdin": body["AttachStdin"].as_bool().unwrap_or(false),
            "AttachStdout": body["AttachStdout"].as_bool().unwrap_or(false),
            "AttachStderr": body["AttachStderr"].as_bool().unwrap_or(false),
            // As dockerd's merge: the image's ports and volumes with the request's.
            "ExposedPorts": union(&ic["ExposedPorts"], &body["ExposedPorts"]),
            "Tty": body["Tty"].as_bool().unwrap_or(false),
            "OpenStdin": body["OpenStdin"].as_bool().unwrap_or(false),
            "StdinOnce": body["StdinOnce"].as_bool().unwrap_or(false),
            "Env": env,
            "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
            "Healthcheck": healthcheck,
            "Image": image,
            "Volumes": union(&ic["Volumes"], &body["Volumes"]),
            "WorkingDir": pick(&body, ic, "WorkingDir"),
            "Entrypoint": if entrypoint.is_empty() { Value::Null } else { json!(entrypoint) },
            "OnBuild": Value::Null,
            "Labels": labels,
            "StopSignal": pick(&body, ic, "StopSignal"),
            "StopTimeout": body["StopTimeout"],
        });
        // The shell of CMD-SHELL health checks (the image's SHELL unless given).
        if let Some(shell) = body["Shell"].as_array().or(ic["Shell"].as_array()) {
            config["Shell"] = json!(shell);
        }
        let layers: Vec<PathBuf> = chain_ids(&img.diff_ids())
            .iter()
            .map(|c| self.images.snapshots.fs_path(c))
            .collect();
        let mounts = self.make_mounts(&hc, &config, &layers)?;
        let record = Record {
            mounts,
            id,
            name,
            created: now(),
            image,
            image_id: img.id.to_string(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config,
            host_config: hc,
            state: State::default(),
            restart_count: 0,
            manual_stop: false,
            process: None,
        };
        if let Err(e) = self.store.create_blocking(&record) {
            self.remove_anonymous_volumes(&record);
            return Err(e);
        }
        Ok(record)
    }

    /// POST /containers/{id}/rename.
    pub async fn rename(&self, name: &str, new: &str) -> Result<()> {
        let c = self.get(name)?;
        let new = new.strip_prefix('/').unwrap_or(new);
        if !valid_name(new) {
            return Err(invalid_name(new));
        }
        self.store.reserve(new, &c.id)?;
        let old = c.name();
        c.update(|r| r.name = new.to_string());
        self.store.release(&old, &c.id);
        self.emit("rename", &c.record(), &[("oldName", format!("/{old}"))]);
        self.store.save(&c).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("web-1"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a b"));
        let n = generated_name(|_| false);
        assert!(n.contains('_') && valid_name(&n), "{n}");
    }

    #[test]
    fn resources_as_dockerd_checks_them() {
        let err = |hc: Value| check_resources(&hc).unwrap_err().to_string();
        assert_eq!(
            err(json!({"Memory": 3 << 20})),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(err(json!({"NanoCpus": 1_000_000_000i64 * 4096}))
            .starts_with("Range of CPUs is from 0.01 to "));
        assert!(err(json!({"NanoCpus": -1})).starts_with("Range of CPUs"));
        assert_eq!(
            err(json!({"ShmSize": -1})),
            "SHM size can not be less than 0"
        );
        assert_eq!(
            err(json!({"OomScoreAdj": 1001})),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]"
        );
        assert!(err(json!({"Memory": i64::MAX})).contains("swap"));
        check_resources(&json!({"Memory": 6 << 20, "NanoCpus": 10_000_000, "OomScoreAdj": -1000}))
            .unwrap();
    }

    #[test]
    fn merged_objects() {
        assert_eq!(
            union(&json!({"/data": {}}), &json!({})),
            json!({"/data": {}})
        );
        assert_eq!(
            union(&json!({"a": "1", "b": "1"}), &json!({"b": "2"})),
            json!({"a": "1", "b": "2"})
        );
        assert_eq!(union(&Value::Null, &Value::Null), Value::Null);
    }
}
