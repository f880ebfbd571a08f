//! Shared harness of the engine tests: a berthd in a temp dir on a temp socket, Debian's
//! docker-registry on 127.0.0.1 with a free port, test images built from busybox-static,
//! and the real `docker` CLI pointed at berthd. Every process is killed by pid and every
//! directory removed when its guard drops, also when a test fails.

#![allow(dead_code)] // each test binary uses a different part of the harness

use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest any single docker/skopeo command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

/// A child process killed (SIGKILL, by pid) and reaped on drop.
pub struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it now with SIGTERM, waiting up to 10 s before SIGKILL.
    pub fn terminate(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = self.name;
    }
}

/// Runs a command with a deadline, capturing its output.
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> Output {
    berth_integration_tests::run_piped(cmd, None, timeout)
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} not ready after {timeout:?}");
}

/// Where `berthd` was built: next to the test executable (target/<profile>/berthd),
/// or `$BERTHD`.
pub fn berthd_path() -> PathBuf {
    if let Ok(p) = std::env::var("BERTHD") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join("berthd");
    assert!(
        p.is_file(),
        "{} not found: build it first with `cargo build -p berth-engine`",
        p.display()
    );
    p
}

/// An HTTP response read off the socket.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A running berthd with its own data root, exec root and socket.
pub struct Berthd {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub docker_config: PathBuf,
    proc: Option<Proc>,
    extra_args: Vec<String>,
}

impl Berthd {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berthd-test-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("berth.sock");
        let docker_config = dir.path().join("docker-config");
        std::fs::create_dir_all(&docker_config).expect("docker config dir");
        let mut d = Self {
            socket,
            docker_config,
            dir,
            proc: None,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
        };
        d.launch();
        d
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .expect("log file");
        let child = Command::new(berthd_path())
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.dir.path().join("exec"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--log-level")
            .arg("debug")
            // These tests run no bridged container: no bridge, no firewall rules.
            .args(
                if self.extra_args.iter().any(|a| a.starts_with("--bridge")) {
                    &[][..]
                } else {
                    &["--bridge=none"][..]
                },
            )
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn berthd");
        self.proc = Some(Proc {
            child,
            name: "berthd",
        });
        let sock = self.socket.clone();
        wait_for("berthd socket", Duration::from_secs(20), || {
            UnixStream::connect(&sock).is_ok()
        });
    }

    /// Stops berthd (SIGTERM) and starts it again on the same state.
    pub fn restart(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate();
        }
        self.launch();
    }

    /// Kills berthd with SIGKILL and starts it again on the same state.
    pub fn crash_and_restart(&mut self) {
        self.proc = None; // Drop kills with SIGKILL
        self.launch();
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// A `docker` command aimed at this berthd, with its own client config.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .args(args);
        c
    }

    /// Runs `docker ARGS...`, returning (success, stdout, stderr).
    pub fn docker(&self, args: &[&str]) -> (bool, String, String) {
        let out = run_with_timeout(self.docker_cmd(args), COMMAND_TIMEOUT);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `docker ARGS...` and insists it succeeds; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.docker(args);
        assert!(
            ok,
            "docker {args:?} failed:\nstdout: {out}\nstderr: {err}\nberthd log tail:\n{}",
            tail(&self.log(), 30)
        );
        out
    }

    /// Runs `docker ARGS...` and insists it fails; returns stderr.
    pub fn docker_err(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.docker(args);
        assert!(!ok, "docker {args:?} unexpectedly succeeded:\n{out}");
        err
    }

    /// One raw HTTP/1.0 request on the socket (so the body ends at EOF, unchunked).
    pub fn http(&self, method: &str, path: &str, body: Option<&[u8]>) -> HttpResponse {
        let mut s = UnixStream::connect(&self.socket).expect("connect berthd");
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let body = body.unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("send request");
        s.write_all(body).expect("send body");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read response");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("response head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        HttpResponse {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        }
    }

    /// Sends a request and reads the streamed response until `needle` shows up in it;
    /// returns what was read (the connection is dropped).
    pub fn http_until(&self, method: &str, path: &str, needle: &str) -> String {
        let mut s = UnixStream::connect(&self.socket).expect("connect berthd");
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let req = format!("{method} {path} HTTP/1.0\r\nHost: berth\r\nContent-Length: 0\r\n\r\n");
        s.write_all(req.as_bytes()).expect("send request");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).expect("read response");
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains(needle) {
                break;
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// Number of files in content/blobs and of snapshots: what the store holds.
    pub fn stored(&self) -> (usize, usize) {
        let count = |p: PathBuf| {
            std::fs::read_dir(p)
                .map(|d| {
                    d.flatten()
                        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                        .count()
                })
                .unwrap_or(0)
        };
        (
            count(self.data_root().join("content/blobs/sha256")),
            count(self.data_root().join("snapshots")),
        )
    }
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Debian's docker-registry on 127.0.0.1, optionally behind htpasswd basic auth.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    proc: Proc,
}

