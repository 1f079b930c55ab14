//! The authority's code-signing CA files: the domain's code-signing root (key and
//! self-signed certificate) and its CT signing key, created on first start.
//!
//! Files under `<data_dir>/ca/`:
//!
//! | file | holds |
//! | --- | --- |
//! | [`ROOT_KEY_FILE`] | the code-signing root's ECDSA P-256 key, PKCS#8 DER, mode 0600 |
//! | [`CT_KEY_FILE`] | the CT log key that signs SCTs, ECDSA P-256 PKCS#8 DER, mode 0600 |
//! | [`ROOT_CERT_FILE`] | the self-signed code-signing root, PEM, written last |
//!
//! The root is **its own trust anchor**, never under the SPIFFE root: a CA below the
//! SVID root could mint SVIDs every federated partner accepts. Its certificate is what
//! `trusted_root.json` lists as the domain's certificate authority. Deleting
//! `code-signing.pem` makes a new root for the same key at the next start (to renew an
//! expiring root); a new key is a new root that verifiers must be told about.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use provmesh_protocol::ca::request::pem_encode;
use provmesh_protocol::ca::{
    CaLoadError, CodeSigningIssuer, CtKeyError, CtLogKey, RootCreateError, code_signing_root_name,
    create_code_signing_root,
};
use provmesh_protocol::spiffe::TrustDomain;
use x509_parser::pem::Pem;

use crate::bounded::read_file_at_most;
use crate::keyfile::{self, KeyFileError};

/// The code-signing root's key file.
pub const ROOT_KEY_FILE: &str = "code-signing.key";
/// The code-signing root's certificate file (PEM).
pub const ROOT_CERT_FILE: &str = "code-signing.pem";
/// The CT signing key file.
pub const CT_KEY_FILE: &str = "ct.key";

/// How long a new code-signing root is valid: ten years, like public Sigstore's.
const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// How far back a new root's validity starts, for verifiers whose clock is behind.
const ROOT_BACKDATE: Duration = Duration::from_secs(86_400);
/// The largest root certificate file read.
const MAX_ROOT_PEM_LEN: usize = 64 * 1024;

/// The CA's directory inside a node's data directory.
pub fn ca_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ca")
}

/// Why the CA's files could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaKeysError {
    /// The directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A key file could not be read or created.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The root certificate could not be read.
    #[error("{}: {reason}", path.display())]
    RootFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The root could not be created.
    #[error("cannot create the code-signing root: {0}")]
    Create(#[from] RootCreateError),
    /// The root, its key or the CT key do not load into an issuer.
    #[error(
        "the code-signing CA in {} does not load: {source} (a root certificate must belong to \
         code-signing.key and to this trust domain)",
        dir.display()
    )]
    Load {
        /// The CA directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: CaLoadError,
    },
    /// The CT key is not a P-256 key.
    #[error("{}: {source}", path.display())]
    CtKey {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: CtKeyError,
    },
    /// The stored root belongs to another trust domain.
    #[error(
        "{} is the code-signing root of another trust domain (its name is not {expected:?}); \
         move the data directory or the file away",
        path.display()
    )]
    WrongTrustDomain {
        /// The file.
        path: PathBuf,
        /// The name a root of this domain has.
        expected: String,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// The loaded CA: the issuer and the root certificate (DER) it chains to.
pub struct CaKeys {
    /// Issues certificates under the root, SCTs with the CT key.
    pub issuer: CodeSigningIssuer,
    /// The self-signed code-signing root, DER.
    pub root_der: Vec<u8>,
    /// Whether the root was created by this call.
    pub created: bool,
}

/// Loads the CA of `trust_domain` from `dir`, creating what is missing.
pub fn load_or_create(dir: &Path, trust_domain: &TrustDomain) -> Result<CaKeys, CaKeysError> {
    std::fs::create_dir_all(dir).map_err(|source| CaKeysError::Dir {
        path: dir.to_owned(),
        source,
    })?;
    let (root_key, _) = keyfile::load_or_create_p256_pkcs8(&dir.join(ROOT_KEY_FILE))?;
    let ct_path = dir.join(CT_KEY_FILE);
    let (ct_key, _) = keyfile::load_or_create_p256_pkcs8(&ct_path)?;
    let ct_key = CtLogKey::from_pkcs8_der(&ct_key).map_err(|source| CaKeysError::CtKey {
        path: ct_path,
        source,
    })?;
    let cert_path = dir.join(ROOT_CERT_FILE);
    let (root_der, created) = match read_root(&cert_path)? {
        Some(der) => (der, false),
        None => {
            let der = new_root(trust_domain, &root_key)?;
            keyfile::write_new_private(&cert_path, pem_encode("CERTIFICATE", &der).as_bytes())?;
            (der, true)
        }
    };
    check_name(&cert_path, &root_der, trust_domain)?;
    let issuer = CodeSigningIssuer::new(trust_domain.clone(), &[&root_der], &root_key, ct_key)
        .map_err(|source| CaKeysError::Load {
            dir: dir.to_owned(),
            source,
        })?;
    Ok(CaKeys {
        issuer,
        root_der,
        created,
    })
}

/// Reads the root certificate written by [`load_or_create`], if there is one.
pub fn read_root(path: &Path) -> Result<Option<Vec<u8>>, CaKeysError> {
    let bad = |reason: String| CaKeysError::RootFile {
        path: path.to_owned(),
        reason,
    };
    let pem = match read_file_at_most(path, MAX_ROOT_PEM_LEN) {
        Ok(Some(pem)) => pem,
        Ok(None) => return Err(bad(format!("larger than {MAX_ROOT_PEM_LEN} bytes"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let mut blocks = Pem::iter_from_buffer(&pem);
    match (blocks.next(), blocks.next()) {
        (Some(Ok(block)), None) if block.label == "CERTIFICATE" => Ok(Some(block.contents)),
        _ => Err(bad("expected exactly one PEM CERTIFICATE block".into())),
    }
}

fn new_root(trust_domain: &TrustDomain, key_pkcs8: &[u8]) -> Result<Vec<u8>, CaKeysError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let not_before = now.saturating_sub(ROOT_BACKDATE).as_secs();
    let not_after = now.saturating_add(ROOT_VALIDITY).as_secs();
    let mut serial = [0u8; 20];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CaKeysError::Random)?;
    Ok(create_code_signing_root(
        trust_domain,
        key_pkcs8,
        i64::try_from(not_before).unwrap_or(i64::MAX),
        i64::try_from(not_after).unwrap_or(i64::MAX),
        &serial,
    )?)
}

/// The root's common name must be this domain's (the issuer only checks the key).
fn check_name(path: &Path, der: &[u8], trust_domain: &TrustDomain) -> Result<(), CaKeysError> {
    let expected = code_signing_root_name(trust_domain);
    let cert = x509_parser::parse_x509_certificate(der)
        .map_err(|e| CaKeysError::RootFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?
        .1;
    let matches = cert
        .subject()
        .iter_common_name()
        .any(|cn| cn.as_str() == Ok(expected.as_str()));
    if matches {
        Ok(())
    } else {
        Err(CaKeysError::WrongTrustDomain {
            path: path.to_owned(),
            expected,
        })
    }
}
