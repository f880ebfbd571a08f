//! `docker run` and friends against berthd (which runs containers through its own
//! berth-supervisor, berth-shim and berth-runtime), with the real docker CLI.

mod containers_support;

use containers_support::Berthd;
use std::time::Duration;

const IMG: &str = "busybox:test";

#[test]
fn foreground_run_output_and_exit_code() {
    let d = Berthd::start();
    let (code, out, err) = d.run(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
        None,
    );
    assert_eq!(code, 3, "stderr: {err}");
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\n");
    // --rm: nothing left.
    d.wait_until("auto-removal", Duration::from_secs(10), || {
        d.ok(&["ps", "-aq"]).trim().is_empty()
    });
    // Config merged with the image's and the options.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "--hostname",
        "box",
        IMG,
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u) $(hostname) $(cat /etc/hostname) $HOSTNAME",
    ]);
    assert_eq!(out, "bar /tmp 65534 box box box\n");
    // stdin with -i.
    let (code, out, err) = d.run(
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "cat; echo done",
        ],
        Some(b"hello\nworld\n"),
    );
    assert_eq!((code, out.as_str()), (0, "hello\nworld\ndone\n"), "{err}");
    // A TTY: raw stream, \r\n.
    let out = d.ok(&[
        "run",
        "-t",
        "--rm",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "test -t 1 && echo tty",
    ]);
    assert_eq!(out.trim(), "tty");
    // Host network: the host's hostname.
    let host = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let out = d.ok(&["run", "--rm", "--network", "host", IMG, "hostname"]);
    assert_eq!(out.trim(), host);
}

#[test]
fn detached_logs_exec_stop_rm() {
    let d = Berthd::start();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "--label",
        "tier=front",
        IMG,
        "sh",
        "-c",
        "echo started; echo warn >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    d.wait_until("logs", Duration::from_secs(10), || {
        d.ok(&["logs", "web"]).contains("started")
    });
    let (code, out, err) = d.run(&["logs", "web"], None);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "started\n", "warn\n")
    );
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}} {{.Labels}}"]);
    assert!(ps.starts_with("web Up"), "{ps}");
    assert!(ps.contains("tier=front"), "{ps}");
    assert_eq!(
        d.ok(&["ps", "-q", "--filter", "label=tier=front"]).trim(),
        &id[..12]
    );
    assert_eq!(
        d.inspect(
            "web",
            "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Config.Labels.tier}}"
        ),
        "running true /web front"
    );
    // exec: output, exit code, stdin, environment.
    let (code, out, _) = d.run(
        &[
            "exec",
            "-e",
            "X=1",
            "web",
            "sh",
            "-c",
            "echo in exec $X; exit 4",
        ],
        None,
    );
    assert_eq!((code, out.as_str()), (4, "in exec 1\n"));
    let (code, out, _) = d.run(&["exec", "-i", "web", "cat"], Some(b"piped\n"));
    assert_eq!((code, out.as_str()), (0, "piped\n"));
    let (code, out, _) = d.run(
        &["exec", "-d", "web", "sh", "-c", "echo detached > /tmp/mark"],
        None,
    );
    assert_eq!((code, out.as_str()), (0, ""));
    d.wait_until("exec -d", Duration::from_secs(10), || {
        d.run(&["exec", "web", "cat", "/tmp/mark"], None).1 == "detached\n"
    });
    // stop: SIGTERM, the trap runs, exit 0.
    d.ok(&["stop", "web"]);
    assert_eq!(
        d.inspect("web", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    assert_eq!(d.ok(&["logs", "web"]), "started\nbye\n");
    let ps = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Exited (0)"), "{ps}");
    assert!(d.ok(&["ps", "-q"]).trim().is_empty());
    // start again: the same container, its upper dir kept.
    d.ok(&["start", "web"]);
    assert_eq!(d.ok(&["exec", "web", "cat", "/tmp/mark"]), "detached\n");
    // kill: SIGKILL, 137; rm.
    d.ok(&["kill", "web"]);
    d.wait_until("kill", Duration::from_secs(10), || {
        d.inspect("web", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    });
    d.ok(&["rm", "web"]);
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    // rm -f of a running container.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "--network",
        "none",
        IMG,
        "sleep",
        "100",
    ]);
    let err = d.err(&["rm", "sleeper"]);
    assert!(
        err.contains("stop the container before removing or force remove"),
        "{err}"
    );
    d.ok(&["rm", "-f", "sleeper"]);
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    // stop with a timeout: sh as PID 1 ignores SIGTERM, so SIGKILL after 1 s.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "--network",
        "none",
        IMG,
        "sleep",
        "100",
    ]);
    d.ok(&["stop", "-t", "1", "stubborn"]);
    assert_eq!(d.inspect("stubborn", "{{.State.ExitCode}}"), "137");
}