pub const REG_USER: &str = "berth";
pub const REG_PASSWORD: &str = "s3cret-pw";

impl Registry {
    pub fn start(auth: bool) -> Self {
        Self::start_with(auth, false)
    }

    /// A registry serving HTTPS with a self-signed certificate for 127.0.0.1.
    pub fn start_tls() -> Self {
        Self::start_with(false, true)
    }

    pub fn start_with(auth: bool, tls: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("registry-test-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        if auth {
            let out = run_with_timeout(
                {
                    let mut c = Command::new("htpasswd");
                    c.args(["-Bbn", REG_USER, REG_PASSWORD]);
                    c
                },
                Duration::from_secs(30),
            );
            assert!(
                out.status.success(),
                "htpasswd failed (apt-get install apache2-utils)"
            );
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                file.display()
            ));
        }
        if tls {
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            let mut c = Command::new("openssl");
            c.args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert);
            let out = run_with_timeout(c, Duration::from_secs(60));
            assert!(
                out.status.success(),
                "openssl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // Under `http:`, right after its address line.
            let addr_line = format!("  addr: 127.0.0.1:{port}\n");
            let with_tls = format!(
                "{addr_line}  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
            config = config.replace(&addr_line, &with_tls);
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry (apt-get install docker-registry)");
        let r = Self {
            dir,
            port,
            proc: Proc {
                child,
                name: "docker-registry",
            },
        };
        wait_for("docker-registry", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        r
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes an OCI layout to `repo:tag` with skopeo; returns the manifest digest the
    /// registry stores (skopeo may rewrite the manifest on the way).
    pub fn push_layout(&self, layout: &Path, repo: &str, tag: &str, auth: bool) -> String {
        self.push_layout_with(layout, repo, tag, auth, &[])
    }

    /// As [`Registry::push_layout`], with extra skopeo arguments (`--all`).
    pub fn push_layout_with(
        &self,
        layout: &Path,
        repo: &str,
        tag: &str,
        auth: bool,
        extra: &[&str],
    ) -> String {
        let digest_file = layout.with_extension(format!("{tag}.digest"));
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--dest-tls-verify=false"])
            .args(extra)
            .arg("--digestfile")
            .arg(&digest_file);
        if auth {
            c.arg(format!("--dest-creds={REG_USER}:{REG_PASSWORD}"));
        }
        c.arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.host()));
        let out = run_with_timeout(c, COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&digest_file)
            .expect("skopeo digest file")
            .trim()
            .to_string()
    }

    /// Copies an image from the registry into an archive with skopeo
    /// (`docker-archive:PATH:REF` or `oci-archive:PATH:REF`).
    pub fn skopeo_export(&self, repo: &str, tag: &str, dest: &str) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}/{repo}:{tag}", self.host()))
            .arg(dest);
        let out = run_with_timeout(c, COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A manifest as the registry serves it (HTTP/1.0 to 127.0.0.1, no auth).
    pub fn manifest(&self, repo: &str, reference: &str) -> serde_json::Value {
        let mut s =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect registry");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let req = format!(
            "GET /v2/{repo}/manifests/{reference} HTTP/1.0\r\nHost: {}\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\n\r\n",
            self.host()
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
        serde_json::from_slice(&raw[split + 4..]).expect("manifest JSON")
    }

    /// Files of the registry's blob storage.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Stops the registry now.
    pub fn stop(&mut self) {
        self.proc.terminate();
    }
}

