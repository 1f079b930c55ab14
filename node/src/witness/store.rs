//! The witness's durable state: for each witnessed log, the latest checkpoint the
//! domain's witness cosigned.
//!
//! One redb file, `<data_dir>/witness/witness.redb`, one table `witness_cosigned_v1`
//! keyed by origin, holding `size (8 bytes, big endian) ‖ root hash (32) ‖ the signed
//! note`. **Durability contract**: [`WitnessStore::put`] returns only once every update
//! of the batch is durable (one redb transaction, immediate durability); the witness
//! task answers with a cosignature only after it returned, so a witness never cosigns a
//! state that a crash could roll back.

use std::path::{Path, PathBuf};

use provmesh_protocol::witness::Cosigned;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

/// Latest cosigned checkpoint per origin.
const COSIGNED: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("witness_cosigned_v1");

/// The file name under `<data_dir>/witness/`.
pub const STORE_FILE: &str = "witness.redb";

/// The witness store.
#[derive(Debug)]
pub struct WitnessStore {
    db: Database,
    path: PathBuf,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessStoreError {
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
    #[error("witness store {}: {message}", path.display())]
    Redb {
        /// The file.
        path: PathBuf,
        /// What redb said.
        message: String,
    },
    /// A stored value is not `size ‖ root ‖ note`.
    #[error("witness store {}: the state of {origin} is corrupt", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The log.
        origin: String,
    },
}

impl WitnessStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<WitnessStore, WitnessStoreError> {
        std::fs::create_dir_all(dir).map_err(|source| WitnessStoreError::Directory {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(STORE_FILE);
        let db = Database::create(&path).map_err(|e| WitnessStoreError::Redb {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let store = WitnessStore { db, path };
        let txn = store.db.begin_write().map_err(|e| store.err(e))?;
        txn.open_table(COSIGNED).map_err(|e| store.err(e))?;
        txn.commit().map_err(|e| store.err(e))?;
        Ok(store)
    }

    fn err(&self, e: impl std::fmt::Display) -> WitnessStoreError {
        WitnessStoreError::Redb {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Stores a batch of new states in one durable transaction.
    pub fn put<'a>(
        &self,
        updates: impl IntoIterator<Item = (&'a str, &'a Cosigned)>,
    ) -> Result<(), WitnessStoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(COSIGNED).map_err(|e| self.err(e))?;
            for (origin, cosigned) in updates {
                let mut value = Vec::with_capacity(40 + cosigned.note.len());
                value.extend_from_slice(&cosigned.size.to_be_bytes());
                value.extend_from_slice(&cosigned.root);
                value.extend_from_slice(&cosigned.note);
                table
                    .insert(origin, value.as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// Every stored state.
    pub fn all(&self) -> Result<Vec<(String, Cosigned)>, WitnessStoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(COSIGNED).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (origin, value) = row.map_err(|e| self.err(e))?;
            let origin = origin.value().to_owned();
            let value = value.value();
            let corrupt = || WitnessStoreError::Corrupt {
                path: self.path.clone(),
                origin: origin.clone(),
            };
            let size = value
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(corrupt)?;
            let root = value
                .get(8..40)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(corrupt)?;
            let note = value.get(40..).ok_or_else(corrupt)?.to_vec();
            out.push((origin, Cosigned { size, root, note }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let a = Cosigned {
            size: 7,
            root: [1; 32],
            note: b"note a".to_vec(),
        };
        let b = Cosigned {
            size: 9,
            root: [2; 32],
            note: b"note b".to_vec(),
        };
        {
            let store = WitnessStore::open(dir.path()).unwrap();
            store.put([("log.a", &a), ("log.b", &a)]).unwrap();
            store.put([("log.b", &b)]).unwrap();
        }
        let store = WitnessStore::open(dir.path()).unwrap();
        assert_eq!(
            store.all().unwrap(),
            vec![("log.a".to_owned(), a), ("log.b".to_owned(), b)]
        );
    }
}
