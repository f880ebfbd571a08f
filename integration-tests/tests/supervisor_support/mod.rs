//! Helpers for the supervisor and shim tests: a berth-supervisor in temp dirs (killed
//! by PID on drop, after every task it holds is killed and deleted), busybox bundles,
//! and a gRPC client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use berth_integration_tests::{binary, make_rootfs};
pub use berth_proto::v1 as pb;
use serde_json::{json, Value};

/// A default OCI spec (from berth-runtime spec) running `sh -c script`.
pub fn spec(script: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary("berth-runtime"))
        .args(["spec", "--bundle"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    v["process"]["args"] = json!(["sh", "-c", script]);
    v["process"]["terminal"] = json!(false);
    v["root"]["readonly"] = json!(false);
    v
}

/// A running berth-supervisor with private --root/--state/--address.
pub struct Supervisor {
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    child: Option<Child>,
    pub rt: tokio::runtime::Runtime,
}

impl Supervisor {
    pub fn start() -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the supervisor tests need root"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-sv")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("image");
        make_rootfs(&rootfs);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut s = Self {
            dir,
            rootfs,
            child: None,
            rt,
        };
        s.spawn();
        s
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("s.sock")
    }

    /// (Re)start the daemon and wait for its socket.
    pub fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("supervisor.log"))
            .unwrap();
        let child = Command::new(binary("berth-supervisor"))
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--state")
            .arg(self.dir.path().join("state"))
            .arg("--address")
            .arg(self.socket())
            .arg("--log-level")
            .arg("debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        // Connectable, not only there: the path exists from bind(2), before listen(2).
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "supervisor did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9 the daemon (shims live on).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("supervisor.log")).unwrap_or_default()
    }

    pub fn channel(&self) -> berth_proto::tonic::transport::Channel {
        let _g = self.rt.enter();
        berth_proto::unix_channel(self.socket())
    }

    pub fn tasks(&self) -> pb::tasks_client::TasksClient<berth_proto::tonic::transport::Channel> {
        pb::tasks_client::TasksClient::new(self.channel())
    }

    pub fn containers(
        &self,
    ) -> pb::containers_client::ContainersClient<berth_proto::tonic::transport::Channel> {
        pb::containers_client::ContainersClient::new(self.channel())
    }

    pub fn events(
        &self,
    ) -> pb::events_client::EventsClient<berth_proto::tonic::transport::Channel> {
        pb::events_client::EventsClient::new(self.channel())
    }

    /// Run a future with a time limit.
    pub fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), f)
                .await
                .expect("timed out")
        })
    }

    /// A container record with the busybox rootfs bind-mounted and `runtime`.
    pub fn container(&self, id: &str, script: &str, runtime: pb::Runtime) -> pb::Container {
        let mut s = spec(script);
        // Tests run side by side with the same container IDs: each supervisor's containers
        // get their own cgroups, or one test's delete would kill another's container.
        let unique = self
            .dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        s["linux"]["cgroupsPath"] = json!(format!("/berth-test/{unique}/{id}"));
        pb::Container {
            id: id.into(),
            spec: serde_json::to_vec(&s).unwrap(),
            rootfs: vec![pb::Mount {
                r#type: "bind".into(),
                source: self.rootfs.display().to_string(),
                target: String::new(),
                options: vec!["rbind".into(), "rw".into()],
            }],
            runtime: Some(runtime),
            ..Default::default()
        }
    }

    pub fn create_container(&self, c: pb::Container) {
        let mut cs = self.containers();
        self.block(cs.create(pb::CreateContainerRequest {
            namespace: String::new(),
            container: Some(c),
        }))
        .unwrap();
    }

    /// Kill and delete every task, delete every record.
    pub fn cleanup(&self) {
        let mut t = self.tasks();
        let mut cs = self.containers();
        self.rt.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(60), async {
                if let Ok(list) = t.list(pb::ListTasksRequest::default()).await {
                    for p in list.into_inner().tasks {
                        let id = p.container_id;
                        let _ = t
                            .kill(pb::KillRequest {
                                container_id: id.clone(),
                                signal: 9,
                                all: true,
                                ..Default::default()
                            })
                            .await;
                        let _ = tokio::time::timeout(
                            Duration::from_secs(10),
                            t.wait(pb::WaitRequest {
                                container_id: id.clone(),
                                ..Default::default()
                            }),
                        )
                        .await;
                        let _ = t
                            .delete(pb::DeleteTaskRequest {
                                container_id: id,
                                ..Default::default()
                            })
                            .await;
                    }
                }
                if let Ok(list) = cs.list(pb::ListContainersRequest::default()).await {
                    for c in list.into_inner().containers {
                        let _ = cs
                            .delete(pb::DeleteContainerRequest {
                                namespace: String::new(),
                                id: c.id,
                            })
                            .await;
                    }
                }
            })
            .await;
        });
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.cleanup();
        }
        self.kill9();
        // The per-supervisor cgroup parents (see `container`), once their children went.
        let unique = self
            .dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(hierarchy.path().join("berth-test").join(&unique));
        }
        // Any shim still alive (a failed test): stop it by the PID it recorded.
        if let Ok(nss) = std::fs::read_dir(self.dir.path().join("state/tasks")) {
            for ns in nss.flatten() {
                for t in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                    if let Ok(pid) = std::fs::read_to_string(t.path().join("shim.pid")) {
                        if let Ok(pid) = pid.trim().parse::<i32>() {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                    let _ = nix::mount::umount2(
                        &t.path().join("rootfs"),
                        nix::mount::MntFlags::MNT_DETACH,
                    );
                }
            }
        }
    }
}