/// `n` bytes that do not compress (xorshift), quickly.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A tar entry of a test layer.
pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    /// A raw name written as is (for hostile names the tar crate refuses).
    RawFile(&'a str, &'a [u8]),
    Hardlink(&'a str, &'a str),
}

/// Builds an uncompressed layer tar.
pub fn layer_tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_path(p).expect("path");
                h.set_cksum();
                b.append(&h, std::io::empty()).expect("append");
            }
            Entry::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                h.set_path(p).expect("path");
                h.set_cksum();
                b.append(&h, *data).expect("append");
            }
            Entry::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                h.set_path(p).expect("path");
                h.set_link_name(target).expect("link");
                h.set_cksum();
                b.append(&h, std::io::empty()).expect("append");
            }
            Entry::Hardlink(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                h.set_path(p).expect("path");
                h.set_link_name(target).expect("link");
                h.set_cksum();
                b.append(&h, std::io::empty()).expect("append");
            }
            Entry::RawFile(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                let name = &mut h.as_old_mut().name;
                name[..p.len()].copy_from_slice(p.as_bytes());
                h.set_cksum();
                b.append(&h, *data).expect("append");
            }
        }
    }
    b.into_inner().expect("finish tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip");
    gz.finish().expect("gzip")
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd")
}

/// Layer compressions of test images.
#[derive(Clone, Copy)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

/// A test image made as an OCI layout on disk.
pub struct TestImage {
    pub layout: PathBuf,
    pub config_digest: String,
    pub manifest_digest: String,
    pub diff_ids: Vec<String>,
    pub layer_digests: Vec<String>,
}

fn write_blob(layout: &Path, data: &[u8]) -> String {
    let hex = sha256_hex(data);
    let p = layout.join("blobs/sha256").join(&hex);
    std::fs::write(p, data).expect("write blob");
    format!("sha256:{hex}")
}

