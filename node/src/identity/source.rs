//! The node's SPIFFE identity behind one type, [`Identity`], whichever source issues it:
//! the embedded dev CA (`identity.source = "dev"`) or the SPIFFE Workload API of a SPIRE
//! agent (`"spire"`, [`super::workload_api`]).
//!
//! After issuance both sources take the same path: the node's X.509-SVID is a
//! [`NodeSvid`] and its trust domain's bundle (X.509 *and* JWT authorities) a
//! [`TrustBundle`], each published on a `tokio::sync::watch` channel that consumers follow
//! for rotation; JWT-SVIDs come from [`Identity::jwt_svid`].
//!
//! Keeping the channels current is the job of the [`IdentityTask`] that
//! [`Identity::open`] returns beside the identity; the node runs it as a supervised task
//! and it ends on the shutdown signal (then the channels close: `changed()` errs).
//!
//! * **dev**: the dev CA of `node.trust_domain` in `<data_dir>/identity/` is opened or
//!   created, and the node gets the SVID `spiffe://<trust domain>/provmesh/node/<node id>`,
//!   where the node id is 32 random hex digits created once in
//!   `<data_dir>/identity/node-id` — stable across restarts, distinct for every data
//!   directory, and independent of host names (which change with every Kubernetes pod).
//!   The authority (`authority.enabled`) gets the domain's authority ID instead
//!   (`federation.authority_id`, default `spiffe://<trust domain>/provmesh/authority`).
//!   `identity.dev_ca_dir` lets the nodes of one domain share one dev CA.
//!   The task renews the SVID when half its lifetime has passed, as SPIRE agents do. The
//!   bundle does not change while the node runs (a new root needs a restart).
//! * **spire**: the agent decides the SPIFFE ID and rotation; the task republishes what
//!   the agent pushes. An SVID outside `node.trust_domain` is refused (an error at start,
//!   a rotation not taken later). When the agent withdraws material (PermissionDenied)
//!   the last published SVID and bundle stay until the agent sends new ones.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use provmesh_protocol::spiffe::{SpiffeId, TrustBundle, TrustDomain};
use tokio::sync::watch;

use super::dev_ca::{
    DevCa, DevCaConfig, IssueJwtError, IssueX509Error, OpenError, SubjectKey, X509Svid,
};
use super::workload_api::{
    ConnectError, ENDPOINT_SOCKET_ENV, FetchJwtError, UpdatesClosed, WorkloadApiSource,
    WorkloadApiUpdates, resolve_endpoint,
};
use crate::config::{Config, IdentitySourceKind};
use crate::shutdown::Shutdown;

/// The directory of the dev CA and the node id, under `node.data_dir`.
pub const IDENTITY_DIR: &str = "identity";
/// The file holding the node id (dev source).
pub const NODE_ID_FILE: &str = "node-id";
/// The path under the trust domain of dev node SPIFFE IDs; the node id follows.
pub const NODE_ID_PATH_PREFIX: &str = "/provmesh/node/";
/// The default lifetime of a dev JWT-SVID (SPIRE's default JWT-SVID TTL).
pub const DEFAULT_JWT_SVID_VALIDITY: Duration = Duration::from_secs(300);

/// Length of a node id in hex digits (128 random bits).
const NODE_ID_HEX_LEN: usize = 32;
/// The shortest wait before a renewal, so a clock jump cannot make the renewal loop spin.
const MIN_RENEWAL_WAIT: Duration = Duration::from_millis(50);
/// The longest wait between failed renewal attempts.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// The dev CA and node id directory of a data directory.
pub fn identity_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(IDENTITY_DIR)
}

/// The node's X.509-SVID, whichever source issued it.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeSvid {
    /// The SPIFFE ID in its URI SAN.
    pub spiffe_id: SpiffeId,
    /// DER certificates, leaf first; intermediates if the source has any; never the root
    /// (it is in the bundle).
    pub chain_der: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER.
    pub private_key_pkcs8: Vec<u8>,
    /// The leaf's notAfter.
    pub not_after: SystemTime,
}

