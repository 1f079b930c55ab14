//! Fuzz entry points: one function per parser of untrusted bytes.
//!
//! The `fuzz/` crate's libFuzzer targets call these, and `tests/fuzz_corpora.rs` replays
//! the committed corpora through the same functions in the ordinary (stable) test run.
//! Each one must never panic on any input, and checks an invariant on what it accepts:
//! whatever parses serializes back to the same bytes (or parses again to the same value).
//! Not part of the supported API.

use crate::checkpoint::Checkpoint;
use crate::cosignature::{self, CosignatureSigner};
use crate::merkle::{self, Hash, tiles::TilePath};
use crate::note::{Ed25519Signer, KeyName, Note, VerifierSet};
use crate::{dsse, intoto, sigstore, slsa, spiffe};

/// A fuzz entry point.
pub type Target = fn(&[u8]);

/// All targets by name, for corpus replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("tile_path", tile_path),
    ("merkle_proofs", merkle_proofs),
    ("dsse", dsse),
    ("intoto", intoto),
    ("bundle", bundle),
    ("trusted_root", trusted_root),
    ("spiffe_id", spiffe_id),
    ("spiffe_bundle", spiffe_bundle),
    ("note", note),
    ("checkpoint", checkpoint),
    ("cosignature", cosignature),
    ("rekor_entry", rekor_entry),
    ("signer_cert", signer_cert),
    ("sct", sct),
    ("jwt_svid", jwt_svid),
    ("ca_request", ca_request),
    ("domain_record", domain_record),
    ("node_record", node_record),
    ("witness_request", witness_request),
    ("mesh_wire", mesh_wire),
    ("evidence", evidence),
    ("policy", policy),
    ("search_query", search_query),
    ("admission_review", admission_review),
];

/// Fixed keys so that verification code runs on fuzzed notes (a fuzzer can copy the key
/// IDs from seeds and reach the signature check itself).
fn fuzz_verifiers() -> VerifierSet {
    let mut set = VerifierSet::new();
    if let (Ok(log), Ok(witness)) = (
        KeyName::new("log.fuzz.example"),
        KeyName::new("witness.fuzz.example"),
    ) {
        let _ = set.insert(Ed25519Signer::from_seed(log, &[1; 32]).verifier());
        let _ = set.insert(CosignatureSigner::from_seed(witness, &[2; 32]).verifier());
    }
    set
}

/// Signed notes: what parses serializes back to exactly the input; verification never
/// panics.
pub fn note(data: &[u8]) {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_bytes(), data);
        let _ = note.verify_known(&fuzz_verifiers());
    }
}

/// Checkpoint bodies, bare or inside a signed note: what parses formats back to the
/// same text.
pub fn checkpoint(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(checkpoint) = Checkpoint::parse(text)
    {
        assert_eq!(checkpoint.to_text(), text);
    }
    if let Ok(note) = Note::parse(data)
        && let Ok(checkpoint) = Checkpoint::from_note(&note)
    {
        assert_eq!(checkpoint.to_text(), note.text());
    }
}

/// Cosignature lines on notes: timestamps decode without panics and verification of
/// cosignatures returns the timestamp carried in the line.
pub fn cosignature(data: &[u8]) {
    let Ok(note) = Note::parse(data) else {
        return;
    };
    for signature in note.signatures() {
        let _ = cosignature::unverified_timestamp(signature);
    }
    if let Ok(verified) = note.verify_known(&fuzz_verifiers()) {
        for v in verified {
            if let (Some(timestamp), Some(line)) = (v.timestamp, note.signatures().get(v.index)) {
                assert_eq!(cosignature::unverified_timestamp(line), Some(timestamp));
            }
        }
    }
}

/// SPIFFE IDs and trust domain names: what parses displays back to itself.
pub fn spiffe_id(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(id) = spiffe::SpiffeId::parse(&text) {
        assert_eq!(id.to_string(), text);
        assert_eq!(spiffe::SpiffeId::parse(id.as_str()).ok(), Some(id));
    }
    if let Ok(domain) = spiffe::TrustDomain::parse(&text) {
        assert_eq!(domain.as_str(), text);
    }
    let _ = spiffe::TrustDomain::from_id_or_name(&text);
}

