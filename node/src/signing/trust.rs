//! A domain's trust for verifiers: `provmesh trust-root export` writes the Sigstore
//! `trusted_root.json` (or a ClientTrustConfig, what sigstore-python's `--trust-config`
//! takes) with the domain's log key, CT key and code-signing CA; and signers read such a
//! file back (`--trust-config`) to check their bundles against it.
//!
//! Two sources, the same document:
//! - a running authority, `GET /api/v2/provmesh/trustedRoot`;
//! - the authority's own files, from its configuration: `<data_dir>/log/log.vkey` (the
//!   log's public key under its origin), `<data_dir>/ca/code-signing.pem` (the root) and
//!   `<data_dir>/ca/ct.key` (the CT key, whose public half is taken). Readable while the
//!   node runs or is stopped; nothing is created.
//!
//! Both build the document with [`crate::ca::service::domain_trust`] and
//! [`trusted_root`], so they agree byte for byte.
//!
//! An authority exports only its own trust domain. A node of the mesh exports the trust
//! of any federated domain it accepted (`--node`, `MeshService.ExportTrustedRoot`), built
//! from the domains' records (`provmesh_protocol::provenance::trusted_root_of`).

use std::path::{Path, PathBuf};

use provmesh_protocol::ca::CtLogKey;
use provmesh_protocol::note::Ed25519Verifier;
use provmesh_protocol::sigstore::{DEFAULT_MAX_TRUSTED_ROOT_LEN, TrustedRoot, parse_trusted_root};
use provmesh_protocol::sigstore_trust::{
    ClientTrustConfigError, TrustedRootBuildError, client_trust_config_with_services, trusted_root,
};
use provmesh_protocol::spiffe::TrustDomain;

use super::authority::{AuthorityClient, AuthorityError};
use super::sign::write_replacing;
use crate::bounded::read_file_at_most;
use crate::ca::service::{DomainTrustError, domain_trust};
use crate::config::Config;

/// The largest trust file read: a trusted root of the largest size parsed, and a signing
/// config beside it.
const MAX_TRUST_FILE_LEN: usize = DEFAULT_MAX_TRUSTED_ROOT_LEN + 64 * 1024;
/// The largest key or certificate file read (each is a few hundred bytes).
const MAX_KEY_FILE_LEN: usize = 64 * 1024;

/// Which document to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustFormat {
    /// A Sigstore `trusted_root.json` (TrustedRoot v0.1).
    TrustedRoot,
    /// A ClientTrustConfig: the trusted root and a signing config naming the domain's
    /// services (sigstore-python `--trust-config`).
    ClientTrustConfig,
}

/// Where the domain's trust is read from.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum TrustSource<'a> {
    /// A running authority at this base URL.
    Authority(&'a str),
    /// A node of the mesh at this gRPC address, for the domains it accepted
    /// (`MeshService.ExportTrustedRoot`).
    Node(&'a str),
    /// The files of the authority configured by `config`, read from `path`.
    Files {
        /// The configuration file (for messages).
        path: &'a Path,
        /// The configuration.
        config: &'a Config,
    },
}

/// What was exported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Exported {
    /// The domains exported.
    pub trust_domains: Vec<TrustDomain>,
    /// The document written.
    pub format: TrustFormat,
    /// Where.
    pub out: PathBuf,
}

