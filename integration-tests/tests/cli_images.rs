//! The `berth` CLI's image, registry, volume and system commands against a real berthd
//! (and Debian's docker-registry on 127.0.0.1): images, tag, push, rmi, pull, save,
//! load, import, login/logout, volume, info, system prune. Outputs are checked against
//! what the real `docker` CLI reports for the same berthd.

mod containers_support;

use containers_support::Berthd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REG_USER: &str = "berth";
const REG_PASSWORD: &str = "cli-s3cret";

/// Debian's docker-registry on a free loopback port, optionally behind htpasswd; killed
/// by pid on drop.
struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Registry {
    fn start(auth: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cli-registry-")
            .tempdir()
            .expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        if auth {
            let mut c = Command::new("htpasswd");
            c.args(["-Bbn", REG_USER, REG_PASSWORD]);
            let out = containers_support::run_with_timeout(c, None, Duration::from_secs(30));
            assert!(out.status.success(), "htpasswd failed (apache2-utils)");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-cli-test\n    path: {}\n",
                file.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry (apt-get install docker-registry)");
        let r = Self { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not come up: {}",
                std::fs::read_to_string(r.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ID docker reports for an image (full, `sha256:...`).
fn docker_id(d: &Berthd, image: &str) -> String {
    d.ok(&["images", "--no-trunc", "-q", image])
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Asserts that a failed command said one clear line on stderr.
fn one_line_error(err: &str, needle: &str) {
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    assert!(
        lines[0].contains(needle),
        "error {:?} should mention {needle:?}",
        lines[0]
    );
}

/// `berth ARGS` that must fail with exit code 1; its stderr.
fn berth_fails(d: &Berthd, args: &[&str], input: Option<&[u8]>) -> String {
    let (code, out, err) = d.berth(args, input);
    assert_eq!(
        code, 1,
        "berth {args:?}: exit {code}\nstdout: {out}\nstderr: {err}"
    );
    err
}

/// Runs a shell pipeline with berth's environment (`$B` is the berth binary).
fn berth_shell(d: &Berthd, script: &str) -> std::process::Output {
    let b = d.berth_cmd(&[]);
    let mut c = Command::new("sh");
    c.arg("-c").arg(script).env("B", b.get_program());
    for (k, v) in b.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    containers_support::run_with_timeout(c, None, containers_support::COMMAND_TIMEOUT)
}

#[test]
fn images_lists_tags_with_the_ids_docker_reports() {
    let d = Berthd::start();
    let id = docker_id(&d, "busybox:test");
    assert!(id.starts_with("sha256:"), "{id}");

    let out = d.berth_ok(&["images"]);
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0]
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        header,
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{out}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..3], ["busybox", "test", &id[7..19]], "{out}");
    assert!(lines[1].contains(" ago "), "{out}");
    assert!(lines[1].ends_with("MB"), "{out}");

    assert_eq!(d.berth_ok(&["images", "--no-trunc", "-q"]).trim(), id);
    assert_eq!(d.berth_ok(&["images", "-q"]), d.ok(&["images", "-q"]));

    d.berth_ok(&["tag", "busybox:test", "example.com/team/bb:v2"]);
    let out = d.berth_ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    let short = &id[7..19];
    assert_eq!(
        names,
        [
            format!("busybox:test {short}"),
            format!("example.com/team/bb:v2 {short}")
        ],
        "{out}"
    );
    // As docker's own listing of the same daemon.
    let mut docker: Vec<String> = d
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .lines()
        .map(String::from)
        .collect();
    docker.sort();
    assert_eq!(names, docker);

    // A name (or reference filter) narrows the rows to the names that match.
    let out = d.berth_ok(&["images", "busybox"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.contains("busybox") && !out.contains("example.com"),
        "{out}"
    );
    let out = d.berth_ok(&[
        "images",
        "-f",
        "reference=example.com/*/*",
        "--format",
        "{{.Tag}}",
    ]);
    assert_eq!(out, "v2\n");
    assert_eq!(d.berth_ok(&["images", "-f", "dangling=true", "-q"]), "");

    let out = d.berth_ok(&["images", "--format", "json", "busybox:test"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(v["Repository"], "busybox");
    assert_eq!(v["Tag"], "test");
    assert_eq!(v["ID"], short);

    let err = berth_fails(&d, &["images", "-f", "nonsense=1"], None);
    one_line_error(&err, "nonsense");

    // tag of an unknown image: one line, exit 1.
    let err = berth_fails(&d, &["tag", "no-such:image", "x:y"], None);
    one_line_error(&err, "no-such:image");
}

#[test]
fn push_rmi_pull_round_trip_through_a_registry() {
    let reg = Registry::start(false);
    let d = Berthd::start();
    let id = docker_id(&d, "busybox:test");
    let name = format!("{}/cli/bb:v1", reg.host());
    d.berth_ok(&["tag", "busybox:test", &name]);

    // Without a terminal: plain lines, no bars, ending with the digest line.
    let out = d.berth_ok(&["push", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("The push refers to repository [{}/cli/bb]", reg.host()),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    assert!(!out.contains('\r') && !out.contains("[="), "{out}");
    let last = lines.last().copied().unwrap_or("");
    assert!(
        last.starts_with("v1: digest: sha256:") && last.contains(" size: "),
        "{out}"
    );
    let digest = last.split_whitespace().nth(2).unwrap_or("").to_string();

    // rmi of the pushed tag while busybox:test still names the image: the tag and its
    // repository's digest reference go (as dockerd), the image stays.
    let out = d.berth_ok(&["rmi", &name]);
    assert_eq!(
        out,
        format!(
            "Untagged: {name}\nUntagged: {}/cli/bb@{digest}\n",
            reg.host()
        )
    );
    assert_eq!(
        d.berth_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:test\n"
    );
    d.berth_ok(&["tag", "busybox:test", &name]);

    // rmi of every name, by ID: Untagged lines, then the Deleted line.
    let out = d.berth_ok(&["rmi", "-f", &id]);
    assert!(out.contains(&format!("Untagged: {name}\n")), "{out}");
    assert!(out.contains("Untagged: busybox:test\n"), "{out}");
    assert!(out.ends_with(&format!("Deleted: {id}\n")), "{out}");
    assert_eq!(d.berth_ok(&["images", "-q"]), "");

    let out = d.berth_ok(&["pull", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "v1: Pulling from cli/bb", "{out}");
    assert!(out.contains(": Pull complete\n"), "{out}");
    assert!(
        !out.contains("Downloading"),
        "no byte progress off a terminal: {out}"
    );
    assert!(out.contains(&format!("Digest: {digest}\n")), "{out}");
    assert_eq!(
        &lines[lines.len() - 2..],
        [
            format!("Status: Downloaded newer image for {name}"),
            name.clone()
        ],
        "{out}"
    );
    assert_eq!(docker_id(&d, &name), id, "the same image came back");
    let ran = d.ok(&["run", "--rm", "--network", "none", &name, "echo", "pulled"]);
    assert_eq!(ran.trim(), "pulled");

    // Again: up to date; -q names the image only.
    let out = d.berth_ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );
    assert_eq!(d.berth_ok(&["pull", "-q", &name]), format!("{name}\n"));
    // With no tag, latest is meant (and said); the registry has none.
    let (code, out, err) = d.berth(&["pull", &format!("{}/cli/bb", reg.host())], None);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out, "Using default tag: latest\n");
    one_line_error(&err, "latest");

    // Digests are listed once pulled.
    let out = d.berth_ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Digest}}",
        &format!("{}/cli/bb", reg.host()),
    ]);
    assert_eq!(out.trim(), digest);

    // Unknown things: one clear line, exit 1.
    let err = berth_fails(&d, &["pull", &format!("{}/cli/bb:nope", reg.host())], None);
    one_line_error(&err, "nope");
    let err = berth_fails(
        &d,
        &["pull", &format!("{}/cli/absent:v1", reg.host())],
        None,
    );
    one_line_error(&err, "absent");
    let err = berth_fails(&d, &["rmi", "no-such-image:1"], None);
    one_line_error(&err, "No such image: no-such-image:1");
    let err = berth_fails(&d, &["push", "no-such-image:1"], None);
    one_line_error(&err, "does not exist locally with the tag: no-such-image");
    // rmi goes on past a failure and still exits 1.
    d.berth_ok(&["tag", &name, "gone:soon"]);
    let (code, out, err) = d.berth(&["rmi", "no-such-image:2", "gone:soon"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out, "Untagged: gone:soon\n");
    one_line_error(&err, "no-such-image:2");

    // -a: every tag of the repository, both ways.
    let repo = format!("{}/cli/many", reg.host());
    for t in ["a", "b"] {
        d.berth_ok(&["tag", &name, &format!("{repo}:{t}")]);
    }
    let out = d.berth_ok(&["push", "-a", &repo]);
    let digests: Vec<&str> = out.lines().filter(|l| l.contains(": digest: ")).collect();
    assert_eq!(digests.len(), 2, "{out}");
    assert!(
        digests[0].starts_with("a: ") && digests[1].starts_with("b: "),
        "{out}"
    );
    d.berth_ok(&["rmi", &format!("{repo}:a"), &format!("{repo}:b")]);
    let out = d.berth_ok(&["pull", "-a", &repo]);
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {repo}:a\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {repo}:b\n")),
        "{out}"
    );
    assert!(out.ends_with(&format!("\n{repo}\n")), "{out}");
    assert_eq!(
        d.berth_ok(&["images", "--format", "{{.Tag}}", &repo]),
        "a\nb\n"
    );
    let err = berth_fails(&d, &["pull", "-a", &format!("{repo}:a")], None);
    one_line_error(&err, "--all-tags");
}

#[test]
fn save_and_load_restore_an_image() {
    let d = Berthd::start();
    let id = docker_id(&d, "busybox:test");
    let tar = d.dir.path().join("saved.tar");
    d.berth_ok(&["save", "-o", tar.to_str().unwrap(), "busybox:test"]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 100_000);
    d.berth_ok(&["rmi", "busybox:test"]);
    assert_eq!(d.berth_ok(&["images", "-q"]), "");

    let out = d.berth_ok(&["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: busybox:test\n");
    assert_eq!(docker_id(&d, "busybox:test"), id);

    // To stdout, piped into load on stdin (a real shell pipe).
    let out = berth_shell(&d, "\"$B\" save busybox:test | \"$B\" load");
    assert!(
        out.status.success(),
        "save | load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Loaded image: busybox:test\n"
    );
    // The bytes of stdout, loaded on stdin after the image is gone.
    let saved = containers_support::run_with_timeout(
        d.berth_cmd(&["save", "busybox:test"]),
        None,
        containers_support::COMMAND_TIMEOUT,
    );
    assert!(saved.status.success());
    assert_eq!(
        saved.stdout,
        std::fs::read(&tar).unwrap(),
        "stdout is the same archive as -o"
    );
    d.berth_ok(&["rmi", "busybox:test"]);
    let (code, out, err) = d.berth(&["load", "-q"], Some(&saved.stdout));
    assert_eq!(
        (code, out.as_str()),
        (0, "Loaded image: busybox:test\n"),
        "{err}"
    );
    assert_eq!(docker_id(&d, "busybox:test"), id);
    let ran = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox:test",
        "echo",
        "loaded",
    ]);
    assert_eq!(ran.trim(), "loaded");

    // Refused on a terminal (as docker), and nothing half-written for unknown images.
    assert!(
        Path::new("/usr/bin/script").exists(),
        "script(1) is needed for terminal tests: apt-get install bsdutils"
    );
    {
        let b = d.berth_cmd(&[]);
        let mut c = Command::new("script");
        c.args([
            "-qec",
            &format!("{} save busybox:test", b.get_program().to_string_lossy()),
            "/dev/null",
        ]);
        for (k, v) in b.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        let out =
            containers_support::run_with_timeout(c, None, containers_support::COMMAND_TIMEOUT);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("cowardly refusing to save to a terminal"),
            "{text}"
        );
        assert!(text.len() < 1000, "no archive on the terminal");
    }
    let bad = d.dir.path().join("bad.tar");
    let err = berth_fails(
        &d,
        &["save", "-o", bad.to_str().unwrap(), "no-such:image"],
        None,
    );
    one_line_error(&err, "no-such:image");
    assert!(!bad.exists());
    let leftovers: Vec<_> = std::fs::read_dir(d.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A broken archive: one line, exit 1, image store unchanged. berthd answers 200 with
    // the error in the stream, as dockerd (issue 11): the daemon's own words.
    let err = berth_fails(&d, &["load"], Some(b"this is not a tar archive at all"));
    one_line_error(&err, "invalid archive");
    assert_eq!(d.berth_ok(&["images", "-q", "--no-trunc"]).trim(), id);
}

#[test]
fn import_from_stdin_with_changes_makes_a_runnable_image() {
    let d = Berthd::start();
    let tar = containers_support::busybox_tar();
    let (code, out, err) = d.berth(
        &[
            "import",
            "-c",
            r#"CMD ["echo","hi"]"#,
            "-m",
            "from the cli",
            "-",
            "imported:v1",
        ],
        Some(&tar),
    );
    assert_eq!(code, 0, "{err}");
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    assert_eq!(docker_id(&d, "imported:v1"), id);
    let ran = d.ok(&["run", "--rm", "--network", "none", "imported:v1"]);
    assert_eq!(ran.trim(), "hi");
    let history = d.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.Comment}}",
        "imported:v1",
    ]);
    assert!(history.contains("from the cli"), "{history}");

    // From a file, untagged: listed as <none>.
    let file = d.dir.path().join("rootfs.tar");
    let out = d.berth_ok(&["import", file.to_str().unwrap()]);
    let id2 = out.trim().to_string();
    let rows = d.berth_ok(&[
        "images",
        "-f",
        "dangling=true",
        "--no-trunc",
        "--format",
        "{{.Repository}} {{.Tag}} {{.ID}}",
    ]);
    assert_eq!(rows, format!("<none> <none> {id2}\n"));

    let err = berth_fails(&d, &["import", "/no/such/file.tar"], None);
    one_line_error(&err, "/no/such/file.tar");
    let err = berth_fails(&d, &["import", "-", "bad:v1"], Some(b"not a tarball"));
    one_line_error(&err, "Error response from daemon");
}

