//! `berth cp`: copy files/folders between a container and the local filesystem, with
//! docker's rules: a file or a directory, a destination that exists (a directory takes
//! the source inside it, a file is replaced) or not (the source is created under that
//! name), `SRC/.` for a directory's content, and `-` for a tar on stdin or stdout. The
//! archives go through `GET`/`PUT /containers/{id}/archive`; what comes out of a
//! container is unpacked by `cp_tar`, which never writes outside the destination.

use crate::batch::seg;
use crate::client::{self, query, Client};
use crate::cp_tar;
use crate::error::{Error, Result};
use crate::output;
use base64::Engine as _;
use futures_util::StreamExt;
use hyper::Method;
use serde_json::Value;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Flags of `berth cp`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output during copy.
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH, or a local SRC_PATH, or `-` (a tar on stdin).
    #[arg(value_name = "SRC")]
    src: String,
    /// DEST_PATH, or `-` (a tar on stdout), or CONTAINER:DEST_PATH.
    #[arg(value_name = "DEST")]
    dest: String,
}

/// Mode bits of docker's path stat (Go's `os.FileMode`).
const MODE_DIR: u64 = 1 << 31;
const MODE_SYMLINK: u64 = 1 << 27;
/// Named pipe, socket, device, char device, irregular: not copyable.
const MODE_SPECIAL: u64 = (1 << 25) | (1 << 24) | (1 << 26) | (1 << 21) | (1 << 19);

/// `CONTAINER:PATH` split as docker splits it: an absolute path, a path without `:`
/// or one starting with `.` is local.
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((ctr, path)) if !ctr.starts_with('.') => (Some(ctr), path),
        _ => (None, arg),
    }
}

/// Runs `berth cp`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    if args.src.is_empty() {
        return Err(Error::Usage("source can not be empty".into()));
    }
    if args.dest.is_empty() {
        return Err(Error::Usage("destination can not be empty".into()));
    }
    let (from, to) = (split(&args.src), split(&args.dest));
    let progress = !args.quiet && std::io::stderr().is_terminal();
    match (from, to) {
        ((Some(_), _), (Some(_), _)) => Err(Error::Usage(
            "copying between containers is not supported".into(),
        )),
        ((None, _), (None, _)) => Err(Error::Usage(
            "must specify at least one container source".into(),
        )),
        ((Some(ctr), src), (None, dest)) => {
            let n = from_container(client, ctr, src, dest, args.follow_link).await?;
            if progress && dest != "-" {
                eprintln!(
                    "Successfully copied {} to {dest}",
                    output::human_size(n as f64)
                );
            }
            Ok(0)
        }
        ((None, src), (Some(ctr), dest)) => {
            let n = to_container(client, src, ctr, dest, &args).await?;
            if progress && src != "-" {
                eprintln!(
                    "Successfully copied {} to {ctr}:{dest}",
                    output::human_size(n as f64)
                );
            }
            Ok(0)
        }
    }
}

/// A container path made absolute (container paths are relative to its root), with a
/// trailing `/` or `/.` kept: they mean "a directory" and "a directory's content".
fn ctr_abs(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// A local path made absolute against the working directory, trailing `/.` kept.
fn local_abs(p: &str) -> Result<PathBuf> {
    let path = Path::new(p);
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io("finding the working directory", e))?;
    Ok(cwd.join(path))
}

/// Whether a path names a directory's content (`dir/.`).
fn is_content(p: &str) -> bool {
    p == "." || p.ends_with("/.")
}

/// Whether a path says it must be a directory (`dir/` or `dir/.`).
fn asserts_dir(p: &str) -> bool {
    p.ends_with('/') || is_content(p)
}

/// The last element of a path, as Go's `filepath.Base` (of the cleaned path).
fn base_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    let t = t.strip_suffix("/.").unwrap_or(t);
    match t.rsplit_once('/') {
        Some((_, b)) if !b.is_empty() => b.to_string(),
        Some(_) => "/".to_string(),
        None if t.is_empty() => "/".to_string(),
        None => t.to_string(),
    }
}

