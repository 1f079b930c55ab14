//! The node's configuration file: its schema, its defaults, and every check a value
//! must pass before anything starts.
//!
//! A configuration is one TOML file. Every table rejects unknown keys
//! (`deny_unknown_fields`), every value is validated while it is deserialised (socket
//! addresses parse, durations are positive, the trust domain follows the SPIFFE-ID
//! standard), and a failure is reported as a [`ConfigError`] that names the dotted key
//! (`metrics.listen`), its line and column, and shows the offending line.
//!
//! [`Config::default()`] is the configuration `provmesh config default` prints (see
//! [`default_toml`]); the two are kept equal by a test, and every key is documented in
//! `docs/configuration.md`, which a test checks too.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use provmesh_protocol::spiffe::TrustDomain;
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `[node]`: who this node is and where it keeps its state.
    pub node: NodeConfig,
    /// `[log]`: what is logged and how.
    #[serde(default)]
    pub log: LogConfig,
    /// `[metrics]`: the Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[shutdown]`: how the node stops.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// `[http]`: the node's HTTP API.
    #[serde(default)]
    pub http: HttpConfig,
    /// `[grpc]`: the node's gRPC API.
    #[serde(default)]
    pub grpc: GrpcConfig,
    /// `[identity]`: where the node's SPIFFE identity comes from.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// `[authority]`: the domain services this node runs when it is its domain's authority.
    #[serde(default)]
    pub authority: AuthorityConfig,
    /// `[mesh]`: the peer-to-peer mesh of all federated domains.
    #[serde(default)]
    pub mesh: MeshConfig,
    /// `[federation]`: the trust domains this node federates with.
    #[serde(default)]
    pub federation: FederationConfig,
    /// `[admission]`: the Kubernetes admission webhook.
    #[serde(default)]
    pub admission: AdmissionConfig,
}

/// `[admission]`: a Kubernetes `ValidatingAdmissionWebhook` on the HTTP API
/// (`POST /admission/v1/validate`): every image a Pod or workload runs is looked up and
/// judged under the policy; an image without a digest is denied unless allowed here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AdmissionConfig {
    /// Whether the node serves the webhook (it needs the HTTP API and the gRPC
    /// provenance service's sources: a log, or the mesh).
    pub enabled: bool,
    /// The policy file (TOML, docs/policy.md); unset: the empty policy, which denies
    /// only images whose records all come from logs proven to equivocate, or none.
    #[serde(deserialize_with = "de_optional_path")]
    pub policy: Option<PathBuf>,
    /// Admit images named by a tag alone (not recommended: a tag can be moved after
    /// admission, and the kubelet pulls whatever it names then).
    pub allow_tag_only: bool,
    /// Socket address (`IP:PORT`) of an HTTPS listener serving the webhook alone, as the
    /// API server requires; needs `tls_cert` and `tls_key`. Unset: the webhook is on the
    /// plain HTTP API only.
    #[serde(deserialize_with = "de_optional_socket_addr")]
    pub listen: Option<SocketAddr>,
    /// The HTTPS listener's certificate chain, PEM (e.g. cert-manager's `tls.crt`);
    /// re-read when it changes.
    #[serde(deserialize_with = "de_optional_path")]
    pub tls_cert: Option<PathBuf>,
    /// The HTTPS listener's private key, PEM (`tls.key`); re-read when it changes.
    #[serde(deserialize_with = "de_optional_path")]
    pub tls_key: Option<PathBuf>,
}

/// `[mesh]`: the libp2p swarm (TCP and QUIC, Noise, yamux; gossipsub, request-response,
/// Kademlia, identify) through which nodes of all federated domains exchange domain
/// records and checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MeshConfig {
    /// Whether the node joins the mesh.
    pub enabled: bool,
    /// libp2p addresses to listen on (`/ip4/…/tcp/PORT`, `/ip4/…/udp/PORT/quic-v1`); port
    /// 0 picks a free port.
    #[serde(deserialize_with = "de_multiaddrs")]
    pub listen: Vec<libp2p::Multiaddr>,
    /// Peers to dial at start: libp2p addresses, ending in `/p2p/<peer id>` to pin the
    /// peer's libp2p key, or not (e.g. a Kubernetes Service name, whose peer id is not
    /// known in advance): a peer is trusted by the node record it presents, not its key.
    #[serde(deserialize_with = "de_multiaddrs")]
    pub bootstrap: Vec<libp2p::Multiaddr>,
    /// How often the node exchanges its latest checkpoints and record sequences with a
    /// random peer, repairing what gossip missed.
    #[serde(deserialize_with = "de_duration")]
    pub anti_entropy_interval: Duration,
    /// Lifetime of the node record binding this node's peer id to its SPIFFE ID (never
    /// beyond its X.509-SVID; re-issued at half its life and on SVID rotation).
    #[serde(deserialize_with = "de_duration")]
    pub node_record_lifetime: Duration,
    /// How far a peer's clock may run ahead of this node's for a record it signed, and a
    /// witness's for a cosignature.
    #[serde(deserialize_with = "de_duration")]
    pub max_clock_skew: Duration,
    /// Origins of further logs to follow, beyond those of the own domain (in a small
    /// federation every log is followed anyway).
    pub follow: Vec<String>,
    /// `[mesh.bundle_endpoint]`: the SPIFFE bundle endpoint.
    pub bundle_endpoint: BundleEndpointConfig,
}

/// `[mesh.bundle_endpoint]`: serves every accepted trust domain's SPIFFE bundle
/// (SPIFFE Federation, `https_spiffe` profile, authenticated by this node's X.509-SVID).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BundleEndpointConfig {
    /// Whether the endpoint is served.
    pub enabled: bool,
    /// Socket address (`IP:PORT`) it listens on; port 0 picks a free port.
    #[serde(deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
}