/// The berth runtime choice (berth-shim + berth-runtime).
pub fn berth() -> pb::Runtime {
    pb::Runtime {
        name: "io.containerd.berth.v2".into(),
        ..Default::default()
    }
}

/// containerd's runc shim + runc.
pub fn runc_v2() -> pb::Runtime {
    pb::Runtime {
        name: "io.containerd.runc.v2".into(),
        binary_name: "/usr/sbin/runc".into(),
        ..Default::default()
    }
}

/// Make a FIFO and a thread that reads it to the end.
pub fn fifo_reader(path: &Path) -> std::thread::JoinHandle<Vec<u8>> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(p).unwrap();
        let mut v = Vec::new();
        let _ = f.read_to_end(&mut v);
        v
    })
}

impl Supervisor {
    /// A task's bundle directory.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir.path().join("state/tasks/default").join(id)
    }

    /// The PID of a task's shim (as the supervisor recorded it from the shim's Connect
    /// answer, for berth-shim and runc-v2 alike).
    pub fn shim_pid(&self, id: &str) -> i32 {
        std::fs::read_to_string(self.bundle(id).join("shim-pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Create and start a task (stdio as given), returning its init PID.
    pub fn run_task(&self, id: &str, stdout: &str) -> u32 {
        let mut t = self.tasks();
        self.block(t.create(pb::CreateTaskRequest {
            container_id: id.into(),
            stdout: stdout.into(),
            ..Default::default()
        }))
        .unwrap();
        self.block(t.start(pb::StartRequest {
            container_id: id.into(),
            ..Default::default()
        }))
        .unwrap()
        .into_inner()
        .pid
    }

    /// Get a task's (or exec'd process's) state.
    pub fn get(&self, id: &str, exec_id: &str) -> Result<pb::Process, berth_proto::tonic::Status> {
        let mut t = self.tasks();
        self.block(t.get(pb::GetRequest {
            container_id: id.into(),
            exec_id: exec_id.into(),
            ..Default::default()
        }))
        .map(|r| r.into_inner().process.unwrap())
    }

    /// Subscribe to the events of one container (every topic).
    pub fn subscribe(&self, id: &str) -> berth_proto::tonic::Streaming<pb::Envelope> {
        let mut ev = self.events();
        self.block(ev.subscribe(pb::SubscribeRequest {
            topics: Vec::new(),
            namespace: String::new(),
            container_id: id.into(),
        }))
        .unwrap()
        .into_inner()
    }

    /// Events from `stream` until `done` holds for one (included), or `limit` passes.
    pub fn events_until(
        &self,
        stream: &mut berth_proto::tonic::Streaming<pb::Envelope>,
        limit: Duration,
        mut done: impl FnMut(&pb::Envelope) -> bool,
    ) -> Vec<pb::Envelope> {
        self.rt.block_on(async {
            let mut v = Vec::new();
            let deadline = tokio::time::Instant::now() + limit;
            while let Ok(Ok(Some(e))) = tokio::time::timeout_at(deadline, stream.message()).await {
                let stop = done(&e);
                v.push(e);
                if stop {
                    break;
                }
            }
            v
        })
    }
}

/// The event in an envelope.
pub fn kind(e: &pb::Envelope) -> Option<&pb::event::Kind> {
    e.event.as_ref().and_then(|x| x.kind.as_ref())
}

/// The init process's TaskExit, if the envelope is one.
pub fn init_exit(e: &pb::Envelope) -> Option<&pb::TaskExit> {
    match kind(e) {
        Some(pb::event::Kind::TaskExit(x)) if x.exec_id.is_empty() => Some(x),
        _ => None,
    }
}

/// The cgroup directories of a process that belong to the test's own cgroups
/// (`/berth-test/...`): the container's.
pub fn container_cgroups(pid: u32) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !path.starts_with("/berth-test/") {
            continue;
        }
        let hierarchy = if ctl.is_empty() {
            "unified".to_string()
        } else if let Some(n) = ctl.strip_prefix("name=") {
            n.to_string()
        } else {
            ctl.to_string()
        };
        let dir = Path::new("/sys/fs/cgroup").join(hierarchy).join(&path[1..]);
        if dir.exists() {
            out.push(dir);
        }
    }
    out
}

/// Whether a process is gone (or a zombie waiting to be reaped: it runs nothing).
pub fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| p == &d || p.starts_with(&format!("{d}/")))
        .collect()
}

/// The PIDs in a cgroup directory and below.
pub fn cgroup_procs(dir: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(t) = std::fs::read_to_string(d.join("cgroup.procs")) {
            out.extend(t.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            }
        }
    }
    out
}

/// Make a FIFO that has a reader from now on (so a writer opening it non-blocking finds
/// one), and a thread that reads it to the end.
pub fn fifo_reader_ready(path: &Path) -> std::thread::JoinHandle<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Registered as a reader at once (non-blocking open), until the thread's own open
    // has met a writer.
    let early = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(p).unwrap();
        drop(early);
        let mut v = Vec::new();
        let _ = f.read_to_end(&mut v);
        v
    })
}
