//! Kubernetes admission: which container images a workload runs, and the
//! `AdmissionReview` (v1) answer once each image was judged.
//!
//! A `ValidatingAdmissionWebhook` receives an `AdmissionReview` for every object it is
//! registered for. [`AdmissionRequest::parse`] reads it (bounded, untrusted input) and
//! [`images_of`] lists every image the object would run — containers, init containers
//! and ephemeral containers — for Pods, the workload kinds that hold a Pod template
//! (Deployment, ReplicaSet, DaemonSet, StatefulSet, Job) and CronJobs.
//! [`ImageReference::parse`] splits a reference into its name, tag and digest: only a
//! digest names what will run (a tag can be moved after admission, and the kubelet pulls
//! whatever it names then), so an image without one is denied by default. The node judges
//! each digest with the provenance policy and [`review_response`] writes the answer.

use serde::Deserialize;
use serde_json::{Value, json};

/// The largest `AdmissionReview` read (the API server sends at most a few MB of object).
pub const MAX_REVIEW_BYTES: usize = 4 * 1024 * 1024;

/// The most images judged in one review.
pub const MAX_IMAGES: usize = 256;

/// Why a review cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdmissionError {
    /// Longer than [`MAX_REVIEW_BYTES`].
    #[error("the AdmissionReview is longer than {MAX_REVIEW_BYTES} bytes")]
    TooLarge,
    /// Not JSON, or not an `admission.k8s.io/v1` `AdmissionReview` with a request.
    #[error("not an admission.k8s.io/v1 AdmissionReview request: {0}")]
    Malformed(String),
    /// The object holds more than [`MAX_IMAGES`] images.
    #[error("the object runs more than {MAX_IMAGES} images")]
    TooManyImages,
}

/// The parts of an `AdmissionReview` request the webhook needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionRequest {
    /// The request's uid, echoed in the response.
    pub uid: String,
    /// The object's kind (`Pod`, `Deployment`, …).
    pub kind: String,
    /// The operation (`CREATE`, `UPDATE`, …).
    pub operation: String,
    /// The object's namespace, if any.
    pub namespace: String,
    /// The object's name, if given.
    pub name: String,
    /// The object as sent (`request.object`); `None` for a DELETE.
    pub object: Option<Value>,
}

#[derive(Deserialize)]
struct Review {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    request: Option<RequestJson>,
}

#[derive(Deserialize)]
struct RequestJson {
    uid: String,
    kind: Option<GroupVersionKind>,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    object: Option<Value>,
}

#[derive(Deserialize)]
struct GroupVersionKind {
    kind: String,
}

impl AdmissionRequest {
    /// Reads an `AdmissionReview` (JSON) as the API server sends it.
    pub fn parse(bytes: &[u8]) -> Result<AdmissionRequest, AdmissionError> {
        if bytes.len() > MAX_REVIEW_BYTES {
            return Err(AdmissionError::TooLarge);
        }
        let review: Review =
            serde_json::from_slice(bytes).map_err(|e| AdmissionError::Malformed(e.to_string()))?;
        if review.api_version != "admission.k8s.io/v1" || review.kind != "AdmissionReview" {
            return Err(AdmissionError::Malformed(format!(
                "{}/{} is not admission.k8s.io/v1 AdmissionReview",
                shorten(&review.api_version),
                shorten(&review.kind)
            )));
        }
        let request = review
            .request
            .ok_or_else(|| AdmissionError::Malformed("no request".to_owned()))?;
        if request.uid.is_empty() || request.uid.len() > 256 {
            return Err(AdmissionError::Malformed(
                "the request uid is empty or too long".to_owned(),
            ));
        }
        Ok(AdmissionRequest {
            uid: request.uid,
            kind: request.kind.map(|k| k.kind).unwrap_or_default(),
            operation: request.operation,
            namespace: request.namespace,
            name: request.name,
            object: request.object,
        })
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// One image an object runs, with where it appears (`spec.containers[app]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// The container's place, for the reasons.
    pub place: String,
    /// The reference as written.
    pub image: String,
}

/// The Pod spec of an object of `kind`, if that kind runs Pods.
fn pod_spec<'v>(kind: &str, object: &'v Value) -> Option<&'v Value> {
    let spec = object.get("spec")?;
    match kind {
        "Pod" => Some(spec),
        "Deployment"
        | "ReplicaSet"
        | "DaemonSet"
        | "StatefulSet"
        | "Job"
        | "ReplicationController" => spec.get("template")?.get("spec"),
        "CronJob" => spec
            .get("jobTemplate")?
            .get("spec")?
            .get("template")?
            .get("spec"),
        _ => None,
    }
}

/// Every image the object of `kind` would run: containers, init containers and
/// ephemeral containers, in that order. An object of a kind that runs no Pods has none.
pub fn images_of(kind: &str, object: &Value) -> Result<Vec<ImageUse>, AdmissionError> {
    let Some(spec) = pod_spec(kind, object) else {
        return Ok(Vec::new());
    };
    let mut images = Vec::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let Some(containers) = spec.get(list).and_then(Value::as_array) else {
            continue;
        };
        for (i, container) in containers.iter().enumerate() {
            if images.len() >= MAX_IMAGES {
                return Err(AdmissionError::TooManyImages);
            }
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| i.to_string(), shorten);
            // A container without an image is the API server's to refuse, not ours.
            let image = container.get("image").and_then(Value::as_str).unwrap_or("");
            images.push(ImageUse {
                place: format!("spec.{list}[{name}]"),
                image: image.to_owned(),
            });
        }
    }
    Ok(images)
}