/// The parent of a container path (as a string, `/` at the top).
fn ctr_parent(p: &str) -> String {
    let t = p.trim_end_matches('/');
    let t = t.strip_suffix("/.").unwrap_or(t);
    match t.rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((dir, _)) => dir.to_string(),
    }
}

/// The stat of a container path from `HEAD /containers/{id}/archive`; None if it does
/// not exist (or the container does not: the copy itself then says which).
async fn stat(client: &Client, ctr: &str, path: &str) -> Option<Value> {
    let url = format!(
        "/containers/{}/archive{}",
        seg(ctr),
        query(&[("path", path)])
    );
    let resp = client
        .send(Method::HEAD, &url, client::empty(), None)
        .await
        .ok()?;
    decode_stat(resp.headers())
}

fn decode_stat(h: &hyper::HeaderMap) -> Option<Value> {
    let raw = h.get("x-docker-container-path-stat")?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .ok()?;
    serde_json::from_slice(&json).ok()
}

fn mode(stat: &Value) -> u64 {
    stat["mode"].as_u64().unwrap_or(0)
}

/// A pipe whose write end is async (for a body) and whose read end is blocking (for
/// the tar code), or the other way round.
fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("making a pipe", e.into()))?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// Copies `CTR:SRC` to the local `dest` (or to stdout as a tar); bytes of content.
async fn from_container(
    client: &Client,
    ctr: &str,
    src: &str,
    dest: &str,
    follow: bool,
) -> Result<u64> {
    let mut src_path = ctr_abs(src);
    let mut rebase: Option<String> = None;
    if follow {
        if let Some(st) = stat(client, ctr, &src_path).await {
            if mode(&st) & MODE_SYMLINK != 0 {
                // Copy what the link points to, under the link's own name.
                let target = st["linkTarget"].as_str().unwrap_or("").to_string();
                let mut target = if target.starts_with('/') {
                    target
                } else {
                    format!("{}/{target}", ctr_parent(&src_path).trim_end_matches('/'))
                };
                if is_content(&src_path) {
                    target.push_str("/.");
                } else if src_path.ends_with('/') {
                    target.push('/');
                }
                rebase = Some(base_name(&src_path));
                src_path = target;
            }
        }
    }
    // Checked before anything is fetched, as docker does.
    let dest_abs = if dest == "-" {
        None
    } else {
        Some(check_output_path(dest)?)
    };
    let url = format!(
        "/containers/{}/archive{}",
        seg(ctr),
        query(&[("path", src_path.as_str())])
    );
    let resp = client
        .send(Method::GET, &url, client::empty(), None)
        .await?;
    let st = decode_stat(resp.headers()).unwrap_or(Value::Null);
    let Some(dest_abs) = dest_abs else {
        let mut out = tokio::io::stdout();
        let mut body = std::pin::pin!(client::chunks(resp));
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .map_err(|e| Error::io("writing to stdout", e))?;
        }
        out.flush()
            .await
            .map_err(|e| Error::io("writing to stdout", e))?;
        return Ok(n);
    };
    let src_dir = mode(&st) & MODE_DIR != 0;
    let top = st["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(String::from)
        .unwrap_or_else(|| base_name(&src_path));
    let plan = plan_local(
        &dest_abs,
        dest,
        &src_path,
        src_dir,
        rebase.unwrap_or_else(|| top.clone()),
        top,
    )?;
    // The body is pumped into a pipe that the (blocking) unpacker reads.
    let (rd, wr) = pipe()?;
    let unpack = tokio::task::spawn_blocking(move || plan.unpack(rd));
    let mut wr = tokio::fs::File::from_std(wr);
    let mut body = std::pin::pin!(client::chunks(resp));
    let mut pump_err = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                if wr.write_all(&c).await.is_err() {
                    // The unpacker stopped: its error says why.
                    break;
                }
            }
            Err(e) => {
                pump_err = Some(e);
                break;
            }
        }
    }
    let _ = wr.flush().await;
    drop(wr);
    let unpacked = unpack
        .await
        .map_err(|e| Error::Usage(format!("unpacking: {e}")))?
        .map_err(|e| Error::io(format!("copying to {dest}"), e))?;
    if let Some(e) = pump_err {
        return Err(e);
    }
    Ok(unpacked)
}

