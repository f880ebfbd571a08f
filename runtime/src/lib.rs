//! berth-runtime: an OCI runtime. It reads a bundle's config.json and does the kernel work
//! (namespaces, mounts, pivot_root, cgroups, capabilities, rlimits, hooks, a pty) to run a
//! container, with a command line that follows runc's so that engines can use it in runc's
//! place.
//!
//! It owns the kernel work and the per-container state under `--root`; it knows nothing of
//! images, shims or engines (those layers drive it through its command line only).
//!
//! Layout: `cli/` one file per command; `container/` state and the lifecycle verbs;
//! `process/` the clone into new namespaces, the init's set-up and the parent↔init sync
//! protocol; `rootfs/` mounts, devices and pivot_root; and one module per kernel concept.

pub mod apparmor;
pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod container;
pub mod error;
pub mod events;
pub mod hooks;
pub mod logging;
pub mod namespaces;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod terminal;
