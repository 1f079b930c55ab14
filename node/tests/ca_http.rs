//! The authority's code-signing CA end to end over Fulcio's v2 REST API: a real node
//! (dev identity, domain log, CA) on loopback; workloads prove their identity with
//! JWT-SVIDs or X.509-SVIDs of the dev CA. Every issued certificate carries one SCT that
//! verifies under the domain's CT key, and its precertificate is in the domain log when
//! the answer arrives. Every refusal path answers its status with a reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use provmesh_node::ca::keys::{CT_KEY_FILE, ca_dir};
use provmesh_node::config::Config;
use provmesh_node::identity::{DevCa, DevCaConfig, SubjectKey};
use provmesh_node::run::{self, Listeners};
use provmesh_protocol::ca::request::{
    X509_SVID_PROOF_CONTEXT, parse_fulcio_response, pem_encode, x509_svid_proof_message,
};
use provmesh_protocol::ca::{CtLogKey, embedded_scts, verify_sct};
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use rcgen::{
    CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData as _, SigningKey as _,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use x509_parser::extensions::GeneralName;

mod common;

use common::authority::{TD, TestAuthority};

/// A running authority node and a client for it.
struct Authority {
    node: TestAuthority,
    base: String,
    client: reqwest::Client,
}

impl Authority {
    async fn start(extra: &str) -> Authority {
        let node = TestAuthority::start(extra).await;
        Authority {
            base: node.url.clone(),
            node,
            client: reqwest::Client::new(),
        }
    }

    /// Stops the node; returns its data directory.
    async fn stop(self) -> tempfile::TempDir {
        self.node.stop().await
    }

    /// The dev CA the node created (workloads of the domain get their SVIDs from it).
    fn dev_ca(&self) -> DevCa {
        self.node.dev_ca()
    }

    async fn get_json(&self, url: String) -> Value {
        let bytes = self
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn post_json(&self, url: String, body: &Value) -> Value {
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    async fn post(
        &self,
        body: &Value,
        bearer: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self
            .client
            .post(format!("{}/api/v2/signingCert", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value, headers)
    }
}

fn id(path: &str) -> SpiffeId {
    SpiffeId::parse(&format!("spiffe://{TD}{path}")).unwrap()
}

fn jwt(ca: &DevCa, spiffe_id: &SpiffeId, audience: &str, now: SystemTime) -> String {
    ca.issue_jwt_svid(
        spiffe_id,
        &[audience.to_owned()],
        Duration::from_secs(300),
        now,
    )
    .unwrap()
}

fn public_key_request(key: &KeyPair, signed: &str) -> Value {
    json!({
        "publicKey": {"algorithm": "ECDSA", "content": pem_encode("PUBLIC KEY", &key.subject_public_key_info())},
        "proofOfPossession": STANDARD.encode(key.sign(signed.as_bytes()).unwrap()),
    })
}

fn csr_field(key: &KeyPair) -> Value {
    let csr = CertificateParams::default().serialize_request(key).unwrap();
    Value::String(STANDARD.encode(csr.pem().unwrap()))
}

fn new_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

/// Checks an issued chain: SAN, key, one SCT verifying under the CT key, and the
/// precertificate recorded in the domain log.
async fn check_issued(authority: &Authority, answer: &Value, spiffe_id: &SpiffeId, key: &KeyPair) {
    let chain = parse_fulcio_response(answer.to_string().as_bytes()).unwrap();
    assert_eq!(chain.len(), 2, "leaf and the code-signing root");
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let (_, root) = x509_parser::parse_x509_certificate(&chain[1]).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI(spiffe_id.as_str())]
    );
    assert_eq!(leaf.public_key().raw, key.subject_public_key_info());
    let lifetime = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert!(lifetime <= 600, "lifetime {lifetime} s");
    // The root is the domain's own code-signing root, not the SPIFFE root.
    assert!(
        root.subject()
            .to_string()
            .contains("provmesh code-signing root")
    );

    let embedded = embedded_scts(&chain[0]).unwrap();
    assert_eq!(embedded.scts.len(), 1);
    let ct_key = std::fs::read(ca_dir(authority.node.data_dir.path()).join(CT_KEY_FILE)).unwrap();
    let ct_key = CtLogKey::from_pkcs8_der(&ct_key).unwrap();
    verify_sct(
        &embedded.scts[0],
        ct_key.public_key_spki_der(),
        &embedded.precertificate_tbs_der,
        root.public_key().raw,
    )
    .unwrap();

    // Already in the log: findable by the certificate's digest, and the entry holds the
    // precertificate the SCT signs.
    let digest = hex::encode(Sha256::digest(&chain[0]));
    let uuids: Vec<String> = serde_json::from_value(
        authority
            .post_json(
                format!("{}/api/v1/index/retrieve", authority.base),
                &json!({"hash": format!("sha256:{digest}")}),
            )
            .await,
    )
    .unwrap();
    assert_eq!(uuids.len(), 1, "{uuids:?}");
    let entry: Value = authority
        .get_json(format!(
            "{}/api/v1/log/entries/{}",
            authority.base, uuids[0]
        ))
        .await;
    let (_, record) = entry.as_object().unwrap().iter().next().unwrap();
    let body: Value =
        serde_json::from_slice(&STANDARD.decode(record["body"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(body["kind"], "provmesh-precert");
    assert_eq!(
        STANDARD
            .decode(body["spec"]["tbsCertificate"].as_str().unwrap())
            .unwrap(),
        embedded.precertificate_tbs_der
    );
    assert_eq!(
        body["spec"]["issuerKeyHash"],
        hex::encode(Sha256::digest(root.public_key().raw))
    );
}

#[tokio::test]
async fn every_credential_kind_gets_a_logged_certificate_with_one_sct() {
    let authority = Authority::start("").await;
    let ca = authority.dev_ca();
    let now = SystemTime::now();

    // cosign's shape: token in the body, public key with a proof over the SPIFFE ID.
    let build = id("/ci/build");
    let key = new_key();
    let (status, answer, _) = authority
        .post(
            &json!({
                "credentials": {"oidcIdentityToken": jwt(&ca, &build, "sigstore", now)},
                "publicKeyRequest": public_key_request(&key, build.as_str()),
            }),
            None,
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    check_issued(&authority, &answer, &build, &key).await;

    // sigstore-python's shape: bearer token and a CSR.
    let key = new_key();
    let (status, answer, _) = authority
        .post(
            &json!({"certificateSigningRequest": csr_field(&key)}),
            Some(&jwt(&ca, &build, "sigstore", now)),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    check_issued(&authority, &answer, &build, &key).await;

    // A signed X.509-SVID proof (what a plain node forwards for a workload).
    let release = id("/ci/release");
    let svid = ca
        .issue_x509_svid(
            &release,
            SubjectKey::Generate,
            Duration::from_secs(600),
            now,
        )
        .unwrap();
    let svid_key = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        svid.private_key_pkcs8.as_ref().unwrap(),
    )
    .unwrap();
    let key = new_key();
    let proof = svid_key
        .sign(
            &aws_lc_rs::rand::SystemRandom::new(),
            &x509_svid_proof_message(&key.subject_public_key_info()),
        )
        .unwrap();
    assert!(x509_svid_proof_message(b"k").starts_with(X509_SVID_PROOF_CONTEXT));
    let chain: Vec<String> = svid.chain_der.iter().map(|c| STANDARD.encode(c)).collect();
    let (status, answer, _) = authority
        .post(
            &json!({
                "credentials": {"x509Svid": {"chain": chain, "signature": STANDARD.encode(proof.as_ref())}},
                "certificateSigningRequest": csr_field(&key),
            }),
            None,
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    check_issued(&authority, &answer, &release, &key).await;

    // The trust bundle and configuration endpoints Sigstore clients read.
    let bundle: Value = authority
        .get_json(format!("{}/api/v2/trustBundle", authority.base))
        .await;
    assert_eq!(
        bundle["chains"][0]["certificates"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let configuration: Value = authority
        .get_json(format!("{}/api/v2/configuration", authority.base))
        .await;
    assert_eq!(configuration["issuers"][0]["spiffeTrustDomain"], TD);
    authority.stop().await;
}

#[tokio::test]
async fn every_refusal_path_answers_its_status_and_reason() {
    let authority =
        Authority::start("[authority.ca]\nquota_per_minute = 1\nquota_burst = 2\n").await;
    let ca = authority.dev_ca();
    let now = SystemTime::now();
    let build = id("/ci/build");
    let key = new_key();
    let refused = |status: u16, answer: &Value, expected_status: u16, needle: &str| {
        assert_eq!(status, expected_status, "{answer}");
        assert_eq!(answer["code"], expected_status);
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    };

    // Another trust domain: its dev CA signs a token for its own workload.
    let other_dir = tempfile::tempdir().unwrap();
    let other = DevCa::open(
        other_dir.path(),
        &TrustDomain::parse("org-b.example").unwrap(),
        DevCaConfig::default(),
        now,
    )
    .unwrap();
    let foreign = SpiffeId::parse("spiffe://org-b.example/ci/build").unwrap();
    let (status, answer, _) = authority
        .post(
            &json!({
                "credentials": {"oidcIdentityToken": jwt(&other, &foreign, "sigstore", now)},
                "publicKeyRequest": public_key_request(&key, foreign.as_str()),
            }),
            None,
        )
        .await;
    refused(status, &answer, 401, "JWT-SVID refused");
    // ...and its X.509-SVID, over mTLS-free proof.
    let svid = other
        .issue_x509_svid(
            &foreign,
            SubjectKey::Generate,
            Duration::from_secs(600),
            now,
        )
        .unwrap();
    let chain: Vec<String> = svid.chain_der.iter().map(|c| STANDARD.encode(c)).collect();
    let (status, answer, _) = authority
        .post(
            &json!({
                "credentials": {"x509Svid": {"chain": chain, "signature": STANDARD.encode([0u8; 70])}},
                "certificateSigningRequest": csr_field(&key),
            }),
            None,
        )
        .await;
    refused(
        status,
        &answer,
        401,
        "not a workload of trust domain org-a.example",
    );

    // An expired JWT-SVID (issued an hour ago for five minutes).
    let hour_ago = now - Duration::from_secs(3600);
    let (status, answer, _) = authority
        .post(
            &json!({"certificateSigningRequest": csr_field(&key)}),
            Some(&jwt(&ca, &build, "sigstore", hour_ago)),
        )
        .await;
    refused(status, &answer, 401, "expired");
    // An expired X.509-SVID: issued 30 s ago for 10 s (the dev root is only as old as
    // the node, so the SVID cannot start earlier than that).
    let old = ca
        .issue_x509_svid(
            &build,
            SubjectKey::Generate,
            Duration::from_secs(10),
            now - Duration::from_secs(30),
        )
        .unwrap();
    let chain: Vec<String> = old.chain_der.iter().map(|c| STANDARD.encode(c)).collect();
    let (status, answer, _) = authority
        .post(
            &json!({
                "credentials": {"x509Svid": {"chain": chain, "signature": STANDARD.encode([0u8; 70])}},
                "certificateSigningRequest": csr_field(&key),
            }),
            None,
        )
        .await;
    refused(status, &answer, 401, "not valid at");

    // A JWT-SVID with a bad signature, and one for another audience.
    let token = jwt(&ca, &build, "sigstore", now);
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    signature[5] ^= 0x40;
    let tampered = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    let (status, answer, _) = authority
        .post(
            &json!({"certificateSigningRequest": csr_field(&key)}),
            Some(&tampered),
        )
        .await;
    refused(status, &answer, 401, "signature does not verify");
    let (status, answer, _) = authority
        .post(
            &json!({"certificateSigningRequest": csr_field(&key)}),
            Some(&jwt(&ca, &build, "spire-server", now)),
        )
        .await;
    refused(status, &answer, 401, "audience");

    // No proof of possession, and one over the wrong identity.
    let (status, answer, _) = authority
        .post(
            &json!({
                "credentials": {"oidcIdentityToken": jwt(&ca, &build, "sigstore", now)},
                "publicKeyRequest": {"publicKey": {"content": pem_encode("PUBLIC KEY", &key.subject_public_key_info())}},
            }),
            None,
        )
        .await;
    refused(status, &answer, 400, "no proof of possession");
    let (status, answer, _) = authority
        .post(
            &json!({
                "credentials": {"oidcIdentityToken": jwt(&ca, &build, "sigstore", now)},
                "publicKeyRequest": public_key_request(&key, "spiffe://org-a.example/ci/other"),
            }),
            None,
        )
        .await;
    refused(status, &answer, 400, "proof of possession does not verify");

    // No credential; a non-Bearer Authorization header; not JSON.
    let (status, answer, _) = authority
        .post(&json!({"certificateSigningRequest": csr_field(&key)}), None)
        .await;
    refused(status, &answer, 401, "no credential");
    let response = authority
        .client
        .post(format!("{}/api/v2/signingCert", authority.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(json!({"certificateSigningRequest": csr_field(&key)}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = authority
        .client
        .post(format!("{}/api/v2/signingCert", authority.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    // The per-identity quota: a burst of two, then 429 with Retry-After; another
    // identity is not affected.
    for _ in 0..2 {
        let (status, answer, _) = authority
            .post(
                &json!({"certificateSigningRequest": csr_field(&new_key())}),
                Some(&jwt(&ca, &build, "sigstore", now)),
            )
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let (status, answer, headers) = authority
        .post(
            &json!({"certificateSigningRequest": csr_field(&new_key())}),
            Some(&jwt(&ca, &build, "sigstore", now)),
        )
        .await;
    refused(status, &answer, 429, "quota");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (status, answer, _) = authority
        .post(
            &json!({"certificateSigningRequest": csr_field(&new_key())}),
            Some(&jwt(&ca, &id("/ci/other"), "sigstore", now)),
        )
        .await;
    assert_eq!(status, 201, "{answer}");

    // Refusals are counted by reason... and no refused request reached the log: it holds
    // exactly the three precertificates issued above.
    let log: Value = authority
        .get_json(format!("{}/api/v1/log", authority.base))
        .await;
    assert_eq!(log["treeSize"], 3, "{log}");
    authority.stop().await;
}

#[tokio::test]
async fn the_ca_keys_persist_and_are_private() {
    let authority = Authority::start("").await;
    let dir = ca_dir(authority.node.data_dir.path());
    let root = std::fs::read(dir.join("code-signing.pem")).unwrap();
    let data_dir = authority.node.data_dir.path().to_owned();
    for file in ["code-signing.key", "ct.key"] {
        assert_private(&dir.join(file));
    }
    // Keep the directory across a restart: the same root comes back.
    let kept = authority.stop().await;
    let text = format!(
        "[node]\ntrust_domain = \"{TD}\"\ndata_dir = {dir:?}\n[metrics]\nenabled = false\n\
         [grpc]\nenabled = false\n[http]\nlisten = \"127.0.0.1:0\"\n[mesh]\nenabled = false\n\
         [authority]\nenabled = true\n",
        dir = data_dir.display().to_string(),
    );
    let config = Config::parse(&text).unwrap();
    let node = run::start(&config, Listeners::bind(&config).await.unwrap())
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.join("code-signing.pem")).unwrap(), root);
    node.run_until(async { "done" }).await.unwrap();

    // A root of another trust domain in the directory is refused at start (the dev
    // identity of that domain is made anew; the CA directory is not).
    std::fs::remove_dir_all(data_dir.join("identity")).unwrap();
    let text = text.replace(TD, "org-b.example");
    let config = Config::parse(&text).unwrap();
    let Err(error) = run::start(&config, Listeners::bind(&config).await.unwrap()).await else {
        panic!("a node of org-b.example started on org-a.example's CA");
    };
    let message = error.to_string();
    assert!(message.contains("another trust domain"), "{message}");
    drop(kept);
}

fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
}

#[tokio::test]
async fn a_plain_node_forwards_only_self_verifying_requests() {
    let authority = Authority::start("").await;
    let ca = authority.dev_ca();
    let now = SystemTime::now();
    // A plain node of the same domain (its own data directory, no authority role).
    let plain_dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[node]\ntrust_domain = \"{TD}\"\ndata_dir = {dir:?}\nauthority_url = \"{url}/\"\n\
         [metrics]\nenabled = false\n[grpc]\nenabled = false\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [mesh]\nenabled = false\n",
        dir = plain_dir.path().display().to_string(),
        url = authority.base,
    );
    let config = Config::parse(&text).unwrap();
    let node = run::start(&config, Listeners::bind(&config).await.unwrap())
        .await
        .unwrap();
    let plain = format!("http://{}", node.addrs().http.unwrap());
    let http = authority.client.clone();
    let post = |body: Value, bearer: Option<String>| {
        let client = http.clone();
        let url = format!("{plain}/api/v2/signingCert");
        async move {
            let mut request = client.post(url).body(body.to_string());
            if let Some(token) = bearer {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            (status, body)
        }
    };

    // A workload's JWT-SVID request goes through and comes back with its certificate.
    let build = id("/ci/build");
    let key = new_key();
    let (status, answer) = post(
        json!({"certificateSigningRequest": csr_field(&key)}),
        Some(jwt(&ca, &build, "sigstore", now)),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    check_issued(&authority, &answer, &build, &key).await;

    // The authority's refusals come back unchanged.
    let (status, answer) = post(
        json!({"certificateSigningRequest": csr_field(&key)}),
        Some(jwt(&ca, &build, "not-sigstore", now)),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("audience"));

    // Nothing the authority could verify by itself: refused by the node.
    let (status, answer) = post(json!({"certificateSigningRequest": csr_field(&key)}), None).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("forwards"),
        "{answer}"
    );

    // The authority gone: 502 naming it.
    authority.stop().await;
    let (status, answer) = post(
        json!({"certificateSigningRequest": csr_field(&key)}),
        Some(jwt(&ca, &build, "sigstore", now)),
    )
    .await;
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("did not answer")
    );
    node.run_until(async { "done" }).await.unwrap();
}
