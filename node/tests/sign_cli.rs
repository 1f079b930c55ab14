//! `provmesh sign`, `provmesh attest` and `provmesh trust-root export` when something is
//! wrong, and the authority's trusted-root route they rely on.
//!
//! An authority runs in the test process (dev identity, domain log, CA on loopback);
//! the commands run as the built binary. To make the log refuse or lie on demand, some
//! tests put a proxy between the command and the authority that passes everything
//! through except the log's answer to `POST /api/v1/log/entries`. Every failure must exit
//! 1, say what went wrong in terms of the command's inputs, and leave no bundle behind.

// Test code: helpers outside #[test] fns may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provmesh_node::ca::keys::{CT_KEY_FILE, ROOT_CERT_FILE, ca_dir, read_root};
use provmesh_protocol::ca::CtLogKey;
use provmesh_protocol::note::Ed25519Verifier;
use provmesh_protocol::sigstore::{DEFAULT_MAX_TRUSTED_ROOT_LEN, parse_trusted_root};
use provmesh_protocol::sigstore_trust::{ct_log_id, ed25519_spki_der};
use provmesh_protocol::spiffe::SpiffeId;

use common::authority::{TD, TestAuthority};
const IDENTITY: &str = "spiffe://org-a.example/ci/build";

/// A JWT-SVID of `authority`'s dev CA for `spiffe_id` and `audience`, in a file.
fn token_file(authority: &TestAuthority, dir: &Path, spiffe_id: &str, audience: &str) -> PathBuf {
    let token = authority
        .dev_ca()
        .issue_jwt_svid(
            &SpiffeId::parse(spiffe_id).unwrap(),
            &[audience.to_owned()],
            Duration::from_secs(300),
            SystemTime::now(),
        )
        .unwrap();
    let path = dir.join(format!("token-{audience}"));
    std::fs::write(&path, token).unwrap();
    path
}

/// What the proxy does with the log's answer to an append.
#[derive(Clone, Copy)]
enum LogAnswer {
    /// Answers 422 with a Rekor error, as a log refusing the entry does.
    Refuse,
    /// Passes the answer on with one bit of its signed entry timestamp flipped.
    CorruptSet,
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    log_answer: LogAnswer,
}

/// Serves a proxy of `upstream` on a loopback port and returns its URL.
async fn start_proxy(upstream: &str, log_answer: LogAnswer) -> String {
    let proxy = Arc::new(Proxy {
        upstream: upstream.to_owned(),
        client: reqwest::Client::new(),
        log_answer,
    });
    let router = Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let is_append = parts.method == axum::http::Method::POST && path == "/api/v1/log/entries";
    if is_append && matches!(proxy.log_answer, LogAnswer::Refuse) {
        let body = serde_json::json!({
            "code": 422,
            "message": "the signing certificate is not admitted: test refusal",
        });
        return (StatusCode::UNPROCESSABLE_ENTITY, body.to_string()).into_response();
    }
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let mut upstream = proxy
        .client
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream))
        .body(body);
    if let Some(content_type) = parts.headers.get("content-type") {
        upstream = upstream.header("content-type", content_type.as_bytes());
    }
    let answer = upstream.send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut bytes = answer.bytes().await.unwrap().to_vec();
    if is_append && status == StatusCode::CREATED {
        let mut value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let entry = value.as_object_mut().unwrap().values_mut().next().unwrap();
        let set = entry["verification"]["signedEntryTimestamp"]
            .as_str()
            .unwrap();
        let mut set = STANDARD.decode(set).unwrap();
        set[10] ^= 1;
        entry["verification"]["signedEntryTimestamp"] = STANDARD.encode(set).into();
        bytes = serde_json::to_vec(&value).unwrap();
    }
    (status, Body::from(bytes)).into_response()
}

