//! berthd as dockerd behaves, found wrong when tried as a new user would (issue 11) and
//! checked here with the real docker CLI, side by side with dockerd 20.10 when it is
//! installed (the same commands, the same words): HOME and groups, exec's exit codes and
//! refusals, a terminal from exec create, limits refused at create, log drivers,
//! namespaced sysctls, OOM kills, `restarting` after wait. Then what only berthd's API
//! is checked for: refusals that store nothing, 413, `docker load`'s error in the
//! stream, links, realtime CPU fields, image volumes from the docker CLI, and `docker
//! cp` inside the volumes of a stopped container.

mod containers_support;
#[allow(unused_imports)]
mod engine_support;

use containers_support::{busybox_tar, run_with_timeout, Berthd, COMMAND_TIMEOUT};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const IMG: &str = "parity:1";

/// busybox with a user `u` (home /home/u, also in group `extra`).
fn image_tar() -> Vec<u8> {
    let src = busybox_tar();
    let mut a = tar::Archive::new(&src[..]);
    let mut b = tar::Builder::new(Vec::new());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut h = e.header().clone();
        let replaced: Option<&[u8]> = match path.as_str() {
            "etc/passwd" => Some(
                b"root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000:u:/home/u:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
            ),
            "etc/group" => Some(b"root:x:0:\nu:x:1000:\nextra:x:2000:u\nnogroup:x:65534:\n"),
            _ => None,
        };
        match replaced {
            Some(data) => {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, data).unwrap();
            }
            None => {
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                b.append(&h, &data[..]).unwrap();
            }
        }
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, "home/u", std::io::empty()).unwrap();
    b.into_inner().unwrap()
}

/// A `docker save` archive of busybox declaring `VOLUME /data`, with a file there.
fn volume_image(tag: &str) -> Vec<u8> {
    use sha2::Digest;
    let src = busybox_tar();
    let mut a = tar::Archive::new(&src[..]);
    let mut b = tar::Builder::new(Vec::new());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        b.append(&h, &data[..]).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(5);
    b.append_data(&mut h, "data/seed", &b"seed\n"[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let hex: String = sha2::Sha256::digest(&layer)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sleep", "300"], "Volumes": {"/data": {}}},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{hex}")]},
    })
    .to_string();
    let manifest =
        json!([{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}]).to_string();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("layer.tar", &layer[..]),
        ("config.json", config.as_bytes()),
        ("manifest.json", manifest.as_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An engine the docker CLI talks to: berthd or dockerd.
struct Engine {
    name: &'static str,
    socket: PathBuf,
    config: PathBuf,
}

impl Engine {
    fn of_berthd(d: &Berthd) -> Self {
        Self {
            name: "berthd",
            socket: d.socket.clone(),
            config: d.dir.path().join("docker-config"),
        }
    }

    fn of_dockerd(d: &engine_support::Dockerd) -> Self {
        let config = d.dir.path().join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        Self {
            name: "dockerd",
            socket: d.socket.clone(),
            config,
        }
    }

    fn run(&self, args: &[&str], input: Option<&[u8]>) -> (i32, String, String) {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.config)
            .env_remove("DOCKER_CONTEXT")
            .args(args);
        let out = run_with_timeout(c, input, COMMAND_TIMEOUT);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, None);
        assert_eq!(code, 0, "{}: docker {args:?}: {out}{err}", self.name);
        out
    }

    /// The stderr of a command that must fail.
    fn err(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, None);
        assert_ne!(code, 0, "{}: docker {args:?} succeeded: {out}", self.name);
        err
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_string()
    }

    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "{}: {what}: not in 60 s",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One HTTP/1.0 request over the socket: (status, body).
    fn http(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
        http(&self.socket, method, path, body)
    }
}

fn http(socket: &Path, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Vec<u8>) {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(COMMAND_TIMEOUT)).ok();
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send head");
    s.write_all(body).expect("send body (not reset)");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let status = String::from_utf8_lossy(&raw[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, raw[split + 4..].to_vec())
}