/// Writes an OCI layout with one image of these layers (uncompressed tars) at `tag`.
pub fn oci_layout(dir: &Path, tag: &str, layers: &[(Vec<u8>, Comp)], cmd: &[&str]) -> TestImage {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("layout dir");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let mut diff_ids = Vec::new();
    let mut descs = Vec::new();
    let mut layer_digests = Vec::new();
    let mut history = Vec::new();
    for (i, (tar, comp)) in layers.iter().enumerate() {
        diff_ids.push(format!("sha256:{}", sha256_hex(tar)));
        let (blob, mt) = match comp {
            Comp::None => (tar.clone(), "application/vnd.oci.image.layer.v1.tar"),
            Comp::Gzip => (gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
            Comp::Zstd => (zstd(tar), "application/vnd.oci.image.layer.v1.tar+zstd"),
        };
        let d = write_blob(dir, &blob);
        layer_digests.push(d.clone());
        descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": blob.len()}));
        history.push(serde_json::json!({"created": "2024-01-02T03:04:05Z", "created_by": format!("layer {i}")}));
    }
    let config = serde_json::json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "Labels": {"berth.test": "yes"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    let config_bytes = serde_json::to_vec(&config).expect("json");
    let config_digest = write_blob(dir, &config_bytes);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": descs,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("json");
    let manifest_digest = write_blob(dir, &manifest_bytes);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("index");
    TestImage {
        layout: dir.to_path_buf(),
        config_digest,
        manifest_digest,
        diff_ids,
        layer_digests,
    }
}

/// The busybox rootfs layer: /bin/busybox plus applet symlinks.
pub fn busybox_layer() -> Vec<u8> {
    let busybox = std::fs::read("/usr/bin/busybox")
        .or_else(|_| std::fs::read("/bin/busybox"))
        .expect("busybox-static (apt-get install busybox-static)");
    let mut entries = vec![
        Entry::Dir("bin/"),
        Entry::File("bin/busybox", &busybox, 0o755),
        Entry::Dir("etc/"),
        Entry::Dir("tmp/"),
    ];
    let applets = ["sh", "ls", "cat", "echo", "true", "sleep", "env"];
    let links: Vec<String> = applets.iter().map(|a| format!("bin/{a}")).collect();
    for l in &links {
        entries.push(Entry::Symlink(l, "busybox"));
    }
    layer_tar(&entries)
}

/// The standard three-layer test image: busybox (gzip), files (zstd), and a layer of
/// whiteouts (uncompressed) that deletes a file and makes a directory opaque.
pub fn standard_image(dir: &Path, tag: &str) -> TestImage {
    standard_image_with(dir, tag, Comp::Zstd)
}

/// The standard image with another compression for its second layer.
pub fn standard_image_with(dir: &Path, tag: &str, second: Comp) -> TestImage {
    let l1 = busybox_layer();
    let l2 = layer_tar(&[
        Entry::Dir("etc/"),
        Entry::File("etc/hello.txt", b"hello from berth\n", 0o644),
        Entry::File("etc/gone.txt", b"to be deleted\n", 0o644),
        Entry::Dir("var/"),
        Entry::Dir("var/cache/"),
        Entry::File("var/cache/old", b"old\n", 0o644),
    ]);
    let l3 = layer_tar(&[
        Entry::File("etc/.wh.gone.txt", b"", 0o644),
        Entry::Dir("var/cache/"),
        Entry::File("var/cache/.wh..wh..opq", b"", 0o644),
        Entry::File("var/cache/new", b"new\n", 0o644),
    ]);
    oci_layout(
        dir,
        tag,
        &[(l1, Comp::Gzip), (l2, second), (l3, Comp::None)],
        &["/bin/sh"],
    )
}

/// A real dockerd (Debian's docker.io) in its own temp data root and socket, with its own
/// managed containerd, for interop checks. Stopped with SIGTERM by pid on drop, its
/// containerd too, and any mount left under its directory undone.
pub struct Dockerd {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    proc: Option<Proc>,
}

impl Dockerd {
    /// Starts dockerd, or returns None if it is not installed.
    pub fn start() -> Option<Self> {
        let bin = [
            "/usr/bin/dockerd",
            "/usr/sbin/dockerd",
            "/usr/local/bin/dockerd",
        ]
        .into_iter()
        .find(|p| Path::new(p).is_file())?;
        let dir = tempfile::Builder::new()
            .prefix("dockerd-test-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("docker.sock");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("log");
        let ns = format!("berth-test-{}", std::process::id());
        let child = Command::new(bin)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .args(["--containerd-namespace", &ns])
            .args(["--containerd-plugins-namespace", &format!("{ns}-plugins")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        let d = Self {
            socket,
            proc: Some(Proc {
                child,
                name: "dockerd",
            }),
            dir,
        };
        let sock = d.socket.clone();
        wait_for("dockerd", Duration::from_secs(60), || {
            let mut c = Command::new("docker");
            c.env("DOCKER_HOST", format!("unix://{}", sock.display()))
                .args(["version", "--format", "{{.Server.Version}}"]);
            run_with_timeout(c, Duration::from_secs(20))
                .status
                .success()
        });
        Some(d)
    }

    /// A `docker` command aimed at this dockerd, with its own client config.
    pub fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .args(args);
        c
    }

    /// Runs `docker ARGS...` against this dockerd: (success, stdout, stderr).
    pub fn docker(&self, args: &[&str]) -> (bool, String, String) {
        let out = run_with_timeout(self.docker_cmd(args), COMMAND_TIMEOUT);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `docker ARGS...` against this dockerd and insists it succeeds.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let c = self.docker_cmd(args);
        let out = run_with_timeout(c, COMMAND_TIMEOUT);
        assert!(
            out.status.success(),
            "dockerd: docker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate();
        }
        // dockerd stops the containerd it started; make sure of it, by its pid file.
        let pid_file = self.dir.path().join("exec/containerd/containerd.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let pid = nix::unistd::Pid::from_raw(pid);
            if nix::sys::signal::kill(pid, None).is_ok() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        let prefix = format!("{}/", self.dir.path().display());
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|m| m.starts_with(&prefix))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for m in points {
                let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

impl Drop for Berthd {
    /// SIGTERM first: berthd then removes its bridges and firewall table (a test that
    /// failed half-way leaves none behind); SIGKILL only if it does not stop.
    fn drop(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            p.terminate();
        }
    }
}
