//! C2SP tlog-tiles: tile coordinates, paths and contents.
//!
//! A tile is a row of 256 consecutive stored hashes at a tree level that is a multiple of
//! eight. The spec (c2sp.org/tlog-tiles, "Merkle Tree"):
//!
//! > the *n*-th tile at level *l*, with *n* and *l* starting at 0, is the sequence of the
//! > following Merkle Tree Hashes, with *i* from 0 to 255:
//! > `MTH(D[(n * 256 + i) * 256**l : (n * 256 + i + 1) * 256**l])`
//!
//! so tile `(l, n)` holds the stored hashes of level `8·l`, indexes `n·256 ..`; they are
//! read straight from the [`HashReader`](super::HashReader) layout. Any stored hash of
//! levels `8·l ..= 8·l + 8` inside the tile's span is recomputed from the tile with
//! [`TileId::hash_at`], which is how a client verifies proofs from fetched tiles.

use super::stored::{HashReader, TreeError, read_checked, stored_hash_index};
use super::{Hash, MAX_TREE_SIZE, node_hash};

/// Tree levels per tile row (the spec's tile height).
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile (2^[`TILE_HEIGHT`]).
pub const TILE_WIDTH: u16 = 256;
/// Bytes in a full tile: "Full tiles MUST be exactly 256 hashes wide, or 8,192 bytes."
pub const FULL_TILE_BYTES: usize = TILE_WIDTH as usize * 32;

/// The coordinates of a Merkle tree tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// The tile level `L`: the tile holds hashes of tree level `8·L`.
    pub level: u8,
    /// The tile index `N` within its level.
    pub index: u64,
    /// Number of hashes, 1..=256; 256 is a full tile, anything less a partial one.
    pub width: u16,
}

/// The coordinates of an entry bundle (the entries behind a level-0 tile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryBundleId {
    /// The bundle index `N`, the same as the level-0 tile's.
    pub index: u64,
    /// Number of entries, 1..=256; 256 is a full bundle.
    pub width: u16,
}

/// A parsed tile-API path: either a hash tile or an entry bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`
    Hashes(TileId),
    /// `tile/entries/<N>[.p/<W>]`
    Entries(EntryBundleId),
}

/// Why a tile path was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TilePathError {
    /// The path does not start with `tile/`.
    #[error("not a tile path")]
    NotATilePath,
    /// The level is not a decimal 0..=63 without leading zeroes.
    #[error("bad tile level")]
    BadLevel,
    /// The index is not in the spec's `x001/x234/067` form, or not the shortest such form.
    #[error("bad tile index encoding")]
    BadIndex,
    /// The `.p/<W>` suffix is not a decimal 1..=255 without leading zeroes.
    #[error("bad partial tile width")]
    BadWidth,
    /// The tile lies beyond the largest supported tree.
    #[error("tile beyond the largest supported tree")]
    OutOfRange,
}

/// Why a hash could not be taken from a tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TileDataError {
    /// The tile data is not `width × 32` bytes.
    #[error("tile data is {actual} bytes, the tile needs {expected}")]
    WrongLength {
        /// `width × 32`.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// The requested hash is not covered by this tile.
    #[error("hash at level {level} index {index} is not in this tile")]
    NotInTile {
        /// The requested tree level.
        level: u8,
        /// The requested index within the level.
        index: u64,
    },
}

