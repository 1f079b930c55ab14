//! The federation end to end: three trust domains, each an authority and a plain node,
//! six real `provmesh run` processes on loopback with ephemeral ports.
//!
//! Each domain's dev CA is made first (`provmesh identity issue` writes its bundle), so
//! every node can be configured with the other domains' bootstrap bundles, out of band,
//! as in SPIFFE federation. The plain node of a domain shares its authority's dev CA
//! (`identity.dev_ca_dir`). Nodes find each other from one bootstrap peer.
//!
//! Must hold, within a bound:
//! - every node has every domain's record and every log's latest checkpoint
//!   (`provmesh mesh status --json` of each node);
//! - after one domain's authority rotates its witness key and restarts, every node holds
//!   that domain's new record sequence;
//! - every node serves each accepted domain's bundle on its SPIFFE bundle endpoint.

// Test code: a failed step fails the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use provmesh_tests::command::run_within;
use provmesh_tests::node_process::{NodeProcess, provmesh_command, toml_path};

const BIN: &str = env!("CARGO_BIN_EXE_provmesh-under-test");
const DOMAINS: [&str; 3] = ["org-a.example", "org-b.example", "org-c.example"];
/// The bound on a start, a stop or a command.
const DEADLINE: Duration = Duration::from_secs(30);
/// The bound on the mesh converging.
const CONVERGENCE: Duration = Duration::from_secs(60);

/// One node's files.
struct NodeFiles {
    name: String,
    dir: PathBuf,
    config: PathBuf,
}

/// Writes the configuration of a node of `domain`: an authority, or a plain node sharing
/// `authority_dir`'s dev CA and forwarding to `authority_url`.
fn write_config(
    node: &NodeFiles,
    domain: &str,
    authority: Option<(&Path, &str)>,
    bootstrap: &[String],
    bundles: &BTreeMap<&str, PathBuf>,
) {
    let mut text = format!(
        "[node]\ntrust_domain = \"{domain}\"\ndata_dir = {data}\n",
        data = toml_path(&node.dir.join("data")),
    );
    if let Some((_, url)) = authority {
        text.push_str(&format!("authority_url = \"{url}\"\n"));
    }
    text.push_str(
        "\n[log]\nlevel = \"info,provmesh_node::mesh=debug\"\n\n\
         [metrics]\nenabled = false\n\n\
         [shutdown]\ngrace_period = \"5s\"\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\n\
         [grpc]\nlisten = \"127.0.0.1:0\"\n\n",
    );
    text.push_str("[identity]\nsource = \"dev\"\n");
    if let Some((authority_dir, _)) = authority {
        text.push_str(&format!(
            "dev_ca_dir = {}\n",
            toml_path(&authority_dir.join("data/identity"))
        ));
    }
    text.push_str(&format!(
        "\n[authority]\nenabled = {}\n\n\
         [mesh]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = [{}]\n\
         anti_entropy_interval = \"1s\"\n\n\
         [mesh.bundle_endpoint]\nlisten = \"127.0.0.1:0\"\n\n",
        authority.is_none(),
        bootstrap
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", "),
    ));
    for (other, bundle) in bundles {
        if *other != domain {
            text.push_str(&format!(
                "[[federation.domains]]\ntrust_domain = \"{other}\"\nbundle = {}\n\n",
                toml_path(bundle)
            ));
        }
    }
    std::fs::write(&node.config, text).unwrap();
}

fn start(node: &NodeFiles) -> NodeProcess {
    NodeProcess::start(
        Path::new(BIN),
        &node.config,
        &node.dir,
        &node.name,
        DEADLINE,
    )
}

fn first_mesh_address(process: &NodeProcess) -> String {
    process.ready()["mesh"][0].as_str().unwrap().to_owned()
}

/// `provmesh mesh status --json` of `process`.
fn status(process: &NodeProcess, dir: &Path) -> serde_json::Value {
    let grpc = process.ready()["grpc"].as_str().unwrap().to_owned();
    let mut command = provmesh_command(Path::new(BIN));
    command.args(["mesh", "status", "--json", "--node", &grpc]);
    let ran = run_within(command, dir, "mesh-status", DEADLINE);
    assert!(ran.status.success(), "{}", ran.describe());
    serde_json::from_str(&ran.stdout).unwrap()
}

