//! Stock sigstore-python 4.5.1 **signs** with a provmesh authority as its Fulcio and
//! Rekor: the issue's promise that "stock Sigstore clients can use a node as their CA".
//!
//! End to end, nothing stubbed: a real `provmesh run` authority process (dev identity,
//! code-signing CA, domain log) on loopback with ephemeral ports; a JWT-SVID for
//! `spiffe://org-a.example/ci/build`, audience `sigstore`, from `provmesh identity jwt`;
//! the domain's ClientTrustConfig built by `provmesh_protocol::sigstore_trust` from the
//! authority's own files (`ca/code-signing.pem`, `ca/ct.key`, `log/log.vkey`). Then the
//! pinned CLI of `scripts/setup-verifiers`:
//!
//! ```text
//! sigstore --trust-config cfg.json sign --identity-token JWT --bundle artifact.sigstore.json artifact
//! ```
//!
//! must succeed: it asks our CA for a certificate (`POST /api/v2/signingCert`, a CSR and
//! the token as `Authorization: Bearer`), checks the embedded SCT against the CT key of
//! the trust config, logs a `hashedrekord` entry over Rekor v1 (`POST
//! /api/v1/log/entries`), insists on an inclusion proof with a checkpoint in the answer,
//! and writes a bundle. That bundle must then be accepted, offline, by both
//! `sigstore verify identity` and `provmesh verify`, which must both refuse a tampered
//! artifact and another identity. Finally the authority's log must hold the
//! precertificate entry of the certificate sigstore-python got, found by the SHA-256 of
//! the certificate (`POST /api/v1/index/retrieve`), logged before the signature.
//!
//! Without the venv the test fails with a message saying to run `scripts/setup-verifiers`
//! (the project's test command always sets it up), unless `PROVMESH_SKIP_INTEROP=1`.

// Test code: a failed step fails the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provmesh_protocol::ca::{CtLogKey, PRECERT_ENTRY_KIND, embedded_scts};
use provmesh_protocol::log::entry::{LogEntryResponse, LogEntryView};
use provmesh_protocol::note::{Ed25519Verifier, KeyName};
use provmesh_protocol::sigstore_trust::{
    CaTrust, CtTrust, DomainTrust, LogTrust, client_trust_config_with_services, trusted_root,
};
use provmesh_tests::command::run_within;
use provmesh_tests::node_process::{NodeProcess, authority_config};
use provmesh_tests::sigstore_python::{SigstorePython, VerifyIdentity};
use sha2::{Digest as _, Sha256};
use x509_parser::prelude::FromDer as _;

const BIN: &str = env!("CARGO_BIN_EXE_provmesh-under-test");
const TRUST_DOMAIN: &str = "org-a.example";
/// The log's origin (the node's default, `log.<trust domain>`).
const ORIGIN: &str = "log.org-a.example";
/// The log's base URL in the trusted root: `sigstore_trust` insists that its host is the
/// origin (@sigstore/verify matches checkpoint signature names against it). The
/// signing config points sigstore-python at the port the node is bound to instead
/// (`client_trust_config_with_services`).
const LOG_URL: &str = "https://log.org-a.example";
const IDENTITY: &str = "spiffe://org-a.example/ci/build";
const OTHER_IDENTITY: &str = "spiffe://org-a.example/ci/other";
const OIDC_ISSUER: &str = "spiffe://org-a.example";
/// The bound on starting the node and on each HTTP request.
const DEADLINE: Duration = Duration::from_secs(30);
/// The bound on each run of a command line (python starts slowly on a loaded machine).
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

