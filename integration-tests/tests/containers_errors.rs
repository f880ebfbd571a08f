//! Bad requests to berthd's container endpoints, answered as dockerd answers them.

mod containers_support;

use containers_support::Berthd;

#[test]
fn errors_as_dockerd() {
    let d = Berthd::start();
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pull",
        "never",
        "nosuch:img",
        "true",
    ]);
    assert!(err.contains("No such image: nosuch:img"), "{err}");
    let err = d.err(&["rm", "nope"]);
    assert!(err.contains("No such container: nope"), "{err}");
    let err = d.err(&["logs", "nope"]);
    assert!(err.contains("No such container: nope"), "{err}");
    for cmd in [
        &["stop", "nope"][..],
        &["start", "nope"],
        &["kill", "nope"],
        &["exec", "nope", "true"],
        &["wait", "nope"],
        &["pause", "nope"],
        &["restart", "nope"],
    ] {
        let err = d.err(cmd);
        assert!(err.contains("No such container: nope"), "{cmd:?}: {err}");
    }
    // Without --pull never the CLI pulls first; no registry answers here.
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "none",
        "127.0.0.1:1/nosuch:img",
        "true",
    ]);
    assert!(
        err.contains("Unable to find image '127.0.0.1:1/nosuch:img' locally"),
        "{err}"
    );
    d.ok(&[
        "create",
        "--name",
        "dup",
        "--network",
        "none",
        "busybox:test",
        "true",
    ]);
    let err = d.err(&[
        "create",
        "--name",
        "dup",
        "--network",
        "none",
        "busybox:test",
        "true",
    ]);
    assert!(
        err.contains("Conflict. The container name \"/dup\" is already in use by container"),
        "{err}"
    );
    // (A 404 here would make the docker CLI try to pull: a 400 it is.)
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "--ip",
        "10.1.2.3",
        "busybox:test",
        "true",
    ]);
    assert!(
        err.contains("user specified IP address is supported only when connecting to networks with user configured subnets"),
        "{err}"
    );
    let err = d.err(&["exec", "dup", "true"]);
    assert!(err.contains("is not running"), "{err}");
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cap-add",
        "BOGUS",
        "busybox:test",
        "true",
    ]);
    assert!(
        err.contains("invalid CapAdd: unknown capability: \"CAP_BOGUS\""),
        "{err}"
    );
    // A missing program: the runtime's error, exit code 127 like dockerd... or a
    // start error; either way docker run fails.
    let (code, _, _) = d.run(
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox:test",
            "/nonexistent",
        ],
        None,
    );
    assert_ne!(code, 0);
    d.ok(&["rm", "dup"]);
}

#[test]
fn image_in_use_and_log_options() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "--name",
        "lg",
        "--network",
        "none",
        "busybox:test",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line $i; done",
    ]);
    assert_eq!(d.ok(&["logs", "--tail", "2", "lg"]), "line 4\nline 5\n");
    let stamped = d.ok(&["logs", "-t", "lg"]);
    let first = stamped.lines().next().unwrap();
    assert!(
        first.starts_with("20") && first.ends_with("Z line 1"),
        "{first}"
    );
    // -f on a stopped container ends; on a running one it follows until the exit.
    assert_eq!(d.ok(&["logs", "-f", "lg"]).lines().count(), 5);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "fl",
        "--network",
        "none",
        "busybox:test",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    assert_eq!(d.ok(&["logs", "-f", "fl"]), "a\nb\n");
    // json-file rotation: max-size and max-file.
    d.ok(&[
        "run",
        "--name",
        "rot",
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox:test",
        "sh",
        "-c",
        "for i in $(seq 1 200); do echo line $i; done",
    ]);
    let logs = d.ok(&["logs", "rot"]);
    assert!(logs.ends_with("line 200\n"), "{logs}");
    let n = logs.lines().count();
    assert!(n > 5 && n < 200, "{n} lines kept");
    let path = d.inspect("rot", "{{.LogPath}}");
    assert!(std::path::Path::new(&format!("{path}.1")).exists());
    assert!(!std::path::Path::new(&format!("{path}.2")).exists());
    d.ok(&["rm", "rot"]);
    // Bad rotation options are refused at create, naming the option; nothing is made.
    let before = d.ok(&["ps", "-aq"]).lines().count();
    for (opt, says) in [
        ("max-size=lots", "invalid max-size: lots"),
        ("max-file=abc", "invalid max-file: abc"),
        ("max-file=0", "max-file cannot be less than 1"),
    ] {
        let err = d.err(&[
            "create",
            "--network",
            "none",
            "--log-opt",
            opt,
            "busybox:test",
        ]);
        assert!(err.contains(says), "{opt}: {err}");
    }
    assert_eq!(d.ok(&["ps", "-aq"]).lines().count(), before);
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--log-driver",
        "syslog",
        "busybox:test",
        "true",
    ]);
    assert!(err.contains("no log driver named 'syslog'"), "{err}");
    // An image a container uses cannot go.
    let err = d.err(&["rmi", "busybox:test"]);
    assert!(err.contains("is using its referenced image"), "{err}");
    let id = d.ok(&["images", "-q", "busybox:test"]);
    let err = d.err(&["rmi", id.trim()]);
    assert!(err.contains("image is being used by container"), "{err}");
    // Forced: untagged, kept; the container still runs.
    d.ok(&["rmi", "-f", "busybox:test"]);
    d.ok(&["rm", "fl"]);
    d.ok(&["start", "-a", "lg"]);
    d.ok(&["rm", "lg"]);
    d.ok(&["image", "prune", "-f"]);
    assert!(d.ok(&["images", "-aq"]).trim().is_empty());
}

#[test]
fn events_since_until_filters() {
    let d = Berthd::start();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let t0 = now() - 1;
    d.ok(&[
        "run",
        "--rm",
        "--name",
        "ev",
        "--network",
        "none",
        "--label",
        "k=v",
        "busybox:test",
        "true",
    ]);
    d.ok(&[
        "run",
        "--rm",
        "--name",
        "other",
        "--network",
        "none",
        "busybox:test",
        "true",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (since, until) = (t0.to_string(), (now() + 1).to_string());
    let out = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=ev",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(
        out,
        "container create ev\ncontainer start ev\ncontainer die ev\ncontainer destroy ev\n"
    );
    let out = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--filter",
        "label=k=v",
        "--format",
        "{{.Actor.Attributes.exitCode}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(out, "0 ev\n");
}
