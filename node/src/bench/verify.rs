//! `provmesh bench verify`: how fast one Sigstore bundle is verified offline, beside the
//! floor set by its signature checks alone.
//!
//! The bundle is built in-process the way a domain builds one (the same parts
//! `protocol/tests/verify_bundle.rs` assembles): a code-signing root and CT key
//! ([`create_code_signing_root`], [`CodeSigningIssuer`]), a leaf with its embedded SCT, a
//! log computed in memory ([`MemoryHashStore`], an Ed25519 SET and checkpoint) and
//! [`message_signature_bundle`]. Then, in the same run:
//!
//! - **full**: [`PreparedTrust::verify_bundle`] in a loop (parsing, the log entry, the
//!   chain, the SCT, the identity policy, the body and the artifact signature), on a
//!   trusted root prepared once before the loop, as `provmesh verify` and any verifier of
//!   many bundles prepare theirs;
//! - **floor**: only the five signature checks that verification cannot avoid, with the
//!   same keys and bytes parsed beforehand: the leaf certificate's signature by the CA,
//!   the SCT, the SET, the checkpoint note signature and the artifact signature.
//!
//! The two loops are interleaved in [`ROUNDS`] rounds, so that a noisy machine slows both
//! alike. Every iteration of either loop checks its result and stops the run on a
//! failure, so a rate is never reported for a verification that does not succeed.
//!
//! With `--compare-sigstore-python`, the same bundle, artifact and ClientTrustConfig are
//! written to a temporary directory and stock sigstore-python (the pinned venv of
//! `scripts/setup-verifiers`) is measured in the same run: in process, by
//! `scripts/bench-sigstore-python.py` (`Verifier.verify_artifact` in a loop), and as a
//! whole command, `provmesh verify` against `sigstore verify identity --offline`, each run
//! [`BenchVerifyArgs::cli_runs`] times, medians compared.

use std::fmt;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest as lc_digest;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ED25519, EcdsaKeyPair, KeyPair as _,
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
use provmesh_protocol::sigstore_trust::{
    CaTrust, CtTrust, DomainTrust, LogTrust, client_trust_config, trusted_root,
};
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use provmesh_protocol::verify::{Artifact, IdentityPolicy, PreparedTrust, VerifyError};
use sha2::{Digest as _, Sha256};
use x509_parser::prelude::{FromDer as _, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

const TRUST_DOMAIN: &str = "bench.example";
const ORIGIN: &str = "log.bench.example";
const IDENTITY: &str = "spiffe://bench.example/bench/verify";
const OIDC_ISSUER: &str = "spiffe://bench.example";
/// Entries logged before and after the bundle's, so its inclusion proof has several
/// hashes as in a real log.
const OTHER_ENTRIES: u8 = 5;
/// The longest run accepted per loop (a typo such as `--seconds 3000000` is refused).
const MAX_SECONDS: f64 = 3600.0;
/// The bytes of the signed artifact (random; its SHA-256 is what the bundle signs).
const ARTIFACT_LEN: usize = 256;
/// How many rounds the full and floor loops are interleaved in.
pub const ROUNDS: u32 = 10;
/// The most whole-command runs accepted per command.
const MAX_CLI_RUNS: u32 = 1000;

/// The issue's goal: full verification within this factor of the signature floor's time.
pub const GOAL_FULL_VS_FLOOR: f64 = 1.25;
/// The issue's goal: at least this many times sigstore-python's in-process rate.
pub const GOAL_SPEEDUP_IN_PROCESS: f64 = 2.0;
/// The issue's goal: `provmesh verify` at least this many times faster, per process, than
/// `sigstore verify identity`.
pub const GOAL_SPEEDUP_CLI: f64 = 20.0;

/// The in-process sigstore-python benchmark, run with the venv's interpreter. Embedded so
/// that the command works from any directory; the checked-in file is the source.
const SIGSTORE_PYTHON_SCRIPT: &str = include_str!("../../../scripts/bench-sigstore-python.py");

/// `provmesh bench verify`.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct BenchVerifyArgs {
    /// How long each loop (full verification, and the signature floor, interleaved) is
    /// measured in total, seconds, after a short warm-up; also the time of each
    /// sigstore-python in-process loop.
    #[arg(long, value_name = "S", default_value_t = 3.0, value_parser = parse_seconds)]
    pub seconds: f64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also measure stock sigstore-python on the same bundle, in the same run: in process
    /// (`Verifier.verify_artifact`) and as a whole command (`provmesh verify` against
    /// `sigstore verify identity --offline`). Needs the venv of `scripts/setup-verifiers`
    /// (`$PROVMESH_VENV`, default `~/.cache/provmesh/venv`).
    #[arg(long)]
    pub compare_sigstore_python: bool,
    /// How many times each command runs for the whole-command comparison (the median
    /// wall time is reported).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = parse_cli_runs)]
    pub cli_runs: u32,
}

