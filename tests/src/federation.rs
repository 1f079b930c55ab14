//! Federations of real `provmesh run` processes for the mesh's end-to-end tests: each
//! node's files and configuration (dev identity, mesh on loopback with ephemeral ports,
//! the other domains' bootstrap bundles), dev CAs made before any node runs, SVIDs issued
//! from them with `provmesh identity issue` and loaded back for signing, and
//! `provmesh mesh status --json` of a running node.
//!
//! Each domain's dev CA is made first (`provmesh identity issue` writes its bundle), so
//! every node can be configured with the other domains' bootstrap bundles, out of band,
//! as in SPIFFE federation. A plain node of a domain shares its authority's dev CA
//! (`identity.dev_ca_dir`).
//!
//! The binary is the test's `provmesh-under-test`, passed in (see [`crate::node_process`]).
//! The functions panic on failure: they are test scaffolding.

// Test scaffolding: a failed step fails the calling test (see the module header).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provmesh_node::identity::NodeSvid;
use provmesh_node::identity::svid_signer::SvidSigner;
use provmesh_protocol::machine::Timestamp;
use provmesh_protocol::spiffe::x509::verify_x509_svid;
use provmesh_protocol::spiffe::{SpiffeId, TrustBundle};

use crate::command::run_within;
use crate::node_process::{NodeProcess, provmesh_command, toml_path};

/// One node's files: its directory (data, ready file, output) and configuration file.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    /// The node's name in file names and messages.
    pub name: String,
    /// `<root>/<name>`: the data directory is `data` in it.
    pub dir: PathBuf,
    /// `<root>/<name>.toml`.
    pub config: PathBuf,
}

impl NodeFiles {
    /// The files of node `name` under `root`; creates its directory.
    pub fn new(root: &Path, name: &str) -> NodeFiles {
        let files = NodeFiles {
            name: name.to_owned(),
            dir: root.join(name),
            config: root.join(format!("{name}.toml")),
        };
        std::fs::create_dir_all(&files.dir).unwrap();
        files
    }

    /// The node's dev CA directory (an authority's is shared with its domain's nodes).
    pub fn dev_ca_dir(&self) -> PathBuf {
        self.dir.join("data/identity")
    }
}

