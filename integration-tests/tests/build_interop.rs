//! The classic builder (`DOCKER_BUILDKIT=0`) against berthd and against the real dockerd
//! 20.10, side by side on the same Dockerfiles and contexts: the output lines, the
//! image config, the history (with dockerd's own COPY checksums) and the files of the
//! result must be the same; commit, diff and history too. Also docker-py's
//! `images.build` and docker-compose's `build:`. Skipped when dockerd is not installed.

mod build_support;
mod engine_support;

use build_support::*;
use engine_support::*;

const DOCKERFILE: &str = r#"# a comment
ARG BASE=bb:1
FROM $BASE AS build
ARG GREETING=hello
ENV G=${GREETING:-none} \
    H="x y"
RUN echo "$G $H" > /greeting && mkdir -p /out && cp /greeting /out/ && echo to-stderr >&2
COPY src/ /src/
COPY --chown=app:app src/one.txt /owned/
COPY ["src/d", "/d/"]
COPY *.txt /glob/
ADD arch.tar /unpacked/
WORKDIR rel
WORKDIR /w
RUN pwd > /w/pwd
FROM bb:1
LABEL org.test=yes maintainer="me"
COPY --from=build /out/greeting /g
COPY --from=0 /unpacked /u
COPY top.txt /
SHELL ["/bin/sh", "-c"]
EXPOSE 80 53/udp 8000-8001
VOLUME /data
USER app
WORKDIR /w
HEALTHCHECK --interval=5m --timeout=3s CMD true
STOPSIGNAL SIGTERM
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /g"]
"#;

fn context(dir: &std::path::Path) {
    write_files(
        dir,
        &[
            ("Dockerfile", DOCKERFILE),
            ("src/one.txt", "one\n"),
            ("src/d/two.txt", "two\n"),
            ("top.txt", "top\n"),
            ("other.txt", "other\n"),
            ("secret.key", "never sent\n"),
            (".dockerignore", "*.key\n"),
        ],
    );
    // A plain tar for ADD to unpack.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("inner.txt").unwrap();
    h.set_size(6);
    h.set_mode(0o640);
    h.set_uid(7);
    h.set_gid(8);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, &b"inner\n"[..]).unwrap();
    std::fs::write(dir.join("arch.tar"), b.into_inner().unwrap()).unwrap();
}

