//! The verification entry point: time checks, scope checks, key lookup, recomputation of the
//! signature and a constant-time comparison.

use std::time::{Duration, SystemTime};

use ring::hmac;

use super::canonical::{
    canonical_request, normalized_path, sha256, signature_matches, unhex32, write_string_to_sign,
};
use super::parse::{AmzDate, CredentialScope};
use super::{AuthError, Credential, KeyCache, RequestParts};

/// How far a header-signed request's time may be from rangecache's clock, either way (S3's
/// 15 minutes). A presigned URL may also be dated at most this far in the future.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// How a streaming (`aws-chunked`) body is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamingKind {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: every chunk signed, in a chain from the seed
    /// signature; check with [`ChunkVerifier`](super::ChunkVerifier).
    Signed,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks, then trailers (a checksum)
    /// with a trailer signature that ends the chain.
    SignedWithTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: unsigned chunks, then a trailing checksum; check it
    /// with [`TrailerChecksum`](super::TrailerChecksum).
    UnsignedWithTrailer,
}

/// What the signature says about the body, from `x-amz-content-sha256` (header auth) or
/// `X-Amz-Content-Sha256` / `UNSIGNED-PAYLOAD` (presigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadHash {
    /// The body's SHA-256 was signed: the caller must check the body against it before acting
    /// on it ([`PayloadVerifier`](super::PayloadVerifier)), and answer
    /// `XAmzContentSHA256Mismatch` if it differs.
    Signed([u8; 32]),
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature.
    Unsigned,
    /// An `aws-chunked` body; see [`StreamingKind`].
    Streaming(StreamingKind),
}

impl PayloadHash {
    /// Parses an `x-amz-content-sha256` value: 64 hex digits or one of the four keywords.
    /// SigV4a streaming (`STREAMING-AWS4-ECDSA-P256-SHA256-*`) and anything else is
    /// `InvalidArgument`, with S3's message.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        if let Some(hash) = unhex32(value.as_bytes()) {
            return Ok(Self::Signed(hash));
        }
        Ok(match value {
            "UNSIGNED-PAYLOAD" => Self::Unsigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Self::Streaming(StreamingKind::Signed),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
                Self::Streaming(StreamingKind::SignedWithTrailer)
            }
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => {
                Self::Streaming(StreamingKind::UnsignedWithTrailer)
            }
            _ => {
                return Err(AuthError::invalid_argument(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, \
                     STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, \
                     STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a valid sha256 value.",
                ))
            }
        })
    }
}

/// A request whose signature checked out, with what the caller needs afterwards.
///
/// Borrows the request parts and the credential it was verified from.
#[derive(Debug, Clone)]
pub struct Verified<'a, P> {
    /// What the key lookup returned besides the secret (the caller's grants, say).
    pub principal: P,
    /// The access key id the request was signed with.
    pub access_key_id: &'a str,
    /// The session token sent with it (`x-amz-security-token` or `X-Amz-Security-Token`), if
    /// any; it was also handed to the key lookup.
    pub session_token: Option<&'a str>,
    /// The credential scope: date, region (any; the one the client signed for), service `s3`.
    pub scope: CredentialScope<'a>,
    /// The request time the signature covers.
    pub date: AmzDate,
    /// The request's signature, the seed of an aws-chunked chain.
    pub signature: [u8; 32],
    /// The signing key, for aws-chunked chunk and trailer signatures.
    pub signing_key: hmac::Key,
    /// What the signature says about the body.
    pub payload: PayloadHash,
    /// For a presigned URL, the instant it stops being valid; `None` for header auth.
    pub expires_at: Option<SystemTime>,
}

/// `x-amz-*` headers a client may send without signing them. Every other `x-amz-*` header in
/// the request must be signed, as S3 requires ("There were headers present in the request
/// which were not signed"). aws-sigv4 leaves these two out of presigned URLs by design.
const UNSIGNED_OK_PRESIGNED: [&str; 3] = [
    "x-amz-user-agent",
    "x-amz-checksum-mode",
    // Not part of a presigned signature (the payload hash comes from the query or is
    // UNSIGNED-PAYLOAD), so a client sending one changes nothing.
    "x-amz-content-sha256",
];

const HEADERS_NOT_SIGNED: &str = "There were headers present in the request which were not signed";

fn is_signed(signed_headers: &str, name: &[u8]) -> bool {
    signed_headers
        .as_bytes()
        .split(|&b| b == b';')
        .any(|signed| signed.eq_ignore_ascii_case(name))
}

