//! A container's status, read from the kernel: is the init alive, has it been started,
//! is its cgroup frozen.

use std::fmt;

use super::Container;

/// The lifecycle states of the runtime spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The runtime is still setting the container up.
    Creating,
    /// Set up; the init waits for `start`.
    Created,
    /// The user's process runs.
    Running,
    /// The container's cgroup is frozen.
    Paused,
    /// The init has exited.
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// Field 22 (starttime) of /proc/PID/stat, or None if the process is gone or a zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat).and_then(|(state, start)| (state != 'Z' && state != 'X').then_some(start))
}

/// Parse the state letter and start time out of a /proc/PID/stat line. The command name
/// may itself contain spaces and parentheses, so fields are counted after the last ')'.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3) comes field 4; starttime is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

impl Status {
    /// Derive the status of a container from its init process and exec FIFO.
    pub fn of(container: &Container) -> Status {
        let state = &container.state;
        if state.pid <= 0 || process_start_time(state.pid) != Some(state.pid_start_time) {
            return Status::Stopped;
        }
        if container.exec_fifo().exists() {
            return Status::Created;
        }
        if crate::cgroups::is_frozen(&state.cgroup_path) {
            return Status::Paused;
        }
        Status::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "1234 (my (weird) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
        let zombie = "7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0";
        assert_eq!(parse_stat(zombie), Some(('Z', 42)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn our_own_process_has_a_start_time() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert_eq!(process_start_time(i32::MAX), None);
    }
}
