//! The domain log over HTTP: the C2SP tlog-tiles read API (checkpoint, hash tiles, entry
//! bundles) and the Rekor v1 REST API (`/api/v1/...`) that stock Sigstore clients
//! (cosign, sigstore-go, sigstore-python) write to and read from.
//!
//! [`router`] builds the routes over a [`LogHandle`]; [`serve`] runs them until shutdown.
//! Handlers only translate: every rule about what an entry, a proof or a tile is lives in
//! the handle and in `provmesh_protocol`. Entry documents (`LogEntry`, the proposed
//! entry and search bodies) are parsed and written by `provmesh_protocol::log::entry`;
//! this module writes only the three small documents openapi.yaml defines for the tree
//! and for errors (`LogInfo`, `ConsistencyProof`, `Error`).
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /checkpoint` | the newest signed checkpoint note |
//! | `GET /tile/<L>/<N>[.p/<W>]` | a hash tile of the published tree |
//! | `GET /tile/entries/<N>[.p/<W>]` | an entry bundle of the published tree |
//! | `GET /api/v1/log` | `LogInfo`: root hash, size, signed tree head, tree ID |
//! | `GET /api/v1/log/publicKey` | the log's Ed25519 key as PKIX PEM |
//! | `GET /api/v1/log/proof?firstSize=&lastSize=` | `ConsistencyProof` |
//! | `POST /api/v1/log/entries` | append a proposed entry (`201`, or `409` for a duplicate) |
//! | `GET /api/v1/log/entries?logIndex=N` | `LogEntry` by index |
//! | `GET /api/v1/log/entries/{entryUUID}` | `LogEntry` by UUID or entry ID |
//! | `POST /api/v1/log/entries/retrieve` | `LogEntry`s by UUIDs, indexes or proposed entries |
//! | `POST /api/v1/index/retrieve` | UUIDs of the entries for an artifact `sha256:` digest |
//!
//! Rekor endpoints answer errors as Rekor does (openapi.yaml `Error`:
//! `{"code": <status>, "message": "..."}`); the tile endpoints answer `400` and `404` in
//! plain text, as static file servers do. Status codes: malformed input `400`; an entry that is well formed but
//! refused (certificate not accepted, signature does not verify) `422`; wrong
//! `Content-Type` `415`; body over [`HttpSettings::max_request_bytes`] `413`; quota spent or
//! log overloaded `429` with `Retry-After`; log halted or shutting down `503`; store
//! failure `500`.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provmesh_protocol::log::SignedCheckpointNote;
use provmesh_protocol::log::entry::{
    InclusionProofView, LogEntryResponse, LogEntryView, ProposedEntryError, SearchIndexQuery,
    SearchIndexQueryError, SearchLogQuery, SearchLogQueryError, entry_uuid, parse_entry_uuid,
};
use provmesh_protocol::log::quota::QuotaError;
use provmesh_protocol::merkle::tiles::{TILE_HEIGHT, TILE_WIDTH, TilePath};
use provmesh_protocol::merkle::tree_hash;
use serde::Serialize;
use tokio::net::TcpListener;

use super::service::{AppendError, Appended, EntryRecord, LogHandle, ReadError};
use super::store::LogStore as _;
use crate::shutdown::Shutdown;

/// Content type of Rekor responses and of the request bodies they accept.
const JSON: &str = "application/json";
/// C2SP tlog-tiles: "The Signed Tree Head MUST be served as a checkpoint at
/// `<prefix>/checkpoint` with `Content-Type: text/plain; charset=utf-8`."
const CHECKPOINT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// C2SP tlog-tiles: tiles and entry bundles are served "with `Content-Type:
/// application/octet-stream`".
const TILE_CONTENT_TYPE: &str = "application/octet-stream";
/// openapi.yaml `getPublicKey`: `produces: application/x-pem-file`.
const PEM_CONTENT_TYPE: &str = "application/x-pem-file";
/// C2SP tlog-tiles, checkpoints: "This endpoint is mutable, so its headers SHOULD prevent
/// caching beyond a few seconds."
const CHECKPOINT_CACHE_CONTROL: &str = "no-cache";
/// C2SP tlog-tiles, tiles and bundles: "This endpoint is immutable, so its caching headers
/// SHOULD be long-lived." A full tile never changes.
const FULL_TILE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// A partial tile's bytes never change either, but a log "MAY delete any partial tile
/// once the corresponding full tile is either available, or has been removed by the
/// pruning criteria", so caches keep it only briefly.
const PARTIAL_TILE_CACHE_CONTROL: &str = "public, max-age=60";