/// `host` must be signed, and so must every `x-amz-*` header present (but the exempt ones).
fn check_unsigned_headers(
    parts: &RequestParts<'_>,
    signed_headers: &str,
    exempt: &[&str],
) -> Result<(), AuthError> {
    if !is_signed(signed_headers, b"host") {
        return Err(AuthError::access_denied(HEADERS_NOT_SIGNED));
    }
    for header in parts.headers {
        let name = &header.name[..];
        let amz = name.len() > 6 && name[..6].eq_ignore_ascii_case(b"x-amz-");
        if amz
            && !exempt
                .iter()
                .any(|e| e.as_bytes().eq_ignore_ascii_case(name))
            && !is_signed(signed_headers, name)
        {
            return Err(AuthError::access_denied(HEADERS_NOT_SIGNED));
        }
    }
    Ok(())
}

fn abs_diff(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).unwrap_or_else(|e| e.duration())
}

/// Verifies the signature of a request.
///
/// `lookup(access_key_id, session_token)` returns the secret access key to check against and
/// a principal handed back in [`Verified::principal`]; it returns
/// [`AuthError::invalid_access_key_id`] for an unknown key (and, later, `ExpiredToken` /
/// `InvalidToken` for bad session tokens). It runs only after the request's shape, scope and
/// time passed their checks. `now` is the current time (a parameter, for tests).
///
/// Checks, in order, each failing with the error S3 answers:
/// - header auth: `x-amz-date` (else `Date`) is a valid time (`AccessDenied`), the credential
///   date is its date and the service is `s3` (`AuthorizationHeaderMalformed`), it is within
///   [`MAX_CLOCK_SKEW`] of `now` (`RequestTimeTooSkewed`), `x-amz-content-sha256` is present
///   (`InvalidRequest`) and valid (`InvalidArgument`);
/// - presigned: the credential date is `X-Amz-Date`'s and the service is `s3`
///   (`AuthorizationQueryParametersError`), `X-Amz-Date` is not more than the skew in the
///   future (`AccessDenied` "Request is not valid yet") and `X-Amz-Date + X-Amz-Expires` is
///   not before `now` (`AccessDenied` "Request has expired");
/// - `host` and every `x-amz-*` header present are signed (`AccessDenied`);
/// - the key lookup; every signed header is present and the recomputed signature equals the
///   one sent, compared in constant time (`SignatureDoesNotMatch`).
///
/// The region is not checked: rangecache answers for any region, and the one the client
/// signed for is the one its signature is checked with. An [`Credential::Anonymous`] request
/// is `AccessDenied`: decide anonymous access before calling this.
pub fn verify<'a, S, P>(
    parts: &RequestParts<'a>,
    cred: &'a Credential<'a>,
    lookup: impl FnOnce(&str, Option<&str>) -> Result<(S, P), AuthError>,
    keys: &KeyCache,
    now: SystemTime,
) -> Result<Verified<'a, P>, AuthError>
where
    S: AsRef<[u8]>,
{
    let claim = match cred {
        Credential::Header(header) => {
            let scope = header.credential();
            let date = header_date(parts)?;
            if scope.date != date.date() {
                return Err(AuthError::header_malformed(
                    "The authorization header is malformed; Invalid credential date. This date \
                     is not the same as X-Amz-Date.",
                ));
            }
            if scope.service != "s3" {
                return Err(AuthError::header_malformed(
                    "The authorization header is malformed; incorrect service. This endpoint \
                     belongs to \"s3\".",
                ));
            }
            if abs_diff(date.time(), now) > MAX_CLOCK_SKEW {
                return Err(AuthError::request_time_too_skewed());
            }
            let content_sha256 = parts
                .single_header("x-amz-content-sha256")
                .map_err(|()| {
                    AuthError::invalid_argument("x-amz-content-sha256 must be sent once.")
                })?
                .ok_or(AuthError::new(
                    super::AuthErrorKind::InvalidRequest,
                    "Missing required header for this request: x-amz-content-sha256",
                ))?;
            let payload = PayloadHash::parse(content_sha256)?;
            check_unsigned_headers(parts, header.signed_headers, &[])?;
            let session_token = parts
                .single_header("x-amz-security-token")
                .map_err(|()| AuthError::invalid_token())?;
            Claim {
                presigned: false,
                scope,
                date,
                signed_headers: header.signed_headers,
                content_sha256,
                payload,
                session_token,
                signature: header.signature,
                expires_at: None,
            }
        }
        Credential::Presigned(presign) => {
            let scope = presign.credential();
            let date = presign.date;
            if scope.date != date.date() {
                return Err(AuthError::query_malformed(
                    "Invalid credential date. This date is not the same as X-Amz-Date.",
                ));
            }
            if scope.service != "s3" {
                return Err(AuthError::query_malformed(
                    "Error parsing the X-Amz-Credential parameter; incorrect service. This \
                     endpoint belongs to \"s3\".",
                ));
            }
            let signed_at = date.time();
            if signed_at > now + MAX_CLOCK_SKEW {
                return Err(AuthError::access_denied("Request is not valid yet"));
            }
            let expires_at = signed_at + Duration::from_secs(u64::from(presign.expires));
            if expires_at < now {
                return Err(AuthError::access_denied("Request has expired"));
            }
            let content_sha256 = presign.content_sha256().unwrap_or("UNSIGNED-PAYLOAD");
            let payload = PayloadHash::parse(content_sha256)?;
            let signed_headers = presign.signed_headers();
            check_unsigned_headers(parts, signed_headers, &UNSIGNED_OK_PRESIGNED)?;
            Claim {
                presigned: true,
                scope,
                date,
                signed_headers,
                content_sha256,
                payload,
                session_token: presign.security_token(),
                signature: presign.signature,
                expires_at: Some(expires_at),
            }
        }
        Credential::Anonymous => return Err(AuthError::access_denied("Access Denied")),
        Credential::SigV2(_) => return Err(AuthError::invalid_argument(super::SIGV2_REFUSED)),
    };
    let scope = claim.scope;
    let (secret, principal) = lookup(scope.access_key_id, claim.session_token)?;
    let signing_key = keys.get_or_derive(secret.as_ref(), scope.date, scope.region, scope.service);
    check_signature(parts, &claim, &signing_key)?;
    Ok(Verified {
        principal,
        access_key_id: scope.access_key_id,
        session_token: claim.session_token,
        scope,
        date: claim.date,
        signature: claim.signature,
        signing_key,
        payload: claim.payload,
        expires_at: claim.expires_at,
    })
}

