//! Making the container's init: the parent side (`launch`), the child side (`init`), the
//! clone that separates them, and the sync protocol between them.

mod clone;
pub mod exec;
pub mod finalize;
pub mod init;
pub mod launch;
pub mod sealed_exe;
pub mod sync;
pub mod tenant;

pub use launch::{launch, LaunchRequest};