/// `Retry-After` sent with `429` when the log is overloaded (a spent quota sends the
/// time the quota names instead): the sequencer drains a full queue within a few batch
/// delays, so a second is enough for most clients to get through on their first retry.
const OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Most UUIDs one `POST /api/v1/index/retrieve` answer lists, oldest first: bounds the
/// work and the answer for a digest shared by very many entries.
pub const MAX_SEARCH_RESULTS: usize = 1000;

/// Settings of the HTTP API.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Largest request body read, in bytes; a longer one is answered `413 Payload Too
    /// Large` without being read to the end. Default 1 MiB: a `hashedrekord` entry is a
    /// few KiB and an in-toto attestation in a `dsse` entry rarely more than a few
    /// hundred, and the entry parser refuses anything above
    /// [`provmesh_protocol::log::entry::MAX_PROPOSED_ENTRY_BYTES`] (also 1 MiB) anyway.
    /// The same limit applies to the search bodies, so an `entries/retrieve` query with
    /// many large proposed entries needs a larger limit.
    pub max_request_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_request_bytes: 1 << 20,
        }
    }
}

/// The Rekor `treeID` of the log: the first eight bytes of its key ID, big-endian, with
/// the top bit cleared.
///
/// Rekor names a tree by its Trillian tree ID, a positive `int64` that clients print as a
/// decimal string (`LogInfo.treeID`) and as the first 16 hex digits of 80-digit entry
/// IDs. A domain log has one tree, identified by its key; deriving the ID from the key ID
/// keeps it stable across restarts, and distinct between logs with overwhelming
/// probability, without storing anything.
pub fn tree_id(key_id: &[u8; 32]) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&key_id[..8]);
    // Clearing the sign bit leaves a value in 0..=i64::MAX.
    i64::try_from(u64::from_be_bytes(first) & (i64::MAX as u64)).unwrap_or(0)
}

/// The log's Ed25519 public key as a PKIX (`SubjectPublicKeyInfo`) PEM block.
pub fn public_key_pem(public_key: &[u8; 32]) -> String {
    let der = provmesh_protocol::sigstore_trust::ed25519_spki_der(public_key);
    // 44 base64 characters: one line, well under PEM's 64-character limit (RFC 7468 §2).
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
}

struct Api {
    log: LogHandle,
    settings: HttpSettings,
    tree_id: String,
}

/// The routes of the log's HTTP API over `handle` (see the module header).
pub fn router(handle: LogHandle, settings: HttpSettings) -> Router {
    let api = Arc::new(Api {
        tree_id: tree_id(handle.key_id()).to_string(),
        log: handle,
        settings,
    });
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .route("/api/v1/log", get(log_info))
        .route("/api/v1/log/publicKey", get(public_key))
        .route("/api/v1/log/proof", get(consistency_proof))
        .route(
            "/api/v1/log/entries",
            get(entry_by_index).post(create_entry),
        )
        .route("/api/v1/log/entries/retrieve", post(retrieve_entries))
        .route("/api/v1/log/entries/{uuid}", get(entry_by_uuid))
        .route("/api/v1/index/retrieve", post(search_index))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
}

/// Serves `router` on `listener` until `shutdown` fires, then stops accepting
/// connections and returns once open requests have been answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
) -> Result<(), std::io::Error> {
    // Small answers on kept-alive connections: without TCP_NODELAY, Nagle's algorithm
    // and delayed ACKs stall pipelined clients for tens of milliseconds per request.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a log API connection");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.triggered().await })
        .await
}

// ---------------------------------------------------------------------------------------
// Errors

/// A Rekor API error: status, message, and the headers some statuses carry.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    /// `Retry-After` seconds (`429`).
    retry_after: Option<u64>,
    /// `Location` of the existing entry (`409`).
    location: Option<String>,
}

