//! The CA's mTLS listener (`authority.ca.mtls_listen`): the Fulcio v2 routes of
//! [`super::http`] over TLS, where the workload's X.509-SVID on the connection is its
//! credential — the third way in of `docs/ca.md`, beside the JWT-SVID and the signed
//! X.509-SVID proof, which work here too.
//!
//! - **Server certificate**: the node's own X.509-SVID, read from the identity's watch
//!   channel at every handshake (`SvidResolver`), so a rotated SVID is presented from
//!   the next connection on, without a restart.
//! - **Client certificate**: requested, optional at the TLS level. A connection without
//!   one serves requests that carry their own credential (or get 401 without one).
//! - **What the TLS layer checks, and what it does not.** `PeerChainVerifier` accepts
//!   any chain the client sends, and verifies only the handshake signature (rustls'
//!   `verify_tls12_signature` / `verify_tls13_signature` with the provider's
//!   algorithms): the client holds the private key of the leaf it presented. It does
//!   **not** validate the chain. That is the CA rules' job: the chain (leaf first) goes to
//!   `CaService::issue(&request, Some(&chain))`, whose `authorize`
//!   (`provmesh_protocol::ca::request`) runs X509-SVID validation against the domain's
//!   bundle — path to an X.509 authority, the leaf profile, one SPIFFE ID of this trust
//!   domain, every certificate valid — at the time of each request and under the bundle
//!   current then. Validating here as well would be a second copy of that rule that
//!   could drift from it; validating only here would check the chain once, at the
//!   handshake, so a kept-alive connection outliving its client's SVID would still
//!   pass. A refused chain therefore gets Fulcio's 401 with a reason, not a TLS alert.
//! - **No session resumption**: every connection proves possession of its leaf key
//!   afresh.
//! - **Bounds**: a handshake must finish within [`HANDSHAKE_TIMEOUT`], request headers
//!   within [`HEADER_READ_TIMEOUT`]; at most [`MAX_CONNECTIONS`] connections at once
//!   (further ones wait in the kernel's accept queue); bodies are limited by the router
//!   (`http.max_request_bytes`). Connection errors are logged at debug level.
//! - **Shutdown**: on the node's shutdown signal the listener stops accepting,
//!   handshakes in progress are dropped, and served connections finish their request
//!   in flight and close (hyper's graceful shutdown); [`serve`] returns when all have.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::identity::NodeSvid;
use crate::shutdown::Shutdown;

/// The longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a client may take to send a request's headers (hyper's header read
/// timeout, also applied to an idle kept-alive connection's next request).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The most connections served (or in their handshake) at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// How long accepting pauses after an error that is not about one connection (e.g. out
/// of file descriptors), so such an error cannot make the loop spin.
pub(crate) const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The X.509-SVID chain the client presented on the mTLS connection a request arrived
/// on: DER, leaf first, as the TLS layer received it — not validated (see the module
/// documentation). Inserted into every request of the connection as an axum extension;
/// [`super::http`] passes it to the CA as the `mtls_peer` credential. Requests on the
/// plain HTTP listener never carry it: extensions do not come from the wire.
#[derive(Debug, Clone)]
pub(crate) struct MtlsPeer(Arc<Vec<Vec<u8>>>);

impl MtlsPeer {
    /// The chain, leaf first.
    pub(crate) fn chain(&self) -> &[Vec<u8>] {
        &self.0
    }
}

/// Why the TLS configuration of the mTLS listener could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MtlsConfigError {
    /// rustls refused the protocol versions with the aws-lc-rs provider.
    #[error("the TLS provider (aws-lc-rs) cannot serve TLS 1.2 and 1.3: {0}")]
    Provider(#[source] rustls::Error),
}

/// The TLS configuration of the mTLS listener: the node's X.509-SVID from `svid` (followed
/// live) as server certificate, an optional client certificate whose handshake signature
/// is checked and whose chain is left to the CA's rules, HTTP/1.1, no resumption.
pub fn tls_config(
    svid: watch::Receiver<Arc<NodeSvid>>,
) -> Result<Arc<ServerConfig>, MtlsConfigError> {
    // The provider is passed explicitly: with both aws-lc-rs and ring in the build (libp2p
    // needs ring), rustls cannot pick a process-level default by itself.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = PeerChainVerifier {
        algorithms: provider.signature_verification_algorithms,
    };
    let resolver = SvidResolver::new(svid, Arc::clone(&provider), "mTLS CA");
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(MtlsConfigError::Provider)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(resolver));
    // RFC 7301: only HTTP/1.1 is served (axum is built with http1 only).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // A resumed session would carry the first handshake's client chain without a new
    // signature; a CA can afford a full handshake per connection.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Serves `router` (the CA's Fulcio routes, [`super::http::router`]; or another
