//! berthd's API basics, driven by raw HTTP and the real `docker` CLI: ping headers,
//! version negotiation, error bodies, /version, /info, the socket's mode.

mod engine_support;

use engine_support::Berthd;
use std::os::unix::fs::PermissionsExt;

#[test]
fn ping_version_info_and_negotiation() {
    let d = Berthd::start();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode");

    for method in ["GET", "HEAD"] {
        let r = d.http(method, "/_ping", None);
        assert_eq!(r.status, 200, "{method} /_ping");
        assert_eq!(r.header("Api-Version"), Some("1.43"));
        assert_eq!(r.header("Ostype"), Some("linux"));
        assert_eq!(r.header("Docker-Experimental"), Some("false"));
        assert!(r.header("Builder-Version").is_some());
        assert!(r.header("Cache-Control").unwrap_or("").contains("no-cache"));
        if method == "GET" {
            assert_eq!(r.text(), "OK");
        } else {
            assert!(r.body.is_empty());
        }
    }
    let r = d.http("GET", "/v1.43/_ping", None);
    assert_eq!(r.status, 200);
    let r = d.http("GET", "/v1.24/version", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["ApiVersion"], "1.43");
    assert_eq!(r.json()["MinAPIVersion"], "1.24");

    let r = d.http("GET", "/v1.99/version", None);
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("too new"));
    let r = d.http("GET", "/v1.12/version", None);
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("too old"));

    let r = d.http("GET", "/v1.43/nonsense", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "page not found");
    let r = d.http("GET", "/images/nope:latest/json", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "No such image: nope:latest");
    let r = d.http(
        "GET",
        "/images/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        None,
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("bogus"));

    let info = d.http("GET", "/info", None).json();
    assert_eq!(info["Images"], 0);
    assert_eq!(info["OSType"], "linux");

    // The real CLI negotiates down to our version and prints both sides.
    let out = d.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Client.APIVersion}}",
    ]);
    assert_eq!(out.trim(), "1.43 1.43");
    let out = d.docker_ok(&["info", "--format", "{{.OSType}} {{.Images}}"]);
    assert_eq!(out.trim(), "linux 0");
    let out = d.docker_ok(&["images", "-q"]);
    assert_eq!(out.trim(), "");
}

#[test]
fn flags_are_checked_and_shutdown_is_clean() {
    let mut d = Berthd::start();
    let (ok, _, err) = {
        let out = engine_support::run_with_timeout(
            {
                let mut c = std::process::Command::new(engine_support::berthd_path());
                c.args(["--log-level", "loud", "-H", "unix:///nonexistent/x.sock"]);
                c
            },
            std::time::Duration::from_secs(20),
        );
        (
            out.status.success(),
            (),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!ok);
    assert!(err.contains("--log-level"), "{err}");
    // A second daemon on the same data root is refused and disturbs nothing.
    let ingest_marker = d.data_root().join("content/ingest/in-flight");
    std::fs::write(&ingest_marker, b"x").unwrap();
    let out = engine_support::run_with_timeout(
        {
            let mut c = std::process::Command::new(engine_support::berthd_path());
            c.arg("--data-root")
                .arg(d.data_root())
                .arg("--exec-root")
                .arg(d.dir.path().join("exec2"))
                .arg("-H")
                .arg(format!(
                    "unix://{}",
                    d.dir.path().join("second.sock").display()
                ));
            c
        },
        std::time::Duration::from_secs(20),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already open"), "{err}");
    assert!(
        ingest_marker.exists(),
        "the running daemon's files are untouched"
    );
    std::fs::remove_file(&ingest_marker).unwrap();
    d.restart();
    assert_eq!(d.http("GET", "/_ping", None).status, 200);
    d.crash_and_restart();
    assert_eq!(d.http("GET", "/_ping", None).status, 200);
}

#[test]
fn tcp_listener_only_when_asked() {
    let port = engine_support::free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let d = Berthd::start_with(&["-H", &tcp]);
    // Both the unix socket and the loopback TCP port serve the API.
    assert_eq!(d.http("GET", "/_ping", None).status, 200);
    let mut c = d.docker_cmd(&["version", "--format", "{{.Server.APIVersion}}"]);
    c.env("DOCKER_HOST", &tcp);
    let out = engine_support::run_with_timeout(c, engine_support::COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.43");
    assert!(d.log().contains("TCP"), "a TCP listener is logged as such");
}