/// Encodes a tile index the spec's way: "zero-padded 3-digit path elements. All but the
/// last path element MUST begin with an `x`. For example, index 1234067 will be encoded
/// as `x001/x234/067`."
fn encode_index(mut index: u64, out: &mut String) {
    let mut groups = Vec::with_capacity(7);
    loop {
        groups.push(index % 1000);
        index /= 1000;
        if index == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    for (i, group) in groups.iter().rev().enumerate() {
        if i < last {
            out.push_str(&format!("x{group:03}/"));
        } else {
            out.push_str(&format!("{group:03}"));
        }
    }
}

fn width_suffix(width: u16, out: &mut String) {
    if width < TILE_WIDTH {
        out.push_str(&format!(".p/{width}"));
    }
}

/// Parses a decimal without sign or leading zeroes.
fn parse_canonical_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// Parses `<N>[.p/<W>]` from the remaining path segments.
fn parse_index_and_width(segments: &[&str]) -> Result<(u64, u16), TilePathError> {
    let (index_segments, width) = match segments {
        [head @ .., p, w] if p.ends_with(".p") => {
            let width = parse_canonical_decimal(w)
                .filter(|w| (1..u64::from(TILE_WIDTH)).contains(w))
                .ok_or(TilePathError::BadWidth)?;
            let mut head = head.to_vec();
            let last = p.strip_suffix(".p").ok_or(TilePathError::BadIndex)?;
            head.push(last);
            (head, width as u16)
        }
        _ => (segments.to_vec(), TILE_WIDTH),
    };
    let Some((last, groups)) = index_segments.split_last() else {
        return Err(TilePathError::BadIndex);
    };
    let mut index: u64 = 0;
    for group in groups
        .iter()
        .map(|g| g.strip_prefix('x'))
        .chain([Some(*last)])
    {
        let group = group.ok_or(TilePathError::BadIndex)?;
        if group.len() != 3 || !group.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TilePathError::BadIndex);
        }
        let value: u64 = group.parse().map_err(|_| TilePathError::BadIndex)?;
        index = index
            .checked_mul(1000)
            .and_then(|i| i.checked_add(value))
            .ok_or(TilePathError::BadIndex)?;
    }
    // Only the shortest encoding is canonical: `x000/001` is not index 1's path.
    let mut canonical = String::new();
    encode_index(index, &mut canonical);
    if canonical.split('/').count() != index_segments.len() {
        return Err(TilePathError::BadIndex);
    }
    Ok((index, width))
}

impl TilePath {
    /// Parses a path relative to the log prefix, such as `tile/0/x001/x234/067.p/8` or
    /// `tile/entries/000`. Only the canonical encoding is accepted, so every accepted
    /// path is exactly what [`TileId::path`] / [`EntryBundleId::path`] produce.
    pub fn parse(path: &str) -> Result<TilePath, TilePathError> {
        let rest = path
            .strip_prefix("tile/")
            .ok_or(TilePathError::NotATilePath)?;
        // Bound the work on hostile input: the longest valid path is far below this.
        if rest.len() > 64 {
            return Err(TilePathError::BadIndex);
        }
        let segments: Vec<&str> = rest.split('/').collect();
        let Some((first, rest)) = segments.split_first() else {
            return Err(TilePathError::NotATilePath);
        };
        if *first == "entries" {
            let (index, width) = parse_index_and_width(rest)?;
            if index > MAX_TREE_SIZE >> TILE_HEIGHT {
                return Err(TilePathError::OutOfRange);
            }
            return Ok(TilePath::Entries(EntryBundleId { index, width }));
        }
        let level = parse_canonical_decimal(first)
            .filter(|l| *l <= 63)
            .ok_or(TilePathError::BadLevel)? as u8;
        let (index, width) = parse_index_and_width(rest)?;
        let tile = TileId {
            level,
            index,
            width,
        };
        if !tile.within_max_tree() {
            return Err(TilePathError::OutOfRange);
        }
        Ok(TilePath::Hashes(tile))
    }
}

impl EntryBundleId {
    /// The bundle's path: `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let mut path = String::from("tile/entries/");
        encode_index(self.index, &mut path);
        width_suffix(self.width, &mut path);
        path
    }

    /// The range of leaf indexes the bundle holds.
    pub fn entries(&self) -> std::ops::Range<u64> {
        let start = self.index * u64::from(TILE_WIDTH);
        start..start + u64::from(self.width)
    }
}

