//! Berth's own CLI (`berth`) managing containers against berthd: stop, kill, restart,
//! rm, pause/unpause, rename, update, inspect, top, stats, cp and events, with docker's
//! flags, output and exit codes; containers are set up with the real docker CLI, and
//! where useful berth's output is compared with docker's against the same berthd.

mod cgroup_support;
mod containers_support;

use cgroup_support::cgroup_file;
use containers_support::Berthd;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const IMG: &str = "busybox:test";

/// `docker run -d --network none --name NAME busybox:test ARGS...` (plus `extra` flags).
fn detached(d: &Berthd, name: &str, extra: &[&str], cmd: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--network", "none", "--name", name];
    args.extend_from_slice(extra);
    args.push(IMG);
    args.extend_from_slice(cmd);
    d.ok(&args).trim().to_string()
}

/// A container that sleeps as PID 1 (which ignores SIGTERM, as an init does).
fn sleeper(d: &Berthd, name: &str) -> String {
    detached(d, name, &[], &["sleep", "1000"])
}

/// A container whose shell exits with 128+N on SIGTERM and SIGHUP, as a shell script
/// killed by them would.
fn trapper(d: &Berthd, name: &str) -> String {
    detached(
        d,
        name,
        &[],
        &[
            "sh",
            "-c",
            "trap 'exit 143' TERM; trap 'exit 129' HUP; while true; do sleep 0.1; done",
        ],
    )
}

fn state(d: &Berthd, name: &str) -> String {
    d.inspect(name, "{{.State.Status}} {{.State.ExitCode}}")
}

fn wait_state(d: &Berthd, name: &str, want: &str) {
    d.wait_until(&format!("{name} {want}"), Duration::from_secs(20), || {
        state(d, name) == want
    });
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time after 1970")
        .as_secs_f64()
}

