//! Who may do what: access keys, their grants, anonymous grants, and the decision for one
//! routed request.
//!
//! A [`Grant`] names a bucket (or `*`), an optional key prefix and a set of [`Access`] kinds.
//! A request is allowed when one grant of its principal covers it ([`authorize`]); nothing is
//! allowed by default. Which access an operation needs is decided here, once, by
//! [`Need::of`].

use std::collections::HashMap;
use std::sync::Arc;

use super::session::SessionKeys;
use super::sigv2::SigV2;
use super::AuthError;
use crate::s3::Operation;

/// A set of access kinds: `read` (GET/HEAD objects), `write` (PUT, DELETE, multipart, copy
/// destination) and `list` (list objects, uploads, buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Access(u8);

impl Access {
    /// No access.
    pub const NONE: Access = Access(0);
    /// Read objects (GET, HEAD, copy source).
    pub const READ: Access = Access(1);
    /// Write objects (PUT, DELETE, multipart uploads, copy destination, bucket changes).
    pub const WRITE: Access = Access(2);
    /// List objects, multipart uploads or buckets.
    pub const LIST: Access = Access(4);
    /// Every kind.
    pub const ALL: Access = Access(7);

    /// Parses one access word: `read`, `write`, `list` or `all` (any case).
    pub fn parse(word: &str) -> Option<Access> {
        Some(match word.to_ascii_lowercase().as_str() {
            "read" => Access::READ,
            "write" => Access::WRITE,
            "list" => Access::LIST,
            "all" => Access::ALL,
            _ => return None,
        })
    }

    /// The union of both sets.
    pub const fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }

    /// True when every kind in `needed` is in `self`.
    pub const fn contains(self, needed: Access) -> bool {
        self.0 & needed.0 == needed.0
    }

    /// True when no kind is in the set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The raw bits (read = 1, write = 2, list = 4), for compact encodings.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// The set from raw bits; `None` if unknown bits are set.
    pub const fn from_bits(bits: u8) -> Option<Access> {
        if bits & !7 == 0 {
            Some(Access(bits))
        } else {
            None
        }
    }

    /// The kinds as words, e.g. `["read", "list"]`.
    pub fn words(self) -> Vec<&'static str> {
        [
            (Access::READ, "read"),
            (Access::WRITE, "write"),
            (Access::LIST, "list"),
        ]
        .into_iter()
        .filter(|(a, _)| self.contains(*a))
        .map(|(_, w)| w)
        .collect()
    }
}

/// Access to the objects of one bucket (or all buckets) under one key prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    /// The bucket name clients use, or `*` for every bucket.
    pub bucket: String,
    /// Object keys (or list prefixes) must start with this; empty = the whole bucket.
    pub prefix: String,
    /// What may be done there.
    pub access: Access,
}

impl Grant {
    /// True when this grant covers `need`.
    pub fn covers(&self, need: &Need<'_>) -> bool {
        if !self.access.contains(need.access) {
            return false;
        }
        let bucket_ok = match need.bucket {
            Some(b) => self.bucket == "*" || self.bucket == b,
            // Listing buckets needs a grant over every bucket.
            None => self.bucket == "*",
        };
        if !bucket_ok {
            return false;
        }
        match need.scope {
            Scope::Key(key) => key.starts_with(&self.prefix),
            Scope::Bucket => self.prefix.is_empty(),
            Scope::AnyInBucket => true,
        }
    }
}

/// What part of a bucket a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// One object key, or the prefix a listing is restricted to (decoded).
    Key(&'a str),
    /// The bucket as a whole (bucket settings, multi-object delete): only a grant without a
    /// prefix covers it.
    Bucket,
    /// Harmless bucket-level reads (HEAD bucket, location): any grant on the bucket covers it.
    AnyInBucket,
}

/// One access a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need<'a> {
    /// The client-side bucket; `None` for ListBuckets.
    pub bucket: Option<&'a str>,
    /// Which part of the bucket.
    pub scope: Scope<'a>,
    /// Which access kinds.
    pub access: Access,
}