/// `[federation]`: the trust domains this node federates with. Its own domain is always
/// federated, bootstrapped from the node's own trust bundle.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct FederationConfig {
    /// The SPIFFE ID of this domain's authority, the only identity whose domain records
    /// are accepted; default `spiffe://<trust domain>/provmesh/authority`. With the dev
    /// identity source the authority node gets this ID.
    #[serde(deserialize_with = "de_optional_spiffe_id")]
    pub authority_id: Option<provmesh_protocol::spiffe::SpiffeId>,
    /// `[[federation.domains]]`: the other domains, each with its bootstrap bundle.
    pub domains: Vec<FederatedDomainConfig>,
}

/// `[[federation.domains]]`: one federated trust domain, introduced out of band as in
/// SPIFFE federation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FederatedDomainConfig {
    /// The trust domain.
    #[serde(deserialize_with = "de_trust_domain")]
    pub trust_domain: TrustDomain,
    /// Its SPIFFE bundle (JSON, as `provmesh identity issue` or a SPIRE server's
    /// `bundle show -format spiffe` writes it): the first domain record must be signed
    /// under it.
    #[serde(deserialize_with = "de_path")]
    pub bundle: PathBuf,
    /// Its authority's SPIFFE ID; default `spiffe://<trust domain>/provmesh/authority`.
    #[serde(default, deserialize_with = "de_optional_spiffe_id")]
    pub authority_id: Option<provmesh_protocol::spiffe::SpiffeId>,
}

/// `[identity]`: the source of the node's SPIFFE identity and trust bundle.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct IdentityConfig {
    /// Where SVIDs and bundles come from.
    pub source: IdentitySourceKind,
    /// The SPIFFE Workload API endpoint (`unix:///path` or `unix:/path`) for
    /// `source = "spire"`; when unset, the `SPIFFE_ENDPOINT_SOCKET` environment variable.
    pub workload_api_socket: Option<String>,
    /// How long start-up waits for the first SVID and bundle before failing.
    #[serde(deserialize_with = "de_duration")]
    pub startup_timeout: Duration,
    /// The dev CA's directory for `source = "dev"`; default `<data_dir>/identity`. Nodes
    /// of one domain on one machine share their authority's to share one dev CA.
    #[serde(deserialize_with = "de_optional_path")]
    pub dev_ca_dir: Option<PathBuf>,
}

/// Where a node's SPIFFE identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum IdentitySourceKind {
    /// The embedded per-domain dev CA under `<data_dir>/identity/` (no SPIRE needed).
    #[default]
    Dev,
    /// The SPIFFE Workload API of a local SPIRE agent.
    Spire,
}

impl IdentitySourceKind {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Spire => "spire",
        }
    }
}

/// `[http]`: the HTTP API (the domain log's Rekor v1 API and C2SP tiles).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Whether the HTTP API is served.
    pub enabled: bool,
    /// Socket address (`IP:PORT`) it listens on; port 0 picks a free port.
    #[serde(deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
    /// The largest request body accepted, in bytes; larger requests get 413.
    #[serde(deserialize_with = "de_positive")]
    pub max_request_bytes: usize,
}

/// `[grpc]`: the gRPC API (`provmesh.v1`; the authority's `LogService`), with
/// `grpc.health.v1` and server reflection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct GrpcConfig {
    /// Whether the gRPC API is served.
    pub enabled: bool,
    /// Socket address (`IP:PORT`) it listens on; port 0 picks a free port.
    #[serde(deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
}

/// `[authority]`: whether this node is its trust domain's authority, and its services.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AuthorityConfig {
    /// Whether this node runs its domain's authority services (the transparency log).
    /// Exactly one node per trust domain should.
    pub enabled: bool,
    /// `[authority.log]`: the domain's transparency log.
    pub log: TransparencyLogConfig,
    /// `[authority.ca]`: the domain's code-signing CA.
    pub ca: CodeSigningCaConfig,
    /// `[authority.witness]`: the domain's witness.
    pub witness: WitnessConfig,
    /// `[authority.monitor]`: identity monitoring of the domain's log.
    pub monitor: MonitorConfig,
    /// `[authority.read_scope]`: which federated domains may fetch the log's records.
    pub read_scope: ReadScopeConfig,
}

/// `[authority.read_scope]`: which federated domains' nodes the authority serves its
/// log's records to over the mesh (provenance lookups). The domain's own nodes always
/// get them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ReadScopeConfig {
    /// The trust domains allowed; unset (the default): every federated domain; empty:
    /// the own domain only.
    #[serde(deserialize_with = "de_optional_trust_domains")]
    pub domains: Option<Vec<TrustDomain>>,
}

fn de_optional_trust_domains<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<TrustDomain>>, D::Error> {
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .map(|s| {
            TrustDomain::parse(s)
                .map_err(|e| D::Error::custom(format!("invalid trust domain {s:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `[authority.monitor]`: identity monitoring. Every entry of the domain's log is checked,
/// as it is indexed, against the identities allowed to sign for the domain; an entry
/// signed by any other raises an alert (a warning in the node's log, the
/// `provmesh_index_identity_alerts_total` metric, the `WatchAlerts` gRPC stream).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MonitorConfig {
    /// The SPIFFE IDs allowed to sign, exact or a prefix ending in `*`; empty (the
    /// default): every identity the CA certified.
    #[serde(deserialize_with = "de_signer_patterns")]
    pub allowed_signers: Vec<provmesh_protocol::policy::Pattern>,
}

fn de_signer_patterns<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<provmesh_protocol::policy::Pattern>, D::Error> {
    use provmesh_protocol::policy::Pattern;
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .map(|s| match Pattern::parse(s) {
            Pattern::Prefix(prefix) if prefix.starts_with("spiffe://") => {
                Ok(Pattern::Prefix(prefix))
            }
            Pattern::Exact(id) if provmesh_protocol::spiffe::SpiffeId::parse(&id).is_ok() => {
                Ok(Pattern::Exact(id))
            }
            _ => Err(D::Error::custom(format!(
                "{s:?} is neither a SPIFFE ID nor a prefix of one ending in * \
                 (e.g. \"spiffe://org-a.example/ci/*\")"
            ))),
        })
        .collect()
}

/// `[authority.witness]`: the domain's witness, cosigning other logs' checkpoints over
/// C2SP tlog-witness (`POST /add-checkpoint` on the HTTP API) with the domain's witness
/// key. It witnesses the log of every federated domain, and the logs listed here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct WitnessConfig {
    /// Whether the authority serves `POST /add-checkpoint`.
    pub enabled: bool,
    /// `[[authority.witness.logs]]`: logs outside the mesh to witness.
    pub logs: Vec<WitnessedLogConfig>,
}

impl Default for WitnessConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            logs: Vec::new(),
        }
    }
}

/// `[[authority.witness.logs]]`: a log outside the mesh (any C2SP log, e.g. a Rekor v2
/// shard) to witness, by its origin and verifier key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WitnessedLogConfig {
    /// The log's origin: the first line of its checkpoints.
    pub origin: String,
    /// Its signed-note verifier key, `<name>+<key id>+<base64 type and key>`.
    #[serde(deserialize_with = "de_note_verifier")]
    pub key: provmesh_protocol::note::Verifier,
}

