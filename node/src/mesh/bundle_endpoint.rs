//! The SPIFFE bundle endpoint: every trust domain this node accepted, served over HTTPS
//! with the `https_spiffe` profile of SPIFFE Federation
//! (<https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Federation.md>), so a
//! SPIRE server federates through its local node (`federates_with` pointing at
//! `https://<node>/<trust domain>`, `endpoint_spiffe_id` = the node's SPIFFE ID) instead
//! of keeping one relationship with every other domain.
//!
//! - **Routes.** `GET /<trust domain>` (e.g. `/org-b.example`): that domain's bundle, the
//!   document of [`TrustBundle::to_json`], `Content-Type: application/json`. `GET /`: an
//!   index of the served domains with their `spiffe_sequence`. An unknown domain, or any
//!   other path, is 404 with a short text; a method other than GET or HEAD is 405. §5.2.2.3:
//!   "The exact path value may be chosen by the operator, and appears as part of the
//!   bundle endpoint URL."
//! - **What is served** is the map on the [`ServedBundles`] channel, which the node
//!   replaces wholesale when the accepted set changes; every request reads the map
//!   current then (§5.2.2.3: "the bundle endpoint server MUST respond with the most
//!   up-to-date version of the SPIFFE bundle available"). Each map is rendered once (JSON
//!   bodies and the index) and the rendering reused until the next map.
//! - **`Cache-Control: max-age`** is the bundle's `spiffe_refresh_hint` — how often its
//!   consumers are told to poll (§4: "Clients SHOULD poll at a frequency equal to the
//!   value of the bundle's `spiffe_refresh_hint`, in seconds. If not set, a reasonably low
//!   default value should apply - five minutes is recommended.") — capped by
//!   [`BundleEndpointConfig::max_cache_age`], because the hint is another domain's choice
//!   while a revoking record accepted here must not sit behind a cache for long. The
//!   index and errors are `no-store`.
//! - **Server certificate**: the node's own X.509-SVID, whichever domain's bundle is
//!   asked for — a non-self-serving endpoint (§5.2.2.2: "A non-self-serving bundle
//!   endpoint is one in which the bundle endpoint server's SPIFFE ID does not reside in
//!   the same trust domain as the bundle being fetched"; §5.2.2.3: "The server
//!   certificate MUST be a valid X509-SVID"). It is read from the identity's watch channel
//!   at every handshake ([`SvidResolver`], shared with the CA's mTLS listener), so a
//!   rotated SVID is presented from the next connection on. No session resumption: every
//!   connection is authenticated by the SVID current at its handshake.
//! - **No client authentication** (§5.2.2.3: "servers MUST NOT require client
//!   authentication to access the bundle endpoint"): no certificate is requested.
//! - **TLS**: 1.2 and 1.3 with rustls' safe defaults (ECDHE with AES-GCM or
//!   ChaCha20-Poly1305 only), within Mozilla's intermediate profile that §5 requires;
//!   ALPN `http/1.1`, which Go's HTTP client (SPIRE's bundle client) accepts when it
//!   offers `h2` too.
//! - **What SPIRE's client does with the answer** (`pkg/server/bundle/client/client.go`):
//!   an HTTP GET of the configured URL; any status but 200 is an error quoting the body;
//!   the body is decoded as a bundle (`bundleutil.Decode`: a JWK set with
//!   `spiffe_sequence` and `spiffe_refresh_hint`).
//! - **Bounds**: at most [`BundleEndpointConfig::max_connections`] connections at once
//!   (further ones wait in the kernel's accept queue); a handshake must finish within
//!   [`BundleEndpointConfig::handshake_timeout`], request headers within
//!   [`BundleEndpointConfig::header_read_timeout`] (also the idle limit of a kept-alive
//!   connection); a request head is at most [`MAX_REQUEST_HEAD_BYTES`]; request bodies
//!   are never read.
//! - **Shutdown**: on the node's shutdown signal the listener stops accepting, handshakes
//!   in progress are dropped, served connections finish the request in flight and close;
//!   [`serve`] returns when all have.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, Response, StatusCode, header};
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use provmesh_protocol::spiffe::{TrustBundle, TrustDomain};
use rustls::ServerConfig;
use rustls::server::NoServerSessionStorage;
use serde_json::{Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::ca::mtls::{ACCEPT_ERROR_PAUSE, SvidResolver, is_connection_error};
use crate::identity::NodeSvid;
use crate::shutdown::Shutdown;

/// Default of [`BundleEndpointConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default of [`BundleEndpointConfig::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`BundleEndpointConfig::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`BundleEndpointConfig::max_cache_age`].
pub const DEFAULT_MAX_CACHE_AGE: Duration = Duration::from_secs(3600);
/// The `max-age` of a bundle without `spiffe_refresh_hint`: the poll interval SPIFFE
/// Federation §4 recommends then ("five minutes is recommended").
pub const DEFAULT_REFRESH_HINT: Duration = Duration::from_secs(300);
/// The largest request head (request line and headers) read; a GET of a bundle needs a
/// few hundred bytes. hyper's smallest allowed buffer is 8 KiB.
pub const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// The listener's name in logs.
const SERVER_NAME: &str = "SPIFFE bundle endpoint";
/// The methods served; `Allow` of a 405 (RFC 9110 §15.5.6: "The origin server MUST
/// generate an Allow header field in a 405 response").
const ALLOWED_METHODS: &str = "GET, HEAD";
/// `application/json`, as SPIRE's own bundle endpoint sends (§5.2.2.3: "SHOULD set the
/// `Content-Type` header to `application/json`"); the body is UTF-8 (RFC 8259 §8.1).
const JSON: HeaderValue = HeaderValue::from_static("application/json");
/// Short error texts.
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
/// The index and errors: a bundle that appears later must not be hidden by a cache.
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// The bundles to serve by trust domain, replaced wholesale by the node when the
/// accepted set changes (the mesh's [`super::AcceptedBundles`]).
pub type ServedBundles = super::AcceptedBundles;

/// How the endpoint is bounded and what it tells caches. The listening address is the
/// caller's: [`serve`] takes a bound listener.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BundleEndpointConfig {
    /// The most connections served (or in their handshake) at once; at least 1.
    pub max_connections: usize,
    /// The longest a TLS handshake may take before the connection is dropped.
    pub handshake_timeout: Duration,
    /// The longest a client may take to send a request's headers, also the longest a
    /// kept-alive connection may stay idle.
    pub header_read_timeout: Duration,
    /// The largest `Cache-Control: max-age` sent, whatever a bundle's refresh hint.
    pub max_cache_age: Duration,
}

