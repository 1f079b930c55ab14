//! # provmesh-node — the provmesh daemon and command-line tool
//!
//! This crate drives the sans-IO state machines of `provmesh-protocol` with real
//! sockets, clocks and storage. It holds no protocol logic of its own: if a rule of the
//! protocol lives here, the simulator cannot check it.
//!
//! | module | owns |
//! | --- | --- |
//! | [`cli`] | the `provmesh` command line and its exit codes |
//! | [`config`] | the TOML configuration: schema, defaults, validation, error locations |
//! | [`telemetry`] | logs (`tracing`) and Prometheus metrics (registry and `/metrics` server) |
//! | [`shutdown`] | the shutdown signal, SIGINT/SIGTERM, supervised tasks and the grace period |
//! | [`bounded`] | reading files and streams of bounded size |
//! | [`keyfile`] | secret key files: created once with mode 0600, never overwritten |
//! | [`identity`] | SPIFFE identity sources (the embedded dev CA) and JWT-SVID validation |
//! | [`ca`] | the authority's code-signing CA: key files, issuance recorded in the log, Fulcio's v2 API |
//! | [`log`] | the domain transparency log the authority runs: store, sequencer task, HTTP API, fsck |
//! | [`signing`] | the build side: `provmesh sign` / `attest` (key, certificate, log entry, bundle) and `trust-root export` |
//! | [`mesh`] | the libp2p mesh: swarm, node and domain records, checkpoint gossip, the SPIFFE bundle endpoint |
//! | [`witness`] | the domain's witness on the authority: tlog-witness `add-checkpoint`, its store and key |
//! | [`clock`] | the wall clock as the protocol sees it |
//! | [`index`] | the provenance index: the own log's records verified once at ingest, for searches, watches and identity monitoring |
//! | [`grpc`] | the gRPC API: `provmesh.v1` services, health checking and reflection |
//! | [`search`] | `provmesh search`: a node's provenance index by signer, builder, predicate type, subject, time; `--watch` streams |
//! | [`run`] | starting a node from a configuration and running it until it is told to stop |
//! | [`demo`] | `provmesh demo`: three domains on loopback and the narrated scenario (sign, attest, look up across domains, equivocate, convict) |
//! | [`admission`] | the Kubernetes admission webhook: every image of a Pod or workload looked up and judged under the policy |
//! | [`bench`] | load generators (`provmesh bench log`) and their signing fixture |

pub mod admission;
pub mod bench;
pub mod bounded;
pub mod ca;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod grpc;
pub mod identity;
pub mod index;
pub mod keyfile;
pub mod log;
pub mod lookup;
pub mod mesh;
pub mod provenance;
pub mod run;
pub mod search;
pub mod shutdown;
pub mod signing;
pub mod telemetry;
pub mod witness;