impl fmt::Debug for NodeSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeSvid")
            .field("spiffe_id", &self.spiffe_id)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Settings of [`Identity::open_with`] that the configuration file does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenOptions {
    /// The dev CA's settings (dev source only).
    pub dev_ca: DevCaConfig,
    /// Lifetime of the node's dev X.509-SVID; `None` is the dev CA's maximum.
    pub node_svid_validity: Option<Duration>,
    /// Lifetime of a dev JWT-SVID (cut to the dev CA's maximum).
    pub jwt_svid_validity: Duration,
}

impl Default for OpenOptions {
    /// The dev CA's defaults, node SVIDs of its maximum lifetime, five-minute JWT-SVIDs.
    fn default() -> OpenOptions {
        OpenOptions {
            dev_ca: DevCaConfig::default(),
            node_svid_validity: None,
            jwt_svid_validity: DEFAULT_JWT_SVID_VALIDITY,
        }
    }
}

/// Why the node id file could not be read or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeIdError {
    /// It could not be read or written.
    #[error(transparent)]
    KeyFile(#[from] crate::keyfile::KeyFileError),
    /// It holds something else than a node id.
    #[error(
        "{}: not a provmesh node id ({NODE_ID_HEX_LEN} lowercase hex digits); restore it or \
         delete it to give the node a new SPIFFE ID",
        path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
    },
}

/// Why [`Identity::open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenIdentityError {
    /// The dev CA could not be opened or created.
    #[error("cannot open the dev CA in {}: {source}", dir.display())]
    DevCa {
        /// Its directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// The node id could not be read or created.
    #[error("cannot read or create the node id: {0}")]
    NodeId(#[from] NodeIdError),
    /// The dev CA refused the node's SVID.
    #[error("the dev CA cannot issue the node's X.509-SVID {id}: {source}")]
    NodeSvid {
        /// The node's SPIFFE ID.
        id: SpiffeId,
        /// Why.
        #[source]
        source: IssueX509Error,
    },
    /// The Workload API endpoint could not be chosen or did not deliver.
    #[error(transparent)]
    Spire(#[from] ConnectError),
}

/// Why a JWT-SVID was not obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtSvidFetchError {
    /// The requested SPIFFE ID is not in the node's trust domain.
    #[error("{id} is not in this node's trust domain {trust_domain}")]
    ForeignTrustDomain {
        /// The requested ID.
        id: SpiffeId,
        /// `node.trust_domain`.
        trust_domain: TrustDomain,
    },
    /// The dev CA refused.
    #[error(transparent)]
    Dev(#[from] IssueJwtError),
    /// The agent did not deliver.
    #[error(transparent)]
    Spire(#[from] FetchJwtError),
}

/// Why the [`IdentityTask`] ended before shutdown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityTaskError {
    /// The dev CA kept failing to renew the node's SVID until it expired.
    #[error("the dev CA could not renew the node's X.509-SVID {id} before it expired: {source}")]
    Renewal {
        /// The node's SPIFFE ID.
        id: SpiffeId,
        /// The last failure.
        #[source]
        source: IssueX509Error,
    },
    /// The Workload API source stopped following the agent.
    #[error("the SPIFFE Workload API source at {endpoint} stopped: {source}")]
    SourceClosed {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: UpdatesClosed,
    },
}

/// Keeps an [`Identity`]'s channels current: renews the dev SVID, or follows the agent's
/// pushes. Run it (the node spawns it into its supervised tasks); it returns `Ok` once the
/// shutdown signal fires. Dropping it closes the channels.
#[must_use = "an identity task does nothing unless polled: spawn it"]
pub struct IdentityTask {
    inner: Pin<Box<dyn Future<Output = Result<(), IdentityTaskError>> + Send>>,
}

impl fmt::Debug for IdentityTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityTask").finish_non_exhaustive()
    }
}