/// openapi.yaml `Error`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
            location: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn too_many_requests(message: impl Into<String>, retry_after: Duration) -> Self {
        ApiError {
            retry_after: Some(retry_after_seconds(retry_after)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }

    /// A store failure: the details go to the node's log, the client learns only that
    /// the fault is the server's.
    pub(crate) fn internal(what: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "log API: {what}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {what}; the log operator has the details"),
        )
    }
}

/// Whole seconds for `Retry-After` (RFC 9110 §10.2.3: "a non-negative decimal integer,
/// representing time in seconds"), rounded up and at least one.
fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            code: self.status.as_u16(),
            message: &self.message,
        })
        .unwrap_or_default();
        let mut response = (self.status, [(header::CONTENT_TYPE, JSON)], body).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(location) = self.location.and_then(|l| HeaderValue::try_from(l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

impl From<ReadError> for ApiError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::BadRequest(message) => ApiError::bad_request(message),
            ReadError::NoCheckpoint => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }
            ReadError::Store(e) => ApiError::internal("reading the log store failed", &e),
        }
    }
}

/// Maps an append failure to its status.
///
/// `422 Unprocessable Entity` is used for an entry that is well formed but refused — its
/// certificate does not chain to the domain's roots, has expired or lacks the
/// code-signing profile, or its signature does not verify. Rekor answers some of these
/// `400`; keeping them apart from malformed input tells a client that resending the same
/// bytes can never succeed, while fixing its JSON might.
fn append_error(error: AppendError) -> ApiError {
    match error {
        AppendError::Malformed(ProposedEntryError::TooLarge { len, max }) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("proposed entry is {len} bytes, more than the limit of {max}"),
        ),
        AppendError::Malformed(e) => ApiError::bad_request(e.to_string()),
        e @ (AppendError::Certificate(_) | AppendError::Rejected(_)) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        AppendError::Quota(e) => {
            let wait = match &e {
                QuotaError::Exhausted { retry_after_ms, .. } => {
                    Duration::from_millis(*retry_after_ms)
                }
                _ => OVERLOAD_RETRY_AFTER,
            };
            ApiError::too_many_requests(e.to_string(), wait)
        }
        e @ AppendError::Overloaded => {
            ApiError::too_many_requests(e.to_string(), OVERLOAD_RETRY_AFTER)
        }
        AppendError::Unavailable(reason) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the log is not accepting entries: {reason}"),
        ),
        AppendError::Store(e) => ApiError::internal("the log store failed", &e),
    }
}

/// A plain-text error of the tile API.
fn text_error(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CHECKPOINT_CONTENT_TYPE)],
        message + "\n",
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", truncate(uri.path(), 200)))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", truncate(uri.path(), 200)),
    )
}

// ---------------------------------------------------------------------------------------
// Request parsing

/// Checks that a request body is declared as JSON: `application/json`, parameters (such
/// as `charset`) allowed, as openapi.yaml's `consumes: application/json` requires.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("<not text>"));
    let is_json = declared.is_some_and(|value| {
        let essence = value.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case(JSON)
    });
    if is_json {
        return Ok(());
    }
    let found = match declared {
        Some(value) => format!("`{}`", truncate(value, 100)),
        None => "none".to_owned(),
    };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("the request body must be sent with Content-Type: application/json (got {found})"),
    ))
}

