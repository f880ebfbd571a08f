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

#[test]
fn ipv6_network_fields_and_refusals_match_dockerd() {
    let b = Berthd::start();
    let Some(d) = Dockerd::start() else {
        eprintln!("dockerd not installed: skipped");
        return;
    };
    struct RmSix<'a>(&'a Dockerd);
    impl Drop for RmSix<'_> {
        fn drop(&mut self) {
            let _ = self.0.docker(&["network", "rm", "six"]);
        }
    }
    let _rm_six = RmSix(&d);
    // Both subnets, the IPv6 one without a gateway: shown as dockerd shows them.
    let create = [
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.232.16.0/24",
        "--subnet",
        "fd00:b6:16::/64",
        "six",
    ];
    for side in [&b.docker(&create), &d.docker(&create)] {
        assert!(side.0, "{}", side.2);
    }
    let fmt = "{{.EnableIPv6}}{{range .IPAM.Config}} {{.Subnet}}={{.Gateway}}{{end}}";
    let ib = b.docker_ok(&["network", "inspect", "--format", fmt, "six"]);
    let id = d.docker_ok(&["network", "inspect", "--format", fmt, "six"]);
    assert_eq!(ib, id);
    assert!(ib.contains("fd00:b6:16::/64"), "{ib}");
    let (ok_b, _, err_b) = b.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b6:16:0:1::/80",
        "seven",
    ]);
    let (ok_d, _, err_d) = d.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:b6:16:0:1::/80",
        "seven",
    ]);
    assert!(!ok_b && !ok_d, "an overlapping IPv6 subnet was taken");
    let words = "Pool overlaps with other one on this address space";
    assert!(err_d.contains(words), "dockerd: {err_d}");
    assert!(err_b.contains(words), "berthd: {err_b}");
    // --ipv6 without an IPv6 subnet: dockerd 20.10 has no default IPv6 pool.
    let (ok_b, _, err_b) = b.docker(&["network", "create", "--ipv6", "nosub6"]);
    let (ok_d, _, err_d) = d.docker(&["network", "create", "--ipv6", "nosub6"]);
    assert!(!ok_b && !ok_d, "--ipv6 without a subnet was taken");
    let words = "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network";
    assert!(err_d.contains(words), "dockerd: {err_d}");
    assert!(err_b.contains(words), "berthd: {err_b}");
    b.docker_ok(&["network", "rm", "six"]);
}
