//! seccomp on every x86 system call ABI, for real and side by side with runc: a static
//! helper (assets/syscall_probe.c) makes raw i386 (`int 0x80`), x32 and x86_64 calls in
//! a container under Docker's default allow list, and both runtimes must answer alike.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};
use support::*;

/// The probe, compiled once per test process.
fn probe() -> &'static Path {
    static PROBE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = PROBE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("syscall_probe");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/assets/syscall_probe.c");
        let built = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(&source)
            .output()
            .expect("gcc is missing: apt-get install -y gcc libc6-dev");
        assert!(
            built.status.success(),
            "building the probe failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        (dir, out)
    });
    path
}

/// The unconditional allow list of Docker's default profile (as berthd ships it) for
/// amd64: its main list and the calls it allows on amd64 only (arch_prctl, which a
/// static program's start needs, modify_ldt).
fn docker_allow_list() -> Vec<Value> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/profiles/seccomp-default.json");
    let profile: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut names = Vec::new();
    for rule in profile["syscalls"].as_array().unwrap() {
        let includes = &rule["includes"];
        let for_amd64 = includes.as_object().is_none_or(|i| i.is_empty())
            || (includes["caps"].is_null()
                && includes["arches"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!("amd64"))));
        if rule["action"] == "SCMP_ACT_ALLOW" && rule["args"].is_null() && for_amd64 {
            names.extend(rule["names"].as_array().unwrap().iter().cloned());
        }
    }
    assert!(names.len() > 300 && names.contains(&json!("arch_prctl")));
    names
}

/// Docker's default action and allow list on `architectures`, with getppid refused
/// with its own errno (EXDEV, 18) by an explicit rule.
fn docker_style(architectures: &[&str]) -> Value {
    let allowed: Vec<Value> = docker_allow_list()
        .into_iter()
        .filter(|n| n != "getppid")
        .collect();
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": architectures,
        "syscalls": [
            {"names": allowed, "action": "SCMP_ACT_ALLOW"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}
        ]
    })
}

/// Run the probe with `probes` under `profile` with `runtime`; (exit code, stdout).
fn run_probe(runtime: &Runtime, profile: &Value, probes: &[&str]) -> (i32, String) {
    let mut bundle = Bundle::new(runtime, "unused");
    std::fs::copy(probe(), bundle.rootfs().join("probe")).unwrap();
    bundle.edit(|c| {
        let mut args = vec![json!("/probe")];
        args.extend(probes.iter().map(|p| json!(p)));
        c["process"]["args"] = Value::Array(args);
        c["linux"]["seccomp"] = profile.clone();
    });
    let out = runtime.run(&bundle, &unique_id("abi"));
    (out.status.code().unwrap_or(-1), stdout(&out))
}

/// Both runtimes on the same config; berth-runtime's answer once it equals runc's.
fn side_by_side(profile: &Value, probes: &[&str]) -> (i32, String) {
    let berth = run_probe(&Runtime::new(), profile, probes);
    let runc = run_probe(&Runtime::runc(), profile, probes);
    assert_eq!(berth, runc, "berth-runtime (left) and runc (right) differ");
    berth
}

fn answers(out: &str) -> Vec<(String, i64)> {
    out.lines()
        .map(|l| {
            let (probe, ret) = l.split_once('=').unwrap();
            (probe.to_string(), ret.parse().unwrap())
        })
        .collect()
}

fn answer(out: &str, probe: &str) -> i64 {
    answers(out)
        .into_iter()
        .find(|(p, _)| p == probe)
        .unwrap_or_else(|| panic!("no answer for {probe} in {out}"))
        .1
}

const EPERM: i64 = -1;
const EXDEV: i64 = -18;
const ENOSYS: i64 = -38;

