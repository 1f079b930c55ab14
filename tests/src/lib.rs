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
//! The library holds what several tests share:
//!
//! | module | provides |
//! | --- | --- |
//! | [`command`] | bounded waits on child processes, commands run with their output in files, descriptions of what a command printed, one bounded HTTP request |
//! | [`federation`] | federations of real nodes: each node's files and configuration, dev CAs made before any node runs, SVIDs issued from them and loaded back for signing, `provmesh mesh status --json` |
//! | [`hostile_peer`] | a hostile mesh peer on the node's own libp2p swarm, driven from the test: publishes any gossip, sends any request, answers the victim's requests as told |
//! | [`node_process`] | a `provmesh run` process started with `--ready-file`, waited for within a bound, its HTTP address, SIGTERM/SIGKILL, killed on drop |
//! | [`sigstore_python`] | the pinned sigstore-python CLI of the venv, the skip/fail policy when it is missing (`PROVMESH_SKIP_INTEROP`), its `verify identity` command |
//! | [`workload_api`] | a test-only SPIFFE Workload API server backed by a dev CA |
//!
//! | test | checks |
//! | --- | --- |
//! | `tests/identity_workload_api.rs` | the node's `spire` identity source against [`workload_api`], a test-only SPIFFE Workload API server (no SPIRE here): SVID, bundle, rotation, JWT-SVIDs, the security header, start-up errors |
//! | `tests/mesh_federation.rs` | three domains of real nodes converge (every domain's record, every log's checkpoint) and follow a witness key rotation; split views become evidence on every node; an artifact of one domain is found, judged and admitted from another, and denied once its log is convicted |
//! | `tests/demo.rs` | `provmesh demo --exit` passes every step, and every bundle of its manifest verifies with sigstore-python and `provmesh verify` |
//! | `tests/mesh_hostile.rs` | a hostile peer attacks a node of a two-domain federation (forged, foreign, stale and unchained domain records, unbound requests, malformed and oversized messages): rejected, logged, scored down, and the node keeps serving |
//! | `tests/log_crash.rs` | the domain log under `kill -9` at random moments: no acknowledged entry is lost or moved, every checkpoint seen stays consistent, `provmesh log fsck` passes |
//! | `tests/interop_sigstore_python.rs` | sigstore-python 4.5.1 `verify identity --offline` accepts provmesh blob and DSSE bundles with provmesh's ClientTrustConfig, refuses tampered artifacts and wrong identities; `provmesh verify` agrees |
//! | `tests/interop_sigstore_python_sign.rs` | stock sigstore-python signs with a provmesh authority as its Fulcio and Rekor (JWT-SVID as identity token); both verifiers accept; the precertificate is in the domain log |
//! | `tests/sign_cli.rs` | `provmesh sign`, `attest` (`--slsa` too) and `trust-root export` against a real authority, with dev and SPIRE (test Workload API) identities; both verifiers accept and refuse alike |

pub mod command;
pub mod federation;
pub mod hostile_peer;
pub mod node_process;
pub mod sigstore_python;
pub mod workload_api;
