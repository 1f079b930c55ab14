//! The build side end to end: a real authority process (`provmesh run`: dev identity,
//! domain log, code-signing CA) on loopback, and the commands a build runs against it —
//!
//! ```text
//! provmesh identity jwt --config authority.toml --spiffe-id spiffe://org-a.example/ci/build --audience sigstore
//! provmesh sign artifact --authority URL --identity-token-file token
//! provmesh attest artifact --predicate-type URI --predicate predicate.json --authority URL --identity-token-file token
//! provmesh attest artifact --slsa --builder-id … --build-type … --external-parameters … --bundle …
//! provmesh trust-root export --authority URL --client-config --out trust.json
//! provmesh lookup artifact --node GRPC [--policy policy.toml] [--bundles DIR]
//! provmesh search --builder ID | --signer SPIFFE_ID [--limit N] [--page-token T] --node GRPC
//! ```
//!
//! — then both `provmesh verify` and stock sigstore-python
//! (`sigstore --trust-config trust.json verify identity --offline …`) must accept every
//! bundle for the artifact (those the build wrote and those the lookup returned), and refuse it for a tampered artifact and for another
//! identity. The export from the authority's files (`--config`) must be the same
//! document as the one the running authority serves. A second test signs as a workload
//! of the `spire` identity source, its token fetched from a SPIFFE Workload API.
//!
//! Without sigstore-python's venv the test fails with a message saying to run
//! `scripts/setup-verifiers`, unless `PROVMESH_SKIP_INTEROP=1` (then only `provmesh
//! verify` judges).

// Test code: a failed step fails the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use provmesh_node::identity::{DevCa, DevCaConfig};
use provmesh_protocol::intoto::Statement;
use provmesh_protocol::sigstore::{DEFAULT_MAX_BUNDLE_LEN, ParsedBundle};
use provmesh_protocol::slsa::Provenance;
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use provmesh_tests::command::describe;
use provmesh_tests::node_process::{NodeProcess, authority_config, provmesh_command};
use provmesh_tests::sigstore_python::{SigstorePython, VerifyIdentity};
use provmesh_tests::workload_api::WorkloadApiServer;

const BIN: &str = env!("CARGO_BIN_EXE_provmesh-under-test");
const TRUST_DOMAIN: &str = "org-a.example";
const IDENTITY: &str = "spiffe://org-a.example/ci/build";
const OTHER_IDENTITY: &str = "spiffe://org-a.example/ci/other";
const OIDC_ISSUER: &str = "spiffe://org-a.example";
const PREDICATE_TYPE: &str = "https://provmesh.example/test/v1";
const BUILDER_ID: &str = "https://ci.org-a.example/builders/linux";
const BUILD_TYPE: &str = "https://provmesh.example/build/make/v1";
/// The bound on every wait: a start, a stop, a command.
const DEADLINE: Duration = Duration::from_secs(30);

/// A `provmesh-under-test run` authority; killed on drop if still running.
struct Authority {
    node: NodeProcess,
    config: PathBuf,
    data: PathBuf,
}

impl Authority {
    /// Writes `dir/authority.toml` and starts the authority, waiting for its ready file.
    fn start(dir: &Path) -> Authority {
        let data = dir.join("authority-data");
        let config = dir.join("authority.toml");
        // The admission webhook admits images built by the Linux builder only.
        let admission_policy = dir.join("admission-policy.toml");
        std::fs::write(
            &admission_policy,
            format!(
                "version = 1\n[[domain]]\ntrust_domain = \"{TRUST_DOMAIN}\"\nbuilders = [\"{BUILDER_ID}\"]\n"
            ),
        )
        .unwrap();
        let mut text = authority_config(TRUST_DOMAIN, &data, "batch_max_delay = \"10ms\"\n");
        text.push_str(&format!(
            "\n[admission]\nenabled = true\npolicy = {}\n",
            provmesh_tests::node_process::toml_path(&admission_policy)
        ));
        std::fs::write(&config, text).unwrap();
        let node = NodeProcess::start(Path::new(BIN), &config, dir, "authority", DEADLINE);
        Authority { node, config, data }
    }

    fn url(&self) -> String {
        self.node.url()
    }

    /// SIGTERM, and a clean exit within the deadline.
    fn stop(mut self) {
        let status = self.node.terminate(DEADLINE);
        assert!(
            status.success(),
            "the authority failed:\n{}",
            self.node.output()
        );
    }
}

/// Runs `provmesh-under-test ARGS` and returns its output.
fn provmesh(args: &[&str]) -> Output {
    provmesh_command(Path::new(BIN))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run provmesh-under-test")
}

