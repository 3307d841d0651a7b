//! AWS Signature Version 2, verified locally when `auth.sigv2 = true`: the `Authorization:
//! AWS <key>:<signature>` header and presigned URLs (`AWSAccessKeyId`, `Signature`,
//! `Expires`), as boto3's default `generate_presigned_url` and older clients send them.
//!
//! The signature is base64(HMAC-SHA1(secret, StringToSign)) with
//!
//! ```text
//! StringToSign = Method \n Content-MD5 \n Content-Type \n Date-or-Expires \n
//!                CanonicalizedAmzHeaders CanonicalizedResource
//! ```
//!
//! where the date line is empty when `x-amz-date` is sent (it is then among the amz headers),
//! the amz headers are every `x-amz-*` header lower-cased, sorted, repeated values joined with
//! `,`, one `name:value\n` each, and the resource is `/bucket/` for a bucket, `/bucket/key`
//! (the key as sent, still encoded) for an object, whether the bucket came in the path or the
//! host, plus the sub-resources S3 signs (`?acl`, `?uploadId=…`, `response-*`, …) sorted by
//! name with decoded values. A presigned URL carries its `x-amz-*`, `Content-Type`
//! and `Content-MD5` in the query; they are signed as if they were headers.
//!
//! SigV2 signs neither the body nor the `Range` header. That widens nothing: grants are per
//! bucket and prefix, and a range changed in flight only changes which granted bytes are read.

mod parse;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

pub(crate) use parse::SCHEME;
pub use parse::{
    has_v2_presign, parse_v2_header, parse_v2_presigned, ParsedV2, SIGV2_PRESIGN_PARAMS,
};

use super::parse::{AmzDate, MAX_PRESIGN_EXPIRES};
use super::verify::MAX_CLOCK_SKEW;
use super::{AuthError, RequestParts};
use crate::s3::route::AddressingStyle;
use crate::s3::Route;

/// Whether Signature Version 2 is accepted (`auth.sigv2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigV2 {
    /// Refused with `InvalidArgument`, naming the setting and SigV4 (the default).
    #[default]
    Refuse,
    /// Verified like SigV4: same keys, grants, session tokens and expiry rules.
    Accept,
}

/// The answer to a SigV2 request while `auth.sigv2 = false`.
pub const SIGV2_REFUSED: &str = "Signature Version 2 is not enabled on this endpoint \
     (auth.sigv2 = false); sign requests with Signature Version 4 (AWS4-HMAC-SHA256), or ask \
     the operator to set auth.sigv2 = true.";

