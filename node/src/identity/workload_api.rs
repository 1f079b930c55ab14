//! The `spire` identity source: the node's X.509-SVID, its trust domain's X.509 and JWT
//! bundles, and JWT-SVIDs from the SPIFFE Workload API of a local SPIRE agent, through the
//! `spiffe` crate's [`X509Source`] (the `FetchX509SVID` stream) and [`JwtSource`] (the
//! `FetchJWTBundles` stream and `FetchJWTSVID`).
//!
//! Specs: SPIFFE Workload Endpoint
//! (<https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_Endpoint.md>)
//! and SPIFFE Workload API
//! (<https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_API.md>).
//!
//! What this module adds to the crate's sources:
//!
//! * the endpoint: the configured socket, else `SPIFFE_ENDPOINT_SOCKET` ([`resolve_endpoint`]);
//! * a start-up bound: both sources must deliver their first response within the configured
//!   timeout, or [`WorkloadApiSource::connect`] fails naming the socket and the timeout
//!   (the crate's builders otherwise wait forever for an agent);
//! * the node's trust domain: an SVID of another trust domain is refused, at start-up as
//!   an error and later as a rotation that is not taken;
//! * conversion to provmesh's own types: [`NodeSvid`] and one [`TrustBundle`] holding the
//!   trust domain's X.509 authorities (from the X.509 bundle, as JWKs with `x5c`) *and* its
//!   JWT authorities (from the JWT bundle), which is what the rest of the node consumes.
//!
//! The Workload API carries no `spiffe_sequence` or `spiffe_refresh_hint`, so the bundles
//! built here have neither.

use std::ffi::OsString;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use provmesh_protocol::spiffe::{SpiffeId, TrustBundle, TrustDomain};
use serde_json::{Map, Value};
use spiffe::transport::Endpoint;
use spiffe::{
    JwtBundle, JwtSource, JwtSourceError, JwtSourceUpdates, X509Bundle, X509Source,
    X509SourceError, X509SourceUpdates,
};
use x509_parser::oid_registry::{OID_EC_P256, OID_NIST_EC_P384, OID_NIST_EC_P521};
use x509_parser::public_key::PublicKey;

use super::source::NodeSvid;
use crate::config::format_duration;

/// The environment variable naming the Workload API endpoint when none is configured
/// (SPIFFE Workload Endpoint §4: "Clients may be explicitly configured with the socket
/// location, or may utilize the well-known environment variable `SPIFFE_ENDPOINT_SOCKET`.
/// If not explicitly configured, conforming clients MUST fall back to the environment
/// variable.").
pub const ENDPOINT_SOCKET_ENV: &str = "SPIFFE_ENDPOINT_SOCKET";

/// How long [`WorkloadApiSource::shutdown`] waits for the crate's supervisors.
const SOURCE_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the Workload API endpoint could not be chosen or the first SVID and bundles were
/// not obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Neither the configuration nor the environment names an endpoint.
    #[error(
        "no SPIFFE Workload API endpoint: set identity.workload_api_socket \
         (e.g. \"unix:///run/spire/agent-sockets/spire-agent.sock\") or the \
         {ENDPOINT_SOCKET_ENV} environment variable"
    )]
    NoEndpoint,
    /// `SPIFFE_ENDPOINT_SOCKET` is not UTF-8.
    #[error("{ENDPOINT_SOCKET_ENV} is not valid UTF-8: {0:?}")]
    NotUnicode(OsString),
    /// The endpoint is not a `unix:` or `tcp:` URI the client can use.
    #[error(
        "invalid SPIFFE Workload API endpoint {endpoint:?} (from {origin}): {reason}; expected \
         unix:///path/to/socket, unix:/path/to/socket or tcp://IP:PORT"
    )]
    BadEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Where it came from: the configuration key or the environment variable.
        origin: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// Nothing delivered an X.509-SVID within the start-up timeout.
    #[error(
        "no SPIFFE Workload API answered with an X.509-SVID at {endpoint} within {} \
         (identity.startup_timeout){hint}",
        format_duration(*timeout)
    )]
    NoAgent {
        /// The endpoint.
        endpoint: String,
        /// The start-up timeout.
        timeout: Duration,
        /// A hint at the likely cause, starting with "; " (or empty).
        hint: String,
    },
    /// The agent delivered an X.509-SVID but no JWT bundle within the start-up timeout.
    #[error(
        "the SPIFFE Workload API at {endpoint} delivered an X.509-SVID but no JWT bundle \
         within {} (identity.startup_timeout)",
        format_duration(*timeout)
    )]
    NoJwtBundle {
        /// The endpoint.
        endpoint: String,
        /// The start-up timeout.
        timeout: Duration,
    },
    /// An RPC failed in a way retrying does not fix (e.g. the agent rejected the request as
    /// invalid, or does not implement it).
    #[error("the SPIFFE Workload API at {endpoint} failed {rpc}: {reason}")]
    Refused {
        /// The endpoint.
        endpoint: String,
        /// The RPC.
        rpc: &'static str,
        /// What the client library said.
        reason: String,
    },
    /// The first SVID or bundle is not usable.
    #[error("the SPIFFE Workload API at {endpoint}: {source}")]
    Material {
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        #[source]
        source: MaterialError,
    },
}

