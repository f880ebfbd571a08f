//! `berth-runtime exec [OPTIONS] ID [COMMAND [ARG...]]`: run another process in a running
//! container, with runc's flags. `--process FILE` gives the whole OCI process instead.

use std::path::PathBuf;

use oci_spec::runtime::{Capability, Process, User};

use super::foreground::{self, Console};
use super::GlobalOptions;
use crate::container::{write_atomically, Container, Status};
use crate::error::{Result, RuntimeError};
use crate::process::tenant::{spawn, TenantRequest};

/// Arguments of `exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Unix socket that receives the pty master when a terminal is asked for.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=value), repeatable.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group IDs, repeatable.
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// A JSON file with the OCI process to run (the other process flags are then ignored).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Return once the process has started.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's PID to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Add a capability (CAP_NAME) to the process's bounding, effective and permitted sets.
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass N extra descriptors (3 .. 3+N-1) to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// The container ID.
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The process to run: the `--process` file, or the container's process with the flags
/// applied on top.
fn build_process(container: &Container, args: &ExecArgs) -> Result<Process> {
    if let Some(path) = &args.process {
        let data = std::fs::read(path).map_err(|source| RuntimeError::ReadConfig {
            path: path.clone(),
            source,
        })?;
        let mut process: Process =
            crate::spec::parse_json(path, &data, crate::spec::CapabilitiesAt::Process)?;
        if process.apparmor_profile().is_none() {
            // As runc: a process that names no profile gets the container's.
            process.set_apparmor_profile(
                container
                    .state
                    .spec
                    .process()
                    .as_ref()
                    .and_then(|p| p.apparmor_profile().clone()),
            );
        }
        return Ok(process);
    }
    if args.command.is_empty() {
        return Err(RuntimeError::InvalidConfig(
            "exec needs a command (or --process FILE)".into(),
        ));
    }
    let mut process = container.state.spec.process().clone().unwrap_or_default();
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    process.set_console_size(None);
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.clone());
    }
    if !args.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        for pair in &args.env {
            let key = pair.split_once('=').map(|(k, _)| k).unwrap_or(pair);
            env.retain(|existing| existing.split_once('=').map(|(k, _)| k) != Some(key));
            env.push(pair.clone());
        }
        process.set_env(Some(env));
    }
    if let Some(user) = &args.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let parse = |s: &str| {
            s.parse::<u32>().map_err(|_| {
                RuntimeError::InvalidConfig(format!("--user {user:?}: use UID[:GID] numbers"))
            })
        };
        let mut new_user = User::default();
        new_user.set_uid(parse(uid)?);
        new_user.set_gid(gid.map(parse).transpose()?.unwrap_or(0));
        new_user.set_umask(process.user().umask());
        new_user.set_additional_gids(process.user().additional_gids().clone());
        process.set_user(new_user);
    }
    if !args.additional_gids.is_empty() {
        let mut user = process.user().clone();
        user.set_additional_gids(Some(args.additional_gids.clone()));
        process.set_user(user);
    }
    if !args.cap.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        for name in &args.cap {
            let cap: Capability = name
                .trim_start_matches("CAP_")
                .parse()
                .map_err(|_| RuntimeError::InvalidConfig(format!("unknown capability {name:?}")))?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(cap);
                Some(set)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
        }
        process.set_capabilities(Some(caps));
    }
    if args.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    Ok(process)
}

pub(super) fn run(global: &GlobalOptions, args: ExecArgs) -> Result<i32> {
    let container = Container::load(&global.root, &args.id)?;
    container.require("exec", &[Status::Created, Status::Running])?;
    let process = build_process(&container, &args)?;
    let terminal = process.terminal().unwrap_or(false);
    let mut console = Console::new(terminal, args.console_socket.as_deref(), args.detach)?;
    let held = if args.detach {
        None
    } else {
        Some(foreground::hold_signals()?)
    };
    let socket = console.socket.take();
    let pid = spawn(&TenantRequest {
        container: &container,
        process: &process,
        console: socket.as_ref(),
        preserve_fds: args.preserve_fds,
    })?;
    drop(socket);
    if let Some(path) = &args.pid_file {
        write_atomically(path, &pid.to_string())?;
    }
    let master = console.take_master()?;
    match held {
        None => Ok(0),
        Some(held) => foreground::wait(pid, held, master),
    }
}
