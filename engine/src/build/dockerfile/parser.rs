//! The first pass over a Dockerfile, as Docker's parser makes it: parser directives,
//! comments, line continuations, and each instruction's arguments split by the rules of
//! its kind (JSON or shell form, key=value pairs, whitespace-separated words). What comes
//! out is a list of [`Node`]s, one per instruction, still untyped: checking arguments
//! and flags is [`super::instructions`]' work, and variable substitution happens when
//! the instruction is dispatched.

use super::error::ParseError;

/// The default escape character.
pub const DEFAULT_ESCAPE: char = '\\';

/// Docker's scanner refuses a line longer than this (Go's bufio.MaxScanTokenSize - 1).
const MAX_LINE: usize = 64 * 1024 - 1;

/// One instruction as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction, lower case (`run`, `copy`, or whatever unknown word was written).
    pub cmd: String,
    /// Its `--flag=value` words, as written before the arguments.
    pub flags: Vec<String>,
    /// Its arguments, split by the rules of its kind.
    pub args: Vec<String>,
    /// Whether the arguments were written in JSON (exec) form.
    pub json: bool,
    /// The instruction's text, continuation lines joined.
    pub original: String,
    /// First line of the instruction (1-based).
    pub start_line: usize,
    /// Last line of the instruction (1-based).
    pub end_line: usize,
    /// The comment lines just before it (without `#`).
    pub comments: Vec<String>,
}

/// A parsed file: its instructions and what the parser noticed on the way.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The instructions, in order.
    pub nodes: Vec<Node>,
    /// The escape character (`\` or the one `# escape=` chose).
    pub escape: char,
    /// Warnings to show the user (empty continuation lines, an ignored `# syntax=`).
    pub warnings: Vec<String>,
    /// The `# syntax=` directive, if one was given (recorded, not followed).
    pub syntax: Option<String>,
}

struct Directives {
    escape: char,
    done: bool,
    seen_escape: bool,
    syntax: Option<String>,
}

impl Directives {
    /// Looks for a parser directive (`# escape=\``, `# syntax=...`) while they may still
    /// appear: before any instruction, comment or blank line.
    fn possible(&mut self, line: &str) -> Result<(), ParseError> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        match key.to_ascii_lowercase().as_str() {
            "escape" => {
                if self.seen_escape {
                    return Err(ParseError::Directive(
                        "only one escape parser directive can be used".into(),
                    ));
                }
                self.seen_escape = true;
                self.escape = match value {
                    "`" => '`',
                    "\\" => '\\',
                    other => {
                        return Err(ParseError::Directive(format!(
                            "invalid escape token '{other}' does not match ` or \\"
                        )))
                    }
                };
            }
            "syntax" => {
                if self.syntax.is_some() {
                    return Err(ParseError::Directive(
                        "only one syntax parser directive can be used".into(),
                    ));
                }
                self.syntax = Some(value.to_string());
            }
            _ => self.done = true,
        }
        Ok(())
    }
}

/// `#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`: a directive's key and value.
fn directive(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|(i, c)| {
            if *i == 0 {
                !c.is_ascii_alphabetic()
            } else {
                !c.is_ascii_alphanumeric()
            }
        })
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    if key_len == 0 {
        return None;
    }
    let (key, after) = rest.split_at(key_len);
    let value = after.trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

