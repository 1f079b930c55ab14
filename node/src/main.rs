//! The `provmesh` binary: parse the command line and hand it to
//! [`provmesh_node::cli::dispatch`].

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    provmesh_node::cli::dispatch(provmesh_node::cli::Cli::parse())
}
