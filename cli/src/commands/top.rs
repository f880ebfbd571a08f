//! `berth top`: display the running processes of a container.

use crate::batch::seg;
use crate::client::{query, Client};
use crate::error::Result;
use serde_json::Value;

/// Flags of `berth top`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container.
    #[arg(value_name = "CONTAINER")]
    container: String,
    /// Options for ps (`-o pid,comm`), as docker passes them on.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps OPTIONS"
    )]
    ps_args: Vec<String>,
}

/// Runs `berth top`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let q = if args.ps_args.is_empty() {
        String::new()
    } else {
        query(&[("ps_args", args.ps_args.join(" "))])
    };
    let v: Value = client
        .get_json(&format!("/containers/{}/top{q}", seg(&args.container)))
        .await?;
    let cells = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        c.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| c.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut rows = vec![cells(&v["Titles"])];
    if let Some(procs) = v["Processes"].as_array() {
        rows.extend(procs.iter().map(cells));
    }
    print!("{}", tabwrite(&rows, 20, 3));
    Ok(0)
}

/// Rows laid out as Go's tabwriter with `minwidth` and `padding` (docker top uses 20
/// and 3): every column but the last is as wide as its widest cell plus the padding,
/// and never narrower than `minwidth`.
pub fn tabwrite(rows: &[Vec<String>], minwidth: usize, padding: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![minwidth; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                widths[i] = widths[i].max(cell.chars().count() + padding);
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::tabwrite;

    #[test]
    fn columns_are_at_least_minwidth_and_padded() {
        let rows = vec![
            vec!["UID".to_string(), "PID".to_string(), "CMD".to_string()],
            vec![
                "root".to_string(),
                "123456789012345678".to_string(),
                "sleep 1000".to_string(),
            ],
        ];
        let out = tabwrite(&rows, 20, 3);
        let want = format!(
            "UID{}PID{}CMD\nroot{}123456789012345678{}sleep 1000\n",
            " ".repeat(17),
            " ".repeat(18),
            " ".repeat(16),
            "   "
        );
        assert_eq!(out, want);
    }
}
