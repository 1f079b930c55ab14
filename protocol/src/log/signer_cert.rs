//! Who may write to a domain log: code-signing certificates that chain to the domain's
//! configured roots and are valid at integration time.

/// A signer whose certificate passed every check, reduced to what admission needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedSigner {
    /// The identity the certificate binds (its SAN: a SPIFFE ID URI, or an e-mail
    /// address for Fulcio-style certificates); quotas are charged to it.
    pub identity: String,
    /// The leaf certificate's P-256 public key, SEC1 uncompressed (65 bytes).
    pub public_key_sec1: Vec<u8>,
    /// Validity window of the leaf, Unix seconds, inclusive.
    pub not_before: i64,
    /// See `not_before`.
    pub not_after: i64,
}
