//! A container's standard streams: FIFOs under the CRI's state directory that the
//! shim writes to (and reads stdin from), read here and written to the container's log
//! in the CRI format the kubelet reads (`TIMESTAMP STREAM F|P CONTENT`, one line per
//! line of output, `P` for a part of a line longer than 16 KiB), and fanned out to
//! attached clients. After a berthd restart the FIFOs of running containers are opened
//! again and their logs appended to.

use bytes::Bytes;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, watch};

/// The longest log line written whole; longer ones are split into `P` parts.
const MAX_LINE: usize = 16 * 1024;

/// Which stream output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// stdout (or the terminal).
    Stdout,
    /// stderr.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What attached clients receive.
#[derive(Debug, Clone)]
pub enum Output {
    /// Bytes of output.
    Data(Stream, Bytes),
    /// The process has exited and its output is drained.
    End,
}

/// The FIFO paths of one process.
#[derive(Debug, Clone)]
pub struct Fifos {
    /// stdin, if it has one.
    pub stdin: Option<PathBuf>,
    /// stdout.
    pub stdout: PathBuf,
    /// stderr (None with a terminal).
    pub stderr: Option<PathBuf>,
}

fn mkfifo(p: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(p);
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(std::io::Error::from)
}

impl Fifos {
    /// The paths for process `name` in `dir` (made with `make`, or found again).
    pub fn paths(dir: &Path, name: &str, stdin: bool, tty: bool) -> Self {
        Self {
            stdin: stdin.then(|| dir.join(format!("{name}-stdin"))),
            stdout: dir.join(format!("{name}-stdout")),
            stderr: (!tty).then(|| dir.join(format!("{name}-stderr"))),
        }
    }

    /// Makes the FIFOs.
    pub fn make(&self) -> std::io::Result<()> {
        if let Some(d) = self.stdout.parent() {
            std::fs::create_dir_all(d)?;
        }
        for p in self
            .stdin
            .iter()
            .chain(std::iter::once(&self.stdout))
            .chain(self.stderr.iter())
        {
            mkfifo(p)?;
        }
        Ok(())
    }

    /// Removes them.
    pub fn remove(&self) {
        for p in self
            .stdin
            .iter()
            .chain(std::iter::once(&self.stdout))
            .chain(self.stderr.iter())
        {
            let _ = std::fs::remove_file(p);
        }
    }

    /// The stdio the supervisor gets for them.
    pub fn stdio(&self, terminal: bool) -> super::supervisor::Stdio {
        super::supervisor::Stdio {
            stdin: self.stdin.clone(),
            stdout: Some(self.stdout.clone()),
            stderr: self.stderr.clone(),
            terminal,
        }
    }

    /// Opens stdin for writing (read-write, so that the open never blocks and the
    /// process does not see end-of-file while berthd holds it).
    pub fn open_stdin(&self) -> std::io::Result<Option<pipe::Sender>> {
        match &self.stdin {
            Some(p) => Ok(Some(
                pipe::OpenOptions::new().read_write(true).open_sender(p)?,
            )),
            None => Ok(None),
        }
    }
}

/// A container's CRI log file, reopened on ReopenContainerLog (after the kubelet
/// rotated it).
pub struct Log {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

impl Log {
    /// Opens (or creates) the log at `path`.
    pub fn open(path: &Path) -> std::io::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            path: path.to_path_buf(),
            file: Mutex::new(Some(open_append(path)?)),
        }))
    }

    /// Closes the file and opens `path` again (a new file if it was renamed away).
    pub fn reopen(&self) -> std::io::Result<()> {
        let f = open_append(&self.path)?;
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
        Ok(())
    }

    /// Writes one line (`partial`: a part of a longer one).
    fn line(&self, stream: Stream, partial: bool, content: &[u8]) {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let tag = if partial { "P" } else { "F" };
        let mut buf = Vec::with_capacity(content.len() + 48);
        buf.extend_from_slice(format!("{ts} {} {tag} ", stream.name()).as_bytes());
        buf.extend_from_slice(content);
        buf.push(b'\n');
        let mut g = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = g.as_mut() {
            if let Err(e) = f.write_all(&buf) {
                tracing::warn!(path = %self.path.display(), error = %e, "writing container log");
            }
        }
    }
}

/// Splits output into log lines: whole lines as `F`, parts of over-long ones as `P`;
/// what is left is kept for the next chunk.
fn write_lines(log: &Log, stream: Stream, pending: &mut Vec<u8>, data: &[u8]) {
    pending.extend_from_slice(data);
    let mut start = 0;
    while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n') {
        let end = start + pos;
        let mut s = start;
        while end - s > MAX_LINE {
            log.line(stream, true, &pending[s..s + MAX_LINE]);
            s += MAX_LINE;
        }
        log.line(stream, false, &pending[s..end]);
        start = end + 1;
    }
    while pending.len() - start > MAX_LINE {
        log.line(stream, true, &pending[start..start + MAX_LINE]);
        start += MAX_LINE;
    }
    pending.drain(..start);
}

