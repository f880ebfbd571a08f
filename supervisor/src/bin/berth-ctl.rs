//! berth-ctl: the operator's small client for berth-supervisor (as `ctr` is for
//! containerd). Each subcommand is one or two gRPC calls.

use std::path::PathBuf;

use anyhow::{bail, Context};
use berth_proto::v1 as pb;
use clap::{Parser, Subcommand};
use tokio_stream::StreamExt;

/// berth-ctl: talk to berth-supervisor.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The supervisor's socket.
    #[arg(
        long,
        short = 'a',
        default_value = "/run/berth-supervisor/supervisor.sock",
        env = "BERTH_SUPERVISOR_ADDRESS"
    )]
    address: PathBuf,
    /// Namespace.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List containers and their tasks.
    List,
    /// Create a container record from a bundle (config.json; rootfs bind-mounted).
    Create {
        /// Bundle directory.
        #[arg(long)]
        bundle: PathBuf,
        /// Runtime name (io.containerd.berth.v2, io.containerd.runc.v2).
        #[arg(long, default_value = "io.containerd.berth.v2")]
        runtime: String,
        /// OCI runtime binary.
        #[arg(long, default_value = "")]
        runtime_binary: String,
        /// Container ID.
        id: String,
    },
    /// Create and start the container's task; with --wait, wait and exit with its status.
    Start {
        /// Standard output file.
        #[arg(long, default_value = "")]
        stdout: String,
        /// Standard error file.
        #[arg(long, default_value = "")]
        stderr: String,
        /// Wait for the exit.
        #[arg(long)]
        wait: bool,
        /// Have the shim write the output to this json-file log (berth-shim only).
        #[arg(long)]
        log_path: Option<PathBuf>,
        /// Rotate the log at this many bytes (0: never).
        #[arg(long, default_value_t = 0, requires = "log_path")]
        log_max_size: u64,
        /// Log files to keep.
        #[arg(long, default_value_t = 1, requires = "log_path")]
        log_max_file: u32,
        /// Container ID.
        id: String,
    },
    /// Run a process in a running task; waits and exits with its status.
    Exec {
        /// Exec ID.
        #[arg(long)]
        exec_id: String,
        /// Standard output file.
        #[arg(long, default_value = "")]
        stdout: String,
        /// Container ID.
        id: String,
        /// Command.
        #[arg(trailing_var_arg = true, required = true)]
        args: Vec<String>,
    },
    /// Signal a task.
    Kill {
        /// Signal number.
        #[arg(long, short = 's', default_value_t = 15)]
        signal: u32,
        /// Every process of the container.
        #[arg(long)]
        all: bool,
        /// Container ID.
        id: String,
    },
    /// Delete the task (if stopped) and the container record.
    Delete {
        /// Container ID.
        id: String,
    },
    /// Print a task's state.
    State {
        /// Container ID.
        id: String,
    },
    /// Print events as they happen.
    Events {
        /// Topic prefixes.
        #[arg(long)]
        topic: Vec<String>,
    },
    /// Print the supervisor's version.
    Version,
}

