//! `berth build`: build an image from a Dockerfile with berthd's classic builder. The
//! context (a directory, or `-` for a tar or a Dockerfile on stdin) is sent as a tar
//! streamed while it is made, without what `.dockerignore` names (the Dockerfile and
//! `.dockerignore` are always sent, as docker sends them); a Dockerfile outside the
//! context goes in under a name of its own. The build's output is shown as it comes.

use crate::client::{self, query, Client};
use crate::error::{Error, Result};
use crate::progress::{Mode, Renderer};
use berth_fs::ignore::Patterns;
use futures_util::StreamExt;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Flags of `berth build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name and optionally a tag in the `name:tag` format.
    #[arg(short, long = "tag", value_name = "NAME[:TAG]")]
    tag: Vec<String>,
    /// Name of the Dockerfile (default: `PATH/Dockerfile`; `-` reads it from stdin).
    #[arg(short, long = "file", value_name = "FILE")]
    file: Option<String>,
    /// Set build-time variables (`KEY=VALUE`, or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    build_arg: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    target: Option<String>,
    /// Do not use cache when building the image.
    #[arg(long)]
    no_cache: bool,
    /// Suppress the build output and print image ID on success.
    #[arg(short, long)]
    quiet: bool,
    /// Write the image ID to the file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Set metadata for an image (`KEY=VALUE`).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Always attempt to pull a newer version of the image.
    #[arg(long)]
    pull: bool,
    /// Remove intermediate containers after a build (also a failed step's).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    rm: bool,
    /// Always remove intermediate containers.
    #[arg(long)]
    force_rm: bool,
    /// Images to consider as cache sources.
    #[arg(long = "cache-from", value_name = "IMAGE")]
    cache_from: Vec<String>,
    /// The networking mode for the RUN instructions (`none` or `host`).
    #[arg(long, value_name = "MODE")]
    network: Option<String>,
    /// Memory limit of RUN steps (`512m`, `1g`).
    #[arg(short, long, value_name = "BYTES")]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: `-1` to enable unlimited swap.
    #[arg(long = "memory-swap", value_name = "BYTES")]
    memory_swap: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<i64>,
    /// Limit the CPU CFS period.
    #[arg(long = "cpu-period")]
    cpu_period: Option<i64>,
    /// Limit the CPU CFS quota.
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Optional parent cgroup for the container.
    #[arg(long = "cgroup-parent")]
    cgroup_parent: Option<String>,
    /// Size of /dev/shm.
    #[arg(long = "shm-size", value_name = "BYTES")]
    shm_size: Option<String>,
    /// Add a custom host-to-IP mapping (`host:ip`).
    #[arg(long = "add-host", value_name = "HOST:IP")]
    add_host: Vec<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    platform: Option<String>,
    /// The context: a directory, or `-` to read a tar (or a Dockerfile) from stdin.
    #[arg(value_name = "PATH|-")]
    context: String,
}

/// A size as docker's flags take it (`512m`, `1g`, bytes).
fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let (num, mult) = match t.trim_end_matches('b').chars().last() {
        Some('k') => (&t[..t.trim_end_matches('b').len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (t.trim_end_matches('b'), 1),
    };
    num.parse::<f64>()
        .map(|n| (n * mult as f64) as i64)
        .map_err(|_| Error::Usage(format!("invalid size: {s:?}")))
}

/// Where the Dockerfile is: a name inside the context, or a file outside it.
enum DockerfileAt {
    Inside(String),
    Outside(PathBuf),
    Stdin,
}

fn locate_dockerfile(context: &Path, file: Option<&str>) -> Result<DockerfileAt> {
    let path = match file {
        Some("-") => return Ok(DockerfileAt::Stdin),
        None => context.join("Dockerfile"),
        // Relative to where berth runs, as docker takes it.
        Some(f) => std::path::absolute(f).map_err(|e| Error::io(format!("locating {f}"), e))?,
    };
    let ctx = std::path::absolute(context).map_err(|e| Error::io("locating the context", e))?;
    if file.is_none() && !path.exists() && context.join("dockerfile").exists() {
        return Ok(DockerfileAt::Inside("dockerfile".into()));
    }
    if !path.exists() {
        return Err(Error::Usage(format!(
            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
            path.display()
        )));
    }
    match path.strip_prefix(&ctx) {
        Ok(rel) => Ok(DockerfileAt::Inside(rel.to_string_lossy().into_owned())),
        Err(_) => Ok(DockerfileAt::Outside(path)),
    }
}

/// Writes `dir` as a tar (owners 0:0, as docker sends contexts), leaving out what the
/// patterns name; `extra` (a Dockerfile from outside the context) goes first.
fn write_context<W: Write>(
    dir: &Path,
    patterns: &Patterns,
    extra: Option<(&str, &[u8])>,
    out: W,
) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    if let Some((name, text)) = extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(0);
        b.append_data(&mut h, name, text)?;
    }
    let mut links: std::collections::HashMap<(u64, u64), String> = Default::default();
    walk(&mut b, dir, "", patterns, &mut links)?;
    b.into_inner()?.flush()
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &Path,
    at: &str,
    patterns: &Patterns,
    links: &mut std::collections::HashMap<(u64, u64), String>,
) -> std::io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir.join(at))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let rel = if at.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{at}/{}", name.to_string_lossy())
        };
        let path = dir.join(&rel);
        let meta = std::fs::symlink_metadata(&path)?;
        let skipped = patterns.matches(&rel);
        if skipped && !(meta.is_dir() && patterns.may_include_below(&rel)) {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata(&meta);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(meta.mode() & 0o7777);
        if meta.is_dir() {
            if !skipped {
                b.append_data(&mut h, format!("{rel}/"), std::io::empty())?;
            }
            walk(b, dir, &rel, patterns, links)?;
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?;
            h.set_size(0);
            b.append_link(&mut h, &rel, &target)?;
        } else if meta.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = links.get(&key) {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, &rel, first)?;
                    continue;
                }
                links.insert(key, rel.clone());
            }
            let f = std::fs::File::open(&path)?;
            b.append_data(&mut h, &rel, f)?;
        } else if meta.file_type().is_fifo() {
            h.set_size(0);
            b.append_data(&mut h, &rel, std::io::empty())?;
        }
        // Sockets and devices are not sent.
    }
    Ok(())
}

use std::os::unix::fs::FileTypeExt;

/// A writer that counts what passes (for "Sending build context").
struct Counting<W> {
    inner: W,
    n: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Whether bytes start a tar or a compressed stream (else stdin is a Dockerfile).
fn looks_like_archive(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(b"BZh")
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || (head.len() > 262 && &head[257..262] == b"ustar")
}

/// Runs `berth build`.
pub async fn run(client: &Client, args: Args) -> Result<i32> {
    if let Some(f) = &args.iidfile {
        match std::fs::remove_file(f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(
                    format!("removing image ID file {}", f.display()),
                    e,
                ))
            }
            _ => {}
        }
    }
    let mut q: Vec<(&str, String)> = Vec::new();
    for t in &args.tag {
        q.push(("t", t.clone()));
    }
    let sent = Arc::new(AtomicU64::new(0));
    let (body, dockerfile) = if args.context == "-" {
        if args.file.as_deref() == Some("-") {
            return Err(Error::Usage(
                "invalid argument: can't use stdin for both build context and dockerfile".into(),
            ));
        }
        if std::io::stdin().is_terminal() {
            return Err(Error::Usage(
                "unable to prepare context: stdin is a terminal".into(),
            ));
        }
        let mut stdin = std::io::stdin().lock();
        let mut head = vec![0u8; 512];
        let mut got = 0;
        while got < head.len() {
            let n = stdin
                .read(&mut head[got..])
                .map_err(|e| Error::io("reading stdin", e))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        head.truncate(got);
        drop(stdin);
        if looks_like_archive(&head) {
            let rest =
                tokio::io::AsyncReadExt::chain(std::io::Cursor::new(head), tokio::io::stdin());
            (
                client::stream(rest),
                args.file.clone().unwrap_or_else(|| "Dockerfile".into()),
            )
        } else {
            // A Dockerfile alone: sent as a context of one file.
            let mut text = head;
            std::io::stdin()
                .read_to_end(&mut text)
                .map_err(|e| Error::io("reading stdin", e))?;
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            b.append_data(&mut h, "Dockerfile", &text[..])
                .map_err(|e| Error::io("making the context", e))?;
            let data = b
                .into_inner()
                .map_err(|e| Error::io("making the context", e))?;
            sent.fetch_add(data.len() as u64, Ordering::Relaxed);
            (
                client::stream(std::io::Cursor::new(data)),
                "Dockerfile".to_string(),
            )
        }
    } else {
        let dir = PathBuf::from(&args.context);
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "unable to prepare context: path {:?} not found",
                args.context
            )));
        }
        let at = locate_dockerfile(&dir, args.file.as_deref())?;
        let ignore_text = std::fs::read_to_string(dir.join(".dockerignore")).unwrap_or_default();
        let mut patterns = Patterns::parse(&ignore_text)
            .map_err(|e| Error::Usage(format!("parsing .dockerignore: {e}")))?;
        // The Dockerfile and .dockerignore are always sent; berthd drops them if named.
        if patterns.matches(".dockerignore") {
            let _ = patterns.push("!.dockerignore");
        }
        let (name, extra): (String, Option<Vec<u8>>) = match at {
            DockerfileAt::Inside(n) => {
                if patterns.matches(&n) {
                    let _ = patterns.push(&format!("!{n}"));
                }
                (n, None)
            }
            DockerfileAt::Outside(p) => {
                let text = std::fs::read(&p)
                    .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
                (format!(".dockerfile.{}", random_suffix()), Some(text))
            }
            DockerfileAt::Stdin => {
                let mut text = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut text)
                    .map_err(|e| Error::io("reading the Dockerfile from stdin", e))?;
                (format!(".dockerfile.{}", random_suffix()), Some(text))
            }
        };
        let (reader, writer) = tokio::io::duplex(256 * 1024);
        let counter = sent.clone();
        let extra_name = name.clone();
        tokio::task::spawn_blocking(move || {
            let w = Counting {
                inner: tokio_util::io::SyncIoBridge::new(writer),
                n: counter,
            };
            let result = write_context(
                &dir,
                &patterns,
                extra.as_deref().map(|t| (extra_name.as_str(), t)),
                w,
            );
            if let Err(e) = result {
                eprintln!("error sending the build context: {e}");
            }
        });
        (client::stream(reader), name)
    };
    q.push(("dockerfile", dockerfile));
    if !args.build_arg.is_empty() {
        let mut m = serde_json::Map::new();
        for a in &args.build_arg {
            match a.split_once('=') {
                Some((k, v)) => m.insert(k.to_string(), v.into()),
                None => m.insert(
                    a.clone(),
                    std::env::var(a)
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::Null),
                ),
            };
        }
        q.push(("buildargs", serde_json::Value::Object(m).to_string()));
    }
    if !args.label.is_empty() {
        let mut m = serde_json::Map::new();
        for l in &args.label {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            m.insert(k.to_string(), v.into());
        }
        q.push(("labels", serde_json::Value::Object(m).to_string()));
    }
    if let Some(t) = &args.target {
        q.push(("target", t.clone()));
    }
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    if args.no_cache {
        q.push(("nocache", "1".into()));
    }
    if args.quiet {
        q.push(("q", "1".into()));
    }
    if args.pull {
        q.push(("pull", "1".into()));
    }
    q.push(("rm", flag(args.rm)));
    if args.force_rm {
        q.push(("forcerm", "1".into()));
    }
    if !args.cache_from.is_empty() {
        q.push((
            "cachefrom",
            serde_json::to_string(&args.cache_from).unwrap_or_default(),
        ));
    }
    if let Some(n) = &args.network {
        q.push(("networkmode", n.clone()));
    }
    for (k, v) in [
        ("memory", &args.memory),
        ("memswap", &args.memory_swap),
        ("shmsize", &args.shm_size),
    ] {
        if let Some(v) = v {
            q.push((k, parse_bytes(v)?.to_string()));
        }
    }
    for (k, v) in [
        ("cpushares", args.cpu_shares),
        ("cpuperiod", args.cpu_period),
        ("cpuquota", args.cpu_quota),
    ] {
        if let Some(v) = v {
            q.push((k, v.to_string()));
        }
    }
    for (k, v) in [
        ("cpusetcpus", &args.cpuset_cpus),
        ("cpusetmems", &args.cpuset_mems),
        ("cgroupparent", &args.cgroup_parent),
        ("platform", &args.platform),
    ] {
        if let Some(v) = v {
            q.push((k, v.clone()));
        }
    }
    for h in &args.add_host {
        q.push(("extrahosts", h.clone()));
    }
    let resp = client
        .send(
            hyper::Method::POST,
            &format!("/build{}", query(&q)),
            body,
            Some("application/x-tar"),
        )
        .await?;
    if !args.quiet {
        println!(
            "Sending build context to Docker daemon  {}",
            crate::output::human_size(sent.load(Ordering::Relaxed) as f64)
        );
    }
    let mut r = Renderer::new(Mode::Plain, std::io::stdout());
    let mut stream = std::pin::pin!(client::json_stream(resp));
    let mut image_id = String::new();
    while let Some(msg) = stream.next().await {
        let msg = msg?;
        if !msg["errorDetail"].is_null() || !msg["error"].is_null() {
            r.finish();
            let message = msg["errorDetail"]["message"]
                .as_str()
                .or_else(|| msg["error"].as_str())
                .unwrap_or("build failed")
                .to_string();
            let code = msg["errorDetail"]["code"]
                .as_i64()
                .filter(|c| *c != 0)
                .unwrap_or(1);
            return Err(Error::Exit {
                message,
                code: code as i32,
            });
        }
        if let Some(id) = msg["aux"]["ID"].as_str() {
            image_id = id.to_string();
        }
        if args.quiet {
            if let Some(s) = msg["stream"].as_str() {
                image_id = s.trim().to_string();
            }
        }
        r.handle(&msg)?;
    }
    r.finish();
    if let Some(f) = &args.iidfile {
        if image_id.is_empty() {
            return Err(Error::Usage(format!(
                "server did not provide an image ID. Cannot write {}",
                f.display()
            )));
        }
        std::fs::write(f, &image_id)
            .map_err(|e| Error::io(format!("writing {}", f.display()), e))?;
    }
    Ok(0)
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_archives() {
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert!(parse_bytes("lots").is_err());
        assert!(looks_like_archive(&[0x1f, 0x8b, 0]));
        assert!(!looks_like_archive(b"FROM busybox\n"));
    }

    #[test]
    fn context_tar_leaves_out_ignored_paths() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("docs")).unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(d.path().join("a.log"), "x").unwrap();
        std::fs::write(d.path().join("docs/keep.md"), "k").unwrap();
        std::fs::write(d.path().join("docs/drop.md"), "d").unwrap();
        let p = Patterns::parse("*.log\ndocs\n!docs/keep.md\n").unwrap();
        let mut out = Vec::new();
        write_context(d.path(), &p, None, &mut out).unwrap();
        let names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["Dockerfile", "docs/keep.md"]);
    }
}