/// Why no trust document was exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The authority could not be asked.
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    /// A domain other than the node's own was asked for.
    #[error(
        "trust domain {requested} is not this authority's ({own}): export the trust of other \
         federated domains from a node of the mesh (--node ADDR)"
    )]
    ForeignDomain {
        /// The domain asked for.
        requested: TrustDomain,
        /// The authority's domain.
        own: TrustDomain,
    },
    /// The configuration is not one of an authority with a CA.
    #[error(
        "{} is not the configuration of an authority with a code-signing CA \
         (authority.enabled and authority.ca.enabled); give --authority URL instead",
        path.display()
    )]
    NotAnAuthority {
        /// The configuration file.
        path: PathBuf,
    },
    /// A file of the authority is missing or unusable.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The node could not be asked, or refused.
    #[error("{0}")]
    Node(#[from] crate::mesh::status::StatusError),
    /// The node's answer is not a trusted root.
    #[error("the node's trusted root does not parse: {0}")]
    NodeAnswer(String),
    /// The domain's material could not be described.
    #[error(transparent)]
    DomainTrust(#[from] DomainTrustError),
    /// The trusted root could not be built.
    #[error("cannot build the trusted root: {0}")]
    Build(#[source] TrustedRootBuildError),
    /// The ClientTrustConfig could not be built.
    #[error("cannot build the client trust config: {0}")]
    ClientConfig(#[source] ClientTrustConfigError),
    /// The document could not be encoded.
    #[error("cannot encode the trust document: {0}")]
    Encode(#[source] serde_json::Error),
    /// The document could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// Why a trust file given to a signer is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustConfigError {
    /// The file could not be read.
    #[error("cannot read the trust config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is too large.
    #[error("the trust config {} is larger than {max} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: usize,
    },
    /// Not a trusted root or ClientTrustConfig.
    #[error(
        "{} is not a Sigstore trusted_root.json or ClientTrustConfig: {reason}",
        path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Exports the trust of `domains` (empty: the source's own domain) from `source` as
/// `format` into `out`.
pub async fn export(
    source: TrustSource<'_>,
    domains: &[TrustDomain],
    format: TrustFormat,
    out: &Path,
) -> Result<Exported, ExportError> {
    // Where clients reach the authority's log and CA, for a client config's signing
    // config (the trusted root names the log by its origin).
    let (covered, root, services) = match source {
        TrustSource::Authority(url) => {
            let authority = AuthorityClient::new(url)?;
            let own = authority.trust_domain().await?;
            check_domains(domains, &own)?;
            (
                vec![own],
                authority.trusted_root().await?,
                Some(url.to_owned()),
            )
        }
        TrustSource::Files { path, config } => {
            let own = config.node.trust_domain.clone();
            check_domains(domains, &own)?;
            let services = super::authority::default_authority_url(config);
            (vec![own], root_from_files(path, config)?, services)
        }
        TrustSource::Node(address) => {
            let (covered, root) = crate::mesh::status::fetch_trusted_root(address, domains).await?;
            let covered = covered
                .iter()
                .map(|d| TrustDomain::parse(d).map_err(|e| ExportError::NodeAnswer(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            let (root, _) = parse_trusted_root(&root, DEFAULT_MAX_TRUSTED_ROOT_LEN)
                .map_err(|e| ExportError::NodeAnswer(e.to_string()))?;
            (covered, root, None)
        }
    };
    let mut json = match format {
        TrustFormat::TrustedRoot => serde_json::to_vec_pretty(&root),
        TrustFormat::ClientTrustConfig => {
            let services: Vec<String> = services.into_iter().collect();
            let config = client_trust_config_with_services(&root, &services, &services)
                .map_err(ExportError::ClientConfig)?;
            serde_json::to_vec_pretty(&config)
        }
    }
    .map_err(ExportError::Encode)?;
    json.push(b'\n');
    write_replacing(out, &json).map_err(|source| ExportError::Write {
        path: out.to_owned(),
        source,
    })?;
    Ok(Exported {
        trust_domains: covered,
        format,
        out: out.to_owned(),
    })
}

fn check_domains(domains: &[TrustDomain], own: &TrustDomain) -> Result<(), ExportError> {
    match domains.iter().find(|d| *d != own) {
        Some(other) => Err(ExportError::ForeignDomain {
            requested: other.clone(),
            own: own.clone(),
        }),
        None => Ok(()),
    }
}

/// The trusted root of the authority configured by `config`, from its files.
fn root_from_files(path: &Path, config: &Config) -> Result<TrustedRoot, ExportError> {
    if !(config.authority.enabled && config.authority.ca.enabled) {
        return Err(ExportError::NotAnAuthority {
            path: path.to_owned(),
        });
    }
    let data_dir = &config.node.data_dir;
    let not_started = " (has the authority been started once? It creates its keys then)";

    let vkey_path = crate::log::log_dir(data_dir).join(crate::log::keys::VKEY_FILE);
    let vkey = read_small(&vkey_path, not_started)?;
    let vkey = String::from_utf8(vkey).map_err(|_| ExportError::File {
        path: vkey_path.clone(),
        reason: "not UTF-8".into(),
    })?;
    let verifier = Ed25519Verifier::from_vkey(vkey.trim()).map_err(|e| ExportError::File {
        path: vkey_path.clone(),
        reason: format!("not an Ed25519 verifier key: {e}"),
    })?;
    let origin = config.authority.log.origin_for(&config.node.trust_domain);
    if verifier.name().as_str() != origin {
        return Err(ExportError::File {
            path: vkey_path,
            reason: format!(
                "the key is for origin {:?}, but the configuration names {origin:?}",
                verifier.name().as_str()
            ),
        });
    }

    let ca_dir = crate::ca::keys::ca_dir(data_dir);
    let root_path = ca_dir.join(crate::ca::keys::ROOT_CERT_FILE);
    let root = crate::ca::keys::read_root(&root_path)
        .map_err(|e| ExportError::File {
            path: root_path.clone(),
            reason: e.to_string(),
        })?
        .ok_or_else(|| ExportError::File {
            path: root_path.clone(),
            reason: format!("no code-signing root{not_started}"),
        })?;
    let ct_path = ca_dir.join(crate::ca::keys::CT_KEY_FILE);
    let ct_key = CtLogKey::from_pkcs8_der(&read_small(&ct_path, not_started)?).map_err(|e| {
        ExportError::File {
            path: ct_path.clone(),
            reason: e.to_string(),
        }
    })?;

    // The issuer's chain is the root alone (`crate::ca::keys::load_or_create`).
    let domain = domain_trust(
        &origin,
        verifier.public_key(),
        ct_key.public_key_spki_der(),
        &[root],
    )?;
    trusted_root(&[domain]).map_err(ExportError::Build)
}

/// A file of at most [`MAX_KEY_FILE_LEN`] bytes; `hint` is added when it is missing.
fn read_small(path: &Path, hint: &str) -> Result<Vec<u8>, ExportError> {
    read_file_at_most(path, MAX_KEY_FILE_LEN)
        .map_err(|e| ExportError::File {
            path: path.to_owned(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                format!("{e}{hint}")
            } else {
                e.to_string()
            },
        })?
        .ok_or_else(|| ExportError::File {
            path: path.to_owned(),
            reason: format!("larger than {MAX_KEY_FILE_LEN} bytes"),
        })
}

/// Reads a ClientTrustConfig (its `trustedRoot`) or a `trusted_root.json`.
pub fn read_trust_config(path: &Path) -> Result<TrustedRoot, TrustConfigError> {
    let invalid = |reason: String| TrustConfigError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let read_error = |source| TrustConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = read_file_at_most(path, MAX_TRUST_FILE_LEN)
        .map_err(read_error)?
        .ok_or_else(|| TrustConfigError::TooLarge {
            path: path.to_owned(),
            max: MAX_TRUST_FILE_LEN,
        })?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    // A ClientTrustConfig wraps the trusted root; a trusted_root.json is one.
    let root_json = match value.get("trustedRoot") {
        Some(root) => serde_json::to_vec(root).map_err(|e| invalid(e.to_string()))?,
        None => bytes,
    };
    let (root, _) = parse_trusted_root(&root_json, DEFAULT_MAX_TRUSTED_ROOT_LEN)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authority_exports_only_its_own_domain() {
        let own = TrustDomain::parse("org-a.example").unwrap();
        let other = TrustDomain::parse("org-b.example").unwrap();
        assert!(check_domains(&[], &own).is_ok());
        assert!(check_domains(std::slice::from_ref(&own), &own).is_ok());
        let error = check_domains(&[own.clone(), other], &own).unwrap_err();
        assert!(error.to_string().contains("--node ADDR"), "{error}");
    }

    #[test]
    fn trust_configs_must_be_sigstore_documents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(&path, b"{\"mediaType\": \"x\"}").unwrap();
        assert!(matches!(
            read_trust_config(&path),
            Err(TrustConfigError::Invalid { .. })
        ));
        std::fs::write(&path, b"not json").unwrap();
        assert!(matches!(
            read_trust_config(&path),
            Err(TrustConfigError::Invalid { .. })
        ));
        assert!(matches!(
            read_trust_config(&dir.path().join("missing")),
            Err(TrustConfigError::Read { .. })
        ));
    }
}
