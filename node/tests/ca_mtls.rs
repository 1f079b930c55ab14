//! The authority's code-signing CA over mTLS (`authority.ca.mtls_listen`): a real node
//! (dev identity, domain log, CA) on loopback, and a rustls client that presents a
//! workload X.509-SVID of the node's dev CA and verifies the server's X.509-SVID against
//! the same dev CA's bundle (by SPIFFE ID: an SVID has no DNS name to check).
//!
//! The TLS layer only checks that the client holds its leaf's key; every other rule about
//! the client's chain is the CA's, so a chain the rules refuse gets Fulcio's 401 with a
//! reason, over a TLS connection that was accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use provmesh_node::config::Config;
use provmesh_node::identity::{DevCa, DevCaConfig, SubjectKey, X509Svid};
use provmesh_node::run::Listeners;
use provmesh_protocol::ca::embedded_scts;
use provmesh_protocol::ca::request::parse_fulcio_response;
use provmesh_protocol::machine::Timestamp;
use provmesh_protocol::spiffe::x509::verify_x509_svid;
use provmesh_protocol::spiffe::{SpiffeId, TrustBundle, TrustDomain};
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256, PublicKeyData as _};
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use x509_parser::extensions::GeneralName;

mod common;

use common::authority::{TD, TestAuthority};

/// A running authority with an mTLS listener, and its address.
async fn start_authority() -> (TestAuthority, SocketAddr) {
    let authority = TestAuthority::start("[authority.ca]\nmtls_listen = \"127.0.0.1:0\"\n").await;
    let mtls = authority.mtls.expect("the mTLS listener is bound");
    (authority, mtls)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Verifies the server's certificate as a SPIFFE client does: an X.509-SVID of `TD`
/// under the dev CA's bundle, and remembers its SPIFFE ID.
#[derive(Debug)]
struct SvidServerVerifier {
    trust_domain: TrustDomain,
    bundle: TrustBundle,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Mutex<Option<SpiffeId>>,
}

impl ServerCertVerifier for SvidServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain: Vec<&[u8]> = std::iter::once(end_entity.as_ref())
            .chain(intermediates.iter().map(AsRef::as_ref))
            .collect();
        let at = Timestamp::from_unix_millis(now.as_secs() * 1000);
        let svid = verify_x509_svid(&chain, &self.trust_domain, &self.bundle, at)
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        *self.seen.lock().unwrap() = Some(svid.spiffe_id);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Presents a certificate chain with a key that is not its leaf's (rustls' own builder
/// refuses such a pair, so the test brings its own resolver).
#[derive(Debug)]
struct MismatchedClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for MismatchedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// What the client presents.
enum ClientCert<'a> {
    None,
    Svid(&'a X509Svid),
    /// A chain and a private key that does not belong to it.
    Mismatched(&'a X509Svid, &'a X509Svid),
}

fn chain_of(svid: &X509Svid) -> Vec<CertificateDer<'static>> {
    svid.chain_der
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect()
}

fn key_of(svid: &X509Svid) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        svid.private_key_pkcs8.clone().unwrap(),
    ))
}

/// An HTTP/1.1 connection over TLS to the mTLS listener, and the server's SPIFFE ID.
async fn connect(
    addr: SocketAddr,
    bundle: &TrustBundle,
    client: ClientCert<'_>,
    versions: &[&'static SupportedProtocolVersion],
) -> Result<(SendRequest<Body>, SpiffeId), String> {
    let provider = provider();
    let verifier = Arc::new(SvidServerVerifier {
        trust_domain: TrustDomain::parse(TD).unwrap(),
        bundle: bundle.clone(),
        algorithms: provider.signature_verification_algorithms,
        seen: Mutex::new(None),
    });
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>);
    let config = match client {
        ClientCert::None => builder.with_no_client_auth(),
        ClientCert::Svid(svid) => builder
            .with_client_auth_cert(chain_of(svid), key_of(svid))
            .unwrap(),
        ClientCert::Mismatched(chain, key) => {
            let key = provider.key_provider.load_private_key(key_of(key)).unwrap();
            let certified = Arc::new(CertifiedKey::new(chain_of(chain), key));
            builder.with_client_cert_resolver(Arc::new(MismatchedClientCert(certified)))
        }
    };
    let tcp = TcpStream::connect(addr).await.unwrap();
    // The name is only sent as SNI; the verifier checks the SPIFFE ID instead.
    let name = ServerName::try_from("provmesh-authority").unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let server_id = verifier.seen.lock().unwrap().clone().unwrap();
    Ok((sender, server_id))
}

const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// POSTs `body` to `/api/v2/signingCert`: status and JSON answer.
async fn post(sender: &mut SendRequest<Body>, body: &Value) -> Result<(u16, Value), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let request = hyper::Request::post("/api/v2/signingCert")
        .header("host", "provmesh-authority")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

fn id(path: &str) -> SpiffeId {
    SpiffeId::parse(&format!("spiffe://{TD}{path}")).unwrap()
}

