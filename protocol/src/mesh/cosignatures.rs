//! Witness cosignatures on checkpoints: which cosigners count, which cosignature lines of
//! a received checkpoint verify, and the note a node serves for a log.
//!
//! Witnesses are domains (design: "Gossip and witnessing"): each domain record lists the
//! domain's witness keys (C2SP tlog-cosignature/v1) with a validity window. A
//! [`WitnessRoster`] holds the keys of the accepted domains; [`WitnessRoster::collect`]
//! checks the cosignature lines of a checkpoint against it, and a checkpoint keeps at most
//! one cosignature per domain ([`Cosignatures`]). Consumer policies count distinct
//! domains other than the log's, so one per domain is all that is worth keeping.
//!
//! # What counts
//!
//! * A line whose key name and key ID match a roster key must verify, or the checkpoint
//!   is refused as a whole (C2SP signed-note: "If a signature from a known key fails to
//!   verify, clients SHOULD reject the whole note"). Lines of unknown keys are ignored.
//! * Its timestamp must fall in the key's validity window and must not lie further in
//!   the future than the configured clock skew (tlog-cosignature: "verifiers MAY reject
//!   cosignatures with timestamps in the future"). Such a line is not counted, but it
//!   does not refuse the checkpoint: clocks disagree, and the relaying peer may be honest.
//!
//! # What a node serves
//!
//! [`served_note`]: the log's signature followed by at most [`MAX_SERVED_COSIGNATURES`]
//! cosignatures, newest first, because signed-note verifiers must accept 16 signatures
//! and need not accept more (design: "Transparency log"); the others stay available
//! through [`Cosignatures::iter`].

use std::collections::BTreeMap;

use crate::federation::domain_record::WitnessKey;
use crate::note::{KeyId, KeyName, Note, NoteSignature, SignatureFailure};
use crate::spiffe::TrustDomain;

/// The most cosignatures a served checkpoint carries besides the log's signature.
pub const MAX_SERVED_COSIGNATURES: usize = 15;

/// The witness keys of the federation's domains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessRoster {
    /// By key name and key ID, the two things a signature line names.
    keys: BTreeMap<(KeyName, KeyId), Vec<RosterKey>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RosterKey {
    trust_domain: TrustDomain,
    key: WitnessKey,
}

/// A verified cosignature of one domain on one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The cosigning domain.
    pub trust_domain: TrustDomain,
    /// The cosignature's timestamp, Unix seconds.
    pub timestamp: u64,
    /// The signature line.
    pub line: NoteSignature,
}

/// A cosignature line of a known witness key that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cosignature of {witness} (of {trust_domain}) does not verify: {failure}")]
pub struct InvalidCosignature {
    /// The witness key's name.
    pub witness: String,
    /// Its domain.
    pub trust_domain: TrustDomain,
    /// Why.
    pub failure: SignatureFailure,
}

impl WitnessRoster {
    /// An empty roster: no cosignature counts.
    pub fn new() -> Self {
        WitnessRoster::default()
    }

    /// Adds the witness keys of `trust_domain`.
    pub fn insert<'k>(
        &mut self,
        trust_domain: &TrustDomain,
        keys: impl IntoIterator<Item = &'k WitnessKey>,
    ) {
        for key in keys {
            let verifier = &key.verifier;
            self.keys
                .entry((verifier.name().clone(), verifier.key_id()))
                .or_default()
                .push(RosterKey {
                    trust_domain: trust_domain.clone(),
                    key: key.clone(),
                });
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    /// Whether the roster has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The cosignatures of `note` (a checkpoint whose log signature was verified) that
    /// count at `now_unix`, allowing timestamps up to `max_skew_secs` ahead of it; at most
    /// one per domain, the newest. See the module documentation for the rules.
    pub fn collect(
        &self,
        note: &Note,
        now_unix: u64,
        max_skew_secs: u64,
    ) -> Result<Cosignatures, InvalidCosignature> {
        let mut found = Cosignatures::default();
        for line in note.signatures() {
            let Some(candidates) = self.keys.get(&(line.name().clone(), line.key_id())) else {
                continue;
            };
            // Two domains listing one key is possible (a shared witness); each gets the
            // cosignature.
            for candidate in candidates {
                let timestamp = candidate
                    .key
                    .verifier
                    .verify(note.text(), line.signature())
                    .map_err(|failure| InvalidCosignature {
                        witness: line.name().as_str().to_owned(),
                        trust_domain: candidate.trust_domain.clone(),
                        failure,
                    })?;
                if !candidate.key.window.contains(timestamp)
                    || timestamp > now_unix.saturating_add(max_skew_secs)
                {
                    continue;
                }
                found.insert(Cosignature {
                    trust_domain: candidate.trust_domain.clone(),
                    timestamp,
                    line: line.clone(),
                });
            }
        }
        Ok(found)
    }
}

/// The cosignatures held for one checkpoint, one per domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cosignatures {
    by_domain: BTreeMap<TrustDomain, Cosignature>,
}

