//! # provmesh-tests — end-to-end tests
//!
//! Tests in this crate start real `provmesh` processes (multi-domain meshes on loopback,
//! ephemeral ports) and check them with real third-party clients. Each test cleans up the
//! processes it starts and stops within a bound. Single-node process tests of the CLI live
//! beside the node crate (`node/tests/`).
//!
//! The processes are the `provmesh-under-test` binary of this package (the `provmesh`
//! command line under another name: Cargo gives a package's integration tests the paths
//! of its own binaries only).
//!
//! | test | checks |
//! | --- | --- |
//! | `tests/identity_workload_api.rs` | the node's `spire` identity source against [`workload_api`], a test-only SPIFFE Workload API server (no SPIRE here): SVID, bundle, rotation, JWT-SVIDs, the security header, start-up errors |
//! | `tests/log_crash.rs` | the domain log under `kill -9` at random moments: no acknowledged entry is lost or moved, every checkpoint seen stays consistent, `provmesh log fsck` passes |

pub mod workload_api;
