//! runc-compatible logging: `--log FILE --log-format text|json`.
//!
//! Engines (containerd's shims, podman's conmon) read the last `"level":"error"` line of the
//! JSON log to report why the runtime failed, so the JSON shape matches runc's exactly:
//! `{"level":"error","msg":"...","time":"..."}`.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `time="..." level=info msg="..."`, as runc's text format.
    Text,
    /// One JSON object per line, as runc's json format.
    Json,
}

struct RuncLayer {
    sink: Mutex<Box<dyn Write + Send>>,
    format: LogFormat,
    max_level: Level,
    debug: bool,
}

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .push((field.name().to_string(), value.to_string()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push((field.name().to_string(), format!("{value:?}")));
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Render one log record; separate from the layer so it can be unit tested.
fn render(format: LogFormat, level: &Level, message: &str, fields: &[(String, String)]) -> String {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match format {
        LogFormat::Json => {
            let mut map = serde_json::Map::new();
            map.insert("level".into(), level_name(level).into());
            map.insert("msg".into(), message.into());
            map.insert("time".into(), time.into());
            for (k, v) in fields {
                map.insert(k.clone(), v.clone().into());
            }
            let mut line = serde_json::Value::Object(map).to_string();
            line.push('\n');
            line
        }
        LogFormat::Text => {
            let mut line = format!(
                "time=\"{time}\" level={} msg={message:?}",
                level_name(level)
            );
            for (k, v) in fields {
                let _ = write!(line, " {k}={v:?}");
            }
            line.push('\n');
            line
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() > self.max_level {
            return;
        }
        // Libraries' warnings (libcgroups reports every controller a host lacks) are noise
        // for the engines that read this log; they show with --debug.
        if !self.debug && !event.metadata().target().starts_with("berth_runtime") {
            return;
        }
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let line = render(
            self.format,
            event.metadata().level(),
            &visitor.message,
            &visitor.fields,
        );
        if let Ok(mut sink) = self.sink.lock() {
            let _ = sink.write_all(line.as_bytes());
        }
    }
}

/// Install the global logger. Without `--log`, only warnings and errors go to stderr.
pub fn init(log: Option<&Path>, format: LogFormat, debug: bool) -> std::io::Result<()> {
    let max_level = if debug { Level::DEBUG } else { Level::WARN };
    let sink: Box<dyn Write + Send> = match log {
        Some(path) => Box::new(OpenOptions::new().create(true).append(true).open(path)?),
        None => Box::new(std::io::stderr()),
    };
    let max_level = if log.is_some() && !debug {
        Level::INFO
    } else {
        max_level
    };
    let layer = RuncLayer {
        sink: Mutex::new(sink),
        format,
        max_level,
        debug,
    };
    let _ = tracing_subscriber::registry().with(layer).try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_runc_keys() {
        let line = render(LogFormat::Json, &Level::ERROR, "boom \"x\"", &[]);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "error");
        assert_eq!(value["msg"], "boom \"x\"");
        assert!(value["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn text_lines_quote_the_message() {
        let line = render(
            LogFormat::Text,
            &Level::WARN,
            "a b",
            &[("id".into(), "c1".into())],
        );
        assert!(
            line.contains("level=warning msg=\"a b\" id=\"c1\""),
            "{line}"
        );
    }
}
