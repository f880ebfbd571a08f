//! A file tree held in memory: what an untrusted tar holds (a build context), indexed
//! without writing it out, and resolved by the kernel's `RESOLVE_IN_ROOT` rules.
//!
//! A path is looked up one component at a time from the root node: `..` at the root
//! stays at the root, a symlink's target is followed from the root when absolute and
//! from its directory otherwise, at most [`MAX_SYMLINKS`] times (`ELOOP` after, as the
//! kernel), a component that is not a directory is `ENOTDIR`, a missing one `ENOENT`.
//! Nothing here touches the host: a node is a name in memory, so no path of the tar can
//! name a host file, whatever its symlinks say. What the nodes' contents are (offsets
//! in a spool file, for a context) is the caller's.

use nix::errno::Errno;
use std::collections::BTreeMap;

/// A node's index in its tree.
pub type NodeId = usize;

/// The root directory's node.
pub const ROOT: NodeId = 0;

/// How many symlinks one lookup follows before it fails with `ELOOP` (Linux's limit).
pub const MAX_SYMLINKS: usize = 40;

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file: where its content is in the caller's store, and its length.
    File {
        /// Offset of the content.
        offset: u64,
        /// Length of the content.
        len: u64,
    },
    /// A symbolic link and its target, as written.
    Symlink(Vec<u8>),
    /// A named pipe.
    Fifo,
}

/// A node's owner, mode and time, as its tar header gave them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (and set-id, sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

impl Meta {
    /// What a directory the tar never named gets (as `mkdir -p` under umask 022 would
    /// make it, owned by root): a parent of named entries.
    pub fn implicit_dir(now: i64) -> Self {
        Self {
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: now,
        }
    }
}

/// One file, directory, symlink or pipe.
#[derive(Debug, Clone)]
pub struct Node {
    /// What it is.
    pub kind: Kind,
    /// Its owner, mode and time.
    pub meta: Meta,
    /// Nodes with the same number are hard links of one file.
    pub link_group: Option<usize>,
    parent: NodeId,
    name: String,
    children: BTreeMap<String, NodeId>,
}

/// A tree of nodes under one root directory. Replaced and removed nodes stay in the
/// arena (hard links may still share their content) but are no longer reachable.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    link_groups: usize,
}

