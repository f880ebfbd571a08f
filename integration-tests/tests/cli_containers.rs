//! Berth's own CLI (`berth`) running containers against berthd: run (foreground,
//! detached, stdin, TTY), create/start/attach/wait, exec and logs, with docker's flags,
//! streams and exit codes; where useful compared with the real docker CLI against the
//! same berthd.

mod cgroup_support;
mod containers_support;

use cgroup_support::cgroup_file;
use containers_support::Berthd;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMG: &str = "busybox:test";

/// Runs a command under script(1), so that its stdin and stdout are a terminal, typing
/// the `input` chunks (a pause between them) once `ready` holds (bounded); (exit code,
/// everything printed). None if there is no script(1).
fn on_terminal(
    d: &Berthd,
    cmd: &str,
    input: &'static [&'static [u8]],
    ready: &dyn Fn() -> bool,
) -> Option<(Option<i32>, String)> {
    // Never a silent pass: without script(1) the test fails, naming what to install.
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "script(1) is needed for terminal tests: apt-get install bsdutils"
    );
    let berth = d.berth_cmd(&[]).get_program().to_owned();
    let cmd = cmd.replace("berth ", &format!("{} ", berth.to_string_lossy()));
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env("BERTH_HOST", format!("unix://{}", d.socket.display()))
        .env_remove("DOCKER_HOST")
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
    // The session's terminal set-up is done just before the container runs; a margin.
    std::thread::sleep(Duration::from_millis(300));
    let mut stdin = child.stdin.take().expect("stdin piped");
    std::thread::spawn(move || {
        for (i, chunk) in input.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(700));
            }
            let _ = stdin.write_all(chunk);
            let _ = stdin.flush();
        }
        // Keep the terminal open a while: script ends when its input does.
        std::thread::sleep(Duration::from_secs(3));
    });
    let deadline = Instant::now() + Duration::from_secs(30);
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
    Some((status.code(), reader.join().unwrap_or_default()))
}

#[test]
fn run_foreground_streams_and_exit_codes() {
    let d = Berthd::start();
    let script = "echo out; echo err >&2; exit 3";
    let args = ["run", "--rm", "--network", "none", IMG, "sh", "-c", script];
    let berth = d.berth(&args, None);
    assert_eq!(berth, (3, "out\n".into(), "err\n".into()));
    // The same as the docker CLI against the same berthd.
    assert_eq!(d.run(&args, None), berth);
    // --rm: nothing left behind (the wait was for the removal).
    assert!(d.berth_ok(&["ps", "-aq"]).trim().is_empty());
    assert_eq!(
        d.berth(&["run", "--rm", "--network", "none", IMG, "true"], None),
        (0, String::new(), String::new())
    );
    // Image config merged with the flags; -h is --hostname here, --help still helps.
    let out = d.berth_ok(&[
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
        "-h",
        "box",
        IMG,
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u) $(hostname) $HOSTNAME",
    ]);
    assert_eq!(out, "bar /tmp 65534 box box\n");
    let help = d.berth_ok(&["run", "--help"]);
    assert!(help.contains("--hostname"), "{help}");
    // Options after the image belong to the command.
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMG,
        "echo",
        "x",
        "-e",
        "--rm",
    ]);
    assert_eq!(out, "x -e --rm\n");
    // A command that is not there: 127, as docker; a big output arrives whole.
    let (code, _, err) = d.berth(
        &["run", "--rm", "--network", "none", IMG, "nosuchcmd"],
        None,
    );
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    assert_eq!(
        d.run(
            &["run", "--rm", "--network", "none", IMG, "nosuchcmd"],
            None
        )
        .0,
        127
    );
    let out = d.berth_ok(&["run", "--rm", "--network", "none", IMG, "seq", "1", "20000"]);
    assert_eq!(out.lines().count(), 20000);
    assert!(out.ends_with("19999\n20000\n"));
    // berthd refuses: 125.
    let (code, _, err) = d.berth(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--pull",
            "never",
            "nosuch/img:1",
            "true",
        ],
        None,
    );
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("No such image: nosuch/img:1"), "{err}");
    let (code, _, err) = d.berth(
        &["run", "--rm", "--network", "none", "nosuch/img", "true"],
        None,
    );
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("Unable to find image 'nosuch/img:latest' locally"),
        "{err}"
    );
    let (code, _, err) = d.berth(
        &["run", "--rm", "--network", "nosuchnet", IMG, "true"],
        None,
    );
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("network nosuchnet not found"), "{err}");
    let (code, _, err) = d.berth(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-m",
            "lots",
            IMG,
            "true",
        ],
        None,
    );
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("invalid argument \"lots\" for \"-m, --memory\" flag"),
        "{err}"
    );
    assert_eq!(
        d.run(
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "-m",
                "lots",
                IMG,
                "true"
            ],
            None
        )
        .0,
        125
    );
    let (code, _, err) = d.berth(
        &[
            "run",
            "--network",
            "none",
            "--restart",
            "sometimes",
            IMG,
            "true",
        ],
        None,
    );
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("--restart"), "{err}");
    // Nothing half-made by the refusals.
    assert!(d.berth_ok(&["ps", "-aq"]).trim().is_empty());
    // -a stdout: stderr is not shown.
    let (code, out, err) = d.berth(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-a",
            "stdout",
            IMG,
            "sh",
            "-c",
            "echo o; echo e >&2",
        ],
        None,
    );
    assert_eq!((code, out.as_str(), err.as_str()), (0, "o\n", ""));
}