fn parse_cli_runs(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=MAX_CLI_RUNS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} runs: expected a whole number from 1 to {MAX_CLI_RUNS}"
        )),
    }
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
    /// The sigstore-python venv is missing.
    #[error(
        "sigstore-python is not installed at {}: run scripts/setup-verifiers (or set \
         PROVMESH_VENV to its venv)",
        .0.display()
    )]
    NoSigstorePython(PathBuf),
    /// A file for the comparison could not be written, or a command not started.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or command.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// A compared command failed: no time is reported for a command that fails.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// Which command.
        command: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its standard error.
        stderr: String,
    },
    /// The in-process sigstore-python benchmark printed something unexpected.
    #[error("scripts/bench-sigstore-python.py printed no usable result: {0}")]
    SigstorePythonOutput(String),
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
    /// `us_per_verify / floor_us_per_verify`: how many times the floor's time a full
    /// verification takes (the goal is at most [`GOAL_FULL_VS_FLOOR`]).
    pub full_vs_floor: f64,
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
    /// The sigstore-python comparison, when asked for.
    #[serde(flatten)]
    pub sigstore_python: Option<SigstorePythonReport>,
}

/// What the sigstore-python comparison measured, beside [`VerifyReport`]'s own figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct SigstorePythonReport {
    /// The sigstore-python version measured.
    pub sigstore_python_version: String,
    /// `Verifier.verify_artifact` calls per second on a bundle parsed once.
    pub sigstore_python_verifies_per_sec: f64,
    /// Microseconds per `verify_artifact` call.
    pub sigstore_python_us_per_verify: f64,
    /// `Bundle.from_json` + `verify_artifact` per second: what `verify_bundle` does per
    /// call (it takes the bundle's JSON).
    pub sigstore_python_parse_verifies_per_sec: f64,
    /// `verifies_per_sec / sigstore_python_verifies_per_sec` (the goal is at least
    /// [`GOAL_SPEEDUP_IN_PROCESS`]).
    pub speedup_in_process: f64,
    /// How many times each command ran.
    pub cli_runs: u32,
    /// Median wall time of one `provmesh verify` process, milliseconds.
    pub provmesh_cli_ms: f64,
    /// Median wall time of one `sigstore verify identity --offline` process, milliseconds.
    pub sigstore_python_cli_ms: f64,
    /// `sigstore_python_cli_ms / provmesh_cli_ms` (the goal is at least
    /// [`GOAL_SPEEDUP_CLI`]).
    pub speedup_cli: f64,
}

impl VerifyReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        // A struct of numbers and strings always serializes (a non-finite float becomes
        // null).
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// "met" or "NOT met", for a goal line.
fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "provmesh bench verify: one hashedrekord bundle, {:.1} s per loop ({ROUNDS} \
             interleaved rounds)",
            self.seconds
        )?;
        writeln!(
            f,
            "  {:<34} {:>12} {:>10} {:>12}",
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
            writeln!(f, "  {name:<34} {rate:>12.0} {us:>10.1} {n:>12}")?;
        }
        if let Some(py) = &self.sigstore_python {
            writeln!(
                f,
                "  {:<34} {:>12.0} {:>10.1}",
                format!("sigstore-python {} in process", py.sigstore_python_version),
                py.sigstore_python_verifies_per_sec,
                py.sigstore_python_us_per_verify
            )?;
            writeln!(
                f,
                "  {:<34} {:>12.0} {:>10.1}",
                "  with Bundle.from_json per call",
                py.sigstore_python_parse_verifies_per_sec,
                1e6 / py.sigstore_python_parse_verifies_per_sec
            )?;
        }
        writeln!(
            f,
            "  full / floor time                  {:>11.3}x  (goal <= {GOAL_FULL_VS_FLOOR}x: {})",
            self.full_vs_floor,
            verdict(self.full_vs_floor <= GOAL_FULL_VS_FLOOR)
        )?;
        if let Some(py) = &self.sigstore_python {
            writeln!(
                f,
                "  speedup in process vs python       {:>11.2}x  (goal >= {GOAL_SPEEDUP_IN_PROCESS}x: {})",
                py.speedup_in_process,
                verdict(py.speedup_in_process >= GOAL_SPEEDUP_IN_PROCESS)
            )?;
            writeln!(
                f,
                "  whole command, median of {} runs: provmesh verify {:.1} ms, sigstore verify \
                 identity {:.1} ms",
                py.cli_runs, py.provmesh_cli_ms, py.sigstore_python_cli_ms
            )?;
            writeln!(
                f,
                "  speedup as a whole command         {:>11.1}x  (goal >= {GOAL_SPEEDUP_CLI}x: {})",
                py.speedup_cli,
                verdict(py.speedup_cli >= GOAL_SPEEDUP_CLI)
            )?;
        }
        Ok(())
    }
}

