//! Secret key files: created once with mode 0600 (never overwritten), read on every
//! start after. The authority's keys — log key, code-signing CA key, CT key — all live in
//! such files by default (Kubernetes mounts Secrets at the same paths).

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why a key file could not be read or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a valid key.
    #[error("{}: not a valid {what}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What kind of key was expected.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The system random number generator failed.
    #[error("cannot generate a key: the system random number generator failed")]
    Random,
}

/// Writes a new file readable by its owner only, failing if it exists, and syncs it and
/// its directory, so that a key once used is never lost to a crash.
pub fn write_new_private(path: &Path, contents: &[u8]) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        // Best effort: not every filesystem syncs directories.
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Loads the ECDSA P-256 key (PKCS#8 DER) at `path`, or generates one and writes it there.
/// Returns the PKCS#8 document and whether it was just created.
pub fn load_or_create_p256_pkcs8(path: &Path) -> Result<(Vec<u8>, bool), KeyFileError> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    match std::fs::read(path) {
        Ok(der) => {
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der).map_err(|e| {
                KeyFileError::Invalid {
                    path: path.to_owned(),
                    what: "ECDSA P-256 PKCS#8 key",
                    reason: e.to_string(),
                }
            })?;
            Ok((der, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                .map_err(|_| KeyFileError::Random)?;
            let der = key
                .to_pkcs8v1()
                .map_err(|_| KeyFileError::Random)?
                .as_ref()
                .to_vec();
            write_new_private(path, &der)?;
            Ok((der, true))
        }
        Err(source) => Err(KeyFileError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_p256_key_is_created_once_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/ct.key");
        let (created, fresh) = load_or_create_p256_pkcs8(&path).unwrap();
        assert!(fresh);
        let (loaded, fresh) = load_or_create_p256_pkcs8(&path).unwrap();
        assert!(!fresh);
        assert_eq!(created, loaded);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            write_new_private(&path, b"other"),
            Err(KeyFileError::Io { .. })
        ));
    }

    #[test]
    fn a_corrupt_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        std::fs::write(&path, b"not a key").unwrap();
        assert!(matches!(
            load_or_create_p256_pkcs8(&path),
            Err(KeyFileError::Invalid { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"not a key");
    }
}
