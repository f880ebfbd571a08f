//! berth-api: the one typed model of the Docker Engine API (version 1.43; berthd
//! accepts 1.24 and later) shared by berthd and the berth CLI, as dockerd and the
//! docker CLI share moby's `api/types`.
//!
//! It owns:
//! - the types, serde with Docker's JSON names, written as dockerd writes them (`null`
//!   where dockerd writes `null`, absent where it omits): [`container`], [`mount`],
//!   [`network`], and the rest of the API's resources;
//! - decoding request bodies as dockerd does, refusing what it refuses in its words
//!   ([`json`]);
//! - the checks dockerd makes once a body is decoded ([`validate`], [`mount`]'s
//!   parsers), as pure functions of the request and of [`validate::HostFacts`] that
//!   the engine gathers;
//! - the container state machine and restart policy decisions ([`state`]);
//! - small pieces both sides speak: Go durations, detach keys, signals.
//!
//! It does no I/O: no files, sockets, clocks or processes. The engine reads the body,
//! the host's facts and the image's config; this crate decides.

#[macro_use]
pub mod json;
pub mod container;
pub mod detach;
pub mod duration;
pub mod error;
pub mod events;
pub mod exec;
pub mod image;
pub mod mount;
pub mod network;
pub mod path;
pub mod signal;
pub mod state;
pub mod stats;
pub mod system;
pub mod validate;
pub mod volume;
