//! ADD's remote sources, fetched as dockerd's classic builder fetches them: each URL into
//! a private directory of its own, as a file named after the URL path's last element,
//! mode 0600, its mtime the response's `Last-Modified` when it has one. The files are
//! then copied like context files (checksummed, so an unchanged download hits the cache)
//! and never unpacked, even when they are archives. A status of 400 or more fails the
//! step with dockerd's words.
//!
//! reqwest (already the registry client's) does the HTTP; proxies come from berthd's
//! environment as dockerd's do.

use super::error::{BuildError, Result};
use berth_fs::root::open_at;
use berth_fs::Root;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Whether an ADD source is a URL (dockerd's `urlutil.IsURL`).
pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// What one ADD downloaded: a temp directory removed when this is dropped.
pub struct Downloads {
    dir: tempfile::TempDir,
    /// Each URL's file, relative to [`Downloads::path`], in the order given.
    pub names: Vec<String>,
}

impl Downloads {
    /// The directory the files are in (the copy's source root).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The file name a download gets: the URL path's last element, as dockerd's
/// `getFilenameForDownload` takes it (`None` when the path ends in `/` or has none).
pub fn file_name(url: &reqwest::Url) -> Option<String> {
    let path = url.path();
    if path.ends_with('/') {
        return None;
    }
    let last = path.rsplit('/').next()?;
    let decoded = percent_encoding::percent_decode_str(last)
        .decode_utf8()
        .ok()?
        .into_owned();
    // One component of our own directory, nothing the resolver would have to reject.
    (!decoded.is_empty() && decoded != "." && decoded != ".." && !decoded.contains(['/', '\0']))
        .then_some(decoded)
}

/// A download that failed, in dockerd's words (which carry no `ADD failed:` in front).
fn failed(e: impl std::fmt::Display) -> BuildError {
    BuildError::Copy(e.to_string())
}

/// Downloads every URL into a new directory under `tmp`.
pub async fn fetch(urls: &[String], tmp: &Path) -> Result<Downloads> {
    let dir = tempfile::Builder::new()
        .prefix("add-")
        .tempdir_in(tmp)
        .map_err(|e| BuildError::Internal(format!("making a download directory: {e}")))?;
    let root = Root::open(dir.path())
        .map_err(|e| BuildError::Internal(format!("opening the download directory: {e}")))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| BuildError::Internal(format!("making an HTTP client: {e}")))?;
    let mut names = Vec::with_capacity(urls.len());
    for (i, raw) in urls.iter().enumerate() {
        let url = reqwest::Url::parse(raw).map_err(|e| failed(format!("parse {raw:?}: {e}")))?;
        let name = file_name(&url)
            .ok_or_else(|| failed(format!("cannot determine filename from url: {raw}")))?;
        let mut resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| failed(format!("Get {raw:?}: {e}")))?;
        let status = resp.status();
        if status.as_u16() >= 400 {
            // dockerd's GetWithStatusError: the status and the body's first words.
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.trim().chars().take(512).collect();
            return Err(failed(format!(
                "failed to GET {raw} with status {status}: {body}"
            )));
        }
        let modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        // A directory per URL: two URLs may end in the same name.
        let sub = i.to_string();
        let sub_fd = root
            .mkdir_all(&sub, 0o700)
            .map_err(|e| BuildError::Internal(format!("making {sub}: {e}")))?;
        let fd = open_at(
            std::os::fd::AsFd::as_fd(&sub_fd),
            OsStr::new(&name),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| BuildError::Internal(format!("creating {name}: {e}")))?;
        let mut file = tokio::fs::File::from_std(std::fs::File::from(fd));
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| failed(format!("reading {raw}: {e}")))?
        {
            file.write_all(&chunk)
                .await
                .map_err(|e| BuildError::Internal(format!("writing {name}: {e}")))?;
        }
        file.flush()
            .await
            .map_err(|e| BuildError::Internal(format!("writing {name}: {e}")))?;
        let file = file.into_std().await;
        if let Some(t) = modified {
            let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let ts = nix::sys::time::TimeSpec::from_duration(since);
            nix::sys::stat::futimens(std::os::fd::AsRawFd::as_raw_fd(&file), &ts, &ts)
                .map_err(|e| BuildError::Internal(format!("setting {name}'s time: {e}")))?;
        }
        names.push(format!("{sub}/{name}"));
    }
    Ok(Downloads { dir, names })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_dockerd_takes_them() {
        let n = |u: &str| file_name(&reqwest::Url::parse(u).unwrap());
        assert_eq!(
            n("http://h/a/b/tool.tar.gz").as_deref(),
            Some("tool.tar.gz")
        );
        assert_eq!(n("http://h/a/my%20file?x=1").as_deref(), Some("my file"));
        assert_eq!(n("http://h/dir/"), None);
        assert_eq!(n("http://h"), None);
        assert_eq!(n("http://h/a/%2e%2e"), None);
        assert_eq!(n("http://h/a/x%2fy"), None);
        assert!(is_url("https://h/x") && is_url("http://h/x") && !is_url("ftp://h/x"));
    }
}