/// Why the current SVID or bundle of the Workload API cannot be used by the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaterialError {
    /// The source has no usable SVID or bundle now (withdrawn, expired, or closed).
    #[error("{what} unavailable: {reason}")]
    Unavailable {
        /// What is missing.
        what: &'static str,
        /// What the client library said.
        reason: String,
    },
    /// The SVID is for another trust domain.
    #[error(
        "the agent issued {id}, which is not in this node's trust domain {expected}; register \
         the node under spiffe://{expected}/… or correct node.trust_domain"
    )]
    ForeignTrustDomain {
        /// The SVID's SPIFFE ID.
        id: String,
        /// `node.trust_domain`.
        expected: TrustDomain,
    },
    /// The SVID's SPIFFE ID or leaf certificate cannot be read.
    #[error("the X.509-SVID is unreadable: {0}")]
    Svid(String),
    /// The X.509 bundle of the node's trust domain has no authority provmesh can use.
    #[error("no usable X.509 authority for trust domain {trust_domain}{detail}")]
    NoX509Authority {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// Why the authorities present were skipped, starting with ": " (or empty).
        detail: String,
    },
}

/// Why a JWT-SVID was not obtained from the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchJwtError {
    /// The agent did not answer in time.
    #[error(
        "the SPIFFE Workload API at {endpoint} did not answer FetchJWTSVID within {}",
        format_duration(*timeout)
    )]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// The bound (identity.startup_timeout).
        timeout: Duration,
    },
    /// The agent refused or failed the request.
    #[error("the SPIFFE Workload API at {endpoint} failed FetchJWTSVID: {reason}")]
    Failed {
        /// The endpoint.
        endpoint: String,
        /// What the client library said.
        reason: String,
    },
    /// The agent returned a token for another subject than asked, or of another trust
    /// domain.
    #[error("the SPIFFE Workload API returned a JWT-SVID for {got}, expected {expected}")]
    WrongSubject {
        /// The token's subject.
        got: String,
        /// The requested ID, or "a SPIFFE ID in" and the trust domain.
        expected: String,
    },
}

/// The update streams of a connected source closed: its supervisor stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the Workload API {stream} updates stopped: {reason}")]
pub struct UpdatesClosed {
    /// Which stream: "X.509" or "JWT bundle".
    pub stream: &'static str,
    /// What the client library said.
    pub reason: String,
}

/// Chooses the Workload API endpoint: `configured` (identity.workload_api_socket) if set,
/// else `env` (the value of [`ENDPOINT_SOCKET_ENV`]), and checks that the client can use
/// it. Returns the endpoint string as given.
pub fn resolve_endpoint(
    configured: Option<&str>,
    env: Option<OsString>,
) -> Result<String, ConnectError> {
    let (endpoint, origin) = match (configured, env) {
        (Some(configured), _) => (configured.to_owned(), "identity.workload_api_socket"),
        (None, Some(env)) => (
            env.into_string().map_err(ConnectError::NotUnicode)?,
            ENDPOINT_SOCKET_ENV,
        ),
        (None, None) => return Err(ConnectError::NoEndpoint),
    };
    Endpoint::parse(&endpoint).map_err(|e| ConnectError::BadEndpoint {
        endpoint: endpoint.clone(),
        origin,
        reason: e.to_string(),
    })?;
    Ok(endpoint)
}

