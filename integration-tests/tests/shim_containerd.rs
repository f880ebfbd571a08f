//! berth-shim under the real containerd 1.6: `ctr run --runtime io.containerd.berth.v2`
//! with containerd started by the test in temp dirs (never the system's).

mod supervisor_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use supervisor_support::*;

struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-ctd")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let bin = d.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(binary("berth-shim"), bin.join("containerd-shim-berth-v2"))
            .unwrap();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{d}/c.sock"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#,
            d = d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd (apt-get install containerd)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !d.join("c.sock").exists() {
            assert!(Instant::now() < deadline, "containerd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { dir, child }
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new("timeout");
        cmd.arg("60")
            .arg("ctr")
            .arg("--address")
            .arg(self.dir.path().join("c.sock"))
            .args(args)
            .stdin(Stdio::null());
        cmd.output().unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = nix::mount::umount2(
            &self.dir.path().join("root"),
            nix::mount::MntFlags::MNT_DETACH,
        );
    }
}

#[test]
fn ctr_run_through_berth_shim() {
    assert!(nix::unistd::geteuid().is_root(), "needs root");
    let ctd = Containerd::start();
    let rootfs = ctd.dir.path().join("rootfs");
    make_rootfs(&rootfs);
    let rootfs = rootfs.display().to_string();
    let out = ctd.ctr(&[
        "run",
        "--runtime",
        "io.containerd.berth.v2",
        "--rm",
        "--rootfs",
        &rootfs,
        "c1",
        "sh",
        "-c",
        "echo out-$((6*7)); echo err >&2; exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out-42\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");

    // Detached, exec, kill, delete.
    let out = ctd.ctr(&[
        "run",
        "-d",
        "--runtime",
        "io.containerd.berth.v2",
        "--rootfs",
        &rootfs,
        "c2",
        "sleep",
        "300",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "c2",
        "sh",
        "-c",
        "echo in-exec; exit 4",
    ]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in-exec\n");
    let ls = ctd.ctr(&["task", "ls"]);
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains("RUNNING"),
        "{}",
        String::from_utf8_lossy(&ls.stdout)
    );
    assert!(ctd
        .ctr(&["task", "kill", "-s", "SIGKILL", "c2"])
        .status
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ls = ctd.ctr(&["task", "ls"]);
        if String::from_utf8_lossy(&ls.stdout).contains("STOPPED") {
            break;
        }
        assert!(Instant::now() < deadline, "task never stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ctd.ctr(&["task", "rm", "c2"]).status.success());
    assert!(ctd.ctr(&["container", "rm", "c2"]).status.success());
    let state = ctd
        .dir
        .path()
        .join("state/io.containerd.runtime.v2.task/default");
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "bundles left: {left:?}");
    assert!(!Path::new(&state).join("c2").exists());
}
