//! `POST /containers/create`: dockerd's checks of the request (berth-api's `validate`,
//! in dockerd's order and words), then what only the engine can check (runtime,
//! network, log driver, links, the image), dockerd's defaults filled in, the request
//! merged over the image's config as dockerd merges them, the mounts and the record.
//! The name is claimed first, the disk work runs on the blocking pool, and a failure
//! leaves nothing behind.

use super::container::Container;
use super::record::Record;
use super::state::State;
use super::{health, io, random_hex, ContainerService, Error, Result};
use crate::snapshots::chain_ids;
use berth_api::container::{Config, ContainerCreateRequest, HostConfig};
use berth_api::validate::{self, Defaults};
use std::collections::BTreeMap;
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

/// The image of a create.
struct ImageOf {
    record: crate::images::store::ImageRecord,
    /// Its config (`config` of the image's config blob).
    config: Config,
}

/// A refusal of berth-api's checks, with its status.
pub(crate) fn invalid(e: validate::Invalid) -> Error {
    match e.http_status() {
        400 => Error::Invalid(e.to_string()),
        _ => Error::Internal(e.to_string()),
    }
}

/// Links as dockerd records them: `/TARGET:/NAME/ALIAS`, each target a container.
fn links(svc: &ContainerService, name: &str, given: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for l in given {
        let (target, alias) = l.split_once(':').unwrap_or((l, l));
        let target = target.trim_start_matches('/');
        let alias = alias.trim_start_matches('/');
        // A 400, as dockerd answers it (a 404 would make the docker CLI pull the image).
        let c = svc
            .get(target)
            .map_err(|e| Error::Invalid(format!("could not get container for {target}: {e}")))?;
        out.push(format!("/{}:/{name}/{alias}", c.name()));
    }
    Ok(out)
}

