//! SPDY/3.1 framing, the server side of a session, as Kubernetes' streaming clients
//! (client-go's remotecommand and portforward, over moby/spdystream) speak it after an
//! HTTP `Upgrade: SPDY/3.1`. The client opens every stream (SYN_STREAM, headers
//! compressed with zlib and SPDY/3's dictionary, one compression context per
//! direction); the server replies to each (SYN_REPLY) and exchanges DATA frames, FIN
//! closing a direction. PING is answered; SETTINGS and WINDOW_UPDATE are read and
//! ignored (spdystream neither sends nor honours flow-control windows).
//!
//! No maintained Rust crate implements SPDY/3.1 for a server (the one SPDY multiplexer
//! published is a GPL-licensed client over WebSocket transports), so the frames are
//! written here; the protocol is small and fixed.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::session::{Headers, Out, Session, Stream};

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status CANCEL.
const CANCEL: u32 = 5;
/// Largest frame accepted (the 24-bit length field allows 16 MiB; nothing sane sends
/// control frames that large).
const MAX_FRAME: usize = 1 << 24;

/// SPDY/3's header compression dictionary (the draft-3 specification's, section 2.6.10.1):
/// length-prefixed header names and values, then a run of common strings.
fn dictionary() -> Vec<u8> {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    let mut d = Vec::with_capacity(1423);
    for w in WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Encodes a header block (before compression).
fn encode_headers(h: &Headers) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_u32(h.len() as u32);
    for (k, v) in h {
        b.put_u32(k.len() as u32);
        b.put_slice(k.to_ascii_lowercase().as_bytes());
        b.put_u32(v.len() as u32);
        b.put_slice(v.as_bytes());
    }
    b
}

/// Decodes a header block (after decompression).
fn decode_headers(mut b: &[u8]) -> io::Result<Headers> {
    let take = |b: &mut &[u8]| -> io::Result<String> {
        if b.remaining() < 4 {
            return Err(bad("truncated header block"));
        }
        let n = b.get_u32() as usize;
        if b.remaining() < n {
            return Err(bad("truncated header block"));
        }
        let s = String::from_utf8_lossy(&b[..n]).into_owned();
        b.advance(n);
        Ok(s)
    };
    if b.remaining() < 4 {
        return Err(bad("truncated header block"));
    }
    let n = b.get_u32() as usize;
    if n > 1024 {
        return Err(bad("too many headers"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let k = take(&mut b)?;
        let v = take(&mut b)?;
        out.push((k.to_ascii_lowercase(), v));
    }
    Ok(out)
}

/// The inflating side of a session's header compression.
struct Inflater {
    z: Decompress,
    dict: Vec<u8>,
}

impl Inflater {
    fn new() -> Self {
        Self {
            z: Decompress::new(true),
            dict: dictionary(),
        }
    }

    fn inflate(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len() * 4 + 256);
        let mut pos = 0;
        for _ in 0..10_000 {
            if out.capacity() - out.len() < 1024 {
                out.reserve(8192);
            }
            if out.len() > MAX_FRAME {
                return Err(bad("header block too large"));
            }
            let before = self.z.total_in();
            let r = self
                .z
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.z.total_in() - before) as usize;
            match r {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) if pos >= input.len() && out.len() < out.capacity() => return Ok(out),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(&self.dict)
                        .map_err(|e| bad(format!("header dictionary: {e}")))?;
                }
                Err(e) => return Err(bad(format!("header block: {e}"))),
            }
        }
        Err(bad("header block does not inflate"))
    }
}

/// The deflating side.
struct Deflater {
    z: Compress,
}

