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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provmesh_protocol::ca::{CtLogKey, PRECERT_ENTRY_KIND, embedded_scts};
use provmesh_protocol::log::entry::{LogEntryResponse, LogEntryView};
use provmesh_protocol::note::{Ed25519Verifier, KeyName};
use provmesh_protocol::sigstore_trust::{
    CaTrust, CtTrust, DomainTrust, LogTrust, client_trust_config_with_services, trusted_root,
};
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

/// The `sigstore` CLI of the pinned venv, or `None` when the test is to be skipped.
fn sigstore_cli() -> Option<PathBuf> {
    let venv = match std::env::var_os("PROVMESH_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/provmesh/venv"),
    };
    let cli = venv.join("bin/sigstore");
    if cli.exists() {
        return Some(cli);
    }
    if std::env::var_os("PROVMESH_SKIP_INTEROP").is_some_and(|v| v == "1") {
        eprintln!(
            "skipped: no sigstore-python at {} (PROVMESH_SKIP_INTEROP=1)",
            cli.display()
        );
        return None;
    }
    panic!(
        "sigstore-python is not installed at {}: run scripts/setup-verifiers (or set \
         PROVMESH_VENV), or set PROVMESH_SKIP_INTEROP=1 to skip this test",
        cli.display()
    );
}

/// A `provmesh-under-test run` authority; killed (SIGKILL) on drop if still running, so
/// a failing test leaves nothing behind.
struct Node {
    child: Child,
    http: SocketAddr,
    output: PathBuf,
}

impl Node {
    /// Starts the node of `config`, its output in `dir/node.log`, and waits for its
    /// ready file.
    fn start(dir: &Path, config: &Path) -> Node {
        let ready = dir.join("ready.json");
        let output = dir.join("node.log");
        let stderr = std::fs::File::create(&output).unwrap();
        let child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--ready-file")
            .arg(&ready)
            .env_remove("RUST_LOG")
            .env_remove("PROVMESH_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn provmesh-under-test run");
        let mut node = Node {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            output,
        };
        let deadline = Instant::now() + DEADLINE;
        loop {
            // The ready file is written whole once the listeners are bound; a partial
            // read would fail to parse and is retried.
            if let Ok(text) = std::fs::read_to_string(&ready)
                && let Ok(json) = serde_json::from_str::<serde_json::Value>(&text)
            {
                node.http = json["http"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("no http address in the ready file: {text}"));
                return node;
            }
            if let Some(status) = node.child.try_wait().unwrap() {
                panic!(
                    "the node exited before it was ready ({status}):\n{}",
                    node.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no ready file within {DEADLINE:?}:\n{}",
                node.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a finished command printed.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn describe(&self) -> String {
        format!(
            "exit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `command` to completion within [`COMMAND_DEADLINE`] (killed and failed beyond),
/// its output going to files in `dir` (a pipe nobody reads while waiting could fill up
/// and stall it).
fn run(mut command: Command, dir: &Path, name: &str) -> Ran {
    let stdout_path = dir.join(format!("{name}.stdout"));
    let stderr_path = dir.join(format!("{name}.stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
    let deadline = Instant::now() + COMMAND_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not exit within {COMMAND_DEADLINE:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        status,
        stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    }
}

/// The `sigstore` CLI with the trust config (a global option, before the subcommand).
fn sigstore(cli: &Path, config: &Path) -> Command {
    let mut command = Command::new(cli);
    command
        // rich wraps its messages at the terminal width; keep them on one line.
        .env("COLUMNS", "1000")
        // The node is on loopback: never through a proxy of the environment.
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .arg("--trust-config")
        .arg(config);
    command
}

fn write_config(dir: &Path) -> PathBuf {
    let data = format!("{:?}", dir.join("data").display().to_string());
    let config = format!(
        "[node]\n\
         trust_domain = \"{TRUST_DOMAIN}\"\n\
         data_dir = {data}\n\n\
         [log]\n\
         level = \"info\"\n\n\
         [metrics]\n\
         enabled = false\n\n\
         [shutdown]\n\
         grace_period = \"5s\"\n\n\
         [http]\n\
         listen = \"127.0.0.1:0\"\n\n\
         [grpc]\n\
         enabled = false\n\n\
         [identity]\n\
         source = \"dev\"\n\n\
         [authority]\n\
         enabled = true\n\n\
         [authority.log]\n\
         batch_max_delay = \"20ms\"\n"
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
    let Some(cli) = sigstore_cli() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let node = Node::start(dir.path(), &config);
    let base = node.url();
    let data = dir.path().join("data");

    // The workload's identity token: a JWT-SVID from the domain's dev CA.
    let mut jwt = Command::new(BIN);
    jwt.args(["identity", "jwt", "--config"])
        .arg(&config)
        .args(["--spiffe-id", IDENTITY, "--audience", "sigstore"])
        .env_remove("PROVMESH_CONFIG");
    let ran = run(jwt, dir.path(), "identity-jwt");
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
    let mut sign = sigstore(&cli, &config_path);
    sign.args(["sign", "--identity-token", &token, "--bundle"])
        .arg(&bundle)
        .arg(&artifact);
    let ran = run(sign, dir.path(), "sigstore-sign");
    assert!(
        ran.status.success() && bundle.exists(),
        "sigstore-python could not sign with the provmesh authority:\n{}\n--- node ---\n{}",
        ran.describe(),
        node.output()
    );

    // Both verifiers, offline, must reach the same verdict.
    let verify_python = |identity: &str, file: &Path| {
        let mut verify = sigstore(&cli, &config_path);
        verify
            .args(["verify", "identity", "--offline", "--bundle"])
            .arg(&bundle)
            .args(["--cert-identity", identity])
            .args(["--cert-oidc-issuer", OIDC_ISSUER])
            .arg(file);
        run(verify, dir.path(), "sigstore-verify")
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
        run(verify, dir.path(), "provmesh-verify")
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
    let uuids = runtime.block_on(post_json(
        &client,
        &format!("{base}/api/v1/index/retrieve"),
        serde_json::json!({ "hash": format!("sha256:{leaf_hash}") }),
    ));
    let uuids: Vec<String> = serde_json::from_value(uuids).unwrap();
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
    let uuids = runtime.block_on(post_json(
        &client,
        &format!("{base}/api/v1/index/retrieve"),
        serde_json::json!({ "hash": format!("sha256:{artifact_digest}") }),
    ));
    let uuids: Vec<String> = serde_json::from_value(uuids).unwrap();
    let [uuid] = uuids.as_slice() else {
        panic!("expected one entry for the artifact's digest, found {uuids:?}");
    };
    let view = runtime.block_on(entry(&client, &base, uuid));
    assert_eq!(view.log_index, signature_index);
    assert_eq!(view.body, tlog["canonicalizedBody"].as_str().unwrap());
}
