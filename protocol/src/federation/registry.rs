//! The domain registry: which domain records a node accepts, and the accepted state that
//! every other rule of the mesh consults (which bundle verifies a domain's SVIDs, which
//! key verifies an origin's checkpoints, which keys witness, which roots sign code).
//!
//! Design, "Federation: domain records": "The first record comes from the federation
//! config (out of band, as in SPIFFE federation); a later one is accepted only if its
//! signer chains to the previously accepted bundle, its SPIFFE ID is the domain's
//! authority ID and its record sequence is higher (no rollback); an empty key set
//! revokes." "An origin belongs to one domain: a record listing another domain's origin
//! is rejected. A log key never rotates in place: a new key is a new log with a new
//! origin."
//!
//! [`DomainRegistry::accept`] applies these rules, in this order:
//!
//! 1. the payload is a well-formed domain record ([`RecordRejected::Malformed`]);
//! 2. its trust domain is one of the federation's ([`RecordRejected::UnknownDomain`]);
//! 3. a record already held under the same sequence: the same signed record is a
//!    [`Accepted::Duplicate`] (so is the same payload re-signed by the authority); a
//!    different payload, validly signed, is a fork ([`RecordRejected::Conflicting`], both
//!    signed records kept as evidence); an older one is stale ([`RecordRejected::Rollback`]);
//! 4. the domain is not revoked ([`RecordRejected::Revoked`]);
//! 5. the sequence is higher than the accepted one ([`RecordRejected::Rollback`]);
//! 6. the record verifies ([`crate::federation::domain_record::SignedDomainRecord::verify`])
//!    under the **bootstrap bundle** for a domain's first record, and under the bundle of
//!    the **previously accepted record** for every later one — never the bootstrap again,
//!    never another domain's bundle; bundles are never merged
//!    ([`RecordRejected::Verification`], [`RecordRejected::SignerNotAuthority`],
//!    [`RecordRejected::IssuedInFuture`]);
//! 7. `issuedAt` does not go backwards ([`RecordRejected::IssuedAtRegressed`]);
//! 8. none of its origins belongs to another domain ([`RecordRejected::OriginClaimed`]);
//! 9. every log of the accepted record is still listed, with the same key and the same
//!    start, and a closed window is not reopened or extended
//!    ([`RecordRejected::LogRemoved`], [`RecordRejected::LogKeyChanged`],
//!    [`RecordRejected::LogWindowChanged`]); a revoking record is exempt, as it distrusts
//!    every log anyway.
//!
//! A record whose bundle has no usable key revokes the domain: it is accepted, nothing
//! later is, and the domain's logs and keys are no longer returned as trusted. Its
//! origins stay its own, so no other domain can take them over.
//!
//! [`RecordRejected::blames_sender`] separates a sender that relayed something forged or
//! malformed (no honest node relays that: score it down) from one that relayed a genuine
//! record that is stale, unverifiable from here (this node may be behind the chain), or
//! breaks a rule by the domain authority's own fault.
//!
//! Each domain keeps its **chain** of accepted signed records, the last
//! [`MAX_CHAIN_RECORDS`] of them, so nodes can serve it ([`DomainRegistry::chain_after`])
//! and a late joiner can walk from its bootstrap bundle to the present
//! ([`DomainRegistry::accept_chain`]). The bound caps memory at about
//! `MAX_CHAIN_RECORDS × MAX_SIGNED_RECORD_JSON_LEN` (47 MiB) per domain in the worst
//! case, 5 MiB for typical records; a joiner whose bootstrap bundle predates the oldest
//! record kept must be configured with a newer bundle (the full history stays in the
//! domain's log).
//!
//! Pure state: time is an argument; nothing here reads a clock or does I/O.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::domain_record::{
    CodeSigningRoot, CtKey, DOMAIN_RECORD_PAYLOAD_TYPE, DomainLog, DomainRecord, DomainRecordError,
    SignedDomainRecord, VerifiedDomainRecord, WitnessKey,
};
use crate::machine::Timestamp;
use crate::note::{KeyName, Verifier};
use crate::spiffe::{SpiffeId, TrustBundle, TrustDomain};

/// The path of a domain authority's SPIFFE ID: `spiffe://<trust domain>/provmesh/authority`.
pub const AUTHORITY_PATH: &str = "/provmesh/authority";

/// How many accepted signed records each domain's chain keeps (the newest ones).
pub const MAX_CHAIN_RECORDS: usize = 1024;

/// One domain of the federation, as configured out of band.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedDomain {
    /// The trust domain.
    pub trust_domain: TrustDomain,
    /// The only SPIFFE ID whose records are accepted for the domain.
    pub authority_id: SpiffeId,
    /// The SPIFFE bundle the domain's first record must verify under.
    pub bootstrap_bundle: TrustBundle,
}

impl FederatedDomain {
    /// A domain whose authority has the default ID ([`FederatedDomain::default_authority_id`]).
    pub fn new(trust_domain: TrustDomain, bootstrap_bundle: TrustBundle) -> FederatedDomain {
        FederatedDomain {
            authority_id: FederatedDomain::default_authority_id(&trust_domain),
            trust_domain,
            bootstrap_bundle,
        }
    }

    /// `spiffe://<trust_domain>/provmesh/authority` ([`AUTHORITY_PATH`]).
    pub fn default_authority_id(trust_domain: &TrustDomain) -> SpiffeId {
        // Cannot fail: the path is valid and a trust domain name of at most 255 bytes
        // keeps the ID far below the length limit. Should it ever fail, the trust
        // domain's own ID is returned, which no X.509-SVID may hold (X509-SVID §2
        // requires a path), so the domain would accept no record rather than a wrong one.
        SpiffeId::new(trust_domain, AUTHORITY_PATH).unwrap_or_else(|_| trust_domain.id())
    }
}

/// The registry's configuration: every federated domain, the node's own included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// How far in the future a record's `issuedAt` may be, in seconds.
    pub max_clock_skew_secs: u64,
    /// The federated domains.
    pub domains: Vec<FederatedDomain>,
}

/// Why a registry configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryConfigError {
    /// A trust domain is configured twice.
    #[error("trust domain {trust_domain} is configured twice")]
    DuplicateDomain {
        /// The trust domain.
        trust_domain: String,
    },
    /// An authority ID is not a workload of its trust domain.
    #[error("the authority {authority_id} is not a workload of trust domain {trust_domain}")]
    AuthorityOutsideDomain {
        /// The trust domain.
        trust_domain: String,
        /// The configured authority ID.
        authority_id: String,
    },
    /// A bootstrap bundle has no X.509 authority, so no record could ever be accepted.
    #[error(
        "the bootstrap bundle of {trust_domain} has no x509-svid authority to verify its \
         first domain record with"
    )]
    NoBootstrapAuthority {
        /// The trust domain.
        trust_domain: String,
    },
}

/// What [`DomainRegistry::accept`] did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accepted {
    /// The record is the domain's new current record.
    New {
        /// Its trust domain.
        trust_domain: TrustDomain,
        /// Its record sequence.
        sequence: u64,
        /// Whether it revoked the domain.
        revoked: bool,
    },
    /// The domain's current record again (the same signed record, or the same payload
    /// re-signed by the authority): nothing changed, and not an offence.
    Duplicate {
        /// Its trust domain.
        trust_domain: TrustDomain,
        /// Its record sequence.
        sequence: u64,
    },
}

/// Which bundle a record was verified under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleSource {
    /// The domain's configured bootstrap bundle (no record accepted before).
    Bootstrap,
    /// The bundle of the accepted record with this sequence.
    Record(u64),
}

