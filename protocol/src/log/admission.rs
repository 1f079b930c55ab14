//! Admission: everything that decides whether a proposed entry may enter the log before
//! it is ordered — parse, certificate chain and validity, signature, quota — in the order
//! the rules require. It does not depend on the log's state, so the node runs it in
//! parallel in its request handlers, ahead of the sequencer.

use std::sync::Mutex;

use super::AdmittedEntry;
use super::entry::{AdmitError, ProposedEntry, ProposedEntryError};
use super::quota::{IdentityQuota, QuotaConfig, QuotaError};
use super::signer_cert::{CodeSigningRoots, SignerCertError, VerifiedCertCache};
use crate::machine::Timestamp;

/// Why a proposed entry was not admitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// The proposed entry is malformed or of an unsupported kind.
    #[error(transparent)]
    Malformed(#[from] ProposedEntryError),
    /// The signer's certificate may not write to this log.
    #[error("signing certificate refused: {0}")]
    Certificate(#[from] SignerCertError),
    /// The signature does not verify.
    #[error(transparent)]
    Rejected(#[from] AdmitError),
    /// The signer's quota is spent.
    #[error(transparent)]
    Quota(#[from] QuotaError),
}

/// The admission rules of one log: its code-signing roots, a cache of verified
/// certificates and the per-identity quotas. Shared by every request handler (`Sync`).
#[derive(Debug)]
pub struct Admission {
    roots: CodeSigningRoots,
    certificates: VerifiedCertCache,
    quota: Mutex<IdentityQuota>,
}

impl Admission {
    /// The code-signing roots entries must chain to.
    pub fn roots(&self) -> &CodeSigningRoots {
        &self.roots
    }

    /// Admission under `roots`, remembering up to `certificate_cache` verified
    /// certificates, with `quota` per identity.
    pub fn new(roots: CodeSigningRoots, certificate_cache: usize, quota: QuotaConfig) -> Self {
        Admission {
            roots,
            certificates: VerifiedCertCache::new(certificate_cache),
            quota: Mutex::new(IdentityQuota::new(quota)),
        }
    }

    /// Admits the Rekor v1 proposed entry `proposed_json` at `now`, or says why not.
    pub fn admit(
        &self,
        proposed_json: &[u8],
        now: Timestamp,
    ) -> Result<AdmittedEntry, AdmissionError> {
        let proposed = ProposedEntry::from_json(proposed_json)?;
        let at_seconds = i64::try_from(now.as_unix_seconds()).unwrap_or(i64::MAX);
        let signer = self.certificates.check_cached(
            &self.roots,
            proposed.signer_certificate_der(),
            at_seconds,
        )?;
        // Verify before charging the quota: a forged entry must not spend someone's quota.
        let admitted = proposed.admit(&signer)?;
        // The buckets are plain counters: a panic elsewhere while the lock was held
        // cannot leave them inconsistent, so a poisoned lock is used as it is.
        self.quota
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .charge(&signer.identity, now)?;
        Ok(admitted)
    }
}