/// Runs the built binary with `args` off the runtime (the authority answers on it).
async fn provmesh(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        common::provmesh()
            .args(&args)
            .env_remove("SPIFFE_ENDPOINT_SOCKET")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The command failed with exit code 1, said `expected` (each part), and wrote no bundle
/// next to `artifact`.
fn assert_failed(output: &Output, expected: &[&str], artifact: &Path) {
    common::assert_exit(output, 1, expected);
    let dir = artifact.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".sigstore.json"))
        .collect();
    assert!(leftovers.is_empty(), "bundles left behind: {leftovers:?}");
}

fn artifact(dir: &Path) -> PathBuf {
    let path = dir.join("artifact");
    std::fs::write(&path, b"build output\n").unwrap();
    path
}

/// A running authority, and a directory with an artifact and a token file of the
/// authority's dev CA for `IDENTITY` and `audience`.
async fn signing_setup(audience: &str) -> (TestAuthority, tempfile::TempDir, PathBuf, PathBuf) {
    let authority = TestAuthority::start("[authority.log]\nbatch_max_delay = \"5ms\"\n").await;
    let dir = tempfile::tempdir().unwrap();
    let file = artifact(dir.path());
    let token = token_file(&authority, dir.path(), IDENTITY, audience);
    (authority, dir, file, token)
}

/// `command`, then `--authority <authority> --identity-token-file <token>`.
fn with_authority(command: &[&str], authority: &str, token: &Path) -> Vec<String> {
    let mut args = strings(command);
    args.extend(strings(&[
        "--authority",
        authority,
        "--identity-token-file",
        path(token),
    ]));
    args
}

/// `sign <file> --config <config> --identity-token-file <token>`.
fn sign_with_config(file: &Path, config: &Path, token: &Path) -> Vec<String> {
    strings(&[
        "sign",
        path(file),
        "--config",
        path(config),
        "--identity-token-file",
        path(token),
    ])
}

/// Writes `dir/<name>.toml`: a configuration of trust domain `TD` with its data in
/// `dir/<name>`, followed by `extra` TOML (in the `[node]` table unless it opens another).
fn config_file(dir: &Path, name: &str, extra: &str) -> PathBuf {
    common::write_file(
        dir,
        &format!("{name}.toml"),
        &format!(
            "[node]\ntrust_domain = \"{TD}\"\ndata_dir = {:?}\n{extra}",
            dir.join(name).display().to_string()
        ),
    )
}

/// `provmesh trust-root export --config <config> --out <out>`.
async fn export_from_config(config: &Path, out: &Path) -> Output {
    provmesh(strings(&[
        "trust-root",
        "export",
        "--config",
        path(config),
        "--out",
        path(out),
    ]))
    .await
}

#[test]
fn help_names_every_command_and_flag() {
    for (args, flags) in [
        (
            &["sign", "--help"][..],
            &[
                "--authority",
                "--identity-token-file",
                "--spiffe-id",
                "--bundle",
            ][..],
        ),
        (
            &["attest", "--help"],
            &[
                "--predicate-type",
                "--predicate",
                "--slsa",
                "--builder-id",
                "--external-parameters",
            ],
        ),
        (
            &["trust-root", "export", "--help"],
            &["--authority", "--config", "--domain", "--client-config"],
        ),
    ] {
        let out = common::run(args);
        assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
        let text = common::stdout(&out);
        for flag in flags {
            assert!(text.contains(flag), "{args:?} does not mention {flag}");
        }
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = artifact(dir.path());
    for args in [
        // --slsa without its three required parameters.
        vec!["attest", path(&file), "--slsa"],
        // Neither a predicate nor --slsa.
        vec!["attest", path(&file)],
        // A predicate file without its type.
        vec!["attest", path(&file), "--predicate", path(&file)],
        // Both token flags.
        vec![
            "sign",
            path(&file),
            "--identity-token",
            "a.b.c",
            "--identity-token-file",
            "t",
        ],
        // Neither source of trust.
        vec!["trust-root", "export", "--out", "x.json"],
    ] {
        let out = common::run(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            common::stderr(&out)
        );
    }
}

#[test]
fn without_a_token_source_the_error_says_where_tokens_come_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = artifact(dir.path());
    let out = common::run(&["sign", path(&file), "--authority", "http://127.0.0.1:9"]);
    assert_failed(
        &out,
        &["no identity token", "--identity-token-file", "--config"],
        &file,
    );
}