/// SPIFFE trust bundle documents: an accepted bundle re-serializes to one that parses
/// back equal.
pub fn spiffe_bundle(data: &[u8]) {
    if let Ok(bundle) = spiffe::TrustBundle::from_json(data) {
        let again = spiffe::TrustBundle::from_json(&bundle.to_json());
        assert!(
            matches!(again, Ok(ref b) if *b == bundle),
            "bundle does not round-trip"
        );
    }
}

/// DSSE envelopes: an accepted envelope re-serializes to one that parses back equal.
pub fn dsse(data: &[u8]) {
    if let Ok(envelope) = dsse::Envelope::from_json(data) {
        let again = dsse::Envelope::from_json(&envelope.to_json());
        assert!(
            matches!(again, Ok(ref e) if *e == envelope),
            "envelope does not round-trip"
        );
        // The PAE is always computable for what parsed.
        let _ = envelope.pae();
    }
}

/// in-toto statements (and their SLSA predicate): round trip, then predicate parsing.
pub fn intoto(data: &[u8]) {
    if let Ok(statement) = intoto::Statement::from_json(data) {
        let json = statement.to_json();
        let again = json.as_ref().ok().map(|j| intoto::Statement::from_json(j));
        assert!(
            matches!(again, Some(Ok(ref s)) if *s == statement),
            "statement does not round-trip"
        );
        let _ = slsa::Provenance::from_statement(&statement);
    }
}

/// Sigstore bundles: an accepted bundle re-serializes to one that parses back equal.
pub fn bundle(data: &[u8]) {
    if let Ok(parsed) = sigstore::ParsedBundle::from_json(data, sigstore::DEFAULT_MAX_BUNDLE_LEN) {
        let json = parsed.to_json();
        let again = json
            .as_ref()
            .ok()
            .map(|j| sigstore::ParsedBundle::from_json(j, sigstore::DEFAULT_MAX_BUNDLE_LEN));
        assert!(
            matches!(again, Some(Ok(ref b)) if *b == parsed),
            "bundle does not round-trip"
        );
        let _ = parsed.dsse_envelope();
        let _ = parsed.leaf_certificate_der();
    }
}

/// Sigstore trusted roots: an accepted root re-serializes to one that parses back equal.
pub fn trusted_root(data: &[u8]) {
    let max = sigstore::DEFAULT_MAX_TRUSTED_ROOT_LEN;
    if let Ok((root, version)) = sigstore::parse_trusted_root(data, max) {
        let json = sigstore::trusted_root_to_json(&root);
        let again = json
            .as_ref()
            .ok()
            .map(|j| sigstore::parse_trusted_root(j, max));
        assert!(
            matches!(again, Some(Ok((ref r, v))) if *r == root && v == version),
            "trusted root does not round-trip"
        );
    }
}

/// Tile paths: accepted paths are canonical, so they re-encode to the input.
pub fn tile_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match TilePath::parse(text) {
        Ok(TilePath::Hashes(tile)) => assert_eq!(tile.path(), text),
        Ok(TilePath::Entries(bundle)) => assert_eq!(bundle.path(), text),
        Err(_) => {}
    }
}

/// Inclusion and consistency proof verification on arbitrary sizes and hashes: no panic,
/// and a verified proof derives exactly the given root.
pub fn merkle_proofs(data: &[u8]) {
    let Some((sizes, rest)) = data.split_first_chunk::<16>() else {
        return;
    };
    let (first, second) = sizes.split_at(8);
    let first = u64::from_le_bytes(first.try_into().unwrap_or_default());
    let second = u64::from_le_bytes(second.try_into().unwrap_or_default());
    let hashes: Vec<Hash> = rest
        .chunks_exact(32)
        .filter_map(|c| c.try_into().ok())
        .collect();
    let [a, b, proof @ ..] = hashes.as_slice() else {
        return;
    };
    if merkle::verify_inclusion(first, second, a, proof, b).is_ok() {
        assert_eq!(
            merkle::inclusion_proof_root(first, second, a, proof),
            Ok(*b)
        );
    }
    if merkle::verify_consistency(first, second, proof, a, b).is_ok() && first > 0 && first < second
    {
        assert_eq!(
            merkle::consistency_proof_roots(first, second, proof, a),
            Ok((*a, *b))
        );
    }
}