/// A connected Workload API source. Cheap to clone: clones share the crate's sources.
#[derive(Debug, Clone)]
pub struct WorkloadApiSource {
    endpoint: String,
    trust_domain: TrustDomain,
    x509: X509Source,
    jwt: JwtSource,
    /// Bound on one `FetchJWTSVID`.
    rpc_timeout: Duration,
}

/// What [`WorkloadApiSource::connect`] returns: the source, its update notifications
/// (subscribed before the first material was read, so no update is missed), and that
/// first material.
#[derive(Debug)]
#[non_exhaustive]
pub struct Connected {
    /// The source.
    pub source: WorkloadApiSource,
    /// Notifications of later updates.
    pub updates: WorkloadApiUpdates,
    /// The node's first X.509-SVID.
    pub svid: NodeSvid,
    /// The node's trust domain's first bundle.
    pub bundle: TrustBundle,
}

/// Notifications that the agent pushed new X.509 or JWT material.
#[derive(Debug)]
pub struct WorkloadApiUpdates {
    x509: X509SourceUpdates,
    jwt: JwtSourceUpdates,
}

impl WorkloadApiUpdates {
    /// Resolves at the next update of either stream. Cancel-safe.
    pub async fn next(&mut self) -> Result<(), UpdatesClosed> {
        tokio::select! {
            r = self.x509.changed() => r.map(drop).map_err(|e| UpdatesClosed {
                stream: "X.509",
                reason: e.to_string(),
            }),
            r = self.jwt.changed() => r.map(drop).map_err(|e| UpdatesClosed {
                stream: "JWT bundle",
                reason: e.to_string(),
            }),
        }
    }
}

