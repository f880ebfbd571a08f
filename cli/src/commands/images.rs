//! `berth images`: list images, one row per repository and tag as docker shows them.

use crate::client::{query, Client};
use crate::commands::ps::filters_json;
use crate::error::Result;
use crate::format::{self, fields, Spec};
use crate::output;
use crate::template::Struct;
#[cfg(test)]
use crate::template::Value;
use berth_api::image::ImageSummary;

/// docker's imageContext.
pub const SPEC: Spec = Spec {
    type_name: "*formatter.imageContext",
    default_table: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
    raw: "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n",
    headers: &[
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("VirtualSize", "SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
    ],
};

/// With `--digests`.
const DIGESTS_SPEC: Spec = Spec {
    default_table: "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
    raw: "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n",
    ..SPEC
};

/// Flags of `berth images`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all images (default hides intermediate images).
    #[arg(short, long)]
    all: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Filter output based on conditions provided (dangling=, reference=, label=,
    /// before=, since=).
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Format output: `table`, `table TEMPLATE`, `json`, or a template (`{{.ID}}`).
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Only images of this repository (and tag; `*` wildcards allowed).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

/// Runs `berth images`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let mut filters = args.filter.clone();
    if let Some(r) = &args.reference {
        filters.push(format!("reference={r}"));
    }
    let mut q: Vec<(&str, String)> = Vec::new();
    if args.all {
        q.push(("all", "1".into()));
    }
    if !filters.is_empty() {
        q.push(("filters", filters_json(&filters)?));
    }
    let list: Vec<ImageSummary> = client
        .get_json(&format!("/images/json{}", query(&q)))
        .await?;
    let rows: Vec<Struct> = list
        .iter()
        .flat_map(|i| rows(i, args.digests, args.no_trunc))
        .collect();
    let format = if args.quiet {
        Some("{{.ID}}".to_string())
    } else {
        args.format.clone().filter(|f| !f.is_empty()).or_else(|| {
            crate::config::ConfigFile::load()
                .ok()
                .map(|c| c.images_format)
                .filter(|f| !f.is_empty())
        })
    };
    let spec = if args.digests { &DIGESTS_SPEC } else { &SPEC };
    format::print(format.as_deref(), spec, &rows)?;
    Ok(0)
}

/// Splits `name:tag` or `name@digest` at the separator after the last `/`.
fn split_at(reference: &str, sep: char) -> Option<(&str, &str)> {
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    reference[slash..]
        .rfind(sep)
        .map(|i| (&reference[..slash + i], &reference[slash + i + 1..]))
}

/// The rows of one image: one per repository and tag (and digest with `--digests`),
/// digest-only repositories after, and a `<none>` row if it has no name at all.
fn rows(image: &ImageSummary, digests: bool, no_trunc: bool) -> Vec<Struct> {
    let strings = |k: &str| {
        let v = if k == "RepoTags" {
            &image.repo_tags
        } else {
            &image.repo_digests
        };
        v.clone().unwrap_or_default()
    };
    // Grouped by repository in the order the daemon lists them, as docker shows them.
    let group = |key: &str, sep: char, none: &str| -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for r in strings(key) {
            // dockerd lists "<none>:<none>" for untagged images in old API versions.
            if r == none {
                continue;
            }
            let Some((repo, rest)) = split_at(&r, sep) else {
                continue;
            };
            match groups.iter_mut().find(|(g, _)| g == repo) {
                Some((_, v)) => v.push(rest.to_string()),
                None => groups.push((repo.to_string(), vec![rest.to_string()])),
            }
        }
        groups
    };
    let tags = group("RepoTags", ':', "<none>:<none>");
    let mut repo_digests = group("RepoDigests", '@', "<none>@<none>");
    let mut out = Vec::new();
    for (repo, tag_list) in &tags {
        let ds = match repo_digests.iter().position(|(r, _)| r == repo) {
            Some(i) => repo_digests.remove(i).1,
            None => Vec::new(),
        };
        for tag in tag_list {
            if !digests || ds.is_empty() {
                out.push(row(image, repo, tag, "<none>", no_trunc));
            } else {
                for d in &ds {
                    out.push(row(image, repo, tag, d, no_trunc));
                }
            }
        }
    }
    for (repo, ds) in &repo_digests {
        if digests {
            for d in ds {
                out.push(row(image, repo, "<none>", d, no_trunc));
            }
        } else {
            out.push(row(image, repo, "<none>", "<none>", no_trunc));
        }
    }
    if out.is_empty() {
        out.push(row(image, "<none>", "<none>", "<none>", no_trunc));
    }
    out
}

