//! berth-runtime's lifecycle from the outside: create → created (process waiting),
//! start → running, kill → stopped, delete → gone; run's output and exit codes.

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::*;

#[test]
fn run_passes_output_and_exit_code_through() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "echo out; echo err >&2; exit 7");
    let out = rt.run(&bundle, &unique_id("exit"));
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
}

#[test]
fn a_signal_death_exits_128_plus_the_signal() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "sleep 30");
    let id = unique_id("sig");
    rt.track(&id);
    let mut run = rt
        .cmd()
        .args(["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let running = wait_until(Duration::from_secs(10), || {
        rt.output(&["state", &id]).status.success() && rt.state(&id)["status"] == "running"
    });
    assert!(running, "container never ran");
    assert_ok(&rt.output(&["kill", &id, "KILL"]), "kill");
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    assert!(
        !rt.state_dir(&id).exists(),
        "run did not clean up after the kill"
    );
}

#[test]
fn stdin_passes_through_without_a_terminal() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "tr a-z A-Z");
    let id = unique_id("stdin");
    rt.track(&id);
    let mut child = rt
        .cmd()
        .args(["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello berth\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO BERTH\n");
}

#[test]
fn run_removes_the_container_afterwards() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "true");
    let id = unique_id("gone");
    assert_ok(&rt.run(&bundle, &id), "run");
    assert!(!rt.state_dir(&id).exists());
    let out = rt.output(&["state", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(
        !cgroup_dir("pids", &format!("/{id}")).exists(),
        "cgroup left behind"
    );
}

#[test]
fn create_waits_and_start_runs_the_process() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "touch /started; sleep 30");
    bundle.edit(|c| c["annotations"] = json!({"org.example/purpose": "test"}));
    let id = unique_id("life");
    let pid_file = bundle.path().join("pid");
    rt.track(&id);
    let out = rt.output(&[
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert_ok(&out, "create");

    let state = rt.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(
        state["ociVersion"].as_str().map(|v| v.starts_with("1.")),
        Some(true)
    );
    assert_eq!(
        state["bundle"],
        std::fs::canonicalize(bundle.path())
            .unwrap()
            .to_str()
            .unwrap()
    );
    assert_eq!(state["annotations"]["org.example/purpose"], "test");
    let pid = state["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    assert!(alive(pid));
    // The user's program has not run yet.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !bundle.rootfs().join("started").exists(),
        "process ran before start"
    );

    assert_ok(&rt.output(&["start", &id]), "start");
    assert!(wait_until(Duration::from_secs(10), || bundle
        .rootfs()
        .join("started")
        .exists()));
    assert_eq!(rt.state(&id)["status"], "running");
    let again = rt.output(&["start", &id]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("is running"), "{}", stderr(&again));

    assert_ok(&rt.output(&["kill", &id, "KILL"]), "kill");
    assert!(wait_until(Duration::from_secs(10), || rt.state(&id)
        ["status"]
        == "stopped"));
    assert_eq!(rt.state(&id)["pid"], 0);
    assert_ok(&rt.output(&["delete", &id]), "delete");
    assert!(!rt.state_dir(&id).exists());
}

#[test]
fn delete_refuses_a_running_container_unless_forced() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "sleep 30");
    let id = unique_id("force");
    rt.create(&bundle, &id);
    assert_ok(&rt.output(&["start", &id]), "start");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let out = rt.output(&["delete", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("use --force"), "{}", stderr(&out));
    assert!(alive(pid));
    assert_ok(&rt.output(&["delete", "--force", &id]), "delete --force");
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    assert!(!rt.state_dir(&id).exists());
    assert!(
        !cgroup_dir("memory", &format!("/{id}")).exists(),
        "cgroup left behind"
    );
    // Forcing the delete of something that does not exist is not an error (as runc).
    assert_ok(
        &rt.output(&["delete", "--force", &id]),
        "second delete --force",
    );
}

