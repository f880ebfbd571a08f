//! /dev inside the container: the runtime spec's default devices, `linux.devices`, and the
//! standard /dev symlinks.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::secure_path::{fd_path, resolve, Create};
use crate::error::{Context, Result, RuntimeError};

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Absolute path inside the container.
    pub path: String,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: SFlag,
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid, inside the container.
    pub uid: u32,
    /// Owner gid, inside the container.
    pub gid: u32,
}

/// The devices every container gets (runtime spec, config-linux.md "Default Devices").
pub fn defaults() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| DeviceNode {
        path: format!("/dev/{name}"),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// The node for an entry of `linux.devices`.
pub fn from_spec(device: &LinuxDevice) -> Result<DeviceNode> {
    let kind = match device.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(RuntimeError::InvalidConfig(format!(
                "device {}: type \"a\" is only valid in cgroup rules",
                device.path().display()
            )))
        }
    };
    let path = device.path().to_string_lossy().into_owned();
    if !path.starts_with("/dev/") {
        return Err(RuntimeError::InvalidConfig(format!(
            "device {path} must be under /dev"
        )));
    }
    Ok(DeviceNode {
        path,
        kind,
        major: device.major() as u64,
        minor: device.minor() as u64,
        mode: device.file_mode().unwrap_or(0o666) & 0o7777,
        uid: device.uid().unwrap_or(0),
        gid: device.gid().unwrap_or(0),
    })
}

/// Create a device node inside the root. In a user namespace mknod is not allowed, so the
/// host's node is bind-mounted instead, as runc does.
pub fn create(root: &impl AsFd, node: &DeviceNode, bind_from_host: bool) -> Result<()> {
    let path = Path::new(&node.path);
    if bind_from_host {
        let target = resolve(root, path, Create::File)?;
        return mount(
            Some(path),
            &fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind-mount device {}", node.path));
    }
    let parent = resolve(
        root,
        path.parent().unwrap_or(Path::new("/dev")),
        Create::Dir,
    )?;
    let name = path
        .file_name()
        .ok_or_else(|| RuntimeError::InvalidConfig(format!("bad device path {}", node.path)))?;
    // Anything already there (an image's stale node, a file) is replaced.
    let _ = nix::unistd::unlinkat(
        Some(parent.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    // mknodat cannot take an O_PATH directory, so go through /proc/self/fd.
    let dir = fd_path(&parent);
    mknodat(
        None,
        &dir.join(name),
        node.kind,
        Mode::from_bits_truncate(node.mode),
        makedev(node.major, node.minor),
    )
    .with_context(|| format!("create device {}", node.path))?;
    nix::unistd::chown(
        &dir.join(name),
        Some(node.uid.into()),
        Some(node.gid.into()),
    )
    .with_context(|| format!("chown device {}", node.path))?;
    Ok(())
}

/// The /dev symlinks runc and Docker provide.
pub fn create_symlinks(root: &impl AsFd) -> Result<()> {
    let dev = resolve(root, Path::new("/dev"), Create::Dir)?;
    let dir = fd_path(&dev);
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        if name == "ptmx" {
            // Always point ptmx at the container's own devpts instance.
            let _ = std::fs::remove_file(dir.join(name));
        }
        match nix::unistd::symlinkat(target, None, &dir.join(name)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("create /dev/{name} symlink")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    #[test]
    fn default_devices_are_the_spec_six() {
        let names: Vec<_> = defaults().into_iter().map(|d| d.path).collect();
        assert_eq!(
            names,
            [
                "/dev/null",
                "/dev/zero",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
    }

    #[test]
    fn spec_devices_translate_and_validate() {
        let fuse = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .file_mode(0o20660u32)
            .uid(5u32)
            .build()
            .unwrap();
        let node = from_spec(&fuse).unwrap();
        assert_eq!(
            (node.kind, node.major, node.minor, node.mode, node.uid),
            (SFlag::S_IFCHR, 10, 229, 0o660, 5)
        );

        let outside = LinuxDeviceBuilder::default()
            .path("/etc/x")
            .typ(LinuxDeviceType::C)
            .build()
            .unwrap();
        assert!(from_spec(&outside)
            .unwrap_err()
            .to_string()
            .contains("must be under /dev"));
        let all = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::A)
            .build()
            .unwrap();
        assert!(from_spec(&all).is_err());
    }
}
