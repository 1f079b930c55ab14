//! Generates the SPIFFE Workload API (`SpiffeWorkloadAPI`) server and client from
//! `proto/workload.proto` for the test-only Workload API server
//! (`provmesh_tests::workload_api`). protox compiles the `.proto` file in pure Rust (it
//! also supplies `google/protobuf/struct.proto`), so no `protoc` is needed.

/// The include root.
const PROTO_ROOT: &str = "proto";
/// The file, relative to [`PROTO_ROOT`].
const PROTO: &str = "workload.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}/{PROTO}");
    let files = protox::compile([PROTO], [PROTO_ROOT])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(files)?;
    Ok(())
}
