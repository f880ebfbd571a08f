//! `berth version`: the client's and berthd's versions, laid out as `docker version`
//! (the client half even when berthd is down), or through `--format`.

use crate::client::{self, Client};
use crate::error::{Error, Result};
use crate::template::{NilKind, Struct, Value};

/// Flags of `berth version`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format the output with a template (`{{.Server.Version}}`, `{{json .}}`).
    #[arg(short = 'f', long)]
    format: Option<String>,
}

/// Go's name of the machine's architecture (`GOARCH`), as docker prints it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Runs `berth version`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let context = crate::context::current(None);
    let client_info = Struct::new(
        "*system.clientVersion",
        crate::format::fields(vec![
            (
                "Platform",
                Struct::new(
                    "struct { Name string }",
                    crate::format::fields(vec![("Name", "Berth".into())]),
                )
                .into(),
            ),
            ("Version", env!("CARGO_PKG_VERSION").into()),
            ("ApiVersion", client::API_VERSION.into()),
            ("DefaultAPIVersion", client::API_VERSION.into()),
            ("GitCommit", "".into()),
            ("GoVersion", "".into()),
            ("Os", std::env::consts::OS.into()),
            ("Arch", go_arch().into()),
            ("BuildTime", "".into()),
            ("Context", context.clone().into()),
        ]),
    );
    // The client half prints even when berthd is down, as docker's does.
    let server = client.get_raw("/version").await;
    if let Some(f) = args.format.filter(|f| !f.is_empty()) {
        let f = if f == "json" {
            "{{json .}}".to_string()
        } else {
            f
        };
        let server_value = match &server {
            Ok(raw) => Value::typed_from_json(&String::from_utf8_lossy(raw), "*types.Version")
                .map_err(Error::BadResponse)?,
            Err(_) => Value::Nil(NilKind::Pointer),
        };
        let data: Value = Struct::new(
            "system.versionInfo",
            crate::format::fields(vec![
                ("Client", client_info.into()),
                ("Server", server_value),
            ]),
        )
        .into();
        // As docker: berthd's failure, if any, is the error told; else the template's.
        let printed = crate::format::print_object(&f, "version", &data);
        server?;
        printed.map_err(Error::Usage)?;
        return Ok(0);
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", client::API_VERSION);
    println!(" OS/Arch:           {}/{}", std::env::consts::OS, go_arch());
    println!(" Context:           {context}");
    let server: berth_api::system::Version = serde_json::from_slice(&server?)
        .map_err(|e| Error::BadResponse(format!("/version: {e}")))?;
    println!();
    println!(
        "Server: {}",
        if server.platform.name.is_empty() {
            "berthd"
        } else {
            &server.platform.name
        }
    );
    println!(" Engine:");
    println!("  Version:          {}", server.version);
    println!(
        "  API version:      {} (minimum version {})",
        server.api_version, server.min_api_version
    );
    println!("  OS/Arch:          {}/{}", server.os, server.arch);
    println!("  Kernel Version:   {}", server.kernel_version);
    Ok(0)
}
