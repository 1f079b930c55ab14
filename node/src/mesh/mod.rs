//! The node's part in the mesh of all federated trust domains.
//!
//! * [`transport`]: the libp2p swarm (TCP and QUIC, Noise, yamux; gossipsub,
//!   request-response, Kademlia, identify) and the peer key.
//! * [`driver`]: the task owning the swarm and the protocol machines.
//! * [`publisher`]: the authority's domain records, and the witness key.
//! * [`handle`]: [`MeshHandle`], the bounded command channel to the task owning the swarm.
//! * [`store`]: the accepted domain records, durable across restarts.
//! * [`status`]: `provmesh mesh status`, the client of `provmesh.v1.MeshService`.
//! * [`bundle_endpoint`]: the SPIFFE bundle endpoint serving every accepted domain's
//!   bundle.

pub mod bundle_endpoint;
pub mod driver;
pub mod handle;
pub mod publisher;
pub mod status;
pub mod store;
pub mod transport;

pub use handle::{AcceptedBundles, FederatedLogs, MeshHandle, MeshStopped};

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use provmesh_protocol::federation::domain_record::SignedDomainRecord;
use provmesh_protocol::federation::registry::{DomainRegistry, FederatedDomain, RegistryConfig};
use provmesh_protocol::mesh::checkpoints::{CheckpointBook, CheckpointBookConfig, FollowPolicy};
use provmesh_protocol::mesh::peers::{PeerBook, PeerBookConfig};
use provmesh_protocol::spiffe::{TrustBundle, TrustDomain};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::identity::Identity;
use crate::log::LogHandle;
use crate::shutdown::Shutdown;
use driver::{MeshTask, MeshTaskError};
use publisher::{AuthorityKeys, RecordPublisher};
use store::{MeshStore, MeshStoreError};
use transport::TransportError;

/// The mesh directory under the data directory: the peer key and the store.
pub const MESH_DIR: &str = "mesh";
/// The peer key file in it.
pub const PEER_KEY_FILE: &str = "peer.key";
/// How long start-up waits for the swarm's listeners to report their addresses.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// gossipsub's heartbeat: mesh maintenance and gossip of message ids.
const GOSSIP_HEARTBEAT: Duration = Duration::from_millis(700);
/// The largest bootstrap bundle file read.
const MAX_BUNDLE_FILE_BYTES: usize = 1 << 20;

/// Why the mesh could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshStartError {
    /// The swarm could not be built.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] MeshStoreError),
    /// A listen address could not be bound.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The configured address.
        address: Multiaddr,
        /// What libp2p said.
        reason: String,
    },
    /// The listeners did not report their addresses in time.
    #[error("the mesh listeners did not come up within {0:?}")]
    ListenTimeout(Duration),
    /// A bootstrap bundle of `[[federation.domains]]` could not be read.
    #[error("federation bundle of {trust_domain} ({path}): {reason}")]
    Bundle {
        /// The domain.
        trust_domain: TrustDomain,
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The federation configuration is not usable.
    #[error("federation: {0}")]
    Federation(String),
    /// The mesh task could not be set up.
    #[error(transparent)]
    Task(#[from] MeshTaskError),
}

/// A started mesh: the handle, the addresses it listens on and the task to run.
pub struct StartedMesh {
    /// The handle for the rest of the node.
    pub handle: MeshHandle,
    /// Its listen addresses, each ending in `/p2p/<peer id>`.
    pub listen_addrs: Vec<Multiaddr>,
    /// The task owning the swarm; it ends on shutdown.
    pub task: std::pin::Pin<Box<dyn Future<Output = Result<(), MeshTaskError>> + Send>>,
}

fn read_bundle(
    trust_domain: &TrustDomain,
    path: &std::path::Path,
) -> Result<TrustBundle, MeshStartError> {
    let err = |reason: String| MeshStartError::Bundle {
        trust_domain: trust_domain.clone(),
        path: path.display().to_string(),
        reason,
    };
    let bytes = crate::bounded::read_file_at_most(path, MAX_BUNDLE_FILE_BYTES)
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err(format!("larger than {MAX_BUNDLE_FILE_BYTES} bytes")))?;
    TrustBundle::from_json_strict(&bytes).map_err(|e| err(e.to_string()))
}

/// The registry configuration: the own domain bootstrapped from the node's own bundle,
/// the others from their configured bundle files.
fn registry_config(config: &Config, identity: &Identity) -> Result<RegistryConfig, MeshStartError> {
    let own = &config.node.trust_domain;
    let authority_of = |td: &TrustDomain| {
        config
            .federation
            .authority_id_of(td, own)
            .ok_or_else(|| MeshStartError::Federation(format!("no authority ID for {td}")))
    };
    let mut domains = vec![FederatedDomain {
        trust_domain: own.clone(),
        authority_id: authority_of(own)?,
        bootstrap_bundle: (*identity.bundle()).clone(),
    }];
    for domain in &config.federation.domains {
        if domains
            .iter()
            .any(|d| d.trust_domain == domain.trust_domain)
        {
            return Err(MeshStartError::Federation(format!(
                "{} is listed twice (the own domain needs no [[federation.domains]] entry)",
                domain.trust_domain
            )));
        }
        domains.push(FederatedDomain {
            trust_domain: domain.trust_domain.clone(),
            authority_id: authority_of(&domain.trust_domain)?,
            bootstrap_bundle: read_bundle(&domain.trust_domain, &domain.bundle)?,
        });
    }
    Ok(RegistryConfig {
        max_clock_skew_secs: config.mesh.max_clock_skew.as_secs(),
        domains,
    })
}