impl Tree {
    /// An empty tree whose root directory has `root_meta`.
    pub fn new(root_meta: Meta) -> Self {
        Self {
            nodes: vec![Node {
                kind: Kind::Dir,
                meta: root_meta,
                link_group: None,
                parent: ROOT,
                name: String::new(),
                children: BTreeMap::new(),
            }],
            link_groups: 0,
        }
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// The node `id`, to change its metadata.
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id]
    }

    /// The directory `dir`'s entries, by name in byte order.
    pub fn children(&self, dir: NodeId) -> impl Iterator<Item = (&str, NodeId)> {
        self.nodes[dir]
            .children
            .iter()
            .map(|(n, id)| (n.as_str(), *id))
    }

    /// The entry `name` of the directory `dir`, not followed.
    pub fn child(&self, dir: NodeId, name: &str) -> Option<NodeId> {
        self.nodes[dir].children.get(name).copied()
    }

    /// Where `id` is, relative to the root (`.` for the root), through its parents.
    pub fn path(&self, id: NodeId) -> String {
        let mut parts = Vec::new();
        let mut at = id;
        while at != ROOT {
            parts.push(self.nodes[at].name.as_str());
            at = self.nodes[at].parent;
        }
        if parts.is_empty() {
            return ".".into();
        }
        parts.reverse();
        parts.join("/")
    }

    /// Looks `path` up from the root; `follow_last`: whether a symlink as its last
    /// component is followed. A path ending in `/` must name a directory.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<NodeId, Errno> {
        self.resolve_at(ROOT, path, follow_last, &mut 0)
    }

    /// Looks `path` up from the directory `start` (an absolute symlink target still
    /// starts again at the root), `hops` symlinks having been followed already.
    fn resolve_at(
        &self,
        start: NodeId,
        path: &str,
        follow_last: bool,
        hops: &mut usize,
    ) -> Result<NodeId, Errno> {
        let mut walk = Walk::new(path);
        let mut dir = start;
        while let Some((component, last)) = walk.next() {
            match component.as_str() {
                "" | "." => continue,
                ".." => {
                    dir = self.nodes[dir].parent;
                    continue;
                }
                _ => {}
            }
            if self.nodes[dir].kind != Kind::Dir {
                return Err(Errno::ENOTDIR);
            }
            let id = self.child(dir, &component).ok_or(Errno::ENOENT)?;
            match &self.nodes[id].kind {
                Kind::Symlink(target) if !last || follow_last || walk.trailing_slash => {
                    *hops += 1;
                    if *hops > MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = String::from_utf8_lossy(target);
                    if target.starts_with('/') {
                        dir = ROOT;
                    }
                    walk.push_front(&target);
                }
                _ if last => {
                    if walk.trailing_slash && self.nodes[id].kind != Kind::Dir {
                        return Err(Errno::ENOTDIR);
                    }
                    return Ok(id);
                }
                _ if self.nodes[id].kind != Kind::Dir => return Err(Errno::ENOTDIR),
                _ => dir = id,
            }
        }
        // Only `.`, `..` and empty components (or a symlink to such): the directory
        // reached.
        Ok(dir)
    }

    /// The directory `path`, made with `meta` where missing, symlinks on the way
    /// followed as [`Tree::resolve`] follows them (`mkdir -p`). A component that is not
    /// a directory is `ENOTDIR`, a dangling symlink `ENOENT`.
    pub fn mkdir_all(&mut self, path: &str, meta: Meta) -> Result<NodeId, Errno> {
        // One component at a time from the directory reached so far, the symlinks
        // followed on the way counted over the whole path: what resolving each longer
        // prefix from the root would give, in time linear in the path.
        let mut dir = ROOT;
        let mut hops = 0;
        for component in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            dir = match self.resolve_at(dir, component, true, &mut hops) {
                Err(Errno::ENOENT) if component != ".." => {
                    match self.child(dir, component) {
                        // There, but a dangling symlink: as the kernel, ENOENT.
                        Some(_) => return Err(Errno::ENOENT),
                        None => self.insert(dir, component, Kind::Dir, meta),
                    }
                }
                Err(e) => return Err(e),
                Ok(id) if self.nodes[id].kind != Kind::Dir => return Err(Errno::ENOTDIR),
                Ok(id) => id,
            };
        }
        Ok(dir)
    }

    /// Puts a node named `name` in the directory `dir`. What was there is replaced,
    /// with everything below it, except that a directory put over a directory keeps
    /// the old one's entries (it takes the new metadata). Returns the node.
    pub fn insert(&mut self, dir: NodeId, name: &str, kind: Kind, meta: Meta) -> NodeId {
        if let Some(old) = self.child(dir, name) {
            if kind == Kind::Dir && self.nodes[old].kind == Kind::Dir {
                self.nodes[old].meta = meta;
                return old;
            }
        }
        let id = self.nodes.len();
        self.nodes.push(Node {
            kind,
            meta,
            link_group: None,
            parent: dir,
            name: name.to_string(),
            children: BTreeMap::new(),
        });
        self.nodes[dir].children.insert(name.to_string(), id);
        id
    }

    /// A hard link to `target` named `name` in `dir`: a node sharing its content and
    /// metadata, in its link group. A directory cannot be linked (`EPERM`). A link
    /// over its own target fails with `ENOENT` and leaves neither: an unpacker removes
    /// the name before it links.
    pub fn hard_link(&mut self, target: NodeId, dir: NodeId, name: &str) -> Result<NodeId, Errno> {
        if self.nodes[target].kind == Kind::Dir {
            return Err(Errno::EPERM);
        }
        if self.child(dir, name) == Some(target) {
            self.remove(dir, name);
            return Err(Errno::ENOENT);
        }
        let group = match self.nodes[target].link_group {
            Some(g) => g,
            None => {
                self.link_groups += 1;
                self.nodes[target].link_group = Some(self.link_groups);
                self.link_groups
            }
        };
        let (kind, meta) = (self.nodes[target].kind.clone(), self.nodes[target].meta);
        let id = self.insert(dir, name, kind, meta);
        self.nodes[id].link_group = Some(group);
        Ok(id)
    }

    /// Takes the entry `name` out of `dir` (with everything below it).
    pub fn remove(&mut self, dir: NodeId, name: &str) {
        self.nodes[dir].children.remove(name);
    }

    /// Every node reachable below `dir` (not `dir` itself), depth first, entries in
    /// byte order, symlinks not entered: `(path relative to the root, node)`.
    pub fn walk(&self, dir: NodeId) -> Vec<(String, NodeId)> {
        let mut out = Vec::new();
        let base = match dir {
            ROOT => String::new(),
            d => self.path(d),
        };
        // Iterative, so that no depth of nesting can overflow the stack: each entry
        // of the stack is a directory's remaining entries, in reverse byte order.
        let below = |d: NodeId, at: &str| -> Vec<(String, NodeId)> {
            let mut v: Vec<(String, NodeId)> = self
                .children(d)
                .map(|(name, id)| {
                    let rel = if at.is_empty() {
                        name.to_string()
                    } else {
                        format!("{at}/{name}")
                    };
                    (rel, id)
                })
                .collect();
            v.reverse();
            v
        };
        let mut stack = vec![below(dir, &base)];
        while let Some(top) = stack.last_mut() {
            let Some((rel, id)) = top.pop() else {
                stack.pop();
                continue;
            };
            if self.nodes[id].kind == Kind::Dir {
                let next = below(id, &rel);
                out.push((rel, id));
                stack.push(next);
            } else {
                out.push((rel, id));
            }
        }
        out
    }
}