/// An image reference split up: `registry/repository[:tag][@sha256:<hex>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// Everything before the tag and digest.
    pub name: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The SHA-256 manifest digest, if the reference pins one.
    pub sha256: Option<[u8; 32]>,
}

/// Why an image reference is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageReferenceError {
    /// Empty, too long, or with characters no reference has.
    #[error("{0:?} is not an image reference")]
    Invalid(String),
    /// A digest of another algorithm, or malformed.
    #[error("{0:?} does not pin a sha256 digest the mesh indexes")]
    Digest(String),
}

impl ImageReference {
    /// Splits `reference` (the OCI distribution reference grammar, loosely: the name is
    /// kept as written; what matters here is the digest).
    pub fn parse(reference: &str) -> Result<ImageReference, ImageReferenceError> {
        let invalid = || ImageReferenceError::Invalid(shorten(reference));
        if reference.is_empty()
            || reference.len() > 1024
            || reference
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        let (rest, sha256) = match reference.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| ImageReferenceError::Digest(shorten(reference)))?;
                let mut bytes = [0u8; 32];
                if hex.len() != 64
                    || hex.bytes().any(|b| b.is_ascii_uppercase())
                    || hex::decode_to_slice(hex, &mut bytes).is_err()
                {
                    return Err(ImageReferenceError::Digest(shorten(reference)));
                }
                (rest, Some(bytes))
            }
            None => (reference, None),
        };
        // A tag follows the last ':' after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(rest[at + 1..].to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() || tag.as_deref() == Some("") {
            return Err(invalid());
        }
        Ok(ImageReference {
            name: name.to_owned(),
            tag,
            sha256,
        })
    }
}

/// What the reference alone decides about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceRule {
    /// It pins this digest: look it up and judge its records.
    LookUp([u8; 32]),
    /// Admitted without a lookup (a tag-only image where those are allowed).
    Admit,
    /// Denied, for this reason (`code: message`).
    Deny(String),
}

/// What the reference `image` decides before any lookup: an invalid reference is
/// denied; one without a digest is denied unless `allow_tag_only` (a tag can name
/// another image by the time the kubelet pulls it); a pinned one is looked up.
pub fn reference_rule(image: &str, allow_tag_only: bool) -> ReferenceRule {
    match ImageReference::parse(image) {
        Err(e) => ReferenceRule::Deny(format!("invalid-reference: {e}")),
        Ok(ImageReference {
            sha256: Some(digest),
            ..
        }) => ReferenceRule::LookUp(digest),
        Ok(_) if allow_tag_only => ReferenceRule::Admit,
        Ok(_) => ReferenceRule::Deny(
            "tag-only: the reference pins no digest, and a tag can name another image by the time it is pulled"
                .to_owned(),
        ),
    }
}

/// How one image was judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVerdict {
    /// Where it is used.
    pub place: String,
    /// The reference.
    pub image: String,
    /// Whether it may run.
    pub allowed: bool,
    /// Why not (codes and messages), empty when allowed.
    pub reasons: Vec<String>,
}

/// The `AdmissionReview` response for request `uid`: allowed when every image is, else
/// denied (HTTP-style code 403) with every denied image's reasons in the message.
pub fn review_response(uid: &str, verdicts: &[ImageVerdict]) -> Value {
    let denied: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.allowed)
        .map(|v| format!("{} {}: {}", v.place, v.image, v.reasons.join("; ")))
        .collect();
    let mut response = json!({
        "uid": uid,
        "allowed": denied.is_empty(),
    });
    if !denied.is_empty() {
        response["status"] = json!({
            "code": 403,
            "reason": "Forbidden",
            "message": format!("provmesh: {}", denied.join(" | ")),
        });
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
}

