//! `berth inspect`: return low-level information on containers, images or volumes.
//! As docker's generic inspect, a name is tried as a container, then an image, then a
//! volume (or only as the `--type` given); the default output is berthd's JSON, in
//! berthd's key order, indented as docker indents it.

use crate::batch::seg;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::format;
use crate::template::Value;
use http_body_util::BodyExt;
use hyper::Method;

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
    /// The Go type docker's inspect templates run on.
    fn type_name(self) -> &'static str {
        match self {
            Kind::Container => "types.ContainerJSON",
            Kind::Image => "types.ImageInspect",
            Kind::Volume => "volume.Volume",
        }
    }

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
    if let Some(f) = args
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "json")
    {
        // A template that does not parse fails before anything is asked: docker's 64.
        if let Err(e) = crate::template::Template::parse("", f) {
            eprintln!("template parsing error: {e}");
            return Ok(64);
        }
    }
    let mut found: Vec<(Kind, Vec<u8>)> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for name in &args.names {
        match find(client, kinds, name, args.size).await {
            Ok(Some(raw)) => found.push(raw),
            Ok(None) => errors.push(format!("Error: No such object: {name}")),
            // With --type, docker reports the daemon's own answer.
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut code = 0;
    let mut out = String::new();
    for (kind, raw) in &found {
        match render(
            args.format.as_deref(),
            std::slice::from_ref(raw),
            kind.type_name(),
            *kind != Kind::Volume,
        ) {
            Ok(text) => out.push_str(&text),
            Err(e) => errors.push(e),
        }
    }
    if args.format.as_deref().is_none_or(|f| f.is_empty()) {
        // Printed even when some were missing, as docker prints `[]`.
        let joined = format!(
            "[{}]",
            found
                .iter()
                .map(|(_, r)| String::from_utf8_lossy(r).trim().to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        println!("{}", indent_json(&joined));
    } else if args.format.as_deref() == Some("json") {
        let all: Vec<serde_json::Value> = found
            .iter()
            .filter_map(|(_, r)| serde_json::from_slice(r).ok())
            .collect();
        println!("{}", serde_json::Value::Array(all));
    } else if out.is_empty() {
        println!();
    } else {
        print!("{out}");
    }
    if !errors.is_empty() {
        eprintln!("{}", errors.join("\n"));
        code = 1;
    }
    Ok(code)
}

/// Each object through `--format` as docker's inspect does: the template run on the
/// typed object (a missing field fails), then, if that fails and `fallback`, on the raw
/// JSON as maps with `missingkey=error`. Each result ends with a newline.
pub fn render(
    format: Option<&str>,
    found: &[Vec<u8>],
    type_name: &str,
    fallback: bool,
) -> std::result::Result<String, String> {
    let Some(f) = format.filter(|f| !f.is_empty() && *f != "json") else {
        return Ok(String::new());
    };
    let mut out = String::new();
    for raw in found {
        let text = String::from_utf8_lossy(raw);
        let typed = Value::typed_from_json(&text, type_name)
            .map_err(|e| format!("unable to read inspect data: {e}"))?;
        match format::object(f, "", &typed, false) {
            Ok(s) => out.push_str(&s),
            Err(e) if !fallback => return Err(format!("template parsing error: {e}")),
            Err(_) => {
                let raw = Value::raw_from_json(&text)
                    .map_err(|e| format!("unable to read inspect data: {e}"))?;
                let s = format::object(f, "", &raw, true)
                    .map_err(|e| format!("template parsing error: {e}"))?;
                out.push_str(&s);
            }
        }
        out.push('\n');
    }
    Ok(out)
}

/// Prints objects of one kind as `volume inspect`/`image inspect` do (no fallback for
/// volumes, as docker); the exit code.
pub fn print_found(format: Option<&str>, found: &[Vec<u8>], type_name: &str) -> Result<i32> {
    match format {
        None | Some("") => {
            let joined = format!(
                "[{}]",
                found
                    .iter()
                    .map(|r| String::from_utf8_lossy(r).trim().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            println!("{}", indent_json(&joined));
            Ok(0)
        }
        Some("json") => {
            let all: Vec<serde_json::Value> = found
                .iter()
                .filter_map(|r| serde_json::from_slice(r).ok())
                .collect();
            println!("{}", serde_json::Value::Array(all));
            Ok(0)
        }
        Some(f) => {
            if let Err(e) = crate::template::Template::parse("", f) {
                eprintln!("template parsing error: {e}");
                return Ok(64);
            }
            // As docker: each object rendered on its own, what rendered printed, then
            // one error line per object that did not.
            let mut out = String::new();
            let mut errors = Vec::new();
            for raw in found {
                match render(
                    Some(f),
                    std::slice::from_ref(raw),
                    type_name,
                    type_name != "volume.Volume",
                ) {
                    Ok(text) => out.push_str(&text),
                    Err(e) => errors.push(e),
                }
            }
            if out.is_empty() {
                println!();
            } else {
                print!("{out}");
            }
            if errors.is_empty() {
                Ok(0)
            } else {
                eprintln!("{}", errors.join("\n"));
                Ok(1)
            }
        }
    }
}

/// The raw JSON of the first kind of object called `name`; None if there is none
/// (with a single kind, the daemon's error instead).
async fn find(
    client: &Client,
    kinds: &[Kind],
    name: &str,
    size: bool,
) -> Result<Option<(Kind, Vec<u8>)>> {
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
                return Ok(Some((*k, body.to_vec())));
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
