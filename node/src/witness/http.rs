//! `POST /add-checkpoint`: the C2SP tlog-witness submission API of the domain's witness,
//! on the authority's HTTP API.
//!
//! The request body is read up to `provmesh_protocol::witness::MAX_REQUEST_BYTES` (a
//! longer one is `413`); every check and its status code is the protocol core's
//! (`Refusal::status`): `400` malformed or old size larger, `403` no trusted signature,
//! `404` unknown origin, `409` old size not the witness's (body: its size and a newline,
//! `Content-Type: text/x.tlog.size`) or the same size with another root, `422` a proof
//! that does not verify. `200` carries the cosignature line(s). A full request queue is
//! `503` with `Retry-After`, a state that could not be stored `500`; neither cosigns.
//!
//! A plain node serves the same route by forwarding to its domain's authority
//! ([`forward_router`]): a request authenticates itself (the witness checks the log's
//! signature and the proof), so relaying it gives the node no power, and the authority's
//! answer — status, content type and body — comes back unchanged.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use provmesh_protocol::witness::{MAX_REQUEST_BYTES, SIZE_CONTENT_TYPE};

use super::{AddError, WitnessHandle};

/// The route of the witness.
pub fn router(witness: WitnessHandle) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .with_state(witness)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn add_checkpoint(
    State(witness): State<WitnessHandle>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match crate::log::http::read_body(&headers, body, MAX_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    match witness.add_checkpoint(body.to_vec()).await {
        Ok(lines) => text(StatusCode::OK, "text/plain; charset=utf-8", lines),
        Err(AddError::Refused(refusal)) => {
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
            match refusal.size_body() {
                Some(size) => text(status, SIZE_CONTENT_TYPE, size),
                None => text(status, "text/plain; charset=utf-8", format!("{refusal}\n")),
            }
        }
        Err(e @ (AddError::Overloaded | AddError::Stopped)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::RETRY_AFTER, "1"),
            ],
            format!("{e}\n"),
        )
            .into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("{e}\n"),
        ),
    }
}

/// How long the authority gets to answer a forwarded request.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer relayed back (cosignature lines, or a refusal).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

struct Forwarder {
    authority_url: String,
    client: reqwest::Client,
}

/// A plain node's `POST /add-checkpoint`, forwarded to the witness of `authority_url`.
pub fn forward_router(authority_url: String) -> Router {
    let forwarder = Arc::new(Forwarder {
        authority_url: authority_url.trim_end_matches('/').to_owned(),
        client: reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .build()
            .unwrap_or_default(),
    });
    Router::new()
        .route("/add-checkpoint", post(forward))
        .with_state(forwarder)
}

async fn forward(
    State(forwarder): State<Arc<Forwarder>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match crate::log::http::read_body(&headers, body, MAX_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let unavailable = |reason: String| {
        text(
            StatusCode::BAD_GATEWAY,
            "text/plain; charset=utf-8",
            format!("the domain's witness cannot be reached: {reason}\n"),
        )
    };
    let answer = match forwarder
        .client
        .post(format!("{}/add-checkpoint", forwarder.authority_url))
        .body(body)
        .send()
        .await
    {
        Ok(answer) => answer,
        Err(e) => return unavailable(e.to_string()),
    };
    let status = answer.status();
    let content_type = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain; charset=utf-8")
        .to_owned();
    let retry_after = answer.headers().get(header::RETRY_AFTER).cloned();
    let bytes = match answer.bytes().await {
        Ok(bytes) if bytes.len() <= MAX_ANSWER_BYTES => bytes,
        Ok(bytes) => return unavailable(format!("an answer of {} bytes", bytes.len())),
        Err(e) => return unavailable(e.to_string()),
    };
    let mut response = (status, bytes).into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    if let Some(value) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
