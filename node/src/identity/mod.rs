//! Workload identity: where SPIFFE SVIDs come from, and JWT-SVID validation.
//!
//! | item | owns |
//! | --- | --- |
//! | [`source`] | [`Identity`]: the node's SVID and trust bundle behind one type, followed live, whichever source issues them |
//! | [`dev_ca`] | the embedded per-domain dev CA, the identity source when no SPIRE agent is configured |
//! | [`workload_api`] | the SPIRE source: the SPIFFE Workload API client (`spiffe` crate) |
//! | [`verify_jwt_svid`] | JWT-SVID validation (the rules live in `provmesh_protocol::spiffe::jwt`) at a wall-clock time |

pub mod dev_ca;
pub mod source;
pub mod svid_signer;
pub mod workload_api;

use std::time::SystemTime;

use provmesh_protocol::spiffe::{SpiffeId, TrustBundle, TrustDomain};

pub use dev_ca::{
    DevCa, DevCaConfig, IssueJwtError, IssueX509Error, OpenError, SubjectKey, SvidRequestError,
    X509Svid,
};
pub use provmesh_protocol::spiffe::jwt::{JwtSvidError, MAX_JWT_SVID_LEN};
pub use source::{
    Identity, IdentityTask, IdentityTaskError, JwtSvidFetchError, NodeSvid, OpenIdentityError,
    OpenOptions,
};

/// Validates a JWT-SVID at the wall-clock time `now` (see
/// [`provmesh_protocol::spiffe::jwt::verify_jwt_svid`]).
pub fn verify_jwt_svid(
    token: &str,
    expected_audience: &str,
    trust_domain: &TrustDomain,
    bundle: &TrustBundle,
    now: SystemTime,
) -> Result<SpiffeId, JwtSvidError> {
    provmesh_protocol::spiffe::jwt::verify_jwt_svid(
        token,
        expected_audience,
        trust_domain,
        bundle,
        crate::clock::timestamp_of(now),
    )
}
