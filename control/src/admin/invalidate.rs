//! `POST /cache/invalidate?origin=O&bucket=B[&key=K]`: what a fleet peer sends after a write
//! through it. Drops the object's (or, without `key`, the bucket's) metadata, named as the
//! cache names it: origin name and origin-side bucket. Blocks stay: they are keyed by ETag,
//! and the next read learns the new one. Answers which node did it.

use http::StatusCode;
use rangecache_dataplane::cache::ObjectId;
use rangecache_dataplane::fleet::Invalidation;
use serde_json::json;
use tracing::debug;

use super::{json, problem, query, AdminState, Reply};

const USAGE: &str = "POST /cache/invalidate?origin=O&bucket=B[&key=K]";

/// Parse the query. Unknown or repeated parameters are errors, as for `/cache/purge`.
fn parse(query: Option<&str>) -> Result<Invalidation, String> {
    let pairs = query::parse(query.unwrap_or_default()).map_err(|e| e.to_string())?;
    let (mut origin, mut bucket, mut key) = (None, None, None);
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "origin" => &mut origin,
            "bucket" => &mut bucket,
            "key" => &mut key,
            _ => {
                return Err(format!(
                    "unknown query parameter '{name}'; expected {USAGE}"
                ))
            }
        };
        if slot.replace(value).is_some() {
            return Err(format!("'{name}' is given more than once"));
        }
    }
    let (Some(origin), Some(bucket)) = (
        origin.filter(|o| !o.is_empty()),
        bucket.filter(|b| !b.is_empty()),
    ) else {
        return Err(format!("origin and bucket are required; expected {USAGE}"));
    };
    Ok(match key {
        Some(k) if k.is_empty() => return Err("key must not be empty".into()),
        Some(k) => Invalidation::Object(ObjectId::new(&origin, &bucket, &k)),
        None => Invalidation::Bucket { origin, bucket },
    })
}

/// Handle `POST /cache/invalidate`.
pub(super) fn invalidate(state: &AdminState, query: Option<&str>) -> Reply {
    let what = match parse(query) {
        Ok(what) => what,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, &detail),
    };
    // A disabled cache holds nothing: the invalidation holds trivially.
    let objects = what.apply(&state.cache.meta);
    debug!(?what, objects, "fleet invalidation");
    let body = json!({
        "node": state.settings.load().fleet.node_id,
        "objects": objects,
    });
    json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use http::Method;
    use rangecache_dataplane::cache::{Cache, CacheConfig, ObjectMeta};

    use super::super::respond;
    use super::super::tests::{body, resolved, state_with_cache};
    use super::*;

    fn meta() -> Arc<ObjectMeta> {
        Arc::new(ObjectMeta {
            size: 1,
            etag: Arc::from("\"e\""),
            last_modified: None,
            headers: Vec::new(),
            fetched: Instant::now(),
            checksums_known: true,
        })
    }

    #[test]
    fn drops_one_object_or_a_bucket() {
        let cache = Cache::new(CacheConfig {
            memory: 1 << 20,
            block_size: 64 << 10,
            metadata_ttl: Duration::from_secs(60),
            metadata_entries: 100,
            ..CacheConfig::default()
        });
        for key in ["a b/c+d", "x", "y"] {
            let id = ObjectId::new("default", "bkt", key);
            cache.meta.insert(id, meta(), cache.meta.epoch());
        }
        let other = ObjectId::new("default", "other", "x");
        cache.meta.insert(other.clone(), meta(), cache.meta.epoch());
        let s = state_with_cache(resolved(), cache);
        let target = "/cache/invalidate?origin=default&bucket=bkt&key=a%20b%2Fc%2Bd";
        let r = respond(&s, &Method::POST, target);
        assert_eq!(r.status(), StatusCode::OK, "{}", body(&r));
        let v: serde_json::Value = serde_json::from_str(&body(&r)).unwrap();
        assert_eq!(v["objects"], 1);
        assert!(!v["node"].as_str().unwrap().is_empty());
        assert!(s
            .cache
            .meta
            .get(&ObjectId::new("default", "bkt", "a b/c+d"))
            .is_none());
        assert!(s
            .cache
            .meta
            .get(&ObjectId::new("default", "bkt", "x"))
            .is_some());
        let r = respond(
            &s,
            &Method::POST,
            "/cache/invalidate?origin=default&bucket=bkt",
        );
        let v: serde_json::Value = serde_json::from_str(&body(&r)).unwrap();
        assert_eq!(v["objects"], 2);
        assert!(s.cache.meta.get(&other).is_some(), "other buckets stay");
    }

    #[test]
    fn bad_requests_are_400() {
        let s = state_with_cache(resolved(), Cache::new(CacheConfig::default()));
        for (q, want) in [
            ("bucket=b&key=k", "origin and bucket are required"),
            ("origin=default&key=k", "origin and bucket are required"),
            ("origin=default&bucket=b&key=", "must not be empty"),
            (
                "origin=default&bucket=b&prefix=p",
                "unknown query parameter",
            ),
            ("origin=a&origin=b&bucket=b", "more than once"),
        ] {
            let r = respond(&s, &Method::POST, &format!("/cache/invalidate?{q}"));
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
            assert!(body(&r).contains(want), "{q}: {}", body(&r));
        }
        let r = respond(&s, &Method::GET, "/cache/invalidate?origin=o&bucket=b");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn targets_round_trip() {
        for what in [
            Invalidation::Object(ObjectId::new("default", "b.k", "dir/é ü+%&=?.parquet")),
            Invalidation::Bucket {
                origin: "o&x".into(),
                bucket: "b".into(),
            },
        ] {
            let target = crate::fleet::invalidate_target(&what);
            let query = target.strip_prefix("/cache/invalidate?").unwrap();
            assert_eq!(parse(Some(query)).unwrap(), what, "{target}");
        }
    }
}