/// The record sequence `status` holds for `domain` (0 without a record).
fn sequence_of(status: &serde_json::Value, domain: &str) -> u64 {
    status["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["trust_domain"] == domain)
        .map_or(0, |d| d["record_sequence"].as_u64().unwrap())
}

/// Whether `status` has a record of every domain (at `min_sequence` or later) and a
/// checkpoint of every domain's log.
fn converged(status: &serde_json::Value, min_sequence: &BTreeMap<&str, u64>) -> bool {
    let records = DOMAINS
        .iter()
        .all(|d| sequence_of(status, d) >= min_sequence.get(d).copied().unwrap_or(1));
    let logs = DOMAINS.iter().all(|d| {
        status["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["origin"] == format!("log.{d}") && l["size"].as_u64().unwrap() >= 1)
    });
    records && logs
}

/// Waits until every node converged; panics with every node's status otherwise.
fn wait_converged(
    nodes: &[(NodeFiles, NodeProcess)],
    root: &Path,
    min_sequence: &BTreeMap<&str, u64>,
) -> Duration {
    let started = Instant::now();
    loop {
        let statuses: Vec<serde_json::Value> = nodes.iter().map(|(_, p)| status(p, root)).collect();
        if statuses.iter().all(|s| converged(s, min_sequence)) {
            return started.elapsed();
        }
        if started.elapsed() > CONVERGENCE {
            let mut report = String::new();
            for ((files, process), status) in nodes.iter().zip(&statuses) {
                report.push_str(&format!(
                    "== {}\n{status:#}\n-- log tail:\n{}\n",
                    files.name,
                    tail(&process.output(), 40)
                ));
            }
            panic!("the mesh did not converge within {CONVERGENCE:?}:\n{report}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn three_domains_converge_and_follow_a_key_rotation() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();

    // Each domain's dev CA and bootstrap bundle, made before any node runs.
    let mut bundles = BTreeMap::new();
    let mut files: Vec<(String, NodeFiles, NodeFiles)> = Vec::new();
    for domain in DOMAINS {
        let authority = NodeFiles {
            name: format!("{domain}-authority"),
            dir: root.join(format!("{domain}-authority")),
            config: root.join(format!("{domain}-authority.toml")),
        };
        let node = NodeFiles {
            name: format!("{domain}-node"),
            dir: root.join(format!("{domain}-node")),
            config: root.join(format!("{domain}-node.toml")),
        };
        std::fs::create_dir_all(&authority.dir).unwrap();
        std::fs::create_dir_all(&node.dir).unwrap();
        // A config without federation yet, to make the dev CA and export its bundle.
        write_config(&authority, domain, None, &[], &BTreeMap::new());
        let out = root.join(format!("{domain}-bootstrap"));
        let mut command = provmesh_command(Path::new(BIN));
        command
            .args(["identity", "issue", "--config"])
            .arg(&authority.config)
            .args(["--spiffe-id", &format!("spiffe://{domain}/bootstrap")])
            .arg("--out")
            .arg(&out);
        let ran = run_within(command, root, &format!("{domain}-issue"), DEADLINE);
        assert!(ran.status.success(), "{}", ran.describe());
        bundles.insert(domain, out.join("bundle.json"));
        files.push((domain.to_owned(), authority, node));
    }

    // Authorities first, each bootstrapping to the ones before it; then the plain nodes.
    let mut nodes: Vec<(NodeFiles, NodeProcess)> = Vec::new();
    let mut bootstrap: Vec<String> = Vec::new();
    let mut plain: Vec<(String, NodeFiles, String)> = Vec::new();
    for (domain, authority, node) in files {
        write_config(&authority, &domain, None, &bootstrap, &bundles);
        let process = start(&authority);
        bootstrap.push(first_mesh_address(&process));
        plain.push((domain, node, process.url()));
        nodes.push((authority, process));
    }
    for (domain, node, url) in plain {
        let authority_dir = root.join(format!("{domain}-authority"));
        write_config(
            &node,
            &domain,
            Some((&authority_dir, &url)),
            &bootstrap[..1],
            &bundles,
        );
        let process = start(&node);
        nodes.push((node, process));
    }

    let took = wait_converged(&nodes, root, &BTreeMap::new());
    eprintln!("six nodes converged in {took:?}");

    // Every node serves every domain's bundle on its bundle endpoint.
    for (files, process) in &nodes {
        assert!(
            process.ready()["bundle_endpoint"].is_string(),
            "{}: no bundle endpoint",
            files.name
        );
    }

    // org-b rotates its witness key: stop, rotate, restart.
    let before = sequence_of(&status(&nodes[1].1, root), "org-b.example");
    assert!(before >= 1);
    let (b_files, mut b_process) = nodes.remove(1);
    assert!(b_process.terminate(DEADLINE).success());
    let mut command = provmesh_command(Path::new(BIN));
    command
        .args(["authority", "rotate-witness-key", "--config"])
        .arg(&b_files.config);
    let ran = run_within(command, root, "rotate", DEADLINE);
    assert!(ran.status.success(), "{}", ran.describe());
    let b_process = start(&b_files);
    nodes.insert(1, (b_files, b_process));
    let min: BTreeMap<&str, u64> = [("org-b.example", before + 1)].into();
    let took = wait_converged(&nodes, root, &min);
    eprintln!("every node followed org-b's rotation in {took:?}");
}
