//! JWT-SVID validation against a trust domain's SPIFFE bundle.
//!
//! Spec: JWT-SVID standard, <https://github.com/spiffe/spiffe/blob/main/standards/JWT-SVID.md>
//! (quoted as "JWT-SVID §n"), on RFC 7515 (JWS), RFC 7518 (algorithms) and RFC 7519 (JWT).
//! Pure: the validation time is an argument.

use aws_lc_rs::signature::{self as sig, EcdsaVerificationAlgorithm, RsaParameters};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::{Jwk, SpiffeId, SpiffeIdError, TrustBundle, TrustDomain};
use crate::machine::Timestamp;

/// The longest JWT-SVID [`verify_jwt_svid`] reads, in bytes. SPIRE's tokens are under
/// 1 KiB; the limit bounds the decoding work an untrusted token can cause.
pub const MAX_JWT_SVID_LEN: usize = 16 * 1024;

/// Why a JWT-SVID was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtSvidError {
    /// Not a JWS compact serialization of a JWT-SVID: wrong number of parts, bad
    /// base64url, JSON that is not an object of the right member types, a duplicate
    /// member, a header parameter JWT-SVID forbids, a bad `typ`, or too long.
    #[error("not a well-formed JWT-SVID: {0}")]
    Malformed(String),
    /// `alg` is not one this validator supports ("Validators receiving a token with the
    /// `alg` parameter set to a different value MUST reject the token", JWT-SVID §2.1).
    #[error("JWT-SVID algorithm {0:?} is not supported (expected one of {ALGORITHM_NAMES})")]
    UnsupportedAlgorithm(String),
    /// The header has no `kid`, so no bundle key can be chosen.
    #[error("JWT-SVID header has no \"kid\"; the signing key cannot be chosen")]
    MissingKeyId,
    /// No `jwt-svid` key of the bundle has the token's `kid`.
    #[error("no JWT-SVID signing key with kid {0:?} in the trust bundle")]
    UnknownKeyId(String),
    /// The bundle key with the token's `kid` cannot verify `alg` (another key type or
    /// curve, an `alg` member naming another algorithm, or invalid key parameters).
    #[error("trust bundle key {kid:?} cannot verify {alg}: {reason}")]
    KeyMismatch {
        /// The key's `kid`.
        kid: String,
        /// The token's `alg`.
        alg: String,
        /// What does not fit.
        reason: String,
    },
    /// The signature does not verify under the bundle key.
    #[error("JWT-SVID signature does not verify")]
    BadSignature,
    /// A claim JWT-SVID requires is absent (`sub` §3.1, `aud` §3.2, `exp` §3.3), or `aud`
    /// has no value.
    #[error("JWT-SVID has no {0:?} claim")]
    MissingClaim(&'static str),
    /// `exp` is not after the validation time (RFC 7519 §4.1.4: "the current date/time
    /// MUST be before the expiration date/time").
    #[error("JWT-SVID expired at {exp} (Unix seconds); it is now {now}")]
    Expired {
        /// The token's `exp`.
        exp: f64,
        /// The validation time.
        now: f64,
    },
    /// `nbf` is after the validation time (RFC 7519 §4.1.5).
    #[error("JWT-SVID is not valid before {nbf} (Unix seconds); it is now {now}")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: f64,
        /// The validation time.
        now: f64,
    },
    /// The expected audience is not among the token's (JWT-SVID §3.2: validators MUST
    /// reject a token "if the value that the validator identifies with is not present as
    /// an `aud` element").
    #[error("JWT-SVID audience {found:?} does not include {expected:?}")]
    AudienceMismatch {
        /// The audience the validator identifies with.
        expected: String,
        /// The token's audiences.
        found: Vec<String>,
    },
    /// `sub` is not a SPIFFE ID (JWT-SVID §3.1: "The `sub` claim MUST be set to the SPIFFE
    /// ID of the workload").
    #[error("JWT-SVID subject is not a SPIFFE ID: {0}")]
    SubjectNotSpiffeId(SpiffeIdError),
    /// `sub` belongs to another trust domain than the bundle's.
    #[error("JWT-SVID subject {subject} is not in trust domain {expected}")]
    ForeignTrustDomain {
        /// The token's subject.
        subject: SpiffeId,
        /// The trust domain whose bundle was used.
        expected: TrustDomain,
    },
}