/// The answer to a review that could not be read: denied with the reason (a webhook
/// with `failurePolicy: Fail` must not let through what it could not judge).
pub fn refusal_response(uid: &str, reason: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": uid,
            "allowed": false,
            "status": {"code": 400, "reason": "BadRequest", "message": format!("provmesh: {reason}")},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn review(kind: &str, object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "operation": "CREATE",
                "namespace": "shop",
                "name": "web",
                "object": object,
            }
        }))
        .unwrap_or_default()
    }

    fn pod_spec_json() -> Value {
        json!({
            "containers": [{"name": "app", "image": "registry.example/app@sha256:".to_owned() + &"ab".repeat(32)}],
            "initContainers": [{"name": "init", "image": "registry.example/init:1.0"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
        })
    }

    #[test]
    fn every_kind_that_runs_pods_gives_its_images_containers_init_and_ephemeral() {
        let spec = pod_spec_json();
        let objects = [
            ("Pod", json!({"spec": spec})),
            ("Deployment", json!({"spec": {"template": {"spec": spec}}})),
            ("DaemonSet", json!({"spec": {"template": {"spec": spec}}})),
            ("StatefulSet", json!({"spec": {"template": {"spec": spec}}})),
            ("Job", json!({"spec": {"template": {"spec": spec}}})),
            (
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
            ),
        ];
        for (kind, object) in objects {
            let request = AdmissionRequest::parse(&review(kind, object)).expect("parses");
            assert_eq!(request.kind, kind);
            let images =
                images_of(&request.kind, request.object.as_ref().expect("object")).expect("images");
            let places: Vec<&str> = images.iter().map(|i| i.place.as_str()).collect();
            assert_eq!(
                places,
                [
                    "spec.containers[app]",
                    "spec.initContainers[init]",
                    "spec.ephemeralContainers[debug]"
                ],
                "{kind}"
            );
        }
        assert!(
            images_of("ConfigMap", &json!({"data": {}}))
                .expect("none")
                .is_empty()
        );
    }

    #[test]
    fn references_split_into_name_tag_and_digest() {
        let digest = "ab".repeat(32);
        let pinned = ImageReference::parse(&format!(
            "registry.example:5000/team/app:1.2@sha256:{digest}"
        ))
        .expect("parses");
        assert_eq!(pinned.name, "registry.example:5000/team/app");
        assert_eq!(pinned.tag.as_deref(), Some("1.2"));
        assert_eq!(pinned.sha256, Some([0xab; 32]));
        let tagged = ImageReference::parse("registry.example:5000/app").expect("parses");
        assert_eq!(
            (tagged.name.as_str(), tagged.tag, tagged.sha256),
            ("registry.example:5000/app", None, None)
        );
        assert_eq!(
            ImageReference::parse("busybox:1.36")
                .expect("parses")
                .tag
                .as_deref(),
            Some("1.36")
        );
        for bad in ["", "app@sha512:00", "app@sha256:12", "a b", "app:"] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_reference_is_looked_up_only_when_it_pins_a_digest() {
        let pinned = format!("r.example/app@sha256:{}", "ab".repeat(32));
        assert_eq!(
            reference_rule(&pinned, false),
            ReferenceRule::LookUp([0xab; 32])
        );
        assert!(
            matches!(reference_rule("app:1.0", false), ReferenceRule::Deny(r) if r.starts_with("tag-only"))
        );
        assert_eq!(reference_rule("app:1.0", true), ReferenceRule::Admit);
        assert!(
            matches!(reference_rule("a b", true), ReferenceRule::Deny(r) if r.starts_with("invalid-reference"))
        );
    }

    #[test]
    fn the_response_echoes_the_uid_and_denies_with_every_reason() {
        let allowed = ImageVerdict {
            place: "spec.containers[app]".into(),
            image: "a@sha256:…".into(),
            allowed: true,
            reasons: vec![],
        };
        let denied = ImageVerdict {
            place: "spec.initContainers[init]".into(),
            image: "init:1.0".into(),
            allowed: false,
            reasons: vec!["tag-only: the reference pins no digest".into()],
        };
        let ok = review_response("u1", std::slice::from_ref(&allowed));
        assert_eq!(ok["response"]["uid"], "u1");
        assert_eq!(ok["response"]["allowed"], true);
        let no = review_response("u2", &[allowed, denied]);
        assert_eq!(no["response"]["allowed"], false);
        assert_eq!(no["response"]["status"]["code"], 403);
        let message = no["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.contains("spec.initContainers[init] init:1.0: tag-only"),
            "{message}"
        );
        assert_eq!(refusal_response("u3", "bad")["response"]["allowed"], false);
    }

    #[test]
    fn garbage_is_refused_with_the_reason() {
        assert!(matches!(
            AdmissionRequest::parse(b"{"),
            Err(AdmissionError::Malformed(_))
        ));
        let wrong =
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod"})).unwrap_or_default();
        assert!(matches!(
            AdmissionRequest::parse(&wrong),
            Err(AdmissionError::Malformed(_))
        ));
        let no_request = serde_json::to_vec(
            &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
        )
        .unwrap_or_default();
        assert!(AdmissionRequest::parse(&no_request).is_err());
        assert_eq!(
            AdmissionRequest::parse(&vec![b' '; MAX_REVIEW_BYTES + 1]),
            Err(AdmissionError::TooLarge)
        );
        let many: Vec<Value> = (0..=MAX_IMAGES)
            .map(|i| json!({"name": i.to_string(), "image": "x"}))
            .collect();
        assert_eq!(
            images_of("Pod", &json!({"spec": {"containers": many}})),
            Err(AdmissionError::TooManyImages)
        );
    }

    proptest! {
        #[test]
        fn references_never_panic_and_pinned_digests_round_trip(text in "\\PC{0,80}", digest in any::<[u8; 32]>()) {
            let _ = ImageReference::parse(&text);
            let reference = format!("r.example/app@sha256:{}", hex::encode(digest));
            prop_assert_eq!(ImageReference::parse(&reference).map(|r| r.sha256), Ok(Some(digest)));
        }
    }
}
