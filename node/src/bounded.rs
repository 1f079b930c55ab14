//! Reading inputs of bounded size: a file or stream longer than its limit is refused after
//! reading one byte past the limit, never read whole into memory.

use std::io::Read;
use std::path::Path;

/// Reads `reader` to its end if it holds at most `max` bytes; `None` if it holds more.
pub fn read_at_most(reader: impl Read, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    // One byte beyond the limit tells "too long" from "exactly the limit".
    reader
        .take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() <= max).then_some(bytes))
}

/// [`read_at_most`] of the file at `path`.
pub fn read_file_at_most(path: &Path, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    read_at_most(std::fs::File::open(path)?, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_inclusive() {
        assert_eq!(read_at_most(&b"abc"[..], 3).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_at_most(&b"abcd"[..], 3).unwrap(), None);
        assert_eq!(read_at_most(&b""[..], 0).unwrap(), Some(Vec::new()));
    }
}
