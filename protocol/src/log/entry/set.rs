//! The payload of a Rekor v1 signed entry timestamp (SET).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The bytes a Rekor v1 signed entry timestamp signs for an entry.
///
/// Rekor (`pkg/api/entries.go`, `signEntry`) marshals `models.LogEntryAnon{LogID,
/// LogIndex, Body, IntegratedTime}` — before `Verification` is set — and signs
/// `jsoncanonicalizer.Transform` of it, i.e. RFC 8785 JSON:
///
/// ```text
/// {"body":"<base64 of the canonical body>","integratedTime":<unix seconds>,"logID":"<hex key ID>","logIndex":<index>}
/// ```
///
/// openapi.yaml: "To verify the signedEntryTimestamp: 1. Remove the Verification object
/// from the JSON Document 2. Canonicalize the remaining JSON document by following RFC
/// 8785 rules 3. Verify the canonicalized payload and signedEntryTimestamp against
/// rekor's public key". The members are written in RFC 8785 order (sorted keys); the
/// strings are base64 and hex, which need no escaping.
pub fn set_payload(
    body: &[u8],
    integrated_time: i64,
    log_id: &[u8; 32],
    log_index: u64,
) -> Vec<u8> {
    let body = STANDARD.encode(body);
    let mut out = String::with_capacity(body.len() + 160);
    out.push_str(r#"{"body":""#);
    out.push_str(&body);
    out.push_str(r#"","integratedTime":"#);
    out.push_str(&jcs_integer(i128::from(integrated_time)));
    out.push_str(r#","logID":""#);
    out.push_str(&hex::encode(log_id));
    out.push_str(r#"","logIndex":"#);
    out.push_str(&jcs_integer(i128::from(log_index)));
    out.push('}');
    out.into_bytes()
}

/// An integer as RFC 8785 writes a JSON number.
///
/// RFC 8785 §3.2.2.3: numbers are serialized as ECMAScript's `Number.prototype.toString`
/// serializes the IEEE 754 double they parse to (Rekor's canonicalizer parses every
/// number into a float64). Up to 2^53 every integer is exact and prints as its decimal
/// digits. Beyond, the value is first rounded to the nearest double, and ECMAScript
/// prints the shortest digit string that round-trips, padded with zeros up to the
/// decimal point (every `i64`/`u64` is below 10^21, so the exponential form never
/// applies).
fn jcs_integer(n: i128) -> String {
    const EXACT: i128 = 1 << 53;
    if (-EXACT..=EXACT).contains(&n) {
        return n.to_string();
    }
    // `as` rounds to nearest, ties to even, like a JSON parser reading the digits.
    let float = n as f64;
    // `{:e}` prints the shortest round-trip digits: "d.ddde<exp>".
    let scientific = format!("{:e}", float.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: usize = exponent.parse().unwrap_or(0);
    // The value is digits × 10^(exponent + 1 − len(digits)); for an integer-valued
    // double the shortest digit string never reaches past the decimal point.
    let zeros = (exponent + 1).saturating_sub(digits.len());
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{digits}{}", "0".repeat(zeros))
}

#[cfg(test)]
mod tests {
    use super::jcs_integer;

    #[test]
    fn integers_up_to_2_pow_53_are_exact() {
        assert_eq!(jcs_integer(0), "0");
        assert_eq!(jcs_integer(-1), "-1");
        assert_eq!(jcs_integer(1_716_578_064), "1716578064");
        assert_eq!(jcs_integer(9_007_199_254_740_992), "9007199254740992");
        assert_eq!(jcs_integer(-9_007_199_254_740_992), "-9007199254740992");
    }

    #[test]
    fn larger_integers_print_as_ecmascript_prints_their_double() {
        // Expected values printed by Node.js: `String(Number("<digits>"))`.
        assert_eq!(jcs_integer(9_007_199_254_740_993), "9007199254740992");
        assert_eq!(jcs_integer(123_456_789_012_345_678), "123456789012345680");
        assert_eq!(jcs_integer(i128::from(i64::MAX)), "9223372036854776000");
        assert_eq!(jcs_integer(i128::from(u64::MAX)), "18446744073709552000");
        assert_eq!(jcs_integer(-123_456_789_012_345_678), "-123456789012345680");
    }
}
