//! # SLSA Provenance v1 predicate
//!
//! This module owns the typed form of the SLSA Build Provenance predicate,
//! `predicateType` = `https://slsa.dev/provenance/v1` ([`Provenance`]): its
//! `buildDefinition`, `runDetails`, `builder` and `metadata`, with validation of
//! the fields SLSA requires and accessors such as [`Provenance::builder_id`].
//!
//! Specification: SLSA v1.0/v1.1 "Build: Provenance"
//! (<https://slsa.dev/spec/v1.1/provenance>, `spec/build-provenance.md` of
//! <https://github.com/slsa-framework/slsa>). It follows the in-toto parsing rules,
//! quoted there: "Consumers MUST ignore unrecognized fields unless otherwise noted"
//! and "Unset, null, and empty field values MUST be interpreted equivalently."
//! Unrecognised and extension fields are kept in `extra` maps and written back.
//!
//! Timestamps stay strings; they are checked to be RFC 3339 UTC ("Z") without a
//! clock. The predicate is bounded by the Statement that carries it
//! ([`crate::intoto::MAX_STATEMENT_JSON_LEN`]) or, parsed alone, by
//! [`MAX_PREDICATE_JSON_LEN`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::intoto::{
    ResourceDescriptor, ResourceDescriptorError, Statement, StrictJsonError, is_type_uri,
    is_utc_timestamp, parse_strict_json,
};

/// The predicate type of SLSA Provenance v1: "Always use the above string for
/// `predicateType` rather than what is in the URL bar."
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// Largest predicate JSON document [`Provenance::from_json`] accepts (16 MiB).
pub const MAX_PREDICATE_JSON_LEN: usize = 16 * 1024 * 1024;

/// Most entries in each ResourceDescriptor list (`resolvedDependencies`,
/// `builderDependencies`, `byproducts`).
pub const MAX_DESCRIPTORS: usize = 65_536;

/// The SLSA Provenance v1 predicate.
///
/// "Provenance is an attestation that a particular build platform produced a set of
/// software artifacts through execution of the `buildDefinition`."
/// "REQUIRED for SLSA Build L1: `buildDefinition`, `runDetails`".
///
/// The serde impls alone do not validate: use [`Provenance::from_statement`] or
/// [`Provenance::from_json`], or call [`Provenance::validate`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// "The input to the build."
    #[serde(default, deserialize_with = "null_as_default")]
    pub build_definition: BuildDefinition,
    /// "Details specific to this particular execution of the build."
    #[serde(default, deserialize_with = "null_as_default")]
    pub run_details: RunDetails,
    /// Unrecognised (extension) fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// "The BuildDefinition describes all of the inputs to the build."
/// "REQUIRED for SLSA Build L1: `buildType`, `externalParameters`".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// "Identifies the template for how to perform the build and interpret the
    /// parameters and dependencies." A TypeURI.
    #[serde(default, deserialize_with = "null_as_default")]
    pub build_type: String,
    /// "The parameters that are under external control, such as those set by a
    /// user or tenant of the build platform." An object; unset is the same as `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_parameters: Option<Map<String, Value>>,
    /// "The parameters that are under the control of the entity represented by
    /// `builder.id`." An object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_parameters: Option<Map<String, Value>>,
    /// "Unordered collection of artifacts needed at build time."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_dependencies: Option<Vec<ResourceDescriptor>>,
    /// Unrecognised (extension) fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// "Details specific to this particular execution of the build."
/// "REQUIRED for SLSA Build L1: `builder`".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    /// "Identifies the build platform that executed the invocation".
    #[serde(default, deserialize_with = "null_as_default")]
    pub builder: Builder,
    /// "Metadata about this particular execution of the build."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
    /// "Additional artifacts generated during the build that are not considered the
    /// 'output' of the build".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byproducts: Option<Vec<ResourceDescriptor>>,
    /// Unrecognised (extension) fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The build platform: "the transitive closure of all the entities that are, by