/// What a request's signature claims, once its shape, scope and time passed their checks:
/// everything the key lookup and the signature check need, whichever way it was signed.
struct Claim<'a> {
    /// Signed in the query (the canonical query then leaves out `X-Amz-Signature`).
    presigned: bool,
    scope: CredentialScope<'a>,
    date: AmzDate,
    signed_headers: &'a str,
    /// The payload hash as signed: the header's value, the query's, or `UNSIGNED-PAYLOAD`.
    content_sha256: &'a str,
    payload: PayloadHash,
    session_token: Option<&'a str>,
    signature: [u8; 32],
    expires_at: Option<SystemTime>,
}

/// The request time of a header-signed request: `x-amz-date`, else the HTTP `Date` header.
fn header_date(parts: &RequestParts<'_>) -> Result<AmzDate, AuthError> {
    const NO_DATE: AuthError =
        AuthError::access_denied("AWS authentication requires a valid Date or x-amz-date header");
    if let Some(value) = parts.single_header("x-amz-date").map_err(|()| NO_DATE)? {
        return AmzDate::parse(value).ok_or(NO_DATE);
    }
    let value = parts
        .single_header("date")
        .map_err(|()| NO_DATE)?
        .ok_or(NO_DATE)?;
    httpdate::parse_http_date(value)
        .ok()
        .and_then(AmzDate::from_system_time)
        .ok_or(NO_DATE)
}

/// Recomputes the signature over the raw path, then over the normalized path if that differs.
fn check_signature(
    parts: &RequestParts<'_>,
    claim: &Claim<'_>,
    key: &hmac::Key,
) -> Result<(), AuthError> {
    let attempt = |uri: &[u8]| -> Result<bool, AuthError> {
        let mut buf = canonical_request(
            parts,
            uri,
            claim.presigned,
            claim.signed_headers,
            claim.content_sha256,
        )
        .map_err(|_| AuthError::signature_does_not_match())?;
        let digest = sha256(&buf);
        write_string_to_sign(&mut buf, claim.date.as_str(), claim.scope.scope, &digest);
        Ok(signature_matches(key, &buf, &claim.signature))
    };
    if attempt(parts.raw_path.as_bytes())? {
        return Ok(());
    }
    match normalized_path(parts.raw_path) {
        Some(uri) if attempt(&uri)? => Ok(()),
        _ => Err(AuthError::signature_does_not_match()),
    }
}