impl Future for IdentityTask {
    type Output = Result<(), IdentityTaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

/// Who issues for an [`Identity`].
#[derive(Debug, Clone)]
enum Issuer {
    /// The embedded dev CA.
    Dev {
        ca: Arc<DevCa>,
        jwt_validity: Duration,
    },
    /// The SPIRE agent.
    Spire(WorkloadApiSource),
}

/// The node's SPIFFE identity: its X.509-SVID and trust bundle, each followed live, and
/// JWT-SVIDs on request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Identity {
    trust_domain: TrustDomain,
    svid: watch::Receiver<Arc<NodeSvid>>,
    bundle: watch::Receiver<Arc<TrustBundle>>,
    issuer: Issuer,
}

impl Identity {
    /// Opens the identity source `config.identity` names (see the module documentation)
    /// with default [`OpenOptions`]: the dev CA and the node's first SVID, or the first SVID
    /// and bundles from the Workload API within `identity.startup_timeout`. The returned
    /// task keeps the identity current until `shutdown` fires.
    pub async fn open(
        config: &Config,
        shutdown: Shutdown,
    ) -> Result<(Identity, IdentityTask), OpenIdentityError> {
        Identity::open_with(config, &OpenOptions::default(), shutdown).await
    }

    /// [`Identity::open`] with explicit options.
    pub async fn open_with(
        config: &Config,
        options: &OpenOptions,
        shutdown: Shutdown,
    ) -> Result<(Identity, IdentityTask), OpenIdentityError> {
        match config.identity.source {
            IdentitySourceKind::Dev => open_dev(config, options, shutdown),
            IdentitySourceKind::Spire => open_spire(config, shutdown).await,
        }
    }

    /// Which source issues.
    pub fn source_kind(&self) -> IdentitySourceKind {
        match self.issuer {
            Issuer::Dev { .. } => IdentitySourceKind::Dev,
            Issuer::Spire(_) => IdentitySourceKind::Spire,
        }
    }

    /// The node's trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The node's current X.509-SVID.
    pub fn svid(&self) -> Arc<NodeSvid> {
        Arc::clone(&self.svid.borrow())
    }

    /// The node's X.509-SVID, followed live: a new value on every rotation.
    pub fn svid_updates(&self) -> watch::Receiver<Arc<NodeSvid>> {
        self.svid.clone()
    }

    /// The trust domain's current bundle.
    pub fn bundle(&self) -> Arc<TrustBundle> {
        Arc::clone(&self.bundle.borrow())
    }

    /// The node's own trust domain's bundle, with its X.509 authorities and its JWT
    /// authorities, followed live: a new value whenever the source's keys change.
    pub fn bundle_updates(&self) -> watch::Receiver<Arc<TrustBundle>> {
        self.bundle.clone()
    }

    /// A JWT-SVID for `audience`, for `spiffe_id` or (when `None`) the node's own ID: the
    /// dev CA signs one, or the agent is asked (`FetchJWTSVID`, for its default identity
    /// when `None`). An ID outside the node's trust domain is refused.
    pub async fn jwt_svid(
        &self,
        spiffe_id: Option<&SpiffeId>,
        audience: &str,
    ) -> Result<String, JwtSvidFetchError> {
        if let Some(id) = spiffe_id
            && !id.member_of(&self.trust_domain)
        {
            return Err(JwtSvidFetchError::ForeignTrustDomain {
                id: id.clone(),
                trust_domain: self.trust_domain.clone(),
            });
        }
        match &self.issuer {
            Issuer::Dev { ca, jwt_validity } => {
                let own = self.svid.borrow().spiffe_id.clone();
                let id = spiffe_id.unwrap_or(&own);
                let validity = (*jwt_validity).min(ca.config().max_svid_validity);
                Ok(ca.issue_jwt_svid(id, &[audience.to_owned()], validity, SystemTime::now())?)
            }
            Issuer::Spire(source) => Ok(source.jwt_svid(spiffe_id, audience).await?),
        }
    }
}

