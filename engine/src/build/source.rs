//! What COPY and ADD read from: a directory on disk opened as a [`Root`] (an image's
//! or earlier stage's layers, ADD's downloads), or the build context's in-memory tree
//! and spool ([`Context`]). The copy is written once against [`SourceTree`]; each side
//! resolves paths inside its own root (the kernel's `RESOLVE_IN_ROOT` for a root,
//! [`berth_fs::tree`]'s same rules for the context).

use super::context::Context;
use berth_fs::root::{kind, list_dir, open_at};
use berth_fs::tree::{Kind, NodeId};
use berth_fs::Root;
use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use nix::sys::time::TimeSpec;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

/// An entry's type, owner, mode and times, as the copy needs them.
#[derive(Debug, Clone, Copy)]
pub struct SourceStat {
    /// `S_IFDIR`, `S_IFREG`, `S_IFLNK`, `S_IFIFO`, ...
    pub kind: u32,
    /// Permission bits (and set-id, sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Access time.
    pub atime: TimeSpec,
    /// Modification time.
    pub mtime: TimeSpec,
    /// For a file with other hard links: what it shares with them.
    pub link_key: Option<(u64, u64)>,
}

impl From<&FileStat> for SourceStat {
    fn from(st: &FileStat) -> Self {
        Self {
            kind: kind(st),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            atime: TimeSpec::new(st.st_atime, st.st_atime_nsec),
            mtime: TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
            link_key: (kind(st) == libc::S_IFREG && st.st_nlink > 1)
                .then_some((st.st_dev, st.st_ino)),
        }
    }
}

/// A tree a copy reads from.
pub trait SourceTree {
    /// One entry of it.
    type Entry;
    /// `rel` looked up inside the tree; `follow`: whether a symlink as its last
    /// component is followed (those on the way always are).
    fn lookup(&self, rel: &str, follow: bool) -> Result<Self::Entry, Errno>;
    /// What the entry is.
    fn stat(&self, entry: &Self::Entry) -> SourceStat;
    /// A directory's entries, by name in byte order.
    fn entries(&self, dir: &Self::Entry) -> Result<Vec<(OsString, Self::Entry)>, Errno>;
    /// A regular file's content.
    fn open(&self, file: &Self::Entry) -> Result<Box<dyn Read + '_>, Errno>;
    /// A symlink's target.
    fn read_link(&self, link: &Self::Entry) -> Result<OsString, Errno>;
}

/// An entry of a root on disk: named in a directory it was listed in, or (the
/// source itself, followed) by its path in the root.
pub enum DiskEntry {
    /// The entry `name` of the directory `dir`, not followed.
    At {
        /// The directory it was listed in.
        dir: Arc<OwnedFd>,
        /// Its name there.
        name: OsString,
        /// What it was when listed.
        st: FileStat,
    },
    /// The path `rel` of the root.
    Path {
        /// Relative to the root.
        rel: String,
        /// Whether a symlink as the last component is followed.
        follow: bool,
        /// What it was when looked up.
        st: FileStat,
    },
}

fn errno_of(e: &berth_fs::Error) -> Errno {
    e.errno().unwrap_or(Errno::EIO)
}

impl SourceTree for Root {
    type Entry = DiskEntry;

    fn lookup(&self, rel: &str, follow: bool) -> Result<DiskEntry, Errno> {
        let flags = if follow {
            OFlag::O_PATH
        } else {
            OFlag::O_PATH | OFlag::O_NOFOLLOW
        };
        let fd = self.resolve(rel, flags).map_err(|e| errno_of(&e))?;
        let st = fstat(fd.as_raw_fd())?;
        Ok(DiskEntry::Path {
            rel: rel.to_string(),
            follow,
            st,
        })
    }

    fn stat(&self, entry: &DiskEntry) -> SourceStat {
        match entry {
            DiskEntry::At { st, .. } | DiskEntry::Path { st, .. } => st.into(),
        }
    }

