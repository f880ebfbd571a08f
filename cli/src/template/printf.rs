//! Go's `fmt.Sprintf` for the values templates hold: the verbs, flags, width and
//! precision people write in `--format` (`%s`, `%d`, `%v`, `%q`, `%x`, `%5.2f`,
//! `%-10s`, `%*d`, ...), and Go's `%!verb(type=value)` markers for a bad argument.

use super::value::Value;

/// Formats `args` with the Go format string `format`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        // Flags.
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        // Width.
        if chars.peek() == Some(&'*') {
            chars.next();
            match args.get(next) {
                Some(Value::Int(n)) => {
                    spec.width = Some(n.unsigned_abs() as usize);
                    if *n < 0 {
                        spec.minus = true;
                    }
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            next += 1;
        } else {
            let mut w = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                w.push(d);
                chars.next();
            }
            if !w.is_empty() {
                spec.width = w.parse().ok();
            }
        }
        // Precision.
        if chars.peek() == Some(&'.') {
            chars.next();
            if chars.peek() == Some(&'*') {
                chars.next();
                match args.get(next) {
                    Some(Value::Int(n)) if *n >= 0 => spec.prec = Some(*n as usize),
                    _ => out.push_str("%!(BADPREC)"),
                }
                next += 1;
            } else {
                let mut p = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    p.push(d);
                    chars.next();
                }
                spec.prec = Some(p.parse().unwrap_or(0));
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(v) => out.push_str(&spec.format(verb, v)),
        }
        next += 1;
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|v| format!("{}={}", v.type_name(), v.print()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[derive(Debug, Default, Clone)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Spec {
    fn format(&self, verb: char, v: &Value) -> String {
        let body = match self.body(verb, v) {
            Some(b) => b,
            None => return format!("%!{verb}({}={})", v.type_name(), v.print()),
        };
        self.pad(
            body,
            matches!(
                verb,
                'd' | 'f' | 'F' | 'e' | 'E' | 'g' | 'G' | 'x' | 'X' | 'o' | 'b'
            ) && !matches!(v, Value::Str(_)),
        )
    }

    /// Pads to the width: left-aligned with `-`, zeros after the sign for numbers
    /// with `0`, else spaces before.
    fn pad(&self, body: String, numeric: bool) -> String {
        let Some(w) = self.width else { return body };
        let n = body.chars().count();
        if n >= w {
            return body;
        }
        let fill = w - n;
        if self.minus {
            format!("{body}{}", " ".repeat(fill))
        } else if self.zero && numeric {
            let (sign, digits) = match body.chars().next() {
                Some(c @ ('-' | '+' | ' ')) => (c.to_string(), body[1..].to_string()),
                _ => (String::new(), body),
            };
            format!("{sign}{}{digits}", "0".repeat(fill))
        } else {
            format!("{}{body}", " ".repeat(fill))
        }
    }

    fn sign(&self, neg: bool, digits: String) -> String {
        if neg {
            format!("-{digits}")
        } else if self.plus {
            format!("+{digits}")
        } else if self.space {
            format!(" {digits}")
        } else {
            digits
        }
    }

    fn body(&self, verb: char, v: &Value) -> Option<String> {
        match (verb, v) {
            ('v', Value::Float(f)) => Some(self.float('g', *f)),
            ('v', Value::Int(_) | Value::Uint(_)) => self.body('d', v),
            ('v', Value::Str(s)) if self.sharp => Some(quote(s)),
            ('v', _) => Some(v.print()),
            ('s', Value::Str(s)) => Some(self.truncate(s)),
            ('s', Value::List(l)) => {
                let parts: Option<Vec<String>> = l.iter().map(|x| self.body('s', x)).collect();
                parts.map(|p| format!("[{}]", p.join(" ")))
            }
            ('s', Value::Nil(_) | Value::Missing) => None,
            ('s', Value::Struct(_) | Value::Map(_)) => Some(v.print()),
            ('q', Value::Str(s)) => Some(if self.sharp && !s.contains('`') {
                format!("`{s}`")
            } else {
                quote(&self.truncate(s))
            }),
            ('q', Value::Int(n)) => char::from_u32(*n as u32).map(quote_char),
            ('d', Value::Int(n)) => Some(self.sign(*n < 0, n.unsigned_abs().to_string())),
            ('d', Value::Uint(n)) => Some(self.sign(false, n.to_string())),
            ('d', Value::List(l)) => {
                let parts: Option<Vec<String>> = l.iter().map(|x| self.body('d', x)).collect();
                parts.map(|p| format!("[{}]", p.join(" ")))
            }
            ('x' | 'X' | 'o' | 'b', Value::Int(n)) => {
                Some(self.sign(*n < 0, self.radix(verb, n.unsigned_abs())))
            }
            ('x' | 'X' | 'o' | 'b', Value::Uint(n)) => Some(self.sign(false, self.radix(verb, *n))),
            ('x' | 'X', Value::Str(s)) => {
                let h: String = s.bytes().map(|b| format!("{b:02x}")).collect();
                Some(if verb == 'X' { h.to_uppercase() } else { h })
            }
            ('c', Value::Int(n)) => char::from_u32(*n as u32).map(String::from),
            ('U', Value::Int(n)) => Some(format!("U+{:04X}", n)),
            ('t', Value::Bool(b)) => Some(b.to_string()),
            ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Float(f)) => Some(self.float(verb, *f)),
            _ => None,
        }
    }

    fn truncate(&self, s: &str) -> String {
        match self.prec {
            Some(p) => s.chars().take(p).collect(),
            None => s.to_string(),
        }
    }

    fn radix(&self, verb: char, n: u64) -> String {
        let (digits, prefix) = match verb {
            'x' => (format!("{n:x}"), "0x"),
            'X' => (format!("{n:X}"), "0X"),
            'o' => (format!("{n:o}"), "0"),
            _ => (format!("{n:b}"), "0b"),
        };
        if self.sharp {
            format!("{prefix}{digits}")
        } else {
            digits
        }
    }

    fn float(&self, verb: char, f: f64) -> String {
        if f.is_nan() {
            return "NaN".into();
        }
        if f.is_infinite() {
            return self.sign(f < 0.0, "Inf".into());
        }
        let neg = f.is_sign_negative() && f != 0.0;
        let a = f.abs();
        let digits = match verb {
            'e' | 'E' => {
                let s = format_e(a, self.prec.unwrap_or(6));
                if verb == 'E' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
            'f' | 'F' => format!("{a:.*}", self.prec.unwrap_or(6)),
            _ => {
                let p = self.prec.map(|p| p.max(1) as i64).unwrap_or(-1);
                let s = format_g(a, p, false);
                if verb == 'G' {
                    s.to_uppercase()
                } else {
                    s
                }
            }
        };
        self.sign(neg, digits)
    }
}

/// `%e` with `prec` digits after the point, Go's exponent form (`e+06`).
fn format_e(a: f64, prec: usize) -> String {
    let s = format!("{a:.prec$e}");
    go_exponent(&s)
}

/// Rust's `1.5e6` as Go's `1.5e+06`.
fn go_exponent(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, d) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{d:0>2}")
        }
        None => s.to_string(),
    }
}