/// One bundle with everything needed to verify it, in full and bare.
pub struct Fixture {
    bundle_json: Vec<u8>,
    /// The signed artifact's bytes (written out for sigstore-python and `provmesh verify`).
    artifact: Vec<u8>,
    /// Their SHA-256 digest, what the full loop verifies against.
    digest: [u8; 32],
    policy: IdentityPolicy,
    root: TrustedRoot,
    /// `root` prepared once, as any verifier of many bundles does.
    trust: PreparedTrust,
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
    log_key: ParsedPublicKey,
    set_payload: Vec<u8>,
    set: Vec<u8>,
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
    /// Builds a domain (CA, CT key, log) valid around now, one signed and logged artifact,
    /// its bundle and trusted root; checks that the bundle verifies and that the bare
    /// checks pass.
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
        let artifact = random::<ARTIFACT_LEN>()?.to_vec();
        let digest: [u8; 32] = Sha256::digest(&artifact).into();
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
            log_key: ParsedPublicKey::new(&ED25519, log.public_key())
                .map_err(setup("the log key"))?,
            set_payload: payload,
            set: set.to_vec(),
            checkpoint_verifier: log.verifier(),
            checkpoint_text: note.text().to_owned(),
            checkpoint_signature,
            signer_key: p256_key(workload_spki.as_ref(), "the workload key")?,
            artifact_signature,
        };
        let fixture = Fixture {
            bundle_json,
            artifact,
            digest,
            policy: IdentityPolicy {
                identity: IDENTITY.to_owned(),
                issuer: OIDC_ISSUER.to_owned(),
            },
            trust: PreparedTrust::new(&root),
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
        self.trust
            .verify_bundle(
                &self.bundle_json,
                Artifact::Digest(self.digest),
                &self.policy,
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
            .verify_sig(&f.set_payload, &f.set)
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
/// that (at most half a second) each. The loops take turns in [`ROUNDS`] rounds, the
/// first loop of a round alternating, so that both see the same machine.
pub fn measure(fixture: &Fixture, seconds: f64) -> Result<VerifyReport, BenchVerifyError> {
    let duration = Duration::from_secs_f64(seconds.clamp(0.0, MAX_SECONDS));
    let warmup = (duration / 10).min(Duration::from_millis(500));
    let round = duration / ROUNDS;
    let mut full = || fixture.verify_full().map(|v| drop(black_box(v)));
    let mut floor = || fixture.verify_floor().map(black_box);
    timed(warmup, &mut full)?;
    timed(warmup, &mut floor)?;
    let (mut verifies, mut full_time) = (0u64, Duration::ZERO);
    let (mut floor_verifies, mut floor_time) = (0u64, Duration::ZERO);
    for r in 0..ROUNDS {
        for full_turn in [r % 2 == 0, r % 2 != 0] {
            if full_turn {
                let (n, t) = timed(round, &mut full)?;
                verifies += n;
                full_time += t;
            } else {
                let (n, t) = timed(round, &mut floor)?;
                floor_verifies += n;
                floor_time += t;
            }
        }
    }
    let rate = |n: u64, t: Duration| n as f64 / t.as_secs_f64();
    let verifies_per_sec = rate(verifies, full_time);
    let floor_verifies_per_sec = rate(floor_verifies, floor_time);
    Ok(VerifyReport {
        verifies_per_sec,
        floor_verifies_per_sec,
        ratio: verifies_per_sec / floor_verifies_per_sec,
        full_vs_floor: floor_verifies_per_sec / verifies_per_sec,
        seconds: duration.as_secs_f64(),
        verifies,
        floor_verifies,
        us_per_verify: 1e6 / verifies_per_sec,
        floor_us_per_verify: 1e6 / floor_verifies_per_sec,
        sigstore_python: None,
    })
}

/// The pinned sigstore-python of `scripts/setup-verifiers`.
#[derive(Debug, Clone)]
struct SigstorePython {
    python: PathBuf,
    cli: PathBuf,
}

impl SigstorePython {
    /// The venv at `venv`, or at `$PROVMESH_VENV`, or at `~/.cache/provmesh/venv` (where
    /// `scripts/setup-verifiers` puts it and the interop tests look).
    fn find(venv: Option<PathBuf>) -> Result<SigstorePython, BenchVerifyError> {
        let venv = venv
            .or_else(|| std::env::var_os("PROVMESH_VENV").map(PathBuf::from))
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|home| PathBuf::from(home).join(".cache/provmesh/venv"))
            })
            .unwrap_or_else(|| PathBuf::from(".cache/provmesh/venv"));
        let python = venv.join("bin/python");
        let cli = venv.join("bin/sigstore");
        if python.is_file() && cli.is_file() {
            Ok(SigstorePython { python, cli })
        } else {
            Err(BenchVerifyError::NoSigstorePython(venv))
        }
    }
}

