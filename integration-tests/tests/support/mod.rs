//! Shared helpers for the runtime integration tests: a busybox rootfs, bundles whose
//! config.json is edited as JSON (the way engines write it), and a runtime under a
//! private `--root` that deletes every container it made when dropped, even on failure.
#![allow(dead_code, unused_imports)]

pub use berth_integration_tests::{
    bin_dir, binary, busybox, make_rootfs, require_root, wait_until,
};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique container ID for a test.
pub fn unique_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A bundle directory with a busybox rootfs and an editable config.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    /// A bundle whose process runs `sh -c script`, from the runtime's own default spec,
    /// with a writable rootfs and no terminal.
    pub fn new(runtime: &Runtime, script: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle")
            .tempdir()
            .unwrap();
        make_rootfs(&dir.path().join("rootfs"));
        let out = runtime
            .cmd()
            .args(["spec", "--bundle"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["sh", "-c", script]);
        config["root"]["readonly"] = json!(false);
        let mut bundle = Self { dir, config };
        bundle.save();
        bundle
    }

    /// The bundle's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs path.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Write the config back to config.json.
    pub fn save(&mut self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Edit the config and save it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        f(&mut self.config);
        self.save();
    }
}

/// berth-runtime with a private state root; deletes its containers on drop.
pub struct Runtime {
    pub root: tempfile::TempDir,
    pub binary: PathBuf,
    made: std::sync::Mutex<Vec<String>>,
}

impl Runtime {
    pub fn new() -> Self {
        require_root();
        Self {
            root: tempfile::Builder::new()
                .prefix("berth-root")
                .tempdir()
                .unwrap(),
            binary: binary("berth-runtime"),
            made: Default::default(),
        }
    }

    /// runc, installed from Debian's package, under a private root: the peer that
    /// side-by-side tests compare berth-runtime with.
    pub fn runc() -> Self {
        let mut runtime = Self::new();
        runtime.binary = ["/usr/sbin/runc", "/usr/bin/runc"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("runc is missing: apt-get install -y runc");
        runtime
    }

    /// A command with `--root` set.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(self.root.path());
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Remember an ID so that drop deletes it.
    pub fn track(&self, id: &str) {
        self.made.lock().unwrap().push(id.to_string());
    }

    /// Run a command to completion with a time limit.
    pub fn output(&self, args: &[&str]) -> Output {
        let mut cmd = self.cmd();
        cmd.args(args);
        run_with_timeout(cmd, Duration::from_secs(60))
    }

    /// `run ID` in the foreground with the bundle; returns the output.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        self.track(id);
        let mut cmd = self.cmd();
        cmd.arg("run").arg("--bundle").arg(bundle.path()).arg(id);
        run_with_timeout(cmd, Duration::from_secs(60))
    }

    /// `create` that must succeed.
    pub fn create(&self, bundle: &Bundle, id: &str) {
        self.track(id);
        let out = self.output(&["create", "--bundle", bundle.path().to_str().unwrap(), id]);
        assert_ok(&out, "create");
    }

    /// The parsed `state ID`.
    pub fn state(&self, id: &str) -> Value {
        let out = self.output(&["state", id]);
        assert_ok(&out, "state");
        serde_json::from_slice(&out.stdout).expect("state prints JSON")
    }

    /// The state directory of a container.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.path().join(id)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.made.lock().unwrap().iter() {
            let mut cmd = self.cmd();
            cmd.args(["delete", "--force", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = run_with_timeout(cmd, Duration::from_secs(30));
        }
    }
}

/// Run a command; kill it (by its pid) if it outlives the limit. Output goes through
/// files, not pipes: a container created by the command inherits its stdio and may live
/// on, so a pipe would never reach end of file.
pub fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    let out_file = tempfile::tempfile().unwrap();
    let err_file = tempfile::tempfile().unwrap();
    cmd.stdout(Stdio::from(out_file.try_clone().unwrap()))
        .stderr(Stdio::from(err_file.try_clone().unwrap()));
    let mut child = cmd.spawn().expect("spawn");
    drop(cmd);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command timed out after {limit:?}: {}", read_all(err_file));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: read_all(out_file).into_bytes(),
        stderr: read_all(err_file).into_bytes(),
    }
}

fn read_all(mut file: std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut text = String::new();
    file.seek(std::io::SeekFrom::Start(0)).unwrap();
    file.read_to_string(&mut text).unwrap();
    text
}

/// Assert success, showing stderr otherwise.
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): stdout={} stderr={}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// stdout as a string.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as a string.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The host directory of a container's cgroup for a v1 controller (or the v2 path).
pub fn cgroup_dir(controller: &str, cgroup_path: &str) -> PathBuf {
    let rel = cgroup_path.trim_start_matches('/');
    let v1 = Path::new("/sys/fs/cgroup").join(controller);
    if v1.exists() {
        v1.join(rel)
    } else {
        Path::new("/sys/fs/cgroup").join(rel)
    }
}

/// `command` with clone3 answered by ENOSYS, as a kernel before 5.3 or an older
/// container seccomp profile (the runtime nested in a container) answers it.
pub fn without_clone3(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let filter = seccompiler::SeccompFilter::new(
        [(libc::SYS_clone3, vec![])].into_iter().collect(),
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::Errno(libc::ENOSYS as u32),
        std::env::consts::ARCH
            .try_into()
            .expect("a seccompiler architecture"),
    )
    .expect("the clone3 filter");
    let program: seccompiler::BpfProgram = filter.try_into().expect("the filter compiles");
    // SAFETY: between fork and exec the closure only makes the prctl and seccomp calls of
    // apply_filter on a program built before the fork; it allocates nothing.
    unsafe {
        command
            .pre_exec(move || seccompiler::apply_filter(&program).map_err(std::io::Error::other));
    }
}
