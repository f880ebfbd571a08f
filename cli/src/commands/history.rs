//! `berth history`: the layers of an image (berthd's `GET /images/{name}/history`), as
//! docker's historyContext shows them: human sizes and ages unless `-H=false`, the
//! instruction cut at 45 characters unless `--no-trunc`, `<missing>` for layers that are
//! not images of their own.

use crate::batch::seg;
use crate::client::Client;
use crate::commands::ps::ellipsis;
use crate::error::Result;
use crate::format::{self, fields, Spec};
use crate::output;
use crate::template::Struct;
use berth_api::image::HistoryResponseItem;

/// docker's historyContext.
pub const SPEC: Spec = Spec {
    type_name: "*image.historyContext",
    default_table: "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
    // docker's history has no `raw` format: the word is a template of its own.
    raw: "raw",
    headers: &[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ],
};

/// Without `--human`: dates instead of ages.
const NON_HUMAN_SPEC: Spec = Spec {
    default_table: "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
    ..SPEC
};

/// Flags of `berth history`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format output: `table`, `table TEMPLATE`, `json`, or a template (`{{.ID}}`).
    #[arg(long)]
    format: Option<String>,
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, num_args = 0..=1, default_missing_value = "true",
          require_equals = true, value_parser = crate::args::go_bool)]
    human: Option<bool>,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// The image.
    #[arg(value_name = "IMAGE")]
    image: String,
}

/// Runs `berth history`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let layers: Vec<HistoryResponseItem> = client
        .get_json(&format!("/images/{}/history", seg(&args.image)))
        .await?;
    let human = args.human.unwrap_or(true);
    let rows: Vec<Struct> = layers
        .iter()
        .map(|h| row(h, human, !args.no_trunc))
        .collect();
    let format = if args.quiet {
        Some("{{.ID}}".to_string())
    } else {
        args.format.clone().filter(|f| !f.is_empty())
    };
    let spec = if human { &SPEC } else { &NON_HUMAN_SPEC };
    format::print(format.as_deref(), spec, &rows)?;
    Ok(0)
}

/// One layer as docker's `history --format` sees it.
fn row(h: &HistoryResponseItem, human: bool, trunc: bool) -> Struct {
    // Go's time.RFC3339 in the local zone; berth runs with the C library's idea of it
    // only for display, so UTC as the daemon's machines have it.
    let created_at = chrono::DateTime::from_timestamp(h.created, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let created_since = if human {
        format!(
            "{} ago",
            output::human_duration(output::seconds_since(h.created))
        )
    } else {
        created_at.clone()
    };
    let created_by = h.created_by.replace('\t', " ");
    let created_by = if trunc {
        ellipsis(&created_by, 45)
    } else {
        created_by
    };
    let id = if trunc {
        output::short_id(&h.id)
    } else {
        h.id.clone()
    };
    let size = if human {
        output::human_size(h.size as f64)
    } else {
        h.size.to_string()
    };
    format::row(
        &SPEC,
        fields(vec![
            ("Comment", h.comment.clone().into()),
            ("CreatedAt", created_at.into()),
            ("CreatedBy", created_by.into()),
            ("CreatedSince", created_since.into()),
            ("ID", id.into()),
            ("Size", size.into()),
        ]),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Value;

    fn cell(r: &Struct, k: &str) -> String {
        r.field(k).map(Value::print).unwrap_or_default()
    }

    #[test]
    fn a_layer_is_shown_as_docker_shows_it() {
        let h = HistoryResponseItem {
            comment: "c".into(),
            created: 0,
            created_by: "/bin/sh -c\t#(nop) ADD file:0123456789abcdef0123456789abcdef in / ".into(),
            id: "sha256:0123456789abcdef0123".into(),
            size: 1_234_567,
            tags: None,
        };
        let r = row(&h, true, true);
        assert_eq!(cell(&r, "ID"), "0123456789ab");
        assert_eq!(
            cell(&r, "CreatedBy"),
            "/bin/sh -c #(nop) ADD file:0123456789abcdef0…"
        );
        assert_eq!(cell(&r, "Size"), "1.23MB");
        assert!(cell(&r, "CreatedSince").ends_with(" ago"));
        let r = row(&h, false, false);
        assert_eq!(cell(&r, "ID"), "sha256:0123456789abcdef0123");
        assert_eq!(cell(&r, "Size"), "1234567");
        assert_eq!(cell(&r, "CreatedSince"), "1970-01-01T00:00:00Z");
        let missing = HistoryResponseItem {
            id: "<missing>".into(),
            ..h
        };
        assert_eq!(cell(&row(&missing, true, true), "ID"), "<missing>");
    }
}
