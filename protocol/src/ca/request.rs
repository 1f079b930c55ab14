//! Who may obtain a code-signing certificate, for which key: the CA's request rules.
//!
//! A request names a **credential** proving a SPIFFE ID of the CA's trust domain and a
//! **key** with proof that the requester holds its private half. [`authorize`] checks
//! both and returns what the issuer may certify; nothing else reaches the issuer.
//!
//! Credentials:
//! - a **JWT-SVID** with audience [`SIGSTORE_AUDIENCE`], validated against the trust
//!   domain's JWT authorities (JWT-SVID standard; the OIDC token of Fulcio's API). It
//!   arrives in Fulcio's `credentials.oidcIdentityToken` or as
//!   `Authorization: Bearer` (sigstore-python sends the latter);
//! - an **X.509-SVID** presented on an mTLS connection (the chain the TLS layer
//!   received, passed to [`authorize`] and verified here against the trust domain's
//!   X.509 authorities);
//! - an **X.509-SVID proof** (`credentials.x509Svid`, a provmesh extension of Fulcio's
//!   request): the SVID chain and a signature by the SVID key over
//!   [`X509_SVID_PROOF_CONTEXT`] ‖ SHA-256(the key to certify, DER SPKI). It verifies
//!   by itself, so a plain node can forward it to the authority: no node can obtain a
//!   certificate for an identity whose SVID key it does not hold. A replayed proof only
//!   certifies the same key again, which the replayer cannot sign with.
//!
//! Keys (Fulcio v2 `CreateSigningCertificateRequest`, the `key` oneof):
//! - `publicKeyRequest`: `publicKey.content` (PEM SPKI) and `proofOfPossession`, an
//!   ECDSA-SHA256 signature over the SPIFFE ID (Fulcio: "The challenge is created by
//!   signing the subject (`sub`) of the OIDC identity token");
//! - `certificateSigningRequest`: a PKCS #10 CSR (PEM, base64 in JSON), whose own
//!   signature is the proof of possession.
//!
//! The key must be ECDSA P-256 (what the issuer certifies and the log admits).
//!
//! Pure: the time and the bundle are arguments.

use aws_lc_rs::signature::{self as aws_sig, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer as _;

use crate::machine::Timestamp;
use crate::pkix::SigAlg;
use crate::spiffe::jwt::{JwtSvidError, MAX_JWT_SVID_LEN, verify_jwt_svid};
use crate::spiffe::x509::{
    MAX_SVID_CHAIN_LEN, X509SvidError, verify_svid_signature, verify_x509_svid,
};
use crate::spiffe::{SpiffeId, TrustBundle, TrustDomain};

/// The audience a JWT-SVID must carry to obtain a code-signing certificate (Sigstore
/// clients request identity tokens for audience `sigstore`).
pub const SIGSTORE_AUDIENCE: &str = "sigstore";

/// The largest request body read, in bytes.
pub const MAX_REQUEST_JSON_LEN: usize = 64 * 1024;

/// What an X.509-SVID proof signs, before the SHA-256 of the key to certify.
pub const X509_SVID_PROOF_CONTEXT: &[u8] = b"provmesh code-signing certificate request v1\n";

/// The largest CSR or public key accepted, in bytes (a P-256 CSR is about 250).
const MAX_KEY_MATERIAL_LEN: usize = 8 * 1024;

/// DER prefix of an ECDSA P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, BIT
/// STRING of 66 bytes: no unused bits, then the uncompressed point).
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// How the requester proves its SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// A JWT-SVID (compact JWS).
    JwtSvid(String),
    /// An X.509-SVID chain with a signature by its key over the key to certify.
    X509SvidProof {
        /// Leaf first, DER.
        chain: Vec<Vec<u8>>,
        /// The SVID key's signature (ECDSA: ASN.1 DER) over
        /// [`X509_SVID_PROOF_CONTEXT`] ‖ SHA-256(subject SPKI).
        signature: Vec<u8>,
    },
}

