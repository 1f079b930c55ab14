//! `provmesh run` end to end: the node starts with metrics on a free port, reports its
//! address in the ready file, serves `/metrics` and `/healthz`, and exits 0 within the
//! grace period after SIGTERM or SIGINT.

// Test code: helpers outside #[test] fns may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{DEADLINE, NodeProcess, http_get, node_config, wait_ready, write_file};

fn metrics_addr(ready: &serde_json::Value) -> SocketAddr {
    ready["metrics"]
        .as_str()
        .expect("metrics address in the ready file")
        .parse()
        .expect("a socket address")
}

fn start_scrape_and_stop(global: &[&str], signal: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(dir.path(), "provmesh.toml", &node_config(dir.path(), ""));
    let ready_path = dir.path().join("ready.json");
    let mut node = NodeProcess::start(global, &config, &ready_path);

    let ready = wait_ready(&mut node, &ready_path);
    assert_eq!(ready["pid"].as_u64(), Some(u64::from(node.child.id())));
    let addr = metrics_addr(&ready);
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    assert!(dir.path().join("data").is_dir(), "data_dir was not created");

    let (status, head, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    let build_info = format!(
        "provmesh_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(body.contains(&build_info), "{body}");
    assert!(body.contains("process_uptime_seconds "), "{body}");
    assert!(body.contains("process_start_time_seconds "), "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");

    let (status, _, body) = http_get(addr, "/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, _, _) = http_get(addr, "/nope");
    assert_eq!(status, 404);

    node.signal(signal);
    let status = node.wait_exit(DEADLINE);
    let stderr = node.stderr();
    assert_eq!(status.code(), Some(0), "exit {status}; stderr:\n{stderr}");
    assert!(!ready_path.exists(), "ready file left behind");
    stderr
}

#[test]
fn sigterm_stops_the_node_cleanly() {
    let stderr = start_scrape_and_stop(&[], "TERM");
    assert!(stderr.contains("metrics endpoint listening"), "{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(stderr.contains("shutdown complete"), "{stderr}");
}

#[test]
fn sigint_stops_the_node_cleanly_with_json_logs() {
    let stderr = start_scrape_and_stop(&["--log-format", "json"], "INT");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "metrics endpoint listening"
                && e["addr"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("127.0.0.1:"))),
        "{stderr}"
    );
    assert!(
        events.iter().any(|e| e["message"] == "shutdown complete"),
        "{stderr}"
    );
}

#[test]
fn log_level_flag_overrides_config_and_rust_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "provmesh.toml",
        &node_config(dir.path(), "\n[log]\nlevel = \"info\"\n"),
    );
    let ready_path = dir.path().join("ready.json");
    // --log-level error silences the info lines.
    let mut node = NodeProcess::start(&["--log-level", "error"], &config, &ready_path);
    wait_ready(&mut node, &ready_path);
    node.signal("TERM");
    assert_eq!(node.wait_exit(DEADLINE).code(), Some(0));
    let stderr = node.stderr();
    assert!(!stderr.contains("INFO"), "{stderr}");
}

#[test]
fn metrics_can_be_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[node]\ntrust_domain = \"org-a.example\"\ndata_dir = {:?}\n[metrics]\nenabled = false\n[mesh]\nenabled = false\n",
        dir.path().join("data").display().to_string()
    );
    let config = write_file(dir.path(), "provmesh.toml", &text);
    let ready_path = dir.path().join("ready.json");
    let mut node = NodeProcess::start(&[], &config, &ready_path);
    let ready = wait_ready(&mut node, &ready_path);
    assert!(ready["metrics"].is_null(), "{ready}");
    node.signal("TERM");
    assert_eq!(node.wait_exit(DEADLINE).code(), Some(0));
}

#[test]
fn an_address_in_use_fails_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = node_config(dir.path(), "").replace("127.0.0.1:0", &addr.to_string());
    let config = write_file(dir.path(), "provmesh.toml", &text);
    let mut node = NodeProcess::start(&[], &config, &dir.path().join("ready.json"));
    let status = node.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    let stderr = node.stderr();
    assert!(
        stderr.contains(&format!("cannot listen for metrics on {addr}")),
        "{stderr}"
    );
}
