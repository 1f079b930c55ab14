//! The CA service: one request in, one logged certificate out.
//!
//! Order of work for each request, cheapest refusal first:
//! 1. [`authorize`] (the core's rules): credential of this trust domain under the
//!    current bundle, P-256 key, proof of possession;
//! 2. the identity's quota;
//! 3. issue (certificate with one embedded SCT, [`CodeSigningIssuer::issue`]);
//! 4. append the precertificate to the domain log and wait until it is durable under a
//!    signed checkpoint — only then does the certificate (and with it the SCT) leave.
//!
//! A failure at step 4 discards the certificate: an SCT whose promise the log did not
//! keep is never returned.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use provmesh_protocol::ca::request::{RequestError, SigningCertRequest, authorize};
use provmesh_protocol::ca::{
    CodeSigningIssuer, IssueError, IssueRequest, IssuedCertificate, RecordError,
    precertificate_entry,
};
use provmesh_protocol::log::quota::{IdentityQuota, QuotaConfig, QuotaError};
use provmesh_protocol::machine::Timestamp;
use provmesh_protocol::note::{KeyName, KeyParseError};
use provmesh_protocol::sigstore_trust::{CaTrust, CtTrust, DomainTrust, LogTrust};
use provmesh_protocol::spiffe::{SpiffeId, TrustBundle, TrustDomain};
use tokio::sync::watch;

use crate::log::LogHandle;
use crate::log::service::{AppendError, Appended};