/// Rekor v1 proposed entries and search request bodies: what parses fits the log and
/// parses again (from its own `to_json`) to the same value.
pub fn rekor_entry(data: &[u8]) {
    use crate::log::entry::{
        MAX_PROPOSED_ENTRY_BYTES, MAX_SEARCH_QUERIES, ProposedEntry, SearchIndexQuery,
        SearchLogQuery,
    };
    if let Ok(entry) = ProposedEntry::from_json(data) {
        assert!(entry.canonical_body().len() <= crate::log::MAX_ENTRY_BODY_BYTES);
        let json = entry.to_json();
        // Re-encoding the PEM canonically can add a few bytes near the size limit.
        if json.len() <= MAX_PROPOSED_ENTRY_BYTES {
            assert!(matches!(ProposedEntry::from_json(&json), Ok(ref e) if *e == entry));
        }
    }
    if let Ok(query) = SearchLogQuery::from_json(data) {
        assert!(query.query_count() <= MAX_SEARCH_QUERIES);
        assert!(matches!(SearchLogQuery::from_json(&query.to_json()), Ok(ref q) if *q == query));
    }
    if let Ok(query) = SearchIndexQuery::from_json(data) {
        assert_eq!(
            SearchIndexQuery::from_json(&query.to_json()).ok(),
            Some(query)
        );
    }
}

/// Code-signing roots and leaf certificates: root bundles parse or fail cleanly, and a
/// leaf is checked against the real Sigstore public-good Fulcio chain without panicking;
/// an accepted leaf's signer is valid at the time it was checked.
pub fn signer_cert(data: &[u8]) {
    use crate::log::signer_cert::CodeSigningRoots;
    let _ = CodeSigningRoots::from_pem(data);
    let _ = CodeSigningRoots::from_der(&[data]);
    let roots = fulcio_roots();
    if let Some(roots) = roots {
        // Mid-2024: inside the validity of the public-good intermediate.
        let at = 1_720_000_000;
        if let Ok(signer) = roots.check(data, at) {
            assert!(signer.is_valid_at(at));
        }
    }
}

/// The public-good Fulcio chain, parsed once.
fn fulcio_roots() -> Option<&'static crate::log::signer_cert::CodeSigningRoots> {
    use std::sync::OnceLock;
    static ROOTS: OnceLock<Option<crate::log::signer_cert::CodeSigningRoots>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let json = include_bytes!("../tests/vectors/sigstore/public-good.trusted_root.json");
            let (root, _) = sigstore::parse_trusted_root(json, json.len()).ok()?;
            let ders: Vec<Vec<u8>> = root
                .certificate_authorities
                .iter()
                .filter_map(|ca| ca.cert_chain.as_ref())
                .flat_map(|chain| chain.certificates.iter().map(|c| c.raw_bytes.clone()))
                .collect();
            crate::log::signer_cert::CodeSigningRoots::from_der(&ders).ok()
        })
        .as_ref()
}

/// SCT lists and certificates with embedded SCTs: what decodes encodes back to the same
/// bytes, and a certificate's precertificate TBS is never longer than the certificate.
pub fn sct(data: &[u8]) {
    use crate::ca::{decode_sct_list, embedded_scts, encode_sct_list};
    if let Ok(scts) = decode_sct_list(data) {
        assert!(matches!(encode_sct_list(&scts), Ok(ref bytes) if bytes == data));
    }
    if let Ok(embedded) = embedded_scts(data) {
        assert!(embedded.precertificate_tbs_der.len() < data.len());
    }
}