/// A directory under the system's temporary directory, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<ScratchDir, BenchVerifyError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "provmesh-bench-verify-{}-{nanos}",
            std::process::id()
        ));
        // `create_dir`, not `create_dir_all`: an existing directory is not reused.
        std::fs::create_dir(&path).map_err(|source| BenchVerifyError::Io {
            what: "cannot create the directory",
            path: path.clone(),
            source,
        })?;
        Ok(ScratchDir(path))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, BenchVerifyError> {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).map_err(|source| BenchVerifyError::Io {
            what: "cannot write",
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Best effort: a leftover file in the temporary directory harms nothing.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The last bytes of a command's standard error, for an error message.
fn stderr_tail(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stderr);
    let text = text.trim();
    let start = text.len().saturating_sub(2000);
    // Back up to a character boundary (`str::get` refuses to split a character).
    let start = (0..=start)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text.get(start..).unwrap_or_default().to_owned()
}

/// Runs `command` to completion and returns its wall time; a failure is an error.
fn run_timed(name: &'static str, command: &mut Command) -> Result<Duration, BenchVerifyError> {
    let start = Instant::now();
    let output = command.output().map_err(|source| BenchVerifyError::Io {
        what: "cannot run",
        path: PathBuf::from(command.get_program()),
        source,
    })?;
    let elapsed = start.elapsed();
    if !output.status.success() {
        return Err(BenchVerifyError::Command {
            command: name,
            status: output.status,
            stderr: stderr_tail(&output),
        });
    }
    Ok(elapsed)
}

/// The median of `samples` (the mean of the middle two for an even count; zero for
/// none).
fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    let mid = samples.len() / 2;
    let high = samples.get(mid).copied().unwrap_or_default();
    if samples.len() % 2 == 1 {
        return high;
    }
    let low = mid
        .checked_sub(1)
        .and_then(|i| samples.get(i))
        .copied()
        .unwrap_or(high);
    (low + high) / 2
}

/// What `scripts/bench-sigstore-python.py` prints.
#[derive(Debug, serde::Deserialize)]
struct PythonResult {
    sigstore_version: String,
    verifies_per_sec: f64,
    parse_verifies_per_sec: f64,
}