#[test]
fn kill_all_reaches_every_process() {
    let rt = Runtime::new();
    // The shell ignores TERM; its child does not.
    let bundle = Bundle::new(
        &rt,
        "trap '' TERM; sleep 60 & echo $! > /child; wait; sleep 60",
    );
    let id = unique_id("killall");
    rt.create(&bundle, &id);
    assert_ok(&rt.output(&["start", &id]), "start");
    assert!(wait_until(Duration::from_secs(10), || bundle
        .rootfs()
        .join("child")
        .exists()));
    let pids_file = cgroup_dir("pids", &format!("/{id}")).join("cgroup.procs");
    assert!(wait_until(
        Duration::from_secs(5),
        || std::fs::read_to_string(&pids_file)
            .map(|s| s.lines().count())
            .unwrap_or(0)
            >= 2
    ));
    assert_ok(&rt.output(&["kill", "--all", &id, "TERM"]), "kill --all");
    // sleep is gone, the shell (ignoring TERM) goes on to its second sleep.
    assert!(wait_until(
        Duration::from_secs(5),
        || std::fs::read_to_string(&pids_file)
            .map(|s| s.lines().count())
            .unwrap_or(0)
            == 2
    ));
    assert_eq!(rt.state(&id)["status"], "running");
    assert_ok(&rt.output(&["kill", "--all", &id, "9"]), "kill --all 9");
    assert!(wait_until(Duration::from_secs(10), || rt.state(&id)
        ["status"]
        == "stopped"));
}

#[test]
fn list_shows_containers_as_table_and_json() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "sleep 30");
    let (a, b) = (unique_id("list-a"), unique_id("list-b"));
    rt.create(&bundle, &a);
    rt.create(&bundle, &b);
    assert_ok(&rt.output(&["start", &b]), "start");

    let out = rt.output(&["list", "--format", "json"]);
    assert_ok(&out, "list json");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = list.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["id"], a.as_str());
    assert_eq!(entries[0]["status"], "created");
    assert_eq!(entries[1]["status"], "running");

    let table = stdout(&rt.output(&["list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{table}"
    );
    assert!(
        lines[1].starts_with(&a) && lines[1].contains("created"),
        "{table}"
    );
    assert!(
        lines[2].starts_with(&b) && lines[2].contains("running"),
        "{table}"
    );

    let quiet = stdout(&rt.output(&["list", "-q"]));
    assert_eq!(quiet, format!("{a}\n{b}\n"));
}

#[test]
fn detached_run_keeps_the_container_running() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "sleep 30");
    let id = unique_id("detach");
    rt.track(&id);
    let out = rt.output(&[
        "run",
        "--detach",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert_ok(&out, "run -d");
    assert_eq!(rt.state(&id)["status"], "running");
}

#[test]
fn spec_writes_a_config_and_refuses_to_overwrite() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().to_str().unwrap();
    assert_ok(&rt.output(&["spec", "--bundle", bundle]), "spec");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["root"]["path"], "rootfs");
    assert!(config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "pid"));
    let out = rt.output(&["spec", "--bundle", bundle]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}

#[test]
fn no_pivot_moves_the_rootfs_instead() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "ls /bin/busybox && cat /proc/self/mountinfo | wc -l");
    let id = unique_id("nopivot");
    rt.track(&id);
    let out = rt.output(&[
        "run",
        "--no-pivot",
        "--no-new-keyring",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert_ok(&out, "run --no-pivot");
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("/bin/busybox"));
    // The host's mounts stay out of view either way.
    let mounts: usize = lines.next().unwrap().trim().parse().unwrap();
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    assert!(mounts < host_mounts + 20, "{mounts} mounts visible");
    assert!(!rt.state_dir(&id).exists());
}

/// containerd's runc shim and other wrappers match runc's words to treat the kill of a
/// stopped container as already done.
#[test]
fn kill_of_a_stopped_container_says_container_not_running_as_runc_does() {
    for rt in [Runtime::new(), Runtime::runc()] {
        let runtime = rt.binary.display().to_string();
        let bundle = Bundle::new(&rt, "true");
        let id = unique_id("kill-stopped");
        rt.create(&bundle, &id);
        assert_ok(&rt.output(&["start", &id]), "start");
        assert!(wait_until(Duration::from_secs(10), || rt.state(&id)
            ["status"]
            == "stopped"));
        let out = rt.output(&["kill", &id, "KILL"]);
        assert!(
            !out.status.success(),
            "{runtime}: kill of a stopped container"
        );
        assert!(
            stderr(&out).contains("container not running"),
            "{runtime}: {}",
            stderr(&out)
        );
        if !runtime.contains("runc") {
            assert_eq!(stderr(&out), "berth-runtime: container not running\n");
        }
        // --all signals what is left in the cgroup: nothing here, which is no error.
        assert_ok(&rt.output(&["kill", "--all", &id, "KILL"]), &runtime);
        assert_eq!(rt.state(&id)["status"], "stopped");
    }
}
