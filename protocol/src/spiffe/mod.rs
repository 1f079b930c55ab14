//! SPIFFE identifiers, trust domains and SPIFFE trust bundle documents.
//!
//! * [`TrustDomain`] and [`SpiffeId`] implement section 2 of the SPIFFE-ID standard
//!   (<https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md>).
//! * [`TrustBundle`] implements the SPIFFE bundle format of the SPIFFE Trust Domain and
//!   Bundle standard, section 4
//!   (<https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Trust_Domain_and_Bundle.md>),
//!   with the `x509-svid` and `jwt-svid` entry rules of the X509-SVID and JWT-SVID
//!   standards (section 6 of each).
//!
//! * [`jwt`] validates JWT-SVIDs (JWT-SVID standard) against a bundle's `jwt-svid` keys.
//! * [`x509`] validates X.509-SVID chains (X509-SVID standard) against a bundle's
//!   `x509-svid` authorities.
//!
//! Everything here is pure: no clock (times are arguments), no randomness. Certificates
//! in a bundle are checked only for the outer DER shape of a certificate
//! ([`check_certificate_shape`]); full X.509 parsing happens where certificates are used.

mod bundle;
mod der;
mod id;
pub mod jwt;
pub mod x509;

pub use bundle::{
    AddKeyError, BundleError, BundleKey, Jwk, KeyDiagnostic, KeyProblem, MAX_BUNDLE_JSON_LEN,
    MAX_BUNDLE_KEYS, TrustBundle, USE_JWT_SVID, USE_X509_SVID,
};
pub(crate) use der::read_element;
pub use der::{DerError, check_certificate_shape};
pub use id::{
    MAX_SPIFFE_ID_LEN, MAX_TRUST_DOMAIN_LEN, PathError, SpiffeId, SpiffeIdError, TrustDomain,
    TrustDomainError,
};
