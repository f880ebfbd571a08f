//! Container records between the API (berth.supervisor.v1 messages) and the store, and
//! the check that a spec is an OCI runtime spec.

use berth_proto::v1 as pb;

use crate::error::{Error, Result};
use crate::events;
use crate::store::{ContainerRec, RuntimeRec};

/// A record from the API's message.
pub fn rec_from_pb(c: &pb::Container) -> ContainerRec {
    ContainerRec {
        id: c.id.clone(),
        labels: c.labels.clone().into_iter().collect(),
        spec: String::from_utf8_lossy(&c.spec).into_owned(),
        rootfs: c
            .rootfs
            .iter()
            .map(|m| crate::store::MountRec {
                kind: m.r#type.clone(),
                source: m.source.clone(),
                target: m.target.clone(),
                options: m.options.clone(),
            })
            .collect(),
        runtime: c
            .runtime
            .as_ref()
            .map(|r| RuntimeRec {
                name: r.name.clone(),
                binary_name: r.binary_name.clone(),
                shim_binary: r.shim_binary.clone(),
                root: r.root.clone(),
            })
            .unwrap_or_default(),
        created_at: (0, 0),
        updated_at: (0, 0),
    }
}

/// A record as the API returns it.
pub fn rec_to_pb(c: &ContainerRec) -> pb::Container {
    pb::Container {
        id: c.id.clone(),
        labels: c.labels.clone().into_iter().collect(),
        spec: c.spec.clone().into_bytes(),
        rootfs: c
            .rootfs
            .iter()
            .map(|m| pb::Mount {
                r#type: m.kind.clone(),
                source: m.source.clone(),
                target: m.target.clone(),
                options: m.options.clone(),
            })
            .collect(),
        runtime: Some(pb::Runtime {
            name: c.runtime.name.clone(),
            binary_name: c.runtime.binary_name.clone(),
            shim_binary: c.runtime.shim_binary.clone(),
            root: c.runtime.root.clone(),
        }),
        created_at: Some(events::ts(c.created_at)),
        updated_at: Some(events::ts(c.updated_at)),
    }
}

/// Validate a spec: a JSON object with "process" and "root" objects.
pub fn check_spec(id: &str, spec: &[u8]) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(spec)
        .map_err(|e| Error::InvalidArgument(format!("container {id}: spec is not JSON: {e}")))?;
    for field in ["process", "root"] {
        if !v[field].is_object() {
            return Err(Error::InvalidArgument(format!(
                "container {id}: spec is not an OCI runtime spec: no \"{field}\" object"
            )));
        }
    }
    if v["process"]["args"].as_array().is_none_or(|a| a.is_empty()) {
        return Err(Error::InvalidArgument(format!(
            "container {id}: spec: process.args is empty"
        )));
    }
    Ok(())
}
