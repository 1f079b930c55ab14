//! Provenance policies: which verified records a consumer accepts for an artifact, and
//! why not. One format for `provmesh lookup`, `provmesh verify`, the gRPC lookups and
//! admission control (docs/policy.md).
//!
//! A policy is judged over **verified** records only: this module never looks at
//! signatures or proofs, it is handed what verification established about each record
//! ([`RecordFacts`]) and answers with a [`Verdict`] and its reasons.
//!
//! ```toml
//! version = 1
//! max_age = "90d"                  # records integrated at most this long ago
//! min_witnessing_domains = 2       # distinct domains, other than the log's, that cosigned
//! required_predicate_types = ["https://slsa.dev/provenance/v1"]
//!
//! [[domain]]                       # no [[domain]] at all: every federated domain
//! trust_domain = "org-a.example"
//! signers = ["spiffe://org-a.example/ns/ci/*"]    # exact, or a prefix ending in "/*"
//! builders = ["https://tekton.dev/chains/v2"]     # exact, or a prefix ending in "*"
//!
//! [[revoked]]
//! identity = "spiffe://org-a.example/ns/ci/sa/old"
//! from = "2026-11-01T00:00:00Z"    # optional, inclusive
//! until = "2026-12-01T00:00:00Z"   # optional, inclusive
//! reason = "key leaked"
//! ```
//!
//! # Rules
//!
//! A record is **allowed** when every rule below holds; each failing rule is a reason.
//! * Its log has not been proven to equivocate (every policy, even the empty one).
//! * Its log's trust domain has a `[[domain]]` rule (when any is given), and its signer
//!   matches one of that rule's `signers` (when any is given), and its SLSA builder id one
//!   of its `builders` (when any is given; a record without a builder id then fails).
//! * Its signer is not revoked at its integrated time.
//! * At least `min_witnessing_domains` distinct domains other than the log's own cosigned a
//!   checkpoint that contains it.
//! * It was integrated at most `max_age` before now.
//!
//! The **artifact** is allowed when at least one of its records is allowed and, for each
//! of `required_predicate_types`, an allowed record carries an in-toto statement of that
//! type. No record at all is a denial ("nothing vouches for it"), not an error.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;

use crate::spiffe::{SpiffeId, TrustDomain};

/// The policy format version this module reads.
pub const POLICY_VERSION: u64 = 1;
/// The largest policy document read.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// The most entries of any list in a policy.
pub const MAX_LIST_ENTRIES: usize = 1024;

/// A parsed, validated policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Records older than this (seconds) are denied; `None`: any age.
    pub max_age_secs: Option<u64>,
    /// Distinct witnessing domains other than the log's required per record.
    pub min_witnessing_domains: u32,
    /// Predicate types the allowed records must cover together.
    pub required_predicate_types: Vec<String>,
    /// Per-domain rules; empty: every domain, any signer and builder.
    pub domains: Vec<DomainRule>,
    /// Revoked identities.
    pub revoked: Vec<Revocation>,
}

/// What a policy allows of one trust domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRule {
    /// The trust domain.
    pub trust_domain: TrustDomain,
    /// Allowed signers; empty: any signer of the domain.
    pub signers: Vec<Pattern>,
    /// Allowed SLSA builder ids; empty: any, or none.
    pub builders: Vec<Pattern>,
}

/// A revoked identity, within an optional time window (Unix seconds, inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The revoked signer (or signers, as a prefix).
    pub identity: Pattern,
    /// Revoked from then on; `None`: since always.
    pub from: Option<u64>,
    /// Revoked until then; `None`: forever.
    pub until: Option<u64>,
    /// Why, for the verdict's reasons.
    pub reason: String,
}

/// An exact string, or a prefix (written with a trailing `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Matches this string only.
    Exact(String),
    /// Matches every string starting with this.
    Prefix(String),
}

