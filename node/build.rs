//! Generates the `provmesh.v1` gRPC **services** (tonic server and client) from the
//! `.proto` files of `provmesh-protocol`.
//!
//! The messages are not generated again: `extern_path` points every `provmesh.v1`
//! message at `provmesh_protocol::proto::provmesh::v1`, so the node's servers, its
//! clients and the sans-IO core share one set of types. protox compiles the `.proto`
//! files in pure Rust, so no `protoc` is needed.

use std::path::PathBuf;

/// The include root of the `.proto` files, which live with the messages in the protocol
/// crate.
const PROTO_ROOT: &str = "../protocol/proto";
/// The files that declare services, relative to [`PROTO_ROOT`].
const PROTOS: &[&str] = &[
    "provmesh/v1/log.proto",
    "provmesh/v1/mesh.proto",
    "provmesh/v1/provenance.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(PROTO_ROOT);
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }
    let files = protox::compile(PROTOS, [&root])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .extern_path(".provmesh.v1", "::provmesh_protocol::proto::provmesh::v1")
        .compile_fds(files)?;
    Ok(())
}