impl WorkloadApiSource {
    /// Connects to `endpoint` (see [`resolve_endpoint`]) and waits at most `timeout` for
    /// the first X.509-SVID and X.509 bundle (`FetchX509SVID`) and JWT bundles
    /// (`FetchJWTBundles`), both requested at once. Refuses an SVID outside
    /// `trust_domain`. `timeout` also bounds each later `FetchJWTSVID`.
    pub async fn connect(
        endpoint: &str,
        trust_domain: &TrustDomain,
        timeout: Duration,
    ) -> Result<Connected, ConnectError> {
        let x509 = X509Source::builder()
            .endpoint(endpoint)
            .initial_sync_timeout(timeout)
            .shutdown_timeout(Some(SOURCE_SHUTDOWN_GRACE))
            .build();
        let jwt = JwtSource::builder()
            .endpoint(endpoint)
            .initial_sync_timeout(timeout)
            .shutdown_timeout(Some(SOURCE_SHUTDOWN_GRACE))
            .build();
        // The crate bounds its initial sync by `timeout`; the outer bound only guards
        // against a connect that the crate does not cover.
        let outer = timeout.saturating_add(Duration::from_secs(1));
        let (x509, jwt) = match tokio::time::timeout(outer, async { tokio::join!(x509, jwt) }).await
        {
            Ok(both) => both,
            Err(_) => {
                return Err(ConnectError::NoAgent {
                    endpoint: endpoint.to_owned(),
                    timeout,
                    hint: no_agent_hint(endpoint),
                });
            }
        };
        let x509 = x509.map_err(|e| x509_connect_error(e, endpoint, timeout))?;
        let jwt = jwt.map_err(|e| jwt_connect_error(e, endpoint, timeout))?;
        // Subscribe before reading, so that an update between the two is not missed.
        let updates = WorkloadApiUpdates {
            x509: x509.updated(),
            jwt: jwt.updated(),
        };
        let source = WorkloadApiSource {
            endpoint: endpoint.to_owned(),
            trust_domain: trust_domain.clone(),
            x509,
            jwt,
            rpc_timeout: timeout,
        };
        let material = |source: MaterialError| ConnectError::Material {
            endpoint: endpoint.to_owned(),
            source,
        };
        let svid = source.node_svid().map_err(material)?;
        let bundle = source.trust_bundle().map_err(material)?;
        Ok(Connected {
            source,
            updates,
            svid,
            bundle,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The node's current X.509-SVID: the agent's default (first) SVID, refused if it is
    /// not in the node's trust domain.
    pub fn node_svid(&self) -> Result<NodeSvid, MaterialError> {
        let svid = self.x509.svid().map_err(|e| MaterialError::Unavailable {
            what: "X.509-SVID",
            reason: e.to_string(),
        })?;
        let id = svid.spiffe_id().to_string();
        let spiffe_id = SpiffeId::parse(&id)
            .map_err(|e| MaterialError::Svid(format!("SPIFFE ID {id:?}: {e}")))?;
        if !spiffe_id.member_of(&self.trust_domain) {
            return Err(MaterialError::ForeignTrustDomain {
                id,
                expected: self.trust_domain.clone(),
            });
        }
        let chain_der: Vec<Vec<u8>> = svid
            .cert_chain()
            .iter()
            .map(|c| c.as_bytes().to_vec())
            .collect();
        let leaf = chain_der
            .first()
            .ok_or_else(|| MaterialError::Svid("empty certificate chain".into()))?;
        let not_after = certificate_not_after(leaf).map_err(MaterialError::Svid)?;
        Ok(NodeSvid {
            spiffe_id,
            chain_der,
            private_key_pkcs8: svid.private_key().as_bytes().to_vec(),
            not_after,
        })
    }

    /// The node's trust domain's current bundle: the X.509 authorities of the
    /// `FetchX509SVID` stream and the JWT authorities of the `FetchJWTBundles` stream for
    /// `node.trust_domain`. Authorities whose keys cannot be expressed as a JWK are left
    /// out (and logged); at least one X.509 authority must remain.
    pub fn trust_bundle(&self) -> Result<TrustBundle, MaterialError> {
        let td = spiffe::TrustDomain::new(self.trust_domain.as_str()).map_err(|e| {
            MaterialError::Unavailable {
                what: "trust domain",
                reason: e.to_string(),
            }
        })?;
        let x509 = self
            .x509
            .x509_context()
            .map_err(|e| MaterialError::Unavailable {
                what: "X.509 bundle",
                reason: e.to_string(),
            })?
            .bundle_set()
            .get(&td);
        let jwt = self
            .jwt
            .bundle_set()
            .map_err(|e| MaterialError::Unavailable {
                what: "JWT bundle",
                reason: e.to_string(),
            })?
            .get(&td);
        bundle_from_workload_api(&self.trust_domain, x509.as_deref(), jwt.as_deref())
    }

    /// Fetches a JWT-SVID for `audience` (`FetchJWTSVID`): for `spiffe_id`, or for the
    /// agent's default identity when `None`. The token's subject must be the requested ID
    /// or, for the default, in the node's trust domain.
    pub async fn jwt_svid(
        &self,
        spiffe_id: Option<&SpiffeId>,
        audience: &str,
    ) -> Result<String, FetchJwtError> {
        let requested = spiffe_id
            .map(|id| spiffe::SpiffeId::new(id.as_str()))
            .transpose()
            .map_err(|e| FetchJwtError::Failed {
                endpoint: self.endpoint.clone(),
                reason: format!("the SPIFFE ID is not one the client accepts: {e}"),
            })?;
        let fetch = self
            .jwt
            .fetch_jwt_svid_with_id([audience], requested.as_ref());
        let svid = tokio::time::timeout(self.rpc_timeout, fetch)
            .await
            .map_err(|_| FetchJwtError::Timeout {
                endpoint: self.endpoint.clone(),
                timeout: self.rpc_timeout,
            })?
            .map_err(|e| FetchJwtError::Failed {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            })?;
        let got = svid.spiffe_id().to_string();
        let expected = match spiffe_id {
            Some(id) if id.as_str() == got => return Ok(svid.token().to_owned()),
            Some(id) => id.to_string(),
            None => match SpiffeId::parse(&got) {
                Ok(id) if id.member_of(&self.trust_domain) => {
                    return Ok(svid.token().to_owned());
                }
                _ => format!("a SPIFFE ID in {}", self.trust_domain),
            },
        };
        Err(FetchJwtError::WrongSubject { got, expected })
    }

    /// Stops the crate's supervisors (each within a few seconds).
    pub async fn shutdown(&self) {
        let (x509, jwt) = tokio::join!(
            self.x509.shutdown_with_timeout(SOURCE_SHUTDOWN_GRACE),
            self.jwt.shutdown_with_timeout(SOURCE_SHUTDOWN_GRACE)
        );
        if let Err(e) = x509 {
            tracing::warn!(error = %e, "the X.509 Workload API source did not stop cleanly");
        }
        if let Err(e) = jwt {
            tracing::warn!(error = %e, "the JWT Workload API source did not stop cleanly");
        }
    }
}

/// Maps a failed X.509 initial sync to the start-up error.
fn x509_connect_error(e: X509SourceError, endpoint: &str, timeout: Duration) -> ConnectError {
    match e {
        X509SourceError::InitialSyncTimeout => ConnectError::NoAgent {
            endpoint: endpoint.to_owned(),
            timeout,
            hint: no_agent_hint(endpoint),
        },
        other => ConnectError::Refused {
            endpoint: endpoint.to_owned(),
            rpc: "FetchX509SVID",
            reason: other.to_string(),
        },
    }
}

/// Maps a failed JWT bundle initial sync to the start-up error.
fn jwt_connect_error(e: JwtSourceError, endpoint: &str, timeout: Duration) -> ConnectError {
    match e {
        JwtSourceError::InitialSyncTimeout => ConnectError::NoJwtBundle {
            endpoint: endpoint.to_owned(),
            timeout,
        },
        other => ConnectError::Refused {
            endpoint: endpoint.to_owned(),
            rpc: "FetchJWTBundles",
            reason: other.to_string(),
        },
    }
}

/// The notAfter of a DER certificate.
fn certificate_not_after(der: &[u8]) -> Result<SystemTime, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the leaf certificate is not DER: {e}"))?;
    let secs = u64::try_from(cert.validity().not_after.timestamp())
        .map_err(|_| "the leaf certificate expires before 1970".to_owned())?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Builds provmesh's bundle of `trust_domain` from the Workload API's X.509 bundle (DER
/// authorities) and JWT bundle (JWKs), in a stable order (X.509 as delivered, JWT by
/// `kid`).
fn bundle_from_workload_api(
    trust_domain: &TrustDomain,
    x509: Option<&X509Bundle>,
    jwt: Option<&JwtBundle>,
) -> Result<TrustBundle, MaterialError> {
    let mut bundle = TrustBundle::new();
    let mut skipped = Vec::new();
    for authority in x509.map(X509Bundle::authorities).unwrap_or_default() {
        let der = authority.as_bytes();
        let added = certificate_jwk(der).and_then(|jwk| {
            bundle
                .add_x509_authority(der, jwk)
                .map_err(|e| e.to_string())
        });
        if let Err(reason) = added {
            tracing::warn!(%trust_domain, %reason, "X.509 authority left out of the trust bundle");
            skipped.push(reason);
        }
    }
    if bundle.x509_authorities().next().is_none() {
        return Err(MaterialError::NoX509Authority {
            trust_domain: trust_domain.clone(),
            detail: if skipped.is_empty() {
                String::new()
            } else {
                format!(": {}", skipped.join("; "))
            },
        });
    }
    let mut jwt_authorities: Vec<_> = jwt
        .map(|b| b.jwt_authorities().collect())
        .unwrap_or_default();
    jwt_authorities.sort_by(|a, b| a.key_id().cmp(b.key_id()));
    if jwt_authorities.is_empty() {
        tracing::warn!(%trust_domain, "the Workload API gave no JWT authority for the node's trust domain");
    }
    for authority in jwt_authorities {
        let added = match serde_json::from_slice::<Value>(authority.jwk_json()) {
            // `use` and `kid` are set by `add_jwt_authority` (SPIRE's JWKS entries carry
            // no `use`; JWT-SVID §6.1 requires `jwt-svid` in a SPIFFE bundle).
            Ok(Value::Object(mut members)) => {
                members.remove("use");
                members.remove("kid");
                bundle
                    .add_jwt_authority(authority.key_id(), members)
                    .map_err(|e| e.to_string())
            }
            Ok(_) => Err("the JWK is not a JSON object".to_owned()),
            Err(e) => Err(format!("the JWK is not JSON: {e}")),
        };
        if let Err(reason) = added {
            tracing::warn!(%trust_domain, kid = authority.key_id(), %reason, "JWT authority left out of the trust bundle");
        }
    }
    Ok(bundle)
}

/// The public key of a DER certificate as JWK members (RFC 7518 §6): `kty` `EC` with
/// `crv`, `x`, `y` for P-256, P-384 and P-521 keys, or `kty` `RSA` with `n`, `e`.
pub fn certificate_jwk(der: &[u8]) -> Result<Map<String, Value>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not a DER certificate: {e}"))?;
    let spki = cert.public_key();
    let key = spki
        .parsed()
        .map_err(|e| format!("unreadable public key: {e}"))?;
    let mut jwk = Map::new();
    match key {
        PublicKey::EC(point) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            // RFC 7518 §6.2.1.2: "The length of this octet string MUST be the full size of
            // a coordinate for the curve specified in the "crv" parameter."
            let (crv, size) = match curve {
                Some(oid) if oid == OID_EC_P256 => ("P-256", 32),
                Some(oid) if oid == OID_NIST_EC_P384 => ("P-384", 48),
                Some(oid) if oid == OID_NIST_EC_P521 => ("P-521", 66),
                _ => return Err("an EC key on a curve other than P-256, P-384 or P-521".into()),
            };
            // SEC 1 §2.3.3: an uncompressed point is 0x04 || X || Y.
            let data = point.data();
            let coordinates = match data.split_first() {
                Some((0x04, xy)) if xy.len() == 2 * size => xy,
                _ => return Err(format!("not an uncompressed {crv} point")),
            };
            let (x, y) = coordinates.split_at(size);
            jwk.insert("kty".into(), "EC".into());
            jwk.insert("crv".into(), crv.into());
            jwk.insert("x".into(), URL_SAFE_NO_PAD.encode(x).into());
            jwk.insert("y".into(), URL_SAFE_NO_PAD.encode(y).into());
        }
        PublicKey::RSA(rsa) => {
            // RFC 7518 §6.3.1.1: "The octet sequence MUST utilize the minimum number of
            // octets needed to represent the value" — the DER INTEGER may carry a leading
            // zero octet for its sign.
            let minimal = |v: &[u8]| {
                let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
                URL_SAFE_NO_PAD.encode(&v[start..])
            };
            jwk.insert("kty".into(), "RSA".into());
            jwk.insert("n".into(), minimal(rsa.modulus).into());
            jwk.insert("e".into(), minimal(rsa.exponent).into());
        }
        _ => return Err("neither an EC nor an RSA key".into()),
    }
    Ok(jwk)
}

/// A hint at why nothing answered at `endpoint`: whether its Unix socket exists.
fn no_agent_hint(endpoint: &str) -> String {
    match Endpoint::parse(endpoint) {
        Ok(Endpoint::Unix(path)) => match path.try_exists() {
            Ok(false) => format!(
                "; there is no socket at {}: is the SPIRE agent running, and is its socket \
                 directory mounted here?",
                path.display()
            ),
            Ok(true) => "; the socket exists but no X.509-SVID came: is this workload \
                         registered with the SPIRE server (an entry whose selectors match \
                         this process)?"
                .to_owned(),
            Err(e) => format!("; cannot check {}: {e}", path.display()),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rcgen::{
        BasicConstraints, CertificateParams, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256,
        PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, PublicKeyData as _,
    };

    use super::*;

    fn ca_certificate(key: &KeyPair) -> Vec<u8> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.self_signed(key).unwrap().der().to_vec()
    }

    fn td(name: &str) -> TrustDomain {
        TrustDomain::parse(name).unwrap()
    }

    #[test]
    fn the_configured_endpoint_wins_over_the_environment() {
        let env = Some(OsString::from("unix:///env.sock"));
        assert_eq!(
            resolve_endpoint(Some("unix:///configured.sock"), env.clone()).unwrap(),
            "unix:///configured.sock"
        );
        assert_eq!(resolve_endpoint(None, env).unwrap(), "unix:///env.sock");
        assert_eq!(
            resolve_endpoint(Some("unix:/a.sock"), None).unwrap(),
            "unix:/a.sock"
        );
        assert!(matches!(
            resolve_endpoint(None, None),
            Err(ConnectError::NoEndpoint)
        ));
        let bad = resolve_endpoint(Some("/run/spire.sock"), None).unwrap_err();
        assert!(
            matches!(
                &bad,
                ConnectError::BadEndpoint {
                    origin: "identity.workload_api_socket",
                    ..
                }
            ),
            "{bad}"
        );
        assert!(bad.to_string().contains("/run/spire.sock"), "{bad}");
        let bad = resolve_endpoint(None, Some(OsString::from("http://x"))).unwrap_err();
        assert!(
            matches!(
                &bad,
                ConnectError::BadEndpoint {
                    origin: ENDPOINT_SOCKET_ENV,
                    ..
                }
            ),
            "{bad}"
        );
    }

    #[test]
    fn an_absent_socket_is_named_in_the_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let endpoint = format!("unix://{}", path.display());
        let hint = no_agent_hint(&endpoint);
        assert!(hint.contains("there is no socket at"), "{hint}");
        assert!(hint.contains(&path.display().to_string()), "{hint}");
        std::fs::write(&path, b"").unwrap();
        assert!(no_agent_hint(&endpoint).contains("registered"));
    }

    #[test]
    fn ec_certificate_keys_become_full_size_coordinates() {
        for (alg, crv, size) in [
            (&PKCS_ECDSA_P256_SHA256, "P-256", 32),
            (&PKCS_ECDSA_P384_SHA384, "P-384", 48),
        ] {
            let key = KeyPair::generate_for(alg).unwrap();
            let jwk = certificate_jwk(&ca_certificate(&key)).unwrap();
            assert_eq!(jwk["kty"], "EC");
            assert_eq!(jwk["crv"], crv);
            let point = key.der_bytes();
            assert_eq!(point[0], 0x04);
            let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
            let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
            assert_eq!(x, point[1..=size]);
            assert_eq!(y, point[size + 1..]);
            assert_eq!(jwk.len(), 4);
        }
    }

    #[test]
    fn rsa_certificate_keys_have_minimal_octets() {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
        let jwk = certificate_jwk(&ca_certificate(&key)).unwrap();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["e"], "AQAB");
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256, "a 2048-bit modulus without its sign octet");
        assert_ne!(n[0], 0);
        assert!(certificate_jwk(b"not a certificate").is_err());
    }

