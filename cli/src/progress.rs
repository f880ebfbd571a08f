//! Shows the JSON progress stream of pull, push, load and import as docker does: on a
//! terminal one line per layer id (a byte bar while "Downloading"/"Pushing", then its
//! last status such as "Pull complete"), with the other status lines ("Digest: ...",
//! "Status: ...") printed in order; elsewhere plain `ID: status` lines without bars. An
//! `error`/`errorDetail` in the stream ends it as an error.

use crate::client;
use crate::error::{Error, Result};
use crate::output;
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper::Response;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde_json::Value;
use std::io::{IsTerminal, Write};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing but errors (`-q`).
    Quiet,
    /// Plain status lines, no bars (output is not a terminal).
    Plain,
    /// Live bars, one line per layer.
    Terminal,
}

impl Mode {
    /// The mode for stdout: quiet if asked, bars on a terminal, plain lines otherwise.
    pub fn for_stdout(quiet: bool) -> Self {
        if quiet {
            Self::Quiet
        } else if std::io::stdout().is_terminal() {
            Self::Terminal
        } else {
            Self::Plain
        }
    }
}

/// Renders a stream's messages one by one.
pub struct Renderer<W: Write> {
    mode: Mode,
    out: W,
    multi: Option<MultiProgress>,
    /// The bars of the current group of layers, in order of first appearance.
    bars: Vec<(String, ProgressBar, bool)>,
    /// The `aux` values seen (push's digest, build results).
    pub aux: Vec<Value>,
}

/// The error message a stream message carries, if it is an error.
fn error_of(msg: &Value) -> Option<String> {
    msg["errorDetail"]["message"]
        .as_str()
        .or_else(|| msg["error"].as_str())
        .map(|s| s.trim().to_string())
        .or_else(|| {
            // An errorDetail without message still means failure.
            (!msg["errorDetail"].is_null() || !msg["error"].is_null()).then(|| msg.to_string())
        })
}

/// Byte counts of a message's `progressDetail`, if it reports any.
fn bytes_of(msg: &Value) -> Option<(u64, u64)> {
    let d = &msg["progressDetail"];
    let current = d["current"].as_u64().unwrap_or(0);
    let total = d["total"].as_u64().unwrap_or(0);
    (current > 0 || total > 0).then_some((current, total))
}

fn status_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Whether a terminal this wide gets docker's 50-column bar: as docker's
/// `JSONProgress`, only wider than 110 columns (else the line would wrap); the byte
/// counts are shown at any width.
pub fn shows_bar(columns: u16) -> bool {
    columns > 110
}