fn message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body).map_or_else(
        |_| String::from_utf8_lossy(body).into_owned(),
        |v| v["message"].as_str().unwrap_or("").to_string(),
    )
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The checks run against each engine.
fn behaves_as_dockerd(e: &Engine) {
    let (code, _, err) = e.run(&["import", "-", IMG], Some(&image_tar()));
    assert_eq!(code, 0, "{}: import: {err}", e.name);
    let run = |extra: &[&str], cmd: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(extra);
        a.push(IMG);
        a.extend_from_slice(cmd);
        e.ok(&a)
    };
    // HOME from passwd for a named user; its groups; --group-add applied.
    assert_eq!(
        run(&["-u", "u"], &["sh", "-c", "echo $HOME; id -G"]),
        "/home/u\n1000 2000\n"
    );
    assert_eq!(run(&[], &["sh", "-c", "echo $HOME"]), "/root\n");
    assert_eq!(
        run(
            &["--group-add", "extra", "--group-add", "4000"],
            &["id", "-G"]
        ),
        "0 2000 4000\n"
    );
    let err = e.err(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--group-add",
        "nope",
        IMG,
        "true",
    ]);
    assert!(
        err.contains("Unable to find group nope: no matching entries in group file"),
        "{}: {err}",
        e.name
    );

    // exec: a missing program and an unknown user exit 126; a paused container says so.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "--network",
        "none",
        IMG,
        "sleep",
        "1000",
    ]);
    let (code, _, _) = e.run(&["exec", "ex", "/nonexistent"], None);
    assert_eq!(code, 126, "{}: exec of a missing program", e.name);
    // The reason goes into the exec's stream (dockerd hijacks first): on stdout.
    let (code, out, err) = e.run(&["exec", "-u", "ghost", "ex", "true"], None);
    let all = format!("{out}{err}");
    assert_eq!(code, 126, "{}: exec as an unknown user: {all}", e.name);
    assert!(
        all.contains("unable to find user ghost: no matching entries in passwd file"),
        "{}: {all}",
        e.name
    );
    assert_eq!(
        e.ok(&["exec", "-u", "u", "ex", "sh", "-c", "echo $HOME"]),
        "/home/u\n"
    );
    e.ok(&["pause", "ex"]);
    let err = e.err(&["exec", "ex", "true"]);
    assert!(
        err.contains("Container ex is paused, unpause the container before exec"),
        "{}: {err}",
        e.name
    );
    e.ok(&["unpause", "ex"]);
    // A terminal asked for at exec create, whatever the start says, on stdin too.
    let (status, body) = e.http(
        "POST",
        "/containers/ex/exec",
        Some(br#"{"Tty":true,"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","tty; tty <&0"]}"#),
    );
    assert_eq!(status, 201, "{}: {}", e.name, message(&body));
    let id = serde_json::from_slice::<Value>(&body).unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = e.http(
        "POST",
        &format!("/exec/{id}/start"),
        Some(br#"{"Tty":false}"#),
    );
    assert_eq!(status, 200, "{}", e.name);
    let text = String::from_utf8_lossy(&body);
    assert_eq!(text.matches("/dev/pts/").count(), 2, "{}: {text:?}", e.name);
    assert!(!text.contains("not a tty"), "{}: {text:?}", e.name);
    e.ok(&["rm", "-f", "ex"]);

    // Limits dockerd refuses at create; nothing is made.
    let before = e.ok(&["ps", "-aq"]);
    let err = e.err(&["create", "--network", "none", "-m", "3m", IMG, "true"]);
    assert!(
        err.contains("Minimum memory limit allowed is 6MB"),
        "{}: {err}",
        e.name
    );
    let err = e.err(&["create", "--network", "none", "--cpus", "1000", IMG, "true"]);
    let n = cpus();
    assert!(
        err.contains(&format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
        )),
        "{}: {err}",
        e.name
    );
    assert_eq!(
        e.ok(&["ps", "-aq"]),
        before,
        "{}: something was stored",
        e.name
    );

    // The default log driver is filled in; `none` keeps no logs and says so.
    e.ok(&["create", "--name", "lc", "--network", "none", IMG, "true"]);
    assert_eq!(
        e.inspect("lc", "{{json .HostConfig.LogConfig}}"),
        r#"{"Type":"json-file","Config":{}}"#
    );
    e.ok(&["rm", "lc"]);
    let out = e.ok(&[
        "run",
        "--name",
        "ln",
        "--network",
        "none",
        "--log-driver",
        "none",
        IMG,
        "echo",
        "hi",
    ]);
    assert_eq!(out, "hi\n");
    let err = e.err(&["logs", "ln"]);
    assert!(
        err.contains("configured logging driver does not support reading"),
        "{}: {err}",
        e.name
    );
    e.ok(&["rm", "ln"]);

    // Namespaced sysctls applied; one of the host's network namespace refused.
    assert_eq!(
        run(
            &[
                "--sysctl",
                "net.core.somaxconn=1234",
                "--sysctl",
                "kernel.shmmax=1234567",
                "--sysctl",
                "fs.mqueue.msg_max=20",
            ],
            &[
                "cat",
                "/proc/sys/net/core/somaxconn",
                "/proc/sys/kernel/shmmax",
                "/proc/sys/fs/mqueue/msg_max",
            ],
        ),
        "1234\n1234567\n20\n"
    );
    let err = e.err(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "net.core.somaxconn=1",
        IMG,
        "true",
    ]);
    assert!(
        err.contains("sysctl \"net.core.somaxconn\" not allowed in host network namespace"),
        "{}: {err}",
        e.name
    );

    // Killed by the kernel for memory: OOMKilled, 137, an `oom` event before `die`.
    let since = chrono_now();
    let (code, _, _) = e.run(
        &[
            "run",
            "--name",
            "oom",
            "--network",
            "none",
            "-m",
            "8m",
            "--memory-swap",
            "8m",
            IMG,
            "sh",
            "-c",
            "tail /dev/zero",
        ],
        None,
    );
    assert_eq!(code, 137, "{}", e.name);
    assert_eq!(
        e.inspect("oom", "{{.State.OOMKilled}} {{.State.ExitCode}}"),
        "true 137"
    );
    let until = (chrono_now() + 1).to_string();
    let events = e.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until,
        "--filter",
        "container=oom",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = events
        .lines()
        .filter(|a| ["oom", "die"].contains(a))
        .collect();
    assert_eq!(actions, ["oom", "die"], "{}: {events}", e.name);
    e.ok(&["rm", "oom"]);

    // Once restarts come slower than a second apart, a wait returns while the
    // container is `restarting`, and a plain rm is refused.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "rp",
        "--network",
        "none",
        "--restart",
        "always",
        IMG,
        "sh",
        "-c",
        "exit 3",
    ]);
    e.until("restarts slow down", || {
        e.inspect("rp", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 5
    });
    assert_eq!(e.ok(&["wait", "rp"]).trim(), "3");
    assert_eq!(
        e.inspect(
            "rp",
            "{{.State.Status}} {{.State.Restarting}} {{.State.Running}} {{.State.ExitCode}}"
        ),
        "restarting true true 3"
    );
    let err = e.err(&["rm", "rp"]);
    assert!(err.contains("restarting"), "{}: {err}", e.name);
    e.ok(&["rm", "-f", "rp"]);
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn behaves_as_dockerd_does() {
    let d = Berthd::start();
    behaves_as_dockerd(&Engine::of_berthd(&d));
    match engine_support::Dockerd::start() {
        Some(dk) => behaves_as_dockerd(&Engine::of_dockerd(&dk)),
        None => eprintln!("dockerd is not installed: berthd checked alone"),
    }
}

#[test]
fn refusals_store_nothing_and_answers_are_dockerds() {
    let d = Berthd::start();
    let e = Engine::of_berthd(&d);
    e.run(&["import", "-", IMG], Some(&image_tar()));
    let create = |hc: Value| {
        let body = json!({"Image": IMG, "Cmd": ["true"], "HostConfig": hc}).to_string();
        let (status, body) = e.http("POST", "/containers/create", Some(body.as_bytes()));
        (status, message(&body))
    };
    let none = |mut v: Value| {
        v["NetworkMode"] = json!("none");
        v
    };
    let n = cpus();
    for (hc, words) in [
        (
            json!({"Memory": 3_000_000}),
            "Minimum memory limit allowed is 6MB".to_string(),
        ),
        (
            json!({"ShmSize": -1}),
            "SHM size can not be less than 0".to_string(),
        ),
        (
            json!({"NanoCpus": -1}),
            format!("Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"),
        ),
        (
            json!({"OomScoreAdj": 1001}),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]".to_string(),
        ),
        (
            json!({"OomScoreAdj": -1001}),
            "Invalid value -1001, range for oom score adj is [-1000, 1000]".to_string(),
        ),
        (
            json!({"Sysctls": {"vm.swappiness": "1"}}),
            "sysctl \"vm.swappiness\" is not in a separate kernel namespace".to_string(),
        ),
    ] {
        let (status, msg) = create(none(hc.clone()));
        assert_eq!(status, 400, "{hc}: {msg}");
        assert!(msg.contains(&words), "{hc}: {msg}");
    }
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    assert!(std::fs::read_dir(d.dir.path().join("data/containers"))
        .unwrap()
        .next()
        .is_none());
    // A memory limit near 2^63 is taken, as dockerd takes it: its default swap wraps as
    // dockerd's does (inspect shows -2), the record reads back, and no negative swap
    // limit reaches the cgroup.
    let body =
        json!({"Image": IMG, "Cmd": ["cat", "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"],
        "HostConfig": {"NetworkMode": "none", "Memory": i64::MAX}})
        .to_string();
    let (status, body) = e.http(
        "POST",
        "/containers/create?name=huge",
        Some(body.as_bytes()),
    );
    assert_eq!(status, 201, "{}", message(&body));
    assert_eq!(
        d.inspect("huge", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"),
        format!("{} -2", i64::MAX)
    );
    let (code, out, err) = d.run(&["start", "-a", "huge"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.trim().starts_with('-'), "{out}");
    d.ok(&["rm", "huge"]);

    // A body over the limit: 413, answered (the client is not reset while it sends).
    let mut big =
        json!({"Image": IMG, "Cmd": ["true"], "Env": ["X=".to_string() + &"a".repeat(17 << 20)]})
            .to_string()
            .into_bytes();
    big.push(b'\n');
    let (status, body) = e.http("POST", "/containers/create", Some(&big));
    assert_eq!(status, 413, "{}", message(&body));

    // A bad archive to load: 200, the error in the stream, as dockerd.
    let (status, body) = e.http("POST", "/images/load", Some(b"not a tar at all"));
    assert_eq!(status, 200);
    let last: Value = serde_json::from_slice(
        body.split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();
    assert!(
        last["errorDetail"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("invalid archive")),
        "{last}"
    );
    let (code, _, err) = d.run(&["load"], Some(b"not a tar at all"));
    assert_eq!(code, 1);
    assert!(err.contains("invalid archive"), "{err}");

    // Realtime CPU fields are kept and shown.
    d.ok(&[
        "create",
        "--name",
        "rt",
        "--network",
        "none",
        "--cpu-rt-period",
        "1000",
        "--cpu-rt-runtime",
        "500",
        IMG,
        "true",
    ]);
    assert_eq!(
        d.inspect(
            "rt",
            "{{.HostConfig.CpuRealtimePeriod}} {{.HostConfig.CpuRealtimeRuntime}}"
        ),
        "1000 500"
    );

    // Links: recorded as dockerd records them, removed through DELETE .../LINK?link=1.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "l1",
        "--network",
        "none",
        IMG,
        "sleep",
        "100",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "l2",
        "--network",
        "none",
        "--link",
        "l1:alias",
        IMG,
        "sleep",
        "100",
    ]);
    assert_eq!(
        d.inspect("l2", "{{json .HostConfig.Links}}"),
        r#"["/l1:/l2/alias"]"#
    );
    let (status, body) = e.http("DELETE", "/containers/l1?link=1", None);
    assert_eq!(
        (status, message(&body).as_str()),
        (
            500,
            "Conflict, cannot remove the default link name of the container"
        )
    );
    let (status, body) = e.http("DELETE", "/containers/l2/alias?link=1", None);
    assert_eq!(status, 204, "{}", message(&body));
    assert_eq!(d.inspect("l2", "{{json .HostConfig.Links}}"), "[]");
    let (status, body) = e.http("DELETE", "/containers/l2/alias?link=1", None);
    assert_eq!(
        (status, message(&body).as_str()),
        (404, "No such container: l2/alias")
    );
    let err = d.err(&[
        "create",
        "--network",
        "none",
        "--link",
        "nothere:x",
        IMG,
        "true",
    ]);
    assert!(err.contains("could not get container for nothere"), "{err}");
}

#[test]
fn image_volumes_and_copies_into_a_stopped_containers_volumes() {
    let d = Berthd::start();
    let (code, _, err) = d.run(&["load"], Some(&volume_image("vol:1")));
    assert_eq!(code, 0, "{err}");
    // The docker CLI sends `"Volumes": {}`: the image's VOLUME is still honoured, and the
    // new volume starts with the image's content.
    d.ok(&["create", "--name", "vc", "--network", "none", "vol:1"]);
    assert_eq!(
        d.inspect("vc", "{{range .Mounts}}{{.Type}} {{.Destination}}{{end}}"),
        "volume /data"
    );
    let bind = tempfile::tempdir().unwrap();
    std::fs::write(bind.path().join("b.txt"), "bound\n").unwrap();
    let spec = format!("{}:/bind:ro", bind.path().display());
    d.ok(&[
        "create",
        "--name",
        "cv",
        "--network",
        "none",
        "-v",
        "named:/named",
        "-v",
        &spec,
        "vol:1",
    ]);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("f.txt");
    std::fs::write(&file, "hello\n").unwrap();
    // PUT into a volume of a container that never ran, GET out of a bind and a volume.
    d.ok(&["cp", file.to_str().unwrap(), "cv:/named/f.txt"]);
    d.ok(&["cp", "cv:/bind/b.txt", work.path().to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("b.txt")).unwrap(),
        "bound\n"
    );
    d.ok(&["cp", "cv:/data/seed", work.path().to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(work.path().join("seed")).unwrap(),
        "seed\n"
    );
    // HEAD: the stat header of a path inside a volume.
    let (status, _) = http(
        &d.socket,
        "HEAD",
        "/containers/cv/archive?path=/named/f.txt",
        None,
    );
    assert_eq!(status, 200);
    // A read-only bind stays read-only for the copy, as in the container.
    let err = d.err(&["cp", file.to_str().unwrap(), "cv:/bind/new.txt"]);
    assert!(!bind.path().join("new.txt").exists(), "{err}");
    // The copy went into the volume, seen by the container once it runs.
    d.ok(&["start", "cv"]);
    assert_eq!(d.ok(&["exec", "cv", "cat", "/named/f.txt"]), "hello\n");
    d.ok(&["rm", "-f", "cv", "vc"]);
    // Nothing stays mounted from the copies.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mnt = d.dir.path().join("exec/mnt").display().to_string();
    assert!(!mounts.contains(&mnt), "{mounts}");
}

#[test]
fn an_exit_while_the_supervisor_is_away_is_found_by_a_resync() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let d = Berthd::start();
    d.run(&["import", "-", IMG], Some(&image_tar()));
    d.ok(&[
        "run",
        "-d",
        "--name",
        "away",
        "--network",
        "none",
        IMG,
        "sleep",
        "1000",
    ]);
    let pid: i32 = d.inspect("away", "{{.State.Pid}}").parse().unwrap();
    let berthd = Pid::from_raw(d.pid() as i32);
    let supervisor = d.supervisor_pid().expect("supervisor");
    // berthd frozen (it cannot start a new supervisor at once), the supervisor killed,
    // then the container's process: its exit is published to nobody.
    kill(berthd, Signal::SIGSTOP).unwrap();
    let resumed = scopeguard(berthd);
    kill(Pid::from_raw(supervisor), Signal::SIGKILL).unwrap();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(resumed);
    d.wait_until("the exit found", Duration::from_secs(30), || {
        d.inspect("away", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    });
    assert!(d.supervisor_pid().is_some_and(|p| p != supervisor));
    // And the new supervisor's events are followed.
    d.ok(&["start", "away"]);
    d.ok(&["kill", "away"]);
    assert_eq!(d.inspect("away", "{{.State.Status}}"), "exited");
}

/// Sends SIGCONT to a stopped process when dropped (also when a test fails).
struct Cont(nix::unistd::Pid);

impl Drop for Cont {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

fn scopeguard(pid: nix::unistd::Pid) -> Cont {
    Cont(pid)
}
