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

/// What a container's cgroups hold on a v1 or hybrid host: the rules and limits written,
/// and the hierarchies (with their cgroup paths) the init is in.
fn v1_cgroup_picture(pid: i64, cgroup_path: &str) -> Vec<String> {
    let mut picture = vec![
        read(cgroup_dir("devices", cgroup_path).join("devices.list")),
        read(cgroup_dir("pids", cgroup_path).join("pids.max")),
        read(cgroup_dir("cpuset", cgroup_path).join("cpuset.cpus")),
        read(cgroup_dir("cpuset", cgroup_path).join("cpuset.mems")),
    ];
    let mut own: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':').map(|(_, rest)| rest.to_string()))
        .collect();
    own.sort();
    picture.extend(own);
    picture
}

/// `create` of a `sleep 30` container in the cgroup `{parent}/ID`, its config edited by
/// `edit` and its `create` command by `adjust`; then its v1 picture (with `ID` for its
/// ID), after its deletion took its cgroups away.
fn v1_picture_of_a_container(
    rt: &Runtime,
    parent: &str,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
    adjust: impl FnOnce(&mut std::process::Command),
) -> String {
    let mut bundle = Bundle::new(rt, "sleep 30");
    let id = unique_id(name);
    let cgroup_path = format!("{parent}/{id}");
    bundle.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(cgroup_path);
        edit(c);
    });
    rt.track(&id);
    let mut create = rt.cmd();
    create.args(["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    adjust(&mut create);
    assert_ok(
        &run_with_timeout(create, std::time::Duration::from_secs(60)),
        &format!("create ({name})"),
    );
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let picture = v1_cgroup_picture(pid, &cgroup_path);
    assert_ok(&rt.output(&["delete", "--force", &id]), "delete");
    for controller in ["devices", "pids", "cpuset", "memory", "systemd", "unified"] {
        assert!(
            !cgroup_dir(controller, &cgroup_path).exists(),
            "{controller} cgroup of {name} left behind"
        );
    }
    picture.join("\n").replace(&id, "ID")
}

/// Remove a test's parent cgroup from every hierarchy (its children are gone).
fn remove_parent_cgroup(parent: &str) {
    for controller in [
        "memory",
        "pids",
        "cpu",
        "cpuset",
        "devices",
        "freezer",
        "blkio",
        "cpuacct",
        "systemd",
        "unified",
        "perf_event",
        "net_cls,net_prio",
        "hugetlb",
    ] {
        let _ = std::fs::remove_dir(cgroup_dir(controller, parent));
    }
}

#[test]
fn the_v1_set_up_for_device_rules_and_pids_matches_the_one_through_libcgroups() {
    if !std::path::Path::new("/sys/fs/cgroup/devices").exists() {
        eprintln!("skipped: not a cgroup v1 or hybrid host");
        return;
    }
    let rt = Runtime::new();
    let parent = format!("/berth-test-{}", unique_id("v1"));
    // Device rules and a pids limit only: set up by the runtime itself. With a memory
    // limit besides: through libcgroups' v1 manager. Everything else must be the same.
    let pictures: Vec<String> = [("own", false), ("libcgroups", true)]
        .into_iter()
        .map(|(name, memory)| {
            let edit = |c: &mut serde_json::Value| {
                c["linux"]["resources"]["pids"] = json!({"limit": 64});
                c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
                if memory {
                    c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
                }
            };
            v1_picture_of_a_container(&rt, &parent, name, edit, |_| {})
        })
        .collect();
    remove_parent_cgroup(&parent);
    assert_eq!(pictures[0], pictures[1]);
    let own = &pictures[0];
    assert!(
        own.contains("c 1:3 rwm") && own.contains("c 136:* rwm"),
        "{own}"
    );
    assert!(!own.contains("a *:* rwm"), "every device allowed: {own}");
    assert!(
        own.contains("c 10:200 rwm\n64\n"),
        "pids.max after the rules: {own}"
    );
    assert!(own.contains(&format!("pids:{parent}/ID")), "{own}");
}

#[test]
fn without_clone3_the_init_still_lands_in_every_hierarchy() {
    if !std::path::Path::new("/sys/fs/cgroup/unified").exists() {
        eprintln!("skipped: not a hybrid host (no cgroup2 to clone into)");
        return;
    }
    let rt = Runtime::new();
    let parent = format!("/berth-test-{}", unique_id("clone3"));
    let edit = |c: &mut serde_json::Value| c["linux"]["resources"]["pids"] = json!({"limit": 64});
    let with_clone3 = v1_picture_of_a_container(&rt, &parent, "clone3", edit, |_| {});
    let without = v1_picture_of_a_container(&rt, &parent, "clone", edit, without_clone3);
    remove_parent_cgroup(&parent);
    assert_eq!(with_clone3, without);
    assert!(
        without.contains(&format!("\n:{parent}/ID\n")),
        "not in its cgroup2 directory: {without}"
    );
}