#[test]
fn classic_builds_match_dockerd() {
    let Some(dk) = Dockerd::start() else {
        eprintln!("skipping: dockerd is not installed (apt-get install docker.io)");
        return;
    };
    let d = Berthd::start();
    let bb = busybox_tar();
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    context(&ctx);
    let ctx_s = ctx.to_str().unwrap();
    let engines: [&dyn Engine; 2] = [&d, &dk];
    let mut outputs = Vec::new();
    let mut rebuilds = Vec::new();
    for e in engines {
        import_busybox(e, &bb);
        let out = run(
            e,
            &["build", "--build-arg", "GREETING=hi", "-t", "full:1", ctx_s],
            None,
        );
        assert!(
            out.status.success(),
            "{}: build failed: {}",
            e.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(comparable(&String::from_utf8_lossy(&out.stdout)));
        // A rebuild of the unchanged context: every step from the cache.
        let again = ok(
            e,
            &["build", "--build-arg", "GREETING=hi", "-t", "full:1", ctx_s],
        );
        rebuilds.push(comparable(&again));
    }
    assert_eq!(
        outputs[0], outputs[1],
        "build output differs (berthd, dockerd)"
    );
    assert!(
        outputs[0].iter().any(|l| l.starts_with("Step ")
            && l.ends_with(" : RUN echo \"$G $H\" > /greeting && mkdir -p /out && cp /greeting /out/ && echo to-stderr >&2")),
        "{:?}",
        outputs[0]
    );
    assert!(
        outputs[0].iter().any(|l| l.contains("to-stderr")),
        "{:?}",
        outputs[0]
    );
    assert_eq!(rebuilds[0], rebuilds[1]);
    assert_eq!(
        rebuilds[0]
            .iter()
            .filter(|l| l.contains("Using cache"))
            .count(),
        25,
        "{:?}",
        rebuilds[0]
    );
    assert!(rebuilds[0]
        .last()
        .unwrap()
        .starts_with("Successfully tagged full:1"));

    // Same config and history (the build stage's COPYs from the context carry the same
    // checksums; COPY --from's are each engine's own).
    assert_eq!(config_of(&d, "full:1"), config_of(&dk, "full:1"));
    let mask = regex_lite("");
    let (hb, hd) = (history_of(&d, "full:1"), history_of(&dk, "full:1"));
    assert_eq!(hb.len(), hd.len(), "{hb:#?}\n{hd:#?}");
    for (a, b) in hb.iter().zip(&hd) {
        if a.contains(" in /g ") || a.contains(" in /u ") {
            assert_eq!(mask(a).split('|').next(), mask(b).split('|').next());
        } else {
            assert_eq!(a, b);
        }
    }
    for e in engines {
        ok(
            e,
            &[
                "build",
                "--build-arg",
                "GREETING=hi",
                "--target",
                "build",
                "-t",
                "stage:1",
                ctx_s,
            ],
        );
    }
    assert_eq!(history_of(&d, "stage:1"), history_of(&dk, "stage:1"));
    assert_eq!(config_of(&d, "stage:1"), config_of(&dk, "stage:1"));

    // Same files, owners and modes in the results.
    let probe = "cat /g /top.txt; ls -ln /u /w; cat /u/inner.txt; id -u";
    let stage_probe = "cat /w/pwd; ls -lnR /src /owned /d /glob /unpacked | grep -v '^total'; test -e /secret.key || echo no-key";
    for (image, script) in [("full:1", probe), ("stage:1", stage_probe)] {
        let mut seen = Vec::new();
        for e in engines {
            let out = ok(
                e,
                &[
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--entrypoint",
                    "sh",
                    image,
                    "-c",
                    script,
                ],
            );
            // Times differ between the two builds; names, owners, modes and sizes not.
            let rows: Vec<String> = out
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    if f.len() >= 9 && f[0].len() == 10 {
                        format!("{} {} {} {} {}", f[0], f[2], f[3], f[4], f[8..].join(" "))
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            seen.push(rows);
        }
        assert_eq!(seen[0], seen[1], "{image}: files differ (berthd, dockerd)");
    }

    // ONBUILD triggers run in a child build.
    let child = work.path().join("child");
    write_files(&child, &[("Dockerfile", "FROM full:1\nENV CHILD=1\n")]);
    let mut outs = Vec::new();
    for e in engines {
        outs.push(comparable(&ok(
            e,
            &["build", "-t", "child:1", child.to_str().unwrap()],
        )));
    }
    assert_eq!(outs[0], outs[1]);
    assert!(
        outs[0].iter().any(|l| l == "# Executing 1 build trigger"),
        "{:?}",
        outs[0]
    );
    assert!(outs[0].iter().any(|l| l == "triggered"), "{:?}", outs[0]);
}

#[test]
fn build_errors_read_as_dockerd_writes_them() {
    let Some(dk) = Dockerd::start() else {
        eprintln!("skipping: dockerd is not installed (apt-get install docker.io)");
        return;
    };
    let d = Berthd::start();
    let bb = busybox_tar();
    let engines: [&dyn Engine; 2] = [&d, &dk];
    for e in engines {
        import_busybox(e, &bb);
    }
    let work = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, i32)] = &[
        ("FROM bb:1\nRUN true\nFORM x\n", "dockerfile parse error line 3: unknown instruction: FORM", 1),
        ("FROM bb:1\nCOPY ../x /\n", "COPY failed: forbidden path outside the build context: ../x ()", 1),
        ("FROM bb:1\nCOPY nope /x\n", "COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist", 1),
        ("FROM bb:1\nRUN echo out; exit 3\n", "The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3", 3),
        ("FROM bb:1\nCMD [\"a\", 1]\n", "failed to parse Dockerfile: when using JSON array syntax, arrays must be comprised of strings only", 1),
        ("ENV A=1\n", "no build stage in current context", 1),
        ("FROM bb:1 AS 1x\n", "dockerfile parse error line 1: invalid name for build stage: \"1x\", name can't start with a number or contain symbols", 1),
        ("FROM bb:1\nCOPY --from=5 /x /\n", "invalid from flag value 5: index out of bounds", 1),
        ("FROM bb:1\nEXPOSE 80/xyz\n", "Invalid proto: xyz", 1),
        ("FROM bb:1\nSTOPSIGNAL FOO\n", "Invalid signal: FOO", 1),
        ("FROM bb:1\nENV A=${B\n", "failed to process \"${B\": missing ':' in substitution", 1),
        ("FROM bb:1\nCOPY --bogus=1 a b\n", "dockerfile parse error line 2: Unknown flag: bogus", 1),
        ("FROM bb:1\nRUN --mount=type=cache,target=/x true\n", "the --mount option requires BuildKit.", 1),
        ("# only a comment\n", "failed to parse Dockerfile: file with no instructions", 1),
    ];
    for (i, (dockerfile, want, code)) in cases.iter().enumerate() {
        let ctx = work.path().join(format!("case{i}"));
        write_files(&ctx, &[("Dockerfile", dockerfile)]);
        for e in engines {
            let out = run(e, &["build", ctx.to_str().unwrap()], None);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(*code),
                "{}: {dockerfile:?}: {err}",
                e.name()
            );
            assert!(
                err.contains(want),
                "{}: {dockerfile:?}: want {want:?} in {err}",
                e.name()
            );
        }
    }
    // An unknown target and an empty Dockerfile.
    let ctx = work.path().join("target");
    write_files(&ctx, &[("Dockerfile", "FROM bb:1 AS a\n")]);
    for e in engines {
        let out = run(e, &["build", "--target", "zz", ctx.to_str().unwrap()], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("failed to reach build target zz in Dockerfile"),
            "{}: {err}",
            e.name()
        );
    }
    write_files(&ctx, &[("Dockerfile", "")]);
    for e in engines {
        let out = run(e, &["build", ctx.to_str().unwrap()], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the Dockerfile (Dockerfile) cannot be empty"),
            "{}: {err}",
            e.name()
        );
    }
}

