//! OCI hooks: run a program with the container's state JSON on stdin, within its timeout.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::container::OciState;
use crate::error::{Result, RuntimeError};

/// The lifecycle points at which hooks run (runtime.md, "Lifecycle").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Deprecated; runs with createRuntime, in the runtime namespace.
    Prestart,
    /// After the environment is created, before pivot_root, in the runtime namespace.
    CreateRuntime,
    /// Before pivot_root, in the container's namespaces.
    CreateContainer,
    /// Inside the container, just before the user's process is executed.
    StartContainer,
    /// After the user's process started, in the runtime namespace.
    Poststart,
    /// After the container is deleted, in the runtime namespace.
    Poststop,
}

impl HookKind {
    /// The spec's name for this hook kind.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in a spec.
    pub fn of(self, spec: &oci_spec::runtime::Spec) -> Vec<Hook> {
        let Some(hooks) = spec.hooks() else {
            return Vec::new();
        };
        #[allow(deprecated)]
        let list = match self {
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        };
        list.clone().unwrap_or_default()
    }
}

/// Run every hook of `kind` in order; the first failure stops the rest.
pub fn run_all(kind: HookKind, hooks: &[Hook], state: &OciState) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let state_json = serde_json::to_vec(state)
        .map_err(|e| RuntimeError::Other(format!("serialize state for hooks: {e}")))?;
    for hook in hooks {
        run_one(kind, hook, &state_json)?;
    }
    Ok(())
}

/// Run every hook of `kind`, logging failures as warnings and going on: the runtime spec
/// asks this of poststart and poststop hooks, whose failure must not stop the lifecycle.
pub fn run_all_warn(kind: HookKind, hooks: &[Hook], state: &OciState) {
    let Ok(state_json) = serde_json::to_vec(state) else {
        return;
    };
    for hook in hooks {
        if let Err(error) = run_one(kind, hook, &state_json) {
            tracing::warn!("{error}");
        }
    }
}

fn run_one(kind: HookKind, hook: &Hook, state_json: &[u8]) -> Result<()> {
    let fail = |reason: String| RuntimeError::Hook {
        hook: kind.name(),
        path: hook.path().clone(),
        reason,
    };
    let mut command = Command::new(hook.path());
    let args = hook.args().clone().unwrap_or_default();
    if let Some((argv0, rest)) = args.split_first() {
        command.arg0(argv0).args(rest);
    }
    command.env_clear();
    for pair in hook.env().iter().flatten() {
        if let Some((key, value)) = pair.split_once('=') {
            command.env(key, value);
        }
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let started = Instant::now();
    let status = loop {
        match child.try_wait().map_err(|e| fail(e.to_string()))? {
            Some(status) => break status,
            None if timeout.is_some_and(|t| started.elapsed() >= t) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "timed out after {}s",
                    timeout.unwrap_or_default().as_secs()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "failed".to_string(),
    };
    let stderr = stderr.trim();
    Err(fail(if stderr.is_empty() {
        how
    } else {
        format!("{how}: {stderr}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;
    use std::path::PathBuf;

    fn state() -> OciState {
        OciState {
            oci_version: "1.0.2".into(),
            id: "hooked".into(),
            pid: 42,
            status: "creating".into(),
            bundle: PathBuf::from("/b"),
            rootfs: PathBuf::from("/b/rootfs"),
            created: String::new(),
            owner: String::new(),
            annotations: Default::default(),
        }
    }

    fn sh(script: &str, timeout: Option<i64>) -> Hook {
        let mut builder = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".to_string(), "-c".to_string(), script.to_string()])
            .env(vec!["GREETING=hi".to_string()]);
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        builder.build().unwrap()
    }

    #[test]
    fn hooks_get_state_on_stdin_and_their_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!("cat > {0}; echo \" $GREETING\" >> {0}", out.display());
        run_all(HookKind::Prestart, &[sh(&script, None)], &state()).unwrap();
        let written = std::fs::read_to_string(out).unwrap();
        let (json, rest) = written.split_once(" ").unwrap();
        let parsed: OciState = serde_json::from_str(json).unwrap();
        assert_eq!(parsed, state());
        assert_eq!(rest.trim(), "hi");
    }

    #[test]
    fn a_failing_hook_names_itself_and_its_stderr() {
        let err = run_all(
            HookKind::Poststart,
            &[sh("echo nope >&2; exit 3", None)],
            &state(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "poststart hook /bin/sh failed: exit status 3: nope");
    }

    #[test]
    fn warn_mode_runs_every_hook_despite_failures() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let hooks = [
            sh(&format!("echo one >> {}; exit 1", out.display()), None),
            sh(&format!("echo two >> {}", out.display()), None),
        ];
        run_all_warn(HookKind::Poststop, &hooks, &state());
        assert_eq!(std::fs::read_to_string(out).unwrap(), "one\ntwo\n");
    }

    #[test]
    fn a_slow_hook_is_killed_at_its_timeout() {
        let started = Instant::now();
        let err = run_all(
            HookKind::CreateRuntime,
            &[sh("sleep 30", Some(1))],
            &state(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("timed out after 1s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_missing_hook_binary_is_an_error() {
        let hook = HookBuilder::default()
            .path("/nonexistent/hook")
            .build()
            .unwrap();
        let err = run_all(HookKind::Poststop, &[hook], &state())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("poststop hook /nonexistent/hook failed"),
            "{err}"
        );
    }
}
