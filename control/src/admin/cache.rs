//! The block cache on the admin endpoint: `GET /cache/stats`, `POST /cache/purge` and the
//! cache's global gauges on `/metrics`.
//!
//! Clients name buckets as they see them; the cache keys objects by origin name and
//! origin-side bucket. A purge maps one to the other through the current snapshot, so purging
//! `renamed` drops what was cached for `prod-renamed` at its origin (whichever client bucket
//! it was read through).

use http::StatusCode;
use rangecache_dataplane::cache::Cache;
use serde_json::json;
use tracing::info;

use super::{json, problem, query, AdminState, Reply};

/// `GET /cache/stats`: the cache's sizing and counters as JSON.
pub(super) fn stats(state: &AdminState) -> Reply {
    let cache = &state.cache;
    let s = cache.stats();
    let config = cache.config();
    let body = json!({
        "node": state.settings.load().fleet.node_id,
        "enabled": cache.enabled(),
        "capacity_bytes": s.capacity,
        "bytes": s.bytes,
        "blocks": s.blocks,
        "objects": s.objects,
        "hits": s.hits,
        "misses": s.misses,
        "hit_ratio": s.hit_ratio(),
        "evictions": s.evictions,
        "insertions": s.insertions,
        "inflight": s.inflight,
        "inflight_bytes": s.budget.used,
        "inflight_capacity_bytes": s.budget.capacity,
        "inflight_waits": s.budget.waits,
        "inflight_wait_timeouts": s.budget.timeouts,
        "prefetch_bytes": s.prefetch.fetched,
        "prefetch_used_bytes": s.prefetch.used,
        "prefetch_unread_evicted_bytes": s.prefetch.unread_evicted,
        "prefetch_cancelled_blocks": s.prefetch.cancelled,
        "block_size": config.block_size,
        "metadata_ttl_seconds": config.metadata_ttl.as_secs_f64(),
        "disk": super::disk::stats_json(cache.disk.as_deref()),
    });
    json(StatusCode::OK, &body)
}

/// Which objects of a bucket a purge drops.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// Every object.
    Bucket,
    /// The object with exactly this key.
    Key(String),
    /// Every object whose key starts with this.
    Prefix(String),
}

/// A parsed `POST /cache/purge` query.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PurgeRequest {
    /// The bucket as clients name it.
    bucket: String,
    scope: Scope,
}

const PURGE_USAGE: &str = "POST /cache/purge?bucket=B[&key=K | &prefix=P]";

/// Parse `bucket=B` with at most one of `key=K` and `prefix=P`. Unknown or repeated
/// parameters are errors: a misspelt `prefx=` must not purge the whole bucket.
fn parse_purge(query: Option<&str>) -> Result<PurgeRequest, String> {
    let pairs = query::parse(query.unwrap_or_default()).map_err(|e| e.to_string())?;
    let (mut bucket, mut key, mut prefix) = (None, None, None);
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "bucket" => &mut bucket,
            "key" => &mut key,
            "prefix" => &mut prefix,
            _ => {
                return Err(format!(
                    "unknown query parameter '{name}'; expected {PURGE_USAGE}"
                ))
            }
        };
        if slot.replace(value).is_some() {
            return Err(format!("'{name}' is given more than once"));
        }
    }
    let bucket = bucket
        .filter(|b| !b.is_empty())
        .ok_or_else(|| format!("missing bucket; expected {PURGE_USAGE}"))?;
    let scope = match (key, prefix) {
        (Some(_), Some(_)) => return Err(format!("give key or prefix, not both: {PURGE_USAGE}")),
        (Some(k), None) if k.is_empty() => {
            return Err("key must not be empty (omit it to purge the whole bucket)".into())
        }
        (Some(k), None) => Scope::Key(k),
        (None, Some(p)) if !p.is_empty() => Scope::Prefix(p),
        (None, _) => Scope::Bucket,
    };
    Ok(PurgeRequest { bucket, scope })
}

/// `POST /cache/purge?bucket=B[&key=K | &prefix=P]`: drop cached blocks and metadata.
/// Walks every cached block: the caller runs it off the async thread.
pub(super) fn purge(state: &AdminState, query: Option<&str>) -> Reply {
    let req = match parse_purge(query) {
        Ok(req) => req,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, &detail),
    };
    if !state.cache.enabled() {
        return problem(
            StatusCode::CONFLICT,
            "Cache disabled (cache.memory = 0): nothing is cached, nothing to purge",
        );
    }
    let snapshot = state.snapshot.load();
    let (origin, origin_bucket) = snapshot.route_bucket(&req.bucket);
    let (prefix, exact, what) = match &req.scope {
        Scope::Bucket => ("", false, String::from("all keys")),
        Scope::Key(k) => (k.as_str(), true, format!("key {k:?}")),
        Scope::Prefix(p) => (p.as_str(), false, format!("prefix {p:?}")),
    };
    let purged = state
        .cache
        .purge(&origin.name, origin_bucket, prefix, exact);
    info!(
        "cache purge of bucket {:?} ({what}; origin {:?}, bucket {origin_bucket:?} there): \
         {} blocks, {} objects",
        req.bucket, origin.name, purged.blocks, purged.objects
    );
    let body = json!({
        "bucket": req.bucket,
        "blocks": purged.blocks,
        "objects": purged.objects,
    });
    json(StatusCode::OK, &body)
}