impl TileId {
    /// The tile's path: `tile/<L>/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let mut path = format!("tile/{}/", self.level);
        encode_index(self.index, &mut path);
        width_suffix(self.width, &mut path);
        path
    }

    /// The tree level whose hashes this tile holds: `8·L`.
    pub fn tree_level(&self) -> u32 {
        u32::from(self.level) * u32::from(TILE_HEIGHT)
    }

    fn within_max_tree(&self) -> bool {
        // The first hash of the tile must be a subtree of a tree of MAX_TREE_SIZE leaves.
        let level = self.tree_level();
        let first = self.index.checked_mul(u64::from(TILE_WIDTH));
        match first {
            Some(first) if level < 63 => first < (MAX_TREE_SIZE >> level).max(1),
            _ => false,
        }
    }

    /// The tiles of a tree of `size` leaves that the log must serve, full and partial:
    /// "The partial tile at level *l* for a tree of size *s* has `floor(s / 256**l) mod
    /// 256` entries. Empty tiles MUST NOT be served." Only the tiles that are new or
    /// changed since `old_size` are listed (use 0 for all of them).
    pub fn new_tiles(old_size: u64, new_size: u64) -> Vec<TileId> {
        let mut tiles = Vec::new();
        let width = u64::from(TILE_WIDTH);
        for level in 0..8u8 {
            let shift = u32::from(level) * u32::from(TILE_HEIGHT);
            let (old_hashes, new_hashes) = (old_size >> shift, new_size >> shift);
            if new_hashes == 0 {
                break;
            }
            // Tiles from the one the old size left partial (or the next full boundary)
            // up to the one the new size ends in.
            let first = old_hashes / width;
            let end = new_hashes.div_ceil(width);
            for index in first..end {
                let hashes_in_tile = (new_hashes - index * width).min(width);
                let old_in_tile = old_hashes.saturating_sub(index * width).min(width);
                if hashes_in_tile > old_in_tile {
                    tiles.push(TileId {
                        level,
                        index,
                        width: hashes_in_tile as u16,
                    });
                }
            }
        }
        tiles
    }

    /// Reads the tile's contents (`width × 32` bytes) from stored hashes.
    pub fn read<R: HashReader>(&self, reader: &R) -> Result<Vec<u8>, TreeError<R::Error>> {
        let level = self.tree_level() as u8;
        let start = self.index * u64::from(TILE_WIDTH);
        let indexes: Vec<u64> = (start..start + u64::from(self.width))
            .map(|n| stored_hash_index(level, n))
            .collect();
        Ok(read_checked(reader, &indexes)?.concat())
    }

    /// Computes the stored hash `(level, n)` — the hash of leaves `n·2^level ..
    /// (n+1)·2^level` — from this tile's contents, for `8·L ≤ level ≤ 8·L + 8` when the
    /// tile covers every hash below it.
    pub fn hash_at(&self, data: &[u8], level: u8, n: u64) -> Result<Hash, TileDataError> {
        let expected = usize::from(self.width) * 32;
        if data.len() != expected {
            return Err(TileDataError::WrongLength {
                expected,
                actual: data.len(),
            });
        }
        let not_in_tile = TileDataError::NotInTile { level, index: n };
        let base = self.tree_level();
        let depth = u32::from(level)
            .checked_sub(base)
            .filter(|d| *d <= u32::from(TILE_HEIGHT))
            .ok_or(not_in_tile)?;
        // The tile row's hashes under (level, n), relative to the tile's first hash.
        let first = n
            .checked_shl(depth)
            .filter(|first| first >> depth == n)
            .and_then(|first| first.checked_sub(self.index * u64::from(TILE_WIDTH)))
            .ok_or(not_in_tile)?;
        let count = 1u64 << depth;
        if first + count > u64::from(self.width) {
            return Err(not_in_tile);
        }
        let mut row: Vec<Hash> = data
            .chunks_exact(32)
            .skip(first as usize)
            .take(count as usize)
            .filter_map(|chunk| Hash::try_from(chunk).ok())
            .collect();
        while row.len() > 1 {
            row = row
                .chunks_exact(2)
                // `chunks_exact(2)` yields only pairs.
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
        }
        row.first().copied().ok_or(not_in_tile)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MemoryHashStore, leaf_hash, subtree_hash};
    use super::*;

    #[test]
    fn spec_path_examples() {
        let tile = TileId {
            level: 0,
            index: 1_234_067,
            width: 256,
        };
        assert_eq!(tile.path(), "tile/0/x001/x234/067");
        let partial = TileId { width: 8, ..tile };
        assert_eq!(partial.path(), "tile/0/x001/x234/067.p/8");
        assert_eq!(
            TilePath::parse("tile/0/x001/x234/067.p/8"),
            Ok(TilePath::Hashes(partial))
        );
        assert_eq!(
            TilePath::parse("tile/entries/000"),
            Ok(TilePath::Entries(EntryBundleId {
                index: 0,
                width: 256
            }))
        );
        for bad in [
            "tile/00/000",
            "tile/64/000",
            "tile/0/1",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/08",
            "tile/0/x001/x234/067.p",
            "tile/0/",
            "tile/entries/",
            "tiles/0/000",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spec_example_tree_of_70000() {
        // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
        // level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of
        // width 17, and one partial level 2 tile of width 1."
        let tiles = TileId::new_tiles(0, 70_000);
        let count = |level: u8, width: u16| {
            tiles
                .iter()
                .filter(|t| t.level == level && t.width == width)
                .count()
        };
        assert_eq!(count(0, 256), 273);
        assert_eq!(count(0, 112), 1);
        assert_eq!(count(1, 256), 1);
        assert_eq!(count(1, 17), 1);
        assert_eq!(count(2, 1), 1);
        assert_eq!(tiles.len(), 277);
        // "a tree of size 256 will be represented by a full level 0 tile and a partial
        // level 1 tile of width 1."
        assert_eq!(
            TileId::new_tiles(0, 256),
            vec![
                TileId {
                    level: 0,
                    index: 0,
                    width: 256
                },
                TileId {
                    level: 1,
                    index: 0,
                    width: 1
                }
            ]
        );
        // Growing 70,000 → 70,001 changes only the right-edge level-0 tile.
        assert_eq!(
            TileId::new_tiles(70_000, 70_001),
            vec![TileId {
                level: 0,
                index: 273,
                width: 113
            }]
        );
    }

    #[test]
    fn hashes_recomputed_from_tiles_match_stored_hashes() {
        let mut store = MemoryHashStore::new();
        for i in 0u32..70_000 {
            store.append(leaf_hash(&i.to_le_bytes())).unwrap();
        }
        for tile in TileId::new_tiles(0, 70_000) {
            let data = tile.read(&store).unwrap();
            assert_eq!(data.len(), usize::from(tile.width) * 32);
            let base = tile.level * 8;
            let first = tile.index * 256;
            // Every complete subtree inside the tile, at every depth.
            for depth in 0..=8u8 {
                let count = 256u64 >> depth;
                for k in 0..count {
                    let n = (first >> depth) + k;
                    let hash = tile.hash_at(&data, base + depth, n);
                    let covered = (k + 1) << depth <= u64::from(tile.width);
                    if covered {
                        let lo = n << (base + depth);
                        let hi = (n + 1) << (base + depth);
                        assert_eq!(hash.unwrap(), subtree_hash(lo, hi, &store).unwrap());
                    } else {
                        assert!(hash.is_err());
                    }
                }
            }
            assert!(tile.hash_at(&data[1..], base, first).is_err());
            assert!(tile.hash_at(&data, base + 9, 0).is_err());
        }
    }
}
