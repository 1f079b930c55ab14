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
