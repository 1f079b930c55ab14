//! `provmesh bench mesh`: a federation of real `provmesh run` processes on loopback —
//! `--domains` trust domains, each an authority and `--nodes-per-domain − 1` plain
//! nodes, with dev identities — measuring what the mesh costs and how fast it is:
//!
//! * **At rest**: once every node holds every domain's record and every log's
//!   checkpoint and `--settle` has passed, nothing is appended for `--rest`; the bytes each node's swarm sent and
//!   received (libp2p's `libp2p_bandwidth_bytes_total` counters on its `/metrics`, every
//!   mesh protocol: gossipsub heartbeats and gossip, anti-entropy, Kademlia, identify,
//!   Noise and yamux framing) are read before and after.
//! * **Propagation**: `--checkpoints` times, one entry is appended to one domain's log
//!   (round robin) and the bench waits until every node has adopted the checkpoint that
//!   covers it. A node adopts a checkpoint only once it verified it — the log's
//!   signature, and a consistency proof from the checkpoint it held before — so this is
//!   the time until every node *holds* it, not until a gossip message arrived. Each
//!   node's adoption time comes from its own status (`adopted_at_unix_ms`, its wall
//!   clock; all nodes share one machine's clock); the start is the authority's adoption
//!   of its own checkpoint, i.e. when its mesh task published it.
//!
//! Every node is a separate process, so the figures include real sockets, Noise and
//! yamux, but all of them share this machine's cores with each other and the bench.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::child::{
    ChildError, ChildExit, ChildNode, WorkDir, provmesh_command, provmesh_exe, write_file,
};
use super::log::{parse_positive_duration, percentile_us};
use super::signing::{BenchCa, BenchCaError, SignError, Signer, random_digest};
use crate::config;
use crate::grpc::v1::mesh_service_client::MeshServiceClient;
use provmesh_protocol::proto::provmesh::v1 as pb;

/// How long the federation may take to converge after its nodes started.
const CONVERGENCE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one checkpoint may take to reach every node.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How often nodes are asked for their status while the bench waits.
const POLL_EVERY: Duration = Duration::from_millis(5);
/// Lifetime of the writers' certificates: longer than any reasonable run.
const SIGNER_VALIDITY: Duration = Duration::from_secs(12 * 3600);