/// Why [`DomainRegistry::accept`] refused a record. Each rule has its own variant; see
/// [`RecordRejected::blames_sender`] for which ones say the sender misbehaved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordRejected {
    /// Not a domain record: wrong payload type or a malformed payload.
    #[error("not a valid domain record: {0}")]
    Malformed(#[source] DomainRecordError),
    /// The trust domain is not one of the federation's.
    #[error("trust domain {trust_domain} is not part of this node's federation")]
    UnknownDomain {
        /// The record's trust domain.
        trust_domain: TrustDomain,
    },
    /// The domain was revoked; nothing is accepted for it any more.
    #[error("trust domain {trust_domain} was revoked by its record {revoked_at}")]
    Revoked {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The sequence of the revoking record.
        revoked_at: u64,
    },
    /// The record is not newer than the accepted one.
    #[error("record {sequence} of {trust_domain} is not newer than the accepted record {accepted}")]
    Rollback {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The record's sequence.
        sequence: u64,
        /// The accepted record's sequence.
        accepted: u64,
    },
    /// The record does not verify under the bundle it must chain to.
    #[error("record {sequence} of {trust_domain} does not verify under {under:?}: {source}")]
    Verification {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The record's sequence.
        sequence: u64,
        /// The bundle it was verified under.
        under: BundleSource,
        /// Why.
        source: DomainRecordError,
    },
    /// Signed by an SVID other than the domain authority's.
    #[error(
        "record {sequence} of {trust_domain} is signed by {signer}, not by the authority {expected}"
    )]
    SignerNotAuthority {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The record's sequence.
        sequence: u64,
        /// The signer's SPIFFE ID.
        signer: String,
        /// The authority's ID.
        expected: String,
    },
    /// `issuedAt` is beyond the clock skew allowed.
    #[error("record {sequence} of {trust_domain} is issued in the future: {source}")]
    IssuedInFuture {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The record's sequence.
        sequence: u64,
        /// The details.
        source: DomainRecordError,
    },
    /// A different record, validly signed by the authority, under a sequence already
    /// accepted: a forked domain record. Both signed records are kept as evidence.
    #[error(
        "record {sequence} of {trust_domain} conflicts with the accepted record of the same \
         sequence: the domain's records are forked"
    )]
    Conflicting {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The sequence both records carry.
        sequence: u64,
        /// The record accepted earlier.
        accepted: Box<SignedDomainRecord>,
        /// The record refused now.
        conflicting: Box<SignedDomainRecord>,
    },
    /// `issuedAt` is earlier than the accepted record's.
    #[error(
        "record {sequence} of {trust_domain} is issued at {issued_at}, before the accepted \
         record's {accepted_issued_at}"
    )]
    IssuedAtRegressed {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The record's sequence.
        sequence: u64,
        /// Its `issuedAt`.
        issued_at: u64,
        /// The accepted record's `issuedAt`.
        accepted_issued_at: u64,
    },
    /// The record lists an origin that belongs to another domain.
    #[error(
        "record {sequence} of {trust_domain} lists the origin {origin}, which belongs to {owner}"
    )]
    OriginClaimed {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The record's sequence.
        sequence: u64,
        /// The origin.
        origin: String,
        /// The domain that owns it.
        owner: TrustDomain,
    },
    /// A log of the accepted record is missing.
    #[error(
        "record {sequence} of {trust_domain} drops the log {origin}; a log may be closed with \
         validUntil but not removed"
    )]
    LogRemoved {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The record's sequence.
        sequence: u64,
        /// The origin.
        origin: String,
    },
    /// A log's key differs from the accepted one.
    #[error(
        "record {sequence} of {trust_domain} changes the key of log {origin}; a log key never \
         rotates in place: a new key is a new log with a new origin"
    )]
    LogKeyChanged {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The record's sequence.
        sequence: u64,
        /// The origin.
        origin: String,
    },
    /// A log's `validFrom` moved, or a `validUntil` was removed or moved later.
    #[error(
        "record {sequence} of {trust_domain} moves the start of log {origin} or reopens or \
         extends its closed window"
    )]
    LogWindowChanged {
        /// The trust domain.
        trust_domain: TrustDomain,
        /// The record's sequence.
        sequence: u64,
        /// The origin.
        origin: String,
    },
}

impl RecordRejected {
    /// Whether the sender should be scored down: it sent something forged or malformed,
    /// which an honest node (that validates before relaying) never sends. `false` for a
    /// genuine record that is stale, duplicated, conflicting (the sender relays evidence),
    /// unverifiable from here (this node may be behind the domain's chain, or its clock
    /// differs), of a domain this node does not federate with, or that breaks a rule by
    /// its authority's own fault.
    pub fn blames_sender(&self) -> bool {
        match self {
            RecordRejected::Malformed(_) | RecordRejected::SignerNotAuthority { .. } => true,
            RecordRejected::Verification { source, .. } => source.blames_sender(),
            RecordRejected::UnknownDomain { .. }
            | RecordRejected::Revoked { .. }
            | RecordRejected::Rollback { .. }
            | RecordRejected::IssuedInFuture { .. }
            | RecordRejected::Conflicting { .. }
            | RecordRejected::IssuedAtRegressed { .. }
            | RecordRejected::OriginClaimed { .. }
            | RecordRejected::LogRemoved { .. }
            | RecordRejected::LogKeyChanged { .. }
            | RecordRejected::LogWindowChanged { .. } => false,
        }
    }

    /// The trust domain the refused record claims, when it was readable.
    pub fn trust_domain(&self) -> Option<&TrustDomain> {
        match self {
            RecordRejected::Malformed(_) => None,
            RecordRejected::UnknownDomain { trust_domain }
            | RecordRejected::Revoked { trust_domain, .. }
            | RecordRejected::Rollback { trust_domain, .. }
            | RecordRejected::Verification { trust_domain, .. }
            | RecordRejected::SignerNotAuthority { trust_domain, .. }
            | RecordRejected::IssuedInFuture { trust_domain, .. }
            | RecordRejected::Conflicting { trust_domain, .. }
            | RecordRejected::IssuedAtRegressed { trust_domain, .. }
            | RecordRejected::OriginClaimed { trust_domain, .. }
            | RecordRejected::LogRemoved { trust_domain, .. }
            | RecordRejected::LogKeyChanged { trust_domain, .. }
            | RecordRejected::LogWindowChanged { trust_domain, .. } => Some(trust_domain),
        }
    }
}

/// What [`DomainRegistry::accept_chain`] got through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainProgress {
    /// The records accepted as new, in the order they were accepted.
    pub accepted: Vec<(TrustDomain, u64)>,
    /// Records that were already current.
    pub duplicates: usize,
    /// Records older than what was accepted (skipped, not an error).
    pub stale: usize,
}

/// [`DomainRegistry::accept_chain`] stopped at a refused record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("walking the chain of domain records stopped after {} new records: {rejected}", progress.accepted.len())]
pub struct ChainRejected {
    /// What was accepted before the refusal (it stays accepted).
    pub progress: ChainProgress,
    /// Why the record was refused.
    pub rejected: Box<RecordRejected>,
}

/// One accepted signed record in a domain's chain.
#[derive(Debug, Clone)]
struct ChainLink {
    /// Its record sequence.
    sequence: u64,
    /// SHA-256 of its payload (the record's canonical JSON).
    payload_digest: [u8; 32],
    /// The signed record as accepted.
    signed: SignedDomainRecord,
    /// The bundle it was verified under (shared with the previous link's record).
    verified_under: Arc<TrustBundle>,
    /// Where that bundle came from.
    under: BundleSource,
}

/// What the registry holds for one federated domain.
#[derive(Debug, Clone)]
pub struct DomainState {
    /// The configuration.
    config: FederatedDomain,
    /// The bootstrap bundle, shared with the first link.
    bootstrap: Arc<TrustBundle>,
    /// The current record, verified.
    current: Option<VerifiedDomainRecord>,
    /// The current record's bundle, shared with the next link.
    current_bundle: Option<Arc<TrustBundle>>,
    /// Whether the current record revoked the domain.
    revoked: bool,
    /// The last accepted signed records, oldest first; the last one is `current`.
    chain: VecDeque<ChainLink>,
}