/// How a JWS `alg` verifies: the key type it needs and the aws-lc-rs algorithm.
#[derive(Clone, Copy)]
enum KeyAlg {
    /// ECDSA with `r || s` signatures (RFC 7518 §3.4) on the named curve; `coord` is
    /// the byte length of `x` and `y` (RFC 7518 §6.2.1.2).
    Ec {
        crv: &'static str,
        coord: usize,
        verify: &'static EcdsaVerificationAlgorithm,
    },
    /// RSASSA-PKCS1-v1_5 (RFC 7518 §3.3) or RSASSA-PSS (§3.5); aws-lc-rs requires
    /// 2048 to 8192-bit moduli, as RFC 7518 requires at least 2048.
    Rsa(&'static RsaParameters),
}

/// The `alg` values JWT-SVID §2.1 lists, all of which are supported.
const ALGORITHM_NAMES: &str = "ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512";

/// The verification rule for a JWT-SVID §2.1 `alg` value.
fn key_alg(alg: &str) -> Option<KeyAlg> {
    let ec = |crv, coord, verify| KeyAlg::Ec { crv, coord, verify };
    Some(match alg {
        "ES256" => ec("P-256", 32, &sig::ECDSA_P256_SHA256_FIXED),
        "ES384" => ec("P-384", 48, &sig::ECDSA_P384_SHA384_FIXED),
        "ES512" => ec("P-521", 66, &sig::ECDSA_P521_SHA512_FIXED),
        "RS256" => KeyAlg::Rsa(&sig::RSA_PKCS1_2048_8192_SHA256),
        "RS384" => KeyAlg::Rsa(&sig::RSA_PKCS1_2048_8192_SHA384),
        "RS512" => KeyAlg::Rsa(&sig::RSA_PKCS1_2048_8192_SHA512),
        "PS256" => KeyAlg::Rsa(&sig::RSA_PSS_2048_8192_SHA256),
        "PS384" => KeyAlg::Rsa(&sig::RSA_PSS_2048_8192_SHA384),
        "PS512" => KeyAlg::Rsa(&sig::RSA_PSS_2048_8192_SHA512),
        _ => return None,
    })
}

/// The JOSE header. JWT-SVID §2: "Any header not described here, registered or private,
/// MUST NOT be included in the JWT-SVID JOSE Header" — so unknown members (`crit`,
/// `jku`, `x5u`, …) are refused, not ignored. serde refuses duplicate members too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

/// The claims a JWT-SVID validator processes; others are ignored (JWT-SVID §3: other
/// registered and private claims "MAY be used").
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    nbf: Option<f64>,
}

/// `aud`: "either an array of case-sensitive strings … In the special case when the JWT
/// has one audience, the `aud` value MAY be a single case-sensitive string" (RFC 7519
/// §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Decodes one base64url part (RFC 7515 §2: base64url "with all trailing '=' characters
/// omitted").
fn b64_part(part: &str, what: &str) -> Result<Vec<u8>, JwtSvidError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| JwtSvidError::Malformed(format!("{what} is not base64url: {e}")))
}

