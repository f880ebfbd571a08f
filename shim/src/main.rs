//! berth-shim: one process per container, speaking containerd's shim v2 task API over
//! ttrpc, so that containerd can run it as `io.containerd.berth.v2` (installed as
//! `containerd-shim-berth-v2`) and berth-supervisor can run it or containerd's own shim.
//!
//! It owns: daemonizing (`start`), cleaning up after a dead shim (`delete`), being the
//! child subreaper of the container, holding its stdio, reaping, recording the init exit
//! status in the bundle, and publishing task events. With berth-supervisor's log option
//! it also writes the init's output to dockerd's json-file log itself (`output`,
//! `jsonlog`), so that nothing is lost while the engine is down. It drives the OCI
//! runtime only through its command line (berth-runtime by default; runc or crun
//! through the runc options' BinaryName) and must not link to it. Memory is kept tiny:
//! one thread (plus a small one per terminal or stdin FIFO), no async runtime, a
//! hand-rolled ttrpc server (see `frame`).

mod events;
mod frame;
mod jsonlog;
mod mounts;
mod oom;
mod options;
mod output;
mod process;
mod runtime;
mod server;
mod service;
mod stats;
mod stdio;
mod sys;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{Message, MessageField};

const USAGE: &str = "usage: berth-shim [-namespace NS] [-address ADDR] [-publish-binary BIN] -id ID [-bundle DIR] [-debug] [start|delete]

  start   start the shim daemon for the bundle in the current directory, print its
          ttrpc address (unix://PATH) and exit
  delete  clean up after a shim that is gone: runtime delete --force, unmount the
          rootfs, print a DeleteResponse (protobuf) on stdout
  (none)  serve the task API on the socket passed by `start` as fd 3

Environment: TTRPC_ADDRESS (where events are published), BERTH_SHIM_RUNTIME (default
OCI runtime binary; else berth-runtime beside the shim, else in PATH).";

/// The command line, parsed the way Go's flag package does (`-flag value`, `-flag=value`,
/// `--flag value`), since containerd calls shims that way.
#[derive(Default, Debug)]
struct Flags {
    namespace: String,
    address: String,
    id: String,
    bundle: String,
    debug: bool,
    command: Option<String>,
    raw: Vec<String>,
}

fn parse_flags(args: &[String]) -> Result<Flags, String> {
    let mut f = Flags {
        namespace: "default".into(),
        raw: args.to_vec(),
        ..Default::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !a.starts_with('-') {
            if f.command.is_some() {
                return Err(format!("unexpected argument {a:?}"));
            }
            f.command = Some(a.clone());
            continue;
        }
        let name = a.trim_start_matches('-');
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("flag -{name} needs a value"))
        };
        match name {
            "namespace" => f.namespace = value()?,
            "address" => f.address = value()?,
            "id" => f.id = value()?,
            "bundle" => f.bundle = value()?,
            "publish-binary" | "socket" => {
                value()?;
            }
            "debug" => f.debug = inline.as_deref() != Some("false"),
            "v" | "version" => f.command = Some("version".into()),
            "h" | "help" => f.command = Some("help".into()),
            other => return Err(format!("unknown flag -{other}")),
        }
    }
    Ok(f)
}

/// A protobuf timestamp.
pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = d.as_secs() as i64;
    ts.nanos = d.subsec_nanos() as i32;
    ts
}

/// One line to the shim's log (its stderr: the bundle's `log` FIFO or `shim.log`).
/// Never fails: the reader may be gone (EPIPE) or slow (EAGAIN); the line is dropped.
pub fn log(msg: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "berth-shim[{}]: {msg}",
        std::process::id()
    );
}

