//! The build cache and the image store around builds (berthd alone, driven by the docker
//! CLI and by berth): a rebuild of an unchanged project runs no container; what busts
//! the cache and what does not; intermediate images are hidden, go with their image,
//! are pruned by `image prune` when dangling and by `builder prune`; `--cache-from`;
//! `.dockerignore` on both sides; COPY's rules; and the berth CLI's build, commit, diff,
//! export and history against docker's.

mod build_support;
mod engine_support;

use build_support::*;
use engine_support::*;
use std::process::Command;

fn berth(d: &Berthd, args: &[&str], input: Option<&[u8]>) -> std::process::Output {
    let mut c = Command::new(berth_integration_tests::binary("berth"));
    c.arg("-H")
        .arg(format!("unix://{}", d.socket.display()))
        .args(args);
    berth_integration_tests::run_piped(c, input, COMMAND_TIMEOUT)
}

fn berth_ok(d: &Berthd, args: &[&str]) -> String {
    let out = berth(d, args, None);
    assert!(
        out.status.success(),
        "berth {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn now() -> String {
    format!(
        "{:.3}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    )
}

#[test]
fn the_cache_and_the_images_it_keeps() {
    let d = Berthd::start();
    import_busybox(&d, &busybox_tar());
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap();
    write_files(
        ctx.path(),
        &[
            ("Dockerfile", "FROM bb:1\nARG V=1\nCOPY app.txt /app/\nRUN echo \"v=$V\" > /app/v\nENV X=1\nCMD [\"cat\", \"/app/v\"]\n"),
            ("app.txt", "app\n"),
        ],
    );
    let first = ok(&d, &["build", "-t", "app:1", c]);
    assert_eq!(first.matches("---> Running in").count(), 1, "{first}");
    // An unchanged project: every step from the cache, and no container at all.
    let since = now();
    let again = ok(&d, &["build", "-t", "app:1", c]);
    let until = now();
    assert_eq!(again.matches("Using cache").count(), 5, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    let events = d.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=container",
    ]);
    assert!(
        events.trim().is_empty(),
        "a cached rebuild touched containers: {events}"
    );
    // A touched file (same content, mode and owner) is the same file to the cache.
    let f = std::fs::File::options()
        .write(true)
        .open(ctx.path().join("app.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .unwrap();
    assert_eq!(
        ok(&d, &["build", "-t", "app:1", c])
            .matches("Using cache")
            .count(),
        5
    );
    // A used build arg busts from the step that uses it; an unused one is reported.
    let out = ok(
        &d,
        &[
            "build",
            "--build-arg",
            "V=2",
            "--build-arg",
            "NOPE=1",
            "-t",
            "app:2",
            c,
        ],
    );
    assert_eq!(out.matches("Using cache").count(), 2, "{out}");
    assert!(
        out.contains("[Warning] One or more build-args [NOPE] were not consumed"),
        "{out}"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "app:2"])
            .trim(),
        "v=2"
    );
    // Changed content busts from the COPY on.
    std::fs::write(ctx.path().join("app.txt"), "changed\n").unwrap();
    let out = ok(&d, &["build", "-t", "app:3", c]);
    assert_eq!(out.matches("Using cache").count(), 1, "{out}");
    assert_eq!(
        ok(&d, &["build", "--no-cache", "-t", "app:4", c])
            .matches("Using cache")
            .count(),
        0
    );

    // Intermediate images: hidden, listed with -a, named in history.
    let listed = d.docker_ok(&["images", "-q"]).lines().count();
    let all = d.docker_ok(&["images", "-aq"]).lines().count();
    assert!(all > listed + 4, "images {listed}, all {all}");
    let hist = d.docker_ok(&["history", "-q", "app:1"]);
    let ids: Vec<&str> = hist.lines().collect();
    assert_eq!(ids.len(), 6, "{hist}");
    assert!(ids.iter().all(|i| *i != "<missing>"), "{hist}");
    assert_eq!(
        d.docker_ok(&["inspect", "--format", "{{.Parent}}", "app:1"])
            .trim()
            .len(),
        71
    );

    // rmi takes the image's nameless steps with it.
    let out = d.docker_ok(&["rmi", "app:4"]);
    assert_eq!(out.matches("Deleted:").count(), 5, "{out}");
    // A failed build's steps are dangling: image prune takes them, not app:1's.
    write_files(
        ctx.path(),
        &[("Dockerfile", "FROM bb:1\nENV FAIL=1\nRUN exit 1\n")],
    );
    assert!(!run(&d, &["build", c], None).status.success());
    let pruned = d.docker_ok(&["image", "prune", "-f"]);
    assert_eq!(pruned.matches("deleted:").count(), 1, "{pruned}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "app:1"])
            .trim(),
        "v=1"
    );

    // builder prune clears the cache entries that only the cache holds...
    write_files(
        ctx.path(),
        &[("Dockerfile", "FROM bb:1\nARG V=1\nCOPY app.txt /app/\nRUN echo \"v=$V\" > /app/v\nENV X=1\nCMD [\"cat\", \"/app/v\"]\n")],
    );
    std::fs::write(ctx.path().join("app.txt"), "app\n").unwrap();
    let out = d.docker_ok(&["builder", "prune", "-a", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    let out = ok(&d, &["build", "-t", "app:5", c]);
    assert_eq!(out.matches("Using cache").count(), 0, "{out}");
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "app:1"])
            .trim(),
        "v=1"
    );
    // ... and --cache-from finds the steps again in an image's history.
    d.docker_ok(&["builder", "prune", "-a", "-f"]);
    let out = ok(&d, &["build", "--cache-from", "app:5", "-t", "app:6", c]);
    assert_eq!(out.matches("Using cache").count(), 5, "{out}");
    assert_eq!(
        d.docker_ok(&["inspect", "--format", "{{.Id}}", "app:6"]),
        d.docker_ok(&["inspect", "--format", "{{.Id}}", "app:5"])
    );
}