impl DomainState {
    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.config.trust_domain
    }

    /// The authority's SPIFFE ID.
    pub fn authority_id(&self) -> &SpiffeId {
        &self.config.authority_id
    }

    /// The configured bootstrap bundle.
    pub fn bootstrap_bundle(&self) -> &TrustBundle {
        &self.bootstrap
    }

    /// The accepted record, if any (also when it revoked the domain).
    pub fn record(&self) -> Option<&VerifiedDomainRecord> {
        self.current.as_ref()
    }

    /// The accepted record's sequence, if any.
    pub fn sequence(&self) -> Option<u64> {
        self.current.as_ref().map(VerifiedDomainRecord::sequence)
    }

    /// Whether the domain is revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// The bundle the domain's SVIDs (node records, …) are verified against: the accepted
    /// record's (empty once revoked), else the bootstrap bundle.
    pub fn trust_bundle(&self) -> &TrustBundle {
        match &self.current {
            Some(current) => current.bundle(),
            None => &self.bootstrap,
        }
    }

    /// The kept chain of accepted signed records, oldest first.
    pub fn chain(&self) -> impl Iterator<Item = &SignedDomainRecord> {
        self.chain.iter().map(|link| &link.signed)
    }

    /// The accepted record while it is trusted (accepted and not revoking).
    fn trusted_record(&self) -> Option<&DomainRecord> {
        self.current
            .as_ref()
            .filter(|_| !self.revoked)
            .map(VerifiedDomainRecord::record)
    }

    /// The bundle the next record must verify under, and where it comes from.
    fn next_verification_bundle(&self) -> (Arc<TrustBundle>, BundleSource) {
        match (&self.current, &self.current_bundle) {
            (Some(current), Some(bundle)) => {
                (Arc::clone(bundle), BundleSource::Record(current.sequence()))
            }
            _ => (Arc::clone(&self.bootstrap), BundleSource::Bootstrap),
        }
    }
}

/// The accepted domain records of the federation and the rules for accepting more. See
/// the module documentation.
#[derive(Debug, Clone)]
pub struct DomainRegistry {
    /// Allowed `issuedAt` skew, seconds.
    max_clock_skew_secs: u64,
    /// Every federated domain.
    domains: BTreeMap<TrustDomain, DomainState>,
    /// Which domain each origin ever accepted belongs to. Never shrinks: an origin stays
    /// its domain's, revoked or not.
    origin_owners: BTreeMap<String, TrustDomain>,
    /// How many links a chain keeps ([`MAX_CHAIN_RECORDS`]; smaller in tests).
    chain_limit: usize,
}

impl DomainRegistry {
    /// A registry with no record accepted yet.
    pub fn new(config: RegistryConfig) -> Result<DomainRegistry, RegistryConfigError> {
        let mut domains = BTreeMap::new();
        for domain in config.domains {
            if !domain.authority_id.member_of(&domain.trust_domain)
                || domain.authority_id.is_trust_domain_id()
            {
                return Err(RegistryConfigError::AuthorityOutsideDomain {
                    trust_domain: domain.trust_domain.to_string(),
                    authority_id: domain.authority_id.to_string(),
                });
            }
            if domain.bootstrap_bundle.x509_authorities().next().is_none() {
                return Err(RegistryConfigError::NoBootstrapAuthority {
                    trust_domain: domain.trust_domain.to_string(),
                });
            }
            if domains.contains_key(&domain.trust_domain) {
                return Err(RegistryConfigError::DuplicateDomain {
                    trust_domain: domain.trust_domain.to_string(),
                });
            }
            let state = DomainState {
                bootstrap: Arc::new(domain.bootstrap_bundle.clone()),
                config: domain,
                current: None,
                current_bundle: None,
                revoked: false,
                chain: VecDeque::new(),
            };
            domains.insert(state.config.trust_domain.clone(), state);
        }
        Ok(DomainRegistry {
            max_clock_skew_secs: config.max_clock_skew_secs,
            domains,
            origin_owners: BTreeMap::new(),
            chain_limit: MAX_CHAIN_RECORDS,
        })
    }

    /// Applies the acceptance rules (see the module documentation) to `signed`, received
    /// at `now`.
    pub fn accept(
        &mut self,
        now: Timestamp,
        signed: SignedDomainRecord,
    ) -> Result<Accepted, RecordRejected> {
        if signed.envelope().payload_type() != DOMAIN_RECORD_PAYLOAD_TYPE {
            return Err(RecordRejected::Malformed(
                DomainRecordError::WrongPayloadType {
                    found: signed.envelope().payload_type().to_owned(),
                },
            ));
        }
        let record = signed
            .unverified_record()
            .map_err(|e| RecordRejected::Malformed(DomainRecordError::Record(e)))?;
        let trust_domain = record.trust_domain.clone();
        let sequence = record.record_sequence;
        let skew = self.max_clock_skew_secs;
        let Some(state) = self.domains.get_mut(&trust_domain) else {
            return Err(RecordRejected::UnknownDomain { trust_domain });
        };
        let authority_id = state.config.authority_id.clone();
        let rejection = |under: BundleSource, source: DomainRecordError| {
            verification_rejection(trust_domain.clone(), sequence, under, source)
        };

        // A record already held under this sequence.
        let payload_digest: [u8; 32] = Sha256::digest(signed.unverified_payload()).into();
        if let Some(link) = state.chain.iter().find(|l| l.sequence == sequence) {
            let same = link.signed == signed;
            if !same {
                // Another signature or payload: only a validly signed one means anything.
                signed
                    .verify(
                        &trust_domain,
                        &authority_id,
                        &link.verified_under,
                        now,
                        skew,
                    )
                    .map_err(|e| rejection(link.under, e))?;
            }
            if link.payload_digest != payload_digest {
                return Err(RecordRejected::Conflicting {
                    trust_domain,
                    sequence,
                    accepted: Box::new(link.signed.clone()),
                    conflicting: Box::new(signed),
                });
            }
            if state.sequence() == Some(sequence) {
                return Ok(Accepted::Duplicate {
                    trust_domain,
                    sequence,
                });
            }
        }
        if let Some(current) = &state.current {
            if state.revoked {
                return Err(RecordRejected::Revoked {
                    trust_domain,
                    revoked_at: current.sequence(),
                });
            }
            if sequence <= current.sequence() {
                return Err(RecordRejected::Rollback {
                    trust_domain,
                    sequence,
                    accepted: current.sequence(),
                });
            }
        }

        let (bundle, under) = state.next_verification_bundle();
        let verified = signed
            .verify(&trust_domain, &authority_id, &bundle, now, skew)
            .map_err(|e| rejection(under, e))?;
        let new = verified.record();
        if let Some(current) = &state.current
            && new.issued_at < current.record().issued_at
        {
            return Err(RecordRejected::IssuedAtRegressed {
                trust_domain,
                sequence,
                issued_at: new.issued_at,
                accepted_issued_at: current.record().issued_at,
            });
        }
        for log in &new.logs {
            if let Some(owner) = self.origin_owners.get(log.origin.as_str())
                && owner != &trust_domain
            {
                return Err(RecordRejected::OriginClaimed {
                    trust_domain,
                    sequence,
                    origin: log.origin.to_string(),
                    owner: owner.clone(),
                });
            }
        }
        if let Some(current) = &state.current
            && !new.revokes()
        {
            check_logs_kept(current.record(), new, &trust_domain, sequence)?;
        }

        // Every rule passed: commit.
        for log in &new.logs {
            self.origin_owners
                .insert(log.origin.to_string(), trust_domain.clone());
        }
        let revoked = new.revokes();
        state.chain.push_back(ChainLink {
            sequence,
            payload_digest,
            signed: verified.signed().clone(),
            verified_under: bundle,
            under,
        });
        while state.chain.len() > self.chain_limit {
            state.chain.pop_front();
        }
        state.current_bundle = Some(Arc::new(verified.bundle().clone()));
        state.current = Some(verified);
        state.revoked = revoked;
        Ok(Accepted::New {
            trust_domain,
            sequence,
            revoked,
        })
    }

