#!/usr/bin/env python3
"""Regenerates id_vectors.json: SPIFFE ID and trust domain test vectors.

The cases are transcribed from go-spiffe's spiffeid package tests (id_test.go,
trustdomain_test.go, path_test.go; see SOURCES.md for the commit), including the
expansion of their "every byte value 0..255" loops, plus the example IDs of the
SPIFFE-ID standard. `error` is go-spiffe's error message for the input.
Run from this directory: python3 gen_id_vectors.py > id_vectors.json
"""
import json

TD_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-_")
PATH_CHARS = TD_CHARS | set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

E_EMPTY = "cannot be empty"
E_SCHEME = "scheme is missing or invalid"
E_NO_TD = "trust domain is missing"
E_TD_CHAR = "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
E_PATH_CHAR = "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
E_EMPTY_SEG = "path cannot contain empty segments"
E_DOT_SEG = "path cannot contain dot segments"
E_TRAILING = "path cannot have a trailing slash"

id_valid, id_invalid = [], []
td_valid, td_invalid = [], []


def ok(inp, td, path, origin):
    id_valid.append({"input": inp, "trust_domain": td, "path": path, "origin": origin})


def bad(inp, err, origin):
    id_invalid.append({"input": inp, "error": err, "origin": origin})


# go-spiffe id_test.go TestFromString
bad("", E_EMPTY, "go-spiffe TestFromString")
ok("spiffe://trustdomain", "trustdomain", "", "go-spiffe TestFromString")
for i in range(256):
    if i == ord("/"):
        continue
    s = chr(i)
    o = "go-spiffe TestFromString byte loop 0x%02X" % i
    if s in TD_CHARS:
        ok("spiffe://trustdomain" + s + "/path", "trustdomain" + s, "/path", o)
    else:
        bad("spiffe://trustdomain" + s + "/path", E_TD_CHAR, o)
    if s in PATH_CHARS:
        ok("spiffe://trustdomain/path" + s, "trustdomain", "/path" + s, o)
    else:
        bad("spiffe://trustdomain/path" + s, E_PATH_CHAR, o)
o = "go-spiffe TestFromString"
for inp, err in [
    ("s", E_SCHEME), ("spiffe:/", E_SCHEME), ("Spiffe://", E_SCHEME),
    ("spiffe://", E_NO_TD), ("spiffe:///", E_NO_TD),
    ("spiffe://trustdomain/", E_TRAILING), ("spiffe://trustdomain//", E_EMPTY_SEG),
    ("spiffe://trustdomain//path", E_EMPTY_SEG), ("spiffe://trustdomain/path/", E_TRAILING),
    ("spiffe://trustdomain/.", E_DOT_SEG), ("spiffe://trustdomain/./path", E_DOT_SEG),
    ("spiffe://trustdomain/path/./other", E_DOT_SEG), ("spiffe://trustdomain/path/..", E_DOT_SEG),
    ("spiffe://trustdomain/..", E_DOT_SEG), ("spiffe://trustdomain/../path", E_DOT_SEG),
    ("spiffe://trustdomain/path/../other", E_DOT_SEG),
    ("spiffe://%F0%9F%A4%AF/path", E_TD_CHAR), ("spiffe://trustdomain/%F0%9F%A4%AF", E_PATH_CHAR),
    ("spiffe://%62%61%64/path", E_TD_CHAR), ("spiffe://trustdomain/%62%61%64", E_PATH_CHAR),
]:
    bad(inp, err, o)
for p in ["/.path", "/..path", "/..."]:
    ok("spiffe://trustdomain" + p, "trustdomain", p, o)
# go-spiffe id_test.go TestFromURI (string forms)
ok("spiffe://trustdomain/path", "trustdomain", "/path", "go-spiffe TestFromURI")
bad("spiffe://trust$domain", E_TD_CHAR, "go-spiffe TestFromURI")
bad("spiffe://trustdomain/path$", E_PATH_CHAR, "go-spiffe TestFromURI")
bad("SPIFFE://trustdomain", E_SCHEME, "go-spiffe TestFromURI (Scheme: SPIFFE)")

