//! `pause` and `resume`: freeze and thaw every process of the container (the freezer
//! controller on v1, cgroup.freeze on v2).

use super::{Container, Status};
use crate::cgroups::Cgroup;
use crate::error::{Result, RuntimeError};

impl Container {
    /// Freeze a running container.
    pub fn pause(&self) -> Result<()> {
        self.require(Status::Running, "pause", "running")?;
        Cgroup::of(&self.state)?.set_frozen(true)
    }

    /// Thaw a paused container.
    pub fn resume(&self) -> Result<()> {
        self.require(Status::Paused, "resume", "paused")?;
        Cgroup::of(&self.state)?.set_frozen(false)
    }

    /// Fail unless the container is in `wanted`.
    pub(crate) fn require(
        &self,
        wanted: Status,
        action: &'static str,
        name: &'static str,
    ) -> Result<()> {
        let status = self.status();
        if status == wanted {
            Ok(())
        } else {
            Err(RuntimeError::WrongStatus {
                id: self.state.id.clone(),
                status: status.to_string(),
                action,
                wanted: name,
            })
        }
    }
}