#[test]
fn run_stdin_tty_and_signals() {
    let d = Berthd::start();
    // -i: stdin piped through, and closed at its end.
    let (code, out, err) = d.berth(
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
    let (code, out, _) = d.berth(
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "read x; echo got $x",
        ],
        Some(b"it\n"),
    );
    assert_eq!((code, out.as_str()), (0, "got it\n"));
    // Without -i the container's stdin is empty.
    let (code, out, _) = d.berth(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "cat; echo end",
        ],
        Some(b"ignored\n"),
    );
    assert_eq!((code, out.as_str()), (0, "end\n"));
    // -t: a TTY, stderr merged into the one raw stream.
    let (code, out, err) = d.berth(
        &[
            "run",
            "-t",
            "--rm",
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "tty; echo e >&2; exit 2",
        ],
        None,
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (2, "/dev/pts/0\r\ne\r\n", "")
    );
    // -it with stdin not a terminal: refused as docker does.
    let args = ["run", "-it", "--rm", "--network", "none", IMG, "true"];
    let (code, _, err) = d.berth(&args, Some(b""));
    assert_eq!(code, 1);
    assert!(err.contains("the input device is not a TTY"), "{err}");
    assert_eq!(d.run(&args, Some(b"")).0, 1);
    let running = || !d.berth_ok(&["ps", "-q"]).trim().is_empty();
    // -it on a terminal: raw mode (no local echo or \r\r\n), typed input, the
    // terminal's size given to the container's, the exit code; the terminal restored.
    if let Some((code, out)) = on_terminal(
        &d,
        &format!(
            "stty rows 33 cols 101; berth run -it --rm --network none {IMG} sh; stty -a | grep -o ' icanon'"
        ),
        &[b"echo hi-$((1+2))\nstty size\nexit 5\n"],
        &running,
    ) {
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("\r\nhi-3\r\n"), "{out:?}");
        assert!(!out.contains("\r\r\n"), "{out:?}");
        assert!(out.contains("\r\n33 101\r\n"), "{out:?}");
        assert!(out.contains(" icanon"), "terminal left raw: {out:?}");
    }
    if let Some((code, out)) = on_terminal(
        &d,
        &format!("berth run -it --rm --network none {IMG} sh"),
        &[b"exit 5\n"],
        &running,
    ) {
        assert_eq!(code, Some(5), "{out}");
    }
    // Without a TTY the detach keys are data like any other.
    let (code, out, _) = d.berth(
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            IMG,
            "od",
            "-An",
            "-tx1",
        ],
        Some(b"a\x10\x11b"),
    );
    assert_eq!((code, out.trim()), (0, "61 10 11 62"));
    // Detach keys: ctrl-p ctrl-q leaves the container running.
    if let Some((code, out)) = on_terminal(
        &d,
        &format!("berth run -it --name det --network none {IMG} sh"),
        &[b"\x10\x11"],
        &running,
    ) {
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(d.inspect("det", "{{.State.Status}}"), "running");
        // attach to it again: typed input reaches its shell; detach again.
        if let Some((code, out)) = on_terminal(
            &d,
            "berth attach det",
            &[b"echo att-$((2+3))\r", b"\x10\x11"],
            &|| {
                std::thread::sleep(Duration::from_secs(1));
                true
            },
        ) {
            assert_eq!(code, Some(0), "{out}");
            assert!(out.contains("att-5"), "{out:?}");
            assert_eq!(d.inspect("det", "{{.State.Status}}"), "running");
        }
    }
    // Signal proxy: SIGTERM to berth reaches the container.
    let mut c = d.berth_cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn berth");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 6];
    stdout.read_exact(&mut first).expect("ready");
    assert_eq!(&first, b"ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "berth did not end after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!((status.code(), rest.as_str()), (Some(7), "got TERM\n"));
}