    fn entries(&self, dir: &DiskEntry) -> Result<Vec<(OsString, DiskEntry)>, Errno> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW;
        let fd = match dir {
            DiskEntry::At { dir, name, .. } => open_at(dir.as_fd(), name, flags, Mode::empty())?,
            DiskEntry::Path { rel, follow, .. } => {
                let flags = if *follow {
                    flags - OFlag::O_NOFOLLOW
                } else {
                    flags
                };
                self.resolve(rel, flags).map_err(|e| errno_of(&e))?
            }
        };
        let mut names = list_dir(fd.as_fd())?;
        names.sort();
        let fd = Arc::new(fd);
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let st = fstatat(
                Some(fd.as_raw_fd()),
                name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
            out.push((
                name.clone(),
                DiskEntry::At {
                    dir: fd.clone(),
                    name,
                    st,
                },
            ));
        }
        Ok(out)
    }

    fn open(&self, file: &DiskEntry) -> Result<Box<dyn Read + '_>, Errno> {
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        let fd = match file {
            DiskEntry::At { dir, name, .. } => {
                open_at(dir.as_fd(), name, flags | OFlag::O_NOFOLLOW, Mode::empty())?
            }
            DiskEntry::Path { rel, follow, .. } => {
                let flags = if *follow {
                    flags
                } else {
                    flags | OFlag::O_NOFOLLOW
                };
                self.resolve(rel, flags).map_err(|e| errno_of(&e))?
            }
        };
        // What was a regular file when listed must still be one.
        if kind(&fstat(fd.as_raw_fd())?) != libc::S_IFREG {
            return Err(Errno::ESTALE);
        }
        Ok(Box::new(std::fs::File::from(fd)))
    }

    fn read_link(&self, link: &DiskEntry) -> Result<OsString, Errno> {
        match link {
            DiskEntry::At { dir, name, .. } => readlinkat(Some(dir.as_raw_fd()), name.as_os_str()),
            DiskEntry::Path { rel, .. } => {
                let fd = self
                    .resolve(rel, OFlag::O_PATH | OFlag::O_NOFOLLOW)
                    .map_err(|e| errno_of(&e))?;
                readlinkat(Some(fd.as_raw_fd()), OsStr::new(""))
            }
        }
    }
}

impl SourceTree for Context {
    type Entry = NodeId;

    fn lookup(&self, rel: &str, follow: bool) -> Result<NodeId, Errno> {
        self.tree().resolve(rel, follow)
    }

    fn stat(&self, id: &NodeId) -> SourceStat {
        let node = self.tree().node(*id);
        let kind = match node.kind {
            Kind::Dir => libc::S_IFDIR,
            Kind::File { .. } => libc::S_IFREG,
            Kind::Symlink(_) => libc::S_IFLNK,
            Kind::Fifo => libc::S_IFIFO,
        };
        let time = TimeSpec::new(node.meta.mtime, 0);
        SourceStat {
            kind,
            mode: node.meta.mode,
            uid: node.meta.uid,
            gid: node.meta.gid,
            atime: time,
            mtime: time,
            link_key: node.link_group.map(|g| (u64::MAX, g as u64)),
        }
    }

    fn entries(&self, dir: &NodeId) -> Result<Vec<(OsString, NodeId)>, Errno> {
        if self.tree().node(*dir).kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(self
            .tree()
            .children(*dir)
            .map(|(name, id)| (OsStr::from_bytes(name.as_bytes()).to_os_string(), id))
            .collect())
    }

    fn open(&self, file: &NodeId) -> Result<Box<dyn Read + '_>, Errno> {
        match self.tree().node(*file).kind {
            Kind::File { .. } => Ok(Box::new(self.content(*file))),
            _ => Err(Errno::ESTALE),
        }
    }

    fn read_link(&self, link: &NodeId) -> Result<OsString, Errno> {
        match &self.tree().node(*link).kind {
            Kind::Symlink(target) => Ok(OsStr::from_bytes(target).to_os_string()),
            _ => Err(Errno::EINVAL),
        }
    }
}
