//! `.dockerignore`: which paths of a build context are left out, by Docker's rules.
//!
//! A pattern is a path relative to the context, cleaned (`./a/../b` is `b`, a leading
//! `/` goes), in which `*` matches any run of characters but `/`, `?` one character but
//! `/`, `[...]` a character class, `\` escapes, and `**` any number of directories
//! (also none). A path is excluded when it or one of its parent directories matches;
//! the last pattern that matches wins, so `!pattern` lines bring paths back. Comments
//! start with `#`. Written by hand rather than with the `ignore` crate: gitignore's rules
//! differ (`*.log` there matches at every depth, here only at the top).

/// One pattern line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The cleaned pattern, without its `!`.
    pub text: String,
    /// A `!` line: it brings paths back.
    pub exclusion: bool,
    tokens: Vec<Token>,
    dirs: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(char),
    /// `*`: anything but `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    /// `**` at the end: anything.
    AnyRest,
    /// `**` (or `**/`) before more pattern: any number of directories, also none.
    AnyDirs,
    /// `[...]`.
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// `!` alone.
    #[error("illegal exclusion pattern: \"!\"")]
    BareExclusion,
    /// An unclosed `[` or a bad range.
    #[error("syntax error in pattern")]
    Syntax,
}

/// The patterns of a `.dockerignore` file, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns {
    patterns: Vec<Pattern>,
}

impl Patterns {
    /// Reads a `.dockerignore` file's text as Docker reads it.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let invert = p.starts_with('!');
            if invert {
                p = p[1..].trim();
            }
            let mut cleaned = String::new();
            if !p.is_empty() {
                cleaned = crate::clean::clean(p);
                if cleaned.len() > 1 && cleaned.starts_with('/') {
                    cleaned.remove(0);
                }
            }
            lines.push(if invert {
                format!("!{cleaned}")
            } else {
                cleaned
            });
        }
        Self::from_lines(&lines)
    }

    /// Patterns from lines already read (`!` marking exclusions).
    pub fn from_lines<S: AsRef<str>>(lines: &[S]) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        for line in lines {
            let p = line.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let p = crate::clean::clean(p);
            let (exclusion, text) = match p.strip_prefix('!') {
                Some("") => return Err(PatternError::BareExclusion),
                Some(rest) => (true, rest.to_string()),
                None => (false, p),
            };
            let tokens = compile(&text)?;
            let dirs = text.split('/').count();
            patterns.push(Pattern {
                text,
                exclusion,
                tokens,
                dirs,
            });
        }
        Ok(Self { patterns })
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is a `!` exclusion.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Adds a pattern at the end (as the CLI adds `!Dockerfile` so the file is sent).
    pub fn push(&mut self, line: &str) -> Result<(), PatternError> {
        let more = Self::from_lines(&[line])?;
        self.patterns.extend(more.patterns);
        Ok(())
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out. The context
    /// itself (`.`) never is.
    pub fn matches(&self, path: &str) -> bool {
        let file = crate::clean::clean(path);
        if file == "." {
            return false;
        }
        let file = file.trim_start_matches('/');
        let parent = match file.rfind('/') {
            Some(i) => &file[..i],
            None => ".",
        };
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            let mut hit = glob(&p.tokens, file);
            if !hit && parent != "." && p.dirs <= parent_dirs.len() {
                hit = glob(&p.tokens, &parent_dirs[..p.dirs].join("/"));
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// For a directory that [`Patterns::matches`]: whether something below it may be
    /// brought back by a `!` pattern (then it must be walked, not dropped whole).
    pub fn may_include_below(&self, dir: &str) -> bool {
        let dir_slash = format!("{}/", crate::clean::clean(dir).trim_start_matches('/'));
        self.patterns
            .iter()
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.text).starts_with(&dir_slash))
    }
}

fn compile(p: &str) -> Result<Vec<Token>, PatternError> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                out.push(if i == chars.len() {
                    Token::AnyRest
                } else {
                    Token::AnyDirs
                });
            }
            '*' => out.push(Token::Star),
            '?' => out.push(Token::One),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    out.push(Token::Lit(n));
                    i += 1;
                }
                None => out.push(Token::Lit('\\')),
            },
            '[' => {
                let mut negated = false;
                if matches!(chars.get(i), Some('^')) {
                    negated = true;
                    i += 1;
                }
                let mut items = Vec::new();
                let mut closed = false;
                let mut first = true;
                while i < chars.len() {
                    let mut lo = chars[i];
                    i += 1;
                    if lo == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    if lo == '\\' {
                        lo = *chars.get(i).ok_or(PatternError::Syntax)?;
                        i += 1;
                    }
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        hi = chars[i + 1];
                        i += 2;
                        if hi == '\\' {
                            hi = *chars.get(i).ok_or(PatternError::Syntax)?;
                            i += 1;
                        }
                        if hi < lo {
                            return Err(PatternError::Syntax);
                        }
                    }
                    items.push((lo, hi));
                }
                if !closed {
                    return Err(PatternError::Syntax);
                }
                out.push(Token::Class { negated, items });
            }
            c => out.push(Token::Lit(c)),
        }
    }
    Ok(out)
}

