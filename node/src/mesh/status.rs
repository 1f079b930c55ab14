//! `provmesh mesh status`, `provmesh mesh checkpoint` and `provmesh evidence list|get`:
//! ask a node's `provmesh.v1.MeshService` and print the answer as tables (or as JSON
//! with `--json`).

use std::fmt::Write as _;

use provmesh_protocol::proto::provmesh::v1 as pb;

use crate::grpc::v1::mesh_service_client::MeshServiceClient;

/// Why the status could not be obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The address is not a usable endpoint.
    #[error("invalid node address {address:?}: {reason}")]
    Address {
        /// As given.
        address: String,
        /// What is wrong.
        reason: String,
    },
    /// The node could not be reached.
    #[error("cannot reach the node's gRPC API at {address}: {source}")]
    Connect {
        /// Where.
        address: String,
        /// What failed.
        #[source]
        source: tonic::transport::Error,
    },
    /// The node answered with an error.
    #[error("the node refused: {0}")]
    Call(#[from] tonic::Status),
}

/// The gRPC endpoint URL of `address` (`HOST:PORT` or an `http://` URL).
fn endpoint_url(address: &str) -> String {
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

/// Fetches the status of the node whose gRPC API is at `address`.
pub async fn fetch(address: &str) -> Result<pb::MeshStatus, StatusError> {
    let status = client(address)
        .await?
        .get_status(pb::GetStatusRequest {})
        .await?;
    Ok(status.into_inner())
}

/// Asks the node at `address` for the trusted root of `domains` (empty: every domain it
/// accepted): the domains covered and the `trusted_root.json` bytes.
pub async fn fetch_trusted_root(
    address: &str,
    domains: &[provmesh_protocol::spiffe::TrustDomain],
) -> Result<(Vec<String>, Vec<u8>), StatusError> {
    let answer = client(address)
        .await?
        .export_trusted_root(pb::ExportTrustedRootRequest {
            trust_domains: domains.iter().map(ToString::to_string).collect(),
        })
        .await?
        .into_inner();
    Ok((answer.trust_domains, answer.trusted_root))
}

/// Fetches the verified equivocation evidence held by the node at `address`.
pub async fn fetch_evidence(address: &str) -> Result<pb::ListEvidenceResponse, StatusError> {
    let list = client(address)
        .await?
        .list_evidence(pb::ListEvidenceRequest {})
        .await?;
    Ok(list.into_inner())
}

/// Fetches the cosigned checkpoint of `origin` served by the node at `address`.
pub async fn fetch_checkpoint(
    address: &str,
    origin: &str,
) -> Result<pb::GetCosignedCheckpointResponse, StatusError> {
    let answer = client(address)
        .await?
        .get_cosigned_checkpoint(pb::GetCosignedCheckpointRequest {
            origin: origin.to_owned(),
        })
        .await?;
    Ok(answer.into_inner())
}

/// A cosigned checkpoint as JSON (the note as text).
pub fn checkpoint_to_json(answer: &pb::GetCosignedCheckpointResponse) -> serde_json::Value {
    serde_json::json!({
        "checkpoint": String::from_utf8_lossy(&answer.checkpoint),
        "size": answer.size,
        "root_hash": hex::encode(&answer.root_hash),
        "latest_size": answer.latest_size,
        "cosignatures": answer.cosignatures.iter().map(|c| serde_json::json!({
            "trust_domain": c.trust_domain,
            "timestamp": c.timestamp,
            "line": c.line,
        })).collect::<Vec<_>>(),
    })
}

/// A cosigned checkpoint for a terminal: the note, then who cosigned it.
pub fn render_checkpoint(answer: &pb::GetCosignedCheckpointResponse) -> String {
    let mut out = String::from_utf8_lossy(&answer.checkpoint).into_owned();
    let _ = writeln!(
        out,
        "
cosigned by {} domain(s) at size {} (latest adopted: {})",
        answer.cosignatures.len(),
        answer.size,
        answer.latest_size
    );
    let rows: Vec<Vec<String>> = answer
        .cosignatures
        .iter()
        .map(|c| vec![c.trust_domain.clone(), c.timestamp.to_string()])
        .collect();
    table(&mut out, &["TRUST DOMAIN", "TIMESTAMP"], &rows);
    out
}

/// The evidence list as JSON (documents as they are, parsed).
pub fn evidence_to_json(list: &pb::ListEvidenceResponse) -> serde_json::Value {
    serde_json::json!({
        "evidence": list.evidence.iter().map(|e| serde_json::json!({
            "id": e.id,
            "origin": e.origin,
            "kind": e.kind,
            "older_size": e.older_size,
            "newer_size": e.newer_size,
            "document": serde_json::from_slice::<serde_json::Value>(&e.document)
                .unwrap_or(serde_json::Value::Null),
        })).collect::<Vec<_>>(),
    })
}

/// The evidence list as a table.
pub fn render_evidence(list: &pb::ListEvidenceResponse) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "evidence ({})", list.evidence.len());
    let rows: Vec<Vec<String>> = list
        .evidence
        .iter()
        .map(|e| {
            vec![
                e.id.get(..16).unwrap_or(&e.id).to_owned(),
                e.origin.clone(),
                e.kind.clone(),
                format!("{} / {}", e.older_size, e.newer_size),
            ]
        })
        .collect();
    table(&mut out, &["ID", "LOG", "KIND", "SIZES"], &rows);
    out
}

