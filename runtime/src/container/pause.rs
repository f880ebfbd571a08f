//! `pause` and `resume`: freeze and thaw every process of the container (the freezer
//! controller on v1, cgroup.freeze on v2).

use super::{Container, Status};
use crate::error::Result;

impl Container {
    /// Freeze a running container.
    pub fn pause(&self) -> Result<()> {
        self.require("pause", &[Status::Running])?;
        self.state.cgroup()?.set_frozen(true)
    }

    /// Thaw a paused container.
    pub fn resume(&self) -> Result<()> {
        self.require("resume", &[Status::Paused])?;
        self.state.cgroup()?.set_frozen(false)
    }
}
