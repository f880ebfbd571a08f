//! A generic gRPC client (Python grpcio, from PyPI), knowing nothing of our protos,
//! discovers the supervisor's API through reflection, checks its health service and calls
//! an RPC with messages it built from the reflected descriptors.

mod supervisor_support;

use supervisor_support::*;

#[test]
fn python_grpcio_discovers_and_calls_the_supervisor() {
    let sv = Supervisor::start();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/assets/generic_grpc_client.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(format!("unix:{}", sv.socket().display()))
        .output()
        .expect("python3 (install grpcio with deploy/install-deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "health SERVING");
    for service in [
        "berth.supervisor.v1.Containers",
        "berth.supervisor.v1.Tasks",
        "berth.supervisor.v1.Events",
        "berth.supervisor.v1.Namespaces",
        "berth.supervisor.v1.Version",
        "grpc.health.v1.Health",
    ] {
        assert!(
            lines[1].split_whitespace().any(|s| s == service),
            "{service} not listed: {}",
            lines[1]
        );
    }
    assert!(
        lines[2].starts_with("version ") && lines[2].contains('.'),
        "{}",
        lines[2]
    );
    sv.cleanup();
}
