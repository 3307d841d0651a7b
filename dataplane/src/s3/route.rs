//! Request routing: which bucket, which key and which S3 operation a request is, decided from
//! method, raw path, raw query and `Host` alone (no I/O, no configuration lookups).
//!
//! Classification is conservative: a request is only given a specific operation when every
//! query parameter is one that operation understands (or a signing parameter). Anything with
//! an unrecognised parameter becomes [`Operation::OtherBucket`] / [`Operation::OtherObject`],
//! because treating an unknown sub-resource (`GET /b/k?newthing`) as a plain `GetObject` could
//! authorize it as a read and answer it with the object's cached bytes.

use super::error::S3Error;
use super::uri::{decode_path, query_pairs};
use super::Operation;
use crate::http::Method;

/// S3's limit on the UTF-8 length of an object key.
pub const MAX_KEY_LEN: usize = 1024;

/// How the client addressed the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressingStyle {
    /// `http://host/bucket/key`
    Path,
    /// `http://bucket.<domain>/key`
    VirtualHost,
}

/// Where a request goes and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The bucket; `None` only for service-level requests (`GET /` → `ListBuckets`).
    pub bucket: Option<String>,
    /// The percent-decoded object key, exactly as the client meant it (S3 keys are UTF-8);
    /// `None` for bucket- and service-level requests. Never `Some("")`.
    pub key: Option<String>,
    /// The S3 operation.
    pub op: Operation,
    /// Whether the bucket came from the path or the `Host` header.
    pub style: AddressingStyle,
}

/// Decide bucket, key and operation for a request.
///
/// - `method`: the request method (parsed with the head).
/// - `raw_path`: the path as received, percent-encoded, without the query; it must start with
///   `/` (an empty path is taken as `/`).
/// - `raw_query`: the raw query after `?`, `""` when there is none.
/// - `host`: the `Host` header value, port included or not.
/// - `domain`: the configured base domain for virtual-hosted style. When `host` is
///   `<bucket>.<domain>` (case-insensitive, any port) the bucket comes from the host
///   (lowercased, as DNS names are case-insensitive) and the whole path is the key.
///   Otherwise (no domain, host equal to the domain, an IP address, `localhost`, any other
///   name) the request is path-style: the first path segment is the bucket and everything
///   after the first `/` following it is the key, kept verbatim (`/b/a//c` → key `a//c`).
/// - `copy_source`: whether the request carries an `x-amz-copy-source` header, which turns
///   `PutObject` into `CopyObject` and `UploadPart` into `UploadPartCopy`.
///
/// An empty key (`/bucket/`, or `/` in virtual-hosted style) means a bucket-level request.
///
/// Errors: `InvalidURI` for a path that does not start with `/`, a bad `%` escape or a
/// non-UTF-8 decoded key; `InvalidBucketName` for a bucket that breaks S3's (legacy, lenient)
/// naming rules; `KeyTooLongError` for a key over 1024 bytes; `MethodNotAllowed` for a method
/// other than GET, HEAD, PUT, POST and DELETE (this includes `OPTIONS`), or a method other
/// than GET without a bucket.
pub fn route(
    method: Method,
    raw_path: &str,
    raw_query: &str,
    host: Option<&str>,
    domain: Option<&str>,
    copy_source: bool,
) -> Result<Route, S3Error> {
    if matches!(method, Method::Options | Method::Other) {
        return Err(S3Error::method_not_allowed());
    }
    let path = match raw_path {
        "" => "/",
        p if p.starts_with('/') => p,
        _ => return Err(S3Error::invalid_uri()),
    };

    let (bucket, raw_key, style) = match host.and_then(|h| virtual_host_bucket(h, domain?)) {
        Some(bucket) => (Some(bucket), &path[1..], AddressingStyle::VirtualHost),
        None => {
            let rest = &path[1..];
            if rest.is_empty() {
                (None, "", AddressingStyle::Path)
            } else {
                // An empty first segment (`//key`) is an empty bucket name, rejected below.
                let (raw_bucket, raw_key) = rest.split_once('/').unwrap_or((rest, ""));
                let bucket = decode_path(raw_bucket).map_err(|_| S3Error::invalid_uri())?;
                (Some(bucket), raw_key, AddressingStyle::Path)
            }
        }
    };

    let Some(bucket) = bucket else {
        return match method {
            Method::Get => Ok(Route {
                bucket: None,
                key: None,
                op: Operation::ListBuckets,
                style,
            }),
            _ => Err(S3Error::method_not_allowed()),
        };
    };
    if !is_valid_bucket_name(&bucket) {
        return Err(S3Error::invalid_bucket_name());
    }

    let query = QueryShape::of(raw_query);
    if raw_key.is_empty() {
        return Ok(Route {
            bucket: Some(bucket),
            key: None,
            op: bucket_op(method, &query),
            style,
        });
    }
    let key = decode_path(raw_key).map_err(|_| S3Error::invalid_uri())?;
    if key.len() > MAX_KEY_LEN {
        return Err(S3Error::key_too_long());
    }
    Ok(Route {
        bucket: Some(bucket),
        key: Some(key),
        op: object_op(method, &query, copy_source),
        style,
    })
}

