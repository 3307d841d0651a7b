//! Cache keys: an object's identity, built once per request, and the block key derived from it.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, OnceLock};

/// One object at one origin: (origin name, origin bucket, object key), in a single shared string.
///
/// Built once per request and cloned (a reference-count increment) into every [`BlockKey`] of
/// that request, so hashing and comparing a block key never allocates. The three parts are
/// encoded as `<origin len>:<origin><bucket len>:<bucket><key>`: the lengths make the encoding
/// injective whatever bytes the parts hold, so `("a", "b/c")` and `("a/b", "c")` never collide
/// (a plain `/` join would make them the same string).
///
/// The string is hashed once, when the id is built, with a key drawn at random per process
/// (so clients cannot choose keys that collide); `Hash` feeds that one `u64` to the table's
/// hasher, which keeps a block lookup from rehashing a long object key every time.
#[derive(Clone)]
pub struct ObjectId {
    text: Arc<str>,
    hash: u64,
}

impl ObjectId {
    /// The identity of object `key` in bucket `bucket` at origin `origin`.
    ///
    /// `origin` is the configured origin's name and `bucket` the bucket as the origin knows it
    /// (after any bucket mapping), so two client-facing names for one origin object share
    /// cached blocks. Any strings are accepted, empty ones included.
    pub fn new(origin: &str, bucket: &str, key: &str) -> Self {
        use std::fmt::Write;
        // Two length prefixes of at most 20 digits each, plus separators.
        let mut s = String::with_capacity(origin.len() + bucket.len() + key.len() + 44);
        // Writing to a `String` cannot fail.
        let _ = write!(s, "{}:{origin}{}:{bucket}{key}", origin.len(), bucket.len());
        // One random key per process, shared by every id, so equal ids hash alike.
        static SEED: OnceLock<RandomState> = OnceLock::new();
        let hash = SEED.get_or_init(RandomState::new).hash_one(&s);
        Self {
            text: s.into(),
            hash,
        }
    }

    /// The origin's name, as given to [`ObjectId::new`].
    pub fn origin(&self) -> &str {
        self.parts().0
    }

    /// The bucket, as given to [`ObjectId::new`].
    pub fn bucket(&self) -> &str {
        self.parts().1
    }

    /// The object key, as given to [`ObjectId::new`].
    pub fn key(&self) -> &str {
        self.parts().2
    }

    /// The encoded form: unique per (origin, bucket, key), stable for the life of the process.
    /// Useful as a log field or a map key; not meant to be parsed by callers.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Splits the encoding back into its parts. Only [`ObjectId::new`] builds the string, so the
    /// prefixes are well formed and the slices fall on the char boundaries `new` wrote.
    fn parts(&self) -> (&str, &str, &str) {
        let (origin, rest) = split_prefixed(&self.text);
        let (bucket, key) = split_prefixed(rest);
        (origin, bucket, key)
    }
}

/// Splits `"<n>:<n bytes><rest>"` into the `n` bytes and the rest.
fn split_prefixed(s: &str) -> (&str, &str) {
    let colon = s.find(':').expect("ObjectId encoding has a length prefix");
    let len: usize = s[..colon]
        .parse()
        .expect("ObjectId length prefix is a number");
    s[colon + 1..].split_at(len)
}

impl PartialEq for ObjectId {
    fn eq(&self, other: &Self) -> bool {
        // Ids cloned from one request share the string; different hashes are different strings.
        Arc::ptr_eq(&self.text, &other.text) || (self.hash == other.hash && self.text == other.text)
    }
}

impl Eq for ObjectId {}

impl Hash for ObjectId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (origin, bucket, key) = self.parts();
        f.debug_struct("ObjectId")
            .field("origin", &origin)
            .field("bucket", &bucket)
            .field("key", &key)
            .finish()
    }
}

/// One block of one version of one object: what the block store is keyed by.
///
/// The ETag is part of the key, so a changed object never serves blocks of its old version:
/// its new blocks live under new keys and the old ones age out (or are purged). Cloning is two
/// reference-count increments.
#[derive(Clone, Debug)]
pub struct BlockKey {
    /// The object.
    pub object: ObjectId,
    /// The object's ETag exactly as the origin sent it (quotes included); compared byte-wise.
    pub etag: Arc<str>,
    /// Block number within the object: the block covers bytes
    /// `[index * block_size, min((index + 1) * block_size, object size))`.
    pub index: u64,
}

impl BlockKey {
    /// The key of block `index` of `object` at version `etag`. The caller builds `object` and
    /// `etag` once per request and clones them per block.
    pub fn new(object: ObjectId, etag: Arc<str>, index: u64) -> Self {
        Self {
            object,
            etag,
            index,
        }
    }
}

impl PartialEq for BlockKey {
    fn eq(&self, other: &Self) -> bool {
        // Cheapest test first; keys of one request share their strings, and `Arc<str>`'s own
        // `==` compares the bytes even when both sides point at the same string.
        self.index == other.index
            && self.object == other.object
            && (Arc::ptr_eq(&self.etag, &other.etag) || self.etag == other.etag)
    }
}

impl Eq for BlockKey {}

impl Hash for BlockKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.object.hash(state);
        self.etag.hash(state);
        state.write_u64(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip() {
        let cases = [
            ("origin", "bucket", "path/to/key.parquet"),
            ("", "", ""),
            ("o", "b", ""),
            ("12:x", "3:yz", "0:"),
            ("ünï", "cödé", "ключ/🙂"),
            ("a:b", ":", "::"),
        ];
        for (o, b, k) in cases {
            let id = ObjectId::new(o, b, k);
            assert_eq!((id.origin(), id.bucket(), id.key()), (o, b, k), "{id:?}");
        }
    }

    #[test]
    fn no_ambiguity_between_parts() {
        let ids = [
            ObjectId::new("a", "b/c", "d"),
            ObjectId::new("a/b", "c", "d"),
            ObjectId::new("a", "b", "c/d"),
            ObjectId::new("a", "bc", "d"),
            ObjectId::new("ab", "c", "d"),
            ObjectId::new("a", "", "bcd"),
            ObjectId::new("", "a", "bcd"),
            ObjectId::new("1:a", "b", "c"),
            ObjectId::new("1", "a", "1:bc"),
        ];
        for (i, x) in ids.iter().enumerate() {
            for (j, y) in ids.iter().enumerate() {
                assert_eq!(i == j, x == y, "{x:?} vs {y:?}");
                assert_eq!(i == j, x.as_str() == y.as_str(), "{x:?} vs {y:?}");
            }
        }
    }

    #[test]
    fn equal_parts_give_equal_ids() {
        let x = ObjectId::new("o", "b", "k");
        let y = ObjectId::new("o", "b", "k");
        assert_eq!(x, y);
        // Built apart, hashed alike: every id shares the per-process key.
        let h = RandomState::new();
        assert_eq!(h.hash_one(&x), h.hash_one(&y));
        let key = |id: &ObjectId, etag: &str, i| BlockKey::new(id.clone(), etag.into(), i);
        assert_eq!(key(&x, "\"e\"", 3), key(&y, "\"e\"", 3));
        assert_ne!(key(&x, "\"e\"", 3), key(&y, "\"e\"", 4));
        assert_ne!(key(&x, "\"e\"", 3), key(&y, "\"f\"", 3));
    }
}
