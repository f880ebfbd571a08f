//! `/_ping`, `/version`, `/info`.

use super::{AppState, API_VERSION, MIN_API_VERSION};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

/// `GET|HEAD /_ping`: `OK`, with the headers clients negotiate from.
pub async fn ping() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            (header::PRAGMA, "no-cache"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::HeaderName::from_static("builder-version"), "1"),
        ],
        "OK",
    )
}

/// `GET /version`.
pub async fn version() -> Json<Value> {
    let v = env!("CARGO_PKG_VERSION");
    let arch = crate::images::host_arch();
    Json(json!({
        "Platform": {"Name": "Berth Engine"},
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": arch,
                "KernelVersion": kernel_version(),
                "Experimental": "false",
            },
        }],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel_version(),
        "BuildTime": "",
    }))
}

/// `GET /info`.
pub async fn info(State(st): State<AppState>) -> Json<Value> {
    // As dockerd: each runtime with the binary it runs.
    let runtimes: serde_json::Map<String, Value> = st
        .containers
        .runtimes
        .paths
        .iter()
        .map(|(name, path)| (name.clone(), json!({ "path": path })))
        .collect();
    let images = st.images.meta.images().map(|i| i.len()).unwrap_or(0);
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    // Counted from the container service (they were always 0 before, whatever ran).
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let containers = st.containers.all();
    for e in &containers {
        match e.record().state.status().as_str() {
            "running" | "restarting" => running += 1,
            "paused" => paused += 1,
            _ => stopped += 1,
        }
    }
    Json(json!({
        "ID": "",
        "Containers": containers.len(), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay",
        "DriverStatus": [["Snapshots", st.data_root.join("snapshots").display().to_string()]],
        "Plugins": {"Volume": [], "Network": [], "Authorization": null, "Log": []},
        "MemoryLimit": true, "SwapLimit": false, "CpuCfsPeriod": true, "CpuCfsQuota": true,
        "CPUShares": true, "CPUSet": true, "PidsLimit": true, "IPv4Forwarding": true,
        "Debug": false, "NFd": 0, "OomKillDisable": false, "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "NEventsListener": 0,
        "KernelVersion": kernel_version(),
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": null,
            "AllowNondistributableArtifactsHostnames": null,
            "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"],
            "IndexConfigs": {},
            "Mirrors": null,
        },
        "NCPU": ncpu,
        "MemTotal": mem_total,
        "DockerRootDir": st.data_root.display().to_string(),
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": runtimes,
        "DefaultRuntime": st.containers.runtimes.default,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": false,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": [],
        "Warnings": null,
    }))
}

/// `GET /system/df`: disk usage of layers, images, containers and volumes, measured in
/// berthd's stores (`type=` narrows it to some of them, as dockerd since API 1.42).
pub async fn df(State(st): State<AppState>, uri: axum::http::Uri) -> super::ApiResult<Json<Value>> {
    let q = super::query_pairs(&uri);
    let types: Vec<String> = q
        .into_iter()
        .filter(|(k, _)| k == "type")
        .map(|(_, v)| v)
        .collect();
    for t in &types {
        if !["container", "image", "volume", "build-cache"].contains(&t.as_str()) {
            return Err(super::ApiError::bad_request(format!(
                "unknown object type: {t}"
            )));
        }
    }
    let wants = move |t: &str| types.is_empty() || types.iter().any(|x| x == t);
    // Walking the stores reads every file: off the async workers.
    let body = tokio::task::spawn_blocking(move || -> super::ApiResult<Value> {
        let mut out = serde_json::Map::new();
        if wants("image") {
            let (layers_size, images) = image_usage(&st)?;
            out.insert("LayersSize".into(), json!(layers_size));
            out.insert("Images".into(), json!(images));
        }
        if wants("container") {
            let containers: Vec<berth_api::container::ContainerSummary> = st
                .containers
                .all()
                .iter()
                .map(|e| super::containers::summary_sized(&st, e))
                .collect();
            out.insert("Containers".into(), json!(containers));
        }
        if wants("volume") {
            let volumes: Vec<Value> = st
                .containers
                .volumes
                .list()
                .into_iter()
                .map(|mut v| {
                    let name = v["Name"].as_str().unwrap_or("").to_string();
                    let size = st.containers.volumes.size(&name);
                    let refs = st.containers.volume_users(&name).len();
                    v["UsageData"] = json!({"Size": size, "RefCount": refs});
                    v
                })
                .collect();
            out.insert("Volumes".into(), json!(volumes));
        }
        if wants("build-cache") {
            // berthd has no builder, so no build cache.
            out.insert("BuildCache".into(), json!([]));
        }
        Ok(Value::Object(out))
    })
    .await
    .map_err(|e| {
        super::ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("disk usage: {e}"),
        )
    })??;
    Ok(Json(body))
}

/// The bytes of every layer snapshot, and each image as the image list shows it with
/// dockerd's usage fields: `Containers` (how many use it) and `SharedSize` (the bytes of
/// its layers that other images use too).
fn image_usage(st: &AppState) -> super::ApiResult<(u64, Vec<Value>)> {
    use std::collections::HashMap;
    let snapshots = &st.images.snapshots;
    let layers_size: u64 = snapshots
        .list()
        .map_err(crate::images::Error::from)?
        .iter()
        .map(|c| snapshots.usage(c))
        .sum();
    let records = st.images.meta.images()?;
    // How many images stand on each layer (a chain ID names a layer with all below it).
    let mut layer_users: HashMap<String, usize> = HashMap::new();
    let mut chains_of: HashMap<String, Vec<(String, u64)>> = HashMap::new();
    for rec in &records {
        let chains = crate::snapshots::chain_ids(&rec.diff_ids());
        let layers: Vec<(String, u64)> = chains
            .iter()
            .zip(&rec.layers)
            .map(|(c, l)| (c.to_string(), l.unpacked_size))
            .collect();
        for (c, _) in &layers {
            *layer_users.entry(c.clone()).or_default() += 1;
        }
        chains_of.insert(rec.id.to_string(), layers);
    }
    let mut containers_of: HashMap<String, i64> = HashMap::new();
    for e in st.containers.all() {
        *containers_of.entry(e.record().image_id).or_default() += 1;
    }
    let mut images = st
        .images
        .summaries(&crate::images::ImageFilters::default())?;
    for img in &mut images {
        let id = img["Id"].as_str().unwrap_or("").to_string();
        let shared: u64 = chains_of
            .get(&id)
            .into_iter()
            .flatten()
            .filter(|(c, _)| layer_users.get(c).is_some_and(|n| *n > 1))
            .map(|(_, size)| size)
            .sum();
        img["SharedSize"] = json!(shared);
        img["Containers"] = json!(containers_of.get(&id).copied().unwrap_or(0));
    }
    Ok((layers_size, images))
}
