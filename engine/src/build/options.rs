//! `POST /build`'s query parameters, read once into a typed value as dockerd's
//! `newImageBuildOptions` reads them (same defaults, same refusals).

use super::error::{BuildError, Result};
use crate::images::reference::Reference;
use std::collections::BTreeMap;

/// What a build was asked for.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `t`: names to tag the result with.
    pub tags: Vec<Reference>,
    /// `dockerfile`: the Dockerfile's path in the context.
    pub dockerfile: String,
    /// `buildargs`: `--build-arg`s; a name without a value is `None`.
    pub build_args: BTreeMap<String, Option<String>>,
    /// `target`: the last stage to build.
    pub target: Option<String>,
    /// `nocache`.
    pub no_cache: bool,
    /// `pull`: pull base images even if present.
    pub pull: bool,
    /// `rm`: remove step containers (also a failed one).
    pub rm: bool,
    /// `forcerm`: remove step containers even with `rm=false`.
    pub force_rm: bool,
    /// `labels`: labels for the image (as LABEL steps at the end).
    pub labels: BTreeMap<String, String>,
    /// `networkmode`: the RUN steps' network, as `docker run --network` takes it
    /// (`default`, the daemon's bridge, unless the client names one).
    pub network: berth_api::container::NetworkMode,
    /// `cachefrom`: images whose history may stand for cache entries.
    pub cache_from: Vec<String>,
    /// `q`: print only the image ID.
    pub quiet: bool,
    /// `memory`, `memswap`, `cpushares`, `cpuperiod`, `cpuquota` (bytes, shares, µs).
    pub memory: i64,
    /// `memswap`.
    pub memory_swap: i64,
    /// `cpushares`.
    pub cpu_shares: i64,
    /// `cpuperiod`.
    pub cpu_period: i64,
    /// `cpuquota`.
    pub cpu_quota: i64,
    /// `cpusetcpus`.
    pub cpuset_cpus: String,
    /// `cpusetmems`.
    pub cpuset_mems: String,
    /// `cgroupparent`.
    pub cgroup_parent: String,
    /// `shmsize` (bytes).
    pub shm_size: i64,
    /// `extrahosts`: `host:ip` lines for /etc/hosts of RUN steps.
    pub extra_hosts: Vec<String>,
    /// `ulimits` (Docker's JSON list), passed to RUN steps.
    pub ulimits: Option<Vec<berth_api::container::Ulimit>>,
    /// `platform`.
    pub platform: Option<String>,
    /// `X-Registry-Config`: credentials by registry, for pulling base images.
    pub auth_configs: BTreeMap<String, crate::registry::auth::Credentials>,
}

fn flag(pairs: &[(String, String)], key: &str) -> bool {
    crate::api::query_get(pairs, key)
        .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "True" | "TRUE"))
}

fn json<T: serde::de::DeserializeOwned + Default>(
    pairs: &[(String, String)],
    key: &str,
    what: &str,
) -> Result<T> {
    match crate::api::query_get(pairs, key).filter(|v| !v.is_empty()) {
        None => Ok(T::default()),
        Some(v) => serde_json::from_str(v).map_err(|e| BuildError::Options(format!("{what}: {e}"))),
    }
}

