//! berth-runtime as a drop-in for runc under podman: `podman --runtime <berth-runtime>`
//! with podman's own --root/--runroot/--tmpdir in a temp dir, cgroupfs, no network.
//! Needs root, podman and conmon.

mod engines_support;

use std::ffi::OsString;
use std::process::Command;

use engines_support::cli::{CliEngine, CHECKS};
use engines_support::*;

const IMAGE: &str = "localhost/berth-engines-busybox:1";

#[test]
fn podman_runs_containers_with_berth_runtime() {
    require_root();
    if !have_programs("podman", &["podman", "conmon"]) {
        return;
    }
    let berth = berth_runtime();
    let mut scratch = Scratch::new("berth-eng-podman");
    let cgroup_parent = format!("berth-engines-podman-{}", std::process::id());
    scratch.cgroup_parents.push(cgroup_parent.clone());
    // Nothing of the host's containers.conf applies; everything lives in the scratch dir.
    let conf = scratch.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[engine]\nevents_logger = \"file\"\nevents_logfile_path = \"{d}/events.log\"\n\
             tmp_dir = \"{d}/tmp\"\nvolume_path = \"{d}/volumes\"\nstatic_dir = \"{d}/static\"\n\
             cgroup_manager = \"cgroupfs\"\n",
            d = scratch.path().display()
        ),
    )
    .unwrap();
    let arg = |s: &str| OsString::from(s);
    let path = |p: &str| scratch.join(p).into_os_string();
    let engine = CliEngine {
        name: "podman",
        program: which("podman").unwrap(),
        global: vec![
            arg("--root"),
            path("root"),
            arg("--runroot"),
            path("runroot"),
            arg("--tmpdir"),
            path("tmp"),
            arg("--storage-driver"),
            arg("overlay"),
            arg("--cgroup-manager=cgroupfs"),
            arg("--events-backend=file"),
            arg("--runtime"),
            berth.clone().into_os_string(),
            // berth-runtime's state root (podman drops it for the `delete` of its
            // exit-time cleanup; Scratch's drop deletes what that leaves).
            arg("--runtime-flag"),
            OsString::from(format!("root={}", scratch.join("berth-state").display())),
        ],
        env: vec![("CONTAINERS_CONF".into(), conf.into_os_string())],
        run_flags: [
            "--network",
            "none",
            "--cgroup-parent",
            &format!("/{cgroup_parent}"),
            // podman's defaults need CAP_SYS_RESOURCE, which these machines lack.
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=1000:1000",
        ]
        .map(String::from)
        .to_vec(),
        image: IMAGE.into(),
        state_under: scratch.join("berth-state"),
        readonly_flags: vec![],
        copyup: true,
        rm_flags: vec!["-t".into(), "0".into()],
    };

    make_rootfs(&scratch.join("rootfs"));
    layer_tar(&scratch.join("rootfs"), &scratch.join("rootfs.tar"));
    engine.ok(&[
        "import",
        scratch.join("rootfs.tar").to_str().unwrap(),
        IMAGE,
    ]);

    let cleanup = Cleanup {
        engine: &engine,
        berth: berth.clone(),
        state: scratch.join("berth-state"),
    };
    run_checks("podman", &engine, CHECKS);
    drop(cleanup);
    drop(scratch);
}

/// Remove every container of the test's podman, then delete what podman's cleanup left
/// in berth-runtime's state root.
struct Cleanup<'a> {
    engine: &'a CliEngine,
    berth: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.engine.out(&["rm", "-a", "-f", "-t", "0"]);
        let Ok(entries) = std::fs::read_dir(&self.state) else {
            return;
        };
        for entry in entries.flatten() {
            let mut cmd = Command::new(&self.berth);
            cmd.arg("--root")
                .arg(&self.state)
                .args(["delete", "--force"])
                .arg(entry.file_name());
            let _ = run(cmd);
        }
    }
}
