//! The `provmesh` command line under another name, built inside the end-to-end test
//! package so its tests can start it through `CARGO_BIN_EXE_provmesh-under-test`. It is
//! `node/src/main.rs` exactly: parse the command line, hand it to
//! [`provmesh_node::cli::dispatch`].

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    provmesh_node::cli::dispatch(provmesh_node::cli::Cli::parse())
}
