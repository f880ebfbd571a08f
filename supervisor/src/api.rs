//! The gRPC services: thin adapters from berth.supervisor.v1 onto the store and the
//! task manager. Errors become gRPC codes here, once (see `error`).

use std::pin::Pin;
use std::sync::Arc;

use berth_proto::v1::{self as pb, event::Kind};
use berth_proto::DEFAULT_NAMESPACE;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::error::{check_id, Error};
use crate::events::{self, Bus};
use crate::records;
use crate::store::{NamespaceRec, Store};
use crate::tasks::Tasks;

/// Everything the services share.
#[derive(Clone)]
pub struct State {
    /// Metadata.
    pub store: Arc<Store>,
    /// Tasks.
    pub tasks: Arc<Tasks>,
    /// Events.
    pub bus: Bus,
}

type Res<T> = Result<Response<T>, Status>;

fn ns(n: &str) -> String {
    if n.is_empty() {
        DEFAULT_NAMESPACE.to_string()
    } else {
        n.to_string()
    }
}

fn ok<T>(t: T) -> Res<T> {
    Ok(Response::new(t))
}

/// Run blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("store task: {e}")))?
}

#[tonic::async_trait]
impl pb::namespaces_server::Namespaces for State {
    async fn create(
        &self,
        r: Request<pb::CreateNamespaceRequest>,
    ) -> Res<pb::CreateNamespaceResponse> {
        let n = r
            .into_inner()
            .namespace
            .ok_or_else(|| Status::invalid_argument("namespace: missing"))?;
        check_id("namespace", &n.name)?;
        let rec = NamespaceRec {
            name: n.name.clone(),
            labels: n.labels.clone().into_iter().collect(),
        };
        let store = self.store.clone();
        blocking(move || store.put_namespace(&rec, true)).await?;
        self.bus.publish(
            &n.name,
            "/namespaces/create",
            Kind::Namespace(pb::NamespaceChange {
                name: n.name.clone(),
            }),
            None,
        );
        ok(pb::CreateNamespaceResponse { namespace: Some(n) })
    }

    async fn get(&self, r: Request<pb::GetNamespaceRequest>) -> Res<pb::GetNamespaceResponse> {
        let name = r.into_inner().name;
        let store = self.store.clone();
        let rec = blocking(move || store.namespace(&name)).await?;
        ok(pb::GetNamespaceResponse {
            namespace: Some(pb::Namespace {
                name: rec.name,
                labels: rec.labels.into_iter().collect(),
            }),
        })
    }

    async fn list(
        &self,
        _r: Request<pb::ListNamespacesRequest>,
    ) -> Res<pb::ListNamespacesResponse> {
        let store = self.store.clone();
        let recs = blocking(move || store.namespaces()).await?;
        ok(pb::ListNamespacesResponse {
            namespaces: recs
                .into_iter()
                .map(|r| pb::Namespace {
                    name: r.name,
                    labels: r.labels.into_iter().collect(),
                })
                .collect(),
        })
    }

    async fn update(
        &self,
        r: Request<pb::UpdateNamespaceRequest>,
    ) -> Res<pb::UpdateNamespaceResponse> {
        let n = r
            .into_inner()
            .namespace
            .ok_or_else(|| Status::invalid_argument("namespace: missing"))?;
        let rec = NamespaceRec {
            name: n.name.clone(),
            labels: n.labels.clone().into_iter().collect(),
        };
        let store = self.store.clone();
        blocking(move || store.put_namespace(&rec, false)).await?;
        self.bus.publish(
            &n.name,
            "/namespaces/update",
            Kind::Namespace(pb::NamespaceChange {
                name: n.name.clone(),
            }),
            None,
        );
        ok(pb::UpdateNamespaceResponse { namespace: Some(n) })
    }

    async fn delete(&self, r: Request<pb::DeleteNamespaceRequest>) -> Res<()> {
        let name = r.into_inner().name;
        let store = self.store.clone();
        let n = name.clone();
        blocking(move || store.delete_namespace(&n)).await?;
        self.bus.publish(
            &name,
            "/namespaces/delete",
            Kind::Namespace(pb::NamespaceChange { name: name.clone() }),
            None,
        );
        ok(())
    }
}

#[tonic::async_trait]
impl pb::containers_server::Containers for State {
    async fn create(
        &self,
        r: Request<pb::CreateContainerRequest>,
    ) -> Res<pb::CreateContainerResponse> {
        let r = r.into_inner();
        let n = ns(&r.namespace);
        let c = r
            .container
            .ok_or_else(|| Status::invalid_argument("container: missing"))?;
        check_id("container", &c.id)?;
        records::check_spec(&c.id, &c.spec)?;
        let mut rec = records::rec_from_pb(&c);
        rec.created_at = events::now();
        rec.updated_at = rec.created_at;
        let store = self.store.clone();
        let (n2, rec2) = (n.clone(), rec.clone());
        blocking(move || store.put_container(&n2, &rec2, true)).await?;
        self.bus.publish(
            &n,
            "/containers/create",
            Kind::Container(pb::ContainerChange { id: rec.id.clone() }),
            None,
        );
        ok(pb::CreateContainerResponse {
            container: Some(records::rec_to_pb(&rec)),
        })
    }

