//! Root filesystem mounts given at create (overlay, bind, ...), mounted on
//! `<bundle>/rootfs` and unmounted at delete.

use std::path::Path;

use crate::sys;

/// mount(2) flags and data from mount(8)-style options.
pub fn parse_options(options: &[String]) -> (u64, String) {
    let mut flags: u64 = 0;
    let mut data = Vec::new();
    for o in options {
        let (set, clear): (u64, u64) = match o.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "noatime" => (libc::MS_NOATIME, 0),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "relatime" => (libc::MS_RELATIME, 0),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "bind" => (libc::MS_BIND, 0),
            "rbind" => (libc::MS_BIND | libc::MS_REC, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            "defaults" => (0, 0),
            other => {
                data.push(other.to_string());
                (0, 0)
            }
        };
        flags = (flags | set) & !clear;
    }
    (flags, data.join(","))
}

/// Mount one filesystem on `target`.
pub fn mount(kind: &str, source: &str, options: &[String], target: &Path) -> Result<(), String> {
    let (flags, data) = parse_options(options);
    let kind = if kind.is_empty() && flags & libc::MS_BIND != 0 {
        "none"
    } else {
        kind
    };
    sys::mount(source, target, kind, flags, &data)
        .map_err(|e| format!("mount {kind} {source} on {}: {e}", target.display()))?;
    // A read-only bind needs a remount to take effect.
    if flags & libc::MS_BIND != 0 && flags & libc::MS_RDONLY != 0 {
        sys::mount("", target, "", flags | libc::MS_REMOUNT, "")
            .map_err(|e| format!("remount {} read-only: {e}", target.display()))?;
    }
    Ok(())
}

/// Unmount everything stacked on `target` (at most a bounded number of layers).
pub fn unmount_all(target: &Path) {
    for _ in 0..16 {
        if sys::umount_detach(target).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_become_data() {
        let (flags, data) =
            parse_options(&["ro".into(), "lowerdir=/a:/b".into(), "upperdir=/u".into()]);
        assert_eq!(flags, libc::MS_RDONLY);
        assert_eq!(data, "lowerdir=/a:/b,upperdir=/u");
    }

    #[test]
    fn rbind() {
        let (flags, data) = parse_options(&["rbind".into(), "rw".into()]);
        assert_eq!(flags, libc::MS_BIND | libc::MS_REC);
        assert!(data.is_empty());
    }
}
