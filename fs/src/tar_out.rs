//! A tree inside a root written as a tar stream, from descriptors: `docker cp` out of a
//! container, `berth cp` into one, and (next) layers of commits and builds.
//!
//! The walk holds each directory open and reaches its children relative to it with
//! `O_NOFOLLOW`, so a container that swaps a directory for a symlink while it is read
//! makes an entry fail or vanish, never leads the walk out of its root. A file is
//! streamed from its descriptor (a few buffers, whatever its size) and written as
//! exactly the size its header announced, however the file changes meanwhile. Names
//! are written byte for byte (GNU long-name entries past 100 bytes).

use crate::error::errno_of;
use crate::root::{kind, open_at};
use crate::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use xattr::FileExt;

/// What goes into the archive besides names, content and links.
#[derive(Debug, Clone, Copy)]
pub struct TarOptions {
    /// Owner written for every entry instead of the file's (`berth cp` without `-a`
    /// gives root).
    pub owner: Option<(u32, u32)>,
    /// A file's `security.capability` goes along, as dockerd archives it.
    pub capabilities: bool,
    /// Devices and FIFOs are archived (else skipped, as sockets always are).
    pub specials: bool,
}

impl Default for TarOptions {
    /// As dockerd writes `docker cp`'s archives.
    fn default() -> Self {
        Self {
            owner: None,
            capabilities: true,
            specials: true,
        }
    }
}

/// `parent/child` for archive entry names, byte for byte (names need not be UTF-8); an
/// empty parent gives `child`.
pub fn join_name(parent: &OsStr, child: &OsStr) -> OsString {
    let mut out = parent.as_bytes().to_vec();
    if !out.is_empty() && !out.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(child.as_bytes());
    OsString::from_vec(out)
}

fn write_err(name: &OsStr) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Write {
        path: name.to_string_lossy().into_owned(),
        errno: errno_of(&e),
    }
}

fn read_err(name: &OsStr) -> impl Fn(Errno) -> Error + '_ {
    move |errno| Error::Read {
        path: name.to_string_lossy().into_owned(),
        errno,
    }
}