async fn client(
    address: &str,
) -> Result<MeshServiceClient<tonic::transport::Channel>, StatusError> {
    Ok(MeshServiceClient::new(channel(address).await?))
}

/// A gRPC channel to the node at `address` (`HOST:PORT` or an `http://` URL), with
/// connect and call timeouts, for the CLI's calls.
pub(crate) async fn channel(address: &str) -> Result<tonic::transport::Channel, StatusError> {
    let url = endpoint_url(address);
    let endpoint =
        tonic::transport::Endpoint::from_shared(url.clone()).map_err(|e| StatusError::Address {
            address: address.to_owned(),
            reason: e.to_string(),
        })?;
    endpoint
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .map_err(|source| StatusError::Connect {
            address: url,
            source,
        })
}

/// The status as JSON (field names as in the `.proto` file; hashes in hex).
pub fn to_json(status: &pb::MeshStatus) -> serde_json::Value {
    serde_json::json!({
        "trust_domain": status.trust_domain,
        "spiffe_id": status.spiffe_id,
        "peer_id": status.peer_id,
        "listen_addresses": status.listen_addresses,
        "domains": status.domains.iter().map(|d| serde_json::json!({
            "trust_domain": d.trust_domain,
            "has_record": d.has_record,
            "record_sequence": d.record_sequence,
            "spiffe_sequence": d.spiffe_sequence,
            "issued_at": d.issued_at,
            "revoked": d.revoked,
            "authority_id": d.authority_id,
            "chain_length": d.chain_length,
        })).collect::<Vec<_>>(),
        "logs": status.logs.iter().map(|l| serde_json::json!({
            "origin": l.origin,
            "trust_domain": l.trust_domain,
            "followed": l.followed,
            "size": l.size,
            "root_hash": hex::encode(&l.root_hash),
            "adopted_at_unix_ms": l.adopted_at_unix_ms,
            "equivocating": l.equivocating,
            "cosigned_size": l.cosigned_size,
            "cosigned_by": l.cosigned_by,
        })).collect::<Vec<_>>(),
        "peers": status.peers.iter().map(|p| serde_json::json!({
            "peer_id": p.peer_id,
            "spiffe_id": p.spiffe_id,
            "score": p.score,
            "banned": p.banned,
        })).collect::<Vec<_>>(),
    })
}

/// Renders rows as a table with left-aligned columns.
pub(crate) fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let text: Vec<String> = cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "  {}", text.join("  ").trim_end());
    };
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

