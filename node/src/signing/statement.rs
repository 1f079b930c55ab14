//! The in-toto Statement `provmesh attest` signs: one subject (the file's name and
//! SHA-256) and a predicate read from a file or, with `--slsa`, SLSA Provenance v1 built
//! from build parameters.
//!
//! The Statement and the predicate are checked by the core (`provmesh_protocol::intoto`
//! and `::slsa`) before anything is signed, so a build learns about a malformed predicate
//! from the command, not from a verifier. JSON given by the user — the predicate file,
//! `--external-parameters`, `--internal-parameters` — must be exactly one object, and an
//! object that repeats a key is refused (parsers disagree on which value wins), as the
//! core's in-toto parser refuses it.

use provmesh_protocol::intoto::{
    DigestSet, MAX_STATEMENT_JSON_LEN, ResourceDescriptor, Statement, StatementError,
};
use provmesh_protocol::slsa::{
    self, BuildDefinition, BuildMetadata, Builder, Provenance, ProvenanceError, RunDetails,
};
use serde_json::{Map, Value};

/// The parameters of a SLSA Provenance v1 predicate (`provmesh attest --slsa`).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SlsaParameters {
    /// `runDetails.builder.id`: "URI indicating the transitive closure of the trusted
    /// build platform".
    pub builder_id: String,
    /// `buildDefinition.buildType`: "the template for how to perform the build and
    /// interpret the parameters and dependencies".
    pub build_type: String,
    /// `buildDefinition.externalParameters`: a JSON object, as text.
    pub external_parameters: String,
    /// `buildDefinition.internalParameters`: a JSON object, as text.
    pub internal_parameters: Option<String>,
    /// `runDetails.metadata.invocationId`.
    pub invocation_id: Option<String>,
    /// `runDetails.metadata.startedOn`, RFC 3339 UTC.
    pub started_on: Option<String>,
    /// `runDetails.metadata.finishedOn`, RFC 3339 UTC.
    pub finished_on: Option<String>,
}

impl SlsaParameters {
    /// Parameters with the three SLSA Build L1 requirements: builder, build type and
    /// external parameters (a JSON object, as text).
    pub fn new(
        builder_id: impl Into<String>,
        build_type: impl Into<String>,
        external_parameters: impl Into<String>,
    ) -> SlsaParameters {
        SlsaParameters {
            builder_id: builder_id.into(),
            build_type: build_type.into(),
            external_parameters: external_parameters.into(),
            ..SlsaParameters::default()
        }
    }
}