/// listener's, named `name` in logs) over TLS with `tls` on `listener` until `shutdown`
/// fires and every connection has closed.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: Shutdown,
) -> Result<(), std::io::Error> {
    let acceptor = TlsAcceptor::from(tls);
    let service = TowerToHyperService::new(router);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.triggered() => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = ended {
                    tracing::warn!(%error, listener = name, "a TLS connection task failed");
                }
            }
            accepted = listener.accept(), if connections.len() < MAX_CONNECTIONS => {
                match accepted {
                    Ok((stream, remote)) => {
                        connections.spawn(connection(
                            acceptor.clone(),
                            stream,
                            remote,
                            service.clone(),
                            shutdown.clone(),
                        ));
                    }
                    Err(error) if is_connection_error(&error) => {
                        tracing::debug!(%error, listener = name, "a connection failed before accept");
                    }
                    Err(error) => {
                        tracing::warn!(%error, listener = name, "cannot accept connections; pausing");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                }
            }
        }
    }
    drop(listener);
    while let Some(ended) = connections.join_next().await {
        if let Err(error) = ended {
            tracing::warn!(%error, listener = name, "a TLS connection task failed");
        }
    }
    Ok(())
}

/// One connection: handshake (bounded), then HTTP/1.1 with the peer chain attached to
/// every request, until the client closes or shutdown asks it to finish.
async fn connection(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    remote: std::net::SocketAddr,
    service: TowerToHyperService<Router>,
    shutdown: Shutdown,
) {
    // Small answers on kept-alive connections (as on the plain HTTP listener).
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, %remote, "cannot set TCP_NODELAY on a TLS connection");
    }
    let tls = tokio::select! {
        handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => {
            match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%error, %remote, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out");
                    return;
                }
            }
        }
        () = shutdown.triggered() => return,
    };
    let peer = tls.get_ref().1.peer_certificates().map(|chain| {
        MtlsPeer(Arc::new(
            chain.iter().map(|cert| cert.as_ref().to_vec()).collect(),
        ))
    });
    let service = service_fn(move |mut request: Request<Incoming>| {
        if let Some(peer) = &peer {
            request.extensions_mut().insert(peer.clone());
        }
        service.call(request)
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
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
        tracing::debug!(%error, %remote, "connection ended with an error");
    }
}

/// Accept errors about one incoming connection (it was reset before it was accepted),
/// not about the listener.
pub(crate) fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// The server certificate: the node's current X.509-SVID. The parsed key is kept with the
/// SVID it came from and rebuilt only when the watch holds a new one. Also the server
/// certificate of the SPIFFE bundle endpoint (`crate::mesh::bundle_endpoint`).
#[derive(Debug)]
pub(crate) struct SvidResolver {
    svid: watch::Receiver<Arc<NodeSvid>>,
    provider: Arc<CryptoProvider>,
    /// The last SVID seen and its certified key.
    current: Mutex<Option<Presented>>,
    /// The listener's name in logs, e.g. "mTLS CA".
    server: &'static str,
}

/// An SVID and what it gave as TLS certificate.
#[derive(Debug)]
struct Presented {
    svid: Arc<NodeSvid>,
    /// `None` if it could not be loaded.
    key: Option<Arc<CertifiedKey>>,
}

impl SvidResolver {
    /// Presents the SVID in `svid` (followed live), loaded with `provider`; `server` names
    /// the listener in logs.
    pub(crate) fn new(
        svid: watch::Receiver<Arc<NodeSvid>>,
        provider: Arc<CryptoProvider>,
        server: &'static str,
    ) -> SvidResolver {
        SvidResolver {
            svid,
            provider,
            current: Mutex::new(None),
            server,
        }
    }

