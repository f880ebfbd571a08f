//! The OCI runtime, driven only through its runc-compatible command line, so that
//! berth-runtime, runc and crun are interchangeable.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One runtime binary with its state root and log file.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// The binary.
    pub binary: PathBuf,
    /// `--root`.
    pub root: PathBuf,
    /// `--log` (JSON lines; errors are read back from it).
    pub log: PathBuf,
    /// `--systemd-cgroup`.
    pub systemd_cgroup: bool,
}

/// Stdio for a runtime command whose children inherit it (create, exec).
pub struct Stdio3 {
    /// Standard input.
    pub stdin: File,
    /// Standard output.
    pub stdout: File,
    /// Standard error.
    pub stderr: File,
}

impl Runtime {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        if self.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        cmd
    }

    /// Run `args`; with `stdio`, the runtime (and the container it makes) gets those
    /// descriptors, else stdin/stdout are null and stderr is captured for the error.
    pub fn run(
        &self,
        args: &[&str],
        stdio: Option<Stdio3>,
        input: Option<&[u8]>,
    ) -> Result<String, String> {
        // Errors are read back from the log: start each command with an empty one.
        let _ = File::create(&self.log);
        let mut cmd = self.command();
        cmd.args(args);
        match stdio {
            Some(s) => {
                cmd.stdin(s.stdin).stdout(s.stdout).stderr(s.stderr);
            }
            None => {
                cmd.stdin(if input.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            }
        }
        let name = self.binary.display().to_string();
        let mut child = cmd.spawn().map_err(|e| format!("run {name}: {e}"))?;
        if let (Some(data), Some(mut w)) = (input, child.stdin.take()) {
            use std::io::Write;
            let _ = w.write_all(data);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("wait for {name}: {e}"))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let from_log = last_error(&self.log);
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let msg = from_log
            .or_else(|| (!stderr.is_empty()).then_some(stderr))
            .unwrap_or_else(|| format!("exited with {}", out.status));
        // containerd's wording, without the host path of the runtime binary: clients
        // (and the docker CLI's exit-code mapping) see only what failed and why.
        Err(format!(
            "OCI runtime {} failed: {msg}",
            args.first().copied().unwrap_or("command")
        ))
    }
}

/// The `msg` of the last `"level":"error"` line of a runc-style JSON log.
pub fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter(|l| l.contains("\"level\":\"error\"") || l.contains("\"level\":\"fatal\""))
        .find_map(|l| json_string_field(l, "msg"))
}

/// The value of a string field in one flat JSON object (enough for log lines).
pub fn json_string_field(line: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\":\"");
    let start = line.find(&key)? + key.len();
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?).unwrap_or('?'));
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Find a binary: a path as given, else in `$PATH`.
pub fn resolve(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The default runtime: `$BERTH_SHIM_RUNTIME`, else berth-runtime beside this binary,
/// else berth-runtime in PATH.
pub fn default_binary() -> Option<PathBuf> {
    if let Ok(v) = std::env::var("BERTH_SHIM_RUNTIME") {
        if !v.is_empty() {
            return resolve(&v);
        }
    }
    if let Ok(exe) = std::fs::canonicalize("/proc/self/exe") {
        if let Some(dir) = exe.parent() {
            let p = dir.join("berth-runtime");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    resolve("berth-runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_runc_error_lines() {
        let line = r#"{"level":"error","msg":"container \"a\" does not exist\u0021","time":"x"}"#;
        assert_eq!(
            json_string_field(line, "msg").unwrap(),
            "container \"a\" does not exist!"
        );
        assert_eq!(json_string_field(line, "nope"), None);
    }
}
