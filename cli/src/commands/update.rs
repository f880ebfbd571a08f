//! `berth update`: update configuration of one or more containers (resources applied
//! to running containers at once, and the restart policy).

use crate::batch::{each, seg};
use crate::client::Client;
use crate::error::{Error, Result};
use berth_api::container::{RestartPolicy, UpdateConfig, UpdateResponse};

/// Flags of `berth update`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Memory limit (`512m`, `1g`).
    #[arg(short, long, value_parser = ram_in_bytes)]
    memory: Option<i64>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long, value_parser = swap_bytes, allow_negative_numbers = true)]
    memory_swap: Option<i64>,
    /// Number of CPUs (`1.5`).
    #[arg(long, value_parser = nano_cpus)]
    cpus: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long, allow_negative_numbers = true, value_parser = crate::args::go_int)]
    cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::go_int)]
    pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped,
    /// on-failure[:N]).
    #[arg(long)]
    restart: Option<String>,
    /// The containers.
    #[arg(required = true, value_name = "CONTAINER")]
    containers: Vec<String>,
}

/// A size as docker's `units.RAMInBytes`: a number with an optional binary unit
/// (`b`, `k`, `m`, `g`, `t`, `p`, optionally followed by `b` or `ib`).
pub fn ram_in_bytes(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let unit = unit.trim_start();
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("invalid size: '{s}'")),
    };
    Ok((n * mult) as i64)
}

fn swap_bytes(s: &str) -> std::result::Result<i64, String> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

fn nano_cpus(s: &str) -> std::result::Result<i64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid argument \"{s}\" for \"--cpus\": not a number"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("invalid argument \"{s}\" for \"--cpus\""));
    }
    Ok((v * 1e9).round() as i64)
}

/// A restart policy as the API wants it: `{"Name", "MaximumRetryCount"}`.
pub fn restart_policy(s: &str) -> Result<RestartPolicy> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => {
            let c: i64 = c
                .parse()
                .map_err(|_| Error::Usage(format!("invalid restart policy format: {s}")))?;
            (n, c)
        }
        None => (s, 0),
    };
    match name {
        "no" | "always" | "unless-stopped" if count != 0 => Err(Error::Usage(format!(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure': {s}"
        ))),
        "no" | "always" | "unless-stopped" | "on-failure" => {
            Ok(RestartPolicy {
                name: name.to_string(),
                maximum_retry_count: count,
            })
        }
        _ => Err(Error::Usage(format!("invalid restart policy format: {s}"))),
    }
}

/// Runs `berth update`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let given = args.memory.is_some()
        || args.memory_swap.is_some()
        || args.cpus.is_some()
        || args.cpu_shares.is_some()
        || args.cpuset_cpus.is_some()
        || args.pids_limit.is_some()
        || args.restart.is_some();
    if !given {
        return Err(Error::Usage(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    let mut body = UpdateConfig::default();
    let r = &mut body.resources;
    r.memory = args.memory.unwrap_or(0);
    r.memory_swap = args.memory_swap.unwrap_or(0);
    r.nano_cpus = args.cpus.unwrap_or(0);
    r.cpu_shares = args.cpu_shares.unwrap_or(0);
    r.cpuset_cpus = args.cpuset_cpus.clone().unwrap_or_default();
    r.pids_limit = args.pids_limit;
    if let Some(p) = &args.restart {
        body.restart_policy = restart_policy(p)?;
    }
    Ok(each(&args.containers, |name| {
        let body = &body;
        async move {
            let resp: UpdateResponse = client
                .post_typed(&format!("/containers/{}/update", seg(&name)), body)
                .await?;
            // docker prints the daemon's warnings before the name.
            for w in resp.warnings.iter().flatten() {
                eprintln!("{w}");
            }
            Ok(())
        }
    })
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_docker_parses_them() {
        assert_eq!(ram_in_bytes("100m"), Ok(100 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1G"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("512kb"), Ok(512 * 1024));
        assert_eq!(ram_in_bytes("1.5g"), Ok(1_610_612_736));
        assert_eq!(ram_in_bytes("4096"), Ok(4096));
        assert!(ram_in_bytes("12x").is_err());
        assert!(ram_in_bytes("m").is_err());
        assert_eq!(swap_bytes("-1"), Ok(-1));
        assert_eq!(nano_cpus("1.5"), Ok(1_500_000_000));
    }

    #[test]
    fn restart_policies() {
        assert_eq!(
            restart_policy("on-failure:3").expect("valid"),
            RestartPolicy {
                name: "on-failure".into(),
                maximum_retry_count: 3
            }
        );
        assert!(restart_policy("always:2").is_err());
        assert!(restart_policy("sometimes").is_err());
    }
}