/// A file's content as exactly the `left` bytes its header announced: a file that
/// shrinks while it is read is padded with zeros and one that grows is cut, as GNU tar
/// does, so that the archive stays well-formed whatever the container does meanwhile.
pub struct Exact<R> {
    /// What is read.
    pub inner: R,
    /// Bytes still to give.
    pub left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.left.min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

use crate::untar::PAX_XATTR;

/// The extended attributes of an open file or directory that go into its entry: only
/// `security.capability`, as dockerd archives (other attributes stay behind, which
/// also spares the client attributes its filesystem may refuse). A version-3 capability
/// (bound to a user namespace's root) is written as version 2, as dockerd does: that
/// root means nothing where the archive is unpacked.
fn archived_xattrs(fd: BorrowedFd<'_>) -> Vec<(String, Vec<u8>)> {
    // The xattr crate reads through a `File`; a duplicate keeps `fd` with its owner.
    let Ok(f) = fd.try_clone_to_owned().map(std::fs::File::from) else {
        return Vec::new();
    };
    match f.get_xattr("security.capability") {
        Ok(Some(mut cap)) => {
            if cap.get(3) == Some(&3) {
                cap[3] = 2;
                cap.truncate(20);
            }
            vec![(format!("{PAX_XATTR}security.capability"), cap)]
        }
        _ => Vec::new(),
    }
}

/// A PAX extended header ('x') holding `records`, for the entry named `name`.
fn pax_entry(name: &[u8], records: &[(String, Vec<u8>)]) -> (tar::Header, Vec<u8>) {
    let mut data = Vec::new();
    for (k, v) in records {
        // "LEN KEY=VALUE\n", where LEN counts the whole record, its own digits too.
        let rest = k.len() + v.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    let mut h = tar::Header::new_ustar();
    let mut hname = b"PaxHeaders.0/".to_vec();
    let base = name
        .strip_suffix(b"/")
        .unwrap_or(name)
        .rsplit(|b| *b == b'/')
        .next()
        .unwrap_or(b"");
    hname.extend_from_slice(&base[..base.len().min(80)]);
    h.as_old_mut().name[..hname.len()].copy_from_slice(&hname);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_cksum();
    (h, data)
}

/// Writes archive entries from descriptors.
pub struct TarWriter<W: Write> {
    b: tar::Builder<W>,
    opts: TarOptions,
    /// Files with more than one link already archived, by (device, inode): later
    /// names become hard links to the first, as Docker writes them.
    links: HashMap<(u64, u64), OsString>,
    bytes: u64,
}

/// A GNU long-name ('L') or long-link ('K') extension entry holding `value`.
fn long_entry(kind: u8, value: &[u8]) -> (tar::Header, Vec<u8>) {
    let mut h = tar::Header::new_gnu();
    let marker = b"././@LongLink";
    h.as_old_mut().name[..marker.len()].copy_from_slice(marker);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    let mut data = value.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    (h, data)
}

impl<W: Write> TarWriter<W> {
    /// A writer of entries into `out`.
    pub fn new(out: W, opts: TarOptions) -> Self {
        Self {
            b: tar::Builder::new(out),
            opts,
            links: HashMap::new(),
            bytes: 0,
        }
    }

    /// Bytes of file content archived so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Writes the end-of-archive blocks and flushes; the output.
    pub fn finish(self) -> Result<W> {
        let fail = write_err(OsStr::new("end of archive"));
        let mut out = self.b.into_inner().map_err(&fail)?;
        out.flush().map_err(&fail)?;
        Ok(out)
    }

    /// Appends `h` named `name` (and `link` as its link name), byte for byte as given:
    /// the tar crate's own setters normalize paths, which turns a link to `/` into `//`.
    /// `pax` records go in an extended header before it; `data` gives `size` bytes.
    fn append(
        &mut self,
        h: &mut tar::Header,
        name: &OsStr,
        link: Option<&[u8]>,
        pax: &[(String, Vec<u8>)],
        size: u64,
        data: impl Read,
    ) -> Result<()> {
        let fail = write_err(name);
        let name_bytes = name.as_bytes();
        if !pax.is_empty() {
            let (ph, pd) = pax_entry(name_bytes, pax);
            self.b.append(&ph, pd.as_slice()).map_err(&fail)?;
        }
        let name_field = h.as_old().name.len();
        if name_bytes.len() > name_field {
            let (lh, ld) = long_entry(b'L', name_bytes);
            self.b.append(&lh, ld.as_slice()).map_err(&fail)?;
        }
        let n = name_bytes.len().min(name_field);
        h.as_old_mut().name = [0; 100];
        h.as_old_mut().name[..n].copy_from_slice(&name_bytes[..n]);
        if let Some(link) = link {
            let link_field = h.as_old().linkname.len();
            if link.len() > link_field {
                let (lh, ld) = long_entry(b'K', link);
                self.b.append(&lh, ld.as_slice()).map_err(&fail)?;
            }
            let n = link.len().min(link_field);
            h.as_old_mut().linkname = [0; 100];
            h.as_old_mut().linkname[..n].copy_from_slice(&link[..n]);
        }
        h.set_size(size);
        h.set_cksum();
        self.b.append(h, data).map_err(&fail)
    }

    fn header(&self, st: &FileStat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        let (uid, gid) = self.opts.owner.unwrap_or((st.st_uid, st.st_gid));
        h.set_uid(uid as u64);
        h.set_gid(gid as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h
    }

    fn xattrs(&self, fd: BorrowedFd<'_>) -> Vec<(String, Vec<u8>)> {
        if self.opts.capabilities {
            archived_xattrs(fd)
        } else {
            Vec::new()
        }
    }

    /// A directory (opened for reading) as the entry `name/` and everything below it
    /// as `name/...`; with an empty `name`, only what is below it, named from it.
    pub fn dir(&mut self, fd: BorrowedFd<'_>, name: &OsStr) -> Result<()> {
        if !name.is_empty() {
            let st = fstat(fd.as_raw_fd()).map_err(read_err(name))?;
            let mut h = self.header(&st, tar::EntryType::Directory);
            let mut dir_name = name.as_bytes().to_vec();
            if !dir_name.ends_with(b"/") {
                dir_name.push(b'/');
            }
            let pax = self.xattrs(fd);
            self.append(
                &mut h,
                OsStr::from_bytes(&dir_name),
                None,
                &pax,
                0,
                std::io::empty(),
            )?;
        }
        let mut children = crate::root::list_dir(fd).map_err(read_err(name))?;
        children.sort();
        for child in children {
            self.entry(fd, &child, &join_name(name, &child))?;
        }
        Ok(())
    }

    /// The entry `child` of the directory `parent`, under the archive name `name`.
    /// Nothing is followed: a child swapped for a symlink meanwhile makes the open fail.
    pub fn entry(&mut self, parent: BorrowedFd<'_>, child: &OsStr, name: &OsStr) -> Result<()> {
        let fail = read_err(name);
        let st = match fstatat(
            Some(parent.as_raw_fd()),
            child,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            // Removed by the container meanwhile: not archived, as with `tar`.
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(fail(e)),
        };
        match kind(&st) {
            libc::S_IFDIR => {
                let fd = open_at(
                    parent,
                    child,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                    Mode::empty(),
                )
                .map_err(&fail)?;
                self.dir(fd.as_fd(), name)
            }
            libc::S_IFREG => {
                // O_NONBLOCK and O_NOCTTY: if the name became a FIFO or a terminal
                // meanwhile, opening it must neither hang nor take it; the fstat below
                // then refuses anything but a regular file.
                let fd: OwnedFd = open_at(
                    parent,
                    child,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
                    Mode::empty(),
                )
                .map_err(&fail)?;
                let st = fstat(fd.as_raw_fd()).map_err(&fail)?;
                if kind(&st) != libc::S_IFREG {
                    return Err(Error::WrongKind {
                        path: name.to_string_lossy().into_owned(),
                        what: "changed while being copied",
                    });
                }
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&key).cloned() {
                        let mut h = self.header(&st, tar::EntryType::Link);
                        return self.append(
                            &mut h,
                            name,
                            Some(first.as_bytes()),
                            &[],
                            0,
                            std::io::empty(),
                        );
                    }
                    self.links.insert(key, name.to_os_string());
                }
                let pax = self.xattrs(fd.as_fd());
                // Streamed from the descriptor: never more than a buffer in memory.
                let size = st.st_size.max(0) as u64;
                let data = Exact {
                    inner: std::fs::File::from(fd),
                    left: size,
                };
                let mut h = self.header(&st, tar::EntryType::Regular);
                self.append(&mut h, name, None, &pax, size, data)?;
                self.bytes += size;
                Ok(())
            }
            libc::S_IFLNK => {
                let target = readlinkat(Some(parent.as_raw_fd()), child).map_err(&fail)?;
                let mut h = self.header(&st, tar::EntryType::Symlink);
                self.append(
                    &mut h,
                    name,
                    Some(target.as_bytes()),
                    &[],
                    0,
                    std::io::empty(),
                )
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO if self.opts.specials => {
                let t = match kind(&st) {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = self.header(&st, t);
                if t != tar::EntryType::Fifo {
                    h.set_device_major(libc::major(st.st_rdev))
                        .and_then(|_| h.set_device_minor(libc::minor(st.st_rdev)))
                        .map_err(write_err(name))?;
                }
                self.append(&mut h, name, None, &[], 0, std::io::empty())
            }
            // Sockets cannot be archived; dockerd skips them too.
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::untar::{unpack, Options};
    use crate::Root;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    fn names(tar: &[u8]) -> Vec<(String, String)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), link)
            })
            .collect()
    }