#[test]
fn dockerignore_and_copy_rules() {
    let d = Berthd::start();
    import_busybox(&d, &busybox_tar());
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path().to_str().unwrap();
    write_files(
        ctx.path(),
        &[
            ("Dockerfile", "FROM bb:1\nCOPY . /all/\nCOPY docs /docs\nCOPY *.txt /txt/\nCOPY --chmod=0750 run.sh /bin/\nCOPY a.txt /renamed\nADD plain.tar.txt /added/\nCOPY --from=bb:1 /etc/group /from-image\n"),
            (".dockerignore", "# comment\n*.log\n**/tmp\ndocs\n!docs/keep.md\nDockerfile\n"),
            ("a.txt", "a\n"),
            ("b.txt", "b\n"),
            ("x.log", "log\n"),
            ("sub/tmp/t", "t\n"),
            ("docs/keep.md", "keep\n"),
            ("docs/drop.md", "drop\n"),
            ("run.sh", "#!/bin/sh\n"),
            ("plain.tar.txt", "not a tar\n"),
        ],
    );
    ok(&d, &["build", "-t", "rules:1", c]);
    let probe = "cd /all && find . | sort; echo --; ls /docs; ls /txt; stat -c '%a %U' /bin/run.sh; cat /renamed /added/plain.tar.txt; tail -1 /from-image";
    let out = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "rules:1",
        "sh",
        "-c",
        probe,
    ]);
    let (tree, rest) = out.split_once("--\n").unwrap();
    assert_eq!(
        tree.lines().collect::<Vec<_>>(),
        vec![
            ".",
            "./.dockerignore",
            "./a.txt",
            "./b.txt",
            "./docs",
            "./docs/keep.md",
            "./plain.tar.txt",
            "./run.sh",
            "./sub"
        ],
        "{out}"
    );
    assert_eq!(
        rest.lines().collect::<Vec<_>>(),
        vec![
            "keep.md",
            "a.txt",
            "b.txt",
            "plain.tar.txt",
            "750 root",
            "a",
            "not a tar",
            "nobody:x:65534:"
        ],
        "{out}"
    );
    // A raw tar context is filtered by its .dockerignore too (berthd, not the client).
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("Dockerfile", &b"FROM bb:1\nCOPY . /c/\n"[..]),
        (".dockerignore", b"*.secret\n"),
        ("kept", b"k"),
        ("key.secret", b"s"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let out = run(&d, &["build", "-t", "rawtar:1", "-"], Some(&tar));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ls = d.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "rawtar:1",
        "ls",
        "-a",
        "/c",
    ]);
    assert!(ls.contains("kept") && !ls.contains("key.secret"), "{ls}");
    // Several sources need a directory destination.
    write_files(
        ctx.path(),
        &[("Dockerfile", "FROM bb:1\nCOPY a.txt b.txt /notadir\n")],
    );
    let out = run(&d, &["build", c], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "When using COPY with more than one source file, the destination must be a directory and end with a /"
    ));
}