/// docker's check of a local destination: its directory must exist, and it must be
/// a directory or a regular file if it exists. The absolute path.
fn check_output_path(dest: &str) -> Result<PathBuf> {
    let abs = local_abs(dest)?;
    let clean: PathBuf = abs.components().collect();
    if let Some(dir) = clean.parent() {
        if !dir.exists() {
            return Err(Error::Usage(format!(
                "invalid output path: directory {:?} does not exist",
                dir.display().to_string()
            )));
        }
    }
    if let Ok(m) = std::fs::metadata(&abs) {
        if !m.is_dir() && !m.is_file() {
            return Err(Error::Usage(format!(
                "invalid output path: {:?} must be a directory or a regular file",
                abs.display().to_string()
            )));
        }
    }
    Ok(abs)
}

/// Where an archive of `src_path` goes locally, by docker's rules.
fn plan_local(
    dest_abs: &Path,
    dest: &str,
    src_path: &str,
    src_dir: bool,
    name: String,
    top: String,
) -> Result<cp_tar::Extract> {
    let io = |what: &str, e| Error::io(format!("{what} {}", dest_abs.display()), e);
    let exists = match std::fs::metadata(dest_abs) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io("stat", e)),
    };
    if exists {
        // The destination is the user's: symlinks in it are followed.
        let real = std::fs::canonicalize(dest_abs).map_err(|e| io("resolving", e))?;
        if real.is_dir() {
            let root = if is_content(src_path) {
                PathBuf::new()
            } else {
                PathBuf::from(name)
            };
            return Ok(cp_tar::Extract {
                base: real,
                root,
                top,
            });
        }
        if src_dir {
            return Err(Error::Usage("cannot copy directory".into()));
        }
        return split_dest(&real, top);
    }
    if !src_dir && asserts_dir(dest) {
        return Err(Error::Usage("no such directory".into()));
    }
    split_dest(dest_abs, top)
}

/// The destination's parent as the base and its name as the new name of the source.
fn split_dest(dest: &Path, top: String) -> Result<cp_tar::Extract> {
    let clean: PathBuf = dest.components().collect();
    match (clean.parent(), clean.file_name()) {
        (Some(parent), Some(name)) => Ok(cp_tar::Extract {
            base: std::fs::canonicalize(parent)
                .map_err(|e| Error::io(format!("resolving {}", parent.display()), e))?,
            root: PathBuf::from(name),
            top,
        }),
        _ => Err(Error::Usage(format!("cannot copy to {}", dest.display()))),
    }
}

