//! `provmesh lookup DIGEST|FILE`: asks a node's `provmesh.v1.ProvenanceService` who
//! vouches for an artifact, under a policy, and prints the records and the verdict as a
//! table (or JSON), optionally writing each record's Sigstore bundle to a directory.

use std::fmt::Write as _;
use std::path::Path;

use provmesh_protocol::proto::provmesh::v1 as pb;

use crate::grpc::v1::provenance_service_client::ProvenanceServiceClient;
use crate::mesh::status::{StatusError, channel, table};

/// The largest policy file read.
const MAX_POLICY_FILE_BYTES: u64 = provmesh_protocol::policy::MAX_POLICY_BYTES as u64;

/// The digest to look up: `arg` itself when it is `sha256:<64 hex>` or 64 hex digits,
/// else the SHA-256 of the file it names.
pub fn digest_of(arg: &str) -> Result<String, String> {
    let bare = arg.strip_prefix("sha256:").unwrap_or(arg);
    if bare.len() == 64 && bare.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(format!("sha256:{}", bare.to_ascii_lowercase()));
    }
    if arg.starts_with("sha256:") {
        return Err(format!("{arg:?} is not a sha256 digest (64 hex digits)"));
    }
    let digest = crate::signing::sign::sha256_file(Path::new(arg))
        .map_err(|e| format!("{arg} is neither a sha256 digest nor a readable file: {e}"))?;
    Ok(format!("sha256:{}", hex::encode(digest)))
}

