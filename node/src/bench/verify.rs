//! `provmesh bench verify`: how fast one Sigstore bundle is verified offline, beside the
//! floor set by its signature checks alone.
//!
//! The bundle is built in-process the way a domain builds one (the same parts
//! `protocol/tests/verify_bundle.rs` assembles): a code-signing root and CT key
//! ([`create_code_signing_root`], [`CodeSigningIssuer`]), a leaf with its embedded SCT, a
//! log computed in memory ([`MemoryHashStore`], an Ed25519 SET and checkpoint) and
//! [`message_signature_bundle`]. Then, in the same run:
//!
//! - **full**: [`verify_bundle`] in a loop (parsing, the log entry, the chain, the SCT,
//!   the identity policy, the body and the artifact signature);
//! - **floor**: only the five signature checks that verification cannot avoid, with the
//!   same keys and bytes parsed beforehand: the leaf certificate's signature by the CA,
//!   the SCT, the SET, the checkpoint note signature and the artifact signature.
//!
//! Every iteration of either loop checks its result and stops the run on a failure, so a
//! rate is never reported for a verification that does not succeed.

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest as lc_digest;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    ParsedPublicKey,
};
use provmesh_protocol::ca::{
    CodeSigningIssuer, CtLogKey, IssueRequest, SignedCertificateTimestamp,
    create_code_signing_root, verify_sct,
};
use provmesh_protocol::checkpoint::Checkpoint;
use provmesh_protocol::log::entry::{API_VERSION, EntryKind, ProposedEntry, set_payload};
use provmesh_protocol::log::log_key_id;
use provmesh_protocol::merkle::{MemoryHashStore, leaf_hash, prove_inclusion};
use provmesh_protocol::note::{Ed25519Signer, Ed25519Verifier, KeyName, Note};
use provmesh_protocol::sigstore::TrustedRoot;
use provmesh_protocol::sigstore_bundle::{
    InclusionProofParts, TlogEntryParts, message_signature_bundle, to_json,
};
use provmesh_protocol::sigstore_trust::{CaTrust, CtTrust, DomainTrust, LogTrust, trusted_root};
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use provmesh_protocol::verify::{Artifact, IdentityPolicy, VerifyError, verify_bundle};
use x509_parser::prelude::{FromDer as _, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::signing::random_digest;

const TRUST_DOMAIN: &str = "bench.example";
const ORIGIN: &str = "log.bench.example";
const IDENTITY: &str = "spiffe://bench.example/bench/verify";
const OIDC_ISSUER: &str = "spiffe://bench.example";
/// Entries logged before and after the bundle's, so its inclusion proof has several
/// hashes as in a real log.
const OTHER_ENTRIES: u8 = 5;
/// The longest run accepted per loop (a typo such as `--seconds 3000000` is refused).
const MAX_SECONDS: f64 = 3600.0;

/// `provmesh bench verify`.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct BenchVerifyArgs {
    /// How long each loop (full verification, then the signature floor) is measured,
    /// seconds, after a short warm-up.
    #[arg(long, value_name = "S", default_value_t = 3.0, value_parser = parse_seconds)]
    pub seconds: f64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let value: f64 = s
        .parse()
        .map_err(|e| format!("{s:?} is not a number of seconds: {e}"))?;
    if value.is_finite() && value > 0.0 && value <= MAX_SECONDS {
        Ok(value)
    } else {
        Err(format!(
            "{s:?} seconds: expected more than 0 and at most {MAX_SECONDS}"
        ))
    }
}