/// Whether the whole of `s` matches the tokens.
fn glob(tokens: &[Token], s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    // Positions of `s` reachable after each token: a small NFA run, no backtracking
    // blow-up on long paths.
    let mut states = vec![false; chars.len() + 1];
    states[0] = true;
    for t in tokens {
        let mut next = vec![false; chars.len() + 1];
        for pos in 0..=chars.len() {
            if !states[pos] {
                continue;
            }
            match t {
                Token::Lit(c) => {
                    if chars.get(pos) == Some(c) {
                        next[pos + 1] = true;
                    }
                }
                Token::One => {
                    if chars.get(pos).is_some_and(|c| *c != '/') {
                        next[pos + 1] = true;
                    }
                }
                Token::Class { negated, items } => {
                    if let Some(c) = chars.get(pos) {
                        let inside = items.iter().any(|(lo, hi)| lo <= c && c <= hi);
                        if inside != *negated {
                            next[pos + 1] = true;
                        }
                    }
                }
                Token::Star => {
                    let mut p = pos;
                    next[p] = true;
                    while p < chars.len() && chars[p] != '/' {
                        p += 1;
                        next[p] = true;
                    }
                }
                Token::AnyRest => {
                    for n in next.iter_mut().skip(pos) {
                        *n = true;
                    }
                }
                Token::AnyDirs => {
                    // `(.*/)?`: nothing, or anything that ends with a `/`.
                    next[pos] = true;
                    for p in pos..chars.len() {
                        if chars[p] == '/' {
                            next[p + 1] = true;
                        }
                    }
                }
            }
        }
        states = next;
    }
    states[chars.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignored(patterns: &str, path: &str) -> bool {
        Patterns::parse(patterns).unwrap().matches(path)
    }

    #[test]
    fn basic_patterns() {
        assert!(ignored("*.log", "a.log"));
        assert!(
            !ignored("*.log", "dir/a.log"),
            "only at the top, unlike gitignore"
        );
        assert!(ignored("**/*.log", "dir/sub/a.log"));
        assert!(ignored("**/*.log", "a.log"));
        assert!(
            ignored("dir", "dir/sub/file"),
            "a directory takes its contents"
        );
        assert!(ignored("/dir/", "dir/x"));
        assert!(ignored("./a/../b", "b"));
        assert!(ignored("file?.txt", "file1.txt"));
        assert!(!ignored("file?.txt", "file/.txt"));
        assert!(ignored("[a-c].txt", "b.txt"));
        assert!(!ignored("[a-c].txt", "d.txt"));
        assert!(ignored("[^a-c].txt", "d.txt"));
        assert!(ignored("a/**", "a/b/c"));
        assert!(ignored("a/**/z", "a/z"));
        assert!(ignored("a/**/z", "a/b/c/z"));
        assert!(!ignored("a/**/z", "a/b/c/y"));
        assert!(ignored("\\*x", "*x"));
        assert!(!ignored("\\*x", "ax"));
        assert!(!ignored("*", "."));
    }

    #[test]
    fn exclusions_bring_back_and_last_wins() {
        let p = Patterns::parse("*.md\n!README.md\n").unwrap();
        assert!(p.matches("CHANGES.md"));
        assert!(!p.matches("README.md"));
        let p = Patterns::parse("!README.md\n*.md\n").unwrap();
        assert!(p.matches("README.md"));
        let p = Patterns::parse("docs\n!docs/keep.txt\n").unwrap();
        assert!(p.matches("docs"));
        assert!(p.may_include_below("docs"));
        assert!(!p.matches("docs/keep.txt"));
        assert!(p.matches("docs/other.txt"));
        let p = Patterns::parse("build\n").unwrap();
        assert!(!p.may_include_below("build"));
    }

    #[test]
    fn comments_blank_lines_and_errors() {
        let p = Patterns::parse("# comment\n\n  tmp  \n").unwrap();
        assert_eq!(p.patterns().len(), 1);
        assert_eq!(p.patterns()[0].text, "tmp");
        assert!(Patterns::from_lines(&["!"]).is_err());
        assert!(Patterns::parse("[abc\n").is_err());
    }

    #[test]
    fn long_paths_stay_cheap() {
        let p = Patterns::parse("**/a*a*a*a*a*b\n").unwrap();
        let long = format!("{}/{}", "d/".repeat(200), "a".repeat(500));
        assert!(!p.matches(&long));
    }
}
