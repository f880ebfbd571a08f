//! Shared helpers of the build tests: a busybox image imported into berthd and dockerd
//! alike, contexts written into temp dirs, `docker build` with the classic builder
//! (`DOCKER_BUILDKIT=0`) against either engine, and output normalized so that the two
//! engines' builds can be compared line by line.

#![allow(dead_code)] // each test binary uses a different part of the harness

use super::engine_support::*;
use std::path::Path;
use std::process::{Command, Output};

/// An engine the docker CLI can be pointed at.
pub trait Engine {
    /// `docker ARGS...` aimed at it.
    fn cmd(&self, args: &[&str]) -> Command;
    /// Its name, for messages.
    fn name(&self) -> &'static str;
}

impl Engine for Berthd {
    fn cmd(&self, args: &[&str]) -> Command {
        self.docker_cmd(args)
    }
    fn name(&self) -> &'static str {
        "berthd"
    }
}

impl Engine for Dockerd {
    fn cmd(&self, args: &[&str]) -> Command {
        self.docker_cmd(args)
    }
    fn name(&self) -> &'static str {
        "dockerd"
    }
}

/// Runs a docker command against `e` (classic builder), returning its output.
pub fn run(e: &dyn Engine, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut c = e.cmd(args);
    c.env("DOCKER_BUILDKIT", "0");
    berth_integration_tests::run_piped(c, input, COMMAND_TIMEOUT)
}

/// Runs a docker command and insists it succeeds; returns stdout.
pub fn ok(e: &dyn Engine, args: &[&str]) -> String {
    let out = run(e, args, None);
    assert!(
        out.status.success(),
        "{}: docker {args:?} failed:\nstdout: {}\nstderr: {}",
        e.name(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A busybox root filesystem as a tar, with an `app` user (1000) and group (1000).
pub fn busybox_tar() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    berth_integration_tests::make_rootfs(dir.path());
    std::fs::write(
        dir.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("etc/group"),
        "root:x:0:\napp:x:1000:\nstaff:x:50:\nnobody:x:65534:\n",
    )
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir.path()).unwrap();
    b.into_inner().unwrap()
}

/// Imports the busybox image as `bb:1` (CMD sh, PATH=/bin) into `e`.
pub fn import_busybox(e: &dyn Engine, tar: &[u8]) {
    let out = run(
        e,
        &[
            "import",
            "-c",
            "CMD [\"sh\"]",
            "-c",
            "ENV PATH=/bin",
            "-",
            "bb:1",
        ],
        Some(tar),
    );
    assert!(
        out.status.success(),
        "{}: import failed: {}",
        e.name(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes files (path, content) under `dir`, making directories as needed.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (p, content) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// The build output lines that both engines print the same way: the progress line of
/// the upload, the CLI's deprecation notice and the `Running in`/`Removing` lines of
/// steps that dockerd runs a container for and berthd does not are left out, and IDs
/// become `ID`.
pub fn comparable(output: &str) -> Vec<String> {
    let id = regex_lite(r"[0-9a-f]{12}");
    output
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("Sending build context")
                && !l.starts_with("DEPRECATED")
                && !l.starts_with("            ")
                && !l.contains("---> Running in")
                && !l.starts_with("Removing intermediate container")
                && !l.contains("[WARNING]: the syntax parser directive")
        })
        .map(|l| id(&l))
        .collect()
}

/// Replaces every run of 12 or more lowercase hex digits (IDs) with `ID`.
pub fn regex_lite(_pattern: &str) -> impl Fn(&str) -> String {
    |s: &str| {
        let mut out = String::new();
        let mut run = String::new();
        for c in s.chars() {
            if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
                run.push(c);
                continue;
            }
            if run.len() >= 12 {
                out.push_str("ID");
            } else {
                out.push_str(&run);
            }
            run.clear();
            out.push(c);
        }
        if run.len() >= 12 {
            out.push_str("ID");
        } else {
            out.push_str(&run);
        }
        out
    }
}

/// The image's config as JSON with the fields that name this engine's own IDs removed.
pub fn config_of(e: &dyn Engine, image: &str) -> serde_json::Value {
    let text = ok(
        e,
        &["image", "inspect", "--format", "{{json .Config}}", image],
    );
    let mut v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("Image");
    o.remove("Hostname");
    v
}

/// `CreatedBy|empty?` of each history row, newest first.
pub fn history_of(e: &dyn Engine, image: &str) -> Vec<String> {
    ok(
        e,
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Size}}",
            image,
        ],
    )
    .lines()
    .map(|l| l.to_string())
    .collect()
}

/// Path of the Debian python3 (with python3-docker), not a pyenv shim.
pub fn system_python() -> Option<&'static str> {
    let p = "/usr/bin/python3";
    let ok = Command::new(p)
        .args(["-c", "import docker"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(p)
}
