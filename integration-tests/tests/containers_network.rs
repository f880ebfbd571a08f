//! Bridge networking through berthd with the real docker CLI: the default bridge,
//! published ports (reached on 127.0.0.1 only), user-defined networks with names served
//! at 127.0.0.11, bad input in dockerd's words, and what a kill -9 leaves.
//!
//! Network rule: traffic goes only to 127.0.0.1 and to containers these tests made, on
//! bridges these tests' berthd made (each berthd has its own, see the harness); names
//! resolved are only containers' names. Each berthd is stopped at the end of its test and
//! removes its bridges and its firewall table.

mod containers_support;

use containers_support::Berthd;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

const IMG: &str = "busybox:test";

fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The host ends of veths attached to `bridge`.
fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{name}")).exists()
}

/// berthd's own nftables table (named after its exec root).
fn firewall_table(d: &Berthd) -> String {
    use sha2::Digest;
    let exec = d.dir.path().join("exec");
    let h = sha2::Sha256::digest(exec.as_os_str().as_encoded_bytes());
    let hex: String = h.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("berth-{hex}")
}

fn nft_table(name: &str) -> String {
    sh("nft", &["list", "table", "ip", name])
}

/// One HTTP GET to 127.0.0.1:port, bounded in time.
fn http_get(port: u16) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(2),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(out) if !out.is_empty() => return out,
            _ if std::time::Instant::now() > deadline => {
                panic!("no answer on 127.0.0.1:{port}: {attempt:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn default_bridge_gives_an_address_a_route_and_leaves_nothing() {
    let d = Berthd::start();
    let out = d.ok(&[
        "run",
        "--rm",
        IMG,
        "sh",
        "-c",
        "ip -4 addr show eth0; ip route; cat /etc/hosts; hostname",
    ]);
    let inspect = d.ok(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{json .IPAM.Config}}",
    ]);
    let cfg: serde_json::Value = serde_json::from_str(inspect.trim()).unwrap();
    let gw = cfg[0]["Gateway"].as_str().unwrap().to_string();
    let subnet = cfg[0]["Subnet"].as_str().unwrap().to_string();
    assert!(out.contains(&format!("default via {gw} dev eth0")), "{out}");
    let prefix = subnet
        .rsplit_once('.')
        .unwrap()
        .0
        .rsplit_once('.')
        .unwrap()
        .0;
    assert!(
        out.contains(&format!("inet {prefix}.")),
        "{out} vs {subnet}"
    );
    // The bridge is ours, with the gateway on it; --rm left no veth on it.
    assert!(sh("ip", &["-4", "addr", "show", &d.bridge]).contains(&gw));
    assert!(bridge_ports(&d.bridge).is_empty());
    assert!(!std::fs::read_dir(d.dir.path().join("exec/network/netns"))
        .map(|mut r| r.next().is_some())
        .unwrap_or(false));
    // --mac-address (the berth CLI sends Config.MacAddress, as API 1.43 has it; this
    // docker CLI sends it per network, which needs 1.44): eth0 has it and inspect
    // shows it. A bad one is refused by berthd in dockerd's words, and nothing is
    // created.
    let mac = "02:42:0a:be:7f:01";
    d.berth_ok(&[
        "run",
        "-d",
        "--name",
        "mac",
        "--mac-address",
        mac,
        IMG,
        "sleep",
        "60",
    ]);
    assert_eq!(
        d.ok(&["exec", "mac", "cat", "/sys/class/net/eth0/address"])
            .trim(),
        mac
    );
    assert_eq!(
        d.inspect("mac", "{{.NetworkSettings.MacAddress}}").trim(),
        mac
    );
    d.ok(&["rm", "-f", "mac"]);
    let e = d.berth_err(&[
        "create",
        "--name",
        "badmac",
        "--mac-address",
        "02:42:zz",
        IMG,
    ]);
    assert!(e.contains("invalid MAC address: 02:42:zz"), "{e}");
    assert!(d.err(&["inspect", "badmac"]).contains("No such"));
    assert!(bridge_ports(&d.bridge).is_empty());
    // none and host still work.
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            IMG,
            "sh",
            "-c",
            "ls /sys/class/net"
        ]),
        "lo\n"
    );
    d.ok(&["run", "--rm", "--network", "host", IMG, "true"]);
}

