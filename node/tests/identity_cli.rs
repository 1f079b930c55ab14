//! `provmesh identity issue` and `provmesh identity jwt`: the files and token the dev CA of
//! the configured trust domain issues, checked with x509-parser, aws-lc-rs and the JWT-SVID
//! validator; and what is refused (a `spire` configuration, an ID of another trust domain,
//! a validity beyond the CA's maximum).

// Test code: helpers outside #[test] fns may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{assert_exit, run, stderr, stdout, write_file};
use provmesh_node::identity::verify_jwt_svid;
use provmesh_protocol::spiffe::{SpiffeId, TrustBundle, TrustDomain};
use serde_json::{Map, Value};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

const WORKLOAD: &str = "spiffe://org-a.example/ci/build";

/// A `dev` configuration in `dir`, with `extra` TOML appended.
fn config(dir: &Path, extra: &str) -> PathBuf {
    write_file(
        dir,
        "provmesh.toml",
        &format!(
            "[node]\ntrust_domain = \"org-a.example\"\ndata_dir = {:?}\n{extra}",
            dir.join("data").display().to_string()
        ),
    )
}

fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// `identity <command> --config <config> --spiffe-id <spiffe_id>`, then `rest`.
fn identity_args<'a>(
    command: &'a str,
    config: &'a Path,
    spiffe_id: &'a str,
    rest: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "identity",
        command,
        "--config",
        config.to_str().unwrap(),
        "--spiffe-id",
        spiffe_id,
    ];
    args.extend_from_slice(rest);
    args
}

/// `identity issue --out <out>` and `identity jwt --audience sigstore` for `spiffe_id`
/// both exit 1, saying each of `expected`.
fn both_refuse(config: &Path, spiffe_id: &str, out: &str, expected: &[&str]) {
    for (command, rest) in [
        ("issue", &["--out", out][..]),
        ("jwt", &["--audience", "sigstore"]),
    ] {
        let output = run(&identity_args(command, config, spiffe_id, rest));
        assert_exit(&output, 1, expected);
    }
}

/// The DER blocks of a PEM file, with their labels.
fn pem_blocks(path: &Path) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read(path).unwrap();
    Pem::iter_from_buffer(&text)
        .map(|block| {
            let block = block.unwrap();
            (block.label, block.contents)
        })
        .collect()
}

/// The uncompressed P-256 point of a DER certificate's key.
fn public_point(der: &[u8]) -> Vec<u8> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

fn claims(token: &str) -> Map<String, Value> {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn identity_help_works() {
    for args in [
        &["identity", "--help"][..],
        &["identity", "issue", "--help"],
        &["identity", "jwt", "--help"],
    ] {
        let help = run_ok(args);
        assert!(help.contains("Usage: provmesh identity"), "{help}");
    }
}

#[test]
fn issue_writes_the_svid_its_key_and_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let out = dir.path().join("svid");
    let out_arg = out.to_str().unwrap();
    let printed = run_ok(&identity_args(
        "issue",
        &config,
        WORKLOAD,
        &["--out", out_arg, "--validity", "30m"],
    ));
    assert!(printed.contains(WORKLOAD), "{printed}");

    // svid.pem: the leaf alone (the dev CA issues directly from its root).
    let chain = pem_blocks(&out.join("svid.pem"));
    assert_eq!(chain.len(), 1);
    assert_eq!(chain[0].0, "CERTIFICATE");
    let leaf_der = &chain[0].1;
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(san.value.general_names, [GeneralName::URI(WORKLOAD)]);
    let validity = leaf.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert_eq!(lifetime, 30 * 60 + 60, "30 minutes, backdated one");

    // svid.key: PKCS#8 of the leaf's key, readable by its owner only.
    let key = pem_blocks(&out.join("svid.key"));
    assert_eq!(key.len(), 1);
    assert_eq!(key[0].0, "PRIVATE KEY");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key[0].1).unwrap();
    assert_eq!(pair.public_key().as_ref(), public_point(leaf_der));
    #[cfg(unix)]
    assert_eq!(mode(&out.join("svid.key")), 0o600);

    // bundle.pem: the root that signed the leaf; bundle.json: the same root and the JWT
    // key, a conforming SPIFFE bundle.
    let roots = pem_blocks(&out.join("bundle.pem"));
    assert_eq!(roots.len(), 1);
    let root = &roots[0].1;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_point(root))
        .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
        .expect("the SVID is signed by the bundle's root");
    let bundle =
        TrustBundle::from_json_strict(&std::fs::read(out.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(
        bundle.x509_authorities().collect::<Vec<_>>(),
        [root.as_slice()]
    );
    assert_eq!(bundle.jwt_authorities().count(), 1);

    // Issuing again reuses the CA and replaces the files whole.
    run_ok(&identity_args(
        "issue",
        &config,
        WORKLOAD,
        &["--out", out_arg],
    ));
    assert_eq!(pem_blocks(&out.join("bundle.pem")), roots);
    assert_ne!(pem_blocks(&out.join("svid.key")), key);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["bundle.json", "bundle.pem", "svid.key", "svid.pem"]);
    #[cfg(unix)]
    assert_eq!(mode(&out.join("svid.key")), 0o600);
}