impl Default for BundleEndpointConfig {
    /// [`DEFAULT_MAX_CONNECTIONS`], [`DEFAULT_HANDSHAKE_TIMEOUT`],
    /// [`DEFAULT_HEADER_READ_TIMEOUT`], [`DEFAULT_MAX_CACHE_AGE`].
    fn default() -> BundleEndpointConfig {
        BundleEndpointConfig {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_cache_age: DEFAULT_MAX_CACHE_AGE,
        }
    }
}

/// Why the endpoint's TLS configuration could not be built; [`serve`] returns it inside
/// its `std::io::Error` (`io::Error::get_ref` gives it back).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleEndpointTlsError {
    /// rustls refused the protocol versions with the aws-lc-rs provider.
    #[error(
        "the SPIFFE bundle endpoint cannot be served: the TLS provider (aws-lc-rs) refuses \
         TLS 1.2 and 1.3: {0}"
    )]
    Provider(#[source] rustls::Error),
}

/// Serves the bundles on `bundles` over TLS with the node's X.509-SVID from `svid` on
/// `listener`, until `shutdown` fires and every connection has closed (see the module
/// documentation). Fails only if the TLS configuration cannot be built
/// ([`BundleEndpointTlsError`]); errors of single connections are logged at debug level.
pub async fn serve(
    listener: TcpListener,
    svid: watch::Receiver<Arc<NodeSvid>>,
    bundles: ServedBundles,
    config: BundleEndpointConfig,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls_config(svid).map_err(std::io::Error::other)?);
    let catalogues = Arc::new(Catalogues::new(bundles, config.max_cache_age));
    let limits = ConnectionLimits {
        handshake_timeout: config.handshake_timeout,
        header_read_timeout: config.header_read_timeout,
    };
    // Zero would never accept: treat it as the smallest useful bound.
    let max_connections = config.max_connections.max(1);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.triggered() => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = ended {
                    tracing::warn!(%error, "a SPIFFE bundle endpoint connection task failed");
                }
            }
            accepted = listener.accept(), if connections.len() < max_connections => {
                match accepted {
                    Ok((stream, remote)) => {
                        connections.spawn(connection(
                            acceptor.clone(),
                            stream,
                            remote,
                            Arc::clone(&catalogues),
                            limits,
                            shutdown.clone(),
                        ));
                    }
                    Err(error) if is_connection_error(&error) => {
                        tracing::debug!(%error, "SPIFFE bundle endpoint: a connection failed before accept");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "SPIFFE bundle endpoint: cannot accept connections; pausing");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                }
            }
        }
    }
    drop(listener);
    while let Some(ended) = connections.join_next().await {
        if let Err(error) = ended {
            tracing::warn!(%error, "a SPIFFE bundle endpoint connection task failed");
        }
    }
    Ok(())
}

