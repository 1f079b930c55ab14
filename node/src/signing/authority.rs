//! The HTTP client of a domain's authority, for signers: its code-signing CA (Fulcio v2),
//! its log (Rekor v1) and the domain's trusted root (a provmesh route).
//!
//! | call | route |
//! | --- | --- |
//! | [`AuthorityClient::signing_certificate`] | `POST /api/v2/signingCert` |
//! | [`AuthorityClient::append`] | `POST /api/v1/log/entries` |
//! | [`AuthorityClient::trusted_root`] | `GET /api/v2/provmesh/trustedRoot` |
//! | [`AuthorityClient::trust_domain`] | `GET /api/v2/configuration` |
//!
//! Plain HTTP only: this build has no TLS client (reqwest without a TLS backend), so the
//! authority is reached on loopback, a cluster network or through a TLS-terminating
//! proxy. Every answer is read up to a bound before it is parsed, and every refusal
//! carries the server's own message (Fulcio's and Rekor's `{"code":…,"message":…}`).

use std::time::Duration;

use provmesh_protocol::ca::request::{
    Credential, KeyProof, MAX_REQUEST_JSON_LEN, SigningCertRequest, parse_fulcio_response,
};
use provmesh_protocol::log::entry::{LogEntryResponse, LogEntryView};
use provmesh_protocol::sigstore::{DEFAULT_MAX_TRUSTED_ROOT_LEN, TrustedRoot, parse_trusted_root};
use provmesh_protocol::spiffe::TrustDomain;

use crate::config::Config;

/// How long connecting to the authority may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take in all. The CA and the log answer once the entry is
/// durable under a signed checkpoint: milliseconds normally, a batch delay under load.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest log answer read: one `LogEntry` (a canonical body of at most 64 KiB in
/// base64, a checkpoint and at most 64 proof hashes).
const MAX_LOG_ANSWER_LEN: usize = 1024 * 1024;
/// The longest server message quoted in an error.
const MAX_MESSAGE_LEN: usize = 1000;

