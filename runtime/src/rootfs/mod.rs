//! The container's root filesystem: mounts from the spec, /dev, pivot_root, and the
//! protections applied once inside (read-only root, masked and read-only paths).
//!
//! `prepare` runs in the init before pivot_root (host paths still visible), `pivot` swaps
//! the root, `finish` runs inside the new root.

pub mod cgroupfs;
pub mod copyup;
pub mod devices;
pub mod mount_options;
pub mod secure_path;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::{Mount, Spec};

use crate::error::{Context, Result, RuntimeError};
use mount_options::MountOptions;
use secure_path::{fd_path, resolve, Create};

/// What rootfs set-up needs to know beyond the spec.
pub struct RootfsContext<'a> {
    /// The spec being run.
    pub spec: &'a Spec,
    /// Absolute path of the rootfs on the host.
    pub rootfs: &'a Path,
    /// The bundle, against which relative bind sources are resolved.
    pub bundle: &'a Path,
    /// Inside a new user namespace: device nodes are bound, not made.
    pub user_ns: bool,
    /// A new cgroup namespace was made for the container.
    pub cgroup_ns: bool,
    /// Waits until the init is in its cgroup and returns its /proc/self/cgroup as read
    /// before a cgroup namespace hid the real paths.
    pub join_cgroup: &'a dyn Fn() -> Result<String>,
    /// The container has its own mount namespace. Without one (allowed, as in runc) the
    /// spec's mounts are made where the host sees them and the root is entered by chroot.
    pub mount_ns: bool,
}

/// `linux.rootfsPropagation`, checked.
pub fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    match spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    {
        None => Ok(None),
        Some(name) if name.is_empty() => Ok(None),
        Some(name) => mount_options::propagation(&name).map(Some).ok_or_else(|| {
            RuntimeError::InvalidConfig(format!("unknown rootfsPropagation {name:?}"))
        }),
    }
}

/// Mount everything the spec asks for under the rootfs. Returns a descriptor of the
/// rootfs mount, which `pivot` uses.
pub fn prepare(ctx: &RootfsContext) -> Result<OwnedFd> {
    let propagation = root_propagation(ctx.spec)?;
    // Nothing we mount may propagate back to the host.
    let base = propagation.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(None::<&str>, "/", None::<&str>, base, None::<&str>).context("set propagation of /")?;
    make_parent_private(ctx.rootfs)?;
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind-mount rootfs {}", ctx.rootfs.display()))?;
    let root = secure_path::open_root(ctx.rootfs)?;

    let mounts = ctx.spec.mounts().clone().unwrap_or_default();
    for m in &mounts {
        mount_one(ctx, &root, m)?;
    }
    if needs_dev_setup(&mounts) {
        for node in devices::defaults() {
            devices::create(&root, &node, ctx.user_ns)?;
        }
        devices::create_symlinks(&root)?;
    }
    for device in ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
    {
        devices::create(&root, &devices::from_spec(&device)?, ctx.user_ns)?;
    }
    Ok(root)
}

/// /dev is populated unless the spec bind-mounts a whole /dev from elsewhere.
fn needs_dev_setup(mounts: &[Mount]) -> bool {
    !mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || MountOptions::parse(&m.options().clone().unwrap_or_default()).bind)
    })
}

/// pivot_root needs the rootfs's parent mount to be private; walk up to the mount point.
/// The walk starts at the rootfs itself: when it is a mount of its own (an engine's
/// overlay), that mount is the parent of the bind mount made on it next, and with a
/// shared root propagation (`rshared`, for bidirectional volumes) it would otherwise
/// stay shared and pivot_root would fail with EINVAL, as runc's
/// rootfsParentMountPrivate avoids.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mut path = rootfs.to_path_buf();
    loop {
        match mount(
            None::<&str>,
            &path,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) if path != Path::new("/") => {
                path = path.parent().unwrap_or(Path::new("/")).to_path_buf();
            }
            Err(e) => return Err(e).with_context(|| format!("make {} private", path.display())),
        }
    }
}

