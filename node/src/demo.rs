//! `provmesh demo`: the whole mission on one machine. Three trust domains on loopback,
//! each an authority and two nodes — real `provmesh run` child processes with dev
//! identities, real sockets, a real libp2p mesh — then a narrated scenario:
//!
//! 1. the federation forms (every node accepts every domain's record);
//! 2. a build in each domain signs an artifact and attests SLSA provenance for it through
//!    its domain's CA and log, exactly as `provmesh sign` / `provmesh attest` do;
//! 3. a consumer in another domain looks each artifact up and gets `allowed`, with the
//!    bundles and the witnessing domains;
//! 4. org-a's log equivocates: the demo, holding a copy of org-a's log key as an attacker
//!    would, shows org-b's witness a second tree (C2SP tlog-witness `add-checkpoint`); the
//!    witness turns it into evidence, every node ends up holding it, and the lookup of
//!    org-a's artifact turns `denied`.
//!
//! It prints each step as it happens, writes `DIR/manifest.json` (domains with node
//! addresses and ClientTrustConfig paths, artifacts with bundles, signer and issuer) so
//! other tools can check the outputs, then keeps serving and prints commands to try until
//! interrupted — or, with `--exit`, stops after the scenario, failing if any step did.
//!
//! The equivocation step needs the `demo-equivocation` cargo feature (on by default): it
//! forges a checkpoint with a log key read from the demo's own files, something no node
//! ever does.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use provmesh_protocol::proto::provmesh::v1 as pb;

use crate::bench::child::{
    ChildError, ChildNode, WorkDir, provmesh_command, provmesh_exe, write_file,
};
use crate::bench::signing::random_digest;
use crate::grpc::v1::mesh_service_client::MeshServiceClient;
use crate::grpc::v1::provenance_service_client::ProvenanceServiceClient;
use crate::signing::{
    Predicate, SignOptions, SlsaParameters, TokenSource, TrustFormat, TrustSource, attest_file,
    export, sign_file,
};

/// The demo's trust domains.
pub const DOMAINS: [&str; 3] = ["org-a.example", "org-b.example", "org-c.example"];
/// Plain nodes per domain, besides its authority.
const PLAIN_NODES: usize = 2;
/// How long the federation may take to form, and a record to be found or convicted.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often nodes are polled while the demo waits.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// The domain whose log equivocates.
const EQUIVOCATING: &str = "org-a.example";

/// `provmesh demo`.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct DemoArgs {
    /// Keep the nodes' state and the outputs (artifacts, bundles, trust configs,
    /// manifest.json) in DIR instead of a temporary directory removed at the end.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Stop after the scenario instead of serving until interrupted; the exit status is
    /// non-zero if any step failed.
    #[arg(long)]
    pub exit: bool,
}

/// Why the demo could not run at all (a failed scenario step is reported, not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// A node could not be set up or started.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// Something the demo needs failed.
    #[error("{0}")]
    Setup(String),
}

/// One step of the scenario and how it went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// What it does.
    pub name: String,
    /// Whether it did.
    pub ok: bool,
    /// What happened.
    pub detail: String,
}

/// A node of the demo.
struct DemoNode {
    name: String,
    domain: &'static str,
    authority: bool,
    /// Where its state lives (the equivocation step reads the log key there).
    #[cfg_attr(not(feature = "demo-equivocation"), allow(dead_code))]
    data_dir: PathBuf,
    child: ChildNode,
}

impl DemoNode {
    fn address(&self, key: &str) -> Result<String, String> {
        self.child
            .address(key)
            .map(str::to_owned)
            .ok_or_else(|| format!("{} has no {key} address", self.name))
    }
}

/// An artifact built, signed and attested in a domain.
#[derive(Debug, Clone, serde::Serialize)]
struct Artifact {
    domain: &'static str,
    file: PathBuf,
    digest: String,
    bundle: PathBuf,
    attestation_bundle: PathBuf,
    signer: String,
    issuer: String,
    builder_id: String,
}

/// The narrator: each line with the time since the demo started.
struct Narrator<'a> {
    out: &'a mut dyn Write,
    started: Instant,
    steps: Vec<Step>,
}

