//! Running a node: bind its listeners, start its tasks, report readiness, wait for a
//! stop request, and shut everything down within the grace period.
//!
//! The steps are separate so that tests drive them: [`Listeners::bind`] (a test binds
//! port 0), [`start`] (spawns the tasks and returns a [`RunningNode`] that knows its
//! bound addresses), [`RunningNode::run_until`] (any future can be the stop request).
//! Every capability a later change adds — swarm, store, gRPC — is one more listener
//! here and one more task spawned in [`start`], observing the same [`Shutdown`].

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use provmesh_protocol::log::quota::QuotaConfig;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::ca::{CaService, CaSettings};
use crate::config::Config;
use crate::identity::Identity;
use crate::shutdown::{self, DrainError, Shutdown, ShutdownTrigger, TaskError, Tasks};
use crate::telemetry::metrics::{self, Metrics};

/// The sockets a node listens on, bound before anything starts.
#[derive(Debug)]
#[non_exhaustive]
pub struct Listeners {
    /// The metrics server's listener; `None` when `[metrics] enabled = false`.
    pub metrics: Option<TcpListener>,
    /// The HTTP API's listener; `None` when disabled or when there is nothing to serve
    /// (it carries the authority's log).
    pub http: Option<TcpListener>,
    /// The gRPC API's listener; `None` when disabled or when there is nothing to serve.
    pub grpc: Option<TcpListener>,
    /// The CA's mTLS listener; `None` unless `authority.ca.mtls_listen` is set on an
    /// authority whose CA is enabled.
    pub mtls: Option<TcpListener>,
    /// The SPIFFE bundle endpoint's listener; `None` when the mesh or the endpoint is
    /// disabled.
    pub bundle_endpoint: Option<TcpListener>,
    /// The admission webhook's HTTPS listener; `None` unless `admission.listen` is set.
    pub admission: Option<TcpListener>,
}

impl Listeners {
    /// Binds every listener `config` asks for.
    pub async fn bind(config: &Config) -> Result<Self, RunError> {
        let metrics = if config.metrics.enabled {
            Some(bind("metrics", config.metrics.listen).await?)
        } else {
            None
        };
        let http = if config.http.enabled
            && (config.authority.enabled
                || config.node.authority_url.is_some()
                || config.admission.enabled)
        {
            Some(bind("http", config.http.listen).await?)
        } else {
            None
        };
        let grpc = if config.grpc.enabled && (config.authority.enabled || config.mesh.enabled) {
            Some(bind("grpc", config.grpc.listen).await?)
        } else {
            None
        };
        let mtls = match config.authority.ca.mtls_listen {
            Some(addr) if config.authority.enabled && config.authority.ca.enabled => {
                Some(bind("mtls", addr).await?)
            }
            _ => None,
        };
        let bundle_endpoint = if config.mesh.enabled && config.mesh.bundle_endpoint.enabled {
            Some(bind("bundle endpoint", config.mesh.bundle_endpoint.listen).await?)
        } else {
            None
        };
        let admission = match config.admission.listen {
            Some(addr) if config.admission.enabled => Some(bind("admission", addr).await?),
            _ => None,
        };
        Ok(Self {
            metrics,
            http,
            grpc,
            mtls,
            bundle_endpoint,
            admission,
        })
    }

    /// The addresses actually bound (port 0 resolved).
    pub fn addrs(&self) -> Result<BoundAddrs, RunError> {
        let metrics = self
            .metrics
            .as_ref()
            .map(|l| local_addr("metrics", l))
            .transpose()?;
        let http = self
            .http
            .as_ref()
            .map(|l| local_addr("http", l))
            .transpose()?;
        let grpc = self
            .grpc
            .as_ref()
            .map(|l| local_addr("grpc", l))
            .transpose()?;
        let mtls = self
            .mtls
            .as_ref()
            .map(|l| local_addr("mtls", l))
            .transpose()?;
        let bundle_endpoint = self
            .bundle_endpoint
            .as_ref()
            .map(|l| local_addr("bundle endpoint", l))
            .transpose()?;
        let admission = self
            .admission
            .as_ref()
            .map(|l| local_addr("admission", l))
            .transpose()?;
        Ok(BoundAddrs {
            metrics,
            http,
            grpc,
            mtls,
            bundle_endpoint,
            admission,
            mesh: Vec::new(),
        })
    }
}

async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind {
            listener,
            addr,
            source,
        })
}

fn local_addr(listener: &'static str, l: &TcpListener) -> Result<SocketAddr, RunError> {
    l.local_addr()
        .map_err(|source| RunError::LocalAddr { listener, source })
}

