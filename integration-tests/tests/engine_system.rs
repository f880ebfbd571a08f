//! berthd's system-wide endpoints and the filters around them, checked with the real
//! docker CLI (and `berth` where it has the command) as dockerd answers them: disk usage
//! (`system df`), prune filters and reclaimed space, `ps`/`images` filters, exec events,
//! `pull --platform` of a single-platform image, and the local volume driver's options.

mod containers_support;

use containers_support::Berthd;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMG: &str = "busybox:test";

/// `GET PATH` on berthd's socket (curl), as JSON.
fn api(d: &Berthd, path: &str) -> Value {
    let mut c = Command::new("curl");
    c.args(["-sf", "--unix-socket"])
        .arg(&d.socket)
        .arg(format!("http://localhost{path}"));
    let out = containers_support::run_with_timeout(c, None, Duration::from_secs(60));
    assert!(out.status.success(), "curl {path} failed");
    serde_json::from_slice(&out.stdout).expect("a JSON answer")
}

/// Runs a container that exits at once (`sh -c SCRIPT`), with extra flags.
fn run_script(d: &Berthd, flags: &[&str], script: &str) {
    let mut args = vec!["run", "--network", "none"];
    args.extend(flags);
    args.extend([IMG, "sh", "-c", script]);
    d.ok(&args);
}

