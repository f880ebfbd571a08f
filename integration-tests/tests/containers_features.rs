//! berthd containers: volumes, restart policies, resource limits, and a kill -9 of
//! berthd while a container runs; driven by the real docker CLI.

mod cgroup_support;
mod containers_support;

use cgroup_support::cgroup_file;
use containers_support::Berthd;
use std::time::Duration;

const IMG: &str = "busybox:test";

#[test]
fn volumes_named_bind_anonymous_tmpfs() {
    let d = Berthd::start();
    d.ok(&["volume", "create", "data"]);
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data",
        IMG,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data:ro",
        IMG,
        "sh",
        "-c",
        "cat /data/f; touch /data/g 2>/dev/null || echo ro",
    ]);
    assert_eq!(out, "kept\nro\n");
    // A new volume starts with the image's content at its path.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "etcvol:/etc",
        IMG,
        "head",
        "-1",
        "/etc/passwd",
    ]);
    assert_eq!(out, "root:x:0:0:root:/root:/bin/sh\n");
    let vol = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "etcvol"]);
    assert!(std::path::Path::new(vol.trim()).join("group").exists());
    // Ulimits.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=256:512",
        IMG,
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, "256\n512\n");
    // A volume named on first use is created.
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "auto:/x",
        IMG,
        "true",
    ]);
    let ls = d.ok(&["volume", "ls", "-q"]);
    assert!(
        ls.lines().any(|l| l == "auto") && ls.lines().any(|l| l == "data"),
        "{ls}"
    );
    assert_eq!(
        d.ok(&["volume", "inspect", "-f", "{{.Driver}} {{.Name}}", "data"])
            .trim(),
        "local data"
    );
    // In use: 409.
    d.ok(&[
        "create",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "data:/data",
        IMG,
        "true",
    ]);
    let err = d.err(&["volume", "rm", "data"]);
    assert!(err.contains("volume is in use"), "{err}");
    assert_eq!(
        d.inspect(
            "user",
            "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}}{{end}}"
        ),
        "volume data /data"
    );
    d.ok(&["rm", "user"]);
    d.ok(&["volume", "rm", "data"]);
    let err = d.err(&["volume", "inspect", "data"]);
    assert!(err.contains("no such volume"), "{err}");
    // Bind mounts, read-write and read-only.
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from host\n").unwrap();
    let spec = format!("{}:/h", host.display());
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &spec,
        IMG,
        "sh",
        "-c",
        "cat /h/in; echo from ctr > /h/out",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from ctr\n"
    );
    let spec_ro = format!("{}:/h:ro", host.display());
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &spec_ro,
        IMG,
        "sh",
        "-c",
        "touch /h/x 2>/dev/null || echo ro",
    ]);
    assert_eq!(out, "ro\n");
    // Anonymous volume (-v /path) goes with --rm; tmpfs.
    let before = d.ok(&["volume", "ls", "-q"]).lines().count();
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/anon",
        "--tmpfs",
        "/scratch",
        IMG,
        "sh",
        "-c",
        "echo x > /anon/f && mount | grep -q ' /scratch type tmpfs'",
    ]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]).lines().count(), before);
}

#[test]
fn restart_policies() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--network",
        "none",
        "--restart",
        "on-failure:2",
        IMG,
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    d.wait_until("two restarts", Duration::from_secs(20), || {
        d.inspect("flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        d.inspect("flaky", "{{.RestartCount}} {{.State.ExitCode}}"),
        "2 3"
    );
    assert_eq!(d.ok(&["logs", "flaky"]), "run\nrun\nrun\n");
    // always: restarted after it exits, but not after docker stop.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--network",
        "none",
        "--restart",
        "always",
        IMG,
        "sh",
        "-c",
        "sleep 0.3",
    ]);
    d.wait_until("restarted", Duration::from_secs(20), || {
        d.inspect("always", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 1
    });
    d.ok(&["stop", "-t", "1", "always"]);
    let n = d.inspect("always", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        d.inspect("always", "{{.RestartCount}} {{.State.Status}}"),
        format!("{n} exited")
    );
}