/// Go's `%g` (`prec` significant digits, or -1 for the shortest that reads back):
/// exponent form when the exponent is below -4 or at least the precision (6 for the
/// shortest form), else plain, without trailing zeros.
pub fn format_g(f: f64, prec: i64, _upper: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f < 0.0 {
            "-Inf".into()
        } else {
            "+Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let neg = f < 0.0;
    let a = f.abs();
    // The significant digits and the decimal exponent.
    let sci = if prec < 0 {
        format!("{a:e}")
    } else {
        format!("{a:.*e}", (prec - 1).max(0) as usize)
    };
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let nd = digits.len() as i64;
    let eprec = if prec < 0 {
        6
    } else if prec > nd && nd > exp {
        nd
    } else {
        prec
    };
    let body = if exp < -4 || exp >= eprec {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        go_exponent(&format!("{m}e{exp}"))
    } else if exp >= 0 {
        let dp = (exp + 1) as usize;
        if digits.len() <= dp {
            format!("{digits}{}", "0".repeat(dp - digits.len()))
        } else {
            format!("{}.{}", &digits[..dp], &digits[dp..])
        }
    } else {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

/// Go's `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn quote_char(c: char) -> String {
    match c {
        '\'' => "'\\''".into(),
        '\n' => "'\\n'".into(),
        '\t' => "'\\t'".into(),
        c => format!("'{c}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: &str, args: &[Value]) -> String {
        sprintf(f, args)
    }

    #[test]
    fn verbs_flags_width_and_precision_as_go() {
        assert_eq!(
            s(
                "%5.2f|%-4s|%q|%v|%x",
                &[
                    Value::Float(2.71928),
                    "ab".into(),
                    "q".into(),
                    Value::Int(12),
                    Value::Int(255)
                ]
            ),
            " 2.72|ab  |\"q\"|12|ff"
        );
        assert_eq!(
            s(
                "%05d|%+d|%3d",
                &[Value::Int(42), Value::Int(7), Value::Int(-1)]
            ),
            "00042|+7| -1"
        );
        assert_eq!(
            s("%.2s|%10.3s|", &["abcdef".into(), "xyz12".into()]),
            "ab|       xyz|"
        );
        assert_eq!(s("%d", &["x".into()]), "%!d(string=x)");
        assert_eq!(s("%s %s", &["a".into()]), "a %!s(MISSING)");
        assert_eq!(s("%s", &["a".into(), Value::Int(1)]), "a%!(EXTRA int=1)");
        assert_eq!(s("100%%", &[]), "100%");
        assert_eq!(s("%*d", &[Value::Int(4), Value::Int(7)]), "   7");
        assert_eq!(
            s(
                "%#x %X %o %b",
                &[
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(5)
                ]
            ),
            "0xff FF 10 101"
        );
        assert_eq!(
            s(
                "%e|%g|%.3g|%G",
                &[
                    Value::Float(1234.5678),
                    Value::Float(0.00001),
                    Value::Float(1.0),
                    Value::Float(1e21)
                ]
            ),
            "1.234568e+03|1e-05|1|1E+21"
        );
        assert_eq!(s("%t %c", &[Value::Bool(true), Value::Int(65)]), "true A");
    }

    #[test]
    fn shortest_floats_print_as_go() {
        assert_eq!(format_g(1.5, -1, false), "1.5");
        assert_eq!(format_g(123456.0, -1, false), "123456");
        assert_eq!(format_g(1234567.0, -1, false), "1.234567e+06");
        assert_eq!(format_g(1e6, -1, false), "1e+06");
        assert_eq!(format_g(0.0001, -1, false), "0.0001");
        assert_eq!(format_g(0.00001, -1, false), "1e-05");
        assert_eq!(format_g(-2.5, -1, false), "-2.5");
        assert_eq!(format_g(100.0, 2, false), "1e+02");
    }
}
