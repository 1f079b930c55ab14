//! The node's durable memory of the mesh: every domain record it accepted, so that after
//! a restart it resumes from the accepted chain of each domain (never from the bootstrap
//! bundle again, which a rotated-away key could exploit) and serves that chain to late
//! joiners.
//!
//! One redb file, `<data_dir>/mesh/mesh.redb`: table `domain_records_v1` keyed by
//! `(trust domain, record sequence)` holding the signed record's JSON as received, and
//! table `evidence_v1` keyed by the evidence id holding verified equivocation evidence
//! (JSON), kept forever, and table `checkpoints_v1` keyed by origin holding the latest
//! checkpoint adopted of each log (the log-signed note), so that after a restart a log is
//! held to the history it showed instead of being trusted on first use again. Checkpoints
//! are written in groups (the mesh task saves those adopted since its last save every
//! few seconds and when it stops): a crash loses at most the last few, and the log is
//! then held to an older checkpoint of the same history.
//! **Durability contract**: [`MeshStore::put_record`] returns only once the record is
//! durable (redb's default immediate durability); the mesh task stores a record before it
//! relays it or acts on it beyond memory, so what it told peers it accepted, it still
//! accepts after a crash.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

/// Accepted domain records: `(trust domain, record sequence)` → signed record JSON.
const DOMAIN_RECORDS: TableDefinition<'static, (&str, u64), &[u8]> =
    TableDefinition::new("domain_records_v1");

/// Verified equivocation evidence: evidence id → document JSON.
const EVIDENCE: TableDefinition<'static, &[u8; 32], &[u8]> = TableDefinition::new("evidence_v1");
/// The latest adopted checkpoint of each log, by origin: the log-signed note.
const CHECKPOINTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("checkpoints_v1");

/// The file name under `<data_dir>/mesh/`.
pub const STORE_FILE: &str = "mesh.redb";

/// The mesh store.
#[derive(Debug)]
pub struct MeshStore {
    db: Database,
    path: PathBuf,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshStoreError {
    /// The directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// redb failed.
    #[error("mesh store {}: {message}", path.display())]
    Redb {
        /// The file.
        path: PathBuf,
        /// What redb said.
        message: String,
    },
}

impl MeshStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<MeshStore, MeshStoreError> {
        std::fs::create_dir_all(dir).map_err(|source| MeshStoreError::Directory {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(STORE_FILE);
        let db = Database::create(&path).map_err(|e| MeshStoreError::Redb {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let store = MeshStore { db, path };
        let txn = store.db.begin_write().map_err(|e| store.err(e))?;
        txn.open_table(DOMAIN_RECORDS).map_err(|e| store.err(e))?;
        txn.open_table(EVIDENCE).map_err(|e| store.err(e))?;
        txn.open_table(CHECKPOINTS).map_err(|e| store.err(e))?;
        txn.commit().map_err(|e| store.err(e))?;
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> MeshStoreError {
        MeshStoreError::Redb {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Stores an accepted record durably (replacing nothing: a sequence is accepted once).
    pub fn put_record(
        &self,
        trust_domain: &str,
        sequence: u64,
        signed_json: &[u8],
    ) -> Result<(), MeshStoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(DOMAIN_RECORDS).map_err(|e| self.err(e))?;
            table
                .insert((trust_domain, sequence), signed_json)
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// Every stored record: `(trust domain, sequence, signed JSON)`, by trust domain and
    /// then sequence (the order in which they were accepted).
    pub fn records(&self) -> Result<Vec<(String, u64, Vec<u8>)>, MeshStoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(DOMAIN_RECORDS).map_err(|e| self.err(e))?;
        let mut records = Vec::new();
        for item in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let (domain, sequence) = key.value();
            records.push((domain.to_owned(), sequence, value.value().to_vec()));
        }
        Ok(records)
    }
}

impl MeshStore {
    /// Stores verified evidence durably, under its id.
    pub fn put_evidence(&self, id: &[u8; 32], json: &[u8]) -> Result<(), MeshStoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(EVIDENCE).map_err(|e| self.err(e))?;
            table.insert(id, json).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// Stores the latest adopted checkpoint of each of `checkpoints` (origin, note), in
    /// one durable transaction.
    pub fn put_checkpoints<'a>(
        &self,
        checkpoints: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<(), MeshStoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(CHECKPOINTS).map_err(|e| self.err(e))?;
            for (origin, note) in checkpoints {
                table.insert(origin, note).map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// Every stored checkpoint note.
    pub fn checkpoints(&self) -> Result<Vec<Vec<u8>>, MeshStoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(CHECKPOINTS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.err(e))? {
            let (_, value) = item.map_err(|e| self.err(e))?;
            out.push(value.value().to_vec());
        }
        Ok(out)
    }

    /// The evidence document stored under `id`, if any.
    pub fn evidence_by_id(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, MeshStoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(EVIDENCE).map_err(|e| self.err(e))?;
        let value = table.get(id).map_err(|e| self.err(e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Every stored evidence document.
    pub fn evidence(&self) -> Result<Vec<Vec<u8>>, MeshStoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(EVIDENCE).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.err(e))? {
            let (_, value) = item.map_err(|e| self.err(e))?;
            out.push(value.value().to_vec());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = MeshStore::open(dir.path()).unwrap();
            store.put_record("org-b.example", 2, b"b2").unwrap();
            store.put_record("org-a.example", 1, b"a1").unwrap();
            store.put_record("org-b.example", 1, b"b1").unwrap();
        }
        let store = MeshStore::open(dir.path()).unwrap();
        let records = store.records().unwrap();
        let keys: Vec<(&str, u64)> = records.iter().map(|(d, s, _)| (d.as_str(), *s)).collect();
        assert_eq!(
            keys,
            [
                ("org-a.example", 1),
                ("org-b.example", 1),
                ("org-b.example", 2)
            ]
        );
        assert_eq!(records[2].2, b"b2");
        store.put_evidence(&[1; 32], b"evidence").unwrap();
        drop(store);
        let store = MeshStore::open(dir.path()).unwrap();
        assert_eq!(store.evidence().unwrap(), vec![b"evidence".to_vec()]);
    }
}
