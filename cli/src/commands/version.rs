//! `berth version`: the client's and berthd's versions.

use crate::client::{self, Client};
use crate::error::Result;
use crate::output::Template;

/// Flags of `berth version`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format the output with a template (`{{.Server.Version}}`, `{{json .}}`).
    #[arg(short = 'f', long)]
    format: Option<String>,
}

/// Runs `berth version`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let client_info = serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": client::API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": std::env::consts::ARCH,
    });
    // The client half prints even when berthd is down, as docker's does.
    let server = client.get_json::<serde_json::Value>("/version").await;
    if let Some(f) = args.format {
        let t = Template::parse(&f)?;
        let v = serde_json::json!({
            "Client": client_info,
            "Server": server.as_ref().ok(),
        });
        println!("{}", t.render(&v));
        return server.map(|_| 0);
    }
    println!("Client:");
    println!(
        " Version:           {}",
        client_info["Version"].as_str().unwrap_or("")
    );
    println!(" API version:       {}", client::API_VERSION);
    println!(
        " OS/Arch:           {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let server = server?;
    let s = |k: &str| server[k].as_str().unwrap_or("").to_string();
    println!();
    println!(
        "Server: {}",
        server["Platform"]["Name"].as_str().unwrap_or("berthd")
    );
    println!(" Engine:");
    println!("  Version:          {}", s("Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s("ApiVersion"),
        s("MinAPIVersion")
    );
    println!("  OS/Arch:          {}/{}", s("Os"), s("Arch"));
    println!("  Kernel Version:   {}", s("KernelVersion"));
    Ok(0)
}