/// The addresses a running node listens on; the content of the `--ready-file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BoundAddrs {
    /// Where `/metrics` and `/healthz` are served, if enabled.
    pub metrics: Option<SocketAddr>,
    /// Where the HTTP API (Rekor v1 API and tiles of the domain log) is served, if it is.
    pub http: Option<SocketAddr>,
    /// Where the gRPC API is served, if it is.
    pub grpc: Option<SocketAddr>,
    /// Where the CA's mTLS listener is served, if it is.
    pub mtls: Option<SocketAddr>,
    /// Where the SPIFFE bundle endpoint is served, if it is.
    pub bundle_endpoint: Option<SocketAddr>,
    /// Where the admission webhook's HTTPS listener is, if there is one.
    pub admission: Option<SocketAddr>,
    /// The libp2p addresses of the mesh, each ending in `/p2p/<peer id>` (empty when the
    /// node is not in the mesh).
    pub mesh: Vec<String>,
}

/// Start-up inputs that come from the command line rather than the configuration.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StartOptions {
    /// The newest checkpoint published for this node's log before a restore (a signed
    /// note): the log refuses to sign until its store contains that tree.
    pub published_checkpoint: Option<Vec<u8>>,
}

/// A started node: its tasks are running and its listeners accept connections.
#[derive(Debug)]
pub struct RunningNode {
    addrs: BoundAddrs,
    trigger: ShutdownTrigger,
    tasks: Tasks,
    grace: Duration,
}

/// Creates the data directory, builds the metrics registry and spawns every task.
/// Must be called inside a tokio runtime.
pub async fn start(config: &Config, listeners: Listeners) -> Result<RunningNode, RunError> {
    start_with(config, listeners, StartOptions::default()).await
}

