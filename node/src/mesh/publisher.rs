//! The authority's record publisher: builds the domain record from the keys the authority
//! holds now and the record it published last, and signs a new one only when something
//! changed — a key rotated, the SPIFFE bundle changed, the authority's addresses moved.
//!
//! **Key history.** A key in the previous record that the authority no longer holds is
//! kept, its window closed at the moment of the new record, so signatures it made while
//! valid still verify; a key still held keeps its original `validFrom`; a new key starts
//! at the new record. A rotation therefore publishes one record carrying the old key
//! (closed) and the new one (open). Closed keys are kept until the list is full, oldest
//! dropped first. A log's key never rotates in place (a new key is a new origin), so the
//! own log is always carried unchanged.
//!
//! The witness key (tlog-cosignature/v1, Ed25519) lives in `<data_dir>/witness/`
//! (mode 0600); `provmesh authority rotate-witness-key` retires it and makes a new one.

use std::path::{Path, PathBuf};

use libp2p::Multiaddr;
use provmesh_protocol::cosignature::{CosignatureSigner, CosignatureVerifier};
use provmesh_protocol::federation::domain_record::{
    Authority, CodeSigningRoot, CtKey, DomainLog, DomainRecord, KeyWindow, MAX_KEYS_PER_LIST,
    SignedDomainRecord, VerifiedDomainRecord, WitnessKey,
};
use provmesh_protocol::machine::Timestamp;
use provmesh_protocol::note::{KeyName, Verifier};
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};

use crate::identity::Identity;
use crate::identity::svid_signer::SvidSigner;
use crate::keyfile::{KeyFileError, write_new_private};

/// The witness key's directory under the data directory.
pub const WITNESS_DIR: &str = "witness";
/// The witness key file.
pub const WITNESS_KEY_FILE: &str = "witness.key";
/// Where retired witness keys go.
pub const RETIRED_DIR: &str = "retired";

/// The keys of the authority, as they are now.
#[derive(Debug, Clone)]
pub struct AuthorityKeys {
    /// The authority's SPIFFE ID (the only one whose records the federation accepts).
    pub authority_id: SpiffeId,
    /// The own log.
    pub log_origin: KeyName,
    /// Its verifier key.
    pub log_verifier: Verifier,
    /// The code-signing root, DER, when the CA runs.
    pub code_signing_root: Option<Vec<u8>>,
    /// The CT key, SPKI DER, when the CA runs.
    pub ct_key: Option<Vec<u8>>,
    /// The witness key.
    pub witness: CosignatureVerifier,
    /// The authority's HTTP API URL, advertised beside its libp2p addresses.
    pub http_url: Option<String>,
}

/// Decides when to publish a new record, and builds it.
#[derive(Debug)]
pub struct RecordPublisher {
    keys: AuthorityKeys,
    /// A record is being appended to the log; no other is built meanwhile.
    in_flight: bool,
    /// Something may have changed since the last check.
    dirty: bool,
    /// The authority ID was not the SVID's: said once.
    warned_identity: bool,
}

impl RecordPublisher {
    /// A publisher of `keys`.
    pub fn new(keys: AuthorityKeys) -> Self {
        RecordPublisher {
            keys,
            in_flight: false,
            dirty: true,
            warned_identity: false,
        }
    }

    /// Something may have changed (the bundle, the SVID): check at the next poll.
    pub fn wake(&mut self) {
        self.dirty = true;
    }

    /// A record is being logged.
    pub fn mark_in_flight(&mut self) {
        self.in_flight = true;
    }

    /// The record in flight was logged (or failed to be): the next poll may build again.
    pub fn logged(&mut self) {
        self.in_flight = false;
        self.dirty = true;
    }

