//! `berth context`: ls, use, create, rm, inspect and show over the docker CLI's own
//! context store (see `crate::context`), so a context made by either CLI works in both.
//! These need no berthd.

use crate::config::ConfigFile;
use crate::context::{self, Endpoint, Meta, DEFAULT};
use crate::error::{Error, Result};
use crate::format::{self, fields, Spec};
use crate::template::Value;
use std::collections::BTreeMap;

/// Flags of `berth context`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// List contexts
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Set the current context
    Use(UseArgs),
    /// Create a context
    Create(CreateArgs),
    /// Remove one or more contexts
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Display detailed information on one or more contexts
    Inspect(InspectArgs),
    /// Print the name of the current context
    Show,
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// Format output: `table`, `table TEMPLATE`, `json`, or a template.
    #[arg(long)]
    format: Option<String>,
    /// Only show context names.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, clap::Args)]
struct UseArgs {
    /// The context.
    #[arg(value_name = "CONTEXT")]
    name: String,
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Description of the context.
    #[arg(long)]
    description: Option<String>,
    /// Set the docker endpoint (`host=unix:///path`, `skip-tls-verify=true`).
    #[arg(long = "docker", value_name = "ENDPOINT")]
    docker: Option<String>,
    /// Create a context from an existing one.
    #[arg(long = "from", value_name = "CONTEXT")]
    from: Option<String>,
    /// The context.
    #[arg(value_name = "CONTEXT")]
    name: String,
}

#[derive(Debug, clap::Args)]
struct RmArgs {
    /// Force the removal of a context in use.
    #[arg(short, long)]
    force: bool,
    /// The contexts.
    #[arg(required = true, value_name = "CONTEXT")]
    names: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Format the output using a template.
    #[arg(short, long)]
    format: Option<String>,
    /// The contexts (the current one if none).
    #[arg(value_name = "CONTEXT")]
    names: Vec<String>,
}

/// docker's context list row.
const SPEC: Spec = Spec {
    type_name: "*formatter.ClientContext",
    default_table:
        "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}",
    raw: "name: {{.Name}}\ndescription: {{.Description}}\n",
    headers: &[
        ("Name", "NAME"),
        ("Description", "DESCRIPTION"),
        ("DockerEndpoint", "DOCKER ENDPOINT"),
        // No header for Current: the default table's `{{if .Current}}` is false on the
        // header row, as docker's.
        ("Error", "ERROR"),
        ("ContextType", "CONTEXT TYPE"),
    ],
};

/// Runs `berth context`; its exit code (no berthd needed).
pub fn run(args: Args) -> Result<i32> {
    match args.command {
        Sub::Ls(a) => ls(a),
        Sub::Use(a) => use_context(&a.name),
        Sub::Create(a) => create(a),
        Sub::Rm(a) => rm(a),
        Sub::Inspect(a) => inspect(a),
        Sub::Show => {
            println!("{}", context::current(None));
            Ok(0)
        }
    }
}

fn ls(a: LsArgs) -> Result<i32> {
    let current = context::current(None);
    let mut all = vec![context::default_meta()];
    all.extend(context::list()?);
    all.sort_by(|x, y| x.name.cmp(&y.name));
    if a.quiet {
        for m in &all {
            println!("{}", m.name);
        }
        return Ok(0);
    }
    let rows: Vec<_> = all
        .iter()
        .map(|m| {
            format::row(
                &SPEC,
                fields(vec![
                    ("Current", Value::Bool(m.name == current)),
                    ("Description", m.description().into()),
                    ("DockerEndpoint", m.host().into()),
                    ("Error", "".into()),
                    ("Name", m.name.clone().into()),
                ]),
                Vec::new(),
            )
        })
        .collect();
    format::print(a.format.as_deref(), &SPEC, &rows)?;
    if current != DEFAULT && context::env_host().is_some() {
        eprintln!("Warning: DOCKER_HOST environment variable overrides the active context. To use a context, either set the global --context flag, or unset DOCKER_HOST environment variable.");
    }
    Ok(0)
}

fn use_context(name: &str) -> Result<i32> {
    // It must exist (the default always does).
    context::load(name)?;
    let mut cfg = ConfigFile::load()?;
    cfg.current_context = if name == DEFAULT {
        String::new()
    } else {
        name.to_string()
    };
    cfg.save()?;
    println!("{name}");
    eprintln!("Current context is now \"{name}\"");
    Ok(0)
}

