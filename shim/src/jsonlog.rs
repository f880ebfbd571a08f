//! dockerd's json-file log, written by the shim itself: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-01-02T03:04:05.000000006Z"}`, escaped
//! as dockerd's jsonlog package escapes it, the output split into lines as dockerd's log
//! copier splits it, and rotated as its json-file driver rotates (max-size, max-file;
//! `PATH`, `PATH.1`, `PATH.2`...). Files are made with mode 0600.
//!
//! By hand rather than with serde_json and chrono: both would grow a process that runs
//! once per container, and the format is three string fields. The time always has nine
//! digits of nanoseconds (dockerd trims trailing zeros; readers parse both, and berthd
//! prints the stored time as `docker logs -t` shows it).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// dockerd's log copier buffer: a line longer than this is logged in pieces this long.
pub const LINE_MAX: usize = 16 * 1024;

/// `t` as RFC 3339 in UTC with nanoseconds: `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ`.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// (year, month, day) of a count of days since 1970-01-01 (the proleptic Gregorian
/// calendar; Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Append `s` as a JSON string the way dockerd's jsonlog does: `"` and `\` escaped,
/// `\n` and `\r` by name, other control characters and `<`, `>`, `&` as `\u00XX`,
/// invalid UTF-8 as `\ufffd`, U+2028 and U+2029 escaped.
pub fn push_json_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                0..=0x1f | b'<' | b'>' | b'&' => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                _ => out.push(b),
            }
            i += 1;
            continue;
        }
        // One UTF-8 sequence, or one invalid byte.
        let len = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        let seq = s.get(i..i + len).filter(|_| len > 0);
        match seq.and_then(|q| std::str::from_utf8(q).ok()) {
            Some("\u{2028}") => out.extend_from_slice(b"\\u2028"),
            Some("\u{2029}") => out.extend_from_slice(b"\\u2029"),
            Some(c) => out.extend_from_slice(c.as_bytes()),
            None => {
                out.extend_from_slice(b"\\ufffd");
                i += 1;
                continue;
            }
        }
        i += len;
    }
    out.push(b'"');
}

/// One log entry, newline-terminated: `text` (with `\n` appended when `whole`).
pub fn encode_entry(out: &mut Vec<u8>, stream: &str, text: &[u8], whole: bool, time: &str) {
    out.extend_from_slice(b"{\"log\":");
    if whole {
        let mut t = Vec::with_capacity(text.len() + 1);
        t.extend_from_slice(text);
        t.push(b'\n');
        push_json_string(out, &t);
    } else {
        push_json_string(out, text);
    }
    out.extend_from_slice(b",\"stream\":");
    push_json_string(out, stream.as_bytes());
    out.extend_from_slice(b",\"time\":\"");
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// Where and how to log (from the supervisor's `berth.shim.v1.LogConfig`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// The log file.
    pub path: PathBuf,
    /// Rotate at this size; 0: never.
    pub max_size: u64,
    /// Files kept; below 2: one, truncated instead of rotated.
    pub max_file: u32,
}

/// The open json-file log.
pub struct JsonLog {
    cfg: LogConfig,
    file: File,
    size: u64,
    failed: bool,
}

fn open_file(path: &Path, truncate: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).mode(0o600);
    if truncate {
        o.truncate(true);
    } else {
        o.append(true);
    }
    o.open(path)
}

impl JsonLog {
    /// Open (append to) the log.
    pub fn open(cfg: LogConfig) -> io::Result<Self> {
        let file = open_file(&cfg.path, false)?;
        let size = file.metadata()?.len();
        Ok(Self {
            cfg,
            file,
            size,
            failed: false,
        })
    }

    fn name(&self, n: u32) -> PathBuf {
        let mut s = self.cfg.path.clone().into_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    /// dockerd's rotation: PATH.(N-1) goes, each PATH.i becomes PATH.(i+1), PATH becomes
    /// PATH.1, and a new PATH is started; with fewer than two files, PATH is truncated.
    fn rotate(&mut self) -> io::Result<()> {
        if self.cfg.max_file >= 2 {
            let _ = std::fs::remove_file(self.name(self.cfg.max_file - 1));
            for i in (2..self.cfg.max_file).rev() {
                let _ = std::fs::rename(self.name(i - 1), self.name(i));
            }
            std::fs::rename(&self.cfg.path, self.name(1))?;
            self.file = open_file(&self.cfg.path, false)?;
        } else {
            self.file = open_file(&self.cfg.path, true)?;
        }
        self.size = 0;
        Ok(())
    }

    /// Write one encoded entry, rotating first when the file has reached max-size (as
    /// dockerd does: a file ends with the entry that took it over the size).
    pub fn write(&mut self, entry: &[u8]) {
        if self.cfg.max_size > 0 && self.size >= self.cfg.max_size {
            if let Err(e) = self.rotate() {
                self.report(&format!("rotate {}: {e}", self.cfg.path.display()));
            }
        }
        match self.file.write_all(entry) {
            Ok(()) => {
                self.size += entry.len() as u64;
                self.failed = false;
            }
            Err(e) => self.report(&format!("write {}: {e}", self.cfg.path.display())),
        }
    }

    /// Say once (until it works again) that the log cannot be written; the container
    /// is never held up for it.
    fn report(&mut self, msg: &str) {
        if !self.failed {
            crate::log(msg);
            self.failed = true;
        }
    }
}

/// Splits one stream's output into dockerd's log lines: each `\n`-terminated line, and a
/// piece of `LINE_MAX` bytes when a line is longer (logged without a newline, and the
/// line's later pieces carry the first piece's time, as dockerd's partial messages do).
#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    partial_time: Option<SystemTime>,
}

