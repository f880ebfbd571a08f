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
