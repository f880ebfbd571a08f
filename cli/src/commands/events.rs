//! `berth events`: get real time events from the server, printed as docker prints
//! them (`TIME TYPE ACTION ID (attr=value, ...)`), or with `--format`.

use crate::client::{json_stream, query, Client};
use crate::error::{Error, Result};
use crate::output::Template;
use chrono::{Local, NaiveDate, NaiveDateTime, Offset, TimeZone};
use futures_util::StreamExt;
use serde_json::Value;
use std::io::Write;

/// Flags of `berth events`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Filter output based on conditions provided (type=, container=, event=, image=,
    /// label=).
    #[arg(short, long = "filter", value_name = "FILTER")]
    filter: Vec<String>,
    /// Format output using a custom template, or `json`.
    #[arg(long)]
    format: Option<String>,
    /// Show all events created since timestamp (RFC 3339, a Unix time, or a duration
    /// such as `10m` before now).
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    until: Option<String>,
}

/// A `--since`/`--until` value as the API wants it (`SECONDS[.NANOS]`), read as
/// docker reads it: a duration before `now`, an RFC 3339 time or date (local time
/// unless it names a zone), or a Unix timestamp as it is.
pub fn timestamp(value: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String> {
    if value != "0" {
        if let Ok(d) = berth_api::duration::parse(value).map(i128::from) {
            // docker sends whole seconds for a duration (Go's `Time.Unix`, floored).
            let at = i128::from(now.timestamp_nanos_opt().unwrap_or(0)) - d;
            return Ok(at.div_euclid(1_000_000_000).to_string());
        }
    }
    let fmt = |t: chrono::DateTime<chrono::FixedOffset>| {
        format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(fmt(t));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value, f) {
            if let Some(t) = Local.from_local_datetime(&t).earliest() {
                return Ok(fmt(t.fixed_offset()));
            }
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        if let Some(t) = d
            .and_hms_opt(0, 0, 0)
            .and_then(|t| Local.from_local_datetime(&t).earliest())
        {
            return Ok(fmt(t.fixed_offset()));
        }
    }
    let unix = match value.split_once('.') {
        Some((s, n)) => {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_digit())
                && n.chars().all(|c| c.is_ascii_digit())
        }
        None => !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()),
    };
    if unix {
        return Ok(value.to_string());
    }
    Err(Error::Usage(format!(
        "failed to parse value as time or duration: {value:?}"
    )))
}

/// The event's time as docker prints it: local time, nanoseconds, `Z` for UTC.
fn event_time(ev: &Value) -> Option<String> {
    let nanos = match ev["timeNano"].as_i64() {
        Some(n) if n != 0 => n,
        _ => ev["time"].as_i64().filter(|t| *t != 0)? * 1_000_000_000,
    };
    Some(rfc3339_nano_fixed(&Local.timestamp_nanos(nanos)))
}

/// Go's `RFC3339NanoFixed` layout: nine digits of nanoseconds, `Z` for UTC.
fn rfc3339_nano_fixed<Tz: TimeZone>(t: &chrono::DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let zone = if t.offset().fix().local_minus_utc() == 0 {
        "Z".to_string()
    } else {
        t.format("%:z").to_string()
    };
    format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.9f"))
}

/// One event in docker's default form.
pub fn pretty(ev: &Value) -> String {
    let mut out = String::new();
    if let Some(t) = event_time(ev) {
        out.push_str(&t);
        out.push(' ');
    }
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    out.push_str(&format!(
        "{} {} {}",
        s(&ev["Type"]),
        s(&ev["Action"]),
        s(&ev["Actor"]["ID"])
    ));
    if let Some(attrs) = ev["Actor"]["Attributes"].as_object() {
        if !attrs.is_empty() {
            let mut keys: Vec<&String> = attrs.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    let v = &attrs[*k];
                    format!(
                        "{k}={}",
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string())
                    )
                })
                .collect();
            out.push_str(&format!(" ({})", parts.join(", ")));
        }
    }
    out
}

/// The event with the field names docker's templates use (`.ID`, `.Status`, ...)
/// besides the JSON ones.
fn template_view(ev: &Value) -> Value {
    let mut v = ev.clone();
    if let Some(o) = v.as_object_mut() {
        for (go, js) in [
            ("ID", "id"),
            ("Status", "status"),
            ("From", "from"),
            ("Scope", "scope"),
            ("Time", "time"),
            ("TimeNano", "timeNano"),
        ] {
            if let Some(x) = ev.get(js) {
                o.entry(go).or_insert_with(|| x.clone());
            }
        }
    }
    v
}

/// Runs `berth events`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let now = chrono::Utc::now();
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(s) = &args.since {
        q.push(("since", timestamp(s, now)?));
    }
    if let Some(u) = &args.until {
        q.push(("until", timestamp(u, now)?));
    }
    if !args.filter.is_empty() {
        q.push(("filters", super::ps::filters_json(&args.filter)?));
    }
    let template = match args.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(Template::parse(f)?),
    };
    let resp = client
        .send(
            hyper::Method::GET,
            &format!("/events{}", query(&q)),
            crate::client::empty(),
            None,
        )
        .await?;
    let mut events = std::pin::pin!(json_stream(resp));
    let mut stdout = std::io::stdout();
    while let Some(ev) = events.next().await {
        let ev = ev?;
        let line = match &template {
            None => pretty(&ev),
            Some(t) if args.format.as_deref() == Some("json") => t.render(&ev),
            Some(t) => t.render(&template_view(&ev)),
        };
        // Each event as it comes: a pipe reader sees it at once.
        writeln!(stdout, "{line}")
            .and_then(|_| stdout.flush())
            .map_err(|e| Error::io("writing to stdout", e))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_print_as_docker_prints_them() {
        let ev = json!({
            "Type": "container", "Action": "start",
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}},
            "time": 1_795_680_000, "timeNano": 1_795_680_000_123_456_789i64,
        });
        let line = pretty(&ev);
        let (time, rest) = line.split_once(' ').expect("a time first");
        assert_eq!(rest, "container start abc (image=busybox, name=web)");
        assert!(
            time.starts_with("2026-11-2") && time.contains(".123456789"),
            "{time}"
        );
        let utc = chrono::Utc.timestamp_nanos(1_795_680_000_123_456_789);
        assert_eq!(rfc3339_nano_fixed(&utc), "2026-11-26T08:00:00.123456789Z");
        let plus2 = utc.with_timezone(&chrono::FixedOffset::east_opt(7200).expect("offset"));
        assert_eq!(
            rfc3339_nano_fixed(&plus2),
            "2026-11-26T10:00:00.123456789+02:00"
        );
        let t = Template::parse("{{.ID}} {{.Status}}").expect("template");
        assert_eq!(
            t.render(&template_view(&json!({"id": "x", "status": "die"}))),
            "x die"
        );
    }

    #[test]
    fn times_read_as_docker_reads_them() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-26T08:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        assert_eq!(timestamp("10m", now).expect("duration"), "1795679400");
        assert_eq!(timestamp("1h30m", now).expect("duration"), "1795674600");
        assert_eq!(
            timestamp("2026-11-26T08:00:00.5Z", now).expect("rfc3339"),
            "1795680000.500000000"
        );
        assert_eq!(
            timestamp("1795680000.25", now).expect("unix"),
            "1795680000.25"
        );
        assert_eq!(timestamp("0", now).expect("zero"), "0");
        assert!(timestamp("yesterday", now).is_err());
    }
}