/// Builds the swarm, binds its listeners, restores the accepted records and returns the
/// task that runs the mesh. `authority` holds the keys when this node is the authority;
/// the swarm's bandwidth counters register into `metrics`.
pub async fn start(
    config: &Config,
    identity: Identity,
    log: Option<LogHandle>,
    authority: Option<AuthorityKeys>,
    metrics: &mut prometheus_client::registry::Registry,
    shutdown: Shutdown,
) -> Result<StartedMesh, MeshStartError> {
    let dir = config.node.data_dir.join(MESH_DIR);
    let key = transport::load_or_create_peer_key(&dir.join(PEER_KEY_FILE))
        .map_err(TransportError::from)?;
    let peer_id = PeerId::from(key.public());
    let mut swarm = transport::build_swarm(key, GOSSIP_HEARTBEAT, metrics)?;

    let mut listeners = std::collections::HashSet::new();
    for address in &config.mesh.listen {
        let id = swarm
            .listen_on(address.clone())
            .map_err(|e| MeshStartError::Listen {
                address: address.clone(),
                reason: e.to_string(),
            })?;
        listeners.insert(id);
    }
    let mut listen_addrs = Vec::new();
    let wait = async {
        while !listeners.is_empty() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr {
                    listener_id,
                    address,
                } => {
                    listeners.remove(&listener_id);
                    listen_addrs.push(address.with(Protocol::P2p(peer_id)));
                }
                SwarmEvent::ListenerClosed {
                    addresses, reason, ..
                } => {
                    return Err(MeshStartError::Listen {
                        address: addresses.first().cloned().unwrap_or_else(Multiaddr::empty),
                        reason: format!("{reason:?}"),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    };
    tokio::time::timeout(LISTEN_TIMEOUT, wait)
        .await
        .map_err(|_| MeshStartError::ListenTimeout(LISTEN_TIMEOUT))??;

    for address in &config.mesh.bootstrap {
        if let Some(Protocol::P2p(peer)) = address.iter().last() {
            let mut dial_address = address.clone();
            dial_address.pop();
            swarm.behaviour_mut().kad.add_address(&peer, dial_address);
        }
        if let Err(e) = swarm.dial(address.clone()) {
            tracing::warn!(%address, error = %e, "cannot dial bootstrap peer");
        }
    }
    if !config.mesh.bootstrap.is_empty() {
        let _ = swarm.behaviour_mut().kad.bootstrap();
    }

    let now = crate::clock::now();
    let mut registry = DomainRegistry::new(registry_config(config, &identity)?)
        .map_err(|e| MeshStartError::Federation(e.to_string()))?;
    let store = MeshStore::open(&dir)?;
    let mut by_domain: BTreeMap<String, Vec<SignedDomainRecord>> = BTreeMap::new();
    for (domain, sequence, json) in store.records()? {
        match SignedDomainRecord::from_json(&json) {
            Ok(signed) => by_domain.entry(domain).or_default().push(signed),
            Err(e) => {
                tracing::error!(%domain, sequence, error = %e, "stored domain record unreadable")
            }
        }
    }
    for (domain, chain) in by_domain {
        if let Err(e) = registry.accept_chain(now, chain) {
            tracing::error!(%domain, error = %e.rejected, "stored domain records not accepted again");
        }
    }

    let checkpoint_config = CheckpointBookConfig {
        anti_entropy_interval: config.mesh.anti_entropy_interval,
        cosignature_clock_skew: config.mesh.max_clock_skew,
        seed: u64::from_le_bytes(
            peer_id.to_bytes()[peer_id.to_bytes().len().saturating_sub(8)..]
                .try_into()
                .unwrap_or_default(),
        ),
        ..CheckpointBookConfig::default()
    };
    let checkpoints = CheckpointBook::new(checkpoint_config, now);
    let peers = PeerBook::new(PeerBookConfig::default())
        .map_err(|e| MeshStartError::Federation(e.to_string()))?;
    let mut follow = FollowPolicy::new(config.node.trust_domain.clone());
    follow.configured_origins = config.mesh.follow.iter().cloned().collect();

    let (commands_tx, commands_rx) = mpsc::channel(handle::COMMAND_QUEUE);
    let (bundles_tx, bundles_rx) = watch::channel(Arc::new(BTreeMap::new()));
    let (logs_tx, logs_rx) = watch::channel(Arc::new(BTreeMap::new()));
    let publisher = authority.map(RecordPublisher::new);
    let equivocating_logs = prometheus_client::metrics::gauge::Gauge::default();
    metrics.register(
        "equivocating_logs",
        "Logs this node holds verified equivocation evidence against",
        equivocating_logs.clone(),
    );
    let mut task = MeshTask::new(
        swarm,
        registry,
        peers,
        checkpoints,
        follow,
        store,
        identity,
        log,
        publisher,
        commands_rx,
        commands_tx.clone(),
        bundles_tx,
        logs_tx,
        listen_addrs.clone(),
        config.mesh.node_record_lifetime,
        config.mesh.max_clock_skew.as_secs(),
    )?;
    task.set_equivocating_gauge(equivocating_logs);
    if let Some(domains) = &config.authority.read_scope.domains {
        task.set_read_scope(provmesh_protocol::provenance::ReadScope::only(
            domains.iter().cloned(),
        ));
    }
    tracing::info!(%peer_id, addresses = ?listen_addrs, "mesh listening");
    let handle = MeshHandle {
        commands: commands_tx,
        bundles: bundles_rx,
        logs: logs_rx,
    };
    Ok(StartedMesh {
        handle,
        listen_addrs,
        task: Box::pin(task.run(shutdown)),
    })
}