/// The TLS configuration: the node's X.509-SVID from `svid` (followed live) as server
/// certificate, no client certificate, HTTP/1.1, no resumption.
fn tls_config(
    svid: watch::Receiver<Arc<NodeSvid>>,
) -> Result<Arc<ServerConfig>, BundleEndpointTlsError> {
    // The provider is passed explicitly: with both aws-lc-rs and ring in the build (libp2p
    // needs ring), rustls cannot pick a process-level default by itself.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let resolver = SvidResolver::new(svid, Arc::clone(&provider), SERVER_NAME);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(BundleEndpointTlsError::Provider)?
        // §5.2.2.3: "servers MUST NOT require client authentication".
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    // RFC 7301: only HTTP/1.1 is served (hyper is built with http1 only).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // A resumed session is not authenticated by a certificate again, so a client could
    // keep trusting an SVID that has since rotated or expired; a bundle endpoint is
    // polled every few minutes and can afford a full handshake per connection.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The per-connection time limits.
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    handshake_timeout: Duration,
    header_read_timeout: Duration,
}

/// One connection: handshake (bounded), then HTTP/1.1 until the client closes or
/// shutdown asks it to finish.
async fn connection(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    remote: SocketAddr,
    catalogues: Arc<Catalogues>,
    limits: ConnectionLimits,
    shutdown: Shutdown,
) {
    // Small answers on kept-alive connections.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, %remote, "cannot set TCP_NODELAY on a SPIFFE bundle endpoint connection");
    }
    let tls = tokio::select! {
        handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)) => {
            match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%error, %remote, "SPIFFE bundle endpoint: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, timeout = ?limits.handshake_timeout, "SPIFFE bundle endpoint: TLS handshake timed out");
                    return;
                }
            }
        }
        () = shutdown.triggered() => return,
    };
    let service = service_fn(move |request: Request<Incoming>| {
        let response = respond(
            &catalogues.current(),
            request.method(),
            request.uri().path(),
        );
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .serve_connection(TokioIo::new(tls), service);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        () = shutdown.triggered() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, %remote, "SPIFFE bundle endpoint: connection ended with an error");
    }
}

/// The answer to one request (the routes of the module documentation).
fn respond(catalogue: &Catalogue, method: &Method, path: &str) -> Response<Body> {
    // HEAD answers like GET without the body (hyper leaves the body out).
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: the SPIFFE bundle endpoint answers GET\n".to_owned(),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        return response;
    }
    if path == "/" {
        return json(catalogue.index.clone(), NO_STORE);
    }
    // A trust domain name is made of `[a-z0-9.-_]` (SPIFFE-ID §2.1), characters that
    // stand for themselves in a URL path, so the path is compared as it came.
    let requested = path.strip_prefix('/').map(TrustDomain::parse);
    match requested {
        Some(Ok(trust_domain)) => match catalogue.bundles.get(&trust_domain) {
            Some(rendered) => json(rendered.json.clone(), rendered.cache_control.clone()),
            // The name is echoed only once it parsed, so it holds no markup or controls.
            None => text(
                StatusCode::NOT_FOUND,
                format!(
                    "no bundle of trust domain {} is served here\n",
                    trust_domain.as_str()
                ),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: the SPIFFE bundle endpoint serves / (the index) and /<trust domain>\n"
                .to_owned(),
        ),
    }
}

/// A 200 JSON answer.
fn json(body: Bytes, cache_control: HeaderValue) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, JSON);
    headers.insert(header::CACHE_CONTROL, cache_control);
    response
}

/// A short plain-text answer with `status`.
fn text(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, TEXT);
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    response
}

/// The `max-age`, in seconds, of a bundle with `refresh_hint` (seconds): the hint, or
/// [`DEFAULT_REFRESH_HINT`] without one, at most `cap`.
fn max_age_seconds(refresh_hint: Option<u64>, cap: Duration) -> u64 {
    refresh_hint
        .unwrap_or(DEFAULT_REFRESH_HINT.as_secs())
        .min(cap.as_secs())
}

