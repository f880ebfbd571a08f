//! `berth tag`: create a tag TARGET_IMAGE that refers to SOURCE_IMAGE. Also the image
//! reference helpers the image commands share.

use crate::batch::seg;
use crate::client::{query, Client};
use crate::error::{Error, Result};

/// Flags of `berth tag`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image to tag (name, ID or digest reference).
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    /// The new name.
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

/// An image reference split as the Engine API wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `[host[:port]/]path`.
    pub repo: String,
    /// The tag, if one was named.
    pub tag: Option<String>,
    /// The digest (`sha256:...`), if one was named.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Splits `NAME[:TAG][@DIGEST]`; an empty name or tag is refused as docker does.
    pub fn parse(name: &str) -> Result<Self> {
        let bad = |why: &str| Error::Usage(format!("invalid reference format: {why}: {name:?}"));
        let (rest, digest) = match name.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (name, None),
        };
        // A tag follows the last ':' after the last '/' (a ':' before it is a port).
        let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repo, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if repo.is_empty() {
            return Err(bad("no repository name"));
        }
        if tag.as_deref() == Some("") {
            return Err(bad("empty tag"));
        }
        if digest.as_deref() == Some("") {
            return Err(bad("empty digest"));
        }
        if repo.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(Error::Usage(format!(
                "invalid reference format: repository name ({repo}) must be lowercase"
            )));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("whitespace in the name"));
        }
        Ok(Self {
            repo: repo.to_string(),
            tag,
            digest,
        })
    }

    /// Whether the first path component names a registry host.
    pub fn has_domain(&self) -> bool {
        matches!(self.repo.split_once('/'),
            Some((first, _)) if first.contains(['.', ':']) || first == "localhost")
    }

    /// The fully qualified repository (`docker.io/library/busybox` for `busybox`).
    pub fn full_repo(&self) -> String {
        if self.has_domain() {
            self.repo.clone()
        } else if self.repo.contains('/') {
            format!("docker.io/{}", self.repo)
        } else {
            format!("docker.io/library/{}", self.repo)
        }
    }

    /// The fully qualified reference, as docker prints it after a pull.
    pub fn full(&self) -> String {
        let mut s = self.full_repo();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

/// Runs `berth tag`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    let target = ImageRef::parse(&args.target)?;
    if target.digest.is_some() {
        return Err(Error::Usage(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    let tag = target.tag.as_deref().unwrap_or("latest");
    let q = query(&[("repo", target.repo.as_str()), ("tag", tag)]);
    client
        .post(&format!("/images/{}/tag{q}", seg(&args.source)), None)
        .await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_at_the_tag_not_the_port() {
        let r = ImageRef::parse("127.0.0.1:5000/a/b:t").expect("valid");
        assert_eq!(r.repo, "127.0.0.1:5000/a/b");
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert!(r.has_domain());
        let r = ImageRef::parse("127.0.0.1:5000/a").expect("valid");
        assert_eq!((r.repo.as_str(), r.tag), ("127.0.0.1:5000/a", None));
        let r = ImageRef::parse("busybox@sha256:ab").expect("valid");
        assert_eq!(r.digest.as_deref(), Some("sha256:ab"));
        assert_eq!(r.full(), "docker.io/library/busybox@sha256:ab");
        assert_eq!(
            ImageRef::parse("me/x:1").expect("valid").full(),
            "docker.io/me/x:1"
        );
        assert!(ImageRef::parse("a:").is_err());
        assert!(ImageRef::parse(":t").is_err());
        assert!(ImageRef::parse("Upper").is_err());
    }
}