#[test]
fn published_port_answers_on_loopback_and_is_released() {
    let d = Berthd::start();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1::8080",
        IMG,
        "sh",
        "-c",
        "echo hello-from-web > /index.html; exec httpd -f -p 8080 -h /",
    ]);
    let id = id.trim();
    let port_line = d.ok(&["port", "web", "8080/tcp"]);
    let port: u16 = port_line
        .trim()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(port_line.starts_with("127.0.0.1:"), "{port_line}");
    assert!(http_get(port).contains("hello-from-web"));
    // Inspect and ps show it as dockerd does.
    let ports = d.ok(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Ports}}",
        "web",
    ]);
    assert!(
        ports.contains(&format!("\"HostPort\":\"{port}\"")),
        "{ports}"
    );
    assert!(d
        .ok(&["ps", "--format", "{{.Ports}}"])
        .contains(&format!("127.0.0.1:{port}->8080/tcp")));
    // The port is held: another container cannot have it, in dockerd's words.
    let err = d.err(&[
        "run",
        "--rm",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        IMG,
        "true",
    ]);
    assert!(
        err.contains(&format!(
            "Bind for 127.0.0.1:{port} failed: port is already allocated"
        )),
        "{err}"
    );
    // Nothing half-made by the refused run: only web's veth on the bridge.
    assert_eq!(bridge_ports(&d.bridge).len(), 1);
    let table = firewall_table(&d);
    assert!(nft_table(&table).contains(&format!("dport {port} dnat to")));
    // A port out of range is refused before anything is made.
    let err = d.err(&["run", "--rm", "-p", "70000:80", IMG, "true"]);
    assert!(err.to_lowercase().contains("invalid"), "{err}");
    // Hairpin: a container reaches its own published port through the host (the
    // bridge's address), and so does a sibling.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "all",
        "-p",
        "8081",
        IMG,
        "sh",
        "-c",
        "echo hairpin-ok > /index.html; exec httpd -f -p 8081 -h /",
    ]);
    let gw = d.ok(&["inspect", "--format", "{{.NetworkSettings.Gateway}}", "all"]);
    let all_port = d.ok(&["port", "all", "8081"]);
    let all_port = all_port
        .lines()
        .next()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .to_string();
    let fetch = format!(
        "for i in 1 2 3 4 5; do printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {} {all_port} | grep hairpin-ok && exit 0; sleep 0.3; done; exit 1",
        gw.trim()
    );
    d.ok(&["exec", "all", "sh", "-c", &fetch]);
    d.ok(&["exec", "web", "sh", "-c", &fetch]);
    d.ok(&["rm", "-f", id, "all"]);
    assert!(bridge_ports(&d.bridge).is_empty());
    assert!(!nft_table(&table).contains("dnat to"));
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
}

#[test]
fn user_network_names_aliases_and_removal() {
    let d = Berthd::start();
    let net_id = d.ok(&["network", "create", "--label", "t=1", "appnet"]);
    let net_id = net_id.trim().to_string();
    let bridge = format!("br-{}", &net_id[..12]);
    assert!(link_exists(&bridge));
    d.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "appnet",
        "--network-alias",
        "database",
        IMG,
        "sleep",
        "60",
    ]);
    // Resolved at 127.0.0.11 by name and alias; only names of containers made here.
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        IMG,
        "sh",
        "-c",
        "cat /etc/resolv.conf; ping -c 1 -W 3 db && ping -c 1 -W 3 database",
    ]);
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    let ip = d.ok(&[
        "inspect",
        "--format",
        "{{(index .NetworkSettings.Networks \"appnet\").IPAddress}}",
        "db",
    ]);
    assert!(d.ok(&["network", "inspect", "appnet"]).contains(ip.trim()));
    assert_eq!(
        d.ok(&[
            "network",
            "ls",
            "--filter",
            "label=t=1",
            "--format",
            "{{.Name}}"
        ]),
        "appnet\n"
    );
    // In use: refused; then connect/disconnect of a running container.
    let err = d.err(&["network", "rm", "appnet"]);
    assert!(err.contains("has active endpoints"), "{err}");
    d.ok(&["run", "-d", "--name", "other", IMG, "sleep", "60"]);
    d.ok(&["network", "connect", "--alias", "o2", "appnet", "other"]);
    let err = d.err(&["network", "connect", "appnet", "other"]);
    assert!(err.contains("already exists in network appnet"), "{err}");
    let ifs = d.ok(&["exec", "other", "ls", "/sys/class/net"]);
    assert!(ifs.contains("eth1"), "{ifs}");
    d.ok(&["exec", "other", "ping", "-c", "1", "-W", "3", "db"]);
    d.ok(&["network", "disconnect", "appnet", "other"]);
    assert!(!d
        .ok(&["exec", "other", "ls", "/sys/class/net"])
        .contains("eth1"));
    d.ok(&["rm", "-f", "db", "other"]);
    assert!(bridge_ports(&bridge).is_empty());
    d.ok(&["network", "rm", "appnet"]);
    assert!(!link_exists(&bridge));
    assert!(!nft_table(&firewall_table(&d)).contains(&bridge));
}

