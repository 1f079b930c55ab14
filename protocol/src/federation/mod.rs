//! Federation: who the trust domains of the mesh are, which keys each holds, and which
//! node speaks for which SPIFFE ID.
//!
//! * [`domain_record`]: the signed **domain record** — a domain's SPIFFE trust bundle plus
//!   its provmesh keys (log origins, code-signing roots, CT and witness keys, each with a
//!   validity window) under a record sequence of its own, signed by the domain
//!   authority's X.509-SVID — and its log entry.
//! * [`registry`]: the acceptance rules for domain records (bootstrap from the federation
//!   configuration, chain to the previously accepted bundle, no rollback, one domain per
//!   origin, revocation) and the accepted state every other rule consults.
//! * [`node_record`]: the **node record** binding a libp2p peer id to a SPIFFE ID,
//!   signed with the node's X.509-SVID.
//!
//! Pure functions of their inputs: times are arguments, nothing reads a clock.

pub mod domain_record;
pub mod node_record;
pub mod registry;
