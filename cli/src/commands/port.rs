//! `berth port`: a container's published ports, as `docker port` prints them.

use crate::batch::seg;
use crate::client::Client;
use crate::error::{Error, Result};
use serde_json::Value;

/// Flags of `berth port`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    container: String,
    /// Only this port (`80`, `80/tcp`, `53/udp`).
    private_port: Option<String>,
}

/// `HOSTIP:PORT` lines of a `NetworkSettings.Ports` entry.
fn lines(bindings: &Value) -> Vec<String> {
    bindings
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| {
                    format!(
                        "{}:{}",
                        b["HostIp"]
                            .as_str()
                            .filter(|s| !s.is_empty())
                            .unwrap_or("0.0.0.0"),
                        b["HostPort"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `berth port`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let c: Value = client
        .get_json(&format!("/containers/{}/json", seg(&args.container)))
        .await?;
    let ports = c["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    match args.private_port {
        Some(p) => {
            let key = if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            };
            let found = lines(ports.get(&key).unwrap_or(&Value::Null));
            if found.is_empty() {
                return Err(Error::Usage(format!(
                    "No public port '{key}' published for {}",
                    args.container
                )));
            }
            for l in found {
                println!("{l}");
            }
        }
        None => {
            let mut keys: Vec<&String> = ports.keys().collect();
            keys.sort_by_key(|k| {
                let (n, proto) = k.split_once('/').unwrap_or((k.as_str(), ""));
                (n.parse::<u32>().unwrap_or(0), proto.to_string())
            });
            for k in keys {
                for l in lines(&ports[k]) {
                    println!("{k} -> {l}");
                }
            }
        }
    }
    Ok(0)
}