#[test]
fn commit_diff_history_match_dockerd() {
    let Some(dk) = Dockerd::start() else {
        eprintln!("skipping: dockerd is not installed (apt-get install docker.io)");
        return;
    };
    let d = Berthd::start();
    let bb = busybox_tar();
    let engines: [&dyn Engine; 2] = [&d, &dk];
    let mut diffs = Vec::new();
    let mut seen = Vec::new();
    for e in engines {
        import_busybox(e, &bb);
        ok(e, &["run", "--name", "c1", "--network", "none", "bb:1", "sh", "-c",
            "mkdir -p /x/y; echo a > /x/y/f; rm /bin/ls; echo b >> /etc/passwd; touch /tmp/t; mkdir /opq; touch /opq/keep"]);
        let mut d: Vec<String> = ok(e, &["diff", "c1"]).lines().map(String::from).collect();
        d.sort();
        diffs.push(d);
        ok(
            e,
            &[
                "commit",
                "-m",
                "msg",
                "-a",
                "me",
                "-c",
                "ENV Z=1",
                "-c",
                "CMD [\"true\"]",
                "c1",
                "cm:1",
            ],
        );
        let inspect = ok(e, &["image", "inspect", "--format",
            "{{.Comment}}|{{.Author}}|{{json .Config.Cmd}}|{{json .Config.Env}}|{{json .ContainerConfig.Cmd}}|{{len .RootFS.Layers}}", "cm:1"]);
        let files = ok(
            e,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "cm:1",
                "sh",
                "-c",
                "test -e /bin/ls || echo no-ls; cat /x/y/f; tail -1 /etc/passwd; ls /opq",
            ],
        );
        let history: Vec<String> = history_of(e, "cm:1").into_iter().take(1).collect();
        seen.push((inspect, files, history));
        let tar = run(e, &["export", "c1"], None);
        assert!(tar.status.success());
        let mut names: Vec<String> = tar::Archive::new(&tar.stdout[..])
            .entries()
            .unwrap()
            .map(|en| en.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        for want in ["x/y/f", "tmp/t", "bin/busybox", "etc/passwd"] {
            assert!(
                names.iter().any(|n| n == want),
                "{}: export lacks {want}",
                e.name()
            );
        }
        assert!(
            !names.iter().any(|n| n == "bin/ls"),
            "{}: export has a deleted file",
            e.name()
        );
    }
    assert_eq!(diffs[0], diffs[1], "docker diff differs (berthd, dockerd)");
    assert_eq!(seen[0], seen[1], "commit differs (berthd, dockerd)");

    // A running container: paused for the commit (and running again after it) unless
    // --pause=false; what its process wrote is in the image.
    let mut live = Vec::new();
    for e in engines {
        ok(
            e,
            &[
                "run",
                "-d",
                "--name",
                "live",
                "--network",
                "none",
                "bb:1",
                "sh",
                "-c",
                "echo live > /live; exec sleep 60",
            ],
        );
        let ready = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            run(e, &["exec", "live", "test", "-e", "/live"], None)
                .status
                .success()
        });
        assert!(ready, "{}: the container never wrote /live", e.name());
        let stamp = || {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            format!("{:.3}", t.as_secs_f64())
        };
        let mut actions = Vec::new();
        for (flag, image) in [("--pause=true", "live:1"), ("--pause=false", "live:2")] {
            let since = stamp();
            ok(e, &["commit", flag, "live", image]);
            let until = stamp();
            let ev = ok(
                e,
                &[
                    "events",
                    "--since",
                    &since,
                    "--until",
                    &until,
                    "--filter",
                    "type=container",
                    "--format",
                    "{{.Action}}",
                ],
            );
            actions.push(ev.lines().map(String::from).collect::<Vec<_>>());
        }
        let status = ok(e, &["inspect", "--format", "{{.State.Status}}", "live"]);
        let file = ok(
            e,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "cat",
                "live:1",
                "/live",
            ],
        );
        ok(e, &["rm", "-f", "live"]);
        live.push((actions, status, file));
    }
    assert_eq!(
        live[0], live[1],
        "commit of a running container (berthd, dockerd)"
    );
    let (actions, status, file) = &live[0];
    assert_eq!(actions[0], ["pause", "commit", "unpause"], "{actions:?}");
    assert_eq!(actions[1], ["commit"], "{actions:?}");
    assert_eq!((status.trim(), file.trim()), ("running", "live"));
}

