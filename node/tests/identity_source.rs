//! The node's `dev` identity source (`identity::source::Identity` over the embedded dev
//! CA): the node's X.509-SVID and its persisted CA and node id, reuse across restarts,
//! renewal before expiry, JWT-SVIDs, and the task's end at shutdown. The `spire` source is
//! tested against a Workload API server in `tests/tests/identity_workload_api.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use provmesh_node::config::{Config, IdentitySourceKind};
use provmesh_node::identity::dev_ca::{CA_CERT_FILE, CA_KEY_FILE, JWT_KEY_FILE};
use provmesh_node::identity::source::{
    IDENTITY_DIR, Identity, IdentityTask, JwtSvidFetchError, NODE_ID_FILE, OpenOptions,
};
use provmesh_node::identity::{DevCa, DevCaConfig, NodeSvid, verify_jwt_svid};
use provmesh_node::shutdown::{self, ShutdownTrigger};
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use serde_json::{Map, Value};

/// How long any wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(15);

fn dev_config(dir: &Path) -> Config {
    Config::parse(&format!(
        "[node]\ntrust_domain = \"org-a.example\"\ndata_dir = {:?}\n",
        dir.join("data").display().to_string()
    ))
    .unwrap()
}

fn td() -> TrustDomain {
    TrustDomain::parse("org-a.example").unwrap()
}

fn identity_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("data").join(IDENTITY_DIR)
}

async fn open(config: &Config, options: &OpenOptions) -> (Identity, IdentityTask, ShutdownTrigger) {
    let (trigger, shutdown) = shutdown::channel();
    let (identity, task) = Identity::open_with(config, options, shutdown)
        .await
        .unwrap();
    (identity, task, trigger)
}

