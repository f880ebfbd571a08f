//! `berth history`: the history of an image, newest first, as docker shows it.

use crate::client::Client;
use crate::error::Result;
use crate::output;
use serde_json::{json, Value};

/// Flags of `berth history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format output: `table`, `table TEMPLATE`, `json`, or a template (`{{.ID}}`).
    #[arg(long)]
    format: Option<String>,
    /// Print sizes and dates in human readable format (`-H` is the global host flag
    /// here, so only the long form).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// The image.
    image: String,
}

/// docker's `Ellipsis`: cut to `max` characters with `…`.
fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Runs `berth history`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let rows: Vec<Value> = client
        .get_json(&format!("/images/{}/history", args.image))
        .await?;
    let rows: Vec<Value> = rows
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("");
            let shown_id = if id == "<missing>" || args.no_trunc {
                id.to_string()
            } else {
                output::short_id(id)
            };
            let created = h["Created"].as_i64().unwrap_or(0);
            let since = if args.human {
                format!("{} ago", output::human_duration(output::seconds_since(created)))
            } else {
                chrono::DateTime::from_timestamp(created, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            };
            let by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let by = if args.no_trunc { by } else { ellipsis(&by, 45) };
            let size = h["Size"].as_f64().unwrap_or(0.0);
            json!({
                "ID": shown_id,
                "CreatedSince": since,
                "CreatedAt": chrono::DateTime::from_timestamp(created, 0).map(|t| t.to_rfc3339()).unwrap_or_default(),
                "CreatedBy": by,
                "Size": if args.human { output::human_size(size) } else { (size as i64).to_string() },
                "Comment": h["Comment"].as_str().unwrap_or(""),
            })
        })
        .collect();
    if args.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    output::print_rows(args.format.as_deref(), &rows, || {
        let header = ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"];
        let keys = ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"];
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                keys.iter()
                    .map(|k| r[*k].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .collect();
        output::table(&header, &cells)
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_like_docker() {
        assert_eq!(ellipsis("abc", 45), "abc");
        let long = "x".repeat(50);
        let cut = ellipsis(&long, 45);
        assert_eq!(cut.chars().count(), 45);
        assert!(cut.ends_with('…'));
    }
}