fn bucket_op(method: Method, q: &QueryShape) -> Operation {
    match method {
        Method::Get if q.subs == 0 && q.list_type_2 => Operation::ListObjectsV2,
        Method::Get if q.subs == 0 => Operation::ListObjectsV1,
        Method::Get if q.subs == SUB_UPLOADS => Operation::ListMultipartUploads,
        Method::Get if q.subs == SUB_LOCATION => Operation::GetBucketLocation,
        // A HEAD answer has no body, so a stray parameter cannot change what it reveals.
        Method::Head => Operation::HeadBucket,
        Method::Put if q.subs == 0 => Operation::CreateBucket,
        Method::Delete if q.subs == 0 => Operation::DeleteBucket,
        Method::Post if q.subs == SUB_DELETE => Operation::DeleteObjects,
        _ => Operation::OtherBucket,
    }
}

fn object_op(method: Method, q: &QueryShape, copy_source: bool) -> Operation {
    match method {
        Method::Get if q.subs == 0 => Operation::GetObject,
        Method::Get if q.subs == SUB_UPLOAD_ID => Operation::ListParts,
        Method::Head if q.subs == 0 => Operation::HeadObject,
        Method::Put if q.subs == 0 && copy_source => Operation::CopyObject,
        Method::Put if q.subs == 0 => Operation::PutObject,
        Method::Put if q.subs == SUB_UPLOAD_ID && q.part_number && copy_source => {
            Operation::UploadPartCopy
        }
        Method::Put if q.subs == SUB_UPLOAD_ID && q.part_number => Operation::UploadPart,
        Method::Delete if q.subs == 0 => Operation::DeleteObject,
        Method::Delete if q.subs == SUB_UPLOAD_ID => Operation::AbortMultipartUpload,
        Method::Post if q.subs == SUB_UPLOADS => Operation::CreateMultipartUpload,
        Method::Post if q.subs == SUB_UPLOAD_ID => Operation::CompleteMultipartUpload,
        _ => Operation::OtherObject,
    }
}

// Sub-resources that select a specific operation; everything else unknown is SUB_OTHER.
const SUB_UPLOADS: u8 = 1;
const SUB_UPLOAD_ID: u8 = 1 << 1;
const SUB_LOCATION: u8 = 1 << 2;
const SUB_DELETE: u8 = 1 << 3;
const SUB_OTHER: u8 = 1 << 7;

/// What the query string says about the operation, gathered in one pass.
#[derive(Debug, Default)]
struct QueryShape {
    /// Bit set of the sub-resources present (`SUB_*`).
    subs: u8,
    /// `list-type=2` is present.
    list_type_2: bool,
    /// `partNumber` is present.
    part_number: bool,
}

