//! Load generators and their fixtures: what `provmesh bench …` runs.
//!
//! | module | owns |
//! | --- | --- |
//! | [`child`] | the benches' own nodes: `provmesh run` children and their work directory |
//! | [`signing`] | a code-signing CA and signers that produce entries the domain log admits (also used by the end-to-end tests) |
//! | [`log`] | `provmesh bench log`: concurrent writers over the log's HTTP write API, throughput and integration latency |
//! | [`mesh`] | `provmesh bench mesh`: a federation of real nodes on loopback, its traffic at rest and checkpoint propagation to every node |
//! | [`witness`] | `provmesh bench witness`: the witness's cosigning throughput (signature, proof, durable state, cosignature) |
//! | [`lookup`] | `provmesh bench lookup`: concurrent gRPC provenance lookups, saturated throughput and paced latency |
//! | [`verify`] | `provmesh bench verify`: offline bundle verifications/s beside the bare signature checks' floor |

pub mod child;
pub mod log;
pub mod lookup;
pub mod mesh;
pub mod signing;
pub mod verify;
pub mod witness;
