//! berth-engine: the engine behind `berthd`, serving the Docker Engine API.
//!
//! This crate owns images: the content store (`content`), unpacked layers
//! (`snapshots`, via `archive`), registry access (`registry`), image metadata and
//! operations (`images`), the HTTP API (`api`) and where it is served (`listen`: unix
//! sockets, TCP, TLS). Containers (`containers`) run through
//! berth-supervisor, reached over its gRPC API; nothing here runs an OCI runtime. The
//! Kubernetes CRI (`cri`) is a thin adapter over the same images and supervisor.

#![recursion_limit = "256"]

pub mod api;
pub mod archive;
pub mod build;
pub mod config;
pub mod containers;
pub mod content;
pub mod cri;
pub mod daemon;
pub mod disk_usage;
pub mod fuzzing;
pub mod images;
pub mod listen;
pub mod networks;
pub mod progress;
pub mod registry;
pub mod snapshots;
pub mod streams;

/// redb's own page cache for each of berthd's databases (images, networks). redb caches
/// every page it reads, up to 1 GiB by default; these databases are small, and their
/// files' pages stay in the kernel's page cache anyway.
pub const REDB_CACHE_BYTES: usize = 256 << 10;