#[test]
fn detached_run_and_logs_filters() {
    let d = Berthd::start();
    let id = d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "echo early; echo warn >&2; sleep 2; echo late; sleep 100",
    ]);
    let id = id.trim();
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    d.wait_until("late log", Duration::from_secs(15), || {
        d.berth_ok(&["logs", "web"]).contains("late")
    });
    let (code, out, err) = d.berth(&["logs", "web"], None);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "early\nlate\n", "warn\n")
    );
    assert_eq!(d.run(&["logs", "web"], None), (code, out, err));
    let (_, out, err) = d.berth(&["logs", "--tail", "1", "web"], None);
    assert_eq!((out.as_str(), err.as_str()), ("late\n", ""));
    assert_eq!(
        d.berth(&["logs", "-n", "2", "web"], None),
        d.run(&["logs", "-n", "2", "web"], None)
    );
    // Timestamps: RFC 3339 with nanoseconds, then the line.
    let stamped = d.berth_ok(&["logs", "-t", "web"]);
    let times: Vec<&str> = stamped
        .lines()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(stamped.lines().count(), 2, "{stamped}");
    for (t, l) in times.iter().zip(stamped.lines()) {
        assert!(t.ends_with('Z') && t.contains('T') && t.len() >= 30, "{l}");
    }
    assert!(
        stamped.lines().nth(1).unwrap_or("").ends_with(" late"),
        "{stamped}"
    );
    // --since the late line's time: only it; --until just after the early one: only it.
    let late = times[1];
    assert_eq!(d.berth_ok(&["logs", "--since", late, "web"]), "late\n");
    let early_secs = chrono_secs(times[0]);
    let until = format!("{}", early_secs + 1);
    assert_eq!(d.berth_ok(&["logs", "--until", &until, "web"]), "early\n");
    // Relative times: everything is less than an hour old, nothing older.
    assert_eq!(
        d.berth_ok(&["logs", "--since", "1h", "web"]),
        "early\nlate\n"
    );
    assert_eq!(d.berth_ok(&["logs", "--until", "1h", "web"]), "");
    assert_eq!(
        d.berth(&["logs", "--since", late, "web"], None),
        d.run(&["logs", "--since", late, "web"], None)
    );
    let (code, _, err) = d.berth(&["logs", "--since", "yesterday", "web"], None);
    assert_eq!(code, 1);
    assert!(err.contains("since") && err.contains("yesterday"), "{err}");
    // --follow ends when the container does.
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    assert_eq!(d.berth_ok(&["logs", "-f", "short"]), "a\nb\n");
    // A TTY container's log is one raw stream.
    d.berth_ok(&[
        "run",
        "-d",
        "-t",
        "--name",
        "tty",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "echo x >&2",
    ]);
    d.berth_ok(&["wait", "tty"]);
    let (_, out, err) = d.berth(&["logs", "tty"], None);
    assert_eq!((out.as_str(), err.as_str()), ("x\r\n", ""));
}

