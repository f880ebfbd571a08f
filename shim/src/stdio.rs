//! A process's standard streams. Without a terminal the runtime and the container get
//! the caller's FIFOs or files directly (no copying, no threads), except stdin from a
//! FIFO, which goes through a pipe so that CloseIO can end it. With a terminal, the
//! pty master received on the console socket is copied to and from them by two small
//! threads.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::sys;

const STACK: usize = 64 * 1024;

/// Closes a process's stdin when asked (CloseIO).
#[derive(Clone, Default)]
pub struct StdinCloser(Arc<AtomicBool>);

impl StdinCloser {
    /// Ask the copier to stop and close the process's end.
    pub fn close(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn closed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

fn strip(path: &str) -> Result<&str, String> {
    if let Some(p) = path.strip_prefix("file://") {
        return Ok(p);
    }
    if path.starts_with("binary://") {
        return Err(format!(
            "stdio {path}: binary:// loggers are not supported by berth-shim"
        ));
    }
    Ok(path.strip_prefix("fifo://").unwrap_or(path))
}

fn is_fifo(path: &str) -> bool {
    std::fs::metadata(path)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false)
}

/// Open an output stream: a FIFO read-write (never blocks, never EPIPE), a file for
/// appending (made if missing), or /dev/null for "".
pub fn open_output(path: &str) -> Result<File, String> {
    if path.is_empty() {
        return OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"));
    }
    let p = strip(path)?;
    let r = if is_fifo(p) {
        OpenOptions::new().read(true).write(true).open(p)
    } else {
        OpenOptions::new().append(true).create(true).open(p)
    };
    r.map_err(|e| format!("open {path}: {e}"))
}

/// Open an input stream. For a FIFO: the read end of a pipe, fed by a thread that
/// copies from the FIFO until its writer closes it or CloseIO is asked (after what is
/// buffered in the FIFO).
pub fn open_input(path: &str) -> Result<(File, Option<StdinCloser>), String> {
    if path.is_empty() {
        let f = File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
        return Ok((f, None));
    }
    let p = strip(path)?;
    if !is_fifo(p) {
        let f = File::open(p).map_err(|e| format!("open {path}: {e}"))?;
        return Ok((f, None));
    }
    let (r, w) = sys::pipe().map_err(|e| format!("pipe: {e}"))?;
    let closer = StdinCloser::default();
    spawn_fifo_copy(p.to_string(), w, closer.clone())?;
    Ok((r, Some(closer)))
}

/// Copy from the FIFO at `path` to `to` until EOF, or until `closer` is asked and what
/// was already written to the FIFO has been copied (containerd's CloseIO: the writer
/// closes its end, then asks; the bytes still buffered in the FIFO belong to the
/// process); then close `to`.
pub fn spawn_fifo_copy(path: String, mut to: File, closer: StdinCloser) -> Result<(), String> {
    // Non-blocking open of the read side always succeeds; then poll for data.
    let from = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| format!("open {path}: {e}"))?;
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let mut from = from;
            let mut buf = [0u8; 8192];
            let mut had_writer = false;
            loop {
                // Read before the flag: once asked to close, drain without waiting and
                // stop at the first empty read.
                let closing = closer.closed();
                let mut pfd = [libc::pollfd {
                    fd: from.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }];
                if sys::poll(&mut pfd, if closing { 0 } else { 200 }).unwrap_or(0) == 0 {
                    if closing {
                        break;
                    }
                    continue;
                }
                match from.read(&mut buf) {
                    Ok(0) => {
                        // No writer: before the first one connects this is not the end.
                        if had_writer || closing {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    Ok(n) => {
                        had_writer = true;
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if closing {
                            break;
                        }
                        had_writer = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            drop(to);
        })
        .map(drop)
        .map_err(|e| format!("stdin thread: {e}"))
}

/// Copy a pty master's output to `to` until the terminal closes.
pub fn spawn_console_out(mut master: File, mut to: File) -> Result<(), String> {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match master.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break, // EIO: every slave descriptor is closed
                }
            }
        })
        .map(drop)
        .map_err(|e| format!("console thread: {e}"))
}
