//! SPIFFE ID and trust domain tests: go-spiffe and SPIFFE-ID spec vectors
//! (tests/vectors/spiffe/id_vectors.json, see SOURCES.md there) and property tests.

// Helpers outside #[test] functions unwrap too; a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use provmesh_protocol::spiffe::{
    MAX_SPIFFE_ID_LEN, MAX_TRUST_DOMAIN_LEN, PathError, SpiffeId, SpiffeIdError, TrustDomain,
    TrustDomainError,
};
use serde_json::Value;

const VECTORS: &str = include_str!("vectors/spiffe/id_vectors.json");

const E_EMPTY: &str = "cannot be empty";
const E_SCHEME: &str = "scheme is missing or invalid";
const E_NO_TD: &str = "trust domain is missing";
const E_TD_CHAR: &str = "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores";
const E_PATH_CHAR: &str =
    "path segment characters are limited to letters, numbers, dots, dashes, and underscores";
const E_EMPTY_SEG: &str = "path cannot contain empty segments";
const E_DOT_SEG: &str = "path cannot contain dot segments";
const E_TRAILING: &str = "path cannot have a trailing slash";
const E_NO_LEADING: &str = "path must have a leading slash";

/// Maps our error to the go-spiffe message for the same failure. `input` is needed to
/// place a `?`/`#` in the trust domain or the path, as go-spiffe reports them as bad
/// characters of the component they occur in.
fn go_message(input: &str, err: &SpiffeIdError) -> &'static str {
    let path_start = input
        .strip_prefix("spiffe://")
        .and_then(|rest| rest.find('/'))
        .map_or(input.len(), |i| i + "spiffe://".len());
    match err {
        SpiffeIdError::Empty => E_EMPTY,
        SpiffeIdError::WrongScheme => E_SCHEME,
        SpiffeIdError::Query { offset } | SpiffeIdError::Fragment { offset } => {
            if *offset < path_start {
                E_TD_CHAR
            } else {
                E_PATH_CHAR
            }
        }
        SpiffeIdError::TrustDomain(TrustDomainError::Empty) => E_NO_TD,
        SpiffeIdError::TrustDomain(_) => E_TD_CHAR,
        SpiffeIdError::Path(PathError::EmptySegment { .. }) => E_EMPTY_SEG,
        SpiffeIdError::Path(PathError::DotSegment { .. }) => E_DOT_SEG,
        SpiffeIdError::Path(PathError::TrailingSlash) => E_TRAILING,
        SpiffeIdError::Path(PathError::NoLeadingSlash) => E_NO_LEADING,
        SpiffeIdError::Path(_) => E_PATH_CHAR,
        other => panic!("no go-spiffe equivalent for {other:?}"),
    }
}

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn group<'a>(v: &'a Value, name: &str) -> &'a Vec<Value> {
    v[name].as_array().unwrap()
}

fn s<'a>(case: &'a Value, name: &str) -> &'a str {
    case[name].as_str().unwrap()
}

#[test]
fn vector_counts() {
    // A changed or dropped case changes a count (and the pinned digest in
    // spiffe_vectors.rs).
    let v = vectors();
    let counts: Vec<usize> = [
        "id_valid",
        "id_invalid",
        "trust_domain_valid",
        "trust_domain_invalid",
        "segments_valid",
        "segments_invalid",
    ]
    .iter()
    .map(|g| group(&v, g).len())
    .collect();
    assert_eq!(counts, [114, 431, 80, 225, 5, 6]);
}

#[test]
fn valid_ids() {
    let v = vectors();
    for case in group(&v, "id_valid") {
        let input = s(case, "input");
        let id = SpiffeId::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(id.as_str(), input);
        assert_eq!(id.to_string(), input);
        assert_eq!(
            id.trust_domain().as_str(),
            s(case, "trust_domain"),
            "{input:?}"
        );
        assert_eq!(id.path(), s(case, "path"), "{input:?}");
        let td = TrustDomain::parse(s(case, "trust_domain")).unwrap();
        assert!(id.member_of(&td));
        assert_eq!(SpiffeId::new(&td, id.path()).unwrap(), id);
        assert_eq!(SpiffeId::from_segments(&td, id.segments()).unwrap(), id);
        assert_eq!(input.parse::<SpiffeId>().unwrap(), id);
    }
}

#[test]
fn invalid_ids_match_go_spiffe() {
    let v = vectors();
    for case in group(&v, "id_invalid") {
        let input = s(case, "input");
        let err = SpiffeId::parse(input).expect_err(input);
        assert_eq!(
            go_message(input, &err),
            s(case, "error"),
            "{input:?}: {err:?}"
        );
        assert!(input.parse::<SpiffeId>().is_err());
    }
}