impl Cosignatures {
    /// Adds `cosignature` unless its domain's cosignature held is as new; returns whether
    /// it was added.
    pub fn insert(&mut self, cosignature: Cosignature) -> bool {
        match self.by_domain.get(&cosignature.trust_domain) {
            Some(held) if held.timestamp >= cosignature.timestamp => false,
            _ => {
                self.by_domain
                    .insert(cosignature.trust_domain.clone(), cosignature);
                true
            }
        }
    }

    /// Adds every cosignature of `other` (see [`Cosignatures::insert`]); returns whether
    /// any was added.
    pub fn merge(&mut self, other: Cosignatures) -> bool {
        let mut added = false;
        for cosignature in other.by_domain.into_values() {
            added |= self.insert(cosignature);
        }
        added
    }

    /// The number of cosigning domains.
    pub fn len(&self) -> usize {
        self.by_domain.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }

    /// The cosignatures, by domain name.
    pub fn iter(&self) -> impl Iterator<Item = &Cosignature> + '_ {
        self.by_domain.values()
    }

    /// The cosigning domains, by name.
    pub fn domains(&self) -> impl Iterator<Item = &TrustDomain> + '_ {
        self.by_domain.keys()
    }

    /// The earliest cosignature timestamp, if any: the log had this tree by then.
    pub fn earliest(&self) -> Option<u64> {
        self.by_domain.values().map(|c| c.timestamp).min()
    }
}