    fn tar_of(dir: &Path, name: &str, opts: TarOptions) -> Vec<u8> {
        let fd = crate::root::open_at(
            Root::open(dir).unwrap().fd(),
            OsStr::new("."),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let mut w = TarWriter::new(Vec::new(), opts);
        w.dir(fd.as_fd(), OsStr::new(name)).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_tree_goes_out_and_back_in_byte_for_byte() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        let odd = OsStr::from_bytes(b"caf\xe9");
        let long = "l".repeat(150);
        std::fs::create_dir_all(s.join(odd).join(&long)).unwrap();
        std::fs::write(s.join(odd).join(&long).join(odd), "x").unwrap();
        std::fs::write(s.join("f"), "content").unwrap();
        std::fs::hard_link(s.join("f"), s.join("g")).unwrap();
        std::os::unix::fs::symlink("/", s.join("root")).unwrap();
        nix::unistd::mkfifo(&s.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        let data = tar_of(s, ".", TarOptions::default());
        let got = names(&data);
        assert_eq!(got[0], ("./".into(), String::new()));
        assert!(got.contains(&("./g".into(), "./f".into())), "{got:?}");
        assert!(got.contains(&("./root".into(), "/".into())), "{got:?}");
        let dst = tempfile::tempdir().unwrap();
        unpack(
            &Root::open(dst.path()).unwrap(),
            "/",
            data.as_slice(),
            &Options::container("/"),
        )
        .unwrap();
        let d = dst.path();
        assert_eq!(
            std::fs::read_to_string(d.join(odd).join(&long).join(odd)).unwrap(),
            "x"
        );
        assert_eq!(
            std::fs::metadata(d.join("f")).unwrap().ino(),
            std::fs::metadata(d.join("g")).unwrap().ino()
        );
        assert_eq!(std::fs::read_link(d.join("root")).unwrap(), Path::new("/"));
        assert!(d.join("fifo").exists());
        // Without specials and with a fixed owner: what `berth cp` sends.
        std::os::unix::fs::chown(s.join("f"), Some(7), Some(8)).unwrap();
        let opts = TarOptions {
            owner: Some((0, 0)),
            capabilities: false,
            specials: false,
        };
        let data = tar_of(s, "", opts);
        let got: Vec<String> = names(&data).into_iter().map(|(n, _)| n).collect();
        assert!(!got.iter().any(|n| n == "fifo" || n.is_empty()), "{got:?}");
        let mut a = tar::Archive::new(data.as_slice());
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(
                (e.header().uid().unwrap(), e.header().gid().unwrap()),
                (0, 0)
            );
        }
    }

    #[test]
    fn pax_records_count_their_own_digits_and_short_files_are_padded() {
        for vlen in [0usize, 80, 88, 89, 90, 990, 995] {
            let v = vec![b'v'; vlen];
            let recs = vec![("SCHILY.xattr.user.k".to_string(), v.clone())];
            let (h, data) = pax_entry(b"dir/name", &recs);
            let mut out = h.as_bytes().to_vec();
            out.extend_from_slice(&data);
            out.resize(out.len().div_ceil(512) * 512, 0);
            let mut fh = tar::Header::new_gnu();
            fh.set_size(0);
            fh.set_mode(0o644);
            fh.as_old_mut().name[..1].copy_from_slice(b"f");
            fh.set_cksum();
            out.extend_from_slice(fh.as_bytes());
            out.extend_from_slice(&[0; 1024]);
            let mut a = tar::Archive::new(out.as_slice());
            let mut e = a.entries().unwrap().next().unwrap().unwrap();
            let got: Vec<Vec<u8>> = e
                .pax_extensions()
                .unwrap()
                .unwrap()
                .map(|r| r.unwrap().value_bytes().to_vec())
                .collect();
            assert_eq!(got, [v], "value of {vlen} bytes");
        }
        let mut out = Vec::new();
        Exact {
            inner: &b"abc"[..],
            left: 5,
        }
        .read_to_end(&mut out)
        .unwrap();
        assert_eq!(out, b"abc\0\0");
        out.clear();
        Exact {
            inner: &b"abcdef"[..],
            left: 2,
        }
        .read_to_end(&mut out)
        .unwrap();
        assert_eq!(out, b"ab");
        assert_eq!(join_name(OsStr::new("."), OsStr::new("x")), "./x");
        assert_eq!(join_name(OsStr::new("/"), OsStr::new("x")), "/x");
        assert_eq!(join_name(OsStr::new(""), OsStr::new("x")), "x");
    }
}
