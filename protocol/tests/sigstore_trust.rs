//! Sigstore trust documents built from provmesh domain material
//! (`provmesh_protocol::sigstore_trust`): a TrustedRoot and a ClientTrustConfig for two
//! domains with freshly generated keys carry exactly the inputs, round-trip through
//! `sigstore::parse_trusted_root`, and — when the pinned verifier venv exists
//! (`scripts/setup-verifiers`) — are accepted by stock sigstore-python 4.5.1, which
//! reads back the same logs, keys and CAs. Bad inputs are refused with the error
//! naming them.

// Helpers outside `#[test]` functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use provmesh_protocol::log::log_key_id;
use provmesh_protocol::note::KeyName;
use provmesh_protocol::sigstore::{
    DEFAULT_MAX_TRUSTED_ROOT_LEN, TrustedRootVersion, parse_trusted_root, trusted_root_to_json,
};
use provmesh_protocol::sigstore_trust::{
    CLIENT_TRUST_CONFIG_MEDIA_TYPE, CaTrust, ClientTrustConfigError, CtTrust, DomainTrust,
    LogTrust, SIGNING_CONFIG_MEDIA_TYPE_V0_2, TrustedRootBuildError, client_trust_config,
    client_trust_config_with_services, ct_log_id, ed25519_spki_der, trusted_root,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData as _, date_time_ymd,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// 2023-11-14T22:13:20Z: every validity start (in the past, as verifiers require).
const VALID_FROM: i64 = 1_700_000_000;
const VALID_FROM_RFC3339: &str = "2023-11-14T22:13:20Z";

/// A CA certificate with its parameters and key, to issue from.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

fn ca_params(organization: Option<&str>, common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let epoch = date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(1_600_000_000);
    params.not_after = epoch + Duration::from_secs(2_600_000_000);
    params
}

fn self_signed(params: CertificateParams) -> Ca {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Ca { params, key, der }
}

fn issued(params: CertificateParams, parent: &Ca) -> Ca {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = params
        .signed_by(&key, &Issuer::from_params(&parent.params, &parent.key))
        .unwrap()
        .der()
        .to_vec();
    Ca { params, key, der }
}

/// A domain `org` whose log key is derived from `seed`, whose CT key is fresh, and
/// whose CA chain is a root alone or, with `intermediate`, [intermediate, root].
fn domain(org: &str, seed: u8, intermediate: bool) -> DomainTrust {
    let origin = KeyName::new(format!("log.{org}.example")).unwrap();
    let log_key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
        .verifying_key()
        .to_bytes();
    let ct_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let root = self_signed(ca_params(Some(org), &format!("{org} root")));
    let chain_der = if intermediate {
        let inter = issued(ca_params(Some(org), &format!("{org} issuing")), &root);
        vec![inter.der, root.der]
    } else {
        vec![root.der]
    };
    DomainTrust {
        log: LogTrust::new(&origin, format!("https://{origin}"), log_key, VALID_FROM),
        ct: CtTrust {
            spki_der: ct_key.subject_public_key_info(),
            valid_from_unix: VALID_FROM,
        },
        ca: CaTrust {
            chain_der,
            valid_from_unix: VALID_FROM,
            uri: format!("https://ca.{org}.example"),
        },
    }
}

fn two_domains() -> Vec<DomainTrust> {
    vec![domain("org-a", 1, false), domain("org-b", 2, true)]
}

fn root_json(domains: &[DomainTrust]) -> Value {
    serde_json::from_slice(&trusted_root_to_json(&trusted_root(domains).unwrap()).unwrap()).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn trusted_root_carries_each_domain_in_sigstore_form() {
    let domains = two_domains();
    let json = root_json(&domains);
    assert_eq!(
        json["mediaType"],
        "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
    );
    for key in ["tlogs", "ctlogs", "certificateAuthorities"] {
        assert_eq!(json[key].as_array().unwrap().len(), 2, "{key}");
    }
    assert!(json.get("timestampAuthorities").is_none());
    for (i, d) in domains.iter().enumerate() {
        let origin = KeyName::new(d.log.origin.clone()).unwrap();
        assert_eq!(d.log.key_id, log_key_id(&origin, &d.log.ed25519_public_key));
        assert_eq!(
            json["tlogs"][i],
            json!({
                "baseUrl": d.log.base_url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(&ed25519_spki_der(&d.log.ed25519_public_key)),
                    "keyDetails": "PKIX_ED25519",
                    "validFor": {"start": VALID_FROM_RFC3339},
                },
                "logId": {"keyId": b64(&d.log.key_id)},
            })
        );
        assert_eq!(
            json["ctlogs"][i],
            json!({
                "baseUrl": d.log.base_url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(&d.ct.spki_der),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": VALID_FROM_RFC3339},
                },
                "logId": {"keyId": b64(&Sha256::digest(&d.ct.spki_der))},
            })
        );
        let org = if i == 0 { "org-a" } else { "org-b" };
        let certs: Vec<Value> =
            d.ca.chain_der
                .iter()
                .map(|der| json!({"rawBytes": b64(der)}))
                .collect();
        assert_eq!(
            json["certificateAuthorities"][i],
            json!({
                "subject": {"organization": org, "commonName": format!("{org} root")},
                "uri": d.ca.uri,
                "certChain": {"certificates": certs},
                "validFor": {"start": VALID_FROM_RFC3339},
            })
        );
    }
    assert_eq!(
        json["certificateAuthorities"][1]["certChain"]["certificates"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn trusted_root_round_trips_through_the_parser() {
    let root = trusted_root(&two_domains()).unwrap();
    let bytes = trusted_root_to_json(&root).unwrap();
    let (parsed, version) = parse_trusted_root(&bytes, DEFAULT_MAX_TRUSTED_ROOT_LEN).unwrap();
    assert_eq!(version, TrustedRootVersion::V0_1);
    assert_eq!(parsed, root);
    assert_eq!(trusted_root_to_json(&parsed).unwrap(), bytes);
}

#[test]
fn client_trust_config_wraps_the_root_with_the_domains_services() {
    let domains = two_domains();
    let root = trusted_root(&domains).unwrap();
    let config = client_trust_config(&root).unwrap();
    assert_eq!(config["mediaType"], CLIENT_TRUST_CONFIG_MEDIA_TYPE);
    assert_eq!(config["trustedRoot"], root_json(&domains));
    let service = |url: &str, host: &str| {
        json!({
            "url": url,
            "majorApiVersion": 1,
            "validFor": {"start": VALID_FROM_RFC3339},
            "operator": host,
        })
    };
    assert_eq!(
        config["signingConfig"],
        json!({
            "mediaType": SIGNING_CONFIG_MEDIA_TYPE_V0_2,
            "caUrls": [
                service("https://ca.org-a.example", "ca.org-a.example"),
                service("https://ca.org-b.example", "ca.org-b.example"),
            ],
            "rekorTlogUrls": [
                service("https://log.org-a.example", "log.org-a.example"),
                service("https://log.org-b.example", "log.org-b.example"),
            ],
            "rekorTlogConfig": {"selector": "ANY"},
        })
    );
}

#[test]
fn log_api_urls_override_where_clients_reach_the_logs() {
    let domains = two_domains();
    let root = trusted_root(&domains).unwrap();
    let config =
        client_trust_config_with_services(&root, &["http://127.0.0.1:8080".to_owned()], &[])
            .unwrap();
    // The trusted root still names the logs by their origins...
    assert_eq!(config["trustedRoot"], root_json(&domains));
    // ...while the signing config sends clients of the first log to its API address.
    let logs = &config["signingConfig"]["rekorTlogUrls"];
    assert_eq!(logs[0]["url"], "http://127.0.0.1:8080");
    assert_eq!(logs[0]["operator"], "127.0.0.1");
    assert_eq!(logs[1]["url"], "https://log.org-b.example");
    assert_eq!(
        config["signingConfig"]["caUrls"][0]["url"],
        "https://ca.org-a.example"
    );
    let config =
        client_trust_config_with_services(&root, &[], &["http://127.0.0.1:9".to_owned()]).unwrap();
    assert_eq!(
        config["signingConfig"]["caUrls"][0]["url"],
        "http://127.0.0.1:9"
    );
    assert!(client_trust_config_with_services(&root, &["not a url".to_owned()], &[]).is_err());
}

#[test]
fn client_trust_config_needs_a_log_and_a_ca_with_urls() {
    let root = trusted_root(&two_domains()).unwrap();
    let mut no_log = root.clone();
    no_log.tlogs.clear();
    assert!(matches!(
        client_trust_config(&no_log),
        Err(ClientTrustConfigError::NoLog)
    ));
    let mut no_ca = root.clone();
    no_ca.certificate_authorities.clear();
    assert!(matches!(
        client_trust_config(&no_ca),
        Err(ClientTrustConfigError::NoCertificateAuthority)
    ));
    let mut schemeless = root;
    schemeless.tlogs[1].base_url = "log.org-b.example".to_owned();
    assert!(matches!(
        client_trust_config(&schemeless),
        Err(ClientTrustConfigError::ServiceUrl { url, .. }) if url == "log.org-b.example"
    ));
}

/// Builds `trusted_root` for domain A after `mutate`, alongside an intact domain B.
fn build_with(mutate: impl FnOnce(&mut DomainTrust)) -> Result<(), TrustedRootBuildError> {
    let mut domains = two_domains();
    mutate(&mut domains[0]);
    trusted_root(&domains).map(|_| ())
}

#[test]
fn bad_domain_material_is_refused_with_the_reason() {
    assert!(matches!(
        trusted_root(&[]),
        Err(TrustedRootBuildError::NoDomains)
    ));
    let a = domain("org-a", 1, false);
    assert!(matches!(
        trusted_root(&[a.clone(), a]),
        Err(TrustedRootBuildError::DuplicateOrigin(o)) if o == "log.org-a.example"
    ));
    assert!(matches!(
        build_with(|d| d.log.origin = "log org-a".to_owned()),
        Err(TrustedRootBuildError::InvalidOrigin { .. })
    ));
    // @sigstore/verify matches the checkpoint name against the base URL.
    for url in [
        "https://log.org-b.example",
        "https://log.org-a.example.evil",
        "log.org-a.example",
        "https://x@log.org-a.example",
    ] {
        assert!(
            matches!(
                build_with(|d| d.log.base_url = url.to_owned()),
                Err(TrustedRootBuildError::BaseUrl { .. })
            ),
            "{url}"
        );
    }
    build_with(|d| d.log.base_url = "https://log.org-a.example:8443/rekor".to_owned()).unwrap();
    assert!(matches!(
        build_with(|d| d.log.key_id[0] ^= 1),
        Err(TrustedRootBuildError::KeyIdMismatch { .. })
    ));
    // An Ed25519 SPKI is not a P-256 CT key.
    assert!(matches!(
        build_with(|d| d.ct.spki_der = ed25519_spki_der(&d.log.ed25519_public_key)),
        Err(TrustedRootBuildError::InvalidCtKey { .. })
    ));
    assert!(matches!(
        build_with(|d| d.ca.uri = "ca.org-a.example".to_owned()),
        Err(TrustedRootBuildError::CaUri { .. })
    ));
    assert!(matches!(
        build_with(|d| d.ca.chain_der.clear()),
        Err(TrustedRootBuildError::EmptyCaChain { .. })
    ));
    assert!(matches!(
        build_with(|d| d.ca.chain_der[0].push(0)),
        Err(TrustedRootBuildError::CaCertificate { index: 0, .. })
    ));
    assert!(matches!(
        build_with(|d| d.ca.chain_der = vec![d.ca.chain_der[0].clone(); 9]),
        Err(TrustedRootBuildError::CaChainTooLong { len: 9, .. })
    ));
    // Domain B's chain reversed: the root first.
    let mut domains = two_domains();
    domains[1].ca.chain_der.reverse();
    assert!(matches!(
        trusted_root(&domains),
        Err(TrustedRootBuildError::CaChainOrder { index: 0, .. })
    ));
    let no_org = self_signed(ca_params(None, "nameless root"));
    assert!(matches!(
        build_with(|d| d.ca.chain_der = vec![no_org.der]),
        Err(TrustedRootBuildError::CaSubjectIncomplete { .. })
    ));
    assert!(matches!(
        build_with(|d| d.ct.valid_from_unix = 253_402_300_800),
        Err(TrustedRootBuildError::ValidFromOutOfRange { .. })
    ));
}

/// The pinned verifier venv of `scripts/setup-verifiers`, if it has been set up.
fn verifier_python() -> Option<PathBuf> {
    let venv = match std::env::var_os("PROVMESH_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/provmesh/venv"),
    };
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "provmesh-sigstore-trust-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Loads a TrustedRoot file and a ClientTrustConfig file the way sigstore-python 4.5.1
/// does (`TrustedRoot.from_file`, `ClientTrustConfig.from_json`, as `--trust-config`),
/// builds a `Verifier` and the signing config from them, and prints what it read.
const PYTHON_READER: &str = r#"
import json, sys
from pathlib import Path
from sigstore._internal.trust import KeyringPurpose
from sigstore.models import ClientTrustConfig, TrustedRoot
from sigstore.verify import Verifier

def summary(root):
    inner = root._inner
    def log(t):
        return {"baseUrl": t.base_url, "keyId": t.log_id.key_id.hex(),
                "start": int(t.public_key.valid_for.start.timestamp())}
    return {
        "tlogs": [log(t) for t in inner.tlogs],
        "ctlogs": [log(t) for t in inner.ctlogs],
        "cas": [{"organization": c.subject.organization, "commonName": c.subject.common_name,
                 "uri": c.uri, "certificates": len(c.cert_chain.certificates),
                 "start": int(c.valid_for.start.timestamp())}
                for c in inner.certificate_authorities],
        # Keys that failed to load are dropped with a warning: count what loaded,
        # by python's own key ID (SHA-256 of the DER SPKI).
        "rekorKeys": sorted(k.hex() for k in root.rekor_keyring(KeyringPurpose.VERIFY)._keyring),
        "ctKeys": sorted(k.hex() for k in root.ct_keyring(KeyringPurpose.VERIFY)._keyring),
        "caCertificates": len(root.get_fulcio_certs()),
    }

root = TrustedRoot.from_file(sys.argv[1])
Verifier(trusted_root=root)
config = ClientTrustConfig.from_json(Path(sys.argv[2]).read_text())
Verifier(trusted_root=config.trusted_root)
signing = config.signing_config
print(json.dumps({
    "trustedRoot": summary(root),
    "clientTrustConfig": summary(config.trusted_root),
    "signing": {"tlogs": [c.url for c in signing.get_tlogs()],
                "ca": signing.get_fulcio().url},
}))
"#;

/// Runs [`PYTHON_READER`] on the two files; `Err` holds python's stderr.
fn python_read(python: &Path, root: &Path, config: &Path) -> Result<Value, String> {
    let out = Command::new(python)
        .arg("-c")
        .arg(PYTHON_READER)
        .arg(root)
        .arg(config)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn stock_sigstore_python_reads_the_documents() {
    let Some(python) = verifier_python() else {
        eprintln!("skipped: no verifier venv (run scripts/setup-verifiers, or set PROVMESH_VENV)");
        return;
    };
    let domains = two_domains();
    let root = trusted_root(&domains).unwrap();
    let config = client_trust_config(&root).unwrap();
    let dir = TempDir::new();
    let root_path = dir.0.join("trusted_root.json");
    let config_path = dir.0.join("client_trust_config.json");
    std::fs::write(&root_path, trusted_root_to_json(&root).unwrap()).unwrap();
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();

    let read = python_read(&python, &root_path, &config_path).unwrap_or_else(|e| {
        panic!("sigstore-python refused the documents:\n{e}");
    });

    let log = |base_url: &str, key_id: &[u8]| json!({"baseUrl": base_url, "keyId": hex::encode(key_id), "start": VALID_FROM});
    let sorted_hex = |ids: Vec<[u8; 32]>| {
        let mut ids: Vec<String> = ids.into_iter().map(hex::encode).collect();
        ids.sort();
        ids
    };
    let expected = json!({
        "tlogs": domains.iter().map(|d| log(&d.log.base_url, &d.log.key_id)).collect::<Vec<_>>(),
        "ctlogs": domains
            .iter()
            .map(|d| log(&d.log.base_url, &ct_log_id(&d.ct.spki_der)))
            .collect::<Vec<_>>(),
        "cas": [
            {"organization": "org-a", "commonName": "org-a root", "uri": "https://ca.org-a.example",
             "certificates": 1, "start": VALID_FROM},
            {"organization": "org-b", "commonName": "org-b root", "uri": "https://ca.org-b.example",
             "certificates": 2, "start": VALID_FROM},
        ],
        "rekorKeys": sorted_hex(
            domains
                .iter()
                .map(|d| Sha256::digest(ed25519_spki_der(&d.log.ed25519_public_key)).into())
                .collect()
        ),
        "ctKeys": sorted_hex(domains.iter().map(|d| ct_log_id(&d.ct.spki_der)).collect()),
        "caCertificates": 3,
    });
    assert_eq!(read["trustedRoot"], expected);
    assert_eq!(read["clientTrustConfig"], expected);
    // Selector ANY: python picks one log (the first operator) and the first CA.
    assert_eq!(
        read["signing"],
        json!({"tlogs": ["https://log.org-a.example/api/v1"], "ca": "https://ca.org-a.example"})
    );

    // The CLI takes the config with `--trust-config` (interop.md) and gets past it to the
    // bundle: an empty bundle is the first thing it refuses.
    let artifact = dir.0.join("a.txt");
    let bundle = dir.0.join("a.txt.sigstore.json");
    std::fs::write(&artifact, b"hello\n").unwrap();
    std::fs::write(&bundle, b"{}").unwrap();
    let cli = Command::new(python.with_file_name("sigstore"))
        // rich wraps its messages at the terminal width; keep them on one line.
        .env("COLUMNS", "1000")
        .arg("--trust-config")
        .arg(&config_path)
        .args(["verify", "identity", "--offline", "--bundle"])
        .arg(&bundle)
        .args(["--cert-identity", "spiffe://org-a.example/ns/ci/sa/builder"])
        .args(["--cert-oidc-issuer", "https://issuer.org-a.example"])
        .arg(&artifact)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(!cli.status.success());
    assert!(stderr.contains("failed to load bundle"), "{stderr}");

    // The reader is strict, so the checks above can fail: python refuses a root with
    // no `ctlogs` (what protobuf JSON makes of an empty list) …
    let mut no_ct: Value = serde_json::from_slice(&std::fs::read(&root_path).unwrap()).unwrap();
    no_ct.as_object_mut().unwrap().remove("ctlogs");
    std::fs::write(&root_path, serde_json::to_vec(&no_ct).unwrap()).unwrap();
    let err = python_read(&python, &root_path, &config_path).unwrap_err();
    assert!(err.contains("ctlogs"), "{err}");
    std::fs::write(&root_path, trusted_root_to_json(&root).unwrap()).unwrap();
    // … and a signing config without CA URLs.
    let mut no_ca = config.clone();
    no_ca["signingConfig"]
        .as_object_mut()
        .unwrap()
        .remove("caUrls");
    std::fs::write(&config_path, serde_json::to_vec(&no_ca).unwrap()).unwrap();
    let err = python_read(&python, &root_path, &config_path).unwrap_err();
    assert!(err.contains("No valid Fulcio CA found"), "{err}");
}