/// Why the benchmark could not run or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchVerifyError {
    /// Building the CA, the log or the bundle failed.
    #[error("cannot build the benchmark bundle: {what}: {reason}")]
    Setup {
        /// The step that failed.
        what: &'static str,
        /// What the library said.
        reason: String,
    },
    /// The bundle did not verify: no speed is reported for a failing verification.
    #[error("the benchmark bundle does not verify: {0}")]
    Verify(#[source] VerifyError),
    /// One of the bare signature checks failed: the floor would measure a failure.
    #[error("the bare {0} check failed on the benchmark bundle's own bytes")]
    Floor(&'static str),
}

fn setup<E: fmt::Display>(what: &'static str) -> impl FnOnce(E) -> BenchVerifyError {
    move |e| BenchVerifyError::Setup {
        what,
        reason: e.to_string(),
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Full bundle verifications per second.
    pub verifies_per_sec: f64,
    /// Bare signature-check rounds (five checks each) per second.
    pub floor_verifies_per_sec: f64,
    /// `verifies_per_sec / floor_verifies_per_sec`: the share of the floor's speed that
    /// full verification keeps (1.0 would mean no overhead beyond the signatures).
    pub ratio: f64,
    /// The measured time of each loop, seconds.
    pub seconds: f64,
    /// Full verifications measured.
    pub verifies: u64,
    /// Floor rounds measured.
    pub floor_verifies: u64,
    /// Microseconds per full verification.
    pub us_per_verify: f64,
    /// Microseconds per floor round.
    pub floor_us_per_verify: f64,
}

impl VerifyReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        // A struct of numbers always serializes (a non-finite float becomes null).
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "provmesh bench verify: one hashedrekord bundle, {:.1} s per loop",
            self.seconds
        )?;
        writeln!(
            f,
            "  {:<28} {:>12} {:>10} {:>12}",
            "", "verifies/s", "µs/verify", "iterations"
        )?;
        for (name, rate, us, n) in [
            (
                "full (verify_bundle)",
                self.verifies_per_sec,
                self.us_per_verify,
                self.verifies,
            ),
            (
                "floor (5 signature checks)",
                self.floor_verifies_per_sec,
                self.floor_us_per_verify,
                self.floor_verifies,
            ),
        ] {
            writeln!(f, "  {name:<28} {rate:>12.0} {us:>10.1} {n:>12}")?;
        }
        writeln!(f, "  ratio full/floor             {:>12.3}", self.ratio)
    }
}

/// One bundle with everything needed to verify it, in full and bare.
pub struct Fixture {
    bundle_json: Vec<u8>,
    digest: [u8; 32],
    policy: IdentityPolicy,
    root: TrustedRoot,
    floor: Floor,
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("bundle_len", &self.bundle_json.len())
            .finish_non_exhaustive()
    }
}

/// The inputs of the five signature checks, parsed once.
struct Floor {
    /// The CA's key and the leaf's TBSCertificate and signature.
    ca_key: ParsedPublicKey,
    leaf_tbs: Vec<u8>,
    leaf_signature: Vec<u8>,
    /// The SCT and what it signs.
    sct: SignedCertificateTimestamp,
    ct_spki: Vec<u8>,
    precert_tbs: Vec<u8>,
    ca_spki: Vec<u8>,
    /// The log's key, the SET and its payload.
    log_key: ed25519_dalek::VerifyingKey,
    set_payload: Vec<u8>,
    set: ed25519_dalek::Signature,
    /// The checkpoint note's text and its signature.
    checkpoint_verifier: Ed25519Verifier,
    checkpoint_text: String,
    checkpoint_signature: Vec<u8>,
    /// The signer's key and the artifact signature.
    signer_key: ParsedPublicKey,
    artifact_signature: Vec<u8>,
}

fn random<const N: usize>() -> Result<[u8; N], BenchVerifyError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(setup("the random number generator"))?;
    Ok(bytes)
}

fn p256_pkcs8() -> Result<Vec<u8>, BenchVerifyError> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .map(|k| k.as_ref().to_vec())
        .map_err(setup("a P-256 key"))
}

/// The SEC1 point of a DER SubjectPublicKeyInfo, parsed as an ECDSA P-256 key.
fn p256_key(spki_der: &[u8], what: &'static str) -> Result<ParsedPublicKey, BenchVerifyError> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(setup(what))?;
    ParsedPublicKey::new(
        &ECDSA_P256_SHA256_ASN1,
        spki.subject_public_key.data.as_ref(),
    )
    .map_err(setup(what))
}

impl Fixture {
    /// Builds a domain (CA, CT key, log) valid around now, one signed and logged artifact
    /// digest, its bundle and trusted root; checks that the bundle verifies and that the
    /// bare checks pass.
    pub fn build() -> Result<Fixture, BenchVerifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .ok_or(BenchVerifyError::Setup {
                what: "the clock",
                reason: "the system time is before 1970".to_owned(),
            })?;
        let valid_from = now - 3600;

