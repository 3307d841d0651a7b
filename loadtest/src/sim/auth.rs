//! SigV4 verification of what reaches the simulator (header auth, the form rangecache and the
//! AWS SDKs send). Verification is recomputation: build the canonical request from what was
//! received (the path and query re-encoded the AWS way, only the headers named in
//! `SignedHeaders`, the payload hash from `x-amz-content-sha256`), sign it with the
//! configured secret and compare in constant time. The signing key is cached per date.
//!
//! Not checked: the clock (any `x-amz-date` is accepted, so recorded requests replay in
//! tests), presigned URLs (answered 403) and `aws-chunked` streaming signatures.

use std::sync::Mutex;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The identity the simulator accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Region expected in the credential scope.
    pub region: String,
}

/// What a request proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    Anonymous,
    /// A valid signature; `payload_hash` is the signed `x-amz-content-sha256` (a hex SHA-256,
    /// `UNSIGNED-PAYLOAD`, ...), which the caller checks against the body.
    Signed {
        /// The signed payload hash.
        payload_hash: String,
    },
}

/// Why a request was refused, as S3 would say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    /// S3 error code (`SignatureDoesNotMatch`, `InvalidAccessKeyId`, ...).
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
}

impl AuthError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        AuthError {
            code,
            message: message.into(),
        }
    }
}

/// The parts of a received request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedParts<'a> {
    /// Method, e.g. "GET".
    pub method: &'a str,
    /// The path exactly as received (percent-encoded).
    pub path: &'a str,
    /// The query string exactly as received, without '?'.
    pub query: &'a str,
    /// Every header, names lowercase, in arrival order.
    pub headers: &'a [(String, String)],
}

/// Checks SigV4 header signatures against one set of credentials.
#[derive(Debug)]
pub struct Verifier {
    creds: Credentials,
    /// (yyyymmdd, signing key): the last date's key, so the HMAC chain runs once a day.
    key_cache: Mutex<Option<(String, [u8; 32])>>,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// AWS URI encoding: everything but `A-Za-z0-9-._~` as %XX (uppercase); `/` kept when
/// `keep_slash` (paths).
fn aws_encode(out: &mut String, raw: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

fn decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

/// The canonical query string: parameters decoded, re-encoded, sorted.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (mut ek, mut ev) = (String::new(), String::new());
            aws_encode(&mut ek, &decode(k), false);
            aws_encode(&mut ev, &decode(v), false);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// A header value as SigV4 canonicalizes it: trimmed, inner runs of spaces collapsed.
fn canonical_value(out: &mut String, v: &str) {
    let mut space = false;
    for c in v.trim().chars() {
        if c == ' ' {
            space = true;
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The fields of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct AuthHeader<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(v: &str) -> Option<AuthHeader<'_>> {
    let rest = v.trim().strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, val) = part.trim().split_once('=')?;
        match k.trim() {
            "Credential" => cred = Some(val.trim()),
            "SignedHeaders" => signed = Some(val.trim()),
            "Signature" => sig = Some(val.trim()),
            _ => {}
        }
    }
    let mut scope = cred?.split('/');
    let h = AuthHeader {
        access_key: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?,
        signature: sig?,
    };
    (scope.next()? == "aws4_request" && scope.next().is_none()).then_some(h)
}

impl Verifier {
    /// A verifier for one identity.
    pub fn new(creds: Credentials) -> Self {
        Verifier {
            creds,
            key_cache: Mutex::new(None),
        }
    }

    fn signing_key(&self, date: &str) -> [u8; 32] {
        let mut cache = self.key_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((d, k)) = cache.as_ref() {
            if d == date {
                return *k;
            }
        }
        let k_date = hmac(
            format!("AWS4{}", self.creds.secret_key).as_bytes(),
            date.as_bytes(),
        );
        let k_region = hmac(&k_date, self.creds.region.as_bytes());
        let k_service = hmac(&k_region, b"s3");
        let key = hmac(&k_service, b"aws4_request");
        *cache = Some((date.to_owned(), key));
        key
    }

    /// Check a request's signature. Requests without `Authorization` are `Anonymous`; the
    /// caller decides whether those are allowed.
    pub fn check(&self, req: &SignedParts<'_>) -> Result<Auth, AuthError> {
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(authz) = header("authorization") else {
            if req.query.contains("X-Amz-Signature=") {
                return Err(AuthError::new(
                    "AccessDenied",
                    "presigned URLs are not supported by the simulator",
                ));
            }
            return Ok(Auth::Anonymous);
        };
        let a = parse_authorization(authz).ok_or_else(|| {
            AuthError::new("AuthorizationHeaderMalformed", "cannot parse Authorization")
        })?;
        if a.access_key != self.creds.access_key {
            return Err(AuthError::new(
                "InvalidAccessKeyId",
                format!("unknown access key {:?}", a.access_key),
            ));
        }
        if a.region != self.creds.region || a.service != "s3" {
            return Err(AuthError::new(
                "AuthorizationHeaderMalformed",
                format!(
                    "scope {}/{} should be {}/s3",
                    a.region, a.service, self.creds.region
                ),
            ));
        }
        let amz_date = header("x-amz-date")
            .ok_or_else(|| AuthError::new("AccessDenied", "missing x-amz-date"))?;
        if !amz_date.starts_with(a.date) {
            return Err(AuthError::new(
                "AuthorizationHeaderMalformed",
                "credential date does not match x-amz-date",
            ));
        }
        let payload_hash = header("x-amz-content-sha256")
            .ok_or_else(|| AuthError::new("InvalidRequest", "missing x-amz-content-sha256"))?;

        let mut creq = String::with_capacity(512);
        creq.push_str(req.method);
        creq.push('\n');
        aws_encode(&mut creq, &decode(req.path), true);
        creq.push('\n');
        creq.push_str(&canonical_query(req.query));
        creq.push('\n');
        for name in a.signed_headers.split(';') {
            let mut values = req.headers.iter().filter(|(k, _)| k == name).peekable();
            if values.peek().is_none() {
                return Err(AuthError::new(
                    "SignatureDoesNotMatch",
                    format!("signed header {name:?} is missing"),
                ));
            }
            creq.push_str(name);
            creq.push(':');
            for (i, (_, v)) in values.enumerate() {
                if i > 0 {
                    creq.push(',');
                }
                canonical_value(&mut creq, v);
            }
            creq.push('\n');
        }
        creq.push('\n');
        creq.push_str(a.signed_headers);
        creq.push('\n');
        creq.push_str(payload_hash);

        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{}/{}/s3/aws4_request\n{}",
            a.date,
            a.region,
            hex::encode(Sha256::digest(creq.as_bytes()))
        );
        let expected = hex::encode(hmac(&self.signing_key(a.date), string_to_sign.as_bytes()));
        if !constant_time_eq(expected.as_bytes(), a.signature.as_bytes()) {
            return Err(AuthError::new(
                "SignatureDoesNotMatch",
                "the request signature we calculated does not match the signature you provided",
            ));
        }
        Ok(Auth::Signed {
            payload_hash: payload_hash.to_owned(),
        })
    }
}

/// Hex SHA-256 of a body, to compare with a signed `x-amz-content-sha256`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::sign::Signer;
    use std::time::{Duration, SystemTime};