/// Names listed by `docker ps -a --filter F...` (one a line, sorted).
fn ps_names(d: &Berthd, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
    for f in filters {
        args.extend(["--filter", f]);
    }
    let mut v: Vec<String> = d.ok(&args).lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn system_df_measures_the_stores_and_prints_as_docker() {
    let d = Berthd::start();
    // A second image on the same layer: both share all of it.
    let tar = d.dir.path().join("rootfs.tar");
    d.ok(&[
        "import",
        "-c",
        "CMD [\"sh\"]",
        tar.to_str().unwrap_or_default(),
        "busybox:shared",
    ]);
    d.ok(&["volume", "create", "dfvol"]);
    run_script(
        &d,
        &["--name", "dfc", "-v", "dfvol:/data"],
        "head -c 100000 /dev/zero > /data/f; head -c 200000 /dev/zero > /big",
    );

    let v = api(&d, "/system/df");
    assert_eq!(v["BuildCache"], serde_json::json!([]), "{v}");
    let images = v["Images"].as_array().expect("Images");
    assert_eq!(images.len(), 2, "{v}");
    let test_img = images
        .iter()
        .find(|i| i["RepoTags"][0] == IMG)
        .expect("busybox:test listed");
    let shared_img = images
        .iter()
        .find(|i| i["RepoTags"][0] == "busybox:shared")
        .expect("busybox:shared listed");
    let size = test_img["Size"].as_i64().unwrap_or(0);
    assert!(size > 100_000, "{v}");
    // One layer on disk, used by both images: all of each image is shared.
    assert_eq!(v["LayersSize"].as_i64(), Some(size), "{v}");
    assert_eq!(test_img["SharedSize"].as_i64(), Some(size), "{v}");
    assert_eq!(shared_img["SharedSize"].as_i64(), Some(size), "{v}");
    assert_eq!(test_img["Containers"], 1, "{v}");
    assert_eq!(shared_img["Containers"], 0, "{v}");

    let c = &v["Containers"][0];
    assert_eq!(c["Names"][0], "/dfc", "{v}");
    let rw = c["SizeRw"].as_i64().unwrap_or(0);
    // The file it wrote, plus the little the engine puts in every upper dir.
    assert!((200_000..210_000).contains(&rw), "SizeRw {rw}: {v}");
    assert_eq!(c["SizeRootFs"].as_i64(), Some(rw + size), "{v}");

    let vol = v["Volumes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["Name"] == "dfvol"))
        .expect("dfvol listed");
    assert_eq!(vol["UsageData"]["Size"], 100_000, "{v}");
    assert_eq!(vol["UsageData"]["RefCount"], 1, "{v}");

    // `type=` narrows the answer.
    let only = api(&d, "/system/df?type=volume");
    assert!(
        only.get("Images").is_none() && only["Volumes"].is_array(),
        "{only}"
    );

    // Our CLI prints what docker prints for the same answer.
    let docker = d.ok(&["system", "df"]);
    assert_eq!(d.berth_ok(&["system", "df"]), docker);
    let lines: Vec<&str> = docker.lines().collect();
    assert!(lines[0].starts_with("TYPE "), "{docker}");
    assert!(
        lines[1].starts_with("Images ") && lines[1].contains(" 2 "),
        "{docker}"
    );
    assert!(
        lines[3].starts_with("Local Volumes ") && lines[3].contains("100kB"),
        "{docker}"
    );
    assert!(lines[4].starts_with("Build Cache "), "{docker}");
    assert_eq!(
        d.berth_ok(&["system", "df", "--format", "json"]),
        d.ok(&["system", "df", "--format", "json"])
    );
    // The tables show ages, which tick: a pair taken across a second boundary may
    // differ there, so a few tries.
    let (mut verbose, mut ours) = (String::new(), String::new());
    for _ in 0..3 {
        verbose = d.ok(&["system", "df", "-v"]);
        ours = d.berth_ok(&["system", "df", "-v"]);
        if ours == verbose {
            break;
        }
    }
    assert_eq!(ours, verbose);
    assert!(
        verbose
            .lines()
            .any(|l| l.starts_with("dfvol ") && l.ends_with("100kB")),
        "{verbose}"
    );
    assert!(
        verbose
            .lines()
            .any(|l| l.contains("dfc") && l.contains("200kB")),
        "{verbose}"
    );
}

#[test]
fn prune_filters_and_reclaimed_space() {
    let d = Berthd::start();
    let write = "head -c 50000 /dev/zero > /f";
    run_script(&d, &["--name", "keep1", "--label", "keep=1"], write);
    run_script(&d, &["--name", "keep0", "--label", "keep=0"], write);
    run_script(&d, &["--name", "plain"], write);

    let err = d.err(&["container", "prune", "-f", "--filter", "name=x"]);
    assert!(err.contains("invalid filter 'name'"), "{err}");

    let out = d.ok(&["container", "prune", "-f", "--filter", "label=keep=1"]);
    assert!(out.contains("Total reclaimed space: 50kB"), "{out}");
    assert_eq!(ps_names(&d, &[]), ["keep0", "plain"]);

    // label! keeps what carries the label; the berth CLI passes filters through too.
    let out = d.berth_ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert!(out.contains("Total reclaimed space: 50kB"), "{out}");
    assert_eq!(ps_names(&d, &[]), ["keep0"]);

    // until: only what was created before it.
    let out = d.ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert!(out.contains("Total reclaimed space: 0B"), "{out}");
    assert_eq!(ps_names(&d, &[]), ["keep0"]);
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs() + 3600)
        .unwrap_or(0)
        .to_string();
    let until = format!("until={later}");
    let out = d.berth_ok(&["system", "prune", "-f", "--filter", &until]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(ps_names(&d, &[]).is_empty());
    let err = d.berth_err(&["system", "prune", "-f", "--volumes", "--filter", &until]);
    assert!(err.contains("\"until\" filter is not supported"), "{err}");

    // Volume prune counts the bytes it freed.
    d.ok(&["volume", "create", "pv"]);
    run_script(
        &d,
        &["--rm", "-v", "pv:/data"],
        "head -c 30000 /dev/zero > /data/f",
    );
    let out = d.ok(&["volume", "prune", "-af"]);
    assert!(out.contains("pv"), "{out}");
    assert!(out.contains("Total reclaimed space: 30kB"), "{out}");
}

#[test]
fn ps_and_images_filters_as_dockerd() {
    let d = Berthd::start();
    for n in ["xx", "xxy", "yxx"] {
        d.ok(&["create", "--network", "none", "--name", n, IMG, "true"]);
        // Creation times must differ for before/since.
        std::thread::sleep(Duration::from_millis(20));
    }
    // Names are regular expressions, matched against `/NAME` and `NAME`.
    assert_eq!(ps_names(&d, &["name=^xx$"]), ["xx"]);
    assert_eq!(ps_names(&d, &["name=^/xx"]), ["xx", "xxy"]);
    assert_eq!(ps_names(&d, &["name=x"]), ["xx", "xxy", "yxx"]);
    assert_eq!(ps_names(&d, &["name=y$"]), ["xxy"]);
    assert_eq!(ps_names(&d, &["before=xxy"]), ["xx"]);
    assert_eq!(ps_names(&d, &["since=xxy"]), ["yxx"]);
    let err = d.err(&["ps", "-a", "--filter", "before=nothere"]);
    assert!(err.contains("No such container: nothere"), "{err}");

    let (code, _, _) = d.run(
        &[
            "run",
            "--network",
            "none",
            "--name",
            "e3",
            IMG,
            "sh",
            "-c",
            "exit 3",
        ],
        None,
    );
    assert_eq!(code, 3);
    run_script(&d, &["--name", "e0", "-v", "vf:/mnt/vf"], "exit 0");
    assert_eq!(ps_names(&d, &["exited=3"]), ["e3"]);
    // xx, xxy and yxx were never started: they have no exit code to match.
    assert_eq!(ps_names(&d, &["exited=0"]), ["e0"]);
    assert_eq!(ps_names(&d, &["volume=vf"]), ["e0"]);
    assert_eq!(ps_names(&d, &["volume=/mnt/vf"]), ["e0"]);
    let err = d.err(&["ps", "--filter", "exited=x"]);
    assert!(err.contains("invalid syntax"), "{err}");

    let err = d.err(&["images", "-f", "dangling=maybe"]);
    assert!(err.contains("Invalid filter 'dangling=[maybe]'"), "{err}");
    // before/since: by the images' creation times.
    let tar = d.dir.path().join("rootfs.tar");
    std::thread::sleep(Duration::from_millis(1100));
    d.ok(&["import", tar.to_str().unwrap_or_default(), "busybox:newer"]);
    let since = d.ok(&["images", "-f", "since=busybox:test", "--format", "{{.Tag}}"]);
    assert_eq!(since.trim(), "newer");
    let before = d.ok(&[
        "images",
        "-f",
        "before=busybox:newer",
        "--format",
        "{{.Tag}}",
    ]);
    assert_eq!(before.trim(), "test");
}

#[test]
fn exec_events_as_dockerd() {
    let d = Berthd::start();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs())
        .unwrap_or(0);
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ev",
        IMG,
        "sleep",
        "60",
    ]);
    let (code, _, _) = d.run(&["exec", "ev", "sh", "-c", "exit 3"], None);
    assert_eq!(code, 3);
    d.ok(&["exec", "ev", "true"]);
    let events = |name: &str| {
        let until = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.as_secs() + 1)
            .unwrap_or(0);
        d.ok(&[
            "events",
            "--since",
            &start.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{.Action}}|{{.Actor.Attributes.execID}}|{{.Actor.Attributes.exitCode}}|{{.Actor.Attributes.name}}",
        ])
    };
    let out = events("ev");
    let execs: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.starts_with("exec_"))
        .map(|l| l.split('|').collect())
        .collect();
    assert_eq!(execs.len(), 6, "{out}");
    assert_eq!(execs[0][0], "exec_create: sh -c exit 3", "{out}");
    assert_eq!(execs[1][0], "exec_start: sh -c exit 3", "{out}");
    assert_eq!(execs[2][0], "exec_die", "{out}");
    assert_eq!(execs[2][2], "3", "{out}");
    // One exec's three events share its ID; a command without arguments keeps the
    // space dockerd leaves after the program.
    assert!(
        execs[0][1].len() == 64 && execs[0][1] == execs[2][1],
        "{out}"
    );
    assert_eq!(execs[0][3], "ev", "{out}");
    assert_eq!(execs[3][0], "exec_create: true ", "{out}");
    assert_eq!(execs[5][2], "0", "{out}");
    // `event=exec_start` matches `exec_start: ...` actions (dockerd's fuzzy three).
    let until = start + 600;
    let mut c = d.cmd(&[
        "events",
        "--since",
        &start.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "event=exec_start",
        "--format",
        "{{.Action}}",
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let child = c.spawn().expect("docker events");
    let listed = read_lines_for(child, 2, Duration::from_secs(20));
    assert_eq!(
        listed,
        ["exec_start: sh -c exit 3", "exec_start: true "],
        "{listed:?}"
    );

    // Health probes are execs too.
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "hc",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        IMG,
        "sleep",
        "60",
    ]);
    d.wait_until("healthy", Duration::from_secs(30), || {
        d.inspect("hc", "{{.State.Health.Status}}") == "healthy"
    });
    let out = events("hc");
    assert!(
        out.lines()
            .any(|l| l.starts_with("exec_create: /bin/sh -c true|")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("exec_die|")), "{out}");
    d.ok(&["rm", "-f", "ev", "hc"]);
}

