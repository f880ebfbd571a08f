//! berth-runtime as a drop-in for runc under dockerd: a dockerd started here in a temp
//! data root with `--add-runtime berth=<berth-runtime>`, driven by the real docker CLI
//! with `docker run --runtime berth`. Needs root, dockerd and the docker CLI.

mod engines_support;

use std::ffi::OsString;
use std::process::Command;
use std::time::Duration;

use engines_support::cli::{CliEngine, CHECKS};
use engines_support::*;

const IMAGE: &str = "berth-engines-busybox:1";

#[test]
fn dockerd_runs_containers_with_berth_runtime() {
    require_root();
    if !have_programs(
        "dockerd",
        &["dockerd", "docker", "containerd", "containerd-shim-runc-v2"],
    ) {
        return;
    }
    let berth = berth_runtime();
    let mut scratch = Scratch::new("berth-eng-docker");
    let cgroup_parent = format!("berth-engines-docker-{}", std::process::id());
    scratch.cgroup_parents.push(cgroup_parent.clone());
    let sock = scratch.join("docker.sock");
    std::fs::write(scratch.join("daemon.json"), "{}").unwrap();

    let mut cmd = Command::new(which("dockerd").unwrap());
    cmd.arg("--data-root")
        .arg(scratch.join("data"))
        .arg("--exec-root")
        .arg(scratch.join("exec"))
        .arg("--pidfile")
        .arg(scratch.join("docker.pid"))
        .arg("--config-file")
        .arg(scratch.join("daemon.json"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .args([
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip6tables=false",
        ])
        .args([
            "--userland-proxy=false",
            "--cgroup-parent",
            &format!("/{cgroup_parent}"),
        ])
        .arg("--add-runtime")
        .arg(format!("berth={}", berth.display()));
    let mut daemon = Daemon::spawn("dockerd", cmd, scratch.join("dockerd.log"));

    let engine = CliEngine {
        name: "docker",
        program: which("docker").unwrap(),
        global: vec![
            OsString::from("-H"),
            OsString::from(format!("unix://{}", sock.display())),
        ],
        env: vec![("DOCKER_CONFIG".into(), scratch.join("cli").into())],
        run_flags: vec![
            "--runtime".into(),
            "berth".into(),
            "--network".into(),
            "none".into(),
        ],
        image: IMAGE.into(),
        state_under: scratch.join("exec"),
        readonly_flags: vec!["--tmpfs".into(), "/tmp".into()],
        copyup: false,
        rm_flags: vec![],
    };
    let up = wait_until(Duration::from_secs(60), || {
        daemon.assert_running();
        engine.out(&["version"]).status.success()
    });
    assert!(
        up,
        "dockerd did not answer within 60s:\n{}",
        daemon.log_tail()
    );
    let runtimes = engine.ok(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(
        runtimes.contains("berth"),
        "dockerd does not list the berth runtime: {runtimes}"
    );

    make_rootfs(&scratch.join("rootfs"));
    layer_tar(&scratch.join("rootfs"), &scratch.join("rootfs.tar"));
    engine.ok(&[
        "import",
        scratch.join("rootfs.tar").to_str().unwrap(),
        IMAGE,
    ]);

    let _cleanup = RemoveAll(&engine);
    run_checks("dockerd", &engine, CHECKS);
    drop(_cleanup);
    drop(daemon);
    drop(scratch);
}

/// Remove every container the test's dockerd still has.
struct RemoveAll<'a>(&'a CliEngine);

impl Drop for RemoveAll<'_> {
    fn drop(&mut self) {
        let ids = self.0.out(&["ps", "-aq"]);
        for id in stdout(&ids).split_whitespace() {
            let _ = self.0.out(&["rm", "-f", id]);
        }
    }
}
