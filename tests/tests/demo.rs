//! The README's main job, `provmesh demo --exit --dir DIR`: three trust domains of real
//! processes on loopback, the narrated scenario (federation, builds signing and attesting,
//! cross-domain lookups allowed, an equivocating log convicted by every node, the verdict
//! turning denied) must pass every step; and every bundle the manifest lists must verify
//! offline against the manifest's trust config for its domain, with sigstore-python and
//! with `provmesh verify` — so the outputs check out with other tools.
//!
//! Without sigstore-python's venv the test fails with a message saying to run
//! `scripts/setup-verifiers`, unless `PROVMESH_SKIP_INTEROP=1` (then only `provmesh
//! verify` judges).

// Test code: a failed step fails the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use provmesh_tests::command::run_within;
use provmesh_tests::node_process::provmesh_command;
use provmesh_tests::sigstore_python::{SigstorePython, VerifyIdentity};

const BIN: &str = env!("CARGO_BIN_EXE_provmesh-under-test");
/// The bound on the whole demo: nine nodes started, the scenario, the nodes stopped.
const DEMO_DEADLINE: Duration = Duration::from_secs(240);
/// The bound on one verification.
const DEADLINE: Duration = Duration::from_secs(30);

fn sigstore_python() -> Option<SigstorePython> {
    let found = SigstorePython::find();
    if found.is_none() {
        assert!(
            std::env::var_os("PROVMESH_SKIP_INTEROP").is_some(),
            "sigstore-python is not set up: run scripts/setup-verifiers (or set PROVMESH_SKIP_INTEROP=1)"
        );
    }
    found
}

#[test]
fn the_demo_passes_and_its_outputs_verify_with_other_tools() {
    let sigstore = sigstore_python();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let mut command = provmesh_command(Path::new(BIN));
    command.args(["demo", "--exit", "--dir"]).arg(&dir);
    let ran = run_within(command, work.path(), "demo", DEMO_DEADLINE);
    assert!(ran.status.success(), "{}", ran.describe());
    for step in [
        "the federation forms",
        "org-b.example-node-1 looks up org-a.example's artifact",
        "every node holds the evidence",
        "the verdict turns denied",
    ] {
        assert!(
            ran.stdout.contains(&format!("ok   {step}")),
            "{step}: {}",
            ran.stdout
        );
    }
    assert!(!ran.stdout.contains("FAIL"), "{}", ran.stdout);

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let steps = manifest["steps"].as_array().unwrap();
    assert!(steps.len() >= 10, "{manifest:#}");
    assert!(steps.iter().all(|s| s["ok"] == true), "{manifest:#}");
    let domains = manifest["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 3);
    for domain in domains {
        assert_eq!(domain["nodes"].as_array().unwrap().len(), 3, "{domain:#}");
        assert!(
            domain["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n["grpc"].is_string())
        );
    }
    let artifacts = manifest["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 3, "{manifest:#}");
    for artifact in artifacts {
        let text = |key: &str| artifact[key].as_str().unwrap().to_owned();
        let domain = text("domain");
        let trust = domains
            .iter()
            .find(|d| d["trust_domain"] == domain.as_str())
            .and_then(|d| d["trust_config"].as_str())
            .unwrap()
            .to_owned();
        let (file, signer, issuer) = (text("file"), text("signer"), text("issuer"));
        assert_eq!(signer, format!("spiffe://{domain}/ci/build"));
        assert_eq!(issuer, format!("spiffe://{domain}"));
        for bundle in [text("bundle"), text("attestation_bundle")] {
            let mut verify = provmesh_command(Path::new(BIN));
            verify.args([
                "verify",
                &file,
                "--bundle",
                &bundle,
                "--identity",
                &signer,
                "--trust-config",
                &trust,
            ]);
            let verified = run_within(verify, work.path(), "verify", DEADLINE);
            assert!(verified.status.success(), "{}", verified.describe());
            if let Some(sigstore) = &sigstore {
                sigstore.assert_accepts(&VerifyIdentity {
                    trust_config: Path::new(&trust),
                    bundle: Path::new(&bundle),
                    identity: &signer,
                    issuer: &issuer,
                    artifact: Path::new(&file),
                });
            }
        }
    }
}