    /// A new signed record if the current keys differ from `previous` (the record of the
    /// own domain the registry accepted last), else `None`.
    pub fn poll(
        &mut self,
        now: Timestamp,
        previous: Option<&VerifiedDomainRecord>,
        identity: &Identity,
        listen_addrs: &[Multiaddr],
    ) -> Option<SignedDomainRecord> {
        if self.in_flight || !self.dirty {
            return None;
        }
        self.dirty = false;
        let svid = identity.svid();
        if svid.spiffe_id != self.keys.authority_id {
            if !self.warned_identity {
                tracing::error!(
                    svid = %svid.spiffe_id,
                    authority_id = %self.keys.authority_id,
                    "this authority's SVID is not the domain's authority ID: it cannot publish domain records (register it under the authority ID)"
                );
                self.warned_identity = true;
            }
            return None;
        }
        let mut addresses: Vec<String> = listen_addrs.iter().map(ToString::to_string).collect();
        addresses.extend(self.keys.http_url.clone());
        addresses.truncate(provmesh_protocol::federation::domain_record::MAX_ADDRESSES);
        let candidate = build_record(
            &self.keys,
            identity.trust_domain(),
            (*identity.bundle()).clone(),
            addresses,
            previous.map(VerifiedDomainRecord::record),
            now.as_unix_seconds(),
        );
        if previous.is_some_and(|p| p.record() == &candidate) {
            return None;
        }
        let signer = match SvidSigner::new(&svid) {
            Ok(signer) => signer,
            Err(e) => {
                tracing::error!(error = %e, "cannot sign the domain record");
                return None;
            }
        };
        let record = DomainRecord {
            record_sequence: previous.map_or(1, |p| p.sequence() + 1),
            issued_at: now.as_unix_seconds(),
            ..candidate
        };
        match SignedDomainRecord::sign(&record, &signer, &svid.chain_der) {
            Ok(signed) => {
                tracing::info!(
                    sequence = record.record_sequence,
                    "publishing a new domain record"
                );
                Some(signed)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot sign the domain record");
                None
            }
        }
    }
}

/// Merges key `current` into the history of `previous` entries (see the module header):
/// `key` identifies an entry, `window` reads and writes its window.
fn with_history<T: Clone>(
    current: Vec<T>,
    previous: &[T],
    now: u64,
    same: impl Fn(&T, &T) -> bool,
    window: impl Fn(&mut T) -> &mut KeyWindow,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for mut key in current {
        if let Some(old) = previous.iter().find(|p| same(p, &key)) {
            let mut old = old.clone();
            *window(&mut key) = *window(&mut old);
            // Still held: open again if a previous record had closed it.
            window(&mut key).valid_until = None;
        } else {
            *window(&mut key) = KeyWindow::open_from(now);
        }
        out.push(key);
    }
    let mut retired: Vec<T> = previous
        .iter()
        .filter(|p| !out.iter().any(|k| same(k, p)))
        .cloned()
        .map(|mut p| {
            let w = window(&mut p);
            if w.valid_until.is_none() {
                w.valid_until = Some(now.max(w.valid_from));
            }
            p
        })
        .collect();
    // Newest retirements first, so the oldest are dropped when the list is full.
    retired.sort_by_key(|p| {
        let mut p = p.clone();
        std::cmp::Reverse(window(&mut p).valid_until)
    });
    let room = MAX_KEYS_PER_LIST.saturating_sub(out.len());
    out.extend(retired.into_iter().take(room));
    out
}

/// The record the authority would publish now, with `previous`'s sequence and issue
/// time (so that an unchanged record compares equal to it).
fn build_record(
    keys: &AuthorityKeys,
    trust_domain: &TrustDomain,
    bundle: provmesh_protocol::spiffe::TrustBundle,
    addresses: Vec<String>,
    previous: Option<&DomainRecord>,
    now: u64,
) -> DomainRecord {
    let window = KeyWindow::open_from(now);
    let logs = with_history(
        vec![DomainLog {
            origin: keys.log_origin.clone(),
            verifier: keys.log_verifier.clone(),
            window,
        }],
        previous.map_or(&[][..], |p| &p.logs),
        now,
        |a, b| a.origin == b.origin && a.verifier == b.verifier,
        |k| &mut k.window,
    );
    let code_signing_roots = with_history(
        keys.code_signing_root
            .iter()
            .map(|der| CodeSigningRoot {
                certificate_der: der.clone(),
                window,
            })
            .collect(),
        previous.map_or(&[][..], |p| &p.code_signing_roots),
        now,
        |a, b| a.certificate_der == b.certificate_der,
        |k| &mut k.window,
    );
    let ct_keys = with_history(
        keys.ct_key
            .iter()
            .map(|der| CtKey {
                public_key_spki_der: der.clone(),
                window,
            })
            .collect(),
        previous.map_or(&[][..], |p| &p.ct_keys),
        now,
        |a, b| a.public_key_spki_der == b.public_key_spki_der,
        |k| &mut k.window,
    );
    let witness_keys = with_history(
        vec![WitnessKey {
            verifier: keys.witness.clone(),
            window,
        }],
        previous.map_or(&[][..], |p| &p.witness_keys),
        now,
        |a, b| a.verifier == b.verifier,
        |k| &mut k.window,
    );
    DomainRecord {
        trust_domain: trust_domain.clone(),
        record_sequence: previous.map_or(1, |p| p.record_sequence),
        issued_at: previous.map_or(now, |p| p.issued_at),
        spiffe_bundle: bundle,
        authority: Authority {
            spiffe_id: keys.authority_id.clone(),
            addresses,
        },
        logs,
        code_signing_roots,
        ct_keys,
        witness_keys,
    }
}

