//! The nftables backend: one `ip` table of Berth's own, replaced whole in one `nft -f -`
//! transaction per change (create-if-missing, delete, define: atomic, and nothing of any
//! other table is read or touched).

use super::{run_with_input, Firewall, Result, Ruleset};
use std::fmt::Write;

/// nftables, table `ip <name>`.
pub struct Nftables {
    table: String,
}

impl Nftables {
    /// The backend for table `name`.
    pub fn new(name: &str) -> Self {
        Self {
            table: name.to_string(),
        }
    }

    /// The transaction that makes the table hold exactly `rules`.
    pub fn render(&self, rules: &Ruleset) -> String {
        let t = &self.table;
        let mut s = String::new();
        // `table` then `delete table` makes the delete succeed whether or not it existed.
        let _ = writeln!(s, "table ip {t}\ndelete table ip {t}\ntable ip {t} {{");
        s.push_str(
            "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n",
        );
        s.push_str(
            "  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n",
        );
        s.push_str("  chain ports {\n");
        for p in &rules.ports {
            let daddr = p
                .host_ip
                .map(|ip| format!("ip daddr {ip} "))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "    {daddr}{proto} dport {hp} dnat to {cip}:{cp}",
                proto = p.proto.as_str(),
                hp = p.host_port,
                cip = p.container_ip,
                cp = p.container_port
            );
        }
        s.push_str("  }\n");
        s.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        for n in &rules.networks {
            let (br, sub) = (&n.bridge, n.subnet);
            if n.masquerade && !n.internal {
                let _ = writeln!(s, "    ip saddr {sub} oifname != \"{br}\" masquerade");
            }
            // The host's own addresses (127.0.0.1 included, through route_localnet) and
            // containers reaching a published port of their own network (hairpin) are
            // masqueraded, so that replies come back through the host's conntrack.
            let _ = writeln!(s, "    oifname \"{br}\" fib saddr type local masquerade");
            let _ = writeln!(
                s,
                "    oifname \"{br}\" ip saddr {sub} ct status dnat masquerade"
            );
        }
        s.push_str("  }\n");
        s.push_str(
            "  chain forward {\n    type filter hook forward priority filter; policy accept;\n",
        );
        let bridges: Vec<String> = rules
            .networks
            .iter()
            .map(|n| format!("\"{}\"", n.bridge))
            .collect();
        for n in &rules.networks {
            let br = &n.bridge;
            if !n.icc {
                let _ = writeln!(s, "    iifname \"{br}\" oifname \"{br}\" drop");
            }
            if n.internal {
                let _ = writeln!(s, "    iifname \"{br}\" oifname != \"{br}\" drop");
                let _ = writeln!(s, "    oifname \"{br}\" iifname != \"{br}\" drop");
            }
            let others: Vec<&String> = bridges
                .iter()
                .filter(|b| **b != format!("\"{br}\""))
                .collect();
            if !others.is_empty() {
                let list = others
                    .iter()
                    .map(|b| b.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = writeln!(s, "    iifname \"{br}\" oifname {{ {list} }} drop");
            }
        }
        s.push_str("  }\n}\n");
        s
    }
}

impl Firewall for Nftables {
    fn name(&self) -> &'static str {
        "nftables"
    }

    fn apply(&self, rules: &Ruleset) -> Result<()> {
        run_with_input("nft", &["-f", "-"], &self.render(rules))
    }

    fn remove(&self) -> Result<()> {
        let t = &self.table;
        run_with_input(
            "nft",
            &["-f", "-"],
            &format!("table ip {t}\ndelete table ip {t}\n"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_own_table_only() {
        let text = Nftables::new("berth-test").render(&super::super::sample());
        assert!(text.starts_with("table ip berth-test\ndelete table ip berth-test\n"));
        assert!(!text.contains("flush ruleset"));
        assert!(text.contains("tcp dport 8080 dnat to 172.17.0.2:80"));
        assert!(text.contains("ip daddr 127.0.0.1 udp dport 5353 dnat to 10.5.0.3:53"));
        assert!(text.contains("ip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade"));
        // Internal: no masquerade out, drops both ways; icc=false drops inside.
        assert!(!text.contains("ip saddr 10.5.0.0/24 oifname !="));
        assert!(text.contains("iifname \"br-0123456789ab\" oifname \"br-0123456789ab\" drop"));
        assert!(text.contains("iifname \"br-0123456789ab\" oifname != \"br-0123456789ab\" drop"));
        // Isolation between the two bridges, both directions.
        assert!(text.contains("iifname \"berth0\" oifname { \"br-0123456789ab\" } drop"));
        assert!(text.contains("iifname \"br-0123456789ab\" oifname { \"berth0\" } drop"));
    }
}