/// JWT-SVIDs: any token is validated or refused without panicking; with no keys in the
/// bundle nothing is ever accepted.
pub fn jwt_svid(data: &[u8]) {
    use crate::machine::Timestamp;
    use crate::spiffe::{TrustBundle, TrustDomain, jwt::verify_jwt_svid};
    let (Ok(token), Ok(domain)) = (
        std::str::from_utf8(data),
        TrustDomain::parse("fuzz.example"),
    ) else {
        return;
    };
    let bundle = TrustBundle::new();
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    assert!(verify_jwt_svid(token, "sigstore", &domain, &bundle, now).is_err());
}

/// Code-signing certificate requests: any body parses or is refused without panicking, a
/// parsed request survives its own serialisation, and with an empty bundle no request is
/// ever authorized. The same bytes as an X.509-SVID chain are refused too.
pub fn ca_request(data: &[u8]) {
    use crate::ca::request::{SigningCertRequest, authorize};
    use crate::machine::Timestamp;
    use crate::spiffe::x509::verify_x509_svid;
    use crate::spiffe::{TrustBundle, TrustDomain};
    let Ok(domain) = TrustDomain::parse("fuzz.example") else {
        return;
    };
    let bundle = TrustBundle::new();
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    assert!(verify_x509_svid(&[data], &domain, &bundle, now).is_err());
    if let Ok(request) = SigningCertRequest::from_fulcio_json(data, None) {
        let again = SigningCertRequest::from_fulcio_json(&request.to_fulcio_json(), None);
        assert_eq!(again.as_ref(), Ok(&request));
        assert!(authorize(&request, Some(&[data]), &domain, &bundle, now).is_err());
    }
}

/// Node records: a record payload that parses is canonical, so it formats back to the
/// input; a signed record document that parses re-serializes to one that parses back
/// equal; and with an empty bundle for every trust domain nothing ever verifies (the
/// record's own peer id and issue time are used, so verification gets past those checks).
pub fn node_record(data: &[u8]) {
    use crate::federation::node_record::{NodeRecord, SignedNodeRecord};
    use crate::machine::Timestamp;
    use crate::spiffe::TrustBundle;
    if let Ok(record) = NodeRecord::from_json(data) {
        assert_eq!(record.to_json(), data);
    }
    if let Ok(signed) = SignedNodeRecord::from_json(data) {
        let again = SignedNodeRecord::from_json(&signed.to_json());
        assert!(
            matches!(again, Ok(ref s) if *s == signed),
            "signed node record does not round-trip"
        );
        let record = NodeRecord::from_json(signed.envelope().unverified_payload()).ok();
        let peer = record.as_ref().map_or("", |r| r.peer_id());
        let now = Timestamp::from_unix_seconds(record.as_ref().map_or(0, |r| r.issued_at()));
        let bundle = TrustBundle::new();
        assert!(signed.verify(peer, |_| Some(&bundle), now, 0).is_err());
    }
}

