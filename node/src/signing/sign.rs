//! The signing flow of `provmesh sign` and `provmesh attest`, start to end:
//!
//! 1. hash the file (SHA-256, streamed) and, for an attestation, build and check the
//!    in-toto Statement — so a bad input costs no certificate;
//! 2. obtain the identity token ([`TokenSource`]) and the domain's trusted root (the
//!    `--trust-config` file, or the authority's `GET /api/v2/provmesh/trustedRoot`);
//! 3. generate an ECDSA P-256 key that exists only in this process and ask the CA for a
//!    certificate with a PKCS #10 request (its signature proves possession of the key);
//!    check that the certificate is for this key, names one SPIFFE ID (the requested one,
//!    if one was requested) and carries exactly one embedded SCT;
//! 4. sign: the file's digest for a blob (`hashedrekord`), the DSSE pre-authentication
//!    encoding of the Statement for an attestation (`dsse`), and submit the entry to the
//!    domain log;
//! 5. assemble the bundle (v0.3) from the certificate, the signature or envelope and the
//!    log's answer (`sigstore_bundle`), verify it offline against the trusted root
//!    exactly as `provmesh verify` would, and only then write it (beside, then renamed).
//!
//! The key is dropped when the command ends; nothing secret reaches the disk.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{self as lc_digest, SHA256};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provmesh_protocol::ca::embedded_scts;
use provmesh_protocol::dsse;
use provmesh_protocol::intoto::{self, MAX_STATEMENT_JSON_LEN};
use provmesh_protocol::log::entry::{
    API_VERSION, EntryKind, LogEntryView, ProposedEntry, ProposedEntryError, parse_entry_uuid,
};
use provmesh_protocol::merkle::{Hash, leaf_hash};
use provmesh_protocol::sigstore::{Bundle, SerializeError, TrustedRoot};
use provmesh_protocol::sigstore_bundle::{
    BundleBuildError, InclusionProofParts, TlogEntryParts, dsse_bundle, message_signature_bundle,
    to_json,
};
use provmesh_protocol::spiffe::SpiffeId;
use provmesh_protocol::verify::{Artifact, IdentityPolicy, VerifyError, verify_bundle};
use x509_parser::extensions::GeneralName;

use super::authority::{AuthorityClient, AuthorityError};
use super::statement::{self, SlsaParameters, StatementBuildError};
use super::token::{TokenError, TokenSource};
use super::trust::{TrustConfigError, read_trust_config};

/// The most proof hashes accepted from the log: a tree of at most 2^64 leaves has a path
/// of at most 64.
const MAX_PROOF_HASHES: usize = 64;

/// What a signing command needs besides its file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignOptions {
    /// The authority's base URL.
    pub authority_url: String,
    /// Where the identity token comes from.
    pub token: TokenSource,
    /// A ClientTrustConfig or `trusted_root.json` to verify the bundle against; when
    /// `None`, the authority's own trusted root.
    pub trust_config: Option<PathBuf>,
    /// The SPIFFE ID the certificate must name, if the signer asked for one.
    pub expected_identity: Option<SpiffeId>,
}

impl SignOptions {
    /// Options for signing through the authority at `authority_url` with a token from
    /// `token`, verified against the authority's trusted root.
    pub fn new(authority_url: impl Into<String>, token: TokenSource) -> SignOptions {
        SignOptions {
            authority_url: authority_url.into(),
            token,
            trust_config: None,
            expected_identity: None,
        }
    }
}

/// The predicate of an attestation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Predicate {
    /// A predicate document (one JSON object) of the given type, from a file.
    File {
        /// The `predicateType` URI.
        predicate_type: String,
        /// The file holding the predicate.
        path: PathBuf,
    },
    /// SLSA Provenance v1, built from build parameters.
    Slsa(SlsaParameters),
}

/// A bundle written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Signed {
    /// Where the bundle was written.
    pub bundle_path: PathBuf,
    /// The signer identity the certificate names.
    pub identity: String,
    /// The issuer the certificate names.
    pub issuer: String,
    /// The log entry's kind.
    pub kind: EntryKind,
    /// The log entry's index.
    pub log_index: u64,
    /// When the log integrated the entry, Unix seconds.
    pub integrated_time: i64,
}

