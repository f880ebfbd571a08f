//! Mount option strings (`"ro"`, `"rbind"`, `"mode=755"`) turned into mount(2) flags.

use nix::mount::MsFlags;

/// A mount's options, split the way mount(2) wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount (or, for bind mounts, the remount that follows it).
    pub flags: MsFlags,
    /// Propagation changes, applied one by one after the mount.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options (`mode=755,size=64k`), passed as mount data.
    pub data: Vec<String>,
    /// A bind mount (`bind`, or `rbind` which also sets `recursive`).
    pub bind: bool,
    /// `rbind`: bind the whole subtree.
    pub recursive: bool,
    /// `tmpcopyup` (runc's extension, used by podman `--read-only`): a tmpfs that starts
    /// with a copy of what the image had at the mount point.
    pub copy_up: bool,
}

impl MountOptions {
    /// Parse a mount's option list. Unknown words are filesystem data, as runc treats them.
    pub fn parse(options: &[String]) -> Self {
        let mut out = Self {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            bind: false,
            recursive: false,
            copy_up: false,
        };
        for option in options {
            let (set, clear): (MsFlags, MsFlags) = match option.as_str() {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
                "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
                "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
                "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
                "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
                "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
                "bind" => {
                    out.bind = true;
                    continue;
                }
                "rbind" => {
                    out.bind = true;
                    out.recursive = true;
                    continue;
                }
                "tmpcopyup" => {
                    out.copy_up = true;
                    continue;
                }
                other => {
                    if let Some(flag) = propagation(other) {
                        out.propagation.push(flag);
                    } else {
                        out.data.push(other.to_string());
                    }
                    continue;
                }
            };
            out.flags.insert(set);
            out.flags.remove(clear);
        }
        out
    }

    /// The data argument for mount(2), if any.
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// The propagation flag for a name (`rprivate`, `shared`, ...), as used both in mount
/// options and in `linux.rootfsPropagation`.
pub fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[&str]) -> MountOptions {
        MountOptions::parse(&options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_bind_are_separated() {
        let opts = parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(opts.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(opts.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert!(!opts.bind);

        let opts = parse(&["rbind", "ro", "rprivate"]);
        assert!(opts.bind && opts.recursive);
        assert_eq!(opts.flags, MsFlags::MS_RDONLY);
        assert_eq!(
            opts.propagation,
            vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]
        );
        assert_eq!(opts.data_string(), None);

        let opts = parse(&["rw", "nosuid", "tmpcopyup"]);
        assert!(opts.copy_up && !opts.bind);
        assert_eq!(opts.flags, MsFlags::MS_NOSUID);
        assert_eq!(opts.data_string(), None, "tmpcopyup is not for the kernel");
    }

    #[test]
    fn later_options_override_earlier_ones() {
        assert_eq!(parse(&["ro", "rw"]).flags, MsFlags::empty());
        assert_eq!(parse(&["rw", "ro"]).flags, MsFlags::MS_RDONLY);
        assert_eq!(
            parse(&["nosuid", "suid", "noexec"]).flags,
            MsFlags::MS_NOEXEC
        );
    }

    #[test]
    fn propagation_names() {
        assert_eq!(
            propagation("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation("shared"), Some(MsFlags::MS_SHARED));
        assert_eq!(propagation("bogus"), None);
    }
}