fn de_note_verifier<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<provmesh_protocol::note::Verifier, D::Error> {
    let s = de_string(
        d,
        "a signed-note verifier key such as \"log.example.org+1a2b3c4d+AQ…\"",
    )?;
    provmesh_protocol::note::Verifier::from_vkey(&s)
        .map_err(|e| D::Error::custom(format!("invalid verifier key {s:?}: {e}")))
}

/// `[authority.ca]`: the domain's Fulcio-style code-signing CA.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CodeSigningCaConfig {
    /// Whether the authority issues code-signing certificates.
    pub enabled: bool,
    /// Lifetime of an issued certificate: at most 10 minutes.
    #[serde(deserialize_with = "de_certificate_validity")]
    pub certificate_validity: Duration,
    /// Certificates one identity may obtain per minute, sustained; 0 turns the limit off.
    pub quota_per_minute: u32,
    /// Certificates an idle identity may obtain at once.
    pub quota_burst: u32,
    /// Socket address (`IP:PORT`) of the CA's mTLS listener, where a workload's X.509-SVID
    /// on the TLS connection is its credential; unset (the default): no mTLS listener.
    #[serde(deserialize_with = "de_optional_socket_addr")]
    pub mtls_listen: Option<SocketAddr>,
}

/// The longest code-signing certificate lifetime the CA issues (Fulcio's: 10 minutes).
pub const MAX_CERTIFICATE_VALIDITY: Duration = Duration::from_secs(600);

/// `[authority.log]`: the domain's transparency log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TransparencyLogConfig {
    /// The log's origin: the first line of its checkpoints and the name of its key.
    /// Defaults to `log.<trust domain>`. Persisted with the log: it never changes.
    #[serde(deserialize_with = "de_origin")]
    pub origin: Option<String>,
    /// PEM file with the code-signing root certificates (and intermediates) whose
    /// certificates may write to the log. Required when the authority is enabled.
    #[serde(deserialize_with = "de_optional_path")]
    pub code_signing_roots: Option<PathBuf>,
    /// A batch is committed as soon as it holds this many entries.
    #[serde(deserialize_with = "de_positive")]
    pub batch_max_entries: usize,
    /// ... or when its oldest entry has waited this long.
    #[serde(deserialize_with = "de_duration")]
    pub batch_max_delay: Duration,
    /// The most entries that may wait to become durable; more get 429.
    #[serde(deserialize_with = "de_positive")]
    pub max_pending_entries: usize,
    /// Sustained entries per second one signing identity may append; 0 turns quotas off.
    pub quota_per_second: u32,
    /// Entries an idle identity may append at once.
    pub quota_burst: u32,
}

/// `[node]`: identity and state of this node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeConfig {
    /// The SPIFFE trust domain this node belongs to. Required: a node in the wrong trust
    /// domain is worse than a node that does not start.
    #[serde(deserialize_with = "de_trust_domain")]
    pub trust_domain: TrustDomain,
    /// Directory for the node's persistent state, created at start if missing. A
    /// relative path is resolved against the working directory.
    #[serde(default = "default_data_dir", deserialize_with = "de_path")]
    pub data_dir: PathBuf,
    /// Base URL of this trust domain's authority (its HTTP API). A plain node forwards
    /// its workloads' certificate requests there (only those whose credential the
    /// authority verifies itself). Unset on the authority.
    #[serde(default, deserialize_with = "de_http_url")]
    pub authority_url: Option<String>,
}

/// `[log]`: log filter and output format.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LogConfig {
    /// Log filter in `RUST_LOG` syntax. `RUST_LOG` overrides it, `--log-level` overrides both.
    pub level: LogFilter,
    /// Output format. `--log-format` overrides it.
    pub format: LogFormat,
}

/// `[metrics]`: the Prometheus text endpoint (`/metrics`) and liveness probe (`/healthz`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Whether the endpoint is served at all.
    pub enabled: bool,
    /// Socket address (`IP:PORT`) the endpoint listens on; port 0 picks a free port.
    #[serde(deserialize_with = "de_socket_addr")]
    pub listen: SocketAddr,
}

/// `[shutdown]`: what happens after SIGINT or SIGTERM.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ShutdownConfig {
    /// How long running tasks get to finish after the shutdown signal before the node
    /// gives up on them and exits with an error.
    #[serde(deserialize_with = "de_duration")]
    pub grace_period: Duration,
}

/// The trust domain written by `provmesh config default`: a placeholder to replace.
pub const PLACEHOLDER_TRUST_DOMAIN: &str = "example.org";
/// Default of `node.data_dir`.
pub const DEFAULT_DATA_DIR: &str = "./provmesh-data";
/// Default of `metrics.listen`: loopback only, on the port conventionally used by
/// OpenTelemetry-style Prometheus exporters.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9464);
/// Default of `shutdown.grace_period`.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// Default of `log.level`.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Default of `http.listen`: loopback only.
pub const DEFAULT_HTTP_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// Default of `grpc.listen`: loopback only.
pub const DEFAULT_GRPC_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9090);
/// Default of `http.max_request_bytes` (1 MiB): far above any hashedrekord or DSSE entry
/// of a build attestation, far below what would let one request pin much memory.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;

fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}

impl Default for Config {
    /// The template configuration. Its trust domain is [`PLACEHOLDER_TRUST_DOMAIN`],
    /// which an operator is expected to replace.
    fn default() -> Self {
        Self {
            node: NodeConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            shutdown: ShutdownConfig::default(),
            http: HttpConfig::default(),
            grpc: GrpcConfig::default(),
            identity: IdentityConfig::default(),
            authority: AuthorityConfig::default(),
            mesh: MeshConfig::default(),
            federation: FederationConfig::default(),
            admission: AdmissionConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_HTTP_LISTEN,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_GRPC_LISTEN,
        }
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            source: IdentitySourceKind::Dev,
            workload_api_socket: None,
            startup_timeout: Duration::from_secs(10),
            dev_ca_dir: None,
        }
    }
}

/// Default of `mesh.listen`: TCP and QUIC on port 4001 of every interface (the mesh is
/// how other domains reach this node; peers are authenticated by Noise and node records).
pub const DEFAULT_MESH_LISTEN: [&str; 2] =
    ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"];
/// Default of `mesh.bundle_endpoint.listen`: loopback only, like the other APIs.
pub const DEFAULT_BUNDLE_ENDPOINT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);
/// The path of a domain's default authority SPIFFE ID.
pub const DEFAULT_AUTHORITY_PATH: &str = "/provmesh/authority";

impl Default for MeshConfig {
    #[allow(clippy::expect_used)] // constants, checked by `default_toml_parses_to_default`
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_MESH_LISTEN
                .iter()
                .map(|a| a.parse().expect("the default listen addresses parse"))
                .collect(),
            bootstrap: Vec::new(),
            anti_entropy_interval: Duration::from_secs(10),
            node_record_lifetime: Duration::from_secs(30 * 60),
            max_clock_skew: Duration::from_secs(60),
            follow: Vec::new(),
            bundle_endpoint: BundleEndpointConfig::default(),
        }
    }
}

impl Default for BundleEndpointConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_BUNDLE_ENDPOINT_LISTEN,
        }
    }
}

impl FederationConfig {
    /// The authority ID of `trust_domain` (this node's own when it is `own`): configured,
    /// or `spiffe://<trust domain>/provmesh/authority`.
    pub fn authority_id_of(
        &self,
        trust_domain: &TrustDomain,
        own: &TrustDomain,
    ) -> Option<provmesh_protocol::spiffe::SpiffeId> {
        let configured = if trust_domain == own {
            self.authority_id.clone()
        } else {
            self.domains
                .iter()
                .find(|d| &d.trust_domain == trust_domain)
                .and_then(|d| d.authority_id.clone())
        };
        configured.or_else(|| {
            provmesh_protocol::spiffe::SpiffeId::new(trust_domain, DEFAULT_AUTHORITY_PATH).ok()
        })
    }
}

impl Default for CodeSigningCaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            certificate_validity: MAX_CERTIFICATE_VALIDITY,
            quota_per_minute: 60,
            quota_burst: 30,
            mtls_listen: None,
        }
    }
}

impl Default for TransparencyLogConfig {
    fn default() -> Self {
        Self {
            origin: None,
            code_signing_roots: None,
            batch_max_entries: 256,
            batch_max_delay: Duration::from_millis(250),
            max_pending_entries: 16_384,
            quota_per_second: 50,
            quota_burst: 500,
        }
    }
}

impl TransparencyLogConfig {
    /// The origin in effect: the configured one, or `log.<trust domain>`.
    pub fn origin_for(&self, trust_domain: &TrustDomain) -> String {
        self.origin
            .clone()
            .unwrap_or_else(|| format!("log.{}", trust_domain.as_str()))
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            trust_domain: placeholder_trust_domain(),
            data_dir: default_data_dir(),
            authority_url: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: LogFilter::default(),
            format: LogFormat::Human,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_METRICS_LISTEN,
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            grace_period: DEFAULT_GRACE_PERIOD,
        }
    }
}

#[allow(clippy::expect_used)] // a constant, checked by the `placeholder_is_valid` test
fn placeholder_trust_domain() -> TrustDomain {
    TrustDomain::parse(PLACEHOLDER_TRUST_DOMAIN).expect("the placeholder trust domain is valid")
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    /// The name used in the config file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A log filter in `RUST_LOG` syntax (`info`, `warn,provmesh_node=debug`), checked to
/// parse when it is constructed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter(String);

impl LogFilter {
    /// Checks `directives` as a `tracing_subscriber::EnvFilter` would parse them.
    pub fn parse(directives: &str) -> Result<Self, LogFilterError> {
        if directives.trim().is_empty() {
            return Err(LogFilterError::Empty);
        }
        tracing_subscriber::EnvFilter::builder()
            .parse(directives)
            .map_err(|e| LogFilterError::Invalid {
                directives: directives.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self(directives.to_owned()))
    }

    /// The directives as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a log filter was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogFilterError {
    /// The filter is empty.
    #[error("empty log filter (write e.g. \"info\")")]
    Empty,
    /// The filter does not parse.
    #[error("invalid log filter {directives:?}: {reason}")]
    Invalid {
        /// The filter as written.
        directives: String,
        /// What the parser said.
        reason: String,
    },
}

impl Default for LogFilter {
    fn default() -> Self {
        Self(DEFAULT_LOG_LEVEL.to_owned())
    }
}

impl fmt::Display for LogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LogFilter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = de_string(d, "a log filter string such as \"info\"")?;
        Self::parse(&s).map_err(D::Error::custom)
    }
}