/// Why a call to the authority failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorityError {
    /// The authority URL is not one this client can use.
    #[error("authority URL {url:?} {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No answer: refused connection, unknown host, timeout.
    #[error("cannot reach the authority at {url}: {reason}")]
    Unreachable {
        /// The request URL.
        url: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The authority answered with an error status.
    #[error("{service} at {url} refused {action} ({status}): {message}")]
    Refused {
        /// Which part of the authority: "the CA", "the domain log", "the authority".
        service: &'static str,
        /// What was asked.
        action: &'static str,
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The answer is not what the route returns.
    #[error("the answer of {url} is unusable: {reason}")]
    BadAnswer {
        /// The request URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A client of one authority. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthorityClient {
    base: String,
    client: reqwest::Client,
}

impl AuthorityClient {
    /// A client of the authority at `base_url` (`http://host:port`, optionally with a
    /// path prefix).
    pub fn new(base_url: &str) -> Result<AuthorityClient, AuthorityError> {
        let bad = |reason: &str| AuthorityError::Url {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = reqwest::Url::parse(base_url).map_err(|e| bad(&format!("is invalid: {e}")))?;
        match parsed.scheme() {
            "http" => {}
            "https" => {
                return Err(bad(
                    "is https, but this build of provmesh has no TLS client; reach the \
                     authority over plain HTTP (loopback, a cluster network, or a \
                     TLS-terminating proxy)",
                ));
            }
            _ => return Err(bad("must start with http://")),
        }
        if parsed.host().is_none() {
            return Err(bad("has no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| bad(&format!("cannot be used: {e}")))?;
        Ok(AuthorityClient {
            base: base_url.trim_end_matches('/').to_owned(),
            client,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Asks the CA for a certificate of the key in `csr_der` (a PKCS #10 request, whose
    /// signature proves possession of the key), proving the identity with the JWT-SVID
    /// `token`. Returns the chain, DER, leaf first.
    ///
    /// Fulcio v2 `CreateSigningCertificateRequest` in its JSON mapping:
    /// `credentials.oidcIdentityToken` and `certificateSigningRequest`, "PKCS#10
    /// PEM-encoded certificate signing request" as protobuf `bytes` (base64).
    pub async fn signing_certificate(
        &self,
        token: &str,
        csr_der: &[u8],
    ) -> Result<Vec<Vec<u8>>, AuthorityError> {
        let url = format!("{}/api/v2/signingCert", self.base);
        let body = certificate_request_json(token, csr_der);
        let request = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let answer = self
            .send(request, &url, "the CA", "the certificate request")
            .await?;
        let bytes = read_limited(answer, MAX_REQUEST_JSON_LEN, &url).await?;
        let chain = parse_fulcio_response(&bytes).map_err(|e| AuthorityError::BadAnswer {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if chain.is_empty() {
            return Err(AuthorityError::BadAnswer {
                url,
                reason: "the answer holds no certificate".into(),
            });
        }
        Ok(chain)
    }

    /// Submits a proposed entry (the JSON body of Rekor's `createLogEntry`) and returns
    /// the log's answer for it: the entry's UUID and view (body, integrated time, SET,
    /// inclusion proof with its checkpoint).
    pub async fn append(
        &self,
        proposed_json: Vec<u8>,
    ) -> Result<(String, LogEntryView), AuthorityError> {
        let url = format!("{}/api/v1/log/entries", self.base);
        let request = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(proposed_json);
        let answer = self
            .send(request, &url, "the domain log", "the entry")
            .await?;
        let bytes = read_limited(answer, MAX_LOG_ANSWER_LEN, &url).await?;
        let bad = |reason: String| AuthorityError::BadAnswer {
            url: url.clone(),
            reason,
        };
        // openapi.yaml `createLogEntry`: 201 with a `LogEntry`, one member keyed by UUID.
        let response: LogEntryResponse = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not a Rekor LogEntry: {e}")))?;
        let mut entries = response.0.into_iter();
        match (entries.next(), entries.next()) {
            (Some(entry), None) => Ok(entry),
            _ => Err(bad("a LogEntry answer must hold exactly one entry".into())),
        }
    }

    /// The domain's trusted root, as the authority serves it.
    pub async fn trusted_root(&self) -> Result<TrustedRoot, AuthorityError> {
        let url = format!("{}/api/v2/provmesh/trustedRoot", self.base);
        let answer = self
            .send(
                self.client.get(&url),
                &url,
                "the authority",
                "to serve the trusted root",
            )
            .await?;
        let bytes = read_limited(answer, DEFAULT_MAX_TRUSTED_ROOT_LEN, &url).await?;
        let (root, _) = parse_trusted_root(&bytes, DEFAULT_MAX_TRUSTED_ROOT_LEN).map_err(|e| {
            AuthorityError::BadAnswer {
                url,
                reason: e.to_string(),
            }
        })?;
        Ok(root)
    }

    /// The trust domain whose identities the authority's CA certifies (Fulcio's
    /// `GET /api/v2/configuration`, `issuers[0].spiffeTrustDomain`).
    pub async fn trust_domain(&self) -> Result<TrustDomain, AuthorityError> {
        let url = format!("{}/api/v2/configuration", self.base);
        let answer = self
            .send(
                self.client.get(&url),
                &url,
                "the authority",
                "to serve its configuration",
            )
            .await?;
        let bytes = read_limited(answer, MAX_REQUEST_JSON_LEN, &url).await?;
        let bad = |reason: String| AuthorityError::BadAnswer {
            url: url.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
        let name = value
            .pointer("/issuers/0/spiffeTrustDomain")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| bad("no issuers[0].spiffeTrustDomain".into()))?;
        TrustDomain::parse(name).map_err(|e| bad(format!("trust domain {name:?}: {e}")))
    }

    /// Sends `request`; a non-success status becomes [`AuthorityError::Refused`] with
    /// the server's message.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        service: &'static str,
        action: &'static str,
    ) -> Result<reqwest::Response, AuthorityError> {
        let answer = request
            .send()
            .await
            .map_err(|e| unreachable_error(url, &e))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(answer);
        }
        let body = read_limited(answer, MAX_REQUEST_JSON_LEN, url)
            .await
            .unwrap_or_default();
        let mut message = server_message(&body);
        if status == reqwest::StatusCode::NOT_FOUND {
            message.push_str(&format!(
                " (is {} a provmesh authority with its log and CA enabled? A plain node \
                 only forwards certificate requests)",
                self.base
            ));
        }
        Err(AuthorityError::Refused {
            service,
            action,
            url: url.to_owned(),
            status: status.as_u16(),
            message,
        })
    }
}

/// The authority a configuration names: `node.authority_url` on a plain node, or the
/// node's own HTTP API when it is the authority (an unspecified listen address is
/// reached on loopback).
pub fn default_authority_url(config: &Config) -> Option<String> {
    if let Some(url) = &config.node.authority_url {
        return Some(url.clone());
    }
    if !(config.authority.enabled && config.authority.ca.enabled && config.http.enabled) {
        return None;
    }
    let mut addr = config.http.listen;
    // Port 0 is chosen when the node starts: only its ready file knows it.
    if addr.port() == 0 {
        return None;
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Some(format!("http://{addr}"))
}

/// The body of `POST /api/v2/signingCert` (see [`AuthorityClient::signing_certificate`]):
/// the JWT-SVID and a CSR, whose signature is the proof of possession.
fn certificate_request_json(token: &str, csr_der: &[u8]) -> Vec<u8> {
    SigningCertRequest::new(
        Some(Credential::JwtSvid(token.to_owned())),
        KeyProof::Csr(csr_der.to_vec()),
    )
    .to_fulcio_json()
}

/// The whole cause chain of a failed request, which reqwest's own message leaves out
/// ("error sending request" hides "Connection refused").
fn unreachable_error(url: &str, error: &reqwest::Error) -> AuthorityError {
    // reqwest's own message repeats the URL; its causes say what happened.
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let mut reason = if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    };
    if error.is_timeout() {
        reason.push_str(" (timed out)");
    }
    AuthorityError::Unreachable {
        url: url.to_owned(),
        reason,
    }
}

/// The `message` of a Fulcio or Rekor error body, or the body's text.
fn server_message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned));
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if text.is_empty() {
        return "no message".to_owned();
    }
    match text.char_indices().nth(MAX_MESSAGE_LEN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Reads an answer's body, refusing one longer than `max` bytes.
async fn read_limited(
    mut answer: reqwest::Response,
    max: usize,
    url: &str,
) -> Result<Vec<u8>, AuthorityError> {
    let too_long = || AuthorityError::BadAnswer {
        url: url.to_owned(),
        reason: format!("longer than {max} bytes"),
    };
    if answer
        .content_length()
        .is_some_and(|len| len > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer
        .chunk()
        .await
        .map_err(|e| unreachable_error(url, &e))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_plain_http_with_a_host() {
        assert_eq!(
            AuthorityClient::new("http://127.0.0.1:8080/")
                .unwrap()
                .url(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "https://authority.example",
            "ftp://authority.example",
            "127.0.0.1:8080",
            "http://a.example/?x=1",
        ] {
            assert!(
                matches!(AuthorityClient::new(bad), Err(AuthorityError::Url { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn server_messages_are_taken_from_error_json_or_text() {
        assert_eq!(
            server_message(br#"{"code":401,"message":"JWT-SVID refused: expired"}"#),
            "JWT-SVID refused: expired"
        );
        assert_eq!(server_message(b" plain text \n"), "plain text");
        assert_eq!(server_message(b""), "no message");
        let long = "x".repeat(MAX_MESSAGE_LEN + 10);
        assert_eq!(
            server_message(long.as_bytes()).chars().count(),
            MAX_MESSAGE_LEN + 1
        );
    }

    /// The request body is the one the CA parses: the token and the CSR come back out.
    #[test]
    fn the_certificate_request_is_fulcio_v2_json() {
        let csr = b"\x30\x03\x02\x01\x00".to_vec();
        let body = certificate_request_json("a.b.c", &csr);
        let parsed = SigningCertRequest::from_fulcio_json(&body, None).unwrap();
        assert_eq!(
            parsed.credential,
            Some(Credential::JwtSvid("a.b.c".to_owned()))
        );
        assert_eq!(parsed.key, KeyProof::Csr(csr));
    }
}
