//! Harness of the CRI tests: a berthd serving the CRI on a temp socket, with its own
//! CNI configuration (a bridge and a subnet of its own, host-local addresses in its own
//! directory), a registry on 127.0.0.1 holding the busybox test image, and a tonic
//! client built from the same CRI types berthd serves (k8s-cri). On drop every pod is
//! removed through the CRI, berthd is killed by pid, what is still mounted under the
//! test's directory is unmounted and the bridge deleted: only what the test made.

#![allow(dead_code)]

use crate::engine_support::{standard_image, Berthd, Registry};
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// CRI tests make bridges and pods: one at a time (an async lock: held across awaits,
/// never poisoned by a failed test).
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A berthd serving the CRI, with its network and registry.
pub struct Cri {
    pub berthd: Option<Berthd>,
    pub registry: Registry,
    pub image: String,
    pub work: tempfile::TempDir,
    pub bridge: String,
    pub subnet: String,
    pub socket: PathBuf,
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A /24 under 10.234.0.0/16 that nothing on this host routes yet.
fn free_subnet(seed: u32) -> String {
    for i in 0..250u32 {
        let n = (seed + i) % 250 + 1;
        let s = format!("10.234.{n}.0/24");
        if ip(&["-4", "route", "show", &s]).trim().is_empty()
            && !ip(&["-4", "addr"]).contains(&format!("10.234.{n}."))
        {
            return s;
        }
    }
    panic!("no free 10.234.x.0/24 subnet for the CRI test network");
}

impl Cri {
    /// Starts berthd with the CRI; `extra_plugins` are appended to the network's
    /// plugin list (JSON objects), `plugin_dir` is searched before /usr/lib/cni.
    pub fn start_with(extra_plugins: &[&str]) -> Self {
        berth_integration_tests::require_root();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let bridge = format!("bcri{}x{n}", pid % 100_000);
        let subnet = free_subnet(pid.wrapping_mul(7).wrapping_add(n * 13));
        let work = tempfile::Builder::new()
            .prefix("cri-test-")
            .tempdir()
            .expect("temp dir");
        let netd = work.path().join("net.d");
        let bin = work.path().join("cni-bin");
        let ipam = work.path().join("ipam");
        for d in [&netd, &bin, &ipam] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let mut plugins = vec![format!(
            r#"{{"type": "bridge", "bridge": "{bridge}", "isGateway": true, "ipMasq": false,
               "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "{subnet}"}}]], "dataDir": "{}"}}}}"#,
            ipam.display()
        )];
        plugins.extend(extra_plugins.iter().map(|p| p.to_string()));
        std::fs::write(
            netd.join("10-test.conflist"),
            format!(
                r#"{{"cniVersion": "0.4.0", "name": "berth-cri-test-{pid}-{n}", "plugins": [{}]}}"#,
                plugins.join(",")
            ),
        )
        .expect("conflist");
        let socket = work.path().join("cri.sock");
        let registry = Registry::start(false);
        let layout = standard_image(&work.path().join("layout"), "v1");
        registry.push_layout(&layout.layout, "test/bb", "v1", false);
        let image = format!("{}/test/bb:v1", registry.host());
        let args: Vec<String> = vec![
            "--cri-socket".into(),
            socket.display().to_string(),
            "--cni-conf-dir".into(),
            netd.display().to_string(),
            "--cni-bin-dir".into(),
            bin.display().to_string(),
            "--cni-bin-dir".into(),
            "/usr/lib/cni".into(),
        ];
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let berthd = Berthd::start_with(&argv);
        let c = Self {
            berthd: Some(berthd),
            registry,
            image,
            work,
            bridge,
            subnet,
            socket,
        };
        c.wait_socket();
        c
    }

    pub fn start() -> Self {
        Self::start_with(&[])
    }