/// Flags that a bind remount must keep: in a user namespace the kernel refuses to clear
/// flags locked on the source mount.
fn locked_flags(path: &Path) -> MsFlags {
    let Ok(stat) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = stat.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

fn mount_one(ctx: &RootfsContext, root: &OwnedFd, m: &Mount) -> Result<()> {
    let dest = m.destination();
    let opts = MountOptions::parse(&m.options().clone().unwrap_or_default());
    let fs_type = m.typ().clone().unwrap_or_default();
    let is_bind = opts.bind || fs_type == "bind";

    if is_bind {
        let source = m.source().clone().ok_or_else(|| {
            RuntimeError::InvalidConfig(format!("bind mount on {} has no source", dest.display()))
        })?;
        let source = if source.is_absolute() {
            source
        } else {
            ctx.bundle.join(source)
        };
        let meta = std::fs::metadata(&source).with_context(|| {
            format!(
                "bind mount source {} for {}",
                source.display(),
                dest.display()
            )
        })?;
        let target = resolve(
            root,
            dest,
            if meta.is_dir() {
                Create::Dir
            } else {
                Create::File
            },
        )?;
        let rec = if opts.recursive {
            MsFlags::MS_REC
        } else {
            MsFlags::empty()
        };
        mount(
            Some(&source),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .with_context(|| format!("bind-mount {} on {}", source.display(), dest.display()))?;
        let mounted = resolve(root, dest, Create::Nothing)?;
        if !opts.flags.is_empty() {
            let flags = opts.flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rec;
            let keep = locked_flags(&source) & !MsFlags::MS_RDONLY;
            mount(
                None::<&str>,
                &fd_path(&mounted),
                None::<&str>,
                flags | keep,
                None::<&str>,
            )
            .with_context(|| format!("remount bind mount {}", dest.display()))?;
        }
        return apply_propagation(&mounted, &opts, dest);
    }

    if fs_type == "cgroup" {
        let own = (ctx.join_cgroup)()?;
        return cgroupfs::mount_cgroups(root, dest, opts.flags, ctx.cgroup_ns, &own);
    }

    let target = resolve(root, dest, Create::Dir)?;
    let source = m
        .source()
        .clone()
        .unwrap_or_else(|| PathBuf::from(&fs_type));
    let data = opts.data_string();
    let result = mount(
        Some(&source),
        &fd_path(&target),
        Some(fs_type.as_str()),
        opts.flags,
        data.as_deref(),
    );
    match result {
        Ok(()) => {}
        // Without its own network (sysfs) or IPC (mqueue) namespace, a user namespace may
        // not mount these; show the host's read-only instead, as runc does.
        Err(Errno::EPERM) if ctx.user_ns && (fs_type == "sysfs" || fs_type == "mqueue") => {
            let host = if fs_type == "sysfs" {
                "/sys"
            } else {
                "/dev/mqueue"
            };
            mount(
                Some(host),
                &fd_path(&target),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_context(|| format!("bind-mount {host} on {}", dest.display()))?;
        }
        Err(e) => {
            return Err(e).with_context(|| format!("mount {fs_type} on {}", dest.display()));
        }
    }
    let mounted = resolve(root, dest, Create::Nothing)?;
    if opts.copy_up && fs_type == "tmpfs" {
        // `target` still names the image's directory under the new tmpfs.
        copyup::copy_tree(&target, &mounted)?;
    }
    apply_propagation(&mounted, &opts, dest)
}

fn apply_propagation(target: &impl AsFd, opts: &MountOptions, dest: &Path) -> Result<()> {
    for flag in &opts.propagation {
        mount(
            None::<&str>,
            &fd_path(target),
            None::<&str>,
            *flag,
            None::<&str>,
        )
        .with_context(|| format!("set propagation of {}", dest.display()))?;
    }
    Ok(())
}

/// Make the rootfs `/` and drop the host's mounts from view (chroot when the container
/// shares the host's mount namespace: pivot_root there would move the host's root).
pub fn pivot(root: &OwnedFd, mount_ns: bool, no_pivot: bool) -> Result<()> {
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(root)).context("chdir to rootfs")?;
    if mount_ns && no_pivot {
        // `--no-pivot` (roots on ramfs, where pivot_root is refused): move the rootfs
        // mount over / and chroot into it, as runc does.
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .context("move rootfs to /")?;
        nix::unistd::chroot(".").context("chroot to rootfs")?;
        return nix::unistd::chdir("/").context("chdir to /");
    }
    if !mount_ns {
        nix::unistd::chroot(".").context("chroot to rootfs")?;
        return nix::unistd::chdir("/").context("chdir to /");
    }
    // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "."
    // then removes exactly the old root without needing a directory for it. Which of
    // the two "." names after the call is the kernel's business: the old root is
    // entered explicitly (as runc does), or the rslave below would land on the new
    // root and turn its shared volumes (bidirectional propagation) into slaves.
    let old_root = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .context("open the old root")?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let old_root = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(old_root) };
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&old_root))
        .context("chdir to the old root")?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("make old root a slave")?;
    umount2(".", MntFlags::MNT_DETACH).context("unmount old root")?;
    nix::unistd::chdir("/").context("chdir to /")
}

