//! berthd's `docker cp` against a container that races it (CVE-2018-15664: a directory
//! swapped for a symlink while the copy runs must never lead to the host), archive
//! naming as dockerd does it (`dir/.`, links to `/`, empty numeric tar fields, errors),
//! and life-cycle details: kill waits for the exit, a start resets the exit code,
//! restart passes its signal on, top shows `ps -ef`. Driven by the real docker CLI.

mod containers_support;

use containers_support::{run_with_timeout, Berthd, COMMAND_TIMEOUT};
use std::path::Path;
use std::time::{Duration, Instant};

const IMG: &str = "busybox:test";

/// Attempts at winning the race (each one `docker cp`), bounded.
const RACE_TRIES: usize = 200;

/// A name no other test or run uses.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("berth-{what}-{}-{nanos}", std::process::id())
}

/// `docker ARGS` with its stdout as bytes (a tar from `docker cp C:PATH -`).
fn docker_bytes(d: &Berthd, args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = run_with_timeout(d.cmd(args), None, COMMAND_TIMEOUT);
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (path, link target) of every entry of a tar.
fn tar_entries(data: &[u8]) -> Vec<(String, String)> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .expect("a tar")
        .map(|e| {
            let e = e.expect("a tar entry");
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            (e.path().expect("a path").display().to_string(), link)
        })
        .collect()
}

/// Files in the swapped directory: a longer walk of it gives a swap more chances.
const SWAPPED_FILES: usize = 50;

/// A container that keeps swapping its directory `/d` (holding `marker` and files
/// `f0`...) for a symlink to `target`.
fn run_swapper(d: &Berthd, name: &str, target: &str) {
    let script = format!(
        "mkdir -p /d; i=0; while [ $i -lt {SWAPPED_FILES} ]; do echo inside > /d/f$i; \
         i=$((i+1)); done; echo inside > /d/marker; \
         while true; do mv /d /d2; ln -s {target} /d; rm /d; mv /d2 /d; done"
    );
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
        &script,
    ]);
    d.wait_until("the swapper runs", Duration::from_secs(10), || {
        d.run(&["exec", name, "cat", "/d2/marker"], None).1 == "inside\n"
            || d.run(&["exec", name, "cat", "/d/marker"], None).1 == "inside\n"
    });
}

#[test]
fn cp_into_a_racing_symlink_never_writes_the_host() {
    let d = Berthd::start();
    run_swapper(&d, "swap", "/");
    let name = unique("cve-put");
    let src = d.dir.path().join(&name);
    std::fs::write(&src, "from the test\n").unwrap();
    let on_host = Path::new("/").join(&name);
    let dest = format!("swap:/d/{name}");
    let mut landed = 0;
    for _ in 0..RACE_TRIES {
        // Failures are fine (the directory is gone half of the time); an escape is not.
        let (code, _, _) = d.run(&["cp", src.to_str().unwrap(), &dest], None);
        if code == 0 {
            landed += 1;
        }
        if on_host.exists() {
            let _ = std::fs::remove_file(&on_host);
            panic!("docker cp wrote {} on the host", on_host.display());
        }
    }
    assert!(landed > 0, "no copy into the racing container succeeded");
    // Where the copies did land: inside the container, at /d or at its own root.
    let found = d.run(
        &[
            "exec",
            "swap",
            "sh",
            "-c",
            &format!("ls /d2/{name} /d/{name} /{name} 2>/dev/null"),
        ],
        None,
    );
    assert!(found.1.contains(&name), "{found:?}");
}

