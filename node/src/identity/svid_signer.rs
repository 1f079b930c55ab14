//! Signing with the node's own X.509-SVID key: what binds a node record or a domain
//! record to the SPIFFE ID in the SVID.
//!
//! The key comes as PKCS #8 from either identity source. It signs with its natural hash,
//! the one `provmesh_protocol::spiffe::x509::verify_svid_signature` checks: ECDSA P-256
//! with SHA-256 and P-384 with SHA-384 (ASN.1 DER signatures), RSA PKCS #1 v1.5 with
//! SHA-256 (SPIRE's `ec-p256`, `ec-p384`, `rsa-2048` and `rsa-4096` key types).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as lc, EcdsaKeyPair, RsaKeyPair};
use provmesh_protocol::dsse::{DsseSigner, SignError};

use super::NodeSvid;

/// The private key of an X.509-SVID, ready to sign.
pub struct SvidSigner {
    key: Key,
    random: SystemRandom,
}

enum Key {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// Why an SVID's key cannot sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SvidKeyError {
    /// The PKCS #8 document is not an ECDSA P-256/P-384 or RSA key this node signs with.
    #[error("the X.509-SVID's private key is not an ECDSA P-256/P-384 or RSA PKCS #8 key")]
    Unsupported,
}

impl SvidSigner {
    /// The signer of `svid`'s private key.
    pub fn new(svid: &NodeSvid) -> Result<SvidSigner, SvidKeyError> {
        let pkcs8 = &svid.private_key_pkcs8;
        let key = if let Ok(key) =
            EcdsaKeyPair::from_pkcs8(&lc::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8)
        {
            Key::Ecdsa(key)
        } else if let Ok(key) = EcdsaKeyPair::from_pkcs8(&lc::ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8)
        {
            Key::Ecdsa(key)
        } else if let Ok(key) = RsaKeyPair::from_pkcs8(pkcs8) {
            Key::Rsa(key)
        } else {
            return Err(SvidKeyError::Unsupported);
        };
        Ok(SvidSigner {
            key,
            random: SystemRandom::new(),
        })
    }
}

impl DsseSigner for SvidSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let failed = |e: aws_lc_rs::error::Unspecified| SignError::Signer(Box::new(e));
        match &self.key {
            Key::Ecdsa(key) => Ok(key
                .sign(&self.random, message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Key::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&lc::RSA_PKCS1_SHA256, &self.random, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use provmesh_protocol::spiffe::x509::{verify_svid_signature, verify_x509_svid};
    use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};

    use super::*;
    use crate::identity::{DevCa, DevCaConfig, SubjectKey};

    #[test]
    fn a_signature_verifies_with_the_svid_as_the_protocol_checks_it() {
        let dir = tempfile::tempdir().unwrap();
        let td = TrustDomain::parse("org-a.example").unwrap();
        let now = SystemTime::now();
        let ca = DevCa::open(dir.path(), &td, DevCaConfig::default(), now).unwrap();
        let id = SpiffeId::parse("spiffe://org-a.example/provmesh/node/a").unwrap();
        let svid = ca
            .issue_x509_svid(&id, SubjectKey::Generate, Duration::from_secs(600), now)
            .unwrap();
        let node_svid = NodeSvid {
            spiffe_id: svid.spiffe_id.clone(),
            chain_der: svid.chain_der.clone(),
            private_key_pkcs8: svid.private_key_pkcs8.clone().unwrap(),
            not_after: svid.not_after,
        };
        let signer = SvidSigner::new(&node_svid).unwrap();
        let signature = signer.sign(b"message").unwrap();
        let verified = verify_x509_svid(
            &svid.chain_der,
            &td,
            ca.trust_bundle(),
            crate::clock::timestamp_of(now),
        )
        .unwrap();
        verify_svid_signature(&verified, b"message", &signature).unwrap();
        assert!(verify_svid_signature(&verified, b"other", &signature).is_err());
    }
}