/// Inside the new root: propagation, sysctls, read-only and masked paths, read-only root.
pub fn finish(spec: &Spec, mount_ns: bool) -> Result<()> {
    if let Some(flags) = root_propagation(spec)?.filter(|_| mount_ns) {
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .context("set rootfs propagation")?;
    }
    let linux = spec.linux().as_ref();
    if let Some(sysctls) = linux.and_then(|l| l.sysctl().as_ref()) {
        for (key, value) in sysctls {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            std::fs::write(&path, value).with_context(|| format!("set sysctl {key}={value}"))?;
        }
    }
    let root = secure_path::open_root(Path::new("/"))?;
    for path in linux
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default()
    {
        readonly_path(&root, Path::new(&path))?;
    }
    for path in linux
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default()
    {
        mask_path(&root, Path::new(&path))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | locked_flags(Path::new("/"));
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .context("remount rootfs read-only")?;
    }
    Ok(())
}

fn resolve_existing(root: &OwnedFd, path: &Path) -> Result<Option<OwnedFd>> {
    match resolve(root, path, Create::Nothing) {
        Ok(fd) => Ok(Some(fd)),
        Err(RuntimeError::Sys {
            source: Errno::ENOENT,
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Bind a path onto itself read-only. Missing paths are skipped: specs list paths that
/// not every kernel has.
fn readonly_path(root: &OwnedFd, path: &Path) -> Result<()> {
    let Some(target) = resolve_existing(root, path)? else {
        return Ok(());
    };
    let at = fd_path(&target);
    mount(
        Some(&at),
        &at,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind {} for read-only", path.display()))?;
    let Some(mounted) = resolve_existing(root, path)? else {
        return Ok(());
    };
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_REC
        | locked_flags(&fd_path(&mounted));
    mount(
        None::<&str>,
        &fd_path(&mounted),
        None::<&str>,
        flags,
        None::<&str>,
    )
    .with_context(|| format!("make {} read-only", path.display()))
}

/// Hide a path: an empty read-only tmpfs over directories, /dev/null over files.
fn mask_path(root: &OwnedFd, path: &Path) -> Result<()> {
    let Some(target) = resolve_existing(root, path)? else {
        return Ok(());
    };
    let at = fd_path(&target);
    let result = if secure_path::is_dir(&target)? {
        mount(
            Some("tmpfs"),
            &at,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            &at,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    result.with_context(|| format!("mask {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::MountBuilder;

    fn m(dest: &str, typ: &str, options: &[&str]) -> Mount {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    }

    #[test]
    fn dev_is_populated_unless_bind_mounted() {
        assert!(needs_dev_setup(&[m("/dev", "tmpfs", &["nosuid"])]));
        assert!(needs_dev_setup(&[]));
        assert!(!needs_dev_setup(&[m("/dev", "none", &["rbind"])]));
        assert!(!needs_dev_setup(&[m("/dev", "bind", &[])]));
    }
}