/// One served bundle, rendered.
#[derive(Debug)]
struct RenderedBundle {
    /// [`TrustBundle::to_json`].
    json: Bytes,
    /// `max-age=<seconds>`.
    cache_control: HeaderValue,
}

/// Everything served for one map of bundles.
#[derive(Debug)]
struct Catalogue {
    /// The map this was rendered from (compared by pointer).
    source: Arc<BTreeMap<TrustDomain, TrustBundle>>,
    /// The body of `GET /`.
    index: Bytes,
    /// The body and cache header of each `GET /<trust domain>`.
    bundles: BTreeMap<TrustDomain, RenderedBundle>,
}

impl Catalogue {
    /// Renders every bundle of `source` and the index.
    fn render(source: Arc<BTreeMap<TrustDomain, TrustBundle>>, max_cache_age: Duration) -> Self {
        let mut entries = Vec::with_capacity(source.len());
        let mut bundles = BTreeMap::new();
        for (trust_domain, bundle) in source.iter() {
            let max_age = max_age_seconds(bundle.refresh_hint(), max_cache_age);
            // Digits after ASCII text: always a valid header value.
            let cache_control =
                HeaderValue::try_from(format!("max-age={max_age}")).unwrap_or(NO_STORE);
            bundles.insert(
                trust_domain.clone(),
                RenderedBundle {
                    json: Bytes::from(bundle.to_json()),
                    cache_control,
                },
            );
            let mut entry = Map::new();
            entry.insert(
                "trust_domain".to_owned(),
                Value::from(trust_domain.as_str()),
            );
            entry.insert(
                "path".to_owned(),
                Value::from(format!("/{}", trust_domain.as_str())),
            );
            // Absent, as in the bundle itself, when the bundle has none.
            if let Some(sequence) = bundle.sequence() {
                entry.insert("spiffe_sequence".to_owned(), Value::from(sequence));
            }
            if let Some(hint) = bundle.refresh_hint() {
                entry.insert("spiffe_refresh_hint".to_owned(), Value::from(hint));
            }
            entries.push(Value::Object(entry));
        }
        let mut index = Map::new();
        index.insert("trust_domains".to_owned(), Value::Array(entries));
        Catalogue {
            source,
            index: Bytes::from(Value::Object(index).to_string()),
            bundles,
        }
    }
}

/// The [`Catalogue`] of the map on the channel now, rendered once per map.
#[derive(Debug)]
struct Catalogues {
    bundles: ServedBundles,
    max_cache_age: Duration,
    /// The last rendering.
    current: Mutex<Option<Arc<Catalogue>>>,
}

impl Catalogues {
    fn new(bundles: ServedBundles, max_cache_age: Duration) -> Self {
        Catalogues {
            bundles,
            max_cache_age,
            current: Mutex::new(None),
        }
    }

    /// The catalogue of the map on the channel now (the last one sent, also once the
    /// sender is gone).
    fn current(&self) -> Arc<Catalogue> {
        let source = Arc::clone(&self.bundles.borrow());
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(catalogue) = current.as_ref()
            && Arc::ptr_eq(&catalogue.source, &source)
        {
            return Arc::clone(catalogue);
        }
        let catalogue = Arc::new(Catalogue::render(source, self.max_cache_age));
        *current = Some(Arc::clone(&catalogue));
        catalogue
    }
}

#[cfg(test)]
mod tests {
    //! A client that does what an `https_spiffe` consumer does (§5.2.2.4): "it MUST be
    //! validated that the server certificate is a valid X509-SVID for the bundle endpoint
    //! SPIFFE ID that was provided as a bundle endpoint parameter", using "the latest
    //! available SPIFFE bundle corresponding to the trust domain of the endpoint's SPIFFE
    //! ID" (here the node's own domain: the endpoint is not self-serving), then an HTTP
    //! GET whose body is a SPIFFE bundle.

    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::{Instant, SystemTime};

