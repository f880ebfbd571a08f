//! What a process sees inside a berth-runtime container: namespaces, mounts, devices,
//! capabilities, rlimits, users, and the protections of the default spec.

mod support;

use serde_json::json;
use support::*;

/// Run `script` in a container built from the default spec after `edit`; return stdout.
fn inside(script: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, script);
    bundle.edit(edit);
    let out = rt.run(&bundle, &unique_id("in"));
    assert_ok(&out, script);
    stdout(&out)
}

#[test]
fn the_process_is_pid_1_with_its_own_hostname() {
    let out = inside("echo $$; hostname; cat /proc/sys/kernel/domainname", |c| {
        c["hostname"] = json!("box-1");
        c["domainname"] = json!("example.test");
    });
    assert_eq!(out, "1\nbox-1\nexample.test\n");
}

#[test]
fn every_namespace_is_new() {
    let rt = Runtime::new();
    let bundle = Bundle::new(
        &rt,
        "for n in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$n; done",
    );
    let out = rt.run(&bundle, &unique_id("ns"));
    assert_ok(&out, "run");
    let mut ours = String::new();
    for n in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        ours.push_str(
            &std::fs::read_link(format!("/proc/self/ns/{n}"))
                .unwrap()
                .to_string_lossy(),
        );
        ours.push('\n');
    }
    for (inside, outside) in stdout(&out).lines().zip(ours.lines()) {
        assert_ne!(inside, outside, "namespace shared with the host");
    }
    assert_eq!(stdout(&out).lines().count(), 6);
}

#[test]
fn an_existing_namespace_is_joined_by_path() {
    let rt = Runtime::new();
    let holder = Bundle::new(&rt, "sleep 30");
    let holder_id = unique_id("netns-holder");
    rt.create(&holder, &holder_id);
    let pid = rt.state(&holder_id)["pid"].as_i64().unwrap();
    let holder_ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();

    let mut joiner = Bundle::new(&rt, "readlink /proc/self/ns/net");
    joiner.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(format!("/proc/{pid}/ns/net"));
            }
        }
    });
    let out = rt.run(&joiner, &unique_id("netns-join"));
    assert_ok(&out, "run joiner");
    assert_eq!(stdout(&out).trim(), holder_ns.to_string_lossy());
}

#[test]
fn user_namespace_maps_ids() {
    let out = inside(
        "id -u; id -g; cat /proc/self/uid_map; stat -c %u /bin/busybox",
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}, {"containerID": 1, "hostID": 100000, "size": 65535}]);
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 1}, {"containerID": 1, "hostID": 100000, "size": 65535}]);
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..2], ["0", "0"]);
    let map: Vec<Vec<&str>> = lines[2..4]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(map, vec![vec!["0", "0", "1"], vec!["1", "100000", "65535"]]);
    assert_eq!(lines[4], "0");
}

#[test]
fn user_namespace_with_an_unmapped_root_still_runs() {
    let out = inside("id -u; cat /proc/self/uid_map", |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        // A fresh user namespace cannot mount sysfs without its own netns (it has one
        // here) and cannot mknod: devices are bind-mounted from the host instead.
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );
}

#[test]
fn mounts_from_the_spec_are_there_with_their_options() {
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("data"), "from the host\n").unwrap();
    let host_path = host_dir.path().to_str().unwrap().to_string();
    let out = inside(
        "cat /data/data; echo x > /data/new 2>/dev/null && echo writable || echo readonly; \
         grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4; grep -c ' /proc proc' /proc/mounts",
        |c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(json!({"destination": "/data", "type": "bind", "source": host_path, "options": ["rbind", "ro"]}));
            mounts.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m", "mode=700"]}));
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "from the host");
    assert_eq!(lines[1], "readonly");
    assert!(
        lines[2].starts_with("tmpfs rw,nosuid")
            && lines[2].contains("size=1024k")
            && lines[2].contains("mode=700"),
        "{out}"
    );
    assert_eq!(lines[3], "1");
    assert!(!host_dir.path().join("new").exists());
}

#[test]
fn mount_destinations_cannot_escape_through_symlinks() {
    let rt = Runtime::new();
    let victim = tempfile::tempdir().unwrap();
    let mut bundle = Bundle::new(&rt, "ls /evil");
    // The image points /evil at a host directory; the mount must land inside the rootfs.
    std::os::unix::fs::symlink(victim.path(), bundle.rootfs().join("evil")).unwrap();
    bundle.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    });
    let out = rt.run(&bundle, &unique_id("escape"));
    assert_ok(&out, "run");
    // Nothing was mounted on the host directory, and the link target was made inside.
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_mounts.contains(victim.path().to_str().unwrap()),
        "mounted on the host path"
    );
    let inside_target = bundle
        .rootfs()
        .join(victim.path().strip_prefix("/").unwrap());
    assert!(
        inside_target.is_dir(),
        "link target not created inside the rootfs"
    );
}

#[test]
fn default_devices_and_dev_symlinks_exist() {
    let out = inside(
        "stat -c '%n %t,%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/mine; \
         readlink /dev/fd; readlink /dev/ptmx; echo data > /dev/null && echo null-ok",
        |c| {
            c["linux"]["devices"] = json!([{"path": "/dev/mine", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 0, "gid": 0}]);
            c["linux"]["resources"]["devices"].as_array_mut().unwrap().push(json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}));
        },
    );
    let expected = "/dev/null 1,3 666\n/dev/zero 1,5 666\n/dev/full 1,7 666\n/dev/random 1,8 666\n\
                    /dev/urandom 1,9 666\n/dev/tty 5,0 666\n/dev/mine 1,3 600\n/proc/self/fd\npts/ptmx\nnull-ok\n";
    assert_eq!(out, expected);
}

