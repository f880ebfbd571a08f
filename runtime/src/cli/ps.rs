//! `berth-runtime ps [--format table|json] ID [PS_ARGS...]`: the container's processes.

use std::process::Command;

use super::GlobalOptions;
use crate::container::Container;
use crate::error::{Result, RuntimeError};

/// Output formats of `ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PsFormat {
    /// The host `ps` output, filtered to the container's processes.
    Table,
    /// A JSON array of PIDs.
    Json,
}

/// Arguments of `ps`.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: PsFormat,
    /// The container ID.
    pub id: String,
    /// Options for ps(1) (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// Keep the header and the lines whose PID column holds one of `pids`.
pub fn filter_table(output: &str, pids: &[i32]) -> Result<String> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| RuntimeError::Other("ps output has no PID column".into()))?;
    let mut out = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

pub(super) fn run(global: &GlobalOptions, args: PsArgs) -> Result<()> {
    let container = Container::load(&global.root, &args.id)?;
    let mut pids = container.state.cgroup()?.pids()?;
    pids.sort_unstable();
    match args.format {
        PsFormat::Json => {
            super::output::emit_line(serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into()))
        }
        PsFormat::Table => {
            let ps_args = if args.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                args.ps_args
            };
            let output = Command::new("ps")
                .args(&ps_args)
                .output()
                .map_err(|e| RuntimeError::Other(format!("run ps: {e}")))?;
            if !output.status.success() {
                return Err(RuntimeError::Other(format!(
                    "ps {}: {}",
                    ps_args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                )));
            }
            super::output::emit_str(filter_table(
                &String::from_utf8_lossy(&output.stdout),
                &pids,
            )?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_containers_lines_are_kept() {
        let ps = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 init\nroot 42 1 0 10:00 ? 00:00:00 sleep 30\n";
        assert_eq!(
            filter_table(ps, &[42]).unwrap(),
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 10:00 ? 00:00:00 sleep 30\n"
        );
        assert!(filter_table("NO HEADER\n", &[1]).is_err());
    }
}