/// Copies the local `src` (or a tar on stdin) to `CTR:DEST`; bytes of content.
async fn to_container(
    client: &Client,
    src: &str,
    ctr: &str,
    dest: &str,
    args: &Args,
) -> Result<u64> {
    let dest_path = ctr_abs(dest);
    let mut dest_info = dest_path.clone();
    let mut st = stat(client, ctr, &dest_path).await;
    if let Some(s) = &st {
        if mode(s) & MODE_SYMLINK != 0 {
            // A link as the destination: its target is what is copied to.
            let target = s["linkTarget"].as_str().unwrap_or("").to_string();
            dest_info = if target.starts_with('/') {
                target
            } else {
                format!("{}/{target}", ctr_parent(&dest_path).trim_end_matches('/'))
            };
            st = stat(client, ctr, &dest_info).await;
        }
    }
    if let Some(s) = &st {
        if mode(s) & MODE_SPECIAL != 0 {
            return Err(Error::Usage(format!(
                "destination \"{ctr}:{dest}\" must be a directory or a regular file"
            )));
        }
    }
    let (exists, is_dir) = match &st {
        Some(s) => (true, mode(s) & MODE_DIR != 0),
        None => (false, false),
    };
    let mut q: Vec<(&str, String)> = vec![("noOverwriteDirNonDir", "true".into())];
    if args.archive {
        q.push(("copyUIDGID", "true".into()));
    }
    if src == "-" {
        if !is_dir {
            return Err(Error::Usage(format!(
                "destination \"{ctr}:{dest}\" must be a directory"
            )));
        }
        q.insert(0, ("path", dest_info));
        let url = format!("/containers/{}/archive{}", seg(ctr), query(&q));
        let body = client::stream(tokio::io::stdin());
        let resp = client
            .send(Method::PUT, &url, body, Some("application/x-tar"))
            .await?;
        client::drain(resp).await?;
        return Ok(0);
    }
    let src_abs = local_abs(src)?;
    let content = is_content(src);
    // The source's directory is resolved; its last element only with -L (and always
    // for `dir/.`, which names the directory itself).
    let (resolved, rebase) = if args.follow_link || content {
        let r = std::fs::canonicalize(&src_abs).map_err(|e| lstat_err(&src_abs, e))?;
        (r, Some(base_name(src)))
    } else {
        let clean: PathBuf = src_abs.components().collect();
        match (clean.parent(), clean.file_name()) {
            (Some(p), Some(n)) => {
                let p = std::fs::canonicalize(p).map_err(|e| lstat_err(p, e))?;
                (p.join(n), None)
            }
            _ => (clean.clone(), None),
        }
    };
    let meta = std::fs::symlink_metadata(&resolved).map_err(|e| lstat_err(&resolved, e))?;
    let src_dir = meta.is_dir();
    if !src_dir && src.ends_with('/') {
        return Err(Error::Usage(format!(
            "lstat {}: not a directory",
            src_abs.display()
        )));
    }
    let own_name = rebase
        .filter(|_| !content)
        .unwrap_or_else(|| base_name(&resolved.display().to_string()));
    let (put_dir, name) = if exists && is_dir {
        (
            dest_info.clone(),
            if content { String::new() } else { own_name },
        )
    } else if exists && src_dir {
        return Err(Error::Usage("cannot copy directory".into()));
    } else if !exists && !src_dir && asserts_dir(dest) {
        return Err(Error::Usage("no such directory".into()));
    } else {
        (ctr_parent(&dest_info), base_name(&dest_info))
    };
    q.insert(0, ("path", put_dir));
    let url = format!("/containers/{}/archive{}", seg(ctr), query(&q));
    let (rd, wr) = pipe()?;
    let keep_owner = args.archive;
    let pack = tokio::task::spawn_blocking(move || {
        let mut wr = std::io::BufWriter::new(wr);
        cp_tar::pack(&resolved, &name, keep_owner, &mut wr)
    });
    let body = client::stream(tokio::fs::File::from_std(rd));
    let sent = client
        .send(Method::PUT, &url, body, Some("application/x-tar"))
        .await;
    let packed = pack
        .await
        .map_err(|e| Error::Usage(format!("archiving: {e}")))?;
    // berthd's answer first: a refused copy explains more than the broken pipe.
    client::drain(sent?).await?;
    packed.map_err(|e| Error::io(format!("archiving {src}"), e))
}

fn lstat_err(p: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::Usage(format!("lstat {}: no such file or directory", p.display()))
    } else {
        Error::io(format!("lstat {}", p.display()), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_as_docker_splits_them() {
        assert_eq!(split("c1:/etc"), (Some("c1"), "/etc"));
        assert_eq!(split("/abs:x"), (None, "/abs:x"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("file"), (None, "file"));
        assert_eq!(split("-"), (None, "-"));
    }

    #[test]
    fn names_and_parents_of_container_paths() {
        assert_eq!(base_name("/etc/passwd"), "passwd");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/etc/."), "etc");
        assert_eq!(base_name("/"), "/");
        assert_eq!(ctr_parent("/etc/passwd"), "/etc");
        assert_eq!(ctr_parent("/etc"), "/");
        assert_eq!(ctr_parent("/a/b/."), "/a");
        assert!(is_content("/a/.") && asserts_dir("/a/") && !asserts_dir("/a"));
    }
}
