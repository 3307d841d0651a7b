//! Objects uploaded with PutObject, kept in memory (synthetic objects need no storage).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One uploaded object.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The bytes.
    pub data: Arc<Vec<u8>>,
    /// Quoted ETag (hex of a hash of the content).
    pub etag: String,
    /// Upload time.
    pub last_modified: SystemTime,
}

/// Uploaded objects by (bucket, key), ordered for listing.
#[derive(Debug, Default)]
pub struct Store {
    objects: Mutex<BTreeMap<(String, String), Stored>>,
}

impl Store {
    /// The object at (bucket, key), if one was uploaded.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Stored> {
        self.lock()
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
    }

    /// Store (or replace) an object.
    pub fn put(&self, bucket: &str, key: &str, obj: Stored) {
        self.lock().insert((bucket.to_owned(), key.to_owned()), obj);
    }

    /// Remove an object; true when one was there.
    pub fn delete(&self, bucket: &str, key: &str) -> bool {
        self.lock()
            .remove(&(bucket.to_owned(), key.to_owned()))
            .is_some()
    }

    /// Up to `max` (key, size, etag, time) of `bucket` whose key starts with `prefix` and sorts
    /// after `after`, in key order; and whether more remain.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        max: usize,
    ) -> (Vec<(String, u64, String, SystemTime)>, bool) {
        let objects = self.lock();
        let mut out = Vec::new();
        let mut more = false;
        let from = (bucket.to_owned(), after.to_owned());
        for ((b, k), o) in objects.range(from..) {
            if b != bucket {
                break;
            }
            if k.as_str() <= after || !k.starts_with(prefix) {
                continue;
            }
            if out.len() == max {
                more = true;
                break;
            }
            out.push((
                k.clone(),
                o.data.len() as u64,
                o.etag.clone(),
                o.last_modified,
            ));
        }
        (out, more)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Stored>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }
}
