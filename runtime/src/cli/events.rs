//! `berth-runtime events [--stats] [--interval DURATION] ID`: stats (and OOM) events as
//! JSON lines, as runc prints them.

use std::time::{Duration, Instant};

use super::GlobalOptions;
use crate::container::{Container, Status};
use crate::error::{Result, RuntimeError};
use crate::events::{oom_kills, runc_stats, Event};

/// Arguments of `events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// Time between stats events (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// The container ID.
    pub id: String,
}

/// `5s`, `500ms`, `1m`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| text.split_at(i))
        .unwrap_or((text, "s"));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad duration {text:?}: use ms, s or m")),
    }
}

fn print(event: &Event) -> Result<()> {
    let line = serde_json::to_string(event)
        .map_err(|e| RuntimeError::Other(format!("serialize event: {e}")))?;
    super::output::emit_line(line);
    Ok(())
}

pub(super) fn run(global: &GlobalOptions, args: EventsArgs) -> Result<()> {
    let container = Container::load(&global.root, &args.id)?;
    let cgroup = container.state.cgroup()?;
    let stats_event = || -> Result<Event> {
        let data = runc_stats(&cgroup.stats()?);
        Ok(Event {
            kind: "stats".into(),
            id: args.id.clone(),
            data: Some(data),
        })
    };
    if args.stats {
        return print(&stats_event()?);
    }
    let interval = args.interval.max(Duration::from_millis(100));
    let cgroup_path = container.state.cgroup_path.clone();
    let mut ooms = oom_kills(&cgroup_path).unwrap_or(0);
    let mut check_oom = || -> Result<()> {
        if let Some(now) = oom_kills(&cgroup_path) {
            if now > ooms {
                print(&Event {
                    kind: "oom".into(),
                    id: args.id.clone(),
                    data: None,
                })?;
                ooms = now;
            }
        }
        Ok(())
    };
    let mut next_stats = Instant::now();
    while container.status() != Status::Stopped {
        check_oom()?;
        if Instant::now() >= next_stats {
            print(&stats_event()?)?;
            next_stats += interval;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // An OOM kill of the init is what stops many a container: report that one too.
    check_oom()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5h").is_err());
    }
}