/// [`start`] with command-line inputs.
pub async fn start_with(
    config: &Config,
    listeners: Listeners,
    options: StartOptions,
) -> Result<RunningNode, RunError> {
    let mut addrs = listeners.addrs()?;
    let data_dir = &config.node.data_dir;
    tokio::fs::create_dir_all(data_dir)
        .await
        .map_err(|source| RunError::DataDir {
            path: data_dir.clone(),
            source,
        })?;

    let (trigger, shutdown) = shutdown::channel();
    let mut tasks = Tasks::new();
    let mut metrics = Metrics::new(Instant::now(), SystemTime::now());
    // Components are built here and register into `metrics.component("…")`; then the
    // registry is frozen and shared with the server.
    let (identity, identity_task) = Identity::open(config, shutdown.clone())
        .await
        .map_err(RunError::Identity)?;
    tasks.spawn("identity", identity_task);
    tracing::info!(
        spiffe_id = %identity.svid().spiffe_id,
        source = identity.source_kind().as_str(),
        "node identity ready"
    );
    let ca_keys = if config.authority.enabled && config.authority.ca.enabled {
        let dir = crate::ca::keys::ca_dir(data_dir);
        let keys = crate::ca::keys::load_or_create(&dir, &config.node.trust_domain)
            .map_err(RunError::Ca)?;
        if keys.created {
            tracing::info!(dir = %dir.display(), "created the domain's code-signing root");
        }
        Some(keys)
    } else {
        None
    };
    let own_roots: Vec<Vec<u8>> = ca_keys.iter().map(|k| k.root_der.clone()).collect();
    let ct_key: Option<Vec<u8>> = ca_keys
        .as_ref()
        .map(|k| k.issuer.ct_log_key().public_key_spki_der().to_vec());
    let log = if config.authority.enabled {
        let (handle, task) = crate::log::open(
            config,
            &own_roots,
            options.published_checkpoint,
            metrics.component("log"),
            shutdown.clone(),
        )
        .map_err(RunError::Log)?;
        tasks.spawn("transparency log", task);
        Some(handle)
    } else {
        None
    };
    // The provenance index of the domain's log, on the authority.
    let index = match &log {
        Some(log) => {
            let (handle, task) = crate::index::start(
                &data_dir.join("index"),
                log.clone(),
                config.node.trust_domain.clone(),
                config.authority.monitor.allowed_signers.clone(),
                metrics.component("index"),
                shutdown.clone(),
            )
            .map_err(RunError::Index)?;
            tasks.spawn("provenance index", task);
            Some(handle)
        }
        None => None,
    };
    let ca = match (ca_keys, &log) {
        (Some(keys), Some(log)) => {
            let settings = CaSettings {
                validity: config.authority.ca.certificate_validity,
                quota: QuotaConfig::per_minute(
                    config.authority.ca.quota_per_minute,
                    config.authority.ca.quota_burst,
                ),
            };
            Some(CaService::new(
                keys.issuer,
                identity.bundle_updates(),
                log.clone(),
                settings,
                metrics.component("ca"),
            ))
        }
        _ => None,
    };
    let mesh = if config.mesh.enabled {
        let authority = match &log {
            Some(log) => Some(authority_keys(config, log, own_roots.first(), ct_key)?),
            None => None,
        };
        let started = crate::mesh::start(
            config,
            identity.clone(),
            log.clone(),
            authority,
            metrics.component("mesh"),
            shutdown.clone(),
        )
        .await
        .map_err(RunError::Mesh)?;
        addrs.mesh = started
            .listen_addrs
            .iter()
            .map(ToString::to_string)
            .collect();
        tasks.spawn("mesh", started.task);
        Some(started.handle)
    } else {
        None
    };
    let metrics = Arc::new(metrics);
    if let (Some(listener), Some(addr), Some(mesh)) =
        (listeners.bundle_endpoint, addrs.bundle_endpoint, &mesh)
    {
        tasks.spawn(
            "bundle endpoint",
            crate::mesh::bundle_endpoint::serve(
                listener,
                identity.svid_updates(),
                mesh.bundles(),
                crate::mesh::bundle_endpoint::BundleEndpointConfig::default(),
                shutdown.clone(),
            ),
        );
        tracing::info!(%addr, "SPIFFE bundle endpoint listening");
    }

    if let (Some(listener), Some(addr)) = (listeners.grpc, addrs.grpc)
        && (log.is_some() || mesh.is_some())
    {
        let routes = crate::grpc::routes(
            log.clone(),
            mesh.clone(),
            index.clone(),
            Some(config.node.trust_domain.clone()),
            config.http.max_request_bytes,
        )
        .await
        .map_err(RunError::Grpc)?;
        tasks.spawn(
            "grpc server",
            crate::grpc::serve(listener, routes, shutdown.clone()),
        );
        tracing::info!(%addr, "grpc API listening");
    }
    if let (Some(listener), Some(addr), Some(ca)) = (listeners.mtls, addrs.mtls, &ca) {
        let tls = crate::ca::mtls::tls_config(identity.svid_updates()).map_err(RunError::Mtls)?;
        let router = crate::ca::http::router(ca.clone(), config.http.max_request_bytes);
        tasks.spawn(
            "ca mtls server",
            crate::ca::mtls::serve("mTLS CA", listener, tls, router, shutdown.clone()),
        );
        tracing::info!(%addr, "code-signing CA mTLS listening");
    }
    // The domain's witness, on the authority: the accepted domains' logs (from the mesh)
    // and the configured ones.
    let witness = if log.is_some() && config.authority.witness.enabled {
        let dir = crate::mesh::publisher::witness_dir(&config.node.data_dir);
        let signer =
            crate::mesh::publisher::load_or_create_witness_key(&dir, &config.node.trust_domain)
                .map_err(RunError::WitnessKey)?;
        let logs = crate::witness::WitnessedLogs {
            configured: crate::witness::configured_logs(&config.authority.witness),
            mesh: mesh.clone(),
        };
        let witness = crate::witness::start(&dir, signer, logs).map_err(RunError::Witness)?;
        // The mesh hands the witness every checkpoint of a witnessed log it adopts.
        if let Some(mesh) = &mesh {
            let _ = mesh.attach_witness(witness.clone()).await;
        }
        Some(witness)
    } else {
        None
    };
    // The admission webhook judges images as GetProvenance does, over the same sources.
    let admission = if config.admission.enabled && (log.is_some() || mesh.is_some()) {
        let provenance = crate::grpc::provenance::ProvenanceGrpc::new(
            log.clone(),
            mesh.clone(),
            index.clone(),
            config.node.trust_domain.clone(),
        );
        Some(Arc::new(
            crate::admission::Admission::new(
                provenance,
                config.admission.policy.as_deref(),
                config.admission.allow_tag_only,
            )
            .map_err(RunError::Admission)?,
        ))
    } else {
        if config.admission.enabled {
            tracing::warn!(
                "admission webhook not served: the node has neither a log nor the mesh to look images up in"
            );
        }
        None
    };
    let http_router = match (log, &config.node.authority_url) {
        (Some(log), _) => {
            let settings = crate::log::http::HttpSettings {
                max_request_bytes: config.http.max_request_bytes,
            };
            let mut router = crate::log::http::router(log, settings);
            if let Some(ca) = ca {
                router = router.merge(crate::ca::http::router(ca, config.http.max_request_bytes));
            }
            if let Some(witness) = witness {
                router = router.merge(crate::witness::http::router(witness));
            }
            Some(router)
        }
        (None, Some(authority_url)) => Some(
            crate::ca::forward::router(authority_url.clone(), config.http.max_request_bytes)
                .merge(crate::witness::http::forward_router(authority_url.clone())),
        ),
        (None, None) => None,
    };
    let http_router = match (http_router, &admission) {
        (router, Some(admission)) => {
            tracing::info!(path = crate::admission::PATH, "admission webhook enabled");
            Some(
                router
                    .unwrap_or_default()
                    .merge(crate::admission::router(Arc::clone(admission))),
            )
        }
        (router, None) => router,
    };
    if let (Some(listener), Some(addr), Some(admission)) =
        (listeners.admission, addrs.admission, &admission)
    {
        let (Some(cert), Some(key)) = (&config.admission.tls_cert, &config.admission.tls_key)
        else {
            return Err(RunError::Admission(crate::admission::AdmissionSetupError {
                path: "admission.listen".to_owned(),
                reason: "an HTTPS listener needs admission.tls_cert and admission.tls_key"
                    .to_owned(),
            }));
        };
        let tls = crate::admission::tls_config(cert, key).map_err(RunError::Admission)?;
        tasks.spawn(
            "admission https server",
            crate::ca::mtls::serve(
                "admission",
                listener,
                tls,
                crate::admission::router(Arc::clone(admission)),
                shutdown.clone(),
            ),
        );
        tracing::info!(%addr, "admission webhook listening (HTTPS)");
    }
    if let (Some(listener), Some(addr), Some(router)) = (listeners.http, addrs.http, http_router) {
        tasks.spawn(
            "http server",
            crate::log::http::serve(listener, router, shutdown.clone()),
        );
        tracing::info!(%addr, "http API listening");
    }

    if let (Some(listener), Some(addr)) = (listeners.metrics, addrs.metrics) {
        tasks.spawn(
            "metrics server",
            metrics::serve(listener, Arc::clone(&metrics), shutdown.clone()),
        );
        tracing::info!(%addr, "metrics endpoint listening");
    }

    tracing::info!(
        trust_domain = %config.node.trust_domain,
        data_dir = %data_dir.display(),
        version = env!("CARGO_PKG_VERSION"),
        "node started"
    );
    Ok(RunningNode {
        addrs,
        trigger,
        tasks,
        grace: config.shutdown.grace_period,
    })
}

