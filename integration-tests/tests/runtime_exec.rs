//! `exec`: processes added to a running container share its namespaces, cgroup and root,
//! with their own user, cwd, env, stdio and exit code.

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::*;

/// A running container whose init sleeps.
fn running(rt: &Runtime, prefix: &str) -> (Bundle, String) {
    let bundle = Bundle::new(rt, "sleep 60");
    let id = unique_id(prefix);
    rt.create(&bundle, &id);
    assert_ok(&rt.output(&["start", &id]), "start");
    (bundle, id)
}

#[test]
fn exec_joins_the_containers_namespaces_and_cgroup() {
    let rt = Runtime::new();
    let (_bundle, id) = running(&rt, "exec-ns");
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    let out = rt.output(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo $$; hostname; for n in pid mnt net ipc uts; do readlink /proc/self/ns/$n; done",
    ]);
    assert_ok(&out, "exec");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_ne!(lines[0], "1", "exec'd process must not be the init");
    assert_eq!(lines[1], "berth");
    for (i, n) in ["pid", "mnt", "net", "ipc", "uts"].iter().enumerate() {
        let theirs = std::fs::read_link(format!("/proc/{init}/ns/{n}")).unwrap();
        assert_eq!(lines[2 + i], theirs.to_string_lossy(), "{n} namespace");
    }
    // While it runs, the exec'd process is in the container's cgroup.
    let pid_file = tempfile::tempdir().unwrap().keep().join("exec.pid");
    let out = rt.output(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "5",
    ]);
    assert_ok(&out, "exec -d");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let _ = std::fs::remove_dir_all(pid_file.parent().unwrap());
    let procs = std::fs::read_to_string(cgroup_dir("pids", &format!("/{id}")).join("cgroup.procs"))
        .unwrap();
    assert!(procs.lines().any(|p| p == pid), "{pid} not in {procs}");
}

/// An exec'd process joins every cgroup hierarchy the init is in, each v1 controller, the
/// named `name=systemd` one and the unified one, as with runc (it used to stay in the
/// host's root `name=systemd` and unified cgroups).
#[test]
fn an_exec_joins_every_cgroup_hierarchy_of_the_container_as_with_runc() {
    // Berth's also where clone3 answers ENOSYS (the parent then writes the PID into the
    // cgroup2 directory the process could not be cloned into).
    for (rt, clone3) in [
        (Runtime::new(), true),
        (Runtime::new(), false),
        (Runtime::runc(), true),
    ] {
        let (_bundle, id) = running(&rt, "exec-cgroups");
        let init = rt.state(&id)["pid"].as_i64().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("exec.pid");
        let mut exec = rt.cmd();
        exec.args(["exec", "-d", "--pid-file", pid_file.to_str().unwrap(), &id])
            .args(["sleep", "30"]);
        if !clone3 {
            without_clone3(&mut exec);
        }
        let out = run_with_timeout(exec, std::time::Duration::from_secs(60));
        assert_ok(&out, "exec -d");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let theirs = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
        let ours = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
        let runtime = rt.binary.display();
        assert_eq!(
            ours, theirs,
            "{runtime}: the exec'd process (left) and the init"
        );
        for line in ours.lines() {
            let path = line.splitn(3, ':').nth(2).unwrap();
            assert!(
                path.ends_with(&format!("/{id}")),
                "{runtime}: {line} is not the container's cgroup"
            );
        }
        assert!(
            ours.lines().count() > 1 || ours.starts_with("0::"),
            "one line is a v2 host: {ours}"
        );
    }
}

#[test]
fn exec_sets_user_cwd_env_and_returns_the_exit_code() {
    let rt = Runtime::new();
    let (_bundle, id) = running(&rt, "exec-user");
    let out = rt.output(&[
        "exec",
        "-u",
        "1000:1000",
        "--cwd",
        "/tmp",
        "-e",
        "GREETING=hi",
        &id,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $GREETING; exit 42",
    ]);
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1000\n1000\n/tmp\nhi\n");
    // A missing cwd fails the exec, naming it, and the container is left as it was
    // (runc's behaviour; only the init's cwd is made).
    let out = rt.output(&["exec", "--cwd", "/no/such/dir", &id, "true"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("/no/such/dir"), "{}", stderr(&out));
    let out = rt.output(&["exec", &id, "test", "-e", "/no"]);
    assert_eq!(out.status.code(), Some(1), "exec made the missing cwd");
}

#[test]
fn exec_takes_a_process_json() {
    let rt = Runtime::new();
    let (bundle, id) = running(&rt, "exec-json");
    let process = bundle.path().join("process.json");
    let spec = json!({"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo from json $FOO"], "env": ["FOO=bar", "PATH=/bin"], "cwd": "/"});
    std::fs::write(&process, spec.to_string()).unwrap();
    let out = rt.output(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert_ok(&out, "exec --process");
    assert_eq!(stdout(&out), "from json bar\n");
}

#[test]
fn exec_passes_stdin_and_a_missing_program_is_named() {
    let rt = Runtime::new();
    let (_bundle, id) = running(&rt, "exec-stdin");
    let mut child = rt
        .cmd()
        .args(["exec", &id, "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"shout\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "SHOUT\n");

    let out = rt.output(&["exec", &id, "/no/such/program"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/no/such/program"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exec_forwards_signals_to_its_process() {
    let rt = Runtime::new();
    let (bundle, id) = running(&rt, "exec-sig");
    let mut child = rt
        .cmd()
        .args([
            "exec",
            &id,
            "sh",
            "-c",
            "trap 'echo got-term > /term; exit 3' TERM; touch /ready; while true; do sleep 1; done",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || bundle
        .rootfs()
        .join("ready")
        .exists()));
    // SAFETY: kill(2) on the pid of the child we just spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(
        std::fs::read_to_string(bundle.rootfs().join("term")).unwrap(),
        "got-term\n"
    );
}

#[test]
fn exec_into_a_stopped_container_is_refused() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "true");
    let id = unique_id("exec-stopped");
    rt.create(&bundle, &id);
    assert_ok(&rt.output(&["start", &id]), "start");
    assert!(wait_until(Duration::from_secs(10), || rt.state(&id)
        ["status"]
        == "stopped"));
    let out = rt.output(&["exec", &id, "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is stopped"), "{}", stderr(&out));
}