#[test]
fn default_security_and_files() {
    let d = Berthd::start();
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status; grep -c localhost /etc/hosts; \
         mount | grep -c ' /dev/shm '; cat /proc/kcore | wc -c; \
         unshare -m true 2>/dev/null && echo unshare-allowed || echo unshare-denied",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "CapEff:\t00000000a80425fb", "{out}");
    assert_eq!(lines[1], "CapBnd:\t00000000a80425fb", "{out}");
    assert_eq!(lines[2], "Seccomp:\t2", "{out}");
    assert_ne!(lines[3], "0", "{out}");
    assert_eq!(lines[4], "1", "{out}");
    assert_eq!(lines[5], "0", "masked /proc/kcore: {out}");
    assert_eq!(lines[6], "unshare-denied", "{out}");
    // --privileged: the host's capabilities, no seccomp.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--privileged",
        IMG,
        "sh",
        "-c",
        "grep '^Seccomp:' /proc/self/status; unshare -m true && echo unshare-allowed",
    ]);
    assert_eq!(out, "Seccomp:\t0\nunshare-allowed\n");
    // --cap-drop / --cap-add and --read-only.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_ADMIN",
        "--read-only",
        IMG,
        "sh",
        "-c",
        "grep '^CapEff:' /proc/self/status; touch /x 2>/dev/null || echo read-only",
    ]);
    assert_eq!(out, "CapEff:\t0000000000001000\nread-only\n");
}

#[test]
fn signals_restart_attach_security_opts() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "trap 'echo got USR1' USR1; echo ready; while true; do sleep 0.1; done",
    ]);
    d.wait_until("ready", Duration::from_secs(10), || {
        d.ok(&["logs", "sig"]).contains("ready")
    });
    d.ok(&["kill", "-s", "USR1", "sig"]);
    d.wait_until("USR1 handled", Duration::from_secs(10), || {
        d.ok(&["logs", "sig"]).contains("got USR1")
    });
    assert_eq!(d.inspect("sig", "{{.State.Status}}"), "running");
    let pid = d.inspect("sig", "{{.State.Pid}}");
    d.ok(&["restart", "-t", "1", "sig"]);
    let pid2 = d.inspect("sig", "{{.State.Status}} {{.State.Pid}}");
    assert!(
        pid2.starts_with("running ") && !pid2.ends_with(&format!(" {pid}")),
        "{pid2}"
    );
    // docker attach to a running container: its output from now on.
    let mut attach = d.cmd(&["attach", "--no-stdin", "sig"]);
    attach
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null());
    let child = attach.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.ok(&["kill", "-s", "USR1", "sig"]);
    std::thread::sleep(Duration::from_millis(500));
    d.ok(&["kill", "sig"]);
    let out = containers_support::wait_output(child, Duration::from_secs(20));
    assert!(out.contains("got USR1"), "{out}");
    // no-new-privileges and seccomp=unconfined.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "seccomp=unconfined",
        IMG,
        "grep",
        "-E",
        "^(NoNewPrivs|Seccomp):",
        "/proc/self/status",
    ]);
    assert_eq!(out, "NoNewPrivs:\t1\nSeccomp:\t0\n");
}

/// `docker run -it` and `docker exec -it` under a pseudo-terminal (util-linux
/// `script`), typing into the container's shell.
#[test]
fn interactive_tty() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no script(1)");
        return;
    }
    let d = Berthd::start();
    let typed = |cmd: &str, input: &'static [u8]| {
        let mut c = std::process::Command::new("script");
        c.args(["-qec", cmd, "/dev/null"])
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            std::thread::sleep(Duration::from_millis(1500));
            let _ = stdin.write_all(input);
            std::thread::sleep(Duration::from_millis(1000));
        });
        let mut out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut v);
            String::from_utf8_lossy(&v).into_owned()
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status.code(), reader.join().unwrap())
    };
    let (code, out) = typed(
        &format!("docker run -it --rm --network none {IMG} sh"),
        b"echo hi-$((1+2))\nexit 5\n",
    );
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("hi-3"), "{out}");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "tt",
        "--network",
        "none",
        IMG,
        "sleep",
        "100",
    ]);
    let (code, out) = typed("docker exec -it tt sh", b"tty; exit 7\n");
    assert_eq!(code, Some(7), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
}