        // The CA and CT key.
        let domain = TrustDomain::parse(TRUST_DOMAIN).map_err(setup("the trust domain"))?;
        let root_key = p256_pkcs8()?;
        let root_der =
            create_code_signing_root(&domain, &root_key, valid_from, now + 3600, &random::<16>()?)
                .map_err(setup("the code-signing root"))?;
        let ct = CtLogKey::from_pkcs8_der(&p256_pkcs8()?).map_err(setup("the CT key"))?;
        let ct_spki = ct.public_key_spki_der().to_vec();
        let ca = CodeSigningIssuer::new(domain, &[&root_der], &root_key, ct)
            .map_err(setup("the code-signing CA"))?;
        let ca_spki = ca.ca_public_key_spki_der().to_vec();

        // The workload: a key and a leaf with an embedded SCT.
        let workload = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &p256_pkcs8()?)
            .map_err(setup("the workload key"))?;
        let workload_spki = workload
            .public_key()
            .as_der()
            .map_err(setup("the workload key"))?;
        let identity = SpiffeId::parse(IDENTITY).map_err(setup("the identity"))?;
        let issued = ca
            .issue(&IssueRequest {
                subject_public_key_spki_der: workload_spki.as_ref(),
                spiffe_id: &identity,
                oidc_issuer: OIDC_ISSUER,
                not_before_unix: now - 60,
                validity_seconds: 600,
                serial: &random::<16>()?,
                sct_timestamp_ms: u64::try_from(now - 60).unwrap_or(0) * 1000,
            })
            .map_err(setup("the workload certificate"))?;
        let cert = issued.certificate_der.clone();

        // The artifact signature, over its digest as a prehash (what `verify_bundle`
        // checks with `verify_digest_sig`).
        let digest = random_digest().map_err(setup("the artifact digest"))?;
        let prehash = lc_digest::Digest::import_less_safe(&digest, &lc_digest::SHA256)
            .map_err(setup("the artifact digest"))?;
        let artifact_signature = workload
            .sign_digest(&prehash)
            .map_err(setup("the artifact signature"))?
            .as_ref()
            .to_vec();
        let body = ProposedEntry::hashedrekord(digest, artifact_signature.clone(), cert.clone())
            .map_err(setup("the hashedrekord entry"))?
            .canonical_body()
            .to_vec();

        // The log: entries around the bundle's, then its SET and checkpoint, signed as the
        // node's log signs them.
        let name = KeyName::new(ORIGIN).map_err(setup("the log name"))?;
        let log = Ed25519Signer::from_seed(name.clone(), &random()?);
        let key_id = log_key_id(&name, &log.public_key());
        let mut store = MemoryHashStore::new();
        for i in 0..OTHER_ENTRIES {
            store
                .append(leaf_hash(&[b'b', i]))
                .map_err(setup("the log"))?;
        }
        let index = store.append(leaf_hash(&body)).map_err(setup("the log"))?;
        for i in 0..OTHER_ENTRIES {
            store
                .append(leaf_hash(&[b'a', i]))
                .map_err(setup("the log"))?;
        }
        let (size, root_hash) = (store.size(), store.root());
        let payload = set_payload(&body, now, &key_id, index);
        let set = log.sign_bytes(&payload);
        let note = Checkpoint::new(ORIGIN, size, root_hash)
            .map_err(setup("the checkpoint"))?
            .sign(&[&log])
            .map_err(setup("the checkpoint"))?;
        let checkpoint_note_text =
            String::from_utf8(note.to_bytes()).map_err(setup("the checkpoint"))?;
        let tlog = TlogEntryParts {
            log_index: index,
            log_key_id: key_id,
            kind: EntryKind::HashedRekord,
            kind_version: API_VERSION.to_owned(),
            integrated_time: now,
            canonical_body: body,
            signed_entry_timestamp: set.to_vec(),
            inclusion_proof: InclusionProofParts {
                log_index: index,
                tree_size: size,
                root_hash,
                hashes: prove_inclusion(index, size, &store).map_err(setup("the proof"))?,
                checkpoint_note_text,
            },
        };
        let bundle_json = to_json(
            &message_signature_bundle(&cert, digest, &artifact_signature, &tlog)
                .map_err(setup("the bundle"))?,
        )
        .map_err(setup("the bundle"))?;
        let root = trusted_root(&[DomainTrust {
            log: LogTrust::new(
                &name,
                format!("https://{ORIGIN}"),
                log.public_key(),
                valid_from,
            ),
            ct: CtTrust {
                spki_der: ct_spki.clone(),
                valid_from_unix: valid_from,
            },
            ca: CaTrust {
                chain_der: vec![root_der],
                valid_from_unix: valid_from,
                uri: format!("https://ca.{TRUST_DOMAIN}"),
            },
        }])
        .map_err(setup("the trusted root"))?;

        // The floor's inputs, parsed now so that its loop holds signature checks only.
        let (_, leaf) = X509Certificate::from_der(&cert).map_err(setup("the leaf"))?;
        let note = Note::parse(&note.to_bytes()).map_err(setup("the checkpoint"))?;
        let checkpoint_signature = note
            .signatures()
            .first()
            .map(|s| s.signature().to_vec())
            .ok_or(BenchVerifyError::Setup {
                what: "the checkpoint",
                reason: "it carries no signature".to_owned(),
            })?;
        let floor = Floor {
            ca_key: p256_key(&ca_spki, "the CA key")?,
            leaf_tbs: leaf.tbs_certificate.as_ref().to_vec(),
            leaf_signature: leaf.signature_value.data.to_vec(),
            sct: issued.sct,
            ct_spki,
            precert_tbs: issued.precertificate_tbs_der,
            ca_spki,
            log_key: ed25519_dalek::VerifyingKey::from_bytes(&log.public_key())
                .map_err(setup("the log key"))?,
            set_payload: payload,
            set: ed25519_dalek::Signature::from_bytes(&set),
            checkpoint_verifier: log.verifier(),
            checkpoint_text: note.text().to_owned(),
            checkpoint_signature,
            signer_key: p256_key(workload_spki.as_ref(), "the workload key")?,
            artifact_signature,
        };
        let fixture = Fixture {
            bundle_json,
            digest,
            policy: IdentityPolicy {
                identity: IDENTITY.to_owned(),
                issuer: OIDC_ISSUER.to_owned(),
            },
            root,
            floor,
        };
        let verified = fixture.verify_full()?;
        if verified.identity != IDENTITY || verified.log_index != index {
            return Err(BenchVerifyError::Setup {
                what: "the bundle",
                reason: format!(
                    "it verifies as {} at index {}, not {IDENTITY} at {index}",
                    verified.identity, verified.log_index
                ),
            });
        }
        fixture.verify_floor()?;
        Ok(fixture)
    }

    /// One full offline verification of the bundle.
    fn verify_full(&self) -> Result<provmesh_protocol::verify::VerifiedBundle, BenchVerifyError> {
        verify_bundle(
            &self.bundle_json,
            Artifact::Digest(self.digest),
            &self.policy,
            &self.root,
        )
        .map_err(BenchVerifyError::Verify)
    }

    /// The five signature checks of a verification, bare.
    fn verify_floor(&self) -> Result<(), BenchVerifyError> {
        let f = &self.floor;
        // The leaf's signature by the CA (RFC 5280 §6.1.3 (a)(1)), over its TBSCertificate.
        f.ca_key
            .verify_sig(&f.leaf_tbs, &f.leaf_signature)
            .map_err(|_| BenchVerifyError::Floor("certificate signature"))?;
        // The SCT over the precertificate (RFC 6962 §3.2).
        verify_sct(&f.sct, &f.ct_spki, &f.precert_tbs, &f.ca_spki)
            .map_err(|_| BenchVerifyError::Floor("SCT"))?;
        // The SET, as `verify_bundle` checks an Ed25519 log's.
        f.log_key
            .verify_strict(&f.set_payload, &f.set)
            .map_err(|_| BenchVerifyError::Floor("SET"))?;
        // The checkpoint note signature over the note text.
        f.checkpoint_verifier
            .verify(&f.checkpoint_text, &f.checkpoint_signature)
            .map_err(|_| BenchVerifyError::Floor("checkpoint signature"))?;
        // The artifact signature, over its digest as a prehash.
        let prehash = lc_digest::Digest::import_less_safe(&self.digest, &lc_digest::SHA256)
            .map_err(|_| BenchVerifyError::Floor("artifact signature"))?;
        f.signer_key
            .verify_digest_sig(&prehash, &f.artifact_signature)
            .map_err(|_| BenchVerifyError::Floor("artifact signature"))
    }
}