/// Why nothing was signed, or no bundle written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// An input file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The predicate file is larger than a Statement may be.
    #[error("{} is larger than {max} bytes, the most an in-toto Statement may be", path.display())]
    PredicateTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: usize,
    },
    /// The in-toto Statement could not be built.
    #[error(transparent)]
    Statement(#[from] StatementBuildError),
    /// No identity token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The `--trust-config` file is unusable.
    #[error(transparent)]
    TrustConfig(#[from] TrustConfigError),
    /// The authority could not be reached, refused, or answered nonsense.
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    /// The key, the certificate request, the signature or the envelope could not be
    /// made (a failure of the crypto library, not of the inputs).
    #[error("{0}")]
    Signing(String),
    /// The CA's certificate is not one to sign with.
    #[error("the certificate from the CA at {url} is unusable: {reason}")]
    Certificate {
        /// The authority.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA certified another identity than the one requested.
    #[error(
        "the CA certified {certified}, not the requested {requested}: the identity token is \
         for another SPIFFE ID"
    )]
    IdentityMismatch {
        /// `--spiffe-id`.
        requested: String,
        /// The certificate's SAN.
        certified: String,
    },
    /// The signature and certificate do not make a log entry.
    #[error("cannot build the log entry: {0}")]
    Entry(#[source] ProposedEntryError),
    /// The log's answer does not describe the entry submitted.
    #[error("the domain log's answer at {url} is unusable: {reason}")]
    LogAnswer {
        /// The authority.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bundle could not be assembled from the parts.
    #[error("cannot assemble the bundle from the log's answer: {0}")]
    Bundle(#[source] BundleBuildError),
    /// The bundle could not be encoded.
    #[error("cannot encode the bundle: {0}")]
    Encode(#[source] SerializeError),
    /// The bundle does not verify: it would be refused by every verifier.
    #[error(
        "the bundle does not verify against the domain's trusted root, so it was not written \
         (the entry is in the log at index {log_index}): {source}"
    )]
    Verify {
        /// The logged entry.
        log_index: u64,
        /// Why verification failed.
        #[source]
        source: VerifyError,
    },
    /// The bundle could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// Signs `file` (a `hashedrekord` entry) and writes its bundle to `bundle_path`.
pub async fn sign_file(
    options: &SignOptions,
    file: &Path,
    bundle_path: &Path,
) -> Result<Signed, SignError> {
    let digest = sha256_file(file)?;
    let session = Session::open(options).await?;
    let certified = session.certify().await?;
    let prehashed = lc_digest::Digest::import_less_safe(&digest, &SHA256)
        .map_err(|_| SignError::Signing("cannot import the file's SHA-256 digest".into()))?;
    // hashedrekord 0.0.1: "signature ... over the artifact"; ECDSA-SHA256 of the file,
    // computed from its digest so the file is read once.
    let signature = certified
        .key
        .sign_digest(&prehashed)
        .map_err(|_| SignError::Signing("ECDSA signing failed".into()))?
        .as_ref()
        .to_vec();
    let proposed =
        ProposedEntry::hashedrekord(digest, signature.clone(), certified.leaf_der.clone())
            .map_err(SignError::Entry)?;
    let parts = session.append(&proposed, EntryKind::HashedRekord).await?;
    let bundle = message_signature_bundle(&certified.leaf_der, digest, &signature, &parts)
        .map_err(SignError::Bundle)?;
    session.finish(
        &bundle,
        &parts,
        digest,
        &certified,
        EntryKind::HashedRekord,
        bundle_path,
    )
}

/// Signs an in-toto Statement about `file` with `predicate` into a DSSE envelope (a
/// `dsse` entry) and writes its bundle to `bundle_path`.
pub async fn attest_file(
    options: &SignOptions,
    file: &Path,
    predicate: &Predicate,
    bundle_path: &Path,
) -> Result<Signed, SignError> {
    let digest = sha256_file(file)?;
    // statement.md: the subject's `name` is "Machine-readable identifier for
    // distinguishing between descriptors"; the file's name, as other Sigstore signers use.
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    let (predicate_type, predicate) = match predicate {
        Predicate::File {
            predicate_type,
            path,
        } => {
            let raw = read_bounded(path, MAX_STATEMENT_JSON_LEN)?;
            let what = format!("the predicate {}", path.display());
            (
                predicate_type.clone(),
                statement::parse_predicate(&raw, &what)?,
            )
        }
        Predicate::Slsa(parameters) => (
            provmesh_protocol::slsa::PREDICATE_TYPE.to_owned(),
            statement::slsa_provenance(parameters)?,
        ),
    };
    let payload = statement::statement_json(
        statement::subject(&name, &digest),
        &predicate_type,
        predicate,
    )?;
    let session = Session::open(options).await?;
    let certified = session.certify().await?;
    // DSSE protocol.md: "SIGNATURE = Sign(PAE(UTF8(PAYLOAD_TYPE), SERIALIZED_BODY))".
    let pae = dsse::pae(intoto::PAYLOAD_TYPE, &payload);
    let signature = certified
        .key
        .sign(&SystemRandom::new(), &pae)
        .map_err(|_| SignError::Signing("ECDSA signing failed".into()))?
        .as_ref()
        .to_vec();
    // sigstore_bundle.proto: "DSSE envelopes in a bundle MUST have exactly one signature."
    let envelope = dsse::Envelope::from_parts(
        intoto::PAYLOAD_TYPE,
        payload,
        vec![dsse::Signature::new(None, signature)],
    )
    .map_err(|e| SignError::Signing(format!("cannot build the DSSE envelope: {e}")))?;
    let envelope_json = String::from_utf8(envelope.to_json())
        .map_err(|_| SignError::Signing("the DSSE envelope is not UTF-8 JSON".into()))?;
    let proposed =
        ProposedEntry::dsse(envelope_json, certified.leaf_der.clone()).map_err(SignError::Entry)?;
    let parts = session.append(&proposed, EntryKind::Dsse).await?;
    let bundle = dsse_bundle(&certified.leaf_der, &envelope, &parts).map_err(SignError::Bundle)?;
    session.finish(
        &bundle,
        &parts,
        digest,
        &certified,
        EntryKind::Dsse,
        bundle_path,
    )
}

/// The default bundle path of `file` with `suffix` appended to its name.
pub fn default_bundle_path(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A signing key and the certificate the CA issued for it.
struct Certified {
    key: EcdsaKeyPair,
    leaf_der: Vec<u8>,
    identity: SpiffeId,
}

/// The token, the authority and the trust to verify against, for one signature.
struct Session<'a> {
    options: &'a SignOptions,
    authority: AuthorityClient,
    token: String,
    trust: TrustedRoot,
}

impl Session<'_> {
    async fn open(options: &SignOptions) -> Result<Session<'_>, SignError> {
        let authority = AuthorityClient::new(&options.authority_url)?;
        let token = options.token.obtain().await?;
        let trust = match &options.trust_config {
            Some(path) => read_trust_config(path)?,
            None => authority.trusted_root().await?,
        };
        Ok(Session {
            options,
            authority,
            token,
            trust,
        })
    }

    /// A fresh key and its certificate, checked.
    async fn certify(&self) -> Result<Certified, SignError> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .map_err(|_| SignError::Signing("cannot generate an ECDSA P-256 key".into()))?;
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| SignError::Signing("cannot encode the public key".into()))?;
        let csr_der = certificate_request(&key)?;
        let chain = self
            .authority
            .signing_certificate(&self.token, &csr_der)
            .await?;
        let bad = |reason: String| SignError::Certificate {
            url: self.authority.url().to_owned(),
            reason,
        };
        let leaf_der = chain
            .into_iter()
            .next()
            .ok_or_else(|| bad("no certificate".into()))?;
        let identity = check_certificate(&leaf_der, spki.as_ref()).map_err(bad)?;
        if let Some(requested) = &self.options.expected_identity
            && *requested != identity
        {
            return Err(SignError::IdentityMismatch {
                requested: requested.to_string(),
                certified: identity.to_string(),
            });
        }
        Ok(Certified {
            key,
            leaf_der,
            identity,
        })
    }

    /// Submits `proposed` and returns the log's answer as bundle parts, after checking it
    /// is the answer for this entry.
    async fn append(
        &self,
        proposed: &ProposedEntry,
        kind: EntryKind,
    ) -> Result<TlogEntryParts, SignError> {
        let (uuid, view) = self.authority.append(proposed.to_json()).await?;
        let bad = |reason: String| SignError::LogAnswer {
            url: self.authority.url().to_owned(),
            reason,
        };
        let parts = tlog_parts(&view, kind).map_err(bad)?;
        // Rekor: the UUID is the entry's Merkle leaf hash, whose leaf is the canonical body.
        let named = parse_entry_uuid(&uuid).map_err(|e| bad(format!("entry UUID: {e}")))?;
        if named != leaf_hash(&parts.canonical_body)
            || parts.canonical_body != proposed.canonical_body()
        {
            return Err(bad(format!(
                "the answer is for entry {uuid}, not for the entry submitted ({})",
                hex::encode(proposed.leaf_hash())
            )));
        }
        Ok(parts)
    }

    /// Verifies the bundle as a verifier would, then writes it.
    fn finish(
        &self,
        bundle: &Bundle,
        parts: &TlogEntryParts,
        digest: [u8; 32],
        certified: &Certified,
        kind: EntryKind,
        bundle_path: &Path,
    ) -> Result<Signed, SignError> {
        let json = to_json(bundle).map_err(SignError::Encode)?;
        // The CA names the issuer `spiffe://<trust domain>` (the JWT-SVID's `iss`).
        let policy = IdentityPolicy {
            identity: certified.identity.to_string(),
            issuer: format!("spiffe://{}", certified.identity.trust_domain()),
        };
        let verified = verify_bundle(&json, Artifact::Digest(digest), &policy, &self.trust)
            .map_err(|source| SignError::Verify {
                log_index: parts.log_index,
                source,
            })?;
        write_replacing(bundle_path, &json).map_err(|source| SignError::Write {
            path: bundle_path.to_owned(),
            source,
        })?;
        Ok(Signed {
            bundle_path: bundle_path.to_owned(),
            identity: verified.identity,
            issuer: verified.issuer,
            kind,
            log_index: verified.log_index,
            integrated_time: verified.integrated_time,
        })
    }
}

