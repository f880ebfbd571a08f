//! gRPC clients of the CRI over a unix socket (the kubelet before 1.26, crictl and
//! critest 1.26, grpc-java, older grpc-go) send the socket's path as the HTTP/2
//! `:authority`. h2, under tonic, refuses that as a malformed authority (hyperium/h2
//! #487) and resets every stream; containerd's Go server takes it. So each CRI
//! connection passes through this small rewriter on its way to tonic: HTTP/2 frames
//! from the client are copied as they are, except request header blocks, which are
//! decoded (HPACK, with loona-hpack), get `localhost` for an authority that is not a
//! valid one, and are encoded again as literals without indexing (which needs no
//! shared table state with the server). Frames from the server are copied untouched.

use bytes::{BufMut, BytesMut};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// HTTP/2's default SETTINGS_MAX_FRAME_SIZE: frames written here never exceed it.
const MAX_FRAME: usize = 16_384;
/// Largest header block accepted from a client.
const MAX_BLOCK: usize = 1 << 20;

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// HPACK integer with an N-bit prefix (RFC 7541 5.1).
fn put_int(out: &mut Vec<u8>, first: u8, prefix_bits: u8, mut v: usize) {
    let max = (1usize << prefix_bits) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A header block of literals without indexing, new names (RFC 7541 6.2.2).
fn encode(headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in headers {
        out.push(0x00);
        put_int(&mut out, 0, 7, n.len());
        out.extend_from_slice(n);
        put_int(&mut out, 0, 7, v.len());
        out.extend_from_slice(v);
    }
    out
}

/// True for what h2 accepts as an authority.
fn valid_authority(a: &[u8]) -> bool {
    axum::http::uri::Authority::try_from(a).is_ok()
}

fn frame(out: &mut BytesMut, typ: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.put_uint(payload.len() as u64, 3);
    out.put_u8(typ);
    out.put_u8(flags);
    out.put_u32(stream & 0x7fff_ffff);
    out.put_slice(payload);
}

async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<([u8; 9], Vec<u8>)>> {
    let mut head = [0u8; 9];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = ((head[0] as usize) << 16) | ((head[1] as usize) << 8) | head[2] as usize;
    if len > MAX_BLOCK {
        return Err(bad("frame too large"));
    }
    let mut p = vec![0u8; len];
    r.read_exact(&mut p).await?;
    Ok(Some((head, p)))
}

/// Copies client frames to the server, fixing authorities in request headers.
pub async fn client_to_server<R, W>(mut r: R, mut w: W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut preface = [0u8; 24];
    r.read_exact(&mut preface).await?;
    if preface != PREFACE {
        return Err(bad("not an HTTP/2 client"));
    }
    w.write_all(&preface).await?;
    let mut dec = loona_hpack::Decoder::new();
    while let Some((head, mut p)) = read_frame(&mut r).await? {
        let typ = head[3];
        let flags = head[4];
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        if typ != HEADERS {
            w.write_all(&head).await?;
            w.write_all(&p).await?;
            continue;
        }
        // Padding off, priority kept aside, then the continuations joined.
        if flags & PADDED != 0 {
            let pad = *p.first().ok_or_else(|| bad("bad padding"))? as usize;
            if pad + 1 > p.len() {
                return Err(bad("bad padding"));
            }
            p.truncate(p.len() - pad);
            p.remove(0);
        }
        let priority: Vec<u8> = if flags & PRIORITY != 0 {
            if p.len() < 5 {
                return Err(bad("bad priority"));
            }
            p.drain(..5).collect()
        } else {
            Vec::new()
        };
        let mut block = p;
        let mut end = flags & END_HEADERS != 0;
        while !end {
            let (h, c) = read_frame(&mut r)
                .await?
                .ok_or_else(|| bad("headers cut short"))?;
            if h[3] != CONTINUATION || block.len() + c.len() > MAX_BLOCK {
                return Err(bad("bad CONTINUATION"));
            }
            block.extend_from_slice(&c);
            end = h[4] & END_HEADERS != 0;
        }
        let mut headers = dec.decode(&block).map_err(|e| bad(format!("HPACK: {e}")))?;
        for (n, v) in headers.iter_mut() {
            if n == b":authority" && !valid_authority(v) {
                *v = b"localhost".to_vec();
            }
        }
        let mut rest = &encode(&headers)[..];
        let mut out = BytesMut::new();
        let mut first = true;
        loop {
            let room = MAX_FRAME - if first { priority.len() } else { 0 };
            let n = rest.len().min(room);
            let last = n == rest.len();
            let end_headers = if last { END_HEADERS } else { 0 };
            if first {
                let mut payload = priority.clone();
                payload.extend_from_slice(&rest[..n]);
                let f = (flags & (END_STREAM | PRIORITY)) | end_headers;
                frame(&mut out, HEADERS, f, stream, &payload);
                first = false;
            } else {
                frame(&mut out, CONTINUATION, end_headers, stream, &rest[..n]);
            }
            rest = &rest[n..];
            if last {
                break;
            }
        }
        w.write_all(&out).await?;
    }
    w.shutdown().await
}

/// Accepts CRI connections on `listener`, each passed through the authority fixer to
/// the returned stream of connections for tonic.
pub fn incoming(
    listener: tokio::net::UnixListener,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<tokio::io::DuplexStream>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let (conn, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "CRI accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (near, far) = tokio::io::duplex(256 * 1024);
            if tx.send(Ok(far)).await.is_err() {
                return;
            }
            let (cr, mut cw) = conn.into_split();
            let (nr, nw) = tokio::io::split(near);
            tokio::spawn(async move {
                if let Err(e) = client_to_server(cr, nw).await {
                    tracing::debug!(error = %e, "CRI connection (client side)");
                }
            });
            tokio::spawn(async move {
                let mut nr = nr;
                let _ = tokio::io::copy(&mut nr, &mut cw).await;
                let _ = cw.shutdown().await;
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn path_authorities_become_localhost_and_the_rest_passes() {
        // A client's request: preface, SETTINGS, then HEADERS (padded, with priority,
        // in a HEADERS + CONTINUATION pair) carrying a socket path as authority.
        let mut enc = loona_hpack::Encoder::new();
        let headers: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", b"/runtime.v1.RuntimeService/Version"),
            (b":authority", b"/tmp/cri.sock"),
            (b"content-type", b"application/grpc"),
        ];
        let block = enc.encode(headers.iter().copied());
        let (a, b) = block.split_at(10);
        let mut wire = BytesMut::new();
        wire.put_slice(PREFACE);
        frame(&mut wire, 0x4, 0, 0, &[]);
        let mut first = vec![2u8];
        first.extend_from_slice(&[0, 0, 0, 0, 16]);
        first.extend_from_slice(a);
        first.extend_from_slice(&[0, 0]);
        frame(&mut wire, HEADERS, PADDED | PRIORITY, 1, &first);
        frame(&mut wire, CONTINUATION, END_HEADERS, 1, b);
        frame(&mut wire, 0x0, END_STREAM, 1, b"\0\0\0\0\0");
        let mut out = Vec::new();
        client_to_server(&wire[..], &mut out).await.unwrap();
        assert_eq!(&out[..24], PREFACE);
        let mut r = &out[24..];
        let (h, p) = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!((h[3], p.len()), (0x4, 0), "SETTINGS passes");
        let (h, p) = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!(h[3], HEADERS);
        assert_eq!(h[4], PRIORITY | END_HEADERS);
        assert_eq!(&p[..5], &[0, 0, 0, 0, 16]);
        let got = loona_hpack::Decoder::new().decode(&p[5..]).unwrap();
        let auth = got.iter().find(|(n, _)| n == b":authority").unwrap();
        assert_eq!(auth.1, b"localhost");
        assert_eq!(got.len(), 5);
        let (h, p) = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!((h[3], h[4], &p[..]), (0x0, END_STREAM, &b"\0\0\0\0\0"[..]));
    }

    #[test]
    fn hpack_integers_and_authorities() {
        let mut v = Vec::new();
        put_int(&mut v, 0, 7, 1337);
        assert_eq!(v, [0x7f, 0xba, 0x09]);
        assert!(valid_authority(b"localhost"));
        assert!(valid_authority(b"127.0.0.1:80"));
        assert!(!valid_authority(b"/run/x.sock"));
    }
}
