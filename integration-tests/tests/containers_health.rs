//! Health checks that run, through the real docker CLI: `--health-cmd` probes exec'd in
//! the container every `--health-interval`, `starting` → `unhealthy` after
//! `--health-retries` failures → `healthy` after one success, `State.Health` with its
//! streak and last five results, `docker ps` status and `health=` filter,
//! `health_status` events, timeouts, output cut at 4096 bytes, the start period,
//! `--no-healthcheck`, stop (→ unhealthy, no more probes), pause, start again, a berthd
//! restart (probing goes on, the status kept), and an image's HEALTHCHECK merged with
//! the container's flags.

mod containers_support;

use containers_support::Berthd;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn health(d: &Berthd, name: &str) -> Value {
    serde_json::from_str(&d.inspect(name, "{{json .State.Health}}")).expect("health JSON")
}

fn status(d: &Berthd, name: &str) -> String {
    health(d, name)["Status"].as_str().unwrap_or("").to_string()
}

fn ps_status(d: &Berthd, name: &str) -> String {
    d.ok(&["ps", "-a", "--format", "{{.Names}}\t{{.Status}}"])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}\t")).map(String::from))
        .unwrap_or_else(|| panic!("{name} not in docker ps"))
}

fn names_with(d: &Berthd, health: &str) -> Vec<String> {
    let mut v: Vec<String> = d
        .ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("health={health}"),
            "--format",
            "{{.Names}}",
        ])
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// `docker run -d --network none --name NAME HEALTH-ARGS busybox:test sleep 300`.
fn run_checked(d: &Berthd, name: &str, health: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(health);
    args.extend_from_slice(&["busybox:test", "sleep", "300"]);
    d.ok(&args);
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn unhealthy_then_healthy_with_log_ps_filters_and_events() {
    let d = Berthd::start();
    let since = unix_now().to_string();
    run_checked(
        &d,
        "hc",
        &[
            "--health-cmd",
            "test -f /tmp/ok",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
        ],
    );
    run_checked(&d, "plain", &[]);
    run_checked(&d, "off", &["--no-healthcheck"]);

    // Before the first interval: starting, nothing logged yet.
    let h = health(&d, "hc");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0);
    assert!(ps_status(&d, "hc").ends_with("(health: starting)"));
    assert_eq!(names_with(&d, "starting"), ["hc"]);
    // No check: no Health at all, and "none" to the filter.
    assert_eq!(d.inspect("plain", "{{json .State.Health}}"), "null");
    assert_eq!(d.inspect("off", "{{json .State.Health}}"), "null");
    assert_eq!(
        d.inspect("off", "{{json .Config.Healthcheck.Test}}"),
        r#"["NONE"]"#
    );
    assert!(!ps_status(&d, "off").contains('('));
    assert_eq!(names_with(&d, "none"), ["off", "plain"]);

    d.wait_until("unhealthy", WAIT, || status(&d, "hc") == "unhealthy");
    let h = health(&d, "hc");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    for r in log {
        assert_eq!(r["ExitCode"], 1, "{h}");
        assert_eq!(r["Output"], "", "{h}");
        let (start, end) = (r["Start"].as_str().unwrap(), r["End"].as_str().unwrap());
        assert!(start.ends_with('Z') && start <= end, "{h}");
    }
    assert!(ps_status(&d, "hc").ends_with("(unhealthy)"));
    assert_eq!(names_with(&d, "unhealthy"), ["hc"]);
    assert!(names_with(&d, "healthy").is_empty());

    d.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    d.wait_until("healthy", WAIT, || status(&d, "hc") == "healthy");
    let h = health(&d, "hc");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 0);
    assert!(ps_status(&d, "hc").ends_with("(healthy)"));
    assert_eq!(names_with(&d, "healthy"), ["hc"]);
    assert!(names_with(&d, "unhealthy").is_empty());
    // The log keeps the last five.
    d.wait_until("five results", WAIT, || {
        let h = health(&d, "hc");
        let log = h["Log"].as_array().unwrap();
        log.len() == 5 && log.iter().all(|r| r["ExitCode"] == 0)
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(health(&d, "hc")["Log"].as_array().unwrap().len(), 5);
    // Probes are not left behind as execs (one may be running at any moment).
    for _ in 0..5 {
        let n: usize = d.inspect("hc", "{{len .ExecIDs}}").parse().unwrap();
        assert!(n <= 1, "{n} execs");
        std::thread::sleep(Duration::from_millis(300));
    }

    // One event per change of status.
    let until = (unix_now() + 1).to_string();
    let events = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "container=hc",
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(
        events.lines().collect::<Vec<_>>(),
        ["health_status: unhealthy", "health_status: healthy"],
        "{events}"
    );
    // A bad filter value is refused as dockerd refuses it.
    let err = d.err(&["ps", "--filter", "health=bogus"]);
    assert!(
        err.contains("Unrecognised filter value for health: bogus"),
        "{err}"
    );
}

#[test]
fn output_timeout_and_start_period() {
    let d = Berthd::start();
    run_checked(
        &d,
        "loud",
        &[
            "--health-cmd",
            "echo out; echo err >&2; exit 3",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
    );
    run_checked(
        &d,
        "long",
        &[
            "--health-cmd",
            "head -c 5000 /dev/zero | tr '\\0' x",
            "--health-interval",
            "1s",
        ],
    );
    run_checked(
        &d,
        "slow",
        &[
            "--health-cmd",
            "echo begun; sleep 10",
            "--health-interval",
            "1s",
            "--health-timeout",
            "500ms",
            "--health-retries",
            "1",
        ],
    );
    run_checked(
        &d,
        "grace",
        &[
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "--health-start-period",
            "60s",
        ],
    );

    d.wait_until("loud unhealthy", WAIT, || status(&d, "loud") == "unhealthy");
    let r = health(&d, "loud")["Log"][0].clone();
    assert_eq!(r["ExitCode"], 3, "{r}");
    let out = r["Output"].as_str().unwrap();
    assert!(out.contains("out\n") && out.contains("err\n"), "{r}");

    d.wait_until("long healthy", WAIT, || status(&d, "long") == "healthy");
    let out = health(&d, "long")["Log"][0]["Output"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(out.len(), 4096 + 3, "{out}");
    assert!(out.starts_with("xxx") && out.ends_with("x..."));

    d.wait_until("slow unhealthy", WAIT, || status(&d, "slow") == "unhealthy");
    let r = health(&d, "slow")["Log"][0].clone();
    assert_eq!(r["ExitCode"], -1, "{r}");
    assert_eq!(
        r["Output"], "Health check exceeded timeout (500ms): begun\n",
        "{r}"
    );
    // The timed-out probe was killed, not left running in the container.
    d.wait_until("probe killed", WAIT, || {
        !d.ok(&["top", "slow"]).contains("sleep 10")
    });

    // Failures within the start period do not count while starting.
    d.wait_until("grace probed", WAIT, || {
        health(&d, "grace")["Log"].as_array().unwrap().len() >= 3
    });
    let h = health(&d, "grace");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
}

#[test]
fn stop_start_and_berthd_restart() {
    let mut d = Berthd::start();
    run_checked(
        &d,
        "hc",
        &["--health-cmd", "true", "--health-interval", "1s"],
    );
    d.wait_until("healthy", WAIT, || status(&d, "hc") == "healthy");

    // A berthd crash: the container runs on, and so do its checks, status kept.
    let before = health(&d, "hc")["Log"].as_array().unwrap().last().unwrap()["End"]
        .as_str()
        .unwrap()
        .to_string();
    d.crash_and_restart();
    assert_eq!(status(&d, "hc"), "healthy");
    d.wait_until("probing after the restart", WAIT, || {
        let h = health(&d, "hc");
        let last = h["Log"].as_array().unwrap().last().unwrap()["End"]
            .as_str()
            .unwrap()
            .to_string();
        last > before
    });
    assert!(ps_status(&d, "hc").ends_with("(healthy)"));

    // Stopped: unhealthy, and no more probes.
    d.ok(&["stop", "-t", "1", "hc"]);
    let h = health(&d, "hc");
    assert_eq!(h["Status"], "unhealthy", "{h}");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(health(&d, "hc")["Log"], h["Log"], "probed after the stop");
    assert_eq!(names_with(&d, "unhealthy"), ["hc"]);

    // Started again: starting, then healthy again.
    d.ok(&["start", "hc"]);
    let h = health(&d, "hc");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    d.wait_until("healthy again", WAIT, || status(&d, "hc") == "healthy");
    // Paused: unhealthy, as dockerd says it; unpaused: healthy after a probe.
    d.ok(&["pause", "hc"]);
    assert_eq!(status(&d, "hc"), "unhealthy");
    assert!(ps_status(&d, "hc").ends_with("(Paused)"));
    d.ok(&["unpause", "hc"]);
    d.wait_until("healthy after unpause", WAIT, || {
        status(&d, "hc") == "healthy"
    });
    // Removed while probing: nothing breaks.
    d.ok(&["rm", "-f", "hc"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
}

/// A `docker load` archive of busybox whose image config has `healthcheck`.
fn image_with_healthcheck(tag: &str, healthcheck: Value) -> Vec<u8> {
    use sha2::Digest;
    let layer = containers_support::busybox_tar();
    let diff_id = format!("sha256:{}", hex(&sha2::Sha256::digest(&layer)));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sleep", "300"], "Healthcheck": healthcheck},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    })
    .to_string();
    let manifest = serde_json::json!([
        {"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}
    ])
    .to_string();
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("layer.tar", &layer[..]),
        ("config.json", config.as_bytes()),
        ("manifest.json", manifest.as_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn image_healthcheck_merged_with_flags() {
    let d = Berthd::start();
    let archive = image_with_healthcheck(
        "hc:test",
        serde_json::json!({
            "Test": ["CMD", "test", "-f", "/tmp/ok"],
            "Interval": 1_000_000_000u64,
            "Retries": 1,
        }),
    );
    let (code, _, err) = d.run(&["load"], Some(&archive));
    assert_eq!(code, 0, "{err}");
    let run = |name: &str, flags: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
        args.extend_from_slice(flags);
        args.push("hc:test");
        d.ok(&args);
    };
    // The image's check as it is: a CMD probe, run without a shell.
    run("img", &[]);
    assert_eq!(
        d.inspect("img", "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD","test","-f","/tmp/ok"],"Interval":1000000000,"Retries":1}"#
    );
    d.wait_until("unhealthy", WAIT, || status(&d, "img") == "unhealthy");
    d.ok(&["exec", "img", "touch", "/tmp/ok"]);
    d.wait_until("healthy", WAIT, || status(&d, "img") == "healthy");
    // Flags override field by field; the rest comes from the image.
    run(
        "merged",
        &["--health-retries", "5", "--health-timeout", "2s"],
    );
    let hc: Value =
        serde_json::from_str(&d.inspect("merged", "{{json .Config.Healthcheck}}")).unwrap();
    assert_eq!(
        hc["Test"],
        serde_json::json!(["CMD", "test", "-f", "/tmp/ok"])
    );
    assert_eq!(hc["Interval"], 1_000_000_000u64);
    assert_eq!(hc["Timeout"], 2_000_000_000u64);
    assert_eq!(hc["Retries"], 5);
    // A new command replaces the image's test.
    run("cmd", &["--health-cmd", "true"]);
    assert_eq!(
        d.inspect("cmd", "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD-SHELL","true"]"#
    );
    d.wait_until("cmd healthy", WAIT, || status(&d, "cmd") == "healthy");
    // --no-healthcheck turns the image's check off.
    run("off", &["--no-healthcheck"]);
    assert_eq!(d.inspect("off", "{{json .State.Health}}"), "null");
    assert!(!ps_status(&d, "off").contains('('));
    // Durations under a millisecond are refused, as dockerd refuses them.
    let err = d.err(&[
        "create",
        "--network",
        "none",
        "--health-interval",
        "1us",
        "hc:test",
    ]);
    assert!(
        err.contains("Interval in Healthcheck cannot be less than 1ms"),
        "{err}"
    );
}