impl<'a> Need<'a> {
    /// What operation `op` with `method` on `bucket`/`key` needs. `list_prefix` is the decoded
    /// `prefix` query parameter of a listing (empty if none). A copy also needs read access to
    /// its source, which the caller checks with a second [`Need`] ([`Need::copy_source`]).
    pub fn of(
        op: Operation,
        method: &str,
        bucket: Option<&'a str>,
        key: Option<&'a str>,
        list_prefix: &'a str,
    ) -> Need<'a> {
        use Operation::*;
        let (scope, access) = match op {
            ListBuckets => (Scope::Bucket, Access::LIST),
            ListObjectsV1 | ListObjectsV2 | ListMultipartUploads => {
                (Scope::Key(list_prefix), Access::LIST)
            }
            HeadBucket | GetBucketLocation => (Scope::AnyInBucket, Access::NONE),
            CreateBucket | DeleteBucket | DeleteObjects => (Scope::Bucket, Access::WRITE),
            OtherBucket => (
                Scope::Bucket,
                if matches!(method, "GET" | "HEAD") {
                    Access::READ
                } else {
                    Access::WRITE
                },
            ),
            GetObject | HeadObject => (Scope::Key(key.unwrap_or("")), Access::READ),
            PutObject
            | CopyObject
            | DeleteObject
            | CreateMultipartUpload
            | UploadPart
            | UploadPartCopy
            | CompleteMultipartUpload
            | AbortMultipartUpload
            | ListParts => (Scope::Key(key.unwrap_or("")), Access::WRITE),
            OtherObject => (
                Scope::Key(key.unwrap_or("")),
                if matches!(method, "GET" | "HEAD") {
                    Access::READ
                } else {
                    Access::WRITE
                },
            ),
        };
        Need {
            bucket,
            scope,
            access,
        }
    }

    /// Read access to the source object of a copy.
    pub fn copy_source(bucket: &'a str, key: &'a str) -> Need<'a> {
        Need {
            bucket: Some(bucket),
            scope: Scope::Key(key),
            access: Access::READ,
        }
    }
}

/// `Ok` when one of `grants` covers every need, else S3's `AccessDenied`.
///
/// A need with no access kinds ([`Scope::AnyInBucket`]) is covered by any grant on the bucket.
pub fn authorize(grants: &[Grant], needs: &[Need<'_>]) -> Result<(), AuthError> {
    for need in needs {
        if !grants.iter().any(|g| g.covers(need)) {
            return Err(AuthError::access_denied("Access Denied"));
        }
    }
    Ok(())
}

/// Whether clients are verified at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Every request is verified (SigV4 or anonymous grants) and authorized. The default.
    #[default]
    SigV4,
    /// Nothing is checked: any client may do anything the origin credentials allow. For
    /// benchmarks only; the control plane logs it loudly.
    None,
}

/// A configured long-term access key.
#[derive(Clone)]
pub struct StaticKey {
    /// The secret access key.
    pub secret: Arc<[u8]>,
    /// What the key may do.
    pub grants: Arc<[Grant]>,
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKey")
            .field("secret", &"<redacted>")
            .field("grants", &self.grants)
            .finish()
    }
}

/// The access policy the data plane enforces; part of the [`Snapshot`](crate::Snapshot).
#[derive(Debug, Clone, Default)]
pub struct AuthPolicy {
    /// Verify or not.
    pub mode: AuthMode,
    /// Long-term keys by access key id.
    pub keys: HashMap<String, StaticKey>,
    /// Grants for unsigned requests; empty = anonymous requests are denied.
    pub anonymous: Arc<[Grant]>,
    /// Keys that open STS session tokens (none = session tokens are refused).
    pub session_keys: SessionKeys,
    /// Whether Signature Version 2 requests are verified or refused (`auth.sigv2`).
    pub sigv2: SigV2,
    /// Anonymous grants with a `source` condition: they apply only to requests whose
    /// effective client address is in one of their networks. Empty = none (the common case,
    /// which costs an anonymous request nothing).
    pub anonymous_sourced: Arc<[SourcedGrant]>,
}