/// Runs `step` for `duration` and returns how many times it ran and the time taken;
/// stops at the first error.
fn timed(
    duration: Duration,
    mut step: impl FnMut() -> Result<(), BenchVerifyError>,
) -> Result<(u64, Duration), BenchVerifyError> {
    let start = Instant::now();
    let mut count = 0u64;
    loop {
        step()?;
        count += 1;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            return Ok((count, elapsed));
        }
    }
}

/// Measures both loops over `fixture` for `seconds` each, after a warm-up of a tenth of
/// that (at most half a second).
pub fn measure(fixture: &Fixture, seconds: f64) -> Result<VerifyReport, BenchVerifyError> {
    let duration = Duration::from_secs_f64(seconds.clamp(0.0, MAX_SECONDS));
    let warmup = (duration / 10).min(Duration::from_millis(500));
    let full = || fixture.verify_full().map(|v| drop(black_box(v)));
    let floor = || fixture.verify_floor().map(black_box);
    timed(warmup, full)?;
    let (verifies, full_time) = timed(duration, full)?;
    timed(warmup, floor)?;
    let (floor_verifies, floor_time) = timed(duration, floor)?;
    let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64();
    let verifies_per_sec = rate(verifies, full_time);
    let floor_verifies_per_sec = rate(floor_verifies, floor_time);
    Ok(VerifyReport {
        verifies_per_sec,
        floor_verifies_per_sec,
        ratio: verifies_per_sec / floor_verifies_per_sec,
        seconds: duration.as_secs_f64(),
        verifies,
        floor_verifies,
        us_per_verify: 1e6 / verifies_per_sec,
        floor_us_per_verify: 1e6 / floor_verifies_per_sec,
    })
}