/// The shared cache's gauges and counters in Prometheus text. The per-worker hit, miss and
/// fill counters come with the data plane's metrics.
pub(super) fn render_metrics(cache: &Cache, out: &mut String) {
    let s = cache.stats();
    crate::prom::singles(
        out,
        &[
        (
            "rangecache_cache_capacity_bytes",
            "gauge",
            "Byte budget of the block cache (0: off).",
            s.capacity,
        ),
        (
            "rangecache_cache_bytes",
            "gauge",
            "Bytes the block cache holds, per-block overhead included.",
            s.bytes,
        ),
        (
            "rangecache_cache_blocks",
            "gauge",
            "Blocks the block cache holds.",
            s.blocks,
        ),
        (
            "rangecache_cache_objects",
            "gauge",
            "Objects whose metadata is cached.",
            s.objects,
        ),
        (
            "rangecache_cache_evictions_total",
            "counter",
            "Blocks evicted to make room for others.",
            s.evictions,
        ),
        (
            "rangecache_cache_insertions_total",
            "counter",
            "Blocks inserted into the block cache.",
            s.insertions,
        ),
        (
            "rangecache_cache_inflight_fills",
            "gauge",
            "Block fills from the origin in flight.",
            s.inflight,
        ),
        (
            "rangecache_inflight_bytes",
            "gauge",
            "Bytes of block fills in flight charged to cache.inflight_memory.",
            s.budget.used,
        ),
        (
            "rangecache_inflight_capacity_bytes",
            "gauge",
            "The in-flight fill budget (cache.inflight_memory).",
            s.budget.capacity,
        ),
        (
            "rangecache_inflight_waits_total",
            "counter",
            "Block misses that waited for in-flight fill budget.",
            s.budget.waits,
        ),
        (
            "rangecache_prefetch_bytes_total",
            "counter",
            "Bytes of blocks fetched by prefetch (sequential read-ahead and Parquet).",
            s.prefetch.fetched,
        ),
        (
            "rangecache_prefetch_used_bytes_total",
            "counter",
            "Prefetched bytes a client later read.",
            s.prefetch.used,
        ),
        (
            "rangecache_prefetch_unread_evicted_bytes_total",
            "counter",
            "Prefetched bytes evicted or purged before anyone read them.",
            s.prefetch.unread_evicted,
        ),
        (
            "rangecache_prefetch_cancelled_total",
            "counter",
            "Blocks a prefetch wanted but did not fetch (budget share spent, or the fill failed).",
            s.prefetch.cancelled,
        ),
        (
            "rangecache_inflight_wait_timeouts_total",
            "counter",
            "Waits for in-flight fill budget that ran out (503 SlowDown or a cut response).",
            s.budget.timeouts,
        ),
        ],
    );
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use http::{header, Method};
    use rangecache_dataplane::cache::{BlockKey, CacheConfig, ObjectId, ObjectMeta};

    use super::super::respond;
    use super::super::tests::{body, content_type, resolved, state_with_cache};
    use super::*;

    fn config(memory: u64) -> CacheConfig {
        CacheConfig {
            memory,
            block_size: 64 << 10,
            metadata_ttl: Duration::from_millis(1500),
            metadata_entries: 100,
            ..CacheConfig::default()
        }
    }

    /// A state whose cache holds the metadata and two blocks of each of `objects` (origin,
    /// origin bucket, key).
    fn state(objects: &[(&str, &str, &str)]) -> AdminState {
        let cache = Cache::new(config(64 << 20));
        for (origin, bucket, key) in objects {
            let id = ObjectId::new(origin, bucket, key);
            let meta = ObjectMeta {
                size: 2,
                etag: Arc::from("\"etag\""),
                last_modified: None,
                headers: Vec::new(),
                fetched: Instant::now(),
                checksums_known: true,
            };
            cache
                .meta
                .insert(id.clone(), Arc::new(meta), cache.meta.epoch());
            for index in 0..2 {
                let block_key = BlockKey::new(id.clone(), Arc::from("\"etag\""), index);
                cache.store.insert(block_key, Bytes::from_static(b"x"));
            }
        }
        state_with_cache(resolved(), cache)
    }

    fn json_of(reply: &Reply) -> serde_json::Value {
        assert_eq!(content_type(reply), "application/json");
        serde_json::from_str(&body(reply)).unwrap()
    }

    fn post(state: &AdminState, target: &str) -> Reply {
        respond(state, &Method::POST, target)
    }

    /// The purge's (blocks, objects), asserting a 200 that names `bucket`.
    fn purged(state: &AdminState, target: &str, bucket: &str) -> (u64, u64) {
        let r = post(state, target);
        assert_eq!(r.status(), StatusCode::OK, "{target}: {}", body(&r));
        let v = json_of(&r);
        assert_eq!(v["bucket"], bucket, "{target}");
        (
            v["blocks"].as_u64().unwrap(),
            v["objects"].as_u64().unwrap(),
        )
    }

    fn blocks_left(state: &AdminState) -> u64 {
        state.cache.stats().blocks
    }

    #[test]
    fn stats_report_sizing_and_counters() {
        let s = state(&[("default", "bkt", "a/b")]);
        let key = BlockKey::new(
            ObjectId::new("default", "bkt", "a/b"),
            Arc::from("\"etag\""),
            0,
        );
        assert!(s.cache.store.get(&key).is_some());
        let missing = BlockKey::new(ObjectId::new("default", "bkt", "zz"), Arc::from("\"e\""), 0);
        assert!(s.cache.store.get(&missing).is_none());

        let r = respond(&s, &Method::GET, "/cache/stats");
        assert_eq!(r.status(), StatusCode::OK);
        let v = json_of(&r);
        assert_eq!(v["enabled"], true);
        assert_eq!(v["capacity_bytes"], 64 << 20);
        assert_eq!(v["blocks"], 2);
        assert!(v["bytes"].as_u64().unwrap() >= 2, "{v}");
        assert_eq!(v["objects"], 1);
        assert_eq!(
            (v["hits"].as_u64(), v["misses"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(v["hit_ratio"], 0.5);
        assert_eq!(v["insertions"], 2);
        assert_eq!(v["evictions"], 0);
        assert_eq!(v["inflight"], 0);
        assert_eq!(v["block_size"], 64 << 10);
        assert_eq!(v["metadata_ttl_seconds"], 1.5);
        assert!(v["disk"].is_null(), "no disk tier configured");
        let mut fields: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "block_size",
                "blocks",
                "bytes",
                "capacity_bytes",
                "disk",
                "enabled",
                "evictions",
                "hit_ratio",
                "hits",
                "inflight",
                "inflight_bytes",
                "inflight_capacity_bytes",
                "inflight_wait_timeouts",
                "inflight_waits",
                "insertions",
                "metadata_ttl_seconds",
                "misses",
                "node",
                "objects",
                "prefetch_bytes",
                "prefetch_cancelled_blocks",
                "prefetch_unread_evicted_bytes",
                "prefetch_used_bytes"
            ],
            "exactly these fields"
        );

        let r = respond(&s, &Method::HEAD, "/cache/stats");
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn stats_of_a_disabled_cache() {
        let s = state_with_cache(resolved(), Cache::new(config(0)));
        let v = json_of(&respond(&s, &Method::GET, "/cache/stats"));
        assert_eq!(v["enabled"], false);
        assert_eq!(v["capacity_bytes"], 0);
        assert_eq!(v["hit_ratio"], 0.0);
    }

    #[test]
    fn purge_by_key_prefix_and_bucket() {
        let s = state(&[
            ("default", "bkt", "a/b"),
            ("default", "bkt", "a/bc"),
            ("default", "bkt", "a/c"),
            ("default", "bkt", "z"),
            ("default", "other", "a/b"),
        ]);
        assert_eq!(blocks_left(&s), 10);
        assert_eq!(purged(&s, "/cache/purge?bucket=bkt&key=a/b", "bkt"), (2, 1));
        assert_eq!(blocks_left(&s), 8);
        assert_eq!(purged(&s, "/cache/purge?bucket=bkt&key=a/b", "bkt"), (0, 0));
        assert_eq!(
            purged(&s, "/cache/purge?bucket=bkt&prefix=a%2F", "bkt"),
            (4, 2)
        );
        assert_eq!(purged(&s, "/cache/purge?bucket=bkt", "bkt"), (2, 1));
        assert_eq!(blocks_left(&s), 2, "other buckets are left alone");
        assert_eq!(s.cache.stats().objects, 1);
        assert_eq!(
            purged(&s, "/cache/purge?bucket=other&prefix=", "other"),
            (2, 1)
        );
        assert_eq!(blocks_left(&s), 0);
        assert_eq!(s.cache.stats().objects, 0);
    }

    #[test]
    fn purge_decodes_keys() {
        let s = state(&[
            ("default", "bkt", "dir/a b+c.parquet"),
            ("default", "bkt", "été/x"),
        ]);
        let target = "/cache/purge?key=dir%2Fa+b%2Bc.parquet&bucket=bkt";
        assert_eq!(purged(&s, target, "bkt"), (2, 1));
        let target = "/cache/purge?bucket=bkt&prefix=%C3%A9t%C3%A9%2F";
        assert_eq!(purged(&s, target, "bkt"), (2, 1));
    }

    #[test]
    fn purge_maps_client_buckets_to_origin_buckets() {
        let s = state(&[
            ("default", "prod-renamed", "k"),
            ("default", "prod-renamed", "j"),
            ("default", "renamed", "k"),
            ("a", "a", "k"),
            ("default", "a", "k"),
        ]);
        // `renamed` is `prod-renamed` at the default origin ...
        assert_eq!(
            purged(&s, "/cache/purge?bucket=renamed&key=k", "renamed"),
            (2, 1)
        );
        // ... which clients may also read under its own name.
        assert_eq!(
            purged(&s, "/cache/purge?bucket=prod-renamed", "prod-renamed"),
            (2, 1)
        );
        // `a` has its own origin, named `a`: the default origin's `a` is another bucket.
        assert_eq!(purged(&s, "/cache/purge?bucket=a&key=k", "a"), (2, 1));
        for (origin, bucket) in [("default", "renamed"), ("default", "a")] {
            let key = BlockKey::new(ObjectId::new(origin, bucket, "k"), Arc::from("\"etag\""), 0);
            assert!(s.cache.store.peek(&key).is_some(), "{origin}/{bucket}");
        }
        assert_eq!(blocks_left(&s), 4);
    }

    #[test]
    fn bad_purge_requests_are_400() {
        let s = state(&[("default", "bkt", "k")]);
        for (target, want) in [
            ("/cache/purge", "missing bucket"),
            ("/cache/purge?", "missing bucket"),
            ("/cache/purge?bucket=", "missing bucket"),
            ("/cache/purge?key=k", "missing bucket"),
            ("/cache/purge?bucket=bkt&key=k&prefix=p", "not both"),
            ("/cache/purge?bucket=bkt&key=", "key must not be empty"),
            (
                "/cache/purge?bucket=bkt&prefx=p",
                "unknown query parameter 'prefx'",
            ),
            (
                "/cache/purge?bucket=bkt&bucket=x",
                "'bucket' is given more than once",
            ),
            (
                "/cache/purge?bucket=bkt&key=%zz",
                "not followed by two hex digits",
            ),
            ("/cache/purge?bucket=%FF", "UTF-8"),
        ] {
            let r = post(&s, target);
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{target}");
            assert_eq!(content_type(&r), "application/problem+json", "{target}");
            let v: serde_json::Value = serde_json::from_str(&body(&r)).unwrap();
            let detail = v["detail"].as_str().unwrap();
            assert!(detail.contains(want), "{target}: {detail}");
        }
        assert_eq!(blocks_left(&s), 2, "nothing was purged");
    }

    #[test]
    fn purge_of_a_disabled_cache_is_409() {
        let s = state_with_cache(resolved(), Cache::new(config(0)));
        let r = post(&s, "/cache/purge?bucket=bkt");
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(content_type(&r), "application/problem+json");
        let v: serde_json::Value = serde_json::from_str(&body(&r)).unwrap();
        assert_eq!(v["status"], 409);
        assert!(v["detail"].as_str().unwrap().starts_with("Cache disabled"));
        // A malformed request is still a 400 first.
        assert_eq!(post(&s, "/cache/purge").status(), StatusCode::BAD_REQUEST);
        let r = respond(&s, &Method::GET, "/cache/purge?bucket=bkt");
        assert_eq!(r.headers()[header::ALLOW], "POST");
    }

    #[test]
    fn metrics_include_the_cache_gauges() {
        let s = state(&[("default", "bkt", "k")]);
        let text = body(&respond(&s, &Method::GET, "/metrics"));
        let bytes = s.cache.stats().bytes;
        for line in [
            format!("rangecache_cache_capacity_bytes {}", 64 << 20),
            format!("rangecache_cache_bytes {bytes}"),
            "rangecache_cache_blocks 2".to_owned(),
            "rangecache_cache_objects 1".to_owned(),
            "rangecache_cache_evictions_total 0".to_owned(),
            "rangecache_cache_insertions_total 2".to_owned(),
            "rangecache_cache_inflight_fills 0".to_owned(),
            "# TYPE rangecache_cache_insertions_total counter".to_owned(),
            "# TYPE rangecache_cache_bytes gauge".to_owned(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