/// necessity, trusted to faithfully run the build and record the provenance."
/// "REQUIRED for SLSA Build L1: `id`".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    /// "URI indicating the transitive closure of the trusted build platform."
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// "Dependencies used by the orchestrator that are not run within the workload".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_dependencies: Option<Vec<ResourceDescriptor>>,
    /// "Map of names of components of the build platform to their version."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<BTreeMap<String, String>>,
    /// Unrecognised (extension) fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// "Metadata about this particular execution of the build." "REQUIRED: (none)".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    /// "Identifies this particular build invocation"; opaque, case-sensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// "The timestamp of when the build started." RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    /// "The timestamp of when the build completed." RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
    /// Unrecognised (extension) fields.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Reads `null` as the default value: "Unset, null, and empty field values MUST be
/// interpreted equivalently."
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Which ResourceDescriptor list an invalid entry was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DescriptorList {
    /// `buildDefinition.resolvedDependencies`.
    ResolvedDependencies,
    /// `runDetails.builder.builderDependencies`.
    BuilderDependencies,
    /// `runDetails.byproducts`.
    Byproducts,
}

impl std::fmt::Display for DescriptorList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DescriptorList::ResolvedDependencies => "resolvedDependencies",
            DescriptorList::BuilderDependencies => "builderDependencies",
            DescriptorList::Byproducts => "byproducts",
        })
    }
}