/// `provmesh bench verify`: builds the bundle and measures it.
pub fn run(args: &BenchVerifyArgs) -> Result<VerifyReport, BenchVerifyError> {
    let fixture = Fixture::build()?;
    measure(&fixture, args.seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_loops_run_on_a_bundle_that_verifies() {
        let fixture = Fixture::build().unwrap();
        let verified = fixture.verify_full().unwrap();
        assert_eq!(verified.identity, IDENTITY);
        assert_eq!(verified.issuer, OIDC_ISSUER);
        assert_eq!(verified.log_index, u64::from(OTHER_ENTRIES));
        let report = measure(&fixture, 0.02).unwrap();
        assert!(
            report.verifies >= 1 && report.floor_verifies >= 1,
            "{report:?}"
        );
        assert!(report.verifies_per_sec > 0.0 && report.floor_verifies_per_sec > 0.0);
        // Full verification includes the floor's checks; it cannot be faster by much
        // (timing noise aside).
        assert!(report.ratio < 1.5, "{report:?}");
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        for key in [
            "verifies_per_sec",
            "floor_verifies_per_sec",
            "ratio",
            "seconds",
        ] {
            assert!(json[key].is_f64(), "{key} missing in {json}");
        }
        assert!(report.to_string().contains("ratio full/floor"));
    }

    #[test]
    fn a_failing_verification_stops_the_loops() {
        let mut fixture = Fixture::build().unwrap();
        let good = fixture.digest;
        // Another artifact: `verify_bundle` refuses it, and so does the bare signature.
        fixture.digest[0] ^= 1;
        let err = measure(&fixture, 0.01).unwrap_err();
        assert!(
            matches!(
                err,
                BenchVerifyError::Verify(VerifyError::ArtifactMismatch { .. })
            ),
            "{err}"
        );
        let err = fixture.verify_floor().unwrap_err();
        assert!(
            matches!(err, BenchVerifyError::Floor("artifact signature")),
            "{err}"
        );

        // A corrupted SET fails the floor.
        fixture.digest = good;
        fixture.verify_floor().unwrap();
        let mut set = fixture.floor.set.to_bytes();
        set[5] ^= 1;
        fixture.floor.set = ed25519_dalek::Signature::from_bytes(&set);
        let err = fixture.verify_floor().unwrap_err();
        assert!(matches!(err, BenchVerifyError::Floor("SET")), "{err}");
    }

    #[test]
    fn seconds_must_be_positive_and_bounded() {
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "1e9", "three"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
