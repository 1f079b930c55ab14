//! Fulcio's v2 REST API on the authority's HTTP listener, so stock Sigstore clients
//! (sigstore-python, cosign, sigstore-js) can use the domain's CA:
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /api/v2/signingCert` | `CreateSigningCertificateRequest` → `SigningCertificate` with `signedCertificateEmbeddedSct.chain.certificates` (PEM, leaf first) |
//! | `GET /api/v2/trustBundle` | `{"chains":[{"certificates":[root PEM]}]}` |
//! | `GET /api/v2/configuration` | the accepted identity issuer: the trust domain, audience `sigstore` |
//! | `GET /api/v2/provmesh/trustedRoot` | the domain's Sigstore `trusted_root.json`: log key, CT key and CA chain (a provmesh extension; read-only) |
//!
//! The identity token is read from the body (`credentials.oidcIdentityToken`) or from
//! `Authorization: Bearer …`. Errors are Fulcio's gateway JSON `{"code":…,"message":…}`
//! with 401 (identity not proven), 400 (bad request or key), 429 with `Retry-After`
//! (quota), 503 (the domain log did not record the precertificate), 500 otherwise.
//!
//! On the mTLS listener ([`super::mtls`]) each request carries the client's certificate
//! chain as an `MtlsPeer` extension, passed to the CA as the mTLS credential.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use provmesh_protocol::ca::request::{
    SIGSTORE_AUDIENCE, SigningCertRequest, fulcio_response_json, pem_encode,
};
use provmesh_protocol::log::quota::QuotaError;

use super::mtls::MtlsPeer;
use super::service::{CaError, CaService};
use crate::log::http::{ApiError, read_body};
use crate::log::service::AppendError;

const JSON: &str = "application/json";

struct Api {
    ca: CaService,
    max_request_bytes: usize,
}

/// The Fulcio v2 routes of `ca`; bodies larger than `max_request_bytes` get 413.
pub fn router(ca: CaService, max_request_bytes: usize) -> Router {
    let api = Arc::new(Api {
        ca,
        max_request_bytes,
    });
    Router::new()
        .route("/api/v2/signingCert", post(signing_cert))
        .route("/api/v2/trustBundle", get(trust_bundle))
        .route("/api/v2/configuration", get(configuration))
        .route("/api/v2/provmesh/trustedRoot", get(trusted_root))
        .with_state(api)
}

async fn signing_cert(
    State(api): State<Arc<Api>>,
    peer: Option<Extension<MtlsPeer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mtls_peer = peer.as_ref().map(|Extension(peer)| peer.chain());
    match signing_cert_inner(&api, mtls_peer, &headers, body).await {
        Ok(json) => (StatusCode::CREATED, [(header::CONTENT_TYPE, JSON)], json).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn signing_cert_inner(
    api: &Api,
    mtls_peer: Option<&[Vec<u8>]>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, ApiError> {
    let body = read_body(headers, body, api.max_request_bytes).await?;
    let bearer = bearer_token(headers)?;
    let request = SigningCertRequest::from_fulcio_json(&body, bearer)
        .map_err(|e| ApiError::new(status(e.status()), e.to_string()))?;
    let issued = api.ca.issue(&request, mtls_peer).await.map_err(api_error)?;
    Ok(fulcio_response_json(
        &issued.certificate.certificate_der,
        &issued.certificate.chain,
    ))
}

/// The token of an `Authorization: Bearer` header, if any (RFC 6750 §2.1).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_request("the Authorization header is not ASCII"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the Authorization header must be \"Bearer <JWT-SVID>\"",
        )),
    }
}

/// The HTTP status of a refusal of the core's rules (`RequestError::status`).
pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

fn api_error(error: CaError) -> ApiError {
    match error {
        CaError::Refused(refusal) => ApiError::new(status(refusal.status()), refusal.to_string()),
        CaError::Quota(QuotaError::Exhausted {
            identity,
            retry_after_ms,
        }) => ApiError::too_many_requests(
            format!("certificate quota of {identity} exhausted"),
            Duration::from_millis(retry_after_ms),
        ),
        CaError::Quota(other) => {
            ApiError::too_many_requests(other.to_string(), Duration::from_secs(1))
        }
        CaError::Log(AppendError::Overloaded) => {
            ApiError::too_many_requests("the domain log is overloaded", Duration::from_secs(1))
        }
        CaError::Log(error) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the domain log did not record the certificate, so none is issued: {error}"),
        ),
        other => ApiError::internal("issuing a certificate", &other),
    }
}

async fn trust_bundle(State(api): State<Arc<Api>>) -> Response {
    let certificates: Vec<String> = api
        .ca
        .chain()
        .iter()
        .map(|der| pem_encode("CERTIFICATE", der))
        .collect();
    let json = serde_json::json!({ "chains": [{ "certificates": certificates }] }).to_string();
    ([(header::CONTENT_TYPE, JSON)], json).into_response()
}

async fn configuration(State(api): State<Arc<Api>>) -> Response {
    let trust_domain = api.ca.trust_domain().as_str();
    let json = serde_json::json!({
        "issuers": [{
            "issuerUrl": format!("spiffe://{trust_domain}"),
            "audience": SIGSTORE_AUDIENCE,
            "challengeClaim": "sub",
            "spiffeTrustDomain": trust_domain,
        }]
    })
    .to_string();
    ([(header::CONTENT_TYPE, JSON)], json).into_response()
}

/// The domain's `trusted_root.json` ([`CaService::domain_trust`]), so signers and
/// `provmesh trust-root export` get the CT key, which no Fulcio or Rekor route serves.
async fn trusted_root(State(api): State<Arc<Api>>) -> Result<Response, ApiError> {
    use provmesh_protocol::sigstore::trusted_root_to_json;
    use provmesh_protocol::sigstore_trust::trusted_root;
    let domain = api
        .ca
        .domain_trust()
        .map_err(|e| ApiError::internal("describing the domain's trust", &e))?;
    let root =
        trusted_root(&[domain]).map_err(|e| ApiError::internal("building the trusted root", &e))?;
    let json = trusted_root_to_json(&root)
        .map_err(|e| ApiError::internal("encoding the trusted root", &e))?;
    Ok(([(header::CONTENT_TYPE, JSON)], json).into_response())
}