    use axum::http::HeaderMap;
    use hyper::client::conn::http1::SendRequest;
    use provmesh_protocol::machine::Timestamp;
    use provmesh_protocol::spiffe::SpiffeId;
    use provmesh_protocol::spiffe::x509::verify_x509_svid;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};
    use tempfile::TempDir;
    use tokio::io::AsyncReadExt as _;
    use tokio_rustls::TlsConnector;

    use super::*;
    use crate::identity::{DevCa, DevCaConfig, SubjectKey};
    use crate::shutdown::{self, ShutdownTrigger};

    const NODE_TD: &str = "org-a.example";
    const NODE_ID: &str = "spiffe://org-a.example/provmesh/node/a";
    const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
    /// The longest any step of a test may take before it counts as hung.
    const STEP: Duration = Duration::from_secs(10);

    fn td(name: &str) -> TrustDomain {
        TrustDomain::parse(name).unwrap()
    }

    fn dev_ca(dir: &TempDir, trust_domain: &str) -> DevCa {
        DevCa::open(
            dir.path(),
            &td(trust_domain),
            DevCaConfig::default(),
            SystemTime::now(),
        )
        .unwrap()
    }

    fn node_svid(ca: &DevCa, id: &str) -> Arc<NodeSvid> {
        let svid = ca
            .issue_x509_svid(
                &SpiffeId::parse(id).unwrap(),
                SubjectKey::Generate,
                Duration::from_secs(600),
                SystemTime::now(),
            )
            .unwrap();
        Arc::new(NodeSvid {
            spiffe_id: svid.spiffe_id,
            chain_der: svid.chain_der,
            private_key_pkcs8: svid.private_key_pkcs8.unwrap(),
            not_after: svid.not_after,
        })
    }

    /// The verifier of an `https_spiffe` consumer: the chain must be an X.509-SVID of the
    /// endpoint ID's trust domain under that domain's bundle, and its SPIFFE ID must be
    /// the configured endpoint SPIFFE ID. Remembers the leaf it accepted.
    #[derive(Debug)]
    struct EndpointVerifier {
        trust_domain: TrustDomain,
        bundle: TrustBundle,
        endpoint_id: SpiffeId,
        algorithms: WebPkiSupportedAlgorithms,
        accepted_leaf: Mutex<Option<Vec<u8>>>,
    }

    impl ServerCertVerifier for EndpointVerifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let chain: Vec<&[u8]> = std::iter::once(end_entity.as_ref())
                .chain(intermediates.iter().map(AsRef::as_ref))
                .collect();
            let svid = verify_x509_svid(
                &chain,
                &self.trust_domain,
                &self.bundle,
                Timestamp::from_unix_seconds(now.as_secs()),
            )
            .map_err(|e| rustls::Error::General(e.to_string()))?;
            if svid.spiffe_id != self.endpoint_id {
                return Err(rustls::Error::General(format!(
                    "the bundle endpoint is {}, not the configured {}",
                    svid.spiffe_id, self.endpoint_id
                )));
            }
            *self.accepted_leaf.lock().unwrap() = Some(end_entity.as_ref().to_vec());
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }

    /// An HTTP/1.1 connection to the endpoint, authenticated as `endpoint_id` under
    /// `bundle` (the bundle of `endpoint_id`'s trust domain), and the leaf it presented.
    async fn connect(
        addr: SocketAddr,
        bundle: &TrustBundle,
        endpoint_id: &str,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Result<(SendRequest<Body>, Vec<u8>), String> {
        let endpoint_id = SpiffeId::parse(endpoint_id).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(EndpointVerifier {
            trust_domain: endpoint_id.trust_domain().clone(),
            bundle: bundle.clone(),
            endpoint_id,
            algorithms: provider.signature_verification_algorithms,
            accepted_leaf: Mutex::new(None),
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
            .with_no_client_auth();
        // What Go's HTTP client (SPIRE's bundle client) offers.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(addr).await.unwrap();
        // An endpoint URL such as https://127.0.0.1:8443/org-b.example: no SNI is sent
        // for an IP address, and the SVID is checked by SPIFFE ID, not by host name.
        let name = ServerName::from(addr.ip());
        let tls = tokio::time::timeout(
            STEP,
            TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .map_err(|_| "TLS handshake timed out".to_owned())?
        .map_err(|e| format!("TLS handshake: {e}"))?;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let leaf = verifier.accepted_leaf.lock().unwrap().clone().unwrap();
        Ok((sender, leaf))
    }

    /// One request: status, headers, body.
    async fn request(
        sender: &mut SendRequest<Body>,
        method: Method,
        path: &str,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        sender.ready().await.map_err(|e| e.to_string())?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "127.0.0.1")
            .body(Body::empty())
            .unwrap();
        let response = tokio::time::timeout(STEP, sender.send_request(request))
            .await
            .map_err(|_| "request timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(Body::new(body), 4 << 20)
            .await
            .map_err(|e| e.to_string())?;
        Ok((parts.status, parts.headers, body))
    }

    async fn get(sender: &mut SendRequest<Body>, path: &str) -> (StatusCode, HeaderMap, Bytes) {
        request(sender, Method::GET, path).await.unwrap()
    }

    fn header_of(headers: &HeaderMap, name: header::HeaderName) -> &str {
        headers.get(name).unwrap().to_str().unwrap()
    }

    /// A running endpoint of node `NODE_ID` serving `org-a.example` (the node's own
    /// domain) and `org-b.example`.
    struct Endpoint {
        _dirs: [TempDir; 2],
        node_ca: DevCa,
        node_bundle: TrustBundle,
        org_b: TrustBundle,
        svid: watch::Sender<Arc<NodeSvid>>,
        bundles: watch::Sender<Arc<BTreeMap<TrustDomain, TrustBundle>>>,
        addr: SocketAddr,
        trigger: ShutdownTrigger,
        server: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    impl Endpoint {
        async fn start(config: BundleEndpointConfig) -> Endpoint {
            let dirs = [TempDir::new().unwrap(), TempDir::new().unwrap()];
            let node_ca = dev_ca(&dirs[0], NODE_TD);
            let node_bundle = node_ca.trust_bundle().clone();
            let mut org_b = dev_ca(&dirs[1], "org-b.example").trust_bundle().clone();
            org_b.set_sequence(Some(7));
            org_b.set_refresh_hint(Some(120));
            let served = BTreeMap::from([
                (td(NODE_TD), node_bundle.clone()),
                (td("org-b.example"), org_b.clone()),
            ]);
            let (bundles, bundles_rx) = watch::channel(Arc::new(served));
            let (svid, svid_rx) = watch::channel(node_svid(&node_ca, NODE_ID));
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (trigger, shutdown) = shutdown::channel();
            let server = tokio::spawn(serve(listener, svid_rx, bundles_rx, config, shutdown));
            Endpoint {
                _dirs: dirs,
                node_ca,
                node_bundle,
                org_b,
                svid,
                bundles,
                addr,
                trigger,
                server,
            }
        }

        async fn connect(&self) -> (SendRequest<Body>, Vec<u8>) {
            connect(self.addr, &self.node_bundle, NODE_ID, TLS13)
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn an_https_spiffe_client_fetches_a_foreign_domains_bundle() {
        let endpoint = Endpoint::start(BundleEndpointConfig::default()).await;
        for versions in [TLS13, TLS12] {
            let (mut sender, leaf) =
                connect(endpoint.addr, &endpoint.node_bundle, NODE_ID, versions)
                    .await
                    .unwrap();
            assert_eq!(leaf, endpoint.svid.borrow().chain_der[0]);

            let (status, headers, body) = get(&mut sender, "/org-b.example").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                header_of(&headers, header::CONTENT_TYPE),
                "application/json"
            );
            assert_eq!(header_of(&headers, header::CACHE_CONTROL), "max-age=120");
            let served = TrustBundle::from_json_strict(&body).unwrap();
            assert_eq!(served, endpoint.org_b);
            assert_eq!(served.sequence(), Some(7));
            assert_eq!(served.refresh_hint(), Some(120));
            assert!(served.x509_authorities().next().is_some());

            // The node's own domain, on the same kept-alive connection.
            let (status, _, body) = get(&mut sender, "/org-a.example").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                TrustBundle::from_json_strict(&body).unwrap(),
                endpoint.node_bundle
            );
        }
    }

    #[tokio::test]
    async fn unknown_domains_and_paths_are_404_and_other_methods_405() {
        let endpoint = Endpoint::start(BundleEndpointConfig::default()).await;
        let (mut sender, _) = endpoint.connect().await;

        let (status, headers, body) = get(&mut sender, "/org-c.example").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(header_of(&headers, header::CONTENT_TYPE).starts_with("text/plain"));
        assert_eq!(header_of(&headers, header::CACHE_CONTROL), "no-store");
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "no bundle of trust domain org-c.example is served here\n"
        );
        for path in [
            "/Org-B.example",
            "/org-b.example/",
            "/org-b.example/bundle",
            "//org-b.example",
            "/spiffe://org-b.example",
            "/org%2Db.example",
        ] {
            let (status, _, body) = get(&mut sender, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(body.starts_with(b"not found"), "{path}");
        }
        // A query does not change what is served.
        let (status, _, _) = get(&mut sender, "/org-b.example?x=1").await;
        assert_eq!(status, StatusCode::OK);

        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let (status, headers, _) = request(&mut sender, method.clone(), "/org-b.example")
                .await
                .unwrap();
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
            assert_eq!(header_of(&headers, header::ALLOW), "GET, HEAD");
        }

        // HEAD: the GET's headers, no body.
        let (status, headers, body) = request(&mut sender, Method::HEAD, "/org-b.example")
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            header_of(&headers, header::CONTENT_TYPE),
            "application/json"
        );
        assert_eq!(
            header_of(&headers, header::CONTENT_LENGTH),
            endpoint.org_b.to_json().len().to_string()
        );
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn the_index_lists_the_served_domains_and_their_sequences() {
        let endpoint = Endpoint::start(BundleEndpointConfig::default()).await;
        let (mut sender, _) = endpoint.connect().await;
        let (status, headers, body) = get(&mut sender, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            header_of(&headers, header::CONTENT_TYPE),
            "application/json"
        );
        assert_eq!(header_of(&headers, header::CACHE_CONTROL), "no-store");
        let index: Value = serde_json::from_slice(&body).unwrap();
        let mut own = serde_json::json!({"trust_domain": NODE_TD, "path": "/org-a.example"});
        if let Some(hint) = endpoint.node_bundle.refresh_hint() {
            own["spiffe_refresh_hint"] = Value::from(hint);
        }
        if let Some(sequence) = endpoint.node_bundle.sequence() {
            own["spiffe_sequence"] = Value::from(sequence);
        }
        assert_eq!(
            index,
            serde_json::json!({"trust_domains": [
                own,
                {
                    "trust_domain": "org-b.example",
                    "path": "/org-b.example",
                    "spiffe_sequence": 7,
                    "spiffe_refresh_hint": 120,
                },
            ]})
        );
    }

    #[tokio::test]
    async fn a_replaced_bundle_set_is_served_on_the_next_request() {
        let endpoint = Endpoint::start(BundleEndpointConfig::default()).await;
        let (mut sender, _) = endpoint.connect().await;
        let (status, _, _) = get(&mut sender, "/org-c.example").await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // org-c joins; org-b's record moves on (no refresh hint now); on the same
        // kept-alive connection.
        let dir = TempDir::new().unwrap();
        let org_c = dev_ca(&dir, "org-c.example").trust_bundle().clone();
        let mut org_b = endpoint.org_b.clone();
        org_b.set_sequence(Some(8));
        org_b.set_refresh_hint(None);
        endpoint.bundles.send_replace(Arc::new(BTreeMap::from([
            (td("org-b.example"), org_b.clone()),
            (td("org-c.example"), org_c.clone()),
        ])));
        let (status, _, body) = get(&mut sender, "/org-c.example").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(TrustBundle::from_json_strict(&body).unwrap(), org_c);
        let (status, headers, body) = get(&mut sender, "/org-b.example").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(TrustBundle::from_json_strict(&body).unwrap(), org_b);
        assert_eq!(header_of(&headers, header::CACHE_CONTROL), "max-age=300");
        let (_, _, body) = get(&mut sender, "/").await;
        let index: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(index["trust_domains"][0]["spiffe_sequence"], 8);
        assert_eq!(index["trust_domains"][1]["trust_domain"], "org-c.example");
        // The node's own domain was left out of this set: no longer served.
        let (status, _, _) = get(&mut sender, "/org-a.example").await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // The set survives its sender: the last one stays served.
        drop(endpoint.bundles);
        let (status, _, _) = get(&mut sender, "/org-c.example").await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_rotated_svid_is_presented_from_the_next_connection_on() {
        let endpoint = Endpoint::start(BundleEndpointConfig::default()).await;
        let (mut before, first_leaf) = endpoint.connect().await;
        let rotated = node_svid(&endpoint.node_ca, NODE_ID);
        assert_ne!(rotated.chain_der[0], first_leaf);
        endpoint.svid.send_replace(Arc::clone(&rotated));

        let (mut after, second_leaf) = endpoint.connect().await;
        assert_eq!(second_leaf, rotated.chain_der[0]);
        assert_eq!(get(&mut after, "/org-b.example").await.0, StatusCode::OK);
        // The connection made before the rotation keeps working.
        assert_eq!(get(&mut before, "/org-b.example").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_client_configured_for_another_endpoint_is_refused() {
        let endpoint = Endpoint::start(BundleEndpointConfig::default()).await;
        // Another endpoint SPIFFE ID of the same domain.
        let err = connect(
            endpoint.addr,
            &endpoint.node_bundle,
            "spiffe://org-a.example/provmesh/node/b",
            TLS13,
        )
        .await
        .err()
        .unwrap();
        assert!(
            err.contains("not the configured spiffe://org-a.example/provmesh/node/b"),
            "{err}"
        );
        // The endpoint ID in another domain: the node's SVID is not of that domain.
        let err = connect(
            endpoint.addr,
            &endpoint.org_b,
            "spiffe://org-b.example/provmesh/node/a",
            TLS13,
        )
        .await
        .err()
        .unwrap();
        assert!(err.starts_with("TLS handshake"), "{err}");
        // The node's ID, but checked against another domain's authorities (a forged
        // bundle for org-a.example).
        let err = connect(endpoint.addr, &endpoint.org_b, NODE_ID, TLS13)
            .await
            .err()
            .unwrap();
        assert!(err.starts_with("TLS handshake"), "{err}");
        // The endpoint itself is unharmed.
        let (mut sender, _) = endpoint.connect().await;
        assert_eq!(get(&mut sender, "/").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_large_bundle_is_served_whole() {
        let endpoint = Endpoint::start(BundleEndpointConfig::default()).await;
        // Far beyond the connection's buffer (MAX_REQUEST_HEAD_BYTES).
        let mut large = endpoint.org_b.clone().to_value();
        large["padding"] = Value::from("x".repeat(512 * 1024));
        let large = TrustBundle::from_value(large).unwrap();
        endpoint.bundles.send_replace(Arc::new(BTreeMap::from([(
            td("org-b.example"),
            large.clone(),
        )])));
        let (mut sender, _) = endpoint.connect().await;
        let (status, _, body) = get(&mut sender, "/org-b.example").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(TrustBundle::from_json_strict(&body).unwrap(), large);
    }

    #[tokio::test]
    async fn stalled_handshakes_time_out_and_hold_a_connection_slot_until_then() {
        let timeout = Duration::from_millis(400);
        let config = BundleEndpointConfig {
            max_connections: 1,
            handshake_timeout: timeout,
            ..BundleEndpointConfig::default()
        };
        let endpoint = Endpoint::start(config).await;
        // A client that connects and never says hello takes the only slot.
        let mut stalled = TcpStream::connect(endpoint.addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let (mut sender, _) = endpoint.connect().await;
        assert!(
            started.elapsed() >= timeout - Duration::from_millis(100),
            "the second connection was served after {:?}, before the stalled handshake \
             timed out",
            started.elapsed()
        );
        assert_eq!(get(&mut sender, "/").await.0, StatusCode::OK);
        // The stalled connection was closed by the server.
        let mut buffer = [0u8; 16];
        let read = tokio::time::timeout(STEP, stalled.read(&mut buffer))
            .await
            .unwrap();
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_closes_kept_alive_connections() {
        let endpoint = Endpoint::start(BundleEndpointConfig::default()).await;
        let (mut sender, _) = endpoint.connect().await;
        assert_eq!(get(&mut sender, "/").await.0, StatusCode::OK);
        endpoint.trigger.trigger();
        tokio::time::timeout(STEP, endpoint.server)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
        assert!(request(&mut sender, Method::GET, "/").await.is_err());
        assert!(TcpStream::connect(endpoint.addr).await.is_err());
    }

    #[test]
    fn max_age_is_the_refresh_hint_within_the_cap() {
        let cap = Duration::from_secs(3600);
        assert_eq!(max_age_seconds(Some(120), cap), 120);
        assert_eq!(max_age_seconds(None, cap), 300);
        assert_eq!(max_age_seconds(Some(u64::MAX), cap), 3600);
        assert_eq!(max_age_seconds(Some(120), Duration::ZERO), 0);
    }

    #[test]
    fn a_map_is_rendered_once() {
        let (tx, rx) = watch::channel(Arc::new(BTreeMap::from([(
            td("org-b.example"),
            TrustBundle::new(),
        )])));
        let catalogues = Catalogues::new(rx, DEFAULT_MAX_CACHE_AGE);
        let first = catalogues.current();
        assert!(Arc::ptr_eq(&first, &catalogues.current()));
        tx.send_replace(Arc::new(BTreeMap::new()));
        let second = catalogues.current();
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(second.bundles.is_empty());
        assert_eq!(&second.index[..], br#"{"trust_domains":[]}"#);
    }
}
