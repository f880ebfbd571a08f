//! Bad input gets one clear line naming the problem, a non-zero exit, and nothing left
//! behind: no state directory, no cgroup, no process.

mod support;

use serde_json::json;
use support::*;

/// Run `create` expecting failure; returns stderr after checking the leftovers.
fn create_fails(rt: &Runtime, bundle: &Bundle, id: &str) -> String {
    rt.track(id);
    let out = rt.output(&["create", "--bundle", bundle.path().to_str().unwrap(), id]);
    assert!(!out.status.success(), "create unexpectedly succeeded");
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("berth-runtime: "), "{err}");
    assert!(!rt.state_dir(id).exists(), "state dir left behind");
    for controller in ["memory", "pids", "cpu", "devices"] {
        assert!(
            !cgroup_dir(controller, &format!("/{id}")).exists(),
            "{controller} cgroup left behind"
        );
    }
    err
}

#[test]
fn malformed_config_is_named() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "true");
    std::fs::write(
        bundle.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": [",
    )
    .unwrap();
    let err = create_fails(&rt, &bundle, &unique_id("badjson"));
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn invalid_config_values_are_named() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "true");
    bundle.edit(|c| c["process"]["args"] = json!([]));
    assert!(create_fails(&rt, &bundle, &unique_id("noargs")).contains("process.args"));
    bundle.edit(|c| {
        c["process"]["args"] = json!(["true"]);
        c["linux"]["sysctl"] = json!({"vm.swappiness": "1"});
    });
    assert!(create_fails(&rt, &bundle, &unique_id("sysctl")).contains("vm.swappiness"));
    bundle.edit(|c| {
        c["linux"]["sysctl"] = json!({});
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]);
    });
    assert!(create_fails(&rt, &bundle, &unique_id("rlimit")).contains("soft limit 10"));
}

#[test]
fn missing_rootfs_and_program_are_named() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "true");
    bundle.edit(|c| c["root"]["path"] = json!("no-such-rootfs"));
    let err = create_fails(&rt, &bundle, &unique_id("norootfs"));
    assert!(
        err.contains("no-such-rootfs") && err.contains("does not exist"),
        "{err}"
    );

    bundle.edit(|c| {
        c["root"]["path"] = json!("rootfs");
        c["process"]["args"] = json!(["/bin/not-there"]);
    });
    let err = create_fails(&rt, &bundle, &unique_id("noprog"));
    assert!(err.contains("/bin/not-there"), "{err}");
}

#[test]
fn a_capability_the_host_lacks_is_named() {
    // CAP_SYS_RESOURCE is absent from this machine's bounding set; on hosts that have it
    // the request is valid and the container runs.
    let has_it = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap() & (1 << 24) != 0)
        .unwrap();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "true");
    bundle.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_RESOURCE"));
        }
    });
    if has_it {
        assert_ok(
            &rt.run(&bundle, &unique_id("sysres")),
            "run with CAP_SYS_RESOURCE",
        );
    } else {
        let err = create_fails(&rt, &bundle, &unique_id("sysres"));
        assert!(err.contains("CAP_SYS_RESOURCE"), "{err}");
    }
}

#[test]
fn duplicate_id_is_refused_and_the_first_container_is_untouched() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "sleep 30");
    let id = unique_id("dup");
    rt.create(&bundle, &id);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let out = rt.output(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(rt.state(&id)["status"], "created");
    assert!(alive(pid));
}