/// Deserialises a string, saying what it should contain when the type is wrong
/// (`expected a duration such as "10s"` rather than `expected a string`).
fn de_string<'de, D: Deserializer<'de>>(d: D, expecting: &'static str) -> Result<String, D::Error> {
    struct StringVisitor(&'static str);
    impl serde::de::Visitor<'_> for StringVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }
    d.deserialize_str(StringVisitor(expecting))
}

fn de_trust_domain<'de, D: Deserializer<'de>>(d: D) -> Result<TrustDomain, D::Error> {
    let s = de_string(d, "a trust domain string such as \"org-a.example\"")?;
    TrustDomain::parse(&s).map_err(|e| D::Error::custom(format!("invalid trust domain {s:?}: {e}")))
}

fn de_socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = de_string(d, "a socket address string such as \"127.0.0.1:9464\"")?;
    s.parse().map_err(|e| {
        D::Error::custom(format!(
            "invalid socket address {s:?}: {e} (expected IP:PORT such as \"127.0.0.1:9464\" or \"[::1]:9464\")"
        ))
    })
}

fn de_optional_socket_addr<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    de_socket_addr(d).map(Some)
}

fn de_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let s = de_string(d, "a path string")?;
    if s.trim().is_empty() {
        return Err(D::Error::custom("empty path"));
    }
    Ok(PathBuf::from(s))
}

fn de_positive<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = u64::deserialize(d)?;
    if n == 0 {
        return Err(D::Error::custom("must be at least 1"));
    }
    usize::try_from(n).map_err(|_| D::Error::custom(format!("{n} is too large")))
}

fn de_multiaddrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<libp2p::Multiaddr>, D::Error> {
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .map(|s| {
            s.parse().map_err(|e| {
                D::Error::custom(format!(
                    "invalid libp2p address {s:?}: {e} (expected e.g. \"/ip4/0.0.0.0/tcp/4001\")"
                ))
            })
        })
        .collect()
}

fn de_optional_spiffe_id<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<provmesh_protocol::spiffe::SpiffeId>, D::Error> {
    let s = de_string(
        d,
        "a SPIFFE ID such as \"spiffe://org-a.example/provmesh/authority\"",
    )?;
    provmesh_protocol::spiffe::SpiffeId::parse(&s)
        .map(Some)
        .map_err(|e| D::Error::custom(format!("invalid SPIFFE ID {s:?}: {e}")))
}

fn de_optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    de_path(d).map(Some)
}

fn de_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = de_string(
        d,
        "an http:// or https:// URL such as \"http://authority:8080\"",
    )?;
    let url = reqwest::Url::parse(&s).map_err(|e| D::Error::custom(format!("{s:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(D::Error::custom(format!(
            "{s:?}: expected an http:// or https:// URL with a host"
        )));
    }
    Ok(Some(s.trim_end_matches('/').to_owned()))
}

fn de_origin<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = de_string(d, "a log origin string such as \"log.org-a.example\"")?;
    provmesh_protocol::note::KeyName::new(s.clone()).map_err(|e| {
        D::Error::custom(format!(
            "invalid log origin {s:?}: {e} (it is the checkpoint key name: no spaces or '+')"
        ))
    })?;
    Ok(Some(s))
}

fn de_certificate_validity<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let validity = de_duration(d)?;
    if validity.as_secs() < 1 || validity > MAX_CERTIFICATE_VALIDITY {
        return Err(D::Error::custom(format!(
            "must be between 1s and {} (short-lived certificates are the point)",
            format_duration(MAX_CERTIFICATE_VALIDITY)
        )));
    }
    Ok(validity)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = de_string(d, "a duration string such as \"10s\"")?;
    let duration = parse_duration(&s).map_err(D::Error::custom)?;
    if duration.is_zero() {
        return Err(D::Error::custom(format!("duration {s:?} must be positive")));
    }
    Ok(duration)
}

/// Why a duration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The text is not a sequence of `<integer><unit>` parts.
    #[error("invalid duration {0:?} (expected e.g. \"10s\", \"500ms\", \"1m30s\", \"2h\")")]
    Syntax(String),
    /// The duration does not fit in a `std::time::Duration`.
    #[error("duration {0:?} is too long")]
    TooLong(String),
}

/// Parses a duration written as a sequence of `<integer><unit>` parts with units `ms`,
/// `s`, `m` and `h`: `"10s"`, `"500ms"`, `"1m30s"`, `"2h"`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Syntax(s.to_owned());
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let (number, tail) = rest.split_at(digits);
        let number: u64 = number
            .parse()
            .map_err(|_| DurationError::TooLong(s.to_owned()))?;
        let unit_len = tail
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let part = match unit {
            "ms" => Some(Duration::from_millis(number)),
            "s" => Some(Duration::from_secs(number)),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            _ => return Err(invalid()),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| DurationError::TooLong(s.to_owned()))?;
        rest = tail;
    }
    Ok(total)
}

/// Writes a duration in the form [`parse_duration`] reads, e.g. `"1m30s"`. Sub-millisecond
/// parts are dropped.
pub fn format_duration(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms == 0 {
        return "0s".to_owned();
    }
    let (h, rest) = (total_ms / 3_600_000, total_ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1000, rest % 1000);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
        if value != 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    out
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| e.with_path(path))
    }

    /// Parses and validates a configuration from TOML text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text)
            .map_err(|e| ConfigError::Invalid(Box::new(InvalidConfig::new(text, &e))))
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error("{0}")]
    Invalid(Box<InvalidConfig>),
}

/// A configuration that failed to parse or validate, located in its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidConfig {
    /// The file, when the text came from one.
    pub path: Option<PathBuf>,
    /// The dotted key the error is about (`metrics.listen`), when it can be located.
    pub key: Option<String>,
    /// 1-based line and column of the offending text, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
    /// The offending source line with a caret underline, when known.
    pub snippet: Option<String>,
}

impl InvalidConfig {
    fn new(text: &str, error: &toml::de::Error) -> Self {
        let span = error.span();
        let key = span.as_ref().and_then(|s| key_path_at(text, s.clone()));
        let (position, snippet) = match span {
            Some(span) => {
                let (line, column, snippet) = locate(text, span);
                (Some((line, column)), Some(snippet))
            }
            None => (None, None),
        };
        Self {
            path: None,
            key,
            position,
            message: error.message().trim_end().to_owned(),
            snippet,
        }
    }
}