/// Reads a request body of at most `limit` bytes.
///
/// A declared `Content-Length` over the limit is refused before anything is read; a
/// chunked body is refused as soon as it passes the limit, so a client cannot make the
/// server buffer more. A body sent in one frame (the usual case) is not copied.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    mut body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = |declared: Option<u64>| {
        let size = match declared {
            Some(len) => format!("{len} bytes"),
            None => "longer than that".to_owned(),
        };
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body may be at most {limit} bytes; it is {size}"),
        )
    };
    if let Some(declared) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && declared > limit as u64
    {
        return Err(too_large(Some(declared)));
    }
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    loop {
        let frame = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| {
            ApiError::bad_request(format!("the request body could not be read: {e}"))
        })?;
        // Trailers carry nothing the API uses.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let len = first.as_ref().map_or(0, Bytes::len) + joined.len() + data.len();
        if len > limit {
            return Err(too_large(None));
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            None => joined.extend_from_slice(&data),
            Some(previous) => {
                joined.reserve(previous.len() + data.len());
                joined.extend_from_slice(&previous);
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

/// The body of a JSON request: declared as JSON, at most
/// [`HttpSettings::max_request_bytes`]. (The request is taken whole rather than through
/// a `HeaderMap` extractor, which would copy the headers.)
async fn json_body(api: &Api, request: Request) -> Result<Bytes, ApiError> {
    let (parts, body) = request.into_parts();
    require_json(&parts.headers)?;
    read_body(&parts.headers, body, api.settings.max_request_bytes).await
}

/// The value of parameter `name` in a URL query string, if present.
///
/// The parameters of this API are numbers, which never need percent-encoding, so values
/// are taken as written; a value with an escape is then simply not a number. A parameter
/// given twice is refused rather than resolved one way or the other.
fn query_value<'q>(query: Option<&'q str>, name: &str) -> Result<Option<&'q str>, ApiError> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            if found.is_some() {
                return Err(ApiError::bad_request(format!(
                    "query parameter `{name}` is given more than once"
                )));
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// A non-negative integer query parameter (openapi.yaml `type: integer`, a Go `int64`).
fn query_number(query: Option<&str>, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(text) = query_value(query, name)? else {
        return Ok(None);
    };
    let number = Some(text)
        .filter(|t| !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|n| i64::try_from(*n).is_ok());
    match number {
        Some(number) => Ok(Some(number)),
        None => Err(ApiError::bad_request(format!(
            "query parameter `{name}` must be a non-negative integer, got `{}`",
            truncate(text, 40)
        ))),
    }
}

/// Refuses a `treeID` parameter naming another tree (openapi.yaml: "The tree ID of the
/// tree you wish to ..."; Rekor answers `400` for an unknown one).
fn check_tree_id(api: &Api, query: Option<&str>) -> Result<(), ApiError> {
    match query_value(query, "treeID")? {
        Some(id) if id != api.tree_id => Err(ApiError::bad_request(format!(
            "unknown treeID `{}`: this log's only tree is {}",
            truncate(id, 40),
            api.tree_id
        ))),
        _ => Ok(()),
    }
}

/// At most `max` bytes of `text`, cut at a character boundary (for echoing input).
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

// ---------------------------------------------------------------------------------------
// Responses

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, JSON)], body).into_response()
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => ApiError::internal("encoding the response failed", &e).into_response(),
    }
}

/// The `LogEntry` view of a record: its body, SET and inclusion proof.
fn entry_view(api: &Api, record: &EntryRecord) -> LogEntryView {
    let checkpoint = &record.checkpoint;
    let proof = InclusionProofView::new(
        record.index,
        checkpoint.size,
        &checkpoint.root_hash,
        &record.inclusion_proof,
        &String::from_utf8_lossy(&checkpoint.note),
    );
    LogEntryView::new(
        &record.body,
        record.integrated_time,
        api.log.key_id(),
        record.index,
        &record.signed_entry_timestamp,
        Some(proof),
    )
}

fn entry_response(api: &Api, record: &EntryRecord) -> LogEntryResponse {
    LogEntryResponse::new(&record.leaf_hash, entry_view(api, record))
}

/// Where an entry is served (Rekor's `getEntryURL`: the request path plus `/<uuid>`).
fn entry_location(uuid: &str) -> String {
    format!("/api/v1/log/entries/{uuid}")
}

fn published(api: &Api) -> Result<Arc<SignedCheckpointNote>, ApiError> {
    api.log
        .latest_checkpoint()
        .ok_or_else(|| ApiError::from(ReadError::NoCheckpoint))
}

// ---------------------------------------------------------------------------------------
// C2SP tlog-tiles

async fn checkpoint(State(api): State<Arc<Api>>) -> Response {
    match api.log.latest_checkpoint() {
        Some(checkpoint) => (
            [
                (header::CONTENT_TYPE, CHECKPOINT_CONTENT_TYPE),
                (header::CACHE_CONTROL, CHECKPOINT_CACHE_CONTROL),
            ],
            checkpoint.note.clone(),
        )
            .into_response(),
        None => text_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the log has not published a checkpoint yet".into(),
        ),
    }
}