#[test]
fn limits_in_cgroups_and_daemon_crash() {
    let mut d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "limited",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        IMG,
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ]);
    let pid = d.inspect("limited", "{{.State.Pid}}");
    assert_eq!(
        cgroup_file(&pid, "memory", "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(cgroup_file(&pid, "pids", "pids.max"), "50");
    assert_eq!(cgroup_file(&pid, "cpu", "cpu.cfs_quota_us"), "50000");
    // kill -9 berthd: the container keeps running, and the new berthd follows it.
    d.crash_and_restart();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "container died with berthd"
    );
    assert_eq!(
        d.inspect("limited", "{{.State.Status}} {{.State.Pid}}"),
        format!("running {pid}")
    );
    let before = d.ok(&["logs", "limited"]).lines().count();
    d.wait_until(
        "logs flowing after restart",
        Duration::from_secs(10),
        || d.ok(&["logs", "limited"]).lines().count() > before + 2,
    );
    let (code, out, _) = d.run(&["exec", "limited", "echo", "still here"], None);
    assert_eq!((code, out.as_str()), (0, "still here\n"));
    // Paused across a restart of berthd: still paused, and still followed.
    d.ok(&["pause", "limited"]);
    d.crash_and_restart();
    assert_eq!(d.inspect("limited", "{{.State.Status}}"), "paused");
    d.ok(&["unpause", "limited"]);
    d.ok(&["stop", "-t", "1", "limited"]);
    assert_eq!(d.inspect("limited", "{{.State.Status}}"), "exited");
}

#[test]
fn pause_rename_top_update_prune() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pz",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "while true; do date +%s%N > /tmp/t; sleep 0.05; done",
    ]);
    d.ok(&["pause", "pz"]);
    assert_eq!(
        d.inspect("pz", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    let ps = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    d.ok(&["unpause", "pz"]);
    assert_eq!(d.inspect("pz", "{{.State.Status}}"), "running");
    d.ok(&["rename", "pz", "qz"]);
    assert_eq!(d.inspect("qz", "{{.Name}}"), "/qz");
    let top = d.ok(&["top", "qz"]);
    assert!(top.contains("sh -c while true"), "{top}");
    // Docker's default columns: `ps -ef`.
    let titles: Vec<&str> = top
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        titles,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    d.ok(&[
        "update",
        "--memory",
        "32m",
        "--memory-swap",
        "64m",
        "--pids-limit",
        "20",
        "qz",
    ]);
    let pid = d.inspect("qz", "{{.State.Pid}}");
    assert_eq!(cgroup_file(&pid, "pids", "pids.max"), "20");
    assert_eq!(
        cgroup_file(&pid, "memory", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(d.inspect("qz", "{{.HostConfig.PidsLimit}}"), "20");
    let stats = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
        "qz",
    ]);
    let f: Vec<&str> = stats.trim().split('|').collect();
    assert_eq!(f[0], "qz", "{stats}");
    assert!(f[1].ends_with("/ 32MiB"), "{stats}");
    assert!(f[2].parse::<u32>().unwrap() >= 1, "{stats}");
    d.ok(&["create", "--name", "idle", "--network", "none", IMG, "true"]);
    let out = d.ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers"), "{out}");
    let names = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.trim(), "qz");
    d.ok(&["rm", "-f", "qz"]);
}

