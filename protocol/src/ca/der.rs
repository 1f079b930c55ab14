//! The few DER primitives the CA needs beyond rcgen: encoding the contents of its custom
//! extensions, and walking a certificate to cut the embedded SCT list out of its
//! `tbsCertificate` (the precertificate TBS a verifier rebuilds).
//!
//! Only what X.509 certificates use is supported: single-byte tags (tag numbers below
//! 31) and definite lengths of at most four bytes. The reader is strict — X.690 §10.1
//! "The definite form of length encoding shall be used, encoded in the minimum number of
//! octets" — so that bytes copied from the input stay canonical DER.

use crate::spiffe::DerError as SpiffeDerError;

/// DER tag of `BOOLEAN`.
pub(crate) const TAG_BOOLEAN: u8 = 0x01;
/// DER tag of `OCTET STRING`.
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
/// DER tag of `UTF8String`.
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
/// DER tag of a constructed `SEQUENCE`.
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
/// `[3] EXPLICIT`, constructed, context-specific: the `extensions` field of a
/// `TBSCertificate` (RFC 5280 §4.1).
pub(crate) const TAG_EXTENSIONS: u8 = 0xa3;

/// Why bytes are not the DER this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DerError {
    /// The input ends inside an element.
    #[error("DER input is truncated")]
    Truncated,
    /// A multi-byte (high-number) tag, which X.509 certificates do not use.
    #[error("DER tag 0x{0:02x} uses the high-tag-number form, which is not supported")]
    HighTagNumber(u8),
    /// An indefinite length, which DER forbids.
    #[error("DER length is indefinite, which DER forbids")]
    IndefiniteLength,
    /// A length not in its shortest form, which DER forbids.
    #[error("DER length is not minimally encoded")]
    NonMinimalLength,
    /// A length of more than four bytes.
    #[error("DER length is too large")]
    LengthTooLarge,
    /// An element has another tag than the structure requires.
    #[error("DER element has tag 0x{found:02x}, expected 0x{expected:02x}")]
    UnexpectedTag {
        /// The tag found.
        found: u8,
        /// The tag required.
        expected: u8,
    },
    /// Bytes follow the element.
    #[error("{0} bytes follow the DER element")]
    TrailingBytes(usize),
}

/// One element: its tag, its content and its whole encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Element<'a> {
    pub(crate) tag: u8,
    pub(crate) content: &'a [u8],
    pub(crate) raw: &'a [u8],
}

/// Reads the element at the start of `input`; returns it and the bytes after it.
pub(crate) fn read(input: &[u8]) -> Result<(Element<'_>, &[u8]), DerError> {
    let &tag = input.first().ok_or(DerError::Truncated)?;
    // X.690 §8.1.2.4: tag numbers of 31 and above use the subsequent-octets form.
    if tag & 0x1f == 0x1f {
        return Err(DerError::HighTagNumber(tag));
    }
    // The tag-length reading (X.690 §10.1 minimal definite lengths) is the SPIFFE
    // certificate-shape check's; only its length errors can come back.
    let (tag, content, after) = crate::spiffe::read_element(input).map_err(|e| match e {
        SpiffeDerError::IndefiniteLength => DerError::IndefiniteLength,
        SpiffeDerError::NonMinimalLength => DerError::NonMinimalLength,
        SpiffeDerError::LengthTooLarge => DerError::LengthTooLarge,
        _ => DerError::Truncated,
    })?;
    let raw = input
        .get(..input.len() - after.len())
        .ok_or(DerError::Truncated)?;
    Ok((Element { tag, content, raw }, after))
}

/// Reads exactly one element with tag `expected` filling `input`.
pub(crate) fn read_only(input: &[u8], expected: u8) -> Result<Element<'_>, DerError> {
    let (element, rest) = read(input)?;
    if element.tag != expected {
        return Err(DerError::UnexpectedTag {
            found: element.tag,
            expected,
        });
    }
    if !rest.is_empty() {
        return Err(DerError::TrailingBytes(rest.len()));
    }
    Ok(element)
}

/// The elements of a constructed element's content, in order.
pub(crate) fn children(content: &[u8]) -> Result<Vec<Element<'_>>, DerError> {
    let mut out = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let (element, after) = read(rest)?;
        out.push(element);
        rest = after;
    }
    Ok(out)
}

/// Appends a DER length (X.690 §8.1.3, in the minimal form §10.1 requires).
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // `len < 0x80` fits in one byte.
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let significant = bytes.get(skip..).unwrap_or_default();
    // At most `size_of::<usize>()` bytes, so the count fits in the low seven bits.
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

/// Encodes one element from its tag and content.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip_in_minimal_form() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536, 1 << 20] {
            let content = vec![0xabu8; len];
            let encoded = tlv(TAG_OCTET_STRING, &content);
            let element = read_only(&encoded, TAG_OCTET_STRING).unwrap();
            assert_eq!(element.content, &content[..]);
            assert_eq!(element.raw, &encoded[..]);
        }
        assert_eq!(tlv(TAG_OCTET_STRING, &[0; 200])[..3], [0x04, 0x81, 200]);
    }

    #[test]
    fn non_canonical_lengths_are_rejected() {
        assert_eq!(
            read(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).unwrap_err(),
            DerError::NonMinimalLength
        );
        assert_eq!(
            read(&[0x04, 0x82, 0x00, 0x80]).unwrap_err(),
            DerError::NonMinimalLength
        );
        assert_eq!(read(&[0x30, 0x80]).unwrap_err(), DerError::IndefiniteLength);
        assert_eq!(
            read(&[0x04, 0x85, 1, 0, 0, 0, 0]).unwrap_err(),
            DerError::LengthTooLarge
        );
        assert_eq!(read(&[0x04, 0x03, 1]).unwrap_err(), DerError::Truncated);
        assert_eq!(
            read(&[0x1f, 0x01, 0]).unwrap_err(),
            DerError::HighTagNumber(0x1f)
        );
        assert_eq!(
            read_only(&[0x04, 0x00, 0x00], TAG_OCTET_STRING).unwrap_err(),
            DerError::TrailingBytes(1)
        );
    }
}