/// An anonymous grant limited to clients from some networks (`[[auth.anonymous]]` with
/// `source`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourcedGrant {
    /// The grant.
    pub grant: Grant,
    /// The networks its clients must come from (at least one).
    pub source: Vec<crate::edge::Cidr>,
}

impl AuthPolicy {
    /// The grants of an anonymous request from `client`: every unconditional anonymous grant
    /// plus the sourced ones whose networks contain `client`.
    pub fn anonymous_for(&self, client: std::net::IpAddr) -> Arc<[Grant]> {
        if self.anonymous_sourced.is_empty() {
            return self.anonymous.clone();
        }
        let mut grants = self.anonymous.to_vec();
        grants.extend(
            self.anonymous_sourced
                .iter()
                .filter(|s| crate::edge::cidr::any_contains(&s.source, client))
                .map(|s| s.grant.clone()),
        );
        grants.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(bucket: &str, prefix: &str, access: Access) -> Grant {
        Grant {
            bucket: bucket.into(),
            prefix: prefix.into(),
            access,
        }
    }

    #[test]
    fn access_words_round_trip() {
        assert_eq!(Access::parse("READ"), Some(Access::READ));
        assert_eq!(Access::parse("all"), Some(Access::ALL));
        assert_eq!(Access::parse("admin"), None);
        assert_eq!(Access::READ.union(Access::LIST).words(), ["read", "list"]);
        assert_eq!(Access::from_bits(8), None);
    }

    #[test]
    fn object_reads_need_read_under_the_prefix() {
        let g = [grant("data", "tables/", Access::READ)];
        let get = |key| Need::of(Operation::GetObject, "GET", Some("data"), Some(key), "");
        assert!(authorize(&g, &[get("tables/a.parquet")]).is_ok());
        assert!(authorize(&g, &[get("secret/a")]).is_err());
        let other = Need::of(
            Operation::GetObject,
            "GET",
            Some("other"),
            Some("tables/a"),
            "",
        );
        assert!(authorize(&g, &[other]).is_err());
        let put = Need::of(
            Operation::PutObject,
            "PUT",
            Some("data"),
            Some("tables/a"),
            "",
        );
        assert!(authorize(&g, &[put]).is_err(), "read-only key cannot write");
    }

    #[test]
    fn listing_is_bounded_by_the_prefix_parameter() {
        let g = [grant("data", "tables/", Access::LIST)];
        let list = |p| Need::of(Operation::ListObjectsV2, "GET", Some("data"), None, p);
        assert!(authorize(&g, &[list("tables/x")]).is_ok());
        assert!(authorize(&g, &[list("")]).is_err());
        let all = [grant("*", "", Access::ALL)];
        assert!(authorize(&all, &[list("")]).is_ok());
        let buckets = Need::of(Operation::ListBuckets, "GET", None, None, "");
        assert!(authorize(&g, &[buckets]).is_err());
        assert!(authorize(&all, &[buckets]).is_ok());
    }

    #[test]
    fn bucket_level_needs() {
        let g = [grant("data", "tables/", Access::ALL)];
        let head = Need::of(Operation::HeadBucket, "HEAD", Some("data"), None, "");
        assert!(authorize(&g, &[head]).is_ok());
        let del = Need::of(Operation::DeleteObjects, "POST", Some("data"), None, "");
        assert!(
            authorize(&g, &[del]).is_err(),
            "prefix grant cannot bulk-delete"
        );
        assert!(authorize(&[grant("data", "", Access::WRITE)], &[del]).is_ok());
        assert!(authorize(&[], &[head]).is_err(), "default deny");
    }

    #[test]
    fn copy_needs_read_on_the_source() {
        let g = [
            grant("dst", "", Access::WRITE),
            grant("src", "pub/", Access::READ),
        ];
        let put = Need::of(Operation::CopyObject, "PUT", Some("dst"), Some("k"), "");
        assert!(authorize(&g, &[put, Need::copy_source("src", "pub/a")]).is_ok());
        assert!(authorize(&g, &[put, Need::copy_source("src", "priv/a")]).is_err());
    }
}