    fn wait_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.socket.exists() {
            assert!(Instant::now() < deadline, "CRI socket never appeared");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn berthd(&self) -> &Berthd {
        self.berthd.as_ref().expect("berthd")
    }

    /// Kills berthd with SIGKILL and starts it again on the same state.
    pub fn crash_and_restart(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        self.berthd.as_mut().expect("berthd").crash_and_restart();
        self.wait_socket();
    }

    pub fn ipam_dir(&self) -> PathBuf {
        self.work.path().join("ipam")
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.work.path().join("cni-bin")
    }

    /// The addresses host-local holds for pods now.
    pub fn reserved_ips(&self) -> Vec<String> {
        let mut out = Vec::new();
        for net in std::fs::read_dir(self.ipam_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(net.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.parse::<std::net::IpAddr>().is_ok() {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Interfaces enslaved to the test bridge (one veth per attached pod).
    pub fn bridge_ports(&self) -> usize {
        ip(&["-o", "link", "show", "master", &self.bridge])
            .lines()
            .count()
    }

    pub fn exec_root(&self) -> PathBuf {
        self.berthd().dir.path().join("exec")
    }

    pub fn data_root(&self) -> PathBuf {
        self.berthd().data_root()
    }

    pub async fn channel(&self) -> Channel {
        connect(&self.socket)
            .await
            .expect("connect to the CRI socket")
    }

    pub async fn clients(&self) -> (RuntimeServiceClient<Channel>, ImageServiceClient<Channel>) {
        let ch = self.channel().await;
        (
            RuntimeServiceClient::new(ch.clone()),
            ImageServiceClient::new(ch),
        )
    }

    /// A pod config with this name, its logs under the test's directory.
    pub fn pod_config(&self, name: &str) -> cri::PodSandboxConfig {
        let logs = self.work.path().join("logs").join(name);
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "berth-test".into(),
                attempt: 0,
            }),
            hostname: format!("{name}-host"),
            log_directory: logs.display().to_string(),
            dns_config: Some(cri::DnsConfig {
                servers: vec!["10.0.0.10".into()],
                searches: vec!["svc.test".into()],
                options: vec!["ndots:2".into()],
            }),
            labels: [("app".to_string(), name.to_string())].into(),
            linux: Some(cri::LinuxPodSandboxConfig::default()),
            ..Default::default()
        }
    }

    /// A container running `cmd` in the test image.
    pub fn container_config(&self, name: &str, cmd: &[&str]) -> cri::ContainerConfig {
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: self.image.clone(),
                ..Default::default()
            }),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            labels: [("c".to_string(), name.to_string())].into(),
            linux: Some(cri::LinuxContainerConfig::default()),
            ..Default::default()
        }
    }

    /// Pulls the test image; its ID.
    pub async fn pull(&self) -> String {
        let (_, mut img) = self.clients().await;
        img.pull_image(cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: self.image.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("PullImage")
        .into_inner()
        .image_ref
    }

    /// Runs a pod; its ID.
    pub async fn run_pod(&self, name: &str) -> (String, cri::PodSandboxConfig) {
        let (mut rt, _) = self.clients().await;
        let config = self.pod_config(name);
        let id = rt
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id;
        (id, config)
    }

    /// Creates and starts a container in a pod; its ID.
    pub async fn run_container(
        &self,
        pod: &str,
        pod_config: &cri::PodSandboxConfig,
        config: cri::ContainerConfig,
    ) -> String {
        let (mut rt, _) = self.clients().await;
        let id = rt
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(config),
                sandbox_config: Some(pod_config.clone()),
            })
            .await
            .expect("CreateContainer")
            .into_inner()
            .container_id;
        rt.start_container(cri::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .expect("StartContainer");
        id
    }

    pub async fn container_status(&self, id: &str) -> cri::ContainerStatus {
        let (mut rt, _) = self.clients().await;
        rt.container_status(cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus")
        .into_inner()
        .status
        .expect("status")
    }

    /// The host PID of a container (from ContainerStatus's verbose info).
    pub async fn pid_of(&self, id: &str) -> u32 {
        let (mut rt, _) = self.clients().await;
        let info = rt
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .info;
        let v: serde_json::Value = serde_json::from_str(&info["info"]).expect("info JSON");
        v["pid"].as_u64().expect("pid") as u32
    }

    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout: i64,
    ) -> Result<cri::ExecSyncResponse, tonic::Status> {
        let (mut rt, _) = self.clients().await;
        rt.exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout,
        })
        .await
        .map(|r| r.into_inner())
    }

    /// Removes every pod (as the kubelet would), in a thread with its own runtime so
    /// that it also works from Drop inside a test's runtime.
    fn remove_all_pods(&self) {
        let socket = self.socket.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(Ok(ch)) =
                    tokio::time::timeout(Duration::from_secs(5), connect(&socket)).await
                else {
                    return;
                };
                let mut c = RuntimeServiceClient::new(ch);
                let Ok(list) = c
                    .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
                    .await
                else {
                    return;
                };
                for p in list.into_inner().items {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(60),
                        c.remove_pod_sandbox(cri::RemovePodSandboxRequest {
                            pod_sandbox_id: p.id,
                        }),
                    )
                    .await;
                }
            });
        })
        .join();
    }
}

/// A gRPC channel over the CRI's unix socket.
pub async fn connect(path: &Path) -> Result<Channel, tonic::transport::Error> {
    let path = path.to_path_buf();
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
}

/// Unmounts whatever is still mounted below `dir` (deepest first).
fn unmount_below(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        if self.berthd.is_some() {
            self.remove_all_pods();
        }
        if let Some(b) = self.berthd.take() {
            let dir = b.dir.path().to_path_buf();
            drop(b);
            unmount_below(&dir);
        }
        unmount_below(self.work.path());
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

/// Waits until `f` holds (bounded).
pub async fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not after {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// True if a process with this PID exists.
pub fn alive(pid: u32) -> bool {
    pid > 0 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}