/// Seconds since the epoch of an RFC 3339 UTC time like 2024-01-02T03:04:05.123Z
/// (whole seconds; enough for the test).
fn chrono_secs(t: &str) -> i64 {
    let out = Command::new("date")
        .args(["-u", "-d", t, "+%s"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("date of {t}"))
}

#[test]
fn exec_options_and_exit_codes() {
    let d = Berthd::start();
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        IMG,
        "sleep",
        "1000",
    ]);
    let (code, out, err) = d.berth(
        &[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "box",
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u); echo oops >&2; exit 4",
        ],
        None,
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (4, "1 /tmp 65534\n", "oops\n")
    );
    let env_file = d.dir.path().join("exec.env");
    std::fs::write(&env_file, "# comment\nA=from-file\n\nB=2\n").unwrap();
    let out = d.berth_ok(&[
        "exec",
        "--env-file",
        env_file.to_str().unwrap(),
        "box",
        "sh",
        "-c",
        "echo $A $B",
    ]);
    assert_eq!(out, "from-file 2\n");
    let (code, out, _) = d.berth(&["exec", "-i", "box", "cat"], Some(b"piped\n"));
    assert_eq!((code, out.as_str()), (0, "piped\n"));
    let (code, out, _) = d.berth(&["exec", "-t", "box", "tty"], None);
    assert_eq!((code, out.as_str()), (0, "/dev/pts/0\r\n"));
    let (code, out, _) = d.berth(
        &["exec", "-d", "box", "sh", "-c", "echo bg > /tmp/mark"],
        None,
    );
    assert_eq!((code, out.as_str()), (0, ""));
    d.wait_until("exec -d", Duration::from_secs(10), || {
        d.berth(&["exec", "box", "cat", "/tmp/mark"], None).1 == "bg\n"
    });
    // A command not found: 126 (dockerd 20.10's exec; issue 11), the runtime's reason in
    // the exec's stream (berthd, as dockerd, hijacks the connection first and writes it
    // there).
    let (code, out, err) = d.berth(&["exec", "box", "nosuchcmd"], None);
    assert_eq!(code, 126, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("executable file not found"),
        "{out}{err}"
    );
    // -it on a terminal.
    if let Some((code, out)) = on_terminal(
        &d,
        "stty rows 34 cols 102; berth exec -it box sh",
        &[b"tty; stty size; exit 7\n"],
        &|| d.berth(&["exec", "box", "pgrep", "-x", "sh"], None).0 == 0,
    ) {
        assert_eq!(code, Some(7), "{out}");
        assert!(out.contains("/dev/pts/"), "{out}");
        assert!(out.contains("34 102"), "{out:?}");
    }
    // Not running, not there: one-line errors, exit 1.
    d.berth_ok(&["run", "--name", "done", "--network", "none", IMG, "true"]);
    let (code, _, err) = d.berth(&["exec", "done", "true"], None);
    assert_eq!(code, 1);
    assert!(err.contains("is not running"), "{err}");
    let (code, _, err) = d.berth(&["exec", "nosuch", "true"], None);
    assert_eq!((code, err.trim().lines().count()), (1, 1), "{err}");
    assert!(err.contains("No such container: nosuch"), "{err}");
}