    /// Accepts a batch of records — typically a domain's chain served by another node —
    /// in order of trust domain and record sequence, whatever order they came in, so a
    /// late joiner walks from its bootstrap bundle to the present. Records older than
    /// what is accepted are skipped (counted as stale); the walk stops at the first
    /// other refusal, which is returned with what was accepted before it (that stays
    /// accepted). The caller bounds the batch (a node serves at most
    /// [`MAX_CHAIN_RECORDS`] per domain).
    pub fn accept_chain(
        &mut self,
        now: Timestamp,
        records: impl IntoIterator<Item = SignedDomainRecord>,
    ) -> Result<ChainProgress, ChainRejected> {
        let mut keyed: Vec<(Option<(TrustDomain, u64)>, SignedDomainRecord)> = records
            .into_iter()
            .map(|signed| {
                let key = signed
                    .unverified_record()
                    .ok()
                    .map(|r| (r.trust_domain, r.record_sequence));
                (key, signed)
            })
            .collect();
        // Unreadable records last: they are refused when reached.
        keyed.sort_by(|(a, _), (b, _)| match (a, b) {
            (Some(a), Some(b)) => a.cmp(b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        let mut progress = ChainProgress::default();
        for (_, signed) in keyed {
            match self.accept(now, signed) {
                Ok(Accepted::New {
                    trust_domain,
                    sequence,
                    ..
                }) => progress.accepted.push((trust_domain, sequence)),
                Ok(Accepted::Duplicate { .. }) => progress.duplicates += 1,
                Err(RecordRejected::Rollback { .. }) => progress.stale += 1,
                Err(rejected) => {
                    return Err(ChainRejected {
                        progress,
                        rejected: Box::new(rejected),
                    });
                }
            }
        }
        Ok(progress)
    }

    /// Every federated domain, by trust domain name.
    pub fn domains(&self) -> impl Iterator<Item = &DomainState> {
        self.domains.values()
    }

    /// One federated domain.
    pub fn domain(&self, trust_domain: &TrustDomain) -> Option<&DomainState> {
        self.domains.get(trust_domain)
    }

    /// The bundle `trust_domain`'s SVIDs are verified against (see
    /// [`DomainState::trust_bundle`]); `None` for a domain outside the federation.
    pub fn trust_bundle(&self, trust_domain: &TrustDomain) -> Option<&TrustBundle> {
        self.domain(trust_domain).map(DomainState::trust_bundle)
    }

    /// The trusted log with this origin and its domain; `None` if no trusted record of a
    /// non-revoked domain lists it. The caller checks the log's window.
    pub fn log(&self, origin: &str) -> Option<(&TrustDomain, &DomainLog)> {
        let owner = self.origin_owners.get(origin)?;
        let log = self.domains.get(owner)?.trusted_record()?.log(origin)?;
        Some((owner, log))
    }

    /// The checkpoint verifier of the trusted log with this origin, and its domain.
    pub fn log_verifier(&self, origin: &str) -> Option<(&TrustDomain, &Verifier)> {
        self.log(origin)
            .map(|(domain, log)| (domain, &log.verifier))
    }

    /// Every trusted log origin, with its domain.
    pub fn log_origins(&self) -> impl Iterator<Item = (&TrustDomain, &KeyName)> {
        self.domains.values().flat_map(|state| {
            state
                .trusted_record()
                .into_iter()
                .flat_map(|record| record.logs.iter())
                .map(|log| (&state.config.trust_domain, &log.origin))
        })
    }

    /// The witness keys of a trusted domain (empty if unknown, without record, or revoked).
    pub fn witness_keys(&self, trust_domain: &TrustDomain) -> &[WitnessKey] {
        self.trusted(trust_domain)
            .map_or(&[], |r| r.witness_keys.as_slice())
    }

    /// The code-signing roots of a trusted domain (empty if unknown, without record, or
    /// revoked).
    pub fn code_signing_roots(&self, trust_domain: &TrustDomain) -> &[CodeSigningRoot] {
        self.trusted(trust_domain)
            .map_or(&[], |r| r.code_signing_roots.as_slice())
    }

    /// The CT keys of a trusted domain (empty if unknown, without record, or revoked).
    pub fn ct_keys(&self, trust_domain: &TrustDomain) -> &[CtKey] {
        self.trusted(trust_domain)
            .map_or(&[], |r| r.ct_keys.as_slice())
    }

    /// The kept signed records of `trust_domain` with a sequence above `sequence`,
    /// oldest first: what to serve a node that holds `sequence`.
    pub fn chain_after(
        &self,
        trust_domain: &TrustDomain,
        sequence: u64,
    ) -> impl Iterator<Item = &SignedDomainRecord> {
        self.domains
            .get(trust_domain)
            .into_iter()
            .flat_map(|state| state.chain.iter())
            .filter(move |link| link.sequence > sequence)
            .map(|link| &link.signed)
    }

    /// Every federated domain with its accepted record sequence (0 without a record:
    /// sequences start at 1), for anti-entropy.
    pub fn summary(&self) -> Vec<(TrustDomain, u64)> {
        self.domains
            .values()
            .map(|s| (s.config.trust_domain.clone(), s.sequence().unwrap_or(0)))
            .collect()
    }

    /// The allowed clock skew for `issuedAt`, seconds.
    pub fn max_clock_skew_secs(&self) -> u64 {
        self.max_clock_skew_secs
    }

    fn trusted(&self, trust_domain: &TrustDomain) -> Option<&DomainRecord> {
        self.domains.get(trust_domain)?.trusted_record()
    }
}

/// Maps a verification failure to the rule it breaks.
fn verification_rejection(
    trust_domain: TrustDomain,
    sequence: u64,
    under: BundleSource,
    source: DomainRecordError,
) -> RecordRejected {
    match source {
        DomainRecordError::SignerNotAuthority { signer, expected } => {
            RecordRejected::SignerNotAuthority {
                trust_domain,
                sequence,
                signer,
                expected,
            }
        }
        source @ DomainRecordError::IssuedInFuture { .. } => RecordRejected::IssuedInFuture {
            trust_domain,
            sequence,
            source,
        },
        source @ (DomainRecordError::WrongPayloadType { .. } | DomainRecordError::Record(_)) => {
            RecordRejected::Malformed(source)
        }
        source => RecordRejected::Verification {
            trust_domain,
            sequence,
            under,
            source,
        },
    }
}

/// Design: "A log key never rotates in place: a new key is a new log with a new origin."
/// Every log of `old` must be in `new` with the same key and `validFrom`; a `validUntil`
/// may be added or moved earlier (closing a log, e.g. after its key leaked), never
/// removed or moved later (which would make checkpoints valid that were not).
fn check_logs_kept(
    old: &DomainRecord,
    new: &DomainRecord,
    trust_domain: &TrustDomain,
    sequence: u64,
) -> Result<(), RecordRejected> {
    for before in &old.logs {
        let origin = || before.origin.to_string();
        let Some(after) = new.log(before.origin.as_str()) else {
            return Err(RecordRejected::LogRemoved {
                trust_domain: trust_domain.clone(),
                sequence,
                origin: origin(),
            });
        };
        if after.verifier != before.verifier {
            return Err(RecordRejected::LogKeyChanged {
                trust_domain: trust_domain.clone(),
                sequence,
                origin: origin(),
            });
        }
        let window_kept = after.window.valid_from == before.window.valid_from
            && match (before.window.valid_until, after.window.valid_until) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(end), Some(new_end)) => new_end <= end,
            };
        if !window_kept {
            return Err(RecordRejected::LogWindowChanged {
                trust_domain: trust_domain.clone(),
                sequence,
                origin: origin(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use proptest::prelude::*;

    use super::*;
    use crate::federation::domain_record::testing::*;
    use crate::federation::domain_record::{DomainRecordError, KeyWindow};
    use crate::spiffe::x509::X509SvidError;

    const A: &str = "org-a.example";
    const B: &str = "org-b.example";

    fn td(name: &str) -> TrustDomain {
        TrustDomain::parse(name).unwrap()
    }

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds)
    }

    /// Two domains, A and B, each with one root in its bootstrap bundle.
    struct Federation {
        a: DevCa,
        b: DevCa,
    }

    impl Federation {
        fn new() -> Federation {
            Federation {
                a: DevCa::new(A, 1),
                b: DevCa::new(B, 1),
            }
        }

        fn config(&self) -> RegistryConfig {
            RegistryConfig {
                max_clock_skew_secs: 60,
                domains: vec![
                    FederatedDomain::new(td(A), DevCa::bundle(&[&self.a])),
                    FederatedDomain::new(td(B), DevCa::bundle(&[&self.b])),
                ],
            }
        }

        fn registry(&self) -> DomainRegistry {
            DomainRegistry::new(self.config()).unwrap()
        }

        /// A's record `sequence` issued at `issued_at` with bundle {A's root}, signed by
        /// A's authority.
        fn a_record(&self, sequence: u64, issued_at: u64) -> (DomainRecord, SignedDomainRecord) {
            let r = record(&self.a, sequence, issued_at, DevCa::bundle(&[&self.a]));
            let signed = sign(&r, &self.a.svid(AUTHORITY, issued_at));
            (r, signed)
        }

        fn a_authority(&self, issued_at: u64) -> Svid {
            self.a.svid(AUTHORITY, issued_at)
        }
    }

    fn new(trust_domain: &str, sequence: u64) -> Accepted {
        Accepted::New {
            trust_domain: td(trust_domain),
            sequence,
            revoked: false,
        }
    }

    #[test]
    fn default_authority_id() {
        assert_eq!(
            FederatedDomain::default_authority_id(&td(A)).as_str(),
            "spiffe://org-a.example/provmesh/authority"
        );
    }

    #[test]
    fn configuration_is_checked() {
        let fed = Federation::new();
        let mut config = fed.config();
        config.domains.push(config.domains[0].clone());
        assert_eq!(
            DomainRegistry::new(config).unwrap_err(),
            RegistryConfigError::DuplicateDomain {
                trust_domain: A.into()
            }
        );
        let mut config = fed.config();
        config.domains[0].authority_id = fed.b.id(AUTHORITY);
        assert!(matches!(
            DomainRegistry::new(config),
            Err(RegistryConfigError::AuthorityOutsideDomain { .. })
        ));
        let mut config = fed.config();
        config.domains[1].bootstrap_bundle = TrustBundle::new();
        assert_eq!(
            DomainRegistry::new(config).unwrap_err(),
            RegistryConfigError::NoBootstrapAuthority {
                trust_domain: B.into()
            }
        );
    }

    #[test]
    fn first_record_verifies_against_the_bootstrap_bundle() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        assert_eq!(registry.summary(), vec![(td(A), 0), (td(B), 0)]);
        assert_eq!(
            registry.trust_bundle(&td(A)),
            Some(&DevCa::bundle(&[&fed.a]))
        );
        let (record, signed) = fed.a_record(1, NOW);
        assert_eq!(registry.accept(at(NOW), signed.clone()), Ok(new(A, 1)));
        let state = registry.domain(&td(A)).unwrap();
        assert_eq!(state.sequence(), Some(1));
        assert!(!state.is_revoked());
        assert_eq!(state.record().unwrap().record(), &record);
        assert_eq!(state.chain().collect::<Vec<_>>(), vec![&signed]);
        assert_eq!(registry.trust_bundle(&td(A)), Some(&record.spiffe_bundle));
        assert_eq!(registry.summary(), vec![(td(A), 1), (td(B), 0)]);
        let (owner, verifier) = registry.log_verifier("log.org-a.example").unwrap();
        assert_eq!(owner, &td(A));
        assert_eq!(verifier, &record.logs[0].verifier);
        assert_eq!(
            registry.witness_keys(&td(A)),
            record.witness_keys.as_slice()
        );
        assert_eq!(
            registry.code_signing_roots(&td(A)),
            record.code_signing_roots.as_slice()
        );
        assert_eq!(registry.ct_keys(&td(A)), record.ct_keys.as_slice());
        assert!(registry.witness_keys(&td(B)).is_empty());
        assert_eq!(
            registry
                .log_origins()
                .map(|(d, o)| (d.clone(), o.to_string()))
                .collect::<Vec<_>>(),
            vec![(td(A), "log.org-a.example".to_owned())]
        );

        // The same record again, and the same payload re-signed with a fresh SVID.
        assert_eq!(
            registry.accept(at(NOW), signed),
            Ok(Accepted::Duplicate {
                trust_domain: td(A),
                sequence: 1
            })
        );
        let resigned = sign(&record, &fed.a_authority(NOW));
        assert_eq!(
            registry.accept(at(NOW + 10), resigned),
            Ok(Accepted::Duplicate {
                trust_domain: td(A),
                sequence: 1
            })
        );
        assert_eq!(registry.domain(&td(A)).unwrap().chain().count(), 1);
    }

    #[test]
    fn first_record_signed_under_another_root_is_refused() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        let impostor = DevCa::new(A, 9);
        let signed = sign(
            &record(&impostor, 1, NOW, DevCa::bundle(&[&impostor])),
            &impostor.svid(AUTHORITY, NOW),
        );
        let err = registry.accept(at(NOW), signed).unwrap_err();
        assert!(
            matches!(
                err,
                RecordRejected::Verification {
                    under: BundleSource::Bootstrap,
                    source: DomainRecordError::Svid(X509SvidError::Untrusted { .. }),
                    ..
                }
            ),
            "{err}"
        );
        assert!(!err.blames_sender());
        assert_eq!(registry.domain(&td(A)).unwrap().sequence(), None);
    }

    #[test]
    fn unknown_trust_domain_is_refused() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        let c = DevCa::new("org-c.example", 1);
        let signed = sign(
            &record(&c, 1, NOW, DevCa::bundle(&[&c])),
            &c.svid(AUTHORITY, NOW),
        );
        let err = registry.accept(at(NOW), signed).unwrap_err();
        assert_eq!(
            err,
            RecordRejected::UnknownDomain {
                trust_domain: td("org-c.example")
            }
        );
        assert!(!err.blames_sender());
    }

    #[test]
    fn b_authority_cannot_publish_or_alter_a_record() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        let (record, signed) = fed.a_record(1, NOW);
        registry.accept(at(NOW), signed).unwrap();
        // B's authority signs a "newer" record of A.
        let mut altered = record.clone();
        altered.record_sequence = 2;
        altered.logs[0] = log("log.org-a.example", 99, KeyWindow::open_from(0));
        let err = registry
            .accept(at(NOW), sign(&altered, &fed.b.svid(AUTHORITY, NOW)))
            .unwrap_err();
        assert_eq!(
            err,
            RecordRejected::SignerNotAuthority {
                trust_domain: td(A),
                sequence: 2,
                signer: "spiffe://org-b.example/provmesh/authority".into(),
                expected: "spiffe://org-a.example/provmesh/authority".into()
            }
        );
        assert!(err.blames_sender());
        // Nor can it pose as A's first record.
        let mut fresh = fed.registry();
        let err = fresh
            .accept(at(NOW), sign(&record, &fed.b.svid(AUTHORITY, NOW)))
            .unwrap_err();
        assert!(matches!(err, RecordRejected::SignerNotAuthority { .. }));
        assert_eq!(registry.domain(&td(A)).unwrap().sequence(), Some(1));
    }

