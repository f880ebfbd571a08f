//! berth-proto: the supervisor's public gRPC API, package `berth.supervisor.v1`.
//!
//! Owns the .proto files under `berth/supervisor/v1/` and the code generated from them
//! (prost messages, tonic clients and servers). It holds no logic: the supervisor
//! implements the servers, the engine and `berth-ctl` use the clients. It re-exports
//! tonic, prost and prost-types so that users build against the same versions.
//! Never renumber a field; a breaking change gets a new `v2` package.

pub use prost;
pub use prost_types;
pub use tonic;

/// `berth.supervisor.v1`: every message, client and server.
pub mod v1 {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("berth.supervisor.v1");

    /// The encoded `FileDescriptorSet` of the API, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("berth_supervisor_v1_descriptor");
}

/// `berth.shim.v1`: the options berth-supervisor passes to berth-shim in the shim task
/// API's CreateTaskRequest.options (type URL [`SHIM_OPTIONS_TYPE`]).
pub mod shim_v1 {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("berth.shim.v1");
}

/// The type URL of [`shim_v1::Options`] in an Any.
pub const SHIM_OPTIONS_TYPE: &str = "berth.shim.v1.Options";

/// The API's package name.
pub const API: &str = "berth.supervisor.v1";

/// The namespace used when a request leaves it empty.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A channel to a supervisor listening on the unix socket at `path` (the only
/// transport it serves). Lazy: the socket is dialled on first use, and again after a
/// broken connection.
pub fn unix_channel(path: impl Into<std::path::PathBuf>) -> tonic::transport::Channel {
    let path = path.into();
    // The URI is required by the API but unused: every connection goes to `path`.
    tonic::transport::Endpoint::from_static("http://supervisor.local").connect_with_connector_lazy(
        tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }),
    )
}