#[test]
fn login_saves_credentials_that_pull_and_push_send() {
    let reg = Registry::start(true);
    let d = Berthd::start();
    let name = format!("{}/private/bb:v1", reg.host());
    d.berth_ok(&["tag", "busybox:test", &name]);
    let config_dir = d.dir.path().join("berth-config");
    let config = config_dir.join("config.json");

    // No credentials: the registry refuses, one line, exit 1.
    let err = berth_fails(&d, &["push", &name], None);
    one_line_error(&err, "authentication required");

    // Credentials only in the CLI's config (berthd never saw them): sent with the push.
    std::fs::create_dir_all(&config_dir).unwrap();
    let auth = base64_encode(format!("{REG_USER}:{REG_PASSWORD}").as_bytes());
    std::fs::write(
        &config,
        format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let out = d.berth_ok(&["push", &name]);
    assert!(
        out.lines()
            .last()
            .unwrap_or("")
            .starts_with("v1: digest: sha256:"),
        "{out}"
    );
    d.berth_ok(&["rmi", &name]);
    let out = d.berth_ok(&["pull", "-q", &name]);
    assert_eq!(out, format!("{name}\n"));

    // Logout forgets them: the push is refused again.
    let out = d.berth_ok(&["logout", &reg.host()]);
    assert_eq!(
        out,
        format!("Removing login credentials for {}\n", reg.host())
    );
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(cfg["auths"].get(reg.host()).is_none(), "{cfg}");
    berth_fails(&d, &["push", &name], None);
    assert_eq!(
        d.berth_ok(&["logout", &reg.host()]),
        format!("Not logged in to {}\n", reg.host())
    );

    // A wrong password: refused, nothing saved.
    std::fs::remove_file(&config).unwrap();
    let err = berth_fails(
        &d,
        &["login", "-u", REG_USER, "--password-stdin", &reg.host()],
        Some(b"wrong-password\n"),
    );
    one_line_error(&err, "401 Unauthorized");
    assert!(!config.exists());
    let err = berth_fails(
        &d,
        &["login", "--password-stdin", &reg.host()],
        Some(b"x\n"),
    );
    one_line_error(&err, "--username");

    // The right one: saved 0600, docker's format, and the push goes through.
    let (code, out, err) = d.berth(
        &["login", "-u", REG_USER, "--password-stdin", &reg.host()],
        Some(format!("{REG_PASSWORD}\n").as_bytes()),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Login Succeeded\n");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config.json mode {mode:o}");
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(cfg["auths"][reg.host()]["auth"], auth.as_str(), "{cfg}");
    let out = d.berth_ok(&["push", &name]);
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    // -p works too, with docker's warning.
    let (code, out, err) = d.berth(
        &["login", "-u", REG_USER, "-p", REG_PASSWORD, &reg.host()],
        None,
    );
    assert_eq!((code, out.as_str()), (0, "Login Succeeded\n"), "{err}");
    assert!(err.contains("--password-stdin"), "{err}");
}

/// Standard base64, for writing a config.json by hand.
fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn volumes_create_list_inspect_remove_and_prune() {
    let d = Berthd::start();
    assert_eq!(
        d.berth_ok(&["volume", "create", "--label", "team=cli", "named"]),
        "named\n"
    );
    let anon = d.berth_ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64, "{anon}");

    let out = d.berth_ok(&["volume", "ls"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["local", "named"]),
        "{out}"
    );
    assert!(out.contains(&anon), "{out}");
    assert_eq!(
        d.berth_ok(&["volume", "ls", "-q", "-f", "label=team=cli"]),
        "named\n"
    );
    assert_eq!(
        d.berth_ok(&["volume", "ls", "-q", "-f", "name=nam"]),
        "named\n"
    );
    let docker_ls = d.ok(&["volume", "ls", "-q"]);
    assert_eq!(d.berth_ok(&["volume", "ls", "-q"]), docker_ls);

    let out = d.berth_ok(&["volume", "inspect", "named"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON array");
    assert_eq!(v[0]["Name"], "named");
    assert_eq!(v[0]["Labels"]["team"], "cli");
    let mountpoint = d.berth_ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "named"]);
    assert!(Path::new(mountpoint.trim()).is_dir(), "{mountpoint}");
    let (code, out, err) = d.berth(
        &["volume", "inspect", "-f", "{{.Name}}", "named", "ghost"],
        None,
    );
    assert_eq!((code, out.as_str()), (1, "named\n"));
    one_line_error(&err, "ghost");

    // In use: refused with the reason; the dangling filter tells them apart.
    d.ok(&[
        "create",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "named:/data",
        "busybox:test",
        "true",
    ]);
    let err = berth_fails(&d, &["volume", "rm", "named"], None);
    one_line_error(&err, "volume is in use");
    assert_eq!(
        d.berth_ok(&["volume", "ls", "-q", "-f", "dangling=true"]),
        format!("{anon}\n")
    );
    assert_eq!(
        d.berth_ok(&["volume", "ls", "-q", "-f", "dangling=false"]),
        "named\n"
    );
    let err = berth_fails(&d, &["volume", "rm", "ghost"], None);
    one_line_error(&err, "no such volume");
    assert_eq!(d.berth_ok(&["volume", "rm", "-f", "ghost"]), "");

    // prune asks first; "n" keeps everything.
    let (code, out, _) = d.berth(&["volume", "prune"], Some(b"n\n"));
    assert_eq!(code, 0);
    assert!(
        out.contains("Are you sure you want to continue? [y/N]"),
        "{out}"
    );
    assert!(d.berth_ok(&["volume", "ls", "-q"]).contains(&anon));
    // Anonymous unused ones only, then (-a) every unused one.
    let out = d.berth_ok(&["volume", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 0B\n")
    );
    assert_eq!(
        d.berth_ok(&["volume", "prune", "-f", "-a"]),
        "Total reclaimed space: 0B\n"
    );
    assert_eq!(d.berth_ok(&["volume", "ls", "-q"]), "named\n");
    d.ok(&["rm", "user"]);
    assert_eq!(d.berth_ok(&["volume", "rm", "named"]), "named\n");
    assert_eq!(d.berth_ok(&["volume", "ls", "-q"]), "");
}

#[test]
fn info_and_system_prune() {
    let d = Berthd::start();
    let version = d
        .ok(&["version", "--format", "{{.Server.Version}}"])
        .trim()
        .to_string();
    let out = d.berth_ok(&["info"]);
    assert!(
        out.contains(&format!(" Server Version: {version}\n")),
        "{out}"
    );
    assert!(out.contains(" Images: 1\n"), "{out}");
    assert!(out.contains(" Storage Driver: "), "{out}");
    assert!(out.contains(" CPUs: "), "{out}");
    assert!(
        out.contains(&format!(
            " Docker Root Dir: {}\n",
            d.dir.path().join("data").display()
        )),
        "{out}"
    );
    assert_eq!(
        d.berth_ok(&["info", "-f", "{{.ServerVersion}}"]).trim(),
        version
    );
    assert_eq!(
        d.berth_ok(&["system", "info", "--format", "{{.Images}}"]),
        "1\n"
    );

    let stopped = d.ok(&[
        "run",
        "--name",
        "stopped",
        "--network",
        "none",
        "busybox:test",
        "true",
    ]);
    assert_eq!(stopped, "");
    let id = d.inspect("stopped", "{{.Id}}");
    let out = d.berth_ok(&["info"]);
    assert!(
        out.contains(" Containers: 1\n  Running: 0\n  Paused: 0\n  Stopped: 1\n"),
        "{out}"
    );

    // Asked and refused: nothing removed.
    let (code, out, _) = d.berth(&["system", "prune"], Some(b"n\n"));
    assert_eq!(code, 0);
    assert!(out.contains("  - all stopped containers\n"), "{out}");
    assert_eq!(d.ok(&["ps", "-aq", "--no-trunc"]).trim(), id);

    // -f: the stopped container goes; the tagged image stays; a dangling one goes.
    let dangling = d
        .berth(&["import", "-"], Some(&containers_support::busybox_tar()))
        .1
        .trim()
        .to_string();
    assert!(dangling.starts_with("sha256:"), "{dangling}");
    d.berth_ok(&["volume", "create"]);
    let out = d.berth_ok(&["system", "prune", "-f", "--volumes"]);
    assert!(
        out.starts_with(&format!("Deleted Containers:\n{id}\n\n")),
        "{out}"
    );
    assert!(out.contains("Deleted Volumes:\n"), "{out}");
    assert!(out.contains(&format!("deleted: {dangling}\n")), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap_or("")
            .starts_with("Total reclaimed space: "),
        "{out}"
    );
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert_eq!(d.berth_ok(&["volume", "ls", "-q"]), "");
    assert_eq!(
        d.berth_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:test\n"
    );

    // -a: images no container uses go too.
    let out = d.berth_ok(&["system", "prune", "-f", "-a"]);
    assert!(out.contains("untagged: busybox:test\n"), "{out}");
    assert_eq!(d.berth_ok(&["images", "-q"]), "");

    // Disk usage: berthd serves it now, and berth prints it as docker does.
    assert_eq!(d.berth_ok(&["system", "df"]), d.ok(&["system", "df"]));
}

/// `berth ARGS` on a pseudo-terminal (util-linux `script`): exit code and what the
/// terminal showed.
fn berth_on_terminal(d: &Berthd, args: &[&str]) -> (i32, String) {
    let b = d.berth_cmd(&[]);
    let mut line = b.get_program().to_string_lossy().into_owned();
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    for (k, v) in b.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let out = containers_support::run_with_timeout(c, None, containers_support::COMMAND_TIMEOUT);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn progress_on_a_terminal_is_drawn_in_place_and_errors_end_it() {
    assert!(
        Path::new("/usr/bin/script").exists(),
        "script(1) is needed for terminal tests: apt-get install bsdutils"
    );
    let reg = Registry::start(false);
    let d = Berthd::start();
    let id = docker_id(&d, "busybox:test");
    let name = format!("{}/tty/bb:v1", reg.host());
    d.berth_ok(&["tag", "busybox:test", &name]);
    let (code, out) = berth_on_terminal(&d, &["push", &name]);
    assert_eq!(code, 0, "{out}");
    // Layer lines are redrawn in place (carriage return, erase line), then left as
    // plain lines with their last status before the digest line.
    assert!(out.contains("\r\x1b[2K"), "{out:?}");
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert!(lines.iter().any(|l| l.ends_with(": Pushed")), "{out:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("v1: digest: sha256:")),
        "{out:?}"
    );

    d.berth_ok(&["rmi", "-f", &id]);
    let (code, out) = berth_on_terminal(&d, &["pull", &name]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\r\x1b[2K"), "{out:?}");
    let tail: Vec<&str> = out.trim_end().rsplit("\r\n").take(3).collect();
    assert_eq!(tail[0], name, "{out:?}");
    assert_eq!(
        tail[1],
        format!("Status: Downloaded newer image for {name}"),
        "{out:?}"
    );
    assert!(tail[2].starts_with("Digest: sha256:"), "{out:?}");
    assert!(out.contains(": Pull complete\r\n"), "{out:?}");
    assert_eq!(docker_id(&d, &name), id);

    // An error inside the stream (the registry refuses the upload) ends it: exit 1.
    let auth_reg = Registry::start(true);
    let private = format!("{}/tty/bb:v1", auth_reg.host());
    d.berth_ok(&["tag", &name, &private]);
    let (code, out) = berth_on_terminal(&d, &["push", &private]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("berth: ") && out.contains("authentication required"),
        "{out:?}"
    );
}