fn create(a: CreateArgs) -> Result<i32> {
    if a.name == DEFAULT {
        return Err(Error::Usage(
            "\"default\" is a reserved context name".into(),
        ));
    }
    if !context::valid_name(&a.name) {
        return Err(Error::Usage(format!(
            "context name \"{}\" is invalid, names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\"",
            a.name
        )));
    }
    if context::meta_dir(&a.name).join("meta.json").exists() {
        return Err(Error::Usage(format!(
            "context \"{}\" already exists",
            a.name
        )));
    }
    let mut endpoint = match &a.from {
        Some(from) => context::load(from)?
            .endpoints
            .get("docker")
            .cloned()
            .unwrap_or_default(),
        None if a.docker.is_none() => context::load(&context::current(None))?
            .endpoints
            .get("docker")
            .cloned()
            .unwrap_or_default(),
        None => Endpoint::default(),
    };
    // The files named by ca=, cert=, key=, kept in the context's TLS directory.
    let mut tls_files: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(spec) = &a.docker {
        for field in spec.split(',').filter(|f| !f.is_empty()) {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| Error::Usage(format!("unable to parse docker host `{field}`")))?;
            match k {
                "host" => endpoint.host = v.to_string(),
                "skip-tls-verify" => {
                    endpoint.skip_tls_verify = crate::args::go_bool(v).map_err(Error::Usage)?
                }
                "ca" | "cert" | "key" => {
                    let bytes = std::fs::read(v).map_err(|e| {
                        Error::Usage(format!("open {v}: {}", crate::error::os_text(&e)))
                    })?;
                    tls_files.push((format!("{k}.pem"), bytes));
                }
                other => return Err(Error::Usage(format!("unrecognized config key: {other}"))),
            }
        }
    }
    let mut metadata = BTreeMap::new();
    if let Some(d) = &a.description {
        metadata.insert(
            "Description".to_string(),
            serde_json::Value::from(d.as_str()),
        );
    }
    context::store(&Meta {
        name: a.name.clone(),
        metadata,
        endpoints: BTreeMap::from([("docker".to_string(), endpoint)]),
    })?;
    if !tls_files.is_empty() {
        if let Err(e) = store_tls(&a.name, &tls_files) {
            // Nothing half-made: the context goes with its files.
            let _ = context::remove(&a.name);
            return Err(e);
        }
    }
    println!("{}", a.name);
    eprintln!("Successfully created context \"{}\"", a.name);
    Ok(0)
}

/// Writes a context's TLS files as docker's store does (directory 0700, files 0600).
fn store_tls(name: &str, files: &[(String, Vec<u8>)]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = context::tls_dir(name);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    for (file, bytes) in files {
        let p = dir.join(file);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .and_then(|mut f| f.write_all(bytes))
            .map_err(|e| Error::io(format!("writing {}", p.display()), e))?;
    }
    Ok(())
}

fn rm(a: RmArgs) -> Result<i32> {
    let current = context::current(None);
    let mut errors = Vec::new();
    for name in &a.names {
        if name == DEFAULT {
            errors.push("default: context \"default\" cannot be removed".to_string());
            continue;
        }
        if name == &current && !a.force {
            errors.push(format!(
                "context \"{name}\" is in use, set -f flag to force remove"
            ));
            continue;
        }
        if let Err(e) = context::load(name) {
            errors.push(e.to_string());
            continue;
        }
        context::remove(name)?;
        if name == &current {
            let mut cfg = ConfigFile::load()?;
            cfg.current_context.clear();
            cfg.save()?;
        }
        println!("{name}");
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Error::Usage(errors.join("\n")))
    }
}

fn inspect(a: InspectArgs) -> Result<i32> {
    let names = if a.names.is_empty() {
        vec![context::current(None)]
    } else {
        a.names.clone()
    };
    let mut found = Vec::new();
    for n in &names {
        let m = context::load(n)?;
        let storage = if n == DEFAULT {
            (
                "\u{3c}IN MEMORY\u{3e}".to_string(),
                "\u{3c}IN MEMORY\u{3e}".to_string(),
            )
        } else {
            (
                context::meta_dir(n).display().to_string(),
                crate::config::dir()
                    .join("contexts/tls")
                    .join(context::meta_dir(n).file_name().unwrap_or_default())
                    .display()
                    .to_string(),
            )
        };
        let mut v =
            serde_json::to_value(&m).map_err(|e| Error::Usage(format!("encoding context: {e}")))?;
        if let Some(o) = v.as_object_mut() {
            if n == DEFAULT {
                o.insert("Metadata".into(), serde_json::json!({}));
            }
            // The names of the context's TLS files, as docker lists them.
            let files: Vec<&str> = ["ca.pem", "cert.pem", "key.pem"]
                .into_iter()
                .filter(|f| n != DEFAULT && context::tls_dir(n).join(f).exists())
                .collect();
            let material = if files.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::json!({ "docker": files })
            };
            o.insert("TLSMaterial".into(), material);
            o.insert(
                "Storage".into(),
                serde_json::json!({"MetadataPath": storage.0, "TLSPath": storage.1}),
            );
        }
        found.push(v);
    }
    match a.format.as_deref() {
        None | Some("") => {
            let text = serde_json::to_string(&found)
                .map_err(|e| Error::Usage(format!("encoding: {e}")))?;
            println!(
                "{}",
                crate::commands::inspect::indent_json(
                    &text.replace('<', "\\u003c").replace('>', "\\u003e")
                )
            );
        }
        Some(f) => {
            for v in &found {
                let text = v.to_string();
                let data =
                    Value::typed_from_json(&text, "store.Metadata").map_err(Error::BadResponse)?;
                let out = format::object(f, "", &data, false)
                    .map_err(|e| Error::Usage(format!("template parsing error: {e}")))?;
                println!("{out}");
            }
        }
    }
    Ok(0)
}