# SPIFFE-ID standard, section 2 and 2.2 examples
o = "SPIFFE-ID.md section 2.2 example"
ok("spiffe://staging.example.com/payments/mysql", "staging.example.com", "/payments/mysql", o)
ok("spiffe://staging.example.com/payments/web-fe", "staging.example.com", "/payments/web-fe", o)
ok("spiffe://k8s-west.example.com/ns/staging/sa/default", "k8s-west.example.com", "/ns/staging/sa/default", o)
ok("spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453", "example.com", "/9eebccd2-12bf-40a6-b262-65fe0487d453", o)
ok("spiffe://trust_domain_name.example.com", "trust_domain_name.example.com", "", "SPIFFE-ID.md section 2.1.1 example name")
# The trust domain SAN shown in SPIFFE_Trust_Domain_and_Bundle.md Appendix A has a
# trailing slash, which section 2.2 of SPIFFE-ID forbids.
bad("spiffe://example.com/", E_TRAILING, "SPIFFE_Trust_Domain_and_Bundle.md Appendix A SAN (invalid per SPIFFE-ID 2.2)")

# go-spiffe trustdomain_test.go TestTrustDomainFromString (id-or-name semantics)
o = "go-spiffe TestTrustDomainFromString"
td_invalid.append({"input": "", "error": E_NO_TD, "origin": o})
td_valid.append({"input": "spiffe://trustdomain", "trust_domain": "trustdomain", "origin": o})
td_valid.append({"input": "spiffe://trustdomain/path", "trust_domain": "trustdomain", "origin": o})
for inp, err in [
    ("spiffe:/trustdomain/path", E_SCHEME), ("spiffe://", E_NO_TD), ("spiffe:///path", E_NO_TD),
    ("spiffe://trustdomain/", E_TRAILING), ("spiffe://trustdomain/path/", E_TRAILING),
    ("spiffe://%F0%9F%A4%AF/path", E_TD_CHAR), ("spiffe://trustdomain/%F0%9F%A4%AF", E_PATH_CHAR),
]:
    td_invalid.append({"input": inp, "error": err, "origin": o})
for i in range(256):
    s = chr(i)
    oo = o + " byte loop 0x%02X" % i
    if s in TD_CHARS:
        td_valid.append({"input": "trustdomain" + s, "trust_domain": "trustdomain" + s, "origin": oo})
        td_valid.append({"input": "spiffe://trustdomain" + s, "trust_domain": "trustdomain" + s, "origin": oo})
    else:
        td_invalid.append({"input": "trustdomain" + s, "error": E_TD_CHAR, "origin": oo})

# go-spiffe path_test.go / id_test.go TestFromSegments
o = "go-spiffe TestFromSegments / TestJoinPathSegments"
seg_valid = [
    {"segments": [], "path": "", "origin": o},
    {"segments": ["foo"], "path": "/foo", "origin": o},
    {"segments": ["foo", "bar"], "path": "/foo/bar", "origin": o},
    {"segments": ["a"], "path": "/a", "origin": o},
    {"segments": ["a", "b"], "path": "/a/b", "origin": o},
]
seg_invalid = [
    {"segments": [""], "error": E_EMPTY_SEG, "origin": o},
    {"segments": ["."], "error": E_DOT_SEG, "origin": o},
    {"segments": [".."], "error": E_DOT_SEG, "origin": o},
    {"segments": ["/"], "error": E_PATH_CHAR, "origin": o},
    {"segments": ["/foo"], "error": E_PATH_CHAR, "origin": o},
    {"segments": ["$"], "error": E_PATH_CHAR, "origin": o},
]

doc = {
    "comment": "Generated by gen_id_vectors.py; see SOURCES.md. `error` is go-spiffe's message.",
    "id_valid": id_valid,
    "id_invalid": id_invalid,
    "trust_domain_valid": td_valid,
    "trust_domain_invalid": td_invalid,
    "segments_valid": seg_valid,
    "segments_invalid": seg_invalid,
}
out = ["{"]
items = list(doc.items())
for n, (k, v) in enumerate(items):
    sep = "," if n + 1 < len(items) else ""
    if isinstance(v, list):
        out.append("  %s: [" % json.dumps(k))
        for m, e in enumerate(v):
            out.append("    " + json.dumps(e, ensure_ascii=True) + ("," if m + 1 < len(v) else ""))
        out.append("  ]" + sep)
    else:
        out.append("  %s: %s%s" % (json.dumps(k), json.dumps(v), sep))
out.append("}")
print("\n".join(out))
