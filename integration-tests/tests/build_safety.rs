//! Bad input and safety of `POST /build`: hostile context tars (`..` and absolute
//! names, symlinks out of the context), COPY sources outside the context, a missing base
//! image (from a registry on 127.0.0.1 only, never the internet), a failing RUN, a
//! client that disconnects mid-build, and berthd killed with SIGKILL mid-build. Each
//! leaves no container, no half-made layer or image, nothing written outside.

mod build_support;
mod engine_support;

use build_support::*;
use engine_support::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

fn raw_tar(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(if *kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(1_700_000_000);
        // Raw names: the tar crate refuses `..` and absolute paths in set_path.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn file(
    name: &'static str,
    data: &'static [u8],
) -> (
    &'static str,
    tar::EntryType,
    &'static [u8],
    Option<&'static str>,
) {
    (name, tar::EntryType::Regular, data, None)
}

/// What the data root holds of unfinished work: context dirs, snapshots being made,
/// blobs being written.
fn leftovers(d: &Berthd) -> Vec<String> {
    let root = d.data_root();
    let mut out = Vec::new();
    for dir in ["tmp", "snapshots/.tmp", "content/ingest"] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir)) {
            out.extend(
                rd.flatten()
                    .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy())),
            );
        }
    }
    out
}

fn containers(d: &Berthd) -> Vec<String> {
    d.docker_ok(&["ps", "-aq"])
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn hostile_contexts_are_refused_and_nothing_escapes() {
    let d = Berthd::start();
    import_busybox(&d, &busybox_tar());
    let outside = tempfile::tempdir().unwrap();
    let out_dir = outside.path().to_str().unwrap().to_string();
    std::fs::write(outside.path().join("secret"), "host secret\n").unwrap();
    let df: &[u8] = b"FROM bb:1\nCOPY . /c/\n";
    // `..` and absolute names: 400, named, nothing unpacked anywhere.
    for evil in ["../evil", "a/../../evil", "/abs-evil"] {
        let tar = raw_tar(&[
            file("Dockerfile", df),
            (evil, tar::EntryType::Regular, b"x", None),
        ]);
        let r = d.http("POST", "/build?t=evil", Some(&tar));
        assert_eq!(r.status, 400, "{evil}: {}", r.text());
        assert!(r.text().contains(evil), "{evil}: {}", r.text());
        assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
    }
    assert!(!std::path::Path::new("/abs-evil").exists());
    // A symlink to a host directory, then an entry through it: lands inside the
    // context (where the link resolves there), never in the host directory.
    let through = format!("{}/evil", "ln");
    let tar = raw_tar(&[
        file("Dockerfile", df),
        ("ln", tar::EntryType::Symlink, b"", Some(&out_dir)),
        (
            Box::leak(through.into_boxed_str()),
            tar::EntryType::Regular,
            b"x",
            None,
        ),
    ]);
    let _ = d.http("POST", "/build?t=through", Some(&tar));
    let host: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        host.len(),
        1,
        "something was written into the host directory: {host:?}"
    );

    // Symlinks in a context that point out of it: COPY of one finds nothing (it
    // resolves inside the context), COPY of a directory holding one copies the link as
    // a link; the host's file never enters the image.
    let secret = format!("{out_dir}/secret");
    let climb = format!("../../../../../../../..{out_dir}/secret");
    for (name, dockerfile) in [
        ("abs", "FROM bb:1\nCOPY link /x\n"),
        ("climb", "FROM bb:1\nCOPY up /x\n"),
        ("through", "FROM bb:1\nCOPY root/etc/hostname /x\n"),
    ] {
        let tar = raw_tar(&[
            (
                "Dockerfile",
                tar::EntryType::Regular,
                dockerfile.as_bytes(),
                None,
            ),
            ("link", tar::EntryType::Symlink, b"", Some(&secret)),
            ("up", tar::EntryType::Symlink, b"", Some(&climb)),
            ("root", tar::EntryType::Symlink, b"", Some("/")),
        ]);
        let r = d.http("POST", &format!("/build?t={name}"), Some(&tar));
        let text = r.text();
        assert!(
            text.contains("file not found in build context or excluded by .dockerignore"),
            "{name}: {text}"
        );
        assert!(!text.contains("Successfully built"), "{name}: {text}");
    }
    let ctx = tempfile::tempdir().unwrap();
    write_files(ctx.path(), &[("Dockerfile", "FROM bb:1\nCOPY d /d\n")]);
    std::fs::create_dir(ctx.path().join("d")).unwrap();
    std::os::unix::fs::symlink(&secret, ctx.path().join("d/leak")).unwrap();
    d.docker_ok(&["build", "-t", "links:1", ctx.path().to_str().unwrap()]);
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "links:1",
        "sh",
        "-c",
        "readlink /d/leak; cat /d/leak || echo unreadable",
    ]);
    assert_eq!(out.lines().next(), Some(secret.as_str()));
    assert!(!out.contains("host secret"), "{out}");

    // COPY from outside the context.
    write_files(
        ctx.path(),
        &[("Dockerfile", "FROM bb:1\nCOPY ../../etc/passwd /p\n")],
    );
    let err = d.docker_err(&["build", ctx.path().to_str().unwrap()]);
    assert!(
        err.contains("forbidden path outside the build context: ../../etc/passwd ()"),
        "{err}"
    );
    assert!(containers(&d).is_empty());
    assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
    // A broken (cut) tar: a clear 400, nothing left.
    let mut tar = raw_tar(&[file("Dockerfile", df), file("big", &[7u8; 4000])]);
    tar.truncate(1200);
    let r = d.http("POST", "/build", Some(&tar));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("error reading the build context"),
        "{}",
        r.text()
    );
    assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
}

