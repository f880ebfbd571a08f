//! berth-shim writing the init's json-file log itself (CreateTaskRequest.log), as
//! dockerd's json-file driver writes it: the format (escaping, stream, RFC 3339 time,
//! mode 0600), dockerd's line splitting (16 KiB pieces, a last piece without newline),
//! rotation (max-size, max-file), a terminal's output as stdout; and the forwarding to
//! the caller's FIFO: lossless with a slow reader, never blocking the container without
//! one, picked up again when a reader comes back.

mod supervisor_support;

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_proto::tonic::Code;
use serde_json::Value;
use supervisor_support::*;

/// Create and start `id` with its output logged to `log` (and forwarded to the given
/// stdout/stderr paths).
fn run_logged(
    sv: &Supervisor,
    id: &str,
    log: &Path,
    max: (u64, u32),
    stdout: &Path,
    stderr: &Path,
    terminal: bool,
) -> u32 {
    let mut t = sv.tasks();
    sv.block(t.create(pb::CreateTaskRequest {
        container_id: id.into(),
        stdout: stdout.display().to_string(),
        stderr: stderr.display().to_string(),
        terminal,
        log: Some(pb::LogConfig {
            path: log.display().to_string(),
            max_size: max.0,
            max_file: max.1,
        }),
        ..Default::default()
    }))
    .unwrap();
    sv.block(t.start(pb::StartRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap()
    .into_inner()
    .pid
}

fn wait_exit(sv: &Supervisor, id: &str) -> u32 {
    let mut t = sv.tasks();
    sv.block(t.wait(pb::WaitRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap()
    .into_inner()
    .exit_status
}

fn delete(sv: &Supervisor, id: &str) {
    let mut t = sv.tasks();
    sv.block(t.delete(pb::DeleteTaskRequest {
        container_id: id.into(),
        ..Default::default()
    }))
    .unwrap();
}

/// The log's entries (of `path` and its rotated files, oldest first).
fn entries(path: &Path) -> Vec<Value> {
    let mut files = vec![path.to_path_buf()];
    for n in 1..10 {
        let p = PathBuf::from(format!("{}.{n}", path.display()));
        if p.exists() {
            files.push(p);
        }
    }
    files.reverse();
    let mut out = Vec::new();
    for f in files {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "{}", f.display());
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            out.push(v);
        }
    }
    out
}

/// The text of one stream, joined from the log.
fn stream_text(es: &[Value], stream: &str) -> String {
    es.iter()
        .filter(|e| e["stream"] == stream)
        .map(|e| e["log"].as_str().unwrap())
        .collect()
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

#[test]
fn the_log_is_dockers_json_file() {
    let sv = Supervisor::start();
    let script = "echo out1; echo 'err \"1\" <&>' >&2; head -c 40000 /dev/zero | tr '\\0' x; \
                  echo; printf 'no newline'";
    sv.create_container(sv.container("fmt", script, berth()));
    let d = sv.dir.path();
    let (out, err) = (d.join("out"), d.join("err"));
    let out_reader = fifo_reader_ready(&out);
    let err_reader = fifo_reader_ready(&err);
    let log = d.join("fmt-json.log");
    run_logged(&sv, "fmt", &log, (0, 0), &out, &err, false);
    assert_eq!(wait_exit(&sv, "fmt"), 0);
    // Logged before the exit was known.
    let es = entries(&log);
    let x40k = "x".repeat(40000);
    let want_out = format!("out1\n{x40k}\nno newline");
    assert_eq!(stream_text(&es, "stdout"), want_out);
    assert_eq!(stream_text(&es, "stderr"), "err \"1\" <&>\n");
    // dockerd's pieces: 16 KiB, 16 KiB, the rest with its newline, then the tail.
    let pieces: Vec<usize> = es
        .iter()
        .filter(|e| e["stream"] == "stdout")
        .map(|e| e["log"].as_str().unwrap().len())
        .collect();
    assert_eq!(pieces, [5, 16384, 16384, 40000 - 32768 + 1, 10]);
    // The raw line: dockerd's escaping, and a fixed-width UTC time.
    let raw = std::fs::read_to_string(&log).unwrap();
    assert!(
        raw.contains(r#"{"log":"err \"1\" \u003c\u0026\u003e\n","stream":"stderr","time":""#),
        "{}",
        &raw[..200.min(raw.len())]
    );
    for e in &es {
        let t = e["time"].as_str().unwrap();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
        assert_eq!(e.as_object().unwrap().len(), 3);
    }
    // The FIFOs got the same bytes, and end-of-file.
    delete(&sv, "fmt");
    assert_eq!(
        String::from_utf8(out_reader.join().unwrap()).unwrap(),
        want_out
    );
    assert_eq!(
        String::from_utf8(err_reader.join().unwrap()).unwrap(),
        "err \"1\" <&>\n"
    );
}

#[test]
fn a_terminal_is_logged_as_stdout() {
    let sv = Supervisor::start();
    sv.create_container(sv.container("tty", "echo hi; echo there >&2", berth()));
    let d = sv.dir.path();
    let out = d.join("tty-out");
    let reader = fifo_reader_ready(&out);
    let log = d.join("tty-json.log");
    run_logged(&sv, "tty", &log, (0, 0), &out, Path::new(""), true);
    assert_eq!(wait_exit(&sv, "tty"), 0);
    delete(&sv, "tty");
    let es = entries(&log);
    assert_eq!(stream_text(&es, "stdout"), "hi\r\nthere\r\n");
    assert_eq!(stream_text(&es, "stderr"), "");
    assert_eq!(
        String::from_utf8(reader.join().unwrap()).unwrap(),
        "hi\r\nthere\r\n"
    );
}

#[test]
fn rotation_keeps_max_file_files() {
    let sv = Supervisor::start();
    sv.create_container(sv.container("rot", "seq 1 200", berth()));
    let log = sv.dir.path().join("rot-json.log");
    run_logged(
        &sv,
        "rot",
        &log,
        (1000, 3),
        Path::new(""),
        Path::new(""),
        false,
    );
    assert_eq!(wait_exit(&sv, "rot"), 0);
    delete(&sv, "rot");
    let p = |n: &str| PathBuf::from(format!("{}{n}", log.display()));
    assert!(p(".1").exists() && p(".2").exists() && !p(".3").exists());
    // dockerd's rule: a file ends with the entry that took it to max-size or over.
    for n in [".1", ".2"] {
        let len = std::fs::metadata(p(n)).unwrap().len();
        assert!((1000..1100).contains(&len), "{n}: {len}");
    }
    // What is kept is the end of the output, whole and in order.
    let text = stream_text(&entries(&log), "stdout");
    let nums: Vec<u32> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(*nums.last().unwrap(), 200);
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
}

#[test]
fn a_slow_reader_loses_nothing() {
    let sv = Supervisor::start();
    sv.create_container(sv.container("big", "seq 1 1000000", berth()));
    let d = sv.dir.path();
    let out = d.join("big-out");
    mkfifo(&out);
    let early = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&out)
        .unwrap();
    let p = out.clone();
    // Reads slowly at first: the shim must wait for it, not drop.
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::open(p).unwrap();
        drop(early);
        let mut all = Vec::new();
        let mut buf = vec![0u8; 4096];
        let mut reads = 0;
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
            reads += 1;
            if reads < 50 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        all
    });
    let log = d.join("big-json.log");
    run_logged(&sv, "big", &log, (0, 0), &out, Path::new(""), false);
    assert_eq!(wait_exit(&sv, "big"), 0);
    delete(&sv, "big");
    let want: String = (1..=1_000_000).map(|i| format!("{i}\n")).collect();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want.as_bytes(), "the reader's copy differs");
    assert!(
        stream_text(&entries(&log), "stdout") == want,
        "the log differs"
    );
}

