//! The node's Prometheus metrics: the [`Metrics`] registry every component registers
//! into, the metrics that describe the process itself, and the HTTP server that
//! exposes them ([`serve`]: `/metrics` in the OpenMetrics text format, `/healthz`).
//!
//! Registration happens while the node starts, through `&mut Metrics`; afterwards the
//! registry is frozen behind an `Arc` and only read (metric values themselves are
//! atomics, updated by the components that own them).

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;

/// Content type of the `/metrics` response.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The node's metric registry.
///
/// Components register their metrics with [`Metrics::component`] while the node starts;
/// names are prefixed `provmesh_<component>_`. Process-level metrics are registered by
/// [`Metrics::new`]:
///
/// * `provmesh_build_info{version}` — always 1; the labels describe the build.
/// * `process_start_time_seconds` — Unix time at which the node started.
/// * `process_uptime_seconds` — seconds since the node started, computed at scrape time
///   from a monotonic clock.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry holding the build-info and process metrics, with the node started at
    /// `started` (wall clock `started_at`).
    pub fn new(started: Instant, started_at: SystemTime) -> Self {
        let mut registry = Registry::default();
        registry.register(
            "provmesh_build",
            "Build information of this provmesh node; the value is always 1",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(ProcessCollector {
            started,
            start_time_seconds: started_at
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }));
        Self { registry }
    }

    /// The sub-registry for one component (`gossip`, `store`, …): metrics registered in
    /// it are named `provmesh_<component>_<name>`. Call it once per component.
    pub fn component(&mut self, component: &str) -> &mut Registry {
        self.registry
            .sub_registry_with_prefix(format!("provmesh_{component}"))
    }

    /// Encodes every metric in the OpenMetrics text format (ending in `# EOF`).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Computes the process metrics at scrape time.
#[derive(Debug)]
struct ProcessCollector {
    started: Instant,
    start_time_seconds: f64,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let start = ConstGauge::new(self.start_time_seconds);
        start.encode(encoder.encode_descriptor(
            "process_start_time_seconds",
            "Start time of the node since the Unix epoch, in seconds",
            None,
            start.metric_type(),
        )?)?;
        let uptime = ConstGauge::new(self.started.elapsed().as_secs_f64());
        uptime.encode(encoder.encode_descriptor(
            "process_uptime_seconds",
            "Seconds since the node started",
            None,
            uptime.metric_type(),
        )?)?;
        Ok(())
    }
}

/// The HTTP routes of the metrics server, reading `metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(healthz))
        .with_state(metrics)
}

/// Serves [`router`] on `listener` until `shutdown` fires, then stops accepting
/// connections and returns once open requests have finished.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(async move { shutdown.triggered().await })
        .await
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
        Ok(body) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
        Err(_) => {
            tracing::error!("encoding metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding metrics failed\n",
            )
                .into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn encodes_build_info_uptime_and_components() {
        let mut metrics = Metrics::new(Instant::now(), SystemTime::now());
        let counter = Counter::<u64>::default();
        metrics
            .component("gossip")
            .register("messages", "Messages seen", counter.clone());
        counter.inc();
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(&format!(
                "provmesh_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
        assert!(text.contains("process_start_time_seconds "), "{text}");
        assert!(text.contains("process_uptime_seconds "), "{text}");
        assert!(text.contains("provmesh_gossip_messages_total 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