/// Reads a policy file (TOML, docs/policy.md), bounded.
pub fn read_policy(path: &Path) -> Result<String, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len > MAX_POLICY_FILE_BYTES {
        return Err(format!(
            "{}: {len} bytes; a policy is at most {MAX_POLICY_FILE_BYTES}",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Checked here too, so that a mistake is reported before the node is asked.
    provmesh_protocol::policy::Policy::from_toml(&text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

/// Asks the node at `address` for the records of `digest` under `policy`.
pub async fn fetch(
    address: &str,
    digest: &str,
    policy: &str,
) -> Result<pb::GetProvenanceResponse, StatusError> {
    let answer = ProvenanceServiceClient::new(channel(address).await?)
        .get_provenance(pb::GetProvenanceRequest {
            digest: digest.to_owned(),
            policy: policy.to_owned(),
        })
        .await?;
    Ok(answer.into_inner())
}

fn verdict_json(verdict: Option<&pb::Verdict>) -> serde_json::Value {
    let Some(verdict) = verdict else {
        return serde_json::Value::Null;
    };
    serde_json::json!({
        "allowed": verdict.allowed,
        "reasons": verdict.reasons.iter().map(|r| serde_json::json!({
            "code": r.code,
            "message": r.message,
        })).collect::<Vec<_>>(),
    })
}

/// The answer as JSON; bundles and statements are embedded as JSON documents.
pub fn to_json(answer: &pb::GetProvenanceResponse) -> serde_json::Value {
    let document = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(bytes).unwrap_or(serde_json::Value::Null)
    };
    serde_json::json!({
        "digest": answer.digest,
        "verdict": verdict_json(answer.verdict.as_ref()),
        "records": answer.records.iter().map(|r| serde_json::json!({
            "kind": r.kind,
            "signer": r.signer,
            "trust_domain": r.trust_domain,
            "log_origin": r.log_origin,
            "log_index": r.log_index,
            "integrated_time": r.integrated_time,
            "predicate_type": r.predicate_type,
            "builder_id": r.builder_id,
            "witnessing_domains": r.witnessing_domains,
            "log_equivocating": r.log_equivocating,
            "verdict": verdict_json(r.verdict.as_ref()),
            "statement": if r.statement.is_empty() { serde_json::Value::Null } else { document(&r.statement) },
            "bundle": document(&r.bundle),
        })).collect::<Vec<_>>(),
    })
}

fn allowed(verdict: Option<&pb::Verdict>) -> bool {
    verdict.is_some_and(|v| v.allowed)
}

/// The answer as text for a terminal: the verdict, then one row per record, then the
/// reasons of each denial.
pub fn render(answer: &pb::GetProvenanceResponse) -> String {
    let mut out = String::new();
    let verdict = answer.verdict.as_ref();
    let _ = writeln!(
        out,
        "{}  {}",
        answer.digest,
        if allowed(verdict) {
            "ALLOWED"
        } else {
            "DENIED"
        }
    );
    for reason in verdict.map(|v| v.reasons.as_slice()).unwrap_or_default() {
        let _ = writeln!(out, "  - {} ({})", reason.message, reason.code);
    }
    let _ = writeln!(out, "\nrecords ({})", answer.records.len());
    let rows: Vec<Vec<String>> = answer
        .records
        .iter()
        .map(|r| {
            let what = if r.predicate_type.is_empty() {
                "signature".to_owned()
            } else {
                r.predicate_type.clone()
            };
            vec![
                format!("{}#{}", r.log_origin, r.log_index),
                what,
                r.signer.clone(),
                if r.builder_id.is_empty() {
                    "-".to_owned()
                } else {
                    r.builder_id.clone()
                },
                if r.witnessing_domains.is_empty() {
                    "-".to_owned()
                } else {
                    r.witnessing_domains.join(",")
                },
                if allowed(r.verdict.as_ref()) {
                    "allowed"
                } else {
                    "denied"
                }
                .to_owned(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "LOG ENTRY",
            "WHAT",
            "SIGNER",
            "BUILDER",
            "WITNESSES",
            "VERDICT",
        ],
        &rows,
    );
    for r in &answer.records {
        let reasons = r
            .verdict
            .as_ref()
            .map(|v| v.reasons.as_slice())
            .unwrap_or_default();
        if !reasons.is_empty() {
            let _ = writeln!(out, "\n{}#{} denied:", r.log_origin, r.log_index);
            for reason in reasons {
                let _ = writeln!(out, "  - {} ({})", reason.message, reason.code);
            }
        }
    }
    out
}

/// Writes each record's bundle to `dir` as `<log origin>-<index>.sigstore.json`;
/// returns the paths written.
pub fn write_bundles(
    answer: &pb::GetProvenanceResponse,
    dir: &Path,
) -> Result<Vec<std::path::PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for r in &answer.records {
        // Origins are key names (no '/' or spaces); keep the file name plain anyway.
        let origin: String = r
            .log_origin
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{origin}-{}.sigstore.json", r.log_index));
        std::fs::write(&path, &r.bundle).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    #[test]
    fn digests_and_files() {
        let hex = "ab".repeat(32);
        assert_eq!(digest_of(&hex).unwrap(), format!("sha256:{hex}"));
        assert_eq!(
            digest_of(&format!("sha256:{}", hex.to_uppercase())).unwrap(),
            format!("sha256:{hex}")
        );
        assert!(
            digest_of("sha256:abc")
                .unwrap_err()
                .contains("not a sha256 digest")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("artifact");
        std::fs::write(&file, b"hello").unwrap();
        assert_eq!(
            digest_of(file.to_str().unwrap()).unwrap(),
            format!("sha256:{}", hex::encode(Sha256::digest(b"hello")))
        );
        assert!(digest_of("/nonexistent/x").unwrap_err().contains("neither"));
    }

    #[test]
    fn a_denial_shows_its_reasons() {
        let reason = pb::Reason {
            code: "builder-not-allowed".into(),
            message: "builder x is not allowed by the policy".into(),
        };
        let denied = pb::Verdict {
            allowed: false,
            reasons: vec![reason.clone()],
        };
        let answer = pb::GetProvenanceResponse {
            digest: format!("sha256:{}", "ab".repeat(32)),
            records: vec![pb::ProvenanceRecord {
                log_origin: "log.org-a.example".into(),
                log_index: 7,
                kind: "dsse".into(),
                predicate_type: "https://slsa.dev/provenance/v1".into(),
                signer: "spiffe://org-a.example/ci".into(),
                builder_id: "x".into(),
                verdict: Some(denied.clone()),
                ..Default::default()
            }],
            verdict: Some(pb::Verdict {
                allowed: false,
                reasons: vec![pb::Reason {
                    code: "no-allowed-record".into(),
                    message: "the policy allows none of its records".into(),
                }],
            }),
        };
        let text = render(&answer);
        assert!(text.contains("DENIED"), "{text}");
        assert!(text.contains("log.org-a.example#7"), "{text}");
        assert!(text.contains("(builder-not-allowed)"), "{text}");
        let json = to_json(&answer);
        assert_eq!(
            json["records"][0]["verdict"]["reasons"][0]["code"],
            "builder-not-allowed"
        );
        assert_eq!(json["verdict"]["allowed"], false);
    }
}