#[test]
fn cp_both_ways_and_no_escape() {
    let d = Berthd::start();
    let host = d.dir.path().join("cp");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("tree/sub/f"), "deep\n").unwrap();
    std::fs::write(host.join("one"), "single\n").unwrap();
    // Into and out of a running container.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "cpr",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "ln -s /etc /tmp/etclink; ln -s / /tmp/rootlink; echo made > /tmp/made; sleep 100",
    ]);
    d.wait_until("files", Duration::from_secs(10), || {
        d.run(&["exec", "cpr", "cat", "/tmp/made"], None).1 == "made\n"
    });
    d.ok(&["cp", host.join("one").to_str().unwrap(), "cpr:/tmp/"]);
    d.ok(&["cp", host.join("tree").to_str().unwrap(), "cpr:/tmp/tree"]);
    assert_eq!(
        d.ok(&["exec", "cpr", "cat", "/tmp/one", "/tmp/tree/sub/f"]),
        "single\ndeep\n"
    );
    let out = host.join("out");
    std::fs::create_dir_all(&out).unwrap();
    d.ok(&["cp", "cpr:/tmp/made", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("made")).unwrap(), "made\n");
    // A symlink to / inside the container leads to the container's root, not the host's.
    d.ok(&[
        "cp",
        "cpr:/tmp/rootlink/etc/passwd",
        out.join("passwd").to_str().unwrap(),
    ]);
    let passwd = std::fs::read_to_string(out.join("passwd")).unwrap();
    assert_eq!(
        passwd,
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
    );
    d.ok(&[
        "cp",
        host.join("one").to_str().unwrap(),
        "cpr:/tmp/etclink/",
    ]);
    assert_eq!(d.ok(&["exec", "cpr", "cat", "/etc/one"]), "single\n");
    assert!(!std::path::Path::new("/etc/one").exists());
    // A stopped container: through its layers.
    d.ok(&["rm", "-f", "cpr"]);
    d.ok(&[
        "create",
        "--name",
        "cps",
        "--network",
        "none",
        IMG,
        "cat",
        "/tmp/one",
    ]);
    d.ok(&["cp", host.join("one").to_str().unwrap(), "cps:/tmp/"]);
    d.ok(&["cp", "cps:/etc/group", out.join("group").to_str().unwrap()]);
    assert!(std::fs::read_to_string(out.join("group"))
        .unwrap()
        .starts_with("root:x:0:"));
    let (code, o, _) = d.run(&["start", "-a", "cps"], None);
    assert_eq!((code, o.as_str()), (0, "single\n"));
    let err = d.err(&["cp", "cps:/nonexistent", out.to_str().unwrap()]);
    assert!(
        err.contains("Could not find the file /nonexistent"),
        "{err}"
    );
}

#[test]
fn supervisor_kill9_while_running() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sv",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "i=0; while true; do echo n $i; i=$((i+1)); sleep 0.1; done",
    ]);
    let pid = d.inspect("sv", "{{.State.Pid}}");
    let old = d.supervisor_pid().expect("supervisor running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    d.wait_until("a new supervisor", Duration::from_secs(15), || {
        d.supervisor_pid().is_some_and(|p| p != old)
    });
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let before = d.ok(&["logs", "sv"]).lines().count();
    d.wait_until("logs flowing", Duration::from_secs(10), || {
        d.ok(&["logs", "sv"]).lines().count() > before + 2
    });
    d.wait_until(
        "exec through the new supervisor",
        Duration::from_secs(15),
        || d.run(&["exec", "sv", "echo", "ok"], None).1 == "ok\n",
    );
    d.ok(&["stop", "-t", "1", "sv"]);
    assert_eq!(
        d.inspect("sv", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
}

#[test]
fn restart_policy_applied_when_berthd_starts() {
    let mut d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "alw",
        "--network",
        "none",
        "--restart",
        "always",
        IMG,
        "sleep",
        "1000",
    ]);
    let pid: i32 = d.inspect("alw", "{{.State.Pid}}").parse().unwrap();
    // berthd goes (kill -9), the container dies while it is away, berthd comes back.
    d.crash_and_restart_with(|| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
    });
    d.wait_until("restarted by its policy", Duration::from_secs(20), || {
        d.inspect("alw", "{{.State.Status}} {{.RestartCount}}") == "running 1"
    });
    assert_ne!(d.inspect("alw", "{{.State.Pid}}"), pid.to_string());
}