#[test]
fn cp_out_of_a_racing_symlink_never_reads_the_host() {
    let d = Berthd::start();
    let secret_dir = d.dir.path().join(unique("cve-get"));
    std::fs::create_dir_all(&secret_dir).unwrap();
    let secret = unique("host-secret");
    std::fs::write(secret_dir.join("marker"), &secret).unwrap();
    for i in 0..SWAPPED_FILES {
        std::fs::write(secret_dir.join(format!("f{i}")), &secret).unwrap();
    }
    run_swapper(&d, "swapget", secret_dir.to_str().unwrap());
    let mut read = 0;
    for i in 0..RACE_TRIES {
        // A file through the directory, and the whole directory walked.
        let src = if i % 2 == 0 {
            "swapget:/d/marker"
        } else {
            "swapget:/d"
        };
        let (code, data, _) = docker_bytes(&d, &["cp", src, "-"]);
        assert!(
            !String::from_utf8_lossy(&data).contains(&secret),
            "docker cp {src} read the host's file through the container's symlink"
        );
        if code == 0 {
            read += 1;
        }
    }
    assert!(read > 0, "no copy out of the racing container succeeded");
}

#[test]
fn cp_dir_dot_copies_the_content_and_links_keep_their_target() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "mkdir -p /dir/sub; echo a > /dir/a; echo b > /dir/sub/b; ln -s / /link; \
         echo ready > /ready; sleep 1000",
    ]);
    d.wait_until("files made", Duration::from_secs(10), || {
        d.run(&["exec", "c1", "cat", "/ready"], None).1 == "ready\n"
    });
    // /etc/. into an existing directory: /etc's files, directly in it.
    let x = d.dir.path().join("x");
    std::fs::create_dir_all(&x).unwrap();
    d.ok(&["cp", "c1:/etc/.", x.to_str().unwrap()]);
    for f in ["passwd", "group"] {
        assert!(x.join(f).is_file(), "{f} missing in {:?}", ls(&x));
    }
    assert!(!x.join("etc").exists(), "{:?}", ls(&x));
    // /dir/. into a new directory: it becomes a copy of /dir.
    let y = d.dir.path().join("y");
    d.ok(&["cp", "c1:/dir/.", y.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(y.join("a")).unwrap(), "a\n");
    assert_eq!(std::fs::read_to_string(y.join("sub/b")).unwrap(), "b\n");
    // The entries as dockerd names them.
    let (code, data, err) = docker_bytes(&d, &["cp", "c1:/dir/.", "-"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> = tar_entries(&data).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["./", "./a", "./sub/", "./sub/b"]);
    let (code, data, err) = docker_bytes(&d, &["cp", "c1:/dir", "-"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<String> = tar_entries(&data).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["dir/", "dir/a", "dir/sub/", "dir/sub/b"]);
    // A symlink to / stays `link -> /`, not `//`.
    let (code, data, err) = docker_bytes(&d, &["cp", "c1:/link", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(tar_entries(&data), [("link".to_string(), "/".to_string())]);
    let listed = std::process::Command::new("tar")
        .arg("tv")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(&data)?;
            c.wait_with_output()
        })
        .expect("tar tv");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.trim_end().ends_with("link -> /"), "{listed}");
}

fn ls(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A tar of one file whose uid and gid fields are empty (all NUL), as some tar
/// writers leave them.
fn tar_with_empty_ids(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_size(data.len() as u64);
    h.set_mode(0o640);
    h.set_mtime(1_700_000_000);
    h.as_old_mut().uid = [0; 8];
    h.as_old_mut().gid = [0; 8];
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(512 + data.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0; 1024]);
    out
}

#[test]
fn cp_accepts_empty_numeric_fields_and_names_the_container_in_errors() {
    let d = Berthd::start();
    let created = d.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "none",
        "-v",
        "cpvol:/vol",
        IMG,
        "sleep",
        "1000",
    ]);
    let tar = tar_with_empty_ids("emptyids", b"zero ids\n");
    let (code, out, err) = d.run(&["cp", "-", "c1:/tmp/"], Some(&tar));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(d.ok(&["exec", "c1", "cat", "/tmp/emptyids"]), "zero ids\n");
    let ls = d.ok(&["exec", "c1", "ls", "-ln", "/tmp/emptyids"]);
    let cols: Vec<&str> = ls.split_whitespace().collect();
    assert_eq!(cols.get(2..4), Some(&["0", "0"][..]), "{ls}");
    // A volume of the running container is reached too (its root as it sees it).
    let (code, out, err) = d.run(&["cp", "-", "c1:/vol/"], Some(&tar));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(d.ok(&["exec", "c1", "cat", "/vol/emptyids"]), "zero ids\n");
    // Errors name the container as the client did: its name or its (short) ID.
    let host = d.dir.path().join("out");
    std::fs::create_dir_all(&host).unwrap();
    let err = d.err(&["cp", "c1:/x", host.to_str().unwrap()]);
    assert!(
        err.contains("Could not find the file /x in container c1"),
        "{err}"
    );
    let short = &created.trim()[..12];
    let err = d.err(&["cp", &format!("{short}:/nope/x"), host.to_str().unwrap()]);
    assert!(
        err.contains(&format!(
            "Could not find the file /nope/x in container {short}"
        )),
        "{err}"
    );
    let src = d.dir.path().join("f");
    std::fs::write(&src, "f").unwrap();
    let err = d.err(&["cp", src.to_str().unwrap(), "c1:/nodir/x"]);
    assert!(
        err.contains("Could not find the file /nodir in container c1"),
        "{err}"
    );
    let err = d.err(&["cp", src.to_str().unwrap(), "c1:/etc/passwd/x"]);
    assert!(err.contains("extraction point is not a directory"), "{err}");
    // The CLI asks not to replace a directory by a file or the reverse; dockerd's words.
    d.ok(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "mkdir /tmp/isdir; echo > /tmp/isfile",
    ]);
    let isdir = d.dir.path().join("isdir");
    std::fs::write(&isdir, "f").unwrap();
    let err = d.err(&["cp", isdir.to_str().unwrap(), "c1:/tmp/"]);
    assert!(
        err.contains(r#"cannot overwrite directory "/tmp/isdir" with non-directory "/tmp""#),
        "{err}"
    );
    let isfile = d.dir.path().join("isfile");
    std::fs::create_dir_all(&isfile).unwrap();
    let err = d.err(&["cp", isfile.to_str().unwrap(), "c1:/tmp/"]);
    assert!(
        err.contains(r#"cannot overwrite non-directory "/tmp/isfile" with directory "/tmp""#),
        "{err}"
    );
}

#[test]
fn kill_waits_for_the_exit_and_start_resets_the_exit_code() {
    let d = Berthd::start();
    for i in 0..3 {
        let name = format!("k{i}");
        d.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            IMG,
            "sleep",
            "1000",
        ]);
        d.ok(&["kill", &name]);
        // At once, no waiting: dockerd's kill returns after a SIGKILL'd container exited.
        assert_eq!(
            d.inspect(&name, "{{.State.Status}} {{.State.ExitCode}}"),
            "exited 137"
        );
    }
    d.ok(&[
        "run",
        "-d",
        "--name",
        "tt",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "trap 'exit 143' TERM; while true; do sleep 0.1; done",
    ]);
    d.ok(&["stop", "-t", "10", "tt"]);
    assert_eq!(
        d.inspect("tt", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 143"
    );
    let finished = d.inspect("tt", "{{.State.FinishedAt}}");
    d.ok(&["start", "tt"]);
    assert_eq!(
        d.inspect(
            "tt",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.FinishedAt}}"
        ),
        format!("running 0 {finished}")
    );
}

