//! The federation end to end: three trust domains, each an authority and one or two plain
//! nodes, six or nine real `provmesh run` processes on loopback with ephemeral ports.
//!
//! Each domain's dev CA is made first (`provmesh identity issue` writes its bundle), so
//! every node can be configured with the other domains' bootstrap bundles, out of band,
//! as in SPIFFE federation. The plain node of a domain shares its authority's dev CA
//! (`identity.dev_ca_dir`). Nodes find each other from one bootstrap peer. The set-up
//! (files, configuration, dev CAs, status) is `provmesh_tests::federation`'s.
//!
//! Must hold, within a bound:
//! - every node has every domain's record and every log's latest checkpoint
//!   (`provmesh mesh status --json` of each node);
//! - after one domain's authority rotates its witness key and restarts, every node holds
//!   that domain's new record sequence, and the restarted authority holds the other logs
//!   to the checkpoints it stored;
//! - every node serves each accepted domain's bundle on its SPIFFE bundle endpoint;
//! - every node holds each domain's log cosigned by the witnesses of both other domains,
//!   and serves the checkpoint with those cosignatures as note lines;
//! - when a log shows a second history to one node, every node ends up holding verified
//!   evidence and reports that log, and only it, equivocating; so does a node that joins
//!   afterwards;
//! - an artifact attested in one domain is found from another, checked, judged by policy
//!   (witnesses, builder, equivocation), and its bundle verifies offline.

// Test code: a failed step fails the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use provmesh_tests::command::http;
use provmesh_tests::federation::{self, NodeFiles, first_mesh_address, sequence_of, tail};
use provmesh_tests::node_process::{NodeProcess, provmesh_command};

const BIN: &str = env!("CARGO_BIN_EXE_provmesh-under-test");
const DOMAINS: [&str; 3] = ["org-a.example", "org-b.example", "org-c.example"];
/// The bound on a start, a stop or a command.
const DEADLINE: Duration = Duration::from_secs(30);
/// The bound on the mesh converging.
const CONVERGENCE: Duration = Duration::from_secs(60);

fn start(node: &NodeFiles) -> NodeProcess {
    federation::start(Path::new(BIN), node, DEADLINE)
}

