//! Certificate requests on a plain node: forwarded to the domain's authority, and only in
//! a form the authority verifies itself.
//!
//! A node fronts the authority for the workloads on its Kubernetes node, but it must not
//! be able to obtain a certificate for an identity it does not hold. So it forwards a
//! request only when its credential proves the identity by itself — a JWT-SVID (the
//! workload's, signed by the domain's JWT authority) or a signed X.509-SVID proof —
//! re-serialised from what was parsed, with nothing of the node's own added. A request
//! without such a credential (say, one that relied on an mTLS connection to this node)
//! is refused here with 401: the authority could not tell whose it is. The authority's
//! answer — status, `Retry-After` and body — goes back unchanged.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use provmesh_protocol::ca::request::SigningCertRequest;

use super::http::{bearer_token, status};
use crate::log::http::{ApiError, read_body};

/// How long the authority gets to answer a forwarded request (it waits for the
/// precertificate to be durable in its log, normally milliseconds).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer relayed back (a chain of two certificates is about 3 KiB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

struct Forwarder {
    authority_url: String,
    client: reqwest::Client,
    max_request_bytes: usize,
}

/// The plain node's `POST /api/v2/signingCert`, forwarding to `authority_url`.
pub fn router(authority_url: String, max_request_bytes: usize) -> Router {
    let forwarder = Arc::new(Forwarder {
        authority_url,
        client: reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .build()
            .unwrap_or_default(),
        max_request_bytes,
    });
    Router::new()
        .route("/api/v2/signingCert", post(forward))
        .with_state(forwarder)
}

async fn forward(
    State(forwarder): State<Arc<Forwarder>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match forward_inner(&forwarder, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn forward_inner(
    forwarder: &Forwarder,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(headers, body, forwarder.max_request_bytes).await?;
    let bearer = bearer_token(headers)?;
    let request = SigningCertRequest::from_fulcio_json(&body, bearer)
        .map_err(|e| ApiError::new(status(e.status()), e.to_string()))?;
    request
        .check_forwardable()
        .map_err(|e| ApiError::new(status(e.status()), e.to_string()))?;
    let url = format!("{}/api/v2/signingCert", forwarder.authority_url);
    let answer = forwarder
        .client
        .post(&url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(request.to_fulcio_json())
        .send()
        .await
        .map_err(|e| unreachable_authority(&url, &e))?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let retry_after = answer.headers().get(header::RETRY_AFTER).cloned();
    let content_type = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    if answer
        .content_length()
        .is_some_and(|len| len > MAX_ANSWER_BYTES as u64)
    {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the authority's answer is too large",
        ));
    }
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| unreachable_authority(&url, &e))?;
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "the authority's answer is too large",
        ));
    }
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], bytes).into_response();
    if let Some(retry_after) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after);
    }
    Ok(response)
}

fn unreachable_authority(url: &str, error: &reqwest::Error) -> ApiError {
    tracing::warn!(%url, %error, "cannot forward a certificate request to the authority");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!("the domain's authority at {url} did not answer: {error}"),
    )
}
