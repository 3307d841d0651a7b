//! Why a request failed authentication, as the S3 error code and status S3 answers with.

use std::fmt;

use crate::s3::S3Error;

/// What went wrong, one variant per S3 error code the verifier can produce.
///
/// The variant decides the code and the status; callers match on it, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// 403: the signature computed here differs from the one sent (wrong secret, a signed part
    /// of the request changed, a signed header missing, a bad chunk or trailer signature).
    SignatureDoesNotMatch,
    /// 403: the access key id is not one rangecache knows.
    InvalidAccessKeyId,
    /// 403: a presigned URL expired or is not valid yet, no usable date, unsigned `x-amz-*`
    /// headers, or an anonymous request where a signature is needed.
    AccessDenied,
    /// 403: the request time is more than 15 minutes away from rangecache's clock.
    RequestTimeTooSkewed,
    /// 400: the `Authorization` header does not parse, or its scope is wrong.
    AuthorizationHeaderMalformed,
    /// 400: a presigned URL's `X-Amz-*` parameters are missing, malformed or out of range.
    AuthorizationQueryParametersError,
    /// 400: a required security header is missing (kept for session tokens, STS).
    MissingSecurityHeader,
    /// 400: an unsupported authorization type, two auth mechanisms at once, or a bad
    /// `x-amz-content-sha256` / `x-amz-trailer` value.
    InvalidArgument,
    /// 400: S3's answer to a header-signed request without `x-amz-content-sha256`.
    InvalidRequest,
    /// 400: the body's SHA-256 differs from the signed `x-amz-content-sha256`.
    XAmzContentSHA256Mismatch,
    /// 400: a trailing checksum (`x-amz-checksum-*`) differs from the body's.
    BadDigest,
    /// 400: the trailers of an aws-chunked body lack the declared checksum or its signature.
    MalformedTrailerError,
    /// 400: a session token has expired (STS).
    ExpiredToken,
    /// 400: a session token is malformed or sealed with an unknown key (STS).
    InvalidToken,
}

impl AuthErrorKind {
    /// The S3 error code, as sent in `<Code>`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::InvalidAccessKeyId => "InvalidAccessKeyId",
            Self::AccessDenied => "AccessDenied",
            Self::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            Self::AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            Self::AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            Self::MissingSecurityHeader => "MissingSecurityHeader",
            Self::InvalidArgument => "InvalidArgument",
            Self::InvalidRequest => "InvalidRequest",
            Self::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            Self::BadDigest => "BadDigest",
            Self::MalformedTrailerError => "MalformedTrailerError",
            Self::ExpiredToken => "ExpiredToken",
            Self::InvalidToken => "InvalidToken",
        }
    }

    /// The HTTP status S3 sends with this code.
    pub const fn status(self) -> u16 {
        match self {
            Self::SignatureDoesNotMatch
            | Self::InvalidAccessKeyId
            | Self::AccessDenied
            | Self::RequestTimeTooSkewed => 403,
            Self::AuthorizationHeaderMalformed
            | Self::AuthorizationQueryParametersError
            | Self::MissingSecurityHeader
            | Self::InvalidArgument
            | Self::InvalidRequest
            | Self::XAmzContentSHA256Mismatch
            | Self::BadDigest
            | Self::MalformedTrailerError
            | Self::ExpiredToken
            | Self::InvalidToken => 400,
        }
    }
}

/// An authentication failure: a kind (code and status) and a fixed message in S3's wording.
///
/// Small and `Copy`, so it costs nothing to return or share. Messages never contain request
/// data (no key ids, no signatures), so they are safe to log and to send to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthError {
    kind: AuthErrorKind,
    message: &'static str,
}

impl AuthError {
    /// An error of `kind` with `message`. Prefer the named constructors.
    pub const fn new(kind: AuthErrorKind, message: &'static str) -> Self {
        Self { kind, message }
    }

