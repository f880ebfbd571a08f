//! Harness of the container tests: a berthd (which starts its own berth-supervisor) in
//! a temp dir on a temp socket, a busybox image imported through it, and the real
//! `docker` CLI pointed at it. On drop every container is removed through the API,
//! berthd is stopped, and then anything left (shims, container processes, overlay
//! mounts under the temp dir) is killed or unmounted by pid and path.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any single docker command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub use berth_integration_tests::run_piped as run_with_timeout;

pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// A busybox rootfs as a tar: static busybox, applet links, passwd and group.
pub fn busybox_tar() -> Vec<u8> {
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("apt-get install busybox-static");
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, p: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, p, std::io::empty()).unwrap();
    };
    let file = |b: &mut tar::Builder<Vec<u8>>, p: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, p, data).unwrap();
    };
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "home"] {
        dir(&mut b, d);
    }
    file(&mut b, "bin/busybox", &std::fs::read(bb).unwrap(), 0o755);
    let list = Command::new(bb).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, format!("bin/{applet}"), "busybox")
                .unwrap();
        }
    }
    file(
        &mut b,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        0o644,
    );
    file(&mut b, "etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644);
    b.into_inner().unwrap()
}

/// A running berthd (with its own supervisor) in a temp dir.
pub struct Berthd {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    child: Option<Child>,
    /// Extra berthd flags (kept across restarts).
    flags: Vec<String>,
}

impl Berthd {
    /// Starts berthd and imports busybox as `busybox:test`.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// As `start`, with extra berthd flags (`--add-runtime ...`).
    pub fn start_with(flags: &[&str]) -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the container tests need root"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-ct-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("berth.sock");
        std::fs::create_dir_all(dir.path().join("docker-config")).unwrap();
        let mut d = Self {
            dir,
            socket,
            child: None,
            flags: flags.iter().map(|f| f.to_string()).collect(),
        };
        d.launch();
        let tar = d.dir.path().join("rootfs.tar");
        std::fs::write(&tar, busybox_tar()).unwrap();
        d.ok(&["import", tar.to_str().unwrap(), "busybox:test"]);
        d
    }

    fn launch(&mut self) {
        let berthd = target_dir().join("berthd");
        assert!(
            berthd.is_file(),
            "{} missing: cargo build -p berth-engine -p berth-supervisor -p berth-shim -p berth-runtime",
            berthd.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .unwrap();
        let child = Command::new(berthd)
            .arg("--data-root")
            .arg(self.dir.path().join("data"))
            .arg("--exec-root")
            .arg(self.dir.path().join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--log-level")
            .arg("debug")
            .args(&self.flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "berthd did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9 berthd (its supervisor gets SIGTERM; shims and containers live on), then
    /// start it again on the same state.
    pub fn crash_and_restart(&mut self) {
        self.crash_and_restart_with(|| {});
    }

    /// As `crash_and_restart`, running `meanwhile` while berthd is down.
    pub fn crash_and_restart_with(&mut self, meanwhile: impl FnOnce()) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        meanwhile();
        self.launch();
    }

    /// berthd's PID (to read its memory use from /proc).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("berthd is running")
    }

    /// The PID of the berth-supervisor berthd started.
    pub fn supervisor_pid(&self) -> Option<i32> {
        let d = self.dir.path().to_string_lossy().into_owned();
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let exe = cmd.split(' ').next().unwrap_or("");
            (exe.ends_with("berth-supervisor") && cmd.contains(&d)).then_some(pid)
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .args(args);
        c
    }

    /// `docker ARGS` with optional stdin: (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str], input: Option<&[u8]>) -> (i32, String, String) {
        let out = run_with_timeout(self.cmd(args), input, COMMAND_TIMEOUT);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `docker ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, None);
        assert_eq!(
            code,
            0,
            "docker {args:?} failed:\nstdout: {out}\nstderr: {err}\nberthd log:\n{}",
            tail(&self.log(), 40)
        );
        out
    }

    /// `docker ARGS`, which must fail; its stderr.
    pub fn err(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, None);
        assert_ne!(code, 0, "docker {args:?} unexpectedly succeeded: {out}");
        err
    }

    /// `berth ARGS` (Berth's own CLI) pointed at this berthd through `BERTH_HOST`.
    pub fn berth_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(target_dir().join("berth"));
        c.env("BERTH_HOST", format!("unix://{}", self.socket.display()))
            .env_remove("DOCKER_HOST")
            .env("BERTH_CONFIG", self.dir.path().join("berth-config"))
            .args(args);
        c
    }

    /// `berth ARGS` with optional stdin: (exit code, stdout, stderr).
    pub fn berth(&self, args: &[&str], input: Option<&[u8]>) -> (i32, String, String) {
        let out = run_with_timeout(self.berth_cmd(args), input, COMMAND_TIMEOUT);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `berth ARGS`, which must succeed; its stdout.
    pub fn berth_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.berth(args, None);
        assert_eq!(
            code,
            0,
            "berth {args:?} failed:\nstdout: {out}\nstderr: {err}\nberthd log:\n{}",
            tail(&self.log(), 40)
        );
        out
    }

    /// `berth ARGS`, which must fail; its stderr.
    pub fn berth_err(&self, args: &[&str]) -> String {
        let (code, out, err) = self.berth(args, None);
        assert_ne!(code, 0, "berth {args:?} unexpectedly succeeded: {out}");
        err
    }

    /// `docker inspect -f FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_string()
    }

    /// Waits until `f` holds (bounded).
    pub fn wait_until(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !f() {
            assert!(Instant::now() < deadline, "{what}: not after {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn cleanup(&mut self) {
        // Every container, through the API (bounded).
        if let Some(c) = &mut self.child {
            if let Ok(None) = c.try_wait() {
                let ids = run_with_timeout(self.cmd(&["ps", "-aq"]), None, Duration::from_secs(20));
                let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f"];
                    args.extend(ids);
                    let mut c = self.cmd(&args);
                    c.stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null());
                    if let Ok(mut ch) = c.spawn() {
                        let deadline = Instant::now() + Duration::from_secs(30);
                        while Instant::now() < deadline {
                            if let Ok(Some(_)) = ch.try_wait() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        let _ = ch.kill();
                        let _ = ch.wait();
                    }
                }
            }
        }
        // berthd: SIGTERM (it stops its supervisor), then SIGKILL.
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        kill_leftovers(self.dir.path());
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Kills (SIGKILL, by pid) every process rooted in or naming `dir` (container
/// processes first, then shims and the supervisor), then unmounts what is mounted
/// under it, deepest first.
pub fn kill_leftovers(dir: &Path) {
    let d = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    for round in 0..2 {
        let mut found = false;
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid as u32 == me {
                continue;
            }
            let root = std::fs::read_link(e.path().join("root"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let cmdline = std::fs::read(e.path().join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            let in_container = root.starts_with(&d);
            let names_dir = cmdline.contains(&d);
            if (round == 0 && in_container) || (round == 1 && (in_container || names_dir)) {
                found = true;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if found {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| p.starts_with(&d))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits (bounded) for a spawned child with piped stdout; returns its stdout.
pub fn wait_output(mut child: Child, timeout: Duration) -> String {
    let mut out = child.stdout.take().expect("stdout piped");
    let t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    String::from_utf8_lossy(&t.join().unwrap_or_default()).into_owned()
}