async fn tile(State(api): State<Arc<Api>>, path: Result<Path<String>, PathRejection>) -> Response {
    let Ok(Path(rest)) = path else {
        return text_error(StatusCode::BAD_REQUEST, "malformed tile path".into());
    };
    let path = format!("tile/{rest}");
    let parsed = match TilePath::parse(&path) {
        Ok(parsed) => parsed,
        Err(e) => {
            return text_error(
                StatusCode::BAD_REQUEST,
                format!("malformed tile path `{}`: {e}", truncate(&path, 100)),
            );
        }
    };
    let Some(checkpoint) = api.log.latest_checkpoint() else {
        return text_error(
            StatusCode::NOT_FOUND,
            "the log has not published a checkpoint yet".into(),
        );
    };
    let (level, index, width) = match parsed {
        TilePath::Hashes(t) => (t.level, t.index, t.width),
        TilePath::Entries(b) => (0, b.index, b.width),
    };
    match servable(&api, checkpoint.size, level, index, width) {
        Ok(true) => {}
        Ok(false) => {
            return text_error(
                StatusCode::NOT_FOUND,
                format!(
                    "{path} is not a tile of this log: no published checkpoint (the newest is \
                     of size {}) has this tile with this width",
                    checkpoint.size
                ),
            );
        }
        Err(e) => return ApiError::internal("reading the log store failed", &e).into_response(),
    }
    let data = match parsed {
        TilePath::Hashes(tile) => tile
            .read(api.log.store())
            .map_err(|e| ApiError::internal("reading a tile failed", &e)),
        TilePath::Entries(bundle) => entry_bundle(&api, bundle.entries()),
    };
    let cache_control = if width == TILE_WIDTH {
        FULL_TILE_CACHE_CONTROL
    } else {
        PARTIAL_TILE_CACHE_CONTROL
    };
    match data {
        Ok(data) => (
            [
                (header::CONTENT_TYPE, TILE_CONTENT_TYPE),
                (header::CACHE_CONTROL, cache_control),
            ],
            data,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Whether the log serves tile `(level, index)` of `width` hashes, given the newest
/// published checkpoint's `size`. Entry bundles follow the level-0 tiles.
///
/// C2SP tlog-tiles: a full tile exists once the tree covers it. "The partial tile at
/// level *l* for a tree of size *s* has `floor(s / 256**l) mod 256` entries", and "Logs
/// MUST serve partial tiles corresponding to tree sizes for which a checkpoint was
/// produced" — not only the newest: a client that verified an older checkpoint fetches
/// that checkpoint's partial tiles while the log grows. Any other partial width is no
/// tile of this log ("Empty tiles MUST NOT be served", and clients "MUST NOT fetch
/// arbitrary partial tiles").
fn servable(
    api: &Api,
    size: u64,
    level: u8,
    index: u64,
    width: u16,
) -> Result<bool, super::store::StoreError> {
    let shift = u32::from(level) * u32::from(TILE_HEIGHT);
    // Hashes at this tile level in the published tree; `TilePath::parse` bounds levels
    // and indexes so that nothing below overflows, but stay checked regardless.
    let hashes = size.checked_shr(shift).unwrap_or(0);
    let Some(end) = index
        .checked_mul(u64::from(TILE_WIDTH))
        .and_then(|start| start.checked_add(u64::from(width)))
    else {
        return Ok(false);
    };
    if end > hashes {
        return Ok(false);
    }
    if width == TILE_WIDTH || end == hashes {
        // A full tile of the tree, or the partial tile of the newest checkpoint.
        return Ok(true);
    }
    // A narrower partial tile: some published checkpoint's size `s` must have
    // `floor(s / 256**level) == end`, i.e. lie in `[end << shift, (end + 1) << shift)`.
    // Both bounds are at most `size`, since `end < hashes`.
    let sizes = (end << shift)..((end + 1) << shift);
    Ok(!api.log.store().checkpoints(sizes, 1)?.is_empty())
}

/// The entry bundle of the leaves `range`.
///
/// C2SP tlog-tiles: "Entry bundles are sequences of big-endian uint16 length-prefixed
/// log entries. Each entry in a bundle hashes to the corresponding entry in the
/// corresponding “level 0” Merkle Tree tile."
fn entry_bundle(api: &Api, range: std::ops::Range<u64>) -> Result<Vec<u8>, ApiError> {
    let expected = range.end - range.start;
    let entries = api
        .log
        .store()
        .entries(range)
        .map_err(|e| ApiError::internal("reading entries failed", &e))?;
    if entries.len() as u64 != expected {
        return Err(ApiError::internal(
            "reading entries failed",
            &format!("the store returned {} of {expected} entries", entries.len()),
        ));
    }
    let total = entries.iter().map(|e| 2 + e.body.len()).sum();
    let mut bundle = Vec::with_capacity(total);
    for entry in &entries {
        // The log never stores a body longer than MAX_ENTRY_BODY_BYTES = u16::MAX.
        let len = u16::try_from(entry.body.len()).map_err(|_| {
            ApiError::internal(
                "an entry does not fit an entry bundle",
                &format!("an entry body is {} bytes", entry.body.len()),
            )
        })?;
        bundle.extend_from_slice(&len.to_be_bytes());
        bundle.extend_from_slice(&entry.body);
    }
    Ok(bundle)
}

// ---------------------------------------------------------------------------------------
// Rekor v1: the tree

/// openapi.yaml `LogInfo`.
#[derive(Serialize)]
struct LogInfo<'a> {
    #[serde(rename = "rootHash")]
    root_hash: String,
    #[serde(rename = "signedTreeHead")]
    signed_tree_head: std::borrow::Cow<'a, str>,
    #[serde(rename = "treeSize")]
    tree_size: u64,
    #[serde(rename = "treeID")]
    tree_id: &'a str,
}

/// openapi.yaml `ConsistencyProof`, with the size the root hash is for.
#[derive(Serialize)]
struct ConsistencyProof {
    #[serde(rename = "rootHash")]
    root_hash: String,
    hashes: Vec<String>,
    #[serde(rename = "treeSize")]
    tree_size: u64,
}

async fn log_info(State(api): State<Arc<Api>>) -> Result<Response, ApiError> {
    let checkpoint = published(&api)?;
    Ok(json(&LogInfo {
        root_hash: hex::encode(checkpoint.root_hash),
        signed_tree_head: String::from_utf8_lossy(&checkpoint.note),
        tree_size: checkpoint.size,
        tree_id: &api.tree_id,
    }))
}

async fn public_key(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    check_tree_id(&api, query.as_deref())?;
    Ok((
        [(header::CONTENT_TYPE, PEM_CONTENT_TYPE)],
        public_key_pem(&api.log.public_key()),
    )
        .into_response())
}

/// `GET /api/v1/log/proof`: openapi.yaml `firstSize` ("Defaults to 1 if not specified",
/// `minimum: 1`); `lastSize` defaults here to the published size.
async fn consistency_proof(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query = query.as_deref();
    check_tree_id(&api, query)?;
    let first = query_number(query, "firstSize")?.unwrap_or(1);
    let last = query_number(query, "lastSize")?;
    let checkpoint = published(&api)?;
    let last = last.unwrap_or(checkpoint.size);
    if first == 0 || last == 0 {
        return Err(ApiError::bad_request(
            "firstSize and lastSize must be at least 1",
        ));
    }
    if first > last {
        // Rekor: "firstSize(%d) must be less than lastSize(%d)".
        return Err(ApiError::bad_request(format!(
            "firstSize ({first}) must not be larger than lastSize ({last})"
        )));
    }
    if last > checkpoint.size {
        return Err(ApiError::bad_request(format!(
            "lastSize ({last}) is larger than the published tree ({})",
            checkpoint.size
        )));
    }
    let hashes = api.log.consistency_proof(first, last)?;
    let root = if last == checkpoint.size {
        checkpoint.root_hash
    } else {
        tree_hash(last, api.log.store()).map_err(ReadError::from)?
    };
    Ok(json(&ConsistencyProof {
        root_hash: hex::encode(root),
        hashes: hashes.iter().map(hex::encode).collect(),
        tree_size: last,
    }))
}

// ---------------------------------------------------------------------------------------
// Rekor v1: entries

/// `POST /api/v1/log/entries`.
///
/// openapi.yaml `createLogEntry`: `201` with the `LogEntry`, `ETag` ("UUID of log
/// entry") and `Location` ("URI location of log entry"); `409` (`Conflict`: an `Error`
/// and a `Location` header) when the entry is already logged — Rekor's message is "an
/// equivalent entry already exists in the transparency log with UUID %v", and cosign
/// fetches the existing entry from the last path segment of `Location`.
async fn create_entry(State(api): State<Arc<Api>>, request: Request) -> Result<Response, ApiError> {
    let body = json_body(&api, request).await?;
    let appended = api.log.append(&body).await.map_err(append_error)?;
    match appended {
        Appended::Created(record) => {
            let uuid = entry_uuid(&record.leaf_hash);
            let body = entry_response(&api, &record).to_json();
            let mut response = json_response(StatusCode::CREATED, body);
            let headers = response.headers_mut();
            insert_header(headers, header::LOCATION, &entry_location(&uuid));
            insert_header(headers, header::ETAG, &uuid);
            Ok(response)
        }
        Appended::Duplicate(record) => {
            let uuid = entry_uuid(&record.leaf_hash);
            Err(ApiError {
                location: Some(entry_location(&uuid)),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "an equivalent entry already exists in the transparency log with UUID \
                         {uuid}"
                    ),
                )
            })
        }
    }
}

