//! berth-engine: the engine behind `berthd`, serving the Docker Engine API.
//!
//! This crate owns images: the content store (`content`), unpacked layers
//! (`snapshots`, via `archive`), registry access (`registry`), image metadata and
//! operations (`images`) and the HTTP API (`api`). It does not run containers: that is
//! berth-supervisor's job, reached over its gRPC API.

#![recursion_limit = "256"]

pub mod api;
pub mod archive;
pub mod config;
pub mod content;
pub mod daemon;
pub mod images;
pub mod progress;
pub mod registry;
pub mod snapshots;
pub mod streams;