/// The keys the authority publishes in its domain record.
fn authority_keys(
    config: &Config,
    log: &crate::log::LogHandle,
    code_signing_root: Option<&Vec<u8>>,
    ct_key: Option<Vec<u8>>,
) -> Result<crate::mesh::publisher::AuthorityKeys, RunError> {
    use provmesh_protocol::note::{Ed25519Verifier, KeyName, Verifier};
    let trust_domain = &config.node.trust_domain;
    let invalid = |reason: String| {
        RunError::WitnessKey(crate::keyfile::KeyFileError::Invalid {
            path: config.node.data_dir.clone(),
            what: "authority key",
            reason,
        })
    };
    let witness = crate::mesh::publisher::load_or_create_witness_key(
        &crate::mesh::publisher::witness_dir(&config.node.data_dir),
        trust_domain,
    )
    .map_err(RunError::WitnessKey)?;
    let log_origin = KeyName::new(log.origin()).map_err(|e| invalid(e.to_string()))?;
    let log_verifier = Ed25519Verifier::new(log_origin.clone(), &log.public_key())
        .map(Verifier::Ed25519)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(crate::mesh::publisher::AuthorityKeys {
        authority_id: config
            .federation
            .authority_id_of(trust_domain, trust_domain)
            .ok_or_else(|| invalid("no authority ID".to_owned()))?,
        log_origin,
        log_verifier,
        code_signing_root: code_signing_root.cloned(),
        ct_key,
        witness: witness.verifier(),
        http_url: None,
    })
}

impl RunningNode {
    /// The addresses the node listens on.
    pub fn addrs(&self) -> &BoundAddrs {
        &self.addrs
    }

    /// A new observer of this node's shutdown signal.
    pub fn shutdown(&self) -> Shutdown {
        self.trigger.subscribe()
    }

