//! The I/O of attached containers and execs over a hijacked connection: output
//! demultiplexed from docker's 8-byte-header frames (no TTY) or passed through raw (TTY)
//! to our stdout and stderr; local stdin forwarded, with a half-close at its end and
//! the detach keys (ctrl-p ctrl-q) watched for; the local terminal in raw mode for the
//! session and always restored; window size changes sent to berthd; signals proxied.

use crate::client::{self, Client};
use crate::error::{Error, Result};
use std::io::{IsTerminal, Read};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Docker's default detach sequence: ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = berth_api::detach::DEFAULT;

/// A `--detach-keys` value ("ctrl-p,ctrl-q", "ctrl-a,x") as the bytes typed, read as
/// docker reads it (the same parser as berthd's).
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>> {
    berth_api::detach::parse(spec).map_err(|e| {
        Error::Usage(format!(
            "invalid detach keys ({spec}): unknown character: '{}'",
            e.0
        ))
    })
}

/// The local terminal (stdin) in raw mode; the saved settings come back on drop,
/// whatever way the session ends (error, panic unwinding, detach).
pub struct RawTerminal {
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    /// Puts stdin in raw mode if it is a terminal (None otherwise).
    pub fn enable() -> Result<Option<Self>> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Ok(None);
        }
        let saved = tcgetattr(&stdin)
            .map_err(|e| Error::io("reading the terminal's settings", e.into()))?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw)
            .map_err(|e| Error::io("putting the terminal in raw mode", e.into()))?;
        Ok(Some(Self { saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        // Nothing better to do if this fails: the terminal is gone.
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSAFLUSH, &self.saved);
    }
}

/// What an attached session forwards and prints.
#[derive(Debug, Clone)]
pub struct Session {
    /// The container (or exec) has a TTY: its output is one raw stream.
    pub tty: bool,
    /// Forward local stdin.
    pub stdin: bool,
    /// Print the container's stdout.
    pub stdout: bool,
    /// Print the container's stderr.
    pub stderr: bool,
    /// The detach sequence (empty: none); only a TTY session watches for it.
    pub detach_keys: Vec<u8>,
    /// Put the local terminal in raw mode (a TTY session with stdin attached).
    pub raw: bool,
}

impl Session {
    /// A session attached to an existing container (`attach`, `start -a`), from its
    /// inspect JSON: stdin only if asked for and the container keeps it open; a raw
    /// local terminal when it has a TTY and stdin.
    pub fn for_container(
        info: &serde_json::Value,
        want_stdin: bool,
        detach_keys: Option<&str>,
    ) -> Result<Self> {
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let stdin = want_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
        if tty && stdin && !std::io::stdin().is_terminal() {
            return Err(Error::Usage("the input device is not a TTY".into()));
        }
        let detach_keys = match detach_keys {
            Some(k) => parse_detach_keys(k)?,
            None => DEFAULT_DETACH_KEYS.to_vec(),
        };
        Ok(Self {
            tty,
            stdin,
            stdout: true,
            stderr: true,
            detach_keys,
            raw: tty && stdin,
        })
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container's output ended (it exited, or berthd closed the stream).
    Eof,
    /// The user typed the detach keys.
    Detached,
}

/// Runs a session over a hijacked connection until the output ends or the user
/// detaches. The output is written and flushed before this returns.
pub async fn pump<S>(io: S, s: Session) -> Result<Ended>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let _raw = if s.raw && s.stdin {
        RawTerminal::enable()?
    } else {
        None
    };
    let (rd, mut wr) = tokio::io::split(io);
    let output = copy_output(rd, s.tty, s.stdout, s.stderr);
    let input = async {
        if !s.stdin {
            return std::future::pending::<Result<()>>().await;
        }
        let mut rx = stdin_chunks();
        // As dockerd: the detach keys are looked for only in a TTY session; binary
        // input piped to a container must pass through whatever bytes it holds.
        let keys = if s.tty {
            s.detach_keys.clone()
        } else {
            Vec::new()
        };
        let mut scan = berth_api::detach::Scanner::new(&keys);
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.clear();
            let detached = scan.feed_into(&chunk, &mut out);
            if !out.is_empty() && wr.write_all(&out).await.is_err() {
                // berthd stopped reading: the container is gone; the output says how.
                break;
            }
            let _ = wr.flush().await;
            if detached {
                return Ok(());
            }
        }
        // Our stdin ended: half-close, so the container sees EOF and can still answer.
        let _ = wr.shutdown().await;
        std::future::pending::<Result<()>>().await
    };
    tokio::select! {
        r = output => r.map(|()| Ended::Eof),
        r = input => r.map(|()| Ended::Detached),
        sig = killed(_raw.is_some()) => {
            // Killed while the terminal is raw: put it back, then die as the signal
            // would have made us (128 + its number).
            drop(_raw);
            std::process::exit(128 + sig);
        }
    }
}

/// Waits for SIGTERM or SIGHUP if `watch` (never otherwise): the signals that would
/// end us with the terminal still raw, since a raw session proxies none.
async fn killed(watch: bool) -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let (term, hup) = if watch {
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::hangup()).ok(),
        )
    } else {
        (None, None)
    };
    let wait = |s: Option<tokio::signal::unix::Signal>| async move {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = wait(term) => libc::SIGTERM,
        () = wait(hup) => libc::SIGHUP,
    }
}

/// Local stdin, read on a thread of its own (a blocked read must never hold up the
/// end of the program, as a runtime's blocking task would), in chunks; closed at EOF.
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    rx
}

