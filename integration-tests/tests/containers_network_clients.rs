//! Real clients of berthd's networking: docker-compose 1.29 (Debian's) with a two-service
//! project (one reaches the other by service name, a port published on 127.0.0.1), and
//! docker-py (python3-docker) creating, connecting and inspecting networks.
//!
//! Network rule: traffic only to 127.0.0.1 and between containers made here, on networks
//! made here; the only names resolved are the services'.

mod containers_support;

use containers_support::Berthd;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

fn compose(d: &Berthd, dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("docker-compose")
        .current_dir(dir)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .args(["-p", "berthnet", "-f", "compose.yml"])
        .args(args)
        .output()
        .expect("docker-compose (apt-get install docker-compose)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compose_project_reaches_a_service_by_name_and_down_removes_its_network() {
    let d = Berthd::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yml"),
        r#"version: "3"
services:
  web:
    image: busybox:test
    command: ["sh", "-c", "echo hello-from-web > /index.html; exec httpd -f -p 8080 -h /"]
    ports: ["127.0.0.1::8080"]
  client:
    image: busybox:test
    command: ["sh", "-c", "for i in $$(seq 100); do printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 web 8080 | grep hello && break; sleep 0.2; done; exec sleep 300"]
"#,
    )
    .unwrap();
    let (ok, out, err) = compose(&d, dir.path(), &["up", "-d"]);
    assert!(ok, "up: {out}\n{err}\n{}", d.log());
    let (ok, ps, err) = compose(&d, dir.path(), &["ps"]);
    assert!(ok, "{err}");
    assert!(
        ps.contains("berthnet_web_1") && ps.contains("berthnet_client_1"),
        "{ps}"
    );
    assert!(
        ps.contains("127.0.0.1:") && ps.contains("->8080/tcp"),
        "{ps}"
    );
    // The client reached web by its service name (through 127.0.0.11).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, logs, _) = compose(&d, dir.path(), &["logs", "client"]);
        if logs.contains("hello-from-web") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "client never reached web: {logs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // And the published port answers on 127.0.0.1.
    let port = d.ok(&["port", "berthnet_web_1", "8080"]);
    let port = port.trim().rsplit_once(':').unwrap().1.to_string();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    assert!(got.ends_with("hello-from-web\n"), "{got}");
    assert!(d
        .ok(&["network", "ls", "--format", "{{.Name}}"])
        .contains("berthnet_default"));
    let (ok, out, err) = compose(&d, dir.path(), &["down"]);
    assert!(ok, "down: {out}\n{err}");
    assert!(!d
        .ok(&["network", "ls", "--format", "{{.Name}}"])
        .contains("berthnet_default"));
    assert_eq!(d.ok(&["ps", "-aq"]), "");
}

#[test]
fn docker_py_creates_connects_and_inspects_networks() {
    let d = Berthd::start();
    let script = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1])
n = c.networks.create("pynet", driver="bridge", labels={"from": "py"},
    ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.241.3.0/24", gateway="10.241.3.1")]))
box = c.containers.run("busybox:test", "sleep 60", detach=True, name="pybox")
n.connect(box, aliases=["pyalias"], ipv4_address="10.241.3.50")
n.reload()
members = n.attrs["Containers"]
assert box.id in members, members
assert members[box.id]["IPv4Address"] == "10.241.3.50/24", members
assert n.attrs["IPAM"]["Config"][0]["Subnet"] == "10.241.3.0/24"
assert n.attrs["Labels"] == {"from": "py"}
box.reload()
assert box.attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"] == "10.241.3.50"
assert "pyalias" in box.attrs["NetworkSettings"]["Networks"]["pynet"]["Aliases"]
try:
    n.connect(box)
    raise SystemExit("connected twice")
except docker.errors.APIError as e:
    assert e.status_code == 403, e
n.disconnect(box)
box.remove(force=True)
n.remove()
assert not c.networks.list(names=["pynet"])
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &format!("unix://{}", d.socket.display())])
        .output()
        .expect("python3 with python3-docker");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "stdout: {}\nstderr: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
}
