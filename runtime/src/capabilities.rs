//! Capability sets from `process.capabilities`, applied with the caps crate.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities as OciCaps, LinuxCapabilities};

use crate::error::{Result, RuntimeError};

/// The five capability sets a process should end up with.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CapabilityPlan {
    /// Bounding set: everything else is dropped from it.
    pub bounding: CapsHashSet,
    /// Effective set.
    pub effective: CapsHashSet,
    /// Permitted set.
    pub permitted: CapsHashSet,
    /// Inheritable set.
    pub inheritable: CapsHashSet,
    /// Ambient set.
    pub ambient: CapsHashSet,
}

/// Translate OCI names to caps; names this kernel or the caps crate does not know are
/// skipped with a warning, as runc does, so newer configs still run on older hosts.
/// The capabilities this kernel knows, probed once per process (one prctl per
/// capability, so not once per name).
fn supported() -> &'static CapsHashSet {
    static SUPPORTED: std::sync::OnceLock<CapsHashSet> = std::sync::OnceLock::new();
    SUPPORTED.get_or_init(caps::runtime::thread_all_supported)
}

fn translate(set: &Option<OciCaps>) -> CapsHashSet {
    let mut out = HashSet::new();
    for cap in set.iter().flatten() {
        let name = format!("CAP_{cap}");
        match Capability::from_str(&name) {
            Ok(c) if supported().contains(&c) => {
                out.insert(c);
            }
            _ => tracing::warn!("ignoring capability {name}: not supported on this kernel"),
        }
    }
    out
}

impl CapabilityPlan {
    /// The plan for a spec's capabilities (no capabilities at all when absent).
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> Self {
        let Some(caps) = caps else {
            return Self::default();
        };
        Self {
            bounding: translate(caps.bounding()),
            effective: translate(caps.effective()),
            permitted: translate(caps.permitted()),
            inheritable: translate(caps.inheritable()),
            ambient: translate(caps.ambient()),
        }
    }

    /// Capabilities the plan wants in a process set that the runtime itself cannot grant
    /// (not in its own bounding set: CAP_SYS_RESOURCE on these hosts), checked up front
    /// so that the error names them instead of a bare EPERM.
    pub fn unavailable(&self) -> Vec<Capability> {
        let have = caps::read(None, CapSet::Bounding).unwrap_or_default();
        let mut missing: Vec<Capability> = self
            .permitted
            .iter()
            .chain(&self.effective)
            .chain(&self.inheritable)
            .chain(&self.ambient)
            .filter(|c| !have.contains(c))
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        missing.sort_by_key(|c| c.index());
        missing
    }

    /// Drop everything outside the bounding set. Needs CAP_SETPCAP, so it runs before
    /// the process changes to its user.
    pub fn apply_bounding(&self) -> Result<()> {
        for cap in caps::all() {
            if !self.bounding.contains(&cap)
                && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
            {
                caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                    RuntimeError::Init(format!("drop {cap} from bounding set: {e}"))
                })?;
            }
        }
        Ok(())
    }

    /// Set the effective, permitted, inheritable and ambient sets (after the user change).
    pub fn apply_process_sets(&self) -> Result<()> {
        let set = |which: CapSet, value: &CapsHashSet| {
            caps::set(None, which, value)
                .map_err(|e| RuntimeError::Init(format!("set {which:?} capabilities: {e}")))
        };
        // capset checks each change against the current sets: inheritable while the
        // permitted set is still full, then effective, then permitted (which must still
        // cover the new effective set).
        set(CapSet::Inheritable, &self.inheritable)?;
        set(
            CapSet::Effective,
            &self
                .effective
                .intersection(&self.permitted)
                .copied()
                .collect(),
        )?;
        set(CapSet::Permitted, &self.permitted)?;
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| RuntimeError::Init(format!("clear ambient capabilities: {e}")))?;
        for cap in &self.ambient {
            // The kernel refuses ambient caps that are not both permitted and inheritable;
            // runc ignores those too.
            if self.permitted.contains(cap) && self.inheritable.contains(cap) {
                caps::raise(None, CapSet::Ambient, *cap)
                    .map_err(|e| RuntimeError::Init(format!("raise ambient {cap}: {e}")))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Capability as Oci, LinuxCapabilitiesBuilder};

    #[test]
    fn oci_names_become_caps() {
        let set: OciCaps = [Oci::Chown, Oci::NetBindService, Oci::Kill]
            .into_iter()
            .collect();
        let caps = LinuxCapabilitiesBuilder::default()
            .bounding(set.clone())
            .effective(set.clone())
            .permitted(set)
            .inheritable(OciCaps::new())
            .ambient(OciCaps::new())
            .build()
            .unwrap();
        let plan = CapabilityPlan::from_spec(Some(&caps));
        let want: CapsHashSet = [
            Capability::CAP_CHOWN,
            Capability::CAP_NET_BIND_SERVICE,
            Capability::CAP_KILL,
        ]
        .into();
        assert_eq!(plan.bounding, want);
        assert_eq!(plan.effective, want);
        assert!(plan.ambient.is_empty());
    }

    #[test]
    fn no_capabilities_section_means_none() {
        assert_eq!(CapabilityPlan::from_spec(None), CapabilityPlan::default());
    }
}