/// Why a SLSA Provenance v1 predicate was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvenanceError {
    /// The Statement's `predicateType` is not `https://slsa.dev/provenance/v1`.
    #[error("predicateType is {0:?}, not {PREDICATE_TYPE}")]
    WrongPredicateType(String),
    /// The predicate document is longer than [`MAX_PREDICATE_JSON_LEN`].
    #[error("predicate is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Length of the rejected document.
        len: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// Not JSON, or a field has the wrong JSON type (e.g. `externalParameters`
    /// that is not an object, `builder.version` values that are not strings).
    #[error("predicate is not valid JSON of the expected shape: {0}")]
    Json(#[source] serde_json::Error),
    /// A JSON object in the predicate has the same key twice.
    #[error("predicate JSON has a duplicate object key")]
    DuplicateKey,
    /// `buildDefinition.buildType` is unset or empty.
    #[error("buildDefinition.buildType is missing")]
    MissingBuildType,
    /// `buildDefinition.buildType` is not a case-normalized URI.
    #[error("buildDefinition.buildType {0:?} is not a TypeURI")]
    InvalidBuildType(String),
    /// `buildDefinition.externalParameters` is unset, null or `{}`.
    #[error("buildDefinition.externalParameters is missing")]
    MissingExternalParameters,
    /// `runDetails.builder.id` is unset or empty.
    #[error("runDetails.builder.id is missing")]
    MissingBuilderId,
    /// `runDetails.builder.id` is not a case-normalized URI.
    #[error("runDetails.builder.id {0:?} is not a TypeURI")]
    InvalidBuilderId(String),
    /// `startedOn` or `finishedOn` is not an RFC 3339 UTC timestamp.
    #[error("runDetails.metadata.{field} {value:?} is not an RFC 3339 UTC timestamp")]
    InvalidTimestamp {
        /// `startedOn` or `finishedOn`.
        field: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A ResourceDescriptor list has more than [`MAX_DESCRIPTORS`] entries.
    #[error("{list} has more than {max} entries")]
    TooManyDescriptors {
        /// The list.
        list: DescriptorList,
        /// The limit.
        max: usize,
    },
    /// An entry of a ResourceDescriptor list is invalid.
    #[error("{list}[{index}] is invalid: {source}")]
    InvalidDescriptor {
        /// The list.
        list: DescriptorList,
        /// Index of the entry.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: ResourceDescriptorError,
    },
}

/// Validates every descriptor of an optional list.
fn validate_list(
    list: DescriptorList,
    descriptors: &Option<Vec<ResourceDescriptor>>,
) -> Result<(), ProvenanceError> {
    let Some(descriptors) = descriptors else {
        return Ok(());
    };
    if descriptors.len() > MAX_DESCRIPTORS {
        return Err(ProvenanceError::TooManyDescriptors {
            list,
            max: MAX_DESCRIPTORS,
        });
    }
    for (index, descriptor) in descriptors.iter().enumerate() {
        descriptor
            .validate()
            .map_err(|source| ProvenanceError::InvalidDescriptor {
                list,
                index,
                source,
            })?;
    }
    Ok(())
}

/// Validates an optional timestamp field ("Unset, null, and empty" are the same).
fn validate_timestamp(field: &'static str, value: &Option<String>) -> Result<(), ProvenanceError> {
    match value.as_deref() {
        None | Some("") => Ok(()),
        Some(v) if is_utc_timestamp(v) => Ok(()),
        Some(v) => Err(ProvenanceError::InvalidTimestamp {
            field,
            value: v.to_owned(),
        }),
    }
}

impl Provenance {
    /// The SLSA Provenance v1 predicate of an in-toto Statement, after checking that
    /// its `predicateType` is [`PREDICATE_TYPE`].
    pub fn from_statement(statement: &Statement) -> Result<Provenance, ProvenanceError> {
        if statement.predicate_type != PREDICATE_TYPE {
            return Err(ProvenanceError::WrongPredicateType(
                statement.predicate_type.clone(),
            ));
        }
        // "Unset is treated the same as set-but-empty": a missing predicate is `{}`,
        // which then fails validation for its missing buildType.
        let predicate = statement.predicate.clone().unwrap_or_default();
        Provenance::from_value(Value::Object(predicate))
    }

    /// Parses and validates a predicate document (the value of `predicate`, not a
    /// whole Statement). Duplicate object keys are rejected.
    pub fn from_json(bytes: &[u8]) -> Result<Provenance, ProvenanceError> {
        if bytes.len() > MAX_PREDICATE_JSON_LEN {
            return Err(ProvenanceError::TooLarge {
                len: bytes.len(),
                max: MAX_PREDICATE_JSON_LEN,
            });
        }
        let value = parse_strict_json(bytes).map_err(|e| match e {
            StrictJsonError::Json(e) => ProvenanceError::Json(e),
            StrictJsonError::DuplicateKey => ProvenanceError::DuplicateKey,
        })?;
        Provenance::from_value(value)
    }

    /// Validates and converts a parsed predicate value.
    pub fn from_value(value: Value) -> Result<Provenance, ProvenanceError> {
        let provenance: Provenance =
            serde_json::from_value(value).map_err(ProvenanceError::Json)?;
        provenance.validate()?;
        Ok(provenance)
    }

    /// Checks the fields SLSA requires and the formats it prescribes.
    ///
    /// - `buildDefinition.buildType` set and a TypeURI, and
    ///   `buildDefinition.externalParameters` set ("REQUIRED for SLSA Build L1:
    ///   `buildType`, `externalParameters`"). Under the parsing rules an unset, null
    ///   or empty (`{}`) `externalParameters` are the same thing, so all three are
    ///   refused, as the in-toto reference validator does.
    /// - `runDetails.builder.id` set and a TypeURI ("REQUIRED for SLSA Build L1:
    ///   `id`").
    /// - `metadata.startedOn` / `finishedOn`, if set, RFC 3339 UTC timestamps.
    /// - Every ResourceDescriptor valid.
    pub fn validate(&self) -> Result<(), ProvenanceError> {
        let def = &self.build_definition;
        if def.build_type.is_empty() {
            return Err(ProvenanceError::MissingBuildType);
        }
        if !is_type_uri(&def.build_type) {
            return Err(ProvenanceError::InvalidBuildType(def.build_type.clone()));
        }
        // externalParameters: "the external interface to the build. In SLSA, these
        // values are untrusted; they MUST be included in the provenance and MUST be
        // verified downstream."
        if def.external_parameters.as_ref().is_none_or(Map::is_empty) {
            return Err(ProvenanceError::MissingExternalParameters);
        }
        let builder = &self.run_details.builder;
        if builder.id.is_empty() {
            return Err(ProvenanceError::MissingBuilderId);
        }
        if !is_type_uri(&builder.id) {
            return Err(ProvenanceError::InvalidBuilderId(builder.id.clone()));
        }
        if let Some(metadata) = &self.run_details.metadata {
            validate_timestamp("startedOn", &metadata.started_on)?;
            validate_timestamp("finishedOn", &metadata.finished_on)?;
        }
        validate_list(
            DescriptorList::ResolvedDependencies,
            &def.resolved_dependencies,
        )?;
        validate_list(
            DescriptorList::BuilderDependencies,
            &builder.builder_dependencies,
        )?;
        validate_list(DescriptorList::Byproducts, &self.run_details.byproducts)?;
        Ok(())
    }

    /// `runDetails.builder.id`: "URI indicating the transitive closure of the
    /// trusted build platform." Consumers "MUST accept only specific signer-builder
    /// pairs".
    pub fn builder_id(&self) -> &str {
        &self.run_details.builder.id
    }

    /// `buildDefinition.buildType`.
    pub fn build_type(&self) -> &str {
        &self.build_definition.build_type
    }

    /// `buildDefinition.externalParameters`, if set.
    pub fn external_parameters(&self) -> Option<&Map<String, Value>> {
        self.build_definition.external_parameters.as_ref()
    }

    /// `runDetails.metadata.invocationId`, if set and non-empty.
    pub fn invocation_id(&self) -> Option<&str> {
        self.run_details
            .metadata
            .as_ref()
            .and_then(|m| m.invocation_id.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// The predicate as a JSON value (extension fields included).
    pub fn to_value(&self) -> Result<Value, ProvenanceError> {
        serde_json::to_value(self).map_err(ProvenanceError::Json)
    }

    /// The predicate as a JSON object, ready for [`Statement::new`].
    pub fn to_predicate(&self) -> Result<Map<String, Value>, ProvenanceError> {
        match self.to_value()? {
            Value::Object(map) => Ok(map),
            // A struct always serializes to an object; keep the type total anyway.
            _ => Ok(Map::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Value {
        serde_json::json!({
            "buildDefinition": {
                "buildType": "https://example.com/build/v1",
                "externalParameters": {"source": "git+https://example.com/repo"}
            },
            "runDetails": {"builder": {"id": "https://example.com/builder"}}
        })
    }

    #[test]
    fn minimal_predicate_is_valid() {
        let p = Provenance::from_value(minimal()).unwrap();
        assert_eq!(p.builder_id(), "https://example.com/builder");
        assert_eq!(p.build_type(), "https://example.com/build/v1");
        assert_eq!(p.to_value().unwrap(), minimal());
    }

    #[test]
    fn missing_required_fields() {
        let mut v = minimal();
        v["runDetails"]["builder"]["id"] = Value::String(String::new());
        assert!(matches!(
            Provenance::from_value(v),
            Err(ProvenanceError::MissingBuilderId)
        ));
        let mut v = minimal();
        v["buildDefinition"] = Value::Null;
        assert!(matches!(
            Provenance::from_value(v),
            Err(ProvenanceError::MissingBuildType)
        ));
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("buildDefinition");
        assert!(matches!(
            Provenance::from_value(v),
            Err(ProvenanceError::MissingBuildType)
        ));
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("runDetails");
        assert!(matches!(
            Provenance::from_value(v),
            Err(ProvenanceError::MissingBuilderId)
        ));
    }

    #[test]
    fn external_parameters_must_be_an_object() {
        let mut v = minimal();
        v["buildDefinition"]["externalParameters"] = Value::String("x".into());
        assert!(matches!(
            Provenance::from_value(v),
            Err(ProvenanceError::Json(_))
        ));
        for empty in [Value::Null, serde_json::json!({})] {
            let mut v = minimal();
            v["buildDefinition"]["externalParameters"] = empty;
            assert!(matches!(
                Provenance::from_value(v),
                Err(ProvenanceError::MissingExternalParameters)
            ));
        }
    }

    #[test]
    fn timestamps_are_checked() {
        let mut v = minimal();
        v["runDetails"]["metadata"] =
            serde_json::json!({"startedOn": "2024-05-21T22:56:17Z", "finishedOn": "yesterday"});
        assert!(matches!(
            Provenance::from_value(v),
            Err(ProvenanceError::InvalidTimestamp {
                field: "finishedOn",
                ..
            })
        ));
    }
}