#[test]
fn create_start_attach_wait() {
    let d = Berthd::start();
    let id = d.berth_ok(&[
        "create",
        "--name",
        "later",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "echo hi; exit 3",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(d.inspect("later", "{{.State.Status}}"), "created");
    assert_eq!(d.berth_ok(&["start", "later"]), "later\n");
    assert_eq!(d.berth_ok(&["wait", "later"]), "3\n");
    assert_eq!(d.berth_ok(&["logs", "later"]), "hi\n");
    // start -a: attached, and the exit code is the container's.
    assert_eq!(
        d.berth(&["start", "-a", "later"], None),
        (3, "hi\n".into(), String::new())
    );
    // The docker CLI the same (berthd streams a stopped container's next run).
    assert_eq!(
        d.run(&["start", "-a", "later"], None),
        (3, "hi\n".into(), String::new())
    );
    // create -i then start -ai: stdin through.
    d.berth_ok(&[
        "create",
        "-i",
        "--name",
        "reader",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "read x; echo got $x; exit 6",
    ]);
    assert_eq!(
        d.berth(&["start", "-ai", "reader"], Some(b"line\n")),
        (6, "got line\n".into(), String::new())
    );
    // --cidfile: the ID written; an existing file refused before anything is made.
    let cid = d.dir.path().join("cid");
    let cid_arg = cid.to_str().unwrap();
    let id = d.berth_ok(&[
        "create",
        "--cidfile",
        cid_arg,
        "--network",
        "none",
        IMG,
        "true",
    ]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id.trim());
    let err = d.berth_err(&[
        "create",
        "--cidfile",
        cid_arg,
        "--network",
        "none",
        IMG,
        "true",
    ]);
    assert!(err.contains("container ID file found"), "{err}");
    d.berth_ok(&["rm", id.trim()]);
    // wait: several containers, each code in order; an unknown one is reported.
    for (name, code) in [("three", "3"), ("five", "5")] {
        d.berth_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            &format!("sleep 1; exit {code}"),
        ]);
    }
    assert_eq!(d.berth_ok(&["wait", "three", "five"]), "3\n5\n");
    let (code, out, err) = d.berth(&["wait", "three", "nosuch"], None);
    assert_eq!((code, out.as_str()), (1, "3\n"));
    assert_eq!(
        err.trim(),
        "Error response from daemon: No such container: nosuch"
    );
    // start: an unknown one fails the command, the others start.
    d.berth_ok(&[
        "create",
        "--name",
        "ok",
        "--network",
        "none",
        IMG,
        "sleep",
        "100",
    ]);
    let (code, out, err) = d.berth(&["start", "nosuch", "ok"], None);
    assert_eq!((code, out.as_str()), (1, "ok\n"), "{err}");
    assert!(err.contains("No such container: nosuch"), "{err}");
    assert_eq!(d.inspect("ok", "{{.State.Status}}"), "running");
    // attach: to a running container with stdin open, until it exits.
    d.berth_ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "att",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "read x; echo got $x; exit 9",
    ]);
    assert_eq!(
        d.berth(&["attach", "att"], Some(b"you\n")),
        (9, "got you\n".into(), String::new())
    );
    let (code, _, err) = d.berth(&["attach", "att"], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("You cannot attach to a stopped container"),
        "{err}"
    );
    let (code, _, err) = d.berth(&["attach", "nosuch"], None);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
}