impl QueryShape {
    fn of(raw_query: &str) -> Self {
        let mut shape = Self::default();
        for (name, value) in query_pairs(raw_query) {
            match name {
                "uploads" => shape.subs |= SUB_UPLOADS,
                "uploadId" => shape.subs |= SUB_UPLOAD_ID,
                "location" => shape.subs |= SUB_LOCATION,
                "delete" => shape.subs |= SUB_DELETE,
                "list-type" => shape.list_type_2 |= value == "2",
                "partNumber" => shape.part_number = true,
                _ if is_plain_parameter(name) => {}
                _ => shape.subs |= SUB_OTHER,
            }
        }
        shape
    }
}

/// True for query parameters that tune an operation without naming a different resource:
/// listing and paging parameters, `GetObject`'s `versionId` and `response-*` overrides, the
/// SDKs' informational `x-id`, and presigned-URL signing parameters (SigV4 and SigV2).
fn is_plain_parameter(name: &str) -> bool {
    const PLAIN: &[&str] = &[
        // ListObjects V1/V2, ListObjectVersions, ListMultipartUploads, ListParts, ListBuckets.
        "prefix",
        "delimiter",
        "marker",
        "max-keys",
        "encoding-type",
        "continuation-token",
        "fetch-owner",
        "start-after",
        "key-marker",
        "upload-id-marker",
        "version-id-marker",
        "max-uploads",
        "max-parts",
        "part-number-marker",
        "max-buckets",
        "bucket-region",
        // Object reads and deletes of a specific version.
        "versionId",
        // Added by the AWS SDKs (e.g. `x-id=GetObject`); S3 ignores it.
        "x-id",
        // SigV2 presigned URLs.
        "AWSAccessKeyId",
        "Signature",
        "Expires",
    ];
    PLAIN.contains(&name)
        || name.starts_with("response-")
        || starts_with_ignore_ascii_case(name, "x-amz-")
}

fn starts_with_ignore_ascii_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// The bucket named by a virtual-hosted `Host` (`<bucket>.<domain>[:port]`), lowercased, or
/// `None` when the host does not address a bucket under `domain`.
fn virtual_host_bucket(host: &str, domain: &str) -> Option<String> {
    let domain = domain.trim_start_matches('.').trim_end_matches('.');
    if domain.is_empty() {
        return None;
    }
    let name = strip_port(host)?.trim_end_matches('.');
    // IP literals and localhost never carry a bucket, whatever the domain.
    if name.parse::<std::net::IpAddr>().is_ok() || name.eq_ignore_ascii_case("localhost") {
        return None;
    }
    let split = name.len().checked_sub(domain.len() + 1)?;
    if !name.is_char_boundary(split) {
        return None;
    }
    let (bucket, suffix) = name.split_at(split);
    let suffix_domain = suffix.strip_prefix('.')?;
    if bucket.is_empty() || !suffix_domain.eq_ignore_ascii_case(domain) {
        return None;
    }
    Some(bucket.to_ascii_lowercase())
}