/// The first `n` lines a child prints (bounded in time); the child is killed after.
fn read_lines_for(mut child: Child, n: usize, timeout: Duration) -> Vec<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => out.push(l),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    out
}

/// Debian's docker-registry on a free loopback port; killed by pid on drop.
struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Registry {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sys-registry-")
            .tempdir()
            .expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
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
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pull_of_another_platform_warns_as_dockerd() {
    let reg = Registry::start();
    let d = Berthd::start();
    let repo = format!("127.0.0.1:{}/sys/bb", reg.port);
    let name = format!("{repo}:v1");
    d.ok(&["tag", IMG, &name]);
    d.ok(&["push", &name]);
    d.ok(&["rmi", &name]);
    // A single-platform image is kept, with dockerd's (20.10.7+) warning.
    let (code, out, err) = d.run(&["pull", "--platform", "linux/arm64", &name], None);
    assert_eq!(code, 0, "{out}{err}");
    let arch = d.inspect(IMG, "{{.Os}}/{{.Architecture}}");
    assert!(
        out.contains(&format!(
            "WARNING: image with reference {repo} was found but does not match the specified platform: wanted linux/arm64, actual: {arch}"
        )),
        "{out}"
    );
    // Asking for its own platform: no warning.
    d.ok(&["rmi", &name]);
    let out = d.ok(&["pull", "--platform", &arch, &name]);
    assert!(!out.contains("WARNING"), "{out}");
}

#[test]
fn local_volume_options_mount_tmpfs_and_bind() {
    let d = Berthd::start();
    // dockerd's words (20.10 and later): `invalid option`, `missing required option`.
    let err = d.err(&["volume", "create", "-o", "x=1", "badopt"]);
    assert!(
        err.contains("create badopt: invalid option: \"x\""),
        "{err}"
    );
    let err = d.err(&["volume", "create", "-o", "o=size=1m", "badopt"]);
    assert!(err.contains("missing required option: \"device\""), "{err}");
    let err = d.err(&["volume", "create", "-o", "size=1m", "badopt"]);
    assert!(
        err.contains("quota size requested but no quota support"),
        "{err}"
    );
    assert!(d
        .err(&["volume", "inspect", "badopt"])
        .contains("no such volume"));

    d.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=10m",
        "tv",
    ]);
    let opts = d.ok(&["volume", "inspect", "-f", "{{json .Options}}", "tv"]);
    assert_eq!(
        opts.trim(),
        r#"{"device":"tmpfs","o":"size=10m","type":"tmpfs"}"#
    );
    let mounts = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "tv:/t",
        IMG,
        "sh",
        "-c",
        "grep ' /t ' /proc/mounts",
    ]);
    assert!(mounts.starts_with("tmpfs /t tmpfs "), "{mounts}");
    assert!(mounts.contains("size=10240k"), "{mounts}");
    // Unmounted once no container uses it: the data dir is empty again.
    let mountpoint = d.inspect("tv", "{{.Mountpoint}}");
    d.wait_until("tmpfs volume unmounted", Duration::from_secs(10), || {
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .contains(&format!(" {mountpoint} "))
    });

    let host = d.dir.path().join("bind-target");
    std::fs::create_dir_all(&host).expect("host dir");
    let dev = format!("device={}", host.display());
    d.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &dev,
        "bv",
    ]);
    run_script(&d, &["--rm", "-v", "bv:/b"], "echo through > /b/written");
    assert_eq!(
        std::fs::read_to_string(host.join("written")).unwrap_or_default(),
        "through\n"
    );
    // Removing the volume unmounts it and leaves the host's files alone.
    d.ok(&["volume", "rm", "bv", "tv"]);
    assert!(host.join("written").is_file());
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "");
}