#[test]
fn exec_options_wait_create_start_paused_removal() {
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
        "100",
    ]);
    let out = d.ok(&[
        "exec",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        "ex",
        "sh",
        "-c",
        "echo $(id -u) $(pwd)",
    ]);
    assert_eq!(out, "65534 /tmp\n");
    let out = d.ok(&[
        "exec",
        "--privileged",
        "ex",
        "grep",
        "^CapEff:",
        "/proc/self/status",
    ]);
    assert_ne!(out.trim(), "CapEff:\t00000000a80425fb");
    // A paused container is thawed by stop and rm -f.
    d.ok(&["pause", "ex"]);
    d.ok(&["rm", "-f", "ex"]);
    // create, then start -ai with stdin; docker wait.
    d.ok(&[
        "create",
        "-i",
        "--name",
        "ci",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "read l; echo got $l; exit 9",
    ]);
    let (code, out, _) = d.run(&["start", "-ai", "ci"], Some(b"line\n"));
    assert_eq!((code, out.as_str()), (9, "got line\n"));
    assert_eq!(d.ok(&["wait", "ci"]).trim(), "9");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "wt",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "sleep 0.5; exit 4",
    ]);
    assert_eq!(d.ok(&["wait", "wt"]).trim(), "4");
}

/// A block device of the host to throttle (`/dev/NAME` of the first disk in /sys/block),
/// with its numbers as the kernel shows them.
fn some_block_device() -> Option<(String, String)> {
    let dir = std::fs::read_dir("/sys/block").ok()?;
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram"))
        .collect();
    names.sort();
    let name = names.into_iter().next()?;
    let dev = std::fs::read_to_string(format!("/sys/block/{name}/dev")).ok()?;
    let path = format!("/dev/{name}");
    std::path::Path::new(&path)
        .exists()
        .then(|| (path, dev.trim().to_string()))
}