/// Measures stock sigstore-python on `fixture`'s bundle beside `report`'s figures: in
/// process for `seconds` per loop, and `provmesh` (the executable at `provmesh`) against
/// `sigstore` as whole commands, `runs` times each.
fn compare_sigstore_python(
    fixture: &Fixture,
    report: &VerifyReport,
    python: &SigstorePython,
    provmesh: &Path,
    seconds: f64,
    runs: u32,
) -> Result<SigstorePythonReport, BenchVerifyError> {
    let dir = ScratchDir::new()?;
    let config = client_trust_config(&fixture.root).map_err(setup("the ClientTrustConfig"))?;
    let config = serde_json::to_vec(&config).map_err(setup("the ClientTrustConfig"))?;
    let config = dir.write("trust_config.json", &config)?;
    let bundle = dir.write("artifact.sigstore.json", &fixture.bundle_json)?;
    let artifact = dir.write("artifact", &fixture.artifact)?;
    let script = dir.write(
        "bench-sigstore-python.py",
        SIGSTORE_PYTHON_SCRIPT.as_bytes(),
    )?;

    // In process.
    let output = Command::new(&python.python)
        .arg(&script)
        .arg("--trust-config")
        .arg(&config)
        .arg("--bundle")
        .arg(&bundle)
        .arg("--artifact")
        .arg(&artifact)
        .args(["--identity", IDENTITY, "--issuer", OIDC_ISSUER])
        .args(["--seconds", &seconds.to_string()])
        .output()
        .map_err(|source| BenchVerifyError::Io {
            what: "cannot run",
            path: python.python.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(BenchVerifyError::Command {
            command: "scripts/bench-sigstore-python.py",
            status: output.status,
            stderr: stderr_tail(&output),
        });
    }
    let result: PythonResult = serde_json::from_slice(&output.stdout)
        .map_err(|e| BenchVerifyError::SigstorePythonOutput(e.to_string()))?;
    if !(result.verifies_per_sec > 0.0 && result.parse_verifies_per_sec > 0.0) {
        return Err(BenchVerifyError::SigstorePythonOutput(format!(
            "rates {} and {}",
            result.verifies_per_sec, result.parse_verifies_per_sec
        )));
    }

    // Whole commands, taking turns so that both see the same machine; a first,
    // unmeasured run of each fills the page cache.
    let provmesh_verify = || {
        let mut command = Command::new(provmesh);
        command
            .arg("verify")
            .arg(&artifact)
            .arg("--bundle")
            .arg(&bundle)
            .args(["--identity", IDENTITY, "--issuer", OIDC_ISSUER])
            .arg("--trust-config")
            .arg(&config);
        command
    };
    let sigstore_verify = || {
        let mut command = Command::new(&python.cli);
        command
            // rich wraps its messages at the terminal width; keep errors on one line.
            .env("COLUMNS", "1000")
            .arg("--trust-config")
            .arg(&config)
            .args(["verify", "identity", "--offline", "--bundle"])
            .arg(&bundle)
            .args([
                "--cert-identity",
                IDENTITY,
                "--cert-oidc-issuer",
                OIDC_ISSUER,
            ])
            .arg(&artifact);
        command
    };
    run_timed("provmesh verify", &mut provmesh_verify())?;
    run_timed("sigstore verify identity", &mut sigstore_verify())?;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        ours.push(run_timed("provmesh verify", &mut provmesh_verify())?);
        theirs.push(run_timed(
            "sigstore verify identity",
            &mut sigstore_verify(),
        )?);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let provmesh_cli_ms = ms(median(&mut ours));
    let sigstore_python_cli_ms = ms(median(&mut theirs));
    Ok(SigstorePythonReport {
        sigstore_python_version: result.sigstore_version,
        sigstore_python_verifies_per_sec: result.verifies_per_sec,
        sigstore_python_us_per_verify: 1e6 / result.verifies_per_sec,
        sigstore_python_parse_verifies_per_sec: result.parse_verifies_per_sec,
        speedup_in_process: report.verifies_per_sec / result.verifies_per_sec,
        cli_runs: runs,
        provmesh_cli_ms,
        sigstore_python_cli_ms,
        speedup_cli: sigstore_python_cli_ms / provmesh_cli_ms,
    })
}

/// `provmesh bench verify`: builds the bundle and measures it, and sigstore-python beside
/// it when asked.
pub fn run(args: &BenchVerifyArgs) -> Result<VerifyReport, BenchVerifyError> {
    // Fail before measuring anything when the comparison cannot run.
    let comparison = if args.compare_sigstore_python {
        let python = SigstorePython::find(None)?;
        let exe = std::env::current_exe().map_err(|source| BenchVerifyError::Io {
            what: "cannot find the running executable",
            path: PathBuf::from("provmesh"),
            source,
        })?;
        Some((python, exe))
    } else {
        None
    };
    let fixture = Fixture::build()?;
    let mut report = measure(&fixture, args.seconds)?;
    if let Some((python, exe)) = comparison {
        report.sigstore_python = Some(compare_sigstore_python(
            &fixture,
            &report,
            &python,
            &exe,
            args.seconds,
            args.cli_runs,
        )?);
    }
    Ok(report)
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
            "full_vs_floor",
            "seconds",
        ] {
            assert!(json[key].is_f64(), "{key} missing in {json}");
        }
        // Without the comparison, no sigstore-python field is printed.
        assert!(json.get("speedup_cli").is_none(), "{json}");
        assert!(report.to_string().contains("full / floor time"));
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
        fixture.floor.set[5] ^= 1;
        let err = fixture.verify_floor().unwrap_err();
        assert!(matches!(err, BenchVerifyError::Floor("SET")), "{err}");
    }

    #[test]
    fn prepared_trust_remembers_no_bundle_and_takes_base_url_as_a_hint_only() {
        let fixture = Fixture::build().unwrap();
        let prepared = fixture.verify_full().unwrap();
        // The one-shot API prepares the same root and reaches the same result.
        let unprepared = provmesh_protocol::verify::verify_bundle(
            &fixture.bundle_json,
            Artifact::Digest(fixture.digest),
            &fixture.policy,
            &fixture.root,
        )
        .unwrap();
        assert_eq!(prepared, unprepared);

        // A base URL that does not name the log's origin: the checkpoint verifier is
        // built per bundle instead, with the same result.
        let mut root = fixture.root.clone();
        root.tlogs[0].base_url = "https://elsewhere.example".to_owned();
        let elsewhere = PreparedTrust::new(&root)
            .verify_bundle(
                &fixture.bundle_json,
                Artifact::Digest(fixture.digest),
                &fixture.policy,
            )
            .unwrap();
        assert_eq!(prepared, elsewhere);

        // After a good bundle, the same prepared trust refuses a bundle whose SET is
        // corrupted: nothing of the first verification is reused.
        let mut value: serde_json::Value = serde_json::from_slice(&fixture.bundle_json).unwrap();
        let set = &mut value["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]["signedEntryTimestamp"];
        let mut bytes = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            set.as_str().unwrap(),
        )
        .unwrap();
        bytes[7] ^= 1;
        *set = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes).into();
        let corrupted = serde_json::to_vec(&value).unwrap();
        let err = fixture
            .trust
            .verify_bundle(
                &corrupted,
                Artifact::Digest(fixture.digest),
                &fixture.policy,
            )
            .unwrap_err();
        assert!(matches!(err, VerifyError::BadSet(_)), "{err}");
        fixture.verify_full().unwrap();
    }

    #[test]
    fn a_missing_venv_says_how_to_install_it() {
        let missing = std::env::temp_dir().join("provmesh-no-such-venv");
        let err = SigstorePython::find(Some(missing.clone())).unwrap_err();
        assert!(
            matches!(&err, BenchVerifyError::NoSigstorePython(path) if *path == missing),
            "{err}"
        );
        assert!(err.to_string().contains("scripts/setup-verifiers"), "{err}");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut [ms(9), ms(1), ms(5)]), ms(5));
        assert_eq!(median(&mut [ms(8), ms(2), ms(4), ms(6)]), ms(5));
        assert_eq!(median(&mut [ms(3)]), ms(3));
        assert_eq!(median(&mut []), Duration::ZERO);
    }

    #[test]
    fn cli_runs_are_bounded() {
        assert_eq!(parse_cli_runs("10"), Ok(10));
        for bad in ["0", "-1", "1001", "ten", "1.5"] {
            assert!(parse_cli_runs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_report_prints_the_comparison_with_its_goals() {
        let fixture = Fixture::build().unwrap();
        let mut report = measure(&fixture, 0.02).unwrap();
        report.sigstore_python = Some(SigstorePythonReport {
            sigstore_python_version: "4.5.1".to_owned(),
            sigstore_python_verifies_per_sec: 1000.0,
            sigstore_python_us_per_verify: 1000.0,
            sigstore_python_parse_verifies_per_sec: 900.0,
            speedup_in_process: report.verifies_per_sec / 1000.0,
            cli_runs: 3,
            provmesh_cli_ms: 5.0,
            sigstore_python_cli_ms: 300.0,
            speedup_cli: 60.0,
        });
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        for key in [
            "verifies_per_sec",
            "floor_verifies_per_sec",
            "full_vs_floor",
            "sigstore_python_verifies_per_sec",
            "speedup_in_process",
            "provmesh_cli_ms",
            "sigstore_python_cli_ms",
            "speedup_cli",
        ] {
            assert!(json[key].is_f64(), "{key} missing in {json}");
        }
        let text = report.to_string();
        assert!(text.contains("goal >= 20x: met"), "{text}");
        assert!(text.contains("sigstore-python 4.5.1 in process"), "{text}");
    }

    #[test]
    fn seconds_must_be_positive_and_bounded() {
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "1e9", "three"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