#[test]
fn docker_py_and_compose_build() {
    let d = Berthd::start();
    import_busybox(&d, &busybox_tar());
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("app");
    write_files(
        &ctx,
        &[
            ("Dockerfile", "FROM bb:1\nARG WHO=nobody\nCOPY hello.txt /\nRUN echo \"built for $WHO\" > /who\nCMD [\"cat\", \"/who\"]\n"),
            ("hello.txt", "hello\n"),
        ],
    );
    if let Some(py) = system_python() {
        let script = r#"
import docker, sys
c = docker.DockerClient(base_url="unix://" + sys.argv[1])
img, logs = c.images.build(path=sys.argv[2], tag="pybuilt:1", buildargs={"WHO": "py"}, rm=True)
text = "".join(l.get("stream", "") for l in logs)
assert "Successfully built" in text, text
assert "Step 4/5 : RUN" in text, text
print(img.id)
print(c.images.get("pybuilt:1").attrs["Config"]["Cmd"])
try:
    c.images.build(path=sys.argv[3], tag="pybad:1")
    print("no error")
except docker.errors.BuildError as e:
    print("BuildError:", e.msg)
"#;
        let bad = work.path().join("bad");
        write_files(&bad, &[("Dockerfile", "FROM bb:1\nRUN exit 7\n")]);
        let mut c = std::process::Command::new(py);
        c.args([
            "-c",
            script,
            d.socket.to_str().unwrap(),
            ctx.to_str().unwrap(),
            bad.to_str().unwrap(),
        ]);
        let out = run_with_timeout(c, COMMAND_TIMEOUT);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "docker-py: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("sha256:"), "{text}");
        assert_eq!(lines[1], "['cat', '/who']");
        let who = d.docker_ok(&["run", "--rm", "--network", "none", "pybuilt:1"]);
        assert_eq!(who.trim(), "built for py");
        assert_eq!(
            lines[2],
            "BuildError: The command '/bin/sh -c exit 7' returned a non-zero code: 7"
        );
    } else {
        eprintln!("skipping docker-py: apt-get install python3-docker");
    }
    if std::path::Path::new("/usr/bin/docker-compose").exists() {
        let project = work.path().join("proj");
        write_files(
            &project,
            &[(
                "docker-compose.yml",
                &format!(
                    "version: \"3.8\"\nservices:\n  app:\n    build:\n      context: {}\n      args:\n        WHO: compose\n    image: composed:1\n    network_mode: none\n",
                    ctx.display()
                ),
            )],
        );
        let mut c = std::process::Command::new("docker-compose");
        c.current_dir(&project)
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .env("COMPOSE_DOCKER_CLI_BUILD", "0")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build"]);
        let out = run_with_timeout(c, COMMAND_TIMEOUT);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "docker-compose build: {all}");
        assert!(all.contains("Successfully tagged composed:1"), "{all}");
        let who = d.docker_ok(&["run", "--rm", "--network", "none", "composed:1"]);
        assert_eq!(who.trim(), "built for compose");
    } else {
        eprintln!("skipping docker-compose: apt-get install docker-compose");
    }
}

