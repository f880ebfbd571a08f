//! Reading a process's cgroup files from the host, the one way every test file does:
//! its v1 hierarchy for a controller (named alone or with others, `cpu,cpuacct`), or
//! its v2 group.
#![allow(dead_code)]

/// A cgroup file of `pid` for `controller` (v1), or of its v2 group; None when the
/// process or the file is gone.
pub fn cgroup_file_of(pid: u32, controller: &str, file: &str) -> Option<String> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let v1 = cg.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| format!("/sys/fs/cgroup/{ctrls}{path}"))
    });
    let dir = v1.or_else(|| {
        let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
        Some(format!("/sys/fs/cgroup{path}"))
    })?;
    std::fs::read_to_string(format!("{dir}/{file}"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// As [`cgroup_file_of`], for a PID as `docker inspect` prints it; panics when the
/// file cannot be read (the test's container must be running).
pub fn cgroup_file(pid: &str, controller: &str, file: &str) -> String {
    let n: u32 = pid
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid {pid:?}: {e}"));
    cgroup_file_of(n, controller, file)
        .unwrap_or_else(|| panic!("{file} of {controller} for pid {n}: not readable"))
}