/// Copies a container's output to our stdout and stderr until it ends: raw with a TTY,
/// else docker's frames (1 byte stream, 3 zero bytes, 4 bytes big-endian length, data).
/// A stream not asked for is read and dropped.
pub async fn copy_output<R>(mut rd: R, tty: bool, want_out: bool, want_err: bool) -> Result<()>
where
    R: AsyncRead + Unpin,
{
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let read_err = |e: std::io::Error| Error::io("reading the container's output", e);
    if tty {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = rd.read(&mut buf).await.map_err(read_err)?;
            if n == 0 {
                return Ok(());
            }
            if want_out && !write_out(&mut stdout, &buf[..n]).await? {
                return Ok(());
            }
        }
    }
    let mut header = [0u8; 8];
    let mut data = Vec::new();
    loop {
        match rd.read_exact(&mut header).await {
            Ok(_) => {}
            // The end of the stream between frames is its normal end.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(read_err(e)),
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        data.resize(len, 0);
        rd.read_exact(&mut data).await.map_err(read_err)?;
        let ok = match header[0] {
            0 | 1 if want_out => write_out(&mut stdout, &data).await?,
            2 if want_err => write_out(&mut stderr, &data).await?,
            3 => {
                return Err(Error::BadResponse(
                    String::from_utf8_lossy(&data).trim().to_string(),
                ))
            }
            _ => true,
        };
        if !ok {
            return Ok(());
        }
    }
}

/// Writes and flushes; false if the reader went away (a closed pipe ends quietly).
async fn write_out<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> Result<bool> {
    let r = async {
        w.write_all(data).await?;
        w.flush().await
    }
    .await;
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::io("writing output", e)),
    }
}

/// The size of our terminal (rows, columns), from stdout or else stdin.
pub fn terminal_size() -> Option<(u16, u16)> {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into the struct we own; a descriptor
        // that is not a terminal makes it fail with ENOTTY and write nothing.
        let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if r == 0 && ws.ws_row > 0 && ws.ws_col > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Keeps the remote TTY's size that of ours: now, and on every SIGWINCH, POST
/// `{base}/resize` (base is `/containers/ID` or `/exec/ID`). Abort it when done.
pub fn spawn_resizer(client: Client, base: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let resize = |client: Client, base: String| async move {
            if let Some((h, w)) = terminal_size() {
                let q = client::query(&[("h", h.to_string()), ("w", w.to_string())]);
                // A failed resize only leaves the size as it was: not worth failing for.
                let _ = client.post(&format!("{base}/resize{q}"), None).await;
            }
        };
        let mut winch = signal(SignalKind::window_change()).ok();
        resize(client.clone(), base.clone()).await;
        while let Some(w) = winch.as_mut() {
            if w.recv().await.is_none() {
                break;
            }
            resize(client.clone(), base.clone()).await;
        }
    })
}

/// Forwards the signals a user sends us (INT, TERM, HUP, QUIT, USR1, USR2) to the
/// container: POST /containers/ID/kill?signal=NAME. The handlers are in place when this
/// returns (so call it before the start); what arrives before `go` fires is forwarded
/// then (berthd refuses a kill until the start has answered); dropping `go` unsent
/// ends the proxy. Abort the task when done.
pub fn spawn_signal_proxy(
    client: Client,
    id: String,
    go: tokio::sync::oneshot::Receiver<()>,
) -> JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    let mut listeners = Vec::new();
    for (kind, name) in kinds {
        // Registered here, synchronously: a signal from now on is ours to forward.
        let Ok(mut s) = signal(kind) else { continue };
        let tx = tx.clone();
        listeners.push(tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(name).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    tokio::spawn(async move {
        // The listeners end with this task (aborted or not).
        struct AbortAll(Vec<JoinHandle<()>>);
        impl Drop for AbortAll {
            fn drop(&mut self) {
                for l in &self.0 {
                    l.abort();
                }
            }
        }
        let _listeners = AbortAll(listeners);
        if go.await.is_err() {
            return;
        }
        while let Some(name) = rx.recv().await {
            let q = client::query(&[("signal", name)]);
            if let Err(e) = client
                .post(&format!("/containers/{id}/kill{q}"), None)
                .await
            {
                eprintln!("berth: forwarding {name}: {e}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_docker_spells_them() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").ok(),
            Some(vec![0x10, 0x11])
        );
        assert_eq!(parse_detach_keys("ctrl-a,x").ok(), Some(vec![1, b'x']));
        assert_eq!(parse_detach_keys("ctrl-[").ok(), Some(vec![27]));
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }

    #[tokio::test]
    async fn frames_are_split_by_stream() {
        let mut data = Vec::new();
        for (s, text) in [(1u8, "out"), (2, "err")] {
            data.push(s);
            data.extend_from_slice(&[0, 0, 0]);
            data.extend_from_slice(&(text.len() as u32).to_be_bytes());
            data.extend_from_slice(text.as_bytes());
        }
        // Neither stream wanted: read to the end without writing.
        assert!(copy_output(&data[..], false, false, false).await.is_ok());
        // A truncated frame is an error, not a silent end.
        assert!(copy_output(&data[..10], false, false, false).await.is_err());
        let mut sys = vec![3u8, 0, 0, 0, 0, 0, 0, 4];
        sys.extend_from_slice(b"boom");
        let e = copy_output(&sys[..], false, false, false).await;
        assert!(matches!(e, Err(Error::BadResponse(m)) if m == "boom"));
    }
}