/// Validates a JWT-SVID: JWS compact form, `alg` one of JWT-SVID §2.1, signed by the
/// `jwt-svid` key of `bundle` named by `kid`, `exp` after `now`, `nbf` (if present) not
/// after `now`, `expected_audience` among `aud`, and `sub` a SPIFFE ID of
/// `trust_domain` (the domain `bundle` belongs to). Returns the subject.
///
/// No clock-skew leeway is applied: a caller that wants some passes an adjusted `now`.
pub fn verify_jwt_svid(
    token: &str,
    expected_audience: &str,
    trust_domain: &TrustDomain,
    bundle: &TrustBundle,
    now: Timestamp,
) -> Result<SpiffeId, JwtSvidError> {
    if token.len() > MAX_JWT_SVID_LEN {
        return Err(JwtSvidError::Malformed(format!(
            "{} bytes long; the maximum is {MAX_JWT_SVID_LEN}",
            token.len()
        )));
    }
    // JWT-SVID §5.1: "JWT-SVIDs MUST be serialized using the Compact Serialization":
    // BASE64URL(header) '.' BASE64URL(payload) '.' BASE64URL(signature) (RFC 7515 §7.1).
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtSvidError::Malformed(
            "expected three dot-separated parts (JWS compact serialization)".into(),
        ));
    };
    let header: Header = serde_json::from_slice(&b64_part(header_b64, "header")?)
        .map_err(|e| JwtSvidError::Malformed(format!("header: {e}")))?;
    // JWT-SVID §4: "Validators MUST ensure that the `alg` header is set to a supported
    // value before processing."
    let alg = key_alg(&header.alg)
        .ok_or_else(|| JwtSvidError::UnsupportedAlgorithm(header.alg.clone()))?;
    // JWT-SVID §2.3: "The `typ` header is optional. If set, its value MUST be either `JWT`
    // or `JOSE`."
    if let Some(typ) = &header.typ
        && typ != "JWT"
        && typ != "JOSE"
    {
        return Err(JwtSvidError::Malformed(format!(
            "\"typ\" is {typ:?}; a JWT-SVID's is \"JWT\" or \"JOSE\""
        )));
    }
    // JWT-SVID §2.2 makes `kid` optional, but bundle keys are selected by it (§6.1:
    // "the `kid` parameter of each JWK entry MUST be set"), as go-spiffe does.
    let kid = header.kid.ok_or(JwtSvidError::MissingKeyId)?;
    let jwk = bundle
        .jwt_authority(&kid)
        .ok_or_else(|| JwtSvidError::UnknownKeyId(kid.clone()))?;
    let signature = b64_part(sig_b64, "signature")?;
    // The signing input is the ASCII of the first two parts and their dot (RFC 7515 §5.2).
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .unwrap_or_default()
        .as_bytes();
    verify_signature(jwk, &kid, &header.alg, alg, signing_input, &signature)?;

    let claims: Claims = serde_json::from_slice(&b64_part(payload_b64, "payload")?)
        .map_err(|e| JwtSvidError::Malformed(format!("claims: {e}")))?;
    let now = now.as_unix_millis() as f64 / 1000.0;
    // JWT-SVID §3.3: "The `exp` claim MUST be set, and validators MUST reject tokens
    // without this claim."
    let exp = claims.exp.ok_or(JwtSvidError::MissingClaim("exp"))?;
    if exp <= now {
        return Err(JwtSvidError::Expired { exp, now });
    }
    if let Some(nbf) = claims.nbf
        && nbf > now
    {
        return Err(JwtSvidError::NotYetValid { nbf, now });
    }
    // JWT-SVID §3.2: "The `aud` claim MUST be present, containing one or more values."
    let audiences = match claims.aud {
        None => return Err(JwtSvidError::MissingClaim("aud")),
        Some(Audience::One(a)) => vec![a],
        Some(Audience::Many(a)) if a.is_empty() => return Err(JwtSvidError::MissingClaim("aud")),
        Some(Audience::Many(a)) => a,
    };
    if !audiences.iter().any(|a| a == expected_audience) {
        return Err(JwtSvidError::AudienceMismatch {
            expected: expected_audience.to_owned(),
            found: audiences,
        });
    }
    let sub = claims.sub.ok_or(JwtSvidError::MissingClaim("sub"))?;
    let subject = SpiffeId::parse(&sub).map_err(JwtSvidError::SubjectNotSpiffeId)?;
    if !subject.member_of(trust_domain) {
        return Err(JwtSvidError::ForeignTrustDomain {
            subject,
            expected: trust_domain.clone(),
        });
    }
    Ok(subject)
}

/// Verifies `signature` over `input` with the bundle key `jwk` under `alg`.
fn verify_signature(
    jwk: &Jwk,
    kid: &str,
    alg_name: &str,
    alg: KeyAlg,
    input: &[u8],
    signature: &[u8],
) -> Result<(), JwtSvidError> {
    let mismatch = |reason: String| JwtSvidError::KeyMismatch {
        kid: kid.to_owned(),
        alg: alg_name.to_owned(),
        reason,
    };
    // RFC 7517 §4.4: a key's `alg` member names "the algorithm intended for use with the
    // key"; a key declared for another algorithm is not used for this one.
    if let Some(key_alg) = jwk.get_str("alg")
        && key_alg != alg_name
    {
        return Err(mismatch(format!("the key is declared for {key_alg}")));
    }
    let member = |name: &'static str| {
        let value = jwk
            .get_str(name)
            .ok_or_else(|| mismatch(format!("\"{name}\" is missing")))?;
        URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| mismatch(format!("\"{name}\" is not base64url")))
    };
    let kty = jwk.kty().unwrap_or_default();
    let verified = match alg {
        KeyAlg::Ec { crv, coord, verify } => {
            if kty != "EC" || jwk.get_str("crv") != Some(crv) {
                return Err(mismatch(format!("{alg_name} needs an EC {crv} key")));
            }
            let (x, y) = (member("x")?, member("y")?);
            if x.len() != coord || y.len() != coord {
                // RFC 7518 §6.2.1.2: "The length of this octet string MUST be the full size
                // of a coordinate for the curve specified in the "crv" parameter."
                return Err(mismatch(format!("coordinates must be {coord} bytes")));
            }
            // SEC 1 uncompressed point: 0x04 || x || y.
            let point = [&[0x04][..], &x, &y].concat();
            let key = sig::UnparsedPublicKey::new(verify, &point)
                .parse()
                .map_err(|e| mismatch(format!("not a point on {crv}: {e}")))?;
            key.verify_sig(input, signature)
        }
        KeyAlg::Rsa(params) => {
            if kty != "RSA" {
                return Err(mismatch(format!("{alg_name} needs an RSA key")));
            }
            let components = sig::RsaPublicKeyComponents {
                n: member("n")?,
                e: member("e")?,
            };
            components.verify(params, input, signature)
        }
    };
    verified.map_err(|_| JwtSvidError::BadSignature)
}