/// Go's `unicode.IsSpace`.
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Docker's `[\t\v\f\r ]+` separator.
fn is_sep(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits on runs of `[\t\v\f\r ]`, at most `limit` parts (0: no limit), as Go's
/// `Regexp.Split` does (leading and trailing separators make empty parts).
fn split_sep(s: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if is_sep(c) && (limit == 0 || out.len() + 1 < limit) {
            while chars.peek().is_some_and(|n| is_sep(*n)) {
                chars.next();
            }
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Removes the line continuation (the escape character at the end, not itself escaped)
/// and says whether the instruction ends on this line.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let Some(before) = trimmed.strip_suffix(escape) else {
        return (line.to_string(), true);
    };
    if before.is_empty() {
        return (String::new(), false);
    }
    if before.ends_with(escape) {
        return (line.to_string(), true);
    }
    (before.to_string(), false)
}

/// Parses a Dockerfile's text into instruction nodes.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    // A final newline does not start one more (empty) line.
    let count = text.split('\n').count() - usize::from(text.ends_with('\n'));
    let mut d = Directives {
        escape: DEFAULT_ESCAPE,
        done: false,
        seen_escape: false,
        syntax: None,
    };
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut current = 0usize;
    let mut empty_continuation = false;
    while current < count {
        let raw = lines.next().unwrap_or("");
        if raw.len() > MAX_LINE {
            return Err(ParseError::LineTooLong(MAX_LINE));
        }
        if is_comment(raw) {
            let c = raw.trim_start()[1..].trim();
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
        let stripped = raw.trim_start();
        d.possible(stripped)?;
        let processed = if stripped.starts_with('#') {
            ""
        } else {
            stripped
        };
        current += 1;
        let start = current;
        let (mut line, mut end) = trim_continuation(processed, d.escape);
        if end && line.is_empty() {
            continue;
        }
        let mut had_empty = false;
        while !end && current < count {
            let raw = lines.next().unwrap_or("");
            if raw.len() > MAX_LINE {
                return Err(ParseError::LineTooLong(MAX_LINE));
            }
            d.possible(raw)?;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if raw.trim_start().is_empty() {
                had_empty = true;
                continue;
            }
            let (part, e) = trim_continuation(raw, d.escape);
            line.push_str(&part);
            end = e;
        }
        if had_empty {
            empty_continuation = true;
            warnings.push(format!(
                "[WARNING]: Empty continuation line found in:\n    {line}"
            ));
        }
        let mut node = node_from_line(&line, d.escape).map_err(|e| ParseError::At {
            line: start,
            inner: Box::new(e),
        })?;
        node.start_line = start;
        node.end_line = current;
        node.comments = std::mem::take(&mut comments);
        nodes.push(node);
    }
    if empty_continuation {
        warnings.push(
            "[WARNING]: Empty continuation lines will become errors in a future release.".into(),
        );
    }
    if nodes.is_empty() {
        return Err(ParseError::NoInstructions);
    }
    if let Some(s) = &d.syntax {
        warnings.push(format!(
            "[WARNING]: the syntax parser directive ({s}) is ignored: berthd builds with its own Dockerfile front end"
        ));
    }
    Ok(Parsed {
        nodes,
        escape: d.escape,
        warnings,
        syntax: d.syntax,
    })
}

/// Splits a joined instruction line into its command, flags and arguments.
fn node_from_line(line: &str, escape: char) -> Result<Node, ParseError> {
    let trimmed = line.trim_matches(is_space);
    let parts = split_sep(trimmed, 2);
    let cmd = parts[0].to_lowercase();
    let (rest, flags) = match parts.get(1) {
        Some(after) => extract_flags(after),
        None => (String::new(), Vec::new()),
    };
    let rest = rest.trim_matches(is_space).to_string();
    let (args, json) = split_args(&cmd, &rest, escape)?;
    Ok(Node {
        cmd,
        flags,
        args,
        json,
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
        comments: Vec::new(),
    })
}

/// The arguments of an instruction by the rules of its kind.
fn split_args(cmd: &str, rest: &str, escape: char) -> Result<(Vec<String>, bool), ParseError> {
    match cmd {
        "add" | "copy" | "volume" => maybe_json_to_list(rest),
        "arg" => Ok((words(rest, escape), false)),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(rest),
        "env" => Ok((name_val(rest, "ENV", escape)?, false)),
        "label" => Ok((name_val(rest, "LABEL", escape)?, false)),
        "expose" | "from" => Ok((whitespace_list(rest), false)),
        "healthcheck" => health(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok((
            if rest.is_empty() {
                Vec::new()
            } else {
                vec![rest.to_string()]
            },
            false,
        )),
        "onbuild" => {
            if rest.is_empty() {
                return Ok((Vec::new(), false));
            }
            let child = node_from_line(rest, escape)?;
            let mut args = vec![child.cmd];
            args.extend(child.args);
            Ok((args, child.json))
        }
        // An unknown instruction keeps no arguments; it is refused by name later.
        _ => Ok((Vec::new(), false)),
    }
}

/// Reads `--flag=value` words off the front of an instruction's arguments (quotes and
/// backslashes in them processed), up to the first word that is not a flag or `--`.
fn extract_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let bytes = line.as_bytes();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word: Vec<u8> = Vec::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let at_end = pos == bytes.len();
        let ch = if at_end { 0 } else { bytes[pos] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if (ch as char).is_ascii_whitespace() || ch == 0x0b {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == bytes.len() || bytes[pos + 1] != b'-' {
                return (line[pos..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            let w = String::from_utf8_lossy(&word).into_owned();
            if w != "--" && (blank_ok || !w.is_empty()) {
                words.push(w);
            }
            break;
        }
        if phase == Phase::Word {
            if (ch as char).is_ascii_whitespace() || ch == 0x0b {
                phase = Phase::Spaces;
                let w = String::from_utf8_lossy(&word).into_owned();
                if w == "--" {
                    return (line[pos..].to_string(), words);
                }
                if blank_ok || !w.is_empty() {
                    words.push(w);
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut c = ch;
            if c == b'\\' {
                if pos + 1 == bytes.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = bytes[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // In quotes.
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut c = ch;
        if c == b'\\' {
            if pos + 1 == bytes.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = bytes[pos];
        }
        word.push(c);
        pos += 1;
    }
    (String::new(), words)
}

/// Space-separated words with quotes and escapes kept (they are processed when the
/// words are expanded), as Docker's `parseWords`.
pub fn words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut out = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let at_end = pos == chars.len();
        let ch = if at_end { '\0' } else { chars[pos] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                out.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            let mut c = ch;
            if c == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(c);
                pos += 1;
                c = chars[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // In quotes.
        if ch == quote {
            phase = Phase::Word;
        }
        let mut c = ch;
        if c == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(c);
            c = chars[pos];
        }
        word.push(c);
        pos += 1;
    }
    out
}

/// `ENV`/`LABEL`: `KEY value` (old form) or `KEY=value ...` pairs, flattened.
fn name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, ParseError> {
    let ws = words(rest, escape);
    if ws.is_empty() {
        return Ok(Vec::new());
    }
    if !ws[0].contains('=') {
        let parts = split_sep(rest, 2);
        if parts.len() < 2 {
            return Err(ParseError::Line(format!("{key} must have two arguments")));
        }
        return Ok(parts);
    }
    let mut out = Vec::new();
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseError::Line(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                go_quote(&w)
            )));
        };
        out.push(k.to_string());
        out.push(v.to_string());
    }
    Ok(out)
}

fn whitespace_list(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_sep(rest, 0)
}

enum Json {
    Strings(Vec<String>),
    NotJson,
}

/// The exec form: a JSON array of strings. Like Go's decoder, the first JSON value is
/// read and anything after it is ignored.
fn json_array(rest: &str) -> Result<Json, ParseError> {
    let rest = rest.trim_start_matches(is_space);
    if !rest.starts_with('[') {
        return Ok(Json::NotJson);
    }
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<serde_json::Value>();
    let value = match stream.next() {
        Some(Ok(v)) => v,
        _ => return Ok(Json::NotJson),
    };
    let serde_json::Value::Array(items) = value else {
        return Ok(Json::NotJson);
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            serde_json::Value::String(s) => out.push(s),
            _ => {
                return Err(ParseError::Line(
                    "when using JSON array syntax, arrays must be comprised of strings only".into(),
                ))
            }
        }
    }
    Ok(Json::Strings(out))
}

fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), ParseError> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match json_array(rest)? {
        Json::Strings(v) => Ok((v, true)),
        Json::NotJson => Ok((vec![rest.to_string()], false)),
    }
}

fn maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), ParseError> {
    match json_array(rest)? {
        Json::Strings(v) => Ok((v, true)),
        Json::NotJson => Ok((whitespace_list(rest), false)),
    }
}

