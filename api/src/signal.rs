//! Signals named as dockerd reads them (moby's `signal.ParseSignal`): a number, or a
//! Linux signal's name in any case with or without `SIG` (`TERM`, `sigkill`,
//! `RTMIN+3`).

/// Linux signals by dockerd's names (without `SIG`).
const SIGNALS: &[(&str, u32)] = &[
    ("ABRT", 6),
    ("ALRM", 14),
    ("BUS", 7),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("FPE", 8),
    ("HUP", 1),
    ("ILL", 4),
    ("INT", 2),
    ("IO", 29),
    ("IOT", 6),
    ("KILL", 9),
    ("PIPE", 13),
    ("POLL", 29),
    ("PROF", 27),
    ("PWR", 30),
    ("QUIT", 3),
    ("SEGV", 11),
    ("STKFLT", 16),
    ("STOP", 19),
    ("SYS", 31),
    ("TERM", 15),
    ("TRAP", 5),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("USR1", 10),
    ("USR2", 12),
    ("VTALRM", 26),
    ("WINCH", 28),
    ("XCPU", 24),
    ("XFSZ", 25),
];

const RTMIN: u32 = 34;
const RTMAX: u32 = 64;

/// A signal dockerd does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid signal: {0}")]
pub struct InvalidSignal(pub String);

/// The signal's number.
pub fn parse(raw: &str) -> Result<u32, InvalidSignal> {
    let bad = || InvalidSignal(raw.to_string());
    if let Ok(n) = raw.parse::<i64>() {
        // As Go's Atoi path: any number but 0 (the kernel refuses what it must).
        return u32::try_from(n).ok().filter(|&n| n != 0).ok_or_else(bad);
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = SIGNALS.iter().find(|(s, _)| *s == name) {
        return Ok(*n);
    }
    let rt = |base: u32, off: &str, plus: bool| -> Option<u32> {
        let k: u32 = off.parse().ok().filter(|k| (1..=15).contains(k))?;
        Some(if plus { base + k } else { base - k })
    };
    match name {
        "RTMIN" => Ok(RTMIN),
        "RTMAX" => Ok(RTMAX),
        _ => name
            .strip_prefix("RTMIN+")
            .and_then(|o| rt(RTMIN, o, true))
            .or_else(|| {
                name.strip_prefix("RTMAX-")
                    .and_then(|o| rt(RTMAX, o, false))
            })
            .ok_or_else(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("SIGTERM"), Ok(15));
        assert_eq!(parse("term"), Ok(15));
        assert_eq!(parse("SIGkill"), Ok(9));
        assert_eq!(parse("USR1"), Ok(10));
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("RTMIN+3"), Ok(37));
        assert_eq!(parse("SIGRTMAX-1"), Ok(63));
        assert_eq!(parse("0").unwrap_err().to_string(), "Invalid signal: 0");
        assert_eq!(parse("-1").unwrap_err().to_string(), "Invalid signal: -1");
        assert_eq!(
            parse("SIGBOGUS").unwrap_err().to_string(),
            "Invalid signal: SIGBOGUS"
        );
        assert!(parse("RTMIN+16").is_err());
        assert!(parse("").is_err());
    }
}