/// One row as docker's `images --format` sees it.
fn row(image: &ImageSummary, repo: &str, tag: &str, digest: &str, no_trunc: bool) -> Struct {
    let id = &image.id;
    let created_at = chrono::DateTime::from_timestamp(image.created, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default();
    let size = |n: i64| {
        if n >= 0 {
            output::human_size(n as f64)
        } else {
            "N/A".to_string()
        }
    };
    let containers = match image.containers {
        n if n >= 0 => n.to_string(),
        _ => "N/A".to_string(),
    };
    let unique = match image.shared_size {
        sh if sh >= 0 => output::human_size((image.size - sh).max(0) as f64),
        _ => "N/A".to_string(),
    };
    let shared = match image.shared_size {
        sh if sh >= 0 => output::human_size(sh as f64),
        _ => "N/A".to_string(),
    };
    format::row(
        &SPEC,
        fields(vec![
            ("Containers", containers.into()),
            ("CreatedAt", created_at.into()),
            (
                "CreatedSince",
                format!(
                    "{} ago",
                    output::human_duration(output::seconds_since(image.created))
                )
                .into(),
            ),
            ("Digest", digest.into()),
            (
                "ID",
                if no_trunc {
                    id.clone()
                } else {
                    output::short_id(id)
                }
                .into(),
            ),
            ("Repository", repo.into()),
            ("SharedSize", shared.into()),
            ("Size", size(image.size).into()),
            ("Tag", tag.into()),
            ("UniqueSize", unique.into()),
            ("VirtualSize", output::human_size4(image.size as f64).into()),
        ]),
        image
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// A row's field as text.
#[cfg(test)]
fn cell(r: &Struct, k: &str) -> String {
    r.field(k).map(Value::print).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_has_a_row_per_tag_and_none_when_unnamed() {
        let img: ImageSummary = serde_json::from_value(serde_json::json!({
            "Id": "sha256:0123456789abcdef0123",
            "RepoTags": ["b:1", "127.0.0.1:5000/b:2", "b:3"],
            "RepoDigests": ["127.0.0.1:5000/b@sha256:aa", "c@sha256:bb"],
            "Created": 0, "Size": 1500, "SharedSize": -1, "Containers": -1,
        }))
        .unwrap();
        let r = rows(&img, false, false);
        let names: Vec<String> = r
            .iter()
            .map(|x| format!("{}:{}", cell(x, "Repository"), cell(x, "Tag")))
            .collect();
        assert_eq!(names, ["b:1", "b:3", "127.0.0.1:5000/b:2", "c:<none>"]);
        assert_eq!(cell(&r[0], "ID"), "0123456789ab");
        assert_eq!(cell(&r[0], "Size"), "1.5kB");
        let r = rows(&img, true, true);
        assert_eq!(
            (cell(&r[0], "Digest"), cell(&r[3], "Digest")),
            ("<none>".to_string(), "sha256:bb".to_string())
        );
        assert_eq!(cell(&r[2], "Digest"), "sha256:aa");
        assert_eq!(cell(&r[0], "ID"), "sha256:0123456789abcdef0123");
        let none = rows(
            &ImageSummary {
                id: "sha256:ff".into(),
                ..Default::default()
            },
            false,
            false,
        );
        assert_eq!(none.len(), 1);
        assert_eq!(cell(&none[0], "Repository"), "<none>");
        assert_eq!(cell(&none[0], "Tag"), "<none>");
    }
}
