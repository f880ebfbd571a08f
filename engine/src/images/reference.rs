//! Image references, normalized as Docker does (`busybox` is
//! `docker.io/library/busybox:latest`).

use crate::content::Digest;
use std::fmt;

/// The registry that names without a domain refer to.
pub const DEFAULT_DOMAIN: &str = "docker.io";

/// A reference that is not well formed.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not parse as a reference.
    #[error("invalid reference format: {0:?}")]
    Invalid(String),
    /// The repository has upper-case letters.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
}

/// A normalized image reference: domain, repository path, and tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (and port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub domain: String,
    /// Repository path inside the registry, e.g. `library/busybox`.
    pub path: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Digest, if any.
    pub digest: Option<Digest>,
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ separated by '.', '_', '__' or runs of '-'.
    if c.is_empty() {
        return false;
    }
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

fn valid_domain(d: &str) -> bool {
    let host = match d.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(':') => {
            if port.is_empty() || !port.bytes().all(|x| x.is_ascii_digit()) {
                return false;
            }
            h
        }
        _ => d,
    };
    !host.is_empty()
        && host
            .bytes()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'-' | b'[' | b']' | b':'))
}

impl Reference {
    /// Parses a reference as the Docker CLI writes it and normalizes it.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let bad = || ReferenceError::Invalid(s.to_string());
        if s.is_empty() || s.len() > 512 {
            return Err(bad());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|_| bad())?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => {
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(bad());
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if !valid_domain(&domain) {
            return Err(bad());
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(path));
        }
        // The limit is on the normalized name, as Docker's `ParseNormalizedNamed` checks
        // it: `x` is `docker.io/library/x` (found by fuzzing: a short form under the
        // limit printed as a full name that no longer parsed).
        if domain.len() + 1 + path.len() > 255 || !path.split('/').all(valid_component) {
            return Err(bad());
        }
        Ok(Self {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Parses and adds the `latest` tag when neither tag nor digest is given.
    pub fn parse_with_default_tag(s: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some("latest".into());
        }
        Ok(r)
    }

    /// `domain/path`, the full repository name.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository name as Docker shows it (`busybox`, `user/app`, `host:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix("library/")
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// The reference with its tag or digest, as Docker shows it.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    /// A copy with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// A copy with this digest and no tag.
    pub fn with_digest(&self, digest: &Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }

    fn with_suffix(&self, mut s: String) -> String {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.with_suffix(self.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `reference` fuzz harness: the 255-byte limit counts the normalized
    /// name, so every reference that parses prints as one that parses.
    #[test]
    fn the_length_limit_counts_the_normalized_name() {
        let short = "a".repeat(240);
        assert!(
            Reference::parse(&short).is_err(),
            "docker.io/library/ makes it 258"
        );
        let fits = "a".repeat(255 - "docker.io/library/".len());
        let r = Reference::parse(&fits).unwrap();
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        assert!(Reference::parse(&format!("127.0.0.1:5000/{}", "b".repeat(241))).is_err());
    }

    #[test]
    fn normalizes_like_docker() {
        let r = Reference::parse_with_default_tag("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        let r = Reference::parse("127.0.0.1:5000/test/bb:v1").unwrap();
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.path, "test/bb");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.familiar(), "127.0.0.1:5000/test/bb:v1");
        let r = Reference::parse("localhost:5000/x").unwrap();
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(
            Reference::parse("user/app").unwrap().familiar_name(),
            "user/app"
        );
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "a b",
            "UPPER",
            "x:",
            "x@sha256:12",
            "-x",
            "a//b",
            "x:-tag",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            Reference::parse("Foo").unwrap_err(),
            ReferenceError::Uppercase(_)
        ));
    }
}
