//! berth-runtime as a drop-in for runc under containerd: a containerd started here with
//! its own root, state, socket and config, driven by `ctr run` through the runc shim
//! (containerd-shim-runc-v2) with `--runc-binary <berth-runtime>` and a private
//! `--runc-root`. Needs root, containerd, ctr and containerd-shim-runc-v2.

mod engines_support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use engines_support::*;

const IMAGE: &str = "docker.io/library/berth-engines-busybox:1";

struct Ctr {
    ctr: PathBuf,
    sock: PathBuf,
    namespace: String,
    berth: PathBuf,
    runc_root: PathBuf,
    scratch: PathBuf,
}

impl Ctr {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("--address")
            .arg(&self.sock)
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args);
        cmd
    }

    fn out(&self, args: &[&str]) -> Output {
        run(self.cmd(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(self.out(args), &format!("ctr {}", args.join(" ")))
    }

    fn id(&self, what: &str) -> String {
        format!("{what}-{}", std::process::id())
    }

    /// `ctr run` with the runc shim pointed at berth-runtime, then `extra`, the image,
    /// the id and `command`.
    fn run_args(&self, extra: &[&str], id: &str, command: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--runc-binary".into(),
            self.berth.display().to_string(),
            "--runc-root".into(),
            self.runc_root.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(IMAGE.into());
        args.push(id.into());
        args.extend(command.iter().map(|s| s.to_string()));
        args
    }

    fn run_cmd(&self, extra: &[&str], id: &str, command: &[&str]) -> Command {
        let args = self.run_args(extra, id, command);
        self.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn run(&self, extra: &[&str], id: &str, command: &[&str]) -> Output {
        run(self.run_cmd(extra, id, command))
    }

    /// A detached container, removed when the guard drops.
    fn detached(&self, id: &str, extra: &[&str], command: &[&str]) -> Removing<'_> {
        let mut flags = vec!["-d"];
        flags.extend_from_slice(extra);
        let guard = Removing {
            ctr: self,
            id: id.to_string(),
        };
        ok(self.run(&flags, id, command), "ctr run -d");
        guard
    }

    /// PID and STATUS of a task from `ctr task ls`.
    fn task(&self, id: &str) -> Option<(u32, String)> {
        let out = self.ok(&["task", "ls"]);
        out.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        })
    }

    fn status(&self, id: &str) -> String {
        self.task(id).map(|t| t.1).unwrap_or_default()
    }

    /// berth-runtime's state root for this namespace (the shim appends it).
    fn state_root(&self) -> PathBuf {
        self.runc_root.join(&self.namespace)
    }

    /// Remove a container and its task, whatever state they are in.
    fn remove(&self, id: &str) {
        let _ = self.out(&["task", "kill", "-s", "SIGKILL", id]);
        let _ = wait_until(Duration::from_secs(10), || {
            !matches!(self.status(id).as_str(), "RUNNING" | "PAUSED" | "CREATED")
        });
        let _ = self.out(&["task", "rm", "-f", id]);
        let _ = self.out(&["container", "rm", id]);
    }
}

struct Removing<'a> {
    ctr: &'a Ctr,
    id: String,
}

impl Drop for Removing<'_> {
    fn drop(&mut self) {
        self.ctr.remove(&self.id);
    }
}

/// Removes every container of the test's namespace.
struct RemoveAll<'a>(&'a Ctr);

impl Drop for RemoveAll<'_> {
    fn drop(&mut self) {
        let out = self.0.out(&["container", "ls", "-q"]);
        for id in stdout(&out).split_whitespace() {
            self.0.remove(id);
        }
        let _ = self.0.out(&["image", "rm", IMAGE]);
    }
}