/// The sub-resources that are part of a SigV2 CanonicalizedResource, as S3 (and botocore)
/// define them. Other query parameters are not signed.
const SUB_RESOURCES: [&str; 35] = [
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// A SigV2 request whose signature checked out.
#[derive(Debug, Clone)]
pub struct VerifiedV2<P> {
    /// What the key lookup returned besides the secret (the caller's grants).
    pub principal: P,
    /// For a presigned URL, the instant it stops being valid; `None` for header auth.
    pub expires_at: Option<SystemTime>,
}

/// How a SigV2 request is signed, as [`credential`](super::credential) found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V2Claim<'a> {
    /// `Authorization: AWS …` with this header value.
    Header(&'a str),
    /// `AWSAccessKeyId`, `Signature` and `Expires` in the query.
    Presigned,
}

/// Verifies a SigV2 request.
///
/// `route` is how the request was routed: the canonical resource is built from its bucket and
/// addressing style. `lookup(access_key_id, session_token)` is as for
/// [`verify`](super::verify); the session token is `x-amz-security-token` (header, or query
/// for presigned URLs). `now` is the current time.
///
/// Checks, each failing with S3's error: the claim parses ([`parse_v2_header`],
/// [`parse_v2_presigned`]); header auth has a valid `x-amz-date` or `Date` (`AccessDenied`)
/// within [`MAX_CLOCK_SKEW`] of `now` (`RequestTimeTooSkewed`); a presigned URL has not expired
/// (`AccessDenied` "Request has expired") and expires at most seven days (plus the clock skew)
/// ahead (`AuthorizationQueryParametersError`); the key lookup; the recomputed signature equals
/// the one sent, compared in constant time (`SignatureDoesNotMatch`).
pub fn verify_v2<S, P>(
    parts: &RequestParts<'_>,
    claim: V2Claim<'_>,
    route: &Route,
    lookup: impl FnOnce(&str, Option<&str>) -> Result<(S, P), AuthError>,
    now: SystemTime,
) -> Result<VerifiedV2<P>, AuthError>
where
    S: AsRef<[u8]>,
{
    let presign_query = match claim {
        V2Claim::Header(_) => None,
        V2Claim::Presigned => Some(parts.raw_query),
    };
    let (parsed, date_line, token) = match claim {
        V2Claim::Header(value) => {
            let parsed = parse_v2_header(value)?;
            let (time, date_line) = header_time(parts)?;
            let skew = time.duration_since(now).unwrap_or_else(|e| e.duration());
            if skew > MAX_CLOCK_SKEW {
                return Err(AuthError::request_time_too_skewed());
            }
            let token = parts
                .single_header("x-amz-security-token")
                .map_err(|()| AuthError::invalid_token())?;
            (parsed, date_line, token.map(str::to_owned))
        }
        V2Claim::Presigned => {
            let parsed = parse_v2_presigned(parts.raw_query)?;
            let expires = parsed.expires.unwrap_or_default();
            let expires_at = UNIX_EPOCH + Duration::from_secs(expires);
            if expires_at < now {
                return Err(AuthError::access_denied("Request has expired"));
            }
            let longest = Duration::from_secs(u64::from(MAX_PRESIGN_EXPIRES)) + MAX_CLOCK_SKEW;
            if expires_at > now + longest {
                return Err(AuthError::query_malformed(
                    "Expires must be less than a week (604800 seconds) in the future",
                ));
            }
            let token = query_param(parts.raw_query, "x-amz-security-token")
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .or(parts
                    .single_header("x-amz-security-token")
                    .map_err(|()| AuthError::invalid_token())?
                    .map(str::to_owned));
            (parsed, expires.to_string().into_bytes(), token)
        }
    };
    let (secret, principal) = lookup(&parsed.access_key_id, token.as_deref())?;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_ref());
    let to_sign = string_to_sign(parts, &date_line, presign_query, route);
    hmac::verify(&key, &to_sign, &parsed.signature)
        .map_err(|_| AuthError::signature_does_not_match())?;
    Ok(VerifiedV2 {
        principal,
        expires_at: parsed.expires.map(|e| UNIX_EPOCH + Duration::from_secs(e)),
    })
}

/// The request time of a header-signed SigV2 request and its date line: `x-amz-date` (an
/// HTTP date or `YYYYMMDDTHHMMSSZ`; the date line is then empty), else `Date`.
fn header_time(parts: &RequestParts<'_>) -> Result<(SystemTime, Vec<u8>), AuthError> {
    const NO_DATE: AuthError =
        AuthError::access_denied("AWS authentication requires a valid Date or x-amz-date header");
    let parse = |v: &str| {
        httpdate::parse_http_date(v)
            .ok()
            // RFC 822 with a numeric UTC zone, as some SigV2 signers write it.
            .or_else(|| {
                let gmt = format!("{} GMT", v.strip_suffix(" +0000")?);
                httpdate::parse_http_date(&gmt).ok()
            })
            .or_else(|| AmzDate::parse(v).map(|d| d.time()))
    };
    if let Some(v) = parts.single_header("x-amz-date").map_err(|()| NO_DATE)? {
        return Ok((parse(v).ok_or(NO_DATE)?, Vec::new()));
    }
    let v = parts
        .single_header("date")
        .map_err(|()| NO_DATE)?
        .ok_or(NO_DATE)?;
    Ok((parse(v).ok_or(NO_DATE)?, v.as_bytes().to_vec()))
}