#[test]
fn bad_input_is_refused_in_dockerds_words_and_leaves_nothing() {
    let d = Berthd::start();
    for (args, words) in [
        (
            vec!["network", "create", "--subnet", "10.300.0.0/16", "x1"],
            "invalid CIDR address: 10.300.0.0/16",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.77.0.0/24",
                "--gateway",
                "10.78.0.1",
                "x2",
            ],
            "no matching subnet for gateway 10.78.0.1",
        ),
        (
            vec!["network", "rm", "bridge"],
            "bridge is a pre-defined network and cannot be removed",
        ),
        (
            vec!["network", "rm", "host"],
            "host is a pre-defined network and cannot be removed",
        ),
        (
            vec!["network", "rm", "none"],
            "none is a pre-defined network and cannot be removed",
        ),
        (
            vec!["network", "inspect", "nosuchnet"],
            "network nosuchnet not found",
        ),
        (
            vec!["network", "create", "-d", "nosuchdriver", "x3"],
            "plugin \"nosuchdriver\" not found",
        ),
    ] {
        let err = d.err(&args);
        assert!(err.contains(words), "{args:?}: {err}");
    }
    // With the docker CLI a 404 at create means "pull the image" (from the internet):
    // Berth's CLI, which only pulls on "No such image", asks instead.
    let (code, _, err) = d.berth(
        &["run", "--rm", "--network", "nosuchnet", IMG, "true"],
        None,
    );
    assert_eq!(code, 125);
    assert!(err.contains("network nosuchnet not found"), "{err}");
    d.ok(&["network", "create", "--subnet", "10.231.7.0/24", "first"]);
    let err = d.err(&["network", "create", "--subnet", "10.231.7.128/25", "second"]);
    assert!(
        err.contains("Pool overlaps with other one on this address space"),
        "{err}"
    );
    let err = d.err(&["network", "create", "first"]);
    assert!(
        err.contains("network with name first already exists"),
        "{err}"
    );
    // Nothing of the refused ones is left: only "first" beside the predefined three,
    // and only its bridge.
    assert_eq!(
        d.ok(&["network", "ls", "--format", "{{.Name}}"]),
        "bridge\nfirst\nhost\nnone\n"
    );
    let id = d.ok(&["network", "inspect", "--format", "{{.Id}}", "first"]);
    let bridge = format!("br-{}", &id.trim()[..12]);
    assert!(link_exists(&bridge));
    d.ok(&["network", "rm", "first"]);
    assert!(!link_exists(&bridge));
}