#[test]
fn containerd_runs_containers_with_berth_runtime() {
    require_root();
    if !have_programs(
        "containerd",
        &["containerd", "ctr", "containerd-shim-runc-v2"],
    ) {
        return;
    }
    let berth = berth_runtime();
    let mut scratch = Scratch::new("berth-eng-ctrd");
    let namespace = format!("berth-engines-{}", std::process::id());
    // ctr puts each container in the cgroup /<namespace>/<id>.
    scratch.cgroup_parents.push(namespace.clone());
    let d = scratch.path().display().to_string();
    let config = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"#
    );
    std::fs::write(scratch.join("config.toml"), config).unwrap();
    let mut cmd = Command::new(which("containerd").unwrap());
    cmd.arg("--config").arg(scratch.join("config.toml"));
    let mut daemon = Daemon::spawn("containerd", cmd, scratch.join("containerd.log"));

    let ctr = Ctr {
        ctr: which("ctr").unwrap(),
        sock: scratch.join("c.sock"),
        namespace,
        berth,
        runc_root: scratch.join("runc-root"),
        scratch: scratch.path().to_path_buf(),
    };
    let up = wait_until(Duration::from_secs(60), || {
        daemon.assert_running();
        ctr.out(&["version"]).status.success()
    });
    assert!(
        up,
        "containerd did not answer within 60s:\n{}",
        daemon.log_tail()
    );

    make_rootfs(&scratch.join("rootfs"));
    layer_tar(&scratch.join("rootfs"), &scratch.join("rootfs.tar"));
    oci_archive(
        &scratch.join("rootfs.tar"),
        IMAGE,
        &scratch.join("image.tar"),
    );
    let cleanup = RemoveAll(&ctr);
    ctr.ok(&[
        "image",
        "import",
        scratch.join("image.tar").to_str().unwrap(),
    ]);

    run_checks("containerd", &ctr, CHECKS);
    drop(cleanup);
    drop(daemon);
    drop(scratch);
}

const CHECKS: &[Check<Ctr>] = &[
    ("run: output and exit code", run_output_and_exit),
    ("run -d, then exec", detached_then_exec),
    ("stop: SIGTERM reaches the process", stop_delivers_sigterm),
    ("kill -9: exit 137", kill_9),
    ("pause / resume", pause_resume),
    ("task ps", task_ps),
    ("memory and pids limits", limits),
    ("read-only rootfs (and a tmpcopyup tmpfs)", read_only),
    ("-t on a terminal, with input", tty),
    ("stdin piped", interactive_pipe),
    ("--cap-drop", cap_drop),
    ("1 MiB to stdout, byte-exact", one_mib_stdout),
];

fn run_output_and_exit(c: &Ctr) {
    let out = c.run(
        &["--rm"],
        &c.id("out"),
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert!(stderr(&out).contains("err"), "stderr: {}", stderr(&out));
}

fn detached_then_exec(c: &Ctr) {
    let id = c.id("exec");
    let _g = c.detached(&id, &[], &["sleep", "1000"]);
    assert_berth_state(&c.state_root(), &id, "running");
    let out = c.ok(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        "echo $((6*7)) $$",
    ]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"42"), "exec output: {out}");
    assert_ne!(words.get(1), Some(&"1"), "exec ran as pid 1: {out}");
    let out = c.out(&["task", "exec", "--exec-id", "e2", &id, "sh", "-c", "exit 5"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "exec exit code; stderr: {}",
        stderr(&out)
    );
    let out = run_input(
        c.cmd(&[
            "task",
            "exec",
            "--exec-id",
            "e3",
            &id,
            "sh",
            "-c",
            "read x; echo got-$x",
        ]),
        Some(b"hello\n"),
        CMD_LIMIT,
    );
    assert_eq!(stdout(&out).trim(), "got-hello", "stderr: {}", stderr(&out));
    let out = c.out(&[
        "task",
        "exec",
        "--exec-id",
        "e4",
        "--user",
        "65534",
        &id,
        "id",
        "-u",
    ]);
    assert_eq!(
        stdout(&out).trim(),
        "65534",
        "exec --user; stderr: {}",
        stderr(&out)
    );
}

