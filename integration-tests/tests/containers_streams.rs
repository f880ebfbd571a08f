//! Streams between the docker CLI and containers through berthd, compared with
//! dockerd's behaviour: large `-i` input delivered whole before stdin closes, exec
//! start errors written into the hijacked stream with dockerd's exit codes, detach keys
//! (ctrl-p ctrl-q, or `detachKeys`) spotted in a TTY's input, and OCI runtimes chosen
//! per container (`--runtime`, `--add-runtime`).

mod containers_support;

use containers_support::Berthd;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMG: &str = "busybox:test";

/// What `seq 1 N` prints.
fn seq(n: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 1..=n {
        v.extend_from_slice(format!("{i}\n").as_bytes());
    }
    v
}

#[test]
fn large_stdin_reaches_the_container_whole() {
    let d = Berthd::start();
    let input = seq(800_000);
    assert_eq!(input.len(), 5_488_895);
    // Echoed back: every byte, in order (stdin closes only after the FIFO drained).
    let args = [
        "run",
        "-i",
        "--rm",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "cat; sleep 1",
    ];
    let (code, out, err) = d.run(&args, Some(&input));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.len(), input.len(), "{err}");
    assert!(out.as_bytes() == input.as_slice(), "echoed input differs");
    // Counted inside, so that only the input path is measured.
    let args = ["run", "-i", "--rm", "--network", "none", IMG, "wc", "-c"];
    let (code, out, err) = d.run(&args, Some(&input));
    assert_eq!((code, out.trim()), (0, "5488895"), "{err}");
    // The same through exec -i.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "big",
        "--network",
        "none",
        IMG,
        "sleep",
        "600",
    ]);
    let (code, out, err) = d.run(&["exec", "-i", "big", "wc", "-c"], Some(&input));
    assert_eq!((code, out.trim()), (0, "5488895"), "{err}");
    let (code, out, err) = d.run(
        &[
            "exec",
            "-i",
            "big",
            "sh",
            "-c",
            "cat >/tmp/in; wc -c </tmp/in",
        ],
        Some(&input),
    );
    assert_eq!((code, out.trim()), (0, "5488895"), "{err}");
}

#[test]
fn start_errors_carry_the_runtime_text_and_docker_exit_codes() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "--network",
        "none",
        IMG,
        "sleep",
        "600",
    ]);
    // As dockerd: exec start hijacks first, writes the runtime's error into the stream,
    // and records exit code 126 for a process that could not start, a missing program
    // included (dockerd 20.10's exec, the reference; issue 11).
    for (tty, cmd, code, text) in [
        (false, "nosuch", 126, "executable file not found"),
        (true, "nosuch", 126, "executable file not found"),
        (false, "/nonexistent", 126, "no such file or directory"),
        (false, "/etc/passwd", 126, "permission denied"),
        // runc says "permission denied" here, berth-runtime "is a directory".
        (false, "/etc", 126, "exec \"/etc\""),
    ] {
        let mut args = vec!["exec"];
        if tty {
            args.push("-t");
        }
        args.extend(["ex", cmd]);
        let (got, out, err) = d.run(&args, None);
        let all = format!("{out}{err}");
        assert_eq!(got, code, "docker {args:?}: {all}");
        assert!(all.contains(text), "docker {args:?}: {all}");
        assert!(!all.contains("unable to upgrade"), "docker {args:?}: {all}");
    }
    // The container and later execs are unaffected.
    assert_eq!(d.ok(&["exec", "ex", "echo", "ok"]), "ok\n");
    // docker run maps the start error's text the same way.
    for (cmd, code, text) in [
        ("/nonexistent", 127, "no such file or directory"),
        ("nosuch", 127, "executable file not found"),
        ("/etc/passwd", 126, "permission denied"),
    ] {
        let args = ["run", "--rm", "--network", "none", IMG, cmd];
        let (got, _, err) = d.run(&args, None);
        assert_eq!(got, code, "docker {args:?}: {err}");
        assert!(err.contains(text), "docker {args:?}: {err}");
    }
}

/// Runs the docker CLI on a terminal (script(1)), typing `input` chunks with pauses
/// once `ready` holds (bounded); (exit code, everything printed). None without script.
fn on_terminal(
    d: &Berthd,
    docker_args: &str,
    input: &[&[u8]],
    ready: &dyn Fn() -> bool,
) -> Option<(Option<i32>, String)> {
    // Never a silent pass: without script(1) the test fails, naming what to install.
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "script(1) is needed for terminal tests: apt-get install bsdutils"
    );
    let cmd = format!("docker {docker_args}");
    let mut c = Command::new("script");
    c.args(["-qfec", &cmd, "/dev/null"])
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("spawn script");
    let mut out = child.stdout.take().expect("stdout piped");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The CLI puts the terminal in raw mode just after attaching; a margin.
    std::thread::sleep(Duration::from_millis(500));
    // Kept open until the CLI is gone: script ends when its input does.
    let mut stdin = child.stdin.take().expect("stdin piped");
    for chunk in input {
        let _ = stdin.write_all(chunk);
        let _ = stdin.flush();
        std::thread::sleep(Duration::from_millis(400));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    Some((status.code(), reader.join().unwrap_or_default()))
}

