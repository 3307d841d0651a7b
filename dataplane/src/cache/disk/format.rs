//! The on-disk format of the disk tier: a superblock, then fixed-size slots, each a header
//! page (the block's key, a sequence number, the data's length and checksum) followed by the
//! block's bytes padded to the page size.
//!
//! Everything is little-endian and aligned to [`PAGE`] so that a slot is read and written with
//! `O_DIRECT` in one request. A header is trusted only when its own checksum holds; a block's
//! bytes only when their checksum holds *and* the header names the key, sequence number and
//! length the index expects. A torn write (a crash between sectors), a flipped bit or a slot
//! overwritten while it was being read therefore always shows as a mismatch, never as a block.

use std::sync::Arc;

use crate::cache::{BlockKey, ObjectId};

/// The unit of alignment of every offset and length written or read with `O_DIRECT`.
pub const PAGE: usize = 4096;

/// Bytes of a slot header (one page).
pub const HEADER: usize = PAGE;

const SUPER_MAGIC: &[u8; 8] = b"RCDISK\0\x01";
const SLOT_MAGIC: &[u8; 4] = b"RCB1";
/// Format version written in the superblock; a file of another version is reinitialised.
pub const VERSION: u32 = 1;

/// Bytes of the fixed part of a slot header, before the key's strings.
const FIXED: usize = 40;
/// Most bytes of key strings (origin, bucket, object key, ETag) a header can carry.
pub const MAX_KEY_BYTES: usize = HEADER - FIXED;

/// `n` rounded up to a multiple of [`PAGE`].
pub const fn round_up(n: usize) -> usize {
    n.div_ceil(PAGE) * PAGE
}

/// Bytes one slot takes in the file for blocks of `block_size` bytes.
pub fn slot_size(block_size: u64) -> u64 {
    (HEADER + round_up(block_size as usize)) as u64
}

/// The superblock: what the file's slots were laid out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    /// Format version.
    pub version: u32,
    /// Block size the slots hold.
    pub block_size: u64,
}

impl Superblock {
    /// The superblock's page.
    pub fn encode(&self) -> [u8; PAGE] {
        let mut page = [0u8; PAGE];
        page[..8].copy_from_slice(SUPER_MAGIC);
        page[8..12].copy_from_slice(&self.version.to_le_bytes());
        page[12..20].copy_from_slice(&self.block_size.to_le_bytes());
        let crc = crc32c::crc32c(&page[..PAGE - 4]);
        page[PAGE - 4..].copy_from_slice(&crc.to_le_bytes());
        page
    }

    /// Reads a superblock page: `Err(SuperError::Foreign)` when the page is not one of ours
    /// (another program's file), `Err(SuperError::Corrupt)` when it is ours but damaged.
    pub fn decode(page: &[u8]) -> Result<Self, SuperError> {
        if page.len() < PAGE || &page[..8] != SUPER_MAGIC {
            return Err(SuperError::Foreign);
        }
        let crc = u32::from_le_bytes(page[PAGE - 4..PAGE].try_into().expect("4 bytes"));
        if crc != crc32c::crc32c(&page[..PAGE - 4]) {
            return Err(SuperError::Corrupt);
        }
        Ok(Self {
            version: u32::from_le_bytes(page[8..12].try_into().expect("4 bytes")),
            block_size: u64::from_le_bytes(page[12..20].try_into().expect("8 bytes")),
        })
    }
}

/// Why a superblock page was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuperError {
    /// Not a rangecache disk cache file.
    Foreign,
    /// Ours, but its checksum does not hold.
    Corrupt,
}

/// What a valid slot header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotHeader {
    /// The block held.
    pub key: BlockKey,
    /// Write sequence number: the higher of two slots holding one key is the newer.
    pub seq: u64,
    /// Bytes of block data after the header.
    pub len: u32,
    /// crc32c of those bytes.
    pub data_crc: u32,
}

/// Why a slot's header or data was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// No header was ever written here, or it was invalidated (zeroed).
    Empty,
    /// The header's own checksum does not hold (torn or flipped).
    HeaderChecksum,
    /// The header is valid but describes another key, sequence or length than expected:
    /// the slot was reused.
    Superseded,
    /// The data's checksum does not hold (torn write or flipped bits).
    DataChecksum,
}