/// Every resource flag of `docker run` that the kernel supports reaches the container's
/// cgroups (none is silently dropped), inspect shows what was asked, and `docker update`
/// changes them on the running container. cgroup v1 files (this host's hierarchy).
#[test]
fn every_resource_flag_reaches_the_cgroups_and_update_changes_them() {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!("skipping: the cgroup v1 files this test reads are not on a unified host");
        return;
    }
    let d = Berthd::start();
    let blkio_weight = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists();
    let disk = some_block_device();
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--name",
        "res",
        "--network",
        "none",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "25000",
        "--cpuset-mems",
        "0",
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "--memory-swappiness",
        "10",
        "--oom-kill-disable",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if blkio_weight {
        args.extend(["--blkio-weight".into(), "300".into()]);
    }
    if let Some((path, _)) = &disk {
        args.extend(["--device-read-bps".into(), format!("{path}:1mb")]);
        args.extend(["--device-write-iops".into(), format!("{path}:77")]);
    }
    args.extend([IMG.into(), "sleep".into(), "120".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    d.ok(&args);
    let pid = d.inspect("res", "{{.State.Pid}}");
    assert_eq!(cgroup_file(&pid, "cpu", "cpu.cfs_period_us"), "50000");
    assert_eq!(cgroup_file(&pid, "cpu", "cpu.cfs_quota_us"), "25000");
    assert_eq!(cgroup_file(&pid, "cpuset", "cpuset.mems"), "0");
    assert_eq!(
        cgroup_file(&pid, "memory", "memory.soft_limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(cgroup_file(&pid, "memory", "memory.swappiness"), "10");
    assert!(
        cgroup_file(&pid, "memory", "memory.oom_control").contains("oom_kill_disable 1"),
        "OOM killer not disabled"
    );
    if blkio_weight {
        assert_eq!(cgroup_file(&pid, "blkio", "blkio.weight"), "300");
    }
    if let Some((_, numbers)) = &disk {
        assert_eq!(
            cgroup_file(&pid, "blkio", "blkio.throttle.read_bps_device"),
            format!("{numbers} 1048576")
        );
        assert_eq!(
            cgroup_file(&pid, "blkio", "blkio.throttle.write_iops_device"),
            format!("{numbers} 77")
        );
    }
    assert_eq!(
        d.inspect(
            "res",
            "{{.HostConfig.CpuPeriod}} {{.HostConfig.CpuQuota}} {{.HostConfig.CpusetMems}} {{.HostConfig.MemoryReservation}} {{.HostConfig.MemorySwappiness}} {{.HostConfig.OomKillDisable}}"
        ),
        format!("50000 25000 0 {} 10 true", 32u64 << 20)
    );
    // docker update on the running container.
    d.ok(&[
        "update",
        "--cpu-quota",
        "40000",
        "--memory-reservation",
        "16m",
        "res",
    ]);
    assert_eq!(cgroup_file(&pid, "cpu", "cpu.cfs_quota_us"), "40000");
    assert_eq!(
        cgroup_file(&pid, "memory", "memory.soft_limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    // --cpus cannot be updated once the period or quota is set (dockerd's words).
    let err = d.err(&["update", "--cpus", "0.5", "res"]);
    assert!(
        err.contains(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
        ),
        "{err}"
    );
    // A throttle on something that is not a device fails the start in dockerd's way,
    // naming the path, and leaves nothing running.
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device-read-bps",
        "/etc/hostname:1mb",
        IMG,
        "true",
    ]);
    assert!(err.contains("/etc/hostname"), "{err}");
    d.ok(&["rm", "-f", "res"]);
}

/// `--volumes-from`: the other container's volumes and binds at the same places, shared
/// (what one writes the other reads), read-only with `:ro`; `rm -v` of the borrower
/// leaves them; a bad mode is refused in dockerd's words, nothing made.
#[test]
fn volumes_from_shares_the_other_containers_mounts() {
    let d = Berthd::start();
    let bind = tempfile::tempdir().unwrap();
    std::fs::write(bind.path().join("host.txt"), "from the host\n").unwrap();
    let bind_arg = format!("{}:/b", bind.path().display());
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "src",
        "-v",
        "/shared",
        "-v",
        &bind_arg,
        IMG,
        "sh",
        "-c",
        "echo from-src > /shared/f",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "src",
        IMG,
        "sh",
        "-c",
        "cat /shared/f /b/host.txt; echo from-borrower > /shared/g",
    ]);
    assert_eq!(out, "from-src\nfrom the host\n");
    let (code, _, err) = d.run(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--volumes-from",
            "src:ro",
            IMG,
            "sh",
            "-c",
            "cat /shared/g && touch /shared/h",
        ],
        None,
    );
    assert_ne!(code, 0, "wrote through :ro");
    assert!(err.contains("Read-only file system"), "{err}");
    // The borrower's rm -v left the volume: src still has what the borrower wrote.
    let volume = d.inspect(
        "src",
        "{{(index .Mounts 0).Name}}{{(index .Mounts 1).Name}}",
    );
    assert!(
        d.ok(&["volume", "ls", "-q"]).contains(volume.trim()),
        "{volume}"
    );
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "src:ro",
        IMG,
        "cat",
        "/shared/g",
    ]);
    assert_eq!(out, "from-borrower\n");
    // (An unknown container is a 404, which the docker CLI takes for a missing image
    // and pulls: the engine's unit test covers that refusal.)
    let err = d.err(&[
        "create",
        "--name",
        "bad",
        "--volumes-from",
        "src:rx",
        IMG,
        "true",
    ]);
    assert!(err.contains("invalid mode: rx"), "{err}");
    assert!(
        d.run(&["inspect", "bad"], None).0 != 0,
        "a container was made"
    );
    d.ok(&["rm", "-v", "src"]);
}

/// The namespace of this process's `kind` as the kernel names it (`pid:[4026…]`),
/// read inside a container.
fn ns_of(d: &Berthd, name: &str, kind: &str) -> String {
    d.ok(&["exec", name, "readlink", &format!("/proc/self/ns/{kind}")])
        .trim()
        .to_string()
}