/// A PKCS #10 request for `key`, signed by it: the proof of possession Fulcio accepts
/// in place of a signed challenge. Its subject is empty: the CA takes the identity from
/// the token, never from the request.
fn certificate_request(key: &EcdsaKeyPair) -> Result<Vec<u8>, SignError> {
    let fail = |e: &dyn std::fmt::Display| {
        SignError::Signing(format!("cannot build the certificate request: {e}"))
    };
    let pkcs8 = key.to_pkcs8v1().map_err(|e| fail(&e))?;
    let key_pair = rcgen::KeyPair::try_from(pkcs8.as_ref()).map_err(|e| fail(&e))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key_pair).map_err(|e| fail(&e))?;
    Ok(csr.der().to_vec())
}

/// The certificate is for `spki_der`, names one SPIFFE ID and carries one embedded SCT
/// (interop.md: "exactly one embedded SCT"). Returns the SPIFFE ID.
fn check_certificate(leaf_der: &[u8], spki_der: &[u8]) -> Result<SpiffeId, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    if cert.public_key().raw != spki_der {
        return Err("it certifies another key than the one requested".into());
    }
    let names = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subject alternative name: {e}"))?
        .map(|san| san.value.general_names.clone())
        .unwrap_or_default();
    let [GeneralName::URI(uri)] = names.as_slice() else {
        return Err(format!(
            "it must name exactly one SPIFFE ID (one URI SAN), it has {} names",
            names.len()
        ));
    };
    let identity = SpiffeId::parse(uri).map_err(|e| format!("SAN {uri:?}: {e}"))?;
    let embedded = embedded_scts(leaf_der).map_err(|e| format!("embedded SCTs: {e}"))?;
    if embedded.scts.len() != 1 {
        return Err(format!(
            "it must carry exactly one embedded SCT, it has {}",
            embedded.scts.len()
        ));
    }
    Ok(identity)
}

