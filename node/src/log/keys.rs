//! The log's Ed25519 key on disk: created once, on the first start of a log, and read on
//! every start after.
//!
//! The key file holds the key in Go's signed-note `PRIVATE+KEY+<origin>+<id>+…` form
//! (mode 0600); beside it, `log.vkey` holds the public verifier key for operators and
//! witnesses. The key name **is** the origin: a key file for another origin is refused
//! rather than reused, because a new log key means a new log with a new origin.

use std::path::{Path, PathBuf};

use provmesh_protocol::note::{Ed25519Signer, KeyName, NoteSigner as _};

/// File name of the private key inside the log's directory.
pub const KEY_FILE: &str = "log.key";
/// File name of the public verifier key inside the log's directory.
pub const VKEY_FILE: &str = "log.vkey";

/// Why the log key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogKeyError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a valid key.
    #[error("{}: not a valid log key: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file belongs to a log with another origin.
    #[error(
        "{}: the key is for origin {found:?}, but the log is configured as {configured:?}; \
         a log's origin never changes (a new origin needs a new data directory)",
        path.display()
    )]
    OriginMismatch {
        /// The file.
        path: PathBuf,
        /// Origin named in the key file.
        found: String,
        /// Origin in the configuration.
        configured: String,
    },
    /// The system random number generator failed.
    #[error("cannot generate a log key: the system random number generator failed")]
    Random,
    /// The new key file could not be written.
    #[error(transparent)]
    KeyFile(#[from] crate::keyfile::KeyFileError),
}

/// Loads the log key from `dir`, or creates it (and the directory) if there is none.
pub fn load_or_create(dir: &Path, origin: &KeyName) -> Result<Ed25519Signer, LogKeyError> {
    let path = dir.join(KEY_FILE);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LogKeyError::Io { path, source }
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let signer =
                Ed25519Signer::from_skey(text.trim()).map_err(|e| LogKeyError::Invalid {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if signer.name() != origin {
                return Err(LogKeyError::OriginMismatch {
                    path,
                    found: signer.name().as_str().to_owned(),
                    configured: origin.as_str().to_owned(),
                });
            }
            Ok(signer)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            let mut seed = [0u8; 32];
            aws_lc_rs::rand::fill(&mut seed).map_err(|_| LogKeyError::Random)?;
            let signer = Ed25519Signer::from_seed(origin.clone(), &seed);
            seed.fill(0);
            crate::keyfile::write_new_private(&path, format!("{}\n", signer.to_skey()).as_bytes())
                .map_err(LogKeyError::KeyFile)?;
            let vkey_path = dir.join(VKEY_FILE);
            std::fs::write(&vkey_path, format!("{}\n", signer.verifier().to_vkey()))
                .map_err(io(&vkey_path))?;
            tracing::info!(path = %path.display(), origin = origin.as_str(), "created log key");
            Ok(signer)
        }
        Err(source) => Err(LogKeyError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded_and_origin_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let origin = KeyName::new("log.org-a.example").unwrap();
        let created = load_or_create(dir.path(), &origin).unwrap();
        let loaded = load_or_create(dir.path(), &origin).unwrap();
        assert_eq!(created.public_key(), loaded.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let vkey = std::fs::read_to_string(dir.path().join(VKEY_FILE)).unwrap();
        assert_eq!(vkey.trim(), created.verifier().to_vkey());

        let other = KeyName::new("log.org-b.example").unwrap();
        assert!(matches!(
            load_or_create(dir.path(), &other),
            Err(LogKeyError::OriginMismatch { .. })
        ));
    }
}