impl Narrator<'_> {
    fn say(&mut self, text: &str) {
        let _ = writeln!(
            self.out,
            "[{:>6.1}s] {text}",
            self.started.elapsed().as_secs_f64()
        );
    }

    fn step(&mut self, name: &str, result: Result<String, String>) -> bool {
        let ok = result.is_ok();
        let detail = match result {
            Ok(detail) => detail,
            Err(detail) => detail,
        };
        self.say(&format!(
            "{} {name}: {detail}",
            if ok { "ok  " } else { "FAIL" }
        ));
        self.steps.push(Step {
            name: name.to_owned(),
            ok,
            detail,
        });
        ok
    }
}

fn toml_path(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

/// The configuration of a node of `domain`: an authority when `authority_dir` is `None`,
/// else a plain node sharing the authority's dev CA and forwarding to its `authority_url`.
fn node_config(
    data_dir: &Path,
    domain: &str,
    authority: Option<(&Path, &str)>,
    bootstrap: &[String],
    bundles: &[(&str, PathBuf)],
) -> String {
    let mut text = format!(
        "# Written by `provmesh demo`.\n[node]\ntrust_domain = \"{domain}\"\ndata_dir = {}\n",
        toml_path(data_dir)
    );
    if let Some((_, url)) = authority {
        let _ = writeln!(text, "authority_url = \"{url}\"");
    }
    text.push_str(
        "\n[log]\nlevel = \"info\"\n\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n\n\
         [shutdown]\ngrace_period = \"5s\"\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\n\
         [grpc]\nlisten = \"127.0.0.1:0\"\n\n\
         [identity]\nsource = \"dev\"\n",
    );
    if let Some((authority_dir, _)) = authority {
        let _ = writeln!(
            text,
            "dev_ca_dir = {}",
            toml_path(&authority_dir.join("data").join("identity"))
        );
    }
    let _ = write!(text, "\n[authority]\nenabled = {}\n\n", authority.is_none());
    if authority.is_none() {
        text.push_str("[authority.ca]\nquota_per_minute = 0\n\n");
    }
    let bootstrap: Vec<String> = bootstrap.iter().map(|a| format!("{a:?}")).collect();
    let _ = write!(
        text,
        "[mesh]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = [{}]\n\
         anti_entropy_interval = \"1s\"\n\n\
         [mesh.bundle_endpoint]\nlisten = \"127.0.0.1:0\"\n\n",
        bootstrap.join(", ")
    );
    for (other, bundle) in bundles {
        if *other != domain {
            let _ = write!(
                text,
                "[[federation.domains]]\ntrust_domain = \"{other}\"\nbundle = {}\n\n",
                toml_path(bundle)
            );
        }
    }
    text
}

/// Makes a domain's dev CA in its authority's directory and returns its trust bundle.
fn make_dev_ca(exe: &Path, dir: &Path, domain: &str) -> Result<PathBuf, DemoError> {
    let name = format!("{domain}-authority");
    let config = dir.join(format!("{name}.toml"));
    write_file(
        &config,
        &node_config(&dir.join(&name).join("data"), domain, None, &[], &[]),
    )?;
    let out = dir.join(format!("{domain}-bootstrap"));
    let output = provmesh_command(exe)
        .args(["identity", "issue", "--config"])
        .arg(&config)
        .args(["--spiffe-id", &format!("spiffe://{domain}/demo")])
        .arg("--out")
        .arg(&out)
        .output()
        .map_err(|e| DemoError::Setup(format!("cannot run provmesh identity issue: {e}")))?;
    if !output.status.success() {
        return Err(DemoError::Setup(format!(
            "the dev CA of {domain}: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(out.join("bundle.json"))
}

/// Runs the demo; returns the steps (and whether all passed).
pub async fn run(args: &DemoArgs, out: &mut dyn Write) -> Result<Vec<Step>, DemoError> {
    let dir = match &args.dir {
        Some(dir) => WorkDir::keep(dir)?,
        None => WorkDir::temporary()?,
    };
    let mut narrator = Narrator {
        out,
        started: Instant::now(),
        steps: Vec::new(),
    };
    narrator.say(&format!(
        "provmesh demo: three trust domains ({}), each an authority and {PLAIN_NODES} nodes, in {}",
        DOMAINS.join(", "),
        dir.path.display()
    ));
    let exe = provmesh_exe()?;
    let mut nodes = start_nodes(&exe, &dir.path, &mut narrator).await?;
    let scenario = scenario(&dir.path, &mut nodes, &mut narrator).await;
    if let Err(e) = &scenario {
        narrator.step("scenario", Err(e.clone()));
    }
    let manifest = manifest(
        &dir.path,
        &nodes,
        scenario.as_deref().unwrap_or(&[]),
        &narrator.steps,
    );
    let manifest_path = dir.path.join("manifest.json");
    match serde_json::to_vec_pretty(&manifest) {
        Ok(bytes) => {
            let result = std::fs::write(&manifest_path, bytes)
                .map(|()| format!("{}", manifest_path.display()))
                .map_err(|e| format!("{}: {e}", manifest_path.display()));
            narrator.step("write the manifest", result);
        }
        Err(e) => {
            narrator.step("write the manifest", Err(e.to_string()));
        }
    }
    if !args.exit {
        let artifacts = scenario.as_deref().unwrap_or(&[]);
        narrator.say(&try_it(&nodes, artifacts, &manifest_path));
        narrator.say("serving until interrupted (Ctrl-C)…");
        let _ = tokio::signal::ctrl_c().await;
    }
    narrator.say("stopping the nodes…");
    for node in nodes {
        let exit = node.child.stop().await;
        if !exit.clean {
            narrator.say(&format!(
                "warning: {} stopped uncleanly: {}",
                node.name, exit.description
            ));
        }
    }
    let failed = narrator.steps.iter().filter(|s| !s.ok).count();
    narrator.say(&if failed == 0 {
        format!("all {} steps passed", narrator.steps.len())
    } else {
        format!("{failed} of {} steps FAILED", narrator.steps.len())
    });
    if args.dir.is_none() && !args.exit {
        narrator.say("the demo's directory is removed; keep it with --dir DIR");
    }
    Ok(narrator.steps)
}

/// Starts the authorities (each bootstrapping to those before it) and the plain nodes
/// (bootstrapping to the first authority).
async fn start_nodes(
    exe: &Path,
    dir: &Path,
    narrator: &mut Narrator<'_>,
) -> Result<Vec<DemoNode>, DemoError> {
    let mut bundles = Vec::new();
    for domain in DOMAINS {
        bundles.push((domain, make_dev_ca(exe, dir, domain)?));
    }
    let mut nodes = Vec::new();
    let mut bootstrap: Vec<String> = Vec::new();
    for domain in DOMAINS {
        let name = format!("{domain}-authority");
        let config = node_config(
            &dir.join(&name).join("data"),
            domain,
            None,
            &bootstrap,
            &bundles,
        );
        write_file(&dir.join(format!("{name}.toml")), &config)?;
        let child = ChildNode::start(exe, dir, &name).await?;
        if let Some(address) = child.ready()["mesh"][0].as_str() {
            bootstrap.push(address.to_owned());
        }
        nodes.push(DemoNode {
            data_dir: dir.join(&name).join("data"),
            name,
            domain,
            authority: true,
            child,
        });
    }
    // Plain nodes dial org-a's authority by address alone, as a Kubernetes node dials its
    // authority's Service: who answers is settled by the node record it presents.
    let first_authority: Vec<String> = bootstrap
        .first()
        .map(|a| a.split("/p2p/").next().unwrap_or(a).to_owned())
        .into_iter()
        .collect();
    for domain in DOMAINS {
        let authority_dir = dir.join(format!("{domain}-authority"));
        let url = nodes
            .iter()
            .find(|n| n.domain == domain)
            .map(|n| n.address("http"))
            .transpose()
            .map_err(DemoError::Setup)?
            .map(|http| format!("http://{http}"))
            .unwrap_or_default();
        for n in 1..=PLAIN_NODES {
            let name = format!("{domain}-node-{n}");
            let config = node_config(
                &dir.join(&name).join("data"),
                domain,
                Some((&authority_dir, &url)),
                &first_authority,
                &bundles,
            );
            write_file(&dir.join(format!("{name}.toml")), &config)?;
            let child = ChildNode::start(exe, dir, &name).await?;
            nodes.push(DemoNode {
                data_dir: dir.join(&name).join("data"),
                name,
                domain,
                authority: false,
                child,
            });
        }
    }
    narrator.say(&format!("started {} nodes", nodes.len()));
    Ok(nodes)
}

async fn mesh_status(node: &DemoNode) -> Result<pb::MeshStatus, String> {
    let grpc = node.address("grpc")?;
    let mut client = MeshServiceClient::new(channel(&grpc).await?);
    client
        .get_status(pb::GetStatusRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(|e| format!("{}: {e}", node.name))
}

async fn channel(address: &str) -> Result<tonic::transport::Channel, String> {
    tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| e.to_string())?
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))
}

/// Polls `check` until it gives `Some`, or fails after [`STEP_TIMEOUT`] with the last
/// reason.
async fn wait_for<T, F, Fut>(mut check: F) -> Result<(T, Duration), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let started = Instant::now();
    let mut last = String::from("nothing yet");
    loop {
        match check().await {
            Ok(Some(value)) => return Ok((value, started.elapsed())),
            Ok(None) => {}
            Err(e) => last = e,
        }
        if started.elapsed() > STEP_TIMEOUT {
            return Err(format!("not within {STEP_TIMEOUT:?} ({last})"));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The scenario: returns the artifacts built (for the manifest), or why it could not go
/// on. Each step is narrated and recorded.
async fn scenario(
    dir: &Path,
    nodes: &mut [DemoNode],
    narrator: &mut Narrator<'_>,
) -> Result<Vec<Artifact>, String> {
    // 1. The federation forms.
    let formed = wait_for(|| async {
        for node in nodes.iter() {
            let status = mesh_status(node).await?;
            let accepted = DOMAINS.iter().all(|d| {
                status
                    .domains
                    .iter()
                    .any(|s| s.trust_domain == *d && s.record_sequence >= 1)
            });
            if !accepted {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await;
    if !narrator.step(
        "the federation forms",
        formed.map(|((), took)| {
            format!(
                "all {} nodes accepted the records of all {} domains in {:.1}s",
                nodes.len(),
                DOMAINS.len(),
                took.as_secs_f64()
            )
        }),
    ) {
        return Err("the federation did not form".to_owned());
    }

    // 2. A build in each domain signs and attests an artifact; each domain's trust is
    // exported for verifiers.
    let mut artifacts = Vec::new();
    for domain in DOMAINS {
        let built = build(dir, nodes, domain).await;
        let detail = built.as_ref().map(|a| {
            format!(
                "{} ({}) signed by {} and attested (SLSA, builder {})",
                a.file.display(),
                a.digest,
                a.signer,
                a.builder_id
            )
        });
        if narrator.step(
            &format!("a build in {domain} signs and attests"),
            detail.map_err(Clone::clone),
        ) {
            artifacts.extend(built.ok());
        }
    }

    // 3. A consumer in the next domain looks each artifact up.
    for artifact in &artifacts {
        let consumer = consumer_of(nodes, artifact.domain)?;
        let found = wait_for(|| async {
            let answer = lookup(consumer, &artifact.digest).await?;
            let allowed = answer.verdict.as_ref().is_some_and(|v| v.allowed);
            Ok((allowed && answer.records.len() == 2).then_some(answer))
        })
        .await;
        narrator.step(
            &format!("{} looks up {}'s artifact", consumer.name, artifact.domain),
            found.map(|(answer, took)| {
                format!(
                    "allowed after {:.1}s — {}",
                    took.as_secs_f64(),
                    describe(&answer)
                )
            }),
        );
    }

    // 4. org-a's log equivocates; every node convicts it; the lookup turns denied.
    equivocate(nodes, &artifacts, narrator).await;
    Ok(artifacts)
}

/// The node of the domain after `domain` that plays the consumer.
fn consumer_of<'n>(nodes: &'n [DemoNode], domain: &str) -> Result<&'n DemoNode, String> {
    let index = DOMAINS.iter().position(|d| *d == domain).unwrap_or(0);
    let next = DOMAINS[(index + 1) % DOMAINS.len()];
    nodes
        .iter()
        .find(|n| n.domain == next && !n.authority)
        .ok_or_else(|| format!("no plain node of {next}"))
}

async fn lookup(node: &DemoNode, digest: &str) -> Result<pb::GetProvenanceResponse, String> {
    let grpc = node.address("grpc")?;
    ProvenanceServiceClient::new(channel(&grpc).await?)
        .get_provenance(pb::GetProvenanceRequest {
            digest: digest.to_owned(),
            policy: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|e| format!("{}: {e}", node.name))
}

fn describe(answer: &pb::GetProvenanceResponse) -> String {
    answer
        .records
        .iter()
        .map(|r| {
            let what = if r.predicate_type.is_empty() {
                "signature".to_owned()
            } else {
                format!("{} by {}", r.predicate_type, r.builder_id)
            };
            let witnesses = if r.witnessing_domains.is_empty() {
                "no witness yet".to_owned()
            } else {
                format!("witnessed by {}", r.witnessing_domains.join(", "))
            };
            format!("{}#{} {what}, {witnesses}", r.log_origin, r.log_index)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A build in `domain`: an artifact file, signed and attested through the domain's
/// authority as the build's SPIFFE identity; the domain's trust exported beside it.
async fn build(dir: &Path, nodes: &[DemoNode], domain: &'static str) -> Result<Artifact, String> {
    let authority = nodes
        .iter()
        .find(|n| n.domain == domain && n.authority)
        .ok_or_else(|| format!("no authority of {domain}"))?;
    let url = format!("http://{}", authority.address("http")?);
    let out = dir.join("artifacts").join(domain);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let file = out.join("app.tar");
    let nonce = random_digest().map_err(|e| e.to_string())?;
    std::fs::write(
        &file,
        format!("an artifact built in {domain} ({})\n", hex::encode(nonce)),
    )
    .map_err(|e| format!("{}: {e}", file.display()))?;
    let signer = format!("spiffe://{domain}/ci/build");
    let config = crate::config::Config::load(&dir.join(format!("{domain}-authority.toml")))
        .map_err(|e| e.to_string())?;
    let token = TokenSource::Node {
        config: Box::new(config),
        spiffe_id: Some(
            provmesh_protocol::spiffe::SpiffeId::parse(&signer).map_err(|e| e.to_string())?,
        ),
    }
    .obtain()
    .await
    .map_err(|e| e.to_string())?;
    let options = SignOptions::new(url.clone(), TokenSource::Literal(token));
    let bundle = out.join("app.tar.sigstore.json");
    let signed = sign_file(&options, &file, &bundle)
        .await
        .map_err(|e| format!("signing: {e}"))?;
    let builder_id = format!("https://ci.{domain}/builders/linux");
    let predicate = Predicate::Slsa(SlsaParameters::new(
        builder_id.clone(),
        "https://provmesh.dev/demo/build/v1",
        r#"{"repository":"https://git.example/app","ref":"refs/heads/main"}"#,
    ));
    let attestation_bundle = out.join("app.tar.intoto.sigstore.json");
    attest_file(&options, &file, &predicate, &attestation_bundle)
        .await
        .map_err(|e| format!("attesting: {e}"))?;
    let trust = dir.join("trust").join(format!("{domain}.json"));
    std::fs::create_dir_all(dir.join("trust")).map_err(|e| e.to_string())?;
    export(
        TrustSource::Authority(&url),
        &[],
        TrustFormat::ClientTrustConfig,
        &trust,
    )
    .await
    .map_err(|e| format!("exporting the trust: {e}"))?;
    let digest = crate::signing::sign::sha256_file(&file).map_err(|e| e.to_string())?;
    Ok(Artifact {
        domain,
        file,
        digest: format!("sha256:{}", hex::encode(digest)),
        bundle,
        attestation_bundle,
        signer: signed.identity,
        issuer: signed.issuer,
        builder_id,
    })
}

#[cfg(feature = "demo-equivocation")]
async fn equivocate(nodes: &[DemoNode], artifacts: &[Artifact], narrator: &mut Narrator<'_>) {
    let origin = format!("log.{EQUIVOCATING}");
    let shown = show_second_tree(nodes).await;
    if !narrator.step(
        &format!("{EQUIVOCATING}'s log shows a second tree to a witness"),
        shown,
    ) {
        return;
    }
    let convicted = wait_for(|| async {
        for node in nodes {
            let status = mesh_status(node).await?;
            if !status
                .logs
                .iter()
                .any(|l| l.origin == origin && l.equivocating)
            {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await;
    narrator.step(
        "every node holds the evidence",
        convicted.map(|((), took)| {
            format!(
                "all {} nodes report {origin} equivocating, {:.1}s after the witness saw it",
                nodes.len(),
                took.as_secs_f64()
            )
        }),
    );
    let Some(artifact) = artifacts.iter().find(|a| a.domain == EQUIVOCATING) else {
        return;
    };
    let denied = match consumer_of(nodes, EQUIVOCATING) {
        Ok(consumer) => lookup(consumer, &artifact.digest).await.and_then(|answer| {
            let allowed = answer.verdict.as_ref().is_some_and(|v| v.allowed);
            // Each record is denied for its log; the artifact for having no allowed record.
            let mut codes: Vec<&str> = answer
                .records
                .iter()
                .filter_map(|r| r.verdict.as_ref())
                .chain(answer.verdict.as_ref())
                .flat_map(|v| v.reasons.iter().map(|r| r.code.as_str()))
                .collect();
            codes.dedup();
            if !allowed && codes.contains(&"equivocating-log") {
                Ok(format!(
                    "{} looks up {EQUIVOCATING}'s artifact again: denied ({})",
                    consumer.name,
                    codes.join(", ")
                ))
            } else {
                Err(format!(
                    "expected denied for equivocating-log, got allowed={allowed} {codes:?}"
                ))
            }
        }),
        Err(e) => Err(e),
    };
    narrator.step("the verdict turns denied", denied);
}

#[cfg(not(feature = "demo-equivocation"))]
async fn equivocate(_: &[DemoNode], _: &[Artifact], narrator: &mut Narrator<'_>) {
    narrator.say("equivocation skipped: built without the demo-equivocation feature");
}

/// Forges a checkpoint of the equivocating domain's log (its current size, another root)
/// with a copy of its log key, and pushes it to the next domain's witness after that
/// witness cosigned the real one: the witness refuses it (409) and raises evidence.
#[cfg(feature = "demo-equivocation")]
async fn show_second_tree(nodes: &[DemoNode]) -> Result<String, String> {
    let find = |domain: &str| {
        nodes
            .iter()
            .find(|n| n.domain == domain && n.authority)
            .ok_or_else(|| format!("no authority of {domain}"))
    };
    let log_authority = find(EQUIVOCATING)?;
    let witness = find(consumer_of(nodes, EQUIVOCATING)?.domain)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let log_http = log_authority.address("http")?;
    let note = http
        .get(format!("http://{log_http}/checkpoint"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    let size: u64 = note
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| format!("not a checkpoint: {note:?}"))?;
    let witness_url = format!("http://{}/add-checkpoint", witness.address("http")?);
    let push = |old: u64, note: String| {
        let http = http.clone();
        let url = witness_url.clone();
        async move {
            let response = http
                .post(url)
                .body(format!("old {old}\n\n{note}"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            Ok::<_, String>((status, response.text().await.unwrap_or_default()))
        }
    };
    // The witness cosigns the real checkpoint (it may have already, from the mesh).
    let ((), _) = wait_for(|| async {
        let (status, answer) = push(size, note.clone()).await?;
        match status {
            200 => Ok(Some(())),
            409 => match push(0, note.clone()).await? {
                (200, _) => Ok(Some(())),
                (code, answer) => Err(format!("the witness answered {code}: {answer}")),
            },
            code => Err(format!("the witness answered {code}: {answer}")),
        }
    })
    .await?;
    // A second tree of the same size, signed with a copy of the log's key.
    let key_file = log_authority.data_dir.join("log").join("log.key");
    let key_text =
        std::fs::read_to_string(&key_file).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let key = provmesh_protocol::note::Ed25519Signer::from_skey(key_text.trim())
        .map_err(|e| format!("the log key: {e}"))?;
    let root = random_digest().map_err(|e| e.to_string())?;
    let forged =
        provmesh_protocol::checkpoint::Checkpoint::new(format!("log.{EQUIVOCATING}"), size, root)
            .map_err(|e| format!("forging a checkpoint: {e}"))?
            .sign(&[&key])
            .map_err(|e| format!("signing the forged checkpoint: {e}"))?
            .to_bytes();
    let forged = String::from_utf8(forged).map_err(|e| e.to_string())?;
    let (status, answer) = push(size, forged).await?;
    if status == 409 || status == 422 {
        Ok(format!(
            "a checkpoint of size {size} with another root, signed with a copy of the log's key, pushed to {}: refused ({status}) and turned into evidence",
            witness.name
        ))
    } else {
        Err(format!(
            "the witness answered {status} to the second tree: {answer}"
        ))
    }
}

/// The manifest: domains with their nodes and trust configs, artifacts with their bundles,
/// and the steps.
fn manifest(
    dir: &Path,
    nodes: &[DemoNode],
    artifacts: &[Artifact],
    steps: &[Step],
) -> serde_json::Value {
    let domains: Vec<serde_json::Value> = DOMAINS
        .iter()
        .map(|domain| {
            let nodes: Vec<serde_json::Value> = nodes
                .iter()
                .filter(|n| n.domain == *domain)
                .map(|n| {
                    serde_json::json!({
                        "name": n.name,
                        "role": if n.authority { "authority" } else { "node" },
                        "grpc": n.child.address("grpc"),
                        "http": n.child.address("http"),
                        "mesh": n.child.ready()["mesh"],
                        "config": dir.join(format!("{}.toml", n.name)),
                    })
                })
                .collect();
            serde_json::json!({
                "trust_domain": domain,
                "issuer": format!("spiffe://{domain}"),
                "log_origin": format!("log.{domain}"),
                "trust_config": dir.join("trust").join(format!("{domain}.json")),
                "nodes": nodes,
            })
        })
        .collect();
    serde_json::json!({
        "version": 1,
        "dir": dir,
        "domains": domains,
        "artifacts": artifacts,
        "equivocating_log": format!("log.{EQUIVOCATING}"),
        "steps": steps,
    })
}

/// What to try while the demo serves.
fn try_it(nodes: &[DemoNode], artifacts: &[Artifact], manifest: &Path) -> String {
    let mut text = String::from("the mesh is up; try:\n");
    let grpc_of = |domain: &str, authority: bool| {
        nodes
            .iter()
            .find(|n| n.domain == domain && n.authority == authority)
            .and_then(|n| n.child.address("grpc").map(str::to_owned))
            .unwrap_or_default()
    };
    let c_node = grpc_of("org-c.example", false);
    let a_authority = grpc_of("org-a.example", true);
    let _ = writeln!(text, "  provmesh mesh status --node {c_node}");
    for artifact in artifacts {
        let _ = writeln!(
            text,
            "  provmesh lookup {} --node {c_node}",
            artifact.file.display()
        );
    }
    let _ = writeln!(
        text,
        "  provmesh search --signer 'spiffe://org-a.example/*' --node {a_authority}"
    );
    let _ = writeln!(text, "  provmesh evidence list --node {c_node}");
    let _ = writeln!(
        text,
        "  provmesh mesh checkpoint log.org-b.example --node {c_node}"
    );
    let _ = write!(
        text,
        "  (every node, artifact, bundle and trust config: {})",
        manifest.display()
    );
    text
}