    async fn get(&self, r: Request<pb::GetContainerRequest>) -> Res<pb::GetContainerResponse> {
        let r = r.into_inner();
        let n = ns(&r.namespace);
        let store = self.store.clone();
        let rec = blocking(move || store.container(&n, &r.id)).await?;
        ok(pb::GetContainerResponse {
            container: Some(records::rec_to_pb(&rec)),
        })
    }

    async fn list(&self, r: Request<pb::ListContainersRequest>) -> Res<pb::ListContainersResponse> {
        let r = r.into_inner();
        let n = ns(&r.namespace);
        let store = self.store.clone();
        let recs = blocking(move || store.containers(&n)).await?;
        let containers = recs
            .iter()
            .filter(|c| r.labels.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
            .map(records::rec_to_pb)
            .collect();
        ok(pb::ListContainersResponse { containers })
    }

    async fn update(
        &self,
        r: Request<pb::UpdateContainerRequest>,
    ) -> Res<pb::UpdateContainerResponse> {
        let r = r.into_inner();
        let n = ns(&r.namespace);
        let c = r
            .container
            .ok_or_else(|| Status::invalid_argument("container: missing"))?;
        let store = self.store.clone();
        let (n2, id) = (n.clone(), c.id.clone());
        let mut rec = blocking(move || store.container(&n2, &id)).await?;
        let new = records::rec_from_pb(&c);
        let all = r.update_mask.is_empty();
        let has = |f: &str| all || r.update_mask.iter().any(|m| m == f);
        for m in &r.update_mask {
            if !["labels", "spec", "rootfs", "runtime"].contains(&m.as_str()) {
                return Err(
                    Error::InvalidArgument(format!("update_mask: unknown field {m:?}")).into(),
                );
            }
        }
        if has("spec") {
            records::check_spec(&c.id, &c.spec)?;
            rec.spec = new.spec;
        }
        if has("labels") {
            rec.labels = new.labels;
        }
        if has("rootfs") {
            rec.rootfs = new.rootfs;
        }
        if has("runtime") {
            rec.runtime = new.runtime;
        }
        rec.updated_at = events::now();
        let store = self.store.clone();
        let (n2, rec2) = (n.clone(), rec.clone());
        blocking(move || store.put_container(&n2, &rec2, false)).await?;
        self.bus.publish(
            &n,
            "/containers/update",
            Kind::Container(pb::ContainerChange { id: rec.id.clone() }),
            None,
        );
        ok(pb::UpdateContainerResponse {
            container: Some(records::rec_to_pb(&rec)),
        })
    }

    async fn delete(&self, r: Request<pb::DeleteContainerRequest>) -> Res<()> {
        let r = r.into_inner();
        let n = ns(&r.namespace);
        if self.tasks.has(&n, &r.id) {
            return Err(Error::FailedPrecondition(format!(
                "container {}: has a task; delete the task first",
                r.id
            ))
            .into());
        }
        let store = self.store.clone();
        let (n2, id) = (n.clone(), r.id.clone());
        blocking(move || store.delete_container(&n2, &id)).await?;
        self.bus.publish(
            &n,
            "/containers/delete",
            Kind::Container(pb::ContainerChange { id: r.id }),
            None,
        );
        ok(())
    }
}

#[tonic::async_trait]
impl pb::tasks_server::Tasks for State {
    async fn create(&self, r: Request<pb::CreateTaskRequest>) -> Res<pb::CreateTaskResponse> {
        let r = r.into_inner();
        ok(self.tasks.create(&ns(&r.namespace), &r).await?)
    }

    async fn start(&self, r: Request<pb::StartRequest>) -> Res<pb::StartResponse> {
        let r = r.into_inner();
        let pid = self
            .tasks
            .start(&ns(&r.namespace), &r.container_id, &r.exec_id)
            .await?;
        ok(pb::StartResponse { pid })
    }

    async fn delete(&self, r: Request<pb::DeleteTaskRequest>) -> Res<pb::DeleteResponse> {
        let r = r.into_inner();
        ok(self
            .tasks
            .delete(&ns(&r.namespace), &r.container_id, "")
            .await?)
    }

    async fn delete_process(
        &self,
        r: Request<pb::DeleteProcessRequest>,
    ) -> Res<pb::DeleteResponse> {
        let r = r.into_inner();
        if r.exec_id.is_empty() {
            return Err(Status::invalid_argument(
                "exec_id: empty (use Delete for the task)",
            ));
        }
        ok(self
            .tasks
            .delete(&ns(&r.namespace), &r.container_id, &r.exec_id)
            .await?)
    }