/// `provmesh mesh status --json` of `process`.
fn status(process: &NodeProcess, dir: &Path) -> serde_json::Value {
    federation::status(Path::new(BIN), process, dir, DEADLINE)
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

/// Starts the three domains in `root`, each an authority and `plain_per_domain` plain
/// nodes: authorities first, each bootstrapping to the ones before it, then the plain
/// nodes; returns the nodes, authorities first, in domain order.
fn start_federation(root: &Path, plain_per_domain: usize) -> Vec<(NodeFiles, NodeProcess)> {
    start_federation_with(root, plain_per_domain, |_| String::new())
}

/// [`start_federation`] with `authority_extra(domain)` appended to each authority's
/// configuration (TOML tables of its own).
fn start_federation_with(
    root: &Path,
    plain_per_domain: usize,
    authority_extra: impl Fn(&str) -> String,
) -> Vec<(NodeFiles, NodeProcess)> {
    // Each domain's dev CA and bootstrap bundle, made before any node runs.
    let mut bundles = BTreeMap::new();
    let mut files: Vec<(String, NodeFiles, Vec<NodeFiles>)> = Vec::new();
    for domain in DOMAINS {
        let authority = NodeFiles::new(root, &format!("{domain}-authority"));
        let plain = (1..=plain_per_domain)
            .map(|n| NodeFiles::new(root, &format!("{domain}-node-{n}")))
            .collect();
        let bundle = federation::make_dev_ca(Path::new(BIN), &authority, domain, DEADLINE);
        bundles.insert(domain, bundle);
        files.push((domain.to_owned(), authority, plain));
    }

    let mut nodes: Vec<(NodeFiles, NodeProcess)> = Vec::new();
    let mut bootstrap: Vec<String> = Vec::new();
    let mut plain: Vec<(String, Vec<NodeFiles>, String)> = Vec::new();
    for (domain, authority, plain_nodes) in files {
        federation::write_config(&authority, &domain, None, &bootstrap, &bundles);
        let mut config = std::fs::read_to_string(&authority.config).unwrap();
        config.push_str(&authority_extra(&domain));
        std::fs::write(&authority.config, config).unwrap();
        let process = start(&authority);
        bootstrap.push(first_mesh_address(&process));
        plain.push((domain, plain_nodes, process.url()));
        nodes.push((authority, process));
    }
    for (domain, plain_nodes, url) in plain {
        let authority_dir = root.join(format!("{domain}-authority"));
        for node in plain_nodes {
            federation::write_config(
                &node,
                &domain,
                Some((&authority_dir, &url)),
                &bootstrap[..1],
                &bundles,
            );
            let process = start(&node);
            nodes.push((node, process));
        }
    }

    nodes
}

#[test]
fn three_domains_converge_and_follow_a_key_rotation() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let mut nodes = start_federation(root, 1);
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
    federation::rotate_witness_key(Path::new(BIN), &b_files, DEADLINE);
    let b_process = start(&b_files);
    nodes.insert(1, (b_files, b_process));
    let min: BTreeMap<&str, u64> = [("org-b.example", before + 1)].into();
    let took = wait_converged(&nodes, root, &min);
    eprintln!("every node followed org-b's rotation in {took:?}");
    // The restarted authority held org-a's and org-c's logs to the checkpoints it had
    // stored (those logs did not grow meanwhile): it adopted none of them afresh.
    let restarted = nodes[1].1.output();
    for origin in ["log.org-a.example", "log.org-c.example"] {
        assert!(
            !restarted
                .lines()
                .any(|l| l.contains("checkpoint adopted") && l.contains(origin)),
            "{origin} trusted on first use again after the restart:\n{}",
            tail(&restarted, 40)
        );
    }

    // Witnessing: each domain's witness cosigns the other domains' logs as its mesh
    // adopts their checkpoints, and every node collects the cosignatures.
    let took = wait_cosigned(&nodes, root);
    eprintln!("every node holds every log cosigned by both other domains after {took:?}");
    // A plain node of org-c serves org-a's checkpoint with both cosignatures as note lines.
    let served = root.join("log.org-a.example.cosigned");
    let plain_c = nodes.last().unwrap().1.ready()["grpc"]
        .as_str()
        .unwrap()
        .to_owned();
    let ran = provmesh(
        root,
        "mesh-checkpoint",
        &[
            "mesh",
            "checkpoint",
            "log.org-a.example",
            "--node",
            &plain_c,
            "--out",
            served.to_str().unwrap(),
        ],
    );
    assert!(ran.status.success(), "{}", ran.stderr);
    let note = std::fs::read_to_string(&served).unwrap();
    let lines: Vec<&str> = note.lines().filter(|l| l.starts_with('\u{2014}')).collect();
    assert_eq!(
        lines.len(),
        3,
        "the log's signature and two cosignatures:\n{note}"
    );
    for witness in ["witness.org-b.example", "witness.org-c.example"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("\u{2014} {witness} "))),
            "no cosignature by {witness}:\n{note}"
        );
    }
}