/// The key to certify and its proof of possession.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProof {
    /// A public key and a signature with it over the SPIFFE ID.
    PublicKey {
        /// DER SubjectPublicKeyInfo.
        spki_der: Vec<u8>,
        /// ECDSA-SHA256 signature (ASN.1 DER) over the requester's SPIFFE ID.
        proof_of_possession: Vec<u8>,
    },
    /// A PKCS #10 certificate signing request, DER.
    Csr(Vec<u8>),
}

/// A parsed request for a code-signing certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SigningCertRequest {
    /// The credential, if the body or the `Authorization` header carried one.
    pub credential: Option<Credential>,
    /// The key to certify.
    pub key: KeyProof,
}

/// A request that passed [`authorize`]: what the issuer certifies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizedRequest {
    /// The proven identity: the certificate's only SAN.
    pub spiffe_id: SpiffeId,
    /// The key to certify, DER SubjectPublicKeyInfo of an ECDSA P-256 key.
    pub subject_public_key_spki_der: Vec<u8>,
    /// How the identity was proven.
    pub method: AuthMethod,
}

/// How a requester proved its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A JWT-SVID.
    JwtSvid,
    /// An X.509-SVID on the TLS connection.
    Mtls,
    /// A signed X.509-SVID proof.
    X509SvidProof,
}

impl AuthMethod {
    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::JwtSvid => "jwt_svid",
            AuthMethod::Mtls => "mtls",
            AuthMethod::X509SvidProof => "x509_svid_proof",
        }
    }
}

/// Why a request was refused. [`status`](Self::status) maps each to an HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is not a request this CA understands.
    #[error("malformed signing-certificate request: {0}")]
    Malformed(String),
    /// A request a node cannot forward to its authority: it carries no credential the
    /// authority can verify by itself (see [`SigningCertRequest::check_forwardable`]).
    #[error(
        "no credential: a node forwards certificate requests to its authority only with a \
         JWT-SVID (audience \"{SIGSTORE_AUDIENCE}\") or a signed X.509-SVID proof"
    )]
    NotForwardable,
    /// No credential at all.
    #[error(
        "no credential: send a JWT-SVID (audience \"{SIGSTORE_AUDIENCE}\") as \
         credentials.oidcIdentityToken or Authorization: Bearer, or an X.509-SVID"
    )]
    NoCredential,
    /// Two credentials that disagree (body and header tokens differ).
    #[error("the request carries two different credentials; send one")]
    ConflictingCredentials,
    /// The JWT-SVID is not valid for this trust domain and audience.
    #[error("JWT-SVID refused: {0}")]
    JwtSvid(#[from] JwtSvidError),
    /// The X.509-SVID is not valid for this trust domain.
    #[error("X.509-SVID refused: {0}")]
    X509Svid(#[from] X509SvidError),
    /// The X.509-SVID proof's signature does not verify under the SVID key.
    #[error("the X.509-SVID proof signature does not verify under the SVID's key")]
    BadSvidProof,
    /// No proof of possession of the key to certify.
    #[error(
        "no proof of possession: send publicKeyRequest.proofOfPossession (a signature over \
         the SPIFFE ID) or a certificateSigningRequest"
    )]
    MissingProofOfPossession,
    /// The proof of possession does not verify.
    #[error("proof of possession does not verify: {0}")]
    BadProofOfPossession(String),
    /// The key is not one this CA certifies.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
}

impl RequestError {
    /// The HTTP status Fulcio's REST gateway would answer: 401 when the identity is not
    /// proven, 400 for everything about the request or the key.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::NoCredential
            | RequestError::NotForwardable
            | RequestError::JwtSvid(_)
            | RequestError::X509Svid(_)
            | RequestError::BadSvidProof => 401,
            _ => 400,
        }
    }
}