/// The build's limits and hosts reach its RUN steps as dockerd gives them: `--memory`,
/// `--cpu-shares`, `--cpuset-cpus` in the step's cgroups, `--shm-size` on /dev/shm,
/// `--add-host` in /etc/hosts; `--force-rm` removes a failed step's container, and a
/// kept one (`--rm=false`) stays until removed.
#[test]
fn run_steps_get_the_build_limits_and_hosts() {
    let Some(dk) = Dockerd::start() else {
        eprintln!("skipping: dockerd is not installed (apt-get install docker.io)");
        return;
    };
    let d = Berthd::start();
    let bb = busybox_tar();
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("limits");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            "FROM bb:1\nRUN grep test /etc/hosts; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus; df -k /dev/shm | tail -n 1 | awk '{print \"shm \" $2}'\n",
        )],
    );
    let failing = work.path().join("failing");
    write_files(&failing, &[("Dockerfile", "FROM bb:1\nRUN exit 3\n")]);
    let engines: [&dyn Engine; 2] = [&d, &dk];
    let mut outputs = Vec::new();
    for e in engines {
        import_busybox(e, &bb);
        outputs.push(comparable(&ok(
            e,
            &[
                "build",
                "--add-host",
                "db.test:10.1.2.3",
                "--add-host",
                "v6.test:fd00::1",
                "--memory",
                "64m",
                "--cpu-shares",
                "512",
                "--cpuset-cpus",
                "0",
                "--shm-size",
                "16m",
                ctx.to_str().unwrap(),
            ],
        )));
    }
    assert_eq!(
        outputs[0], outputs[1],
        "RUN saw different limits (berthd, dockerd)"
    );
    for want in [
        "10.1.2.3\tdb.test",
        "fd00::1\tv6.test",
        "67108864",
        "512",
        "0",
        "shm 16384",
    ] {
        assert!(
            outputs[0].iter().any(|l| l == want),
            "{want:?} in {:?}",
            outputs[0]
        );
    }

    // `docker run --add-host` writes the same /etc/hosts; host-gateway needs a bridge.
    let mut hosts = Vec::new();
    for e in engines {
        hosts.push(ok(
            e,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--add-host",
                "db.test:10.1.2.3",
                "bb:1",
                "cat",
                "/etc/hosts",
            ],
        ));
    }
    assert_eq!(hosts[0], hosts[1], "/etc/hosts differs (berthd, dockerd)");
    assert!(hosts[0].ends_with("10.1.2.3\tdb.test\n"), "{}", hosts[0]);
    let out = run(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--add-host",
            "gw:host-gateway",
            "bb:1",
            "cat",
            "/etc/hosts",
        ],
        None,
    );
    // host-gateway is the default bridge's gateway, as dockerd maps it.
    let hosts = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        hosts
            .lines()
            .any(|l| l.ends_with("\tgw") && !l.starts_with("host-gateway")),
        "{hosts}"
    );

    // A failed step's container: removed with --force-rm, kept with --rm=false. With
    // the default (--rm) dockerd 20.10 keeps it (its rm acts after a success only);
    // berthd removes it, as issue 13 asks: a failed build leaves nothing behind.
    let step_containers = |e: &dyn Engine| -> Vec<String> {
        ok(e, &["ps", "-aq", "--no-trunc"])
            .lines()
            .map(String::from)
            .collect()
    };
    for (e, default_keeps) in [(engines[0], 0), (engines[1], 1)] {
        for (flags, kept) in [
            (&[][..], default_keeps),
            (&["--force-rm"][..], 0),
            (&["--rm=false"][..], 1),
        ] {
            let before = step_containers(e);
            let mut args = vec!["build"];
            args.extend_from_slice(flags);
            args.push(failing.to_str().unwrap());
            let out = run(e, &args, None);
            assert_eq!(out.status.code(), Some(3), "{}: {flags:?}", e.name());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
                "{}: {stderr}",
                e.name()
            );
            let after = step_containers(e);
            let new: Vec<&String> = after.iter().filter(|c| !before.contains(c)).collect();
            assert_eq!(new.len(), kept, "{}: {flags:?} left {new:?}", e.name());
            for c in new {
                ok(e, &["rm", c]);
            }
        }
    }
}