fn workload_svid(ca: &DevCa, spiffe_id: &SpiffeId) -> X509Svid {
    ca.issue_x509_svid(
        spiffe_id,
        SubjectKey::Generate,
        Duration::from_secs(300),
        SystemTime::now(),
    )
    .unwrap()
}

fn new_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

/// A request with a CSR for `key` and no credential of its own.
fn csr_request(key: &KeyPair) -> Value {
    let csr = CertificateParams::default().serialize_request(key).unwrap();
    json!({ "certificateSigningRequest": STANDARD.encode(csr.pem().unwrap()) })
}

/// The issued leaf certifies `key` for exactly `spiffe_id`, with one embedded SCT.
fn check_issued(answer: &Value, spiffe_id: &SpiffeId, key: &KeyPair) {
    let chain = parse_fulcio_response(answer.to_string().as_bytes()).unwrap();
    assert_eq!(chain.len(), 2, "leaf and the code-signing root");
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI(spiffe_id.as_str())]
    );
    assert_eq!(leaf.public_key().raw, key.subject_public_key_info());
    assert_eq!(embedded_scts(&chain[0]).unwrap().scts.len(), 1);
}

#[tokio::test]
async fn a_workload_svid_on_the_connection_is_the_credential() {
    let (authority, mtls) = start_authority().await;
    let ca = authority.dev_ca();
    let bundle = ca.trust_bundle().clone();
    let workload = id("/ns/build/sa/builder");
    let svid = workload_svid(&ca, &workload);

    let (mut sender, server_id) = connect(mtls, &bundle, ClientCert::Svid(&svid), TLS13)
        .await
        .unwrap();
    // The server presented the authority's own X.509-SVID, valid under the dev CA's
    // bundle.
    assert_eq!(server_id, authority.authority_id());

    let key = new_key();
    let (status, answer) = post(&mut sender, &csr_request(&key)).await.unwrap();
    assert_eq!(status, 201, "{answer}");
    check_issued(&answer, &workload, &key);

    // A second request on the same kept-alive connection carries the same credential.
    let key = new_key();
    let (status, answer) = post(&mut sender, &csr_request(&key)).await.unwrap();
    assert_eq!(status, 201, "{answer}");
    check_issued(&answer, &workload, &key);

    // TLS 1.2 too (its own handshake-signature check).
    let (mut sender12, _) = connect(mtls, &bundle, ClientCert::Svid(&svid), TLS12)
        .await
        .unwrap();
    let key = new_key();
    let (status, answer) = post(&mut sender12, &csr_request(&key)).await.unwrap();
    assert_eq!(status, 201, "{answer}");
    check_issued(&answer, &workload, &key);

    // The connections stay open: shutdown must close them within the grace period.
    authority.stop().await;
    drop((sender, sender12));
}

#[tokio::test]
async fn without_a_client_certificate_a_request_needs_its_own_credential() {
    let (authority, mtls) = start_authority().await;
    let ca = authority.dev_ca();
    let bundle = ca.trust_bundle().clone();
    let (mut sender, _) = connect(mtls, &bundle, ClientCert::None, TLS13)
        .await
        .unwrap();

    let (status, answer) = post(&mut sender, &csr_request(&new_key())).await.unwrap();
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["code"], 401);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("no credential"),
        "{answer}"
    );

    // A JWT-SVID works on the mTLS listener as on the plain one.
    let workload = id("/ns/build/sa/jwt-only");
    let token = ca
        .issue_jwt_svid(
            &workload,
            &["sigstore".to_owned()],
            Duration::from_secs(300),
            SystemTime::now(),
        )
        .unwrap();
    let key = new_key();
    let mut body = csr_request(&key);
    body["credentials"] = json!({ "oidcIdentityToken": token });
    let (status, answer) = post(&mut sender, &body).await.unwrap();
    assert_eq!(status, 201, "{answer}");
    check_issued(&answer, &workload, &key);
    authority.stop().await;
}

#[tokio::test]
async fn a_client_svid_of_another_trust_domain_is_refused() {
    let (authority, mtls) = start_authority().await;
    let bundle = authority.dev_ca().trust_bundle().clone();
    let other_dir = tempfile::tempdir().unwrap();
    let other = DevCa::open(
        other_dir.path(),
        &TrustDomain::parse("org-b.example").unwrap(),
        DevCaConfig::default(),
        SystemTime::now(),
    )
    .unwrap();
    let svid = workload_svid(
        &other,
        &SpiffeId::parse("spiffe://org-b.example/ns/build/sa/builder").unwrap(),
    );

    // Accepted at the TLS layer (it holds the key); refused by the CA's rules.
    let (mut sender, _) = connect(mtls, &bundle, ClientCert::Svid(&svid), TLS13)
        .await
        .unwrap();
    let (status, answer) = post(&mut sender, &csr_request(&new_key())).await.unwrap();
    assert_eq!(status, 401, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("X.509-SVID refused"), "{message}");
    assert!(message.contains("org-b.example"), "{message}");
    authority.stop().await;
}

