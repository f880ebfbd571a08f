//! Detach keys: the key sequence (ctrl-p ctrl-q unless the client names another) that
//! ends an attach to a TTY without stopping the process. Parsed as docker spells them
//! (moby/term's `ToBytes`), and spotted in a byte stream by [`Scanner`]: berthd scans
//! an attached client's input, the CLI its own stdin.

/// Docker's default sequence: ctrl-p, ctrl-q.
pub const DEFAULT: &[u8] = &[16, 17];

/// A detach key list that docker cannot read (the key it stopped at).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown character: '{0}'")]
pub struct BadKey(pub String);

/// Parses docker's format: comma-separated keys, each one character, `ctrl-X`
/// (`ctrl-@`, `ctrl-a`..`ctrl-z`, `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`, `ctrl-_`;
/// lower case, as docker requires) or `DEL`.
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
/// held back until the next ones show whether they do; those that do not are passed
/// on. An empty sequence never matches (a session without detach keys).
#[derive(Debug, Clone)]
pub struct Scanner {
    keys: Vec<u8>,
    matched: usize,
}

impl Scanner {
    /// A scanner for `keys`.
    pub fn new(keys: &[u8]) -> Self {
        Self {
            keys: keys.to_vec(),
            matched: 0,
        }
    }

    /// Feeds `input`, appending to `out` what may be passed on; true once the whole
    /// sequence was seen (what follows it is dropped: the client detaches).
    pub fn feed_into(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return false;
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return true;
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
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }

    /// As [`Scanner::feed_into`], returning what to pass on.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        let detached = self.feed_into(input, &mut out);
        (out, detached)
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
        assert_eq!(parse("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse("ctrl-@,ctrl-_,DEL").unwrap(), vec![0, 31, 127]);
        assert_eq!(parse("ctrl-\\").unwrap(), vec![28]);
        assert_eq!(parse("ctrl-[").unwrap(), vec![27]);
        assert_eq!(parse("ctrl-A"), Err(BadKey("ctrl-A".into())));
        assert_eq!(
            parse("ctrl-1").unwrap_err().to_string(),
            "Unknown character: 'ctrl-1'"
        );
        assert!(parse("ab").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn scans_across_reads() {
        let mut s = Scanner::new(DEFAULT);
        assert_eq!(s.feed(b"ls\x10"), (b"ls".to_vec(), false));
        assert_eq!(s.feed(b"x"), (b"\x10x".to_vec(), false));
        assert_eq!(s.feed(b"a\x10"), (b"a".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
        let mut s = Scanner::new(&[16, 17]);
        assert_eq!(s.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        let mut s = Scanner::new(&[1]);
        assert_eq!(s.feed(b"ab\x01c"), (b"ab".to_vec(), true));
        let mut none = Scanner::new(&[]);
        let mut out = Vec::new();
        assert!(!none.feed_into(b"\x10\x11", &mut out));
        assert_eq!(out, b"\x10\x11");
    }
}
