//! ttrpc framing: a 10-byte header (length u32 BE, stream id u32 BE, type u8, flags u8)
//! followed by a protobuf `ttrpc.Request` or `ttrpc.Response`. Small enough to own, so
//! the shim needs no ttrpc runtime, thread pool or async executor.

use std::io::{self, Read, Write};

/// Header length.
pub const HEADER: usize = 10;
/// Message type of a request.
pub const TYPE_REQUEST: u8 = 1;
/// Message type of a response.
pub const TYPE_RESPONSE: u8 = 2;
/// Largest message accepted (ttrpc's own limit).
pub const MAX_LEN: usize = 4 << 20;

/// Encode one frame.
pub fn encode(stream_id: u32, ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.push(ty);
    out.push(0);
    out.extend_from_slice(payload);
    out
}

/// A complete frame at the start of `buf`: (stream id, type, payload range end).
pub fn parse(buf: &[u8]) -> io::Result<Option<(u32, u8, usize)>> {
    if buf.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("ttrpc message of {len} bytes is over the limit"),
        ));
    }
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    let sid = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    Ok(Some((sid, buf[8], HEADER + len)))
}

/// Blocking read of one whole frame: (stream id, type, payload).
pub fn read_frame(r: &mut impl Read) -> io::Result<(u32, u8, Vec<u8>)> {
    let mut h = [0u8; HEADER];
    r.read_exact(&mut h)?;
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len > MAX_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message too long",
        ));
    }
    let sid = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    let mut payload = vec![0; len];
    r.read_exact(&mut payload)?;
    Ok((sid, h[8], payload))
}

/// Blocking write of one frame.
pub fn write_frame(w: &mut impl Write, stream_id: u32, ty: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&encode(stream_id, ty, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = encode(3, TYPE_REQUEST, b"abc");
        assert_eq!(f.len(), HEADER + 3);
        assert_eq!(parse(&f).unwrap(), Some((3, TYPE_REQUEST, HEADER + 3)));
        assert_eq!(parse(&f[..5]).unwrap(), None);
        let (sid, ty, p) = read_frame(&mut &f[..]).unwrap();
        assert_eq!((sid, ty, p.as_slice()), (3, TYPE_REQUEST, &b"abc"[..]));
    }

    #[test]
    fn rejects_huge_length() {
        let mut f = encode(1, TYPE_REQUEST, b"");
        f[0] = 0xff;
        assert!(parse(&f).is_err());
    }
}
