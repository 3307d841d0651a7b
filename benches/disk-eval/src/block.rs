//! The blocks every engine stores: deterministic bytes per block number, so a read can be
//! checked without keeping what was written.

use bytes::Bytes;

/// A template of `size` bytes; block `index` is the template with its first and last eight
/// bytes replaced by `index` (so every block differs, and a block served under the wrong key
/// or cut short is caught).
#[derive(Clone)]
pub struct Blocks {
    template: Vec<u8>,
}

impl Blocks {
    /// Blocks of `size` bytes (at least 16).
    pub fn new(size: u64) -> Blocks {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let template = (0..size.max(16))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Blocks { template }
    }

    /// Block `index`.
    pub fn block(&self, index: u64) -> Bytes {
        let mut v = self.template.clone();
        let n = v.len();
        v[..8].copy_from_slice(&index.to_le_bytes());
        v[n - 8..].copy_from_slice(&index.to_le_bytes());
        Bytes::from(v)
    }

    /// Whether `b` is block `index` (length, both stamps, and a sample of the middle).
    pub fn check(&self, index: u64, b: &[u8]) -> bool {
        let n = self.template.len();
        let mid = n / 2;
        b.len() == n
            && b[..8] == index.to_le_bytes()
            && b[n - 8..] == index.to_le_bytes()
            && b[mid..mid + 8] == self.template[mid..mid + 8]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_check_themselves_only() {
        let b = Blocks::new(4096);
        assert!(b.check(7, &b.block(7)));
        assert!(!b.check(8, &b.block(7)));
        assert!(!b.check(7, &b.block(7)[..4095]));
    }
}