/// Copies one output FIFO to the log and to attached clients until the process has
/// exited and the FIFO is drained.
async fn copy_out(
    path: PathBuf,
    stream: Stream,
    log: Option<Arc<Log>>,
    out: broadcast::Sender<Output>,
    exited: watch::Receiver<bool>,
) {
    // Read-write: the FIFO never reports end-of-file while berthd waits for the shim
    // to open it (or after a berthd restart, before the shim writes again).
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
    let mut pending = Vec::new();
    crate::containers::io::drain_fifo(&path, rx, exited, |data| {
        let _ = out.send(Output::Data(stream, Bytes::copy_from_slice(data)));
        if let Some(log) = &log {
            write_lines(log, stream, &mut pending, data);
        }
    })
    .await;
    if let (Some(log), false) = (&log, pending.is_empty()) {
        log.line(stream, false, &pending);
    }
}

/// The streams of a running container: its log, its attach fan-out, its stdin.
pub struct ContainerIo {
    /// The FIFOs.
    pub fifos: Fifos,
    /// Whether it has a terminal.
    pub tty: bool,
    /// Its stdin (while open).
    pub stdin: tokio::sync::Mutex<Option<pipe::Sender>>,
    /// Output for attached clients.
    pub out: broadcast::Sender<Output>,
    /// The log, if the kubelet asked for one.
    pub log: Option<Arc<Log>>,
    exited: watch::Sender<bool>,
    done: watch::Receiver<bool>,
}

impl ContainerIo {
    /// Starts copying the FIFOs (made already, or found again after a restart).
    pub fn start(fifos: Fifos, tty: bool, log_path: Option<&Path>) -> std::io::Result<Arc<Self>> {
        let log = log_path.map(Log::open).transpose()?;
        let stdin = fifos.open_stdin()?;
        let (out, _) = broadcast::channel(1024);
        let (exited, exited_rx) = watch::channel(false);
        let (done_tx, done) = watch::channel(false);
        let a = tokio::spawn(copy_out(
            fifos.stdout.clone(),
            Stream::Stdout,
            log.clone(),
            out.clone(),
            exited_rx.clone(),
        ));
        let b = fifos.stderr.clone().map(|p| {
            tokio::spawn(copy_out(
                p,
                Stream::Stderr,
                log.clone(),
                out.clone(),
                exited_rx,
            ))
        });
        let out2 = out.clone();
        tokio::spawn(async move {
            let _ = a.await;
            if let Some(b) = b {
                let _ = b.await;
            }
            let _ = out2.send(Output::End);
            let _ = done_tx.send(true);
        });
        Ok(Arc::new(Self {
            fifos,
            tty,
            stdin: tokio::sync::Mutex::new(stdin),
            out,
            log,
            exited,
            done,
        }))
    }

    /// The process has exited: drain the FIFOs, then end. Returns once drained.
    pub async fn finish(&self) {
        let _ = self.exited.send(true);
        let mut d = self.done.clone();
        let _ = d.wait_for(|d| *d).await;
    }

    /// Whether the output is drained and the copiers have ended.
    pub fn finished(&self) -> bool {
        *self.done.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<(String, String, String)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.splitn(4, ' ').collect();
                assert!(chrono::DateTime::parse_from_rfc3339(f[0]).is_ok(), "{l}");
                (f[1].to_string(), f[2].to_string(), f[3].to_string())
            })
            .collect()
    }

    #[test]
    fn log_lines_in_the_cri_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c/0.log");
        let log = Log::open(&p).unwrap();
        let mut pending = Vec::new();
        write_lines(&log, Stream::Stdout, &mut pending, b"hello\nwor");
        write_lines(&log, Stream::Stdout, &mut pending, b"ld\n\n");
        let long = vec![b'x'; MAX_LINE + 10];
        write_lines(&log, Stream::Stderr, &mut pending, &long);
        write_lines(&log, Stream::Stderr, &mut pending, b"\n");
        let got = lines(&p);
        assert_eq!(got[0], ("stdout".into(), "F".into(), "hello".into()));
        assert_eq!(got[1], ("stdout".into(), "F".into(), "world".into()));
        assert_eq!(got[2], ("stdout".into(), "F".into(), "".into()));
        assert_eq!(got[3].1, "P");
        assert_eq!(got[3].2.len(), MAX_LINE);
        assert_eq!(got[4], ("stderr".into(), "F".into(), "x".repeat(10)));
        assert!(pending.is_empty());
    }

    #[test]
    fn reopen_starts_a_new_file_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let log = Log::open(&p).unwrap();
        log.line(Stream::Stdout, false, b"one");
        std::fs::rename(&p, dir.path().join("0.log.1")).unwrap();
        log.line(Stream::Stdout, false, b"two");
        log.reopen().unwrap();
        log.line(Stream::Stdout, false, b"three");
        assert_eq!(lines(&dir.path().join("0.log.1")).len(), 2);
        assert_eq!(
            lines(&p),
            vec![("stdout".into(), "F".into(), "three".into())]
        );
    }
}