/// Opens (or creates) the dev CA of `config`'s trust domain in `identity.dev_ca_dir`,
/// by default `<data_dir>/identity/`.
pub fn open_dev_ca(config: &Config, dev_ca: DevCaConfig) -> Result<DevCa, OpenIdentityError> {
    let dir = config
        .identity
        .dev_ca_dir
        .clone()
        .unwrap_or_else(|| identity_dir(&config.node.data_dir));
    DevCa::open(&dir, &config.node.trust_domain, dev_ca, SystemTime::now())
        .map_err(|source| OpenIdentityError::DevCa { dir, source })
}

/// The node id in `dir`, created on first use: 32 lowercase hex digits of random bits.
pub fn load_or_create_node_id(dir: &Path) -> Result<String, NodeIdError> {
    let path = dir.join(NODE_ID_FILE);
    let invalid = || NodeIdError::Invalid { path: path.clone() };
    match std::fs::read(&path) {
        Ok(bytes) => {
            // The file is written as the id and a newline; tolerate an editor's trailing
            // whitespace, nothing else.
            let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
            let id = text.trim_end();
            let well_formed = id.len() == NODE_ID_HEX_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if well_formed {
                Ok(id.to_owned())
            } else {
                Err(invalid())
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut random = [0u8; NODE_ID_HEX_LEN / 2];
            aws_lc_rs::rand::fill(&mut random).map_err(|_| crate::keyfile::KeyFileError::Random)?;
            let id = hex::encode(random);
            crate::keyfile::write_new_private(&path, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
        Err(source) => Err(crate::keyfile::KeyFileError::Io { path, source }.into()),
    }
}

/// The dev SPIFFE ID of the node with id `node_id`.
pub fn dev_node_spiffe_id(trust_domain: &TrustDomain, node_id: &str) -> Option<SpiffeId> {
    SpiffeId::new(trust_domain, &format!("{NODE_ID_PATH_PREFIX}{node_id}")).ok()
}

/// Converts a dev CA SVID issued with [`SubjectKey::Generate`].
fn node_svid_from_dev(svid: X509Svid) -> Result<NodeSvid, IssueX509Error> {
    let private_key_pkcs8 = svid
        .private_key_pkcs8
        .ok_or_else(|| IssueX509Error::Crypto("the dev CA returned no private key".into()))?;
    Ok(NodeSvid {
        spiffe_id: svid.spiffe_id,
        chain_der: svid.chain_der,
        private_key_pkcs8,
        not_after: svid.not_after,
    })
}

/// The dev source: the CA, the node's first SVID, and the renewal task.
fn open_dev(
    config: &Config,
    options: &OpenOptions,
    shutdown: Shutdown,
) -> Result<(Identity, IdentityTask), OpenIdentityError> {
    let ca = Arc::new(open_dev_ca(config, options.dev_ca.clone())?);
    let node_id = load_or_create_node_id(&identity_dir(&config.node.data_dir))?;
    let trust_domain = config.node.trust_domain.clone();
    // The authority speaks for its domain (it signs the domain's records) under the
    // domain's authority ID; every other node under its own node ID.
    let authority_id = config
        .authority
        .enabled
        .then(|| {
            config
                .federation
                .authority_id_of(&trust_domain, &trust_domain)
        })
        .flatten();
    let id = match authority_id {
        Some(id) => id,
        None => {
            dev_node_spiffe_id(&trust_domain, &node_id).ok_or_else(|| NodeIdError::Invalid {
                path: identity_dir(&config.node.data_dir).join(NODE_ID_FILE),
            })?
        }
    };
    let validity = options
        .node_svid_validity
        .unwrap_or(ca.config().max_svid_validity);
    let issued_at = SystemTime::now();
    let first = ca
        .issue_x509_svid(&id, SubjectKey::Generate, validity, issued_at)
        .and_then(node_svid_from_dev)
        .map_err(|source| OpenIdentityError::NodeSvid {
            id: id.clone(),
            source,
        })?;
    tracing::info!(spiffe_id = %id, "node X.509-SVID issued by the dev CA");
    let (svid_tx, svid_rx) = watch::channel(Arc::new(first));
    let (bundle_tx, bundle_rx) = watch::channel(Arc::new(ca.trust_bundle().clone()));
    let renewal = DevRenewal {
        ca: Arc::clone(&ca),
        id,
        validity,
        issued_at,
        svid_tx,
        bundle_tx,
    };
    let identity = Identity {
        trust_domain,
        svid: svid_rx,
        bundle: bundle_rx,
        issuer: Issuer::Dev {
            ca,
            jwt_validity: options.jwt_svid_validity,
        },
    };
    let task = IdentityTask {
        inner: Box::pin(renewal.run(shutdown)),
    };
    Ok((identity, task))
}

/// The dev source's renewal loop.
struct DevRenewal {
    ca: Arc<DevCa>,
    id: SpiffeId,
    validity: Duration,
    /// When the current SVID was issued.
    issued_at: SystemTime,
    svid_tx: watch::Sender<Arc<NodeSvid>>,
    /// Held so that consumers' receivers stay open until shutdown.
    bundle_tx: watch::Sender<Arc<TrustBundle>>,
}

impl DevRenewal {
    /// Renews the SVID at half its lifetime (SPIRE agents rotate X.509-SVIDs then); on a
    /// failure, retries with a growing wait until the current SVID expires.
    async fn run(mut self, shutdown: Shutdown) -> Result<(), IdentityTaskError> {
        let mut retry_wait = Duration::from_secs(1);
        let mut failing = false;
        loop {
            let not_after = self.svid_tx.borrow().not_after;
            let wait = if failing {
                retry_wait
            } else {
                let lifetime = not_after.duration_since(self.issued_at).unwrap_or_default();
                let renew_at = self.issued_at + lifetime / 2;
                renew_at
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .max(MIN_RENEWAL_WAIT)
            };
            tokio::select! {
                () = shutdown.triggered() => break,
                () = tokio::time::sleep(wait) => {}
            }
            let now = SystemTime::now();
            match self
                .ca
                .issue_x509_svid(&self.id, SubjectKey::Generate, self.validity, now)
                .and_then(node_svid_from_dev)
            {
                Ok(svid) => {
                    tracing::debug!(spiffe_id = %self.id, "node X.509-SVID renewed by the dev CA");
                    self.issued_at = now;
                    self.svid_tx.send_replace(Arc::new(svid));
                    failing = false;
                    retry_wait = Duration::from_secs(1);
                }
                Err(source) if now >= not_after => {
                    return Err(IdentityTaskError::Renewal {
                        id: self.id.clone(),
                        source,
                    });
                }
                Err(error) => {
                    tracing::warn!(spiffe_id = %self.id, %error, "cannot renew the node X.509-SVID; retrying");
                    failing = true;
                    retry_wait = (retry_wait * 2).min(MAX_RETRY_WAIT);
                }
            }
        }
        drop(self.bundle_tx);
        Ok(())
    }
}

/// The spire source: the endpoint, the first material, and the follower task.
async fn open_spire(
    config: &Config,
    shutdown: Shutdown,
) -> Result<(Identity, IdentityTask), OpenIdentityError> {
    let endpoint = resolve_endpoint(
        config.identity.workload_api_socket.as_deref(),
        std::env::var_os(ENDPOINT_SOCKET_ENV),
    )?;
    let trust_domain = config.node.trust_domain.clone();
    let connected =
        WorkloadApiSource::connect(&endpoint, &trust_domain, config.identity.startup_timeout)
            .await?;
    tracing::info!(
        spiffe_id = %connected.svid.spiffe_id,
        %endpoint,
        "node X.509-SVID obtained from the SPIFFE Workload API"
    );
    let (svid_tx, svid_rx) = watch::channel(Arc::new(connected.svid));
    let (bundle_tx, bundle_rx) = watch::channel(Arc::new(connected.bundle));
    let source = connected.source;
    let identity = Identity {
        trust_domain,
        svid: svid_rx,
        bundle: bundle_rx,
        issuer: Issuer::Spire(source.clone()),
    };
    let task = IdentityTask {
        inner: Box::pin(follow_agent(
            source,
            connected.updates,
            svid_tx,
            bundle_tx,
            shutdown,
        )),
    };
    Ok((identity, task))
}

/// Republishes what the agent pushes until shutdown, then stops the sources.
async fn follow_agent(
    source: WorkloadApiSource,
    mut updates: WorkloadApiUpdates,
    svid_tx: watch::Sender<Arc<NodeSvid>>,
    bundle_tx: watch::Sender<Arc<TrustBundle>>,
    shutdown: Shutdown,
) -> Result<(), IdentityTaskError> {
    let result = loop {
        tokio::select! {
            () = shutdown.triggered() => break Ok(()),
            next = updates.next() => {
                if let Err(source_error) = next {
                    // A closure during shutdown is the shutdown itself.
                    if shutdown.is_triggered() {
                        break Ok(());
                    }
                    break Err(IdentityTaskError::SourceClosed {
                        endpoint: source.endpoint().to_owned(),
                        source: source_error,
                    });
                }
            }
        }
        match source.node_svid() {
            Ok(svid) => {
                svid_tx.send_if_modified(|current| {
                    if **current == svid {
                        return false;
                    }
                    tracing::info!(spiffe_id = %svid.spiffe_id, "node X.509-SVID rotated by the agent");
                    *current = Arc::new(svid);
                    true
                });
            }
            Err(error) => {
                tracing::error!(endpoint = source.endpoint(), %error, "X.509-SVID update not taken; keeping the current SVID");
            }
        }
        match source.trust_bundle() {
            Ok(bundle) => {
                bundle_tx.send_if_modified(|current| {
                    if **current == bundle {
                        return false;
                    }
                    tracing::info!("trust bundle updated by the agent");
                    *current = Arc::new(bundle);
                    true
                });
            }
            Err(error) => {
                tracing::error!(endpoint = source.endpoint(), %error, "trust bundle update not taken; keeping the current bundle");
            }
        }
    };
    source.shutdown().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_id_is_created_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_node_id(dir.path()).unwrap();
        assert_eq!(first.len(), NODE_ID_HEX_LEN);
        assert!(
            first
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(load_or_create_node_id(dir.path()).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create_node_id(other.path()).unwrap(), first);
        let td = TrustDomain::parse("org-a.example").unwrap();
        assert_eq!(
            dev_node_spiffe_id(&td, &first).unwrap().as_str(),
            format!("spiffe://org-a.example/provmesh/node/{first}")
        );
    }

    #[test]
    fn a_damaged_node_id_is_refused_not_replaced() {
        for damaged in ["", "xyz", "0123456789ABCDEF0123456789ABCDEF", "00/0"] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(NODE_ID_FILE), damaged).unwrap();
            let err = load_or_create_node_id(dir.path()).unwrap_err();
            assert!(
                matches!(err, NodeIdError::Invalid { .. }),
                "{damaged:?}: {err}"
            );
            assert_eq!(
                std::fs::read_to_string(dir.path().join(NODE_ID_FILE)).unwrap(),
                damaged
            );
        }
    }

    #[test]
    fn a_node_svid_does_not_print_its_key() {
        let svid = NodeSvid {
            spiffe_id: SpiffeId::parse("spiffe://org-a.example/node").unwrap(),
            chain_der: vec![vec![1]],
            private_key_pkcs8: b"secret-key-bytes".to_vec(),
            not_after: SystemTime::UNIX_EPOCH,
        };
        let printed = format!("{svid:?}");
        assert!(printed.contains("spiffe://org-a.example/node"));
        assert!(!printed.contains("private_key"));
    }
}
