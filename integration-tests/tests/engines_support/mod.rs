//! Helpers for the drop-in tests: real engines (podman, dockerd, containerd) started in
//! private temp dirs and pointed at berth-runtime instead of runc.
//!
//! Everything an engine test starts is undone by a guard's Drop: daemons are stopped by
//! pid (SIGTERM, then SIGKILL), leftover processes whose command line names the test's
//! own scratch dir are killed by pid, mounts under the scratch dir are unmounted, the
//! cgroups the test's engines made are removed, and the scratch dir is deleted.
#![allow(dead_code)]

pub use berth_integration_tests::{require_root, wait_until};

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub mod cli;

/// Time limit for one engine command.
pub const CMD_LIMIT: Duration = Duration::from_secs(60);

/// A program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether every program is installed; prints why the test is skipped otherwise. This is
/// the only reason an engine test skips.
pub fn have_programs(engine: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    eprintln!(
        "SKIPPED: the {engine} drop-in test needs {} (not installed; `make deps` or \
         deploy/install-deps.sh installs it)",
        missing.join(", ")
    );
    false
}

/// A busybox rootfs with a marker under /run (to see `tmpcopyup` copy it in).
pub fn make_rootfs(dir: &Path) {
    berth_integration_tests::make_rootfs(dir);
    std::fs::create_dir_all(dir.join("run/sub")).unwrap();
    std::fs::write(dir.join("run/sub/marker"), RUN_MARKER).unwrap();
}

/// berth-runtime as built for the tests.
pub fn berth_runtime() -> PathBuf {
    berth_integration_tests::binary("berth-runtime")
}

/// Text the image carries under /run, to see `tmpcopyup` copy it into the tmpfs.
pub const RUN_MARKER: &str = "image-run-content";

/// A plain (uncompressed) tar of `rootfs`, symlinks kept as links: what `docker import`
/// and `podman import` take, and an OCI layer.
pub fn layer_tar(rootfs: &Path, out: &Path) {
    let file = std::fs::File::create(out).unwrap();
    let mut builder = tar::Builder::new(file);
    builder.follow_symlinks(false);
    builder.append_dir_all(".", rootfs).unwrap();
    builder.into_inner().unwrap().flush().unwrap();
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// An OCI image layout archive (for `ctr image import`) holding one image, `name`, whose
/// only layer is `layer` (an uncompressed tar).
pub fn oci_archive(layer: &Path, name: &str, out: &Path) {
    let layer = std::fs::read(layer).unwrap();
    let layer_digest = digest(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": go_arch(),
        "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let tag = name.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": digest(&manifest), "size": manifest.len(),
                       "platform": {"architecture": go_arch(), "os": "linux"},
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": tag}}],
    }))
    .unwrap();
    let mut builder = tar::Builder::new(std::fs::File::create(out).unwrap());
    let mut add = |path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, bytes).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    for blob in [&layer, &config, &manifest] {
        let d = digest(blob);
        add(&format!("blobs/sha256/{}", &d["sha256:".len()..]), blob);
    }
    builder.into_inner().unwrap().flush().unwrap();
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Run a command to completion with a time limit (killed by pid past it), stdin from
/// `input`. Output goes through files: a container may inherit the descriptors and
/// outlive the command, so a pipe might never reach end of file.
pub fn run_input(mut cmd: Command, input: Option<&[u8]>, limit: Duration) -> Output {
    let out_file = tempfile::tempfile().unwrap();
    let err_file = tempfile::tempfile().unwrap();
    match input {
        Some(bytes) => {
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(bytes).unwrap();
            use std::io::Seek;
            f.seek(std::io::SeekFrom::Start(0)).unwrap();
            cmd.stdin(Stdio::from(f));
        }
        None => {
            cmd.stdin(Stdio::null());
        }
    }
    cmd.stdout(Stdio::from(out_file.try_clone().unwrap()))
        .stderr(Stdio::from(err_file.try_clone().unwrap()));
    let shown = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
    drop(cmd);
    let status = wait_child(&mut child, limit).unwrap_or_else(|| {
        panic!(
            "timed out after {limit:?}: {shown}: {}",
            read_all(&err_file)
        )
    });
    Output {
        status,
        stdout: read_all(&out_file).into_bytes(),
        stderr: read_all(&err_file).into_bytes(),
    }
}

/// Run with no input.
pub fn run(cmd: Command) -> Output {
    run_input(cmd, None, CMD_LIMIT)
}

