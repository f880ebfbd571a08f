//! Version, Status, RuntimeConfig and UpdateRuntimeConfig.

use super::{cri, Cri, Result, CRI_VERSION, RUNTIME_NAME};
use std::collections::HashMap;

impl Cri {
    /// Version.
    pub fn version(&self) -> cri::VersionResponse {
        cri::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: CRI_VERSION.into(),
        }
    }

    /// Status: RuntimeReady while the supervisor answers, NetworkReady while a CNI
    /// configuration and its plugins are there.
    pub async fn status(&self, verbose: bool) -> Result<cri::StatusResponse> {
        let runtime = self.sv.ready().await;
        let network = self.cni.ready();
        let cond =
            |t: &str, r: std::result::Result<(), String>, reason: &str| cri::RuntimeCondition {
                r#type: t.into(),
                status: r.is_ok(),
                reason: if r.is_ok() {
                    String::new()
                } else {
                    reason.into()
                },
                message: r.err().unwrap_or_default(),
            };
        let mut info = HashMap::new();
        if verbose {
            info.insert(
                "config".to_string(),
                serde_json::json!({
                    "cniConfDir": self.opts.cni_conf_dir,
                    "cniBinDirs": self.opts.cni_bin_dirs,
                    "cgroupDriver": format!("{:?}", self.opts.cgroup_driver),
                    "sandboxImage": self.opts.sandbox_image.clone().unwrap_or_else(super::pause::image_name),
                    "runtimes": self.opts.runtimes.paths,
                })
                .to_string(),
            );
        }
        Ok(cri::StatusResponse {
            status: Some(cri::RuntimeStatus {
                conditions: vec![
                    cond(
                        "RuntimeReady",
                        runtime.map_err(|e| e.to_string()),
                        "SupervisorUnavailable",
                    ),
                    cond("NetworkReady", network, "NetworkPluginNotReady"),
                ],
            }),
            info,
            runtime_handlers: self
                .opts
                .runtimes
                .paths
                .keys()
                .map(|n| cri::RuntimeHandler {
                    name: if *n == self.opts.runtimes.default {
                        String::new()
                    } else {
                        n.clone()
                    },
                    features: Some(cri::RuntimeHandlerFeatures {
                        recursive_read_only_mounts: false,
                        user_namespaces: false,
                    }),
                })
                .collect(),
            features: Some(cri::RuntimeFeatures {
                supplemental_groups_policy: false,
            }),
        })
    }

    /// RuntimeConfig: the cgroup driver.
    pub fn runtime_config(&self) -> cri::RuntimeConfigResponse {
        cri::RuntimeConfigResponse {
            linux: Some(cri::LinuxRuntimeConfiguration {
                cgroup_driver: match self.opts.cgroup_driver {
                    super::CgroupDriver::Systemd => cri::CgroupDriver::Systemd as i32,
                    super::CgroupDriver::Cgroupfs => cri::CgroupDriver::Cgroupfs as i32,
                },
            }),
        }
    }

    /// UpdateRuntimeConfig: the pod CIDR is the CNI configuration's business here
    /// (as containerd without a config template): logged, nothing else.
    pub fn update_runtime_config(&self, req: cri::UpdateRuntimeConfigRequest) {
        if let Some(cidr) = req
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
        {
            tracing::info!(%cidr, "kubelet's pod CIDR (the CNI configuration decides addresses)");
        }
    }
}