/// Why a certificate was not issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The request was refused by the CA's rules.
    #[error(transparent)]
    Refused(#[from] RequestError),
    /// The identity spent its quota.
    #[error(transparent)]
    Quota(#[from] QuotaError),
    /// The certificate could not be built.
    #[error("issuing failed: {0}")]
    Issue(#[from] IssueError),
    /// The precertificate could not be recorded.
    #[error("recording the precertificate failed: {0}")]
    Record(#[from] RecordError),
    /// The domain log did not take the precertificate, so no SCT is returned.
    #[error("the domain log did not record the precertificate: {0}")]
    Log(#[from] AppendError),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

impl CaError {
    /// A short label for metrics.
    fn reason(&self) -> &'static str {
        match self {
            CaError::Refused(RequestError::NoCredential) => "no_credential",
            CaError::Refused(
                RequestError::JwtSvid(_) | RequestError::X509Svid(_) | RequestError::BadSvidProof,
            ) => "identity",
            CaError::Refused(
                RequestError::MissingProofOfPossession | RequestError::BadProofOfPossession(_),
            ) => "proof_of_possession",
            CaError::Refused(_) => "malformed",
            CaError::Quota(_) => "quota",
            CaError::Issue(_) | CaError::Record(_) | CaError::Random => "internal",
            CaError::Log(_) => "log",
        }
    }
}

/// A certificate issued and recorded.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The identity certified.
    pub spiffe_id: SpiffeId,
    /// The certificate, its precertificate TBS and SCT, and the CA chain.
    pub certificate: IssuedCertificate,
    /// Index of the precertificate entry in the domain log.
    pub log_index: u64,
}

/// Settings of the CA service.
#[derive(Debug, Clone, Copy)]
pub struct CaSettings {
    /// Lifetime of an issued certificate.
    pub validity: Duration,
    /// Per-identity issuance quota.
    pub quota: QuotaConfig,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The code-signing CA of the authority. Cheap to clone.
#[derive(Clone)]
pub struct CaService {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: CodeSigningIssuer,
    trust_domain: TrustDomain,
    oidc_issuer: String,
    bundle: watch::Receiver<Arc<TrustBundle>>,
    quota: Mutex<IdentityQuota>,
    log: LogHandle,
    settings: CaSettings,
    random: SystemRandom,
    issued: Family<MethodLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
}

impl CaService {
    /// A CA issuing with `issuer`, authenticating against the trust domain's `bundle` as
    /// it changes, recording in `log`. Registers its metrics (`provmesh_ca_*`).
    pub fn new(
        issuer: CodeSigningIssuer,
        bundle: watch::Receiver<Arc<TrustBundle>>,
        log: LogHandle,
        settings: CaSettings,
        registry: &mut Registry,
    ) -> CaService {
        let trust_domain = issuer.trust_domain().clone();
        let issued = Family::<MethodLabels, Counter>::default();
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "issued",
            "Code-signing certificates issued, by how the identity was proven",
            issued.clone(),
        );
        registry.register(
            "refusals",
            "Certificate requests refused, by reason",
            refused.clone(),
        );
        CaService {
            inner: Arc::new(Inner {
                oidc_issuer: format!("spiffe://{}", trust_domain.as_str()),
                trust_domain,
                issuer,
                bundle,
                quota: Mutex::new(IdentityQuota::new(settings.quota)),
                log,
                settings,
                random: SystemRandom::new(),
                issued,
                refused,
            }),
        }
    }

    /// The trust domain whose workloads this CA certifies.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.inner.trust_domain
    }

    /// The CA chain of issued certificates (issuing CA first, root last), DER.
    pub fn chain(&self) -> &[Vec<u8>] {
        self.inner.issuer.chain()
    }

    /// The domain's verification material (log key, CT key, CA chain) as a Sigstore
    /// trusted root lists it; see [`domain_trust`].
    pub fn domain_trust(&self) -> Result<DomainTrust, DomainTrustError> {
        let inner = &self.inner;
        domain_trust(
            inner.log.origin(),
            inner.log.public_key(),
            inner.issuer.ct_log_key().public_key_spki_der(),
            inner.issuer.chain(),
        )
    }

    /// Checks, issues and records one request. `mtls_peer` is the X.509-SVID chain of an
    /// mTLS client, if the request came over mTLS.
    pub async fn issue(
        &self,
        request: &SigningCertRequest,
        mtls_peer: Option<&[Vec<u8>]>,
    ) -> Result<Issued, CaError> {
        let result = self.issue_inner(request, mtls_peer).await;
        match &result {
            Ok(issued) => {
                tracing::info!(
                    spiffe_id = %issued.spiffe_id,
                    serial = %hex::encode(&issued.certificate.serial),
                    log_index = issued.log_index,
                    "issued a code-signing certificate"
                );
            }
            Err(error) => {
                self.inner
                    .refused
                    .get_or_create(&ReasonLabels {
                        reason: error.reason(),
                    })
                    .inc();
                tracing::debug!(%error, "refused a certificate request");
            }
        }
        result
    }

    async fn issue_inner(
        &self,
        request: &SigningCertRequest,
        mtls_peer: Option<&[Vec<u8>]>,
    ) -> Result<Issued, CaError> {
        let inner = &self.inner;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let timestamp = Timestamp::from_unix_millis(now_ms);
        let bundle = Arc::clone(&inner.bundle.borrow());
        let authorized = authorize(request, mtls_peer, &inner.trust_domain, &bundle, timestamp)?;
        inner
            .quota
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .charge(authorized.spiffe_id.as_str(), timestamp)?;
        let mut serial = [0u8; 20];
        inner
            .random
            .fill(&mut serial)
            .map_err(|_| CaError::Random)?;
        let validity_seconds = u32::try_from(inner.settings.validity.as_secs()).unwrap_or(u32::MAX);
        let certificate = inner.issuer.issue(&IssueRequest {
            subject_public_key_spki_der: &authorized.subject_public_key_spki_der,
            spiffe_id: &authorized.spiffe_id,
            oidc_issuer: &inner.oidc_issuer,
            not_before_unix: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            validity_seconds,
            serial: &serial,
            sct_timestamp_ms: now_ms,
        })?;
        let entry = precertificate_entry(
            &certificate,
            inner.issuer.ca_public_key_spki_der(),
            &authorized.spiffe_id,
        )?;
        let appended = inner.log.append_admitted(entry).await?;
        inner
            .issued
            .get_or_create(&MethodLabels {
                method: authorized.method.as_str(),
            })
            .inc();
        Ok(Issued {
            spiffe_id: authorized.spiffe_id,
            certificate,
            log_index: match appended {
                Appended::Created(record) | Appended::Duplicate(record) => record.index,
            },
        })
    }
}

/// Why the domain's verification material could not be described.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainTrustError {
    /// The log origin is not a note key name.
    #[error("the log origin {origin:?} is not a valid key name: {source}")]
    Origin {
        /// The origin.
        origin: String,
        /// Why.
        #[source]
        source: KeyParseError,
    },
    /// There is no CA certificate.
    #[error("the code-signing CA chain is empty")]
    EmptyChain,
    /// The trust anchor does not parse.
    #[error("the code-signing root certificate does not parse: {0}")]
    Root(String),
}

/// One domain's verification material, for [`provmesh_protocol::sigstore_trust::trusted_root`]:
/// the log `origin` with its Ed25519 key, the CT key that signs the embedded SCTs, and
/// the code-signing CA chain (issuing CA first, root last).
///
/// Both services are named by the authority's public URL, `https://<origin>`: the log and
/// the CA share the authority's HTTP listener, and verifiers match the checkpoint
/// signature's name against the log URL's host (`LogTrust::base_url`). No verifier
/// contacts either URL when verifying offline.
///
/// Every key is declared valid from the code-signing root's `notBefore`. Verifiers look
/// the log key and the CA up at a bundle's integrated time, and every bundle this trust
/// covers has a certificate of this root, so it was logged after the root existed; the
/// root's start is backdated a day ([`crate::ca::keys`]) for verifiers whose clock is
/// behind (sigstore-python ignores a key whose start is after its clock). The log key
/// may be older than the root, but it signed nothing a bundle of this trust needs before.
pub fn domain_trust(
    origin: &str,
    log_public_key: [u8; 32],
    ct_spki_der: &[u8],
    ca_chain_der: &[Vec<u8>],
) -> Result<DomainTrust, DomainTrustError> {
    let name = KeyName::new(origin).map_err(|source| DomainTrustError::Origin {
        origin: origin.to_owned(),
        source,
    })?;
    let root = ca_chain_der.last().ok_or(DomainTrustError::EmptyChain)?;
    let valid_from = x509_parser::parse_x509_certificate(root)
        .map_err(|e| DomainTrustError::Root(e.to_string()))?
        .1
        .validity()
        .not_before
        .timestamp();
    let url = format!("https://{origin}");
    Ok(DomainTrust {
        log: LogTrust::new(&name, url.clone(), log_public_key, valid_from),
        ct: CtTrust {
            spki_der: ct_spki_der.to_vec(),
            valid_from_unix: valid_from,
        },
        ca: CaTrust {
            chain_der: ca_chain_der.to_vec(),
            valid_from_unix: valid_from,
            uri: url,
        },
    })
}
