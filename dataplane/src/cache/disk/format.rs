//! The on-disk format of the disk tier: a superblock, then fixed-size slots, each a header
//! page (the block's key, a sequence number, the data's length and one checksum per chunk of
//! it) followed by the block's bytes padded to the page size.
//!
//! Everything is little-endian and aligned to [`PAGE`] so that a slot, or any run of its
//! chunks, is read and written with `O_DIRECT`. A header is trusted only when its own checksum
//! holds and it names the key, sequence number and length the index expects; a block's bytes
//! only chunk by chunk, when each chunk's checksum holds. A torn write (a crash between
//! sectors), a flipped bit or a slot overwritten while it was being read therefore always
//! shows as a mismatch, never as a block. Chunk checksums let a read of part of a block read
//! and verify only the chunks it covers, and let a whole-block read hand each verified chunk
//! on before the rest arrive.

use std::sync::Arc;

use crate::cache::{BlockKey, ObjectId};

/// The unit of alignment of every offset and length written or read with `O_DIRECT`.
pub const PAGE: usize = crate::cache::buf::PAGE;

/// Bytes of a slot header (one page).
pub const HEADER: usize = PAGE;

const SUPER_MAGIC: &[u8; 8] = b"RCDISK\0\x01";
const SLOT_MAGIC: &[u8; 4] = b"RCB2";
/// Format version written in the superblock; a file of another version is reinitialised.
/// 2: one checksum per chunk instead of one per block.
pub const VERSION: u32 = 2;

/// Bytes of the fixed part of a slot header, before the chunk checksums.
const FIXED: usize = 40;
/// Most chunks a block is checksummed in.
pub const MAX_CHUNKS: usize = 256;
/// Where the key's strings start: after the fixed part and room for [`MAX_CHUNKS`] checksums.
const STRINGS: usize = FIXED + 4 * MAX_CHUNKS;
/// Most bytes of key strings (origin, bucket, object key, ETag) a header can carry (S3 keys
/// are at most 1,024 bytes).
pub const MAX_KEY_BYTES: usize = HEADER - STRINGS;
/// Fewest bytes a chunk holds: smaller chunks would cost more checksums than they save reads.
const MIN_CHUNK: usize = 4 * PAGE;

/// `n` rounded up to a multiple of [`PAGE`].
pub const fn round_up(n: usize) -> usize {
    n.div_ceil(PAGE) * PAGE
}

/// Bytes one slot takes in the file for blocks of `block_size` bytes.
pub fn slot_size(block_size: u64) -> u64 {
    (HEADER + round_up(block_size as usize)) as u64
}

/// Bytes per checksummed chunk for blocks of `block_size`: at least 16 KiB, a whole number of
/// pages, and few enough that a block has at most [`MAX_CHUNKS`].
pub fn chunk_size(block_size: u64) -> usize {
    round_up((block_size as usize).div_ceil(MAX_CHUNKS)).max(MIN_CHUNK)
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
    /// Bytes per checksummed chunk.
    pub chunk: u32,
}

/// Why a slot's header or data was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// No header was ever written here, or it was invalidated (zeroed).
    Empty,
    /// The header's own checksum does not hold (torn or flipped).
    HeaderChecksum,
    /// The header is valid but describes another key, sequence, length or chunk size than
    /// expected: the slot was reused.
    Superseded,
    /// The data's checksum does not hold (torn write or flipped bits).
    DataChecksum,
}

fn u16_at(page: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(page[at..at + 2].try_into().expect("2 bytes"))
}

