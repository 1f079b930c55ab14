//! The Kubernetes admission webhook (`[admission]`): `POST /admission/v1/validate` on
//! the HTTP API answers `AdmissionReview` (v1) requests. Every image of the object
//! (`provmesh_protocol::admission::images_of`: containers, init and ephemeral
//! containers of Pods, workloads and CronJobs) is judged: an image without a digest is
//! denied (unless `allow_tag_only`), and a digest is looked up exactly as
//! `GetProvenance` does — the own log and every federated one, records checked — and
//! judged under the configured policy. The review is allowed only when every image is;
//! a denial says which image and why.
//!
//! A review that cannot be read gets HTTP 400: the API server then applies the webhook's
//! `failurePolicy` (`Fail` refuses the object).
//!
//! The API server calls webhooks over HTTPS only: `admission.listen` opens an HTTPS
//! listener serving the webhook alone, with a certificate and key from PEM files
//! ([`tls_config`]; cert-manager's Secret in Kubernetes), re-read when they change so a
//! renewed certificate is served from the next connection on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use provmesh_protocol::admission::{
    AdmissionRequest, ImageVerdict, MAX_REVIEW_BYTES, ReferenceRule, images_of, reference_rule,
    review_response,
};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tonic::Request;

use crate::grpc::provenance::ProvenanceGrpc;
use crate::grpc::v1::GetProvenanceRequest;
use crate::grpc::v1::provenance_service_server::ProvenanceService as _;

/// How one digest was judged: allowed, or the reasons; or why it could not be looked up.
type DigestVerdict = Result<(bool, Vec<String>), String>;

/// The webhook's path on the HTTP API.
pub const PATH: &str = "/admission/v1/validate";

/// The webhook: the provenance lookups and the policy they are judged under.
#[derive(Debug, Clone)]
pub struct Admission {
    provenance: ProvenanceGrpc,
    policy: String,
    allow_tag_only: bool,
}

/// Why the webhook could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("admission policy {path}: {reason}")]
pub struct AdmissionSetupError {
    /// The policy file.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl Admission {
    /// The webhook over `provenance`, judging under the policy in `policy_file` (none:
    /// the empty policy).
    pub fn new(
        provenance: ProvenanceGrpc,
        policy_file: Option<&Path>,
        allow_tag_only: bool,
    ) -> Result<Admission, AdmissionSetupError> {
        let policy = match policy_file {
            Some(path) => {
                crate::lookup::read_policy(path).map_err(|reason| AdmissionSetupError {
                    path: path.display().to_string(),
                    reason,
                })?
            }
            None => String::new(),
        };
        Ok(Admission {
            provenance,
            policy,
            allow_tag_only,
        })
    }