#[test]
fn the_default_capabilities_are_exactly_the_specs() {
    // runc's default spec: CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10).
    let out = inside(
        "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status",
        |_| {},
    );
    for line in out.lines() {
        assert!(line.ends_with("0000000020000420"), "{line}");
    }
    let out = inside("grep CapEff /proc/self/status", |c| {
        let caps = json!(["CAP_CHOWN"]);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = caps.clone();
        }
        c["process"]["capabilities"]["inheritable"] = json!([]);
        c["process"]["capabilities"]["ambient"] = json!([]);
    });
    assert!(out.trim().ends_with("0000000000000001"), "{out}");
}

#[test]
fn a_non_root_user_gets_its_ids_groups_and_no_capabilities() {
    let out = inside("id -u; id -g; id -G; grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; umask", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 63});
        c["process"]["capabilities"]["ambient"] = json!([]);
        c["process"]["capabilities"]["inheritable"] = json!([]);
        c["process"]["capabilities"]["effective"] = json!([]);
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["1000", "1000", "1000 10 20"]);
    assert!(lines[3].ends_with("0000000000000000"), "{out}");
    assert!(lines[4].ends_with('1'), "noNewPrivileges not set: {out}");
    assert_eq!(lines[5], "0077");
}

#[test]
fn rlimits_oom_score_env_and_cwd_are_applied() {
    let out = inside(
        "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; echo $GREETING; pwd",
        |c| {
            c["process"]["rlimits"] =
                json!([{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1234}]);
            c["process"]["oomScoreAdj"] = json!(500);
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("GREETING=hello world"));
            c["process"]["cwd"] = json!("/work/dir");
        },
    );
    assert_eq!(out, "1234\n2048\n500\nhello world\n/work/dir\n");
}

#[test]
fn readonly_rootfs_and_protected_proc_paths() {
    let out = inside(
        "touch /x 2>/dev/null && echo root-writable || echo root-readonly; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-writable || echo sys-readonly; \
         cat /proc/keys /proc/timer_list 2>/dev/null | wc -c; ls /sys/firmware | wc -l",
        |c| c["root"]["readonly"] = json!(true),
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        ["root-readonly", "sys-readonly", "0", "0"],
        "masked paths readable or rootfs writable"
    );
    // On the host the same paths do have content, so the zeros above are the masks.
    assert!(!std::fs::read_to_string("/proc/timer_list")
        .unwrap_or_default()
        .is_empty());
}

#[test]
fn sysctls_are_set_in_the_containers_namespaces() {
    let out = inside(
        "cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/shmmni",
        |c| {
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
        },
    );
    assert_eq!(out, "1\n1234\n");
    // The host's values are untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni")
            .unwrap()
            .trim(),
        "1234"
    );
}

#[test]
fn cgroups_are_mounted_and_show_the_containers_own() {
    let out = inside(
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        |c| {
            c["linux"]["resources"]["pids"] = json!({"limit": 42});
        },
    );
    assert_eq!(out.trim(), "42");
}

#[test]
fn preserved_descriptors_reach_the_process_and_others_do_not() {
    use std::os::fd::AsRawFd;
    let rt = Runtime::new();
    let bundle = Bundle::new(
        &rt,
        "for f in /proc/1/fd/*; do echo \"${f##*/} $(readlink $f)\"; done",
    );
    let id = unique_id("fds");
    rt.track(&id);
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_path = secret_dir.path().join("host-secret-file");
    let extra = std::fs::File::open("/dev/null").unwrap();
    let leaked = std::fs::File::create(&secret_path).unwrap();
    let mut cmd = rt.cmd();
    cmd.args([
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    // Park both above the target numbers first, so neither dup2 below is a no-op (which
    // would keep close-on-exec) or overwrites the other.
    let park = |fd: i32| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(100)).unwrap();
    let (extra_fd, leaked_fd) = (park(extra.as_raw_fd()), park(leaked.as_raw_fd()));
    // SAFETY: dup2 in the child between fork and exec touches only descriptors.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            nix::unistd::dup2(extra_fd, 3)
                .map(drop)
                .map_err(std::io::Error::from)?;
            nix::unistd::dup2(leaked_fd, 4)
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let out = run_with_timeout(cmd, std::time::Duration::from_secs(60));
    assert_ok(&out, "run");
    let listing = stdout(&out);
    assert!(
        listing.lines().any(|l| l == "3 /dev/null"),
        "preserved fd 3 lost: {listing}"
    );
    assert!(
        !listing.contains("host-secret-file"),
        "host descriptor leaked: {listing}"
    );
}

#[test]
fn socket_activation_descriptors_are_passed_on() {
    let rt = Runtime::new();
    let bundle = Bundle::new(&rt, "echo $LISTEN_FDS $LISTEN_PID; readlink /proc/1/fd/3");
    let id = unique_id("listenfds");
    rt.track(&id);
    // systemd's protocol: LISTEN_PID is the runtime's own pid, so a shell sets it and
    // execs the runtime with fd 3 open.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --root \"$1\" run --bundle \"$2\" \"$3\" 3</dev/zero")
        .arg(&rt.binary)
        .arg(rt.root.path())
        .arg(bundle.path())
        .arg(&id);
    let out = run_with_timeout(cmd, std::time::Duration::from_secs(60));
    assert_ok(&out, "run with LISTEN_FDS");
    assert_eq!(stdout(&out), "1 1\n/dev/zero\n");
}