/// The host name without its port; `None` for a malformed bracketed IPv6 literal.
fn strip_port(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`: an IP literal, never a virtual host, but return it so the
        // caller's IP check sees it.
        return rest.split_once(']').map(|(v6, _)| v6);
    }
    Some(match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    })
}

/// S3 bucket naming, lenient the way legacy us-east-1 buckets (and SeaweedFS, MinIO in
/// compatibility modes) are: 3–255 characters of ASCII letters (either case), digits, `.`,
/// `-` and `_`. This still rejects everything that would be unsafe to put in an origin path
/// or a cache key: empty names, `/`, `%`, spaces, control and non-ASCII characters.
pub fn is_valid_bucket_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    const DOMAIN: Option<&str> = Some("s3.local");

    /// Path-style op of `method /bucket?query` and `method /bucket/key?query`.
    fn op(method: &str, path: &str, query: &str) -> Operation {
        op_copy(method, path, query, false)
    }

    fn op_copy(method: &str, path: &str, query: &str, copy: bool) -> Operation {
        let method = Method::parse(method.as_bytes());
        let r = route(method, path, query, Some("localhost:9000"), DOMAIN, copy).unwrap();
        assert_eq!(r.style, AddressingStyle::Path);
        // The same request virtual-hosted must decide the same operation.
        let (bucket, vpath) = match path[1..].split_once('/') {
            Some((b, k)) => (b, format!("/{k}")),
            None => (&path[1..], "/".to_owned()),
        };
        if !bucket.is_empty() {
            let host = format!("{bucket}.s3.local:9000");
            let v = route(method, &vpath, query, Some(&host), DOMAIN, copy).unwrap();
            assert_eq!(v.style, AddressingStyle::VirtualHost);
            assert_eq!(
                (&v.bucket, &v.key, v.op),
                (&r.bucket, &r.key, r.op),
                "{path}"
            );
        }
        r.op
    }

    fn path_route(path: &str) -> Result<Route, S3Error> {
        route(Method::Get, path, "", Some("127.0.0.1:8080"), None, false)
    }

    fn key_of(path: &str) -> Option<String> {
        path_route(path).unwrap().key
    }

    fn err_code(r: Result<Route, S3Error>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn service_level() {
        assert_eq!(op("GET", "/", ""), ListBuckets);
        assert_eq!(
            op("GET", "/", "x-id=ListBuckets&max-buckets=5"),
            ListBuckets
        );
        let r = route(Method::Get, "", "", None, None, false).unwrap();
        assert_eq!((r.bucket, r.key, r.op), (None, None, ListBuckets));
        for m in ["HEAD", "PUT", "POST", "DELETE"] {
            let r = route(
                Method::parse(m.as_bytes()),
                "/",
                "",
                Some("s3.local"),
                DOMAIN,
                false,
            );
            assert_eq!(err_code(r), "MethodNotAllowed", "{m}");
        }
    }

    #[test]
    fn bucket_level_operations() {
        for path in ["/bucket", "/bucket/"] {
            assert_eq!(op("GET", path, ""), ListObjectsV1);
            assert_eq!(
                op("GET", path, "prefix=a%2F&delimiter=%2F&marker=x&max-keys=5"),
                ListObjectsV1
            );
            assert_eq!(op("GET", path, "list-type=1"), ListObjectsV1);
            assert_eq!(op("GET", path, "list-type=2"), ListObjectsV2);
            assert_eq!(
                op("GET", path, "continuation-token=abc&encoding-type=url&fetch-owner=true&list-type=2&prefix=p&start-after=s"),
                ListObjectsV2
            );
            assert_eq!(op("GET", path, "uploads"), ListMultipartUploads);
            assert_eq!(
                op("GET", path, "uploads=&prefix=a&key-marker=k&max-uploads=3"),
                ListMultipartUploads
            );
            assert_eq!(op("GET", path, "location"), GetBucketLocation);
            assert_eq!(op("GET", path, "location="), GetBucketLocation);
            for sub in [
                "versioning",
                "policy",
                "acl",
                "cors",
                "lifecycle",
                "tagging",
                "versions",
                "website",
                "notification",
                "uploads&location",
            ] {
                assert_eq!(op("GET", path, sub), OtherBucket, "{sub}");
            }
            assert_eq!(op("HEAD", path, ""), HeadBucket);
            assert_eq!(op("PUT", path, ""), CreateBucket);
            assert_eq!(op("PUT", path, "versioning"), OtherBucket);
            assert_eq!(op("PUT", path, "policy"), OtherBucket);
            assert_eq!(op("DELETE", path, ""), DeleteBucket);
            assert_eq!(op("DELETE", path, "cors"), OtherBucket);
            assert_eq!(op("POST", path, "delete"), DeleteObjects);
            assert_eq!(op("POST", path, "delete="), DeleteObjects);
            assert_eq!(op("POST", path, ""), OtherBucket);
        }
    }

    #[test]
    fn object_level_operations() {
        let p = "/bucket/dir/key.parquet";
        assert_eq!(op("GET", p, ""), GetObject);
        assert_eq!(
            op(
                "GET",
                p,
                "versionId=3&partNumber=1&response-content-type=text%2Fplain&x-id=GetObject"
            ),
            GetObject
        );
        assert_eq!(op("GET", p, "uploadId=abc"), ListParts);
        assert_eq!(
            op("GET", p, "uploadId=abc&max-parts=10&part-number-marker=2"),
            ListParts
        );
        for sub in [
            "tagging",
            "acl",
            "attributes",
            "torrent",
            "retention",
            "legal-hold",
            "uploads",
            "newthing=1",
        ] {
            assert_eq!(op("GET", p, sub), OtherObject, "{sub}");
        }
        assert_eq!(op("HEAD", p, ""), HeadObject);
        assert_eq!(op("HEAD", p, "versionId=1&partNumber=2"), HeadObject);
        assert_eq!(op("PUT", p, ""), PutObject);
        assert_eq!(op("PUT", p, "x-id=PutObject"), PutObject);
        assert_eq!(op_copy("PUT", p, "", true), CopyObject);
        assert_eq!(op("PUT", p, "partNumber=1&uploadId=abc"), UploadPart);
        assert_eq!(
            op("PUT", p, "uploadId=abc&partNumber=1&x-id=UploadPart"),
            UploadPart
        );
        assert_eq!(
            op_copy("PUT", p, "partNumber=1&uploadId=abc", true),
            UploadPartCopy
        );
        assert_eq!(op("PUT", p, "uploadId=abc"), OtherObject);
        assert_eq!(op("PUT", p, "tagging"), OtherObject);
        assert_eq!(op_copy("PUT", p, "tagging", true), OtherObject);
        assert_eq!(op("DELETE", p, ""), DeleteObject);
        assert_eq!(op("DELETE", p, "versionId=7"), DeleteObject);
        assert_eq!(op("DELETE", p, "uploadId=abc"), AbortMultipartUpload);
        assert_eq!(op("DELETE", p, "tagging"), OtherObject);
        assert_eq!(op("POST", p, "uploads"), CreateMultipartUpload);
        assert_eq!(op("POST", p, "uploads="), CreateMultipartUpload);
        assert_eq!(op("POST", p, "uploadId=abc"), CompleteMultipartUpload);
        assert_eq!(op("POST", p, "select&select-type=2"), OtherObject);
        assert_eq!(op("POST", p, "restore"), OtherObject);
        assert_eq!(op("POST", p, ""), OtherObject);
    }

    #[test]
    fn presigned_parameters_do_not_change_the_operation() {
        let sigv4 = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20240101%2Fus-east-1%2Fs3%2Faws4_request\
                     &X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host\
                     &X-Amz-Security-Token=t&X-Amz-Signature=abc&x-amz-checksum-mode=ENABLED";
        assert_eq!(op("GET", "/b12/k", sigv4), GetObject);
        assert_eq!(op("PUT", "/b12/k", sigv4), PutObject);
        assert_eq!(
            op("GET", "/b12", &format!("list-type=2&{sigv4}")),
            ListObjectsV2
        );
        assert_eq!(
            op("GET", "/b12/k", "AWSAccessKeyId=AK&Signature=s&Expires=1"),
            GetObject
        );
    }

    #[test]
    fn unknown_methods_are_not_allowed() {
        for m in ["OPTIONS", "PATCH", "TRACE", "CONNECT", "get", "Get", ""] {
            for p in ["/", "/bucket", "/bucket/key"] {
                assert_eq!(
                    err_code(route(Method::parse(m.as_bytes()), p, "", None, None, false)),
                    "MethodNotAllowed"
                );
            }
        }
    }

    #[test]
    fn path_style_splits_bucket_and_key() {
        let r = path_route("/bucket/a/b.txt").unwrap();
        assert_eq!(r.bucket.as_deref(), Some("bucket"));
        assert_eq!(r.key.as_deref(), Some("a/b.txt"));
        assert_eq!(r.style, AddressingStyle::Path);
        for p in ["/bucket", "/bucket/"] {
            let r = path_route(p).unwrap();
            assert_eq!((r.bucket.as_deref(), r.key), (Some("bucket"), None), "{p}");
        }
    }

    #[test]
    fn keys_are_decoded_exactly() {
        assert_eq!(
            key_of("/b12/Jan%20Sample.jpg").as_deref(),
            Some("Jan Sample.jpg")
        );
        assert_eq!(key_of("/b12/a+b").as_deref(), Some("a+b"));
        assert_eq!(key_of("/b12/a%2Bb").as_deref(), Some("a+b"));
        assert_eq!(key_of("/b12/a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(
            key_of("/b12/%C3%A9t%C3%A9/%E6%97%A5").as_deref(),
            Some("été/日")
        );
        assert_eq!(key_of("/b12/été").as_deref(), Some("été"));
        assert_eq!(key_of("/b12/dir/").as_deref(), Some("dir/"));
        assert_eq!(key_of("/b12/a//b").as_deref(), Some("a//b"));
        assert_eq!(key_of("/b12//a").as_deref(), Some("/a"));
        assert_eq!(key_of("/b12//").as_deref(), Some("/"));
        assert_eq!(key_of("/b12/%2F").as_deref(), Some("/"));
        assert_eq!(key_of("/b12/a%25b").as_deref(), Some("a%b"));
        assert_eq!(key_of("/b12/./..").as_deref(), Some("./.."));
    }

    #[test]
    fn virtual_hosted_style() {
        let vh = |host: &str, path: &str| route(Method::Get, path, "", Some(host), DOMAIN, false);
        for host in [
            "mybucket.s3.local",
            "mybucket.s3.local:9000",
            "MyBucket.S3.Local:80",
            "mybucket.s3.local.",
        ] {
            let r = vh(host, "/dir/a%20b").unwrap();
            assert_eq!(r.style, AddressingStyle::VirtualHost, "{host}");
            assert_eq!(r.bucket.as_deref(), Some("mybucket"), "{host}");
            assert_eq!(r.key.as_deref(), Some("dir/a b"));
            assert_eq!(r.op, GetObject);
        }
        let r = vh("my.dotted.bucket.s3.local", "/").unwrap();
        assert_eq!(
            (r.bucket.as_deref(), r.key, r.op),
            (Some("my.dotted.bucket"), None, ListObjectsV1)
        );
        let r = vh("mybucket.s3.local", "").unwrap();
        assert_eq!((r.bucket.as_deref(), r.key), (Some("mybucket"), None));
        // The whole path is the key, including what looks like a bucket and double slashes.
        let r = vh("mybucket.s3.local", "/other/k").unwrap();
        assert_eq!(
            (r.bucket.as_deref(), r.key.as_deref()),
            (Some("mybucket"), Some("other/k"))
        );
        let r = vh("mybucket.s3.local", "//k").unwrap();
        assert_eq!(r.key.as_deref(), Some("/k"));
        // A configured domain with a leading dot means the same thing.
        let r = route(
            Method::Get,
            "/k",
            "",
            Some("b12.s3.local"),
            Some(".s3.local"),
            false,
        )
        .unwrap();
        assert_eq!(
            (r.bucket.as_deref(), r.style),
            (Some("b12"), AddressingStyle::VirtualHost)
        );
    }

    #[test]
    fn hosts_that_fall_back_to_path_style() {
        for host in [
            None,
            Some("s3.local"),
            Some("S3.LOCAL:9000"),
            Some("localhost"),
            Some("localhost:9000"),
            Some("127.0.0.1"),
            Some("10.1.2.3:9000"),
            Some("[::1]"),
            Some("[::1]:9000"),
            Some("other.example.com"),
            Some("xs3.local"),
            Some(".s3.local"),
            Some("[broken"),
            Some(""),
        ] {
            let r = route(Method::Get, "/bucket/key", "", host, DOMAIN, false).unwrap();
            assert_eq!(r.style, AddressingStyle::Path, "{host:?}");
            assert_eq!(
                (r.bucket.as_deref(), r.key.as_deref()),
                (Some("bucket"), Some("key"))
            );
        }
        // Without a configured domain, even a bucket-looking host is path-style.
        let r = route(
            Method::Get,
            "/bucket/key",
            "",
            Some("mybucket.s3.local"),
            None,
            false,
        )
        .unwrap();
        assert_eq!(
            (r.style, r.bucket.as_deref()),
            (AddressingStyle::Path, Some("bucket"))
        );
        let r = route(Method::Get, "/", "", Some("s3.local:9000"), DOMAIN, false).unwrap();
        assert_eq!(r.op, ListBuckets);
    }

    #[test]
    fn bucket_names() {
        for ok in [
            "abc",
            "my-bucket.1",
            "Legacy_Bucket",
            "a.b",
            &"a".repeat(63),
            &"a".repeat(255),
        ] {
            assert!(path_route(&format!("/{ok}/k")).is_ok(), "{ok}");
        }
        // Percent-encoded bucket segments are decoded before validation.
        assert_eq!(
            path_route("/my%2Dbucket/k").unwrap().bucket.as_deref(),
            Some("my-bucket")
        );
        for bad in [
            "ab",
            "a",
            "//k",
            "/%2F/k",
            "/a%2Fb/k",
            "/a%20b/k",
            "/ab%01c/k",
            "/béé/k",
            "/a*b/k",
        ] {
            let path = if bad.starts_with('/') {
                bad.to_owned()
            } else {
                format!("/{bad}/k")
            };
            assert_eq!(err_code(path_route(&path)), "InvalidBucketName", "{bad}");
        }
        assert_eq!(
            err_code(path_route(&format!("/{}", "a".repeat(256)))),
            "InvalidBucketName"
        );
        let r = route(Method::Get, "/k", "", Some("a_b!.s3.local"), DOMAIN, false);
        assert_eq!(err_code(r), "InvalidBucketName");
        let r = route(Method::Get, "/k", "", Some("x.s3.local"), DOMAIN, false);
        assert_eq!(err_code(r), "InvalidBucketName");
    }

    #[test]
    fn invalid_encodings_are_invalid_uri() {
        for p in [
            "/b12/%",
            "/b12/a%2",
            "/b12/%zz",
            "/b12/%FF",
            "/b12/%C3",
            "/b%zz/k",
            "bucket/key",
            "*",
        ] {
            assert_eq!(err_code(path_route(p)), "InvalidURI", "{p}");
        }
        let r = route(Method::Get, "/%G1", "", Some("b12.s3.local"), DOMAIN, false);
        assert_eq!(err_code(r), "InvalidURI");
    }

    #[test]
    fn key_length_limit_counts_decoded_bytes() {
        let max = "k".repeat(MAX_KEY_LEN);
        assert_eq!(key_of(&format!("/b12/{max}")).unwrap().len(), MAX_KEY_LEN);
        let r = path_route(&format!("/b12/{max}k"));
        assert_eq!(err_code(r), "KeyTooLongError");
        // 1024 bytes decoded from 3072 encoded ones is still fine; 1026 bytes is not.
        let encoded = "%C3%A9".repeat(MAX_KEY_LEN / 2);
        assert_eq!(
            key_of(&format!("/b12/{encoded}")).unwrap().len(),
            MAX_KEY_LEN
        );
        let r = path_route(&format!("/b12/{encoded}%C3%A9"));
        assert_eq!(err_code(r), "KeyTooLongError");
    }
}