/// Domain records: a record payload, a signed record and a domain-record log entry that
/// parse are canonical (they serialise back to exactly the input), and every signed record
/// that parses fits a log entry. A signed record is then verified as a domain's first
/// record under its own bundle, at its own `issuedAt`: whatever verifies is the payload's
/// record signed by the domain's authority, a registry bootstrapped with that bundle
/// accepts exactly what verifies (and the same record again as a duplicate), and nothing
/// verifies under an empty bundle.
pub fn domain_record(data: &[u8]) {
    use crate::federation::domain_record::{
        DomainRecord, SignedDomainRecord, domain_record_entry, signed_record_from_entry,
    };
    use crate::federation::registry::{Accepted, DomainRegistry, FederatedDomain, RegistryConfig};
    use crate::machine::Timestamp;
    use crate::spiffe::TrustBundle;
    if let Ok(record) = DomainRecord::from_json(data) {
        assert_eq!(record.to_json(), data);
    }
    if let Ok(signed) = signed_record_from_entry(data) {
        assert!(matches!(domain_record_entry(&signed), Ok(ref e) if e.body == data));
    }
    let Ok(signed) = SignedDomainRecord::from_json(data) else {
        return;
    };
    assert_eq!(signed.to_json(), data);
    let Ok(record) = signed.unverified_record() else {
        return;
    };
    assert!(domain_record_entry(&signed).is_ok());
    let domain = &record.trust_domain;
    let authority = FederatedDomain::default_authority_id(domain);
    let now = Timestamp::from_unix_seconds(record.issued_at);
    let verified = signed.verify(domain, &authority, &record.spiffe_bundle, now, 0);
    if let Ok(verified) = &verified {
        assert_eq!(verified.record(), &record);
        assert_eq!(verified.digest(), signed.digest());
        assert_eq!(verified.svid().spiffe_id, authority);
    }
    let config = RegistryConfig {
        max_clock_skew_secs: 0,
        domains: vec![FederatedDomain::new(
            domain.clone(),
            record.spiffe_bundle.clone(),
        )],
    };
    if let Ok(mut registry) = DomainRegistry::new(config) {
        let outcome = registry.accept(now, signed.clone());
        assert_eq!(outcome.is_ok(), verified.is_ok());
        if outcome.is_ok() {
            assert!(matches!(
                registry.accept(now, signed.clone()),
                Ok(Accepted::Duplicate { .. })
            ));
        }
    }
    assert!(
        signed
            .verify(domain, &authority, &TrustBundle::new(), now, 0)
            .is_err()
    );
}

/// tlog-witness `add-checkpoint` bodies: what parses prints back to exactly the input,
/// and a witness of the fuzz log key never panics on it and cosigns only a checkpoint
/// signed by that key, at the size it states.
pub fn witness_request(data: &[u8]) {
    use crate::witness::{AddCheckpoint, Witness};
    let Ok(request) = AddCheckpoint::parse(data) else {
        return;
    };
    assert_eq!(request.to_bytes(), data);
    let Ok(name) = KeyName::new("log.fuzz.example") else {
        return;
    };
    let log_key: crate::note::Verifier = Ed25519Signer::from_seed(name, &[1; 32]).verifier().into();
    let mut witness = Witness::new();
    if witness
        .set_log("log.fuzz.example", vec![log_key.clone()])
        .is_err()
    {
        return;
    }
    if let Ok(update) = witness.add_checkpoint(&request) {
        let note = Note::parse(&request.checkpoint);
        assert!(matches!(note, Ok(ref note) if note.verify_with(&log_key).is_ok()));
        assert_eq!(witness.latest("log.fuzz.example"), Some(&update.cosigned));
    }
}

/// Mesh wire messages (requests, responses, gossip of both topics): whatever decodes
/// encodes to bytes that decode to the same message.
pub fn mesh_wire(data: &[u8]) {
    use crate::mesh::wire;
    if let Ok(request) = wire::decode_request(data) {
        assert_eq!(
            wire::decode_request(&wire::encode_request(&request)),
            Ok(request)
        );
    }
    if let Ok(response) = wire::decode_response(data) {
        assert_eq!(
            wire::decode_response(&wire::encode_response(&response)),
            Ok(response)
        );
    }
    for topic in [
        wire::DOMAIN_RECORDS_TOPIC.to_owned(),
        wire::EVIDENCE_TOPIC.to_owned(),
        wire::log_topic("log.fuzz.example"),
    ] {
        if let Ok(gossip) = wire::decode_gossip(&topic, data) {
            assert_eq!(
                wire::decode_gossip(&topic, &wire::encode_gossip(&gossip)),
                Ok(gossip)
            );
        }
    }
}

/// Equivocation evidence documents: what parses prints a document that parses to the
/// same evidence, and verifying never panics.
pub fn evidence(data: &[u8]) {
    use crate::evidence::Evidence;
    if let Ok(evidence) = Evidence::from_json(data) {
        assert_eq!(
            Evidence::from_json(&evidence.to_json()),
            Ok(evidence.clone())
        );
        let _ = evidence.verify();
    }
}

