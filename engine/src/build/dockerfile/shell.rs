//! Variable substitution and word splitting in instruction arguments, as Docker's
//! `shell.Lex` does them: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alternate}`,
//! `${VAR:?message}`, `${VAR?message}`, single and double quotes, and the escape
//! character. Nothing is executed: only what an instruction's text means is worked out.

use std::collections::HashMap;

/// A substitution that cannot be made (an unclosed quote or brace, a required variable
/// unset), in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {}: {message}", super::parser::go_quote(.source_text))]
pub struct LexError {
    /// The word being processed.
    pub source_text: String,
    /// What went wrong.
    pub message: String,
}

/// The variables in scope: `KEY=value` entries, later ones winning, as Docker builds its
/// map from an environment list.
pub fn env_map<'a>(env: impl IntoIterator<Item = &'a String>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for e in env {
        match e.split_once('=') {
            Some((k, v)) => out.insert(k.to_string(), v.to_string()),
            None => out.insert(e.clone(), String::new()),
        };
    }
    out
}

/// The lexer, for one escape character.
#[derive(Debug, Clone, Copy)]
pub struct Lex {
    escape: char,
}

impl Lex {
    /// A lexer that escapes with `escape` (`\` or `` ` ``).
    pub fn new(escape: char) -> Self {
        Self { escape }
    }

    /// Substitutes the variables of `word` (quotes removed, spaces kept).
    pub fn word(&self, word: &str, env: &HashMap<String, String>) -> Result<String, LexError> {
        self.process(word, env).map(|(w, _)| w)
    }

    /// Substitutes and splits into words, quotes keeping spaces inside a word (only
    /// EXPOSE splits this way).
    pub fn words(
        &self,
        word: &str,
        env: &HashMap<String, String>,
    ) -> Result<Vec<String>, LexError> {
        self.process(word, env).map(|(_, ws)| ws)
    }