/// A unix socket path under `dir` if it fits in sun_path, else under /run/berth-shim.
pub fn short_socket_path(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    if p.as_os_str().len() < 100 {
        return p;
    }
    // FNV-1a of the full path: stable, and unique enough for one machine's shims.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in p.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100000001b3);
    }
    let base = Path::new("/run/berth-shim");
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(base);
    base.join(format!("{h:016x}-{name}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = match parse_flags(&args) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "berth-shim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let res = match flags.command.as_deref() {
        Some("start") => start(&flags),
        Some("delete") => delete(&flags),
        Some("version") => {
            println!(
                "berth-shim {}\nttrpc task API: containerd.task.v2.Task, containerd.task.v3.Task",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        Some("help") => {
            println!("{USAGE}");
            Ok(())
        }
        None => daemon(&flags),
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "berth-shim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn require_id(flags: &Flags) -> Result<(), String> {
    if flags.id.is_empty() {
        return Err("-id is required".into());
    }
    Ok(())
}

/// `start`: bind the task socket, fork the daemon with it as fd 3, print the address.
fn start(flags: &Flags) -> Result<(), String> {
    require_id(flags)?;
    let bundle = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    // containerd passes runtime options on stdin; drain it so its writer never blocks.
    let mut opts = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut opts);
    let sock = short_socket_path(&bundle, "shim.sock");
    let address = format!("unix://{}", sock.display());
    if sock.exists() {
        if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
            // A shim already serves this bundle: hand out its address.
            println!("{address}");
            return Ok(());
        }
        let _ = std::fs::remove_file(&sock);
    }
    let listener = std::os::unix::net::UnixListener::bind(&sock)
        .map_err(|e| format!("listen on {}: {e}", sock.display()))?;
    let log = open_log(&bundle);
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| format!("own binary: {e}"))?;
    let args: Vec<&String> = flags.raw.iter().filter(|a| a.as_str() != "start").collect();
    let lfd = listener.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .current_dir(&bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: the closure only calls setsid/dup2/fcntl (async-signal-safe) on fds that
    // stay valid across fork; see sys::daemon_pre_exec.
    unsafe {
        cmd.pre_exec(move || sys::daemon_pre_exec(lfd));
    }
    let child = cmd.spawn().map_err(|e| format!("start daemon: {e}"))?;
    drop(listener);
    std::fs::write(bundle.join("address"), &address).map_err(|e| format!("write address: {e}"))?;
    let _ = std::fs::write(bundle.join("shim.pid"), child.id().to_string());
    print!("{address}");
    let _ = std::io::stdout().flush();
    Ok(())
}

/// The daemon's stderr: the bundle's `log` FIFO if someone reads it (containerd), else
/// `shim.log` in the bundle.
fn open_log(bundle: &Path) -> Stdio {
    use std::os::unix::fs::OpenOptionsExt;
    let fifo = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(bundle.join("log"));
    if let Ok(f) = fifo {
        return Stdio::from(f);
    }
    match std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(bundle.join("shim.log"))
    {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::null(),
    }
}

/// The daemon: serve the task API until Shutdown.
fn daemon(flags: &Flags) -> Result<(), String> {
    require_id(flags)?;
    sys::limit_malloc_arenas();
    sys::set_child_subreaper().map_err(|e| format!("subreaper: {e}"))?;
    let sigchld = sys::sigchld_pipe().map_err(|e| format!("signal pipe: {e}"))?;
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().map_err(|e| format!("current directory: {e}"))?
    } else {
        PathBuf::from(&flags.bundle)
    };
    let listener = sys::inherited_listener();
    let publisher =
        events::Publisher::new(std::env::var("TTRPC_ADDRESS").ok(), flags.namespace.clone());
    let mut shim = service::Shim::new(
        flags.id.clone(),
        flags.namespace.clone(),
        bundle.clone(),
        publisher,
    );
    let res = server::serve(listener, sigchld, &mut shim).map_err(|e| format!("serve: {e}"));
    if let Ok(addr) = std::fs::read_to_string(bundle.join("address")) {
        let _ = std::fs::remove_file(addr.trim().trim_start_matches("unix://"));
    }
    res
}

/// `delete`: the shim is gone (or never came up); make sure the container is too.
fn delete(flags: &Flags) -> Result<(), String> {
    require_id(flags)?;
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().map_err(|e| format!("current directory: {e}"))?
    } else {
        PathBuf::from(&flags.bundle)
    };
    if let Ok(text) = std::fs::read_to_string(bundle.join(service::RUNTIME_FILE)) {
        let mut lines = text.lines();
        if let (Some(bin), Some(root)) = (lines.next(), lines.next()) {
            let rt = runtime::Runtime {
                binary: bin.into(),
                root: root.into(),
                log: bundle.join("log.json"),
                systemd_cgroup: false,
            };
            let _ = rt.run(&["delete", "--force", &flags.id], None, None);
        }
    }
    mounts::unmount_all(&bundle.join("rootfs"));
    let mut resp = DeleteResponse::new();
    let recorded = std::fs::read_to_string(bundle.join(service::EXIT_FILE)).ok();
    // "STATUS SECS NANOS", and " oom" after an OOM kill.
    let parsed = recorded.as_deref().and_then(|t| {
        let v: Vec<i64> = t
            .split_whitespace()
            .take(3)
            .filter_map(|x| x.parse().ok())
            .collect();
        (v.len() == 3).then(|| (v[0], v[1], v[2]))
    });
    let mut ts = timestamp(SystemTime::now());
    match parsed {
        Some((status, secs, nanos)) => {
            resp.exit_status = status as u32;
            ts.seconds = secs;
            ts.nanos = nanos as i32;
        }
        None => resp.exit_status = 128 + libc::SIGKILL as u32,
    }
    resp.exited_at = MessageField::some(ts);
    let bytes = resp.write_to_bytes().map_err(|e| e.to_string())?;
    std::io::stdout()
        .write_all(&bytes)
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_containerd_command_lines() {
        let f = parse_flags(&v(&[
            "-namespace",
            "k8s",
            "-address",
            "/run/c.sock",
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "abc",
            "start",
        ]))
        .unwrap();
        assert_eq!(
            (f.namespace.as_str(), f.id.as_str(), f.command.as_deref()),
            ("k8s", "abc", Some("start"))
        );
        let f = parse_flags(&v(&["--id=x", "-bundle", "/b", "-debug", "delete"])).unwrap();
        assert_eq!(
            (f.id.as_str(), f.bundle.as_str(), f.debug),
            ("x", "/b", true)
        );
        assert!(parse_flags(&v(&["-bogus"])).is_err());
        assert!(parse_flags(&v(&["-id"])).is_err());
    }

    #[test]
    fn long_socket_paths_move_to_run() {
        let short = short_socket_path(Path::new("/tmp/b"), "shim.sock");
        assert_eq!(short, Path::new("/tmp/b/shim.sock"));
        let long = short_socket_path(&Path::new("/tmp").join("x".repeat(120)), "shim.sock");
        assert!(long.starts_with("/run/berth-shim"));
        assert!(long.as_os_str().len() < 100);
    }
}
