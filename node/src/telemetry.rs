//! Telemetry: the node's logs ([`logs`]) and its Prometheus metrics ([`metrics`]).
//!
//! Logs go to stderr through `tracing`; stdout belongs to command output. Metrics live
//! in one [`metrics::Metrics`] registry that components register into while the node
//! starts, and that the metrics server encodes on every scrape.

pub mod logs;
pub mod metrics;
