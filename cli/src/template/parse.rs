//! Go's text/template syntax: the lexer (delimiters with `{{-`/`-}}` trimming,
//! comments, strings, raw strings, characters, numbers, fields, variables, keywords)
//! and the parser into a tree of actions, as Go's `text/template/parse` builds it,
//! with Go's words for a malformed template.

use std::fmt;

/// A node of the tree, with its byte offset in the template (for error positions).
#[derive(Debug, Clone)]
pub enum Node {
    /// Plain text.
    Text(String),
    /// `{{pipeline}}`.
    Action(Pipe),
    /// `{{if}}`.
    If(Branch),
    /// `{{range}}`.
    Range(Branch),
    /// `{{with}}`.
    With(Branch),
    /// `{{template "name" pipeline}}`.
    Template {
        /// Where.
        pos: usize,
        /// Which.
        name: String,
        /// Its data.
        pipe: Option<Pipe>,
    },
    /// `{{break}}`.
    Break,
    /// `{{continue}}`.
    Continue,
}

/// The parts of if, range and with.
#[derive(Debug, Clone)]
pub struct Branch {
    /// The condition.
    pub pipe: Pipe,
    /// When true (or for each element).
    pub list: Vec<Node>,
    /// Otherwise.
    pub else_list: Option<Vec<Node>>,
}

/// A pipeline: optional variables, then commands joined by `|`.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// Where.
    pub pos: usize,
    /// `$x :=` (or `$i, $e :=` in range).
    pub decl: Vec<String>,
    /// `=` instead of `:=`.
    pub is_assign: bool,
    /// The commands.
    pub cmds: Vec<Cmd>,
}

/// A command: an operand and its arguments.
#[derive(Debug, Clone)]
pub struct Cmd {
    /// Where.
    pub pos: usize,
    /// Operand first.
    pub args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone)]
pub enum Arg {
    /// `.A.B`.
    Field(usize, Vec<String>),
    /// `(pipe).A.B` or `$x` followed by fields is a Variable.
    Chain(usize, Box<Arg>, Vec<String>),
    /// `$x.A.B` (`$` alone is the data).
    Variable(usize, String, Vec<String>),
    /// `.`.
    Dot(usize),
    /// `nil`.
    Nil(usize),
    /// `true`/`false`.
    Bool(usize, bool),
    /// A number constant as written.
    Number(usize, Number),
    /// A string constant (unquoted) and its text as written.
    Str(usize, String, String),
    /// A function name.
    Ident(usize, String),
    /// `(pipeline)`.
    Pipe(usize, Box<Pipe>),
}

/// A number constant: Go keeps the written text and its integer and float readings.
#[derive(Debug, Clone)]
pub struct Number {
    /// As written.
    pub text: String,
    /// Its integer value, if it is an integer.
    pub int: Option<i64>,
    /// Its float value.
    pub float: Option<f64>,
    /// Written as a float (has `.`, `e`, ... and is not hex or a char).
    pub is_float: bool,
}