/// A small HTTP server on 127.0.0.1 for ADD's URLs: `/f/NAME` serves what `files` holds
/// for NAME (with a fixed Last-Modified), anything else is a 404 with a body. Stops when
/// dropped (its loop is bounded by the flag and a poll interval).
struct FileServer {
    port: u16,
    files: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileServer {
    fn start() -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let files = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
            String,
            Vec<u8>,
        >::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (f2, s2) = (files.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let body = path
                    .strip_prefix("/f/")
                    .and_then(|n| f2.lock().unwrap().get(n).cloned());
                let head = match &body {
                    Some(b) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                        b.len()
                    ),
                    None => "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\n".into(),
                };
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(body.as_deref().unwrap_or(b"not here\n"));
            }
        });
        Self {
            port,
            files,
            stop,
            thread: Some(thread),
        }
    }

    fn put(&self, name: &str, body: &[u8]) {
        self.files
            .lock()
            .unwrap()
            .insert(name.into(), body.to_vec());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// ADD with URLs, side by side with dockerd: the file is named after the URL (or the
/// destination), mode 0600, its mtime the server's Last-Modified, an archive is not
/// unpacked; a rebuild with the same content hits the cache and new content busts it;
/// COPY refuses URLs and a 404 fails the build with dockerd's words.
#[test]
fn add_fetches_urls_as_dockerd_does() {
    let Some(dk) = Dockerd::start() else {
        eprintln!("skipping: dockerd is not installed (apt-get install docker.io)");
        return;
    };
    let d = Berthd::start();
    let srv = FileServer::start();
    srv.put("hello.txt", b"hello over http\n");
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "inside.txt", &b"in\n"[..]).unwrap();
    srv.put("a.tar", &tar.into_inner().unwrap());
    let bb = busybox_tar();
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("add");
    write_files(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM bb:1\nADD {} /dl/\nADD {} /dl/a.tar\nADD {} /renamed.txt\nRUN ls /dl\n",
                srv.url("/f/hello.txt"),
                srv.url("/f/a.tar"),
                srv.url("/f/hello.txt"),
            ),
        )],
    );
    let engines: [&dyn Engine; 2] = [&d, &dk];
    let show = "stat -c '%a %u:%g %Y %s %n' /dl/hello.txt /dl/a.tar /renamed.txt; cat /renamed.txt";
    let mut files = Vec::new();
    for e in engines {
        import_busybox(e, &bb);
        let out = ok(e, &["build", "-t", "added:1", ctx.to_str().unwrap()]);
        assert!(out.contains("a.tar\nhello.txt"), "{}: {out}", e.name());
        files.push(ok(
            e,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "added:1",
                "sh",
                "-c",
                show,
            ],
        ));
    }
    assert_eq!(files[0], files[1], "ADD's files differ (berthd, dockerd)");
    assert!(
        files[0].contains("600 0:0 1445412480 16 /dl/hello.txt"),
        "{}",
        files[0]
    );
    assert!(files[0].contains("hello over http"), "{}", files[0]);

    // Same content: every step from the cache; new content: the ADD runs again.
    let again = ok(&d, &["build", ctx.to_str().unwrap()]);
    assert_eq!(again.matches(" ---> Using cache").count(), 4, "{again}");
    srv.put("hello.txt", b"changed\n");
    let changed = ok(&d, &["build", ctx.to_str().unwrap()]);
    assert_eq!(changed.matches(" ---> Using cache").count(), 0, "{changed}");

    // COPY refuses URLs; a 404 fails with the status and the body.
    let bad = work.path().join("bad");
    for (dockerfile, want) in [
        (
            format!("FROM bb:1\nCOPY {} /x\n", srv.url("/f/hello.txt")),
            "source can't be a URL for COPY".to_string(),
        ),
        (
            format!("FROM bb:1\nADD {} /x\n", srv.url("/missing")),
            format!(
                "failed to GET {} with status 404 Not Found: not here",
                srv.url("/missing")
            ),
        ),
    ] {
        write_files(&bad, &[("Dockerfile", &dockerfile)]);
        for e in engines {
            let out = run(e, &["build", bad.to_str().unwrap()], None);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_ne!(out.status.code(), Some(0), "{}: {dockerfile}", e.name());
            assert!(stderr.contains(&want), "{}: {stderr}", e.name());
        }
    }
}
