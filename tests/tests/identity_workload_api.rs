//! The node's `spire` identity source against a test-only SPIFFE Workload API server
//! (`provmesh_tests::workload_api`, backed by a dev CA; SPIRE cannot be installed here):
//! the node SVID and the trust bundle with its X.509 and JWT authorities, rotation and
//! bundle changes followed live, JWT-SVIDs that validate against the delivered bundle, the
//! `workload.spiffe.io` security header, and the start-up errors (no agent, an SVID of a
//! foreign trust domain).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use provmesh_node::config::{Config, IdentitySourceKind};
use provmesh_node::identity::source::{Identity, IdentityTask, JwtSvidFetchError};
use provmesh_node::identity::workload_api::{ConnectError, FetchJwtError, MaterialError};
use provmesh_node::identity::{
    DevCa, DevCaConfig, JwtSvidError, OpenIdentityError, verify_jwt_svid,
};
use provmesh_node::shutdown::{self, ShutdownTrigger};
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use provmesh_tests::workload_api::pb::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use provmesh_tests::workload_api::{WORKLOAD_HEADER, WorkloadApiServer, pb};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tonic::transport::Channel;
use tonic::{Code, Request};

/// How long any wait for the source may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(15);
const NODE_ID: &str = "spiffe://org-a.example/provmesh/node/agent-issued";

fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

fn td(name: &str) -> TrustDomain {
    TrustDomain::parse(name).unwrap()
}

/// A `spire` configuration for trust domain `domain` with the agent at `endpoint`.
fn spire_config(dir: &Path, domain: &str, endpoint: &str, timeout: &str) -> Config {
    Config::parse(&format!(
        "[node]\ntrust_domain = {domain:?}\ndata_dir = {:?}\n\n[identity]\nsource = \"spire\"\n\
         workload_api_socket = {endpoint:?}\nstartup_timeout = {timeout:?}\n\n[mesh]\nenabled = false\n",
        dir.join("data").display().to_string()
    ))
    .unwrap()
}

/// A server for `NODE_ID` and the node's identity opened against it, its task running.
struct Fixture {
    _dir: tempfile::TempDir,
    server: WorkloadApiServer,
    identity: Identity,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<Result<(), provmesh_node::identity::IdentityTaskError>>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let server = WorkloadApiServer::start(dir.path(), &id(NODE_ID)).unwrap();
    let config = spire_config(dir.path(), "org-a.example", &server.endpoint(), "10s");
    let (trigger, shutdown) = shutdown::channel();
    let (identity, task): (Identity, IdentityTask) =
        Identity::open(&config, shutdown).await.unwrap();
    Fixture {
        _dir: dir,
        server,
        identity,
        trigger,
        task: tokio::spawn(task),
    }
}

/// Waits until `rx` holds a value for which `f` holds.
async fn wait_for<T>(rx: &mut watch::Receiver<T>, f: impl FnMut(&T) -> bool) {
    tokio::time::timeout(DEADLINE, rx.wait_for(f))
        .await
        .expect("the watch did not see the update in time")
        .expect("the watch closed");
}

/// The uncompressed P-256 point of a DER certificate's key.
fn public_point(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

/// Whether the DER certificate `der` is signed by the key of the DER certificate `issuer`.
fn signed_by(der: &[u8], issuer: &[u8]) -> bool {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_point(issuer))
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .is_ok()
}

