//! The provenance index on disk: one redb file, `<data_dir>/index/index.redb`.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `index_records_v1` | `u64` cursor (ingest order) | [`IndexedRecord`] (JSON) |
//! | `index_facets_v1` | `(facet key, cursor)` | `()` — a record found under a facet ([`provmesh_protocol::index::Facet`]) |
//! | `index_progress_v1` | log origin | `u64` the next entry index to index |
//! | `index_alerts_v1` | `u64` cursor of the record | the alert's reason (UTF-8) |
//!
//! A batch of records, their facets and the log's progress are written in one
//! transaction, so after a crash ingest resumes exactly where the last commit left it:
//! nothing is indexed twice and nothing is skipped. The index is derived data: deleting
//! the file makes the node rebuild it from its logs.

use std::path::{Path, PathBuf};

use provmesh_protocol::index::{
    Cursor, IndexedRecord, MAX_PAGE_SIZE, MAX_ROWS_SCANNED_PER_PAGE, SearchQuery,
};
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

const RECORDS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("index_records_v1");
const FACETS: TableDefinition<'static, (&[u8; 32], u64), ()> =
    TableDefinition::new("index_facets_v1");
const PROGRESS: TableDefinition<'static, &str, u64> = TableDefinition::new("index_progress_v1");
const ALERTS: TableDefinition<'static, u64, &str> = TableDefinition::new("index_alerts_v1");

/// The file name under `<data_dir>/index/`.
pub const STORE_FILE: &str = "index.redb";

/// The index store.
#[derive(Debug)]
pub struct IndexStore {
    db: Database,
    path: PathBuf,
}

/// Why the index store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexStoreError {
    /// The directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// redb failed, or a row does not decode.
    #[error("provenance index {}: {message}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// A record as ingested: what the index keeps, and the alert it raised, if any.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// The record.
    pub record: IndexedRecord,
    /// Identity monitoring's alert about its signer.
    pub alert: Option<String>,
}

/// One page of a search, newest first.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The records found, each with its cursor.
    pub records: Vec<(Cursor, IndexedRecord)>,
    /// Where the next page starts (records before it), when there may be more.
    pub next: Option<Cursor>,
}