/// Docker's bar: `[====>    ]  691.2kB/2MB`, sizes as docker writes them; without the
/// bar on a terminal too narrow for it.
fn bytes_style(total_known: bool) -> ProgressStyle {
    let columns = crate::streams::terminal_size().map_or(80, |(_, c)| c);
    let template = match (total_known, shows_bar(columns)) {
        (true, true) => "{prefix}: {msg} [{bar:50}] {done:>8}/{total}",
        (true, false) => "{prefix}: {msg} {done:>8}/{total}",
        (false, _) => "{prefix}: {msg} {done:>8}",
    };
    ProgressStyle::with_template(template)
        .map(|s| {
            s.progress_chars("=> ")
                .with_key("done", |st: &ProgressState, w: &mut dyn std::fmt::Write| {
                    // A failed write only loses a redraw of the bar.
                    let _ = w.write_str(&output::human_size(st.pos() as f64));
                })
                .with_key(
                    "total",
                    |st: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let total = st.len().unwrap_or(0);
                        let _ = w.write_str(&output::human_size(total as f64));
                    },
                )
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl<W: Write> Renderer<W> {
    /// A renderer writing plain lines (and text) to `out`.
    pub fn new(mode: Mode, out: W) -> Self {
        Self {
            mode,
            out,
            multi: None,
            bars: Vec::new(),
            aux: Vec::new(),
        }
    }

    /// Shows one message; an error message becomes `Err`.
    pub fn handle(&mut self, msg: &Value) -> Result<()> {
        if let Some(e) = error_of(msg) {
            self.finish();
            // The daemon's own words, as docker prints them (no "Error response" prefix:
            // the request itself succeeded).
            return Err(Error::Usage(e));
        }
        if !msg["aux"].is_null() {
            self.aux.push(msg["aux"].clone());
        }
        if self.mode == Mode::Quiet {
            return Ok(());
        }
        if let Some(text) = msg["stream"].as_str() {
            self.finish();
            return self.write(text);
        }
        let Some(status) = msg["status"].as_str() else {
            return Ok(());
        };
        let id = msg["id"].as_str().filter(|i| !i.is_empty());
        match (self.mode, id) {
            (Mode::Terminal, Some(id)) => {
                self.bar(id, status, bytes_of(msg));
                Ok(())
            }
            (Mode::Terminal, None) => {
                // A line about the whole operation closes the group of layer lines
                // above it, which are left on screen with their last status.
                self.finish();
                self.write(&format!("{status}\n"))
            }
            (_, id) => {
                // Byte progress only makes sense redrawn in place: skip it, as docker.
                if bytes_of(msg).is_some() {
                    return Ok(());
                }
                match id {
                    Some(id) => self.write(&format!("{id}: {status}\n")),
                    None => self.write(&format!("{status}\n")),
                }
            }
        }
    }

    fn write(&mut self, text: &str) -> Result<()> {
        let io = |e| Error::io("writing output", e);
        self.out.write_all(text.as_bytes()).map_err(io)?;
        self.out.flush().map_err(io)
    }

    /// Updates (or starts) the line of one layer.
    fn bar(&mut self, id: &str, status: &str, bytes: Option<(u64, u64)>) {
        let multi = self
            .multi
            .get_or_insert_with(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        let idx = match self.bars.iter().position(|(i, _, _)| i == id) {
            Some(i) => i,
            None => {
                // Styled and named before it is added, so no empty line is drawn first.
                let pb = ProgressBar::new(0)
                    .with_style(status_style())
                    .with_prefix(id.to_string())
                    .with_message(status.to_string());
                let pb = multi.add(pb);
                self.bars.push((id.to_string(), pb, false));
                self.bars.len() - 1
            }
        };
        let (_, pb, showing_bytes) = &mut self.bars[idx];
        match bytes {
            Some((current, total)) => {
                if !*showing_bytes {
                    pb.set_style(bytes_style(total > 0));
                    *showing_bytes = true;
                }
                pb.set_length(total.max(current));
                pb.set_position(current);
            }
            None => {
                if *showing_bytes {
                    pb.set_style(status_style());
                    *showing_bytes = false;
                }
            }
        }
        pb.set_message(status.to_string());
    }

    /// Replaces the live layer lines by their last status as plain lines (indicatif
    /// leaves the cursor on its last line, so text written after it would join it).
    pub fn finish(&mut self) {
        if let Some(multi) = self.multi.take() {
            let _ = multi.clear();
        }
        let lines: Vec<String> = self
            .bars
            .drain(..)
            .map(|(id, pb, _)| {
                pb.finish_and_clear();
                format!("{id}: {}\n", pb.message())
            })
            .collect();
        for l in lines {
            let _ = self.write(&l);
        }
    }
}

/// Shows a streamed progress answer until it ends; the `aux` values it carried. An error
/// in the stream (or a broken stream) is returned after the lines before it are shown.
pub async fn show(resp: Response<Incoming>, mode: Mode) -> Result<Vec<Value>> {
    let mut r = Renderer::new(mode, std::io::stdout());
    let mut stream = std::pin::pin!(client::json_stream(resp));
    while let Some(msg) = stream.next().await {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                r.finish();
                return Err(e);
            }
        };
        r.handle(&msg)?;
    }
    r.finish();
    Ok(r.aux)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plain(msgs: &[Value]) -> (String, Result<()>) {
        let mut out = Vec::new();
        let mut r = Renderer::new(Mode::Plain, &mut out);
        let mut res = Ok(());
        for m in msgs {
            res = r.handle(m);
            if res.is_err() {
                break;
            }
        }
        drop(r);
        (String::from_utf8_lossy(&out).into_owned(), res)
    }

    #[test]
    fn plain_output_has_status_lines_and_no_bars() {
        let (out, res) = plain(&[
            json!({"status": "Pulling from a/b", "id": "t"}),
            json!({"status": "Pulling fs layer", "id": "abc", "progressDetail": {}}),
            json!({"status": "Downloading", "id": "abc", "progressDetail": {"current": 5, "total": 10}, "progress": "[==>  ]"}),
            json!({"status": "Pull complete", "id": "abc", "progressDetail": {}}),
            json!({"status": "Digest: sha256:00"}),
            json!({"status": "Status: Downloaded newer image for a/b:t"}),
        ]);
        assert!(res.is_ok());
        assert_eq!(
            out,
            "t: Pulling from a/b\nabc: Pulling fs layer\nabc: Pull complete\nDigest: sha256:00\nStatus: Downloaded newer image for a/b:t\n"
        );
    }

    #[test]
    fn an_error_in_the_stream_is_an_error_after_what_came_before() {
        let (out, res) = plain(&[
            json!({"status": "Preparing", "id": "abc"}),
            json!({"error": "boom", "errorDetail": {"message": "boom: denied"}}),
        ]);
        assert_eq!(out, "abc: Preparing\n");
        let e = res.expect_err("an error");
        assert_eq!(e.to_string(), "boom: denied");
    }

    #[test]
    fn quiet_shows_nothing_but_keeps_aux_and_text_is_printed_as_is() {
        let mut out = Vec::new();
        let mut r = Renderer::new(Mode::Quiet, &mut out);
        r.handle(&json!({"status": "x"})).expect("ok");
        r.handle(&json!({"aux": {"Digest": "d"}})).expect("ok");
        assert_eq!(r.aux.len(), 1);
        drop(r);
        assert!(out.is_empty());
        let mut out = Vec::new();
        let mut r = Renderer::new(Mode::Plain, &mut out);
        r.handle(&json!({"stream": "Loaded image: a:b\n"}))
            .expect("ok");
        drop(r);
        assert_eq!(out, b"Loaded image: a:b\n");
    }
}