    /// The answer to one `AdmissionReview` (JSON), or why it cannot be read.
    pub async fn review(&self, body: &[u8]) -> Result<serde_json::Value, String> {
        let request = AdmissionRequest::parse(body).map_err(|e| e.to_string())?;
        let images = match &request.object {
            Some(object) => images_of(&request.kind, object).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        // Each distinct digest is looked up once, all of them at once.
        let rules: Vec<ReferenceRule> = images
            .iter()
            .map(|image| reference_rule(&image.image, self.allow_tag_only))
            .collect();
        let distinct: std::collections::BTreeSet<[u8; 32]> = rules
            .iter()
            .filter_map(|rule| match rule {
                ReferenceRule::LookUp(digest) => Some(*digest),
                _ => None,
            })
            .collect();
        let judged = futures::future::join_all(distinct.iter().map(|d| self.judge(*d))).await;
        let digests: BTreeMap<[u8; 32], DigestVerdict> = distinct.into_iter().zip(judged).collect();
        let verdicts: Vec<ImageVerdict> = images
            .into_iter()
            .zip(rules)
            .map(|(image, rule)| {
                let (allowed, reasons) = match rule {
                    ReferenceRule::Admit => (true, Vec::new()),
                    ReferenceRule::Deny(reason) => (false, vec![reason]),
                    ReferenceRule::LookUp(digest) => match digests.get(&digest).cloned() {
                        Some(Ok(verdict)) => verdict,
                        Some(Err(e)) => (false, vec![format!("lookup-failed: {e}")]),
                        None => (false, vec!["lookup-failed: not judged".to_owned()]),
                    },
                };
                ImageVerdict {
                    place: image.place,
                    image: image.image,
                    allowed,
                    reasons,
                }
            })
            .collect();
        Ok(review_response(&request.uid, &verdicts))
    }

    /// Looks `digest` up and judges it: allowed, or the reasons (`code: message`, the
    /// artifact's and each record's, once each).
    async fn judge(&self, digest: [u8; 32]) -> DigestVerdict {
        let answer = self
            .provenance
            .get_provenance(Request::new(GetProvenanceRequest {
                digest: format!("sha256:{}", hex::encode(digest)),
                policy: self.policy.clone(),
            }))
            .await
            .map_err(|status| status.message().to_owned())?
            .into_inner();
        let verdict = answer.verdict.unwrap_or_default();
        if verdict.allowed {
            return Ok((true, Vec::new()));
        }
        let mut reasons: Vec<String> = Vec::new();
        for reason in answer
            .records
            .iter()
            .filter_map(|r| r.verdict.as_ref())
            .chain(std::iter::once(&verdict))
            .flat_map(|v| &v.reasons)
        {
            let text = format!("{}: {}", reason.code, reason.message);
            if !reasons.contains(&text) {
                reasons.push(text);
            }
        }
        Ok((false, reasons))
    }
}

/// The webhook's route.
pub fn router(admission: Arc<Admission>) -> Router {
    Router::new()
        .route(PATH, post(validate))
        .with_state(admission)
}

async fn validate(
    State(admission): State<Arc<Admission>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match crate::log::http::read_body(&headers, body, MAX_REVIEW_BYTES).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    match admission.review(&body).await {
        Ok(answer) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            answer.to_string(),
        )
            .into_response(),
        Err(reason) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{reason}\n"),
        )
            .into_response(),
    }
}

/// The HTTPS listener's TLS configuration: the certificate chain and key in `cert` and
/// `key` (PEM), re-read when either file changes (a file that cannot be read then keeps
/// the previous pair in service, with a warning); no client certificate; HTTP/1.1.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, AdmissionSetupError> {
    // With both aws-lc-rs and ring in the build, rustls needs the provider named.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let files = CertFiles {
        cert: cert.to_owned(),
        key: key.to_owned(),
        provider: Arc::clone(&provider),
        current: Mutex::new(None),
    };
    // Loaded once now, so that a missing or broken pair fails the start, not a handshake.
    let loaded = files.load().map_err(|reason| AdmissionSetupError {
        path: cert.display().to_string(),
        reason,
    })?;
    *files.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(loaded);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AdmissionSetupError {
            path: cert.display().to_string(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(files));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A certificate and key read from files, with the files' modification times.
#[derive(Debug)]
struct Loaded {
    stamps: (Option<SystemTime>, Option<SystemTime>),
    key: Arc<CertifiedKey>,
}

/// Serves the pair in two PEM files, re-read when their modification time changes.
#[derive(Debug)]
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Option<Loaded>>,
}

impl CertFiles {
    fn stamps(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (modified(&self.cert), modified(&self.key))
    }

    fn load(&self) -> Result<Loaded, String> {
        let stamps = self.stamps();
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .and_then(Iterator::collect)
            .map_err(|e| format!("{}: {e}", self.cert.display()))?;
        if chain.is_empty() {
            return Err(format!("{}: no certificate", self.cert.display()));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| format!("{}: {e}", self.key.display()))?;
        let signing = self
            .provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("{}: {e}", self.key.display()))?;
        let certified = CertifiedKey::new(chain, signing);
        certified
            .keys_match()
            .map_err(|e| format!("{} and {}: {e}", self.cert.display(), self.key.display()))?;
        Ok(Loaded {
            stamps,
            key: Arc::new(certified),
        })
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let stamps = self.stamps();
        if current.as_ref().is_none_or(|c| c.stamps != stamps) {
            match self.load() {
                Ok(loaded) => {
                    tracing::info!(cert = %self.cert.display(), "admission webhook certificate (re)loaded");
                    *current = Some(loaded);
                }
                Err(reason) => {
                    tracing::warn!(%reason, "admission webhook certificate not reloaded; the previous one stays in service");
                }
            }
        }
        current.as_ref().map(|c| Arc::clone(&c.key))
    }
}
