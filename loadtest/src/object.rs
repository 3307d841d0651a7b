//! Synthetic object names: an object exists at the simulator without an upload when the last
//! segment of its key ends in `-size-<N>`, where N is its size in bytes or a size with a unit:
//! `bench/obj-000123-size-67108864` and `pq-0007-size-64MiB` are both valid. Any bucket
//! exists. Content is [`crate::content`] of `(bucket, key, version 0)`.

use crate::units::parse_size;

/// The size a synthetic key declares, or `None` when the key is not synthetic.
pub fn synthetic_size(key: &str) -> Option<u64> {
    let last = key.rsplit('/').next()?;
    let idx = last.rfind("-size-")?;
    parse_size(&last[idx + "-size-".len()..]).ok()
}

/// The synthetic key of object `index` with `size` bytes under `prefix` (e.g. "pq").
pub fn synthetic_key(prefix: &str, index: usize, size: u64) -> String {
    format!("{prefix}-{index:06}-size-{size}")
}

/// One object a workload reads: where it lives and how big it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Key within the bucket (no leading slash).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_synthetic_names() {
        assert_eq!(synthetic_size("obj-000123-size-67108864"), Some(67_108_864));
        assert_eq!(synthetic_size("a/b/pq-0007-size-64MiB"), Some(64 << 20));
        assert_eq!(synthetic_size("dir-size-5/plain.parquet"), None);
        assert_eq!(synthetic_size("obj-size-"), None);
        assert_eq!(synthetic_size("notes.txt"), None);
        let k = synthetic_key("pq", 12, 1000);
        assert_eq!(k, "pq-000012-size-1000");
        assert_eq!(synthetic_size(&k), Some(1000));
    }
}
