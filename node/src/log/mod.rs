//! The domain transparency log, run by the trust domain's authority node: it drives the
//! sans-IO sequencer of `provmesh_protocol::log` with a redb store, a clock, a key on
//! disk and HTTP.
//!
//! | module | owns |
//! | --- | --- |
//! | [`store`] | the durable store: its contract and the redb implementation |
//! | [`keys`] | the log's Ed25519 key file |
//! | [`service`] | the log task, the writer thread and the [`LogHandle`] handlers use |
//! | [`http`] | the Rekor v1 REST API and C2SP tlog-tiles over HTTP |
//! | [`fsck`] | offline re-verification of a whole store |
//!
//! Files under `<data_dir>/log/`: [`STORE_FILE`], [`keys::KEY_FILE`], [`keys::VKEY_FILE`].

pub mod fsck;
pub mod http;
pub mod keys;
pub mod service;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prometheus_client::registry::Registry;
use provmesh_protocol::log::quota::QuotaConfig;
use provmesh_protocol::log::sequencer::SequencerConfig;
use provmesh_protocol::log::signer_cert::CodeSigningRoots;
use provmesh_protocol::note::KeyName;

pub use service::{LogHandle, LogSettings, LogTask};

use crate::config::Config;
use crate::shutdown::Shutdown;

/// File name of the redb store inside the log's directory.
pub const STORE_FILE: &str = "log.redb";

/// The log's directory inside a node's data directory.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("log")
}

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configured origin is not a valid key name.
    #[error("invalid log origin {origin:?}: {reason}")]
    Origin {
        /// The origin.
        origin: String,
        /// Why.
        reason: String,
    },
    /// No code-signing roots are configured.
    #[error(
        "no code-signing roots: enable authority.ca (the domain's own root) or set \
         authority.log.code_signing_roots; the log admits only entries whose certificates \
         chain to the domain's code-signing roots"
    )]
    NoRoots,
    /// The code-signing roots could not be read or parsed.
    #[error("code-signing roots {}: {reason}", path.display())]
    Roots {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] keys::LogKeyError),
    /// The store could not be opened.
    #[error("log store {}: {source}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: store::StoreError,
    },
    /// The log could not resume from its store.
    #[error(transparent)]
    Start(#[from] service::LogStartError),
}

/// The configured code-signing roots file (PEM) and the domain's own roots, together.
fn load_roots(path: Option<&Path>, own_roots: &[Vec<u8>]) -> Result<CodeSigningRoots, OpenError> {
    let mut certificates = own_roots.to_vec();
    if let Some(path) = path {
        let bad = |reason: String| OpenError::Roots {
            path: path.to_owned(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        // Parsed on its own first, for its precise errors about the file.
        CodeSigningRoots::from_pem(&pem).map_err(|e| bad(e.to_string()))?;
        for block in x509_parser::pem::Pem::iter_from_buffer(&pem) {
            let block = block.map_err(|e| bad(e.to_string()))?;
            if block.label == "CERTIFICATE" {
                certificates.push(block.contents);
            }
        }
    }
    if certificates.is_empty() {
        return Err(OpenError::NoRoots);
    }
    CodeSigningRoots::from_der(&certificates).map_err(|e| OpenError::Roots {
        path: path.map_or_else(
            || PathBuf::from("(the domain's own code-signing root)"),
            Path::to_owned,
        ),
        reason: e.to_string(),
    })
}

/// Opens the authority's log as configured: key, store, roots; returns the handle and
/// the task to spawn. `own_roots` are the domain's own code-signing roots (DER), admitted
/// besides those of `authority.log.code_signing_roots`.
pub fn open(
    config: &Config,
    own_roots: &[Vec<u8>],
    published_checkpoint: Option<Vec<u8>>,
    registry: &mut Registry,
    shutdown: Shutdown,
) -> Result<(LogHandle, LogTask), OpenError> {
    let log = &config.authority.log;
    let origin = log.origin_for(&config.node.trust_domain);
    let origin = KeyName::new(origin.clone()).map_err(|e| OpenError::Origin {
        origin,
        reason: e.to_string(),
    })?;
    let roots = load_roots(log.code_signing_roots.as_deref(), own_roots)?;
    let dir = log_dir(&config.node.data_dir);
    let signer = keys::load_or_create(&dir, &origin)?;
    let store_path = dir.join(STORE_FILE);
    let store = store::RedbLogStore::open(&store_path).map_err(|source| OpenError::Store {
        path: store_path,
        source,
    })?;
    let settings = LogSettings {
        sequencer: SequencerConfig {
            max_batch_entries: log.batch_max_entries,
            max_batch_delay: log.batch_max_delay,
            max_pending_entries: log.max_pending_entries,
        },
        quota: QuotaConfig::per_second(log.quota_per_second, log.quota_burst),
        ..LogSettings::default()
    };
    tracing::info!(
        origin = origin.as_str(),
        key_id = %hex::encode(provmesh_protocol::log::log_key_id(&origin, &signer.public_key())),
        "opening the domain transparency log"
    );
    Ok(service::start(
        settings,
        Arc::new(store),
        signer,
        roots,
        published_checkpoint,
        registry,
        shutdown,
    )?)
}