/// Fulcio v2 `CreateSigningCertificateRequest` in its JSON mapping (grpc-gateway:
/// lowerCamelCase members, bytes as standard base64), plus `credentials.x509Svid`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestJson {
    #[serde(default)]
    credentials: Option<CredentialsJson>,
    #[serde(default)]
    public_key_request: Option<PublicKeyRequestJson>,
    #[serde(default)]
    certificate_signing_request: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialsJson {
    #[serde(default)]
    oidc_identity_token: Option<String>,
    #[serde(default)]
    x509_svid: Option<X509SvidJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct X509SvidJson {
    chain: Vec<String>,
    signature: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyRequestJson {
    public_key: PublicKeyJson,
    #[serde(default)]
    proof_of_possession: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    #[serde(default)]
    algorithm: Option<String>,
    content: String,
}

impl SigningCertRequest {
    /// A request with `credential` for the key of `key`.
    pub fn new(credential: Option<Credential>, key: KeyProof) -> SigningCertRequest {
        SigningCertRequest { credential, key }
    }

    /// Parses a Fulcio v2 `POST /api/v2/signingCert` body; `bearer` is the token of an
    /// `Authorization: Bearer` header, if any.
    pub fn from_fulcio_json(
        json: &[u8],
        bearer: Option<&str>,
    ) -> Result<SigningCertRequest, RequestError> {
        if json.len() > MAX_REQUEST_JSON_LEN {
            return Err(RequestError::Malformed(format!(
                "{} bytes; the maximum is {MAX_REQUEST_JSON_LEN}",
                json.len()
            )));
        }
        let request: RequestJson = serde_json::from_slice(json)
            .map_err(|e| RequestError::Malformed(format!("not the expected JSON: {e}")))?;
        let credentials = request.credentials.unwrap_or(CredentialsJson {
            oidc_identity_token: None,
            x509_svid: None,
        });
        let token = match (credentials.oidc_identity_token, bearer) {
            (Some(body), Some(header)) if body != header => {
                return Err(RequestError::ConflictingCredentials);
            }
            (Some(token), _) => Some(token),
            (None, header) => header.map(str::to_owned),
        };
        let credential = match (token, credentials.x509_svid) {
            (Some(_), Some(_)) => return Err(RequestError::ConflictingCredentials),
            (Some(token), None) => {
                if token.len() > MAX_JWT_SVID_LEN {
                    return Err(RequestError::Malformed(format!(
                        "the identity token is {} bytes; the maximum is {MAX_JWT_SVID_LEN}",
                        token.len()
                    )));
                }
                Some(Credential::JwtSvid(token))
            }
            (None, Some(svid)) => {
                if svid.chain.len() > MAX_SVID_CHAIN_LEN {
                    return Err(RequestError::Malformed(format!(
                        "credentials.x509Svid.chain has {} certificates; at most \
                         {MAX_SVID_CHAIN_LEN}",
                        svid.chain.len()
                    )));
                }
                let chain = svid
                    .chain
                    .iter()
                    .map(|c| base64_field(c, "credentials.x509Svid.chain"))
                    .collect::<Result<Vec<_>, _>>()?;
                let signature = base64_field(&svid.signature, "credentials.x509Svid.signature")?;
                Some(Credential::X509SvidProof { chain, signature })
            }
            (None, None) => None,
        };
        let key = match (
            request.public_key_request,
            request.certificate_signing_request,
        ) {
            (Some(_), Some(_)) => {
                return Err(RequestError::Malformed(
                    "send either publicKeyRequest or certificateSigningRequest, not both".into(),
                ));
            }
            (None, None) => return Err(RequestError::MissingProofOfPossession),
            (Some(public), None) => {
                if let Some(algorithm) = &public.public_key.algorithm
                    && !matches!(
                        algorithm.as_str(),
                        "ECDSA" | "PUBLIC_KEY_ALGORITHM_UNSPECIFIED"
                    )
                {
                    return Err(RequestError::UnsupportedKey(format!(
                        "publicKey.algorithm {algorithm:?}; only ECDSA (P-256) keys are certified"
                    )));
                }
                let spki_der = pem_or_der(public.public_key.content.as_bytes(), "PUBLIC KEY")
                    .map_err(|reason| {
                        RequestError::Malformed(format!("publicKey.content: {reason}"))
                    })?;
                let proof_of_possession = match public.proof_of_possession {
                    Some(proof) => base64_field(&proof, "publicKeyRequest.proofOfPossession")?,
                    None => Vec::new(),
                };
                if proof_of_possession.is_empty() {
                    return Err(RequestError::MissingProofOfPossession);
                }
                KeyProof::PublicKey {
                    spki_der,
                    proof_of_possession,
                }
            }
            (None, Some(csr)) => {
                let pem = base64_field(&csr, "certificateSigningRequest")?;
                let der = pem_or_der(&pem, "CERTIFICATE REQUEST").map_err(|reason| {
                    RequestError::Malformed(format!("certificateSigningRequest: {reason}"))
                })?;
                KeyProof::Csr(der)
            }
        };
        Ok(SigningCertRequest { credential, key })
    }

    /// Whether a plain node may forward this request to its authority: only when its
    /// credential proves the identity by itself (a JWT-SVID or an X.509-SVID proof), so
    /// that no node can obtain a certificate for an identity it does not hold. A request
    /// that would rely on the node's own mTLS connection has nothing to forward.
    pub fn check_forwardable(&self) -> Result<(), RequestError> {
        match self.credential {
            Some(_) => Ok(()),
            None => Err(RequestError::NotForwardable),
        }
    }

    /// The request as Fulcio v2 JSON, the form `provmesh sign` and forwarding nodes send.
    pub fn to_fulcio_json(&self) -> Vec<u8> {
        let mut object = serde_json::Map::new();
        match &self.credential {
            Some(Credential::JwtSvid(token)) => {
                object.insert(
                    "credentials".into(),
                    serde_json::json!({ "oidcIdentityToken": token }),
                );
            }
            Some(Credential::X509SvidProof { chain, signature }) => {
                let chain: Vec<String> = chain.iter().map(|c| STANDARD.encode(c)).collect();
                object.insert(
                    "credentials".into(),
                    serde_json::json!({ "x509Svid": {
                        "chain": chain,
                        "signature": STANDARD.encode(signature),
                    }}),
                );
            }
            None => {}
        }
        match &self.key {
            KeyProof::PublicKey {
                spki_der,
                proof_of_possession,
            } => {
                object.insert(
                    "publicKeyRequest".into(),
                    serde_json::json!({
                        "publicKey": {
                            "algorithm": "ECDSA",
                            "content": pem_encode("PUBLIC KEY", spki_der),
                        },
                        "proofOfPossession": STANDARD.encode(proof_of_possession),
                    }),
                );
            }
            KeyProof::Csr(der) => {
                let pem = pem_encode("CERTIFICATE REQUEST", der);
                object.insert(
                    "certificateSigningRequest".into(),
                    serde_json::Value::String(STANDARD.encode(pem)),
                );
            }
        }
        serde_json::Value::Object(object).to_string().into_bytes()
    }
}

/// The message an X.509-SVID proof signs for `subject_spki_der`.
pub fn x509_svid_proof_message(subject_spki_der: &[u8]) -> Vec<u8> {
    let mut message = X509_SVID_PROOF_CONTEXT.to_vec();
    message.extend_from_slice(&Sha256::digest(subject_spki_der));
    message
}

/// Checks a request: its credential proves a SPIFFE ID of `trust_domain` under `bundle`
/// at `now`, and its key is a P-256 key whose possession is proven. `mtls_peer` is the
/// X.509-SVID chain (leaf first, DER) the client presented on an mTLS connection: it is
/// the credential when the request carries none, and must prove the same identity when
/// the request carries one.
pub fn authorize<C: AsRef<[u8]>>(
    request: &SigningCertRequest,
    mtls_peer: Option<&[C]>,
    trust_domain: &TrustDomain,
    bundle: &TrustBundle,
    now: Timestamp,
) -> Result<AuthorizedRequest, RequestError> {
    // The key first: the X.509-SVID proof signs it.
    let (spki_der, key_proof) = match &request.key {
        KeyProof::PublicKey {
            spki_der,
            proof_of_possession,
        } => (spki_der.clone(), Some(proof_of_possession.as_slice())),
        KeyProof::Csr(der) => (csr_public_key(der)?, None),
    };
    check_p256(&spki_der)?;
    let peer = mtls_peer
        .map(|chain| verify_x509_svid(chain, trust_domain, bundle, now))
        .transpose()?;
    let (spiffe_id, method) = match (&request.credential, peer) {
        (None, None) => return Err(RequestError::NoCredential),
        (None, Some(peer)) => (peer.spiffe_id, AuthMethod::Mtls),
        (Some(credential), peer) => {
            let (id, method) = authenticate(credential, &spki_der, trust_domain, bundle, now)?;
            if peer.is_some_and(|peer| peer.spiffe_id != id) {
                return Err(RequestError::ConflictingCredentials);
            }
            (id, method)
        }
    };
    if let Some(signature) = key_proof {
        // Fulcio: the challenge is a signature over the subject of the identity token;
        // for a SPIFFE identity, the SPIFFE ID.
        UnparsedPublicKey::new(&aws_sig::ECDSA_P256_SHA256_ASN1, p256_point(&spki_der))
            .verify(spiffe_id.as_str().as_bytes(), signature)
            .map_err(|_| {
                RequestError::BadProofOfPossession(format!(
                    "the signature is not one by the submitted key over {:?}",
                    spiffe_id.as_str()
                ))
            })?;
    }
    Ok(AuthorizedRequest {
        spiffe_id,
        subject_public_key_spki_der: spki_der,
        method,
    })
}

fn authenticate(
    credential: &Credential,
    subject_spki_der: &[u8],
    trust_domain: &TrustDomain,
    bundle: &TrustBundle,
    now: Timestamp,
) -> Result<(SpiffeId, AuthMethod), RequestError> {
    match credential {
        Credential::JwtSvid(token) => {
            let id = verify_jwt_svid(token, SIGSTORE_AUDIENCE, trust_domain, bundle, now)?;
            Ok((id, AuthMethod::JwtSvid))
        }
        Credential::X509SvidProof { chain, signature } => {
            let svid = verify_x509_svid(chain, trust_domain, bundle, now)?;
            let message = x509_svid_proof_message(subject_spki_der);
            verify_svid_signature(&svid, &message, signature)
                .map_err(|_| RequestError::BadSvidProof)?;
            Ok((svid.spiffe_id, AuthMethod::X509SvidProof))
        }
    }
}

/// Verifies a CSR's self-signature (its proof of possession) and returns its key.
fn csr_public_key(der: &[u8]) -> Result<Vec<u8>, RequestError> {
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| RequestError::Malformed(format!("certificateSigningRequest: {e}")))?;
    if !rest.is_empty() {
        return Err(RequestError::Malformed(format!(
            "certificateSigningRequest: {} bytes follow the CSR",
            rest.len()
        )));
    }
    let info = &csr.certification_request_info;
    let spki_der = info.subject_pki.raw.to_vec();
    check_p256(&spki_der)?;
    let alg = SigAlg::from_identifier(&csr.signature_algorithm).map_err(|oid| {
        RequestError::BadProofOfPossession(format!(
            "CSR signature algorithm {oid} is not supported"
        ))
    })?;
    if alg != SigAlg::EcdsaSha256 {
        return Err(RequestError::BadProofOfPossession(
            "a P-256 CSR must be signed with ECDSA-SHA256".into(),
        ));
    }
    UnparsedPublicKey::new(&aws_sig::ECDSA_P256_SHA256_ASN1, p256_point(&spki_der))
        .verify(info.raw, &csr.signature_value.data)
        .map_err(|_| {
            RequestError::BadProofOfPossession("the CSR's signature does not verify".into())
        })?;
    Ok(spki_der)
}

fn check_p256(spki_der: &[u8]) -> Result<(), RequestError> {
    if spki_der.len() != P256_SPKI_PREFIX.len() + 65 || !spki_der.starts_with(P256_SPKI_PREFIX) {
        return Err(RequestError::UnsupportedKey(
            "the key to certify must be an uncompressed ECDSA P-256 key".into(),
        ));
    }
    // aws-lc-rs checks the point is on the curve.
    aws_sig::ParsedPublicKey::new(&aws_sig::ECDSA_P256_SHA256_ASN1, spki_der)
        .map(|_| ())
        .map_err(|_| RequestError::UnsupportedKey("the P-256 point is not on the curve".into()))
}

/// The uncompressed point of a checked P-256 SPKI.
fn p256_point(spki_der: &[u8]) -> &[u8] {
    spki_der.get(P256_SPKI_PREFIX.len()..).unwrap_or_default()
}

fn base64_field(value: &str, field: &str) -> Result<Vec<u8>, RequestError> {
    if value.len() > MAX_REQUEST_JSON_LEN {
        return Err(RequestError::Malformed(format!("{field} is too long")));
    }
    STANDARD
        .decode(value.trim())
        .map_err(|e| RequestError::Malformed(format!("{field} is not standard base64: {e}")))
}

/// Decodes one PEM block with `label`, or takes `bytes` as DER if they are not PEM.
fn pem_or_der(bytes: &[u8], label: &str) -> Result<Vec<u8>, String> {
    if bytes.len() > MAX_KEY_MATERIAL_LEN {
        return Err(format!(
            "{} bytes; the maximum is {MAX_KEY_MATERIAL_LEN}",
            bytes.len()
        ));
    }
    if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(bytes.to_vec());
    }
    let mut blocks = Pem::iter_from_buffer(bytes);
    let pem = match (blocks.next(), blocks.next()) {
        (Some(Ok(pem)), None) => pem,
        (Some(Err(e)), _) => return Err(format!("bad PEM: {e}")),
        _ => return Err(format!("expected exactly one PEM block ({label})")),
    };
    if pem.label != label {
        return Err(format!("PEM block is {:?}, expected {label:?}", pem.label));
    }
    Ok(pem.contents)
}

