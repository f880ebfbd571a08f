//! How values are printed as docker prints them: aligned tables, short IDs, human
//! sizes and times. (`--format` is in `crate::format` and `crate::template`.)

use serde_json::Value;

/// The strings of a JSON array (none for anything else).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

/// Rows printed as docker's tabwriter does: columns padded to the widest cell plus 3,
/// and at least 10 wide.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            l.push_str(cell);
            if i + 1 < cells.len() {
                // docker's tabwriter: minimum cell width 10, padding 3.
                let pad = (widths[i] + 3).max(10) - cell.chars().count();
                l.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// The 12-character short form of an ID (any `sha256:` prefix dropped).
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// A size as docker prints it: decimal units, 3 significant digits ("4.26MB").
pub fn human_size(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes;
    let mut i = 0;
    while size >= 1000.0 && i + 1 < UNITS.len() {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", trim_float(size), UNITS[i])
}

/// docker's `units.HumanSize`: decimal units, four significant digits (Go's `%.4g`);
/// `system df` uses it where listings use three.
pub fn human_size4(bytes: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let (mut size, mut i) = (bytes, 0);
    while size >= 1000.0 && i + 1 < UNITS.len() {
        size /= 1000.0;
        i += 1;
    }
    let text = if size == 0.0 {
        "0".to_string()
    } else {
        let exp = size.abs().log10().floor() as i32;
        let decimals = (3 - exp).max(0) as usize;
        let s = format!("{size:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    format!("{text}{}", UNITS[i])
}

/// A size as docker's `units.BytesSize`: binary units, four significant digits.
pub fn bytes_size(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut size = bytes;
    let mut i = 0;
    while size >= 1024.0 && i + 1 < UNITS.len() {
        size /= 1024.0;
        i += 1;
    }
    // Go's %.4g: four significant digits, trailing zeros dropped.
    let digits = if size >= 1.0 {
        (size.log10().floor() as i32 + 1).max(1)
    } else {
        1
    };
    let decimals = (4 - digits).max(0) as usize;
    let mut s = format!("{size:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

fn trim_float(v: f64) -> String {
    // Three significant digits, no trailing zeros, as Go's %.3g.
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A duration as docker says it ("Less than a second", "5 seconds", "About a minute",
/// "3 hours", "2 weeks").
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        _ if s < 46 * 60 => format!("{} minutes", s / 60),
        _ if s < 90 * 60 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 14 * 86400 => format!("{} days", s / 86400),
        _ if s < 60 * 86400 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 2 * 365 * 86400 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    }
}

/// Seconds since a Unix timestamp.
pub fn seconds_since(unix: i64) -> i64 {
    chrono::Utc::now().timestamp() - unix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_as_docker_prints_them() {
        assert_eq!(human_size(4_261_000.0), "4.26MB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1_500.0), "1.5kB");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(75), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn tables_pad_columns_to_the_widest_cell() {
        let t = table(&["A", "BB"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "A         BB\nlong      x\n");
        let t = table(
            &["NAME", "X"],
            &[vec!["a-rather-long-name".into(), "y".into()]],
        );
        assert_eq!(t, "NAME                 X\na-rather-long-name   y\n");
    }
}