impl Arg {
    /// Where.
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field(p, _)
            | Arg::Chain(p, _, _)
            | Arg::Variable(p, _, _)
            | Arg::Dot(p)
            | Arg::Nil(p)
            | Arg::Bool(p, _)
            | Arg::Number(p, _)
            | Arg::Str(p, _, _)
            | Arg::Ident(p, _)
            | Arg::Pipe(p, _) => *p,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field(_, names) => {
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Chain(_, node, names) => {
                match node.as_ref() {
                    Arg::Pipe(_, p) => write!(f, "({p})")?,
                    other => write!(f, "{other}")?,
                }
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Variable(_, name, names) => {
                f.write_str(name)?;
                for n in names {
                    write!(f, ".{n}")?;
                }
                Ok(())
            }
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => f.write_str(&n.text),
            Arg::Str(_, _, text) => f.write_str(text),
            Arg::Ident(_, n) => f.write_str(n),
            Arg::Pipe(_, p) => write!(f, "({p})"),
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match a {
                Arg::Pipe(_, p) => write!(f, "({p})")?,
                other => write!(f, "{other}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A parsed template: the main tree and the ones `define` and `block` named.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The template's name (`""` for docker's formats).
    pub name: String,
    /// The source, for error positions.
    pub source: String,
    /// The main tree.
    pub root: Vec<Node>,
    /// Named trees.
    pub defines: Vec<(String, Vec<Node>)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    Left,
    Right,
    Space,
    Declare,
    Assign,
    Pipe,
    LParen,
    RParen,
    Comma,
    Field(String),
    Variable(String),
    Dot,
    Ident(String),
    Str(String, String),
    Char(i64, String),
    Number(String),
    Bool(bool),
    Nil,
    Keyword(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
struct Item {
    tok: Tok,
    pos: usize,
}

const KEYWORDS: [&str; 10] = [
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

/// The lexer: text and actions to items; errors in Go's words (without the prefix).
fn lex(src: &str) -> Result<Vec<Item>, (usize, String)> {
    let b = src.as_bytes();
    let mut items: Vec<Item> = Vec::new();
    let mut i = 0usize;
    let mut trim_next = false;
    while i < b.len() {
        // Text up to the next "{{".
        let start = i;
        let end = src[i..].find("{{").map_or(b.len(), |o| i + o);
        let mut text = &src[start..end];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            trim_next = false;
        }
        let left_trim = ["{{- ", "{{-\t", "{{-\n", "{{-\r"]
            .iter()
            .any(|m| src[end..].starts_with(m));
        if left_trim {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
        }
        if !text.is_empty() {
            items.push(Item {
                tok: Tok::Text(text.to_string()),
                pos: start,
            });
        }
        if end >= b.len() {
            break;
        }
        i = end + 2;
        if left_trim {
            i += 2;
        }
        // A comment fills the whole action.
        let after_space = i;
        if src[i..].starts_with("/*") {
            let close = src[i..]
                .find("*/")
                .ok_or((end, "unclosed comment".to_string()))?;
            i += close + 2;
            if src[i..].starts_with(" -}}") {
                i += 4;
                trim_next = true;
            } else if src[i..].starts_with("}}") {
                i += 2;
            } else {
                return Err((end, "comment ends before closing delimiter".into()));
            }
            continue;
        }
        let _ = after_space;
        items.push(Item {
            tok: Tok::Left,
            pos: end,
        });
        // Inside the action.
        let mut parens = 0i32;
        loop {
            if i >= b.len() {
                return Err((end, "unclosed action".into()));
            }
            let rest = &src[i..];
            if rest.starts_with("}}") && parens <= 0 {
                items.push(Item {
                    tok: Tok::Right,
                    pos: i,
                });
                i += 2;
                break;
            }
            let c = rest.chars().next().unwrap_or(' ');
            let pos = i;
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    let n = rest
                        .find(|c: char| !matches!(c, ' ' | '\t' | '\r' | '\n'))
                        .unwrap_or(rest.len());
                    i += n;
                    if src[i..].starts_with("-}}") {
                        if parens > 0 {
                            return Err((pos, "unclosed left paren".into()));
                        }
                        items.push(Item {
                            tok: Tok::Right,
                            pos: i,
                        });
                        i += 3;
                        trim_next = true;
                        break;
                    }
                    items.push(Item {
                        tok: Tok::Space,
                        pos,
                    });
                }
                '}' => {
                    // "}}" inside parens, or a lone "}".
                    if rest.starts_with("}}") {
                        return Err((pos, "unclosed left paren".into()));
                    }
                    return Err((pos, "unexpected right delim".to_string()));
                }
                ':' => {
                    if !rest.starts_with(":=") {
                        return Err((pos, "expected :=".into()));
                    }
                    items.push(Item {
                        tok: Tok::Declare,
                        pos,
                    });
                    i += 2;
                }
                '=' => {
                    items.push(Item {
                        tok: Tok::Assign,
                        pos,
                    });
                    i += 1;
                }
                '|' => {
                    items.push(Item {
                        tok: Tok::Pipe,
                        pos,
                    });
                    i += 1;
                }
                ',' => {
                    items.push(Item {
                        tok: Tok::Comma,
                        pos,
                    });
                    i += 1;
                }
                '(' => {
                    parens += 1;
                    items.push(Item {
                        tok: Tok::LParen,
                        pos,
                    });
                    i += 1;
                }
                ')' => {
                    parens -= 1;
                    if parens < 0 {
                        return Err((pos, "unexpected right paren".into()));
                    }
                    items.push(Item {
                        tok: Tok::RParen,
                        pos,
                    });
                    i += 1;
                }
                '"' => {
                    let mut j = i + 1;
                    let mut escaped = false;
                    loop {
                        let Some(ch) = src[j..].chars().next() else {
                            return Err((pos, "unterminated quoted string".into()));
                        };
                        if ch == '\n' && !escaped {
                            return Err((pos, "unterminated quoted string".into()));
                        }
                        j += ch.len_utf8();
                        if escaped {
                            escaped = false;
                        } else if ch == '\\' {
                            escaped = true;
                        } else if ch == '"' {
                            break;
                        }
                    }
                    let text = &src[i..j];
                    let val = unquote(text).ok_or((pos, format!("invalid syntax: {text}")))?;
                    items.push(Item {
                        tok: Tok::Str(val, text.to_string()),
                        pos,
                    });
                    i = j;
                }
                '`' => {
                    let close = src[i + 1..]
                        .find('`')
                        .ok_or((pos, "unterminated raw quoted string".to_string()))?;
                    let text = &src[i..i + close + 2];
                    items.push(Item {
                        tok: Tok::Str(text[1..text.len() - 1].to_string(), text.to_string()),
                        pos,
                    });
                    i += close + 2;
                }
                '\'' => {
                    let mut j = i + 1;
                    let mut escaped = false;
                    loop {
                        let Some(ch) = src[j..].chars().next() else {
                            return Err((pos, "unterminated character constant".into()));
                        };
                        j += ch.len_utf8();
                        if escaped {
                            escaped = false;
                        } else if ch == '\\' {
                            escaped = true;
                        } else if ch == '\'' {
                            break;
                        }
                    }
                    let text = &src[i..j];
                    let inner = unquote(&format!("\"{}\"", &text[1..text.len() - 1]))
                        .filter(|s| s.chars().count() == 1)
                        .ok_or((pos, format!("malformed character constant: {text}")))?;
                    let ch = inner.chars().next().map_or(0, |c| c as i64);
                    items.push(Item {
                        tok: Tok::Char(ch, text.to_string()),
                        pos,
                    });
                    i = j;
                }
                '$' => {
                    let n = 1 + rest[1..]
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len() - 1);
                    items.push(Item {
                        tok: Tok::Variable(rest[..n].to_string()),
                        pos,
                    });
                    i += n;
                }
                '.' => {
                    let next = rest[1..].chars().next();
                    if next.is_some_and(|c| c.is_ascii_digit()) {
                        let n = number_len(rest);
                        items.push(Item {
                            tok: Tok::Number(rest[..n].to_string()),
                            pos,
                        });
                        i += n;
                    } else if next.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        let n = 1 + rest[1..]
                            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .unwrap_or(rest.len() - 1);
                        items.push(Item {
                            tok: Tok::Field(rest[1..n].to_string()),
                            pos,
                        });
                        i += n;
                    } else {
                        items.push(Item { tok: Tok::Dot, pos });
                        i += 1;
                    }
                }
                c if c.is_ascii_digit()
                    || ((c == '-' || c == '+')
                        && rest[1..].starts_with(|d: char| d.is_ascii_digit() || d == '.')) =>
                {
                    let n = number_len(rest);
                    let text = &rest[..n];
                    // A number runs into a letter: Go's "bad number syntax".
                    if rest[n..].starts_with(|c: char| c.is_alphanumeric()) {
                        let m = n + rest[n..]
                            .find(|c: char| !c.is_alphanumeric())
                            .unwrap_or(rest.len() - n);
                        return Err((pos, format!("bad number syntax: \"{}\"", &rest[..m])));
                    }
                    items.push(Item {
                        tok: Tok::Number(text.to_string()),
                        pos,
                    });
                    i += n;
                }
                c if c.is_alphabetic() || c == '_' => {
                    let n = rest
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    let word = &rest[..n];
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => match KEYWORDS.iter().find(|k| **k == w) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Ident(w.to_string()),
                        },
                    };
                    items.push(Item { tok, pos });
                    i += n;
                }
                other => {
                    return Err((pos, format!("bad character {}", go_char(other))));
                }
            }
        }
    }
    items.push(Item {
        tok: Tok::Eof,
        pos: b.len(),
    });
    Ok(items)
}