    #[test]
    fn a_non_authority_svid_of_the_domain_is_refused() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        let r = record(&fed.a, 1, NOW, DevCa::bundle(&[&fed.a]));
        let err = registry
            .accept(at(NOW), sign(&r, &fed.a.svid("/provmesh/node/x", NOW)))
            .unwrap_err();
        assert_eq!(
            err,
            RecordRejected::SignerNotAuthority {
                trust_domain: td(A),
                sequence: 1,
                signer: "spiffe://org-a.example/provmesh/node/x".into(),
                expected: "spiffe://org-a.example/provmesh/authority".into()
            }
        );
        assert!(err.blames_sender());
        // A configured non-default authority ID is the only one accepted.
        let mut config = fed.config();
        config.domains[0].authority_id = fed.a.id("/provmesh/node/x");
        let mut custom = DomainRegistry::new(config).unwrap();
        let mut r2 = r.clone();
        r2.authority.spiffe_id = fed.a.id("/provmesh/node/x");
        assert_eq!(
            custom.accept(at(NOW), sign(&r2, &fed.a.svid("/provmesh/node/x", NOW))),
            Ok(new(A, 1))
        );
    }

    #[test]
    fn an_older_record_is_a_rollback() {
        let fed = Federation::new();
        let (_, one) = fed.a_record(1, NOW);
        let (_, two) = fed.a_record(2, NOW + 10);
        let (_, three) = fed.a_record(3, NOW + 20);

        // Record 2 first (it verifies under the bootstrap bundle), then 1.
        let mut registry = fed.registry();
        assert_eq!(registry.accept(at(NOW + 20), two.clone()), Ok(new(A, 2)));
        let err = registry.accept(at(NOW + 20), one.clone()).unwrap_err();
        assert_eq!(
            err,
            RecordRejected::Rollback {
                trust_domain: td(A),
                sequence: 1,
                accepted: 2
            }
        );
        assert!(
            !err.blames_sender(),
            "relaying a stale genuine record is not hostile"
        );

        // A replayed record of the kept chain.
        assert_eq!(registry.accept(at(NOW + 20), three), Ok(new(A, 3)));
        let err = registry.accept(at(NOW + 30), two).unwrap_err();
        assert_eq!(
            err,
            RecordRejected::Rollback {
                trust_domain: td(A),
                sequence: 2,
                accepted: 3
            }
        );
        assert_eq!(registry.domain(&td(A)).unwrap().sequence(), Some(3));
    }

    #[test]
    fn a_different_record_under_an_accepted_sequence_is_a_fork() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        let (record1, one) = fed.a_record(1, NOW);
        let (_, two) = fed.a_record(2, NOW + 10);
        registry.accept(at(NOW), one.clone()).unwrap();

        let mut forked = record1.clone();
        forked
            .authority
            .addresses
            .push("https://elsewhere.example".into());
        let fork = sign(&forked, &fed.a_authority(NOW));
        let err = registry.accept(at(NOW), fork.clone()).unwrap_err();
        assert_eq!(
            err,
            RecordRejected::Conflicting {
                trust_domain: td(A),
                sequence: 1,
                accepted: Box::new(one.clone()),
                conflicting: Box::new(fork.clone()),
            }
        );
        assert!(!err.blames_sender(), "relaying evidence is not hostile");

        // Also for a record deeper in the chain.
        registry.accept(at(NOW + 10), two).unwrap();
        assert!(matches!(
            registry.accept(at(NOW + 10), fork),
            Err(RecordRejected::Conflicting { sequence: 1, .. })
        ));
        // A "fork" the authority did not sign is a forgery, not evidence.
        let err = registry
            .accept(at(NOW), sign(&forked, &fed.a.svid("/provmesh/node/x", NOW)))
            .unwrap_err();
        assert!(matches!(err, RecordRejected::SignerNotAuthority { .. }));
        assert_eq!(registry.domain(&td(A)).unwrap().sequence(), Some(2));
    }

    #[test]
    fn issued_at_may_not_go_backwards() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        registry.accept(at(NOW), fed.a_record(1, NOW).1).unwrap();
        let err = registry
            .accept(at(NOW), fed.a_record(2, NOW - 100).1)
            .unwrap_err();
        assert_eq!(
            err,
            RecordRejected::IssuedAtRegressed {
                trust_domain: td(A),
                sequence: 2,
                issued_at: NOW - 100,
                accepted_issued_at: NOW
            }
        );
        assert!(!err.blames_sender());
        // The same second is fine.
        assert_eq!(
            registry.accept(at(NOW), fed.a_record(2, NOW).1),
            Ok(new(A, 2))
        );
    }

    #[test]
    fn a_record_from_the_future_is_refused() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        let err = registry
            .accept(at(NOW), fed.a_record(1, NOW + 3600).1)
            .unwrap_err();
        assert!(matches!(
            err,
            RecordRejected::IssuedInFuture { sequence: 1, .. }
        ));
        assert!(!err.blames_sender());
    }

    #[test]
    fn an_origin_belongs_to_one_domain() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        registry.accept(at(NOW), fed.a_record(1, NOW).1).unwrap();
        // B lists A's origin (with its own key, or even A's).
        let mut b_record = record(&fed.b, 1, NOW, DevCa::bundle(&[&fed.b]));
        b_record
            .logs
            .push(log("log.org-a.example", 1, KeyWindow::open_from(0)));
        let err = registry
            .accept(at(NOW), sign(&b_record, &fed.b.svid(AUTHORITY, NOW)))
            .unwrap_err();
        assert_eq!(
            err,
            RecordRejected::OriginClaimed {
                trust_domain: td(B),
                sequence: 1,
                origin: "log.org-a.example".into(),
                owner: td(A)
            }
        );
        assert!(!err.blames_sender());
        assert_eq!(
            registry.log_verifier("log.org-a.example").unwrap().0,
            &td(A)
        );
        assert_eq!(registry.domain(&td(B)).unwrap().sequence(), None);
        // B with its own origin only.
        b_record.logs.pop();
        assert_eq!(
            registry.accept(at(NOW), sign(&b_record, &fed.b.svid(AUTHORITY, NOW))),
            Ok(new(B, 1))
        );
        assert_eq!(
            registry.log_verifier("log.org-b.example").unwrap().0,
            &td(B)
        );
        // And A may not take B's.
        let mut a_record = record(&fed.a, 2, NOW, DevCa::bundle(&[&fed.a]));
        a_record
            .logs
            .push(log("log.org-b.example", 1, KeyWindow::open_from(0)));
        assert!(matches!(
            registry.accept(at(NOW), sign(&a_record, &fed.a_authority(NOW))),
            Err(RecordRejected::OriginClaimed { ref owner, .. }) if *owner == td(B)
        ));
    }

    #[test]
    fn a_log_keeps_its_key_and_does_not_disappear() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        let (record1, one) = fed.a_record(1, NOW);
        registry.accept(at(NOW), one).unwrap();
        let signer = fed.a_authority(NOW);
        let next = |edit: &dyn Fn(&mut DomainRecord)| {
            let mut r = record1.clone();
            r.record_sequence = 2;
            edit(&mut r);
            sign(&r, &signer)
        };

        let err = registry
            .accept(
                at(NOW),
                next(&|r| r.logs[0] = log("log.org-a.example", 42, r.logs[0].window)),
            )
            .unwrap_err();
        assert_eq!(
            err,
            RecordRejected::LogKeyChanged {
                trust_domain: td(A),
                sequence: 2,
                origin: "log.org-a.example".into()
            }
        );
        assert!(!err.blames_sender());
        assert_eq!(
            registry
                .accept(at(NOW), next(&|r| r.logs.clear()))
                .unwrap_err(),
            RecordRejected::LogRemoved {
                trust_domain: td(A),
                sequence: 2,
                origin: "log.org-a.example".into()
            }
        );
        assert_eq!(
            registry
                .accept(at(NOW), next(&|r| r.logs[0].window.valid_from += 1))
                .unwrap_err(),
            RecordRejected::LogWindowChanged {
                trust_domain: td(A),
                sequence: 2,
                origin: "log.org-a.example".into()
            }
        );

        // A new key is a new log with a new origin; the old one is closed, not removed.
        let closed_at = NOW + 1000;
        let rotate = |r: &mut DomainRecord| {
            r.logs[0].window.valid_until = Some(closed_at);
            r.logs
                .push(log("log2.org-a.example", 42, KeyWindow::open_from(NOW)));
        };
        assert_eq!(registry.accept(at(NOW), next(&rotate)), Ok(new(A, 2)));
        let (_, old) = registry.log("log.org-a.example").unwrap();
        assert!(old.window.contains(closed_at) && !old.window.contains(closed_at + 1));
        assert!(registry.log_verifier("log2.org-a.example").is_some());

        // A closed log is not reopened or extended; closing it earlier is allowed.
        let later = |edit: &dyn Fn(&mut DomainRecord), sequence: u64| {
            let mut r = record1.clone();
            rotate(&mut r);
            r.record_sequence = sequence;
            edit(&mut r);
            sign(&r, &signer)
        };
        for reopen in [None, Some(closed_at + 1)] {
            assert!(matches!(
                registry.accept(
                    at(NOW),
                    later(&|r| r.logs[0].window.valid_until = reopen, 3)
                ),
                Err(RecordRejected::LogWindowChanged { .. })
            ));
        }
        assert_eq!(
            registry.accept(
                at(NOW),
                later(&|r| r.logs[0].window.valid_until = Some(NOW), 3)
            ),
            Ok(new(A, 3))
        );
    }

    /// Domain A rotates its SPIFFE root from R1 to R2: record 2 lists both and is signed
    /// under R1, record 3 lists only R2 and is signed under R2.
    struct Rotation {
        fed: Federation,
        r2: DevCa,
        records: Vec<SignedDomainRecord>,
    }

    impl Rotation {
        fn new() -> Rotation {
            let fed = Federation::new();
            let r2 = DevCa::new(A, 2);
            let r1 = &fed.a;
            let one = sign(
                &record(r1, 1, NOW, DevCa::bundle(&[r1])),
                &r1.svid(AUTHORITY, NOW),
            );
            let two = sign(
                &record(r1, 2, NOW + 100, DevCa::bundle(&[r1, &r2])),
                &r1.svid(AUTHORITY, NOW + 100),
            );
            let three = sign(
                &record(r1, 3, NOW + 200, DevCa::bundle(&[&r2])),
                &r2.svid(AUTHORITY, NOW + 200),
            );
            Rotation {
                fed,
                r2,
                records: vec![one, two, three],
            }
        }
    }

    #[test]
    fn after_a_root_rotation_the_old_root_no_longer_signs() {
        let rotation = Rotation::new();
        let fed = &rotation.fed;
        let mut registry = fed.registry();
        for (i, signed) in rotation.records.iter().enumerate() {
            assert_eq!(
                registry.accept(at(NOW + 300), signed.clone()),
                Ok(new(A, i as u64 + 1))
            );
        }
        assert_eq!(
            registry.trust_bundle(&td(A)),
            Some(&DevCa::bundle(&[&rotation.r2]))
        );
        // Record 4 signed by an authority SVID of the dropped root R1: it chains to the
        // bootstrap bundle, which no longer counts.
        let four = sign(
            &record(&fed.a, 4, NOW + 300, DevCa::bundle(&[&fed.a])),
            &fed.a.svid(AUTHORITY, NOW + 300),
        );
        let err = registry.accept(at(NOW + 300), four.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                RecordRejected::Verification {
                    sequence: 4,
                    under: BundleSource::Record(3),
                    source: DomainRecordError::Svid(X509SvidError::Untrusted { .. }),
                    ..
                }
            ),
            "{err}"
        );
        // Under R2 it is fine.
        let four = sign(
            &record(&fed.a, 4, NOW + 300, DevCa::bundle(&[&rotation.r2])),
            &rotation.r2.svid(AUTHORITY, NOW + 300),
        );
        assert_eq!(registry.accept(at(NOW + 300), four), Ok(new(A, 4)));
        // Nor does B's bundle ever verify A's records.
        let b_signed = sign(
            &record(&fed.a, 5, NOW + 300, DevCa::bundle(&[&rotation.r2])),
            &fed.b.svid(AUTHORITY, NOW + 300),
        );
        assert!(registry.accept(at(NOW + 300), b_signed).is_err());
    }

    #[test]
    fn a_late_joiner_walks_the_chain_from_its_bootstrap() {
        let rotation = Rotation::new();
        let fed = &rotation.fed;
        let mut server = fed.registry();
        for signed in &rotation.records {
            server.accept(at(NOW + 300), signed.clone()).unwrap();
        }
        let served: Vec<SignedDomainRecord> = server.chain_after(&td(A), 0).cloned().collect();
        assert_eq!(served, rotation.records);
        assert_eq!(server.chain_after(&td(A), 2).count(), 1);
        assert_eq!(server.chain_after(&td(B), 0).count(), 0);

        // The newest record alone does not verify under the joiner's bootstrap bundle;
        // that is not the sender's fault.
        let mut joiner = fed.registry();
        let err = joiner
            .accept(at(NOW + 300), rotation.records[2].clone())
            .unwrap_err();
        assert!(matches!(
            err,
            RecordRejected::Verification {
                under: BundleSource::Bootstrap,
                ..
            }
        ));
        assert!(!err.blames_sender());

        // Shuffled and duplicated, the chain still walks in order.
        let mut batch = served.clone();
        batch.reverse();
        batch.push(served[1].clone());
        let progress = joiner.accept_chain(at(NOW + 300), batch).unwrap();
        assert_eq!(progress.accepted, vec![(td(A), 1), (td(A), 2), (td(A), 3)]);
        // The second copy of record 2 arrives while 2 is current.
        assert_eq!((progress.duplicates, progress.stale), (1, 0));
        assert_eq!(joiner.summary(), server.summary());
        assert_eq!(
            joiner.domain(&td(A)).unwrap().chain().collect::<Vec<_>>(),
            server.domain(&td(A)).unwrap().chain().collect::<Vec<_>>()
        );
        // Walking it again changes nothing.
        let again = joiner.accept_chain(at(NOW + 300), served).unwrap();
        assert_eq!(
            again,
            ChainProgress {
                accepted: vec![],
                duplicates: 1,
                stale: 2
            }
        );
    }

    #[test]
    fn a_chain_walk_stops_at_the_first_refusal() {
        let rotation = Rotation::new();
        let fed = &rotation.fed;
        let mut joiner = fed.registry();
        // Record 2 replaced by one a node of A signed.
        let forged = sign(
            &record(&fed.a, 2, NOW + 100, DevCa::bundle(&[&fed.a, &rotation.r2])),
            &fed.a.svid("/provmesh/node/x", NOW + 100),
        );
        let batch = vec![
            rotation.records[2].clone(),
            forged,
            rotation.records[0].clone(),
        ];
        let err = joiner.accept_chain(at(NOW + 300), batch).unwrap_err();
        assert_eq!(err.progress.accepted, vec![(td(A), 1)]);
        assert!(matches!(
            *err.rejected,
            RecordRejected::SignerNotAuthority { sequence: 2, .. }
        ));
        assert_eq!(joiner.domain(&td(A)).unwrap().sequence(), Some(1));
    }

    #[test]
    fn the_chain_keeps_the_newest_records() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        registry.chain_limit = 3;
        let signer = fed.a_authority(NOW);
        let records: Vec<SignedDomainRecord> = (1..=5)
            .map(|s| sign(&record(&fed.a, s, NOW, DevCa::bundle(&[&fed.a])), &signer))
            .collect();
        for signed in &records {
            registry.accept(at(NOW), signed.clone()).unwrap();
        }
        let kept: Vec<&SignedDomainRecord> = registry.domain(&td(A)).unwrap().chain().collect();
        assert_eq!(kept, records[2..].iter().collect::<Vec<_>>());
        // A record that fell out of the chain is a plain rollback.
        assert!(matches!(
            registry.accept(at(NOW), records[0].clone()),
            Err(RecordRejected::Rollback { sequence: 1, .. })
        ));
    }

    #[test]
    fn witness_key_rotation_end_to_end() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        let signer = fed.a_authority(NOW);
        let w1 = witness(
            "witness.org-a.example",
            3,
            KeyWindow::open_from(NOW - 86_400),
        );
        let w2 = witness("witness2.org-a.example", 4, KeyWindow::open_from(NOW));
        let base = record(&fed.a, 1, NOW, DevCa::bundle(&[&fed.a]));
        assert_eq!(base.witness_keys, vec![w1.clone()]);
        registry.accept(at(NOW), sign(&base, &signer)).unwrap();

        // Old and new side by side.
        let mut both = base.clone();
        both.record_sequence = 2;
        both.witness_keys.push(w2.clone());
        registry.accept(at(NOW), sign(&both, &signer)).unwrap();
        assert_eq!(registry.witness_keys(&td(A)), &[w1.clone(), w2.clone()]);

        // The old one closed: kept for history, valid only until its end.
        let retired_at = NOW + 600;
        let mut closed = both.clone();
        closed.record_sequence = 3;
        closed.witness_keys[0].window.valid_until = Some(retired_at);
        registry.accept(at(NOW), sign(&closed, &signer)).unwrap();
        let keys = registry.witness_keys(&td(A));
        let valid_at = |t: u64| -> Vec<String> {
            keys.iter()
                .filter(|k| k.window.contains(t))
                .map(|k| k.verifier.name().to_string())
                .collect()
        };
        assert_eq!(valid_at(NOW - 10), vec!["witness.org-a.example"]);
        assert_eq!(
            valid_at(retired_at),
            vec!["witness.org-a.example", "witness2.org-a.example"]
        );
        assert_eq!(valid_at(retired_at + 1), vec!["witness2.org-a.example"]);

        // Only the new one.
        let mut only_new = closed.clone();
        only_new.record_sequence = 4;
        only_new.witness_keys.remove(0);
        registry.accept(at(NOW), sign(&only_new, &signer)).unwrap();
        assert_eq!(registry.witness_keys(&td(A)), &[w2]);
    }

    #[test]
    fn an_empty_bundle_revokes_the_domain() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        registry.accept(at(NOW), fed.a_record(1, NOW).1).unwrap();
        let mut revoking = record(&fed.a, 2, NOW + 10, TrustBundle::new());
        revoking.logs.clear();
        let revocation = sign(&revoking, &fed.a_authority(NOW + 10));
        assert_eq!(
            registry.accept(at(NOW + 10), revocation.clone()),
            Ok(Accepted::New {
                trust_domain: td(A),
                sequence: 2,
                revoked: true
            })
        );
        let state = registry.domain(&td(A)).unwrap();
        assert!(state.is_revoked());
        assert_eq!(state.sequence(), Some(2));
        assert!(
            registry
                .trust_bundle(&td(A))
                .unwrap()
                .is_effectively_empty()
        );
        assert!(registry.log_verifier("log.org-a.example").is_none());
        assert_eq!(registry.log_origins().count(), 0);
        assert!(registry.witness_keys(&td(A)).is_empty());
        assert!(registry.code_signing_roots(&td(A)).is_empty());
        assert!(registry.ct_keys(&td(A)).is_empty());
        // Served still, and idempotent.
        assert_eq!(
            registry.chain_after(&td(A), 1).collect::<Vec<_>>(),
            vec![&revocation]
        );
        assert!(matches!(
            registry.accept(at(NOW + 10), revocation),
            Ok(Accepted::Duplicate { .. })
        ));
        // Nothing later, even validly signed under the old bundle.
        let err = registry
            .accept(at(NOW + 20), fed.a_record(3, NOW + 20).1)
            .unwrap_err();
        assert_eq!(
            err,
            RecordRejected::Revoked {
                trust_domain: td(A),
                revoked_at: 2
            }
        );
        assert!(!err.blames_sender());
        // Its origin stays its own.
        let mut b_record = record(&fed.b, 1, NOW, DevCa::bundle(&[&fed.b]));
        b_record
            .logs
            .push(log("log.org-a.example", 1, KeyWindow::open_from(0)));
        assert!(matches!(
            registry.accept(at(NOW + 20), sign(&b_record, &fed.b.svid(AUTHORITY, NOW))),
            Err(RecordRejected::OriginClaimed { .. })
        ));
    }

    #[test]
    fn malformed_records_blame_the_sender() {
        let fed = Federation::new();
        let mut registry = fed.registry();
        let (record, _) = fed.a_record(1, NOW);
        let svid = fed.a_authority(NOW);
        let envelope =
            crate::dsse::Envelope::sign("text/plain", record.to_json(), &[&svid.key]).unwrap();
        let json = format!(
            r#"{{"envelope":{},"svidChain":["{}"]}}"#,
            String::from_utf8(envelope.to_json()).unwrap(),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &svid.chain[0])
        );
        let wrong_type = SignedDomainRecord::from_json(json.as_bytes()).unwrap();
        let err = registry.accept(at(NOW), wrong_type).unwrap_err();
        assert!(matches!(
            err,
            RecordRejected::Malformed(DomainRecordError::WrongPayloadType { .. })
        ));
        assert!(err.blames_sender());
        assert_eq!(err.trust_domain(), None);
    }

    /// Records of domain A for the property test, and which of them A's authority did
    /// not sign.
    struct Pool {
        fed: Federation,
        records: Vec<SignedDomainRecord>,
        not_by_authority: Vec<bool>,
    }

    static POOL: LazyLock<Pool> = LazyLock::new(|| {
        let rotation = Rotation::new();
        let mut records = rotation.records.clone();
        let mut not_by_authority = vec![false; records.len()];
        let fed = rotation.fed;
        let r2 = &rotation.r2;
        let mut push = |signed: SignedDomainRecord, forged: bool| {
            records.push(signed);
            not_by_authority.push(forged);
        };
        // Genuine: record 4 under R2, a fork of record 2, a stale-clock record 5.
        push(
            sign(
                &record(&fed.a, 4, NOW + 300, DevCa::bundle(&[r2])),
                &r2.svid(AUTHORITY, NOW + 300),
            ),
            false,
        );
        let mut fork = record(&fed.a, 2, NOW + 100, DevCa::bundle(&[&fed.a, r2]));
        fork.authority.addresses.clear();
        push(sign(&fork, &fed.a.svid(AUTHORITY, NOW + 100)), false);
        push(
            sign(
                &record(&fed.a, 5, NOW + 50, DevCa::bundle(&[r2])),
                &r2.svid(AUTHORITY, NOW + 50),
            ),
            false,
        );
        // The dropped root's authority, after the rotation: genuine for a node still at
        // its bootstrap bundle, refused by one that followed the rotation.
        push(
            sign(
                &record(&fed.a, 6, NOW + 400, DevCa::bundle(&[&fed.a])),
                &fed.a.svid(AUTHORITY, NOW + 400),
            ),
            false,
        );
        // Not the authority: a node of A under either root, B's authority.
        for (seq, ca) in [(5, &fed.a), (7, r2)] {
            push(
                sign(
                    &record(&fed.a, seq, NOW + 400, DevCa::bundle(&[r2])),
                    &ca.svid("/provmesh/node/x", NOW + 400),
                ),
                true,
            );
        }
        push(
            sign(
                &record(&fed.a, 8, NOW + 400, DevCa::bundle(&[r2])),
                &fed.b.svid(AUTHORITY, NOW + 400),
            ),
            true,
        );
        Pool {
            fed,
            records,
            not_by_authority,
        }
    });

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever order, repetition and mix of genuine, forked, stale and forged
        /// records arrives, the accepted sequence never goes down and no record the
        /// authority did not sign is ever accepted.
        #[test]
        fn no_delivery_order_rolls_back_or_admits_a_forgery(
            picks in proptest::collection::vec(0..10usize, 1..24)
        ) {
            let pool = &*POOL;
            prop_assert_eq!(pool.records.len(), 10);
            let mut registry = pool.fed.registry();
            let authority = pool.fed.a.id(AUTHORITY);
            let mut sequence = 0;
            for index in picks {
                let outcome = registry.accept(at(NOW + 500), pool.records[index].clone());
                let now_at = registry.domain(&td(A)).unwrap().sequence().unwrap_or(0);
                prop_assert!(now_at >= sequence, "sequence went from {} to {}", sequence, now_at);
                match outcome {
                    Ok(Accepted::New { sequence: accepted, .. }) => {
                        prop_assert!(!pool.not_by_authority[index], "accepted forged record {}", index);
                        prop_assert!(accepted > sequence);
                        prop_assert_eq!(accepted, now_at);
                        let state = registry.domain(&td(A)).unwrap();
                        prop_assert_eq!(&state.record().unwrap().svid().spiffe_id, &authority);
                    }
                    Ok(Accepted::Duplicate { .. }) => {
                        prop_assert!(!pool.not_by_authority[index]);
                        prop_assert_eq!(now_at, sequence);
                    }
                    Err(_) => prop_assert_eq!(now_at, sequence),
                }
                sequence = now_at;
            }
        }
    }
}