/// `provmesh bench mesh`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchMeshArgs {
    /// Trust domains in the federation.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=26))]
    pub domains: u32,
    /// Nodes per domain, the authority included.
    #[arg(long, value_name = "M", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub nodes_per_domain: u32,
    /// Checkpoints whose propagation is measured.
    #[arg(long, value_name = "K", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub checkpoints: u32,
    /// Pause between one checkpoint reaching every node and the next append.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_positive_duration)]
    pub pause: Duration,
    /// How long the converged federation is left alone before the at-rest phase: joins
    /// finish (Kademlia queries, identify, gossipsub grafts) and start-up traffic ends.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub settle: Duration,
    /// How long the federation is left at rest while its traffic is counted.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub rest: Duration,
    /// The nodes' `mesh.anti_entropy_interval`.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub anti_entropy_interval: Duration,
    /// Keep the federation's files (configurations, data, each node's output in
    /// `<name>.log`) in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print exactly one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Why the bench failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchMeshError {
    /// A node or file could not be set up.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// A domain's code-signing CA could not be generated.
    #[error(transparent)]
    Ca(#[from] BenchCaError),
    /// An entry could not be signed.
    #[error("cannot sign an entry: {0}")]
    Sign(#[from] SignError),
    /// `provmesh identity issue` failed.
    #[error("cannot make the dev CA of {trust_domain}: {reason}")]
    DevCa {
        /// The domain.
        trust_domain: String,
        /// What went wrong.
        reason: String,
    },
    /// A node's status could not be read.
    #[error("{node}: {reason}")]
    Status {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// An append was refused.
    #[error("cannot append to {node}: {reason}")]
    Append {
        /// The authority.
        node: String,
        /// Why.
        reason: String,
    },
    /// A node's metrics could not be read.
    #[error("cannot read the metrics of {node}: {reason}")]
    Metrics {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
    /// The federation did not converge, a checkpoint did not reach every node, or a node
    /// held what it should not (another checkpoint, evidence against a log).
    #[error("{0}")]
    Run(String),
    /// The arguments describe no federation to measure.
    #[error("{0}")]
    Arguments(String),
}

/// What the bench measured.
#[derive(Debug, Clone, Serialize)]
pub struct MeshBenchReport {
    /// Trust domains.
    pub domains: u32,
    /// Nodes in all.
    pub nodes: usize,
    /// Seconds from the first start to every node holding every record and checkpoint.
    pub convergence_seconds: f64,
    /// Length of the at-rest phase, seconds.
    pub rest_seconds: f64,
    /// Mesh bytes sent per node per second at rest: mean and the busiest node.
    pub rest_sent_bytes_per_node_per_second: f64,
    /// The busiest node's bytes sent per second at rest.
    pub rest_sent_bytes_per_second_max: f64,
    /// Mesh bytes received per node per second at rest: mean.
    pub rest_received_bytes_per_node_per_second: f64,
    /// Checkpoints measured.
    pub checkpoints: usize,
    /// Time until every node held a checkpoint, ms: 50th percentile.
    pub all_nodes_p50_ms: f64,
    /// … 99th percentile.
    pub all_nodes_p99_ms: f64,
    /// … the slowest.
    pub all_nodes_max_ms: f64,
    /// Time until one node held a checkpoint (every node but its authority, every
    /// checkpoint), ms: 50th percentile.
    pub per_node_p50_ms: f64,
    /// … 99th percentile.
    pub per_node_p99_ms: f64,
    /// The anti-entropy interval the nodes ran with, seconds.
    pub anti_entropy_interval_seconds: f64,
    /// How the nodes stopped: every one cleanly, or what went wrong.
    pub exits: Vec<String>,
}

impl MeshBenchReport {
    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl std::fmt::Display for MeshBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "federation          {} domains, {} nodes (separate processes on loopback)",
            self.domains, self.nodes
        )?;
        writeln!(f, "converged in        {:.1} s", self.convergence_seconds)?;
        writeln!(
            f,
            "at rest ({:.0} s, anti-entropy every {:.0} s): sent {:.0} B/s per node (busiest {:.0} B/s), received {:.0} B/s per node",
            self.rest_seconds,
            self.anti_entropy_interval_seconds,
            self.rest_sent_bytes_per_node_per_second,
            self.rest_sent_bytes_per_second_max,
            self.rest_received_bytes_per_node_per_second
        )?;
        writeln!(
            f,
            "checkpoint to all {} nodes ({} checkpoints): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.nodes,
            self.checkpoints,
            self.all_nodes_p50_ms,
            self.all_nodes_p99_ms,
            self.all_nodes_max_ms
        )?;
        writeln!(
            f,
            "checkpoint to one node: p50 {:.1} ms, p99 {:.1} ms",
            self.per_node_p50_ms, self.per_node_p99_ms
        )?;
        for exit in &self.exits {
            writeln!(f, "warning: {exit}")?;
        }
        Ok(())
    }
}

/// One node of the bench's federation.
pub(super) struct BenchNode {
    pub(super) node: ChildNode,
    trust_domain: String,
    grpc: MeshServiceClient<tonic::transport::Channel>,
    metrics: String,
}

/// The trust domain of the bench's domain `index`.
pub(super) fn domain_name(index: u32) -> String {
    let letter = char::from(b'a' + u8::try_from(index % 26).unwrap_or(0));
    format!("org-{letter}.bench.example")
}

/// A node's configuration. `authority_identity`: for a plain node, its authority's dev
/// CA directory. Authorities issue certificates without quota (benches sign in bursts).
pub(super) fn node_config(
    dir: &Path,
    name: &str,
    trust_domain: &str,
    authority: Option<&Path>,
    bootstrap: &[String],
    federation: &[(String, PathBuf)],
    anti_entropy_interval: Duration,
) -> String {
    let quote = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let mut text = format!(
        "# Written by `provmesh bench mesh`.\n\
         [node]\ntrust_domain = \"{trust_domain}\"\ndata_dir = {data}\n\n\
         [log]\nlevel = \"info\"\n\n\
         [metrics]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\n\
         [shutdown]\ngrace_period = \"5s\"\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\n\
         [grpc]\nlisten = \"127.0.0.1:0\"\n\n\
         [identity]\nsource = \"dev\"\n",
        data = quote(&dir.join(name).join("data")),
    );
    if let Some(authority_identity) = authority {
        text.push_str(&format!("dev_ca_dir = {}\n", quote(authority_identity)));
    }
    text.push_str(&format!(
        "\n[authority]\nenabled = {authority}\n\n",
        authority = authority.is_none()
    ));
    if authority.is_none() {
        text.push_str(&format!(
            "[authority.ca]\nquota_per_minute = 0\n\n\
             [authority.log]\ncode_signing_roots = {roots}\nquota_per_second = 0\n\n",
            roots = quote(&dir.join(format!("{trust_domain}-ca.pem")))
        ));
    }
    let bootstrap: Vec<String> = bootstrap.iter().map(|a| format!("{a:?}")).collect();
    text.push_str(&format!(
        "[mesh]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = [{}]\n\
         anti_entropy_interval = \"{}\"\n\n\
         [mesh.bundle_endpoint]\nenabled = false\n\n",
        bootstrap.join(", "),
        config::format_duration(anti_entropy_interval)
    ));
    for (other, bundle) in federation {
        if other != trust_domain {
            text.push_str(&format!(
                "[[federation.domains]]\ntrust_domain = \"{other}\"\nbundle = {}\n\n",
                quote(bundle)
            ));
        }
    }
    text
}

/// Makes the dev CA of `trust_domain` in the authority's data directory (by issuing a
/// throw-away SVID) and returns the path of its trust bundle, which the other domains
/// are configured with out of band.
pub(super) fn make_dev_ca(
    exe: &Path,
    dir: &Path,
    name: &str,
    trust_domain: &str,
) -> Result<PathBuf, BenchMeshError> {
    let config = dir.join(format!("{name}.toml"));
    write_file(
        &config,
        &node_config(
            dir,
            name,
            trust_domain,
            None,
            &[],
            &[],
            Duration::from_secs(1),
        ),
    )?;
    let out = dir.join(format!("{trust_domain}-bootstrap"));
    let failed = |reason: String| BenchMeshError::DevCa {
        trust_domain: trust_domain.to_owned(),
        reason,
    };
    let output = provmesh_command(exe)
        .args(["identity", "issue", "--config"])
        .arg(&config)
        .args(["--spiffe-id", &format!("spiffe://{trust_domain}/bench")])
        .arg("--out")
        .arg(&out)
        .output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    Ok(out.join("bundle.json"))
}

/// Runs the bench; `progress` gets a line per phase.
pub async fn run(
    args: &BenchMeshArgs,
    progress: &mut dyn Write,
) -> Result<MeshBenchReport, BenchMeshError> {
    let mut dir = match &args.dir {
        Some(dir) => WorkDir::keep(dir)?,
        None => WorkDir::temporary()?,
    };
    let exe = provmesh_exe()?;
    let result = run_in(&exe, &dir.path, args, progress).await;
    if result.is_err() && args.dir.is_none() {
        // Keep what the nodes logged: the error points at it.
        dir.persist();
        let _ = writeln!(
            progress,
            "the nodes' files are kept in {}",
            dir.path.display()
        );
    }
    result
}

async fn run_in(
    exe: &Path,
    dir: &Path,
    args: &BenchMeshArgs,
    progress: &mut dyn Write,
) -> Result<MeshBenchReport, BenchMeshError> {
    if args.domains * args.nodes_per_domain < 2 {
        return Err(BenchMeshError::Arguments(
            "a federation of one node has nothing to propagate to: use --domains 2 or \
             --nodes-per-domain 2"
                .to_owned(),
        ));
    }
    let domains: Vec<String> = (0..args.domains).map(domain_name).collect();
    let mut federation = Vec::new();
    let mut signers = BTreeMap::new();
    for domain in &domains {
        let ca = BenchCa::generate(domain)?;
        write_file(&dir.join(format!("{domain}-ca.pem")), ca.root_pem())?;
        signers.insert(
            domain.clone(),
            ca.issue_signer(&format!("spiffe://{domain}/bench/writer"), SIGNER_VALIDITY)?,
        );
        let bundle = make_dev_ca(exe, dir, &format!("{domain}-authority"), domain)?;
        federation.push((domain.clone(), bundle));
    }

    // Authorities first, each bootstrapping to those before it, then the plain nodes,
    // all bootstrapping to the first authority.
    let started = Instant::now();
    let mut nodes: Vec<BenchNode> = Vec::new();
    let mut bootstrap: Vec<String> = Vec::new();
    for domain in &domains {
        let name = format!("{domain}-authority");
        write_file(
            &dir.join(format!("{name}.toml")),
            &node_config(
                dir,
                &name,
                domain,
                None,
                &bootstrap,
                &federation,
                args.anti_entropy_interval,
            ),
        )?;
        let node = start(exe, dir, &name, domain).await?;
        if let Some(address) = node.node.ready()["mesh"][0].as_str() {
            bootstrap.push(address.to_owned());
        }
        nodes.push(node);
    }
    for domain in &domains {
        let authority_identity = dir
            .join(format!("{domain}-authority"))
            .join("data")
            .join("identity");
        for n in 1..args.nodes_per_domain {
            let name = format!("{domain}-node-{n}");
            write_file(
                &dir.join(format!("{name}.toml")),
                &node_config(
                    dir,
                    &name,
                    domain,
                    Some(&authority_identity),
                    &bootstrap[..1],
                    &federation,
                    args.anti_entropy_interval,
                ),
            )?;
            nodes.push(start(exe, dir, &name, domain).await?);
        }
    }
    let _ = writeln!(
        progress,
        "started {} nodes of {} domains in {}",
        nodes.len(),
        domains.len(),
        dir.display()
    );

    let result = measure(&mut nodes, &domains, &signers, started, args, progress).await;
    let mut exits = Vec::new();
    for node in nodes {
        let name = node.node.name().to_owned();
        let ChildExit { clean, description } = node.node.stop().await;
        if !clean {
            exits.push(format!("{name} stopped uncleanly: {description}"));
        }
    }
    let mut report = result?;
    report.exits = exits;
    Ok(report)
}

pub(super) async fn start(
    exe: &Path,
    dir: &Path,
    name: &str,
    trust_domain: &str,
) -> Result<BenchNode, BenchMeshError> {
    let node = ChildNode::start(exe, dir, name).await?;
    let missing = |key: &str| BenchMeshError::Status {
        node: name.to_owned(),
        reason: format!("the ready file has no {key} address: {}", node.ready()),
    };
    let grpc = node.address("grpc").ok_or_else(|| missing("grpc"))?;
    let metrics = node
        .address("metrics")
        .ok_or_else(|| missing("metrics"))?
        .to_owned();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .map_err(|e| BenchMeshError::Status {
            node: name.to_owned(),
            reason: e.to_string(),
        })?
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| BenchMeshError::Status {
            node: name.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(BenchNode {
        node,
        trust_domain: trust_domain.to_owned(),
        grpc: MeshServiceClient::new(channel),
        metrics,
    })
}

pub(super) async fn status(node: &mut BenchNode) -> Result<pb::MeshStatus, BenchMeshError> {
    node.grpc
        .get_status(pb::GetStatusRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|e| BenchMeshError::Status {
            node: node.node.name().to_owned(),
            reason: e.to_string(),
        })
}

/// The log `origin` in `status`: its size and when the node adopted that checkpoint.
fn log_of<'s>(status: &'s pb::MeshStatus, origin: &str) -> Option<&'s pb::LogStatus> {
    status.logs.iter().find(|l| l.origin == origin)
}

