//! Exec: `POST /containers/{id}/exec`, `POST /exec/{id}/start`, `GET /exec/{id}/json`.

use crate::json::{Ty, CONSOLE_SIZE, STRINGS};
use serde::{Deserialize, Serialize};

go_struct! {
    /// `POST /containers/{id}/exec`'s body.
    pub struct ExecConfig = "types.ExecConfig" {
        /// User (`user`, `uid:gid`).
        user: String = "User": Ty::Str,
        /// Every capability.
        privileged: bool = "Privileged": Ty::Bool,
        /// A terminal (stdin is one too when attached); decided here, not at start.
        tty: bool = "Tty": Ty::Bool,
        /// Initial terminal size (height, width).
        #[serde(skip_serializing_if = "Option::is_none")]
        console_size: Option<[u64; 2]> = "ConsoleSize": CONSOLE_SIZE,
        /// Attach stdin.
        attach_stdin: bool = "AttachStdin": Ty::Bool,
        /// Attach stderr.
        attach_stderr: bool = "AttachStderr": Ty::Bool,
        /// Attach stdout.
        attach_stdout: bool = "AttachStdout": Ty::Bool,
        /// Detached (API < 1.42 clients).
        detach: bool = "Detach": Ty::Bool,
        /// Detach keys (`ctrl-p,ctrl-q`).
        detach_keys: String = "DetachKeys": Ty::Str,
        /// `KEY=value` added to the container's.
        env: Option<Vec<String>> = "Env": STRINGS,
        /// Working directory.
        working_dir: String = "WorkingDir": Ty::Str,
        /// The command.
        cmd: Option<Vec<String>> = "Cmd": STRINGS,
    }
}

go_struct! {
    /// `POST /exec/{id}/start`'s body.
    pub struct ExecStartCheck = "types.ExecStartCheck" {
        /// Do not attach.
        detach: bool = "Detach": Ty::Bool,
        /// Ignored: the exec's Tty was decided at create, as dockerd decides it.
        tty: bool = "Tty": Ty::Bool,
        /// Initial terminal size (height, width).
        #[serde(skip_serializing_if = "Option::is_none")]
        console_size: Option<[u64; 2]> = "ConsoleSize": CONSOLE_SIZE,
    }
}

/// `{"Id": ...}`: the answer of exec create (and of commit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdResponse {
    /// The new object's ID.
    #[serde(rename = "Id")]
    pub id: String,
}

/// `ProcessConfig` in exec inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecProcessConfig {
    /// Terminal.
    pub tty: bool,
    /// argv[0].
    pub entrypoint: String,
    /// The rest of argv.
    pub arguments: Vec<String>,
    /// Privileged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// User.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecInspect {
    /// Exec ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Running.
    #[serde(rename = "Running")]
    pub running: bool,
    /// Exit code, once it exited (`null` before).
    #[serde(rename = "ExitCode")]
    pub exit_code: Option<i64>,
    /// The process.
    #[serde(rename = "ProcessConfig")]
    pub process_config: Option<ExecProcessConfig>,
    /// stdin attached.
    #[serde(rename = "OpenStdin")]
    pub open_stdin: bool,
    /// stderr attached.
    #[serde(rename = "OpenStderr")]
    pub open_stderr: bool,
    /// stdout attached.
    #[serde(rename = "OpenStdout")]
    pub open_stdout: bool,
    /// May be removed.
    #[serde(rename = "CanRemove")]
    pub can_remove: bool,
    /// Container ID.
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// Detach keys as given.
    #[serde(rename = "DetachKeys")]
    pub detach_keys: String,
    /// Host PID while it runs.
    #[serde(rename = "Pid")]
    pub pid: i64,
}
