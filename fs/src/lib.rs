//! berth-fs: the one audited place where Berth resolves a path that comes from an image,
//! a container, a build context or a request.
//!
//! Such a path is never joined onto a host path. Its root (an image's layers, a
//! container's file system, a volume, a build context) is opened once as a directory
//! descriptor, a [`Root`]; every path below it is resolved by the kernel with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, which treats the descriptor as `/`
//! for `..` and for absolute symlinks and refuses `/proc/PID/root`-style magic links.
//! What is resolved is a descriptor; the last component is then read or created
//! relative to it with `*at` calls that follow nothing (`O_NOFOLLOW`, `O_EXCL`,
//! `AT_SYMLINK_NOFOLLOW`), and metadata is set on the opened descriptor. A container
//! that swaps a directory for a symlink at any moment can make a call fail or land
//! elsewhere inside the same root, never outside it.
//!
//! - [`clean`]: container paths made canonical as dockerd makes them (Go's
//!   `filepath.Clean`).
//! - [`root`]: the resolver and the descriptor-relative primitives.
//! - [`copy`]: a tree copied from one root into another (volume copy-up).
//! - [`view`]: an image's layers seen as one read-only root (a detached overlay), or
//!   writable over a new layer's directory.
//! - [`ignore`]: `.dockerignore` patterns, which paths of a build context are left out.
//! - [`untar`]: an untrusted tar stream unpacked inside a root, by the policy of its
//!   caller (image layers, `docker cp` into a container, `berth cp` into a host
//!   directory, `docker load`).
//! - [`tar_out`]: a tree inside a root written as a tar stream, from descriptors.
//! - [`tree`]: a tree held in memory (a build context's index), looked up by the same
//!   `RESOLVE_IN_ROOT` rules; it names no host file at all.
//!
//! What this crate must not do: build a host path from an untrusted path, follow a
//! symlink it did not resolve inside its root, or read an unbounded amount from an
//! untrusted file.

pub mod clean;
pub mod copy;
mod error;
pub mod ignore;
pub mod root;
pub mod tar_out;
pub mod tree;
pub mod untar;
pub mod view;

pub use error::{Error, Refusal, Result};
pub use root::Root;
