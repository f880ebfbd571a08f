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

/// The json-file log of a container: one JSON line per line of output, rotated at
/// `max-size` keeping `max-file` files (`PATH`, `PATH.1`, ...) as dockerd's driver.
pub struct LogWriter {
    file: std::fs::File,
    path: PathBuf,
    size: u64,
    max_size: u64,
    max_file: u32,
}

/// A json-file log writer shared by a container's stdout and stderr copiers.
pub type LogFile = Arc<Mutex<LogWriter>>;

/// Parses `10k`, `1m`, `1g` or a byte count (binary units, as dockerd).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.trim_end_matches('b');
    let (num, mul) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

/// Opens (appending) the json-file log at `path`; `max_size` 0 means no rotation.
pub fn open_log(path: &Path, max_size: u64, max_file: u32) -> std::io::Result<LogFile> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let size = file.metadata()?.len();
    Ok(Arc::new(Mutex::new(LogWriter {
        file,
        path: path.to_path_buf(),
        size,
        max_size,
        max_file: max_file.max(1),
    })))
}

impl LogWriter {
    fn rotate(&mut self) -> std::io::Result<()> {
        let name = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.max_file > 1 {
            for n in (1..self.max_file - 1).rev() {
                let _ = std::fs::rename(name(n), name(n + 1));
            }
            std::fs::rename(&self.path, name(1))?;
        }
        use std::os::unix::fs::OpenOptionsExt;
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn now_nanos() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn write_log(log: &LogFile, stream: u8, data: &[u8]) {
    let name = if stream == 2 { "stderr" } else { "stdout" };
    let mut f = log.lock().unwrap_or_else(|p| p.into_inner());
    for line in data.split_inclusive(|b| *b == b'\n') {
        let l = LogLine {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: name.into(),
            time: now_nanos(),
        };
        let mut out = match serde_json::to_vec(&l) {
            Ok(v) => v,
            Err(_) => continue,
        };
        out.push(b'\n');
        if f.max_size > 0 && f.size > 0 && f.size + out.len() as u64 > f.max_size {
            if let Err(e) = f.rotate() {
                tracing::warn!(error = %e, "rotating container log");
            }
        }
        match f.file.write_all(&out) {
            Ok(()) => f.size += out.len() as u64,
            Err(e) => {
                tracing::warn!(error = %e, "writing container log");
                return;
            }
        }
    }
}

/// Copies one output FIFO until the container has exited and every writer is gone.
/// Line-buffers for the log.
///
/// While the container runs the FIFO is held open read-write, so the copier never sees a
/// spurious end-of-file (before the shim opens its end, or across a berthd restart).
/// Once the exit is known that end is swapped for a read-only one: the pipe then reports
/// end-of-file as soon as the last writer (the container's processes, or the shim's
/// terminal copier) has closed, so what is still in flight is read in full and nothing
/// waits for a quiet period. `DRAIN_LIMIT` only bounds a writer that never closes.
async fn copy_out(
    path: PathBuf,
    stream: u8,
    log: Option<LogFile>,
    out: broadcast::Sender<Chunk>,
    mut exited: watch::Receiver<bool>,
) {
    const DRAIN_LIMIT: Duration = Duration::from_millis(500);
    let mut rx = match pipe::OpenOptions::new()
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
    let mut draining = false;
    loop {
        if draining {
            match tokio::time::timeout(DRAIN_LIMIT, rx.readable()).await {
                Err(_) => break,
                Ok(Err(_)) => break,
                Ok(Ok(())) => {}
            }
        } else if *exited.borrow() {
            draining = true;
            // Opened before the read-write end is dropped, so the pipe (and what is
            // buffered in it) never loses its last reader in between.
            match pipe::OpenOptions::new().open_receiver(&path) {
                Ok(read_only) => rx = read_only,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "reopening output FIFO");
                }
            }
            continue;
        } else {
            tokio::select! {
                r = rx.readable() => { if r.is_err() { break; } }
                _ = exited.wait_for(|e| *e) => continue,
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

/// Reads a json-file log and its rotated files in order, on and on (`docker logs -f`),
/// across rotations: it remembers the file it read by inode, so that when that file
/// has been renamed to `PATH.1` (or further) it finishes it, then reads the newer ones,
/// and loses nothing that is still on disk.
pub struct LogReader {
    path: PathBuf,
    /// The file read last (device, inode) and how far.
    pos: Option<((u64, u64), u64)>,
}

impl LogReader {
    /// A reader of the log at `path` (and `path.1`, ...), from its oldest line.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            pos: None,
        }
    }

    /// Every file of the log, oldest first, opened: opened newest first and kept by
    /// inode, so a rotation while they are opened yields each file once, in order.
    fn open_all(&self) -> Vec<(std::fs::File, (u64, u64))> {
        use std::os::unix::fs::MetadataExt;
        let mut files: Vec<(std::fs::File, (u64, u64))> = Vec::new();
        let names = std::iter::once(self.path.clone())
            .chain((1..100).map(|n| PathBuf::from(format!("{}.{n}", self.path.display()))));
        for p in names {
            let Ok(f) = std::fs::File::open(&p) else {
                break;
            };
            let Ok(m) = f.metadata() else {
                break;
            };
            let key = (m.dev(), m.ino());
            if !files.iter().any(|(_, k)| *k == key) {
                files.push((f, key));
            }
        }
        files.reverse();
        files
    }

    /// The lines written since the last call (everything on the first), oldest first.
    pub fn next_lines(&mut self) -> Vec<LogLine> {
        let files = self.open_all();
        let (first, mut from) = match self.pos {
            None => (0, 0),
            Some((key, off)) => match files.iter().position(|(_, k)| *k == key) {
                // Truncated in place (max-file 1 rotates so): from its start.
                Some(i) if files[i].0.metadata().map(|m| m.len()).unwrap_or(0) < off => (i, 0),
                Some(i) => (i, off),
                // Rotated away: whatever is left is newer than what was read.
                None => (0, 0),
            },
        };
        let mut out = Vec::new();
        for (f, key) in &files[first.min(files.len())..] {
            let (lines, end) = read_lines(f, from);
            out.extend(lines);
            self.pos = Some((*key, end));
            from = 0;
        }
        out
    }
}

/// Whole JSON lines of an open log file from `from`, and the offset after them.
fn read_lines(mut f: &std::fs::File, from: u64) -> (Vec<LogLine>, u64) {
    use std::io::{Read, Seek};
    if f.seek(std::io::SeekFrom::Start(from)).is_err() {
        return (Vec::new(), from);
    }
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
    fn rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l.json");
        let log = open_log(&p, 200, 3).unwrap();
        for i in 0..20 {
            write_log(&log, 1, format!("line {i}\n").as_bytes());
        }
        // Three files: the log and two rotated ones.
        let exists = |n: &str| d.path().join(format!("l.json{n}")).exists();
        assert_eq!(
            [exists(""), exists(".1"), exists(".2"), exists(".3")],
            [true, true, true, false]
        );
        let all: Vec<String> = LogReader::new(&p)
            .next_lines()
            .into_iter()
            .map(|l| l.log)
            .collect();
        assert_eq!(all.last().unwrap(), "line 19\n");
        assert!(all.len() < 20);
        assert_eq!(parse_size("10k"), Some(10240));
        assert_eq!(parse_size("1m"), Some(1 << 20));
    }

    #[test]
    fn reader_follows_rotations() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l.json");
        let log = open_log(&p, 300, 4).unwrap();
        let mut r = LogReader::new(&p);
        let mut seen = Vec::new();
        for i in 0..40 {
            write_log(&log, 1, format!("line {i}\n").as_bytes());
            // Read every third line: rotations happen between reads.
            if i % 3 == 0 {
                seen.extend(r.next_lines().into_iter().map(|l| l.log));
            }
        }
        seen.extend(r.next_lines().into_iter().map(|l| l.log));
        let want: Vec<String> = (0..40).map(|i| format!("line {i}\n")).collect();
        assert_eq!(seen, want);
        assert!(r.next_lines().is_empty());
    }

    #[test]
    fn frames() {
        assert_eq!(frame(2, b"ab"), vec![2, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn log_lines_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l.json");
        let log = open_log(&p, 0, 1).unwrap();
        write_log(&log, 1, b"a\nb\n");
        write_log(&log, 2, b"c\n");
        let mut reader = LogReader::new(&p);
        let lines = reader.next_lines();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].stream, "stderr");
        assert_eq!(lines[1].log, "b\n");
        assert_eq!(reader.next_lines().len(), 0);
    }
}