/// The decoded value of the first query parameter called `name` (ASCII case-insensitive).
fn query_param(raw_query: &str, name: &str) -> Option<Vec<u8>> {
    raw_query.split('&').find_map(|segment| {
        let (n, v) = segment.split_once('=').unwrap_or((segment, ""));
        n.eq_ignore_ascii_case(name)
            .then(|| percent_encoding::percent_decode_str(v).collect())
    })
}

/// The StringToSign of a SigV2 request (see the module docs).
fn string_to_sign(
    parts: &RequestParts<'_>,
    date_line: &[u8],
    presign_query: Option<&str>,
    route: &Route,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(parts.method.as_bytes());
    out.push(b'\n');
    for name in ["content-md5", "content-type"] {
        let from_query = presign_query.and_then(|q| query_param(q, name));
        match from_query {
            Some(v) => out.extend_from_slice(&v),
            None => out.extend_from_slice(&joined_header(parts, name)),
        }
        out.push(b'\n');
    }
    out.extend_from_slice(date_line);
    out.push(b'\n');
    for (name, value) in amz_headers(parts, presign_query) {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&value);
        out.push(b'\n');
    }
    let path = if parts.raw_path.is_empty() {
        "/"
    } else {
        parts.raw_path
    };
    if let (AddressingStyle::VirtualHost, Some(bucket)) = (route.style, &route.bucket) {
        out.push(b'/');
        out.extend_from_slice(bucket.as_bytes());
    }
    out.extend_from_slice(path.as_bytes());
    // A bucket is `/bucket/`, with the slash a path-style client may leave out.
    if route.bucket.is_some() && route.key.is_none() && !path.ends_with('/') {
        out.push(b'/');
    }
    write_sub_resources(&mut out, parts.raw_query);
    out
}

/// Every value of header `name`, joined with `,`.
fn joined_header(parts: &RequestParts<'_>, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for h in parts.headers.iter().filter(|h| h.is(name)) {
        if !out.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(&h.value);
    }
    out
}

/// The `x-amz-*` headers (and, presigned, `x-amz-*` query parameters), lower-cased, sorted,
/// repeated names' values joined with `,`.
fn amz_headers(parts: &RequestParts<'_>, presign_query: Option<&str>) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: String, value: &[u8]| match found.iter_mut().find(|(n, _)| *n == name) {
        Some((_, v)) => {
            v.push(b',');
            v.extend_from_slice(value);
        }
        None => found.push((name, value.to_vec())),
    };
    for h in parts.headers {
        if h.name.len() > 6 && h.name[..6].eq_ignore_ascii_case(b"x-amz-") {
            add(
                String::from_utf8_lossy(&h.name).to_ascii_lowercase(),
                &h.value,
            );
        }
    }
    if let Some(query) = presign_query {
        for segment in query.split('&') {
            let (n, v) = segment.split_once('=').unwrap_or((segment, ""));
            if n.len() > 6 && n[..6].eq_ignore_ascii_case("x-amz-") {
                let value: Vec<u8> = percent_encoding::percent_decode_str(v).collect();
                add(n.to_ascii_lowercase(), &value);
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// `?name[=decoded value]&…` for the signed sub-resources in the query, sorted by name.
fn write_sub_resources(out: &mut Vec<u8>, raw_query: &str) {
    let mut subs: Vec<(&str, Option<Vec<u8>>)> = raw_query
        .split('&')
        .filter_map(|segment| {
            let (name, value) = match segment.split_once('=') {
                Some((n, v)) => (n, Some(percent_encoding::percent_decode_str(v).collect())),
                None => (segment, None),
            };
            SUB_RESOURCES.contains(&name).then_some((name, value))
        })
        .collect();
    if subs.is_empty() {
        return;
    }
    subs.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (name, value)) in subs.iter().enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(name.as_bytes());
        if let Some(value) = value {
            out.push(b'=');
            out.extend_from_slice(value);
        }
    }
}

#[cfg(test)]
mod tests;