/// Runs `provmesh-under-test ARGS`, which must succeed; returns its standard output.
fn provmesh_ok(args: &[&str]) -> String {
    let output = provmesh(args);
    assert!(output.status.success(), "{args:?}:\n{}", describe(&output));
    String::from_utf8(output.stdout).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// `provmesh verify` on `artifact` with `bundle`.
fn provmesh_verify(config: &Path, bundle: &Path, identity: &str, artifact: &Path) -> Output {
    provmesh(&[
        "verify",
        path(artifact),
        "--bundle",
        path(bundle),
        "--identity",
        identity,
        "--trust-config",
        path(config),
    ])
}

/// Both verifiers accept `bundle` for `artifact` and `IDENTITY`.
fn accepted(sigstore: Option<&SigstorePython>, config: &Path, bundle: &Path, artifact: &Path) {
    let ours = provmesh_verify(config, bundle, IDENTITY, artifact);
    assert!(
        ours.status.success(),
        "provmesh verify refused {}:\n{}",
        bundle.display(),
        describe(&ours)
    );
    if let Some(cli) = sigstore {
        cli.assert_accepts(&VerifyIdentity {
            trust_config: config,
            bundle,
            identity: IDENTITY,
            issuer: OIDC_ISSUER,
            artifact,
        });
    }
}

/// Both verifiers refuse `bundle` for `artifact` and `identity`; sigstore-python says
/// `reason`.
fn refused(
    sigstore: Option<&SigstorePython>,
    config: &Path,
    bundle: &Path,
    identity: &str,
    artifact: &Path,
    reason: &str,
) {
    let ours = provmesh_verify(config, bundle, identity, artifact);
    assert!(
        !ours.status.success(),
        "provmesh verify accepted {} for {identity} and {}:\n{}",
        bundle.display(),
        artifact.display(),
        describe(&ours)
    );
    if let Some(cli) = sigstore {
        let check = VerifyIdentity {
            trust_config: config,
            bundle,
            identity,
            issuer: OIDC_ISSUER,
            artifact,
        };
        cli.assert_refuses(&check, reason);
    }
}

/// `trust-root export --authority <url> --client-config --out <out>`: the arguments.
fn export_client_config<'a>(url: &'a str, out: &'a Path) -> [&'a str; 7] {
    [
        "trust-root",
        "export",
        "--authority",
        url,
        "--client-config",
        "--out",
        path(out),
    ]
}

/// The in-toto Statement inside a DSSE bundle.
fn statement_of(bundle: &Path) -> Statement {
    let parsed =
        ParsedBundle::from_json(&std::fs::read(bundle).unwrap(), DEFAULT_MAX_BUNDLE_LEN).unwrap();
    let envelope = parsed.dsse_envelope().unwrap();
    Statement::from_envelope_unverified(&envelope).unwrap()
}