impl IndexStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<IndexStore, IndexStoreError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexStoreError::Directory {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(STORE_FILE);
        let db = Database::create(&path).map_err(|e| IndexStoreError::Store {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let store = IndexStore { db, path };
        let txn = store.db.begin_write().map_err(|e| store.err(e))?;
        txn.open_table(RECORDS).map_err(|e| store.err(e))?;
        txn.open_table(FACETS).map_err(|e| store.err(e))?;
        txn.open_table(PROGRESS).map_err(|e| store.err(e))?;
        txn.open_table(ALERTS).map_err(|e| store.err(e))?;
        txn.commit().map_err(|e| store.err(e))?;
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> IndexStoreError {
        IndexStoreError::Store {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// The next entry of the log `origin` to index (0 when none was).
    pub fn progress(&self, origin: &str) -> Result<u64, IndexStoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(PROGRESS).map_err(|e| self.err(e))?;
        Ok(table
            .get(origin)
            .map_err(|e| self.err(e))?
            .map_or(0, |v| v.value()))
    }

    /// The newest record's cursor, if any record is indexed.
    pub fn last_cursor(&self) -> Result<Option<Cursor>, IndexStoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
        Ok(table
            .last()
            .map_err(|e| self.err(e))?
            .map(|(k, _)| Cursor(k.value())))
    }

    /// Indexes `records`, the records among entries `from..to` of the log `origin`, and
    /// moves the log's progress to `to`, atomically. Returns what it indexed with the
    /// cursors given; nothing when the index already went past `from` (a batch indexed
    /// before a restart is not indexed twice).
    pub fn ingest(
        &self,
        origin: &str,
        from: u64,
        to: u64,
        records: Vec<Ingested>,
    ) -> Result<Vec<(Cursor, Ingested)>, IndexStoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut indexed = Vec::with_capacity(records.len());
        {
            let mut progress = txn.open_table(PROGRESS).map_err(|e| self.err(e))?;
            let done = progress
                .get(origin)
                .map_err(|e| self.err(e))?
                .map_or(0, |v| v.value());
            if done != from {
                return Ok(Vec::new());
            }
            progress.insert(origin, to).map_err(|e| self.err(e))?;
            let mut rows = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
            let mut facets = txn.open_table(FACETS).map_err(|e| self.err(e))?;
            let mut alerts = txn.open_table(ALERTS).map_err(|e| self.err(e))?;
            let mut next = rows
                .last()
                .map_err(|e| self.err(e))?
                .map_or(0, |(k, _)| k.value().saturating_add(1));
            for ingested in records {
                let cursor = next;
                next = next.saturating_add(1);
                rows.insert(cursor, ingested.record.encode().as_slice())
                    .map_err(|e| self.err(e))?;
                for facet in ingested.record.facets() {
                    facets
                        .insert((&facet.key(), cursor), ())
                        .map_err(|e| self.err(e))?;
                }
                if let Some(reason) = &ingested.alert {
                    alerts
                        .insert(cursor, reason.as_str())
                        .map_err(|e| self.err(e))?;
                }
                indexed.push((Cursor(cursor), ingested));
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(indexed)
    }

    /// The records matching `query`, newest first, before `before` (from the newest when
    /// `None`), at most `page_size` (clamped to [`MAX_PAGE_SIZE`]). A page walks at most
    /// [`MAX_ROWS_SCANNED_PER_PAGE`] rows: a sparse query may get a short page with a
    /// token to go on.
    pub fn search(
        &self,
        query: &SearchQuery,
        page_size: usize,
        before: Option<Cursor>,
    ) -> Result<Page, IndexStoreError> {
        let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        let before = before.map_or(u64::MAX, |c| c.0);
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let rows = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
        let mut page = Page::default();
        let mut scanned = 0usize;
        let mut take =
            |cursor: u64, bytes: &[u8], page: &mut Page| -> Result<bool, IndexStoreError> {
                scanned += 1;
                let record = IndexedRecord::decode(bytes).map_err(|e| self.err(e))?;
                if query.matches(&record) {
                    page.records.push((Cursor(cursor), record));
                }
                // Whether to go on.
                Ok(page.records.len() < page_size && scanned < MAX_ROWS_SCANNED_PER_PAGE)
            };
        let mut last_seen = None;
        match query.facet() {
            Some(key) => {
                let facets = txn.open_table(FACETS).map_err(|e| self.err(e))?;
                let range = facets
                    .range((&key, 0)..(&key, before))
                    .map_err(|e| self.err(e))?;
                for item in range.rev() {
                    let (k, _) = item.map_err(|e| self.err(e))?;
                    let cursor = k.value().1;
                    last_seen = Some(cursor);
                    let Some(bytes) = rows.get(cursor).map_err(|e| self.err(e))? else {
                        return Err(self.err(format!("facet row names missing record {cursor}")));
                    };
                    if !take(cursor, bytes.value(), &mut page)? {
                        break;
                    }
                }
            }
            None => {
                for item in rows.range(..before).map_err(|e| self.err(e))?.rev() {
                    let (k, v) = item.map_err(|e| self.err(e))?;
                    last_seen = Some(k.value());
                    if !take(k.value(), v.value(), &mut page)? {
                        break;
                    }
                }
            }
        }
        // More may lie before the last row read, unless the walk ran out (it stopped on
        // a full page or the scan bound, not at the start of the index).
        page.next = last_seen.filter(|&c| c > 0).map(Cursor);
        if page.records.len() < page_size && scanned < MAX_ROWS_SCANNED_PER_PAGE {
            page.next = None;
        }
        Ok(page)
    }

    /// The records after `after` (from the first when `None`), oldest first, at most
    /// `limit`, whatever they match: for a watch to replay what it missed.
    pub fn after(
        &self,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<(Cursor, IndexedRecord, Option<String>)>, IndexStoreError> {
        let from = after.map_or(0, |c| c.0.saturating_add(1));
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let rows = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
        let alerts = txn.open_table(ALERTS).map_err(|e| self.err(e))?;
        let mut found = Vec::new();
        for item in rows.range(from..).map_err(|e| self.err(e))?.take(limit) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let record = IndexedRecord::decode(v.value()).map_err(|e| self.err(e))?;
            let alert = alerts
                .get(k.value())
                .map_err(|e| self.err(e))?
                .map(|a| a.value().to_owned());
            found.push((Cursor(k.value()), record, alert));
        }
        Ok(found)
    }

    /// The alerts raised after `after`, oldest first, at most `limit`, with their records.
    pub fn alerts_after(
        &self,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Vec<(Cursor, IndexedRecord, String)>, IndexStoreError> {
        let from = after.map_or(0, |c| c.0.saturating_add(1));
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let rows = txn.open_table(RECORDS).map_err(|e| self.err(e))?;
        let alerts = txn.open_table(ALERTS).map_err(|e| self.err(e))?;
        let mut found = Vec::new();
        for item in alerts.range(from..).map_err(|e| self.err(e))?.take(limit) {
            let (k, reason) = item.map_err(|e| self.err(e))?;
            let Some(bytes) = rows.get(k.value()).map_err(|e| self.err(e))? else {
                return Err(self.err(format!("alert names missing record {}", k.value())));
            };
            let record = IndexedRecord::decode(bytes.value()).map_err(|e| self.err(e))?;
            found.push((Cursor(k.value()), record, reason.value().to_owned()));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provmesh_protocol::index::{IndexedSubject, QueryText};

    fn record(index: u64, signer: &str) -> Ingested {
        Ingested {
            record: IndexedRecord {
                trust_domain: "org-a.example".into(),
                log_origin: "org-a.example/log".into(),
                log_index: index,
                integrated_time: 1_700_000_000 + index as i64,
                kind: "hashedrekord".into(),
                signer: signer.into(),
                builder_id: None,
                predicate_type: None,
                subjects: vec![IndexedSubject {
                    name: String::new(),
                    sha256: format!("{index:064x}"),
                }],
            },
            alert: None,
        }
    }

    fn query(signer: &str) -> SearchQuery {
        SearchQuery::parse(&QueryText {
            signer,
            ..QueryText::default()
        })
        .expect("query")
    }

    #[test]
    fn pages_walk_every_match_newest_first_and_ingest_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = IndexStore::open(dir.path()).expect("open");
        let batch: Vec<_> = (0..25)
            .map(|i| {
                record(
                    i,
                    if i % 2 == 0 {
                        "spiffe://a/even"
                    } else {
                        "spiffe://a/odd"
                    },
                )
            })
            .collect();
        assert_eq!(
            store
                .ingest("org-a.example/log", 0, 25, batch.clone())
                .expect("ingest")
                .len(),
            25
        );
        // The same batch again (a restart that lost the answer) indexes nothing.
        assert!(
            store
                .ingest("org-a.example/log", 0, 25, batch)
                .expect("again")
                .is_empty()
        );
        assert_eq!(store.progress("org-a.example/log").expect("progress"), 25);

        for (q, expected) in [(query("spiffe://a/even"), 13), (query("spiffe://a/*"), 25)] {
            let mut seen = Vec::new();
            let mut before = None;
            loop {
                let page = store.search(&q, 4, before).expect("search");
                assert!(page.records.len() <= 4);
                seen.extend(page.records.iter().map(|(_, r)| r.log_index));
                match page.next {
                    Some(next) => before = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen.len(), expected, "{q:?}");
            assert!(
                seen.windows(2).all(|w| w[0] > w[1]),
                "newest first: {seen:?}"
            );
        }
        let replay = store.after(Some(Cursor(20)), 100).expect("after");
        assert_eq!(
            replay.iter().map(|(c, _, _)| c.0).collect::<Vec<_>>(),
            vec![21, 22, 23, 24]
        );
    }

    #[test]
    fn alerts_are_kept_with_their_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = IndexStore::open(dir.path()).expect("open");
        let mut flagged = record(1, "spiffe://a/intruder");
        flagged.alert = Some("not allowed".into());
        store
            .ingest("l", 0, 2, vec![record(0, "spiffe://a/ci"), flagged])
            .expect("ingest");
        let alerts = store.alerts_after(None, 10).expect("alerts");
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].1.signer, "spiffe://a/intruder");
        assert_eq!(alerts[0].2, "not allowed");
        assert!(
            store
                .alerts_after(Some(alerts[0].0), 10)
                .expect("none")
                .is_empty()
        );
    }
}
