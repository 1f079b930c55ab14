//! Load generators and their fixtures: what `provmesh bench …` runs.
//!
//! | module | owns |
//! | --- | --- |
//! | [`signing`] | a code-signing CA and signers that produce entries the domain log admits (also used by the end-to-end tests) |
//! | [`log`] | `provmesh bench log`: concurrent writers over the log's HTTP write API, throughput and integration latency |
//! | [`verify`] | `provmesh bench verify`: offline bundle verifications/s beside the bare signature checks' floor |

pub mod log;
pub mod signing;
pub mod verify;