fn insert_header(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    // Only hex digits and '/' are ever passed, which are always valid header values.
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert(name, value);
    }
}

/// `GET /api/v1/log/entries?logIndex=N`.
async fn entry_by_index(
    State(api): State<Arc<Api>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let index = query_number(query.as_deref(), "logIndex")?
        .ok_or_else(|| ApiError::bad_request("query parameter `logIndex` is required"))?;
    match api.log.entry_by_index(index)? {
        Some(record) => Ok(json_response(
            StatusCode::OK,
            entry_response(&api, &record).to_json(),
        )),
        None => Err(ApiError::not_found(format!(
            "the log has no entry at index {index}"
        ))),
    }
}

/// `GET /api/v1/log/entries/{entryUUID}`: a 64-digit UUID or an 80-digit entry ID.
async fn entry_by_uuid(
    State(api): State<Arc<Api>>,
    uuid: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(uuid) = uuid.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let leaf_hash = parse_entry_uuid(&uuid).map_err(|e| ApiError::bad_request(e.to_string()))?;
    match api.log.entry_by_leaf_hash(&leaf_hash)? {
        Some(record) => Ok(json_response(
            StatusCode::OK,
            entry_response(&api, &record).to_json(),
        )),
        None => Err(ApiError::not_found(format!(
            "the log has no entry with UUID {}",
            entry_uuid(&leaf_hash)
        ))),
    }
}