    async fn get(&self, r: Request<pb::GetRequest>) -> Res<pb::GetResponse> {
        let r = r.into_inner();
        let p = self
            .tasks
            .process(&ns(&r.namespace), &r.container_id, &r.exec_id)
            .await?;
        ok(pb::GetResponse { process: Some(p) })
    }

    async fn list(&self, r: Request<pb::ListTasksRequest>) -> Res<pb::ListTasksResponse> {
        let r = r.into_inner();
        ok(pb::ListTasksResponse {
            tasks: self.tasks.list(&ns(&r.namespace)).await?,
        })
    }

    async fn kill(&self, r: Request<pb::KillRequest>) -> Res<()> {
        let r = r.into_inner();
        self.tasks.kill(&ns(&r.namespace), &r).await?;
        ok(())
    }

    async fn exec(&self, r: Request<pb::ExecProcessRequest>) -> Res<()> {
        let r = r.into_inner();
        self.tasks.exec(&ns(&r.namespace), &r).await?;
        ok(())
    }

    async fn resize_pty(&self, r: Request<pb::ResizePtyRequest>) -> Res<()> {
        let r = r.into_inner();
        self.tasks.resize(&ns(&r.namespace), &r).await?;
        ok(())
    }

    async fn close_io(&self, r: Request<pb::CloseIoRequest>) -> Res<()> {
        let r = r.into_inner();
        self.tasks.close_io(&ns(&r.namespace), &r).await?;
        ok(())
    }

    async fn pause(&self, r: Request<pb::PauseTaskRequest>) -> Res<()> {
        let r = r.into_inner();
        self.tasks
            .pause(&ns(&r.namespace), &r.container_id, true)
            .await?;
        ok(())
    }

    async fn resume(&self, r: Request<pb::ResumeTaskRequest>) -> Res<()> {
        let r = r.into_inner();
        self.tasks
            .pause(&ns(&r.namespace), &r.container_id, false)
            .await?;
        ok(())
    }

    async fn list_pids(&self, r: Request<pb::ListPidsRequest>) -> Res<pb::ListPidsResponse> {
        let r = r.into_inner();
        ok(pb::ListPidsResponse {
            pids: self.tasks.pids(&ns(&r.namespace), &r.container_id).await?,
        })
    }

    async fn update(&self, r: Request<pb::UpdateTaskRequest>) -> Res<()> {
        let r = r.into_inner();
        self.tasks
            .update(&ns(&r.namespace), &r.container_id, &r.resources)
            .await?;
        ok(())
    }

    async fn stats(&self, r: Request<pb::StatsRequest>) -> Res<pb::StatsResponse> {
        let r = r.into_inner();
        let stats = self.tasks.stats(&ns(&r.namespace), &r.container_id).await?;
        ok(pb::StatsResponse { stats: Some(stats) })
    }

    async fn wait(&self, r: Request<pb::WaitRequest>) -> Res<pb::WaitResponse> {
        let r = r.into_inner();
        ok(self
            .tasks
            .wait(&ns(&r.namespace), &r.container_id, &r.exec_id)
            .await?)
    }

    async fn checkpoint(&self, _r: Request<pb::CheckpointTaskRequest>) -> Res<()> {
        Err(Status::unimplemented("Checkpoint: not supported (no CRIU)"))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Envelope, Status>> + Send>>;

#[tonic::async_trait]
impl pb::events_server::Events for State {
    type SubscribeStream = EventStream;

    async fn subscribe(&self, r: Request<pb::SubscribeRequest>) -> Res<EventStream> {
        let filter = r.into_inner();
        let rx = self.bus.subscribe();
        let s = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |e| match e {
            Ok(env) if events::matches(&filter, &env) => Some(Ok(Arc::unwrap_or_clone(env))),
            Ok(_) => None,
            Err(e) => Some(Err(Status::data_loss(format!("subscriber too slow: {e}")))),
        });
        ok(Box::pin(s))
    }

    async fn publish(&self, r: Request<pb::PublishRequest>) -> Res<()> {
        let r = r.into_inner();
        if !r.topic.starts_with('/') {
            return Err(Status::invalid_argument(format!(
                "topic {:?}: must start with /",
                r.topic
            )));
        }
        let kind = r
            .event
            .and_then(|e| e.kind)
            .ok_or_else(|| Status::invalid_argument("event: missing"))?;
        self.bus.publish(&ns(&r.namespace), &r.topic, kind, None);
        ok(())
    }
}

#[tonic::async_trait]
impl pb::version_server::Version for State {
    async fn version(&self, _r: Request<()>) -> Res<pb::VersionResponse> {
        ok(pb::VersionResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            api: berth_proto::API.into(),
        })
    }
}
