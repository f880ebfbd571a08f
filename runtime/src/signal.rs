//! Signal names as `kill` accepts them: `KILL`, `SIGKILL`, `9`, `SIGRTMIN+3`.

use std::str::FromStr;

use nix::sys::signal::Signal;

use crate::error::{Result, RuntimeError};

/// Parse a signal given by name or number into its number.
pub fn parse(text: &str) -> Result<i32> {
    let bad = || RuntimeError::BadSignal(text.to_string());
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return if (1..=libc::SIGRTMAX()).contains(&number) {
            Ok(number)
        } else {
            Err(bad())
        };
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(offset) = name.strip_prefix("SIGRTMIN") {
        return rt_signal(libc::SIGRTMIN(), offset, 1).ok_or_else(bad);
    }
    if let Some(offset) = name.strip_prefix("SIGRTMAX") {
        return rt_signal(libc::SIGRTMAX(), offset, -1).ok_or_else(bad);
    }
    Signal::from_str(&name).map(|s| s as i32).map_err(|_| bad())
}

/// `SIGRTMIN+N` / `SIGRTMAX-N`; `direction` is the sign the offset must have.
fn rt_signal(base: i32, offset: &str, direction: i32) -> Option<i32> {
    let value = if offset.is_empty() {
        base
    } else {
        let (sign, digits) = offset.split_at(1);
        let n: i32 = digits.parse().ok()?;
        match (sign, direction) {
            ("+", 1) => base + n,
            ("-", -1) => base - n,
            _ => return None,
        }
    };
    (libc::SIGRTMIN()..=libc::SIGRTMAX())
        .contains(&value)
        .then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_realtime_signals() {
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("sigterm").unwrap(), 15);
        assert_eq!(parse("15").unwrap(), 15);
        assert_eq!(parse("SIGRTMIN").unwrap(), libc::SIGRTMIN());
        assert_eq!(parse("RTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse("SIGRTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
    }

    #[test]
    fn bad_signals_are_named_in_the_error() {
        for bad in [
            "", "0", "65", "-9", "SIGNOPE", "RTMIN-1", "RTMAX+1", "RTMIN+99",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("unknown signal"), "{bad}: {err}");
        }
    }
}
