//! The node's lifecycle in-process, through the library: bind port 0, start, scrape,
//! stop through any future, and the shutdown signal reaching every observer.

// Test code: helpers outside #[test] fns may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use provmesh_node::config::Config;
use provmesh_node::run::{self, Listeners};

fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.node.data_dir = dir.join("data");
    config.metrics.listen = "127.0.0.1:0".parse().unwrap();
    config.shutdown.grace_period = Duration::from_secs(5);
    config.mesh.enabled = false;
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn start_scrape_and_stop_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let listeners = Listeners::bind(&config).await.unwrap();
    let node = run::start(&config, listeners).await.unwrap();
    let addr = node.addrs().metrics.expect("metrics enabled");
    let shutdown = node.shutdown();
    assert!(!shutdown.is_triggered());

    let (status, _, body) = tokio::task::spawn_blocking(move || common::http_get(addr, "/metrics"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("provmesh_build_info{"), "{body}");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(node.run_until(async move {
        let _ = stop_rx.await;
        "test asked"
    }));
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stopped within the deadline")
        .unwrap()
        .unwrap();
    assert!(shutdown.is_triggered());
    // The listener is closed once the node has stopped.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

/// Regression: with every task disabled the node must still wait for its stop request
/// rather than treat "no tasks" as "all tasks ended".
#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_tasks_waits_for_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.metrics.enabled = false;
    let listeners = Listeners::bind(&config).await.unwrap();
    let node = run::start(&config, listeners).await.unwrap();
    assert_eq!(node.addrs().metrics, None);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(node.run_until(async move {
        let _ = stop_rx.await;
        "test asked"
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!running.is_finished(), "node stopped without being asked");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stopped within the deadline")
        .unwrap()
        .unwrap();
}