fn go_char(c: char) -> String {
    format!("U+{:04X} '{c}'", c as u32)
}

/// The length of a number at the start of `s` (sign, digits, `.`, exponent, hex).
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let hex = s[i..].starts_with("0x") || s[i..].starts_with("0X");
    if hex {
        i += 2;
        while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        return i;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = j;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

/// A Go interpreted string literal's value.
fn unquote(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&h, 16).ok()?));
            }
            'u' => {
                let h: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'U' => {
                let h: String = chars.by_ref().take(8).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            d @ '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let n = u32::from_str_radix(&format!("{d}{rest}"), 8).ok()?;
                out.push(char::from_u32(n)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

fn parse_number(text: &str) -> Option<Number> {
    let clean = text.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let hex = body.starts_with("0x") || body.starts_with("0X");
    let int = if hex {
        i64::from_str_radix(&body[2..], 16).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.chars().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else {
        body.parse::<i64>().ok()
    }
    .map(|n| if neg { -n } else { n });
    let float = if hex {
        int.map(|n| n as f64)
    } else {
        clean.parse::<f64>().ok()
    };
    let is_float = !hex && body.contains(['.', 'e', 'E']);
    if int.is_none() && float.is_none() {
        return None;
    }
    // 1e3 is an integer too, as Go's constants.
    let int = int.or_else(|| {
        float
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
            .map(|f| f as i64)
    });
    Some(Number {
        text: text.to_string(),
        int,
        float,
        is_float,
    })
}

/// The functions a template may call (checked at parse time, as Go does).
pub trait Funcs {
    /// Whether `name` is a function.
    fn has(&self, name: &str) -> bool;
}

struct Parser<'a> {
    items: Vec<Item>,
    i: usize,
    funcs: &'a dyn Funcs,
    vars: Vec<String>,
    range_depth: usize,
    defines: Vec<(String, Vec<Node>)>,
}

/// A parse error: its byte offset and Go's message.
pub type ParseError = (usize, String);

/// Parses `src` (named `name`) into a tree.
pub fn parse(name: &str, src: &str, funcs: &dyn Funcs) -> Result<Tree, ParseError> {
    let items = lex(src)?;
    let mut p = Parser {
        items,
        i: 0,
        funcs,
        vars: vec!["$".to_string()],
        range_depth: 0,
        defines: Vec::new(),
    };
    let (root, end) = p.list(true)?;
    if let Some((pos, what)) = end {
        return Err((pos, format!("unexpected {what}")));
    }
    Ok(Tree {
        name: name.to_string(),
        source: src.to_string(),
        root,
        defines: p.defines,
    })
}

impl Parser<'_> {
    fn peek(&self) -> &Item {
        &self.items[self.i.min(self.items.len() - 1)]
    }

    fn next(&mut self) -> Item {
        let it = self.peek().clone();
        if self.i < self.items.len() {
            self.i += 1;
        }
        it
    }

    /// The next item that is not a space.
    fn next_non_space(&mut self) -> Item {
        loop {
            let it = self.next();
            if it.tok != Tok::Space {
                return it;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let save = self.i;
        let it = self.next_non_space();
        self.i = save;
        it
    }

    /// Nodes until EOF (top) or an `{{end}}`/`{{else ...}}` (returned, consumed up to
    /// the keyword).
    #[allow(clippy::type_complexity)]
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, Option<(usize, String)>), ParseError> {
        let mut nodes = Vec::new();
        loop {
            let it = self.next();
            match it.tok {
                Tok::Eof => {
                    if top {
                        return Ok((nodes, None));
                    }
                    return Err((it.pos, "unexpected EOF".into()));
                }
                Tok::Text(t) => nodes.push(Node::Text(t)),
                Tok::Left => {
                    let kw = self.peek_non_space();
                    match kw.tok {
                        Tok::Keyword("end") => {
                            self.next_non_space();
                            self.expect_right("end")?;
                            if top {
                                return Ok((nodes, Some((kw.pos, "{{end}}".into()))));
                            }
                            return Ok((nodes, Some((kw.pos, "end".into()))));
                        }
                        Tok::Keyword("else") => {
                            self.next_non_space();
                            if top {
                                return Ok((nodes, Some((kw.pos, "{{else}}".into()))));
                            }
                            return Ok((nodes, Some((kw.pos, "else".into()))));
                        }
                        _ => {
                            if let Some(n) = self.action(top)? {
                                nodes.push(n);
                            }
                        }
                    }
                }
                other => return Err((it.pos, format!("unexpected {other:?}"))),
            }
        }
    }

    fn expect_right(&mut self, context: &str) -> Result<(), ParseError> {
        let it = self.next_non_space();
        if it.tok != Tok::Right {
            return Err((
                it.pos,
                format!("unexpected {} in {context}", describe(&it.tok)),
            ));
        }
        Ok(())
    }

    /// One action after `{{` (the keyword not yet consumed).
    fn action(&mut self, top: bool) -> Result<Option<Node>, ParseError> {
        let it = self.peek_non_space();
        match it.tok {
            Tok::Keyword("if") => {
                self.next_non_space();
                Ok(Some(Node::If(self.branch("if", it.pos)?)))
            }
            Tok::Keyword("with") => {
                self.next_non_space();
                Ok(Some(Node::With(self.branch("with", it.pos)?)))
            }
            Tok::Keyword("range") => {
                self.next_non_space();
                self.range_depth += 1;
                let b = self.branch("range", it.pos);
                self.range_depth -= 1;
                Ok(Some(Node::Range(b?)))
            }
            Tok::Keyword("break") | Tok::Keyword("continue") => {
                self.next_non_space();
                let word = if it.tok == Tok::Keyword("break") {
                    "break"
                } else {
                    "continue"
                };
                if self.range_depth == 0 {
                    return Err((it.pos, format!("{{{{{word}}}}} outside {{{{range}}}}")));
                }
                self.expect_right(word)?;
                Ok(Some(if word == "break" {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            Tok::Keyword("template") => {
                self.next_non_space();
                let name = self.next_non_space();
                let Tok::Str(n, _) = name.tok else {
                    return Err((
                        name.pos,
                        format!("unexpected {} in template clause", describe(&name.tok)),
                    ));
                };
                let pipe = if self.peek_non_space().tok == Tok::Right {
                    self.next_non_space();
                    None
                } else {
                    Some(self.pipeline("template", false)?)
                };
                Ok(Some(Node::Template {
                    pos: it.pos,
                    name: n,
                    pipe,
                }))
            }
            Tok::Keyword("block") => {
                self.next_non_space();
                let name = self.next_non_space();
                let Tok::Str(n, _) = name.tok else {
                    return Err((
                        name.pos,
                        format!("unexpected {} in block clause", describe(&name.tok)),
                    ));
                };
                let pipe = self.pipeline("block", false)?;
                let (body, end) = self.list(false)?;
                if end.as_ref().map(|e| e.1.as_str()) != Some("end") {
                    return Err((it.pos, "unexpected {{else}} in block".into()));
                }
                self.defines.push((n.clone(), body));
                Ok(Some(Node::Template {
                    pos: it.pos,
                    name: n,
                    pipe: Some(pipe),
                }))
            }
            Tok::Keyword("define") => {
                self.next_non_space();
                if !top {
                    return Err((it.pos, "unexpected <define> in command".into()));
                }
                let name = self.next_non_space();
                let Tok::Str(n, _) = name.tok else {
                    return Err((
                        name.pos,
                        format!("unexpected {} in define clause", describe(&name.tok)),
                    ));
                };
                self.expect_right("define clause")?;
                let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
                let body = self.list(false);
                self.vars = saved;
                let (body, end) = body?;
                if end.as_ref().map(|e| e.1.as_str()) != Some("end") {
                    return Err((it.pos, "unexpected {{else}} in define".into()));
                }
                self.defines.push((n, body));
                Ok(None)
            }
            _ => Ok(Some(Node::Action(self.pipeline("command", false)?))),
        }
    }

    /// if/with/range: pipeline, list, optional else (or else if / else with), end.
    fn branch(&mut self, kind: &str, pos: usize) -> Result<Branch, ParseError> {
        let vars_before = self.vars.len();
        let pipe = self.pipeline(kind, kind == "range")?;
        let (list, end) = self.list(false)?;
        let mut else_list = None;
        match end.as_ref().map(|e| e.1.as_str()) {
            Some("end") => {}
            Some("else") => {
                // `{{else if ...}}` / `{{else with ...}}`: a nested branch ending at the
                // same {{end}}.
                let next = self.peek_non_space();
                if (kind == "if" && next.tok == Tok::Keyword("if"))
                    || (kind == "with" && next.tok == Tok::Keyword("with"))
                {
                    self.next_non_space();
                    self.vars.truncate(vars_before);
                    let inner = self.branch(kind, next.pos)?;
                    else_list = Some(vec![if kind == "if" {
                        Node::If(inner)
                    } else {
                        Node::With(inner)
                    }]);
                } else {
                    self.expect_right("else")?;
                    self.vars.truncate(vars_before);
                    let (l, end2) = self.list(false)?;
                    if end2.as_ref().map(|e| e.1.as_str()) != Some("end") {
                        return Err((
                            end2.map_or(pos, |e| e.0),
                            "expected end; found {{else}}".into(),
                        ));
                    }
                    else_list = Some(l);
                }
            }
            _ => return Err((pos, "unexpected EOF".into())),
        }
        self.vars.truncate(vars_before);
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    /// A pipeline up to `}}` (consumed): declarations, then commands.
    fn pipeline(&mut self, context: &str, range: bool) -> Result<Pipe, ParseError> {
        let start = self.peek_non_space().pos;
        let mut decl = Vec::new();
        let mut is_assign = false;
        // Declarations: $x := / $x = / $i, $e :=
        let save = self.i;
        let v = self.next_non_space();
        if let Tok::Variable(name) = &v.tok {
            let after = self.next_non_space();
            match after.tok {
                Tok::Declare | Tok::Assign => {
                    is_assign = after.tok == Tok::Assign;
                    decl.push(name.clone());
                }
                Tok::Comma if range => {
                    let v2 = self.next_non_space();
                    let Tok::Variable(name2) = v2.tok else {
                        return Err((v2.pos, "range can only initialize variables".to_string()));
                    };
                    let op = self.next_non_space();
                    if !matches!(op.tok, Tok::Declare | Tok::Assign) {
                        return Err((op.pos, "expected := or = in range".to_string()));
                    }
                    is_assign = op.tok == Tok::Assign;
                    decl.push(name.clone());
                    decl.push(name2);
                }
                _ => self.i = save,
            }
        } else {
            self.i = save;
        }
        if is_assign {
            for d in &decl {
                if !self.vars.contains(d) {
                    return Err((start, format!("undefined variable \"{d}\"")));
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            let it = self.peek_non_space();
            match it.tok {
                Tok::Right | Tok::RParen => {
                    self.next_non_space();
                    if cmds.is_empty() {
                        return Err((it.pos, format!("missing value for {context}")));
                    }
                    break;
                }
                Tok::Eof => return Err((it.pos, "unclosed action".into())),
                _ => {
                    let cmd = self.command()?;
                    cmds.push(cmd);
                    let sep = self.peek_non_space();
                    if sep.tok == Tok::Pipe {
                        self.next_non_space();
                    }
                }
            }
        }
        if !is_assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe {
            pos: start,
            decl,
            is_assign,
            cmds,
        })
    }

    /// Operands until `|`, `}}` or `)`.
    fn command(&mut self) -> Result<Cmd, ParseError> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            let it = self.peek_non_space();
            match it.tok {
                Tok::Right | Tok::RParen | Tok::Pipe => break,
                Tok::Eof => return Err((it.pos, "unclosed action".into())),
                _ => {}
            }
            // Operands are separated by spaces: two in a row is a syntax error.
            if !args.is_empty() && self.peek().tok != Tok::Space {
                let it = self.peek().clone();
                return Err((
                    it.pos,
                    format!("unexpected {} in operand", describe(&it.tok)),
                ));
            }
            let op = self.operand()?;
            args.push(op);
        }
        if args.is_empty() {
            let it = self.peek_non_space();
            return Err((it.pos, "missing value for command".into()));
        }
        Ok(Cmd { pos, args })
    }

    /// A term and any field chain after it.
    fn operand(&mut self) -> Result<Arg, ParseError> {
        let term = self.term()?;
        let mut names = Vec::new();
        // Go places a chain at its first chained field.
        let chain_pos = self.peek().pos;
        while let Tok::Field(f) = &self.peek().tok {
            names.push(f.clone());
            self.next();
        }
        if names.is_empty() {
            return Ok(term);
        }
        Ok(match term {
            Arg::Field(_, mut n) => {
                n.extend(names);
                Arg::Field(chain_pos, n)
            }
            Arg::Variable(_, v, mut n) => {
                n.extend(names);
                Arg::Variable(chain_pos, v, n)
            }
            Arg::Bool(p, _) | Arg::Str(p, _, _) | Arg::Number(p, _) | Arg::Nil(p) | Arg::Dot(p) => {
                return Err((p, format!("unexpected . after term {:?}", term.to_string())));
            }
            other => Arg::Chain(chain_pos, Box::new(other), names),
        })
    }

    fn term(&mut self) -> Result<Arg, ParseError> {
        let it = self.next_non_space();
        Ok(match it.tok {
            Tok::Ident(name) => {
                if !self.funcs.has(&name) {
                    return Err((it.pos, format!("function \"{name}\" not defined")));
                }
                Arg::Ident(it.pos, name)
            }
            Tok::Dot => Arg::Dot(it.pos),
            Tok::Nil => Arg::Nil(it.pos),
            Tok::Variable(v) => {
                if !self.vars.contains(&v) {
                    return Err((it.pos, format!("undefined variable \"{v}\"")));
                }
                Arg::Variable(it.pos, v, Vec::new())
            }
            Tok::Field(f) => Arg::Field(it.pos, vec![f]),
            Tok::Bool(b) => Arg::Bool(it.pos, b),
            Tok::Str(s, text) => Arg::Str(it.pos, s, text),
            Tok::Char(c, text) => Arg::Number(
                it.pos,
                Number {
                    text,
                    int: Some(c),
                    float: Some(c as f64),
                    is_float: false,
                },
            ),
            Tok::Number(text) => {
                let n = parse_number(&text)
                    .ok_or((it.pos, format!("illegal number syntax: {text:?}")))?;
                Arg::Number(it.pos, n)
            }
            Tok::LParen => {
                let p = self.pipeline("parenthesized pipeline", false)?;
                Arg::Pipe(it.pos, Box::new(p))
            }
            other => {
                return Err((
                    it.pos,
                    format!("unexpected {} in operand", describe(&other)),
                ));
            }
        })
    }
}

/// How Go's parser names an item in "unexpected X".
fn describe(t: &Tok) -> String {
    match t {
        Tok::Right => "\"}}\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Eof => "EOF".into(),
        Tok::Keyword(k) => format!("<{k}>"),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Variable(v) => format!("<{v}>"),
        Tok::Ident(i) => format!("<{i}>"),
        Tok::Str(_, text) => text.clone(),
        Tok::Number(n) => format!("<{n}>"),
        Tok::Char(_, text) => text.clone(),
        Tok::Bool(b) => format!("<{b}>"),
        Tok::Nil => "<nil>".into(),
        Tok::Dot => "<.>".into(),
        Tok::Text(t) => format!("{t:?}"),
        Tok::Left => "\"{{\"".into(),
        Tok::Space => "space".into(),
    }
}
