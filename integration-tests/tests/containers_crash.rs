//! Crashes under berthd, with the real docker CLI. kill -9 of a container's shim: the
//! container shows Exited (137) at once, `docker rm` (and `rm -f`) works, and nothing of
//! it is left (processes, cgroups, mounts), also when berthd restarts meanwhile, and its
//! neighbours keep their own exit codes. kill -9 of berthd while containers print: the
//! shim logs by itself, so `docker logs` has every line in order after any number of
//! restarts, a chatty container is never held up while berthd is away, and attached
//! output stays exact.

mod containers_support;

use containers_support::Berthd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const IMG: &str = "busybox:test";

/// What a container leaves if nobody cleans up after it: its processes, its cgroup
/// directories, its mounts (the rootfs in the supervisor's bundle).
struct Footprint {
    id: String,
    pids: Vec<u32>,
    cgroups: Vec<PathBuf>,
}

fn cgroup_dirs(pid: u32) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctl, path) = (p.next()?, p.next()?, p.next()?);
            // The container's own: berthd's cgroup parent is /berth.
            if !path.starts_with("/berth/") {
                return None;
            }
            let h = if ctl.is_empty() {
                "unified".to_string()
            } else {
                ctl.trim_start_matches("name=").to_string()
            };
            Some(Path::new("/sys/fs/cgroup").join(h).join(&path[1..]))
        })
        .filter(|d| d.exists())
        .collect()
}

fn procs(dirs: &[PathBuf]) -> Vec<u32> {
    let mut v: Vec<u32> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, r)| r.starts_with('Z') || r.starts_with('X')),
    }
}

fn mounts_naming(id: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(id))
        .map(String::from)
        .collect()
}

impl Footprint {
    fn of(d: &Berthd, name: &str) -> Self {
        let id = d.inspect(name, "{{.Id}}");
        let pid: u32 = d.inspect(name, "{{.State.Pid}}").parse().unwrap();
        let cgroups = cgroup_dirs(pid);
        assert!(!cgroups.is_empty(), "no cgroup of {name} under /berth");
        let mut pids = Vec::new();
        d.wait_until("its processes", Duration::from_secs(10), || {
            pids = procs(&cgroups);
            pids.len() >= 2
        });
        assert!(!mounts_naming(&id).is_empty());
        Self { id, pids, cgroups }
    }

    fn assert_gone(&self, d: &Berthd) {
        d.wait_until("its processes gone", Duration::from_secs(10), || {
            self.pids.iter().all(|p| gone(*p))
        });
        for c in &self.cgroups {
            assert!(!c.exists(), "cgroup left: {}", c.display());
        }
        assert_eq!(mounts_naming(&self.id), Vec::<String>::new());
    }
}

fn shim_pid(d: &Berthd, name: &str) -> i32 {
    let id = d.inspect(name, "{{.Id}}");
    let p = d
        .dir
        .path()
        .join("exec/supervisor/tasks/berth")
        .join(id)
        .join("shim-pid");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .unwrap()
}

fn kill9(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

fn status(d: &Berthd, name: &str) -> String {
    d.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=^{name}$"),
        "--format",
        "{{.Status}}",
    ])
    .trim()
    .to_string()
}

#[test]
fn kill9_of_a_shim_shows_exited_137_and_rm_works() {
    let d = Berthd::start();
    for name in ["victim", "forced"] {
        d.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "sleep 1001 & sleep 1000",
        ]);
    }
    d.ok(&[
        "run",
        "-d",
        "--name",
        "neighbour",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "sleep 3; exit 3",
    ]);
    let victim = Footprint::of(&d, "victim");
    let forced = Footprint::of(&d, "forced");

    kill9(shim_pid(&d, "victim"));
    d.wait_until("victim exited", Duration::from_secs(20), || {
        status(&d, "victim").starts_with("Exited (137)")
    });
    assert_eq!(d.inspect("victim", "{{.State.ExitCode}}"), "137");
    assert_eq!(d.inspect("victim", "{{.State.Running}}"), "false");
    // Why, as the supervisor published it.
    let why = d.inspect("victim", "{{.State.Error}}");
    assert!(why.starts_with("shim died (pid "), "{why}");
    victim.assert_gone(&d);
    d.ok(&["rm", "victim"]);
    assert!(d.err(&["inspect", "victim"]).contains("No such"));

    // rm -f right after the kill: no 500, the container goes.
    kill9(shim_pid(&d, "forced"));
    let started = Instant::now();
    d.ok(&["rm", "-f", "forced"]);
    assert!(started.elapsed() < Duration::from_secs(30));
    forced.assert_gone(&d);

    // The neighbour exited meanwhile with its own code.
    assert_eq!(d.ok(&["wait", "neighbour"]).trim(), "3");
    assert_eq!(d.inspect("neighbour", "{{.State.ExitCode}}"), "3");
    d.ok(&["rm", "neighbour"]);
}

