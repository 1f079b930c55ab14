//! Strategies shared by the note property tests (`note_proptest.rs`) and the
//! differential tests against `signed_note` (`note_crosscheck.rs`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

/// Byte strings shaped like signed notes: a text, a blank line and signature lines, with
/// the parts drawn from valid and invalid variants and an optional random splice.
pub(crate) fn note_like() -> impl Strategy<Value = Vec<u8>> {
    let text_piece = prop_oneof![
        12 => "[ -~]{0,20}",
        2 => Just("\u{e8}\u{2014} +".to_owned()),
        2 => Just(String::new()),
        1 => Just("\u{1}".to_owned()),
        1 => Just("\u{7f}".to_owned()),
    ];
    let text = prop::collection::vec(text_piece, 0..4).prop_map(|l| {
        let mut s = l.join("\n");
        s.push('\n');
        s
    });
    let prefix = prop_oneof![
        30 => Just("\u{2014} "),
        1 => Just("\u{2014}"),
        1 => Just("- "),
    ];
    let name = prop_oneof![
        30 => "[a-zA-Z0-9./]{1,12}",
        1 => Just("Bad Name".to_owned()),
        1 => Just("a+b".to_owned()),
        1 => Just("a\u{a0}b".to_owned()),
        1 => Just("a\u{2003}b".to_owned()),
        1 => Just(String::new()),
    ];
    let sig = prop_oneof![
        30 => prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| STANDARD.encode(b)),
        1 => Just("AAAAAAF=".to_owned()),
        1 => Just("AAAAAAE".to_owned()),
        1 => Just("AAAAAAE=\u{a0}".to_owned()),
        1 => Just(String::new()),
    ];
    let line = (prefix, name, sig).prop_map(|(p, n, s)| format!("{p}{n} {s}\n"));
    let splice = prop_oneof![
        12 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 1..3),
        1 => Just(b"\n".to_vec()),
    ];
    (
        text,
        prop_oneof![16 => Just("\n"), 1 => Just(""), 1 => Just("\n\n")],
        prop::collection::vec(line, 0..5),
        prop::bool::weighted(0.05),
        splice,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(text, sep, lines, drop_last_newline, splice, at)| {
            let mut b = format!("{text}{sep}{}", lines.concat()).into_bytes();
            if drop_last_newline && b.last() == Some(&b'\n') {
                b.pop();
            }
            let at = at.index(b.len() + 1);
            b.splice(at..at, splice);
            b
        })
}