impl Deflater {
    fn new() -> io::Result<Self> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(&dictionary())
            .map_err(|e| bad(format!("header dictionary: {e}")))?;
        Ok(Self { z })
    }

    fn deflate(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(1024);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&input[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| bad(format!("compressing headers: {e}")))?;
            pos += (self.z.total_in() - before) as usize;
            if pos >= input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

fn control(typ: u16, flags: u8, payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::with_capacity(8 + payload.len());
    b.put_u16(0x8000 | VERSION);
    b.put_u16(typ);
    b.put_u8(flags);
    b.put_uint(payload.len() as u64, 3);
    b.put_slice(payload);
    b
}

/// Starts a server-side SPDY session over an upgraded connection: reads and writes
/// frames on `io`.
pub fn start<T>(io: T) -> io::Result<Session>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (r, w) = tokio::io::split(io);
    let (tx, out_rx) = mpsc::channel::<Out>(256);
    let (in_tx, incoming) = mpsc::channel::<Stream>(64);
    let deflater = Deflater::new()?;
    tokio::spawn(write_loop(w, out_rx, deflater));
    tokio::spawn(read_loop(r, tx.clone(), in_tx));
    Ok(Session::new(incoming, tx))
}
async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Out>, mut z: Deflater) {
    while let Some(o) = rx.recv().await {
        let frame = match o {
            Out::Reply(id) => {
                let block = match z.deflate(&encode_headers(&Vec::new())) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::debug!(error = %e, "SPDY header compression");
                        break;
                    }
                };
                let mut p = Vec::with_capacity(4 + block.len());
                p.put_u32(id & 0x7fff_ffff);
                p.extend_from_slice(&block);
                control(SYN_REPLY, 0, &p)
            }
            Out::Data(id, data, fin) => {
                let mut b = BytesMut::with_capacity(8 + data.len());
                b.put_u32(id & 0x7fff_ffff);
                b.put_u8(if fin { FLAG_FIN } else { 0 });
                b.put_uint(data.len() as u64, 3);
                b.put_slice(&data);
                b
            }
            Out::Rst(id) => {
                let mut p = Vec::new();
                p.put_u32(id & 0x7fff_ffff);
                p.put_u32(CANCEL);
                control(RST_STREAM, 0, &p)
            }
            Out::Ping(id) => control(PING, 0, &id.to_be_bytes()),
            Out::Shutdown => {
                let mut p = Vec::new();
                p.put_u32(0);
                p.put_u32(0);
                let _ = w.write_all(&control(GOAWAY, 0, &p)).await;
                break;
            }
        };
        if w.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    tx: mpsc::Sender<Out>,
    incoming: mpsc::Sender<Stream>,
) {
    if let Err(e) = read_frames(&mut r, &tx, &incoming).await {
        tracing::debug!(error = %e, "SPDY session ended");
    }
}