impl Pattern {
    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Exact(exact) => value == exact,
            Pattern::Prefix(prefix) => value.starts_with(prefix.as_str()),
        }
    }

    /// Reads a pattern: a trailing `*` makes it a prefix.
    pub fn parse(text: &str) -> Pattern {
        match text.strip_suffix('*') {
            Some(prefix) => Pattern::Prefix(prefix.to_owned()),
            None => Pattern::Exact(text.to_owned()),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(exact) => f.write_str(exact),
            Pattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// Why a policy document is not a valid policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Longer than [`MAX_POLICY_BYTES`].
    #[error("the policy is {0} bytes; at most {MAX_POLICY_BYTES} are read")]
    TooLarge(usize),
    /// Not TOML of the policy's shape.
    #[error("the policy is not valid: {0}")]
    Syntax(String),
    /// A version this build does not read.
    #[error("policy version {0} is not supported (this build reads version {POLICY_VERSION})")]
    Version(u64),
    /// A value is out of its rules.
    #[error("{field}: {reason}")]
    Field {
        /// Where, e.g. `domain[0].signers[1]`.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: u64,
    #[serde(default)]
    max_age: Option<String>,
    #[serde(default)]
    min_witnessing_domains: u32,
    #[serde(default)]
    required_predicate_types: Vec<String>,
    #[serde(default, rename = "domain")]
    domains: Vec<DomainRuleFile>,
    #[serde(default)]
    revoked: Vec<RevokedFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainRuleFile {
    trust_domain: String,
    #[serde(default)]
    signers: Vec<String>,
    #[serde(default)]
    builders: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokedFile {
    identity: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

fn field(field: impl Into<String>, reason: impl Into<String>) -> PolicyError {
    PolicyError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

fn bounded<T>(list: &[T], name: &str) -> Result<(), PolicyError> {
    if list.len() > MAX_LIST_ENTRIES {
        return Err(field(
            name,
            format!("{} entries; at most {MAX_LIST_ENTRIES}", list.len()),
        ));
    }
    Ok(())
}

/// A signer pattern: a SPIFFE ID, or a prefix of one ending in `/*` (so that
/// `spiffe://a/ci/*` cannot match `spiffe://a/ci-evil`), in `trust_domain` when given.
fn signer_pattern(
    text: &str,
    trust_domain: Option<&TrustDomain>,
    name: &str,
) -> Result<Pattern, PolicyError> {
    let pattern = Pattern::parse(text);
    let id_text = match &pattern {
        Pattern::Exact(exact) => exact.clone(),
        Pattern::Prefix(prefix) => {
            let Some(parent) = prefix.strip_suffix('/') else {
                return Err(field(
                    name,
                    format!("{text:?}: a prefix must end in \"/*\""),
                ));
            };
            parent.to_owned()
        }
    };
    let id = SpiffeId::parse(&id_text)
        .map_err(|e| field(name, format!("{text:?} is not a SPIFFE ID: {e}")))?;
    if let Some(td) = trust_domain
        && id.trust_domain() != td
    {
        return Err(field(name, format!("{text:?} is not an identity of {td}")));
    }
    Ok(pattern)
}

fn builder_pattern(text: &str, name: &str) -> Result<Pattern, PolicyError> {
    if text.is_empty() || text == "*" || text.chars().any(char::is_control) {
        return Err(field(
            name,
            format!("{text:?} is not a builder id or a prefix of one"),
        ));
    }
    Ok(Pattern::parse(text))
}

/// Parses `"90d"`, `"12h"`, `"30m"`, `"45s"` or a sum such as `"1d12h"` into seconds.
fn parse_age(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: u64 = rest.get(..digits)?.parse().ok()?;
        let unit = rest.get(digits..digits + 1)?;
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return None,
        };
        total = total.checked_add(number.checked_mul(scale)?)?;
        rest = rest.get(digits + 1..)?;
    }
    (total > 0).then_some(total)
}

/// An RFC 3339 timestamp as Unix seconds (not before 1970).
fn parse_time(text: &str, name: &str) -> Result<u64, PolicyError> {
    let time = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| field(name, format!("{text:?} is not an RFC 3339 time: {e}")))?;
    u64::try_from(time.unix_timestamp())
        .map_err(|_| field(name, format!("{text:?} is before 1970")))
}

impl Policy {
    /// Parses and validates a policy document (TOML, see the module documentation).
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge(text.len()));
        }
        let file: PolicyFile = toml::from_str(text)
            .map_err(|e| PolicyError::Syntax(e.to_string().trim_end().to_owned()))?;
        if file.version != POLICY_VERSION {
            return Err(PolicyError::Version(file.version));
        }
        let max_age_secs = match &file.max_age {
            None => None,
            Some(text) => Some(parse_age(text).ok_or_else(|| {
                field(
                    "max_age",
                    format!("{text:?} is not a duration such as \"90d\", \"12h\" or \"1d12h\""),
                )
            })?),
        };
        bounded(&file.required_predicate_types, "required_predicate_types")?;
        for (i, predicate_type) in file.required_predicate_types.iter().enumerate() {
            if predicate_type.is_empty() || predicate_type.chars().any(char::is_control) {
                return Err(field(
                    format!("required_predicate_types[{i}]"),
                    "must be a predicate type URI",
                ));
            }
        }
        bounded(&file.domains, "domain")?;
        let mut seen = BTreeSet::new();
        let mut domains = Vec::with_capacity(file.domains.len());
        for (i, rule) in file.domains.iter().enumerate() {
            let name = format!("domain[{i}]");
            let td = TrustDomain::parse(&rule.trust_domain).map_err(|e| {
                field(
                    format!("{name}.trust_domain"),
                    format!("{:?}: {e}", rule.trust_domain),
                )
            })?;
            if !seen.insert(td.clone()) {
                return Err(field(
                    format!("{name}.trust_domain"),
                    format!("{td} has another [[domain]] rule"),
                ));
            }
            bounded(&rule.signers, &format!("{name}.signers"))?;
            bounded(&rule.builders, &format!("{name}.builders"))?;
            let signers = rule
                .signers
                .iter()
                .enumerate()
                .map(|(j, s)| signer_pattern(s, Some(&td), &format!("{name}.signers[{j}]")))
                .collect::<Result<_, _>>()?;
            let builders = rule
                .builders
                .iter()
                .enumerate()
                .map(|(j, b)| builder_pattern(b, &format!("{name}.builders[{j}]")))
                .collect::<Result<_, _>>()?;
            domains.push(DomainRule {
                trust_domain: td,
                signers,
                builders,
            });
        }
        bounded(&file.revoked, "revoked")?;
        let mut revoked = Vec::with_capacity(file.revoked.len());
        for (i, entry) in file.revoked.iter().enumerate() {
            let name = format!("revoked[{i}]");
            let identity = signer_pattern(&entry.identity, None, &format!("{name}.identity"))?;
            let from = entry
                .from
                .as_deref()
                .map(|t| parse_time(t, &format!("{name}.from")))
                .transpose()?;
            let until = entry
                .until
                .as_deref()
                .map(|t| parse_time(t, &format!("{name}.until")))
                .transpose()?;
            if let (Some(from), Some(until)) = (from, until)
                && from > until
            {
                return Err(field(format!("{name}.until"), "is before \"from\""));
            }
            revoked.push(Revocation {
                identity,
                from,
                until,
                reason: entry.reason.clone().unwrap_or_default(),
            });
        }
        Ok(Policy {
            max_age_secs,
            min_witnessing_domains: file.min_witnessing_domains,
            required_predicate_types: file.required_predicate_types,
            domains,
            revoked,
        })
    }

    /// Judges one verified record at `now_unix` (see "Rules" in the module
    /// documentation).
    pub fn judge_record(&self, record: &RecordFacts<'_>, now_unix: u64) -> RecordVerdict {
        let mut reasons = Vec::new();
        if record.log_equivocating {
            reasons.push(Reason::EquivocatingLog {
                origin: record.log_origin.to_owned(),
            });
        }
        if !self.domains.is_empty() {
            match self
                .domains
                .iter()
                .find(|rule| rule.trust_domain == *record.log_domain)
            {
                None => reasons.push(Reason::DomainNotAllowed {
                    trust_domain: record.log_domain.clone(),
                }),
                Some(rule) => {
                    let signer = record.signer.to_string();
                    if !rule.signers.is_empty() && !rule.signers.iter().any(|p| p.matches(&signer))
                    {
                        reasons.push(Reason::SignerNotAllowed { signer });
                    }
                    if !rule.builders.is_empty() {
                        let allowed = record
                            .builder_id
                            .is_some_and(|b| rule.builders.iter().any(|p| p.matches(b)));
                        if !allowed {
                            reasons.push(Reason::BuilderNotAllowed {
                                builder: record.builder_id.map(str::to_owned),
                            });
                        }
                    }
                }
            }
        }
        let signer = record.signer.to_string();
        for revocation in &self.revoked {
            let in_window = revocation.from.is_none_or(|f| record.integrated_time >= f)
                && revocation.until.is_none_or(|u| record.integrated_time <= u);
            if in_window && revocation.identity.matches(&signer) {
                reasons.push(Reason::Revoked {
                    signer: signer.clone(),
                    reason: revocation.reason.clone(),
                });
                break;
            }
        }
        let witnesses = record
            .witnessing_domains
            .iter()
            .filter(|d| *d != record.log_domain)
            .count();
        if (witnesses as u64) < u64::from(self.min_witnessing_domains) {
            reasons.push(Reason::TooFewWitnesses {
                have: witnesses as u32,
                need: self.min_witnessing_domains,
            });
        }
        if let Some(max) = self.max_age_secs {
            let age = now_unix.saturating_sub(record.integrated_time);
            if age > max {
                reasons.push(Reason::TooOld {
                    age_secs: age,
                    max_age_secs: max,
                });
            }
        }
        RecordVerdict {
            allowed: reasons.is_empty(),
            reasons,
        }
    }

    /// Judges an artifact by all its verified records at `now_unix`.
    pub fn judge(&self, records: &[RecordFacts<'_>], now_unix: u64) -> Verdict {
        let verdicts: Vec<RecordVerdict> = records
            .iter()
            .map(|r| self.judge_record(r, now_unix))
            .collect();
        let mut reasons = Vec::new();
        if records.is_empty() {
            reasons.push(Reason::NoRecord);
        } else if !verdicts.iter().any(|v| v.allowed) {
            reasons.push(Reason::NoAllowedRecord);
        }
        for required in &self.required_predicate_types {
            let covered = records
                .iter()
                .zip(&verdicts)
                .any(|(r, v)| v.allowed && r.predicate_type == Some(required.as_str()));
            if !covered {
                reasons.push(Reason::MissingPredicateType {
                    predicate_type: required.clone(),
                });
            }
        }
        Verdict {
            allowed: reasons.is_empty(),
            reasons,
            records: verdicts,
        }
    }
}

/// What verification established about one record, as the policy needs it.
#[derive(Debug, Clone, Copy)]
pub struct RecordFacts<'a> {
    /// The trust domain whose log holds the record.
    pub log_domain: &'a TrustDomain,
    /// That log's origin.
    pub log_origin: &'a str,
    /// Whether the node holds verified evidence that the log equivocated.
    pub log_equivocating: bool,
    /// The SPIFFE ID the signing certificate was issued to.
    pub signer: &'a SpiffeId,
    /// The SLSA provenance's `runDetails.builder.id`, if the record is one.
    pub builder_id: Option<&'a str>,
    /// The in-toto statement's predicate type, if the record is an attestation.
    pub predicate_type: Option<&'a str>,
    /// When the log integrated it, Unix seconds.
    pub integrated_time: u64,
    /// The domains whose witnesses cosigned a checkpoint containing it.
    pub witnessing_domains: &'a BTreeSet<TrustDomain>,
}