    #[test]
    fn workload_api_bundles_become_one_spiffe_bundle() {
        let domain = td("org-a.example");
        let spiffe_td = spiffe::TrustDomain::new("org-a.example").unwrap();
        let (a, b) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        let (a_der, b_der) = (ca_certificate(&a), ca_certificate(&b));
        let x509 = X509Bundle::from_x509_authorities(spiffe_td.clone(), &[&a_der, &b_der]).unwrap();
        // SPIRE's JWKS entries: `kid`, `kty`, `crv`, `x`, `y`, no `use`.
        let mut jwk = certificate_jwk(&a_der).unwrap();
        let mut keys = Vec::new();
        for kid in ["k2", "k1"] {
            jwk.insert("kid".into(), kid.into());
            keys.push(Value::Object(jwk.clone()));
        }
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap();
        let jwt = JwtBundle::from_jwt_authorities(spiffe_td.clone(), &jwks).unwrap();

        let bundle = bundle_from_workload_api(&domain, Some(&x509), Some(&jwt)).unwrap();
        bundle.check_strict().unwrap();
        let authorities: Vec<&[u8]> = bundle.x509_authorities().collect();
        assert_eq!(authorities, [a_der.as_slice(), b_der.as_slice()]);
        let kids: Vec<&str> = bundle.jwt_authorities().map(|(kid, _)| kid).collect();
        assert_eq!(kids, ["k1", "k2"], "sorted by kid, whatever the map order");
        assert_eq!(
            bundle.jwt_authority("k1").unwrap().key_use(),
            Some("jwt-svid")
        );
        // Round trip through the document format.
        assert_eq!(
            TrustBundle::from_json_strict(&bundle.to_json()).unwrap(),
            bundle
        );

        // Without a JWT bundle the X.509 part still stands; without X.509 authorities
        // nothing can be validated, so that is an error.
        let x509_only = bundle_from_workload_api(&domain, Some(&x509), None).unwrap();
        assert_eq!(x509_only.jwt_authorities().count(), 0);
        let err = bundle_from_workload_api(&domain, None, Some(&jwt)).unwrap_err();
        assert!(
            matches!(err, MaterialError::NoX509Authority { .. }),
            "{err}"
        );
    }
}