#[test]
fn kill_9_keeps_addresses_and_ports_and_cleans_up_the_gone() {
    let mut d = Berthd::start();
    d.ok(&["network", "create", "keepnet"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "kept",
        "--network",
        "keepnet",
        "-p",
        "127.0.0.1::8080",
        IMG,
        "sh",
        "-c",
        "echo kept > /index.html; exec httpd -f -p 8080 -h /",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "gone",
        "--network",
        "keepnet",
        IMG,
        "sleep",
        "600",
    ]);
    let fmt = "{{(index .NetworkSettings.Networks \"keepnet\").IPAddress}}";
    let kept_ip = d.ok(&["inspect", "--format", fmt, "kept"]);
    let gone_ip = d.ok(&["inspect", "--format", fmt, "gone"]);
    let port = d.ok(&["port", "kept", "8080"]);
    let gone_pid: i32 = d
        .ok(&["inspect", "--format", "{{.State.Pid}}", "gone"])
        .trim()
        .parse()
        .unwrap();
    let net_id = d.ok(&["network", "inspect", "--format", "{{.Id}}", "keepnet"]);
    let bridge = format!("br-{}", &net_id.trim()[..12]);
    assert_eq!(bridge_ports(&bridge).len(), 2);
    // berthd dies; meanwhile "gone"'s process is killed (it is ours), so at restart its
    // network is a leftover to remove.
    d.crash_and_restart_with(|| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(gone_pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        std::thread::sleep(Duration::from_millis(300));
    });
    assert_eq!(d.ok(&["inspect", "--format", fmt, "kept"]), kept_ip);
    assert_eq!(d.ok(&["port", "kept", "8080"]), port);
    let port: u16 = port.trim().rsplit_once(':').unwrap().1.parse().unwrap();
    assert!(http_get(port).contains("kept"));
    // The gone container's veth is gone; its address is free again, kept's is not
    // given out twice.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while bridge_ports(&bridge).len() != 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bridge_ports(&bridge).len(), 1);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "new",
        "--network",
        "keepnet",
        IMG,
        "sleep",
        "60",
    ]);
    let new_ip = d.ok(&["inspect", "--format", fmt, "new"]);
    assert_ne!(new_ip, kept_ip);
    assert_eq!(new_ip, gone_ip);
    // Names are served again in the kept container (its 127.0.0.11 sockets were opened
    // anew in its namespace) and registered for the new one.
    d.ok(&["exec", "kept", "ping", "-c", "1", "-W", "3", "new"]);
    d.ok(&["exec", "new", "ping", "-c", "1", "-W", "3", "kept"]);
    // A port held before the crash is held again.
    let err = d.err(&[
        "run",
        "--rm",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        IMG,
        "true",
    ]);
    assert!(err.contains("port is already allocated"), "{err}");
    d.ok(&["rm", "-f", "kept", "gone", "new"]);
    d.ok(&["network", "rm", "keepnet"]);
    assert!(!link_exists(&bridge));
}

#[test]
fn iptables_backend_publishes_and_removes_its_own_chains_only() {
    let d = Berthd::start_with(&["--firewall-backend", "iptables"]);
    let chain = format!("{}-PRE", firewall_table(&d).to_uppercase());
    let nat_before = sh("iptables", &["-w", "-t", "nat", "-S"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1::8080",
        IMG,
        "sh",
        "-c",
        "echo via-iptables > /index.html; exec httpd -f -p 8080 -h /",
    ]);
    let port = d.ok(&["port", "web", "8080"]);
    let port: u16 = port.trim().rsplit_once(':').unwrap().1.parse().unwrap();
    assert!(http_get(port).contains("via-iptables"));
    let rules = sh("iptables", &["-w", "-t", "nat", "-S", &chain]);
    assert!(
        rules.contains(&format!("--dport {port} -j DNAT")),
        "{rules}"
    );
    // Every rule that was there before is still there.
    let nat_now = sh("iptables", &["-w", "-t", "nat", "-S"]);
    for line in nat_before.lines() {
        assert!(nat_now.contains(line), "{line} went away");
    }
    d.ok(&["rm", "-f", "web"]);
    assert!(!sh("iptables", &["-w", "-t", "nat", "-S", &chain]).contains("DNAT"));
    drop(d);
    // Stopped with nothing running: its chains and jumps are gone.
    assert!(!sh("iptables", &["-w", "-t", "nat", "-S"]).contains(&chain));
}

/// Deletes a link by name when dropped: a user network's bridge, had the test failed
/// before removing its network (berthd's own shutdown removes it too; this is for a
/// berthd that could not).
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if link_exists(&self.0) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
}