/// The bundle's log entry from the log's `LogEntry` answer.
fn tlog_parts(view: &LogEntryView, kind: EntryKind) -> Result<TlogEntryParts, String> {
    let body = STANDARD
        .decode(&view.body)
        .map_err(|_| "the body is not base64".to_owned())?;
    // The body names its kind and version (`{"apiVersion":…,"kind":…,"spec":…}`).
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
    }
    let head: Head =
        serde_json::from_slice(&body).map_err(|e| format!("the body is not a Rekor entry: {e}"))?;
    if head.kind != kind.as_str() || head.api_version != API_VERSION {
        return Err(format!(
            "the body is a {} {} entry, not {kind} {API_VERSION}",
            head.kind, head.api_version
        ));
    }
    let log_key_id = hex32(&view.log_id).ok_or("logID is not 64 hex digits")?;
    let verification = view
        .verification
        .as_ref()
        .ok_or("no verification (signed entry timestamp and inclusion proof)")?;
    let set = verification
        .signed_entry_timestamp
        .as_deref()
        .ok_or("no signed entry timestamp")?;
    let signed_entry_timestamp = STANDARD
        .decode(set)
        .map_err(|_| "the signed entry timestamp is not base64".to_owned())?;
    let proof = verification
        .inclusion_proof
        .as_ref()
        .ok_or("no inclusion proof")?;
    if proof.hashes.len() > MAX_PROOF_HASHES {
        return Err(format!(
            "the inclusion proof has {} hashes; at most {MAX_PROOF_HASHES}",
            proof.hashes.len()
        ));
    }
    let hashes = proof
        .hashes
        .iter()
        .map(|h| hex32(h).ok_or("an inclusion proof hash is not 64 hex digits"))
        .collect::<Result<Vec<Hash>, _>>()?;
    let root_hash = hex32(&proof.root_hash).ok_or("rootHash is not 64 hex digits")?;
    Ok(TlogEntryParts {
        log_index: view.log_index,
        log_key_id,
        kind,
        kind_version: head.api_version,
        integrated_time: view.integrated_time,
        canonical_body: body,
        signed_entry_timestamp,
        inclusion_proof: InclusionProofParts {
            log_index: proof.log_index,
            tree_size: proof.tree_size,
            root_hash,
            hashes,
            checkpoint_note_text: proof.checkpoint.clone(),
        },
    })
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// SHA-256 of a file, read in blocks.
pub(crate) fn sha256_file(path: &Path) -> Result<[u8; 32], SignError> {
    let read_error = |source| SignError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut context = lc_digest::Context::new(&SHA256);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).map_err(read_error)?;
        if read == 0 {
            break;
        }
        context.update(buffer.get(..read).unwrap_or_default());
    }
    let digest = context.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Ok(out)
}