/// Why no Statement was built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatementBuildError {
    /// A JSON input is larger than a Statement may be.
    #[error("{what} is {len} bytes; a Statement may be at most {max}")]
    TooLarge {
        /// Which input.
        what: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A JSON input is not exactly one JSON object.
    #[error("{what} is not one JSON object: {reason}")]
    NotObject {
        /// Which input.
        what: String,
        /// What the parser said.
        reason: String,
    },
    /// A JSON object repeats a key.
    #[error("{what} repeats an object key; give each key once")]
    DuplicateKey {
        /// Which input.
        what: String,
    },
    /// The Statement breaks a rule of in-toto Statement v1.
    #[error("the in-toto Statement is invalid: {0}")]
    Statement(#[source] StatementError),
    /// The predicate is not valid SLSA Provenance v1.
    #[error("the SLSA Provenance v1 predicate is invalid: {0}")]
    Provenance(#[source] ProvenanceError),
}

/// The Statement's subject: the artifact's `name` and its SHA-256 digest.
///
/// digest_set.md: "The named standard algorithms below use lowercase hex encoding";
/// statement.md: "Each element MUST have `digest` set."
pub fn subject(name: &str, sha256: &[u8; 32]) -> ResourceDescriptor {
    let digest: DigestSet = [("sha256".to_owned(), hex::encode(sha256))]
        .into_iter()
        .collect();
    ResourceDescriptor::with_digest(name, digest)
}

/// An in-toto Statement v1 about `subject`, as compact JSON (the DSSE payload). A
/// predicate of type SLSA Provenance v1 is checked against SLSA's rules too.
pub fn statement_json(
    subject: ResourceDescriptor,
    predicate_type: &str,
    predicate: Map<String, Value>,
) -> Result<Vec<u8>, StatementBuildError> {
    if predicate_type == slsa::PREDICATE_TYPE {
        Provenance::from_value(Value::Object(predicate.clone()))
            .map_err(StatementBuildError::Provenance)?;
    }
    Statement::new(vec![subject], predicate_type, Some(predicate))
        .to_json()
        .map_err(StatementBuildError::Statement)
}

/// A predicate document given by the user: exactly one JSON object, no repeated keys.
pub fn parse_predicate(raw: &[u8], what: &str) -> Result<Map<String, Value>, StatementBuildError> {
    strict_object(raw, what)
}

/// The SLSA Provenance v1 predicate of `parameters`, validated.
pub fn slsa_provenance(
    parameters: &SlsaParameters,
) -> Result<Map<String, Value>, StatementBuildError> {
    let external = strict_object(
        parameters.external_parameters.as_bytes(),
        "--external-parameters",
    )?;
    let internal = parameters
        .internal_parameters
        .as_deref()
        .map(|text| strict_object(text.as_bytes(), "--internal-parameters"))
        .transpose()?;
    let metadata = (parameters.invocation_id.is_some()
        || parameters.started_on.is_some()
        || parameters.finished_on.is_some())
    .then(|| BuildMetadata {
        invocation_id: parameters.invocation_id.clone(),
        started_on: parameters.started_on.clone(),
        finished_on: parameters.finished_on.clone(),
        ..BuildMetadata::default()
    });
    let provenance = Provenance {
        build_definition: BuildDefinition {
            build_type: parameters.build_type.clone(),
            external_parameters: Some(external),
            internal_parameters: internal,
            ..BuildDefinition::default()
        },
        run_details: RunDetails {
            builder: Builder {
                id: parameters.builder_id.clone(),
                ..Builder::default()
            },
            metadata,
            ..RunDetails::default()
        },
        ..Provenance::default()
    };
    provenance
        .validate()
        .map_err(StatementBuildError::Provenance)?;
    provenance
        .to_predicate()
        .map_err(StatementBuildError::Provenance)
}

/// Exactly one JSON object, whose keys are unique at every depth.
///
/// serde_json keeps the last of two equal keys; the core's strict in-toto parser refuses
/// them, and is reached by parsing the object as the predicate of a minimal Statement.
/// It is parsed alone first, so nothing after the object can reach the wrapper.
fn strict_object(raw: &[u8], what: &str) -> Result<Map<String, Value>, StatementBuildError> {
    /// Everything of the wrapping Statement but the predicate.
    const WRAPPER: &str = concat!(
        r#"{"_type":"https://in-toto.io/Statement/v1","#,
        r#""subject":[{"digest":{"sha256":"#,
        r#""0000000000000000000000000000000000000000000000000000000000000000"}}],"#,
        r#""predicateType":"https://provmesh.invalid/strict-json","predicate":"#
    );
    let max = MAX_STATEMENT_JSON_LEN - WRAPPER.len() - 1;
    if raw.len() > max {
        return Err(StatementBuildError::TooLarge {
            what: what.to_owned(),
            len: raw.len(),
            max,
        });
    }
    let object: Map<String, Value> =
        serde_json::from_slice(raw).map_err(|e| StatementBuildError::NotObject {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    let mut wrapped = Vec::with_capacity(WRAPPER.len() + raw.len() + 1);
    wrapped.extend_from_slice(WRAPPER.as_bytes());
    wrapped.extend_from_slice(raw);
    wrapped.push(b'}');
    match Statement::from_json(&wrapped) {
        Ok(_) => Ok(object),
        Err(StatementError::DuplicateKey) => Err(StatementBuildError::DuplicateKey {
            what: what.to_owned(),
        }),
        Err(other) => Err(StatementBuildError::NotObject {
            what: what.to_owned(),
            reason: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: [u8; 32] = [0xab; 32];

    #[test]
    fn statements_have_the_file_as_subject() {
        let predicate = parse_predicate(br#"{"k": [1, 2]}"#, "p").unwrap();
        let json = statement_json(
            subject("app.tar", &DIGEST),
            "https://provmesh.example/test/v1",
            predicate,
        )
        .unwrap();
        let statement = Statement::from_json(&json).unwrap();
        assert!(statement.matches_sha256(&DIGEST));
        assert_eq!(statement.subject[0].name(), Some("app.tar"));
        assert_eq!(statement.predicate_type, "https://provmesh.example/test/v1");
        assert_eq!(statement.predicate.unwrap()["k"], serde_json::json!([1, 2]));
    }

    #[test]
    fn predicates_are_one_object_with_unique_keys() {
        assert!(matches!(
            parse_predicate(br#"[1]"#, "p"),
            Err(StatementBuildError::NotObject { .. })
        ));
        assert!(matches!(
            parse_predicate(br#"{"a":1}, "subject": []"#, "p"),
            Err(StatementBuildError::NotObject { .. })
        ));
        assert!(matches!(
            parse_predicate(br#"{"a":{"b":1,"b":2}}"#, "p"),
            Err(StatementBuildError::DuplicateKey { .. })
        ));
        assert!(parse_predicate(br#"{"a":{"b":1,"c":2}}"#, "p").is_ok());
    }

    #[test]
    fn a_bad_predicate_type_is_refused() {
        assert!(matches!(
            statement_json(subject("f", &DIGEST), "not a uri", Map::new()),
            Err(StatementBuildError::Statement(_))
        ));
    }

    #[test]
    fn slsa_provenance_from_parameters() {
        let mut parameters = SlsaParameters::new(
            "https://ci.org-a.example/builder/v1",
            "https://provmesh.example/build/make/v1",
            r#"{"repository":"git+https://git.org-a.example/app","ref":"refs/heads/main"}"#,
        );
        parameters.invocation_id = Some("run-42".into());
        parameters.started_on = Some("2025-01-02T03:04:05Z".into());
        let predicate = slsa_provenance(&parameters).unwrap();
        let json =
            statement_json(subject("app", &DIGEST), slsa::PREDICATE_TYPE, predicate).unwrap();
        let statement = Statement::from_json(&json).unwrap();
        let provenance = Provenance::from_statement(&statement).unwrap();
        assert_eq!(
            provenance.builder_id(),
            "https://ci.org-a.example/builder/v1"
        );
        assert_eq!(provenance.invocation_id(), Some("run-42"));
        assert_eq!(
            provenance.external_parameters().unwrap()["ref"],
            "refs/heads/main"
        );
    }

    #[test]
    fn slsa_requirements_are_enforced() {
        let empty_external = SlsaParameters::new("https://b.example", "https://t.example", "{}");
        assert!(matches!(
            slsa_provenance(&empty_external),
            Err(StatementBuildError::Provenance(
                ProvenanceError::MissingExternalParameters
            ))
        ));
        let bad_builder = SlsaParameters::new("not a uri", "https://t.example", r#"{"a":1}"#);
        assert!(matches!(
            slsa_provenance(&bad_builder),
            Err(StatementBuildError::Provenance(
                ProvenanceError::InvalidBuilderId(_)
            ))
        ));
        let mut bad_time =
            SlsaParameters::new("https://b.example", "https://t.example", r#"{"a":1}"#);
        bad_time.finished_on = Some("yesterday".into());
        assert!(matches!(
            slsa_provenance(&bad_time),
            Err(StatementBuildError::Provenance(
                ProvenanceError::InvalidTimestamp { .. }
            ))
        ));
        // A predicate file that claims to be SLSA is held to SLSA's rules too.
        assert!(matches!(
            statement_json(subject("f", &DIGEST), slsa::PREDICATE_TYPE, Map::new()),
            Err(StatementBuildError::Provenance(_))
        ));
    }
}