fn write_config(dir: &Path) -> PathBuf {
    let config = authority_config(
        TRUST_DOMAIN,
        &dir.join("data"),
        "batch_max_delay = \"20ms\"\n",
    );
    let path = dir.join("provmesh.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// The DER of the single certificate in a PEM file.
fn pem_certificate(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    assert_eq!(block.label, "CERTIFICATE", "{}", path.display());
    block.contents
}

/// The domain's trust material, read from the authority's data directory as an operator
/// would publish it, with the CA served at `ca_url`.
fn domain_trust(data: &Path, ca_url: &str) -> (DomainTrust, Vec<u8>) {
    let root_der = pem_certificate(&data.join("ca/code-signing.pem"));
    let ct_key = CtLogKey::from_pkcs8_der(&std::fs::read(data.join("ca/ct.key")).unwrap())
        .expect("ca/ct.key is a PKCS#8 P-256 key");
    // log/log.vkey: the signed-note verifier key `<origin>+<hash>+<base64(0x01 ‖ key)>`
    // (node/src/log/keys.rs).
    let vkey = std::fs::read_to_string(data.join("log/log.vkey")).unwrap();
    let verifier = Ed25519Verifier::from_vkey(vkey.trim()).expect("log/log.vkey is Ed25519");
    assert_eq!(verifier.name().as_str(), ORIGIN);
    // Every key and the root were made when the node first started, moments ago; an
    // hour's margin keeps a verifier whose clock is a little behind from ignoring them.
    let valid_from = unix_now() - 3600;
    let trust = DomainTrust {
        log: LogTrust::new(
            &KeyName::new(ORIGIN).unwrap(),
            LOG_URL,
            verifier.public_key(),
            valid_from,
        ),
        ct: CtTrust {
            spki_der: ct_key.public_key_spki_der().to_vec(),
            valid_from_unix: valid_from,
        },
        ca: CaTrust {
            chain_der: vec![root_der.clone()],
            valid_from_unix: valid_from,
            uri: ca_url.to_owned(),
        },
    };
    (trust, root_der)
}

/// `POST` of a JSON body, answer as JSON (status 200 required).
async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{url}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The UUIDs of the entries about the SHA-256 digest `digest_hex`, from
/// `POST /api/v1/index/retrieve`.
async fn retrieve(client: &reqwest::Client, base: &str, digest_hex: &str) -> Vec<String> {
    let uuids = post_json(
        client,
        &format!("{base}/api/v1/index/retrieve"),
        serde_json::json!({ "hash": format!("sha256:{digest_hex}") }),
    )
    .await;
    serde_json::from_value(uuids).unwrap()
}

/// The entry with `uuid`, from `GET /api/v1/log/entries/{uuid}`.
async fn entry(client: &reqwest::Client, base: &str, uuid: &str) -> LogEntryView {
    let url = format!("{base}/api/v1/log/entries/{uuid}");
    let response = client.get(&url).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{url}: {text}");
    let response: LogEntryResponse = serde_json::from_str(&text).unwrap();
    let mut entries = response.0.into_iter();
    let (found, view) = entries.next().expect("one entry");
    assert!(entries.next().is_none(), "{url}: more than one entry");
    assert_eq!(found, uuid);
    view
}

#[test]
fn sigstore_python_signs_with_a_provmesh_authority() {
    let Some(sigstore) = SigstorePython::find() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let node = NodeProcess::start(Path::new(BIN), &config, dir.path(), "node", DEADLINE);
    let base = node.url();
    let data = dir.path().join("data");

    // The workload's identity token: a JWT-SVID from the domain's dev CA.
    let mut jwt = Command::new(BIN);
    jwt.args(["identity", "jwt", "--config"])
        .arg(&config)
        .args(["--spiffe-id", IDENTITY, "--audience", "sigstore"])
        .env_remove("PROVMESH_CONFIG");
    let ran = run_within(jwt, dir.path(), "identity-jwt", COMMAND_DEADLINE);
    assert!(
        ran.status.success(),
        "provmesh identity jwt: {}",
        ran.describe()
    );
    let token = ran.stdout.trim().to_owned();

    // The domain's trust config. The trusted root names the log by its origin; the
    // signing config sends sigstore-python to where this node listens (the CA's `uri`
    // is the bound URL already).
    let (trust, root_der) = domain_trust(&data, &base);
    let root = trusted_root(&[trust]).unwrap();
    let trust_config =
        client_trust_config_with_services(&root, std::slice::from_ref(&base), &[]).unwrap();
    assert_eq!(
        trust_config["signingConfig"]["rekorTlogUrls"][0]["url"],
        base
    );
    assert_eq!(trust_config["signingConfig"]["caUrls"][0]["url"], base);

    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = files.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let config_path = write("cfg.json", &serde_json::to_vec(&trust_config).unwrap());
    let artifact_bytes = b"provmesh build output, signed by sigstore-python\n".to_vec();
    let artifact = write("artifact", &artifact_bytes);
    let mut tampered_bytes = artifact_bytes.clone();
    tampered_bytes[0] ^= 1;
    let tampered = write("artifact-tampered", &tampered_bytes);
    let bundle = files.join("artifact.sigstore.json");

    // sigstore-python signs: certificate from our CA, entry in our log, bundle.
    let mut sign = sigstore.command(&config_path);
    sign.args(["sign", "--identity-token", &token, "--bundle"])
        .arg(&bundle)
        .arg(&artifact);
    let ran = run_within(sign, dir.path(), "sigstore-sign", COMMAND_DEADLINE);
    assert!(
        ran.status.success() && bundle.exists(),
        "sigstore-python could not sign with the provmesh authority:\n{}\n--- node ---\n{}",
        ran.describe(),
        node.output()
    );

    // Both verifiers, offline, must reach the same verdict.
    let verify_python = |identity: &str, file: &Path| {
        let verify = sigstore.verify_identity_command(&VerifyIdentity {
            trust_config: &config_path,
            bundle: &bundle,
            identity,
            issuer: OIDC_ISSUER,
            artifact: file,
        });
        run_within(verify, dir.path(), "sigstore-verify", COMMAND_DEADLINE)
    };
    let verify_provmesh = |identity: &str, file: &Path| {
        let mut verify = Command::new(BIN);
        verify
            .arg("verify")
            .arg(file)
            .arg("--bundle")
            .arg(&bundle)
            .args(["--identity", identity, "--trust-config"])
            .arg(&config_path);
        run_within(verify, dir.path(), "provmesh-verify", COMMAND_DEADLINE)
    };
    let accepts = |identity: &str, file: &Path| {
        let python = verify_python(identity, file);
        assert!(
            python.status.success() && python.stderr.contains("OK: "),
            "sigstore-python refused its own bundle:\n{}",
            python.describe()
        );
        let ours = verify_provmesh(identity, file);
        assert!(
            ours.status.success(),
            "provmesh verify refused sigstore-python's bundle:\n{}",
            ours.describe()
        );
    };
    let refuses = |identity: &str, file: &Path, python_reason: &str| {
        let python = verify_python(identity, file);
        assert!(
            !python.status.success() && python.stderr.contains(python_reason),
            "sigstore-python did not refuse {} for {identity} because of {python_reason:?}:\n{}",
            file.display(),
            python.describe()
        );
        let ours = verify_provmesh(identity, file);
        assert!(
            !ours.status.success(),
            "provmesh verify accepted {} for {identity}:\n{}",
            file.display(),
            ours.describe()
        );
    };
    accepts(IDENTITY, &artifact);
    refuses(IDENTITY, &tampered, "Bundle message digest mismatch");
    refuses(
        OTHER_IDENTITY,
        &artifact,
        "Certificate's SANs do not match spiffe://org-a.example/ci/other",
    );

    // The bundle: the certificate sigstore-python got, and the hashedrekord entry.
    let bundle_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let material = &bundle_json["verificationMaterial"];
    let leaf_der = STANDARD
        .decode(material["certificate"]["rawBytes"].as_str().unwrap())
        .unwrap();
    let tlog = &material["tlogEntries"][0];
    assert_eq!(tlog["kindVersion"]["kind"], "hashedrekord", "{tlog}");
    let signature_index: u64 = tlog["logIndex"].as_str().unwrap().parse().unwrap();

    // The log holds the precertificate of that certificate, found by its SHA-256, and
    // recorded before the signature.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .unwrap();
    let leaf_hash = hex::encode(Sha256::digest(&leaf_der));
    let uuids = runtime.block_on(retrieve(&client, &base, &leaf_hash));
    let precert_tbs = embedded_scts(&leaf_der)
        .expect("the certificate embeds an SCT")
        .precertificate_tbs_der;
    let (_, root_cert) = x509_parser::certificate::X509Certificate::from_der(&root_der).unwrap();
    let issuer_key_hash = hex::encode(Sha256::digest(root_cert.tbs_certificate.subject_pki.raw));
    let mut precert_entries = Vec::new();
    for uuid in &uuids {
        let view = runtime.block_on(entry(&client, &base, uuid));
        let body: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(&view.body).unwrap()).unwrap();
        if body["kind"] == PRECERT_ENTRY_KIND {
            precert_entries.push((view.log_index, body));
        }
    }
    let [(precert_index, precert)] = precert_entries.as_slice() else {
        panic!(
            "expected one precertificate entry among {uuids:?} for the certificate's \
             SHA-256 {leaf_hash}, found {}",
            precert_entries.len()
        );
    };
    assert_eq!(
        precert["spec"]["tbsCertificate"],
        STANDARD.encode(&precert_tbs),
        "the logged precertificate is not the one of sigstore-python's certificate"
    );
    assert_eq!(precert["spec"]["issuerKeyHash"], issuer_key_hash.as_str());
    assert!(
        *precert_index < signature_index,
        "the precertificate (index {precert_index}) was logged after the signature \
         (index {signature_index})"
    );

    // And the signature entry of the bundle is the log's, found by the artifact's digest.
    let artifact_digest = hex::encode(Sha256::digest(&artifact_bytes));
    let uuids = runtime.block_on(retrieve(&client, &base, &artifact_digest));
    let [uuid] = uuids.as_slice() else {
        panic!("expected one entry for the artifact's digest, found {uuids:?}");
    };
    let view = runtime.block_on(entry(&client, &base, uuid));
    assert_eq!(view.log_index, signature_index);
    assert_eq!(view.body, tlog["canonicalizedBody"].as_str().unwrap());
}
