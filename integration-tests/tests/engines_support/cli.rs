//! The checks shared by the docker CLI (against dockerd) and podman: their command lines
//! agree on everything these checks use. Each engine test builds a `CliEngine` whose
//! `run_flags` select berth-runtime, and runs `CHECKS` against it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::*;

/// One engine reached through a docker-compatible command line.
pub struct CliEngine {
    pub name: &'static str,
    pub program: PathBuf,
    /// Global flags (before the command): sockets, roots, the runtime.
    pub global: Vec<OsString>,
    pub env: Vec<(String, OsString)>,
    /// Flags for every `run`: the runtime, and what this machine needs.
    pub run_flags: Vec<String>,
    pub image: String,
    /// Where the engine keeps berth-runtime's state root (searched for `<id>/state.json`).
    pub state_under: PathBuf,
    /// Extra `run` flags for the read-only check, and whether the engine asks for
    /// `tmpcopyup` tmpfs mounts there (podman does, on /run, /tmp, /var/tmp).
    pub readonly_flags: Vec<String>,
    pub copyup: bool,
    /// Flags for `rm -f` (podman waits 10 s for SIGTERM unless told `-t 0`).
    pub rm_flags: Vec<String>,
}

impl CliEngine {
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.global);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.args(args);
        cmd
    }

    pub fn out(&self, args: &[&str]) -> Output {
        run(self.cmd(args))
    }

    pub fn ok(&self, args: &[&str]) -> String {
        ok(self.out(args), &format!("{} {}", self.name, args.join(" ")))
    }

    /// `run` with the engine's flags, then `extra`, the image and `command`.
    pub fn run_args(&self, extra: &[&str], command: &[&str]) -> Vec<String> {
        let mut args = vec!["run".to_string()];
        args.extend(self.run_flags.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(self.image.clone());
        args.extend(command.iter().map(|s| s.to_string()));
        args
    }

    pub fn run(&self, extra: &[&str], command: &[&str]) -> Output {
        let args = self.run_args(extra, command);
        self.out(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// A detached container, removed when the guard drops.
    pub fn detached(&self, name: &str, extra: &[&str], command: &[&str]) -> Removing<'_> {
        let mut flags = vec!["-d", "--name", name];
        flags.extend_from_slice(extra);
        let args = self.run_args(&flags, command);
        let guard = Removing {
            engine: self,
            name: name.to_string(),
        };
        let id = ok(
            self.out(&args.iter().map(String::as_str).collect::<Vec<_>>()),
            "run -d",
        );
        assert!(!id.trim().is_empty(), "run -d printed no id");
        guard
    }

    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_string()
    }

    pub fn pid(&self, name: &str) -> u32 {
        self.inspect(name, "{{.State.Pid}}")
            .parse()
            .expect("State.Pid")
    }

    fn logs(&self, name: &str) -> String {
        let out = self.out(&["logs", name]);
        format!("{}{}", stdout(&out), stderr(&out))
    }
}

/// Removes a container (forcefully) when dropped.
pub struct Removing<'a> {
    engine: &'a CliEngine,
    pub name: String,
}

impl Drop for Removing<'_> {
    fn drop(&mut self) {
        let mut args = vec!["rm", "-f"];
        args.extend(self.engine.rm_flags.iter().map(String::as_str));
        args.push(&self.name);
        let _ = self.engine.out(&args);
    }
}

fn name(engine: &CliEngine, what: &str) -> String {
    format!("berth-{}-{what}-{}", engine.name, std::process::id())
}

/// Every check, in the order they run.
pub const CHECKS: &[Check<CliEngine>] = &[
    ("run: output and exit code", run_output_and_exit),
    ("run -d, then exec", detached_then_exec),
    ("stop: SIGTERM reaches the process", stop_delivers_sigterm),
    ("kill -9: exit 137", kill_9),
    ("pause / unpause", pause_unpause),
    ("top", top),
    ("memory and pids limits", limits),
    ("read-only rootfs", read_only),
    ("-t and -i on a terminal", tty_interactive),
    ("-i with piped stdin", interactive_pipe),
    ("--cap-drop", cap_drop),
    ("1 MiB to stdout, byte-exact", one_mib_stdout),
];

