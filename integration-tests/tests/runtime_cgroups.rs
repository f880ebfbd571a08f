//! Resource limits land in the container's cgroup, and the cgroup goes with the container.

mod support;

use serde_json::json;
use support::*;

fn read(path: std::path::PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn limits_are_written_to_the_cgroup_and_removed_with_it() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "sleep 30");
    let id = unique_id("limits");
    let cgroup_path = format!("/berth-test/{id}");
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cgroup_path);
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        c["linux"]["resources"]["pids"] = json!({"limit": 64});
        c["linux"]["resources"]["cpu"] =
            json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"});
    });
    rt.create(&bundle, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    if std::path::Path::new("/sys/fs/cgroup/memory").exists() {
        assert_eq!(
            read(cgroup_dir("memory", &cgroup_path).join("memory.limit_in_bytes")),
            "67108864"
        );
        assert_eq!(
            read(cgroup_dir("pids", &cgroup_path).join("pids.max")),
            "64"
        );
        assert_eq!(
            read(cgroup_dir("cpu", &cgroup_path).join("cpu.shares")),
            "512"
        );
        assert_eq!(
            read(cgroup_dir("cpu", &cgroup_path).join("cpu.cfs_quota_us")),
            "50000"
        );
        assert_eq!(
            read(cgroup_dir("cpuset", &cgroup_path).join("cpuset.cpus")),
            "0"
        );
        let procs = read(cgroup_dir("memory", &cgroup_path).join("cgroup.procs"));
        assert!(
            procs.lines().any(|p| p == pid.to_string()),
            "init not in its cgroup: {procs}"
        );
    } else {
        assert_eq!(
            read(cgroup_dir("", &cgroup_path).join("memory.max")),
            "67108864"
        );
        assert_eq!(read(cgroup_dir("", &cgroup_path).join("pids.max")), "64");
    }
    // Like runc, the controller-less hierarchies of a hybrid host hold the container too.
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for (hierarchy, line_prefix) in [("systemd", "name=systemd:"), ("unified", "0::")] {
        if std::path::Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .exists()
        {
            let want = format!("{line_prefix}{cgroup_path}");
            assert!(
                own.lines().any(|l| l.ends_with(&want)),
                "not in the {hierarchy} hierarchy: {own}"
            );
        }
    }
    assert_ok(&rt.output(&["delete", "--force", &id]), "delete");
    for controller in ["memory", "pids", "cpu", "cpuset", "systemd", "unified"] {
        assert!(
            !cgroup_dir(controller, &cgroup_path).exists(),
            "{controller} cgroup left behind"
        );
    }
    for controller in [
        "memory", "pids", "cpu", "cpuset", "devices", "freezer", "blkio", "cpuacct", "systemd",
        "unified",
    ] {
        let _ = std::fs::remove_dir(cgroup_dir(controller, "/berth-test"));
    }
}

#[test]
fn the_pids_limit_is_enforced() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(
        &rt,
        "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo done",
    );
    bundle.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 4}));
    let out = rt.run(&bundle, &unique_id("pidsmax"));
    // Only 3 sleeps fit beside the shell; the others fail to fork.
    assert!(
        stderr(&out).contains("can't fork")
            || stderr(&out).contains("Resource temporarily unavailable"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_memory_limit_kills_a_hog() {
    let rt = Runtime::new();
    // Holds 64 MiB in the shell's memory: far over the 16 MiB limit.
    let mut bundle = Bundle::new(
        &rt,
        "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}",
    );
    bundle
        .edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216}));
    let out = rt.run(&bundle, &unique_id("oom"));
    assert!(!stdout(&out).contains("survived"), "{}", stdout(&out));
    assert_ne!(out.status.code(), Some(0));
}