#[test]
fn ipv6_network_addresses_names_inspect_and_refusals() {
    // Declared first, dropped last: after berthd has stopped.
    let bridge = format!("b6{:08x}", std::process::id());
    let _guard = LinkGuard(bridge.clone());
    let d = Berthd::start();
    let bridge_opt = format!("com.docker.network.bridge.name={bridge}");
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.236.6.0/24",
        "--subnet",
        "fd00:b6:6::/64",
        "--gateway",
        "fd00:b6:6::1",
        "-o",
        &bridge_opt,
        "v6net",
    ]);
    // The bridge holds both gateways.
    let addrs = sh("ip", &["-6", "addr", "show", "dev", &bridge]);
    assert!(addrs.contains("fd00:b6:6::1/64"), "{addrs}");
    // The network shows both subnets, as dockerd lists them.
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "--format",
            "{{.EnableIPv6}}{{range .IPAM.Config}} {{.Subnet}}={{.Gateway}}{{end}}",
            "v6net"
        ])
        .trim(),
        "true 10.236.6.0/24= fd00:b6:6::/64=fd00:b6:6::1"
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "v6net",
        IMG,
        "sleep",
        "60",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "v6net",
        "--ip6",
        "fd00:b6:6::99",
        IMG,
        "sleep",
        "60",
    ]);
    let field = |name: &str, f: &str| {
        d.ok(&[
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"v6net\").{f}}}}}"),
            name,
        ])
        .trim()
        .to_string()
    };
    // The first free address after the gateway; the fixed one as asked.
    assert_eq!(field("web", "GlobalIPv6Address"), "fd00:b6:6::2");
    assert_eq!(field("web", "GlobalIPv6PrefixLen"), "64");
    assert_eq!(field("web", "IPv6Gateway"), "fd00:b6:6::1");
    assert_eq!(field("fixed", "GlobalIPv6Address"), "fd00:b6:6::99");
    assert_eq!(field("fixed", "IPAMConfig.IPv6Address"), "fd00:b6:6::99");
    let net = d.ok(&["network", "inspect", "v6net"]);
    assert!(
        net.contains("\"IPv6Address\": \"fd00:b6:6::2/64\""),
        "{net}"
    );
    // Inside: the address and the default IPv6 route through the bridge.
    let inside = d.ok(&[
        "exec",
        "web",
        "cat",
        "/proc/net/if_inet6",
        "/proc/net/ipv6_route",
    ]);
    assert!(
        inside.contains("fd0000b6000600000000000000000002"),
        "{inside}"
    );
    assert!(
        inside
            .lines()
            .any(|l| l.starts_with("00000000000000000000000000000000 00")
                && l.contains("fd0000b6000600000000000000000001")),
        "no default route via the gateway: {inside}"
    );
    // Container to container by address, and by name through AAAA at 127.0.0.11.
    d.ok(&[
        "exec",
        "fixed",
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "3",
        "fd00:b6:6::2",
    ]);
    let out = d.ok(&["exec", "fixed", "ping", "-6", "-c", "1", "-W", "3", "web"]);
    assert!(out.contains("fd00:b6:6::2"), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    let out = d.ok(&[
        "exec",
        "web",
        "nslookup",
        "-type=aaaa",
        "fixed",
        "127.0.0.11",
    ]);
    assert!(out.contains("fd00:b6:6::99"), "{out}");
    // The IPv4 side is untouched: A still answers with the IPv4 address.
    let out = d.ok(&["exec", "web", "ping", "-4", "-c", "1", "-W", "3", "fixed"]);
    assert!(out.contains("10.236.6."), "{out}");

    // --ip6 refusals, in dockerd's words, leaving nothing behind.
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "v6net",
        "--ip6",
        "fd00:b6:7::5",
        IMG,
        "true",
    ]);
    assert!(
        err.contains(
            "Invalid address fd00:b6:7::5: It does not belong to any of this network's subnets"
        ),
        "{err}"
    );
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "v6net",
        "--ip6",
        "fd00:b6:6::99",
        IMG,
        "true",
    ]);
    assert!(
        err.contains("Address already in use: fd00:b6:6::99"),
        "{err}"
    );
    d.ok(&["network", "create", "plain4"]);
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "plain4",
        "--ip6",
        "fd00:b6:6::7",
        IMG,
        "true",
    ]);
    assert!(
        err.contains("user specified IP address is supported only when connecting to networks with user configured subnets"),
        "{err}"
    );
    let err = d.err(&[
        "run",
        "--rm",
        "--network",
        "v6net",
        "--ip6",
        "fd00::zz",
        IMG,
        "true",
    ]);
    assert!(err.contains("invalid IPv6 address: fd00::zz"), "{err}");
    // Network creation refusals.
    for (args, words) in [
        (
            vec![
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd00:b6:6:0:8000::/80",
                "x6",
            ],
            "Pool overlaps with other one on this address space",
        ),
        (
            vec![
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd00:b6:8::/64",
                "--gateway",
                "fd00:b6:9::1",
                "x7",
            ],
            "no matching subnet for gateway fd00:b6:9::1",
        ),
        (
            vec![
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd00:b6:zz::/64",
                "x8",
            ],
            "invalid CIDR address: fd00:b6:zz::/64",
        ),
    ] {
        let err = d.err(&args);
        assert!(err.contains(words), "{args:?}: {err}");
    }
    assert_eq!(
        d.ok(&["network", "ls", "--format", "{{.Name}}"]),
        "bridge\nhost\nnone\nplain4\nv6net\n"
    );
    // Only the two running containers are on the bridge; removing everything leaves
    // no veth, no bridge.
    assert_eq!(bridge_ports(&bridge).len(), 2);
    d.ok(&["rm", "-f", "web", "fixed"]);
    assert!(bridge_ports(&bridge).is_empty());
    d.ok(&["network", "rm", "v6net", "plain4"]);
    assert!(!link_exists(&bridge));
}