#[test]
fn berth_cli_builds_commits_and_shows_as_docker_does() {
    let d = Berthd::start();
    import_busybox(&d, &busybox_tar());
    let work = tempfile::tempdir().unwrap();
    let ctx = work.path().join("ctx");
    let c = ctx.to_str().unwrap();
    write_files(
        &ctx,
        &[
            ("Dockerfile", "FROM bb:1 AS base\nARG WHO=x\nCOPY f.txt /\nRUN echo \"$WHO\" > /who; echo err >&2\nFROM base\nLABEL l=1\nCMD [\"cat\", \"/who\"]\n"),
            ("f.txt", "f\n"),
            ("sub/Dockerfile.alt", "FROM bb:1\nCOPY f.txt /alt\n"),
        ],
    );
    std::fs::write(
        work.path().join("Dockerfile.outside"),
        "FROM bb:1\nCOPY f.txt /outside\n",
    )
    .unwrap();
    // The same build through both CLIs prints the same lines.
    let docker_out = comparable(&ok(
        &d,
        &[
            "build",
            "--no-cache",
            "--build-arg",
            "WHO=docker",
            "-t",
            "via:docker",
            c,
        ],
    ));
    let berth_out = comparable(&berth_ok(
        &d,
        &[
            "build",
            "--no-cache",
            "--build-arg",
            "WHO=docker",
            "-t",
            "via:berth",
            c,
        ],
    ));
    let relabel = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .map(|l| l.replace("via:berth", "via:docker"))
            .collect()
    };
    assert_eq!(relabel(berth_out), docker_out);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "via:berth"])
            .trim(),
        "docker"
    );
    // -q, --iidfile, --label, --target.
    let iid = work.path().join("iid");
    let q = berth_ok(
        &d,
        &[
            "build",
            "-q",
            "--iidfile",
            iid.to_str().unwrap(),
            "--label",
            "by=berth",
            "--target",
            "base",
            c,
        ],
    );
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(q.trim(), id);
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"by\"}}",
            &id
        ])
        .trim(),
        "berth"
    );
    // -f inside the context, -f outside it, a Dockerfile on stdin, a tar on stdin.
    berth_ok(
        &d,
        &[
            "build",
            "-f",
            ctx.join("sub/Dockerfile.alt").to_str().unwrap(),
            "-t",
            "alt:1",
            c,
        ],
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "--network", "none", "alt:1", "cat", "/alt"])
            .trim(),
        "f"
    );
    berth_ok(
        &d,
        &[
            "build",
            "-f",
            work.path().join("Dockerfile.outside").to_str().unwrap(),
            "-t",
            "outside:1",
            c,
        ],
    );
    assert_eq!(
        d.docker_ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "outside:1",
            "cat",
            "/outside"
        ])
        .trim(),
        "f"
    );
    let out = berth(
        &d,
        &["build", "-t", "stdin:1", "-"],
        Some(b"FROM bb:1\nRUN echo hi > /hi\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let df = b"FROM bb:1\nCOPY x /x\n";
    h.set_size(df.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "Dockerfile", &df[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "x", &b"x\n"[..]).unwrap();
    let out = berth(
        &d,
        &["build", "-t", "tarstdin:1", "-"],
        Some(&b.into_inner().unwrap()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A failing RUN: the step's exit code, the daemon's words.
    write_files(&ctx, &[("Dockerfile", "FROM bb:1\nRUN exit 6\n")]);
    let out = berth(&d, &["build", c], None);
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("The command '/bin/sh -c exit 6' returned a non-zero code: 6"));

    // commit, diff, export and history: berth shows what docker shows.
    d.docker_ok(&[
        "run",
        "--name",
        "cc",
        "--network",
        "none",
        "bb:1",
        "sh",
        "-c",
        "echo x > /new; rm /bin/cat",
    ]);
    assert_eq!(berth_ok(&d, &["diff", "cc"]), d.docker_ok(&["diff", "cc"]));
    let cid = berth_ok(
        &d,
        &[
            "commit",
            "-m",
            "via berth",
            "-a",
            "me",
            "-c",
            "ENV C=1",
            "cc",
            "committed:1",
        ],
    );
    assert!(cid.trim().starts_with("sha256:"));
    assert_eq!(
        d.docker_ok(&[
            "inspect",
            "--format",
            "{{.Comment}} {{.Author}} {{.Config.Env}}",
            "committed:1"
        ])
        .trim(),
        "via berth me [PATH=/bin C=1]"
    );
    // Tables: the same rows but for trailing blanks and a second that may tick over.
    let table = |s: String| -> Vec<String> {
        s.lines()
            .map(|l| {
                let l = l.trim_end();
                match l.find(" ago ") {
                    Some(i) => format!(
                        "{} | {}",
                        &l[..l[..i].rfind("  ").unwrap_or(i)],
                        &l[i + 5..]
                    ),
                    None => l.to_string(),
                }
            })
            .collect()
    };
    for args in [
        vec!["history", "committed:1"],
        vec!["history", "--no-trunc", "via:docker"],
    ] {
        assert_eq!(
            table(berth_ok(&d, &args)),
            table(d.docker_ok(&args)),
            "{args:?}"
        );
    }
    for args in [
        vec!["history", "-q", "via:docker"],
        vec![
            "history",
            "--format",
            "{{.ID}}|{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
            "committed:1",
        ],
    ] {
        assert_eq!(berth_ok(&d, &args), d.docker_ok(&args), "{args:?}");
    }
    let ours = berth(&d, &["export", "cc"], None).stdout;
    let theirs = run(&d, &["export", "cc"], None).stdout;
    assert_eq!(ours, theirs);
    let out_file = work.path().join("c.tar");
    berth_ok(&d, &["export", "-o", out_file.to_str().unwrap(), "cc"]);
    assert_eq!(std::fs::read(&out_file).unwrap().len(), theirs.len());
}