    /// Runs until `stop` resolves (its output names the reason in the log) or a task
    /// ends on its own; then signals shutdown and waits up to the grace period for
    /// every task to finish.
    pub async fn run_until<F, R>(mut self, stop: F) -> Result<(), RunError>
    where
        F: Future<Output = R>,
        R: Display,
    {
        let mut first_failure = None;
        tokio::select! {
            reason = stop => {
                tracing::info!(%reason, grace_period = ?self.grace, "shutting down");
            }
            // With no tasks (everything disabled) the node just waits for `stop`.
            Some(exit) = self.tasks.next_exit(), if !self.tasks.is_empty() => {
                let source = match exit.result {
                    Err(e) => e,
                    Ok(()) => "stopped unexpectedly".into(),
                };
                tracing::error!(task = exit.name, error = %source, "task ended; shutting down");
                first_failure = Some(RunError::Task { task: exit.name, source });
            }
        }
        self.trigger.trigger();
        let failed = self.tasks.drain(self.grace).await?;
        for exit in failed {
            if let Err(source) = exit.result {
                tracing::error!(task = exit.name, error = %source, "task failed during shutdown");
                first_failure.get_or_insert(RunError::Task {
                    task: exit.name,
                    source,
                });
            }
        }
        match first_failure {
            Some(e) => Err(e),
            None => {
                tracing::info!("shutdown complete");
                Ok(())
            }
        }
    }
}

/// Writes `addrs` (plus the process id) as JSON to `path`, atomically: readers see
/// either no file or the whole document.
pub fn write_ready_file(path: &Path, addrs: &BoundAddrs) -> Result<(), RunError> {
    #[derive(Serialize)]
    struct Ready<'a> {
        pid: u32,
        #[serde(flatten)]
        addrs: &'a BoundAddrs,
    }
    let err = |source| RunError::ReadyFile {
        path: path.to_owned(),
        source,
    };
    let mut json = serde_json::to_vec_pretty(&Ready {
        pid: std::process::id(),
        addrs,
    })
    .map_err(|e| err(std::io::Error::other(e)))?;
    json.push(b'\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, json).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Why a node failed to start or did not shut down cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A listener could not be bound.
    #[error("cannot listen for {listener} on {addr}: {source}")]
    Bind {
        /// Which listener.
        listener: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The address of a bound listener could not be read.
    #[error("cannot read the bound address of the {listener} listener: {source}")]
    LocalAddr {
        /// Which listener.
        listener: &'static str,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {}: {source}", path.display())]
    DataDir {
        /// The configured directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The node's SPIFFE identity could not be obtained.
    #[error("cannot obtain the node's SPIFFE identity: {0}")]
    Identity(#[source] crate::identity::OpenIdentityError),
    /// The code-signing CA's files could not be loaded or created.
    #[error("cannot start the code-signing CA: {0}")]
    Ca(#[source] crate::ca::keys::CaKeysError),
    /// The transparency log could not start.
    #[error("cannot start the transparency log: {0}")]
    Log(#[source] crate::log::OpenError),
    /// The TLS configuration of the CA's mTLS listener could not be built.
    #[error("cannot configure the code-signing CA's mTLS listener: {0}")]
    Mtls(#[source] crate::ca::mtls::MtlsConfigError),
    /// The mesh could not start.
    #[error("cannot join the mesh: {0}")]
    Mesh(#[source] crate::mesh::MeshStartError),
    /// The authority's witness key could not be loaded or created.
    #[error("cannot load the witness key: {0}")]
    WitnessKey(#[source] crate::keyfile::KeyFileError),
    /// The witness could not start.
    #[error("cannot start the witness: {0}")]
    Witness(#[source] crate::witness::store::WitnessStoreError),
    /// The gRPC services could not be built.
    #[error("cannot build the gRPC services: {0}")]
    Grpc(#[source] crate::grpc::RoutesError),
    /// The admission webhook's policy is unusable.
    #[error(transparent)]
    Admission(crate::admission::AdmissionSetupError),
    /// The provenance index could not be opened.
    #[error("provenance index: {0}")]
    Index(#[source] crate::index::IndexStoreError),
    /// The signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// The ready file could not be written.
    #[error("cannot write ready file {}: {source}", path.display())]
    ReadyFile {
        /// The requested path.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A task failed, or stopped while the node was running.
    #[error("task `{task}` failed: {source}")]
    Task {
        /// The task's name.
        task: &'static str,
        /// Why it ended.
        #[source]
        source: TaskError,
    },
    /// Tasks did not finish within the grace period.
    #[error(transparent)]
    Shutdown(#[from] DrainError),
    /// A second stop signal arrived while the node was shutting down.
    #[error("{signal} received again during shutdown; stopped without waiting for tasks")]
    Forced {
        /// The second signal.
        signal: shutdown::StopSignal,
    },
}