/// The status as text tables for a terminal.
pub fn render(status: &pb::MeshStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "node      {}", status.spiffe_id);
    let _ = writeln!(out, "peer id   {}", status.peer_id);
    for address in &status.listen_addresses {
        let _ = writeln!(out, "listening {address}");
    }
    let _ = writeln!(out, "\ndomains ({})", status.domains.len());
    let rows: Vec<Vec<String>> = status
        .domains
        .iter()
        .map(|d| {
            vec![
                d.trust_domain.clone(),
                if d.has_record {
                    d.record_sequence.to_string()
                } else {
                    "bootstrap only".to_owned()
                },
                d.spiffe_sequence.to_string(),
                d.chain_length.to_string(),
                if d.revoked { "revoked" } else { "" }.to_owned(),
            ]
        })
        .collect();
    table(
        &mut out,
        &["TRUST DOMAIN", "RECORD SEQ", "SPIFFE SEQ", "CHAIN", "STATE"],
        &rows,
    );
    let _ = writeln!(out, "\nlogs ({})", status.logs.len());
    let rows: Vec<Vec<String>> = status
        .logs
        .iter()
        .map(|l| {
            let root = hex::encode(&l.root_hash);
            vec![
                l.origin.clone(),
                l.trust_domain.clone(),
                if l.followed { "yes" } else { "no" }.to_owned(),
                l.size.to_string(),
                root.get(..16).unwrap_or(&root).to_owned(),
                if l.cosigned_by.is_empty() {
                    "-".to_owned()
                } else {
                    format!("{} @ {}", l.cosigned_by.join(","), l.cosigned_size)
                },
                if l.equivocating { "EQUIVOCATING" } else { "" }.to_owned(),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "ORIGIN",
            "TRUST DOMAIN",
            "FOLLOWED",
            "SIZE",
            "ROOT",
            "COSIGNED BY",
            "STATE",
        ],
        &rows,
    );
    let _ = writeln!(out, "\npeers ({})", status.peers.len());
    let rows: Vec<Vec<String>> = status
        .peers
        .iter()
        .map(|p| {
            vec![
                p.peer_id.clone(),
                if p.spiffe_id.is_empty() {
                    "(unbound)".to_owned()
                } else {
                    p.spiffe_id.clone()
                },
                format!("{:.1}", p.score),
                if p.banned { "banned" } else { "" }.to_owned(),
            ]
        })
        .collect();
    table(&mut out, &["PEER", "SPIFFE ID", "SCORE", "STATE"], &rows);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_show_every_section() {
        let status = pb::MeshStatus {
            trust_domain: "org-a.example".into(),
            spiffe_id: "spiffe://org-a.example/provmesh/authority".into(),
            peer_id: "12D3KooW".into(),
            listen_addresses: vec!["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW".into()],
            domains: vec![pb::DomainStatus {
                trust_domain: "org-b.example".into(),
                has_record: true,
                record_sequence: 3,
                chain_length: 3,
                ..Default::default()
            }],
            logs: vec![pb::LogStatus {
                origin: "log.org-b.example".into(),
                trust_domain: "org-b.example".into(),
                followed: true,
                size: 42,
                root_hash: vec![0xab; 32],
                adopted_at_unix_ms: 1,
                equivocating: true,
                cosigned_size: 40,
                cosigned_by: vec!["org-a.example".into(), "org-c.example".into()],
            }],
            peers: vec![],
        };
        let text = render(&status);
        assert!(text.contains("org-b.example  3"), "{text}");
        assert!(
            text.contains("log.org-b.example  org-b.example  yes       42    abababababababab"),
            "{text}"
        );
        assert!(
            text.contains("org-a.example,org-c.example @ 40  EQUIVOCATING"),
            "{text}"
        );
        assert!(text.contains("peers (0)"), "{text}");
        let json = to_json(&status);
        assert_eq!(json["logs"][0]["cosigned_by"][1], "org-c.example");
        assert_eq!(json["logs"][0]["root_hash"], hex::encode([0xab; 32]));
        assert_eq!(json["domains"][0]["record_sequence"], 3);
    }

    #[test]
    fn bare_addresses_become_http_urls() {
        assert_eq!(endpoint_url("127.0.0.1:9090"), "http://127.0.0.1:9090");
        assert_eq!(endpoint_url("http://node:9090"), "http://node:9090");
    }
}