/// The components of a path still to look up, with the targets of followed symlinks
/// spliced in front.
struct Walk {
    /// Reversed: the next component is last.
    pending: Vec<String>,
    /// Whether the path as given ended in `/`.
    trailing_slash: bool,
}

impl Walk {
    fn new(path: &str) -> Self {
        let mut w = Self {
            pending: Vec::new(),
            trailing_slash: path.ends_with('/') && path.len() > 1,
        };
        w.push_front(path);
        w
    }

    fn push_front(&mut self, path: &str) {
        self.pending.extend(
            path.split('/')
                .filter(|c| !c.is_empty())
                .rev()
                .map(str::to_string),
        );
    }

    /// The next component and whether it is the last one.
    fn next(&mut self) -> Option<(String, bool)> {
        let c = self.pending.pop()?;
        Some((c, self.pending.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
        }
    }

    fn file(t: &mut Tree, path: &str) -> NodeId {
        let (parent, name) = path.rsplit_once('/').unwrap_or((".", path));
        let dir = t.mkdir_all(parent, Meta::implicit_dir(0)).unwrap();
        t.insert(dir, name, Kind::File { offset: 0, len: 0 }, meta())
    }

    fn link(t: &mut Tree, path: &str, target: &str) -> NodeId {
        let (parent, name) = path.rsplit_once('/').unwrap_or((".", path));
        let dir = t.mkdir_all(parent, Meta::implicit_dir(0)).unwrap();
        t.insert(dir, name, Kind::Symlink(target.as_bytes().to_vec()), meta())
    }

    #[test]
    fn lookups_stay_inside_the_root() {
        let mut t = Tree::new(Meta::implicit_dir(0));
        let f = file(&mut t, "etc/passwd");
        assert_eq!(t.resolve("etc/passwd", true), Ok(f));
        assert_eq!(t.resolve("/../../etc/./passwd", true), Ok(f));
        assert_eq!(t.resolve("etc/../../../etc/passwd", true), Ok(f));
        link(&mut t, "abs", "/etc/passwd");
        link(&mut t, "up", "../../../../etc");
        link(&mut t, "rel", "etc/passwd");
        assert_eq!(t.resolve("abs", true), Ok(f));
        assert_eq!(t.resolve("up/passwd", true), Ok(f));
        assert_eq!(t.resolve("rel", true), Ok(f));
        let abs = t.resolve("abs", false).unwrap();
        assert_eq!(t.node(abs).kind, Kind::Symlink(b"/etc/passwd".to_vec()));
        assert_eq!(t.path(t.resolve("up", true).unwrap()), "etc");
        assert_eq!(t.resolve(".", true), Ok(ROOT));
        assert_eq!(t.path(ROOT), ".");
    }

    #[test]
    fn errors_are_the_kernels() {
        let mut t = Tree::new(Meta::implicit_dir(0));
        file(&mut t, "f");
        link(&mut t, "loop", "loop");
        link(&mut t, "dangling", "nowhere");
        assert_eq!(t.resolve("missing", true), Err(Errno::ENOENT));
        assert_eq!(t.resolve("f/x", true), Err(Errno::ENOTDIR));
        assert_eq!(t.resolve("f/", true), Err(Errno::ENOTDIR));
        assert_eq!(t.resolve("f/..", true), Err(Errno::ENOTDIR));
        assert_eq!(t.resolve("loop", true), Err(Errno::ELOOP));
        assert!(t.resolve("loop", false).is_ok());
        assert_eq!(t.resolve("dangling", true), Err(Errno::ENOENT));
        assert_eq!(
            t.mkdir_all("dangling/x", Meta::implicit_dir(0)),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            t.mkdir_all("f/x", Meta::implicit_dir(0)),
            Err(Errno::ENOTDIR)
        );
    }

    #[test]
    fn mkdir_all_follows_symlinks_inside() {
        let mut t = Tree::new(Meta::implicit_dir(0));
        t.mkdir_all("real", Meta::implicit_dir(0)).unwrap();
        link(&mut t, "ln", "/real");
        let d = t.mkdir_all("ln/sub", Meta::implicit_dir(0)).unwrap();
        assert_eq!(t.path(d), "real/sub");
        // A symlink out of the tree lands inside it.
        link(&mut t, "out", "/tmp/host");
        assert_eq!(
            t.mkdir_all("out/x", Meta::implicit_dir(0)),
            Err(Errno::ENOENT)
        );
    }

    #[test]
    fn replacing_and_hard_links() {
        let mut t = Tree::new(Meta::implicit_dir(0));
        let d = t.mkdir_all("d", Meta::implicit_dir(0)).unwrap();
        file(&mut t, "d/inner");
        // A directory over a directory keeps its entries and takes the new metadata.
        let again = t.insert(ROOT, "d", Kind::Dir, meta());
        assert_eq!(again, d);
        assert_eq!(t.node(d).meta, meta());
        assert!(t.resolve("d/inner", true).is_ok());
        // A file over a directory takes it and what is below.
        file(&mut t, "d");
        assert_eq!(t.resolve("d/inner", true), Err(Errno::ENOTDIR));
        let a = file(&mut t, "a");
        let b = t.hard_link(a, ROOT, "b").unwrap();
        assert_eq!(t.node(a).link_group, t.node(b).link_group);
        assert!(t.node(a).link_group.is_some());
        assert_eq!(t.hard_link(ROOT, ROOT, "c"), Err(Errno::EPERM));
        let gone = file(&mut t, "gone");
        assert_eq!(t.hard_link(gone, ROOT, "gone"), Err(Errno::ENOENT));
        assert_eq!(t.resolve("gone", false), Err(Errno::ENOENT));
        let names: Vec<String> = t.walk(ROOT).into_iter().map(|(p, _)| p).collect();
        assert_eq!(names, ["a", "b", "d"]);
        t.remove(ROOT, "a");
        assert_eq!(t.resolve("a", true), Err(Errno::ENOENT));
        assert!(t.resolve("b", true).is_ok());
    }

    #[test]
    fn deep_nesting_neither_overflows_the_stack_nor_takes_quadratic_time() {
        // As deep as a context's longest accepted name allows many times over: the
        // walk must not recurse once per level (a build's blocking thread has 2 MiB).
        const DEPTH: usize = 100_000;
        let mut t = Tree::new(Meta::implicit_dir(0));
        let path = vec!["a"; DEPTH].join("/");
        // (Resolving each longer prefix from the root again, as mkdir_all did, takes
        // hours at this depth.)
        let deepest = t.mkdir_all(&path, Meta::implicit_dir(0)).unwrap();
        assert_eq!(t.path(deepest).len(), path.len());
        let walked = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || t.walk(ROOT).pop().map(|(_, id)| id))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(walked, Some(deepest));
    }

