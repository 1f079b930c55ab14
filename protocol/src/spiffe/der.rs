//! A minimal DER shape check for X.509 certificates carried in SPIFFE bundles.
//!
//! This is not an X.509 parser and does no cryptography. It checks that the bytes are one
//! DER `SEQUENCE` with a definite, minimally encoded length that covers the input exactly,
//! and that its content is the three elements RFC 5280 §4.1 gives a `Certificate`:
//! `SEQUENCE` (tbsCertificate), `SEQUENCE` (signatureAlgorithm), `BIT STRING`
//! (signatureValue). Full certificate parsing belongs to the node.

/// DER tag of a constructed `SEQUENCE`.
const TAG_SEQUENCE: u8 = 0x30;
/// DER tag of a primitive `BIT STRING`.
const TAG_BIT_STRING: u8 = 0x03;

/// Why bytes are not a DER-encoded certificate shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DerError {
    /// No bytes at all.
    #[error("empty DER input")]
    Empty,
    /// An element does not have the tag the certificate shape requires.
    #[error("DER element {element} has tag 0x{found:02x}, expected 0x{expected:02x}")]
    UnexpectedTag {
        /// Which element: 0 is the outer `SEQUENCE`, 1..=3 its children.
        element: usize,
        /// The tag found.
        found: u8,
        /// The tag required.
        expected: u8,
    },
    /// An indefinite length (`0x80`), which DER forbids.
    #[error("indefinite length is not allowed in DER")]
    IndefiniteLength,
    /// A long-form length that is not minimal (leading zero byte, or long form for a
    /// length below 128), which DER forbids.
    #[error("non-minimal DER length encoding")]
    NonMinimalLength,
    /// A length of more than four length bytes.
    #[error("DER length too large")]
    LengthTooLarge,
    /// The input ends before an element does.
    #[error("DER input truncated")]
    Truncated,
    /// Bytes follow the outer `SEQUENCE`.
    #[error("{extra} bytes after the DER SEQUENCE")]
    TrailingBytes {
        /// How many bytes follow.
        extra: usize,
    },
    /// The outer `SEQUENCE` does not hold exactly three elements.
    #[error("certificate SEQUENCE has {count} elements, expected 3")]
    WrongElementCount {
        /// How many elements it holds (counting stops at 4).
        count: usize,
    },
}

/// Reads one tag-length header at the start of `input`; returns the tag, the content and
/// the rest of the input after the element. Shared with the CA's DER walker
/// (`crate::ca::der`).
pub(crate) fn read_element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), DerError> {
    let (&tag, rest) = input.split_first().ok_or(DerError::Truncated)?;
    let (&first, mut rest) = rest.split_first().ok_or(DerError::Truncated)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else if first == 0x80 {
        return Err(DerError::IndefiniteLength);
    } else {
        let count = usize::from(first & 0x7f);
        if count > 4 {
            return Err(DerError::LengthTooLarge);
        }
        let (bytes, after) = rest.split_at_checked(count).ok_or(DerError::Truncated)?;
        rest = after;
        if bytes.first() == Some(&0) {
            return Err(DerError::NonMinimalLength);
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return Err(DerError::NonMinimalLength);
        }
        len
    };
    let (content, after) = rest.split_at_checked(len).ok_or(DerError::Truncated)?;
    Ok((tag, content, after))
}

/// Checks that `der` has the outer shape of a DER X.509 certificate (see the module
/// documentation). Never panics.
pub fn check_certificate_shape(der: &[u8]) -> Result<(), DerError> {
    match der.first() {
        None => return Err(DerError::Empty),
        Some(&TAG_SEQUENCE) => {}
        Some(&found) => {
            return Err(DerError::UnexpectedTag {
                element: 0,
                found,
                expected: TAG_SEQUENCE,
            });
        }
    }
    let (_, mut content, after) = read_element(der)?;
    if !after.is_empty() {
        return Err(DerError::TrailingBytes { extra: after.len() });
    }
    let expected = [TAG_SEQUENCE, TAG_SEQUENCE, TAG_BIT_STRING];
    let mut count = 0usize;
    while !content.is_empty() {
        let (tag, _, rest) = read_element(content)?;
        count += 1;
        match expected.get(count - 1) {
            Some(&want) if want == tag => {}
            Some(&want) => {
                return Err(DerError::UnexpectedTag {
                    element: count,
                    found: tag,
                    expected: want,
                });
            }
            None => return Err(DerError::WrongElementCount { count }),
        }
        content = rest;
    }
    if count != expected.len() {
        return Err(DerError::WrongElementCount { count });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let ok = [0x30, 0x07, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00];
        assert_eq!(check_certificate_shape(&ok), Ok(()));
        assert_eq!(check_certificate_shape(&[]), Err(DerError::Empty));
        assert_eq!(check_certificate_shape(&[0x30]), Err(DerError::Truncated));
        assert_eq!(
            check_certificate_shape(&[0x30, 0x80]),
            Err(DerError::IndefiniteLength)
        );
        assert_eq!(
            check_certificate_shape(&[0x30, 0x81, 0x05]),
            Err(DerError::NonMinimalLength)
        );
        assert_eq!(
            check_certificate_shape(&[0x30, 0x82, 0x00, 0x80]),
            Err(DerError::NonMinimalLength)
        );
        assert_eq!(
            check_certificate_shape(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(DerError::LengthTooLarge)
        );
        assert_eq!(
            check_certificate_shape(&[0x30, 0x00]),
            Err(DerError::WrongElementCount { count: 0 })
        );
        let mut trailing = ok.to_vec();
        trailing.push(0);
        assert_eq!(
            check_certificate_shape(&trailing),
            Err(DerError::TrailingBytes { extra: 1 })
        );
        let mut wrong = ok;
        wrong[6] = 0x04;
        assert_eq!(
            check_certificate_shape(&wrong),
            Err(DerError::UnexpectedTag {
                element: 3,
                found: 0x04,
                expected: 0x03
            })
        );
        assert_eq!(
            check_certificate_shape(&[0x31, 0x00]),
            Err(DerError::UnexpectedTag {
                element: 0,
                found: 0x31,
                expected: 0x30
            })
        );
    }
}