/// Waits until every node reports every log cosigned by the two domains other than the
/// log's; panics with every node's status otherwise.
fn wait_cosigned(nodes: &[(NodeFiles, NodeProcess)], root: &Path) -> Duration {
    let started = Instant::now();
    loop {
        let statuses: Vec<serde_json::Value> = nodes.iter().map(|(_, p)| status(p, root)).collect();
        let cosigned = |status: &serde_json::Value| {
            DOMAINS.iter().all(|d| {
                let log = status["logs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|l| l["origin"] == format!("log.{d}"));
                let by: Vec<&str> = log
                    .and_then(|l| l["cosigned_by"].as_array())
                    .map(|by| by.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                DOMAINS.iter().filter(|o| *o != d).all(|o| by.contains(o))
            })
        };
        if statuses.iter().all(cosigned) {
            return started.elapsed();
        }
        if started.elapsed() > CONVERGENCE {
            let report: Vec<String> = nodes
                .iter()
                .zip(&statuses)
                .map(|((files, process), status)| {
                    format!(
                        "== {}\n{:#}\n-- log tail:\n{}",
                        files.name,
                        status["logs"],
                        tail(&process.output(), 30)
                    )
                })
                .collect();
            panic!(
                "logs not cosigned within {CONVERGENCE:?}:\n{}",
                report.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs `provmesh ARGS` within the bound, its output kept in `dir` under `name`.
fn provmesh(dir: &Path, name: &str, args: &[&str]) -> provmesh_tests::command::Ran {
    let mut command = provmesh_command(Path::new(BIN));
    command.args(args);
    provmesh_tests::command::run_within(command, dir, name, DEADLINE)
}

/// Whether `status` reports the log `origin` equivocating.
fn equivocating(status: &serde_json::Value, origin: &str) -> bool {
    status["logs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["origin"] == origin && l["equivocating"] == true)
}

/// A copy of org-a's log key, from its authority's key file under `root`.
fn org_a_log_key(root: &Path) -> provmesh_protocol::note::Ed25519Signer {
    let key_file = root.join("org-a.example-authority/data/log/log.key");
    provmesh_protocol::note::Ed25519Signer::from_skey(
        std::fs::read_to_string(key_file).unwrap().trim(),
    )
    .unwrap()
}

/// A checkpoint of org-a's log of `size` leaves with a made-up root, signed with a copy
/// of the log's key: a second tree of that size.
fn forged_org_a_checkpoint(root: &Path, size: u64) -> Vec<u8> {
    provmesh_protocol::checkpoint::Checkpoint::new("log.org-a.example".to_owned(), size, [0x5a; 32])
        .unwrap()
        .sign(&[&org_a_log_key(root)])
        .unwrap()
        .to_bytes()
}

/// org-a's log shows `process` (and only it) a second tree of the size it holds: a test
/// tool gossips a forged checkpoint to it. Returns the tool, still connected.
fn show_second_tree(
    root: &Path,
    process: &NodeProcess,
) -> provmesh_tests::hostile_peer::HostilePeer {
    use provmesh_protocol::mesh::wire::{self, Gossip};
    let origin = "log.org-a.example";
    let held = status(process, root)["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["origin"] == origin)
        .and_then(|l| l["size"].as_u64())
        .unwrap();
    let tool = provmesh_tests::hostile_peer::HostilePeer::new();
    tool.connect(&first_mesh_address(process), DEADLINE);
    tool.publish(
        &wire::log_topic(origin),
        wire::encode_gossip(&Gossip::Checkpoint(forged_org_a_checkpoint(root, held))),
        DEADLINE,
    );
    tool
}

/// org-a's log equivocates toward one node: in a federation of three domains, each an
/// authority and two plain nodes, a test tool holding a copy of org-a's log key signs a
/// checkpoint of the size every node holds with another root, and gossips it to one plain
/// node of org-c only. That node turns the two checkpoints into evidence and
/// gossips it; every node verifies it and reports org-a's log equivocating, and no other
/// log.
#[test]
fn a_log_showing_a_second_history_to_one_node_is_convicted_by_every_node() {
    use provmesh_protocol::mesh::wire::{Request, Response, Summary};

    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let nodes = start_federation(root, 2);
    assert_eq!(nodes.len(), 9);
    wait_converged(&nodes, root, &BTreeMap::new());

    // The size of org-a's log that one plain node of org-c holds, and a second tree of it.
    let (_, c_process) = nodes
        .iter()
        .find(|(files, _)| files.name == "org-c.example-node-2")
        .unwrap();
    let origin = "log.org-a.example";
    let tool = show_second_tree(root, c_process);
    let took = wait_convicted(&nodes, root, origin);
    eprintln!("every node holds verified evidence {took:?} after the forged checkpoint");

    // Anti-entropy carries evidence too, so a node that joins after the conviction was
    // gossiped learns it: a summary listing no evidence is answered with the document,
    // one listing its id is not.
    let tool_id = "spiffe://org-c.example/provmesh/node/evidence-tool";
    let svid_dir = root.join("tool-svid");
    federation::issue_svid(
        Path::new(BIN),
        &nodes[2].0.config,
        tool_id,
        &svid_dir,
        DEADLINE,
    );
    let b_node = tool.connect(&first_mesh_address(&nodes[1].1), DEADLINE);
    tool.bind(
        &b_node,
        &federation::IssuedSvid::load(&svid_dir, tool_id),
        DEADLINE,
    );
    let summary = |evidence_ids| {
        Request::Summary(Summary {
            logs: Default::default(),
            domains: Vec::new(),
            evidence_ids,
        })
    };
    let Response::Summary { evidence, .. } = tool.request(&b_node, &summary(vec![]), DEADLINE)
    else {
        panic!("no summary answer");
    };
    assert_eq!(evidence.len(), 1);
    let proven = provmesh_protocol::evidence::Evidence::from_json(&evidence[0])
        .unwrap()
        .verify()
        .unwrap();
    let Response::Summary { evidence, .. } =
        tool.request(&b_node, &summary(vec![proven.id]), DEADLINE)
    else {
        panic!("no summary answer");
    };
    assert!(evidence.is_empty());
    // And a node started now ends up convicting the log.
    let bundles: BTreeMap<&str, std::path::PathBuf> = DOMAINS
        .iter()
        .map(|d| {
            (
                *d,
                root.join(format!("{d}-authority-bootstrap/bundle.json")),
            )
        })
        .collect();
    let late = NodeFiles::new(root, "org-b.example-late");
    federation::write_config(
        &late,
        "org-b.example",
        Some((&root.join("org-b.example-authority"), &nodes[1].1.url())),
        &[first_mesh_address(&nodes[0].1)],
        &bundles,
    );
    let late = vec![(late.clone(), start(&late))];
    let took = wait_convicted(&late, root, origin);
    eprintln!("a node joining later holds the evidence {took:?} after it started");
    // The evidence, taken from a node that did not find it, convinces an outsider
    // holding org-a's log key; one changed byte does not.
    let b_grpc = nodes[1].1.ready()["grpc"].as_str().unwrap().to_owned();
    let list = provmesh(
        root,
        "list",
        &["evidence", "list", "--json", "--node", &b_grpc],
    );
    assert!(list.status.success(), "{}", list.describe());
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let items = list["evidence"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list:#}");
    assert_eq!(items[0]["kind"], "same-size");
    let id = items[0]["id"].as_str().unwrap();
    let file = root.join("evidence.json");
    let file_arg = file.to_str().unwrap();
    let got = provmesh(
        root,
        "get",
        &[
            "evidence",
            "get",
            &id[..12],
            "--node",
            &b_grpc,
            "--out",
            file_arg,
        ],
    );
    assert!(got.status.success(), "{}", got.describe());
    let vkey = provmesh_protocol::note::Verifier::from(org_a_log_key(root).verifier()).to_vkey();
    let verified = provmesh(
        root,
        "verify",
        &["evidence", "verify", file_arg, "--log-key", &vkey],
    );
    assert!(verified.status.success(), "{}", verified.describe());
    assert!(
        verified
            .stdout
            .starts_with("PROVEN: log.org-a.example equivocated")
    );
    let mut document = std::fs::read(&file).unwrap();
    let at = document.len() / 2;
    document[at] = if document[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&file, &document).unwrap();
    let changed = provmesh(
        root,
        "verify-changed",
        &["evidence", "verify", file_arg, "--log-key", &vkey],
    );
    assert_eq!(changed.status.code(), Some(1), "{}", changed.describe());

    // Operators see it on /metrics.
    for (files, process) in &nodes {
        let metrics = process.ready()["metrics"].as_str().unwrap().to_owned();
        let (_, text) = http("GET", &metrics, "/metrics", "");
        assert!(
            text.lines()
                .any(|l| l == "provmesh_mesh_equivocating_logs 1"),
            "{}: {text}",
            files.name
        );
    }
}

/// Waits until every node reports `origin`, and no other log, equivocating; returns how
/// long that took.
fn wait_convicted(nodes: &[(NodeFiles, NodeProcess)], root: &Path, origin: &str) -> Duration {
    let started = Instant::now();
    loop {
        let statuses: Vec<serde_json::Value> = nodes.iter().map(|(_, p)| status(p, root)).collect();
        if statuses.iter().all(|s| equivocating(s, origin)) {
            for s in &statuses {
                for other in DOMAINS.map(|d| format!("log.{d}")) {
                    assert!(
                        other == origin || !equivocating(s, &other),
                        "{other} reported equivocating"
                    );
                }
            }
            return started.elapsed();
        }
        assert!(
            started.elapsed() < CONVERGENCE,
            "not every node holds evidence within {CONVERGENCE:?}:\n{}",
            nodes
                .iter()
                .zip(&statuses)
                .map(|((f, p), s)| format!("== {}\n{s:#}\n{}\n", f.name, tail(&p.output(), 20)))
                .collect::<String>()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// org-a's log shows org-b's witness a second tree of a size it cosigned, through C2SP
/// tlog-witness on one of org-b's plain nodes (which forwards to its authority): the
/// witness refuses it (409) and the two signed checkpoints become evidence that every
/// node verifies.
#[test]
fn a_second_tree_pushed_to_a_witness_becomes_evidence() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let nodes = start_federation(root, 1);
    wait_converged(&nodes, root, &BTreeMap::new());
    let a_authority = &nodes[0].1;
    // org-b's plain node serves add-checkpoint by forwarding to its authority's witness.
    let (b_node_files, b_node) = &nodes[4];
    assert_eq!(b_node_files.name, "org-b.example-node-1");

    // org-b's witness cosigns org-a's real checkpoint, then is shown another tree of
    // the same size, signed with a copy of org-a's log key.
    let (status_code, note) = http("GET", &a_authority.http().to_string(), "/checkpoint", "");
    assert_eq!(status_code, 200, "{note}");
    let witness = b_node.http().to_string();
    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    let (mut status_code, mut answer) = http(
        "POST",
        &witness,
        "/add-checkpoint",
        &format!("old 0\n\n{note}"),
    );
    if status_code == 409 {
        // The witness cosigned it already, as its mesh adopted it: the 409 names that
        // size, and the same checkpoint is cosigned again from there.
        assert_eq!(answer.trim(), size.to_string());
        (status_code, answer) = http(
            "POST",
            &witness,
            "/add-checkpoint",
            &format!("old {size}\n\n{note}"),
        );
    }
    assert_eq!(status_code, 200, "{answer}");
    let forged = forged_org_a_checkpoint(root, size);
    let forged = String::from_utf8(forged).unwrap();
    let (status_code, answer) = http(
        "POST",
        &witness,
        "/add-checkpoint",
        &format!("old {size}\n\n{forged}"),
    );
    assert_eq!(status_code, 409, "{answer}");
    let took = wait_convicted(&nodes, root, "log.org-a.example");
    eprintln!("every node holds the witness's evidence after {took:?}");
}

/// `provmesh lookup` through `node` (its gRPC address) of `artifact`, with the policy
/// file `policy` if any: the exit status and the JSON answer.
fn lookup(
    root: &Path,
    node: &str,
    artifact: &Path,
    policy: Option<&Path>,
) -> (Option<i32>, serde_json::Value) {
    let mut args = vec![
        "lookup",
        artifact.to_str().unwrap(),
        "--node",
        node,
        "--output",
        "json",
    ];
    if let Some(policy) = policy {
        args.extend(["--policy", policy.to_str().unwrap()]);
    }
    let ran = provmesh(root, "lookup", &args);
    let answer = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("lookup printed no JSON ({e}):\n{}", ran.describe()));
    (ran.status.code(), answer)
}

/// Hostile input to the mesh and provenance RPCs of a plain node: too many or malformed
/// domain names, a search on a node that keeps no index, a huge page size, a garbage
/// digest — each a clean status code with its reason.
fn refusals_are_clean_status_codes(node: &str) {
    use provmesh_node::grpc::v1::mesh_service_client::MeshServiceClient;
    use provmesh_node::grpc::v1::provenance_service_client::ProvenanceServiceClient;
    use provmesh_node::grpc::v1::{
        ExportTrustedRootRequest, GetProvenanceRequest, SearchProvenanceRequest,
    };
    use tonic::Code;

    fn expect<T>(result: Result<tonic::Response<T>, tonic::Status>, code: Code, needle: &str) {
        let status = result.map(|_| ()).unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(needle), "{status:?}");
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{node}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut mesh = MeshServiceClient::new(channel.clone());
        let mut provenance = ProvenanceServiceClient::new(channel);
        let many = (0..65).map(|i| format!("org-{i}.example")).collect();
        expect(
            mesh.export_trusted_root(ExportTrustedRootRequest {
                trust_domains: many,
            })
            .await,
            Code::InvalidArgument,
            "at most 64",
        );
        expect(
            mesh.export_trusted_root(ExportTrustedRootRequest {
                trust_domains: vec!["\u{0}Not A Domain".into()],
            })
            .await,
            Code::InvalidArgument,
            "is not a trust domain",
        );
        expect(
            provenance
                .search_provenance(SearchProvenanceRequest {
                    page_size: i32::MAX,
                    ..SearchProvenanceRequest::default()
                })
                .await,
            Code::FailedPrecondition,
            "keeps no provenance index",
        );
        expect(
            provenance
                .get_provenance(GetProvenanceRequest {
                    digest: "sha256:".to_owned() + &"g".repeat(64),
                    policy: String::new(),
                })
                .await,
            Code::InvalidArgument,
            "not a digest",
        );
    });
}

/// An artifact attested in org-a is found from a plain node of org-c: the record comes
/// from org-a's authority over the mesh and is checked under org-a's accepted keys; it is
/// allowed, cosigned by org-b and org-c; a policy that does not allow its builder denies
/// it with that reason; its bundle verifies offline with `provmesh verify` and
/// sigstore-python; and once org-a's log is proven to equivocate, it is denied for that.
/// org-a's read scope admits org-c only: org-b's nodes find nothing.
#[test]
fn an_artifact_attested_in_one_domain_is_found_and_judged_from_another() {
    use provmesh_tests::sigstore_python::{SigstorePython, VerifyIdentity};

    const BUILDER: &str = "https://ci.org-a.example/builders/linux";
    const SIGNER: &str = "spiffe://org-a.example/ci/build";
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    // org-a serves its records to org-c's nodes, not to org-b's (its read scope).
    let nodes = start_federation_with(root, 1, |domain| match domain {
        "org-a.example" => "\n[authority.read_scope]\ndomains = [\"org-c.example\"]\n".to_owned(),
        _ => String::new(),
    });
    wait_converged(&nodes, root, &BTreeMap::new());
    let (a_files, a_process) = &nodes[0];
    let c_node = nodes.last().unwrap().1.ready()["grpc"]
        .as_str()
        .unwrap()
        .to_owned();

    // A build in org-a attests SLSA provenance for its artifact.
    let token = provmesh(
        root,
        "jwt",
        &[
            "identity",
            "jwt",
            "--config",
            a_files.config.to_str().unwrap(),
            "--spiffe-id",
            SIGNER,
            "--audience",
            "sigstore",
        ],
    );
    assert!(token.status.success(), "{}", token.describe());
    let token_file = root.join("token");
    std::fs::write(&token_file, &token.stdout).unwrap();
    let artifact = root.join("artifact");
    std::fs::write(&artifact, b"built in org-a\n").unwrap();
    let attested = provmesh(
        root,
        "attest",
        &[
            "attest",
            artifact.to_str().unwrap(),
            "--slsa",
            "--builder-id",
            BUILDER,
            "--build-type",
            "https://provmesh.example/build/make/v1",
            "--external-parameters",
            r#"{"repository":"https://git.org-a.example/app"}"#,
            "--authority",
            &a_process.url(),
            "--identity-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    assert!(attested.status.success(), "{}", attested.describe());

    // From org-c: found, checked, allowed — once both other domains cosigned a
    // checkpoint holding it.
    let started = Instant::now();
    let answer = loop {
        let (code, answer) = lookup(root, &c_node, &artifact, None);
        let witnessed = answer["records"][0]["witnessing_domains"]
            .as_array()
            .is_some_and(|w| w.len() == 2);
        if code == Some(0) && witnessed {
            break answer;
        }
        assert!(
            started.elapsed() < CONVERGENCE,
            "not found cosigned from org-c within {CONVERGENCE:?}: {answer:#}\n{}",
            tail(&a_process.output(), 30)
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    eprintln!(
        "found from org-c, cosigned by two domains, {:?} after attesting",
        started.elapsed()
    );
    let records = answer["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{answer:#}");
    let record = &records[0];
    assert_eq!(record["trust_domain"], "org-a.example");
    assert_eq!(record["signer"], SIGNER);
    assert_eq!(record["builder_id"], BUILDER);
    assert_eq!(
        record["witnessing_domains"],
        serde_json::json!(["org-b.example", "org-c.example"])
    );
    assert_eq!(record["verdict"]["allowed"], true);

    // The read scope: org-a's own plain node gets the record, org-b's node does not.
    let grpc_of = |i: usize| nodes[i].1.ready()["grpc"].as_str().unwrap().to_owned();
    let (code, own) = lookup(root, &grpc_of(3), &artifact, None);
    assert_eq!(code, Some(0), "{own:#}");
    assert_eq!(own["records"].as_array().unwrap().len(), 1, "{own:#}");
    let (code, outside) = lookup(root, &grpc_of(4), &artifact, None);
    assert_eq!(code, Some(1), "{outside:#}");
    assert!(
        outside["records"].as_array().unwrap().is_empty(),
        "{outside:#}"
    );
    assert_eq!(
        outside["verdict"]["reasons"][0]["code"], "no-record",
        "{outside:#}"
    );

    // Policies: two witnessing domains required — allowed; another builder only — denied.
    let policy = |name: &str, text: &str| {
        let path = root.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let witnessed = policy(
        "witnessed.toml",
        "version = 1\nmin_witnessing_domains = 2\n",
    );
    assert_eq!(
        lookup(root, &c_node, &artifact, Some(&witnessed)).0,
        Some(0)
    );
    let other_builder = policy(
        "builder.toml",
        "version = 1\n[[domain]]\ntrust_domain = \"org-a.example\"\nbuilders = [\"https://ci.org-a.example/builders/windows\"]\n",
    );
    let (code, denied) = lookup(root, &c_node, &artifact, Some(&other_builder));
    assert_eq!(code, Some(1), "{denied:#}");
    assert_eq!(
        denied["records"][0]["verdict"]["reasons"][0]["code"], "builder-not-allowed",
        "{denied:#}"
    );

    // The bundle from org-c verifies offline under org-a's trust, with both verifiers:
    // the trust as org-c's node accepted it from org-a's domain record
    // (MeshService.ExportTrustedRoot), and as org-a's authority exports it.
    let bundle = root.join("found.sigstore.json");
    std::fs::write(&bundle, serde_json::to_vec(&record["bundle"]).unwrap()).unwrap();
    let trust = root.join("org-a-trust.json");
    let exported = provmesh(
        root,
        "export",
        &[
            "trust-root",
            "export",
            "--node",
            &c_node,
            "--domain",
            "org-a.example",
            "--client-config",
            "--out",
            trust.to_str().unwrap(),
        ],
    );
    assert!(exported.status.success(), "{}", exported.describe());
    assert!(
        exported.stdout.contains("org-a.example"),
        "{}",
        exported.describe()
    );
    let from_authority = root.join("org-a-trust-from-authority.json");
    let exported = provmesh(
        root,
        "export",
        &[
            "trust-root",
            "export",
            "--authority",
            &a_process.url(),
            "--client-config",
            "--out",
            from_authority.to_str().unwrap(),
        ],
    );
    assert!(exported.status.success(), "{}", exported.describe());
    let unknown = provmesh(
        root,
        "export",
        &[
            "trust-root",
            "export",
            "--node",
            &c_node,
            "--domain",
            "org-z.example",
            "--out",
            root.join("none.json").to_str().unwrap(),
        ],
    );
    assert!(!unknown.status.success());
    assert!(
        unknown
            .stderr
            .contains("org-z.example is not a trust domain this node accepted"),
        "{}",
        unknown.describe()
    );
    refusals_are_clean_status_codes(&c_node);
    for trust in [&trust, &from_authority] {
        let verified = provmesh(
            root,
            "verify",
            &[
                "verify",
                artifact.to_str().unwrap(),
                "--bundle",
                bundle.to_str().unwrap(),
                "--identity",
                SIGNER,
                "--trust-config",
                trust.to_str().unwrap(),
            ],
        );
        assert!(verified.status.success(), "{}", verified.describe());
        match SigstorePython::find() {
            Some(sigstore) => sigstore.assert_accepts(&VerifyIdentity {
                trust_config: trust,
                bundle: &bundle,
                identity: SIGNER,
                issuer: "spiffe://org-a.example",
                artifact: &artifact,
            }),
            None => eprintln!("sigstore-python not set up (scripts/setup-verifiers): skipped"),
        }
    }

    // Admission on org-c's node: a Pod running the artifact as its image is admitted; a
    // Deployment that also runs an unattested image and a tag-only one is not, with why.
    let c_http = nodes.last().unwrap().1.http().to_string();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(&artifact).unwrap(),
    ));
    let pod = admission_review("pod.json", &digest);
    let (status_code, answer) = http("POST", &c_http, "/admission/v1/validate", &pod);
    assert_eq!(status_code, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
    let deployment = admission_review("deployment.json", &digest);
    let (status_code, answer) = http("POST", &c_http, "/admission/v1/validate", &deployment);
    assert_eq!(status_code, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.initContainers[migrate]") && message.contains("no-record"),
        "{message}"
    );
    assert!(
        message.contains("spec.ephemeralContainers[debug] busybox:1.36: tag-only"),
        "{message}"
    );
    assert!(!message.contains("spec.containers[app]"), "{message}");
    let (status_code, _) = http("POST", &c_http, "/admission/v1/validate", "{\"kind\": 1}");
    assert_eq!(status_code, 400);

    // org-a's log shows a second tree to org-c's node: once convicted, denied for it —
    // by lookups and by admission.
    let origin = "log.org-a.example";
    let _tool = show_second_tree(root, &nodes.last().unwrap().1);
    wait_convicted(&nodes, root, origin);
    let (code, denied) = lookup(root, &c_node, &artifact, None);
    assert_eq!(code, Some(1), "{denied:#}");
    assert_eq!(denied["records"][0]["log_equivocating"], true);
    assert_eq!(
        denied["records"][0]["verdict"]["reasons"][0]["code"], "equivocating-log",
        "{denied:#}"
    );
    let (_, answer) = http("POST", &c_http, "/admission/v1/validate", &pod);
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("equivocating-log"), "{message}");
}

/// The AdmissionReview fixture `name` (tests/fixtures/admission/) with `attested` as the
/// attested image's digest and a digest nobody logged as the unattested one's.
fn admission_review(name: &str, attested: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/admission")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap()
        .replace("{{ATTESTED}}", attested)
        .replace("{{UNATTESTED}}", &"0e".repeat(32))
}
