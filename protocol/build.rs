//! Generates the `provmesh.v1` protobuf **messages** (prost) from `proto/`, and writes the
//! encoded file descriptor set that gRPC server reflection serves.
//!
//! Only messages: this crate is the sans-IO core, so service code (tonic, and with it
//! tokio) is generated in `provmesh-node`, which refers to these message types. The
//! `.proto` files are compiled by protox, in pure Rust, so no `protoc` is needed.

use std::path::PathBuf;

use prost::Message as _;

/// The `.proto` files of the crate, relative to [`PROTO_ROOT`].
const PROTOS: &[&str] = &[
    "provmesh/v1/log.proto",
    "provmesh/v1/mesh.proto",
    "provmesh/v1/provenance.proto",
];
/// The include root of the `.proto` files.
const PROTO_ROOT: &str = "proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={PROTO_ROOT}/{proto}");
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let files = protox::compile(PROTOS, [PROTO_ROOT])?;
    std::fs::write(
        out_dir.join("provmesh_descriptor.bin"),
        files.encode_to_vec(),
    )?;
    prost_build::Config::new()
        .out_dir(&out_dir)
        .compile_fds(files)?;
    Ok(())
}