#[test]
fn restart_passes_signal_and_timeout_on() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "rr",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "trap 'echo got usr1; exit 3' USR1; trap '' TERM; echo up; \
         while true; do sleep 0.1; done",
    ]);
    d.wait_until("started", Duration::from_secs(10), || {
        d.ok(&["logs", "rr"]).contains("up")
    });
    let t0 = Instant::now();
    d.ok(&["restart", "--signal", "USR1", "-t", "20", "rr"]);
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert!(d.ok(&["logs", "rr"]).contains("got usr1"));
    assert_eq!(d.inspect("rr", "{{.State.Status}}"), "running");
    // SIGTERM is ignored: `-t 1` kills after one second, not the default ten.
    let t0 = Instant::now();
    d.ok(&["restart", "-t", "1", "rr"]);
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    assert_eq!(d.inspect("rr", "{{.State.Status}}"), "running");
}

#[test]
fn top_shows_ps_ef() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "tp",
        "--network",
        "none",
        IMG,
        "sleep",
        "1000",
    ]);
    let top = d.ok(&["top", "tp"]);
    let mut lines = top.lines();
    let titles: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        titles,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(row.first(), Some(&"root"), "{top}");
    assert_eq!(
        row.get(1),
        Some(&d.inspect("tp", "{{.State.Pid}}").as_str())
    );
    assert!(top.trim_end().ends_with("sleep 1000"), "{top}");
}