/// `POST /api/v1/log/entries/retrieve`: every entry found, entries looked up by UUID
/// or proposed entry first, then by index, as Rekor's `SearchLogQueryHandler` orders
/// them; lookups that find nothing are left out.
async fn retrieve_entries(
    State(api): State<Arc<Api>>,
    request: Request,
) -> Result<Response, ApiError> {
    let body = json_body(&api, request).await?;
    let query = SearchLogQuery::from_json(&body).map_err(|e| match e {
        SearchLogQueryError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        // Rekor: "more than max allowed %d entries in request" is a 422.
        SearchLogQueryError::TooManyQueries { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        other => ApiError::bad_request(other.to_string()),
    })?;
    let mut found = Vec::with_capacity(query.query_count());
    let by_hash = query
        .entry_uuids
        .iter()
        .copied()
        .chain(query.entries.iter().map(|e| e.leaf_hash()));
    for leaf_hash in by_hash {
        if let Some(record) = api.log.entry_by_leaf_hash(&leaf_hash)? {
            found.push(entry_response(&api, &record));
        }
    }
    for &index in &query.log_indexes {
        if let Some(record) = api.log.entry_by_index(index)? {
            found.push(entry_response(&api, &record));
        }
    }
    Ok(json(&found))
}

/// `POST /api/v1/index/retrieve`: UUIDs of the entries found by artifact digest, oldest
/// first, at most [`MAX_SEARCH_RESULTS`].
async fn search_index(State(api): State<Arc<Api>>, request: Request) -> Result<Response, ApiError> {
    let body = json_body(&api, request).await?;
    let query = SearchIndexQuery::from_json(&body).map_err(|e| match e {
        SearchIndexQueryError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
        }
        other => ApiError::bad_request(other.to_string()),
    })?;
    let found = api.log.search(&query.sha256, MAX_SEARCH_RESULTS)?;
    let uuids: Vec<String> = found.iter().map(entry_uuid).collect();
    Ok(json(&uuids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_pem_matches_rfc_8410() {
        // RFC 8410 §10.1: "This is an example of a public key in PKIX format".
        let key: [u8; 32] =
            hex::decode("19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1")
                .unwrap()
                .try_into()
                .unwrap();
        assert_eq!(
            public_key_pem(&key),
            "-----BEGIN PUBLIC KEY-----\n\
             MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
             -----END PUBLIC KEY-----\n"
        );
    }

    #[test]
    fn tree_id_is_the_positive_prefix_of_the_key_id() {
        let mut key_id = [0u8; 32];
        key_id[..8].copy_from_slice(&[0x81, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(tree_id(&key_id), 0x0102_0304_0506_0708);
        key_id[0] = 0x7f;
        assert_eq!(tree_id(&key_id), 0x7f02_0304_0506_0708);
        assert_eq!(tree_id(&[0xff; 32]), i64::MAX);
    }

    #[test]
    fn query_values_are_found_and_repeats_refused() {
        let q = Some("firstSize=1&lastSize=20&flag&empty=");
        assert_eq!(query_value(q, "firstSize").unwrap(), Some("1"));
        assert_eq!(query_value(q, "lastSize").unwrap(), Some("20"));
        assert_eq!(query_value(q, "flag").unwrap(), Some(""));
        assert_eq!(query_value(q, "empty").unwrap(), Some(""));
        assert_eq!(query_value(q, "missing").unwrap(), None);
        assert_eq!(query_value(None, "x").unwrap(), None);
        assert_eq!(query_value(Some("&&a=1&"), "a").unwrap(), Some("1"));
        let repeated = query_value(Some("a=1&a=1"), "a").unwrap_err();
        assert_eq!(repeated.status, StatusCode::BAD_REQUEST);
        assert!(repeated.message.contains("more than once"));
    }

    #[test]
    fn query_numbers_are_plain_non_negative_int64() {
        let number = |q: &str| query_number(Some(q), "n");
        assert_eq!(number("n=0").unwrap(), Some(0));
        assert_eq!(number("n=42").unwrap(), Some(42));
        assert_eq!(
            number("n=9223372036854775807").unwrap(),
            Some(9_223_372_036_854_775_807)
        );
        assert_eq!(number("m=1").unwrap(), None);
        for bad in [
            "n=",
            "n=-1",
            "n=+1",
            "n=1.0",
            "n=0x10",
            "n=%31",
            "n=1e3",
            "n= 1",
            "n=9223372036854775808",
            "n=99999999999999999999",
        ] {
            let error = number(bad).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(error.message.contains("`n`"), "{bad}: {}", error.message);
        }
    }

    #[test]
    fn content_type_must_be_json_with_any_parameters() {
        let headers = |value: Option<&str>| {
            let mut map = HeaderMap::new();
            if let Some(v) = value {
                map.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            }
            map
        };
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            " application/json ",
        ] {
            assert!(require_json(&headers(Some(ok))).is_ok(), "{ok}");
        }
        for bad in [
            Some("text/plain"),
            Some("application/jsonx"),
            Some("application/json-patch+json"),
            Some(""),
            None,
        ] {
            let error = require_json(&headers(bad)).unwrap_err();
            assert_eq!(error.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad:?}");
            assert!(error.message.contains("application/json"));
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(30)), 30);
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_limit() {
        let read = |body: Body, limit: usize, declared: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(len) = declared {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from_str(len).unwrap());
            }
            async move { read_body(&headers, body, limit).await }
        };
        assert_eq!(
            read(Body::from("hello"), 5, None).await.unwrap(),
            Bytes::from("hello")
        );
        assert_eq!(read(Body::empty(), 5, None).await.unwrap(), Bytes::new());
        let error = read(Body::from("hello!"), 5, None).await.unwrap_err();
        assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
        // A declared length over the limit is refused without reading.
        let error = read(Body::from("hi"), 5, Some("6")).await.unwrap_err();
        assert_eq!(error.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(error.message.contains("6 bytes"), "{}", error.message);
        // Bodies in several frames (chunked requests) are covered by tests/log_http.rs.
    }
}
