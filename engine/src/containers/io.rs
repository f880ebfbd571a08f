//! A process's standard streams: FIFOs under the exec root that the shim writes to,
//! read here and fanned out to attached clients; the stdin FIFO fed from an attached
//! client; and the reader of the json-file log, which the shim writes itself (for a
//! container's main process, so that nothing is lost while berthd is down).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
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

/// Copies one output FIFO until the container has exited and every writer is gone.
///
/// While the container runs the FIFO is held open read-write, so the copier never sees a
/// spurious end-of-file (before the shim opens its end, or across a berthd restart).
/// Once the exit is known that end is swapped for a read-only one: the pipe then reports
/// end-of-file as soon as the last writer (the container's processes, or the shim's
/// terminal copier) has closed, so what is still in flight is read in full and nothing
/// waits for a quiet period. `DRAIN_LIMIT` only bounds a writer that never closes.
async fn copy_out(
    path: PathBuf,
    mut rx: pipe::Receiver,
    stream: u8,
    out: broadcast::Sender<Chunk>,
    mut exited: watch::Receiver<bool>,
) {
    const DRAIN_LIMIT: Duration = Duration::from_millis(500);
    let mut buf = vec![0u8; 32 * 1024];
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
            Ok(n) => {
                let _ = out.send(Chunk::Data(stream, Bytes::copy_from_slice(&buf[..n])));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
}

/// Starts copiers for stdout and (without a terminal) stderr; returns a task that
/// ends once both have drained, after which `Chunk::End` has been sent. The FIFOs are
/// opened (read-write) before this returns: the shim forwards output only to a FIFO
/// that has a reader, so it must have one before the process starts.
pub fn spawn_copiers(
    fifos: &Fifos,
    tty: bool,
    out: broadcast::Sender<Chunk>,
    exited: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let open = |p: &Path| pipe::OpenOptions::new().read_write(true).open_receiver(p);
    let rx_out = open(&fifos.stdout)?;
    let rx_err = if tty {
        None
    } else {
        Some(open(&fifos.stderr)?)
    };
    let a = tokio::spawn(copy_out(
        fifos.stdout.clone(),
        rx_out,
        1,
        out.clone(),
        exited.clone(),
    ));
    let b =
        rx_err.map(|rx| tokio::spawn(copy_out(fifos.stderr.clone(), rx, 2, out.clone(), exited)));
    Ok(tokio::spawn(async move {
        let _ = a.await;
        if let Some(b) = b {
            let _ = b.await;
        }
        let _ = out.send(Chunk::End);
    }))
}

/// Reads a json-file log and its rotated files in order, on and on (`docker logs -f`),
/// across rotations. The log is written by the container's shim, at the container's
/// pace, and rotated as dockerd rotates it (the oldest file removed, each `PATH.i`
/// renamed `PATH.i+1`, `PATH` renamed `PATH.1`, a new `PATH`). The reader keeps the
/// file it read last open: when that file has been renamed (or even removed) it finishes
/// it through its descriptor, then reads the newer ones, so it loses nothing a rotation
/// left on disk, and a new file that reuses a removed file's inode is never taken for it.
pub struct LogReader {
    path: PathBuf,
    /// The file read last, its (device, inode), and how far.
    pos: Option<(std::fs::File, (u64, u64), u64)>,
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
    /// inode, so a rotation while they are opened yields each file once, in order (files
    /// only move to higher numbers). A rotation in progress leaves one name missing at a
    /// time, so only two missing names in a row end the list.
    fn open_all(&self) -> Vec<(std::fs::File, (u64, u64))> {
        use std::os::unix::fs::MetadataExt;
        let mut files: Vec<(std::fs::File, (u64, u64))> = Vec::new();
        let names = std::iter::once(self.path.clone())
            .chain((1..100).map(|n| PathBuf::from(format!("{}.{n}", self.path.display()))));
        let mut missing = 0;
        for p in names {
            let opened = std::fs::File::open(&p).and_then(|f| f.metadata().map(|m| (f, m)));
            let Ok((f, m)) = opened else {
                missing += 1;
                if missing == 2 {
                    break;
                }
                continue;
            };
            missing = 0;
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
        let mut out = Vec::new();
        let first = match self.pos.take() {
            None => 0,
            Some((f, key, off)) => match files.iter().position(|(_, k)| *k == key) {
                Some(i) => {
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    // Truncated in place (max-file 1 rotates so): from its start.
                    let from = if len < off { 0 } else { off };
                    let (lines, end) = read_lines(&f, from);
                    out.extend(lines);
                    self.pos = Some((f, key, end));
                    i + 1
                }
                None => {
                    // Rotated away: finish it, then everything there is, all newer.
                    out.extend(read_lines(&f, off).0);
                    0
                }
            },
        };
        for (f, key) in files.into_iter().skip(first) {
            let (lines, end) = read_lines(&f, 0);
            out.extend(lines);
            self.pos = Some((f, key, end));
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
    use std::io::Write;

    /// A json-file log as the shim writes it: `line N` entries, rotated as dockerd
    /// rotates (at `max_size` bytes, `max_file` files).
    struct TestLog {
        path: PathBuf,
        file: std::fs::File,
        size: u64,
        max_size: u64,
        max_file: u32,
    }

    impl TestLog {
        fn new(path: &Path, max_size: u64, max_file: u32) -> Self {
            let file = std::fs::File::create(path).unwrap();
            Self {
                path: path.to_path_buf(),
                file,
                size: 0,
                max_size,
                max_file,
            }
        }

        fn write(&mut self, stream: &str, text: &str) {
            if self.max_size > 0 && self.size >= self.max_size {
                let name = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
                for n in (1..self.max_file - 1).rev() {
                    let _ = std::fs::rename(name(n), name(n + 1));
                }
                std::fs::rename(&self.path, name(1)).unwrap();
                self.file = std::fs::File::create(&self.path).unwrap();
                self.size = 0;
            }
            let l = LogLine {
                log: text.into(),
                stream: stream.into(),
                time: "2026-01-02T03:04:05.000000006Z".into(),
            };
            let mut b = serde_json::to_vec(&l).unwrap();
            b.push(b'\n');
            self.file.write_all(&b).unwrap();
            self.size += b.len() as u64;
        }
    }

    #[test]
    fn reader_reads_rotated_files_oldest_first() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l.json");
        let mut log = TestLog::new(&p, 200, 3);
        for i in 0..20 {
            log.write("stdout", &format!("line {i}\n"));
        }
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
        let first: usize = all[0]["line ".len()..].trim().parse().unwrap();
        let want: Vec<String> = (first..20).map(|i| format!("line {i}\n")).collect();
        assert_eq!(all, want);
        assert_eq!(parse_size("10k"), Some(10240));
        assert_eq!(parse_size("1m"), Some(1 << 20));
    }

    #[test]
    fn reader_follows_rotations() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l.json");
        let mut log = TestLog::new(&p, 300, 4);
        let mut r = LogReader::new(&p);
        let mut seen = Vec::new();
        for i in 0..40 {
            log.write("stdout", &format!("line {i}\n"));
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
    fn reader_survives_a_rotation_in_progress_and_a_removed_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l.json");
        let name = |n: u32| d.path().join(format!("l.json.{n}"));
        let mut log = TestLog::new(&p, 0, 1);
        log.write("stdout", "a\n");
        let mut r = LogReader::new(&p);
        assert_eq!(r.next_lines().len(), 1);
        log.write("stdout", "b\n");
        // Mid-rotation: the file read last is PATH.2, and PATH.1 is not there yet.
        std::fs::rename(&p, name(2)).unwrap();
        let mut newer = TestLog::new(&p, 0, 1);
        newer.write("stdout", "c\n");
        let got: Vec<String> = r.next_lines().into_iter().map(|l| l.log).collect();
        assert_eq!(got, ["b\n", "c\n"]);
        // The file read last is removed (the reader fell behind max-file): what it had
        // not read yet is read through its descriptor, then what exists.
        newer.write("stdout", "d\n");
        std::fs::remove_file(&p).unwrap();
        std::fs::remove_file(name(2)).unwrap();
        let mut newest = TestLog::new(&p, 0, 1);
        newest.write("stdout", "e\n");
        let got: Vec<String> = r.next_lines().into_iter().map(|l| l.log).collect();
        assert_eq!(got, ["d\n", "e\n"]);
    }

    #[test]
    fn frames() {
        assert_eq!(frame(2, b"ab"), vec![2, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn log_lines_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l.json");
        let mut log = TestLog::new(&p, 0, 1);
        log.write("stdout", "a\n");
        log.write("stdout", "b\n");
        log.write("stderr", "c\n");
        let mut reader = LogReader::new(&p);
        let lines = reader.next_lines();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].stream, "stderr");
        assert_eq!(lines[1].log, "b\n");
        assert_eq!(reader.next_lines().len(), 0);
    }
}