#[test]
fn pid_and_ipc_of_another_container_are_joined_as_dockerd_joins_them() {
    let mut d = Berthd::start();
    let run = |d: &Berthd, name: &str, flags: &[&str]| {
        let mut a = vec!["run", "-d", "--name", name, "--network", "none"];
        a.extend_from_slice(flags);
        a.extend_from_slice(&[IMG, "sleep", "300"]);
        d.ok(&a);
    };
    run(&d, "donor", &["--ipc", "shareable"]);
    run(
        &d,
        "joiner",
        &["--pid", "container:donor", "--ipc", "container:donor"],
    );
    // The same namespaces, as the kernel names them; the donor's init is PID 1 there.
    for kind in ["pid", "ipc"] {
        assert_eq!(
            ns_of(&d, "joiner", kind),
            ns_of(&d, "donor", kind),
            "{kind}"
        );
    }
    assert_ne!(ns_of(&d, "joiner", "mnt"), ns_of(&d, "donor", "mnt"));
    let init = d.ok(&["exec", "joiner", "cat", "/proc/1/cmdline"]);
    assert_eq!(init, "sleep\u{0}300\u{0}");
    // Shared memory: what one writes in /dev/shm the other reads; it is the host-side
    // tmpfs dockerd gives a shareable container, unmounted once the donor stops.
    d.ok(&["exec", "joiner", "sh", "-c", "echo shared > /dev/shm/x"]);
    assert_eq!(d.ok(&["exec", "donor", "cat", "/dev/shm/x"]), "shared\n");
    let id = d.inspect("donor", "{{.Id}}").trim().to_string();
    let shm_mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&format!("/containers/{id}/mounts/shm")))
            .count()
    };
    assert_eq!(shm_mounts(), 1);
    // A berthd killed meanwhile finds them again: the tmpfs stays while its owner runs
    // (what was written in it too), and goes with the run's end below.
    d.crash_and_restart();
    assert_eq!(shm_mounts(), 1);
    assert_eq!(d.ok(&["exec", "donor", "cat", "/dev/shm/x"]), "shared\n");
    assert_eq!(
        d.inspect("joiner", "{{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}")
            .trim(),
        format!("container:{id} container:{id}")
    );
    // A donor that is not shareable, or not running: refused at start in dockerd's
    // words, nothing left running.
    run(&d, "private", &[]);
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ipc",
        "container:private",
        IMG,
        "true",
    ]);
    let private = d.inspect("private", "{{.Id}}").trim().to_string();
    assert!(
        err.contains(&format!(
            "can't join IPC of container {private}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
        )),
        "{err}"
    );
    d.ok(&["rm", "-f", "private"]);
    d.ok(&["stop", "-t", "0", "donor"]);
    assert_eq!(shm_mounts(), 0, "the donor's shm outlived its run");
    // The joiner's PID namespace ended with its init.
    d.wait_until("the joiner's exit", Duration::from_secs(20), || {
        d.inspect("joiner", "{{.State.Running}}").trim() == "false"
    });
    for flag in ["--pid", "--ipc"] {
        let err = d.err(&[
            "run",
            "--rm",
            "--network",
            "none",
            flag,
            "container:donor",
            IMG,
            "true",
        ]);
        assert!(
            err.contains(&format!("container {id} is not running")),
            "{flag}: {err}"
        );
    }
    assert_eq!(
        d.ok(&["ps", "-aq", "--filter", "status=created"]).trim(),
        "",
        "a refused run left a container"
    );
    // With the berth CLI too.
    d.ok(&["start", "donor"]);
    let out = d.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "container:donor",
        IMG,
        "cat",
        "/proc/1/cmdline",
    ]);
    assert_eq!(out, "sleep\u{0}300\u{0}");
    d.ok(&["rm", "-f", "joiner", "donor"]);
    assert_eq!(shm_mounts(), 0);
}
