//! The mesh protocol: what a node does with the messages of its peers.
//!
//! * [`peers`]: which peer is bound to which SPIFFE ID, what each may send, rate limits
//!   and scores.
//! * [`checkpoints`]: which logs a node follows, the latest checkpoint of each, what is
//!   relayed, and anti-entropy with random peers.
//! * [`cosignatures`]: which witness cosignatures on a checkpoint count, and the
//!   cosigned note a node serves.
//! * [`wire`]: the messages on the wire (gossip topics and request-response), decoded
//!   with size bounds before anything else looks at them.
//!
//! The node's libp2p swarm and the simulator drive these machines alike; gossipsub,
//! request-response and connection handling are transport, everything decided here is
//! protocol.

pub mod checkpoints;
pub mod cosignatures;
pub mod peers;
pub mod wire;