/// Whether `status` holds a record of every domain and a checkpoint of every log.
pub(super) fn converged(status: &pb::MeshStatus, domains: &[String]) -> bool {
    domains.iter().all(|d| {
        status
            .domains
            .iter()
            .any(|s| &s.trust_domain == d && s.record_sequence >= 1)
            && log_of(status, &format!("log.{d}")).is_some_and(|l| l.size >= 1)
    })
}

/// The mesh bytes a node sent and received so far (its `libp2p_bandwidth_bytes_total`).
async fn mesh_bytes(
    client: &reqwest::Client,
    node: &BenchNode,
) -> Result<(u64, u64), BenchMeshError> {
    let failed = |reason: String| BenchMeshError::Metrics {
        node: node.node.name().to_owned(),
        reason,
    };
    let text = client
        .get(format!("http://{}/metrics", node.metrics))
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?
        .text()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (mut sent, mut received, mut counters) = (0u64, 0u64, 0usize);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("provmesh_mesh_libp2p_bandwidth_bytes_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let value: f64 = value.trim().parse().map_err(|_| failed(line.to_owned()))?;
        // Counters of bytes: whole numbers well below 2^53.
        let value = value as u64;
        if labels.contains("direction=\"Outbound\"") {
            sent += value;
            counters += 1;
        } else if labels.contains("direction=\"Inbound\"") {
            received += value;
            counters += 1;
        }
    }
    if counters == 0 {
        return Err(failed(
            "no provmesh_mesh_libp2p_bandwidth_bytes_total counters on /metrics".to_owned(),
        ));
    }
    Ok((sent, received))
}