#[test]
fn missing_base_images_and_failing_runs() {
    let d = Berthd::start();
    let reg = Registry::start(false);
    import_busybox(&d, &busybox_tar());
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap();
    // A base image that is nowhere: pulled from the registry named (a local one
    // here), and a clear error when it has no such image.
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}/nosuch/base:1\n", reg.host()),
        )],
    );
    let out = d.docker_cmd(&["build", c]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("pulling {}/nosuch/base:1", reg.host())),
        "{err}"
    );
    // A base image that the registry has is pulled (and `pull` pulls it again).
    d.docker_ok(&["tag", "bb:1", &format!("{}/lib/bb:1", reg.host())]);
    d.docker_ok(&["push", &format!("{}/lib/bb:1", reg.host())]);
    d.docker_ok(&["rmi", &format!("{}/lib/bb:1", reg.host())]);
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            &format!("FROM {}/lib/bb:1\nRUN echo pulled > /p\n", reg.host()),
        )],
    );
    let out = d.docker_ok(&["build", "--pull", "-t", "pulled:1", c]);
    assert!(out.contains("Successfully tagged pulled:1"), "{out}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "pulled:1", "cat", "/p"])
            .trim(),
        "pulled"
    );

    // A failing RUN: its exit code, and no container left (rm is the default)...
    write_files(
        ctx.path(),
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN echo out; echo err >&2; exit 9\n",
        )],
    );
    let out = d.docker_cmd(&["build", c]).output().unwrap();
    assert_eq!(out.status.code(), Some(9));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("out\n"), "{stdout}");
    assert!(stdout.contains("err"), "{stdout}");
    assert!(
        containers(&d).is_empty(),
        "a failed step's container was left"
    );
    // ... unless asked to keep it.
    let out = d.docker_cmd(&["build", "--rm=false", c]).output().unwrap();
    assert_eq!(out.status.code(), Some(9));
    let kept = containers(&d);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let state = d.docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &kept[0]]);
    assert_eq!(state.trim(), "9");
    d.docker_ok(&["rm", &kept[0]]);
    // With rm=false a successful step's container stays and still has its files.
    write_files(
        ctx.path(),
        &[("Dockerfile", "FROM bb:1\nRUN echo kept > /k\n")],
    );
    d.docker_ok(&["build", "--rm=false", "--no-cache", "-t", "kept:1", c]);
    let kept = containers(&d);
    assert_eq!(kept.len(), 1);
    assert_eq!(d.docker_ok(&["diff", &kept[0]]).trim(), "A /k");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "kept:1", "cat", "/k"])
            .trim(),
        "kept"
    );
    assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
}