fn run_output_and_exit(e: &CliEngine) {
    let out = e.run(&["--rm"], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert!(stderr(&out).contains("err"), "stderr: {}", stderr(&out));
    let out = e.run(&["--rm"], &["true"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

fn detached_then_exec(e: &CliEngine) {
    let n = name(e, "exec");
    let c = e.detached(&n, &[], &["sleep", "1000"]);
    let id = e.inspect(&c.name, "{{.Id}}");
    let root = find_runtime_root(&e.state_under, &id).unwrap_or_else(|| {
        panic!(
            "no berth-runtime state for {id} under {}",
            e.state_under.display()
        )
    });
    assert_berth_state(&root, &id, "running");

    let out = e.ok(&["exec", &n, "sh", "-c", "echo $((6*7)) $$"]);
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"42"), "exec output: {out}");
    assert_ne!(words.get(1), Some(&"1"), "exec ran as pid 1: {out}");
    let out = e.out(&["exec", &n, "sh", "-c", "exit 5"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "exec exit code; stderr: {}",
        stderr(&out)
    );
    let out = e.out(&["exec", "-i", &n, "cat"]);
    assert!(out.status.success(), "exec -i: {}", stderr(&out));
    let out = run_input(
        e.cmd(&["exec", "-i", &n, "sh", "-c", "read x; echo got-$x"]),
        Some(b"hello\n"),
        CMD_LIMIT,
    );
    assert_eq!(stdout(&out).trim(), "got-hello", "stderr: {}", stderr(&out));
    let out = e.out(&["exec", "-u", "65534", &n, "id", "-u"]);
    assert_eq!(
        stdout(&out).trim(),
        "65534",
        "exec -u; stderr: {}",
        stderr(&out)
    );
}

fn stop_delivers_sigterm(e: &CliEngine) {
    let n = name(e, "stop");
    let c = e.detached(
        &n,
        &[],
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(20), || e
            .logs(&c.name)
            .contains("ready")),
        "never ready: {}",
        e.logs(&c.name)
    );
    let start = Instant::now();
    e.ok(&["stop", "-t", "30", &n]);
    let took = start.elapsed();
    assert_eq!(
        e.inspect(&n, "{{.State.ExitCode}}"),
        "7",
        "the TERM trap's exit code"
    );
    assert!(e.logs(&n).contains("got-term"), "logs: {}", e.logs(&n));
    assert!(
        took < Duration::from_secs(20),
        "stop took {took:?}: SIGTERM was not handled"
    );
}

fn kill_9(e: &CliEngine) {
    let n = name(e, "kill");
    let _c = e.detached(&n, &[], &["sleep", "1000"]);
    e.ok(&["kill", "-s", "KILL", &n]);
    let code = e.ok(&["wait", &n]);
    assert_eq!(code.trim(), "137");
    assert_eq!(e.inspect(&n, "{{.State.ExitCode}}"), "137");
}

fn pause_unpause(e: &CliEngine) {
    let n = name(e, "pause");
    let _c = e.detached(
        &n,
        &[],
        &[
            "sh",
            "-c",
            "while :; do date +%s%N > /tmp/tick; sleep 0.05; done",
        ],
    );
    let pid = e.pid(&n);
    e.ok(&["pause", &n]);
    assert_eq!(e.inspect(&n, "{{.State.Status}}"), "paused");
    assert_eq!(
        frozen(pid),
        Some(true),
        "the freezer cgroup of pid {pid} is not frozen"
    );
    e.ok(&["unpause", &n]);
    assert_eq!(e.inspect(&n, "{{.State.Status}}"), "running");
    assert_eq!(frozen(pid), Some(false));
    // The loop runs again: the tick file changes.
    let first = e.ok(&["exec", &n, "cat", "/tmp/tick"]);
    assert!(
        wait_until(Duration::from_secs(10), || e.ok(&[
            "exec",
            &n,
            "cat",
            "/tmp/tick"
        ]) != first),
        "the container did not resume"
    );
}

fn top(e: &CliEngine) {
    let n = name(e, "top");
    let _c = e.detached(&n, &[], &["sleep", "4242"]);
    let out = e.ok(&["top", &n]);
    assert!(out.contains("sleep 4242"), "top: {out}");
    // docker top runs `ps` on the host, podman reads /proc: either way the pid is the
    // engine's pid of the container's init.
    let pid = e.pid(&n);
    assert!(alive(pid), "pid {pid} from inspect is not alive");
}

fn limits(e: &CliEngine) {
    let script = format!(
        "{READ_LIMITS}; i=0; while [ $i -lt 40 ]; do sleep 2 & i=$((i+1)); done; echo forked"
    );
    let out = e.run(
        &["--rm", "-m", "64m", "--pids-limit", "20"],
        &["sh", "-c", &script],
    );
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
        stderr(&out).contains("can't fork"),
        "40 forks under a pids limit of 20 all succeeded: out={text} err={}",
        stderr(&out)
    );

    // The host sees the same limits on the container's cgroup.
    let n = name(e, "limits");
    let _c = e.detached(&n, &["-m", "96m", "--pids-limit", "33"], &["sleep", "1000"]);
    let pid = e.pid(&n);
    assert_eq!(
        host_cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max").as_deref(),
        Some("100663296")
    );
    assert_eq!(
        host_cgroup_file(pid, "pids", "pids.max", "pids.max").as_deref(),
        Some("33")
    );
}

fn read_only(e: &CliEngine) {
    let mut flags = vec!["--rm", "--read-only"];
    flags.extend(e.readonly_flags.iter().map(String::as_str));
    let script = "touch /x 2>&1; echo rc=$?; touch /tmp/y && echo tmp-writable; \
                  cat /run/sub/marker 2>/dev/null; echo";
    let out = e.run(&flags, &["sh", "-c", script]);
    let text = stdout(&out);
    assert!(out.status.success(), "out={text} err={}", stderr(&out));
    assert!(text.contains("Read-only file system"), "out={text}");
    assert!(text.contains("rc=1"), "out={text}");
    assert!(text.contains("tmp-writable"), "out={text}");
    if e.copyup {
        assert!(
            text.contains(RUN_MARKER),
            "tmpcopyup did not copy the image's /run: out={text}"
        );
    }
}

fn tty_interactive(e: &CliEngine) {
    let args = e.run_args(
        &["--rm", "-i", "-t"],
        &[
            "sh",
            "-c",
            "tty; stty size; echo ready; read x; echo got-$x; exit 4",
        ],
    );
    let mut cmd = e.cmd(&[]);
    cmd.args(&args);
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

    // -t alone, no terminal on our side.
    let out = e.run(&["--rm", "-t"], &["sh", "-c", "[ -t 1 ] && echo is-a-tty"]);
    assert!(
        stdout(&out).contains("is-a-tty\r\n"),
        "out={:?} err={}",
        stdout(&out),
        stderr(&out)
    );
}

fn interactive_pipe(e: &CliEngine) {
    let args = e.run_args(
        &["--rm", "-i"],
        &["sh", "-c", "read a; read b; echo got-$a-$b; wc -c"],
    );
    let mut cmd = e.cmd(&[]);
    cmd.args(&args);
    let out = run_input(cmd, Some(b"one\ntwo\n0123456789"), CMD_LIMIT);
    assert_eq!(
        stdout(&out),
        "got-one-two\n10\n",
        "stderr: {}",
        stderr(&out)
    );
}

fn cap_drop(e: &CliEngine) {
    let script = "grep CapEff /proc/self/status; touch /f; chown 1 /f 2>/dev/null; echo chown=$?";
    let out = e.run(&["--rm"], &["sh", "-c", script]);
    let with = stdout(&out);
    assert!(
        with.contains("chown=0"),
        "chown fails even with CAP_CHOWN: {with}"
    );
    assert_ne!(
        cap_eff(&with) & 1,
        0,
        "CAP_CHOWN missing by default: {with}"
    );

    let out = e.run(
        &["--rm", "--cap-drop", "CHOWN", "--cap-drop", "NET_RAW"],
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

    let out = e.run(
        &["--rm", "--cap-drop", "ALL"],
        &["sh", "-c", "grep CapEff /proc/self/status"],
    );
    assert_eq!(cap_eff(&stdout(&out)), 0, "{}", stdout(&out));
}

fn one_mib_stdout(e: &CliEngine) {
    let out = e.run(&["--rm"], &["sh", "-c", WRITE_ONE_MIB]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let want = one_mib();
    assert!(
        out.stdout == want,
        "stdout differs: {}",
        first_difference(&out.stdout, &want)
    );
}
