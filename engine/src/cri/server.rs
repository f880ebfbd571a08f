//! The gRPC services: one line per RPC into the CRI's operations, errors mapped to
//! gRPC codes once (`Error` → `tonic::Status`).

use super::{cri, Cri};
use cri::image_service_server::ImageService;
use cri::runtime_service_server::RuntimeService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// `runtime.v1.RuntimeService`.
pub struct Runtime(pub Arc<Cri>);

/// `runtime.v1.ImageService`.
pub struct Images(pub Arc<Cri>);

type R<T> = Result<Response<T>, Status>;

fn ok<T>(t: T) -> R<T> {
    Ok(Response::new(t))
}

#[tonic::async_trait]
impl RuntimeService for Runtime {
    async fn version(&self, _: Request<cri::VersionRequest>) -> R<cri::VersionResponse> {
        ok(self.0.version())
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<cri::RunPodSandboxRequest>,
    ) -> R<cri::RunPodSandboxResponse> {
        let pod_sandbox_id = self.0.run_pod_sandbox(r.into_inner()).await?;
        ok(cri::RunPodSandboxResponse { pod_sandbox_id })
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<cri::StopPodSandboxRequest>,
    ) -> R<cri::StopPodSandboxResponse> {
        self.0
            .stop_pod_sandbox(&r.into_inner().pod_sandbox_id)
            .await?;
        ok(cri::StopPodSandboxResponse {})
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<cri::RemovePodSandboxRequest>,
    ) -> R<cri::RemovePodSandboxResponse> {
        self.0
            .remove_pod_sandbox(&r.into_inner().pod_sandbox_id)
            .await?;
        ok(cri::RemovePodSandboxResponse {})
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<cri::PodSandboxStatusRequest>,
    ) -> R<cri::PodSandboxStatusResponse> {
        let r = r.into_inner();
        ok(self
            .0
            .pod_sandbox_status(&r.pod_sandbox_id, r.verbose)
            .await?)
    }

    async fn list_pod_sandbox(
        &self,
        r: Request<cri::ListPodSandboxRequest>,
    ) -> R<cri::ListPodSandboxResponse> {
        ok(cri::ListPodSandboxResponse {
            items: self.0.list_pod_sandbox(r.into_inner().filter),
        })
    }

    async fn create_container(
        &self,
        r: Request<cri::CreateContainerRequest>,
    ) -> R<cri::CreateContainerResponse> {
        let container_id = self.0.create_container(r.into_inner()).await?;
        ok(cri::CreateContainerResponse { container_id })
    }

    async fn start_container(
        &self,
        r: Request<cri::StartContainerRequest>,
    ) -> R<cri::StartContainerResponse> {
        self.0.start_container(&r.into_inner().container_id).await?;
        ok(cri::StartContainerResponse {})
    }

    async fn stop_container(
        &self,
        r: Request<cri::StopContainerRequest>,
    ) -> R<cri::StopContainerResponse> {
        let r = r.into_inner();
        self.0.stop_container(&r.container_id, r.timeout).await?;
        ok(cri::StopContainerResponse {})
    }

    async fn remove_container(
        &self,
        r: Request<cri::RemoveContainerRequest>,
    ) -> R<cri::RemoveContainerResponse> {
        self.0
            .remove_container(&r.into_inner().container_id)
            .await?;
        ok(cri::RemoveContainerResponse {})
    }

    async fn list_containers(
        &self,
        r: Request<cri::ListContainersRequest>,
    ) -> R<cri::ListContainersResponse> {
        ok(cri::ListContainersResponse {
            containers: self.0.list_containers(r.into_inner().filter),
        })
    }

    async fn container_status(
        &self,
        r: Request<cri::ContainerStatusRequest>,
    ) -> R<cri::ContainerStatusResponse> {
        let r = r.into_inner();
        ok(self.0.container_status(&r.container_id, r.verbose).await?)
    }

    async fn update_container_resources(
        &self,
        r: Request<cri::UpdateContainerResourcesRequest>,
    ) -> R<cri::UpdateContainerResourcesResponse> {
        let r = r.into_inner();
        self.0
            .update_container_resources(&r.container_id, r.linux)
            .await?;
        ok(cri::UpdateContainerResourcesResponse {})
    }

    async fn reopen_container_log(
        &self,
        r: Request<cri::ReopenContainerLogRequest>,
    ) -> R<cri::ReopenContainerLogResponse> {
        self.0
            .reopen_container_log(&r.into_inner().container_id)
            .await?;
        ok(cri::ReopenContainerLogResponse {})
    }

    async fn exec_sync(&self, r: Request<cri::ExecSyncRequest>) -> R<cri::ExecSyncResponse> {
        let r = r.into_inner();
        ok(self.0.exec_sync(&r.container_id, r.cmd, r.timeout).await?)
    }

    async fn exec(&self, r: Request<cri::ExecRequest>) -> R<cri::ExecResponse> {
        ok(cri::ExecResponse {
            url: self.0.exec_url(r.into_inner())?,
        })
    }