impl ConfigError {
    fn with_path(self, path: &Path) -> Self {
        match self {
            Self::Invalid(mut invalid) => {
                invalid.path = Some(path.to_owned());
                Self::Invalid(invalid)
            }
            other => other,
        }
    }
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration")?;
        if let Some(path) = &self.path {
            write!(f, " in {}", path.display())?;
        }
        if let Some((line, column)) = self.position {
            write!(f, " at line {line}, column {column}")?;
        }
        match &self.key {
            Some(key) => write!(f, ": `{key}`: {}", self.message)?,
            None => write!(f, ": {}", self.message)?,
        }
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidConfig {}

/// Finds the dotted key whose name or value covers byte offset `span.start`, by walking
/// the spanned document. For an unknown key the span is the key itself, for a bad value
/// it is the value; either way this names the key with its table. (A table's own span
/// covers only its header, so every entry is searched, not only those inside a match.)
fn key_path_at(text: &str, span: Range<usize>) -> Option<String> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    if !find_in_table(doc.get_ref(), span.start, &mut path) {
        return None;
    }
    let mut dotted = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(key) => {
                if !dotted.is_empty() {
                    dotted.push('.');
                }
                dotted.push_str(&key);
            }
            PathSegment::Index(i) => dotted.push_str(&format!("[{i}]")),
        }
    }
    Some(dotted)
}

/// One step of a key path: a table key or an array index.
enum PathSegment {
    Key(String),
    Index(usize),
}