#[tokio::test]
async fn an_expired_client_svid_is_refused() {
    let (authority, mtls) = start_authority().await;
    let ca = authority.dev_ca();
    let bundle = ca.trust_bundle().clone();
    // Issued 30 s ago for 1 s (the dev CA's root is backdated a minute, so it was
    // already valid then).
    let svid = ca
        .issue_x509_svid(
            &id("/ns/build/sa/old"),
            SubjectKey::Generate,
            Duration::from_secs(1),
            SystemTime::now() - Duration::from_secs(30),
        )
        .unwrap();
    assert!(svid.not_after < SystemTime::now());

    let (mut sender, _) = connect(mtls, &bundle, ClientCert::Svid(&svid), TLS13)
        .await
        .unwrap();
    let (status, answer) = post(&mut sender, &csr_request(&new_key())).await.unwrap();
    assert_eq!(status, 401, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("not valid at"), "{message}");
    authority.stop().await;
}

#[tokio::test]
async fn a_jwt_svid_must_name_the_same_workload_as_the_mtls_peer() {
    let (authority, mtls) = start_authority().await;
    let ca = authority.dev_ca();
    let bundle = ca.trust_bundle().clone();
    let peer = id("/ns/build/sa/builder");
    let svid = workload_svid(&ca, &peer);
    let (mut sender, _) = connect(mtls, &bundle, ClientCert::Svid(&svid), TLS13)
        .await
        .unwrap();
    let jwt = |spiffe_id: &SpiffeId| {
        ca.issue_jwt_svid(
            spiffe_id,
            &["sigstore".to_owned()],
            Duration::from_secs(300),
            SystemTime::now(),
        )
        .unwrap()
    };

    // Another workload's JWT-SVID over this workload's connection: two identities.
    let mut body = csr_request(&new_key());
    body["credentials"] = json!({ "oidcIdentityToken": jwt(&id("/ns/build/sa/other")) });
    let (status, answer) = post(&mut sender, &body).await.unwrap();
    assert_eq!(status, 400, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("two different credentials"), "{message}");

    // The same workload's JWT-SVID agrees with the connection.
    let key = new_key();
    let mut body = csr_request(&key);
    body["credentials"] = json!({ "oidcIdentityToken": jwt(&peer) });
    let (status, answer) = post(&mut sender, &body).await.unwrap();
    assert_eq!(status, 201, "{answer}");
    check_issued(&answer, &peer, &key);
    authority.stop().await;
}

#[tokio::test]
async fn a_client_certificate_without_its_private_key_gets_nothing() {
    let (authority, mtls) = start_authority().await;
    let ca = authority.dev_ca();
    let bundle = ca.trust_bundle().clone();
    // A valid SVID of the domain (certificates are public), signed for with another key.
    let victim = workload_svid(&ca, &id("/ns/build/sa/victim"));
    let attacker = workload_svid(&ca, &id("/ns/build/sa/attacker"));
    for versions in [TLS13, TLS12] {
        let outcome = async {
            let (mut sender, _) = connect(
                mtls,
                &bundle,
                ClientCert::Mismatched(&victim, &attacker),
                versions,
            )
            .await?;
            post(&mut sender, &csr_request(&new_key())).await
        }
        .await;
        // The handshake signature does not verify: the server aborts the connection (in
        // TLS 1.3 the client learns it only when it uses the connection).
        assert!(outcome.is_err(), "{versions:?}: {outcome:?}");
    }
    authority.stop().await;
}

#[tokio::test]
async fn the_mtls_listener_is_bound_only_on_an_authority_with_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let config = |authority: bool, ca: bool| {
        Config::parse(&format!(
            "[node]\ntrust_domain = \"{TD}\"\ndata_dir = {dir:?}\n\
             [metrics]\nenabled = false\n[grpc]\nenabled = false\n\
             [http]\nlisten = \"127.0.0.1:0\"\n[mesh]\nenabled = false\n\
             [authority]\nenabled = {authority}\n\
             [authority.ca]\nenabled = {ca}\nmtls_listen = \"127.0.0.1:0\"\n",
            dir = dir.path().display().to_string(),
        ))
        .unwrap()
    };
    let bound = Listeners::bind(&config(true, true)).await.unwrap();
    assert!(bound.addrs().unwrap().mtls.is_some());
    for (authority, ca) in [(false, true), (true, false)] {
        let bound = Listeners::bind(&config(authority, ca)).await.unwrap();
        assert!(bound.mtls.is_none(), "authority {authority}, ca {ca}");
    }
    // Unset by default; a bad address is named by its key.
    assert_eq!(Config::default().authority.ca.mtls_listen, None);
    let error = Config::parse(&format!(
        "[node]\ntrust_domain = \"{TD}\"\n[authority.ca]\nmtls_listen = \"localhost\"\n"
    ))
    .unwrap_err();
    assert!(
        error.to_string().contains("authority.ca.mtls_listen"),
        "{error}"
    );
}
