//! The authority's code-signing CA: Fulcio-style short-lived certificates for workloads
//! that prove a SPIFFE ID of the domain, each precertificate recorded in the domain log
//! before its SCT is returned. The rules live in `provmesh_protocol::ca`; this module
//! owns the key files, the clock, the log append and the HTTP API.
//!
//! | module | owns |
//! | --- | --- |
//! | [`keys`] | the code-signing root and CT key files under `<data_dir>/ca/` |
//! | [`service`] | [`CaService`]: authorize, quota, issue, record, answer |
//! | [`http`] | Fulcio's v2 REST API (`POST /api/v2/signingCert`) |
//! | [`forward`] | a plain node's `POST /api/v2/signingCert`: forwarded to the authority |
//! | [`mtls`] | the same routes over mTLS (`authority.ca.mtls_listen`): the client's X.509-SVID is the credential |

pub mod forward;
pub mod http;
pub mod keys;
pub mod mtls;
pub mod service;

pub use service::{CaError, CaService, CaSettings, Issued};