/// A whole file of at most `max` bytes.
fn read_bounded(path: &Path, max: usize) -> Result<Vec<u8>, SignError> {
    let read_error = |source| SignError::Read {
        path: path.to_owned(),
        source,
    };
    crate::bounded::read_file_at_most(path, max)
        .map_err(read_error)?
        .ok_or_else(|| SignError::PredicateTooLarge {
            path: path.to_owned(),
            max,
        })
}

/// Writes `path` whole or not at all: a file beside it, synced, renamed over it, so a
/// reader never sees half a bundle or trust document.
pub(crate) fn write_replacing(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use provmesh_protocol::ca::request::SigningCertRequest;
    use rcgen::PublicKeyData as _;
    use x509_parser::prelude::FromDer as _;

    #[test]
    fn the_certificate_request_proves_the_key() {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let csr = certificate_request(&key).unwrap();
        // The CA's own parser and proof-of-possession check take it.
        let (_, parsed) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&csr).unwrap();
        assert_eq!(
            parsed.certification_request_info.subject_pki.raw,
            key.public_key().as_der().unwrap().as_ref()
        );
        let json = serde_json::json!({
            "certificateSigningRequest": STANDARD.encode(
                provmesh_protocol::ca::request::pem_encode("CERTIFICATE REQUEST", &csr)),
        });
        assert!(SigningCertRequest::from_fulcio_json(json.to_string().as_bytes(), None).is_ok());
    }

    #[test]
    fn files_are_hashed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let expected = lc_digest::digest(&SHA256, &bytes);
        assert_eq!(sha256_file(&path).unwrap().as_slice(), expected.as_ref());
        assert!(matches!(
            sha256_file(&dir.path().join("missing")),
            Err(SignError::Read { .. })
        ));
    }

    #[test]
    fn bundles_replace_files_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sigstore.json");
        write_replacing(&path, b"one").unwrap();
        write_replacing(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_replacing(&dir.path().join("no/such/dir/x"), b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A `LogEntry` view of a one-entry `kind` log, as the log's HTTP API writes it.
    fn view(kind: &str) -> LogEntryView {
        use provmesh_protocol::log::entry::InclusionProofView;
        let body = format!(r#"{{"apiVersion":"0.0.1","kind":"{kind}","spec":{{}}}}"#);
        let root = leaf_hash(body.as_bytes());
        LogEntryView::new(
            body.as_bytes(),
            1_700_000_000,
            &[7; 32],
            0,
            &[1; 64],
            Some(InclusionProofView::new(0, 1, &root, &[], "checkpoint")),
        )
    }

    #[test]
    fn the_logs_answer_becomes_bundle_parts() {
        let parts = tlog_parts(&view("hashedrekord"), EntryKind::HashedRekord).unwrap();
        assert_eq!(parts.log_key_id, [7; 32]);
        assert_eq!(parts.kind_version, API_VERSION);
        assert_eq!(parts.signed_entry_timestamp, vec![1; 64]);
        assert_eq!(parts.inclusion_proof.tree_size, 1);
        assert_eq!(
            parts.inclusion_proof.root_hash,
            leaf_hash(&parts.canonical_body)
        );

        // Another kind than the one submitted.
        assert!(tlog_parts(&view("dsse"), EntryKind::HashedRekord).is_err());
        let mut bad = view("dsse");
        bad.log_id = "zz".into();
        assert!(tlog_parts(&bad, EntryKind::Dsse).is_err());
        let mut bad = view("dsse");
        bad.verification.as_mut().unwrap().inclusion_proof = None;
        assert!(
            tlog_parts(&bad, EntryKind::Dsse)
                .unwrap_err()
                .contains("inclusion proof")
        );
        let mut bad = view("dsse");
        bad.verification.as_mut().unwrap().signed_entry_timestamp = None;
        assert!(tlog_parts(&bad, EntryKind::Dsse).is_err());
        let mut bad = view("dsse");
        let proof = bad
            .verification
            .as_mut()
            .unwrap()
            .inclusion_proof
            .as_mut()
            .unwrap();
        proof.hashes = vec!["00".repeat(32); MAX_PROOF_HASHES + 1];
        assert!(tlog_parts(&bad, EntryKind::Dsse).is_err());
        let mut bad = view("dsse");
        bad.body = "%%%".into();
        assert!(tlog_parts(&bad, EntryKind::Dsse).is_err());
    }

    /// A certificate without the CA's SCT, or for another key, is not signed with.
    #[test]
    fn certificates_are_checked_before_use() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = vec![rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from("spiffe://org-a.example/ci/build").unwrap(),
        )];
        let cert = params.self_signed(&key).unwrap();
        let spki = key.subject_public_key_info();
        let error = check_certificate(cert.der(), &spki).unwrap_err();
        assert!(error.contains("SCT"), "{error}");
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let error = check_certificate(cert.der(), &other.subject_public_key_info()).unwrap_err();
        assert!(error.contains("another key"), "{error}");
        assert!(check_certificate(b"not a certificate", &spki).is_err());
    }

    #[test]
    fn default_bundle_paths_append_to_the_name() {
        assert_eq!(
            default_bundle_path(Path::new("out/app.tar"), ".sigstore.json"),
            PathBuf::from("out/app.tar.sigstore.json")
        );
    }
}