    fn verifier(secret: &str) -> Verifier {
        Verifier::new(Credentials {
            access_key: "test".into(),
            secret_key: secret.into(),
            region: "us-east-1".into(),
        })
    }

    fn signed(
        path_and_query: &str,
        range: Option<&str>,
    ) -> (String, String, Vec<(String, String)>) {
        let signer = Signer::new("test", "test", "us-east-1");
        let mut headers = vec![("host".to_owned(), "127.0.0.1:9000".to_owned())];
        if let Some(r) = range {
            headers.push(("range".to_owned(), r.to_owned()));
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        signer
            .sign("GET", "127.0.0.1:9000", path_and_query, &mut headers, now)
            .unwrap();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        (path.to_owned(), query.to_owned(), headers)
    }

    #[test]
    fn accepts_aws_sigv4_signatures_and_rejects_a_wrong_secret() {
        for target in [
            "/bench/obj-000001-size-1000",
            "/bench/dir/a%20b%2Bc-size-10",
            "/bench?list-type=2&prefix=a%2Fb&max-keys=10",
        ] {
            let (path, query, headers) = signed(target, Some("bytes=0-99"));
            let parts = SignedParts {
                method: "GET",
                path: &path,
                query: &query,
                headers: &headers,
            };
            let ok = verifier("test").check(&parts);
            assert!(matches!(ok, Ok(Auth::Signed { .. })), "{target}: {ok:?}");
            let bad = verifier("wrong").check(&parts).unwrap_err();
            assert_eq!(bad.code, "SignatureDoesNotMatch");
        }
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let (path, query, mut headers) = signed("/bench/k-size-10", Some("bytes=0-9"));
        for h in &mut headers {
            if h.0 == "range" {
                h.1 = "bytes=0-1".into();
            }
        }
        let parts = SignedParts {
            method: "GET",
            path: &path,
            query: &query,
            headers: &headers,
        };
        assert_eq!(
            verifier("test").check(&parts).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        let other_path = SignedParts {
            path: "/bench/k-size-11",
            ..parts
        };
        assert!(verifier("test").check(&other_path).is_err());
    }

    #[test]
    fn unsigned_is_anonymous_and_unknown_keys_are_named() {
        let headers = vec![("host".to_owned(), "x".to_owned())];
        let parts = SignedParts {
            method: "GET",
            path: "/b/k",
            query: "",
            headers: &headers,
        };
        assert_eq!(verifier("test").check(&parts), Ok(Auth::Anonymous));
        let headers = vec![(
            "authorization".to_owned(),
            "AWS4-HMAC-SHA256 Credential=nobody/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00".to_owned(),
        )];
        let parts = SignedParts {
            headers: &headers,
            ..parts
        };
        assert_eq!(
            verifier("test").check(&parts).unwrap_err().code,
            "InvalidAccessKeyId"
        );
    }

    #[test]
    fn canonicalization_helpers() {
        assert_eq!(canonical_query("b=2&a=1&c"), "a=1&b=2&c=");
        assert_eq!(canonical_query("prefix=a/b"), "prefix=a%2Fb");
        let mut s = String::new();
        canonical_value(&mut s, "  a   b  c ");
        assert_eq!(s, "a b c");
    }
}