#[test]
fn trust_domains_match_go_spiffe() {
    let v = vectors();
    for case in group(&v, "trust_domain_valid") {
        let input = s(case, "input");
        let td = TrustDomain::from_id_or_name(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(td.as_str(), s(case, "trust_domain"));
        assert_eq!(td.id().as_str(), format!("spiffe://{td}"));
        assert_eq!(td.id().trust_domain(), &td);
        // The strict name parser accepts the bare names and refuses the ID forms.
        if input.contains(":/") {
            assert_eq!(
                TrustDomain::parse(input),
                Err(TrustDomainError::LooksLikeId)
            );
        } else {
            assert_eq!(TrustDomain::parse(input).unwrap(), td);
        }
    }
    for case in group(&v, "trust_domain_invalid") {
        let input = s(case, "input");
        let err = TrustDomain::from_id_or_name(input).expect_err(input);
        assert_eq!(
            go_message(input, &err),
            s(case, "error"),
            "{input:?}: {err:?}"
        );
        assert!(TrustDomain::parse(input).is_err());
        assert!(input.parse::<TrustDomain>().is_err());
    }
}

#[test]
fn segments_match_go_spiffe() {
    let v = vectors();
    let td = TrustDomain::parse("trustdomain").unwrap();
    let segs = |case: &Value| -> Vec<String> {
        case["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    };
    for case in group(&v, "segments_valid") {
        let segments = segs(case);
        let id = SpiffeId::from_segments(&td, segments.iter().map(String::as_str)).unwrap();
        assert_eq!(id.path(), s(case, "path"));
    }
    for case in group(&v, "segments_invalid") {
        let segments = segs(case);
        let err = SpiffeId::from_segments(&td, segments.iter().map(String::as_str)).unwrap_err();
        // from_segments reports offsets in the path, so place them after the prefix.
        let input = format!("spiffe://trustdomain/{}", segments.join("/"));
        let mapped = match err {
            SpiffeIdError::Path(PathError::InvalidChar { .. }) => E_PATH_CHAR,
            ref e => go_message(&input, e),
        };
        assert_eq!(mapped, s(case, "error"), "{segments:?}: {err:?}");
    }
}

#[test]
fn spec_rules_each_have_a_distinct_error() {
    use PathError as P;
    use SpiffeIdError as E;
    use TrustDomainError as T;
    // One input per MUST of SPIFFE-ID sections 2, 2.1, 2.2 and 2.3.
    let cases: &[(&str, SpiffeIdError)] = &[
        ("http://example.org/a", E::WrongScheme),
        ("spiffe://example.org/a?x=1", E::Query { offset: 22 }),
        ("spiffe://example.org/a#frag", E::Fragment { offset: 22 }),
        ("spiffe:///a", E::TrustDomain(T::Empty)),
        (
            "spiffe://user@example.org",
            E::TrustDomain(T::Userinfo { offset: 13 }),
        ),
        (
            "spiffe://example.org:443/a",
            E::TrustDomain(T::Port { offset: 20 }),
        ),
        (
            "spiffe://Example.org",
            E::TrustDomain(T::Uppercase { offset: 9 }),
        ),
        (
            "spiffe://ex%41mple.org",
            E::TrustDomain(T::PercentEncoded { offset: 11 }),
        ),
        (
            "spiffe://[::1]/a",
            E::TrustDomain(T::InvalidChar {
                offset: 9,
                byte: b'[',
            }),
        ),
        (
            "spiffe://example.org/a%2Fb",
            E::Path(P::PercentEncoded { offset: 22 }),
        ),
        (
            "spiffe://example.org/a//b",
            E::Path(P::EmptySegment { offset: 22 }),
        ),
        (
            "spiffe://example.org/a/../b",
            E::Path(P::DotSegment { offset: 22 }),
        ),
        ("spiffe://example.org/a/", E::Path(P::TrailingSlash)),
        (
            "spiffe://example.org/a~b",
            E::Path(P::InvalidChar {
                offset: 22,
                byte: b'~',
            }),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(SpiffeId::parse(input).as_ref(), Err(want), "{input:?}");
    }
    // IPv4 dotted quads are trust domain names like any other (section 2.1).
    assert!(SpiffeId::parse("spiffe://192.168.0.1/a").is_ok());
}

#[test]
fn length_limits() {
    // SPIFFE-ID 2.3: 2048 bytes for the whole URI, 255 for the trust domain.
    let td255 = "a".repeat(MAX_TRUST_DOMAIN_LEN);
    assert!(TrustDomain::parse(&td255).is_ok());
    assert_eq!(
        SpiffeId::parse(&format!("spiffe://{td255}a/x")),
        Err(SpiffeIdError::TrustDomain(TrustDomainError::TooLong {
            len: 256
        }))
    );
    assert_eq!(
        SpiffeId::parse(&format!("spiffe://{td255}a")),
        Err(SpiffeIdError::TrustDomain(TrustDomainError::TooLong {
            len: 256
        }))
    );
    let prefix = format!("spiffe://{td255}");
    let path = format!("/{}", "p".repeat(MAX_SPIFFE_ID_LEN - prefix.len() - 1));
    let max = format!("{prefix}{path}");
    assert_eq!(max.len(), MAX_SPIFFE_ID_LEN);
    let id = SpiffeId::parse(&max).unwrap();
    assert_eq!(SpiffeId::new(id.trust_domain(), &path).unwrap(), id);
    let over = format!("{max}q");
    assert_eq!(
        SpiffeId::parse(&over),
        Err(SpiffeIdError::TooLong { len: 2049 })
    );
    assert_eq!(
        SpiffeId::new(id.trust_domain(), &format!("{path}q")),
        Err(SpiffeIdError::TooLong { len: 2049 })
    );
    // Huge inputs are refused by length before any scanning.
    let huge = format!("spiffe://a/{}", "b".repeat(1 << 20));
    assert!(matches!(
        SpiffeId::parse(&huge),
        Err(SpiffeIdError::TooLong { .. })
    ));
}

#[test]
fn serde_as_strings() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Doc {
        td: TrustDomain,
        id: SpiffeId,
    }
    let json = r#"{"td":"example.org","id":"spiffe://example.org/ns/prod"}"#;
    let doc: Doc = serde_json::from_str(json).unwrap();
    assert_eq!(doc.td.as_str(), "example.org");
    assert_eq!(doc.id.path(), "/ns/prod");
    assert_eq!(serde_json::to_string(&doc).unwrap(), json);
    for bad in [
        r#"{"td":"Example.org","id":"spiffe://example.org"}"#,
        r#"{"td":"example.org","id":"spiffe://example.org/"}"#,
        r#"{"td":"example.org","id":7}"#,
        r#"{"td":null,"id":"spiffe://example.org"}"#,
    ] {
        assert!(serde_json::from_str::<Doc>(bad).is_err(), "{bad}");
    }
}

/// An independent statement of SPIFFE-ID section 2 used as an oracle.
fn oracle(input: &str) -> bool {
    let td_char = |c: char| matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_');
    let seg_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let Some(rest) = input.strip_prefix("spiffe://") else {
        return false;
    };
    let (td, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let td_ok = !td.is_empty() && td.len() <= 255 && td.chars().all(td_char);
    let path_ok = path.is_empty()
        || path[1..]
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && seg.chars().all(seg_char));
    td_ok && path_ok && input.len() <= 2048
}

fn td_strategy() -> impl Strategy<Value = String> {
    "[a-z0-9._-]{1,40}"
}

fn segment_strategy() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,16}".prop_filter("dot segment", |s| s != "." && s != "..")
}

proptest! {
    #[test]
    fn valid_ids_round_trip(td in td_strategy(), segs in prop::collection::vec(segment_strategy(), 0..8)) {
        let input = format!("spiffe://{td}{}", segs.iter().map(|s| format!("/{s}")).collect::<String>());
        let id = SpiffeId::parse(&input).unwrap();
        prop_assert_eq!(id.to_string(), input.clone());
        let shown = id.to_string();
        prop_assert_eq!(SpiffeId::parse(&shown).unwrap(), id.clone());
        prop_assert_eq!(id.trust_domain().as_str(), td.as_str());
        prop_assert_eq!(id.segments().collect::<Vec<_>>(), segs.iter().map(String::as_str).collect::<Vec<_>>());
        let tdv = TrustDomain::parse(&td).unwrap();
        prop_assert_eq!(SpiffeId::from_segments(&tdv, segs.iter().map(String::as_str)).unwrap(), id.clone());
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<SpiffeId>(&json).unwrap(), id);
    }

    #[test]
    fn random_strings_never_panic(input in ".{0,80}") {
        let parsed = SpiffeId::parse(&input);
        prop_assert_eq!(parsed.is_ok(), oracle(&input));
        let _ = TrustDomain::parse(&input);
        let _ = TrustDomain::from_id_or_name(&input);
    }

    #[test]
    fn near_miss_ids_agree_with_oracle(tail in "[a-zA-Z0-9._/:%?#@~\\[\\]é -]{0,60}") {
        let input = format!("spiffe://{tail}");
        let parsed = SpiffeId::parse(&input);
        prop_assert_eq!(parsed.is_ok(), oracle(&input), "{:?} {:?}", input, parsed);
        if let Ok(id) = parsed {
            let shown = id.to_string();
            prop_assert_eq!(SpiffeId::parse(&shown).unwrap(), id);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
        let input = String::from_utf8_lossy(&bytes);
        prop_assert_eq!(SpiffeId::parse(&input).is_ok(), oracle(&input));
        let _ = TrustDomain::parse(&input);
    }

    #[test]
    fn trust_domain_display_round_trip(td in td_strategy()) {
        let parsed = TrustDomain::parse(&td).unwrap();
        prop_assert_eq!(parsed.to_string(), td.clone());
        let shown = parsed.to_string();
        prop_assert_eq!(TrustDomain::parse(&shown).unwrap(), parsed.clone());
        prop_assert!(parsed.id().member_of(&parsed));
    }
}