/// Policy documents: what parses judges a record and an artifact without panicking, and
/// a verdict is "allowed" exactly when it gives no reason.
pub fn policy(data: &[u8]) {
    use crate::policy::{Policy, RecordFacts};
    use crate::spiffe::{SpiffeId, TrustDomain};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::from_toml(text) else {
        return;
    };
    let (Ok(domain), Ok(signer)) = (
        TrustDomain::parse("org-a.example"),
        SpiffeId::parse("spiffe://org-a.example/ns/ci/sa/build"),
    ) else {
        return;
    };
    let witnesses = [domain.clone()].into_iter().collect();
    let record = RecordFacts {
        log_domain: &domain,
        log_origin: "log.org-a.example",
        log_equivocating: false,
        signer: &signer,
        builder_id: Some("https://tekton.dev/chains/v2"),
        predicate_type: Some("https://slsa.dev/provenance/v1"),
        integrated_time: 1_800_000_000,
        witnessing_domains: &witnesses,
    };
    for now in [0, 1_800_000_000, u64::MAX] {
        let verdict = policy.judge(&[record], now);
        assert_eq!(verdict.allowed, verdict.reasons.is_empty());
        for record in &verdict.records {
            assert_eq!(record.allowed, record.reasons.is_empty());
        }
    }
}

/// Search criteria and index rows as a client or a damaged index gives them: the first
/// eight lines are a query's criteria (signer, builder, predicate type, subject name,
/// digest, trust domain, after, before), the whole input a page token and a stored row.
/// Nothing panics; a query that parses matches a record only if the record meets it
/// again after a round trip of the row.
pub fn search_query(data: &[u8]) {
    use crate::index::{Cursor, IndexedRecord, QueryText, SearchQuery};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(cursor) = Cursor::from_token(text) {
        assert_eq!(cursor.to_token(), text);
    }
    let record = IndexedRecord::decode(data).ok();
    let mut lines = text.split('\n');
    let mut next = || lines.next().unwrap_or("");
    let (signer, builder, predicate_type, subject_name, subject_digest, trust_domain) =
        (next(), next(), next(), next(), next(), next());
    let query = SearchQuery::parse(&QueryText {
        signer,
        builder,
        predicate_type,
        subject_name,
        subject_digest,
        trust_domain,
        integrated_after: next().parse().unwrap_or(0),
        integrated_before: next().parse().unwrap_or(0),
    });
    if let (Ok(query), Some(record)) = (query, record) {
        let _ = query.facet();
        let again = IndexedRecord::decode(&record.encode()).ok();
        assert_eq!(again.as_ref(), Some(&record));
        assert_eq!(
            query.matches(&record),
            again.is_some_and(|r| query.matches(&r))
        );
    }
}

/// Kubernetes AdmissionReviews as an API server (or anyone reaching the webhook) sends
/// them: what parses yields its images, each reference splits or is refused, and the
/// answer echoes the uid; nothing panics.
pub fn admission_review(data: &[u8]) {
    use crate::admission::{
        AdmissionRequest, ImageVerdict, ReferenceRule, images_of, reference_rule, review_response,
    };
    let Ok(request) = AdmissionRequest::parse(data) else {
        return;
    };
    let Some(object) = &request.object else {
        return;
    };
    let Ok(images) = images_of(&request.kind, object) else {
        return;
    };
    let verdicts: Vec<ImageVerdict> = images
        .into_iter()
        .map(|use_| {
            let pinned = matches!(reference_rule(&use_.image, false), ReferenceRule::LookUp(_));
            ImageVerdict {
                allowed: pinned,
                reasons: if pinned {
                    vec![]
                } else {
                    vec!["unpinned".to_owned()]
                },
                place: use_.place,
                image: use_.image,
            }
        })
        .collect();
    let response = review_response(&request.uid, &verdicts);
    assert_eq!(response["response"]["uid"], request.uid.as_str());
    assert_eq!(
        response["response"]["allowed"],
        verdicts.iter().all(|v| v.allowed)
    );
}