/// Writes `header` for `data` into the first [`HEADER`] bytes of `page`. `None` when the
/// key's strings do not fit a header ([`MAX_KEY_BYTES`]).
pub fn encode_header(page: &mut [u8], key: &BlockKey, seq: u64, data: &[u8]) -> Option<()> {
    let id = &key.object;
    let parts = [id.origin(), id.bucket(), id.key(), &*key.etag];
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total > MAX_KEY_BYTES || parts.iter().any(|p| p.len() > u16::MAX as usize) {
        return None;
    }
    let page = &mut page[..HEADER];
    page.fill(0);
    page[..4].copy_from_slice(SLOT_MAGIC);
    page[8..16].copy_from_slice(&seq.to_le_bytes());
    page[16..24].copy_from_slice(&key.index.to_le_bytes());
    page[24..28].copy_from_slice(&(data.len() as u32).to_le_bytes());
    page[28..32].copy_from_slice(&crc32c::crc32c(data).to_le_bytes());
    let mut at = FIXED;
    for (i, p) in parts.iter().enumerate() {
        page[32 + 2 * i..34 + 2 * i].copy_from_slice(&(p.len() as u16).to_le_bytes());
        page[at..at + p.len()].copy_from_slice(p.as_bytes());
        at += p.len();
    }
    let crc = crc32c::crc32c(&page[8..]);
    page[4..8].copy_from_slice(&crc.to_le_bytes());
    Some(())
}

