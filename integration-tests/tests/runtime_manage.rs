//! pause/resume, ps, events, update, features, and the honest refusal of checkpoint.

mod support;

use std::time::Duration;

use support::*;

fn running(rt: &Runtime, prefix: &str, script: &str) -> (Bundle, String) {
    let bundle = Bundle::new(rt, script);
    let id = unique_id(prefix);
    rt.create(&bundle, &id);
    assert_ok(&rt.output(&["start", &id]), "start");
    (bundle, id)
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn pause_freezes_and_resume_thaws() {
    let rt = Runtime::new();
    let (bundle, id) = running(
        &rt,
        "pause",
        "while true; do echo x >> /ticks; sleep 0.05; done",
    );
    let ticks = bundle.rootfs().join("ticks");
    assert!(wait_until(Duration::from_secs(5), || file_len(&ticks) > 0));
    assert_ok(&rt.output(&["pause", &id]), "pause");
    assert_eq!(rt.state(&id)["status"], "paused");
    let frozen_at = file_len(&ticks);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        file_len(&ticks),
        frozen_at,
        "a paused container kept running"
    );
    let again = rt.output(&["pause", &id]);
    assert!(stderr(&again).contains("is paused"), "{}", stderr(&again));
    assert_ok(&rt.output(&["resume", &id]), "resume");
    assert_eq!(rt.state(&id)["status"], "running");
    assert!(wait_until(Duration::from_secs(5), || file_len(&ticks) > frozen_at));
    // A paused container can still be force-deleted.
    assert_ok(&rt.output(&["pause", &id]), "pause again");
    assert_ok(&rt.output(&["delete", "--force", &id]), "delete paused");
}

#[test]
fn ps_lists_the_containers_processes() {
    let rt = Runtime::new();
    let (_bundle, id) = running(&rt, "ps", "sleep 60 & sleep 61");
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        let out = rt.output(&["ps", "--format", "json", &id]);
        serde_json::from_slice::<Vec<i64>>(&out.stdout)
            .map(|p| p.len() == 2)
            .unwrap_or(false)
    }));
    let pids: Vec<i64> =
        serde_json::from_slice(&rt.output(&["ps", "--format", "json", &id]).stdout).unwrap();
    assert!(pids.contains(&init));
    let table = stdout(&rt.output(&["ps", &id]));
    assert!(
        table.starts_with("UID") && table.contains("sleep 60") && table.contains("sleep 61"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 3, "{table}");
}

#[test]
fn events_stats_and_update() {
    let rt = Runtime::new();
    let (_bundle, id) = running(&rt, "stats", "sleep 60");
    let out = rt.output(&["events", "--stats", &id]);
    assert_ok(&out, "events --stats");
    let event: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], id.as_str());
    assert!(event["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(event["data"]["pids"]["current"], 1);

    assert_ok(
        &rt.output(&[
            "update",
            "--memory",
            "48m",
            "--pids-limit",
            "17",
            "--cpu-share",
            "300",
            &id,
        ]),
        "update",
    );
    let cg = format!("/{id}");
    assert_eq!(
        std::fs::read_to_string(cgroup_dir("memory", &cg).join("memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        (48u64 << 20).to_string()
    );
    assert_eq!(
        std::fs::read_to_string(cgroup_dir("pids", &cg).join("pids.max"))
            .unwrap()
            .trim(),
        "17"
    );
    assert_eq!(
        std::fs::read_to_string(cgroup_dir("cpu", &cg).join("cpu.shares"))
            .unwrap()
            .trim(),
        "300"
    );
    let resources = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(resources.path(), r#"{"pids": {"limit": 23}}"#).unwrap();
    assert_ok(
        &rt.output(&["update", "-r", resources.path().to_str().unwrap(), &id]),
        "update -r",
    );
    assert_eq!(
        std::fs::read_to_string(cgroup_dir("pids", &cg).join("pids.max"))
            .unwrap()
            .trim(),
        "23"
    );
    // The memory limit set before is kept: update changes only what it is given.
    assert_eq!(
        std::fs::read_to_string(cgroup_dir("memory", &cg).join("memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        (48u64 << 20).to_string()
    );
    let out = rt.output(&["update", "--memory", "lots", &id]);
    assert!(
        !out.status.success() && stderr(&out).contains("lots"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn events_stream_reports_an_oom_kill() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(
        &rt,
        "sleep 1; x=$(head -c 67108864 /dev/zero | tr '\\0' a); sleep 60",
    );
    bundle.edit(|c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 16777216, "swap": 16777216})
    });
    let id = unique_id("oomev");
    rt.create(&bundle, &id);
    let mut cmd = rt.cmd();
    cmd.args(["events", "--interval", "30s", &id]);
    let events = std::thread::spawn(move || run_with_timeout(cmd, Duration::from_secs(60)));
    std::thread::sleep(Duration::from_millis(300));
    assert_ok(&rt.output(&["start", &id]), "start");
    // The OOM killer takes the hog (possibly the shell itself); make sure the container
    // ends so that events returns.
    std::thread::sleep(Duration::from_secs(4));
    let _ = rt.output(&["kill", "--all", &id, "KILL"]);
    let out = events.join().unwrap();
    let kinds: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(kinds.contains(&"oom".to_string()), "{kinds:?}");
}

#[test]
fn features_are_valid_json_and_checkpoint_is_refused() {
    let rt = Runtime::new();
    let out = rt.output(&["features"]);
    assert_ok(&out, "features");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ociVersionMin"], "1.0.0");
    assert!(doc["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "user"));
    let out = rt.output(&["checkpoint", "--image-path", "/tmp/x", "c1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("checkpoint is not supported"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sigkill_reaches_a_paused_container() {
    let rt = Runtime::new();
    let (_bundle, id) = running(&rt, "pausekill", "sleep 60");
    assert_ok(&rt.output(&["pause", &id]), "pause");
    assert_ok(&rt.output(&["kill", &id, "KILL"]), "kill");
    assert!(
        wait_until(Duration::from_secs(5), || rt.state(&id)["status"]
            == "stopped"),
        "a paused container survived SIGKILL"
    );
}

#[test]
fn update_reads_one_json_value_from_an_open_stdin() {
    // containerd's shims write the resources and keep stdin open, as runc allows.
    let rt = Runtime::new();
    let (_bundle, id) = running(&rt, "updstdin", "sleep 60");
    let mut child = rt
        .cmd()
        .args(["update", "-r", "-", &id])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, br#"{"pids": {"limit": 29}}"#).unwrap();
    let done = wait_until(Duration::from_secs(10), || {
        child.try_wait().unwrap().is_some()
    });
    drop(stdin);
    assert!(done, "update waited for end of file");
    let max =
        std::fs::read_to_string(cgroup_dir("pids", &format!("/{id}")).join("pids.max")).unwrap();
    assert_eq!(max.trim(), "29");
}