/// Why a record or an artifact is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The record's log is proven to have equivocated.
    EquivocatingLog {
        /// The log.
        origin: String,
    },
    /// The policy has no rule for the record's domain.
    DomainNotAllowed {
        /// The domain.
        trust_domain: TrustDomain,
    },
    /// The signer matches none of its domain's allowed signers.
    SignerNotAllowed {
        /// The signer.
        signer: String,
    },
    /// The builder matches none of its domain's allowed builders.
    BuilderNotAllowed {
        /// The builder id, if the record has one.
        builder: Option<String>,
    },
    /// The signer was revoked at the record's integrated time.
    Revoked {
        /// The signer.
        signer: String,
        /// The revocation's reason.
        reason: String,
    },
    /// Fewer witnessing domains than required.
    TooFewWitnesses {
        /// Distinct witnessing domains other than the log's.
        have: u32,
        /// Required.
        need: u32,
    },
    /// Older than the policy's maximum age.
    TooOld {
        /// The record's age.
        age_secs: u64,
        /// The maximum.
        max_age_secs: u64,
    },
    /// No record vouches for the artifact.
    NoRecord,
    /// Records exist, but the policy allows none of them.
    NoAllowedRecord,
    /// No allowed record carries a statement of a required predicate type.
    MissingPredicateType {
        /// The type.
        predicate_type: String,
    },
}

