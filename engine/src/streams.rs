//! Bridges between async byte streams and the blocking readers and writers that tar,
//! gzip and the stores use, so large bodies never have to be buffered whole.

use bytes::Bytes;
use std::io::{self, Read, Write};
use tokio::sync::mpsc;

/// A blocking reader over chunks that arrive on a channel; EOF when the sender drops.
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl ChannelReader {
    /// A reader and the sender that feeds it (`capacity` chunks in flight).
    pub fn new(capacity: usize) -> (mpsc::Sender<Bytes>, Self) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            tx,
            Self {
                rx,
                cur: Bytes::new(),
            },
        )
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// A blocking reader over chunks or errors that arrive on a channel: an error (a
/// client that went away mid-upload) is the reader's error, not an early EOF, so a cut
/// stream is never taken for a complete one. EOF when the sender drops.
pub struct FallibleChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl FallibleChannelReader {
    /// A reader and the sender that feeds it (`capacity` chunks in flight).
    pub fn new(capacity: usize) -> (mpsc::Sender<io::Result<Bytes>>, Self) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            tx,
            Self {
                rx,
                cur: Bytes::new(),
            },
        )
    }
}

impl Read for FallibleChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

/// A blocking writer that sends what it gets, in large chunks, to an async receiver.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    /// A writer and the receiver of its chunks.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Result<Bytes, io::Error>>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Self {
                tx,
                buf: Vec::new(),
            },
            rx,
        )
    }

    /// Another sender on the same channel (to report an error after the writer is gone).
    pub fn sender(&self) -> mpsc::Sender<Result<Bytes, io::Error>> {
        self.tx.clone()
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A response body written by a blocking job (a tar writer, most often): `job` gets the
/// writer and returns what drives it (the blocking work, and whatever must be held
/// meanwhile); chunks reach the client as they are written, a few ahead of it. The
/// job's error breaks the body, so the client sees an incomplete stream, never a short
/// one it takes for whole; it is logged as `what` failing.
pub fn body_from_blocking<F, Fut>(what: &'static str, job: F) -> axum::body::Body
where
    F: FnOnce(ChannelWriter) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let (writer, rx) = ChannelWriter::new(8);
    let err_tx = writer.sender();
    let driven = job(writer);
    tokio::spawn(async move {
        if let Err(err) = driven.await {
            tracing::warn!(error = %err, what, "a streamed response failed");
            let _ = err_tx.send(Err(io::Error::other(err))).await;
        }
    });
    axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Runs blocking work on the blocking pool; its error (or its panic) as text.
pub async fn on_blocking_pool<E: std::fmt::Display + Send + 'static>(
    work: impl FnOnce() -> Result<(), E> + Send + 'static,
) -> Result<(), String> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// A reader that copies everything it reads into a writer, so one pass over a stream
/// can both store it and parse it.
pub struct Tee<'a, R, W> {
    inner: R,
    out: &'a mut W,
}

impl<'a, R, W> Tee<'a, R, W> {
    /// Reads from `inner`, copying into `out`.
    pub fn new(inner: R, out: &'a mut W) -> Self {
        Self { inner, out }
    }
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_blocking_body_streams_what_is_written_and_breaks_on_error() {
        let whole = body_from_blocking("test", |mut w| {
            on_blocking_pool(move || {
                w.write_all(b"tar bytes")?;
                w.flush()
            })
        });
        let bytes = axum::body::to_bytes(whole, 1 << 20).await.unwrap();
        assert_eq!(&bytes[..], b"tar bytes");
        let cut = body_from_blocking("test", |mut w| {
            on_blocking_pool(move || {
                w.write_all(b"half")?;
                w.flush()?;
                Err(io::Error::other("disk gone"))
            })
        });
        let e = axum::body::to_bytes(cut, 1 << 20)
            .await
            .expect_err("a cut body is an error");
        assert!(e.to_string().contains("disk gone"), "{e}");
    }

    #[test]
    fn channel_reader_reads_across_chunks() {
        let (tx, mut r) = ChannelReader::new(4);
        let t = std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            s
        });
        tx.blocking_send(Bytes::from_static(b"hel")).unwrap();
        tx.blocking_send(Bytes::from_static(b"lo")).unwrap();
        drop(tx);
        assert_eq!(t.join().unwrap(), "hello");
    }
}