#[test]
fn jwt_prints_a_token_the_bundle_validates() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let token = run_ok(&identity_args(
        "jwt",
        &config,
        WORKLOAD,
        &["--audience", "sigstore"],
    ));
    let token = token.trim();
    let out = dir.path().join("files");
    run_ok(&identity_args(
        "issue",
        &config,
        WORKLOAD,
        &["--out", out.to_str().unwrap()],
    ));
    let bundle = TrustBundle::from_json(&std::fs::read(out.join("bundle.json")).unwrap()).unwrap();
    let domain = TrustDomain::parse("org-a.example").unwrap();
    let subject = verify_jwt_svid(token, "sigstore", &domain, &bundle, SystemTime::now()).unwrap();
    assert_eq!(subject, SpiffeId::parse(WORKLOAD).unwrap());
    let first = claims(token);
    assert_eq!(first["iss"], "spiffe://org-a.example");
    assert_eq!(first["sub"], WORKLOAD);
    assert_eq!(first["aud"], "sigstore");
    assert_eq!(
        first["exp"].as_u64().unwrap() - first["iat"].as_u64().unwrap(),
        300
    );

    // Several audiences and another lifetime.
    let token = run_ok(&identity_args(
        "jwt",
        &config,
        WORKLOAD,
        &[
            "--audience",
            "sigstore",
            "--audience",
            "other",
            "--validity",
            "10m",
        ],
    ));
    let claims = claims(token.trim());
    assert_eq!(claims["aud"], serde_json::json!(["sigstore", "other"]));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        600
    );
    verify_jwt_svid(
        token.trim(),
        "other",
        &domain,
        &bundle,
        SystemTime::now() + Duration::from_secs(1),
    )
    .unwrap();
}

#[test]
fn a_spire_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "\n[identity]\nsource = \"spire\"\nworkload_api_socket = \"unix:///run/spire.sock\"\n",
    );
    both_refuse(
        &config,
        WORKLOAD,
        "x",
        &["identity.source = \"spire\"", "SPIRE agent issues"],
    );
    // Nothing was created: no CA for a domain whose SVIDs SPIRE issues.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn an_id_of_another_trust_domain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let out_dir = dir.path().join("svid");
    both_refuse(
        &config,
        "spiffe://org-b.example/ci/build",
        out_dir.to_str().unwrap(),
        &["is in trust domain org-b.example", "org-a.example"],
    );
    assert!(!out_dir.exists());
    // Not a SPIFFE ID at all, and an ID without a path, are refused too.
    for (id, expected) in [
        ("https://org-a.example/x", "--spiffe-id"),
        ("spiffe://org-a.example", "names a trust domain"),
    ] {
        let out = run(&identity_args(
            "jwt",
            &config,
            id,
            &["--audience", "sigstore"],
        ));
        assert_eq!(out.status.code(), Some(1), "{id}");
        assert!(stderr(&out).contains(expected), "{id}: {}", stderr(&out));
    }
}

#[test]
fn a_validity_beyond_the_maximum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let svid = dir.path().join("svid");
    let out = run(&identity_args(
        "issue",
        &config,
        WORKLOAD,
        &["--out", svid.to_str().unwrap(), "--validity", "2h"],
    ));
    assert_exit(&out, 1, &["it must be 1 s to"]);
    assert!(!svid.exists());
    let out = run(&identity_args(
        "jwt",
        &config,
        WORKLOAD,
        &["--audience", "sigstore", "--validity", "soon"],
    ));
    assert_exit(&out, 2, &["invalid duration"]);
}