async fn measure(
    nodes: &mut [BenchNode],
    domains: &[String],
    signers: &BTreeMap<String, Signer>,
    started: Instant,
    args: &BenchMeshArgs,
    progress: &mut dyn Write,
) -> Result<MeshBenchReport, BenchMeshError> {
    // Convergence.
    loop {
        let mut all = true;
        for node in nodes.iter_mut() {
            all &= converged(&status(node).await?, domains);
        }
        if all {
            break;
        }
        if started.elapsed() > CONVERGENCE_TIMEOUT {
            return Err(BenchMeshError::Run(format!(
                "the federation did not converge within {CONVERGENCE_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let convergence = started.elapsed();
    let _ = writeln!(
        progress,
        "converged in {:.1} s; settling for {:.0} s, then at rest for {:.0} s…",
        convergence.as_secs_f64(),
        args.settle.as_secs_f64(),
        args.rest.as_secs_f64()
    );
    tokio::time::sleep(args.settle).await;

    // At rest: nobody asks the nodes anything but their metrics, twice.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| BenchMeshError::Metrics {
            node: "bench".to_owned(),
            reason: e.to_string(),
        })?;
    let mut before = Vec::new();
    for node in nodes.iter() {
        before.push(mesh_bytes(&client, node).await?);
    }
    let rest_started = Instant::now();
    tokio::time::sleep(args.rest).await;
    let rest = rest_started.elapsed().as_secs_f64();
    let mut sent_rates = Vec::new();
    let mut received_rates = Vec::new();
    for (node, (sent0, received0)) in nodes.iter().zip(before) {
        let (sent1, received1) = mesh_bytes(&client, node).await?;
        sent_rates.push(sent1.saturating_sub(sent0) as f64 / rest);
        received_rates.push(received1.saturating_sub(received0) as f64 / rest);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;

    // Propagation.
    let _ = writeln!(
        progress,
        "measuring the propagation of {} checkpoints…",
        args.checkpoints
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| BenchMeshError::Append {
            node: "bench".to_owned(),
            reason: e.to_string(),
        })?;
    let mut to_all_us = Vec::new();
    let mut to_one_us = Vec::new();
    let mut last_report = Instant::now();
    for k in 0..args.checkpoints {
        let domain = &domains[k as usize % domains.len()];
        let origin = format!("log.{domain}");
        let authority = nodes
            .iter()
            .position(|n| &n.trust_domain == domain)
            .ok_or_else(|| BenchMeshError::Run(format!("no authority of {domain}")))?;
        let size = append(&http, &nodes[authority], signers, domain).await?;
        let waited = Instant::now();
        let adopted = loop {
            // A node counts once it adopted exactly the authority's checkpoint: the same
            // size and root, with no evidence against the log.
            let own = status(&mut nodes[authority]).await?;
            let Some(published) = log_of(&own, &origin).filter(|l| l.size == size).cloned() else {
                tokio::time::sleep(POLL_EVERY).await;
                continue;
            };
            let mut adopted = Vec::with_capacity(nodes.len());
            for node in nodes.iter_mut() {
                let status = status(node).await?;
                match log_of(&status, &origin) {
                    Some(log) if log.equivocating => {
                        return Err(BenchMeshError::Run(format!(
                            "{} holds evidence that {origin} equivocated",
                            node.node.name()
                        )));
                    }
                    Some(log) if log.size == size && log.root_hash == published.root_hash => {
                        adopted.push(log.adopted_at_unix_ms);
                    }
                    Some(log) if log.size > size => {
                        return Err(BenchMeshError::Run(format!(
                            "{} holds checkpoint {} of {origin}, past {size}: only the bench \
                             appends to it",
                            node.node.name(),
                            log.size
                        )));
                    }
                    _ => break,
                }
            }
            if adopted.len() == nodes.len() {
                break adopted;
            }
            if waited.elapsed() > PROPAGATION_TIMEOUT {
                return Err(BenchMeshError::Run(format!(
                    "checkpoint {size} of {origin} did not reach every node within \
                     {PROPAGATION_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(POLL_EVERY).await;
        };
        let published = adopted[authority];
        let mut slowest = 0;
        for (i, at) in adopted.iter().enumerate() {
            if i != authority {
                // All nodes share this machine's clock: a node cannot adopt a checkpoint
                // before its authority published it.
                let delay_ms = at.checked_sub(published).ok_or_else(|| {
                    BenchMeshError::Run(format!(
                        "{} adopted checkpoint {size} of {origin} before its authority",
                        nodes[i].node.name()
                    ))
                })?;
                let us = delay_ms * 1000;
                to_one_us.push(us);
                slowest = slowest.max(us);
            }
        }
        to_all_us.push(slowest);
        if last_report.elapsed() > Duration::from_secs(5) {
            let _ = writeln!(progress, "  {} of {} checkpoints", k + 1, args.checkpoints);
            last_report = Instant::now();
        }
        tokio::time::sleep(args.pause).await;
    }
    to_all_us.sort_unstable();
    to_one_us.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(MeshBenchReport {
        domains: args.domains,
        nodes: nodes.len(),
        convergence_seconds: convergence.as_secs_f64(),
        rest_seconds: rest,
        rest_sent_bytes_per_node_per_second: mean(&sent_rates),
        rest_sent_bytes_per_second_max: sent_rates.iter().copied().fold(0.0, f64::max),
        rest_received_bytes_per_node_per_second: mean(&received_rates),
        checkpoints: to_all_us.len(),
        all_nodes_p50_ms: ms(percentile_us(&to_all_us, 50.0)),
        all_nodes_p99_ms: ms(percentile_us(&to_all_us, 99.0)),
        all_nodes_max_ms: ms(to_all_us.last().copied().unwrap_or(0)),
        per_node_p50_ms: ms(percentile_us(&to_one_us, 50.0)),
        per_node_p99_ms: ms(percentile_us(&to_one_us, 99.0)),
        anti_entropy_interval_seconds: args.anti_entropy_interval.as_secs_f64(),
        exits: Vec::new(),
    })
}

/// Appends one new signed entry to `authority`'s log; returns the tree size that covers
/// it (its index + 1).
async fn append(
    http: &reqwest::Client,
    authority: &BenchNode,
    signers: &BTreeMap<String, Signer>,
    domain: &str,
) -> Result<u64, BenchMeshError> {
    let failed = |reason: String| BenchMeshError::Append {
        node: authority.node.name().to_owned(),
        reason,
    };
    let signer = signers
        .get(domain)
        .ok_or_else(|| failed(format!("no signer for {domain}")))?;
    let body = signer.hashedrekord(random_digest()?)?;
    let address = authority
        .node
        .address("http")
        .ok_or_else(|| failed("no HTTP address".to_owned()))?;
    let response = http
        .post(format!("http://{address}/api/v1/log/entries"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| failed(e.to_string()))?;
    if status != reqwest::StatusCode::CREATED {
        return Err(failed(format!("{status}: {text}")));
    }
    // `{"<uuid>": {"logIndex": N, …}}`
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| failed(format!("{e}: {text}")))?;
    json.as_object()
        .and_then(|entries| entries.values().next())
        .and_then(|entry| entry["logIndex"].as_u64())
        .map(|index| index + 1)
        .ok_or_else(|| failed(format!("no logIndex in {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_configs_are_valid() {
        let args = BenchMeshArgs {
            domains: 2,
            nodes_per_domain: 2,
            checkpoints: 1,
            pause: Duration::from_millis(1),
            settle: Duration::from_secs(1),
            rest: Duration::from_secs(1),
            anti_entropy_interval: Duration::from_secs(3),
            dir: None,
            json: false,
        };
        let dir = Path::new("/tmp/provmesh-bench-mesh-config-test");
        let federation = vec![
            (domain_name(0), dir.join("a.json")),
            (domain_name(1), dir.join("b.json")),
        ];
        let bootstrap = vec![
            "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWR6RdMsRntzZdth6tQi5kkBAHZrVLpyJekhAMDHyvju31"
                .to_owned(),
        ];
        for authority in [None, Some(dir.join("identity"))] {
            let text = node_config(
                dir,
                "n",
                &domain_name(0),
                authority.as_deref(),
                &bootstrap,
                &federation,
                args.anti_entropy_interval,
            );
            let config = config::Config::parse(&text).unwrap();
            assert_eq!(config.authority.enabled, authority.is_none());
            assert_eq!(config.federation.domains.len(), 1);
            assert_eq!(config.mesh.anti_entropy_interval, Duration::from_secs(3));
        }
        assert_eq!(domain_name(2), "org-c.bench.example");
    }
}