fn find_in_table(table: &toml::de::DeTable<'_>, pos: usize, path: &mut Vec<PathSegment>) -> bool {
    for (key, value) in table.iter() {
        path.push(PathSegment::Key(key.get_ref().to_string()));
        if key.span().contains(&pos) || find_in_value(value, pos, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    pos: usize,
    path: &mut Vec<PathSegment>,
) -> bool {
    use toml::de::DeValue;
    let nested = match value.get_ref() {
        DeValue::Table(inner) => find_in_table(inner, pos, path),
        DeValue::Array(items) => items.iter().enumerate().any(|(i, item)| {
            path.push(PathSegment::Index(i));
            let found = find_in_value(item, pos, path);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    };
    nested || value.span().contains(&pos)
}

/// 1-based line and column of `span.start` in `text`, and the line with a caret underline.
fn locate(text: &str, span: Range<usize>) -> (usize, usize, String) {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_text = text[line_start..line_end].trim_end_matches('\r');
    let line_no = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let width = text
        .get(start..span.end.min(line_end))
        .map_or(1, |s| s.chars().count().max(1));
    let gutter = " ".repeat(line_no.to_string().len());
    let snippet = format!(
        "{gutter} |\n{line_no} | {line_text}\n{gutter} | {}{}",
        " ".repeat(column - 1),
        "^".repeat(width)
    );
    (line_no, column, snippet)
}

/// Quotes `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The complete, commented default configuration printed by `provmesh config default`.
/// It parses to [`Config::default()`].
pub fn default_toml() -> String {
    let d = Config::default();
    format!(
        r#"# provmesh node configuration.
#
# Every key is documented, with its default, in docs/configuration.md. Unknown keys are
# an error. Durations are written like "10s", "500ms", "1m30s" or "2h".

[node]
# SPIFFE trust domain of this node (required): lowercase letters, digits, '.', '-' and
# '_', as in the SPIFFE-ID standard. "{placeholder}" is a placeholder: replace it.
trust_domain = {trust_domain}
# Directory for the node's persistent state; created at start if missing. A relative
# path is resolved against the working directory.
data_dir = {data_dir}
# Base URL of this trust domain's authority. A plain node forwards its workloads'
# certificate requests there (the authority itself leaves it unset).
# authority_url = "http://provmesh-authority.provmesh.svc:8080"

[log]
# Log filter in RUST_LOG syntax, e.g. "info" or "info,provmesh_node=debug".
# The RUST_LOG environment variable overrides it; --log-level overrides both.
level = {level}
# "human" (one readable line per event) or "json" (one JSON object per line).
# --log-format overrides it.
format = {format}

[metrics]
# Serve Prometheus metrics at http://<listen>/metrics and a liveness probe at /healthz.
enabled = {enabled}
# IP:PORT to listen on. Port 0 picks a free port (see `provmesh run --ready-file`).
listen = {listen}

[shutdown]
# After SIGINT or SIGTERM, how long running tasks get to finish before the node stops
# waiting for them and exits with an error.
grace_period = {grace}

[http]
# Serve the HTTP API: the domain log's Rekor v1 API and C2SP tlog-tiles (authority only).
enabled = {http_enabled}
# IP:PORT to listen on. Port 0 picks a free port (see `provmesh run --ready-file`).
listen = {http_listen}
# Largest request body accepted, in bytes (413 beyond).
max_request_bytes = {max_request_bytes}

[grpc]
# Serve the gRPC API (provmesh.v1: the domain log's LogService on the authority), with
# grpc.health.v1 and server reflection. Messages are limited to http.max_request_bytes.
enabled = {grpc_enabled}
# IP:PORT to listen on. Port 0 picks a free port (see `provmesh run --ready-file`).
listen = {grpc_listen}

[identity]
# Where this node's SPIFFE identity comes from: "dev" (an embedded dev CA per trust
# domain under <data_dir>/identity, no SPIRE needed) or "spire" (the Workload API).
source = {identity_source}
# Workload API endpoint for source = "spire"; default: $SPIFFE_ENDPOINT_SOCKET.
# workload_api_socket = "unix:///run/spire/agent-sockets/spire-agent.sock"
# How long start-up waits for the first SVID and bundle before giving up.
startup_timeout = {startup_timeout}
# The dev CA's directory (source = "dev"); default <data_dir>/identity. Nodes of one
# domain on one machine point at their authority's to share its dev CA.
# dev_ca_dir = "/var/lib/provmesh-authority/identity"

[authority]
# Run this trust domain's authority services (transparency log, code-signing CA).
# One node per domain.
enabled = {authority_enabled}

[authority.ca]
# Issue short-lived code-signing certificates to workloads of this domain (Fulcio v2
# API: POST /api/v2/signingCert), chained to the domain's own code-signing root.
enabled = {ca_enabled}
# Lifetime of an issued certificate (at most 10m).
certificate_validity = {certificate_validity}
# Per identity: sustained certificates per minute (0 = no limit) and burst.
quota_per_minute = {ca_quota_per_minute}
quota_burst = {ca_quota_burst}
# IP:PORT of an mTLS listener serving the same API, where the workload's X.509-SVID on
# the connection is its credential; default: unset, no mTLS listener.
# mtls_listen = "0.0.0.0:8443"

[authority.witness]
# Cosign other logs' checkpoints with the domain's witness key (C2SP tlog-witness:
# POST /add-checkpoint on the HTTP API): every federated domain's log, and these.
enabled = {witness_enabled}
# A log outside the mesh, by origin and signed-note verifier key:
# [[authority.witness.logs]]
# origin = "log.external.example"
# key = "log.external.example+1a2b3c4d+AQ…"

[authority.monitor]
# Identity monitoring: the SPIFFE IDs allowed to sign for this domain (exact, or a prefix
# ending in *). An entry of the log signed by any other raises an alert (log line,
# metric, WatchAlerts). Default: empty, every identity the CA certified.
allowed_signers = []
# allowed_signers = ["spiffe://example.org/ci/*"]

[authority.read_scope]
# The federated trust domains whose nodes may fetch this domain's records over the mesh
# (provenance lookups); the domain's own nodes always may. Default: unset, every
# federated domain; [] for the own domain only.
# domains = ["org-b.example"]

[authority.log]
# The log's origin (checkpoint key name); default "log.<trust domain>". Never changes.
# origin = "log.example.org"
# PEM file of further code-signing roots whose certificates may append; the domain's
# own code-signing root (authority.ca) is always admitted.
# code_signing_roots = "/etc/provmesh/code-signing-roots.pem"
# A batch is committed as soon as the store is idle (group commit), when it holds this
# many entries, or when its oldest entry has waited batch_max_delay, whichever is first.
batch_max_entries = {batch_max_entries}
batch_max_delay = {batch_max_delay}
# Entries that may wait to become durable; beyond that appends get 429.
max_pending_entries = {max_pending_entries}
# Per signing identity: sustained appends per second (0 = no quota) and burst.
quota_per_second = {quota_per_second}
quota_burst = {quota_burst}

[mesh]
# Join the peer-to-peer mesh of all federated domains (libp2p: TCP and QUIC, Noise,
# yamux; gossipsub, request-response, Kademlia, identify).
enabled = {mesh_enabled}
# libp2p addresses to listen on; port 0 picks a free port.
listen = [{mesh_listen}]
# Peers to dial at start: libp2p addresses, optionally ending in /p2p/<peer id>.
bootstrap = []
# How often to exchange latest checkpoints and record sequences with a random peer.
anti_entropy_interval = {anti_entropy_interval}
# Lifetime of this node's node record (peer id <-> SPIFFE ID), never beyond its SVID.
node_record_lifetime = {node_record_lifetime}
# How far a peer's clock may run ahead of ours for a record it signed.
max_clock_skew = {max_clock_skew}
# Origins of further logs to follow (small federations follow every log anyway).
follow = []

[mesh.bundle_endpoint]
# Serve every accepted domain's SPIFFE bundle (https_spiffe, this node's X.509-SVID) at
# https://<listen>/<trust domain>, for SPIRE servers' federates_with.
enabled = {bundle_endpoint_enabled}
listen = {bundle_endpoint_listen}

[admission]
# A Kubernetes ValidatingAdmissionWebhook on the HTTP API (POST /admission/v1/validate):
# every image of a Pod or workload is looked up and judged under the policy.
enabled = false
# The policy file (docs/policy.md); unset: the empty policy.
# policy = "/etc/provmesh/admission-policy.toml"
# Admit images named by a tag alone (a tag can be moved after admission).
allow_tag_only = false
# An HTTPS listener for the webhook alone (the API server calls webhooks over HTTPS),
# with its certificate and key (PEM, re-read when they change); default: unset.
# listen = "0.0.0.0:8444"
# tls_cert = "/etc/provmesh/admission-tls/tls.crt"
# tls_key = "/etc/provmesh/admission-tls/tls.key"

[federation]
# The SPIFFE ID of this domain's authority; default spiffe://<trust domain>/provmesh/authority.
# authority_id = "spiffe://example.org/provmesh/authority"

# One table per federated domain, with its bootstrap bundle (obtained out of band):
# [[federation.domains]]
# trust_domain = "org-b.example"
# bundle = "/etc/provmesh/federation/org-b.example.json"
# authority_id = "spiffe://org-b.example/provmesh/authority"
"#,
        placeholder = PLACEHOLDER_TRUST_DOMAIN,
        trust_domain = toml_string(d.node.trust_domain.as_str()),
        data_dir = toml_string(&d.node.data_dir.display().to_string()),
        level = toml_string(d.log.level.as_str()),
        format = toml_string(d.log.format.as_str()),
        enabled = d.metrics.enabled,
        listen = toml_string(&d.metrics.listen.to_string()),
        grace = toml_string(&format_duration(d.shutdown.grace_period)),
        http_enabled = d.http.enabled,
        http_listen = toml_string(&d.http.listen.to_string()),
        max_request_bytes = d.http.max_request_bytes,
        grpc_enabled = d.grpc.enabled,
        grpc_listen = toml_string(&d.grpc.listen.to_string()),
        identity_source = toml_string(d.identity.source.as_str()),
        startup_timeout = toml_string(&format_duration(d.identity.startup_timeout)),
        authority_enabled = d.authority.enabled,
        ca_enabled = d.authority.ca.enabled,
        witness_enabled = d.authority.witness.enabled,
        certificate_validity = toml_string(&format_duration(d.authority.ca.certificate_validity)),
        ca_quota_per_minute = d.authority.ca.quota_per_minute,
        ca_quota_burst = d.authority.ca.quota_burst,
        batch_max_entries = d.authority.log.batch_max_entries,
        batch_max_delay = toml_string(&format_duration(d.authority.log.batch_max_delay)),
        max_pending_entries = d.authority.log.max_pending_entries,
        quota_per_second = d.authority.log.quota_per_second,
        quota_burst = d.authority.log.quota_burst,
        mesh_enabled = d.mesh.enabled,
        mesh_listen = d
            .mesh
            .listen
            .iter()
            .map(|a| toml_string(&a.to_string()))
            .collect::<Vec<_>>()
            .join(", "),
        anti_entropy_interval = toml_string(&format_duration(d.mesh.anti_entropy_interval)),
        node_record_lifetime = toml_string(&format_duration(d.mesh.node_record_lifetime)),
        max_clock_skew = toml_string(&format_duration(d.mesh.max_clock_skew)),
        bundle_endpoint_enabled = d.mesh.bundle_endpoint.enabled,
        bundle_endpoint_listen = toml_string(&d.mesh.bundle_endpoint.listen.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> InvalidConfig {
        match Config::parse(text) {
            Err(ConfigError::Invalid(e)) => *e,
            other => panic!("expected an invalid config, got {other:?}"),
        }
    }

    const MINIMAL: &str = "[node]\ntrust_domain = \"org-a.example\"\n";

    #[test]
    fn placeholder_is_valid() {
        assert!(TrustDomain::parse(PLACEHOLDER_TRUST_DOMAIN).is_ok());
    }

    #[test]
    fn default_toml_parses_to_default() {
        assert_eq!(Config::parse(&default_toml()).unwrap(), Config::default());
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.node.trust_domain.to_string(), "org-a.example");
        assert_eq!(c.metrics, MetricsConfig::default());
        assert_eq!(c.shutdown, ShutdownConfig::default());
        assert_eq!(c.log, LogConfig::default());
        assert_eq!(c.node.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    }

    #[test]
    fn unknown_key_is_named_with_its_table() {
        let e = invalid(&format!(
            "{MINIMAL}[metrics]\nenabled = true\nlisten_addr = \"x\"\n"
        ));
        assert_eq!(e.key.as_deref(), Some("metrics.listen_addr"), "{e}");
        assert_eq!(e.position.map(|p| p.0), Some(5), "{e}");
        assert!(e.message.contains("unknown field `listen_addr`"), "{e}");
        assert!(e.to_string().contains("listen_addr = \"x\""), "{e}");
    }

    #[test]
    fn unknown_table_is_named() {
        let e = invalid(&format!("{MINIMAL}[metricz]\nenabled = true\n"));
        assert_eq!(e.key.as_deref(), Some("metricz"), "{e}");
    }

    #[test]
    fn bad_socket_address_is_named() {
        let e = invalid(&format!("{MINIMAL}[metrics]\nlisten = \"localhost\"\n"));
        assert_eq!(e.key.as_deref(), Some("metrics.listen"), "{e}");
        assert!(e.message.contains("invalid socket address"), "{e}");
        assert_eq!(e.position, Some((4, 10)), "{e}");
    }

    #[test]
    fn bad_trust_domain_is_named() {
        let e = invalid("[node]\ntrust_domain = \"Org A\"\n");
        assert_eq!(e.key.as_deref(), Some("node.trust_domain"), "{e}");
        assert!(e.message.contains("invalid trust domain"), "{e}");
    }

    #[test]
    fn missing_trust_domain_is_reported() {
        let e = invalid("[node]\ndata_dir = \"/var/lib/provmesh\"\n");
        assert!(e.message.contains("trust_domain"), "{e}");
        let e = invalid("");
        assert!(e.message.contains("node"), "{e}");
    }

    #[test]
    fn bad_types_and_values_are_named() {
        let e = invalid(&format!("{MINIMAL}[metrics]\nenabled = \"yes\"\n"));
        assert_eq!(e.key.as_deref(), Some("metrics.enabled"), "{e}");
        let e = invalid(&format!("{MINIMAL}[shutdown]\ngrace_period = \"0s\"\n"));
        assert_eq!(e.key.as_deref(), Some("shutdown.grace_period"), "{e}");
        assert!(e.message.contains("positive"), "{e}");
        let e = invalid(&format!(
            "{MINIMAL}[shutdown]\ngrace_period = \"10 parsecs\"\n"
        ));
        assert_eq!(e.key.as_deref(), Some("shutdown.grace_period"), "{e}");
        let e = invalid(&format!("{MINIMAL}[log]\nformat = \"xml\"\n"));
        assert_eq!(e.key.as_deref(), Some("log.format"), "{e}");
        let e = invalid(&format!("{MINIMAL}[log]\nlevel = \"info,[[[\"\n"));
        assert_eq!(e.key.as_deref(), Some("log.level"), "{e}");
        let e = invalid("[node]\ntrust_domain = \"a.example\"\ndata_dir = \"\"\n");
        assert_eq!(e.key.as_deref(), Some("node.data_dir"), "{e}");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = invalid("[node\n");
        assert!(e.position.is_some(), "{e}");
    }

    #[test]
    fn durations_round_trip() {
        for (text, d) in [
            ("10s", Duration::from_secs(10)),
            ("500ms", Duration::from_millis(500)),
            ("1m30s", Duration::from_secs(90)),
            ("2h", Duration::from_secs(7200)),
            ("1h1m1s1ms", Duration::from_millis(3_661_001)),
        ] {
            assert_eq!(parse_duration(text).unwrap(), d, "{text}");
            assert_eq!(format_duration(d), text);
        }
        for bad in [
            "",
            "10",
            "s",
            "10x",
            "-1s",
            "1.5s",
            "10 s",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
