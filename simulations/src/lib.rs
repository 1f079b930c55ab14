//! # provmesh-sim — the mesh simulator
//!
//! A deterministic discrete-event simulator that drives the protocol state machines of
//! `provmesh-protocol` (see its `machine` module for the contract) with thousands of nodes,
//! virtual time, latency, loss, churn and adversaries. It holds no protocol rules of its
//! own: it models only the network and the gossip transport, and feeds `(now, input)` to
//! the same machines the node runs. The machines it drives arrive with the transparency
//! log, witnessing and gossip capabilities.