/// Wait for a child up to `limit`; past it, kill it (by its pid) and return None.
pub fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read_all(file: &std::fs::File) -> String {
    use std::io::Seek;
    let mut file = file.try_clone().unwrap();
    let mut bytes = Vec::new();
    file.seek(std::io::SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut bytes).unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Assert success and return stdout.
pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): stdout={} stderr={}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Run a command with its stdin, stdout and stderr on a new pseudo-terminal; type
/// `input` into it once `ready` shows up in the output, then read until the command exits.
/// Returns the exit status and everything the terminal showed.
pub fn run_on_pty(
    mut cmd: Command,
    ready: &str,
    input: &[u8],
    limit: Duration,
) -> (ExitStatus, String) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave: OwnedFd = pty.slave;
    let master: OwnedFd = pty.master;
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // The pty becomes the controlling terminal of a new session, as in a real shell.
    // SAFETY: the hook only calls setsid and ioctl, which are async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn on pty");
    drop(cmd);
    drop(slave);
    let mut master = std::fs::File::from(master);
    // Nonblocking reads so that the time limit holds even if the terminal stays open.
    let flags = nix::fcntl::fcntl(master.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut typed = false;
    let mut status = None;
    let mut buf = [0u8; 4096];
    loop {
        // EIO (every slave descriptor closed) and WouldBlock both mean "nothing now".
        let got = match master.read(&mut buf) {
            Ok(n) if n > 0 => {
                seen.extend_from_slice(&buf[..n]);
                true
            }
            _ => false,
        };
        if !typed && String::from_utf8_lossy(&seen).contains(ready) {
            master.write_all(input).unwrap();
            typed = true;
        }
        if status.is_some() && !got {
            // The command has exited and the terminal holds nothing more.
            break;
        }
        if status.is_none() {
            status = child.try_wait().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "command on a terminal timed out after {limit:?}; it showed: {}",
                String::from_utf8_lossy(&seen)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Already reaped by try_wait; std returns the recorded status.
    let status = status.unwrap_or_else(|| child.wait().unwrap());
    let _ = child.wait();
    (status, String::from_utf8_lossy(&seen).into_owned())
}

/// Whether the freezer of the cgroup holding `pid` says it is frozen (v1 `freezer.state`,
/// or v2 `cgroup.freeze`).
pub fn frozen(pid: u32) -> Option<bool> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "freezer") {
            let file = format!("/sys/fs/cgroup/freezer{path}/freezer.state");
            return Some(std::fs::read_to_string(file).ok()?.trim() == "FROZEN");
        }
    }
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let file = format!("/sys/fs/cgroup{path}/cgroup.freeze");
    Some(std::fs::read_to_string(file).ok()?.trim() == "1")
}

/// A host cgroup file of the cgroup holding `pid`, for a v1 controller (`memory`,
/// `pids`), or the v2 file name when the host is v2.
pub fn host_cgroup_file(
    pid: u32,
    controller: &str,
    v1_file: &str,
    v2_file: &str,
) -> Option<String> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == controller) {
            let file = format!("/sys/fs/cgroup/{controller}{path}/{v1_file}");
            return std::fs::read_to_string(file)
                .ok()
                .map(|s| s.trim().to_string());
        }
    }
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    std::fs::read_to_string(format!("/sys/fs/cgroup{path}/{v2_file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// A command line that reads a cgroup limit from inside the container (v1 or v2 layout).
pub const READ_LIMITS: &str = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null \
     || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null \
     || cat /sys/fs/cgroup/pids.max";

/// The bits of CapEff in /proc/self/status output.
pub fn cap_eff(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .expect("CapEff line")
}

/// Exactly 1 MiB of the pattern `yes 0123456789abcdef | head -c 1048576` writes.
pub fn one_mib() -> Vec<u8> {
    b"0123456789abcdef\n"
        .iter()
        .copied()
        .cycle()
        .take(1 << 20)
        .collect()
}

/// The shell line that writes `one_mib()`.
pub const WRITE_ONE_MIB: &str = "yes 0123456789abcdef | head -c 1048576";

/// Describe where two byte strings first differ.
pub fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    format!(
        "lengths {} vs {}, first difference at {:?}",
        a.len(),
        b.len(),
        at
    )
}

/// Find `<dir>/<id>/state.json` somewhere under `under` (the runtime root an engine
/// chose) and return that root.
pub fn find_runtime_root(under: &Path, id: &str) -> Option<PathBuf> {
    let mut stack = vec![under.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            if entry.file_name() == id && path.join("state.json").is_file() {
                return Some(dir);
            }
            // Overlay trees are deep and never hold runtime state.
            let name = entry.file_name();
            if name != "overlay" && name != "overlay2" && name != "snapshots" && name != "content" {
                stack.push(path);
            }
        }
    }
    None
}