    /// What went wrong.
    pub const fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The S3 error code, as sent in `<Code>`.
    pub const fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The HTTP status to answer with.
    pub const fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The human-readable message, as sent in `<Message>`.
    pub const fn message(&self) -> &'static str {
        self.message
    }

    /// 403 `SignatureDoesNotMatch` with S3's message.
    pub const fn signature_does_not_match() -> Self {
        Self::new(
            AuthErrorKind::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. \
             Check your key and signing method.",
        )
    }

    /// 403 `InvalidAccessKeyId`: what a key lookup returns for an unknown access key id.
    pub const fn invalid_access_key_id() -> Self {
        Self::new(
            AuthErrorKind::InvalidAccessKeyId,
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    }

    /// 403 `AccessDenied` with `message`.
    pub const fn access_denied(message: &'static str) -> Self {
        Self::new(AuthErrorKind::AccessDenied, message)
    }

    /// 403 `RequestTimeTooSkewed` with S3's message.
    pub const fn request_time_too_skewed() -> Self {
        Self::new(
            AuthErrorKind::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        )
    }

    /// 400 `AuthorizationHeaderMalformed` with `message`.
    pub const fn header_malformed(message: &'static str) -> Self {
        Self::new(AuthErrorKind::AuthorizationHeaderMalformed, message)
    }

    /// 400 `AuthorizationQueryParametersError` with `message`.
    pub const fn query_malformed(message: &'static str) -> Self {
        Self::new(AuthErrorKind::AuthorizationQueryParametersError, message)
    }

    /// 400 `MissingSecurityHeader` with S3's message.
    pub const fn missing_security_header() -> Self {
        Self::new(
            AuthErrorKind::MissingSecurityHeader,
            "Your request was missing a required header.",
        )
    }

    /// 400 `InvalidArgument` with `message`.
    pub const fn invalid_argument(message: &'static str) -> Self {
        Self::new(AuthErrorKind::InvalidArgument, message)
    }

    /// 400 `XAmzContentSHA256Mismatch` with S3's message.
    pub const fn content_sha256_mismatch() -> Self {
        Self::new(
            AuthErrorKind::XAmzContentSHA256Mismatch,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    }

    /// 400 `BadDigest` with `message` (S3 names the algorithm in it).
    pub const fn bad_digest(message: &'static str) -> Self {
        Self::new(AuthErrorKind::BadDigest, message)
    }

    /// 400 `MalformedTrailerError` with S3's message.
    pub const fn malformed_trailer() -> Self {
        Self::new(
            AuthErrorKind::MalformedTrailerError,
            "The request contained trailing data that was not well-formed or did not conform \
             to our published schema.",
        )
    }

    /// 400 `ExpiredToken` with S3's message (for session tokens).
    pub const fn expired_token() -> Self {
        Self::new(
            AuthErrorKind::ExpiredToken,
            "The provided token has expired.",
        )
    }

    /// 400 `InvalidToken` with S3's message (for session tokens).
    pub const fn invalid_token() -> Self {
        Self::new(
            AuthErrorKind::InvalidToken,
            "The provided token is malformed or otherwise invalid.",
        )
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)
    }
}

impl std::error::Error for AuthError {}

impl From<AuthError> for S3Error {
    fn from(e: AuthError) -> Self {
        S3Error::new(e.code(), e.status(), e.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let cases = [
            (
                AuthError::signature_does_not_match(),
                "SignatureDoesNotMatch",
                403,
            ),
            (
                AuthError::invalid_access_key_id(),
                "InvalidAccessKeyId",
                403,
            ),
            (AuthError::access_denied("x"), "AccessDenied", 403),
            (
                AuthError::request_time_too_skewed(),
                "RequestTimeTooSkewed",
                403,
            ),
            (
                AuthError::header_malformed("x"),
                "AuthorizationHeaderMalformed",
                400,
            ),
            (
                AuthError::query_malformed("x"),
                "AuthorizationQueryParametersError",
                400,
            ),
            (
                AuthError::missing_security_header(),
                "MissingSecurityHeader",
                400,
            ),
            (AuthError::invalid_argument("x"), "InvalidArgument", 400),
            (
                AuthError::content_sha256_mismatch(),
                "XAmzContentSHA256Mismatch",
                400,
            ),
            (AuthError::bad_digest("x"), "BadDigest", 400),
            (AuthError::malformed_trailer(), "MalformedTrailerError", 400),
            (AuthError::expired_token(), "ExpiredToken", 400),
            (AuthError::invalid_token(), "InvalidToken", 400),
        ];
        for (e, code, status) in cases {
            assert_eq!((e.code(), e.status()), (code, status));
            let s3: S3Error = e.into();
            assert_eq!((s3.code(), s3.status()), (code, status));
        }
    }
}