#[test]
fn a_build_signs_and_attests_and_both_verifiers_accept_it() {
    let sigstore = SigstorePython::find();
    let sigstore = sigstore.as_ref();
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::start(dir.path());
    let url = authority.url();
    let file = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    // The build's identity token, from the domain's dev CA.
    let token = provmesh_ok(&[
        "identity",
        "jwt",
        "--config",
        path(&authority.config),
        "--spiffe-id",
        IDENTITY,
        "--audience",
        "sigstore",
    ]);
    let token_file = file("token", token.as_bytes());

    let artifact_bytes = b"provmesh build output\n".to_vec();
    let artifact = file("artifact", &artifact_bytes);
    let signer = [
        "--authority",
        &url,
        "--identity-token-file",
        path(&token_file),
    ];

    // provmesh sign: FILE.sigstore.json.
    let mut args = vec!["sign", path(&artifact)];
    args.extend(signer);
    let printed = provmesh_ok(&args);
    assert!(
        printed.contains(&format!("as {IDENTITY}")) && printed.contains("hashedrekord"),
        "{printed}"
    );
    let blob_bundle = dir.path().join("artifact.sigstore.json");
    assert!(blob_bundle.is_file(), "{printed}");

    // provmesh attest with a predicate file: FILE.intoto.sigstore.json.
    let predicate = serde_json::json!({"pipeline": "release", "steps": [1, 2, 3]});
    let predicate_file = file("predicate.json", predicate.to_string().as_bytes());
    let mut args = vec![
        "attest",
        path(&artifact),
        "--predicate-type",
        PREDICATE_TYPE,
        "--predicate",
        path(&predicate_file),
    ];
    args.extend(signer);
    let printed = provmesh_ok(&args);
    assert!(printed.contains("dsse"), "{printed}");
    let attestation_bundle = dir.path().join("artifact.intoto.sigstore.json");
    let statement = statement_of(&attestation_bundle);
    assert_eq!(statement.predicate_type, PREDICATE_TYPE);
    assert_eq!(
        serde_json::Value::Object(statement.predicate.clone().unwrap()),
        predicate
    );
    assert_eq!(statement.subject.len(), 1);
    assert_eq!(statement.subject[0].name(), Some("artifact"));

    // provmesh attest --slsa: SLSA Provenance v1 from build parameters.
    let slsa_bundle = dir.path().join("artifact.slsa.sigstore.json");
    let mut args = vec![
        "attest",
        path(&artifact),
        "--slsa",
        "--builder-id",
        BUILDER_ID,
        "--build-type",
        BUILD_TYPE,
        "--external-parameters",
        r#"{"repository":"https://git.org-a.example/app","ref":"refs/heads/main"}"#,
        "--invocation-id",
        "run-42",
        "--bundle",
        path(&slsa_bundle),
    ];
    args.extend(signer);
    provmesh_ok(&args);
    let provenance = Provenance::from_statement(&statement_of(&slsa_bundle)).unwrap();
    assert_eq!(provenance.builder_id(), BUILDER_ID);
    assert_eq!(provenance.build_type(), BUILD_TYPE);
    assert_eq!(provenance.invocation_id(), Some("run-42"));
    assert_eq!(
        provenance.external_parameters().unwrap()["ref"],
        "refs/heads/main"
    );

    // The domain's trust: from the running authority, and from its files — the same.
    let trust = dir.path().join("trust.json");
    provmesh_ok(&export_client_config(&url, &trust));
    let trusted_root = dir.path().join("trusted_root.json");
    provmesh_ok(&[
        "trust-root",
        "export",
        "--authority",
        &url,
        "--out",
        path(&trusted_root),
    ]);
    let trusted_root_from_files = dir.path().join("trusted_root-files.json");
    provmesh_ok(&[
        "trust-root",
        "export",
        "--config",
        path(&authority.config),
        "--domain",
        TRUST_DOMAIN,
        "--out",
        path(&trusted_root_from_files),
    ]);
    assert_eq!(
        std::fs::read(&trusted_root).unwrap(),
        std::fs::read(&trusted_root_from_files).unwrap(),
        "the authority's files and its endpoint give different trust"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&trust).unwrap()).unwrap();
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&trusted_root).unwrap()).unwrap();
    assert_eq!(config["trustedRoot"], root);
    // The signing config sends clients to the authority they exported from.
    assert_eq!(config["signingConfig"]["caUrls"][0]["url"], url.as_str());
    assert_eq!(
        config["signingConfig"]["rekorTlogUrls"][0]["url"],
        url.as_str()
    );
    // Provenance lookup: the authority finds the three records of the artifact, each with
    // a bundle that verifies offline; under a policy that allows another builder only,
    // each is denied with its reason.
    let grpc = authority.node.ready()["grpc"].as_str().unwrap().to_owned();
    let looked_up = dir.path().join("looked-up");
    let answer = provmesh_ok(&[
        "lookup",
        path(&artifact),
        "--node",
        &grpc,
        "--output",
        "json",
        "--bundles",
        path(&looked_up),
    ]);
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["verdict"]["allowed"], true, "{answer:#}");
    let records = answer["records"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["predicate_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("hashedrekord", ""),
            ("dsse", PREDICATE_TYPE),
            ("dsse", "https://slsa.dev/provenance/v1"),
        ]
    );
    assert!(records.iter().all(|r| r["signer"] == IDENTITY));
    assert_eq!(records[2]["builder_id"], BUILDER_ID);
    assert_eq!(
        records[2]["statement"]["predicate"]["runDetails"]["builder"]["id"],
        BUILDER_ID
    );
    let found_bundles: Vec<PathBuf> = std::fs::read_dir(&looked_up)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(found_bundles.len(), 3);
    let policy = file(
        "policy.toml",
        format!(
            "version = 1\n[[domain]]\ntrust_domain = \"{TRUST_DOMAIN}\"\nbuilders = [\"https://ci.org-a.example/builders/windows\"]\n"
        )
        .as_bytes(),
    );
    let denied = provmesh(&[
        "lookup",
        path(&artifact),
        "--node",
        &grpc,
        "--policy",
        path(&policy),
    ]);
    assert_eq!(denied.status.code(), Some(1), "{}", describe(&denied));
    let text = String::from_utf8_lossy(&denied.stdout);
    assert!(text.contains("DENIED"), "{text}");
    assert!(
        text.contains(&format!(
            "builder {BUILDER_ID} is not allowed by the policy (builder-not-allowed)"
        )),
        "{text}"
    );
    // A digest that is not one is refused before anything is looked up.
    let bad = provmesh(&["lookup", "sha256:xyz", "--node", &grpc]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));

    // Search: the authority's index finds the SLSA attestation by its builder, and all
    // three records by signer, newest first, also one page at a time.
    // The index follows the log's checkpoints: give it a moment to catch up.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let by_builder = loop {
        let answer = provmesh_ok(&[
            "search",
            "--builder",
            BUILDER_ID,
            "--node",
            &grpc,
            "--output",
            "json",
        ]);
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        if !answer["records"].as_array().unwrap().is_empty() || std::time::Instant::now() > deadline
        {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let found = by_builder["records"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{by_builder:#}");
    assert_eq!(found[0]["predicate_type"], "https://slsa.dev/provenance/v1");
    assert_eq!(found[0]["signer"], IDENTITY);
    let table = provmesh_ok(&[
        "search", "--signer", IDENTITY, "--limit", "2", "--node", &grpc,
    ]);
    assert!(table.contains("records (2)"), "{table}");
    assert!(table.contains(BUILDER_ID), "{table}");
    let token = table
        .lines()
        .find_map(|l| l.strip_prefix("more: --page-token "))
        .unwrap_or_else(|| panic!("no next page: {table}"));
    let rest = provmesh_ok(&[
        "search",
        "--signer",
        IDENTITY,
        "--page-token",
        token,
        "--node",
        &grpc,
    ]);
    assert!(rest.contains("records (1)"), "{rest}");
    assert!(rest.contains("signature"), "{rest}");
    let bad = provmesh(&["search", "--since", "yesterday", "--node", &grpc]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    let refused_filter = provmesh(&["search", "--trust-domain", "Not A Domain", "--node", &grpc]);
    assert!(!refused_filter.status.success());
    assert!(
        String::from_utf8_lossy(&refused_filter.stderr).contains("not a SPIFFE trust domain"),
        "{}",
        describe(&refused_filter)
    );

    // Admission: a Pod of the artifact (attested by the allowed builder) is admitted; one
    // of an artifact attested by another builder, or of one nobody attested, is denied
    // with the reason.
    let other = file("other-artifact", b"built on windows\n");
    let mut args = vec![
        "attest",
        path(&other),
        "--slsa",
        "--builder-id",
        "https://ci.org-a.example/builders/windows",
        "--build-type",
        BUILD_TYPE,
        "--external-parameters",
        r#"{"ref":"refs/heads/main"}"#,
    ];
    args.extend(signer);
    provmesh_ok(&args);
    let pod = |images: &[String]| {
        let containers: Vec<serde_json::Value> = images
            .iter()
            .enumerate()
            .map(|(i, image)| serde_json::json!({"name": format!("c{i}"), "image": image}))
            .collect();
        serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "d3b07384-d113-4ec0-8a36-7c1e7c0c2b1e",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "operation": "CREATE",
                "object": {"spec": {"containers": containers}},
            }
        })
        .to_string()
    };
    let image = |f: &Path| {
        format!(
            "registry.example/app@sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                std::fs::read(f).unwrap()
            ))
        )
    };
    let http_address = authority.node.http().to_string();
    let review = |body: String| {
        let (status, answer) =
            provmesh_tests::command::http("POST", &http_address, "/admission/v1/validate", &body);
        assert_eq!(status, 200, "{answer}");
        serde_json::from_str::<serde_json::Value>(&answer).unwrap()
    };
    let admitted = review(pod(&[image(&artifact)]));
    assert_eq!(admitted["response"]["allowed"], true, "{admitted:#}");
    let denied = review(pod(&[image(&artifact), image(&other)]));
    assert_eq!(denied["response"]["allowed"], false, "{denied:#}");
    let message = denied["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.containers[c1]") && message.contains("builder-not-allowed"),
        "{message}"
    );
    assert!(!message.contains("spec.containers[c0]"), "{message}");
    let unattested = review(pod(&[format!(
        "registry.example/app@sha256:{}",
        "1f".repeat(32)
    )]));
    assert_eq!(unattested["response"]["allowed"], false);
    assert!(
        unattested["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("no-record"),
        "{unattested:#}"
    );

    // The verifiers work offline: the authority is gone from here on.
    authority.stop();

    let mut tampered_bytes = artifact_bytes.clone();
    tampered_bytes[0] ^= 1;
    let tampered = file("artifact-tampered", &tampered_bytes);

    accepted(sigstore, &trust, &blob_bundle, &artifact);
    // A bare trusted_root.json serves provmesh verify as well.
    let ours = provmesh_verify(&trusted_root, &blob_bundle, IDENTITY, &artifact);
    assert!(ours.status.success(), "{}", describe(&ours));
    refused(
        sigstore,
        &trust,
        &blob_bundle,
        IDENTITY,
        &tampered,
        "Bundle message digest mismatch",
    );
    refused(
        sigstore,
        &trust,
        &blob_bundle,
        OTHER_IDENTITY,
        &artifact,
        "Certificate's SANs do not match spiffe://org-a.example/ci/other",
    );
    // The bundles the lookup returned verify like those the build wrote.
    for bundle in &found_bundles {
        accepted(sigstore, &trust, bundle, &artifact);
    }
    for bundle in [&attestation_bundle, &slsa_bundle] {
        accepted(sigstore, &trust, bundle, &artifact);
        refused(
            sigstore,
            &trust,
            bundle,
            IDENTITY,
            &tampered,
            "in-toto statement has no subject for digest",
        );
        refused(
            sigstore,
            &trust,
            bundle,
            OTHER_IDENTITY,
            &artifact,
            "Certificate's SANs do not match spiffe://org-a.example/ci/other",
        );
    }
}