#[test]
fn stop_kill_restart_change_states_with_docker_exit_codes() {
    let d = Berthd::start();
    sleeper(&d, "sl");
    trapper(&d, "tr");
    trapper(&d, "hup");

    // SIGTERM reaches the trapping shell at once: 143, well before the timeout.
    let t = Instant::now();
    assert_eq!(d.berth_ok(&["stop", "-t", "30", "tr"]), "tr\n");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(state(&d, "tr"), "exited 143");
    // -s picks the signal.
    assert_eq!(d.berth_ok(&["stop", "-s", "HUP", "hup"]), "hup\n");
    assert_eq!(state(&d, "hup"), "exited 129");
    // PID 1 ignores SIGTERM: killed after the timeout, 137.
    let t = Instant::now();
    assert_eq!(d.berth_ok(&["stop", "--time", "1", "sl"]), "sl\n");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(state(&d, "sl"), "exited 137");

    // restart starts a stopped container again, with a new process.
    let old_pid = d.inspect("tr", "{{.State.Pid}}");
    assert_eq!(d.berth_ok(&["restart", "-t", "5", "tr"]), "tr\n");
    assert_eq!(d.inspect("tr", "{{.State.Status}}"), "running");
    let new_pid = d.inspect("tr", "{{.State.Pid}}");
    assert_ne!(new_pid, old_pid);
    assert_ne!(new_pid, "0");

    // kill: SIGKILL by default (137), -s for another signal.
    assert_eq!(d.berth_ok(&["kill", "tr"]), "tr\n");
    wait_state(&d, "tr", "exited 137");
    d.berth_ok(&["restart", "tr"]);
    assert_eq!(d.berth_ok(&["kill", "-s", "TERM", "tr"]), "tr\n");
    wait_state(&d, "tr", "exited 143");

    // Several containers, some unknown: each is reported, the others still go ahead.
    d.berth_ok(&["restart", "sl", "tr"]);
    let (code, out, err) = d.berth(&["stop", "-t", "1", "nope1", "sl", "nope2", "tr"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out, "sl\ntr\n");
    assert!(
        err.contains("Error response from daemon: No such container: nope1"),
        "{err}"
    );
    assert!(
        err.contains("Error response from daemon: No such container: nope2"),
        "{err}"
    );
    assert_eq!(state(&d, "sl"), "exited 137");
    assert_eq!(state(&d, "tr"), "exited 143");
    // Killing a stopped container is an error; the running one is still killed.
    sleeper(&d, "sl2");
    let (code, out, err) = d.berth(&["kill", "sl", "sl2"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out, "sl2\n");
    assert!(err.contains("is not running"), "{err}");
    wait_state(&d, "sl2", "exited 137");
    let (code, _, err) = d.berth(&["restart", "nope"], None);
    assert_eq!(code, 1);
    assert_eq!(err, "Error response from daemon: No such container: nope\n");
}

#[test]
fn rm_force_volumes_and_unknown_containers() {
    let d = Berthd::start();
    sleeper(&d, "run1");
    d.ok(&["create", "--network", "none", "--name", "made", IMG, "true"]);
    detached(&d, "withvol", &["-v", "/data"], &["sleep", "1000"]);
    let vol = d.inspect("withvol", "{{range .Mounts}}{{.Name}}{{end}}");
    assert!(!vol.is_empty());

    // A running container needs -f; the created one goes; unknown ones are reported.
    let (code, out, err) = d.berth(&["rm", "run1", "nope", "made"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out, "made\n");
    assert!(
        err.contains("container is running: stop the container before removing or force remove"),
        "{err}"
    );
    assert!(
        err.contains("Error response from daemon: No such container: nope"),
        "{err}"
    );
    assert_eq!(state(&d, "run1"), "running 0");
    assert!(d.err(&["inspect", "made"]).contains("No such object"));

    assert_eq!(d.berth_ok(&["rm", "-f", "run1"]), "run1\n");
    assert!(d.err(&["inspect", "run1"]).contains("No such object"));
    // -v takes the anonymous volume along.
    assert_eq!(d.berth_ok(&["rm", "-f", "-v", "withvol"]), "withvol\n");
    let vols = d.ok(&["volume", "ls", "-q"]);
    assert!(!vols.contains(&vol), "{vols}");
    // No container named at all is a usage error.
    let (code, _, _) = d.berth(&["rm"], None);
    assert_ne!(code, 0);
}

#[test]
fn inspect_answers_as_docker_inspect() {
    let d = Berthd::start();
    detached(
        &d,
        "insp",
        &[
            "-e",
            "A=1",
            "-e",
            "B=two words",
            "--memory",
            "64m",
            "-v",
            "vdata:/data",
        ],
        &["sleep", "1000"],
    );
    for f in [
        "{{.State.Status}}",
        "{{.Id}}",
        "{{.Name}}",
        "{{json .Config.Env}}",
        "{{.HostConfig.Memory}}",
        "{{json .Config.Cmd}}",
        "{{.State.Pid}} {{.State.Running}} {{.Image}}",
        "{{.Config.Image}}/{{.HostConfig.NetworkMode}}",
    ] {
        assert_eq!(
            d.berth_ok(&["inspect", "-f", f, "insp"]),
            d.ok(&["inspect", "-f", f, "insp"]),
            "format {f}"
        );
    }
    assert_eq!(
        d.berth_ok(&["inspect", "-f", "{{.HostConfig.Memory}}", "insp"]),
        "67108864\n"
    );
    // Images and volumes too, by the same generic inspect.
    for (name, f) in [
        (IMG, "{{.Id}} {{json .RepoTags}}"),
        ("vdata", "{{.Name}} {{.Driver}}"),
    ] {
        assert_eq!(
            d.berth_ok(&["inspect", "--format", f, name]),
            d.ok(&["inspect", "--format", f, name]),
            "{name}"
        );
    }
    // The default: a JSON array, with the same object docker shows.
    let ours: serde_json::Value =
        serde_json::from_str(&d.berth_ok(&["inspect", "insp", IMG])).expect("JSON array");
    let theirs: serde_json::Value =
        serde_json::from_str(&d.ok(&["inspect", "insp", IMG])).expect("JSON array");
    assert_eq!(ours.as_array().map(Vec::len), Some(2));
    assert_eq!(ours[0]["Id"], theirs[0]["Id"]);
    assert_eq!(ours[1]["Id"], theirs[1]["Id"]);
    assert_eq!(ours[0]["State"]["Status"], "running");
    // `--format json`: the array on one line.
    let line = d.berth_ok(&["inspect", "--format", "json", "insp"]);
    assert_eq!(line.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(v[0]["Name"], "/insp");

    // Unknown: `[]` and docker's error, exit 1; the known ones are still shown.
    let (code, out, err) = d.berth(&["inspect", "nope"], None);
    assert_eq!((code, out.as_str()), (1, "[]\n"));
    assert_eq!(err, "Error: No such object: nope\n");
    let (code, out, err) = d.berth(&["inspect", "-f", "{{.Name}}", "nope", "insp"], None);
    assert_eq!((code, out.as_str()), (1, "/insp\n"), "{err}");
    assert!(err.contains("No such object: nope"), "{err}");
    // --type limits the search.
    let (code, _, err) = d.berth(&["inspect", "--type", "image", "insp"], None);
    assert_eq!(code, 1);
    assert!(err.contains("Error response from daemon"), "{err}");
    assert_eq!(
        d.berth_ok(&["inspect", "--type", "volume", "-f", "{{.Name}}", "vdata"]),
        "vdata\n"
    );
}

#[test]
fn top_and_stats_show_the_container() {
    let d = Berthd::start();
    detached(&d, "busy", &["--memory", "64m"], &["sleep", "1000"]);
    let pid = d.inspect("busy", "{{.State.Pid}}");

    let top = d.berth_ok(&["top", "busy"]);
    let mut lines = top.lines();
    let header = lines.next().expect("a header");
    assert!(header.starts_with("UID") && header.contains("PID"), "{top}");
    assert!(
        top.lines()
            .any(|l| l.contains(&pid) && l.ends_with("sleep 1000")),
        "{top}"
    );
    // ps options are passed on, as docker does.
    let top = d.berth_ok(&["top", "busy", "-o", "pid,comm"]);
    let rows: Vec<Vec<&str>> = top
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["PID", "COMMAND"], "{top}");
    assert_eq!(rows[1..], [vec![pid.as_str(), "sleep"]], "{top}");
    let (code, _, err) = d.berth(&["top", "nope"], None);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nope"), "{err}");

    // stats --no-stream: one table, the container with its memory and limit.
    let out = d.berth_ok(&["stats", "--no-stream"]);
    let mut lines = out.lines();
    let header = lines.next().expect("a header");
    for col in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "PIDS",
    ] {
        assert!(header.contains(col), "{out}");
    }
    let row = lines.next().expect("a row");
    assert!(row.contains("busy") && row.contains(" / 64MiB"), "{out}");
    assert!(row.split_whitespace().last() == Some("1"), "{out}");
    let out = d.berth_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}: {{.MemUsage}}",
        "busy",
    ]);
    let (name, mem) = out.trim().split_once(": ").expect("name: mem");
    assert_eq!(name, "busy");
    let used = mem.split(" / ").next().unwrap_or("");
    assert!(
        used.ends_with("KiB") || used.ends_with("MiB"),
        "memory figure {mem}"
    );
    assert!(!used.starts_with("0B"), "no memory figure: {mem}");
    let out = d.berth_ok(&[
        "stats",
        "--no-stream",
        "--no-trunc",
        "--format",
        "json",
        "busy",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(v["ID"], d.inspect("busy", "{{.Id}}"));
    assert!(
        v["CPUPerc"].as_str().is_some_and(|c| c.ends_with('%')),
        "{v}"
    );
    assert_eq!(v["PIDs"], "1");
    let (code, _, err) = d.berth(&["stats", "--no-stream", "nope"], None);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nope"), "{err}");

    // Streaming to a pipe: the table again and again, no terminal codes; containers
    // started meanwhile join it.
    let out = streamed(
        &d,
        &["stats", "--format", "table {{.Name}}\t{{.PIDs}}"],
        || {
            detached(&d, "late", &[], &["sleep", "1000"]);
        },
    );
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(out.matches("NAME").count() >= 2, "{out}");
    assert!(out.lines().any(|l| l.starts_with("busy ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("late ")), "{out}");
}

/// The output of a streaming `berth ARGS` over about four seconds, running `meanwhile`
/// after the first; then it is killed.
fn streamed(d: &Berthd, args: &[&str], meanwhile: impl FnOnce()) -> String {
    use std::io::Read;
    let mut child = d
        .berth_cmd(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn berth");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    std::thread::sleep(Duration::from_secs(1));
    meanwhile();
    std::thread::sleep(Duration::from_secs(3));
    let _ = child.kill();
    let _ = child.wait();
    reader.join().expect("reader thread")
}

#[test]
fn pause_unpause_rename_update() {
    let d = Berthd::start();
    sleeper(&d, "pz");
    let pid = d.inspect("pz", "{{.State.Pid}}");

    assert_eq!(d.berth_ok(&["pause", "pz"]), "pz\n");
    assert_eq!(
        d.inspect("pz", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    assert_eq!(cgroup_file(&pid, "freezer", "freezer.state"), "FROZEN");
    // Pausing twice is an error, unknown containers too; exit 1.
    let (code, out, err) = d.berth(&["pause", "pz", "nope"], None);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("is already paused"), "{err}");
    assert!(err.contains("No such container: nope"), "{err}");
    assert_eq!(d.berth_ok(&["unpause", "pz"]), "pz\n");
    assert_eq!(d.inspect("pz", "{{.State.Status}}"), "running");
    assert_eq!(cgroup_file(&pid, "freezer", "freezer.state"), "THAWED");
    let (code, _, err) = d.berth(&["unpause", "pz"], None);
    assert_eq!(code, 1);
    assert!(err.contains("is not paused"), "{err}");

    // rename: the new name finds it, the old one does not.
    assert_eq!(d.berth_ok(&["rename", "pz", "qz"]), "");
    assert_eq!(
        d.berth_ok(&["inspect", "-f", "{{.Name}} {{.State.Pid}}", "qz"]),
        format!("/qz {pid}\n")
    );
    assert_eq!(d.berth(&["inspect", "pz"], None).0, 1);
    sleeper(&d, "other");
    let (code, _, err) = d.berth(&["rename", "qz", "other"], None);
    assert_eq!(code, 1);
    assert!(err.contains("is already in use"), "{err}");

    // update: resources reach the running container's cgroups, and inspect.
    let out = d.berth_ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--pids-limit",
        "20",
        "--cpu-shares",
        "512",
        "--restart",
        "on-failure:2",
        "qz",
        "other",
    ]);
    assert_eq!(out, "qz\nother\n");
    assert_eq!(
        d.berth_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpuShares}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            "qz"
        ]),
        "67108864 134217728 20 512 on-failure:2\n"
    );
    assert_eq!(
        cgroup_file(&pid, "memory", "memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(cgroup_file(&pid, "pids", "pids.max"), "20");
    assert_eq!(cgroup_file(&pid, "cpu", "cpu.shares"), "512");
    let (code, _, err) = d.berth(&["update", "qz"], None);
    assert_ne!(code, 0);
    assert!(err.contains("one or more flags"), "{err}");
    let (code, out, err) = d.berth(&["update", "--memory", "96m", "nope", "qz"], None);
    assert_eq!((code, out.as_str()), (1, "qz\n"), "{err}");
    assert_eq!(
        cgroup_file(&pid, "memory", "memory.limit_in_bytes"),
        "100663296"
    );
}

/// Everything under `dir` as `path: content` lines (directories as `path/`, links as
/// `path -> target`), sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .expect("under base")
                .display()
                .to_string();
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            if m.file_type().is_symlink() {
                // Compared as paths: berthd's tar writes a link to `/` as `//`.
                let to: std::path::PathBuf = std::fs::read_link(&p)
                    .expect("readlink")
                    .components()
                    .collect();
                out.push(format!("{rel} -> {}", to.display()));
            } else if m.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &p, out);
            } else {
                let data = std::fs::read_to_string(&p).unwrap_or_default();
                out.push(format!("{rel}: {}", data.trim()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn cp_copies_files_and_directories_both_ways() {
    let d = Berthd::start();
    sleeper(&d, "cp1");
    d.ok(&[
        "exec",
        "cp1",
        "sh",
        "-c",
        "mkdir -p /src/sub && echo one > /src/a && echo two > /src/sub/b && ln -s a /src/link",
    ]);
    let w = tempfile::tempdir().expect("tempdir");
    let at = |p: &str| w.path().join(p).display().to_string();

    // A file to a new name, and into an existing directory.
    d.berth_ok(&["cp", "cp1:/src/a", &at("file")]);
    assert_eq!(std::fs::read_to_string(at("file")).expect("file"), "one\n");
    std::fs::create_dir(at("into")).expect("mkdir");
    d.berth_ok(&["cp", "cp1:/src/sub/b", &at("into")]);
    assert_eq!(tree(&w.path().join("into")), ["b: two"]);
    // An existing file is replaced.
    d.berth_ok(&["cp", "cp1:/src/sub/b", &at("file")]);
    assert_eq!(std::fs::read_to_string(at("file")).expect("file"), "two\n");
    // A directory to a new name, into an existing directory, and its content only.
    d.berth_ok(&["cp", "cp1:/src", &at("newdir")]);
    let want = ["a: one", "link -> a", "sub/", "sub/b: two"];
    assert_eq!(tree(&w.path().join("newdir")), want);
    d.berth_ok(&["cp", "cp1:/src", &at("into")]);
    assert_eq!(tree(&w.path().join("into/src")), want);
    std::fs::create_dir(at("content")).expect("mkdir");
    d.berth_ok(&["cp", "cp1:/src/.", &at("content")]);
    assert_eq!(tree(&w.path().join("content")), want);
    // -L copies what a link points to, under the link's name.
    d.berth_ok(&["cp", "-L", "cp1:/src/link", &at("followed")]);
    assert_eq!(
        std::fs::read_to_string(at("followed")).expect("file"),
        "one\n"
    );
    // A relative destination is taken from the working directory.
    let mut c = d.berth_cmd(&["cp", "cp1:/src/a", "rel"]);
    c.current_dir(w.path());
    assert!(c.status().expect("berth cp").success());
    assert_eq!(std::fs::read_to_string(at("rel")).expect("file"), "one\n");
    // `-` writes a tar to stdout.
    let out = containers_support::run_with_timeout(
        d.berth_cmd(&["cp", "cp1:/src", "-"]),
        None,
        Duration::from_secs(60),
    );
    assert!(out.status.success());
    let mut names: Vec<String> = tar::Archive::new(out.stdout.as_slice())
        .entries()
        .expect("a tar")
        .map(|e| {
            let e = e.expect("entry");
            e.path().expect("path").display().to_string()
        })
        .map(|n| n.trim_end_matches('/').to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["src", "src/a", "src/link", "src/sub", "src/sub/b"]);

    // Errors: a missing source, a directory over a file, a missing parent.
    let (code, _, err) = d.berth(&["cp", "cp1:/nope", &at("x")], None);
    assert_eq!(code, 1);
    assert!(err.contains("Could not find the file /nope"), "{err}");
    assert!(!w.path().join("x").exists());
    let (code, _, err) = d.berth(&["cp", "cp1:/src", &at("file")], None);
    assert_eq!(code, 1);
    assert!(err.contains("cannot copy directory"), "{err}");
    let (code, _, err) = d.berth(&["cp", "cp1:/src/a", &at("no/such/dir")], None);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, err) = d.berth(&["cp", "nope:/src/a", &at("y")], None);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nope"), "{err}");

    // Into the container: a file into a directory and to a new name, a directory to a
    // new name and into a directory, a directory's content, and a tar from stdin.
    std::fs::create_dir_all(at("up/deep")).expect("mkdir");
    std::fs::write(at("up/f"), "local f\n").expect("write");
    std::fs::write(at("up/deep/g"), "local g\n").expect("write");
    d.berth_ok(&["cp", &at("up/f"), "cp1:/tmp"]);
    d.berth_ok(&["cp", &at("up/f"), "cp1:/tmp/renamed"]);
    d.berth_ok(&["cp", &at("up"), "cp1:/tmp/updir"]);
    d.berth_ok(&["cp", &at("up"), "cp1:/src"]);
    d.ok(&["exec", "cp1", "mkdir", "/tmp/content"]);
    d.berth_ok(&["cp", &format!("{}/.", at("up")), "cp1:/tmp/content"]);
    let show = |p: &str| {
        d.ok(&[
            "exec",
            "cp1",
            "sh",
            "-c",
            &format!("cd {p} && find . | sort && cat $(find . -type f | sort)"),
        ])
    };
    assert_eq!(
        d.ok(&["exec", "cp1", "cat", "/tmp/f", "/tmp/renamed"]),
        "local f\nlocal f\n"
    );
    let want = "./\n./deep\n./deep/g\n./f\nlocal g\nlocal f\n".replace("./\n", ".\n");
    assert_eq!(show("/tmp/updir"), want);
    assert_eq!(show("/src/up"), want);
    assert_eq!(show("/tmp/content"), want);
    // Owned by root in the container, whoever owned them here (no -a).
    assert_eq!(
        d.ok(&["exec", "cp1", "stat", "-c", "%u:%g", "/tmp/updir/deep/g"])
            .trim(),
        "0:0"
    );
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(8);
    h.set_mode(0o640);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "fromstdin/x", &b"stdin x\n"[..])
        .expect("tar");
    let data = b.into_inner().expect("tar");
    let (code, out, err) = d.berth(&["cp", "-", "cp1:/tmp"], Some(&data));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        d.ok(&["exec", "cp1", "cat", "/tmp/fromstdin/x"]),
        "stdin x\n"
    );
    assert_eq!(
        d.ok(&["exec", "cp1", "stat", "-c", "%a", "/tmp/fromstdin/x"])
            .trim(),
        "640"
    );
    // stdin needs a directory; a missing local source is reported.
    let (code, _, err) = d.berth(&["cp", "-", "cp1:/tmp/f"], Some(&data));
    assert_eq!(code, 1);
    assert!(err.contains("must be a directory"), "{err}");
    let (code, _, err) = d.berth(&["cp", &at("missing"), "cp1:/tmp"], None);
    assert_eq!(code, 1);
    assert!(err.contains("no such file or directory"), "{err}");
    let (code, _, err) = d.berth(&["cp", &at("up"), &at("up2")], None);
    assert_eq!(code, 1);
    assert!(err.contains("at least one container"), "{err}");

    // A stopped container can be copied from and to as well.
    d.ok(&["stop", "-t", "0", "cp1"]);
    d.berth_ok(&["cp", "cp1:/tmp/renamed", &at("stopped")]);
    assert_eq!(
        std::fs::read_to_string(at("stopped")).expect("file"),
        "local f\n"
    );
}

#[test]
fn cp_from_a_hostile_container_writes_nothing_outside_the_destination() {
    let d = Berthd::start();
    sleeper(&d, "evil");
    let outer = tempfile::tempdir().expect("tempdir");
    let dest = outer.path().join("dest");
    std::fs::create_dir(&dest).expect("mkdir");
    let out_path = outer.path().display().to_string();
    // Links to the root, up the tree, and to the host path of the test directory
    // (as the container might guess it), at the top and inside a directory.
    d.ok(&[
        "exec",
        "evil",
        "sh",
        "-c",
        &format!(
            "ln -s / /link && ln -s ../../../.. /up && mkdir -p /d/sub && \
             ln -s / /d/root && ln -s ../../../../../.. /d/up && ln -s {out_path} /d/host && \
             echo pwned > /d/sub/payload"
        ),
    ]);
    let before_root: Vec<String> = std::fs::read_dir("/")
        .expect("ls /")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();

    // The link itself is copied: a symlink in dest, nothing written through it.
    d.berth_ok(&["cp", "evil:/link", &dest.join("l1").display().to_string()]);
    d.berth_ok(&["cp", "evil:/up", &dest.display().to_string()]);
    d.berth_ok(&["cp", "evil:/d", &dest.display().to_string()]);
    assert!(std::fs::symlink_metadata(dest.join("l1"))
        .expect("l1")
        .file_type()
        .is_symlink());
    assert!(std::fs::symlink_metadata(dest.join("up"))
        .expect("up")
        .file_type()
        .is_symlink());
    assert_eq!(
        tree(&dest.join("d")),
        [
            format!("host -> {out_path}"),
            "root -> /".to_string(),
            "sub/".to_string(),
            "sub/payload: pwned".to_string(),
            "up -> ../../../../../..".to_string(),
        ]
    );

    // Now the container turns those links into directories with files in them, and
    // the copy goes over the links made by the first one: the links are replaced,
    // never followed.
    d.ok(&[
        "exec",
        "evil",
        "sh",
        "-c",
        "rm /d/root /d/up /d/host && mkdir -p /d/root/tmp /d/up /d/host && \
         echo pwned > /d/root/tmp/evil-root && echo pwned > /d/up/evil-up && \
         echo pwned > /d/host/evil-host",
    ]);
    d.berth_ok(&["cp", "evil:/d", &dest.display().to_string()]);
    d.berth_ok(&["cp", "evil:/d/.", &dest.join("d").display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(dest.join("d/host/evil-host")).expect("inside dest"),
        "pwned\n"
    );
    assert!(!outer.path().join("evil-host").exists());
    assert!(!Path::new("/tmp/evil-root").exists());
    // Nothing appeared anywhere above dest.
    let outer_now: Vec<String> = std::fs::read_dir(outer.path())
        .expect("ls outer")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(outer_now, ["dest"]);
    let mut after_root: Vec<String> = std::fs::read_dir("/")
        .expect("ls /")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut before_root = before_root;
    before_root.sort();
    after_root.sort();
    assert_eq!(before_root, after_root);
    // A directory's content through a link in the container: the link is resolved in
    // the container (its own root), and lands inside dest.
    let into = dest.join("via-link");
    std::fs::create_dir(&into).expect("mkdir");
    d.ok(&[
        "exec",
        "evil",
        "sh",
        "-c",
        "mkdir -p /x && echo inner > /x/f && ln -s /x /d/tox",
    ]);
    d.berth_ok(&["cp", "evil:/d/tox/.", &into.display().to_string()]);
    assert_eq!(tree(&into), ["f: inner"]);
}

#[test]
fn events_show_a_container_run_during_the_stream() {
    let d = Berthd::start();
    let since = format!("{:.3}", unix_now() - 1.0);
    let until = format!("{:.3}", unix_now() + 12.0);
    let (code, out, err) = std::thread::scope(|s| {
        let stream = s.spawn(|| {
            d.berth(
                &[
                    "events",
                    "--since",
                    &since,
                    "--until",
                    &until,
                    "--filter",
                    "container=ev1",
                ],
                None,
            )
        });
        // The container runs while the stream is open.
        std::thread::sleep(Duration::from_millis(1500));
        d.ok(&["run", "--network", "none", "--name", "ev1", IMG, "true"]);
        d.ok(&["run", "--network", "none", "--name", "ev2", IMG, "true"]);
        stream.join().expect("events thread")
    });
    assert_eq!(code, 0, "{out}{err}");
    let id = d.inspect("ev1", "{{.Id}}");
    let actions: Vec<&str> = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(5, ' ').collect();
            assert_eq!(f.len(), 5, "{l}");
            assert!(f[0].ends_with('Z') && f[0].contains('T'), "time: {l}");
            assert_eq!(f[1], "container", "{l}");
            assert_eq!(f[3], id, "{l}");
            assert!(
                f[4].contains("image=busybox:test") && f[4].contains("name=ev1"),
                "{l}"
            );
            f[2]
        })
        .collect();
    let pos = |a: &str| {
        actions
            .iter()
            .position(|x| *x == a)
            .unwrap_or_else(|| panic!("no {a} event in {out}"))
    };
    assert!(
        pos("create") < pos("start") && pos("start") < pos("die"),
        "{out}"
    );

    // Past events, bounded by --until, with a template and as JSON.
    let until = format!("{:.3}", unix_now());
    let out = d.berth_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{.Actor.Attributes.name}} {{.Action}} {{.Type}}",
        "-f",
        "event=die",
    ]);
    assert_eq!(out, "ev1 die container\nev2 die container\n");
    let out = d.berth_ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        &until,
        "--format",
        "json",
        "-f",
        "container=ev2",
    ]);
    let first: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("an event")).expect("JSON");
    assert_eq!(first["Action"], "create");
    assert_eq!(first["Actor"]["Attributes"]["name"], "ev2");
    let (code, _, err) = d.berth(&["events", "--since", "yesterday"], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("failed to parse value as time or duration"),
        "{err}"
    );
}
