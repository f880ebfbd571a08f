//! The init process's output when the shim logs it (berth's `berth.shim.v1.Options`
//! log): the container writes to pipes (or its terminal) that the shim holds; the shim's
//! poll loop reads them, writes every line to the json-file log (`jsonlog`) at once, and
//! forwards the bytes to the caller's stdout/stderr:
//!
//! - a FIFO is opened write-only and non-blocking, so the shim knows whether it has a
//!   reader. While it has one, what it cannot take yet waits in a small buffer and the
//!   shim stops reading that pipe until it drains: the container waits for a slow
//!   reader, and an attached client loses nothing. While it has none (ENXIO at open,
//!   EPIPE or POLLERR later: the caller is down), output is logged and not forwarded,
//!   so the container never blocks; each new chunk tries the FIFO again, so a caller
//!   that reopens it after a restart gets what follows.
//! - a regular file gets everything (appended); "" gets nothing.
//!
//! No threads: the loop in `server` polls these descriptors beside the task API's.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::jsonlog::{self, JsonLog, LineSplitter};
use crate::sys;

/// Bytes read at a time; also the most a FIFO's backlog holds before the shim stops
/// reading the pipe.
const CHUNK: usize = jsonlog::LINE_MAX;

enum Forward {
    Nowhere,
    File(File),
    Fifo {
        path: PathBuf,
        fd: Option<File>,
        pending: Vec<u8>,
    },
}

fn open_fifo(path: &PathBuf) -> Option<File> {
    // ENXIO: nobody reads it now.
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()
}

impl Forward {
    fn new(path: &str) -> Result<Self, String> {
        if path.is_empty() {
            return Ok(Forward::Nowhere);
        }
        let p = path
            .strip_prefix("fifo://")
            .or_else(|| path.strip_prefix("file://"))
            .unwrap_or(path);
        let is_fifo = std::fs::metadata(p)
            .map(|m| m.file_type().is_fifo())
            .unwrap_or(false);
        if is_fifo {
            let path = PathBuf::from(p);
            let fd = open_fifo(&path);
            return Ok(Forward::Fifo {
                path,
                fd,
                pending: Vec::new(),
            });
        }
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .map(Forward::File)
            .map_err(|e| format!("open {path}: {e}"))
    }

    fn send(&mut self, data: &[u8]) {
        match self {
            Forward::Nowhere => {}
            Forward::File(f) => {
                let _ = f.write_all(data);
            }
            Forward::Fifo { path, fd, pending } => {
                if fd.is_none() {
                    *fd = open_fifo(path);
                }
                if fd.is_none() {
                    return;
                }
                pending.extend_from_slice(data);
                self.flush();
            }
        }
    }

    /// Write what the FIFO takes now; a reader gone drops the backlog.
    fn flush(&mut self) {
        let Forward::Fifo { fd, pending, .. } = self else {
            return;
        };
        let Some(f) = fd.as_mut() else {
            pending.clear();
            return;
        };
        while !pending.is_empty() {
            match f.write(pending) {
                Ok(0) => break,
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // EPIPE: the reader went away (berthd is down).
                    *fd = None;
                    *pending = Vec::new();
                    break;
                }
            }
        }
        if pending.is_empty() && pending.capacity() > CHUNK {
            *pending = Vec::new();
        }
    }

    fn backlog(&self) -> bool {
        matches!(self, Forward::Fifo { fd: Some(_), pending, .. } if !pending.is_empty())
    }

    fn fifo_fd(&self) -> Option<i32> {
        match self {
            Forward::Fifo { fd: Some(f), .. } => Some(f.as_raw_fd()),
            _ => None,
        }
    }

    fn drop_reader(&mut self) {
        if let Forward::Fifo { fd, pending, .. } = self {
            *fd = None;
            *pending = Vec::new();
        }
    }

    /// Let go of the FIFO (the caller then reads end-of-file).
    fn close(&mut self) {
        if let Forward::Fifo { fd, pending, .. } = self {
            *fd = None;
            *pending = Vec::new();
        }
    }
}

/// One stream: where it is read from, how it is split, where it goes.
struct Stream {
    name: &'static str,
    src: Option<File>,
    lines: LineSplitter,
    fwd: Forward,
}

/// The init's logged output.
pub struct Outputs {
    log: JsonLog,
    streams: Vec<Stream>,
    entry: Vec<u8>,
}

/// A descriptor the poll loop should watch, and for what.
pub struct Interest {
    /// The descriptor.
    pub fd: i32,
    /// POLLIN (a source) or POLLOUT (a FIFO with a backlog).
    pub events: i16,
    stream: usize,
}