#[test]
fn an_unreachable_authority_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = artifact(dir.path());
    let token = dir.path().join("token");
    std::fs::write(&token, "e30.e30.c2ln").unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = common::run(&[
        "sign",
        path(&file),
        "--authority",
        &url,
        "--identity-token-file",
        path(&token),
    ]);
    assert_failed(
        &out,
        &[&format!("cannot reach the authority at {url}/"), "refused"],
        &file,
    );
    let out = common::run(&[
        "trust-root",
        "export",
        "--authority",
        &url,
        "--out",
        path(&dir.path().join("t.json")),
    ]);
    assert_failed(
        &out,
        &[&format!("cannot reach the authority at {url}/")],
        &file,
    );
    let out = common::run(&[
        "sign",
        path(&file),
        "--authority",
        "https://authority.example",
        "--identity-token-file",
        path(&token),
    ]);
    assert_failed(&out, &["no TLS client"], &file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_refusal_prints_the_cas_message() {
    // A JWT-SVID for another audience than "sigstore".
    let (authority, _dir, file, token) = signing_setup("other").await;
    let out = provmesh(with_authority(
        &["sign", path(&file)],
        &authority.url,
        &token,
    ))
    .await;
    assert_failed(
        &out,
        &[
            &format!("the CA at {}/api/v2/signingCert", authority.url),
            "refused the certificate request (401)",
            "audience",
        ],
        &file,
    );
    authority.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_identity_than_requested_is_not_used() {
    let (authority, _dir, file, token) = signing_setup("sigstore").await;
    let out = provmesh(with_authority(
        &[
            "sign",
            path(&file),
            "--spiffe-id",
            "spiffe://org-a.example/ci/other",
        ],
        &authority.url,
        &token,
    ))
    .await;
    assert_failed(
        &out,
        &[
            "certified spiffe://org-a.example/ci/build",
            "not the requested spiffe://org-a.example/ci/other",
        ],
        &file,
    );
    authority.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_refusal_prints_the_logs_message() {
    let (authority, dir, file, token) = signing_setup("sigstore").await;
    let proxy = start_proxy(&authority.url, LogAnswer::Refuse).await;
    let predicate = dir.path().join("predicate.json");
    std::fs::write(&predicate, "{}").unwrap();
    for command in [
        &["sign", path(&file)][..],
        &[
            "attest",
            path(&file),
            "--predicate-type",
            "https://provmesh.example/test/v1",
            "--predicate",
            path(&predicate),
        ],
    ] {
        let out = provmesh(with_authority(command, &proxy, &token)).await;
        assert_failed(
            &out,
            &[
                &format!("the domain log at {proxy}/api/v1/log/entries"),
                "refused the entry (422)",
                "test refusal",
            ],
            &file,
        );
    }
    authority.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_that_does_not_verify_is_not_written() {
    let (authority, dir, file, token) = signing_setup("sigstore").await;
    let proxy = start_proxy(&authority.url, LogAnswer::CorruptSet).await;
    let out = provmesh(with_authority(&["sign", path(&file)], &proxy, &token)).await;
    assert_failed(
        &out,
        &["does not verify", "not written", "signed entry timestamp"],
        &file,
    );
    // Through the authority itself, the same command succeeds.
    let out = provmesh(with_authority(
        &["sign", path(&file)],
        &authority.url,
        &token,
    ))
    .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(dir.path().join("artifact.sigstore.json").is_file());
    authority.stop().await;
}

/// The route serves the domain's log key (under its origin), its CT key and its
/// code-signing root, each as the trusted root's verifiers need it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authority_serves_its_trusted_root() {
    let authority = TestAuthority::start("[authority.log]\nbatch_max_delay = \"5ms\"\n").await;
    let answer = reqwest::get(format!("{}/api/v2/provmesh/trustedRoot", authority.url))
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let bytes = answer.bytes().await.unwrap();
    let (root, _) = parse_trusted_root(&bytes, DEFAULT_MAX_TRUSTED_ROOT_LEN).unwrap();

    let data = authority.data_dir.path();
    let vkey = std::fs::read_to_string(data.join("log/log.vkey")).unwrap();
    let log_key = Ed25519Verifier::from_vkey(vkey.trim()).unwrap();
    let [tlog] = root.tlogs.as_slice() else {
        panic!("one tlog expected: {root:?}");
    };
    assert_eq!(tlog.base_url, "https://log.org-a.example");
    assert_eq!(
        tlog.public_key.as_ref().unwrap().raw_bytes.as_deref(),
        Some(ed25519_spki_der(&log_key.public_key()).as_slice())
    );

    let ct_key =
        CtLogKey::from_pkcs8_der(&std::fs::read(ca_dir(data).join(CT_KEY_FILE)).unwrap()).unwrap();
    let [ctlog] = root.ctlogs.as_slice() else {
        panic!("one ctlog expected: {root:?}");
    };
    assert_eq!(
        ctlog.log_id.as_ref().unwrap().key_id,
        ct_log_id(ct_key.public_key_spki_der())
    );

    let code_signing_root = read_root(&ca_dir(data).join(ROOT_CERT_FILE))
        .unwrap()
        .unwrap();
    let [ca] = root.certificate_authorities.as_slice() else {
        panic!("one CA expected: {root:?}");
    };
    let chain = &ca.cert_chain.as_ref().unwrap().certificates;
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].raw_bytes, code_signing_root);
    // Valid from the root's notBefore: before every certificate it issued.
    let (_, cert) = x509_parser::parse_x509_certificate(&code_signing_root).unwrap();
    let start = ca
        .valid_for
        .as_ref()
        .unwrap()
        .start
        .as_ref()
        .unwrap()
        .seconds;
    assert_eq!(start, cert.validity().not_before.timestamp());
    authority.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_root_export_refuses_what_it_cannot_know() {
    let authority = TestAuthority::start("[authority.log]\nbatch_max_delay = \"5ms\"\n").await;
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("trust.json");
    // Another domain: an authority knows only its own; a node of the mesh exports others.
    let out = provmesh(strings(&[
        "trust-root",
        "export",
        "--authority",
        &authority.url,
        "--domain",
        "org-b.example",
        "--out",
        path(&out_file),
    ]))
    .await;
    common::assert_exit(
        &out,
        1,
        &[
            "org-b.example is not this authority's (org-a.example)",
            "--node ADDR",
        ],
    );
    assert!(!out_file.exists());

    // A plain node's configuration has no CA to export.
    let plain = config_file(dir.path(), "plain", "");
    let out = export_from_config(&plain, &out_file).await;
    common::assert_exit(&out, 1, &["not the configuration of an authority"]);

    // An authority that never started has no keys yet.
    let fresh = config_file(dir.path(), "fresh", "[authority]\nenabled = true\n");
    let out = export_from_config(&fresh, &out_file).await;
    common::assert_exit(&out, 1, &["has the authority been started once"]);
    assert!(!out_file.exists());
    assert!(
        !dir.path().join("fresh").exists(),
        "export must not create the authority's files"
    );
    authority.stop().await;
}

/// Without --authority, a plain node's configuration names the authority
/// (`node.authority_url`); an authority's own configuration with port 0 cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_names_the_authority() {
    let (authority, dir, file, token) = signing_setup("sigstore").await;
    let plain = config_file(
        dir.path(),
        "plain",
        &format!("authority_url = {:?}\n", authority.url),
    );
    let out = provmesh(sign_with_config(&file, &plain, &token)).await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(dir.path().join("artifact.sigstore.json").is_file());
    std::fs::remove_file(dir.path().join("artifact.sigstore.json")).unwrap();

    let ephemeral = config_file(
        dir.path(),
        "ephemeral",
        "[http]\nlisten = \"127.0.0.1:0\"\n[authority]\nenabled = true\n",
    );
    let out = provmesh(sign_with_config(&file, &ephemeral, &token)).await;
    assert_failed(&out, &["names no authority", "--authority URL"], &file);
    authority.stop().await;
}
