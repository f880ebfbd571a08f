//! berthd served remotely as dockerd is: TLS on tcp:// listeners (`--tls`,
//! `--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`) with certificates openssl makes
//! here, the real docker CLI and berth side by side over it (flags and
//! `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`), clients without a certificate or with one from
//! another CA refused, plain TCP on loopback, the refusal of plain TCP on any other
//! address without `--tls=false` (on an address of an interface in a network namespace
//! the test makes), and the unix socket's `-G` group. Traffic goes only to
//! 127.0.0.1 and to that namespace's own address, from inside it.

mod containers_support;

use containers_support::{kill_leftovers, run_with_timeout, tail, Berthd, COMMAND_TIMEOUT};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMG: &str = "busybox:test";

/// dockerd's words for plain TCP on an address that is not loopback.
const INSECURE: &str = "Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network. You can override this by explicitly specifying '--tls=false' or '--tlsverify=false'";

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn berth_bin() -> PathBuf {
    berth_integration_tests::binary("berth")
}

/// A CA, a server certificate for 127.0.0.1 and 192.0.2.10 (the namespace's address),
/// a client certificate, and another CA with a client certificate of its own; plus
/// `docker-certs/` laid out for DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem).
struct Certs {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let mut c = Command::new("openssl");
    c.current_dir(dir).args(args);
    let out = run_with_timeout(c, None, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "openssl {args:?} (apt-get install openssl): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Certs {
    fn make() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-tls-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        let ca = |name: &str, cn: &str| {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={cn}"),
                    "-keyout",
                    &format!("{name}-key.pem"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        };
        let signed = |name: &str, cn: &str, ca: &str, ext: &str| {
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    &format!("/CN={cn}"),
                    "-keyout",
                    &format!("{name}-key.pem"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
            std::fs::write(d.join(format!("{name}.ext")), ext).expect("ext file");
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-days",
                    "2",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{ca}.pem"),
                    "-CAkey",
                    &format!("{ca}-key.pem"),
                    "-CAcreateserial",
                    "-extfile",
                    &format!("{name}.ext"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        };
        ca("ca", "berth test CA");
        ca("other-ca", "another CA");
        signed(
            "server",
            "berthd",
            "ca",
            "subjectAltName=IP:127.0.0.1,IP:192.0.2.10\nextendedKeyUsage=serverAuth\n",
        );
        signed("client", "client", "ca", "extendedKeyUsage=clientAuth\n");
        signed(
            "stranger",
            "stranger",
            "other-ca",
            "extendedKeyUsage=clientAuth\n",
        );
        let certs = d.join("docker-certs");
        std::fs::create_dir(&certs).expect("certs dir");
        for (from, to) in [
            ("ca.pem", "ca.pem"),
            ("client.pem", "cert.pem"),
            ("client-key.pem", "key.pem"),
        ] {
            std::fs::copy(d.join(from), certs.join(to)).expect("copy cert");
        }
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// berthd's TLS flags with `verify` (--tlsverify or the given TLS flags).
    fn server_flags(&self, tls_flags: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = tls_flags.iter().map(|s| s.to_string()).collect();
        for (flag, file) in [
            ("--tlscacert", "ca.pem"),
            ("--tlscert", "server.pem"),
            ("--tlskey", "server-key.pem"),
        ] {
            v.push(format!("{flag}={}", self.path(file)));
        }
        v
    }

    /// Client flags: verify against `ca`, present `client` (a name: client, stranger).
    fn client_flags(&self, ca: &str, client: Option<&str>) -> Vec<String> {
        let mut v = vec![
            "--tlsverify".to_string(),
            format!("--tlscacert={}", self.path(ca)),
        ];
        if let Some(c) = client {
            v.push(format!("--tlscert={}", self.path(&format!("{c}.pem"))));
            v.push(format!("--tlskey={}", self.path(&format!("{c}-key.pem"))));
        }
        v
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cli {
    Docker,
    Berth,
}

const CLIS: [Cli; 2] = [Cli::Docker, Cli::Berth];

/// A docker or berth command with a clean environment (no host, no TLS variables) and
/// its own config directory under `home`; `wrap` runs it through another command
/// (nsenter into a namespace).
fn cli_cmd(
    which: Cli,
    home: &Path,
    wrap: &[&str],
    args: &[String],
    env: &[(&str, String)],
) -> Command {
    let program = match which {
        Cli::Docker => PathBuf::from("docker"),
        Cli::Berth => berth_bin(),
    };
    let mut c = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
        None => Command::new(program),
    };
    let config = home.join(format!("{which:?}-config"));
    std::fs::create_dir_all(&config).expect("client config dir");
    for k in [
        "DOCKER_HOST",
        "BERTH_HOST",
        "DOCKER_TLS_VERIFY",
        "DOCKER_TLS",
        "DOCKER_CERT_PATH",
        "DOCKER_CONTEXT",
    ] {
        c.env_remove(k);
    }
    c.env("DOCKER_CONFIG", &config)
        .env("BERTH_CONFIG", &config)
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs it: (exit code, stdout, stderr).
fn run(c: Command, input: Option<&[u8]>) -> (i32, String, String) {
    let out = run_with_timeout(c, input, COMMAND_TIMEOUT);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn cat(a: &[String], b: &[&str]) -> Vec<String> {
    let mut v = a.to_vec();
    v.extend(strings(b));
    v
}

/// The ids of all containers, through the plain unix socket.
fn all_containers(d: &Berthd) -> String {
    d.ok(&["ps", "-aq"])
}

#[test]
fn tlsverify_serves_docker_and_berth_only_with_a_client_certificate_of_the_ca() {
    let certs = Certs::make();
    let port = free_port();
    let addr = format!("tcp://127.0.0.1:{port}");
    let mut flags = cat(&["-H".to_string(), addr.clone()], &[]);
    flags.extend(certs.server_flags(&["--tlsverify"]));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    // The harness also serves its unix socket, which stays plain: it imports the image
    // through it.
    let d = Berthd::start_with(&flags);
    let home = d.dir.path();
    let host = format!("--host={addr}");
    for cli in CLIS {
        // With the flags.
        let tls = certs.client_flags("ca.pem", Some("client"));
        let with = |args: &[&str]| cat(&cat(&tls, &[&host]), args);
        let (code, out, err) = run(
            cli_cmd(
                cli,
                home,
                &[],
                &with(&["version", "--format", "{{.Server.Version}}"]),
                &[],
            ),
            None,
        );
        assert_eq!(
            (code, out.trim()),
            (0, env!("CARGO_PKG_VERSION")),
            "{cli:?} version: {err}"
        );
        let (code, out, err) = run(
            cli_cmd(cli, home, &[], &with(&["ps", "--format", "{{.ID}}"]), &[]),
            None,
        );
        assert_eq!((code, out.as_str()), (0, ""), "{cli:?} ps: {err}");
        let (code, out, err) = run(
            cli_cmd(
                cli,
                home,
                &[],
                &with(&[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    IMG,
                    "sh",
                    "-c",
                    "echo over tls; exit 3",
                ]),
                &[],
            ),
            None,
        );
        assert_eq!(
            (code, out.as_str()),
            (3, "over tls\n"),
            "{cli:?} run: {err}\n{}",
            tail(&d.log(), 20)
        );
        // Both directions of a hijacked connection through TLS: stdin in, stdout out.
        let (code, out, err) = run(
            cli_cmd(
                cli,
                home,
                &[],
                &with(&["run", "--rm", "-i", "--network", "none", IMG, "cat"]),
                &[],
            ),
            Some(b"typed through tls\n"),
        );
        assert_eq!(
            (code, out.as_str()),
            (0, "typed through tls\n"),
            "{cli:?} run -i: {err}"
        );

        // With DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and DOCKER_HOST alone.
        let env = [
            ("DOCKER_TLS_VERIFY", "1".to_string()),
            ("DOCKER_CERT_PATH", certs.path("docker-certs")),
            ("DOCKER_HOST", addr.clone()),
        ];
        let (code, out, err) = run(
            cli_cmd(
                cli,
                home,
                &[],
                &strings(&["version", "--format", "{{.Server.Version}}"]),
                &env,
            ),
            None,
        );
        assert_eq!(
            (code, out.trim()),
            (0, env!("CARGO_PKG_VERSION")),
            "{cli:?} env version: {err}"
        );
        let (code, _, err) = run(cli_cmd(cli, home, &[], &strings(&["ps"]), &env), None);
        assert_eq!(code, 0, "{cli:?} env ps: {err}");
        let (code, out, err) = run(
            cli_cmd(
                cli,
                home,
                &[],
                &strings(&["run", "--rm", "--network", "none", IMG, "echo", "env"]),
                &env,
            ),
            None,
        );
        assert_eq!((code, out.as_str()), (0, "env\n"), "{cli:?} env run: {err}");
        assert_eq!(all_containers(&d), "", "--rm left a container");

        // Refused: no client certificate, or one from another CA. Nothing runs.
        for client in [None, Some("stranger")] {
            let args = cat(
                &certs.client_flags("ca.pem", client),
                &[&host, "run", "--rm", "--network", "none", IMG, "true"],
            );
            let (code, _, err) = run(cli_cmd(cli, home, &[], &args, &[]), None);
            // docker run's code when the daemon cannot be reached, from both.
            assert_eq!(code, 125, "{cli:?} with {client:?}: {err}");
            // Go's client withholds a certificate the server's CA list does not name
            // ("certificate required"); rustls sends it and berthd names the reason.
            assert!(
                err.contains("error during connect: ")
                    && err.contains(&format!(" \"https://127.0.0.1:{port}/"))
                    && (err.contains("remote error: tls: certificate required")
                        || err.contains("remote error: tls: unknown certificate authority")),
                "{cli:?} with {client:?}: {err}"
            );
        }
        // The client does not trust berthd's certificate.
        let args = cat(
            &certs.client_flags("other-ca.pem", Some("client")),
            &[&host, "ps"],
        );
        let (code, _, err) = run(cli_cmd(cli, home, &[], &args, &[]), None);
        assert_eq!(code, 1, "{cli:?}: {err}");
        assert!(
            err.contains(
                "tls: failed to verify certificate: x509: certificate signed by unknown authority"
            ),
            "{cli:?}: {err}"
        );
        // Plain HTTP to the TLS port gets Go's answer, as from dockerd.
        let (code, _, err) = run(cli_cmd(cli, home, &[], &strings(&[&host, "ps"]), &[]), None);
        assert_eq!(code, 1, "{cli:?}: {err}");
        assert!(
            err.contains(
                "Error response from daemon: Client sent an HTTP request to an HTTPS server."
            ),
            "{cli:?}: {err}"
        );
        // Nothing listens: docker's words.
        let closed = format!("--host=tcp://127.0.0.1:{}", free_port());
        let (code, _, err) = run(
            cli_cmd(
                cli,
                home,
                &[],
                &cat(
                    &certs.client_flags("ca.pem", Some("client")),
                    &[&closed, "ps"],
                ),
                &[],
            ),
            None,
        );
        assert_eq!(code, 1);
        assert!(
            err.contains(&format!(
                "Cannot connect to the Docker daemon at {}. Is the docker daemon running?",
                closed.trim_start_matches("--host=")
            )),
            "{cli:?}: {err}"
        );
        // A CA file that is not there: docker's words, before anything is sent.
        let missing = certs.path("nope/ca.pem");
        let args = strings(&[
            "--tlsverify",
            &format!("--tlscacert={missing}"),
            &host,
            "ps",
        ]);
        let (code, _, err) = run(cli_cmd(cli, home, &[], &args, &[]), None);
        assert_eq!(code, 1);
        assert!(
            err.contains(&format!(
                "Failed to initialize: unable to resolve docker endpoint: open {missing}: no such file or directory"
            )),
            "{cli:?}: {err}"
        );
    }
    assert_eq!(all_containers(&d), "", "a refused client made a container");
    assert!(
        d.log().contains("peer sent no certificates"),
        "{}",
        tail(&d.log(), 20)
    );
}

/// A berthd without the container harness (no image), for the listener's own checks:
/// its own temp dir, data and exec roots and socket; stopped by pid (SIGTERM, then
/// SIGKILL) and anything it left killed and unmounted on drop.
struct Daemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Daemon {
    /// Starts `berthd ARGS` with its own roots and unix socket, through `wrap` (nsenter);
    /// `{dir}` in an argument stands for its temp dir.
    fn spawn(wrap: &[&str], args: &[String]) -> Self {
        berth_integration_tests::require_root();
        let dir = tempfile::Builder::new()
            .prefix("berthd-tls-")
            .tempdir()
            .expect("temp dir");
        let log = std::fs::File::create(dir.path().join("berthd.log")).expect("log");
        let mut c = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(berth_integration_tests::binary("berthd"));
                c
            }
            None => Command::new(berth_integration_tests::binary("berthd")),
        };
        c.arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("-H")
            .arg(format!(
                "unix://{}",
                dir.path().join("berth.sock").display()
            ))
            .args(
                args.iter()
                    .map(|a| a.replace("{dir}", &dir.path().to_string_lossy())),
            )
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("DOCKER_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = c.spawn().expect("spawn berthd");
        Daemon {
            dir,
            child: Some(child),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// Waits until the API answers /_ping on the unix socket (so every listener is
    /// bound and served).
    fn wait_served(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if ping(&self.socket()) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("berthd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "berthd not served:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) for berthd to exit on its own: its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "berthd did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
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

/// GET /_ping on a unix socket answers OK.
fn ping(socket: &Path) -> bool {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: berth\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.") && out.ends_with("OK")
}

/// Asserts that a berthd that was refused made nothing: no data root, no socket.
fn assert_nothing_made(d: &Daemon) {
    assert!(!d.dir.path().join("data").exists(), "data root made");
    assert!(!d.dir.path().join("exec").exists(), "exec root made");
    assert!(!d.socket().exists(), "socket left behind");
    let starting = d.dir.path().join(".berth.sock.starting");
    assert!(
        !starting.exists(),
        "socket left behind under its starting name"
    );
}

#[test]
fn tls_without_verification_accepts_any_client_and_tls_alone_verifies_as_dockerd() {
    let certs = Certs::make();
    // --tls --tlsverify=false: TLS, and any client (with a foreign certificate or none).
    let port = free_port();
    let host = format!("--host=tcp://127.0.0.1:{port}");
    let mut d = Daemon::spawn(
        &[],
        &cat(
            &certs.server_flags(&["--tls", "--tlsverify=false"]),
            &["-H", &host[7..]],
        ),
    );
    d.wait_served();
    let home = d.dir.path().to_path_buf();
    for cli in CLIS {
        for client in [None, Some("stranger")] {
            // Verifying berthd's certificate, without presenting one of the CA.
            let args = cat(
                &certs.client_flags("ca.pem", client),
                &[&host, "version", "--format", "{{.Server.Version}}"],
            );
            let (code, out, err) = run(cli_cmd(cli, &home, &[], &args, &[]), None);
            assert_eq!(
                (code, out.trim()),
                (0, env!("CARGO_PKG_VERSION")),
                "{cli:?} {client:?}: {err}"
            );
        }
        // --tls alone on the client: berthd's certificate is not checked either (the
        // CA file still has to be there, as docker reads it).
        let args = strings(&[
            "--tls",
            &format!("--tlscacert={}", certs.path("other-ca.pem")),
            &host,
            "ps",
            "-q",
        ]);
        let (code, _, err) = run(cli_cmd(cli, &home, &[], &args, &[]), None);
        assert_eq!(code, 0, "{cli:?} --tls: {err}");
    }
    drop(d);

    // --tls alone: dockerd then requires client certificates (TLSVerify follows TLS).
    let port = free_port();
    let host = format!("--host=tcp://127.0.0.1:{port}");
    let mut d = Daemon::spawn(
        &[],
        &cat(&certs.server_flags(&["--tls"]), &["-H", &host[7..]]),
    );
    d.wait_served();
    for cli in CLIS {
        let (code, _, err) = run(
            cli_cmd(
                cli,
                &home,
                &[],
                &cat(&certs.client_flags("ca.pem", None), &[&host, "ps"]),
                &[],
            ),
            None,
        );
        assert_eq!(code, 1, "{cli:?}");
        assert!(
            err.contains("remote error: tls: certificate required"),
            "{cli:?}: {err}"
        );
        let (code, _, err) = run(
            cli_cmd(
                cli,
                &home,
                &[],
                &cat(
                    &certs.client_flags("ca.pem", Some("client")),
                    &[&host, "ps"],
                ),
                &[],
            ),
            None,
        );
        assert_eq!(code, 0, "{cli:?}: {err}");
    }
}

#[test]
fn tls_files_that_are_missing_or_bad_stop_berthd_in_dockerd_words() {
    let certs = Certs::make();
    let empty = tempfile::tempdir().expect("temp dir");
    let port = free_port().to_string();
    let tcp = format!("tcp://127.0.0.1:{port}");
    // The default files: DOCKER_CERT_PATH's, which are not there.
    let mut d = Daemon::spawn(
        &[
            "env",
            &format!("DOCKER_CERT_PATH={}", empty.path().display()),
        ],
        &strings(&["--tlsverify", "-H", &tcp]),
    );
    assert_eq!(d.wait_exit(), Some(1));
    let (cert, key) = (empty.path().join("cert.pem"), empty.path().join("key.pem"));
    let want = format!(
        "berthd: invalid TLS configuration: could not load X509 key pair (cert: {cert:?}, key: {key:?}): open {}: no such file or directory",
        cert.display()
    );
    assert!(d.log().contains(&want), "{}", d.log());
    assert_nothing_made(&d);
    drop(d);
    // A CA file with no certificate in it.
    let bad_ca = certs.path("server.ext");
    let mut args = certs.server_flags(&["--tlsverify"]);
    // The last of a repeated flag wins, as with dockerd's (Go) flags.
    args.push(format!("--tlscacert={bad_ca}"));
    let mut d = Daemon::spawn(&[], &cat(&args, &["-H", &tcp]));
    assert_eq!(d.wait_exit(), Some(1));
    assert!(
        d.log().contains(&format!(
            "invalid TLS configuration: failed to append certificates from PEM file: {bad_ca:?}"
        )),
        "{}",
        d.log()
    );
    assert_nothing_made(&d);
    drop(d);
    // A key that is not the certificate's.
    let mut args = certs.server_flags(&["--tlsverify"]);
    args.push(format!("--tlskey={}", certs.path("client-key.pem")));
    let mut d = Daemon::spawn(&[], &cat(&args, &["-H", &tcp]));
    assert_eq!(d.wait_exit(), Some(1));
    assert!(
        d.log()
            .contains("invalid TLS configuration: error reading X509 key pair"),
        "{}",
        d.log()
    );
    assert_nothing_made(&d);
}

/// A network namespace with an interface (one end of a veth pair whose other end is in
/// it too) holding 192.0.2.10 (TEST-NET-1); deleted on drop.
struct NetNs {
    name: String,
}

impl NetNs {
    const ADDR: &'static str = "192.0.2.10";

    fn create() -> Self {
        let name = format!("berth-tls-{}", std::process::id());
        let ip = |args: &[&str]| {
            let mut c = Command::new("ip");
            c.args(args);
            let out = run_with_timeout(c, None, Duration::from_secs(20));
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&["netns", "add", &name]);
        let ns = NetNs { name: name.clone() };
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        // A veth pair with both ends inside (the kernels here have no dummy driver).
        ip(&[
            "-n", &name, "link", "add", "berth0", "type", "veth", "peer", "name", "berth1",
        ]);
        ip(&["-n", &name, "link", "set", "berth1", "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{}/24", Self::ADDR),
            "dev",
            "berth0",
        ]);
        ip(&["-n", &name, "link", "set", "berth0", "up"]);
        ns
    }

    /// A prefix that runs a command in the namespace (only its network).
    fn enter(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            format!("--net=/run/netns/{}", self.name),
            "--".into(),
        ]
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let mut c = Command::new("ip");
        c.args(["netns", "del", &self.name]);
        let _ = run_with_timeout(c, None, Duration::from_secs(20));
    }
}

#[test]
fn plain_tcp_serves_loopback_and_needs_tls_false_anywhere_else() {
    let certs = Certs::make();
    // Loopback without any TLS flag: served, with dockerd's warning.
    let port = free_port();
    let host = format!("--host=tcp://127.0.0.1:{port}");
    let mut d = Daemon::spawn(&[], &strings(&["-H", &host[7..]]));
    d.wait_served();
    for cli in CLIS {
        let (code, out, err) = run(
            cli_cmd(
                cli,
                d.dir.path(),
                &[],
                &strings(&[&host, "version", "--format", "{{.Server.Version}}"]),
                &[],
            ),
            None,
        );
        assert_eq!(
            (code, out.trim()),
            (0, env!("CARGO_PKG_VERSION")),
            "{cli:?}: {err}"
        );
        // A TLS client on a plain port.
        let args = strings(&[
            "--tls",
            &format!("--tlscacert={}", certs.path("ca.pem")),
            &host,
            "ps",
        ]);
        let (code, _, err) = run(cli_cmd(cli, d.dir.path(), &[], &args, &[]), None);
        assert_eq!(code, 1, "{cli:?}: {err}");
        assert!(
            err.contains("http: server gave HTTP response to HTTPS client"),
            "{cli:?}: {err}"
        );
    }
    assert!(
        d.log()
            .contains("Binding to IP address without --tlsverify is insecure"),
        "{}",
        d.log()
    );
    drop(d);

    // Every address (0.0.0.0): refused before anything is made.
    let mut d = Daemon::spawn(
        &[],
        &strings(&["-H", &format!("tcp://0.0.0.0:{}", free_port())]),
    );
    assert_eq!(d.wait_exit(), Some(1));
    assert!(
        d.log()
            .contains("berthd: failed to load listeners: tcp://0.0.0.0:")
            && d.log().contains(INSECURE),
        "{}",
        d.log()
    );
    assert_nothing_made(&d);
    drop(d);

    // A port already taken: after the unix socket was bound, which goes again.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let mut d = Daemon::spawn(&[], &strings(&["-H", &format!("tcp://{addr}")]));
    assert_eq!(d.wait_exit(), Some(1));
    assert!(
        d.log().contains(&format!(
            "berthd: failed to load listeners: listen tcp {addr}: address already in use"
        )),
        "{}",
        d.log()
    );
    assert_nothing_made(&d);
    drop(d);
    drop(taken);

    // An address of an interface (in a namespace made here).
    let ns = NetNs::create();
    let enter_owned = ns.enter();
    let enter: Vec<&str> = enter_owned.iter().map(String::as_str).collect();
    let port = free_port();
    let public = format!("tcp://{}:{port}", NetNs::ADDR);
    let mut d = Daemon::spawn(&enter, &strings(&["-H", &public]));
    assert_eq!(d.wait_exit(), Some(1));
    assert!(
        d.log()
            .contains(&format!("failed to load listeners: {public}: {INSECURE}")),
        "{}",
        d.log()
    );
    assert_nothing_made(&d);
    drop(d);
    // --tls=false says so explicitly: served there.
    let mut d = Daemon::spawn(&enter, &strings(&["-H", &public, "--tls=false"]));
    d.wait_served();
    for cli in CLIS {
        let args = strings(&[
            &format!("--host={public}"),
            "version",
            "--format",
            "{{.Server.Version}}",
        ]);
        let (code, out, err) = run(cli_cmd(cli, d.dir.path(), &enter, &args, &[]), None);
        assert_eq!(
            (code, out.trim()),
            (0, env!("CARGO_PKG_VERSION")),
            "{cli:?}: {err}"
        );
    }
    drop(d);
    drop(ns);
}

/// A group made for the test, deleted on drop.
struct TempGroup {
    name: String,
}

impl TempGroup {
    fn create() -> Self {
        let name = format!("berthtls{}", std::process::id());
        let mut c = Command::new("groupadd");
        c.args(["--system", &name]);
        let out = run_with_timeout(c, None, Duration::from_secs(20));
        assert!(
            out.status.success(),
            "groupadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TempGroup { name }
    }

    fn gid(&self) -> u32 {
        nix::unistd::Group::from_name(&self.name)
            .expect("getgrnam")
            .expect("the group exists")
            .gid
            .as_raw()
    }
}

impl Drop for TempGroup {
    fn drop(&mut self) {
        let mut c = Command::new("groupdel");
        c.arg(&self.name);
        let _ = run_with_timeout(c, None, Duration::from_secs(20));
    }
}

#[test]
fn the_unix_socket_gets_the_group_of_dash_g_mode_0660() {
    let group = TempGroup::create();
    let mut d = Daemon::spawn(&[], &strings(&["-G", &group.name]));
    d.wait_served();
    let m = std::fs::symlink_metadata(d.socket()).expect("socket");
    assert_eq!(
        (m.gid(), m.permissions().mode() & 0o7777),
        (group.gid(), 0o660)
    );
    drop(d);

    // A socket in the (private) exec root, where berthd's default one is: the group
    // passes through the exec root to the socket, cannot list it; others cannot pass.
    let args = strings(&["-G", &group.name, "-H", "unix://{dir}/exec/api.sock"]);
    let mut d = Daemon::spawn(&[], &args);
    d.wait_served();
    let exec = std::fs::metadata(d.dir.path().join("exec")).expect("exec root");
    assert_eq!(
        (exec.gid(), exec.permissions().mode() & 0o7777),
        (group.gid(), 0o710)
    );
    // The test's own temp dir (0700) must let others through to the exec root.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711))
        .expect("chmod temp dir");
    let sock = d.dir.path().join("exec/api.sock");
    let as_nobody = |gid: u32, cli: Cli| {
        let host = format!("--host=unix://{}", sock.display());
        let args = strings(&[&host, "version", "--format", "{{.Server.Version}}"]);
        let regid = format!("--regid={gid}");
        let setpriv = ["setpriv", "--reuid=65534", &regid, "--clear-groups", "--"];
        // A config directory nobody can write.
        let home = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod home");
        let env = [("HOME", home.path().to_string_lossy().into_owned())];
        run(cli_cmd(cli, home.path(), &setpriv, &args, &env), None)
    };
    for cli in CLIS {
        let (code, out, err) = as_nobody(group.gid(), cli);
        assert_eq!(
            (code, out.trim()),
            (0, env!("CARGO_PKG_VERSION")),
            "{cli:?} in the group: {err}"
        );
        let (code, _, err) = as_nobody(65534, cli);
        assert_eq!(code, 1, "{cli:?} outside the group: {err}");
        assert!(
            err.contains(&format!(
                "permission denied while trying to connect to the Docker daemon socket at unix://{}",
                sock.display()
            )),
            "{cli:?} outside the group: {err}"
        );
    }
    drop(d);

    // The default is `docker` when that group exists, else berthd's own (root).
    let mut d = Daemon::spawn(&[], &[]);
    d.wait_served();
    let want = nix::unistd::Group::from_name("docker")
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
        .unwrap_or(0);
    let m = std::fs::symlink_metadata(d.socket()).expect("socket");
    assert_eq!((m.gid(), m.permissions().mode() & 0o7777), (want, 0o660));
    drop(d);

    // A number is taken as a GID, as dockerd takes it.
    let mut d = Daemon::spawn(&[], &strings(&["--group=54321"]));
    d.wait_served();
    assert_eq!(
        std::fs::symlink_metadata(d.socket()).expect("socket").gid(),
        54321
    );
    drop(d);

    // A group that does not exist: dockerd's words, nothing made.
    let missing = format!("{}x", group.name);
    let mut d = Daemon::spawn(&[], &strings(&["-G", &missing]));
    assert_eq!(d.wait_exit(), Some(1));
    assert!(
        d.log().contains(&format!(
            "berthd: failed to load listeners: group {missing} not found"
        )),
        "{}",
        d.log()
    );
    assert_nothing_made(&d);
}