#[test]
fn default_bridge_with_ipv6_and_fixed_cidr_v6() {
    let d = Berthd::start_with(&["--ipv6", "--fixed-cidr-v6", "fd00:b6:17::/64"]);
    let addrs = sh("ip", &["-6", "addr", "show", "dev", &d.bridge]);
    assert!(addrs.contains("fd00:b6:17::1/64"), "{addrs}");
    assert_eq!(
        d.ok(&[
            "network",
            "inspect",
            "--format",
            "{{.EnableIPv6}}{{range .IPAM.Config}} {{.Subnet}}{{end}}",
            "bridge"
        ])
        .trim()
        .split(' ')
        .filter(|w| *w == "true" || w.contains(':'))
        .collect::<Vec<_>>(),
        ["true", "fd00:b6:17::/64"]
    );
    d.ok(&["run", "-d", "--name", "v6a", IMG, "sleep", "60"]);
    d.ok(&["run", "-d", "--name", "v6b", IMG, "sleep", "60"]);
    let top = |name: &str| {
        d.ok(&[
            "inspect",
            "--format",
            "{{.NetworkSettings.GlobalIPv6Address}}/{{.NetworkSettings.GlobalIPv6PrefixLen}} via {{.NetworkSettings.IPv6Gateway}}",
            name,
        ])
        .trim()
        .to_string()
    };
    assert_eq!(top("v6a"), "fd00:b6:17::2/64 via fd00:b6:17::1");
    assert_eq!(top("v6b"), "fd00:b6:17::3/64 via fd00:b6:17::1");
    let out = d.ok(&[
        "exec",
        "v6b",
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "3",
        "fd00:b6:17::2",
    ]);
    assert!(out.contains("1 packets received"), "{out}");
    // The gateway answers too: the container's route to it is on-link.
    d.ok(&[
        "exec",
        "v6a",
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "3",
        "fd00:b6:17::1",
    ]);
    // No --ip6 on the default bridge, as no --ip.
    let err = d.err(&["run", "--rm", "--ip6", "fd00:b6:17::9", IMG, "true"]);
    assert!(err.contains("supported"), "{err}");
    d.ok(&["rm", "-f", "v6a", "v6b"]);
    assert!(bridge_ports(&d.bridge).is_empty());
}

