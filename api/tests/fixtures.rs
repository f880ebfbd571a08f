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
