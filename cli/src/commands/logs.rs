//! `berth logs`: fetch the logs of a container, as `docker logs`: stdout and stderr to
//! ours (demultiplexed), or one raw stream for a TTY container; `--since`/`--until` take
//! RFC 3339 times, Unix timestamps or durations back from now (10m, 1h30m).

use crate::batch::seg;
use crate::client::{self, Client};
use crate::error::{Error, Result};
use crate::streams;
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

/// Flags of `berth logs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show extra details provided to logs.
    #[arg(long)]
    details: bool,
    /// Follow log output.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m"
    /// for 42 minutes).
    #[arg(long)]
    since: Option<String>,
    /// Number of lines to show from the end of the logs.
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g.
    /// "42m" for 42 minutes).
    #[arg(long)]
    until: Option<String>,
    /// The container.
    #[arg(value_name = "CONTAINER")]
    container: String,
}

/// A time as docker's `GetTimestamp` reads it, as the API's "seconds.nanoseconds":
/// a Go duration is that long before `now`; a Unix timestamp passes as it is; RFC 3339
/// (or a date, or a date and time without zone, taken as local time) is converted.
pub fn api_timestamp(value: &str, now: DateTime<Utc>, flag: &str) -> Result<String> {
    let unix = |t: DateTime<Utc>| format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
    if value != "0" {
        if let Ok(ns) = berth_api::duration::parse(value) {
            return Ok(unix(now - chrono::Duration::nanoseconds(ns)));
        }
    }
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    match value.split_once('.') {
        None if numeric(value) => return Ok(value.to_string()),
        Some((s, ns)) if numeric(s) && numeric(ns) => return Ok(value.to_string()),
        _ => {}
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(unix(t.with_timezone(&Utc)));
    }
    let local = |n: NaiveDateTime| Local.from_local_datetime(&n).earliest();
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Some(t) = NaiveDateTime::parse_from_str(value, f).ok().and_then(local) {
            return Ok(unix(t.with_timezone(&Utc)));
        }
    }
    if let Some(t) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(local)
    {
        return Ok(unix(t.with_timezone(&Utc)));
    }
    Err(Error::Usage(format!(
        "invalid value for \"{flag}\": failed to parse value as time or duration: \"{value}\""
    )))
}

/// Runs `berth logs`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let name = seg(&args.container);
    let info: Value = client.get_json(&format!("/containers/{name}/json")).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let tail = args.tail.trim();
    if tail != "all" && tail.parse::<i64>().is_err() {
        return Err(Error::Usage(format!(
            "invalid argument \"{tail}\" for \"-n, --tail\" flag: must be a number or \"all\""
        )));
    }
    let now = Utc::now();
    let mut q = vec![
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
        ("tail", tail.to_string()),
    ];
    for (on, key) in [
        (args.follow, "follow"),
        (args.timestamps, "timestamps"),
        (args.details, "details"),
    ] {
        if on {
            q.push((key, "1".into()));
        }
    }
    if let Some(s) = &args.since {
        q.push(("since", api_timestamp(s, now, "since")?));
    }
    if let Some(u) = &args.until {
        q.push(("until", api_timestamp(u, now, "until")?));
    }
    let resp = client
        .send(
            hyper::Method::GET,
            &format!("/containers/{name}/logs{}", client::query(&q)),
            client::empty(),
            None,
        )
        .await?;
    let body = http_body_util::BodyDataStream::new(resp.into_body());
    let reader = tokio_util::io::StreamReader::new(futures_util::TryStreamExt::map_err(
        body,
        std::io::Error::other,
    ));
    streams::copy_output(reader, tty, true, true).await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_docker_reads_them() {
        let now = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(
            api_timestamp("10m", now, "since").ok().as_deref(),
            Some("1704164045.000000000")
        );
        assert_eq!(
            api_timestamp("1704164645", now, "since").ok().as_deref(),
            Some("1704164645")
        );
        assert_eq!(
            api_timestamp("1704164645.5", now, "since").ok().as_deref(),
            Some("1704164645.5")
        );
        assert_eq!(
            api_timestamp("2024-01-02T03:04:05.25Z", now, "until")
                .ok()
                .as_deref(),
            Some("1704164645.250000000")
        );
        assert_eq!(
            api_timestamp("2024-01-02T04:04:05+01:00", now, "until")
                .ok()
                .as_deref(),
            Some("1704164645.000000000")
        );
        assert!(api_timestamp("yesterday", now, "since").is_err());
    }
}