/// The request's Config merged over the image's, as dockerd's `merge` and create do it;
/// the command line (entrypoint then cmd) too.
fn merge(mut c: Config, image: &Config) -> Result<(Config, Vec<String>)> {
    if c.user.is_empty() {
        c.user = image.user.clone();
    }
    for p in image.exposed_ports.keys() {
        c.exposed_ports.entry(p.clone()).or_default();
    }
    // Env: the image's, overridden key by key.
    let mut env = image.env.clone().unwrap_or_default();
    for e in c.env.iter().flatten() {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    c.env = Some(env);
    let mut labels: BTreeMap<String, String> = image.labels.clone().unwrap_or_default();
    labels.extend(c.labels.take().unwrap_or_default());
    c.labels = Some(labels);
    let given_entry = c.entrypoint.is_some();
    let entrypoint: Vec<String> = match &c.entrypoint {
        Some(e) => e.iter().filter(|s| !s.is_empty()).cloned().collect(),
        None => image.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = match &c.cmd {
        Some(cmd) if !cmd.is_empty() => cmd.clone(),
        _ if given_entry => Vec::new(),
        _ => image.cmd.clone().unwrap_or_default(),
    };
    let argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    if argv.is_empty() {
        return Err(Error::Invalid("No command specified".into()));
    }
    c.entrypoint = (!entrypoint.is_empty()).then_some(entrypoint);
    c.cmd = (!cmd.is_empty()).then_some(cmd);
    c.healthcheck = health::merge(c.healthcheck.as_ref(), image.healthcheck.as_ref());
    if c.working_dir.is_empty() {
        c.working_dir = image.working_dir.clone();
    }
    if c.stop_signal.is_empty() {
        c.stop_signal = image.stop_signal.clone();
    }
    // The image's VOLUMEs with the request's (the docker CLI always sends `{}`).
    let mut volumes = image.volumes.clone().unwrap_or_default();
    volumes.extend(c.volumes.take().unwrap_or_default());
    c.volumes = (!volumes.is_empty()).then_some(volumes);
    // The shell of CMD-SHELL health checks (the image's SHELL unless given).
    if c.shell.is_empty() {
        c.shell = image.shell.clone();
    }
    c.on_build = None;
    Ok((c, argv))
}

/// An image's config, read with Go's rules (nulls are zero values).
fn image_config(v: &serde_json::Value) -> Config {
    use berth_api::json::GoStruct;
    let mut v = v.clone();
    if berth_api::json::check(&mut v, &Config::SCHEMA).is_err() {
        return Config::default();
    }
    serde_json::from_value(v).unwrap_or_default()
}

impl ContainerService {
    /// POST /containers/create: the new container's ID and warnings.
    pub async fn create(
        self: &Arc<Self>,
        name: Option<&str>,
        req: ContainerCreateRequest,
    ) -> Result<(String, Vec<String>)> {
        let ContainerCreateRequest {
            config,
            host_config,
            networking_config,
        } = req;
        if config.image.is_empty() {
            return Err(Error::Invalid("No image specified".into()));
        }
        let mut hc = host_config.unwrap_or_default();
        let warnings = validate::create(&config, &mut hc, networking_config.as_ref(), &self.facts)
            .map_err(invalid)?;
        // As dockerd: no runtime means the default one, recorded by name; an unknown
        // one is refused before the image is looked at.
        if !hc.runtime.is_empty() && !self.runtimes.paths.contains_key(&hc.runtime) {
            return Err(Error::Invalid(format!(
                "Unknown runtime specified {}",
                hc.runtime
            )));
        }
        let endpoints = super::network::check_create(
            self.networks.as_deref(),
            &mut hc,
            networking_config.as_ref(),
            &config.mac_address,
            |c| self.get(c).is_ok(),
        )?;
        match hc.log_config.kind.as_str() {
            "" | "json-file" | "none" => {}
            other => {
                return Err(Error::Invalid(format!(
                    "logger: no log driver named '{other}' is registered (berthd has json-file and none)"
                )))
            }
        }
        let log_options = hc.log_config.config.clone().unwrap_or_default();
        if let Some(v) = log_options.get("max-size") {
            if io::parse_size(v).is_none() {
                return Err(Error::Invalid(format!("invalid max-size: {v}")));
            }
        }
        // As dockerd: a count of files, at least one (not silently one when unreadable).
        if let Some(v) = log_options.get("max-file") {
            match v.parse::<i64>() {
                Ok(n) if n >= 1 => {}
                Ok(_) => return Err(Error::Invalid("max-file cannot be less than 1".into())),
                Err(_) => return Err(Error::Invalid(format!("invalid max-file: {v}"))),
            }
        }
        // runc refuses these at start; berthd at create, in the same words.
        validate::sysctls(&hc.sysctls, validate::Namespaces::of(&hc)).map_err(invalid)?;
        // The container whose PID or IPC namespace it joins exists now; it is recorded
        // by ID, as dockerd records it (whether it runs is checked at start).
        if let Some(other) = hc.pid_mode.container() {
            hc.pid_mode = format!("container:{}", self.get(other)?.id).as_str().into();
        }
        if let Some(other) = hc.ipc_mode.container() {
            hc.ipc_mode = format!("container:{}", self.get(other)?.id).as_str().into();
        }
        validate::adapt(
            &mut hc,
            &self.facts,
            &Defaults {
                runtime: self.runtimes.default.clone(),
                ..Defaults::default()
            },
        );
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
        if let Some(given) = hc.links.take().filter(|l| !l.is_empty()) {
            hc.links = Some(links(self, &name, &given)?);
        }
        let this = self.clone();
        let image = config.image.clone();
        let img = super::blocking(move || this.image_of(image)).await?;
        // Claimed before anything is made (volumes): a taken name fails cleanly, and two
        // creates of one name cannot both pass.
        self.store.reserve(&name, &id)?;
        let this = self.clone();
        let (rid, rname) = (id.clone(), name.clone());
        let made = super::blocking(move || this.make(rid, rname, img, config, hc, endpoints)).await;
        let rec = match made {
            Ok(rec) => rec,
            Err(e) => {
                self.store.release(&name, &id);
                return Err(e);
            }
        };
        self.emit("create", &rec, &[]);
        self.store.insert(Arc::new(Container::new(rec)));
        Ok((id, warnings))
    }

    /// The image a create names, and its config. Blocking.
    fn image_of(&self, image: String) -> Result<ImageOf> {
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
            record: img,
            config: image_config(&config["config"]),
        })
    }

    /// The disk half of create: the merged record, its mounts, its directory. Blocking.
    fn make(
        &self,
        id: String,
        name: String,
        img: ImageOf,
        config: Config,
        hc: HostConfig,
        endpoints: super::network::Endpoints,
    ) -> Result<Record> {
        let image = config.image.clone();
        let (mut config, argv) = merge(config, &img.config)?;
        if config.hostname.is_empty() {
            config.hostname = if hc.network_mode.is_host() {
                nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                id[..12].to_string()
            };
        }
        let layers: Vec<PathBuf> = chain_ids(&img.record.diff_ids())
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
            image_id: img.record.id.to_string(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            config,
            host_config: hc,
            state: State::default(),
            restart_count: 0,
            manual_stop: false,
            process: None,
            endpoints,
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
    fn merged_as_dockerd_merges() {
        let cfg = |v: serde_json::Value| -> Config { serde_json::from_value(v).unwrap() };
        let image = cfg(serde_json::json!({
            "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Entrypoint": ["/init"],
            "Volumes": {"/data": {}}, "Labels": {"a": "1", "b": "1"}, "User": "u",
            "WorkingDir": "/w", "ExposedPorts": {"80/tcp": {}},
        }));
        // The docker CLI's empty Volumes and Labels keep the image's.
        let req = cfg(serde_json::json!({"Env": ["A=2"], "Volumes": {}, "Labels": {"b": "2"}}));
        let (c, argv) = merge(req, &image).unwrap();
        assert_eq!(argv, ["/init", "sh"]);
        assert_eq!(c.env.unwrap(), ["PATH=/bin", "A=2"]);
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.labels.unwrap()["b"], "2");
        assert_eq!((c.user.as_str(), c.working_dir.as_str()), ("u", "/w"));
        assert!(c.exposed_ports.contains_key("80/tcp"));
        // An entrypoint given clears the image's command; [""] clears its entrypoint.
        let (_, argv) = merge(cfg(serde_json::json!({"Entrypoint": ["echo"]})), &image).unwrap();
        assert_eq!(argv, ["echo"]);
        let (_, argv) = merge(
            cfg(serde_json::json!({"Entrypoint": [""], "Cmd": ["ls"]})),
            &image,
        )
        .unwrap();
        assert_eq!(argv, ["ls"]);
        let e = merge(cfg(serde_json::json!({"Entrypoint": [""]})), &image).unwrap_err();
        assert_eq!(e.to_string(), "No command specified");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn joining_the_pid_or_ipc_of_a_missing_container_is_refused_and_nothing_is_made() {
        let h = crate::containers::testing::Harness::new().await;
        let other = h.create("other", serde_json::json!({})).await;
        for mode in ["PidMode", "IpcMode"] {
            let body = |target: &str| {
                let body = serde_json::json!({
                    "Image": "img:1",
                    "HostConfig": {"NetworkMode": "none", mode: format!("container:{target}")},
                });
                ContainerCreateRequest::decode(
                    Some("application/json"),
                    body.to_string().as_bytes(),
                )
                .unwrap()
            };
            let e = h
                .svc
                .create(Some("joiner"), body("nope"))
                .await
                .unwrap_err();
            assert!(matches!(e, Error::NotFound(_)), "{e}");
            assert_eq!(e.to_string(), "No such container: nope");
            assert!(h.svc.get("joiner").is_err(), "nothing is made");
            assert!(!h.svc.store.name_taken("joiner"), "the name is free");
            // By name, recorded by ID; its start is refused while the other is not
            // running, in dockerd's words.
            h.svc.create(Some("joiner"), body("other")).await.unwrap();
            let joiner = h.svc.get("joiner").unwrap();
            let recorded = joiner.read(|r| {
                serde_json::to_value(&r.host_config).unwrap()[mode]
                    .as_str()
                    .unwrap()
                    .to_string()
            });
            assert_eq!(recorded, format!("container:{}", other.id));
            let e = h.svc.start("joiner").await.unwrap_err().to_string();
            assert!(
                e.ends_with(&format!("container {} is not running", other.id)),
                "{e}"
            );
            assert_eq!(joiner.status(), crate::containers::state::Status::Created);
            h.svc.remove("joiner", true).await.unwrap();
        }
    }

    #[tokio::test]
    async fn volumes_from_an_unknown_container_or_a_bad_mode_is_refused_and_nothing_is_made() {
        let h = crate::containers::testing::Harness::new().await;
        for (from, want) in [
            ("other:ro", "No such container: other"),
            ("other:rx", "invalid mode: rx"),
        ] {
            let body = serde_json::json!({
                "Image": "img:1",
                "HostConfig": {"NetworkMode": "none", "VolumesFrom": [from]},
            });
            let req = ContainerCreateRequest::decode(
                Some("application/json"),
                body.to_string().as_bytes(),
            )
            .unwrap();
            let e = h.svc.create(Some("copier"), req).await.unwrap_err();
            assert!(e.to_string().contains(want), "{from}: {e}");
            assert!(h.svc.get("copier").is_err(), "nothing is made");
            assert!(!h.svc.store.name_taken("copier"), "the name is free");
        }
    }
}