impl Reason {
    /// A stable, machine-readable code for the reason.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::EquivocatingLog { .. } => "equivocating-log",
            Reason::DomainNotAllowed { .. } => "domain-not-allowed",
            Reason::SignerNotAllowed { .. } => "signer-not-allowed",
            Reason::BuilderNotAllowed { .. } => "builder-not-allowed",
            Reason::Revoked { .. } => "signer-revoked",
            Reason::TooFewWitnesses { .. } => "too-few-witnesses",
            Reason::TooOld { .. } => "too-old",
            Reason::NoRecord => "no-record",
            Reason::NoAllowedRecord => "no-allowed-record",
            Reason::MissingPredicateType { .. } => "missing-predicate-type",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::EquivocatingLog { origin } => {
                write!(f, "log {origin} is proven to have equivocated")
            }
            Reason::DomainNotAllowed { trust_domain } => {
                write!(f, "the policy allows no record of {trust_domain}")
            }
            Reason::SignerNotAllowed { signer } => {
                write!(f, "signer {signer} is not allowed by the policy")
            }
            Reason::BuilderNotAllowed { builder: Some(b) } => {
                write!(f, "builder {b} is not allowed by the policy")
            }
            Reason::BuilderNotAllowed { builder: None } => {
                f.write_str("the policy requires an allowed builder; the record names none")
            }
            Reason::Revoked { signer, reason } if reason.is_empty() => {
                write!(f, "signer {signer} is revoked")
            }
            Reason::Revoked { signer, reason } => {
                write!(f, "signer {signer} is revoked: {reason}")
            }
            Reason::TooFewWitnesses { have, need } => write!(
                f,
                "{have} witnessing domain(s) other than the log's; the policy requires {need}"
            ),
            Reason::TooOld {
                age_secs,
                max_age_secs,
            } => write!(
                f,
                "integrated {age_secs} s ago; the policy allows at most {max_age_secs} s"
            ),
            Reason::NoRecord => f.write_str("no record vouches for the artifact"),
            Reason::NoAllowedRecord => f.write_str("the policy allows none of its records"),
            Reason::MissingPredicateType { predicate_type } => {
                write!(f, "no allowed record attests a {predicate_type} statement")
            }
        }
    }
}

