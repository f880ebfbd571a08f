//! `berth inspect`: return low-level information on containers, images or volumes.
//! As docker's generic inspect, a name is tried as a container, then an image, then a
//! volume (or only as the `--type` given); the default output is berthd's JSON, in
//! berthd's key order, indented as docker indents it.

use crate::batch::seg;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::output::Template;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

/// Flags of `berth inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Format output using a custom template (`{{.State.Status}}`), or `json`.
    #[arg(short, long)]
    format: Option<String>,
    /// Display total file sizes if the type is container.
    #[arg(short, long)]
    size: bool,
    /// Only inspect objects of the given type (container, image, volume).
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// The objects (names or IDs).
    #[arg(required = true, value_name = "NAME|ID")]
    names: Vec<String>,
}

/// A kind of object inspect knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Container,
    Image,
    Volume,
}

impl Kind {
    fn path(self, name: &str, size: bool) -> String {
        match self {
            Kind::Container if size => format!("/containers/{}/json?size=1", seg(name)),
            Kind::Container => format!("/containers/{}/json", seg(name)),
            Kind::Image => format!("/images/{}/json", seg(name)),
            Kind::Volume => format!("/volumes/{}", seg(name)),
        }
    }
}

/// Runs `berth inspect`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let kinds: &[Kind] = match args.kind.as_deref() {
        None | Some("") => &[Kind::Container, Kind::Image, Kind::Volume],
        Some("container") => &[Kind::Container],
        Some("image") => &[Kind::Image],
        Some("volume") => &[Kind::Volume],
        Some(other) => {
            return Err(Error::Usage(format!(
                "\"{other}\" is not a valid value for --type"
            )))
        }
    };
    // docker's `json` format: the array on one line, as berthd sent each object.
    let compact = args.format.as_deref() == Some("json");
    let template = match args.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut code = 0;
    for name in &args.names {
        match find(client, kinds, name, args.size).await {
            Ok(Some(raw)) => found.push(raw),
            Ok(None) => {
                code = 1;
                eprintln!("Error: No such object: {name}");
            }
            // With --type, docker reports the daemon's own answer.
            Err(e) => {
                code = 1;
                eprintln!("{e}");
            }
        }
    }
    match template {
        None => {
            // Printed even when some were missing, as docker prints `[]`.
            let joined = format!(
                "[{}]",
                found
                    .iter()
                    .map(|r| String::from_utf8_lossy(r).trim().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            if compact {
                println!("{joined}");
            } else {
                println!("{}", indent_json(&joined));
            }
        }
        Some(t) => {
            for raw in &found {
                let v: Value = serde_json::from_slice(raw)
                    .map_err(|e| Error::BadResponse(format!("inspect answer is not JSON: {e}")))?;
                println!("{}", t.render(&v));
            }
        }
    }
    Ok(code)
}

/// The raw JSON of the first kind of object called `name`; None if there is none
/// (with a single kind, the daemon's error instead).
async fn find(client: &Client, kinds: &[Kind], name: &str, size: bool) -> Result<Option<Vec<u8>>> {
    if name.is_empty() {
        return Ok(None);
    }
    let single = kinds.len() == 1;
    for k in kinds {
        match client
            .send(
                Method::GET,
                &k.path(name, size),
                crate::client::empty(),
                None,
            )
            .await
        {
            Ok(resp) => {
                let body = resp.into_body().collect().await?.to_bytes();
                return Ok(Some(body.to_vec()));
            }
            // Not this kind (404), or a name this kind cannot have (400): try the next.
            Err(e) if !single && matches!(e.status(), Some(404) | Some(400)) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Re-indents JSON text as Go's `json.Indent(dst, src, "", "    ")`: keys keep their
/// order, empty objects and arrays stay `{}` and `[]`, a space follows each colon.
pub fn indent_json(src: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut chars = src.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // Skip whitespace to see whether it closes at once.
                while chars.peek().is_some_and(|n| n.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| *n == '}' || *n == ']') {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::indent_json;

    #[test]
    fn json_is_indented_as_go_indents_it_keeping_key_order() {
        let src = r#"[{"b":1,"a":{"x":[1,2],"e":{},"f":[]},"s":"a,{b}:\"c"}]"#;
        let want = "[\n    {\n        \"b\": 1,\n        \"a\": {\n            \"x\": [\n                1,\n                2\n            ],\n            \"e\": {},\n            \"f\": []\n        },\n        \"s\": \"a,{b}:\\\"c\"\n    }\n]";
        assert_eq!(indent_json(src), want);
        assert_eq!(indent_json("[]"), "[]");
    }
}
