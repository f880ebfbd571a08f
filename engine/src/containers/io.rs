//! A process's standard streams: FIFOs under the exec root that the shim writes to,
//! read here, copied to the json-file log (for a container's main process) and fanned
//! out to attached clients; and the stdin FIFO fed from an attached client.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, watch};

/// What attached clients receive.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// Bytes of stdout (1) or stderr (2).
    Data(u8, Bytes),
    /// The process has exited and its output is drained.
    End,
}

/// One line of the json-file log, as dockerd writes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogLine {
    /// The text, with its newline.
    pub log: String,
    /// "stdout" or "stderr".
    pub stream: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
}

/// The FIFO paths of one process.
#[derive(Debug, Clone)]
pub struct Fifos {
    /// stdin, when the process has one.
    pub stdin: Option<PathBuf>,
    /// stdout.
    pub stdout: PathBuf,
    /// stderr (unused with a terminal).
    pub stderr: PathBuf,
}

fn mkfifo(p: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(p);
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(std::io::Error::from)
}

impl Fifos {
    /// Makes the FIFOs `dir/PREFIX-stdout` (and so on).
    pub fn make(dir: &Path, prefix: &str, stdin: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let f = Self {
            stdin: stdin.then(|| dir.join(format!("{prefix}-stdin"))),
            stdout: dir.join(format!("{prefix}-stdout")),
            stderr: dir.join(format!("{prefix}-stderr")),
        };
        if let Some(i) = &f.stdin {
            mkfifo(i)?;
        }
        mkfifo(&f.stdout)?;
        mkfifo(&f.stderr)?;
        Ok(f)
    }

    /// Removes them.
    pub fn remove(&self) {
        if let Some(i) = &self.stdin {
            let _ = std::fs::remove_file(i);
        }
        let _ = std::fs::remove_file(&self.stdout);
        let _ = std::fs::remove_file(&self.stderr);
    }

    /// Opens stdin for writing (read-write, so the open never blocks).
    pub fn open_stdin(&self) -> std::io::Result<Option<pipe::Sender>> {
        match &self.stdin {
            Some(p) => Ok(Some(
                pipe::OpenOptions::new().read_write(true).open_sender(p)?,
            )),
            None => Ok(None),
        }
    }
}

/// A json-file log writer shared by a container's stdout and stderr copiers.
pub type LogFile = Arc<Mutex<std::fs::File>>;

/// Opens (appending) the json-file log at `path`.
pub fn open_log(path: &Path) -> std::io::Result<LogFile> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    Ok(Arc::new(Mutex::new(f)))
}

fn now_nanos() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn write_log(log: &LogFile, stream: u8, data: &[u8]) {
    let name = if stream == 2 { "stderr" } else { "stdout" };
    let mut out = Vec::new();
    for line in data.split_inclusive(|b| *b == b'\n') {
        let l = LogLine {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: name.into(),
            time: now_nanos(),
        };
        if serde_json::to_writer(&mut out, &l).is_ok() {
            out.push(b'\n');
        }
    }
    let mut f = log.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = f.write_all(&out) {
        tracing::warn!(error = %e, "writing container log");
    }
}

/// Copies one output FIFO until `exited` turns true, then drains what is left (until
/// 100 ms pass without data). Line-buffers for the log.
async fn copy_out(
    path: PathBuf,
    stream: u8,
    log: Option<LogFile>,
    out: broadcast::Sender<Chunk>,
    mut exited: watch::Receiver<bool>,
) {
    let rx = match pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&path)
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "opening output FIFO");
            return;
        }
    };
    let mut buf = vec![0u8; 32 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let emit = |data: &[u8], pending: &mut Vec<u8>| {
        let _ = out.send(Chunk::Data(stream, Bytes::copy_from_slice(data)));
        if let Some(log) = &log {
            pending.extend_from_slice(data);
            if let Some(pos) = pending.iter().rposition(|b| *b == b'\n') {
                let rest = pending.split_off(pos + 1);
                write_log(log, stream, pending);
                *pending = rest;
            }
        }
    };
    let mut draining = *exited.borrow();
    loop {
        if draining {
            match tokio::time::timeout(Duration::from_millis(100), rx.readable()).await {
                Err(_) => break,
                Ok(Err(_)) => break,
                Ok(Ok(())) => {}
            }
        } else {
            tokio::select! {
                r = rx.readable() => { if r.is_err() { break; } }
                _ = exited.wait_for(|e| *e) => { draining = true; continue; }
            }
        }
        match rx.try_read(&mut buf) {
            Ok(0) => {
                if draining {
                    break;
                }
            }
            Ok(n) => emit(&buf[..n], &mut pending),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    if let (Some(log), false) = (&log, pending.is_empty()) {
        write_log(log, stream, &pending);
    }
}

/// Starts copiers for stdout and (without a terminal) stderr; returns a task that
/// ends once both have drained, after which `Chunk::End` has been sent.
pub fn spawn_copiers(
    fifos: &Fifos,
    tty: bool,
    log: Option<LogFile>,
    out: broadcast::Sender<Chunk>,
    exited: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let a = tokio::spawn(copy_out(
        fifos.stdout.clone(),
        1,
        log.clone(),
        out.clone(),
        exited.clone(),
    ));
    let b =
        (!tty).then(|| tokio::spawn(copy_out(fifos.stderr.clone(), 2, log, out.clone(), exited)));
    tokio::spawn(async move {
        let _ = a.await;
        if let Some(b) = b {
            let _ = b.await;
        }
        let _ = out.send(Chunk::End);
    })
}

/// Reads the json-file log's entries.
pub fn read_log(path: &Path, from: u64) -> (Vec<LogLine>, u64) {
    use std::io::{Read, Seek};
    let Ok(mut f) = std::fs::File::open(path) else {
        return (Vec::new(), from);
    };
    let _ = f.seek(std::io::SeekFrom::Start(from));
    let mut s = Vec::new();
    let _ = f.read_to_end(&mut s);
    // Only whole lines; a line being written waits for the next read.
    let end = s
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let lines = s[..end]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect();
    (lines, from + end as u64)
}

/// A frame of Docker's multiplexed stream: `[stream, 0, 0, 0, len(be32)] payload`.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + data.len());
    v.push(stream);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(frame(2, b"ab"), vec![2, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn log_lines_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l.json");
        let log = open_log(&p).unwrap();
        write_log(&log, 1, b"a\nb\n");
        write_log(&log, 2, b"c\n");
        let (lines, off) = read_log(&p, 0);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].stream, "stderr");
        assert_eq!(lines[1].log, "b\n");
        assert_eq!(read_log(&p, off).0.len(), 0);
    }
}