/// The policy's answer for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordVerdict {
    /// Whether the policy allows it.
    pub allowed: bool,
    /// Why not (empty when allowed).
    pub reasons: Vec<Reason>,
}

/// The policy's answer for an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the policy allows the artifact.
    pub allowed: bool,
    /// Why not, at the artifact's level (empty when allowed).
    pub reasons: Vec<Reason>,
    /// Each record's verdict, in the order given.
    pub records: Vec<RecordVerdict>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_800_000_000;
    const SLSA: &str = "https://slsa.dev/provenance/v1";

    fn td(name: &str) -> TrustDomain {
        TrustDomain::parse(name).unwrap()
    }

    fn id(text: &str) -> SpiffeId {
        SpiffeId::parse(text).unwrap()
    }

    struct Owned {
        domain: TrustDomain,
        signer: SpiffeId,
        builder: Option<String>,
        predicate: Option<String>,
        time: u64,
        witnesses: BTreeSet<TrustDomain>,
        equivocating: bool,
    }

    impl Owned {
        fn new() -> Owned {
            Owned {
                domain: td("org-a.example"),
                signer: id("spiffe://org-a.example/ns/ci/sa/build"),
                builder: Some("https://tekton.dev/chains/v2".into()),
                predicate: Some(SLSA.into()),
                time: NOW - 3600,
                witnesses: [td("org-b.example"), td("org-c.example")].into(),
                equivocating: false,
            }
        }

        fn facts(&self) -> RecordFacts<'_> {
            RecordFacts {
                log_domain: &self.domain,
                log_origin: "log.org-a.example",
                log_equivocating: self.equivocating,
                signer: &self.signer,
                builder_id: self.builder.as_deref(),
                predicate_type: self.predicate.as_deref(),
                integrated_time: self.time,
                witnessing_domains: &self.witnesses,
            }
        }
    }

    const FULL: &str = r#"
version = 1
max_age = "1d"
min_witnessing_domains = 2
required_predicate_types = ["https://slsa.dev/provenance/v1"]

[[domain]]
trust_domain = "org-a.example"
signers = ["spiffe://org-a.example/ns/ci/*"]
builders = ["https://tekton.dev/chains/*"]

