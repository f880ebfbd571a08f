//! `berth exec`: execute a command in a running container, as `docker exec`: the exec
//! created, then started over a hijacked connection (or detached with `-d`); its exit
//! code is ours (126 when it cannot be invoked, 127 when it is not found).

use crate::batch::seg;
use crate::client::Client;
use crate::container_options::{self, env_list};
use crate::error::{Error, Result};
use crate::streams::{self, Ended, Session};
use berth_api::exec::{ExecConfig, ExecInspect, ExecStartCheck, IdResponse};
use std::io::IsTerminal;
use std::time::Duration;

/// Flags of `berth exec`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Detached mode: run command in the background.
    #[arg(short = 'd', long)]
    detach: bool,
    /// Override the key sequence for detaching a container.
    #[arg(long = "detach-keys")]
    detach_keys: Option<String>,
    /// Set environment variables.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Give extended privileges to the command.
    #[arg(long)]
    privileged: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// The container, then the command and its arguments.
    #[arg(value_name = "CONTAINER COMMAND [ARG...]", required = true,
          trailing_var_arg = true, num_args = 1..)]
    rest: Vec<String>,
}

/// The exit code docker's CLI gives when an exec cannot start: 127 for a command not
/// found, 126 when it cannot be invoked (or another runtime refusal), else 1.
fn exec_failure_code(message: &str) -> i32 {
    match container_options::start_failure_code(message) {
        125 if message.contains("exec failed") || message.contains("OCI runtime") => 126,
        125 => 1,
        code => code,
    }
}

/// Runs `berth exec`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let (container, cmd) = match args.rest.split_first() {
        Some((c, cmd)) if !cmd.is_empty() => (c.clone(), cmd.to_vec()),
        _ => return Err(Error::Usage(crate::args::count_message("exec"))),
    };
    if args.tty && args.interactive && !args.detach && !std::io::stdin().is_terminal() {
        return Err(Error::Usage("the input device is not a TTY".into()));
    }
    let configured_keys = args.detach_keys.clone().or_else(crate::config::detach_keys);
    let detach_keys = streams::detach_keys(configured_keys.as_deref())?;
    let attach = !args.detach;
    let body = ExecConfig {
        attach_stdin: args.interactive && attach,
        attach_stdout: attach,
        attach_stderr: attach,
        tty: args.tty,
        privileged: args.privileged,
        cmd: Some(cmd),
        env: Some(env_list(&args.env, &args.env_file)?),
        working_dir: args.workdir.clone().unwrap_or_default(),
        user: args.user.clone().unwrap_or_default(),
        detach_keys: configured_keys.unwrap_or_default(),
        ..Default::default()
    };
    let created: IdResponse = client
        .post_typed(&format!("/containers/{}/exec", seg(&container)), &body)
        .await?;
    let exec_id = created.id;
    if exec_id.is_empty() {
        return Err(Error::BadResponse("no Id in the exec create answer".into()));
    }
    let start = serde_json::to_value(ExecStartCheck {
        detach: args.detach,
        tty: args.tty,
        console_size: None,
    })
    .map_err(|e| Error::BadResponse(format!("encoding the exec start: {e}")))?;
    let start_path = format!("/exec/{}/start", seg(&exec_id));
    if args.detach {
        return match client.post(&start_path, Some(&start)).await {
            Ok(()) => Ok(0),
            Err(e) => {
                eprintln!("berth: {e}");
                Ok(exec_failure_code(&e.to_string()))
            }
        };
    }
    let io = match client.hijack(&start_path, Some(&start)).await {
        Ok(io) => io,
        Err(e) => {
            eprintln!("berth: {e}");
            return Ok(exec_failure_code(&e.to_string()));
        }
    };
    let session = Session {
        tty: args.tty,
        stdin: args.interactive,
        stdout: true,
        stderr: true,
        detach_keys,
        raw: args.tty && args.interactive,
    };
    let resizer = (args.tty && std::io::stdout().is_terminal())
        .then(|| streams::spawn_resizer(client.clone(), format!("/exec/{}", seg(&exec_id))));
    let ended = streams::pump(io, session).await;
    if let Some(r) = resizer {
        r.abort();
    }
    if ended? == Ended::Detached {
        return Ok(0);
    }
    exit_code(client, &exec_id).await
}

/// The exec's exit code once berthd has it (the stream can end a moment before).
async fn exit_code(client: &Client, exec_id: &str) -> Result<i32> {
    let path = format!("/exec/{}/json", seg(exec_id));
    for _ in 0..100 {
        let v: ExecInspect = client.get_json(&path).await?;
        if !v.running {
            return Ok(v.exit_code.unwrap_or(0) as i32);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::BadResponse(format!(
        "exec {exec_id} still running after its output ended"
    )))
}

/// The same exit codes as docker's CLI for exec start failures.
#[cfg(test)]
mod tests {
    #[test]
    fn exec_failures_map_to_docker_codes() {
        use super::exec_failure_code as c;
        assert_eq!(
            c("exec failed: exec \"x\": executable file not found in $PATH"),
            127
        );
        assert_eq!(c("exec failed: permission denied"), 126);
        assert_eq!(c("exec failed: something"), 126);
        assert_eq!(c("container is not running"), 1);
    }
}
