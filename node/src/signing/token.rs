//! The identity token a build presents to the CA: a JWT-SVID for audience `sigstore`.
//!
//! Sources, in the order the command line offers them: a token given literally, a token
//! file (what `spire-agent api fetch jwt`, a CI system or `provmesh identity jwt` wrote;
//! `-` is standard input), or the identity source of a node configuration — the dev CA
//! or the SPIRE agent behind [`Identity`], asked for the given SPIFFE ID or its default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use provmesh_protocol::ca::request::SIGSTORE_AUDIENCE;
use provmesh_protocol::spiffe::SpiffeId;
use provmesh_protocol::spiffe::jwt::MAX_JWT_SVID_LEN;

use crate::bounded::{read_at_most, read_file_at_most};
use crate::config::Config;
use crate::identity::{Identity, JwtSvidFetchError, OpenIdentityError};
use crate::shutdown;

/// The most bytes read from a token file: a JWT-SVID of the largest size accepted, and
/// room for the whitespace and line ending around it.
const MAX_TOKEN_FILE_LEN: usize = MAX_JWT_SVID_LEN + 1024;

/// How long the identity source's task gets to stop once the token is issued.
const IDENTITY_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the identity token comes from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TokenSource {
    /// The token itself (`--identity-token`).
    Literal(String),
    /// A file holding the token (`--identity-token-file`); `-` is standard input.
    File(PathBuf),
    /// The identity source of a node configuration (`--config`): a JWT-SVID for
    /// `spiffe_id`, or for the source's default identity when `None`.
    Node {
        /// The configuration.
        config: Box<Config>,
        /// The SPIFFE ID to ask for.
        spiffe_id: Option<SpiffeId>,
    },
}

/// Why no identity token was obtained.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No source was given.
    #[error(
        "no identity token: give --identity-token-file FILE (or --identity-token TOKEN) with a \
         JWT-SVID for audience \"{SIGSTORE_AUDIENCE}\", or --config FILE so the node's identity \
         source (dev CA or SPIRE agent) issues one"
    )]
    NoSource,
    /// The token file could not be read.
    #[error("cannot read the identity token from {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The token is empty.
    #[error("the identity token from {0} is empty")]
    Empty(String),
    /// The token is longer than any JWT-SVID the CA accepts.
    #[error("the identity token from {from} is longer than {max} bytes; it is not a JWT-SVID")]
    TooLong {
        /// Where it came from.
        from: String,
        /// The limit.
        max: usize,
    },
    /// The token is not a compact JWS (three base64url parts).
    #[error("the identity token from {0} is not a JWT (three dot-separated base64url parts)")]
    NotJwt(String),
    /// The configured identity source did not open.
    #[error("cannot open the identity source of the configuration: {0}")]
    Open(#[source] OpenIdentityError),
    /// The identity source did not issue a token.
    #[error("the identity source did not issue a JWT-SVID: {0}")]
    Fetch(#[source] JwtSvidFetchError),
}

impl TokenSource {
    /// The token, trimmed of surrounding whitespace and checked to look like a JWT; the
    /// CA checks everything else.
    pub async fn obtain(&self) -> Result<String, TokenError> {
        match self {
            TokenSource::Literal(token) => check("--identity-token", token.trim()),
            TokenSource::File(path) => {
                let from = path.display().to_string();
                let text = read_token_file(path)?;
                check(&from, text.trim())
            }
            TokenSource::Node { config, spiffe_id } => {
                let token = from_identity_source(config, spiffe_id.as_ref()).await?;
                check("the identity source", token.trim())
            }
        }
    }
}

fn read_token_file(path: &Path) -> Result<String, TokenError> {
    let result = if path.as_os_str() == "-" {
        read_at_most(std::io::stdin().lock(), MAX_TOKEN_FILE_LEN)
    } else {
        read_file_at_most(path, MAX_TOKEN_FILE_LEN)
    };
    let bytes = result
        .map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| TokenError::TooLong {
            from: path.display().to_string(),
            max: MAX_JWT_SVID_LEN,
        })?;
    String::from_utf8(bytes).map_err(|_| TokenError::NotJwt(path.display().to_string()))
}

/// JWT-SVID §3: "JWT-SVIDs MUST be serialized using the JWS Compact Serialization";
/// RFC 7515 §7.1: three base64url parts separated by dots.
fn check(from: &str, token: &str) -> Result<String, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Empty(from.to_owned()));
    }
    if token.len() > MAX_JWT_SVID_LEN {
        return Err(TokenError::TooLong {
            from: from.to_owned(),
            max: MAX_JWT_SVID_LEN,
        });
    }
    let base64url = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|p| base64url(p)) {
        return Err(TokenError::NotJwt(from.to_owned()));
    }
    Ok(token.to_owned())
}

/// Opens the configuration's identity source, asks it for one JWT-SVID, and stops it.
async fn from_identity_source(
    config: &Config,
    spiffe_id: Option<&SpiffeId>,
) -> Result<String, TokenError> {
    let (trigger, stop) = shutdown::channel();
    let (identity, task) = Identity::open(config, stop)
        .await
        .map_err(TokenError::Open)?;
    // The task keeps a SPIRE source connected while the token is fetched.
    let task = tokio::spawn(task);
    let token = identity.jwt_svid(spiffe_id, SIGSTORE_AUDIENCE).await;
    trigger.trigger();
    drop(identity);
    if tokio::time::timeout(IDENTITY_STOP_TIMEOUT, task)
        .await
        .is_err()
    {
        tracing::debug!("the identity source did not stop in time; leaving it");
    }
    token.map_err(TokenError::Fetch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_be_compact_jws() {
        assert_eq!(check("t", "a.b.c").unwrap(), "a.b.c");
        assert!(matches!(check("t", ""), Err(TokenError::Empty(_))));
        assert!(matches!(check("t", "a.b"), Err(TokenError::NotJwt(_))));
        assert!(matches!(check("t", "a..c"), Err(TokenError::NotJwt(_))));
        assert!(matches!(check("t", "a.b.c.d"), Err(TokenError::NotJwt(_))));
        assert!(matches!(check("t", "a.b=.c"), Err(TokenError::NotJwt(_))));
        let long = format!("a.{}.c", "b".repeat(MAX_JWT_SVID_LEN));
        assert!(matches!(check("t", &long), Err(TokenError::TooLong { .. })));
    }

    #[tokio::test]
    async fn token_files_are_trimmed_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  x.y.z\n").unwrap();
        let token = TokenSource::File(path.clone()).obtain().await.unwrap();
        assert_eq!(token, "x.y.z");
        std::fs::write(&path, vec![b'a'; MAX_TOKEN_FILE_LEN + 1]).unwrap();
        assert!(matches!(
            TokenSource::File(path).obtain().await,
            Err(TokenError::TooLong { .. })
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            TokenSource::File(missing).obtain().await,
            Err(TokenError::Read { .. })
        ));
    }
}