[[revoked]]
identity = "spiffe://org-a.example/ns/ci/sa/old"
from = "2026-11-01T00:00:00Z"
reason = "key leaked"
"#;

    fn codes(reasons: &[Reason]) -> Vec<&'static str> {
        reasons.iter().map(Reason::code).collect()
    }

    #[test]
    fn a_record_meeting_every_rule_is_allowed() {
        let policy = Policy::from_toml(FULL).unwrap();
        let record = Owned::new();
        let verdict = policy.judge(&[record.facts()], NOW);
        assert!(verdict.allowed, "{verdict:?}");
        assert!(verdict.records[0].allowed);
    }

    #[test]
    fn each_rule_denies_with_its_reason() {
        let policy = Policy::from_toml(FULL).unwrap();
        type Change = fn(&mut Owned);
        let cases: Vec<(Change, &str)> = vec![
            (|r| r.equivocating = true, "equivocating-log"),
            (|r| r.domain = td("org-x.example"), "domain-not-allowed"),
            (
                |r| r.signer = id("spiffe://org-a.example/ns/dev/sa/laptop"),
                "signer-not-allowed",
            ),
            (
                |r| r.builder = Some("https://evil.example/builder".into()),
                "builder-not-allowed",
            ),
            (|r| r.builder = None, "builder-not-allowed"),
            (
                |r| r.signer = id("spiffe://org-a.example/ns/ci/sa/old"),
                "signer-revoked",
            ),
            (
                |r| r.witnesses = [td("org-a.example"), td("org-b.example")].into(),
                "too-few-witnesses",
            ),
            (|r| r.time = NOW - 2 * 86_400, "too-old"),
        ];
        for (change, code) in cases {
            let mut record = Owned::new();
            change(&mut record);
            let verdict = policy.judge_record(&record.facts(), NOW);
            assert!(!verdict.allowed, "{code}");
            assert_eq!(codes(&verdict.reasons), [code], "{:?}", verdict.reasons);
            let artifact = policy.judge(&[record.facts()], NOW);
            assert!(!artifact.allowed);
            assert!(codes(&artifact.reasons).contains(&"no-allowed-record"));
        }
    }

    #[test]
    fn revocation_windows_are_inclusive_and_bounded() {
        let policy = Policy::from_toml(
            r#"
version = 1
[[revoked]]
identity = "spiffe://org-a.example/ns/ci/*"
from = "2027-01-15T08:00:00Z"
until = "2027-01-15T09:00:00Z"
"#,
        )
        .unwrap();
        // 2027-01-15T08:00:00Z.
        let from = 1_800_000_000;
        let mut record = Owned::new();
        for (time, revoked) in [
            (from - 1, false),
            (from, true),
            (from + 3600, true),
            (from + 3601, false),
        ] {
            record.time = time;
            let verdict = policy.judge_record(&record.facts(), time);
            assert_eq!(!verdict.allowed, revoked, "at {time}: {verdict:?}");
        }
    }

    #[test]
    fn artifact_rules() {
        let policy = Policy::from_toml(FULL).unwrap();
        // Nothing found.
        let verdict = policy.judge(&[], NOW);
        assert_eq!(
            codes(&verdict.reasons),
            ["no-record", "missing-predicate-type"]
        );
        // A signature without a statement is allowed as a record but covers no type.
        let mut signature = Owned::new();
        signature.predicate = None;
        let lenient =
            Policy::from_toml("version = 1\nrequired_predicate_types = [\"x:y\"]").unwrap();
        let verdict = lenient.judge(&[signature.facts()], NOW);
        assert!(verdict.records[0].allowed);
        assert_eq!(codes(&verdict.reasons), ["missing-predicate-type"]);
        // One allowed record of the type and one denied: allowed.
        let good = Owned::new();
        let mut bad = Owned::new();
        bad.equivocating = true;
        assert!(policy.judge(&[bad.facts(), good.facts()], NOW).allowed);
    }

    #[test]
    fn the_empty_policy_denies_only_equivocation() {
        let policy = Policy::from_toml("version = 1").unwrap();
        assert_eq!(policy, Policy::default());
        let mut record = Owned::new();
        record.domain = td("anyone.example");
        record.builder = None;
        record.witnesses.clear();
        assert!(policy.judge(&[record.facts()], NOW).allowed);
        record.equivocating = true;
        assert!(!policy.judge(&[record.facts()], NOW).allowed);
    }

    #[test]
    fn malformed_policies_are_refused_with_the_field() {
        let cases = [
            ("", "missing field `version`"),
            ("version = 2", "version 2"),
            ("version = 1\nmax_age = \"3 weeks\"", "max_age"),
            ("version = 1\nmax_age = \"0d\"", "max_age"),
            ("version = 1\nsurprise = true", "unknown field"),
            (
                "version = 1\n[[domain]]\ntrust_domain = \"Org A\"",
                "domain[0].trust_domain",
            ),
            (
                "version = 1\n[[domain]]\ntrust_domain = \"a.example\"\nsigners = [\"spiffe://b.example/x\"]",
                "domain[0].signers[0]",
            ),
            (
                "version = 1\n[[domain]]\ntrust_domain = \"a.example\"\nsigners = [\"spiffe://a.example/ci*\"]",
                "must end in \"/*\"",
            ),
            (
                "version = 1\n[[domain]]\ntrust_domain = \"a.example\"\n[[domain]]\ntrust_domain = \"a.example\"",
                "another [[domain]] rule",
            ),
            (
                "version = 1\n[[domain]]\ntrust_domain = \"a.example\"\nbuilders = [\"*\"]",
                "domain[0].builders[0]",
            ),
            (
                "version = 1\n[[revoked]]\nidentity = \"spiffe://a.example/x\"\nfrom = \"yesterday\"",
                "revoked[0].from",
            ),
            (
                "version = 1\n[[revoked]]\nidentity = \"spiffe://a.example/x\"\nfrom = \"2027-01-02T00:00:00Z\"\nuntil = \"2027-01-01T00:00:00Z\"",
                "revoked[0].until",
            ),
            (
                "version = 1\nmin_witnessing_domains = -1",
                "min_witnessing_domains",
            ),
        ];
        for (text, needle) in cases {
            let error = Policy::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text:?}: {error}");
        }
        let huge = format!("version = 1\n#{}", "x".repeat(MAX_POLICY_BYTES));
        assert!(matches!(
            Policy::from_toml(&huge),
            Err(PolicyError::TooLarge(_))
        ));
    }

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("90d"), Some(90 * 86_400));
        assert_eq!(parse_age("1d12h"), Some(86_400 + 12 * 3600));
        assert_eq!(parse_age("45s"), Some(45));
        for bad in ["", "d", "1", "1w", "1.5h", "-1d", "99999999999999999999d"] {
            assert_eq!(parse_age(bad), None, "{bad:?}");
        }
    }

    proptest! {
        /// Whatever the policy, an equivocating log's record is never allowed, and
        /// neither is an artifact whose only records come from such logs.
        #[test]
        fn equivocation_fails_every_policy(
            min in 0u32..4,
            age in proptest::option::of(1u64..10_000_000),
            with_domain_rule in any::<bool>(),
            time in 0u64..NOW,
        ) {
            let mut policy = Policy {
                max_age_secs: age,
                min_witnessing_domains: min,
                ..Policy::default()
            };
            if with_domain_rule {
                policy.domains.push(DomainRule {
                    trust_domain: td("org-a.example"),
                    signers: vec![],
                    builders: vec![],
                });
            }
            let mut record = Owned::new();
            record.time = time;
            record.equivocating = true;
            prop_assert!(!policy.judge_record(&record.facts(), NOW).allowed);
            prop_assert!(!policy.judge(&[record.facts()], NOW).allowed);
        }

        /// More witnesses never turn an allowed record into a denied one, and the log's
        /// own domain never counts as a witness.
        #[test]
        fn witnesses_only_help(min in 0u32..5, extra in 0usize..5) {
            let policy = Policy { min_witnessing_domains: min, ..Policy::default() };
            let mut record = Owned::new();
            record.witnesses = [td("org-a.example")].into();
            let before = policy.judge_record(&record.facts(), NOW).allowed;
            prop_assert_eq!(before, min == 0);
            for i in 0..extra {
                record.witnesses.insert(td(&format!("w{i}.example")));
            }
            let after = policy.judge_record(&record.facts(), NOW).allowed;
            prop_assert!(!before || after);
            prop_assert_eq!(after, extra as u32 >= min);
        }
    }
}