/// PEM text of one block (RFC 7468: base64 lines of 64 characters).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The Fulcio v2 `SigningCertificate` JSON answer for an issued certificate and its CA
/// chain (leaf first, PEM): `{"signedCertificateEmbeddedSct":{"chain":{"certificates":[…]}}}`.
pub fn fulcio_response_json<C: AsRef<[u8]>>(leaf_der: &[u8], ca_chain_der: &[C]) -> Vec<u8> {
    let certificates: Vec<String> = std::iter::once(leaf_der)
        .chain(ca_chain_der.iter().map(AsRef::as_ref))
        .map(|der| pem_encode("CERTIFICATE", der))
        .collect();
    serde_json::json!({
        "signedCertificateEmbeddedSct": { "chain": { "certificates": certificates } }
    })
    .to_string()
    .into_bytes()
}

/// The certificates of a Fulcio v2 answer, DER, leaf first.
pub fn parse_fulcio_response(json: &[u8]) -> Result<Vec<Vec<u8>>, RequestError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Response {
        signed_certificate_embedded_sct: Embedded,
    }
    #[derive(Deserialize)]
    struct Embedded {
        chain: Chain,
    }
    #[derive(Deserialize)]
    struct Chain {
        certificates: Vec<String>,
    }
    if json.len() > MAX_REQUEST_JSON_LEN {
        return Err(RequestError::Malformed("the answer is too long".into()));
    }
    let response: Response = serde_json::from_slice(json)
        .map_err(|e| RequestError::Malformed(format!("not a Fulcio v2 answer: {e}")))?;
    response
        .signed_certificate_embedded_sct
        .chain
        .certificates
        .iter()
        .map(|pem| {
            pem_or_der(pem.as_bytes(), "CERTIFICATE")
                .map_err(|reason| RequestError::Malformed(format!("certificate: {reason}")))
        })
        .collect()
}