#[test]
fn a_shim_dead_across_a_berthd_restart_is_cleaned_up_too() {
    let mut d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "lost",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "sleep 1001 & sleep 1000",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "meanwhile",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "sleep 2; exit 4",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "stays",
        "--network",
        "none",
        IMG,
        "sleep",
        "1000",
    ]);
    let lost = Footprint::of(&d, "lost");
    let shim = shim_pid(&d, "lost");
    d.crash_and_restart_with(|| {
        kill9(shim);
        std::thread::sleep(Duration::from_secs(3));
    });
    d.wait_until("lost exited", Duration::from_secs(20), || {
        status(&d, "lost").starts_with("Exited (137)")
    });
    lost.assert_gone(&d);
    // Learnt from the supervisor's record at restore, not from an event.
    let why = d.inspect("lost", "{{.State.Error}}");
    assert!(
        why.starts_with("shim (pid ") && why.contains("killed what was left"),
        "{why}"
    );
    d.ok(&["rm", "lost"]);
    assert_eq!(d.inspect("meanwhile", "{{.State.ExitCode}}"), "4");
    assert!(
        status(&d, "stays").starts_with("Up"),
        "{}",
        status(&d, "stays")
    );
    d.ok(&["rm", "-f", "stays", "meanwhile"]);
}

/// Numbered lines, `n` of them, a few milliseconds apart.
fn counter(n: u32) -> String {
    format!("i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo line $i; sleep 0.005; done")
}

#[test]
fn no_log_line_is_lost_across_berthd_kill9() {
    let mut d = Berthd::start();
    let n = 3000;
    d.ok(&[
        "run",
        "-d",
        "--name",
        "count",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        &counter(n),
    ]);
    // Ten kill -9 of berthd while it prints, at varying points.
    for round in 0..10u64 {
        std::thread::sleep(Duration::from_millis(150 + 70 * (round % 5)));
        d.crash_and_restart();
    }
    assert_eq!(d.ok(&["wait", "count"]).trim(), "0");
    let logs = d.ok(&["logs", "count"]);
    let want: String = (1..=n).map(|i| format!("line {i}\n")).collect();
    if logs != want {
        let got: Vec<&str> = logs.lines().collect();
        panic!(
            "{} of {n} lines, first difference at line {:?}",
            got.len(),
            got.iter().zip(want.lines()).position(|(a, b)| *a != b)
        );
    }
    // The log is the container's own, private file.
    let path = d.inspect("count", "{{.LogPath}}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{path}");
}

#[test]
fn a_chatty_container_is_not_held_up_while_berthd_is_down() {
    let mut d = Berthd::start();
    // About 4 MB: far more than a FIFO holds, so it would block on a reader that is gone.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "sleep 1; seq 1 500000; echo done",
    ]);
    let pid: u32 = d.inspect("chatty", "{{.State.Pid}}").parse().unwrap();
    let log = PathBuf::from(d.inspect("chatty", "{{.LogPath}}"));
    d.crash_and_restart_with(|| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !gone(pid) {
            assert!(
                Instant::now() < deadline,
                "the container did not finish while berthd was down"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("\"log\":\"done\\n\""),
            "the log was not written while berthd was down"
        );
    });
    assert_eq!(d.ok(&["wait", "chatty"]).trim(), "0");
    let logs = d.ok(&["logs", "chatty"]);
    let mut want: String = (1..=500_000).map(|i| format!("{i}\n")).collect();
    want.push_str("done\n");
    assert!(logs == want, "{} bytes of {}", logs.len(), want.len());
}

#[test]
fn attached_output_is_exact_and_logs_follow_it() {
    let d = Berthd::start();
    let (code, out, err) = d.run(
        &[
            "run",
            "--name",
            "big",
            "--network",
            "none",
            IMG,
            "seq",
            "1",
            "400000",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let want: String = (1..=400_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(out.len(), want.len());
    assert!(out == want, "attached output differs");
    assert!(d.ok(&["logs", "big"]) == want, "logs differ");
    // With a terminal, output and logs are the same bytes too.
    let (code, out, err) = d.run(
        &[
            "run",
            "--rm",
            "-t",
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "seq 1 20000",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let want: String = (1..=20_000).map(|i| format!("{i}\r\n")).collect();
    assert!(
        out == want,
        "tty output differs: {} vs {}",
        out.len(),
        want.len()
    );
}
