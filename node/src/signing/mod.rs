//! The build side of keyless signing: what `provmesh sign`, `provmesh attest` and
//! `provmesh trust-root export` do, apart from parsing their flags and printing.
//!
//! A build signs with a key that lives only as long as the command: a fresh ECDSA P-256
//! key, certified for the build's SPIFFE ID by the domain's code-signing CA (Fulcio v2
//! `POST /api/v2/signingCert`), used once, and recorded in the domain log (Rekor v1
//! `POST /api/v1/log/entries`). What the log answers becomes a Sigstore bundle (v0.3),
//! which is verified against the domain's trusted root before it is written.
//!
//! | module | owns |
//! | --- | --- |
//! | [`token`] | where the identity token (a JWT-SVID for audience `sigstore`) comes from |
//! | [`authority`] | the HTTP client of the authority: CA, log and the domain's trusted root |
//! | [`statement`] | the in-toto Statement about a file, and SLSA Provenance v1 from build parameters |
//! | [`sign`] | the flow: key, certificate, signature or DSSE envelope, log entry, bundle, check, file |
//! | [`trust`] | the domain's `trusted_root.json` or ClientTrustConfig, from the authority or its files |
//!
//! The rules of every format come from `provmesh_protocol` (`ca::request`,
//! `log::entry`, `dsse`, `intoto`, `slsa`, `sigstore_bundle`, `sigstore_trust`, `verify`):
//! nothing here decides what a certificate, an entry or a bundle is.

pub mod authority;
pub mod sign;
pub mod statement;
pub mod token;
pub mod trust;

pub use authority::{AuthorityClient, AuthorityError};
pub use sign::{Predicate, SignError, SignOptions, Signed, attest_file, sign_file};
pub use statement::{SlsaParameters, StatementBuildError};
pub use token::{TokenError, TokenSource};
pub use trust::{
    ExportError, Exported, TrustConfigError, TrustFormat, TrustSource, export, read_trust_config,
};