/// The claims of a JWT.
fn claims(token: &str) -> Map<String, Value> {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_svid_and_both_kinds_of_authority_come_from_the_workload_api() {
    let f = fixture().await;
    assert_eq!(f.identity.source_kind(), IdentitySourceKind::Spire);
    assert_eq!(f.identity.trust_domain(), &td("org-a.example"));

    let served = f.server.current_svid();
    let svid = f.identity.svid();
    assert_eq!(svid.spiffe_id, id(NODE_ID));
    assert_eq!(svid.chain_der, served.chain_der);
    assert_eq!(
        Some(&svid.private_key_pkcs8),
        served.private_key_pkcs8.as_ref()
    );
    assert_eq!(svid.not_after, served.not_after);
    // The key is the leaf's, and the leaf is signed by the bundle's authority.
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &svid.private_key_pkcs8).unwrap();
    assert_eq!(key.public_key().as_ref(), public_point(&svid.chain_der[0]));

    let bundle = f.identity.bundle();
    let authorities: Vec<&[u8]> = bundle.x509_authorities().collect();
    assert_eq!(authorities, [f.server.ca().ca_certificate_der()]);
    assert!(signed_by(&svid.chain_der[0], authorities[0]));
    let jwt: Vec<_> = bundle.jwt_authorities().collect();
    assert_eq!(jwt.len(), 1);
    assert_eq!(jwt[0].0, f.server.ca().jwt_key_id());
    // The JWK is the dev CA's JWT key, member for member, with `use` restored.
    let expected = f
        .server
        .ca()
        .trust_bundle()
        .jwt_authority(f.server.ca().jwt_key_id())
        .unwrap();
    assert_eq!(jwt[0].1.members(), expected.members());
    bundle.check_strict().unwrap();
    assert_eq!(*f.identity.bundle_updates().borrow(), bundle);

    f.trigger.trigger();
    tokio::time::timeout(DEADLINE, f.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_the_svid_watch_live() {
    let f = fixture().await;
    let mut svids = f.identity.svid_updates();
    let before = svids.borrow_and_update().clone();
    for _ in 0..2 {
        let rotated = f.server.rotate().unwrap();
        wait_for(&mut svids, |s| s.chain_der == rotated.chain_der).await;
        let now = svids.borrow_and_update().clone();
        assert_eq!(now.spiffe_id, id(NODE_ID));
        assert_eq!(
            Some(&now.private_key_pkcs8),
            rotated.private_key_pkcs8.as_ref()
        );
        assert_ne!(now.chain_der, before.chain_der);
        assert_eq!(f.identity.svid().chain_der, rotated.chain_der);
    }
    // The bundle did not change with the SVID.
    assert_eq!(f.identity.bundle().x509_authorities().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_changes_reach_the_bundle_watch_live() {
    let f = fixture().await;
    let mut bundles = f.identity.bundle_updates();
    // A second CA of the same trust domain, as during a SPIRE CA rotation.
    let next = tempfile::tempdir().unwrap();
    let next_ca = DevCa::open(
        next.path(),
        &td("org-a.example"),
        DevCaConfig::default(),
        SystemTime::now(),
    )
    .unwrap();
    f.server
        .add_x509_authority(next_ca.ca_certificate_der().to_vec());
    wait_for(&mut bundles, |b| b.x509_authorities().count() == 2).await;
    let (kid, jwk) = next_ca.trust_bundle().jwt_authorities().next().unwrap();
    let mut members = jwk.members().clone();
    members.remove("use");
    members.remove("kid");
    f.server.add_jwt_authority(kid, members);
    wait_for(&mut bundles, |b| b.jwt_authorities().count() == 2).await;

    let bundle = f.identity.bundle();
    assert_eq!(
        bundle.x509_authorities().collect::<Vec<_>>(),
        [
            f.server.ca().ca_certificate_der(),
            next_ca.ca_certificate_der()
        ]
    );
    assert!(bundle.jwt_authority(next_ca.jwt_key_id()).is_some());
    assert!(bundle.jwt_authority(f.server.ca().jwt_key_id()).is_some());
    // What the node holds is what the agent serves.
    let served = f.server.trust_bundle().unwrap();
    assert_eq!(
        bundle.x509_authorities().collect::<Vec<_>>(),
        served.x509_authorities().collect::<Vec<_>>()
    );
    // A token signed by the new JWT key validates against the updated bundle.
    let token = next_ca
        .issue_jwt_svid(
            &id(NODE_ID),
            &["sigstore".to_owned()],
            Duration::from_secs(60),
            SystemTime::now(),
        )
        .unwrap();
    verify_jwt_svid(
        &token,
        "sigstore",
        &td("org-a.example"),
        &bundle,
        SystemTime::now(),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_svid_from_the_agent_validates_against_the_bundle_it_delivered() {
    let f = fixture().await;
    let domain = td("org-a.example");
    let token = f.identity.jwt_svid(None, "sigstore").await.unwrap();
    let bundle = f.identity.bundle();
    let subject = verify_jwt_svid(&token, "sigstore", &domain, &bundle, SystemTime::now()).unwrap();
    assert_eq!(subject, id(NODE_ID));
    // Sigstore clients require `iss` and `iat` beside `sub`, `aud` and `exp`.
    let token_claims = claims(&token);
    for claim in ["sub", "aud", "exp", "iat", "iss"] {
        assert!(
            token_claims.contains_key(claim),
            "{claim} missing from {token_claims:?}"
        );
    }
    assert_eq!(token_claims["aud"], "sigstore");
    assert_eq!(token_claims["iss"], "spiffe://org-a.example");
    // Another audience does not accept it.
    assert!(matches!(
        verify_jwt_svid(&token, "other", &domain, &bundle, SystemTime::now()),
        Err(JwtSvidError::AudienceMismatch { .. })
    ));

    // Asking for the node's own ID by name works too.
    let named = f
        .identity
        .jwt_svid(Some(&id(NODE_ID)), "sigstore")
        .await
        .unwrap();
    assert_eq!(claims(&named)["sub"], NODE_ID);

    // The agent does not issue for an identity the workload is not entitled to.
    let other = id("spiffe://org-a.example/someone/else");
    let err = f
        .identity
        .jwt_svid(Some(&other), "sigstore")
        .await
        .unwrap_err();
    assert!(
        matches!(err, JwtSvidFetchError::Spire(FetchJwtError::Failed { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("FetchJWTSVID"), "{err}");

    // An ID of another trust domain is refused before the agent is asked.
    let foreign = id("spiffe://org-b.example/workload");
    let err = f
        .identity
        .jwt_svid(Some(&foreign), "sigstore")
        .await
        .unwrap_err();
    assert!(
        matches!(err, JwtSvidFetchError::ForeignTrustDomain { .. }),
        "{err}"
    );
}

/// A raw client of the test server: no interceptor adds the security header.
async fn raw_client(server: &WorkloadApiServer) -> SpiffeWorkloadApiClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    SpiffeWorkloadApiClient::new(channel)
}

/// A request with `workload.spiffe.io` set to `header`, or without it.
fn request<T>(message: T, header: Option<&'static str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(value) = header {
        request
            .metadata_mut()
            .insert(WORKLOAD_HEADER, value.parse().unwrap());
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_the_security_header_are_refused_with_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let server = WorkloadApiServer::start(dir.path(), &id(NODE_ID)).unwrap();
    let mut client = raw_client(&server).await;

    // Missing, and present with a value other than exactly "true" (case sensitive).
    for header in [None, Some("false"), Some("TRUE"), Some("")] {
        let codes = [
            client
                .fetch_x509svid(request(pb::X509svidRequest {}, header))
                .await
                .map(drop),
            client
                .fetch_x509_bundles(request(pb::X509BundlesRequest {}, header))
                .await
                .map(drop),
            client
                .fetch_jwtsvid(request(
                    pb::JwtsvidRequest {
                        audience: vec!["sigstore".into()],
                        spiffe_id: String::new(),
                    },
                    header,
                ))
                .await
                .map(drop),
            client
                .fetch_jwt_bundles(request(pb::JwtBundlesRequest {}, header))
                .await
                .map(drop),
            client
                .validate_jwtsvid(request(
                    pb::ValidateJwtsvidRequest {
                        audience: "sigstore".into(),
                        svid: "a.b.c".into(),
                    },
                    header,
                ))
                .await
                .map(drop),
        ]
        .map(|result| result.unwrap_err().code());
        assert_eq!(codes, [Code::InvalidArgument; 5], "header {header:?}");
    }

    // With the header the same client is served.
    let mut svids = client
        .fetch_x509svid(request(pb::X509svidRequest {}, Some("true")))
        .await
        .unwrap()
        .into_inner();
    let first = tokio::time::timeout(DEADLINE, svids.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.svids.len(), 1);
    assert_eq!(first.svids[0].spiffe_id, NODE_ID);
    assert_eq!(
        first.svids[0].x509_svid,
        server.current_svid().chain_der.concat()
    );
    // A rotation arrives on the open stream as a complete new message.
    let rotated = server.rotate().unwrap();
    let second = tokio::time::timeout(DEADLINE, svids.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.svids[0].x509_svid, rotated.chain_der.concat());

    let token = client
        .fetch_jwtsvid(request(
            pb::JwtsvidRequest {
                audience: vec!["sigstore".into()],
                spiffe_id: String::new(),
            },
            Some("true"),
        ))
        .await
        .unwrap()
        .into_inner()
        .svids
        .remove(0)
        .svid;
    let validated = client
        .validate_jwtsvid(request(
            pb::ValidateJwtsvidRequest {
                audience: "sigstore".into(),
                svid: token,
            },
            Some("true"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(validated.spiffe_id, NODE_ID);
    let claims = validated.claims.unwrap().fields;
    assert!(
        ["sub", "aud", "exp", "iat", "iss"]
            .iter()
            .all(|c| claims.contains_key(*c)),
        "{claims:?}"
    );
    // A bad token and missing mandatory fields are invalid arguments too.
    let bad = client
        .validate_jwtsvid(request(
            pb::ValidateJwtsvidRequest {
                audience: "sigstore".into(),
                svid: "a.b.c".into(),
            },
            Some("true"),
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let no_audience = client
        .fetch_jwtsvid(request(pb::JwtsvidRequest::default(), Some("true")))
        .await
        .unwrap_err();
    assert_eq!(no_audience.code(), Code::InvalidArgument);
    // The WIT-SVID profile is not served.
    let wit = client
        .fetch_witsvid(request(pb::WitsvidRequest::default(), Some("true")))
        .await
        .unwrap_err();
    assert_eq!(wit.code(), Code::Unimplemented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_agent_at_the_socket_is_a_clear_error_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("missing.sock");
    let endpoint = format!("unix://{}", socket.display());
    let config = spire_config(dir.path(), "org-a.example", &endpoint, "1s");
    let started = Instant::now();
    let err = Identity::open(&config, shutdown::channel().1)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    assert!(
        matches!(err, OpenIdentityError::Spire(ConnectError::NoAgent { .. })),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(&endpoint), "{message}");
    assert!(message.contains("within 1s"), "{message}");
    assert!(message.contains("there is no socket at"), "{message}");

    // A socket that accepts connections but never speaks gRPC: the same bound holds, and
    // the hint no longer blames a missing socket.
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let started = Instant::now();
    let err = Identity::open(&config, shutdown::channel().1)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let message = err.to_string();
    assert!(message.contains("the socket exists"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_svid_of_a_foreign_trust_domain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        WorkloadApiServer::start(dir.path(), &id("spiffe://org-b.example/provmesh/node")).unwrap();
    let config = spire_config(dir.path(), "org-a.example", &server.endpoint(), "5s");
    let err = Identity::open(&config, shutdown::channel().1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            OpenIdentityError::Spire(ConnectError::Material {
                source: MaterialError::ForeignTrustDomain { .. },
                ..
            })
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("spiffe://org-b.example/provmesh/node"),
        "{message}"
    );
    assert!(message.contains("org-a.example"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_task_and_closes_the_watches() {
    let f = fixture().await;
    let mut svids = f.identity.svid_updates();
    let mut bundles = f.identity.bundle_updates();
    f.trigger.trigger();
    tokio::time::timeout(DEADLINE, f.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(svids.changed().await.is_err());
    assert!(bundles.changed().await.is_err());
    // The last values stay readable.
    assert_eq!(f.identity.svid().spiffe_id, id(NODE_ID));
    let _: Arc<_> = f.identity.bundle();
}