    async fn attach(&self, r: Request<cri::AttachRequest>) -> R<cri::AttachResponse> {
        ok(cri::AttachResponse {
            url: self.0.attach_url(r.into_inner())?,
        })
    }

    async fn port_forward(
        &self,
        r: Request<cri::PortForwardRequest>,
    ) -> R<cri::PortForwardResponse> {
        ok(cri::PortForwardResponse {
            url: self.0.port_forward_url(r.into_inner())?,
        })
    }

    async fn container_stats(
        &self,
        r: Request<cri::ContainerStatsRequest>,
    ) -> R<cri::ContainerStatsResponse> {
        ok(cri::ContainerStatsResponse {
            stats: Some(self.0.container_stats(&r.into_inner().container_id).await?),
        })
    }

    async fn list_container_stats(
        &self,
        r: Request<cri::ListContainerStatsRequest>,
    ) -> R<cri::ListContainerStatsResponse> {
        ok(cri::ListContainerStatsResponse {
            stats: self.0.list_container_stats(r.into_inner().filter).await?,
        })
    }

    async fn pod_sandbox_stats(
        &self,
        r: Request<cri::PodSandboxStatsRequest>,
    ) -> R<cri::PodSandboxStatsResponse> {
        ok(cri::PodSandboxStatsResponse {
            stats: Some(
                self.0
                    .pod_sandbox_stats(&r.into_inner().pod_sandbox_id)
                    .await?,
            ),
        })
    }

    async fn list_pod_sandbox_stats(
        &self,
        r: Request<cri::ListPodSandboxStatsRequest>,
    ) -> R<cri::ListPodSandboxStatsResponse> {
        ok(cri::ListPodSandboxStatsResponse {
            stats: self.0.list_pod_sandbox_stats(r.into_inner().filter).await?,
        })
    }

    async fn update_runtime_config(
        &self,
        r: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> R<cri::UpdateRuntimeConfigResponse> {
        self.0.update_runtime_config(r.into_inner());
        ok(cri::UpdateRuntimeConfigResponse {})
    }

    async fn status(&self, r: Request<cri::StatusRequest>) -> R<cri::StatusResponse> {
        ok(self.0.status(r.into_inner().verbose).await?)
    }

    async fn checkpoint_container(
        &self,
        _: Request<cri::CheckpointContainerRequest>,
    ) -> R<cri::CheckpointContainerResponse> {
        Err(Status::unimplemented(
            "CheckpointContainer: no CRIU support",
        ))
    }

    type GetContainerEventsStream =
        tokio_stream::Empty<Result<cri::ContainerEventResponse, Status>>;

    async fn get_container_events(
        &self,
        _: Request<cri::GetEventsRequest>,
    ) -> R<Self::GetContainerEventsStream> {
        Err(Status::unimplemented(
            "GetContainerEvents is not supported; the kubelet polls (generic PLEG)",
        ))
    }

    async fn list_metric_descriptors(
        &self,
        _: Request<cri::ListMetricDescriptorsRequest>,
    ) -> R<cri::ListMetricDescriptorsResponse> {
        ok(cri::ListMetricDescriptorsResponse {
            descriptors: Vec::new(),
        })
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> R<cri::ListPodSandboxMetricsResponse> {
        ok(cri::ListPodSandboxMetricsResponse {
            pod_metrics: Vec::new(),
        })
    }

    async fn runtime_config(
        &self,
        _: Request<cri::RuntimeConfigRequest>,
    ) -> R<cri::RuntimeConfigResponse> {
        ok(self.0.runtime_config())
    }
}

#[tonic::async_trait]
impl ImageService for Images {
    async fn list_images(&self, r: Request<cri::ListImagesRequest>) -> R<cri::ListImagesResponse> {
        ok(cri::ListImagesResponse {
            images: self.0.list_images(r.into_inner().filter)?,
        })
    }

    async fn image_status(
        &self,
        r: Request<cri::ImageStatusRequest>,
    ) -> R<cri::ImageStatusResponse> {
        let r = r.into_inner();
        ok(self.0.image_status(r.image, r.verbose)?)
    }

    async fn pull_image(&self, r: Request<cri::PullImageRequest>) -> R<cri::PullImageResponse> {
        let r = r.into_inner();
        ok(cri::PullImageResponse {
            image_ref: self.0.pull_image(r.image, r.auth).await?,
        })
    }

    async fn remove_image(
        &self,
        r: Request<cri::RemoveImageRequest>,
    ) -> R<cri::RemoveImageResponse> {
        self.0.remove_image(r.into_inner().image).await?;
        ok(cri::RemoveImageResponse {})
    }

    async fn image_fs_info(
        &self,
        _: Request<cri::ImageFsInfoRequest>,
    ) -> R<cri::ImageFsInfoResponse> {
        ok(self.0.image_fs_info().await?)
    }
}