/// Starts a build over a raw connection whose RUN step prints `started` and then
/// sleeps; returns the connection once `started` was seen.
fn start_slow_build(d: &Berthd, marker: &str) -> UnixStream {
    let dockerfile =
        format!("FROM bb:1\nENV STEP=1\nRUN echo started; sleep {marker}; echo never > /never\n");
    let tar = raw_tar(&[(
        "Dockerfile",
        tar::EntryType::Regular,
        dockerfile.as_bytes(),
        None,
    )]);
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "POST /v1.41/build?t=slow:1&nocache=1 HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        tar.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&tar).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&seen).contains("started") {
        assert!(Instant::now() < deadline, "the RUN step did not start");
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    s
}

fn sleeping(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c).replace('\0', " ").trim() == format!("sleep {marker}")
            })
            .unwrap_or(false)
    })
}

#[test]
fn a_client_that_goes_away_stops_the_build_and_leaves_nothing() {
    let d = Berthd::start();
    import_busybox(&d, &busybox_tar());
    let images_before = d.docker_ok(&["images", "-aq"]);
    let marker = "3583";
    let s = start_slow_build(&d, marker);
    assert_eq!(containers(&d).len(), 1);
    drop(s);
    assert!(
        berth_integration_tests::wait_until(Duration::from_secs(30), || containers(&d).is_empty()),
        "the step container was left"
    );
    assert!(!sleeping(marker), "the step's process still runs");
    // The context goes once the build's task has ended.
    assert!(
        berth_integration_tests::wait_until(Duration::from_secs(10), || leftovers(&d).is_empty()),
        "{:?}",
        leftovers(&d)
    );
    // The metadata step before the RUN made an image (a cache entry); nothing of the
    // RUN step was kept.
    let after = d.docker_ok(&["images", "-aq"]);
    assert_eq!(
        after.lines().count(),
        images_before.lines().count() + 1,
        "{after}"
    );
    assert!(
        d.log().contains("build cancelled"),
        "{}",
        tail(&d.log(), 20)
    );
}

#[test]
fn berthd_killed_mid_build_leaves_no_half_made_image_and_the_cache_intact() {
    let mut d = Berthd::start();
    import_busybox(&d, &busybox_tar());
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap();
    write_files(
        ctx.path(),
        &[
            (
                "Dockerfile",
                "FROM bb:1\nCOPY f /f\nRUN echo done > /done\nCMD [\"cat\", \"/done\"]\n",
            ),
            ("f", "f\n"),
        ],
    );
    d.docker_ok(&["build", "-t", "cached:1", c]);
    let images_before: Vec<String> = d
        .docker_ok(&["images", "-aq", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect();
    let marker = "3581";
    let s = start_slow_build(&d, marker);
    d.crash_and_restart();
    drop(s);
    // The step container (whose process outlived berthd with its shim) is gone.
    assert!(
        berth_integration_tests::wait_until(Duration::from_secs(30), || containers(&d).is_empty()
            && !sleeping(marker)),
        "build container or its process left after restart: {:?}",
        containers(&d)
    );
    assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
    // Only complete images: the ENV step's (made before the kill) and those before.
    let after: Vec<String> = d
        .docker_ok(&["images", "-aq", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(after.len(), images_before.len() + 1, "{after:?}");
    for id in &after {
        d.docker_ok(&["image", "inspect", id]);
    }
    assert!(
        !d.docker_ok(&["images"]).contains("slow"),
        "the killed build's tag exists"
    );
    // The cache is intact: the earlier build is all cache hits and its image runs.
    let out = d.docker_ok(&["build", "-t", "cached:1", c]);
    assert_eq!(out.matches("Using cache").count(), 3, "{out}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "cached:1"])
            .trim(),
        "done"
    );
}
