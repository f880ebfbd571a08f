//! `berth info`: system-wide information from `GET /info`, laid out as `docker info`.

use crate::client::Client;
use crate::error::Error;
use crate::error::Result;
use crate::output;
use serde_json::{json, Value};

/// Flags of `berth info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format the output using a template (`{{.ServerVersion}}`) or `json`.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// Runs `berth info`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let client_info = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "Context": "default",
        "Debug": false,
    });
    let server = client.get_json::<Value>("/info").await;
    if let Some(f) = args.format.as_deref().filter(|f| !f.is_empty()) {
        let mut v = server?;
        if let Some(m) = v.as_object_mut() {
            m.insert("ClientInfo".into(), client_info);
        }
        if f == "json" {
            println!("{v}");
            return Ok(0);
        }
        let data = crate::template::Value::typed_from_json(&v.to_string(), "system.dockerInfo")
            .map_err(Error::BadResponse)?;
        crate::format::print_object(f, "", &data).map_err(Error::Usage)?;
        return Ok(0);
    }
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(" Context:    default");
    println!(" Debug Mode: false");
    println!();
    println!("Server:");
    // The client half prints even when berthd is down, as docker's does.
    let info = server?;
    print!("{}", server_text(&info));
    if let Some(w) = info["Warnings"].as_array() {
        for w in w.iter().filter_map(Value::as_str) {
            eprintln!("{w}");
        }
    }
    Ok(0)
}

/// A number or string field as text.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The server half of `docker info`, from `GET /info`.
fn server_text(i: &Value) -> String {
    let mut out = String::new();
    let mut line = |indent: usize, label: &str, value: String| {
        out.push_str(&" ".repeat(indent));
        out.push_str(label);
        if !value.is_empty() {
            out.push(' ');
            out.push_str(&value);
        }
        out.push('\n');
    };
    line(1, "Containers:", text(&i["Containers"]));
    line(2, "Running:", text(&i["ContainersRunning"]));
    line(2, "Paused:", text(&i["ContainersPaused"]));
    line(2, "Stopped:", text(&i["ContainersStopped"]));
    line(1, "Images:", text(&i["Images"]));
    line(1, "Server Version:", text(&i["ServerVersion"]));
    line(1, "Storage Driver:", text(&i["Driver"]));
    for pair in i["DriverStatus"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (pair[0].as_str(), pair[1].as_str()) {
            line(2, &format!("{k}:"), v.to_string());
        }
    }
    line(1, "Logging Driver:", text(&i["LoggingDriver"]));
    line(1, "Cgroup Driver:", text(&i["CgroupDriver"]));
    line(1, "Cgroup Version:", text(&i["CgroupVersion"]));
    line(1, "Plugins:", String::new());
    for kind in ["Volume", "Network", "Log"] {
        let names = output::strings(&i["Plugins"][kind]);
        // docker keeps the space after the label even when the list is empty.
        out_plugins(&mut line, kind, &names.join(" "));
    }
    let swarm = text(&i["Swarm"]["LocalNodeState"]);
    if !swarm.is_empty() {
        line(1, "Swarm:", swarm);
    }
    let mut runtimes: Vec<String> = i["Runtimes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    runtimes.sort();
    // As docker: the runtime lines only when the daemon names some.
    if !runtimes.is_empty() {
        line(1, "Runtimes:", runtimes.join(" "));
        line(1, "Default Runtime:", text(&i["DefaultRuntime"]));
    }
    let security: Vec<String> = i["SecurityOptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| s.trim_start_matches("name=").to_string())
        .collect();
    if !security.is_empty() {
        line(1, "Security Options:", String::new());
        for s in security {
            line(2, &s, String::new());
        }
    }
    line(1, "Kernel Version:", text(&i["KernelVersion"]));
    line(1, "Operating System:", text(&i["OperatingSystem"]));
    line(1, "OSType:", text(&i["OSType"]));
    line(1, "Architecture:", text(&i["Architecture"]));
    line(1, "CPUs:", text(&i["NCPU"]));
    line(
        1,
        "Total Memory:",
        output::bytes_size(i["MemTotal"].as_f64().unwrap_or(0.0)),
    );
    line(1, "Name:", text(&i["Name"]));
    let id = text(&i["ID"]);
    if !id.is_empty() {
        line(1, "ID:", id);
    }
    line(1, "Docker Root Dir:", text(&i["DockerRootDir"]));
    line(1, "Debug Mode:", text(&i["Debug"]));
    line(1, "Experimental:", text(&i["ExperimentalBuild"]));
    let insecure = output::strings(&i["RegistryConfig"]["InsecureRegistryCIDRs"]);
    if !insecure.is_empty() {
        line(1, "Insecure Registries:", String::new());
        for r in insecure {
            line(2, &r, String::new());
        }
    }
    line(1, "Live Restore Enabled:", text(&i["LiveRestoreEnabled"]));
    out.push('\n');
    out
}

/// One `  Kind: names` plugin line, with docker's trailing space when there are none.
fn out_plugins(line: &mut impl FnMut(usize, &str, String), kind: &str, names: &str) {
    if names.is_empty() {
        line(2, &format!("{kind}: "), String::new());
    } else {
        line(2, &format!("{kind}:"), names.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_half_reads_like_docker_info() {
        let i = json!({
            "Containers": 3, "ContainersRunning": 1, "ContainersPaused": 0,
            "ContainersStopped": 2, "Images": 4, "ServerVersion": "0.1.0",
            "Driver": "overlay", "DriverStatus": [["Snapshots", "/d/snapshots"]],
            "CgroupDriver": "cgroupfs", "CgroupVersion": "1", "NCPU": 2,
            "MemTotal": 8_335_900_672u64, "Runtimes": {"runc": {}, "berth": {}},
        });
        let t = server_text(&i);
        assert!(t.starts_with(" Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 4\n Server Version: 0.1.0\n"), "{t}");
        assert!(t.contains("  Snapshots: /d/snapshots\n"), "{t}");
        assert!(t.contains(" Runtimes: berth runc\n"), "{t}");
        assert!(t.contains(" Total Memory: 7.763GiB\n"), "{t}");
        assert_eq!(output::bytes_size(1536.0), "1.5KiB");
    }
}