async fn read_frames<R: AsyncRead + Unpin>(
    r: &mut R,
    tx: &mpsc::Sender<Out>,
    incoming: &mpsc::Sender<Stream>,
) -> io::Result<()> {
    let streams: Arc<Mutex<HashMap<u32, mpsc::Sender<Bytes>>>> = Default::default();
    let mut z = Inflater::new();
    let mut head = [0u8; 8];
    loop {
        match r.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let flags = head[4];
        let len = ((head[5] as usize) << 16) | ((head[6] as usize) << 8) | head[7] as usize;
        if len > MAX_FRAME {
            return Err(bad("frame too large"));
        }
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).await?;
        if head[0] & 0x80 == 0 {
            // DATA.
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
            let sender = streams
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
                .cloned();
            if let Some(s) = sender {
                if !payload.is_empty() {
                    // A stream nobody reads (its receiver dropped) just loses its data.
                    let _ = s.send(Bytes::from(payload)).await;
                }
            }
            if flags & FLAG_FIN != 0 {
                streams
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
            continue;
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(bad(format!("SPDY version {version} not supported")));
        }
        let typ = u16::from_be_bytes([head[2], head[3]]);
        let mut p = &payload[..];
        match typ {
            SYN_STREAM => {
                if p.len() < 10 {
                    return Err(bad("short SYN_STREAM"));
                }
                let id = p.get_u32() & 0x7fff_ffff;
                p.advance(6);
                let headers = decode_headers(&z.inflate(p)?)?;
                let (dtx, drx) = mpsc::channel(64);
                if flags & FLAG_FIN == 0 {
                    streams
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id, dtx);
                }
                if tx.send(Out::Reply(id)).await.is_err() {
                    return Ok(());
                }
                let s = Stream::new(id, headers, drx, tx.clone());
                if incoming.send(s).await.is_err() {
                    // Nobody takes streams any more: refuse this one.
                    let _ = tx.send(Out::Rst(id)).await;
                }
            }
            // Inflated all the same: the compression context spans every block.
            SYN_REPLY | HEADERS if p.len() >= 4 => {
                p.advance(4);
                z.inflate(p)?;
            }
            RST_STREAM if p.len() >= 4 => {
                let id = p.get_u32() & 0x7fff_ffff;
                streams
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            }
            PING if p.len() >= 4 => {
                let _ = tx.send(Out::Ping(p.get_u32())).await;
            }
            GOAWAY => return Ok(()),
            SETTINGS | WINDOW_UPDATE => {}
            _ => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_spdy3s() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        // zlib's FDICT check value of the SPDY/3 dictionary.
        let mut a: u32 = 1;
        let mut b: u32 = 0;
        for x in &d {
            a = (a + *x as u32) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn header_blocks_round_trip_across_one_context() {
        let mut def = Deflater::new().unwrap();
        let mut inf = Inflater::new();
        for i in 0..3 {
            let h: Headers = vec![
                ("streamtype".into(), format!("stdout{i}")),
                ("port".into(), "80".into()),
            ];
            let wire = def.deflate(&encode_headers(&h)).unwrap();
            assert_eq!(decode_headers(&inf.inflate(&wire).unwrap()).unwrap(), h);
        }
        assert!(decode_headers(&[0, 0, 0, 1, 0, 0]).is_err());
    }

    /// A test client: opens streams and reads frames (the other side of a Session).
    pub(crate) struct Client {
        def: Deflater,
        inf: Inflater,
    }

    impl Client {
        pub(crate) fn new() -> Self {
            Self {
                def: Deflater::new().unwrap(),
                inf: Inflater::new(),
            }
        }

        pub(crate) fn syn(&mut self, id: u32, h: &Headers, fin: bool) -> Vec<u8> {
            let block = self.def.deflate(&encode_headers(h)).unwrap();
            let mut p = Vec::new();
            p.put_u32(id);
            p.put_u32(0);
            p.put_u16(0);
            p.extend_from_slice(&block);
            control(SYN_STREAM, if fin { FLAG_FIN } else { 0 }, &p).to_vec()
        }

        pub(crate) fn data(id: u32, d: &[u8], fin: bool) -> Vec<u8> {
            let mut b = Vec::new();
            b.put_u32(id);
            b.put_u8(if fin { FLAG_FIN } else { 0 });
            b.put_uint(d.len() as u64, 3);
            b.extend_from_slice(d);
            b
        }

        /// Reads one frame: (control type or 0 for data, stream id, flags, payload).
        pub(crate) async fn frame<R: AsyncRead + Unpin>(
            &mut self,
            r: &mut R,
        ) -> Option<(u16, u32, u8, Vec<u8>)> {
            let mut head = [0u8; 8];
            r.read_exact(&mut head).await.ok()?;
            let len = ((head[5] as usize) << 16) | ((head[6] as usize) << 8) | head[7] as usize;
            let mut p = vec![0u8; len];
            r.read_exact(&mut p).await.ok()?;
            if head[0] & 0x80 == 0 {
                let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                return Some((0, id, head[4], p));
            }
            let typ = u16::from_be_bytes([head[2], head[3]]);
            let id = if p.len() >= 4 {
                u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff
            } else {
                0
            };
            if typ == SYN_REPLY {
                decode_headers(&self.inf.inflate(&p[4..]).unwrap()).unwrap();
            }
            Some((typ, id, head[4], p))
        }
    }

    #[tokio::test]
    async fn a_session_replies_routes_data_and_answers_pings() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut s = start(server).unwrap();
        let (mut cr, mut cw) = tokio::io::split(client);
        let mut c = Client::new();
        cw.write_all(&c.syn(1, &vec![("streamtype".into(), "stdin".into())], false))
            .await
            .unwrap();
        cw.write_all(&Client::data(1, b"hello", true))
            .await
            .unwrap();
        cw.write_all(&control(PING, 0, &7u32.to_be_bytes()))
            .await
            .unwrap();
        let mut st = s.incoming.recv().await.unwrap();
        assert_eq!(st.header("streamtype"), Some("stdin"));
        assert_eq!(&st.read().await.unwrap()[..], b"hello");
        assert!(st.read().await.is_none(), "FIN closes the client's side");
        let w = st.writer();
        w.write(b"out").await.unwrap();
        w.close().await;
        s.shutdown().await;
        let mut seen = Vec::new();
        while let Some((typ, id, flags, p)) = c.frame(&mut cr).await {
            seen.push((typ, id, flags, p));
        }
        assert_eq!(seen[0].0, SYN_REPLY);
        assert!(seen
            .iter()
            .any(|f| f.0 == PING && f.3 == 7u32.to_be_bytes()));
        assert!(seen.iter().any(|f| f.0 == 0 && f.1 == 1 && f.3 == b"out"));
        assert!(seen.iter().any(|f| f.0 == 0 && f.1 == 1 && f.2 == FLAG_FIN));
        assert_eq!(seen.last().unwrap().0, GOAWAY);
    }
}
