//! Attacks from the known runc escapes, tried for real, and seccomp doing its job.

mod support;

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

/// CVE-2019-5736: a container process holds /proc/PID/exe of a runtime process it can see
/// and, once that process is gone, reopens it for writing to replace the host binary.
#[test]
fn the_runtime_binary_cannot_be_overwritten_through_proc_exe() {
    // A private copy of the binary: while any other test runs the shared one, the kernel
    // answers ETXTBSY before it gets to the read-only check.
    let private = tempfile::tempdir().unwrap();
    let mut rt = Runtime::new();
    let copy = private.path().join("berth-runtime");
    std::fs::copy(&rt.binary, &copy).unwrap();
    rt.binary = copy;
    let bundle = Bundle::new(&rt, "true");
    let id = unique_id("cve-2019-5736");
    rt.create(&bundle, &id);
    // The created init is still a runtime process, visible to the container.
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let held = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    let before = std::fs::read(&rt.binary).unwrap();
    assert_ok(&rt.output(&["delete", "--force", &id]), "delete");
    assert!(wait_until(Duration::from_secs(5), || !alive(pid)));
    let reopened = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", held.as_raw_fd()));
    let err = reopened.expect_err("the runtime binary was writable through /proc/PID/exe");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    assert_eq!(std::fs::read(&rt.binary).unwrap(), before);
}

/// CVE-2024-21626: a host directory descriptor leaked into the init, used as the cwd
/// (`/proc/self/fd/N`), would put the container's process outside its root.
#[test]
fn a_leaked_directory_cannot_become_the_cwd() {
    let rt = Runtime::new();
    let host_dir = tempfile::tempdir().unwrap();
    let mut bundle = Bundle::new(&rt, "touch escaped; pwd");
    bundle.edit(|c| c["process"]["cwd"] = json!("/proc/self/fd/7"));
    let id = unique_id("cve-2024-21626");
    rt.track(&id);
    let dir = std::fs::File::open(host_dir.path()).unwrap();
    let parked =
        nix::fcntl::fcntl(dir.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(100)).unwrap();
    let mut cmd = rt.cmd();
    cmd.args(["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    // SAFETY: dup2 between fork and exec only touches descriptors.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            nix::unistd::dup2(parked, 7)
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    assert!(
        !out.status.success(),
        "ran with a cwd outside the container: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("outside the container"),
        "{}",
        stderr(&out)
    );
    assert!(!host_dir.path().join("escaped").exists());
    assert!(!rt.state_dir(&id).exists());
}

/// CVE-2021-30465: the image swaps a mount destination for a symlink to the host while
/// the runtime sets up mounts. Bounded race: a thread flips the path for every run.
#[test]
fn racing_a_symlink_into_a_mount_destination_stays_inside() {
    let rt = Runtime::new();
    let host_dir = tempfile::tempdir().unwrap();
    let mut bundle = Bundle::new(
        &rt,
        "touch /mnt/target/marker /mnt/link/marker 2>/dev/null; echo done",
    );
    bundle.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/mnt/target", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    });
    let mnt = bundle.rootfs().join("mnt");
    std::fs::create_dir_all(mnt.join("target")).unwrap();
    std::os::unix::fs::symlink(host_dir.path(), mnt.join("link")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, mnt) = (stop.clone(), mnt.clone());
        std::thread::spawn(move || {
            let (a, b) = (
                std::ffi::CString::new(mnt.join("target").into_os_string().into_encoded_bytes())
                    .unwrap(),
                std::ffi::CString::new(mnt.join("link").into_os_string().into_encoded_bytes())
                    .unwrap(),
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                // SAFETY: renameat2 reads two NUL-terminated paths.
                unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
            }
        })
    };
    let mut succeeded = 0;
    for round in 0..20 {
        let out = rt.run(&bundle, &unique_id(&format!("race{round}")));
        succeeded += usize::from(out.status.success() && stdout(&out) == "done\n");
        // Whichever way the path pointed, the tmpfs (and what the container wrote) stayed
        // inside the rootfs: the link is resolved as if the rootfs were /.
        assert!(
            !host_dir.path().join("marker").exists(),
            "round {round}: the container reached the host"
        );
    }
    assert!(succeeded > 0, "no run succeeded under the race");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(host_dir.path().to_str().unwrap()));
}

#[test]
fn seccomp_blocks_what_the_profile_says() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(
        &rt,
        "mkdir /blocked 2>&1; unshare -n true 2>&1; echo still-here; ls /",
    );
    bundle.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}
            ]
        });
    });
    let out = rt.run(&bundle, &unique_id("seccomp"));
    assert_ok(&out, "run");
    let text = stdout(&out);
    assert!(text.contains("Operation not permitted"), "{text}");
    assert!(text.contains("still-here"));
    assert!(!bundle.rootfs().join("blocked").exists());
}

#[test]
fn seccomp_default_deny_with_an_allow_list_runs_a_shell() {
    // An allow list in the style of Docker's default profile (and, like older ones, without
    // close_range, which the runtime must then do without): default errno, listed
    // calls allowed, one call with an argument condition.
    let rt = Runtime::new();
    let allowed = [
        "read",
        "write",
        "openat",
        "open",
        "close",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "access",
        "execve",
        "exit",
        "exit_group",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "arch_prctl",
        "set_tid_address",
        "wait4",
        "fcntl",
        "dup2",
        "dup3",
        "getcwd",
        "chdir",
        "uname",
        "vfork",
        "clone",
        "fork",
        "getdents64",
        "lseek",
        "prlimit64",
        "setpgid",
        "getpgid",
        "getpgrp",
        "statx",
        "pipe",
        "pipe2",
        "readlink",
        "readlinkat",
        "sysinfo",
        "setresuid",
        "setresgid",
        "setgroups",
        "capget",
        "capset",
        "prctl",
        "poll",
        "futex",
        "set_robust_list",
        "rseq",
        "gettid",
        "tgkill",
        "kill",
        "sched_getaffinity",
        "getrandom",
        "keyctl",
        "chroot",
    ];
    let mut bundle = Bundle::new(&rt, "echo allowed; mkdir /nope 2>&1 || true");
    bundle.edit(|c| {
        // Without no_new_privs the filter is loaded before the runtime's last steps.
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": allowed.to_vec(), "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}
            ]
        });
    });
    let out = rt.run(&bundle, &unique_id("seccomp-allowlist"));
    assert_ok(&out, "run");
    assert!(stdout(&out).starts_with("allowed\n"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("Operation not permitted"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn seccomp_notify_is_refused_clearly() {
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "true");
    bundle.edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    });
    let id = unique_id("notify");
    rt.track(&id);
    let out = rt.output(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("SCMP_ACT_NOTIFY is not supported"),
        "{}",
        stderr(&out)
    );
    assert!(!rt.state_dir(&id).exists());
}

#[test]
fn a_profile_refusing_stat_calls_still_starts_the_program() {
    // Older profiles (like the runtime-tools suite's) lack statx; the runtime finds the
    // program before the filter is loaded.
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&rt, "unused");
    bundle.edit(|c| {
        c["process"]["args"] = json!(["/bin/echo", "started"]);
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["statx", "newfstatat", "stat", "lstat"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    let out = rt.run(&bundle, &unique_id("nostat"));
    assert_ok(&out, "run");
    assert_eq!(stdout(&out), "started\n");
}
