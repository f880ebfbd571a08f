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
    let err = d.err(&["stop", "nope"]);
    assert!(err.contains("No such container: nope"), "{err}");
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
    let err = d.err(&["run", "--rm", "busybox:test", "true"]);
    assert!(err.contains("bridge networking is not supported"), "{err}");
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