impl Outputs {
    /// Outputs logged to `log`; streams are added as the process is made.
    pub fn new(log: JsonLog) -> Self {
        Self {
            log,
            streams: Vec::new(),
            entry: Vec::new(),
        }
    }

    /// Read `src` (a pipe's read end, or a terminal's master) as stream `name`,
    /// forwarding to `dest` (a FIFO or file path as the caller gave it).
    pub fn add(&mut self, name: &'static str, src: File, dest: &str) -> Result<(), String> {
        self.streams.push(Stream {
            name,
            src: Some(src),
            lines: LineSplitter::default(),
            fwd: Forward::new(dest)?,
        });
        Ok(())
    }

    /// What to poll: each source with no backlog waiting (POLLIN), each FIFO with one
    /// (POLLOUT).
    pub fn interests(&self) -> Vec<Interest> {
        let mut out = Vec::new();
        for (i, s) in self.streams.iter().enumerate() {
            if let (Some(src), false) = (&s.src, s.fwd.backlog()) {
                out.push(Interest {
                    fd: src.as_raw_fd(),
                    events: libc::POLLIN,
                    stream: i,
                });
            }
            if let (Some(fd), true) = (s.fwd.fifo_fd(), s.fwd.backlog()) {
                out.push(Interest {
                    fd,
                    events: libc::POLLOUT,
                    stream: i,
                });
            }
        }
        out
    }

    /// Act on the poll results (`revents`, in the order of `interests`). A descriptor
    /// closed or replaced since the poll is skipped: its number may be another's now.
    pub fn on_ready(&mut self, interests: &[Interest], revents: &[i16]) {
        for (x, rev) in interests.iter().zip(revents) {
            if *rev == 0 {
                continue;
            }
            let i = x.stream;
            if x.events == libc::POLLIN {
                if self.streams[i].src.as_ref().map(|f| f.as_raw_fd()) == Some(x.fd) {
                    self.read_once(i);
                }
            } else if self.streams[i].fwd.fifo_fd() == Some(x.fd) {
                if rev & (libc::POLLERR | libc::POLLHUP) != 0 {
                    self.streams[i].fwd.drop_reader();
                } else {
                    self.streams[i].fwd.flush();
                }
            }
            self.close_if_done(i);
        }
    }

    /// One read of stream `i`: logged, forwarded; end-of-file (EIO for a terminal whose
    /// every other end is closed) ends the stream.
    fn read_once(&mut self, i: usize) {
        let mut buf = [0u8; CHUNK];
        let Some(src) = self.streams[i].src.as_mut() else {
            return;
        };
        let n = match src.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => 0,
        };
        let Self {
            log,
            streams,
            entry,
        } = self;
        let s = &mut streams[i];
        let name = s.name;
        let mut emit = |text: &[u8], whole: bool, t: SystemTime| {
            entry.clear();
            jsonlog::encode_entry(entry, name, text, whole, &jsonlog::rfc3339_nanos(t));
            log.write(entry);
        };
        if n == 0 {
            s.lines.finish(&mut emit);
            s.src = None;
            return;
        }
        s.lines.feed(&buf[..n], &mut emit);
        s.fwd.send(&buf[..n]);
    }

    fn close_if_done(&mut self, i: usize) {
        let s = &mut self.streams[i];
        if s.src.is_none() && !s.fwd.backlog() {
            s.fwd.close();
        }
    }

    /// Read whatever the sources hold right now, backlog or not (the process has exited:
    /// its output is logged before its exit is reported). Bounded, for a writer that
    /// never stops.
    pub fn drain_now(&mut self) {
        let mut budget = 16 * CHUNK;
        for i in 0..self.streams.len() {
            while budget > 0 {
                let Some(fd) = self.streams[i].src.as_ref().map(|f| f.as_raw_fd()) else {
                    break;
                };
                let mut p = [libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                }];
                if sys::poll(&mut p, 0).unwrap_or(0) == 0 {
                    break;
                }
                self.read_once(i);
                budget = budget.saturating_sub(CHUNK);
            }
            self.close_if_done(i);
        }
    }

    /// Read every source to its end and hand every backlog to its reader, for at most
    /// `limit` (the task is being deleted; the caller reads on until end-of-file).
    pub fn drain_to_end(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let interests = self.interests();
            if interests.is_empty() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut fds: Vec<libc::pollfd> = interests
                .iter()
                .map(|x| libc::pollfd {
                    fd: x.fd,
                    events: x.events,
                    revents: 0,
                })
                .collect();
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            if sys::poll(&mut fds, ms.max(1)).is_err() {
                break;
            }
            let revents: Vec<i16> = fds.iter().map(|p| p.revents).collect();
            self.on_ready(&interests, &revents);
        }
        for s in &mut self.streams {
            s.src = None;
            s.fwd.close();
        }
    }
}