#[test]
fn i386_and_x32_calls_get_the_profile_with_their_own_numbers() {
    let profile = docker_style(&["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    let (code, out) = side_by_side(
        &profile,
        &[
            "x86_64:39",  // getpid
            "i386:20",    // getpid
            "x32:39",     // getpid
            "x86_64:110", // getppid, refused by its rule
            "i386:64",    // getppid
            "x32:110",    // getppid
            "i386:68",    // sgetmask: not in the allow list
            "x32:163",    // acct: not in the allow list
        ],
    );
    assert_eq!(code, 0, "{out}");
    // The container's init is PID 1 whichever ABI asks.
    assert_eq!(answer(&out, "x86_64:39"), 1);
    assert_eq!(answer(&out, "i386:20"), 1, "i386 getpid was not allowed");
    // The filter lets x32's getpid through; this kernel may not have the x32 ABI
    // (CONFIG_X86_X32_ABI), and then answers ENOSYS itself.
    assert!(
        matches!(answer(&out, "x32:39"), 1 | ENOSYS),
        "x32 getpid: {out}"
    );
    for denied in ["x86_64:110", "i386:64", "x32:110"] {
        assert_eq!(answer(&out, denied), EXDEV, "{denied}: {out}");
    }
    assert_eq!(answer(&out, "i386:68"), EPERM, "{out}");
    assert_eq!(answer(&out, "x32:163"), EPERM, "{out}");
}

#[test]
fn calls_newer_than_the_profile_get_enosys_as_with_runc() {
    let profile = docker_style(&["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    // Docker's list ends with futex_requeue (456): newer calls, and numbers no kernel
    // has yet, get ENOSYS, so that libcs fall back.
    let newer = [
        "x86_64:457",
        "x86_64:462",
        "x86_64:469",
        "x86_64:1000",
        "i386:457",
        "i386:462",
        "x32:600",
    ];
    // Holes below it keep the default errno.
    let older = ["x86_64:400", "i386:390", "x32:500"];
    // What the list names up to there reaches the kernel (cachestat, fchmodat2 and the
    // futex2 calls, on every ABI); whatever it answers, the filter did not.
    let listed = [
        "x86_64:451",
        "x86_64:452",
        "x86_64:456",
        "i386:451",
        "i386:454",
    ];
    let probes: Vec<&str> = newer.iter().chain(&older).chain(&listed).copied().collect();
    let (code, out) = side_by_side(&profile, &probes);
    assert_eq!(code, 0, "{out}");
    for probe in newer {
        assert_eq!(answer(&out, probe), ENOSYS, "{probe}: {out}");
    }
    for probe in older {
        assert_eq!(answer(&out, probe), EPERM, "{probe}: {out}");
    }
    for probe in listed {
        assert_ne!(answer(&out, probe), EPERM, "{probe}: {out}");
    }
}

#[test]
fn an_abi_the_profile_leaves_out_is_killed_as_with_runc() {
    let profile = docker_style(&["SCMP_ARCH_X86_64"]);
    let (code, out) = side_by_side(&profile, &["x86_64:39", "i386:20", "x86_64:39"]);
    // SIGSYS (31) ends the probe at its first i386 call.
    assert_eq!(code, 128 + 31, "{out}");
    assert_eq!(out, "x86_64:39=1\n");
}

#[test]
fn a_deny_list_reaches_i386_socket_calls_through_socketcall() {
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["socket", "getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18}]
    });
    let (code, out) = side_by_side(
        &profile,
        &[
            "x86_64:41",   // socket
            "i386:359",    // socket
            "i386:102:1",  // socketcall(SYS_SOCKET, NULL)
            "i386:102:2",  // socketcall(SYS_BIND, NULL): allowed, the kernel faults
            "i386:64",     // getppid
            "x86_64:1000", // no ENOSYS rule under an allowing default
        ],
    );
    assert_eq!(code, 0, "{out}");
    for denied in ["x86_64:41", "i386:359", "i386:102", "i386:64"] {
        assert_eq!(answer(&out, denied), EXDEV, "{denied}: {out}");
    }
    let all = answers(&out);
    assert_eq!(
        all[3],
        ("i386:102".into(), -14),
        "socketcall(SYS_BIND): {out}"
    );
    assert_eq!(
        answer(&out, "x86_64:1000"),
        ENOSYS,
        "the kernel's own: {out}"
    );
}
