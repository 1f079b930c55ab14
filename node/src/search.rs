//! `provmesh search`: asks a node's `provmesh.v1.ProvenanceService` for the records of its
//! index matching a filter (`SearchProvenance`, page by page) or, with `--watch`, streams
//! them as they are indexed (`WatchEntries`); prints a table or JSON lines.

use std::fmt::Write as _;

use provmesh_protocol::proto::provmesh::v1 as pb;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_stream::StreamExt as _;

use crate::grpc::v1::provenance_service_client::ProvenanceServiceClient;
use crate::mesh::status::{StatusError, channel, table};

/// A time bound given as RFC 3339 (`2026-12-01T00:00:00Z`) or Unix seconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|e| {
            format!("{text:?} is neither RFC 3339 (2026-12-01T00:00:00Z) nor Unix seconds: {e}")
        })
}

/// What a search found: the records, newest first, and where to go on.
#[derive(Debug, Default)]
pub struct Found {
    /// The records.
    pub records: Vec<pb::IndexedRecord>,
    /// The token of the next page, when `limit` stopped the walk before the end.
    pub next_page_token: Option<String>,
}

/// Walks the pages of `filter` on the node at `address`, from `page_token`, until
/// `limit` records or the end.
pub async fn fetch(
    address: &str,
    filter: pb::RecordFilter,
    limit: usize,
    page_token: String,
) -> Result<Found, StatusError> {
    let mut client = ProvenanceServiceClient::new(channel(address).await?);
    let mut found = Found::default();
    let mut token = page_token;
    while found.records.len() < limit {
        let want = (limit - found.records.len()).min(provmesh_protocol::index::MAX_PAGE_SIZE);
        let page = client
            .search_provenance(pb::SearchProvenanceRequest {
                filter: Some(filter.clone()),
                page_size: i32::try_from(want).unwrap_or(i32::MAX),
                page_token: token,
            })
            .await?
            .into_inner();
        found.records.extend(page.records);
        if page.next_page_token.is_empty() {
            return Ok(found);
        }
        token = page.next_page_token;
    }
    found.next_page_token = Some(token);
    Ok(found)
}

/// Streams the records of `filter` as the node at `address` indexes them (after `after`
/// first, when given), calling `each` for every one until the stream ends.
pub async fn watch(
    address: &str,
    filter: pb::RecordFilter,
    after: String,
    mut each: impl FnMut(&pb::IndexedRecord),
) -> Result<(), StatusError> {
    let mut stream = ProvenanceServiceClient::new(channel(address).await?)
        .watch_entries(pb::WatchEntriesRequest {
            filter: Some(filter),
            after,
        })
        .await?
        .into_inner();
    while let Some(record) = stream.next().await {
        each(&record?);
    }
    Ok(())
}

fn utc(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| seconds.to_string())
}

/// One record as JSON.
pub fn record_json(record: &pb::IndexedRecord) -> serde_json::Value {
    serde_json::json!({
        "cursor": record.cursor,
        "trust_domain": record.trust_domain,
        "log_origin": record.log_origin,
        "log_index": record.log_index,
        "integrated_time": record.integrated_time,
        "kind": record.kind,
        "signer": record.signer,
        "builder_id": record.builder_id,
        "predicate_type": record.predicate_type,
        "subjects": record.subjects.iter().map(|s| serde_json::json!({
            "name": s.name,
            "digest": s.digest,
        })).collect::<Vec<_>>(),
    })
}

/// The records as JSON, with the token to go on.
pub fn to_json(found: &Found) -> serde_json::Value {
    serde_json::json!({
        "records": found.records.iter().map(record_json).collect::<Vec<_>>(),
        "next_page_token": found.next_page_token,
    })
}

/// One table row of a record.
pub fn row(record: &pb::IndexedRecord) -> Vec<String> {
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    let subjects = record
        .subjects
        .iter()
        .map(|s| match (s.name.as_str(), s.digest.get(..19)) {
            ("", Some(short)) => format!("{short}…"),
            (name, _) => name.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",");
    vec![
        utc(record.integrated_time),
        format!("{}#{}", record.log_origin, record.log_index),
        if record.predicate_type.is_empty() {
            "signature".to_owned()
        } else {
            record.predicate_type.clone()
        },
        record.signer.clone(),
        or_dash(&record.builder_id),
        or_dash(&subjects),
    ]
}

/// The table's header.
pub const HEADER: [&str; 6] = [
    "INTEGRATED",
    "LOG ENTRY",
    "WHAT",
    "SIGNER",
    "BUILDER",
    "SUBJECTS",
];

/// The records as a table, newest first.
pub fn render(found: &Found) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "records ({})", found.records.len());
    let rows: Vec<Vec<String>> = found.records.iter().map(row).collect();
    table(&mut out, &HEADER, &rows);
    if let Some(token) = &found.next_page_token {
        let _ = writeln!(out, "\nmore: --page-token {token}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_unix_seconds() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000));
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
