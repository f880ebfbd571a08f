//! `docker logs` against berthd with the real docker CLI: `--since`/`--until` (as
//! RFC 3339 with and without fractions, and as Unix times), `-t`, `--tail`, stdout and
//! stderr kept apart, and json-file rotation (`--log-opt max-size/max-file`) read back
//! whole across the rotated files.

mod containers_support;

use containers_support::Berthd;
use std::time::Duration;

/// A line of `docker logs -t`: its time (as printed) and its text.
fn stamped(line: &str) -> (String, String) {
    let (t, text) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("no timestamp in {line:?}"));
    // dockerd's fixed-width RFC 3339 with nanoseconds, in UTC.
    assert_eq!(t.len(), 30, "{t:?}");
    assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t:?}");
    (t.to_string(), text.to_string())
}

/// Seconds and nanoseconds of an RFC 3339 UTC time printed by `-t`.
fn parse_time(t: &str) -> (i64, u32) {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", t, "+%s"])
        .output()
        .expect("date");
    let secs = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let nanos = t[20..29].parse().unwrap();
    (secs, nanos)
}

/// An RFC 3339 time, whole seconds, of a Unix time.
fn rfc3339(secs: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker logs ARGS NAME`: (stdout, stderr).
fn logs(d: &Berthd, args: &[&str], name: &str) -> (String, String) {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    all.push(name);
    let (code, out, err) = d.run(&all, None);
    assert_eq!(code, 0, "docker {all:?}: {err}");
    (out, err)
}

#[test]
fn since_until_timestamps_tail() {
    let d = Berthd::start();
    // Three lines two seconds apart, and one on stderr between the first two.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "tl",
        "--network",
        "none",
        "busybox:test",
        "sh",
        "-c",
        "echo a; sleep 1; echo e >&2; sleep 1; echo b; sleep 2; echo c",
    ]);
    assert_eq!(
        d.ok(&["wait", "tl"]).trim(),
        "0",
        "the container should exit"
    );
    let (out, err) = logs(&d, &["-t"], "tl");
    let lines: Vec<(String, String)> = out.lines().map(stamped).collect();
    let texts: Vec<&str> = lines.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["a", "b", "c"], "{out}");
    let (te, e) = stamped(err.trim_end());
    assert_eq!(e, "e");
    let (ta, tb, tc) = (&lines[0].0, &lines[1].0, &lines[2].0);
    assert!(ta <= &te && &te <= tb, "{ta} {te} {tb}");
    let b = parse_time(tb);
    assert!(parse_time(tc).0 - b.0 >= 1 && b.0 - parse_time(ta).0 >= 1);

    // Plain logs: each stream to its own.
    assert_eq!(logs(&d, &[], "tl"), ("a\nb\nc\n".into(), "e\n".into()));
    // --since and --until at b's exact time: both bounds include b.
    assert_eq!(logs(&d, &["--since", tb], "tl").0, "b\nc\n");
    assert_eq!(logs(&d, &["--until", tb], "tl").0, "a\nb\n");
    assert_eq!(logs(&d, &["--since", tb, "--until", tb], "tl").0, "b\n");
    assert_eq!(logs(&d, &["--since", tb], "tl").1, "", "e is before b");
    // Whole-second RFC 3339 times a second either side of b.
    let before_b = rfc3339(b.0 - 1 + i64::from(b.1 > 0));
    let after_b = rfc3339(b.0 + 1);
    assert_eq!(logs(&d, &["--since", &before_b], "tl").0, "b\nc\n");
    assert_eq!(logs(&d, &["--until", &after_b], "tl").0, "a\nb\n");
    assert_eq!(
        logs(&d, &["--since", &before_b, "--until", &after_b], "tl").0,
        "b\n"
    );
    // Unix times, as the API takes them.
    let unix = format!("{}.{:09}", b.0, b.1);
    assert_eq!(logs(&d, &["--since", &unix], "tl").0, "b\nc\n");
    assert_eq!(logs(&d, &["--until", &unix], "tl").0, "a\nb\n");
    // Since in the future, until before everything: nothing.
    assert_eq!(
        logs(&d, &["--since", &rfc3339(b.0 + 3600)], "tl"),
        ("".into(), "".into())
    );
    assert_eq!(
        logs(&d, &["--until", &rfc3339(b.0 - 3600)], "tl"),
        ("".into(), "".into())
    );

    // --tail counts the lines of both streams, newest last.
    assert_eq!(logs(&d, &["--tail", "2"], "tl").0, "b\nc\n");
    assert_eq!(
        logs(&d, &["--tail", "3"], "tl"),
        ("b\nc\n".into(), "e\n".into())
    );
    assert_eq!(logs(&d, &["--tail", "0"], "tl"), ("".into(), "".into()));
    assert_eq!(logs(&d, &["--tail", "all"], "tl").0, "a\nb\nc\n");
    let (out, _) = logs(&d, &["--tail", "1", "-t"], "tl");
    assert_eq!(stamped(out.trim_end()), (tc.clone(), "c".to_string()));
    // --tail, then --since within what it kept.
    assert_eq!(logs(&d, &["--tail", "2", "--since", tc], "tl").0, "c\n");
    assert_eq!(logs(&d, &["--tail", "1", "--since", ta], "tl").0, "c\n");
    // Following an exited container ends; --until with -f ends too.
    assert_eq!(logs(&d, &["-f", "--since", tb], "tl").0, "b\nc\n");
}

#[test]
fn following_stops_at_until() {
    let d = Berthd::start();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "--network",
        "none",
        "busybox:test",
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    ]);
    d.wait_until("ticks", Duration::from_secs(10), || {
        d.ok(&["logs", "ticker"]).contains("tick 1")
    });
    // Until a moment from now: the follow must end by itself while it still ticks.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let until = (now + 2).to_string();
    let start = std::time::Instant::now();
    let (out, _) = logs(&d, &["-f", "--until", &until], "ticker");
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(out.lines().count() >= 3, "{out}");
    assert_eq!(d.inspect("ticker", "{{.State.Status}}"), "running");
}

#[test]
fn rotated_files_read_back_whole() {
    let d = Berthd::start();
    // ~80 bytes a JSON line: 30 lines fill three 1 KiB files without dropping any.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "rot",
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "busybox:test",
        "sh",
        "-c",
        "for i in $(seq 1 30); do echo line $i; done",
    ]);
    assert_eq!(d.ok(&["wait", "rot"]).trim(), "0");
    let path = d.inspect("rot", "{{.LogPath}}");
    assert!(
        std::path::Path::new(&format!("{path}.1")).exists()
            && std::path::Path::new(&format!("{path}.2")).exists(),
        "the log should have rotated twice"
    );
    assert!(!std::path::Path::new(&format!("{path}.3")).exists());
    let want: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    assert_eq!(logs(&d, &[], "rot").0, want);
    assert_eq!(
        logs(&d, &["--tail", "12"], "rot").0,
        (19..=30).map(|i| format!("line {i}\n")).collect::<String>()
    );
    // -t across files keeps order.
    let (out, _) = logs(&d, &["-t"], "rot");
    let times: Vec<String> = out.lines().map(|l| stamped(l).0).collect();
    assert_eq!(times.len(), 30);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{out}");
    // --since a line in the oldest file.
    let since = &times[4];
    let got = logs(&d, &["--since", since], "rot").0;
    assert!(
        got.starts_with("line ") && got.ends_with("line 30\n"),
        "{got}"
    );
    assert!(got.lines().count() >= 26, "{got}");

    // Past what three files hold: the oldest lines go, the rest is contiguous.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "rot2",
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox:test",
        "sh",
        "-c",
        "for i in $(seq 1 100); do echo line $i; done",
    ]);
    assert_eq!(d.ok(&["wait", "rot2"]).trim(), "0");
    let out = logs(&d, &[], "rot2").0;
    let nums: Vec<u32> = out
        .lines()
        .map(|l| l.trim_start_matches("line ").parse().unwrap())
        .collect();
    assert_eq!(nums.last(), Some(&100), "{out}");
    assert!(nums.len() >= 12 && nums.len() < 100, "{out}");
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{out}");
}

#[test]
fn following_across_rotations_loses_nothing() {
    let d = Berthd::start();
    // ~80 bytes a JSON line: a rotation every dozen lines, far more lines than five
    // files hold, so only a follower that keeps up across rotations sees them all.
    d.ok(&[
        "create",
        "--name",
        "rotf",
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=5",
        "busybox:test",
        "sh",
        "-c",
        "for i in $(seq 1 400); do echo line $i; [ $((i % 20)) = 0 ] && sleep 0.05; done",
    ]);
    let follower = d
        .cmd(&["logs", "-f", "rotf"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker logs -f");
    std::thread::sleep(Duration::from_millis(500));
    d.ok(&["start", "rotf"]);
    let out = containers_support::wait_output(follower, Duration::from_secs(60));
    let want: String = (1..=400).map(|i| format!("line {i}\n")).collect();
    assert!(
        out == want,
        "follower got {} lines:\n{out}",
        out.lines().count()
    );
}