#[test]
fn ctrl_p_ctrl_q_detaches_the_docker_cli_and_the_container_runs_on() {
    let d = Berthd::start();
    let running = |name: &str| {
        let (code, out, _) = d.run(&["inspect", "-f", "{{.State.Running}}", name], None);
        code == 0 && out.trim() == "true"
    };
    // docker run -it: typed input works, ctrl-p ctrl-q ends the CLI with 0 (as with
    // dockerd) and the container keeps running.
    let Some((code, out)) = on_terminal(
        &d,
        &format!("run -it --name tty1 --network none {IMG} sh"),
        &[b"echo hel''lo\r", b"\x10", b"\x11"],
        &|| running("tty1"),
    ) else {
        return;
    };
    assert_eq!(code, Some(0), "{out:?}");
    assert!(out.contains("hello"), "{out:?}");
    assert!(
        running("tty1"),
        "{}",
        containers_support::tail(&d.log(), 30)
    );
    // docker attach, then ctrl-p ctrl-q again: the CLI says "read escape sequence" and,
    // as against dockerd, exits 1; the shell still runs and kept what was typed before.
    let (code, out) = on_terminal(
        &d,
        "attach tty1",
        &[b"echo again-$((1+1))\r", b"\x10", b"\x11"],
        &|| true,
    )
    .unwrap_or_default();
    assert_eq!(code, Some(1), "{out:?}");
    assert!(out.contains("again-2"), "{out:?}");
    assert!(out.contains("read escape sequence"), "{out:?}");
    assert!(running("tty1"));
    // A custom sequence of the CLI's --detach-keys.
    let (code, out) = on_terminal(
        &d,
        "attach --detach-keys ctrl-a,x tty1",
        &[b"echo third\r", b"\x01", b"x"],
        &|| true,
    )
    .unwrap_or_default();
    assert_eq!(code, Some(1), "{out:?}");
    assert!(out.contains("third"), "{out:?}");
    assert!(running("tty1"));
}

/// A raw attach over the API (no docker CLI, which would catch the keys itself): the
/// response head, and the connection.
fn raw_attach(d: &Berthd, id: &str, query: &str) -> (String, UnixStream) {
    let mut s = UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1{query} HTTP/1.1\r\n\
         Host: berthd\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    (String::from_utf8_lossy(&head).into_owned(), s)
}