/// `ctr run` in the foreground (its exit status is the container's), signalled with
/// `ctr task kill` once the container says it is ready.
fn foreground_signalled(c: &Ctr, what: &str, signal: &str) -> (Option<i32>, String) {
    let id = c.id(what);
    let _g = Removing {
        ctr: c,
        id: id.clone(),
    };
    let log = c.scratch.join(format!("{what}.out"));
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = c.run_cmd(
        &["--rm"],
        &id,
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file));
    let mut child = cmd.spawn().unwrap();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let ready = wait_until(Duration::from_secs(20), || read().contains("ready"));
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        panic!("container never ready: {}", read());
    }
    c.ok(&["task", "kill", "-s", signal, &id]);
    let status = wait_child(&mut child, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("ctr run did not end after {signal}: {}", read()));
    (status.code(), read())
}

fn stop_delivers_sigterm(c: &Ctr) {
    let (code, out) = foreground_signalled(c, "stop", "SIGTERM");
    assert_eq!(code, Some(7), "output: {out}");
    assert!(out.contains("got-term"), "output: {out}");
}

fn kill_9(c: &Ctr) {
    let (code, out) = foreground_signalled(c, "kill", "SIGKILL");
    assert_eq!(code, Some(137), "output: {out}");
    assert!(!out.contains("got-term"), "output: {out}");
}

fn pause_resume(c: &Ctr) {
    let id = c.id("pause");
    let _g = c.detached(
        &id,
        &[],
        &[
            "sh",
            "-c",
            "while :; do date +%s%N > /tmp/tick; sleep 0.05; done",
        ],
    );
    let (pid, _) = c.task(&id).expect("task listed");
    c.ok(&["task", "pause", &id]);
    assert_eq!(c.status(&id), "PAUSED");
    assert_eq!(
        frozen(pid),
        Some(true),
        "the freezer cgroup of pid {pid} is not frozen"
    );
    assert_berth_state(&c.state_root(), &id, "paused");
    c.ok(&["task", "resume", &id]);
    assert_eq!(c.status(&id), "RUNNING");
    assert_eq!(frozen(pid), Some(false));
    let tick = |n: &str| c.ok(&["task", "exec", "--exec-id", n, &id, "cat", "/tmp/tick"]);
    let first = tick("t0");
    let mut n = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            n += 1;
            tick(&format!("t{n}")) != first
        }),
        "the container did not resume"
    );
}

fn task_ps(c: &Ctr) {
    let id = c.id("ps");
    let _g = c.detached(&id, &[], &["sh", "-c", "sleep 4242 & sleep 4343"]);
    let mut cmdlines = Vec::new();
    let found = wait_until(Duration::from_secs(10), || {
        let out = c.ok(&["task", "ps", &id]);
        cmdlines = out
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).ok())
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .collect();
        cmdlines.iter().any(|l| l.contains("sleep 4242"))
            && cmdlines.iter().any(|l| l.contains("sleep 4343"))
    });
    assert!(found, "task ps lists: {cmdlines:?}");
}

fn limits(c: &Ctr) {
    // Memory through ctr's flag, read on the host.
    let id = c.id("mem");
    let _g = c.detached(&id, &["--memory-limit", "100663296"], &["sleep", "1000"]);
    let (pid, _) = c.task(&id).expect("task listed");
    assert_eq!(
        host_cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max").as_deref(),
        Some("100663296")
    );
    // ctr has no pids flag: run a whole spec (ctr run --config) that sets both limits.
    let id = c.id("pids");
    let _g2 = Removing {
        ctr: c,
        id: id.clone(),
    };
    let bundle = c.scratch.join("spec");
    std::fs::create_dir_all(&bundle).unwrap();
    let mut cmd = Command::new(&c.berth);
    cmd.arg("spec").arg("--bundle").arg(&bundle);
    ok(run(cmd), "berth-runtime spec");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap())
            .unwrap();
    let script = format!(
        "{READ_LIMITS}; i=0; while [ $i -lt 40 ]; do sleep 2 & i=$((i+1)); done; echo forked"
    );
    spec["root"] = serde_json::json!({"path": c.scratch.join("rootfs"), "readonly": true});
    spec["process"]["terminal"] = serde_json::json!(false);
    spec["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    spec["linux"]["resources"] =
        serde_json::json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}});
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/{id}", c.namespace));
    let file = bundle.join("ctr-spec.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    let out = c.out(&[
        "run",
        "--rm",
        "--runc-binary",
        c.berth.to_str().unwrap(),
        "--runc-root",
        c.runc_root.to_str().unwrap(),
        "--config",
        file.to_str().unwrap(),
        &id,
    ]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"67108864"),
        "memory limit; out={text} err={}",
        stderr(&out)
    );
    assert_eq!(
        lines.get(1),
        Some(&"20"),
        "pids limit; out={text} err={}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("can't fork") || text.contains("can't fork"),
        "40 forks under a pids limit of 20 all succeeded: out={text} err={}",
        stderr(&out)
    );
}