/// Writes the configuration of a node of `domain`: an authority (`authority` is `None`),
/// or a plain node sharing the dev CA of the authority in directory `authority.0` and
/// forwarding to its HTTP API at `authority.1`. It logs at info with
/// `provmesh_node::mesh=debug`, listens on loopback with ephemeral ports (HTTP, gRPC,
/// mesh, bundle endpoint), dials `bootstrap`, runs anti-entropy every second, serves the
/// admission webhook, and federates with every domain of `bundles` except its own.
pub fn write_config(
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
         [metrics]\nlisten = \"127.0.0.1:0\"\n\n\
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
    // Every node answers the admission webhook, under the empty policy.
    text.push_str("[admission]\nenabled = true\n\n");
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

/// Runs `provmesh identity issue --config <config> --spiffe-id <spiffe_id> --out <out>`
/// within `within` (its output files in `out`'s parent): the dev CA of the configuration
/// issues an X.509-SVID, created with the CA if the CA does not exist yet.
pub fn issue_svid(bin: &Path, config: &Path, spiffe_id: &str, out: &Path, within: Duration) {
    let mut command = provmesh_command(bin);
    command
        .args(["identity", "issue", "--config"])
        .arg(config)
        .args(["--spiffe-id", spiffe_id])
        .arg("--out")
        .arg(out);
    let name = format!(
        "issue-{}",
        out.file_name().unwrap_or_default().to_string_lossy()
    );
    let ran = run_within(command, out.parent().unwrap(), &name, within);
    assert!(ran.status.success(), "{}", ran.describe());
}

/// Makes the dev CA of the authority `node` of `domain` before it runs: writes a
/// configuration without federation and issues a bootstrap SVID from it. Returns the
/// domain's bundle (`bundle.json`), which the other domains are configured with.
///
/// The configuration is overwritten with the real one before the node starts.
pub fn make_dev_ca(bin: &Path, node: &NodeFiles, domain: &str, within: Duration) -> PathBuf {
    write_config(node, domain, None, &[], &BTreeMap::new());
    let out = node
        .dir
        .parent()
        .unwrap()
        .join(format!("{}-bootstrap", node.name));
    issue_svid(
        bin,
        &node.config,
        &format!("spiffe://{domain}/bootstrap"),
        &out,
        within,
    );
    out.join("bundle.json")
}

/// Runs `provmesh authority rotate-witness-key` on the (stopped) authority `node`,
/// within `within`: its next start publishes a new domain record.
pub fn rotate_witness_key(bin: &Path, node: &NodeFiles, within: Duration) {
    let mut command = provmesh_command(bin);
    command
        .args(["authority", "rotate-witness-key", "--config"])
        .arg(&node.config);
    let ran = run_within(command, &node.dir, "rotate-witness-key", within);
    assert!(ran.status.success(), "{}", ran.describe());
}

/// Starts `bin run` on `node`'s configuration, ready within `within`.
pub fn start(bin: &Path, node: &NodeFiles, within: Duration) -> NodeProcess {
    NodeProcess::start(bin, &node.config, &node.dir, &node.name, within)
}

/// The first mesh address (`…/p2p/<peer id>`) of a running node.
pub fn first_mesh_address(process: &NodeProcess) -> String {
    process.ready()["mesh"][0].as_str().unwrap().to_owned()
}

/// `provmesh mesh status --json` of `process`, within `within` (its output files in
/// `dir`).
pub fn status(
    bin: &Path,
    process: &NodeProcess,
    dir: &Path,
    within: Duration,
) -> serde_json::Value {
    let grpc = process.ready()["grpc"].as_str().unwrap().to_owned();
    let mut command = provmesh_command(bin);
    command.args(["mesh", "status", "--json", "--node", &grpc]);
    let ran = run_within(command, dir, "mesh-status", within);
    assert!(ran.status.success(), "{}", ran.describe());
    serde_json::from_str(&ran.stdout).unwrap()
}

/// The record sequence `status` holds for `domain` (0 without a record).
pub fn sequence_of(status: &serde_json::Value, domain: &str) -> u64 {
    status["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["trust_domain"] == domain)
        .map_or(0, |d| d["record_sequence"].as_u64().unwrap())
}

/// `peer_id`'s entry in `status["peers"]` (the connected peers), if it has one.
pub fn peer_entry<'a>(
    status: &'a serde_json::Value,
    peer_id: &str,
) -> Option<&'a serde_json::Value> {
    status["peers"]
        .as_array()?
        .iter()
        .find(|p| p["peer_id"] == peer_id)
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// An X.509-SVID that `provmesh identity issue` wrote, loaded back: its key signs node
/// and domain records as the SPIFFE ID in it.
#[derive(Debug, Clone)]
pub struct IssuedSvid {
    /// The SVID with its key.
    pub svid: NodeSvid,
    /// The bundle of the CA that issued it.
    pub bundle: TrustBundle,
}

impl IssuedSvid {
    /// Reads `svid.pem`, `svid.key` and `bundle.json` from `dir`, and checks that the
    /// chain is a valid X.509-SVID for `spiffe_id` under the bundle now (its end comes
    /// from that check).
    pub fn load(dir: &Path, spiffe_id: &str) -> IssuedSvid {
        let chain_der = pem_blocks(&std::fs::read_to_string(dir.join("svid.pem")).unwrap());
        let key = pem_blocks(&std::fs::read_to_string(dir.join("svid.key")).unwrap());
        assert_eq!(key.len(), 1, "one private key in {}", dir.display());
        let bundle = TrustBundle::from_json(&std::fs::read(dir.join("bundle.json")).unwrap())
            .unwrap_or_else(|e| panic!("{}/bundle.json: {e}", dir.display()));
        let expected = SpiffeId::parse(spiffe_id).unwrap();
        let leaf = verify_now(&chain_der, &expected, &bundle);
        assert_eq!(leaf.spiffe_id, expected, "the SVID in {}", dir.display());
        let not_after_secs = u64::try_from(leaf.not_after_unix).unwrap();
        IssuedSvid {
            svid: NodeSvid {
                spiffe_id: leaf.spiffe_id,
                chain_der,
                private_key_pkcs8: key.into_iter().next().unwrap(),
                not_after: UNIX_EPOCH + Duration::from_secs(not_after_secs),
            },
            bundle,
        }
    }

    /// The SVID's SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.svid.spiffe_id
    }

    /// A signer with the SVID's key.
    pub fn signer(&self) -> SvidSigner {
        SvidSigner::new(&self.svid).unwrap()
    }
}

/// `chain_der` verified as an X.509-SVID of `expected`'s trust domain under `bundle`, now.
fn verify_now(
    chain_der: &[Vec<u8>],
    expected: &SpiffeId,
    bundle: &TrustBundle,
) -> provmesh_protocol::spiffe::x509::VerifiedX509Svid {
    verify_x509_svid(
        chain_der,
        expected.trust_domain(),
        bundle,
        Timestamp::from_unix_seconds(unix_now()),
    )
    .unwrap_or_else(|e| panic!("the issued SVID does not verify under its bundle: {e}"))
}

/// The wall clock, Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The DER contents of every PEM block in `text`.
fn pem_blocks(text: &str) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("-----BEGIN ") {
            body = Some(String::new());
        } else if line.starts_with("-----END ") {
            let b64 = body.take().expect("a PEM END without BEGIN");
            blocks.push(STANDARD.decode(b64).expect("PEM base64"));
        } else if let Some(body) = body.as_mut() {
            body.push_str(line);
        }
    }
    blocks
}
