//! Compiles berth/supervisor/v1/*.proto with protox (pure Rust, no protoc needed) and
//! generates the prost messages and tonic clients/servers from the descriptors; the
//! encoded descriptor set is kept for gRPC server reflection. berth/shim/v1 (the options
//! the supervisor hands berth-shim) gets messages only, outside the reflected set.
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "berth/supervisor/v1/types.proto",
    "berth/supervisor/v1/namespaces.proto",
    "berth/supervisor/v1/containers.proto",
    "berth/supervisor/v1/tasks.proto",
    "berth/supervisor/v1/events.proto",
    "berth/supervisor/v1/version.proto",
];

const SHIM_PROTOS: &[&str] = &["berth/shim/v1/options.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS.iter().chain(SHIM_PROTOS) {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("berth_supervisor_v1_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_fds(protox::compile(SHIM_PROTOS, ["."])?)?;
    Ok(())
}
