//! The /networks API side by side with dockerd 20.10, with the same docker CLI: the same
//! refusals in the same words, and the same fields. Nothing here runs a container or
//! sends a packet; dockerd runs with --bridge=none --iptables=false (the harness's).

mod engine_support;

use engine_support::{Berthd, Dockerd};

#[test]
fn refusals_and_fields_match_dockerd() {
    let b = Berthd::start();
    let Some(d) = Dockerd::start() else {
        eprintln!("dockerd not installed: skipped");
        return;
    };
    // dockerd keeps its bridges when it stops: the network is removed even if an
    // assertion fails half-way.
    struct RmFirst<'a>(&'a Dockerd);
    impl Drop for RmFirst<'_> {
        fn drop(&mut self) {
            let _ = self.0.docker(&["network", "rm", "first"]);
        }
    }
    let _rm_first = RmFirst(&d);
    let cases: &[(&[&str], &str)] = &[
        (
            &["network", "create", "--subnet", "10.300.0.0/16", "x1"],
            "invalid CIDR address: 10.300.0.0/16",
        ),
        (
            &[
                "network",
                "create",
                "--subnet",
                "10.232.0.0/24",
                "--gateway",
                "10.233.0.1",
                "x2",
            ],
            "no matching subnet for gateway 10.233.0.1",
        ),
        (
            &["network", "rm", "host"],
            "host is a pre-defined network and cannot be removed",
        ),
        (
            &["network", "rm", "none"],
            "none is a pre-defined network and cannot be removed",
        ),
        (&["network", "inspect", "nosuchnet"], "nosuchnet"),
        (
            &["network", "create", "-d", "host", "x3"],
            "only one instance of \"host\" network is allowed",
        ),
    ];
    for (args, words) in cases {
        let (ok_b, _, err_b) = b.docker(args);
        let (ok_d, _, err_d) = d.docker(args);
        assert!(!ok_b && !ok_d, "{args:?} succeeded somewhere");
        assert!(err_d.contains(words), "dockerd {args:?}: {err_d}");
        assert!(
            err_b.contains(words),
            "berthd {args:?}: {err_b} (dockerd: {err_d})"
        );
    }
    for side in [
        &b.docker(&["network", "create", "--subnet", "10.232.9.0/24", "first"]),
        &d.docker(&["network", "create", "--subnet", "10.232.9.0/24", "first"]),
    ] {
        assert!(side.0, "{}", side.2);
    }
    for (args, words) in [
        (
            &["network", "create", "--subnet", "10.232.9.128/25", "second"][..],
            "Pool overlaps with other one on this address space",
        ),
        (
            &["network", "create", "first"][..],
            "network with name first already exists",
        ),
    ] {
        let (_, _, err_b) = b.docker(args);
        let (_, _, err_d) = d.docker(args);
        assert!(err_d.contains(words), "dockerd {args:?}: {err_d}");
        assert!(err_b.contains(words), "berthd {args:?}: {err_b}");
    }
    // The same fields, in inspect and ls.
    let keys = |s: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        let mut k: Vec<String> = v[0].as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let ib = b.docker_ok(&["network", "inspect", "first"]);
    let id = d.docker_ok(&["network", "inspect", "first"]);
    assert_eq!(keys(&ib), keys(&id));
    let fmt = "{{.Name}} {{.Driver}} {{.Scope}} {{.IPv6}} {{.Internal}}";
    let lb = b.docker_ok(&["network", "ls", "--filter", "name=first", "--format", fmt]);
    let ld = d.docker_ok(&["network", "ls", "--filter", "name=first", "--format", fmt]);
    assert_eq!(lb, ld);
    let sub = "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}";
    assert_eq!(
        b.docker_ok(&["network", "inspect", "--format", sub, "first"]),
        d.docker_ok(&["network", "inspect", "--format", sub, "first"])
    );
    b.docker_ok(&["network", "rm", "first"]);
}