/// `docker build` (classic builder): RUN steps get the network `docker run` gets, the
/// default bridge when no --network is given (an address in its subnet, a default route
/// through its gateway, the veth gone with the step's container), none and a user network
/// by name when asked; an unknown network fails the build in dockerd's words and leaves
/// no step container.
#[test]
fn build_steps_get_the_network_docker_run_gets() {
    let d = Berthd::start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMG}\nRUN echo \"net: $(ip -4 -o addr show eth0 2>&1)\"; echo \"route: $(ip route | grep default)\"\n"),
    )
    .unwrap();
    let context = ctx.path().to_str().unwrap();
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--no-cache"];
        args.extend_from_slice(extra);
        args.push(context);
        let mut c = d.cmd(&args);
        c.env("DOCKER_BUILDKIT", "0");
        let out = containers_support::run_with_timeout(c, None, Duration::from_secs(120));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let subnet_of = |net: &str| -> (String, String) {
        let cfg = d.ok(&[
            "network",
            "inspect",
            net,
            "--format",
            "{{json .IPAM.Config}}",
        ]);
        let cfg: serde_json::Value = serde_json::from_str(cfg.trim()).unwrap();
        let subnet = cfg[0]["Subnet"].as_str().unwrap().to_string();
        let prefix = subnet.rsplitn(3, '.').nth(2).unwrap().to_string();
        (prefix, cfg[0]["Gateway"].as_str().unwrap().to_string())
    };

    let (code, out, err) = build(&[]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (prefix, gw) = subnet_of("bridge");
    assert!(out.contains(&format!("inet {prefix}.")), "{out}");
    assert!(
        out.contains(&format!("route: default via {gw} dev eth0")),
        "{out}"
    );
    assert!(bridge_ports(&d.bridge).is_empty(), "a step's veth was left");

    let (code, out, err) = build(&["--network", "none"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!out.contains("inet "), "{out}");
    assert!(out.contains("route: \n"), "{out}");

    d.ok(&["network", "create", "buildnet"]);
    let (code, out, err) = build(&["--network", "buildnet"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (prefix, gw) = subnet_of("buildnet");
    assert!(out.contains(&format!("inet {prefix}.")), "{out}");
    assert!(
        out.contains(&format!("route: default via {gw} dev eth0")),
        "{out}"
    );

    let (code, out, err) = build(&["--network", "nosuchnet"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(err.contains("network nosuchnet not found"), "{out}{err}");
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "", "a step container was left");
    d.ok(&["network", "rm", "buildnet"]);
}

/// The isolation rules and the default bridge's daemon flags, on the kernel: two user
/// networks cannot reach each other (while containers on one network can), an
/// `--internal` network has no default route, `enable_icc=false` keeps a network's
/// containers apart; `--bip`, `--fixed-cidr` and `--mtu` shape the default bridge and its
/// containers as dockerd's flags do. Pings go only to containers this test made.
#[test]
fn isolation_internal_icc_and_the_default_bridges_flags() {
    let d = Berthd::start_with(&[
        "--bip",
        "10.213.7.1/24",
        "--fixed-cidr",
        "10.213.7.128/25",
        "--mtu",
        "1400",
    ]);
    assert!(
        sh("ip", &["-4", "addr", "show", &d.bridge]).contains("inet 10.213.7.1/24"),
        "the bridge lacks --bip's address"
    );
    let out = d.ok(&[
        "run",
        "--rm",
        IMG,
        "sh",
        "-c",
        "ip -4 -o addr show eth0; cat /sys/class/net/eth0/mtu",
    ]);
    let host: u8 = out
        .split("inet 10.213.7.")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no address in --bip's subnet: {out}"));
    assert!(host >= 128, "{out}: not in --fixed-cidr");
    assert!(out.trim_end().ends_with("\n1400"), "{out}: not --mtu's");

    let ip_of = |name: &str, net: &str| {
        d.inspect(
            name,
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        )
        .trim()
        .to_string()
    };
    let ping = |from: &str, to: &str| {
        d.run(&["exec", from, "ping", "-c", "1", "-W", "2", to], None)
            .0
            == 0
    };
    d.ok(&["network", "create", "isoa"]);
    d.ok(&["network", "create", "isob"]);
    d.ok(&["network", "create", "--internal", "intn"]);
    d.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "noicc",
    ]);
    for (name, net) in [
        ("a1", "isoa"),
        ("a2", "isoa"),
        ("b1", "isob"),
        ("i1", "intn"),
        ("c1", "noicc"),
        ("c2", "noicc"),
    ] {
        d.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            IMG,
            "sleep",
            "120",
        ]);
    }
    assert!(ping("a2", &ip_of("a1", "isoa")), "same network: no answer");
    assert!(!ping("a1", &ip_of("b1", "isob")), "isoa reached isob");
    assert!(
        !ping("c2", &ip_of("c1", "noicc")),
        "icc=false: c2 reached c1"
    );
    let routes = d.ok(&["exec", "i1", "ip", "route"]);
    assert!(
        !routes.contains("default"),
        "internal network with a route out: {routes}"
    );
    d.ok(&["rm", "-f", "a1", "a2", "b1", "i1", "c1", "c2"]);
    for n in ["isoa", "isob", "intn", "noicc"] {
        d.ok(&["network", "rm", n]);
    }
}