/// One plain API request: (status line, body).
fn raw_request(d: &Berthd, method: &str, path: &str, body: &str) -> (String, String) {
    let mut s = UnixStream::connect(&d.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: berthd\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// Whether the server ends the connection within `limit` (reading and dropping output).
fn closed_within(s: &mut UnixStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn berthd_spots_detach_keys_in_a_tty_attach() {
    let d = Berthd::start();
    // A raw terminal in the container: every byte typed reaches cat, and so the file.
    let id = d
        .ok(&[
            "run",
            "-dit",
            "--name",
            "raw",
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "stty raw -echo; cat > /tmp/in",
        ])
        .trim()
        .to_string();
    let typed = || d.ok(&["exec", "raw", "cat", "/tmp/in"]);
    d.wait_until("stty", Duration::from_secs(10), || {
        d.ok(&["exec", "raw", "ls", "/tmp"]).contains("in")
    });
    // The default sequence, typed key by key; a broken-off start of it is passed on.
    let (head, mut s) = raw_attach(&d, &id, "");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for chunk in [&b"one"[..], b"\x10", b"x", b"\x10", b"\x11"] {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        closed_within(&mut s, Duration::from_secs(5)),
        "attach not ended"
    );
    d.wait_until("input", Duration::from_secs(5), || typed() == "one\x10x");
    // detachKeys=ctrl-a,b: ctrl-p ctrl-q is input now; the sequence may come in one read.
    let (head, mut s) = raw_attach(&d, &id, "&detachKeys=ctrl-a,b");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"two\x10\x11").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!closed_within(&mut s, Duration::from_millis(500)));
    s.write_all(b"\x01b").unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(5)),
        "attach not ended"
    );
    d.wait_until("input", Duration::from_secs(5), || {
        typed() == "one\x10xtwo\x10\x11"
    });
    assert_eq!(d.inspect("raw", "{{.State.Running}}"), "true");
    // A sequence docker cannot read is refused, as dockerd does.
    let (head, mut s) = raw_attach(&d, &id, "&detachKeys=ctrl-A");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    assert!(
        body.contains("Invalid detach keys (ctrl-A) provided"),
        "{body}"
    );
    // An exec with a TTY and its own DetachKeys: its stream ends, the process runs on.
    let (status, body) = raw_request(
        &d,
        "POST",
        "/containers/raw/exec",
        r#"{"Cmd":["sleep","600"],"Tty":true,"AttachStdin":true,"AttachStdout":true,"DetachKeys":"ctrl-x"}"#,
    );
    assert!(status.contains(" 201 "), "{status} {body}");
    let exec: serde_json::Value = serde_json::from_str(&body).unwrap();
    let exec_id = exec["Id"].as_str().unwrap().to_string();
    let mut s = UnixStream::connect(&d.socket).expect("connect");
    let start = r#"{"Detach":false,"Tty":true}"#;
    let req = format!(
        "POST /exec/{exec_id}/start HTTP/1.1\r\nHost: berthd\r\nConnection: Upgrade\r\n\
         Upgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{start}",
        start.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    s.write_all(b"\x18").unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(5)),
        "exec attach not ended"
    );
    let (_, body) = raw_request(&d, "GET", &format!("/exec/{exec_id}/json"), "");
    let inspect: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(inspect["Running"], true, "{inspect}");
    assert_eq!(inspect["DetachKeys"], "ctrl-x", "{inspect}");
    let (status, body) = raw_request(
        &d,
        "POST",
        "/containers/raw/exec",
        r#"{"Cmd":["true"],"DetachKeys":"ctrl-"}"#,
    );
    assert!(status.contains(" 400 "), "{status} {body}");
    assert!(
        body.contains("Invalid escape keys (ctrl-) provided"),
        "{body}"
    );
    // Without a TTY (as dockerd) the keys are plain input.
    let id = d
        .ok(&[
            "run",
            "-di",
            "--name",
            "notty",
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "cat > /tmp/in",
        ])
        .trim()
        .to_string();
    let (head, mut s) = raw_attach(&d, &id, "");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"a\x10\x11b").unwrap();
    assert!(!closed_within(&mut s, Duration::from_secs(1)));
    d.wait_until("input", Duration::from_secs(5), || {
        d.ok(&["exec", "notty", "cat", "/tmp/in"]) == "a\x10\x11b"
    });
}

#[test]
fn runtimes_are_chosen_per_container() {
    let d = Berthd::start_with(&["--add-runtime", "crun2=/usr/bin/crun"]);
    // As dockerd's `docker info`: every runtime with its binary, and the default.
    let runtimes: serde_json::Value =
        serde_json::from_str(&d.ok(&["info", "-f", "{{json .Runtimes}}"])).unwrap();
    assert_eq!(runtimes["berth"]["path"], "berth-runtime", "{runtimes}");
    assert_eq!(runtimes["runc"]["path"], "runc", "{runtimes}");
    assert_eq!(runtimes["crun2"]["path"], "/usr/bin/crun", "{runtimes}");
    assert_eq!(d.ok(&["info", "-f", "{{.DefaultRuntime}}"]).trim(), "berth");
    // No --runtime: the default, recorded by name.
    d.ok(&["create", "--name", "dflt", "--network", "none", IMG, "true"]);
    assert_eq!(d.inspect("dflt", "{{.HostConfig.Runtime}}"), "berth");
    // An unknown runtime is refused before anything is made.
    let args = [
        "run",
        "--rm",
        "--runtime",
        "nope",
        "--network",
        "none",
        IMG,
        "true",
    ];
    let (code, _, err) = d.run(&args, None);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("Unknown runtime specified nope"), "{err}");
    assert!(
        Command::new("runc").arg("--version").output().is_ok(),
        "runc is needed: deploy/install-deps.sh installs it"
    );
    let args = [
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "echo hi",
    ];
    assert_eq!(d.ok(&args), "hi\n");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "byrunc",
        "--runtime",
        "runc",
        "--network",
        "none",
        IMG,
        "sleep",
        "600",
    ]);
    assert_eq!(d.inspect("byrunc", "{{.HostConfig.Runtime}}"), "runc");
    // The shim really drives runc: runc lists it in the supervisor's runtime root.
    assert_eq!(d.ok(&["exec", "byrunc", "echo", "in"]), "in\n");
    let id = d.inspect("byrunc", "{{.Id}}");
    let root = d.dir.path().join("exec/supervisor/runtime/berth");
    let list = Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["list", "-q"])
        .output()
        .expect("runc list");
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(&id),
        "runc list in {}: {}",
        root.display(),
        String::from_utf8_lossy(&list.stderr)
    );
    d.ok(&["rm", "-f", "byrunc"]);
}