    fn process(
        &self,
        word: &str,
        env: &HashMap<String, String>,
    ) -> Result<(String, Vec<String>), LexError> {
        let mut sw = ShellWord {
            chars: word.chars().collect(),
            pos: 0,
            env,
            escape: self.escape,
        };
        sw.stop_on(None).map_err(|message| LexError {
            source_text: word.to_string(),
            message,
        })
    }
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() && self.in_word {
            if !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else if !c.is_whitespace() {
            self.add_raw_char(c);
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

struct ShellWord<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a HashMap<String, String>,
    escape: char,
}

type R<T> = Result<T, String>;

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes up to `stop` (consumed) or the end.
    fn stop_on(&mut self, stop: Option<char>) -> R<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '\'' => {
                    let s = self.single_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '"' => {
                    let s = self.double_quote()?;
                    result.push_str(&s);
                    words.add_raw_string(&s);
                }
                '$' => {
                    let s = self.dollar()?;
                    result.push_str(&s);
                    words.add_string(&s);
                }
                _ => {
                    self.next();
                    let mut c = ch;
                    if c == self.escape {
                        // The escape character escapes the next one; at the end it goes.
                        match self.next() {
                            Some(n) => c = n,
                            None => break,
                        }
                        words.add_raw_char(c);
                    } else {
                        words.add_char(c);
                    }
                    result.push(c);
                }
            }
        }
        if let Some(s) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {s}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> R<String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> R<String> {
        self.next();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(_) => {
                    let mut c = self.next().unwrap_or_default();
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                c = self.next().unwrap_or_default();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<&String> {
        self.env.get(name)
    }

    fn dollar(&mut self) -> R<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.lookup(&name).cloned().unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.name();
        match self.next() {
            Some('}') => Ok(self.lookup(&name).cloned().unwrap_or_default()),
            Some('?') => {
                let word = self.braced_word()?;
                match self.lookup(&name) {
                    Some(v) => Ok(v.clone()),
                    None => Err(format!(
                        "{name}: {}",
                        if word.is_empty() {
                            "is not allowed to be unset"
                        } else {
                            &word
                        }
                    )),
                }
            }
            Some(':') => {
                let modifier = self.next();
                let word = self.braced_word()?;
                let value = self.lookup(&name).cloned();
                match modifier {
                    Some('+') => Ok(match value {
                        Some(v) if !v.is_empty() => word,
                        _ => String::new(),
                    }),
                    Some('-') => Ok(match value {
                        Some(v) if !v.is_empty() => v,
                        _ => word,
                    }),
                    Some('?') => match value {
                        None => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be unset"
                            } else {
                                &word
                            }
                        )),
                        Some(v) if v.is_empty() => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be empty"
                            } else {
                                &word
                            }
                        )),
                        Some(v) => Ok(v),
                    },
                    Some(m) => Err(format!("unsupported modifier ({m}) in substitution")),
                    None => Err("unsupported modifier (\u{fffd}) in substitution".into()),
                }
            }
            _ => Err("missing ':' in substitution".into()),
        }
    }

    /// The word of `${NAME:-word}` up to its `}`.
    fn braced_word(&mut self) -> R<String> {
        match self.stop_on(Some('}')) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err("syntax error: missing '}'".into()),
            Err(e) => Err(e),
        }
    }

    /// A variable name: letters, digits and `_`; or all the digits of a positional
    /// parameter; or one special parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_numeric() {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return c.to_string();
            }
            if !c.is_alphabetic() && !c.is_numeric() && c != '_' {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(list: &[&str]) -> HashMap<String, String> {
        let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        env_map(&owned)
    }

    #[test]
    fn substitutes() {
        let lex = Lex::new('\\');
        let e = env(&["A=1", "B=x y", "EMPTY="]);
        for (input, want) in [
            ("$A", "1"),
            ("${A}b", "1b"),
            ("${NOPE:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${A:-d}", "1"),
            ("${A:+alt}", "alt"),
            ("${NOPE:+alt}", ""),
            ("'$A'", "$A"),
            ("\"$A\"", "1"),
            ("\\$A", "$A"),
            ("\"a\\\"b\"", "a\"b"),
            ("a\\ b", "a b"),
            ("$", "$"),
            ("${A:-${B}}", "1"),
            ("${NOPE:-${B}}", "x y"),
            ("$NOPE", ""),
            ("${A?err}", "1"),
        ] {
            assert_eq!(lex.word(input, &e).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn errors_in_dockers_words() {
        let lex = Lex::new('\\');
        let e = env(&["EMPTY="]);
        for (input, want) in [
            ("${B", "missing ':' in substitution"),
            ("${", "syntax error: missing '}'"),
            ("${}", "syntax error: bad substitution"),
            (
                "'abc",
                "unexpected end of statement while looking for matching single-quote",
            ),
            (
                "\"abc",
                "unexpected end of statement while looking for matching double-quote",
            ),
            ("${X:?}", "X: is not allowed to be unset"),
            ("${EMPTY:?must}", "EMPTY: must"),
            ("${X:=y}", "unsupported modifier (=) in substitution"),
            ("${X:-abc", "syntax error: missing '}'"),
        ] {
            let err = lex.word(input, &e).unwrap_err();
            assert_eq!(err.message, want, "{input}");
        }
        let err = lex.word("${B", &e).unwrap_err().to_string();
        assert_eq!(
            err,
            "failed to process \"${B\": missing ':' in substitution"
        );
    }

    #[test]
    fn splits_words_after_substitution() {
        let lex = Lex::new('\\');
        let e = env(&["P=80 443"]);
        assert_eq!(lex.words("$P 8080", &e).unwrap(), vec!["80", "443", "8080"]);
        assert_eq!(lex.words("\"$P\"", &e).unwrap(), vec!["80 443"]);
    }

    #[test]
    fn backtick_escape() {
        let lex = Lex::new('`');
        let e = env(&[]);
        assert_eq!(lex.word("c:\\dir `$x", &e).unwrap(), "c:\\dir $x");
    }
}
