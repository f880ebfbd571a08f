//! Detach keys: the key sequence (ctrl-p ctrl-q unless the client names another) that
//! ends an attach to a TTY without stopping the process, spotted in the attached
//! client's stdin as dockerd does.

/// dockerd's default sequence: ctrl-p, ctrl-q.
pub const DEFAULT: &[u8] = &[16, 17];

/// A detach key list that docker cannot read.
#[derive(Debug, thiserror::Error)]
#[error("Unknown character: '{0}'")]
pub struct BadKey(pub String);

/// Parses docker's format: comma-separated keys, each one character or `ctrl-X`
/// (`ctrl-@`, `ctrl-a`..`ctrl-z`, `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_`).
pub fn parse(keys: &str) -> Result<Vec<u8>, BadKey> {
    keys.split(',')
        .map(|k| match k.as_bytes() {
            [c] => Ok(*c),
            [b'c', b't', b'r', b'l', b'-', c @ (b'@' | b'a'..=b'z' | b'[' | b'\\' | b']' | b'^' | b'_')] => {
                // A control code is its key's ASCII code in the low five bits.
                Ok(c & 0x1f)
            }
            _ if k == "DEL" => Ok(127),
            _ => Err(BadKey(k.to_string())),
        })
        .collect()
}

/// Scans a stream for the detach sequence across reads: bytes that may start it are
/// held back until the next ones show whether they do; those that do not are passed on.
#[derive(Debug)]
pub struct Scanner {
    keys: Vec<u8>,
    matched: usize,
}

impl Scanner {
    /// A scanner for `keys` (the default sequence when empty).
    pub fn new(keys: &[u8]) -> Self {
        let keys = if keys.is_empty() { DEFAULT } else { keys };
        Self {
            keys: keys.to_vec(),
            matched: 0,
        }
    }

    /// Feeds `data`; returns what to pass on, and whether the whole sequence was seen
    /// (what follows it is dropped: the client detaches).
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // A partial match that breaks off was typed input after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_format() {
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse("ctrl-a").unwrap(), vec![1]);
        assert_eq!(parse("a,b").unwrap(), vec![b'a', b'b']);
        assert_eq!(parse("ctrl-@,ctrl-_,DEL").unwrap(), vec![0, 31, 127]);
        assert_eq!(parse("ctrl-\\").unwrap(), vec![28]);
        assert!(parse("ctrl-A").is_err());
        assert!(parse("ab").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn scans_across_reads() {
        let mut s = Scanner::new(&[]);
        assert_eq!(s.feed(b"ls\x10"), (b"ls".to_vec(), false));
        assert_eq!(s.feed(b"x"), (b"\x10x".to_vec(), false));
        assert_eq!(s.feed(b"a\x10"), (b"a".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
        let mut s = Scanner::new(&[16, 17]);
        assert_eq!(s.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        let mut s = Scanner::new(&[1]);
        assert_eq!(s.feed(b"ab\x01c"), (b"ab".to_vec(), true));
    }
}
