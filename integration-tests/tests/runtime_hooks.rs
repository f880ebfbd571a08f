//! OCI hooks run at their lifecycle points, in order, with the state on stdin.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[test]
fn hooks_run_in_lifecycle_order_with_state() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "echo process >> /log/order");
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("order");
    let logp = log.to_str().unwrap().to_string();
    // Runtime-namespace hooks write to the host path; the in-container one writes to the
    // same file through a bind mount at /log.
    let hook = |name: &str, path: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read state; echo {name} $(echo \"$state\" | grep -o '\"status\":\"[a-z]*\"') >> {path}")]});
    bundle.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/log", "type": "bind", "source": log_dir.path(), "options": ["rbind"]}));
        c["hooks"] = json!({
            "prestart": [hook("prestart", &logp)],
            "createRuntime": [hook("createRuntime", &logp)],
            "createContainer": [hook("createContainer", &logp)],
            "startContainer": [hook("startContainer", "/log/order")],
            "poststart": [hook("poststart", &logp)],
            "poststop": [hook("poststop", &logp), {"path": "/bin/false"}, hook("poststop2", &logp)],
        });
    });
    let id = unique_id("hooks");
    rt.create(&bundle, &id);
    assert_ok(&rt.output(&["start", &id]), "start");
    assert!(wait_until(Duration::from_secs(10), || rt.state(&id)
        ["status"]
        == "stopped"));
    let out = rt.output(&["delete", &id]);
    assert_ok(&out, "delete (a failing poststop hook is only a warning)");
    assert!(
        stderr(&out).contains("poststop hook /bin/false failed"),
        "{}",
        stderr(&out)
    );
    let order = std::fs::read_to_string(&log).unwrap();
    // The container's process runs beside the poststart hook (both follow `start`), so
    // its line is checked apart: after startContainer, before poststop.
    let lines: Vec<&str> = order.lines().collect();
    let at = |l: &str| lines.iter().position(|x| *x == l);
    let process = at("process").unwrap_or_else(|| panic!("no process line: {order}"));
    assert!(
        at("startContainer \"status\":\"created\"").is_some_and(|s| s < process)
            && at("poststop \"status\":\"stopped\"").is_some_and(|p| process < p),
        "{order}"
    );
    let hooks: Vec<&str> = lines.into_iter().filter(|l| *l != "process").collect();
    assert_eq!(
        hooks.join("\n") + "\n",
        "prestart \"status\":\"created\"\ncreateRuntime \"status\":\"created\"\ncreateContainer \"status\":\"created\"\n\
         startContainer \"status\":\"created\"\npoststart \"status\":\"running\"\n\
         poststop \"status\":\"stopped\"\npoststop2 \"status\":\"stopped\"\n"
    );
}

#[test]
fn a_hook_past_its_timeout_fails_create() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "true");
    bundle.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}));
    let id = unique_id("hooktimeout");
    rt.track(&id);
    let started = std::time::Instant::now();
    let out = rt.output(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("createRuntime hook /bin/sleep failed: timed out after 1s"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!rt.state_dir(&id).exists());
}