fn read_only(c: &Ctr) {
    // ctr's default spec already has a tmpfs on /run (as runc, berth-runtime copies that
    // empty tmpfs up), so the copy-up goes on the image's /etc.
    let script =
        "touch /x 2>&1; echo rc=$?; touch /etc/y && echo etc-writable; grep ^nobody: /etc/passwd";
    let out = c.run(
        &[
            "--rm",
            "--read-only",
            "--mount",
            "type=tmpfs,src=tmpfs,dst=/etc,options=rw:nosuid:tmpcopyup",
        ],
        &c.id("ro"),
        &["sh", "-c", script],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "out={text} err={}", stderr(&out));
    assert!(
        text.contains("Read-only file system") && text.contains("rc=1"),
        "out={text}"
    );
    assert!(text.contains("etc-writable"), "out={text}");
    assert!(
        text.contains("nobody:x:65534"),
        "tmpcopyup did not copy the image's /etc: out={text}"
    );
}

fn tty(c: &Ctr) {
    let cmd = c.run_cmd(
        &["--rm", "-t"],
        &c.id("tty"),
        &["sh", "-c", "tty; echo ready; read x; echo got-$x; exit 4"],
    );
    let (status, screen) = run_on_pty(cmd, "ready", b"typed\r", CMD_LIMIT);
    assert!(
        screen.contains("/dev/pts/"),
        "no terminal in the container: {screen:?}"
    );
    assert!(
        screen.contains("got-typed"),
        "input did not arrive: {screen:?}"
    );
    assert_eq!(status.code(), Some(4), "screen: {screen:?}");
}

fn interactive_pipe(c: &Ctr) {
    // ctr (with runc too) never closes the container's stdin at end of input, so the
    // container reads a known amount instead of waiting for end of file.
    let cmd = c.run_cmd(
        &["--rm"],
        &c.id("stdin"),
        &[
            "sh",
            "-c",
            "read a; read b; echo got-$a-$b; head -c 10 | wc -c",
        ],
    );
    let out = run_input(cmd, Some(b"one\ntwo\n0123456789"), CMD_LIMIT);
    assert_eq!(
        stdout(&out),
        "got-one-two\n10\n",
        "stderr: {}",
        stderr(&out)
    );
}

fn cap_drop(c: &Ctr) {
    let script = "grep CapEff /proc/self/status; touch /f; chown 1 /f 2>/dev/null; echo chown=$?";
    let out = c.run(&["--rm"], &c.id("caps"), &["sh", "-c", script]);
    let with = stdout(&out);
    assert!(
        with.contains("chown=0"),
        "chown fails even with CAP_CHOWN: {with}"
    );
    let out = c.run(
        &[
            "--rm",
            "--cap-drop",
            "CAP_CHOWN",
            "--cap-drop",
            "CAP_NET_RAW",
        ],
        &c.id("nocaps"),
        &["sh", "-c", script],
    );
    let without = stdout(&out);
    let caps = cap_eff(&without);
    assert_eq!(caps & 1, 0, "CAP_CHOWN still effective: {without}");
    assert_eq!(
        caps & (1 << 13),
        0,
        "CAP_NET_RAW still effective: {without}"
    );
    assert!(
        without.contains("chown=1"),
        "chown worked without CAP_CHOWN: {without}"
    );
}

fn one_mib_stdout(c: &Ctr) {
    let out = c.run(&["--rm"], &c.id("mib"), &["sh", "-c", WRITE_ONE_MIB]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let want = one_mib();
    assert!(
        out.stdout == want,
        "stdout differs: {}",
        first_difference(&out.stdout, &want)
    );
}