/// `HEALTHCHECK TYPE args`: the type, then the command in either form.
fn health(rest: &str) -> Result<(Vec<String>, bool), ParseError> {
    let sep = rest
        .char_indices()
        .find(|(_, c)| is_space(*c))
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let typ = &rest[..sep];
    let after = rest[sep..].trim_start_matches(is_space);
    let (cmd, json) = maybe_json(after)?;
    let mut args = vec![typ.to_string()];
    args.extend(cmd);
    Ok((args, json))
}

/// Go's `strconv.Quote`: a double-quoted string with Go's escapes, as Docker's `%q`
/// prints it in messages and in history entries.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let p = parse(text).unwrap();
        assert_eq!(p.nodes.len(), 1, "{:?}", p.nodes);
        p.nodes.into_iter().next().unwrap()
    }

    #[test]
    fn continuation_comments_and_lines() {
        let p = parse("FROM a\n# c1\nRUN echo a \\\n  # inside\n  && echo b\n\nCMD x\n").unwrap();
        assert_eq!(p.nodes.len(), 3);
        let run = &p.nodes[1];
        assert_eq!(run.cmd, "run");
        assert_eq!(run.args, vec!["echo a   && echo b"]);
        assert_eq!((run.start_line, run.end_line), (3, 5));
        assert_eq!(run.comments, vec!["c1"]);
        assert_eq!(p.nodes[2].start_line, 7);
    }

    #[test]
    fn escape_directive_changes_continuation() {
        let p = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  x\n").unwrap();
        assert_eq!(p.escape, '`');
        assert_eq!(p.nodes[1].args, vec!["dir c:\\   x"]);
        // An escaped escape at the end does not continue the line.
        let p = parse("FROM a\nRUN echo \\\\\nCMD y\n").unwrap();
        assert_eq!(p.nodes.len(), 3);
        assert_eq!(p.nodes[1].args, vec!["echo \\\\"]);
    }

    #[test]
    fn directives_only_at_the_top() {
        assert!(matches!(
            parse("# escape=x\nFROM a\n"),
            Err(ParseError::Directive(m)) if m.contains("invalid escape token 'x'")
        ));
        assert!(parse("# escape=`\n# escape=\\\nFROM a\n").is_err());
        // After an instruction, a directive-looking line is a comment.
        let p = parse("FROM a\n# escape=`\nRUN x \\\n y\n").unwrap();
        assert_eq!(p.escape, '\\');
        let p = parse("# syntax=docker/dockerfile:1\nFROM a\n").unwrap();
        assert_eq!(p.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert!(p.warnings.iter().any(|w| w.contains("syntax")));
    }

    #[test]
    fn forms() {
        let n = one("RUN [\"echo\", \"a b\"]");
        assert!(n.json);
        assert_eq!(n.args, vec!["echo", "a b"]);
        let n = one("RUN [\"echo\" bad");
        assert!(!n.json);
        assert_eq!(n.args, vec!["[\"echo\" bad"]);
        assert!(parse("CMD [\"a\", 1]").is_err());
        let n = one("COPY a b /c/");
        assert_eq!(n.args, vec!["a", "b", "/c/"]);
        let n = one("COPY [\"a b\", \"/c/\"]");
        assert_eq!(n.args, vec!["a b", "/c/"]);
    }

    #[test]
    fn env_forms() {
        assert_eq!(one("ENV A b c").args, vec!["A", "b c"]);
        assert_eq!(
            one("ENV A=1 B=\"x y\" C=").args,
            vec!["A", "1", "B", "\"x y\"", "C", ""]
        );
        assert!(matches!(
            parse("ENV A"),
            Err(ParseError::At { line: 1, .. })
        ));
        let e = parse("FROM a\nENV A=1 B").unwrap_err().to_string();
        assert!(e.contains("can't find = in \"B\""), "{e}");
    }

    #[test]
    fn flags_are_extracted() {
        let n = one("COPY --from=build --chown=\"a b\" src dst");
        assert_eq!(n.flags, vec!["--from=build", "--chown=a b"]);
        assert_eq!(n.args, vec!["src", "dst"]);
        let n = one("COPY -- --weird dst");
        assert!(n.flags.is_empty());
        assert_eq!(n.args, vec!["--weird", "dst"]);
    }

    #[test]
    fn onbuild_and_health() {
        let n = one("ONBUILD RUN echo hi");
        assert_eq!(n.args, vec!["run", "echo hi"]);
        let n = one("HEALTHCHECK --interval=5s CMD curl -f x");
        assert_eq!(n.flags, vec!["--interval=5s"]);
        assert_eq!(n.args, vec!["CMD", "curl -f x"]);
        let n = one("HEALTHCHECK NONE");
        assert_eq!(n.args, vec!["NONE"]);
    }

    #[test]
    fn empty_and_bom_and_crlf() {
        assert!(matches!(
            parse("# only\n\n"),
            Err(ParseError::NoInstructions)
        ));
        let p = parse("\u{feff}FROM a\r\nRUN x \\\r\n y\r\n").unwrap();
        assert_eq!(p.nodes[1].args, vec!["x  y"]);
    }

    #[test]
    fn unknown_instruction_keeps_its_name() {
        let n = one("FORM x");
        assert_eq!(n.cmd, "form");
        assert!(n.args.is_empty());
    }

    #[test]
    fn empty_continuation_warns() {
        let p = parse("FROM a\nRUN x \\\n\n y\n").unwrap();
        assert!(p.warnings[0].contains("Empty continuation line"));
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
    }
}