/// The uncompressed P-256 point of a DER certificate's key.
fn public_point(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

/// Checks that `svid` is a leaf of the root `ca_der`, for `id`, holding its own key.
fn assert_svid(svid: &NodeSvid, ca_der: &[u8], id: &SpiffeId) {
    assert_eq!(&svid.spiffe_id, id);
    assert_eq!(svid.chain_der.len(), 1);
    let (_, leaf) = x509_parser::parse_x509_certificate(&svid.chain_der[0]).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_point(ca_der))
        .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
        .expect("the SVID is signed by the dev CA root");
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        format!("{:?}", san.value.general_names),
        format!("[URI({:?})]", id.as_str())
    );
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &svid.private_key_pkcs8).unwrap();
    assert_eq!(key.public_key().as_ref(), public_point(&svid.chain_der[0]));
    let not_after = UNIX_EPOCH
        + Duration::from_secs(u64::try_from(leaf.validity().not_after.timestamp()).unwrap());
    assert_eq!(svid.not_after, not_after);
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_dev_source_issues_the_node_svid_from_a_persisted_ca() {
    let dir = tempfile::tempdir().unwrap();
    let config = dev_config(dir.path());
    let (identity, _task, _trigger) = open(&config, &OpenOptions::default()).await;
    assert_eq!(identity.source_kind(), IdentitySourceKind::Dev);
    assert_eq!(identity.trust_domain(), &td());

    let node_id = std::fs::read_to_string(identity_dir(dir.path()).join(NODE_ID_FILE)).unwrap();
    let expected = SpiffeId::parse(&format!(
        "spiffe://org-a.example/provmesh/node/{}",
        node_id.trim()
    ))
    .unwrap();
    // The CA as the files hold it: the identity's bundle is that CA's.
    let ca = DevCa::open(
        &identity_dir(dir.path()),
        &td(),
        DevCaConfig::default(),
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(*identity.bundle(), *ca.trust_bundle());
    assert_eq!(identity.bundle().x509_authorities().count(), 1);
    assert_eq!(identity.bundle().jwt_authorities().count(), 1);
    let svid = identity.svid();
    assert_svid(&svid, ca.ca_certificate_der(), &expected);
    let lifetime = svid.not_after.duration_since(SystemTime::now()).unwrap();
    assert!(
        lifetime > Duration::from_secs(3500) && lifetime <= Duration::from_secs(3600),
        "{lifetime:?}"
    );
    #[cfg(unix)]
    for file in [CA_KEY_FILE, JWT_KEY_FILE, CA_CERT_FILE, NODE_ID_FILE] {
        assert_eq!(mode(&identity_dir(dir.path()).join(file)), 0o600, "{file}");
    }
}

#[tokio::test]
async fn the_ca_and_the_node_id_are_reused_when_the_node_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dev_config(dir.path());
    let (first, task, trigger) = open(&config, &OpenOptions::default()).await;
    let running = tokio::spawn(task);
    trigger.trigger();
    tokio::time::timeout(DEADLINE, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let (second, _task, _trigger) = open(&config, &OpenOptions::default()).await;
    assert_eq!(*second.bundle(), *first.bundle());
    assert_eq!(second.svid().spiffe_id, first.svid().spiffe_id);
    // A new SVID with a new key, from the same root.
    assert_ne!(
        second.svid().private_key_pkcs8,
        first.svid().private_key_pkcs8
    );
    let root = first.bundle().x509_authorities().next().unwrap().to_vec();
    assert_svid(&second.svid(), &root, &first.svid().spiffe_id);

    // Another data directory is another node with another CA.
    let other = tempfile::tempdir().unwrap();
    let (third, _task, _trigger) = open(&dev_config(other.path()), &OpenOptions::default()).await;
    assert_ne!(third.svid().spiffe_id, first.svid().spiffe_id);
    assert_ne!(*third.bundle(), *first.bundle());
}

#[tokio::test]
async fn the_node_svid_is_renewed_at_half_its_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let config = dev_config(dir.path());
    let mut options = OpenOptions::default();
    options.dev_ca = DevCaConfig {
        max_svid_validity: Duration::from_secs(2),
        ..DevCaConfig::default()
    };
    options.node_svid_validity = Some(Duration::from_secs(2));
    let (identity, task, trigger) = open(&config, &options).await;
    let running = tokio::spawn(task);
    let root = identity
        .bundle()
        .x509_authorities()
        .next()
        .unwrap()
        .to_vec();
    let mut svids = identity.svid_updates();
    let mut previous = svids.borrow_and_update().clone();
    for _ in 0..2 {
        tokio::time::timeout(DEADLINE, svids.changed())
            .await
            .expect("the SVID was not renewed in time")
            .unwrap();
        let renewed = svids.borrow_and_update().clone();
        // Renewed before the previous one expired, with a new key and a later end.
        assert!(SystemTime::now() < previous.not_after + Duration::from_millis(500));
        assert!(renewed.not_after > previous.not_after);
        assert_ne!(renewed.private_key_pkcs8, previous.private_key_pkcs8);
        assert_svid(&renewed, &root, &previous.spiffe_id);
        previous = renewed;
    }
    trigger.trigger();
    tokio::time::timeout(DEADLINE, running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The task has ended, so the channels are closed.
    assert!(svids.changed().await.is_err());
    assert!(identity.bundle_updates().changed().await.is_err());
}

#[tokio::test]
async fn dev_jwt_svids_validate_against_the_bundle_and_carry_sigstore_claims() {
    let dir = tempfile::tempdir().unwrap();
    let config = dev_config(dir.path());
    let (identity, _task, _trigger) = open(&config, &OpenOptions::default()).await;
    let bundle = identity.bundle();
    let node = identity.svid().spiffe_id.clone();

    let token = identity.jwt_svid(None, "sigstore").await.unwrap();
    assert_eq!(
        verify_jwt_svid(&token, "sigstore", &td(), &bundle, SystemTime::now()).unwrap(),
        node
    );
    let payload = token.split('.').nth(1).unwrap();
    let claims: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["iss"], "spiffe://org-a.example");
    assert_eq!(claims["aud"], "sigstore");
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 300, "five-minute JWT-SVIDs by default");

    let workload = SpiffeId::parse("spiffe://org-a.example/ci/build").unwrap();
    let token = identity
        .jwt_svid(Some(&workload), "sigstore")
        .await
        .unwrap();
    assert_eq!(
        verify_jwt_svid(&token, "sigstore", &td(), &bundle, SystemTime::now()).unwrap(),
        workload
    );

    let foreign = SpiffeId::parse("spiffe://org-b.example/ci/build").unwrap();
    let err = identity
        .jwt_svid(Some(&foreign), "sigstore")
        .await
        .unwrap_err();
    assert!(
        matches!(err, JwtSvidFetchError::ForeignTrustDomain { .. }),
        "{err}"
    );
    let err = identity.jwt_svid(None, "").await.unwrap_err();
    assert!(matches!(err, JwtSvidFetchError::Dev(_)), "{err}");
}