/// `log_signed` (a signed note carrying only the log's signature) with up to
/// [`MAX_SERVED_COSIGNATURES`] of `cosignatures` appended, newest first (ties by domain
/// name). Signature lines end a note, so appending lines keeps it a note.
pub fn served_note(log_signed: &[u8], cosignatures: &Cosignatures) -> Vec<u8> {
    let mut newest: Vec<&Cosignature> = cosignatures.iter().collect();
    newest.sort_by_key(|c| std::cmp::Reverse(c.timestamp));
    let mut note = log_signed.to_vec();
    for cosignature in newest.into_iter().take(MAX_SERVED_COSIGNATURES) {
        note.extend_from_slice(cosignature.line.to_line().as_bytes());
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::CosignatureSigner;
    use crate::federation::domain_record::KeyWindow;
    use crate::testing::TestLog;

    const NOW: u64 = 1_800_000_000;
    const ORIGIN: &str = "log.example/cosigned";

    fn witness(name: &str, seed: u8) -> CosignatureSigner {
        CosignatureSigner::from_seed(KeyName::new(name).unwrap(), &[seed; 32])
    }

    fn domain(name: &str) -> TrustDomain {
        TrustDomain::parse(name).unwrap()
    }

    fn roster(witnesses: &[(&str, &CosignatureSigner, KeyWindow)]) -> WitnessRoster {
        let mut roster = WitnessRoster::new();
        for (td, signer, window) in witnesses {
            roster.insert(
                &domain(td),
                [&WitnessKey {
                    verifier: signer.verifier(),
                    window: *window,
                }],
            );
        }
        roster
    }

    fn cosigned(log: &mut TestLog, signers: &[(&CosignatureSigner, u64)]) -> Note {
        let mut note = Note::parse(&log.note(5)).unwrap();
        for (signer, time) in signers {
            note.add_signature(signer.sign(note.text(), *time).unwrap())
                .unwrap();
        }
        note
    }

    #[test]
    fn counts_one_cosignature_per_known_domain() {
        let mut log = TestLog::new(ORIGIN, 7);
        let (a, b, unknown) = (witness("w.a", 1), witness("w.b", 2), witness("w.x", 3));
        let roster = roster(&[
            ("a.example", &a, KeyWindow::open_from(0)),
            ("b.example", &b, KeyWindow::open_from(0)),
        ]);
        let note = cosigned(&mut log, &[(&a, NOW - 5), (&unknown, NOW), (&b, NOW - 1)]);
        let found = roster.collect(&note, NOW, 60).unwrap();
        let domains: Vec<&str> = found.domains().map(TrustDomain::as_str).collect();
        assert_eq!(domains, ["a.example", "b.example"]);
        assert_eq!(found.earliest(), Some(NOW - 5));
    }

    #[test]
    fn a_known_key_that_does_not_verify_refuses_the_note() {
        let mut log = TestLog::new(ORIGIN, 7);
        let a = witness("w.a", 1);
        let roster = roster(&[("a.example", &a, KeyWindow::open_from(0))]);
        let mut note = cosigned(&mut log, &[(&a, NOW)]);
        // The same key name and ID with another signature.
        let line = note.signatures()[1].clone();
        let mut forged = line.signature().to_vec();
        forged[20] ^= 1;
        note.retain_signatures(|s| s != &line).unwrap();
        note.add_signature(NoteSignature::new(line.name().clone(), line.key_id(), forged).unwrap())
            .unwrap();
        let error = roster.collect(&note, NOW, 60).unwrap_err();
        assert_eq!(error.trust_domain, domain("a.example"));
    }

    #[test]
    fn future_and_out_of_window_cosignatures_do_not_count() {
        let mut log = TestLog::new(ORIGIN, 7);
        let (a, b) = (witness("w.a", 1), witness("w.b", 2));
        let roster = roster(&[
            ("a.example", &a, KeyWindow::open_from(0)),
            ("b.example", &b, KeyWindow::between(0, NOW - 100)),
        ]);
        let note = cosigned(&mut log, &[(&a, NOW + 61), (&b, NOW)]);
        assert!(roster.collect(&note, NOW, 60).unwrap().is_empty());
        let note = cosigned(&mut log, &[(&a, NOW + 60)]);
        assert_eq!(roster.collect(&note, NOW, 60).unwrap().len(), 1);
    }

    #[test]
    fn served_note_carries_at_most_fifteen_newest_cosignatures_and_verifies() {
        let mut log = TestLog::new(ORIGIN, 7);
        let signers: Vec<CosignatureSigner> = (0..20)
            .map(|i| witness(&format!("w.{i}"), i as u8 + 1))
            .collect();
        let mut cosignatures = Cosignatures::default();
        let mut roster = WitnessRoster::new();
        let log_signed_bytes = log.note(9);
        let log_signed = Note::parse(&log_signed_bytes).unwrap();
        for (i, signer) in signers.iter().enumerate() {
            let td = domain(&format!("d{i:02}.example"));
            roster.insert(
                &td,
                [&WitnessKey {
                    verifier: signer.verifier(),
                    window: KeyWindow::open_from(0),
                }],
            );
            let line = signer.sign(log_signed.text(), NOW + i as u64).unwrap();
            assert!(cosignatures.insert(Cosignature {
                trust_domain: td,
                timestamp: NOW + i as u64,
                line,
            }));
        }
        let served = Note::parse(&served_note(&log_signed_bytes, &cosignatures)).unwrap();
        assert_eq!(served.signatures().len(), 1 + MAX_SERVED_COSIGNATURES);
        let counted = roster.collect(&served, NOW + 100, 0).unwrap();
        // The newest fifteen: domains 05..19.
        assert_eq!(counted.len(), MAX_SERVED_COSIGNATURES);
        assert_eq!(counted.domains().next().unwrap().as_str(), "d05.example");
        crate::checkpoint::open(&served.to_bytes(), ORIGIN, &log.verifier()).unwrap();
    }

    #[test]
    fn an_older_cosignature_of_a_domain_does_not_replace_a_newer_one() {
        let mut log = TestLog::new(ORIGIN, 7);
        let text = Note::parse(&log.note(3)).unwrap().text().to_owned();
        let line = witness("w.a", 1).sign(&text, NOW).unwrap();
        let mut set = Cosignatures::default();
        let make = |timestamp| Cosignature {
            trust_domain: domain("a.example"),
            timestamp,
            line: line.clone(),
        };
        assert!(set.insert(make(NOW)));
        assert!(!set.insert(make(NOW - 1)));
        assert!(!set.insert(make(NOW)));
        assert!(set.insert(make(NOW + 1)));
        assert_eq!(set.len(), 1);
    }
}
