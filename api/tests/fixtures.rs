//! Round trips against real dockerd JSON: each fixture under `fixtures/dockerd-20.10/`
//! was captured from dockerd 20.10 (API 1.41, Debian's docker.io) started privately in
//! a temp dir, with a busybox image imported there. Decoding a fixture into our type
//! and encoding it again must give back the same JSON: the same keys, `null` where
//! dockerd writes `null`, nothing where it omits.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dockerd-20.10")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Decodes `v` as `T` and encodes it again; panics naming the first difference.
#[track_caller]
fn round_trip<T: DeserializeOwned + Serialize>(name: &str, v: &Value) -> T {
    let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let back = serde_json::to_value(&t).unwrap();
    if let Some(diff) = first_difference(v, &back, "") {
        panic!("{name}: {diff}");
    }
    t
}

fn first_difference(want: &Value, got: &Value, at: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    None => return Some(format!("{at}.{k} missing (dockerd: {va})")),
                    Some(vb) => {
                        if let Some(d) = first_difference(va, vb, &format!("{at}.{k}")) {
                            return Some(d);
                        }
                    }
                }
            }
            b.keys()
                .find(|k| !a.contains_key(*k))
                .map(|k| format!("{at}.{k} is extra ({})", b[k]))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{at}[{i}]"))),
        _ if want == got => None,
        _ => Some(format!("{at}: dockerd {want}, ours {got}")),
    }
}

#[test]
fn container_inspect() {
    use berth_api::container::ContainerInspect;
    use berth_api::state::{HealthStatus, Status};
    let rich: ContainerInspect = round_trip(
        "container_inspect_rich.json",
        &fixture("container_inspect_rich.json"),
    );
    let st = rich.state.as_ref().unwrap();
    assert_eq!(st.status, Status::Running);
    assert_eq!(st.health.as_ref().unwrap().status, HealthStatus::Healthy);
    let hc = rich.host_config.as_ref().unwrap();
    assert_eq!(hc.log_config.kind, "json-file");
    assert_eq!(hc.resources.pids_limit, Some(100));
    assert_eq!(hc.mounts.len(), 3);
    assert_eq!(rich.config.as_ref().unwrap().stop_timeout, Some(7));
    let created: ContainerInspect = round_trip(
        "container_inspect_created.json",
        &fixture("container_inspect_created.json"),
    );
    // dockerd fills in the log driver even when the client named none (docker-py
    // reads HostConfig.LogConfig.Type).
    let lc = &created.host_config.as_ref().unwrap().log_config;
    assert_eq!(lc.kind, "json-file");
    assert_eq!(lc.config.as_ref().map(|c| c.len()), Some(0));
    let exited: ContainerInspect = round_trip(
        "container_inspect_exited.json",
        &fixture("container_inspect_exited.json"),
    );
    assert_eq!(exited.state.unwrap().exit_code, 3);
}

#[test]
fn container_list_and_small_answers() {
    use berth_api::container::{ContainerSummary, FilesystemChange, TopResponse, WaitResponse};
    let list: Vec<ContainerSummary> =
        round_trip("container_list.json", &fixture("container_list.json"));
    assert!(list
        .iter()
        .any(|c| c.names == ["/rich"] && c.state == "running"));
    let top: TopResponse = round_trip("container_top.json", &fixture("container_top.json"));
    assert!(top.titles.iter().any(|t| t == "PID"));
    let changes: Vec<FilesystemChange> =
        round_trip("container_changes.json", &fixture("container_changes.json"));
    assert!(!changes.is_empty());
    let wait: WaitResponse = round_trip("container_wait.json", &fixture("container_wait.json"));
    assert_eq!(wait.status_code, 3);
}

#[test]
fn exec_inspect() {
    use berth_api::exec::ExecInspect;
    let created: ExecInspect = round_trip(
        "exec_inspect_created.json",
        &fixture("exec_inspect_created.json"),
    );
    assert_eq!(created.exit_code, None);
    let pc = created.process_config.unwrap();
    assert!(pc.tty);
    assert_eq!((pc.entrypoint.as_str(), pc.user.as_str()), ("sleep", "0"));
    let exited: ExecInspect = round_trip(
        "exec_inspect_exited.json",
        &fixture("exec_inspect_exited.json"),
    );
    assert_eq!(exited.exit_code, Some(0));
}

#[test]
fn images() {
    use berth_api::image::{HistoryResponseItem, ImageInspect, ImageSummary};
    let img: ImageInspect = round_trip("image_inspect.json", &fixture("image_inspect.json"));
    assert_eq!(img.comment, "Imported from -");
    assert_eq!(img.root_fs.layers.len(), 1);
    let cfg = img.config.unwrap();
    assert_eq!(cfg.healthcheck.unwrap().interval, 5_000_000_000);
    assert!(img.container_config.is_some());
    let list: Vec<ImageSummary> = round_trip("image_list.json", &fixture("image_list.json"));
    assert_eq!(list[0].containers, -1);
    let hist: Vec<HistoryResponseItem> =
        round_trip("image_history.json", &fixture("image_history.json"));
    assert_eq!(hist.len(), 1);
}

#[test]
fn volumes_networks_system() {
    use berth_api::network::NetworkResource;
    use berth_api::system::{DiskUsage, Info, Version};
    use berth_api::volume::{Volume, VolumeListResponse};
    let v: Volume = round_trip("volume_inspect.json", &fixture("volume_inspect.json"));
    assert_eq!(v.options.unwrap()["type"], "tmpfs");
    let list: VolumeListResponse = round_trip("volume_list.json", &fixture("volume_list.json"));
    assert!(list.volumes.unwrap().iter().any(|v| v.name == "vol1"));
    for name in ["network_inspect_none.json", "network_inspect_host.json"] {
        let _: NetworkResource = round_trip(name, &fixture(name));
    }
    let info: Info = round_trip("info.json", &fixture("info.json"));
    assert_eq!(info.ncpu, 2);
    let version: Version = round_trip("version.json", &fixture("version.json"));
    assert_eq!(version.api_version, "1.41");
    let df: DiskUsage = round_trip("system_df.json", &fixture("system_df.json"));
    assert_eq!(df.build_cache, None);
}

#[test]
fn stats_errors_and_events() {
    use berth_api::error::ErrorResponse;
    use berth_api::events::Message;
    use berth_api::stats::Stats;
    let s: Stats = round_trip("container_stats.json", &fixture("container_stats.json"));
    assert_eq!(s.memory_stats.limit, 64 << 20);
    let e: ErrorResponse = round_trip("error_not_found.json", &fixture("error_not_found.json"));
    assert_eq!(e.message, "No such container: nope");
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dockerd-20.10/events.jsonl");
    let text = std::fs::read_to_string(p).unwrap();
    let mut kinds = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let m: Message = round_trip("events.jsonl", &v);
        kinds.push(m.kind);
    }
    for k in ["container", "volume", "network"] {
        assert!(kinds.iter().any(|x| x == k), "{k}");
    }
}
