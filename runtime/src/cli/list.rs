//! `berth-runtime list [--format table|json] [--quiet]`

use super::GlobalOptions;
use crate::container::{Container, OciState};
use crate::error::{Result, RuntimeError};

/// Output formats of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// Aligned columns, as runc's.
    Table,
    /// A JSON array of states.
    Json,
}

/// Arguments of `list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// Print only IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Render states as runc's table: columns padded to their widest cell plus three spaces.
pub fn table(states: &[OciState]) -> String {
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    let rows: Vec<[String; 6]> = std::iter::once(header)
        .chain(states.iter().map(|s| {
            [
                s.id.clone(),
                s.pid.to_string(),
                s.status.clone(),
                s.bundle.display().to_string(),
                s.created.clone(),
                s.owner.clone(),
            ]
        }))
        .collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}", w = w + 3))
            .collect();
        out.push_str(line.join("").trim_end());
        out.push('\n');
    }
    out
}

pub(super) fn run(global: &GlobalOptions, args: ListArgs) -> Result<()> {
    let mut states = Vec::new();
    for id in Container::list_ids(&global.root)? {
        // A container deleted while we list is simply not shown.
        if let Ok(container) = Container::load(&global.root, &id) {
            states.push(container.oci_state());
        }
    }
    if args.quiet {
        states
            .iter()
            .for_each(|s| super::output::emit_line(s.id.clone()));
        return Ok(());
    }
    match args.format {
        ListFormat::Table => super::output::emit_str(table(&states)),
        ListFormat::Json => super::output::emit_line(
            serde_json::to_string(&states)
                .map_err(|e| RuntimeError::Other(format!("serialize list: {e}")))?,
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_line_up() {
        let state = OciState {
            oci_version: "1.0.2".into(),
            id: "web".into(),
            pid: 4242,
            status: "running".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: "root".into(),
            annotations: Default::default(),
        };
        let text = table(&[state]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID    PID    STATUS    BUNDLE   CREATED                OWNER"
        );
        assert_eq!(
            lines[1],
            "web   4242   running   /b       2026-01-01T00:00:00Z   root"
        );
    }
}