/// A workload of the `spire` identity source signs with the token its agent issues
/// (`FetchJWTSVID` for audience `sigstore`): `provmesh sign --config` asks the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spire_workload_signs_with_its_agents_token() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::start(dir.path());
    let url = authority.url();
    // The agent issues from the domain's JWT authority, which the authority's CA trusts:
    // here, the authority's own dev CA (a SPIRE server would hold it).
    let ca = DevCa::open(
        &authority.data.join("identity"),
        &TrustDomain::parse(TRUST_DOMAIN).unwrap(),
        DevCaConfig::default(),
        SystemTime::now(),
    )
    .unwrap();
    let agent = WorkloadApiServer::start_with_ca(
        &dir.path().join("agent.sock"),
        Arc::new(ca),
        &SpiffeId::parse(IDENTITY).unwrap(),
    )
    .unwrap();
    let workload_config = dir.path().join("workload.toml");
    std::fs::write(
        &workload_config,
        format!(
            "[node]\ntrust_domain = \"{TRUST_DOMAIN}\"\ndata_dir = {:?}\n\n\
             [identity]\nsource = \"spire\"\nworkload_api_socket = {:?}\nstartup_timeout = \"10s\"\n",
            dir.path().join("workload-data").display().to_string(),
            agent.endpoint(),
        ),
    )
    .unwrap();
    let artifact = dir.path().join("artifact");
    std::fs::write(&artifact, b"built by a SPIRE workload\n").unwrap();
    let trust = dir.path().join("trust.json");

    let args: Vec<String> = [
        "sign",
        path(&artifact),
        "--config",
        path(&workload_config),
        "--authority",
        &url,
        "--spiffe-id",
        IDENTITY,
    ]
    .map(str::to_owned)
    .to_vec();
    let export: Vec<String> = export_client_config(&url, &trust)
        .map(str::to_owned)
        .to_vec();
    // The commands block; the agent answers on the runtime meanwhile.
    let (signed, exported) = tokio::task::spawn_blocking(move || {
        let run = |args: &[String]| {
            provmesh_command(Path::new(BIN))
                .args(args)
                .env_remove("SPIFFE_ENDPOINT_SOCKET")
                .stdin(Stdio::null())
                .output()
                .unwrap()
        };
        (run(&args), run(&export))
    })
    .await
    .unwrap();
    assert!(signed.status.success(), "{}", describe(&signed));
    assert!(
        String::from_utf8_lossy(&signed.stdout).contains(&format!("as {IDENTITY}")),
        "{}",
        describe(&signed)
    );
    assert!(exported.status.success(), "{}", describe(&exported));
    authority.stop();
    drop(agent);

    let bundle = dir.path().join("artifact.sigstore.json");
    let ours = provmesh_verify(&trust, &bundle, IDENTITY, &artifact);
    assert!(ours.status.success(), "{}", describe(&ours));
    // The certificate names the SVID's SPIFFE ID and the domain as issuer.
    let parsed =
        ParsedBundle::from_json(&std::fs::read(&bundle).unwrap(), DEFAULT_MAX_BUNDLE_LEN).unwrap();
    let leaf = parsed.leaf_certificate_der().unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(
        matches!(
            san.value.general_names.as_slice(),
            [x509_parser::extensions::GeneralName::URI(uri)] if *uri == IDENTITY
        ),
        "{:?}",
        san.value.general_names
    );
}