/// `berth-runtime --root ROOT state ID` must show the container with this status: proof
/// that the engine really ran berth-runtime (runc's state would not parse).
pub fn assert_berth_state(root: &Path, id: &str, status: &str) {
    let mut cmd = Command::new(berth_runtime());
    cmd.arg("--root").arg(root).args(["state", id]);
    let out = ok(run(cmd), "berth-runtime state");
    let state: serde_json::Value = serde_json::from_str(&out).expect("state JSON");
    assert_eq!(state["status"], status, "berth-runtime state: {out}");
}

/// A daemon started by a test, stopped by pid on drop.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self { name, child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Fail (with the log) unless the daemon is still running.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop_pid(self.child.id(), Duration::from_secs(20));
        let _ = self.child.wait();
    }
}

/// SIGTERM a process we started, wait up to `grace`, then SIGKILL it.
pub fn stop_pid(pid: u32, grace: Duration) {
    use nix::sys::signal::{kill, Signal};
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    if kill(pid, Signal::SIGTERM).is_err() {
        return;
    }
    let gone = wait_until(grace, || !alive(pid.as_raw() as u32));
    if !gone {
        let _ = kill(pid, Signal::SIGKILL);
        wait_until(Duration::from_secs(5), || !alive(pid.as_raw() as u32));
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Pids of processes whose command line mentions `needle` (the test's scratch dir: only
/// processes this test started can match it).
pub fn pids_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(needle) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// The scratch dir of one engine test, with everything under it undone on drop:
/// stray processes naming it, mounts under it, the engine's cgroups, the files.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    /// Cgroup parents (relative to each hierarchy root) this test's engine made.
    pub cgroup_parents: Vec<String>,
}

impl Scratch {
    pub fn new(prefix: &str) -> Self {
        // Short paths: unix socket paths under it must stay below 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .unwrap();
        Self {
            dir,
            cgroup_parents: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let dir = self.dir.path().to_string_lossy().into_owned();
        for pid in pids_mentioning(&dir) {
            eprintln!("cleanup: stopping leftover process {pid} of this test");
            stop_pid(pid, Duration::from_secs(5));
        }
        unmount_under(self.dir.path());
        for parent in &self.cgroup_parents {
            remove_cgroups(parent);
        }
    }
}

/// Unmount everything mounted at or below `dir` (deepest first).
pub fn unmount_under(dir: &Path) {
    for _ in 0..3 {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape_mount)
            .filter(|p| Path::new(p).starts_with(dir))
            .collect();
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Remove a cgroup parent (and what is left below it) from every hierarchy.
pub fn remove_cgroups(parent: &str) {
    let parent = parent.trim_matches('/');
    if parent.is_empty() {
        return;
    }
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut roots: Vec<PathBuf> = hierarchies.flatten().map(|e| e.path()).collect();
    roots.push(PathBuf::from("/sys/fs/cgroup"));
    for root in roots {
        let top = root.join(parent);
        if !top.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        let mut stack = vec![top];
        while let Some(d) = stack.pop() {
            if let Ok(entries) = std::fs::read_dir(&d) {
                for e in entries.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        stack.push(e.path());
                    }
                }
            }
            dirs.push(d);
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            // A cgroup empties a moment after its last process is reaped.
            wait_until(Duration::from_secs(2), || {
                std::fs::remove_dir(&d).is_ok() || !d.exists()
            });
        }
    }
}

/// Run named checks one after another, each isolated (a failing one does not stop the
/// rest), print a line per check, and fail at the end naming every failed check.
/// A named check of one engine.
pub type Check<E> = (&'static str, fn(&E));

pub fn run_checks<E>(engine: &str, env: &E, checks: &[Check<E>]) {
    let mut failed = Vec::new();
    let start = Instant::now();
    for (name, check) in checks {
        let t = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(env)));
        match result {
            Ok(()) => eprintln!("{engine}: {name}: ok ({:.1}s)", t.elapsed().as_secs_f64()),
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                eprintln!("{engine}: {name}: FAILED: {msg}");
                failed.push(*name);
            }
        }
    }
    eprintln!(
        "{engine}: {} of {} checks passed in {:.1}s",
        checks.len() - failed.len(),
        checks.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(failed.is_empty(), "{engine}: failed checks: {failed:?}");
}