fn u32_at(page: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(page[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(page: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(page[at..at + 8].try_into().expect("8 bytes"))
}

/// Writes the header for `data` (block `key`, checksummed in chunks of `chunk` bytes) into
/// the first [`HEADER`] bytes of `page`. `None` when the key's strings do not fit a header
/// ([`MAX_KEY_BYTES`]) or the block has more than [`MAX_CHUNKS`] chunks.
pub fn encode_header(
    page: &mut [u8],
    key: &BlockKey,
    seq: u64,
    data: &[u8],
    chunk: usize,
) -> Option<()> {
    let id = &key.object;
    let parts = [id.origin(), id.bucket(), id.key(), &*key.etag];
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total > MAX_KEY_BYTES || data.len().div_ceil(chunk) > MAX_CHUNKS {
        return None;
    }
    let page = &mut page[..HEADER];
    page.fill(0);
    page[..4].copy_from_slice(SLOT_MAGIC);
    page[8..16].copy_from_slice(&seq.to_le_bytes());
    page[16..24].copy_from_slice(&key.index.to_le_bytes());
    page[24..28].copy_from_slice(&(data.len() as u32).to_le_bytes());
    page[28..32].copy_from_slice(&(chunk as u32).to_le_bytes());
    for (i, c) in data.chunks(chunk).enumerate() {
        let at = FIXED + 4 * i;
        page[at..at + 4].copy_from_slice(&crc32c::crc32c(c).to_le_bytes());
    }
    let mut at = STRINGS;
    for (i, p) in parts.iter().enumerate() {
        page[32 + 2 * i..34 + 2 * i].copy_from_slice(&(p.len() as u16).to_le_bytes());
        page[at..at + p.len()].copy_from_slice(p.as_bytes());
        at += p.len();
    }
    let crc = crc32c::crc32c(&page[8..]);
    page[4..8].copy_from_slice(&crc.to_le_bytes());
    Some(())
}

/// The header page's magic and own checksum hold.
fn check_page(page: &[u8]) -> Result<(), SlotError> {
    if &page[..4] != SLOT_MAGIC {
        return Err(SlotError::Empty);
    }
    if u32_at(page, 4) != crc32c::crc32c(&page[8..HEADER]) {
        return Err(SlotError::HeaderChecksum);
    }
    Ok(())
}

/// The key's strings of a checked header page.
fn strings(page: &[u8]) -> Result<[&str; 4], SlotError> {
    let mut parts = [""; 4];
    let mut at = STRINGS;
    for (i, part) in parts.iter_mut().enumerate() {
        let end = at + u16_at(page, 32 + 2 * i) as usize;
        // A header that passed its checksum was written by `encode_header`: in bounds, UTF-8.
        let bytes = page[..HEADER]
            .get(at..end)
            .ok_or(SlotError::HeaderChecksum)?;
        *part = std::str::from_utf8(bytes).map_err(|_| SlotError::HeaderChecksum)?;
        at = end;
    }
    Ok(parts)
}

/// Reads the header in the first [`HEADER`] bytes of `page`. `intern` turns the decoded
/// (origin, bucket, key) into an [`ObjectId`], so recovery can share one id between the
/// blocks of an object.
pub fn decode_header(
    page: &[u8],
    intern: impl FnOnce(&str, &str, &str) -> ObjectId,
) -> Result<SlotHeader, SlotError> {
    check_page(page)?;
    let parts = strings(page)?;
    let object = intern(parts[0], parts[1], parts[2]);
    Ok(SlotHeader {
        key: BlockKey::new(object, Arc::from(parts[3]), u64_at(page, 16)),
        seq: u64_at(page, 8),
        len: u32_at(page, 24),
        chunk: u32_at(page, 28),
    })
}

/// Checks a header page read back against what the index expects: valid, and naming `key`,
/// sequence number `seq`, `len` bytes of data and chunks of `chunk` bytes. Allocates nothing.
pub fn check_header(
    page: &[u8],
    key: &BlockKey,
    seq: u64,
    len: u32,
    chunk: usize,
) -> Result<(), SlotError> {
    check_page(page)?;
    let id = &key.object;
    let same = u64_at(page, 8) == seq
        && u64_at(page, 16) == key.index
        && u32_at(page, 24) == len
        && u32_at(page, 28) as usize == chunk
        && strings(page)? == [id.origin(), id.bucket(), id.key(), &*key.etag];
    if same {
        Ok(())
    } else {
        Err(SlotError::Superseded)
    }
}

/// Checks `data` — the block's bytes from the start of chunk `first` on, whole chunks except
/// where the block ends — against the chunk checksums of header `page` (checked already with
/// [`check_header`], which fixes `chunk`).
pub fn check_chunks(page: &[u8], chunk: usize, first: usize, data: &[u8]) -> Result<(), SlotError> {
    for (i, c) in data.chunks(chunk).enumerate() {
        let n = first + i;
        if n >= MAX_CHUNKS || crc32c::crc32c(c) != u32_at(page, FIXED + 4 * n) {
            return Err(SlotError::DataChecksum);
        }
    }
    Ok(())
}

/// Checks a whole slot read back (`slot` = header page, then data) against what the index
/// expects: the same key, sequence number, length and chunk size, and chunks whose checksums
/// hold. Returns the data. (Reads check header and chunks as their parts come in; this is the
/// whole-slot form the tests use.)
#[cfg(test)]
pub fn verify<'a>(
    slot: &'a [u8],
    key: &BlockKey,
    seq: u64,
    len: u32,
    chunk: usize,
) -> Result<&'a [u8], SlotError> {
    check_header(slot, key, seq, len, chunk)?;
    let data = slot
        .get(HEADER..HEADER + len as usize)
        .ok_or(SlotError::DataChecksum)?;
    check_chunks(slot, chunk, 0, data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str, etag: &str, i: u64) -> BlockKey {
        BlockKey::new(ObjectId::new("origin", "bucket", k), Arc::from(etag), i)
    }

    /// Chunks of one page, so that small test blocks have several.
    const CHUNK: usize = PAGE;

    fn slot(key: &BlockKey, seq: u64, data: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; HEADER + round_up(data.len())];
        encode_header(&mut buf, key, seq, data, CHUNK).unwrap();
        buf[HEADER..HEADER + data.len()].copy_from_slice(data);
        buf
    }

    #[test]
    fn a_slot_round_trips_and_names_its_key() {
        let k = key("dir/ünï.parquet", "\"abc-3\"", 7);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31) as u8).collect();
        let s = slot(&k, 42, &data);
        assert_eq!(
            verify(&s, &k, 42, data.len() as u32, CHUNK).unwrap(),
            &data[..]
        );
        let h = decode_header(&s, ObjectId::new).unwrap();
        assert_eq!(
            (h.key, h.seq, h.len, h.chunk),
            (k, 42, 10_000, CHUNK as u32)
        );
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
            assert_eq!(
                verify(&s, &other, seq, len, CHUNK),
                Err(SlotError::Superseded)
            );
        }
        assert_eq!(verify(&s, &k, 5, 5, 2 * CHUNK), Err(SlotError::Superseded));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let k = key("obj", "\"e\"", 3);
        let data = vec![0x5au8; PAGE + 600];
        let good = slot(&k, 9, &data);
        // Every bit of the header's used part (fixed fields, both chunk checksums, strings)
        // and of the data.
        let positions = (0..FIXED + 8)
            .chain(STRINGS..STRINGS + 20)
            .chain(HEADER..HEADER + data.len());
        for byte in positions {
            for bit in 0..8 {
                let mut s = good.clone();
                s[byte] ^= 1 << bit;
                let got = verify(&s, &k, 9, data.len() as u32, CHUNK);
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
            verify(&s, &k, 2, new.len() as u32, CHUNK),
            Err(SlotError::DataChecksum)
        );
        // Read in part: the chunk that reached the disk checks out, the others do not.
        assert_eq!(check_header(&s, &k, 2, new.len() as u32, CHUNK), Ok(()));
        let data = &s[HEADER..];
        assert_eq!(check_chunks(&s, CHUNK, 0, &data[..PAGE]), Ok(()));
        assert_eq!(
            check_chunks(&s, CHUNK, 1, &data[PAGE..]),
            Err(SlotError::DataChecksum)
        );
        // The old header survived over new data: the index expects the new sequence number.
        let mut s = slot(&k, 1, &old);
        s[HEADER..].copy_from_slice(&new);
        assert_eq!(
            verify(&s, &k, 2, new.len() as u32, CHUNK),
            Err(SlotError::Superseded)
        );
        assert_eq!(
            verify(&s, &k, 1, old.len() as u32, CHUNK),
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
        assert!(encode_header(&mut page, &key(&long, "\"e\"", 0), 1, b"x", CHUNK).is_none());
        let fits = "k".repeat(MAX_KEY_BYTES - "origin".len() - "bucket".len() - 3);
        assert!(encode_header(&mut page, &key(&fits, "\"e\"", 0), 1, b"x", CHUNK).is_some());
        let many = vec![0u8; (MAX_CHUNKS + 1) * CHUNK];
        assert!(encode_header(&mut page, &key("k", "\"e\"", 0), 1, &many, CHUNK).is_none());
    }

    #[test]
    fn chunks_are_pages_of_at_least_16_kib_and_at_most_256_per_block() {
        assert_eq!(chunk_size(64 << 10), 16 << 10);
        assert_eq!(chunk_size(1 << 20), 16 << 10);
        assert_eq!(chunk_size(8 << 20), 32 << 10);
        assert_eq!(chunk_size(64 << 20), 256 << 10);
        for bs in [4096u64, 100_000, 3 << 20, 1 << 30] {
            let c = chunk_size(bs);
            assert_eq!(c % PAGE, 0);
            assert!((bs as usize).div_ceil(c) <= MAX_CHUNKS, "{bs}");
        }
    }

    #[test]
    fn a_part_read_checks_only_its_chunks() {
        let k = key("obj", "\"e\"", 1);
        let data: Vec<u8> = (0..(3 * PAGE + 100) as u32)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut s = slot(&k, 3, &data);
        // Damage chunk 0: chunks 1.. still check out, chunk 0 does not.
        s[HEADER + 10] ^= 0x40;
        let d = &s[HEADER..HEADER + data.len()];
        assert_eq!(check_chunks(&s, CHUNK, 1, &d[PAGE..]), Ok(()));
        assert_eq!(check_chunks(&s, CHUNK, 2, &d[2 * PAGE..]), Ok(()));
        assert_eq!(
            check_chunks(&s, CHUNK, 0, &d[..PAGE]),
            Err(SlotError::DataChecksum)
        );
        // Chunk 1's bytes checked as chunk 2's: wrong.
        assert_eq!(
            check_chunks(&s, CHUNK, 2, &d[PAGE..2 * PAGE]),
            Err(SlotError::DataChecksum)
        );
    }
}