#[test]
fn without_a_reader_the_container_runs_on_and_a_new_reader_gets_what_follows() {
    let sv = Supervisor::start();
    // 2 MB with nobody reading the FIFO (the caller is down), then lines until told to
    // stop.
    let script = "seq 1 300000; i=0; while [ ! -e /stop-chatty ] && [ $i -lt 3000 ]; do \
                  i=$((i+1)); echo tick $i; sleep 0.01; done";
    sv.create_container(sv.container("chatty", script, berth()));
    let d = sv.dir.path();
    let out = d.join("chatty-out");
    mkfifo(&out);
    let log = d.join("chatty-json.log");
    run_logged(&sv, "chatty", &log, (0, 0), &out, Path::new(""), false);
    // It is not held up: all of seq is logged while nobody reads.
    assert!(
        berth_integration_tests::wait_until(Duration::from_secs(30), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"tick 1\\n\""))
        }),
        "the container was held up without a reader"
    );
    // A reader comes (as berthd after a restart): it gets what follows.
    let p = out.clone();
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::open(p).unwrap();
        let mut all = Vec::new();
        let _ = f.read_to_end(&mut all);
        all
    });
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(sv.rootfs.join("stop-chatty"), b"").unwrap();
    assert_eq!(wait_exit(&sv, "chatty"), 0);
    delete(&sv, "chatty");
    let _ = std::fs::remove_file(sv.rootfs.join("stop-chatty"));
    let got = String::from_utf8(reader.join().unwrap()).unwrap();
    let ticks: Vec<u32> = got
        .lines()
        .filter_map(|l| l.strip_prefix("tick ").and_then(|n| n.parse().ok()))
        .collect();
    assert!(ticks.len() >= 5, "the new reader got {got:?}");
    assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{ticks:?}");
    // The log has everything, in order.
    let text = stream_text(&entries(&log), "stdout");
    let mut lines = text.lines();
    for i in 1..=300_000 {
        assert_eq!(lines.next(), Some(i.to_string().as_str()));
    }
    let logged: Vec<String> = lines.map(String::from).collect();
    let want: Vec<String> = (1..=logged.len()).map(|i| format!("tick {i}")).collect();
    assert_eq!(logged, want);
    // The reader got everything from the moment it came to the end.
    assert_eq!(*ticks.last().unwrap() as usize, logged.len());
}

#[test]
fn only_berth_shim_takes_a_log() {
    let sv = Supervisor::start();
    sv.create_container(sv.container("rv2", "true", runc_v2()));
    let mut t = sv.tasks();
    let e = sv
        .block(t.create(pb::CreateTaskRequest {
            container_id: "rv2".into(),
            log: Some(pb::LogConfig {
                path: sv.dir.path().join("x.log").display().to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("log"), "{e:?}");
    assert!(!sv.bundle("rv2").exists(), "a bundle was left behind");
    // A log the shim cannot open is refused, and nothing is left either.
    sv.create_container(sv.container("bad", "true", berth()));
    let e = sv
        .block(t.create(pb::CreateTaskRequest {
            container_id: "bad".into(),
            log: Some(pb::LogConfig {
                path: "/nonexistent-dir/x/c-json.log".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("/nonexistent-dir/x/c-json.log"),
        "{e:?}"
    );
    assert!(!sv.bundle("bad").exists());
    assert_eq!(sv.get("bad", "").unwrap_err().code(), Code::NotFound);
}