fn status_name(s: i32) -> &'static str {
    pb::Status::try_from(s)
        .map(|s| s.as_str_name())
        .unwrap_or("STATUS_UNKNOWN")
        .trim_start_matches("STATUS_")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-ctl: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let ch = berth_proto::unix_channel(&cli.address);
    let ns = cli.namespace.clone();
    let mut tasks = pb::tasks_client::TasksClient::new(ch.clone());
    let mut containers = pb::containers_client::ContainersClient::new(ch.clone());
    match cli.cmd {
        Cmd::List => {
            let cs = containers
                .list(pb::ListContainersRequest {
                    namespace: ns.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let ts = tasks
                .list(pb::ListTasksRequest {
                    namespace: ns.clone(),
                })
                .await?
                .into_inner();
            println!("{:<24} {:<24} {:>8} STATUS", "CONTAINER", "RUNTIME", "PID");
            for c in cs.containers {
                let t = ts.tasks.iter().find(|t| t.container_id == c.id);
                let rt = c.runtime.map(|r| r.name).unwrap_or_default();
                match t {
                    Some(t) => println!(
                        "{:<24} {:<24} {:>8} {}",
                        c.id,
                        rt,
                        t.pid,
                        status_name(t.status)
                    ),
                    None => println!("{:<24} {:<24} {:>8} -", c.id, rt, "-"),
                }
            }
        }
        Cmd::Create {
            bundle,
            runtime,
            runtime_binary,
            id,
        } => {
            let spec = std::fs::read(bundle.join("config.json"))
                .with_context(|| format!("{}/config.json", bundle.display()))?;
            let v: serde_json::Value = serde_json::from_slice(&spec).context("config.json")?;
            let root = v["root"]["path"].as_str().unwrap_or("rootfs");
            let rootfs = if root.starts_with('/') {
                PathBuf::from(root)
            } else {
                bundle.join(root)
            };
            let rootfs = std::fs::canonicalize(&rootfs)
                .with_context(|| format!("rootfs {}", rootfs.display()))?;
            let c = pb::Container {
                id,
                spec,
                rootfs: vec![pb::Mount {
                    r#type: "bind".into(),
                    source: rootfs.display().to_string(),
                    target: String::new(),
                    options: vec!["rbind".into(), "rw".into()],
                }],
                runtime: Some(pb::Runtime {
                    name: runtime,
                    binary_name: runtime_binary,
                    ..Default::default()
                }),
                ..Default::default()
            };
            containers
                .create(pb::CreateContainerRequest {
                    namespace: ns,
                    container: Some(c),
                })
                .await?;
        }
        Cmd::Start {
            stdout,
            stderr,
            wait,
            log_path,
            log_max_size,
            log_max_file,
            id,
        } => {
            let log = match log_path {
                Some(p) => Some(pb::LogConfig {
                    path: std::path::absolute(&p)
                        .with_context(|| format!("--log-path {}", p.display()))?
                        .display()
                        .to_string(),
                    max_size: log_max_size,
                    max_file: log_max_file,
                }),
                None => None,
            };
            let r = tasks
                .create(pb::CreateTaskRequest {
                    namespace: ns.clone(),
                    container_id: id.clone(),
                    stdout,
                    stderr,
                    log,
                    ..Default::default()
                })
                .await?
                .into_inner();
            tasks
                .start(pb::StartRequest {
                    namespace: ns.clone(),
                    container_id: id.clone(),
                    exec_id: String::new(),
                })
                .await?;
            if wait {
                let w = tasks
                    .wait(pb::WaitRequest {
                        namespace: ns,
                        container_id: id,
                        exec_id: String::new(),
                    })
                    .await?
                    .into_inner();
                std::process::exit(w.exit_status as i32);
            }
            println!("{}", r.pid);
        }
        Cmd::Exec {
            exec_id,
            stdout,
            id,
            args,
        } => {
            let spec = serde_json::json!({"args": args, "cwd": "/", "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "user": {"uid": 0, "gid": 0}});
            tasks
                .exec(pb::ExecProcessRequest {
                    namespace: ns.clone(),
                    container_id: id.clone(),
                    exec_id: exec_id.clone(),
                    stdout,
                    spec: serde_json::to_vec(&spec)?,
                    ..Default::default()
                })
                .await?;
            tasks
                .start(pb::StartRequest {
                    namespace: ns.clone(),
                    container_id: id.clone(),
                    exec_id: exec_id.clone(),
                })
                .await?;
            let w = tasks
                .wait(pb::WaitRequest {
                    namespace: ns.clone(),
                    container_id: id.clone(),
                    exec_id: exec_id.clone(),
                })
                .await?
                .into_inner();
            tasks
                .delete_process(pb::DeleteProcessRequest {
                    namespace: ns,
                    container_id: id,
                    exec_id,
                })
                .await?;
            std::process::exit(w.exit_status as i32);
        }
        Cmd::Kill { signal, all, id } => {
            tasks
                .kill(pb::KillRequest {
                    namespace: ns,
                    container_id: id,
                    exec_id: String::new(),
                    signal,
                    all,
                })
                .await?;
        }
        Cmd::Delete { id } => {
            match tasks
                .delete(pb::DeleteTaskRequest {
                    namespace: ns.clone(),
                    container_id: id.clone(),
                })
                .await
            {
                Ok(_) => {}
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => bail!("{}", s.message()),
            }
            containers
                .delete(pb::DeleteContainerRequest { namespace: ns, id })
                .await?;
        }
        Cmd::State { id } => {
            let p = tasks
                .get(pb::GetRequest {
                    namespace: ns,
                    container_id: id,
                    exec_id: String::new(),
                })
                .await?
                .into_inner();
            let p = p.process.unwrap_or_default();
            println!(
                "{}",
                serde_json::json!({"id": p.container_id, "pid": p.pid, "status": status_name(p.status), "exit_status": p.exit_status})
            );
        }
        Cmd::Events { topic } => {
            let mut events = pb::events_client::EventsClient::new(ch);
            let mut s = events
                .subscribe(pb::SubscribeRequest {
                    topics: topic,
                    namespace: String::new(),
                    container_id: String::new(),
                })
                .await?
                .into_inner();
            while let Some(e) = s.next().await {
                let e = e?;
                println!(
                    "{} {} {:?}",
                    e.namespace,
                    e.topic,
                    e.event.and_then(|e| e.kind)
                );
            }
        }
        Cmd::Version => {
            let mut v = pb::version_client::VersionClient::new(ch);
            let r = v.version(()).await?.into_inner();
            println!("berth-supervisor {} ({})", r.version, r.api);
        }
    }
    Ok(())
}
