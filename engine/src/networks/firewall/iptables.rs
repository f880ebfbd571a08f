//! The iptables backend: Berth's own chains in the nat and filter tables, rewritten whole
//! by one `iptables-restore --noflush` per change (declaring a user chain flushes it, and
//! only it), plus one jump to each from the built-in chains, added once and checked first
//! so it is never duplicated. Built-in chains are never flushed.

use super::{run, run_with_input, Firewall, Result, Ruleset};
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// iptables, chains `<NAME>-PRE`, `<NAME>-POST`, `<NAME>-FWD`.
pub struct Iptables {
    prefix: String,
    jumps_done: AtomicBool,
}

impl Iptables {
    /// The backend for chains named after `name`.
    pub fn new(name: &str) -> Self {
        Self {
            prefix: name.to_uppercase(),
            jumps_done: AtomicBool::new(false),
        }
    }

    fn chains(&self) -> [String; 3] {
        let p = &self.prefix;
        [format!("{p}-PRE"), format!("{p}-POST"), format!("{p}-FWD")]
    }

    /// The jumps from built-in chains: (table, chain, match before the jump, target).
    fn jumps(&self) -> Vec<(&'static str, &'static str, Vec<String>)> {
        let [pre, post, fwd] = self.chains();
        let local = |c: &str| {
            vec![
                "-m".into(),
                "addrtype".into(),
                "--dst-type".into(),
                "LOCAL".into(),
                "-j".into(),
                c.to_string(),
            ]
        };
        vec![
            ("nat", "PREROUTING", local(&pre)),
            ("nat", "OUTPUT", local(&pre)),
            ("nat", "POSTROUTING", vec!["-j".into(), post]),
            ("filter", "FORWARD", vec!["-j".into(), fwd]),
        ]
    }

    /// The iptables-restore input that makes Berth's chains hold exactly `rules`.
    pub fn render(&self, rules: &Ruleset) -> String {
        let [pre, post, fwd] = self.chains();
        let mut s = String::new();
        let _ = writeln!(s, "*nat\n:{pre} - [0:0]\n:{post} - [0:0]");
        for p in &rules.ports {
            let daddr = p
                .host_ip
                .map(|ip| format!(" -d {ip}/32"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "-A {pre}{daddr} -p {proto} -m {proto} --dport {hp} -j DNAT --to-destination {cip}:{cp}",
                proto = p.proto.as_str(),
                hp = p.host_port,
                cip = p.container_ip,
                cp = p.container_port
            );
        }
        for n in &rules.networks {
            let (br, sub) = (&n.bridge, n.subnet);
            if n.masquerade && !n.internal {
                let _ = writeln!(s, "-A {post} -s {sub} ! -o {br} -j MASQUERADE");
            }
            let _ = writeln!(
                s,
                "-A {post} -o {br} -m addrtype --src-type LOCAL -j MASQUERADE"
            );
            let _ = writeln!(
                s,
                "-A {post} -s {sub} -o {br} -m conntrack --ctstate DNAT -j MASQUERADE"
            );
        }
        s.push_str("COMMIT\n");
        let _ = writeln!(s, "*filter\n:{fwd} - [0:0]");
        for n in &rules.networks {
            let br = &n.bridge;
            if !n.icc {
                let _ = writeln!(s, "-A {fwd} -i {br} -o {br} -j DROP");
            }
            if n.internal {
                let _ = writeln!(s, "-A {fwd} -i {br} ! -o {br} -j DROP");
                let _ = writeln!(s, "-A {fwd} -o {br} ! -i {br} -j DROP");
            }
            for other in rules.networks.iter().filter(|o| o.bridge != *br) {
                let _ = writeln!(s, "-A {fwd} -i {br} -o {} -j DROP", other.bridge);
            }
        }
        // Accepted here so that a FORWARD policy of DROP (set by a dockerd) does not cut
        // Berth's networks off; what must be dropped was dropped above.
        for n in &rules.networks {
            let _ = writeln!(s, "-A {fwd} -i {} -j ACCEPT", n.bridge);
            let _ = writeln!(s, "-A {fwd} -o {} -j ACCEPT", n.bridge);
        }
        s.push_str("COMMIT\n");
        s
    }

    fn ensure_jumps(&self) -> Result<()> {
        if self.jumps_done.load(Ordering::Acquire) {
            return Ok(());
        }
        for (table, chain, rule) in self.jumps() {
            let mut check = vec!["-w", "-t", table, "-C", chain];
            check.extend(rule.iter().map(String::as_str));
            if !run("iptables", &check)? {
                let mut add = vec!["-w", "-t", table, "-I", chain, "1"];
                add.extend(rule.iter().map(String::as_str));
                if !run("iptables", &add)? {
                    return Err(super::Error::Refused {
                        tool: "iptables",
                        stderr: format!(
                            "could not add the jump to {} in {table}/{chain}",
                            rule.last().map(String::as_str).unwrap_or("")
                        ),
                    });
                }
            }
        }
        self.jumps_done.store(true, Ordering::Release);
        Ok(())
    }
}

impl Firewall for Iptables {
    fn name(&self) -> &'static str {
        "iptables"
    }

    fn apply(&self, rules: &Ruleset) -> Result<()> {
        // The chains must exist before the jumps to them.
        run_with_input(
            "iptables-restore",
            &["-w", "--noflush"],
            &self.render(rules),
        )?;
        self.ensure_jumps()
    }

    fn remove(&self) -> Result<()> {
        for (table, chain, rule) in self.jumps() {
            let mut del = vec!["-w", "-t", table, "-D", chain];
            del.extend(rule.iter().map(String::as_str));
            // Delete every copy there may be; stop when there is none left.
            for _ in 0..8 {
                if !run("iptables", &del)? {
                    break;
                }
            }
        }
        let [pre, post, fwd] = self.chains();
        for (table, chain) in [("nat", pre), ("nat", post), ("filter", fwd)] {
            let _ = run("iptables", &["-w", "-t", table, "-F", &chain])?;
            let _ = run("iptables", &["-w", "-t", table, "-X", &chain])?;
        }
        self.jumps_done.store(false, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_own_chains_only() {
        let fw = Iptables::new("berth-test");
        let text = fw.render(&super::super::sample());
        assert!(text.starts_with("*nat\n:BERTH-TEST-PRE - [0:0]\n:BERTH-TEST-POST - [0:0]\n"));
        // No built-in chain is declared (which would flush it).
        for builtin in [
            ":PREROUTING",
            ":POSTROUTING",
            ":FORWARD",
            ":OUTPUT",
            ":INPUT",
        ] {
            assert!(!text.contains(builtin), "{builtin}");
        }
        assert!(text.contains(
            "-A BERTH-TEST-PRE -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"
        ));
        assert!(text.contains("-A BERTH-TEST-PRE -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.5.0.3:53"));
        assert!(text.contains("-A BERTH-TEST-FWD -i berth0 -o br-0123456789ab -j DROP"));
        assert!(text.contains("-A BERTH-TEST-FWD -i br-0123456789ab -o br-0123456789ab -j DROP"));
        let jumps = fw.jumps();
        assert_eq!(jumps.len(), 4);
        assert!(jumps
            .iter()
            .all(|(_, _, r)| r.last().unwrap().starts_with("BERTH-TEST-")));
    }
}