/// The witness key directory of a data directory.
pub fn witness_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(WITNESS_DIR)
}

/// The witness name of a trust domain: `witness.<trust domain>`.
pub fn witness_name(trust_domain: &TrustDomain) -> Result<KeyName, KeyFileError> {
    KeyName::new(format!("witness.{}", trust_domain.as_str())).map_err(|e| KeyFileError::Invalid {
        path: PathBuf::from(WITNESS_KEY_FILE),
        what: "witness key name",
        reason: e.to_string(),
    })
}

/// Loads the domain's witness key from `dir`, creating it on first use.
pub fn load_or_create_witness_key(
    dir: &Path,
    trust_domain: &TrustDomain,
) -> Result<CosignatureSigner, KeyFileError> {
    let path = dir.join(WITNESS_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => CosignatureSigner::from_skey(text.trim()).map_err(|e| KeyFileError::Invalid {
            path: path.clone(),
            what: "tlog-cosignature/v1 witness key",
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            aws_lc_rs::rand::fill(&mut seed).map_err(|_| KeyFileError::Random)?;
            let signer = CosignatureSigner::from_seed(witness_name(trust_domain)?, &seed);
            seed.fill(0);
            write_new_private(&path, format!("{}\n", signer.to_skey()).as_bytes())?;
            tracing::info!(path = %path.display(), "created the domain's witness key");
            Ok(signer)
        }
        Err(source) => Err(KeyFileError::Io { path, source }),
    }
}

/// Retires the witness key in `dir` (moved to `retired/witness-<unix seconds>.key`) and
/// creates a new one; the authority publishes the rotation at its next start. Returns the
/// new key's verifier.
pub fn rotate_witness_key(
    dir: &Path,
    trust_domain: &TrustDomain,
    now_unix: u64,
) -> Result<CosignatureVerifier, KeyFileError> {
    let path = dir.join(WITNESS_KEY_FILE);
    if path.exists() {
        let retired = dir.join(RETIRED_DIR);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| KeyFileError::Io { path, source }
        };
        std::fs::create_dir_all(&retired).map_err(io(&retired))?;
        let target = retired.join(format!("witness-{now_unix}.key"));
        std::fs::rename(&path, &target).map_err(io(&target))?;
    }
    Ok(load_or_create_witness_key(dir, trust_domain)?.verifier())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(byte: u8, window: KeyWindow) -> CodeSigningRoot {
        CodeSigningRoot {
            certificate_der: vec![byte],
            window,
        }
    }

    #[test]
    fn a_rotated_key_is_kept_closed_and_the_new_one_opens_now() {
        let previous = vec![root(1, KeyWindow::open_from(100))];
        let merged = with_history(
            vec![root(2, KeyWindow::open_from(0))],
            &previous,
            500,
            |a, b| a.certificate_der == b.certificate_der,
            |k| &mut k.window,
        );
        assert_eq!(
            merged,
            vec![
                root(2, KeyWindow::open_from(500)),
                root(1, KeyWindow::between(100, 500))
            ]
        );
        // Unchanged keys keep their window; history stays as it was.
        let again = with_history(
            vec![root(2, KeyWindow::open_from(0))],
            &merged,
            900,
            |a, b| a.certificate_der == b.certificate_der,
            |k| &mut k.window,
        );
        assert_eq!(again, merged);
    }

    #[test]
    fn history_is_bounded_dropping_the_oldest() {
        let previous: Vec<CodeSigningRoot> = (0..MAX_KEYS_PER_LIST as u64)
            .map(|i| root(i as u8, KeyWindow::between(i, i + 1)))
            .collect();
        let merged = with_history(
            vec![root(200, KeyWindow::open_from(0))],
            &previous,
            1000,
            |a, b| a.certificate_der == b.certificate_der,
            |k| &mut k.window,
        );
        assert_eq!(merged.len(), MAX_KEYS_PER_LIST);
        assert!(!merged.iter().any(|k| k.certificate_der == vec![0]));
    }

    #[test]
    fn witness_key_rotation_retires_the_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let td = TrustDomain::parse("org-a.example").unwrap();
        let first = load_or_create_witness_key(dir.path(), &td)
            .unwrap()
            .verifier();
        assert_eq!(
            load_or_create_witness_key(dir.path(), &td)
                .unwrap()
                .verifier(),
            first
        );
        let second = rotate_witness_key(dir.path(), &td, 42).unwrap();
        assert_ne!(second, first);
        assert!(dir.path().join("retired/witness-42.key").exists());
    }
}