    /// The certified key of the SVID in the watch now.
    fn current(&self) -> Option<Arc<CertifiedKey>> {
        let svid = Arc::clone(&self.svid.borrow());
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(presented) = current.as_ref()
            && Arc::ptr_eq(&presented.svid, &svid)
        {
            return presented.key.clone();
        }
        let chain = svid
            .chain_der
            .iter()
            .map(|der| CertificateDer::from(der.clone()))
            .collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(svid.private_key_pkcs8.clone()));
        // `from_der` also checks that the key is the leaf's.
        let key = match CertifiedKey::from_der(chain, key, &self.provider) {
            Ok(key) => {
                tracing::debug!(spiffe_id = %svid.spiffe_id, "{}: presenting the node's X.509-SVID", self.server);
                Some(Arc::new(key))
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    spiffe_id = %svid.spiffe_id,
                    "{}: the node's X.509-SVID cannot be used as TLS certificate; \
                     handshakes fail until the next SVID",
                    self.server
                );
                None
            }
        };
        *current = Some(Presented {
            svid,
            key: key.clone(),
        });
        key
    }
}

impl ResolvesServerCert for SvidResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// The client certificate check at the TLS layer: any chain, but the handshake signature
/// must verify under its leaf. Chain validation is the CA rules' (module documentation).
#[derive(Debug)]
struct PeerChainVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PeerChainVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // A request may carry its own credential (JWT-SVID, X.509-SVID proof) instead.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // RFC 8446 §4.2.4 / rustls: "When an empty list is sent the client should always
        // provide a client certificate if it has one."
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Deliberately no validation here: `authorize` validates the chain against the
        // domain's bundle at request time (module documentation). The leaf is parsed
        // when its handshake signature is verified below.
        Ok(ClientCertVerified::assertion())
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};

    use super::*;
    use crate::identity::{DevCa, DevCaConfig, SubjectKey};

    fn node_svid(ca: &DevCa, id: &SpiffeId) -> Arc<NodeSvid> {
        let svid = ca
            .issue_x509_svid(
                id,
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

    fn resolver(svid: watch::Receiver<Arc<NodeSvid>>) -> SvidResolver {
        SvidResolver::new(
            svid,
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            "mTLS CA",
        )
    }

    #[test]
    fn the_server_certificate_follows_svid_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let trust_domain = TrustDomain::parse("org-a.example").unwrap();
        let ca = DevCa::open(
            dir.path(),
            &trust_domain,
            DevCaConfig::default(),
            SystemTime::now(),
        )
        .unwrap();
        let id = SpiffeId::parse("spiffe://org-a.example/provmesh/node/a").unwrap();
        let first = node_svid(&ca, &id);
        let (tx, rx) = watch::channel(Arc::clone(&first));
        let resolver = resolver(rx);

        let key = resolver.current().unwrap();
        assert_eq!(key.cert[0].as_ref(), first.chain_der[0].as_slice());
        // Cached while the SVID is unchanged: the same parsed key.
        assert!(Arc::ptr_eq(&key, &resolver.current().unwrap()));

        let second = node_svid(&ca, &id);
        assert_ne!(first.chain_der, second.chain_der);
        tx.send_replace(Arc::clone(&second));
        let rotated = resolver.current().unwrap();
        assert_eq!(rotated.cert[0].as_ref(), second.chain_der[0].as_slice());
    }

    #[test]
    fn an_svid_whose_key_is_not_the_leafs_is_not_presented() {
        let dir = tempfile::tempdir().unwrap();
        let trust_domain = TrustDomain::parse("org-a.example").unwrap();
        let ca = DevCa::open(
            dir.path(),
            &trust_domain,
            DevCaConfig::default(),
            SystemTime::now(),
        )
        .unwrap();
        let id = SpiffeId::parse("spiffe://org-a.example/provmesh/node/a").unwrap();
        let one = node_svid(&ca, &id);
        let other = node_svid(&ca, &id);
        let mismatched = Arc::new(NodeSvid {
            private_key_pkcs8: other.private_key_pkcs8.clone(),
            ..(*one).clone()
        });
        let (tx, rx) = watch::channel(mismatched);
        let resolver = resolver(rx);
        assert!(resolver.current().is_none());
        // The next good SVID is presented again.
        tx.send_replace(Arc::clone(&one));
        assert!(resolver.current().is_some());
    }
}