/// One tar entry with its name written as given (the tar crate refuses `..` and
/// absolute names, which is what this archive must carry).
fn raw_entry(name: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A whole archive of `entries`, with its end marker.
fn raw_tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn cp_of_a_hostile_archive_into_a_container_writes_nothing_on_the_host() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "target",
        "--network",
        "none",
        IMG,
        "sleep",
        "1000",
    ]);
    let pid = d.inspect("target", "{{.State.Pid}}");
    let host_dir = tempfile::tempdir().unwrap();
    let marker = unique("hostile");
    let host_file = host_dir.path().join(&marker);
    std::fs::write(&host_file, "host secret").unwrap();
    let host_path = host_file
        .to_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    // Each archive alone, so that one refusal does not hide what another would do.
    let file = tar::EntryType::Regular;
    let attempts: Vec<(&str, Vec<u8>)> = vec![
        (
            "climbing out",
            raw_tar(&[raw_entry(&format!("../../../{marker}-up"), file, "", b"x")]),
        ),
        (
            "absolute",
            raw_tar(&[raw_entry(&format!("/{marker}-abs"), file, "", b"x")]),
        ),
        (
            "through a symlink it made",
            raw_tar(&[
                raw_entry("l", tar::EntryType::Symlink, "/", b""),
                raw_entry(&format!("l/{marker}-via-link"), file, "", b"x"),
            ]),
        ),
        (
            "hard link to a host file",
            raw_tar(&[raw_entry(
                &format!("{marker}-hard"),
                tar::EntryType::Link,
                &format!("../../../../{host_path}"),
                b"",
            )]),
        ),
        (
            "overwriting a host file through a symlink",
            raw_tar(&[
                raw_entry(
                    "h",
                    tar::EntryType::Symlink,
                    host_dir.path().to_str().unwrap(),
                    b"",
                ),
                raw_entry(&format!("h/{marker}"), file, "", b"overwritten"),
            ]),
        ),
    ];
    for (what, archive) in &attempts {
        let (code, _, err) = d.run(&["cp", "-", "target:/tmp"], Some(archive));
        // Refused or confined: either way nothing outside the container changes.
        for escaped in [
            format!("/{marker}-up"),
            format!("/{marker}-abs"),
            format!("/{marker}-via-link"),
            format!("/tmp/{marker}-up"),
        ] {
            if Path::new(&escaped).exists() {
                let _ = std::fs::remove_file(&escaped);
                panic!("{what}: wrote {escaped} on the host (exit {code}, {err})");
            }
        }
        assert_eq!(
            std::fs::read_to_string(&host_file).unwrap(),
            "host secret",
            "{what}: the host file changed"
        );
    }
    // What landed, landed inside the container's root.
    let root = format!("/proc/{pid}/root");
    assert!(
        !Path::new(&format!("{root}/tmp/{marker}-hard")).exists()
            || std::fs::read_to_string(format!("{root}/tmp/{marker}-hard")).unwrap_or_default()
                != "host secret",
        "a hard link reached the host file"
    );
}