    #[test]
    fn mkdir_all_counts_symlinks_over_the_whole_path() {
        let mut t = Tree::new(Meta::implicit_dir(0));
        t.mkdir_all("d", Meta::implicit_dir(0)).unwrap();
        for i in 0..=MAX_SYMLINKS {
            link(&mut t, &format!("d/l{i}"), "/d");
        }
        let within: Vec<String> = std::iter::once("d".to_string())
            .chain((0..MAX_SYMLINKS).map(|i| format!("l{i}")))
            .collect();
        let d = t.resolve("d", true).unwrap();
        assert_eq!(t.mkdir_all(&within.join("/"), Meta::implicit_dir(0)), Ok(d));
        let over: Vec<String> = std::iter::once("d".to_string())
            .chain((0..=MAX_SYMLINKS).map(|i| format!("l{i}")))
            .collect();
        assert_eq!(t.resolve(&over.join("/"), true), Err(Errno::ELOOP));
        assert_eq!(
            t.mkdir_all(&over.join("/"), Meta::implicit_dir(0)),
            Err(Errno::ELOOP)
        );
    }

    #[test]
    fn walk_order_is_depth_first_by_bytes() {
        let mut t = Tree::new(Meta::implicit_dir(0));
        file(&mut t, "a/b");
        file(&mut t, "a.txt");
        link(&mut t, "l", "a");
        let names: Vec<String> = t.walk(ROOT).into_iter().map(|(p, _)| p).collect();
        assert_eq!(names, ["a", "a/b", "a.txt", "l"]);
        let a = t.resolve("a", true).unwrap();
        let below: Vec<String> = t.walk(a).into_iter().map(|(p, _)| p).collect();
        assert_eq!(below, ["a/b"]);
    }
}