impl BuildOptions {
    /// Reads the query of `POST /build` and its `X-Registry-Config` header.
    pub fn parse(pairs: &[(String, String)], registry_config: Option<&str>) -> Result<Self> {
        let get = |k: &str| crate::api::query_get(pairs, k).unwrap_or("").to_string();
        let mut tags = Vec::new();
        for t in pairs.iter().filter(|(k, _)| k == "t").map(|(_, v)| v) {
            if t.is_empty() {
                continue;
            }
            let r = Reference::parse_with_default_tag(t)
                .map_err(|e| BuildError::Options(e.to_string()))?;
            if r.digest.is_some() {
                return Err(BuildError::Options(
                    "build tag cannot contain a digest".into(),
                ));
            }
            if !tags.contains(&r) {
                tags.push(r);
            }
        }
        if pairs.iter().any(|(k, _)| k == "securityopt") {
            return Err(BuildError::Options(
                "The daemon on this platform does not support setting security options on build"
                    .into(),
            ));
        }
        if flag(pairs, "squash") {
            return Err(BuildError::Options(
                "squash is only supported with experimental mode".into(),
            ));
        }
        match get("version").as_str() {
            "" | "1" => {}
            "2" => {
                return Err(BuildError::Options(
                    "berthd has the classic builder only: build with DOCKER_BUILDKIT=0".into(),
                ))
            }
            v => return Err(BuildError::Options(format!("invalid version \"{v}\""))),
        }
        let remote = get("remote");
        if !remote.is_empty() {
            return Err(BuildError::Options(format!(
                "remote build contexts are not supported by berthd ({remote}): send the context as a tar"
            )));
        }
        // The options berth-api's model reads (dockerd's defaults and words), then the
        // builder's own.
        let base = berth_api::image::BuildOptions::from_query(pairs)
            .map_err(|e| BuildError::Options(e.to_string()))?;
        if base.shm_size < 0 {
            return Err(BuildError::Options("shmsize: must not be negative".into()));
        }
        // dockerd's classic builder hands the mode to the step containers as it is; the
        // container core checks it as it checks `docker run --network` (an unknown network
        // is "network X not found", and with `--bridge none` the default is no network).
        let network = berth_api::container::NetworkMode::from(match base.network_mode.as_str() {
            "" => "default",
            mode => mode,
        });
        let platform = Some(base.platform.clone()).filter(|p| !p.is_empty());
        if let Some(p) = &platform {
            let host = format!("linux/{}", crate::images::host_arch());
            if p != "linux" && p != &host {
                return Err(BuildError::Options(format!(
                    "platform {p} is not supported: berthd builds for {host}"
                )));
            }
        }
        let auth_configs = registry_config
            .filter(|h| !h.is_empty())
            .and_then(|h| {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE
                    .decode(h.trim_end_matches('='))
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h))
                    .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
                    .ok()
            })
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Self {
            tags,
            dockerfile: Some(base.dockerfile)
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "Dockerfile".into()),
            build_args: base.build_args,
            target: Some(base.target).filter(|t| !t.is_empty()),
            no_cache: base.no_cache,
            pull: base.pull,
            rm: base.remove || base.force_remove,
            force_rm: base.force_remove,
            labels: base.labels,
            network,
            cache_from: base.cache_from,
            quiet: base.quiet,
            memory: base.memory,
            memory_swap: base.memory_swap,
            cpu_shares: base.cpu_shares,
            cpu_period: base.cpu_period,
            cpu_quota: base.cpu_quota,
            cpuset_cpus: base.cpuset_cpus,
            cpuset_mems: base.cpuset_mems,
            cgroup_parent: get("cgroupparent"),
            shm_size: base.shm_size,
            extra_hosts: base.extra_hosts,
            ulimits: json(pairs, "ulimits", "error reading ulimit settings")?,
            platform,
            auth_configs,
        })
    }

    /// The HostConfig of RUN step containers.
    pub fn host_config(&self) -> berth_api::container::HostConfig {
        use berth_api::container::{HostConfig, LogConfig, Resources};
        HostConfig {
            network_mode: self.network.clone(),
            log_config: LogConfig {
                kind: "json-file".into(),
                config: Some(Default::default()),
            },
            shm_size: self.shm_size,
            extra_hosts: (!self.extra_hosts.is_empty()).then(|| self.extra_hosts.clone()),
            resources: Resources {
                memory: self.memory,
                memory_swap: self.memory_swap,
                cpu_shares: self.cpu_shares,
                cpu_period: self.cpu_period,
                cpu_quota: self.cpu_quota,
                cpuset_cpus: self.cpuset_cpus.clone(),
                cpuset_mems: self.cpuset_mems.clone(),
                cgroup_parent: self.cgroup_parent.clone(),
                ulimits: self.ulimits.clone(),
                ..Resources::default()
            },
            ..HostConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(s.as_bytes()).into_owned().collect()
    }

    #[test]
    fn defaults_and_values() {
        let o = BuildOptions::parse(&q(""), None).unwrap();
        assert!(o.rm && !o.force_rm && !o.no_cache && !o.quiet);
        assert_eq!(o.dockerfile, "Dockerfile");
        assert!(o.network.is_default());
        let o = BuildOptions::parse(
            &q("t=a&t=b:2&t=a&rm=0&buildargs=%7B%22X%22%3A%221%22%2C%22Y%22%3Anull%7D&networkmode=host&memory=1024"),
            None,
        )
        .unwrap();
        assert_eq!(o.tags.len(), 2);
        assert!(!o.rm);
        assert_eq!(o.build_args["X"].as_deref(), Some("1"));
        assert_eq!(o.build_args["Y"], None);
        assert!(o.network.is_host());
        assert_eq!(o.host_config().resources.memory, 1024);
        assert!(o.host_config().network_mode.is_host());
        assert!(BuildOptions::parse(&q("forcerm=1&rm=0"), None).unwrap().rm);
    }

    #[test]
    fn refusals() {
        for bad in [
            "t=a@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "squash=1",
            "version=2",
            "buildargs=notjson",
            "memory=lots",
            "remote=https://example.invalid/x.tar",
            "platform=linux/s390x",
        ] {
            assert!(BuildOptions::parse(&q(bad), None).is_err(), "{bad}");
        }
    }
}