/// Reads the header in the first [`HEADER`] bytes of `page`. `intern` turns the decoded
/// (origin, bucket, key) into an [`ObjectId`], so recovery can share one id between the
/// blocks of an object.
pub fn decode_header(
    page: &[u8],
    intern: impl FnOnce(&str, &str, &str) -> ObjectId,
) -> Result<SlotHeader, SlotError> {
    let page = &page[..HEADER];
    if &page[..4] != SLOT_MAGIC {
        return Err(SlotError::Empty);
    }
    let u32_at = |at: usize| u32::from_le_bytes(page[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(page[at..at + 8].try_into().expect("8 bytes"));
    if u32_at(4) != crc32c::crc32c(&page[8..]) {
        return Err(SlotError::HeaderChecksum);
    }
    let mut parts = [""; 4];
    let mut at = FIXED;
    for (i, part) in parts.iter_mut().enumerate() {
        let len = u16::from_le_bytes(page[32 + 2 * i..34 + 2 * i].try_into().expect("2 bytes"));
        let end = at + len as usize;
        // A header that passed its checksum was written by `encode_header`: in bounds, UTF-8.
        let bytes = page.get(at..end).ok_or(SlotError::HeaderChecksum)?;
        *part = std::str::from_utf8(bytes).map_err(|_| SlotError::HeaderChecksum)?;
        at = end;
    }
    let object = intern(parts[0], parts[1], parts[2]);
    Ok(SlotHeader {
        key: BlockKey::new(object, Arc::from(parts[3]), u64_at(16)),
        seq: u64_at(8),
        len: u32_at(24),
        data_crc: u32_at(28),
    })
}

/// Checks a slot read back (`slot` = header page, then data) against what the index expects:
/// the same key, sequence number and length, and data whose checksum holds. Returns the data.
pub fn verify<'a>(
    slot: &'a [u8],
    key: &BlockKey,
    seq: u64,
    len: u32,
) -> Result<&'a [u8], SlotError> {
    let header = decode_header(slot, ObjectId::new)?;
    if header.seq != seq || header.len != len || header.key != *key {
        return Err(SlotError::Superseded);
    }
    let data = slot
        .get(HEADER..HEADER + len as usize)
        .ok_or(SlotError::DataChecksum)?;
    if crc32c::crc32c(data) != header.data_crc {
        return Err(SlotError::DataChecksum);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str, etag: &str, i: u64) -> BlockKey {
        BlockKey::new(ObjectId::new("origin", "bucket", k), Arc::from(etag), i)
    }

    fn slot(key: &BlockKey, seq: u64, data: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER + round_up(data.len())];
        encode_header(&mut buf, key, seq, data).unwrap();
        buf[HEADER..HEADER + data.len()].copy_from_slice(data);
        buf
    }

    #[test]
    fn a_slot_round_trips_and_names_its_key() {
        let k = key("dir/ünï.parquet", "\"abc-3\"", 7);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31) as u8).collect();
        let s = slot(&k, 42, &data);
        assert_eq!(verify(&s, &k, 42, data.len() as u32).unwrap(), &data[..]);
        let h = decode_header(&s, ObjectId::new).unwrap();
        assert_eq!((h.key, h.seq, h.len), (k, 42, 10_000));
    }

    #[test]
    fn another_key_version_sequence_or_length_is_superseded() {
        let k = key("a", "\"v1\"", 0);
        let s = slot(&k, 5, b"hello");
        for (other, seq, len) in [
            (key("a", "\"v2\"", 0), 5, 5),
            (key("b", "\"v1\"", 0), 5, 5),
            (key("a", "\"v1\"", 1), 5, 5),
            (k.clone(), 6, 5),
            (k.clone(), 5, 4),
        ] {
            assert_eq!(verify(&s, &other, seq, len), Err(SlotError::Superseded));
        }
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let k = key("obj", "\"e\"", 3);
        let data = vec![0x5au8; 600];
        let good = slot(&k, 9, &data);
        // Every bit of the header's used part and of the data.
        let positions = (0..FIXED + 20).chain(HEADER..HEADER + data.len());
        for byte in positions {
            for bit in 0..8 {
                let mut s = good.clone();
                s[byte] ^= 1 << bit;
                let got = verify(&s, &k, 9, 600);
                assert!(got.is_err(), "flip at byte {byte} bit {bit} passed");
            }
        }
    }

    #[test]
    fn a_torn_write_is_a_data_checksum_failure() {
        let k = key("obj", "\"e\"", 0);
        let old = vec![1u8; 3 * PAGE];
        let new = vec![2u8; 3 * PAGE];
        // The new header and first data page reached the disk; the rest is the old block's.
        let mut s = slot(&k, 2, &new);
        s[HEADER + PAGE..].copy_from_slice(&slot(&k, 1, &old)[HEADER + PAGE..]);
        assert_eq!(
            verify(&s, &k, 2, new.len() as u32),
            Err(SlotError::DataChecksum)
        );
        // The old header survived over new data: the index expects the new sequence number.
        let mut s = slot(&k, 1, &old);
        s[HEADER..].copy_from_slice(&new);
        assert_eq!(
            verify(&s, &k, 2, new.len() as u32),
            Err(SlotError::Superseded)
        );
        assert_eq!(
            verify(&s, &k, 1, old.len() as u32),
            Err(SlotError::DataChecksum)
        );
    }

    #[test]
    fn zeroes_and_foreign_bytes_are_not_headers_or_superblocks() {
        let zero = vec![0u8; PAGE];
        assert_eq!(decode_header(&zero, ObjectId::new), Err(SlotError::Empty));
        assert_eq!(Superblock::decode(&zero), Err(SuperError::Foreign));
        let mut text = b"PAR1 this is somebody else's file".to_vec();
        text.resize(PAGE, b' ');
        assert_eq!(Superblock::decode(&text), Err(SuperError::Foreign));
        let sb = Superblock {
            version: VERSION,
            block_size: 1 << 20,
        };
        let mut page = sb.encode();
        assert_eq!(Superblock::decode(&page), Ok(sb));
        page[13] ^= 1;
        assert_eq!(Superblock::decode(&page), Err(SuperError::Corrupt));
    }

    #[test]
    fn keys_too_long_for_a_header_are_refused() {
        let long = "k".repeat(MAX_KEY_BYTES);
        let mut page = vec![0u8; HEADER];
        assert!(encode_header(&mut page, &key(&long, "\"e\"", 0), 1, b"x").is_none());
        let fits = "k".repeat(MAX_KEY_BYTES - "origin".len() - "bucket".len() - 3);
        assert!(encode_header(&mut page, &key(&fits, "\"e\"", 0), 1, b"x").is_some());
    }
}