#[test]
fn unknown_ids_and_bad_ids_are_named() {
    let rt = Runtime::new();
    for args in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope", "TERM"],
        vec!["delete", "nope"],
    ] {
        let out = rt.output(&args);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(
            stderr(&out).trim(),
            "berth-runtime: container \"nope\" does not exist",
            "{args:?}"
        );
    }
    let out = rt.output(&["state", "../etc"]);
    assert!(
        stderr(&out).contains("invalid container id"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_signal_is_named_and_the_container_keeps_running() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "sleep 30");
    let id = unique_id("badsig");
    rt.create(&bundle, &id);
    assert_ok(&rt.output(&["start", &id]), "start");
    let out = rt.output(&["kill", &id, "SIGBOGUS"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim(),
        "berth-runtime: unknown signal \"SIGBOGUS\""
    );
    assert_eq!(rt.state(&id)["status"], "running");
}

#[test]
fn a_failing_prestart_hook_fails_create_and_leaves_nothing() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "true");
    bundle.edit(|c| {
        c["hooks"] = json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook says no >&2; exit 2"]}]});
    });
    let id = unique_id("hookfail");
    let err = create_fails(&rt, &bundle, &id);
    assert!(
        err.contains("prestart hook /bin/sh failed: exit status 2: hook says no"),
        "{err}"
    );
    // The init that was waiting for the hook is gone too (it is a fork of the runtime,
    // with the runtime's command line).
    assert!(wait_until(
        std::time::Duration::from_secs(5),
        || processes_mentioning(&id) == 0
    ));
}

#[test]
fn an_unknown_flag_is_an_error() {
    let rt = Runtime::new();
    let out = rt.output(&["create", "--no-such-flag", "x"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--no-such-flag"), "{}", stderr(&out));
}

/// Live (non-zombie) processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i64>().ok()))
        .filter(|pid| alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn an_unknown_capability_is_refused_naming_it() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "true");
    bundle.edit(|c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_BOGUS"));
    });
    let err = create_fails(&rt, &bundle, &unique_id("badcap"));
    assert!(
        err.contains("unknown capability \"CAP_BOGUS\" in process.capabilities.bounding"),
        "{err}"
    );

    // The same in an exec's process file.
    let bundle = Bundle::new(&rt, "sleep 60");
    let id = unique_id("badcap-exec");
    rt.create(&bundle, &id);
    let process = bundle.path().join("process.json");
    let mut spec = bundle.config["process"].clone();
    spec["args"] = json!(["true"]);
    spec["capabilities"]["ambient"] = json!(["CAP_NOPE"]);
    std::fs::write(&process, spec.to_string()).unwrap();
    let out = rt.output(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown capability \"CAP_NOPE\" in capabilities.ambient"),
        "{}",
        stderr(&out)
    );
}

/// runc refuses a profile it cannot apply; so does berth-runtime, before anything is made
/// and naming why (it used to run the container unconfined). Where AppArmor is enabled the
/// profile is applied instead.
#[test]
fn an_apparmor_profile_needs_apparmor() {
    let enabled = std::path::Path::new("/sys/kernel/security/apparmor").exists()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|v| v.starts_with('Y'));
    let rt = Runtime::new();
    if enabled {
        let mut bundle = Bundle::new(&rt, "cat /proc/self/attr/current");
        bundle.edit(|c| c["process"]["apparmorProfile"] = json!("unconfined"));
        let out = rt.run(&bundle, &unique_id("apparmor"));
        assert_ok(&out, "run with an AppArmor profile");
        assert!(stdout(&out).starts_with("unconfined"), "{}", stdout(&out));
        return;
    }
    let mut bundle = Bundle::new(&rt, "true");
    bundle.edit(|c| c["process"]["apparmorProfile"] = json!("docker-default"));
    let err = create_fails(&rt, &bundle, &unique_id("apparmor"));
    assert!(
        err.contains("apparmor not supported")
            && err.contains("\"docker-default\"")
            && err.contains("AppArmor is not enabled on this host"),
        "{err}"
    );
    let runc = Runtime::runc();
    let out = runc.run(&bundle, &unique_id("apparmor-runc"));
    assert!(!out.status.success(), "runc ran it");
    assert!(stderr(&out).contains("apparmor"), "{}", stderr(&out));

    // An exec'd process that asks for a profile is refused the same way.
    let bundle = Bundle::new(&rt, "sleep 60");
    let id = unique_id("apparmor-exec");
    rt.create(&bundle, &id);
    let process = bundle.path().join("process.json");
    let mut spec = bundle.config["process"].clone();
    spec["args"] = json!(["touch", "/ran"]);
    spec["apparmorProfile"] = json!("docker-default");
    std::fs::write(&process, spec.to_string()).unwrap();
    let out = rt.output(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("AppArmor is not enabled on this host"),
        "{}",
        stderr(&out)
    );
    assert!(!bundle.rootfs().join("ran").exists());
}