#[test]
fn volumes_limits_and_security() {
    let d = Berthd::start();
    let run = |extra: &[&str], cmd: &str| -> (i32, String, String) {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMG, "sh", "-c", cmd]);
        d.berth(&args, None)
    };
    // A named volume keeps data from one container to the next.
    assert_eq!(run(&["-v", "data:/data"], "echo kept > /data/f").0, 0);
    assert_eq!(run(&["-v", "data:/data"], "cat /data/f").1, "kept\n");
    assert_eq!(
        run(
            &["--mount", "type=volume,source=data,target=/m,readonly"],
            "cat /m/f; touch /m/x"
        )
        .0,
        1
    );
    // Bind mounts, read-only or not; anonymous volumes; tmpfs.
    let host = d.dir.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/h", host.display());
    assert_eq!(run(&["-v", &bind], "echo from-ctr > /h/out").0, 0);
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from-ctr\n"
    );
    let (code, _, err) = run(&["-v", &format!("{bind}:ro")], "echo x > /h/out2");
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(
        run(&["-v", "/anon"], "echo a > /anon/f && cat /anon/f").1,
        "a\n"
    );
    assert_eq!(
        run(
            &["--tmpfs", "/scratch"],
            "grep ' /scratch ' /proc/mounts | cut -d' ' -f3"
        )
        .1,
        "tmpfs\n"
    );
    assert_eq!(
        run(
            &["--mount", "type=tmpfs,target=/t"],
            "grep ' /t ' /proc/mounts | cut -d' ' -f3"
        )
        .1,
        "tmpfs\n"
    );
    // --read-only root.
    let (code, _, err) = run(&["--read-only"], "touch /x");
    assert_eq!(code, 1);
    assert!(err.contains("Read-only file system"), "{err}");
    // Limits: memory in the container's cgroup, as the host sees it too; ulimits.
    assert_eq!(
        run(
            &["-m", "64m"],
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
        )
        .1,
        "67108864\n"
    );
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--network",
        "none",
        "--memory",
        "32m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        IMG,
        "sleep",
        "100",
    ]);
    let pid = d.inspect("lim", "{{.State.Pid}}");
    assert_eq!(
        cgroup_file(&pid, "memory", "memory.limit_in_bytes"),
        "33554432"
    );
    assert_eq!(cgroup_file(&pid, "pids", "pids.max"), "50");
    assert_eq!(
        d.inspect(
            "lim",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}"
        ),
        "33554432 500000000 50"
    );
    assert_eq!(
        run(&["--ulimit", "nofile=100:200"], "ulimit -n; ulimit -Hn").1,
        "100\n200\n"
    );
    // Capabilities: chown works by default, not once CHOWN is dropped.
    let chown = "touch /tmp/f && chown nobody /tmp/f";
    assert_eq!(run(&[], chown).0, 0);
    let (code, _, err) = run(&["--cap-drop", "CHOWN"], chown);
    assert_eq!(code, 1);
    assert!(err.contains("Operation not permitted"), "{err}");
    // Seccomp: unshare is refused by the default profile, allowed unconfined.
    let (code, _, err) = run(&[], "unshare -U true");
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
    assert_eq!(
        run(&["--security-opt", "seccomp=unconfined"], "unshare -U true").0,
        0
    );
    // Recorded configuration: restart policy, labels, entrypoint, health check, stop.
    let labels = d.dir.path().join("labels");
    std::fs::write(&labels, "from=file\n").unwrap();
    d.berth_ok(&[
        "create",
        "--name",
        "conf",
        "--network",
        "none",
        "--restart",
        "on-failure:2",
        "-l",
        "tier=front",
        "--label-file",
        labels.to_str().unwrap(),
        "--entrypoint",
        "echo",
        "--health-cmd",
        "true",
        "--health-interval",
        "5s",
        "--health-retries",
        "2",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "3",
        "--expose",
        "80",
        IMG,
        "hi",
    ]);
    assert_eq!(
        d.inspect("conf", "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.Config.Labels.tier}} {{.Config.Labels.from}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}"),
        "on-failure:2 front file [\"echo\"] [\"hi\"]"
    );
    assert_eq!(
        d.inspect(
            "conf",
            "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}} \
             {{.Config.Healthcheck.Retries}} {{.Config.StopSignal}} {{.Config.StopTimeout}}"
        ),
        r#"["CMD-SHELL","true"] 5s 2 SIGINT 3"#
    );
    assert_eq!(d.berth(&["start", "-a", "conf"], None).1, "hi\n");
    // Bad values name their flag; nothing is created.
    for (flag, value, shown) in [
        ("--memory", "12q", "-m, --memory"),
        ("--cpus", "many", "--cpus"),
        ("--ulimit", "nofile=9:1", "--ulimit"),
        ("--mount", "type=bind,target=/x", "--mount"),
        ("--health-interval", "soon", "--health-interval"),
    ] {
        let (code, _, err) = d.berth(&["create", "--network", "none", flag, value, IMG], None);
        assert_eq!(code, 125, "{flag}: {err}");
        assert!(
            err.contains(&format!("for \"{shown}\" flag")),
            "{flag}: {err}"
        );
    }
    assert_eq!(d.berth_ok(&["ps", "-aq"]).lines().count(), 2);
}
