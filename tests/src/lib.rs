//! # provmesh-tests — end-to-end tests
//!
//! Tests in this crate start real `provmesh` processes (multi-domain meshes on loopback,
//! ephemeral ports) and check them with real third-party clients. Each test cleans up the
//! processes it starts and stops within a bound. Single-node process tests of the CLI live
//! beside the node crate (`node/tests/`).