impl LineSplitter {
    /// Take `data`; call `emit(text, whole, time)` for each line or piece ready.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8], bool, SystemTime)) {
        while !data.is_empty() {
            let room = LINE_MAX - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            let mut start = 0;
            while let Some(q) = self.buf[start..].iter().position(|b| *b == b'\n') {
                let t = self.partial_time.take().unwrap_or_else(SystemTime::now);
                emit(&self.buf[start..start + q], true, t);
                start += q + 1;
            }
            if start == 0 && self.buf.len() == LINE_MAX {
                self.emit_partial(emit);
            } else {
                self.buf.drain(..start);
            }
        }
    }

    fn emit_partial(&mut self, emit: &mut impl FnMut(&[u8], bool, SystemTime)) {
        let t = *self.partial_time.get_or_insert_with(SystemTime::now);
        emit(&self.buf, false, t);
        self.buf.clear();
    }

    /// The stream ended: what is left is logged as a piece without a newline.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[u8], bool, SystemTime)) {
        if !self.buf.is_empty() {
            self.emit_partial(emit);
        }
        self.buf = Vec::new();
        self.partial_time = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_rfc3339_with_nanoseconds() {
        assert_eq!(rfc3339_nanos(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_709_210_096, 7);
        assert_eq!(rfc3339_nanos(t), "2024-02-29T12:34:56.000000007Z");
        let t = UNIX_EPOCH + Duration::new(4_102_444_799, 999_999_999);
        assert_eq!(rfc3339_nanos(t), "2099-12-31T23:59:59.999999999Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(rfc3339_nanos(t).starts_with("2000-02-29T00:00:00"));
    }

    #[test]
    fn escapes_as_dockerd() {
        let mut out = Vec::new();
        push_json_string(
            &mut out,
            b"a\"b\\c\n\r\t<>&\x01 \xe2\x80\xa8 \xff\xc3\xa9 \xf0\x9f\x98\x80",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a\"b\\c\n\r\u0009\u003c\u003e\u0026\u0001 \u2028 \ufffdé 😀""#
        );
        // A truncated sequence is as many replacement characters as bytes.
        let mut out = Vec::new();
        push_json_string(&mut out, b"\xe2\x80");
        assert_eq!(String::from_utf8(out).unwrap(), r#""\ufffd\ufffd""#);
        let mut e = Vec::new();
        encode_entry(&mut e, "stderr", b"hi", true, "T");
        assert_eq!(
            e,
            b"{\"log\":\"hi\\n\",\"stream\":\"stderr\",\"time\":\"T\"}\n"
        );
    }

    fn split(chunks: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        let mut emit = |t: &[u8], whole: bool, _: SystemTime| out.push((t.to_vec(), whole));
        for c in chunks {
            s.feed(c, &mut emit);
        }
        s.finish(&mut emit);
        out
    }

    #[test]
    fn splits_lines_as_dockerd() {
        assert_eq!(
            split(&[b"a\nb", b"c\n\nd"]),
            [
                (b"a".to_vec(), true),
                (b"bc".to_vec(), true),
                (b"".to_vec(), true),
                (b"d".to_vec(), false)
            ]
        );
        // A 40 KiB line: two 16 KiB pieces, then the rest with its newline.
        let mut long = vec![b'x'; 40 * 1024];
        long.push(b'\n');
        let got = split(&[&long[..1000], &long[1000..]]);
        let shape: Vec<(usize, bool)> = got.iter().map(|(t, w)| (t.len(), *w)).collect();
        assert_eq!(
            shape,
            [(LINE_MAX, false), (LINE_MAX, false), (8 * 1024, true)]
        );
        // Exactly 16 KiB then a newline: one piece, then an empty whole line (dockerd
        // cannot see the newline in a full buffer either).
        let mut exact = vec![b'y'; LINE_MAX];
        exact.push(b'\n');
        let shape: Vec<(usize, bool)> = split(&[&exact])
            .iter()
            .map(|(t, w)| (t.len(), *w))
            .collect();
        assert_eq!(shape, [(LINE_MAX, false), (0, true)]);
    }

    #[test]
    fn rotates_as_dockerd() {
        let d = tempfile_dir();
        let path = d.join("c-json.log");
        let mut log = JsonLog::open(LogConfig {
            path: path.clone(),
            max_size: 100,
            max_file: 3,
        })
        .unwrap();
        let entry = [b'x'; 60];
        for _ in 0..7 {
            log.write(&entry);
        }
        // 120 bytes a file: the entry that passes 100 ends it.
        let size = |n: &str| std::fs::metadata(d.join(format!("c-json.log{n}"))).map(|m| m.len());
        assert_eq!(size("").unwrap(), 60);
        assert_eq!(size(".1").unwrap(), 120);
        assert_eq!(size(".2").unwrap(), 120);
        assert!(size(".3").is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // One file: truncated in place.
        let one = d.join("one.log");
        let mut log = JsonLog::open(LogConfig {
            path: one.clone(),
            max_size: 100,
            max_file: 1,
        })
        .unwrap();
        for _ in 0..3 {
            log.write(&entry);
        }
        assert_eq!(std::fs::metadata(&one).unwrap().len(), 60);
        assert!(!d.join("one.log.1").exists());
        let _ = std::fs::remove_dir_all(d);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "berth-shim-jsonlog-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
