//! The last steps before the user's program runs: find it, switch user, exec.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Process, User};

use crate::error::{Context, Result, RuntimeError};

/// The PATH used when the process's environment has none (runc's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The value of `name` in a list of `KEY=value` strings.
pub fn env_value<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Find the program as execvp would, but with the container's PATH, not ours.
pub fn find_executable(program: &str, env: &[String], cwd: &Path) -> Result<PathBuf> {
    let is_exec = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let path = if Path::new(program).is_absolute() {
            PathBuf::from(program)
        } else {
            cwd.join(program)
        };
        return match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(path),
            // The words are runc's (and the kernel's): engines map "no such file or
            // directory" to exit code 127, "permission denied"/"is a directory" to 126.
            Ok(m) if m.is_dir() => Err(RuntimeError::Init(format!(
                "exec {program:?}: is a directory"
            ))),
            Ok(_) => Err(RuntimeError::Init(format!(
                "exec {program:?}: permission denied"
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(RuntimeError::Init(
                format!("exec {program:?}: permission denied"),
            )),
            Err(_) => Err(RuntimeError::Init(format!(
                "exec {program:?}: stat {}: no such file or directory",
                path.display()
            ))),
        };
    }
    let search = env_value(env, "PATH").unwrap_or(DEFAULT_PATH);
    search
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .find(|candidate| is_exec(candidate))
        .ok_or_else(|| {
            RuntimeError::Init(format!(
                "exec {program:?}: executable file not found in $PATH"
            ))
        })
}

/// Switch to the process's user and groups. Capabilities are kept across the switch
/// (PR_SET_KEEPCAPS) so that the spec's sets can then be applied.
pub fn switch_user(user: &User) -> Result<()> {
    let gids: Vec<Gid> = user
        .additional_gids()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(Gid::from_raw)
        .collect();
    // setgroups is refused in a user namespace whose setgroups file says deny; with no
    // additional groups there is nothing to drop in that case.
    match nix::unistd::setgroups(&gids) {
        Ok(()) => {}
        Err(nix::Error::EPERM) if gids.is_empty() => {}
        Err(e) => return Err(e).context("set additional groups"),
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).with_context(|| format!("set gid {gid}"))?;
    nix::sys::prctl::set_keepcaps(true).context("keep capabilities across setuid")?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).with_context(|| format!("set uid {uid}"))?;
    nix::sys::prctl::set_keepcaps(false).context("reset keepcaps")
}

/// The environment for the process: the spec's, with HOME added when missing, as runc does.
pub fn environment(process: &Process) -> Vec<String> {
    let mut env = process.env().clone().unwrap_or_default();
    if env_value(&env, "HOME").is_none() {
        let home = if process.user().uid() == 0 {
            "/root"
        } else {
            "/"
        };
        env.push(format!("HOME={home}"));
    }
    env
}

fn cstrings<I: IntoIterator<Item = S>, S: AsRef<[u8]>>(items: I) -> Result<Vec<CString>> {
    items
        .into_iter()
        .map(|s| {
            CString::new(s.as_ref()).map_err(|_| {
                RuntimeError::InvalidConfig("argument or environment contains a NUL byte".into())
            })
        })
        .collect()
}

/// Replace the init with the user's program.
pub fn exec(path: &Path, args: &[String], env: &[String]) -> Result<std::convert::Infallible> {
    let path_c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| RuntimeError::InvalidConfig("program path contains a NUL byte".into()))?;
    let args_c = cstrings(args)?;
    let env_c = cstrings(env)?;
    nix::unistd::execve(&path_c, &args_c, &env_c)
        .with_context(|| format!("exec {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_the_containers_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("tool");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = vec![format!("PATH=/nonexistent:{}", dir.path().display())];
        assert_eq!(find_executable("tool", &env, Path::new("/")).unwrap(), bin);
        let err = find_executable("nope", &env, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("executable file not found in $PATH"), "{err}");
        assert_eq!(
            find_executable("/bin/sh", &[], Path::new("/")).unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert_eq!(
            find_executable("./tool", &[], dir.path()).unwrap(),
            dir.path().join("./tool")
        );
        // Explicit paths fail in the words engines map to exit codes 127 and 126.
        let err = |p: &str| find_executable(p, &[], dir.path()).unwrap_err().to_string();
        assert!(err("/nonexistent").contains("no such file or directory"));
        std::fs::write(dir.path().join("data"), "x").unwrap();
        assert!(err("./data").contains("permission denied"));
        assert!(err("/").contains("is a directory"));
    }

    #[test]
    fn later_env_entries_win_and_home_is_added() {
        let env = vec!["PATH=/a".to_string(), "PATH=/b".to_string()];
        assert_eq!(env_value(&env, "PATH"), Some("/b"));
        assert_eq!(env_value(&env, "PAT"), None);
        let process = Process::default();
        let env = environment(&process);
        assert!(env.contains(&"HOME=/root".to_string()), "{env:?}");
    }
}
