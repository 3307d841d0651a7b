//! Client authentication: AWS Signature Version 4 verified locally, for requests signed in the
//! `Authorization` header, presigned URLs and `aws-chunked` streaming uploads; and, when the
//! operator allows it, Signature Version 2 (header and presigned, [`verify_v2`]).
//!
//! Pure and I/O-free. The caller gives the parts of a received request ([`RequestParts`]),
//! a way to find an access key's secret and a shared [`KeyCache`]; [`verify`] recomputes the
//! signature and compares it in constant time. What a body must still satisfy (a signed
//! SHA-256, a chain of chunk signatures, a trailing checksum) comes back in [`Verified`] for the
//! caller to check while it streams the body ([`PayloadVerifier`], [`ChunkVerifier`],
//! [`TrailerChecksum`]).
//!
//! ```text
//! let cred = credential(&parts)?;                 // Header | Presigned | SigV2 | Anonymous
//! let ok = verify(&parts, &cred, lookup, &keys, SystemTime::now())?;
//! authorize(ok.principal, route)?;                // grants: the caller's business
//! ```
//!
//! Canonicalization follows S3, which differs from other AWS services in two ways: the path
//! is not normalized (no `.`/`..` or `//` folding) and is encoded once, not twice. Clients send
//! paths already encoded the way they signed them, so the path as received is tried first; if
//! that fails and the path holds characters a SigV4 signer would have encoded (AWS's own
//! `PUT /test$file.text` example), the once-encoded form of the decoded path is tried next.
//! Both denote the same key, so accepting either widens nothing.

mod body_check;
mod canonical;
mod checksum;
mod chunk;
mod error;
mod key_cache;
mod parse;
mod policy;
mod session;
mod sigv2;
mod verify;

#[cfg(test)]
mod tests;

pub use body_check::BodyCheck;
pub use checksum::{ChecksumAlgorithm, PayloadVerifier, TrailerChecksum};
pub use chunk::ChunkVerifier;
pub use error::{AuthError, AuthErrorKind};
pub use key_cache::{derive_signing_key, KeyCache, DEFAULT_KEY_CACHE_ENTRIES};
pub use parse::{
    parse_authorization, parse_presigned, AmzDate, CredentialScope, ParsedAuthHeader,
    ParsedPresign, MAX_PRESIGN_EXPIRES, PRESIGN_PARAMS,
};
pub use policy::{
    authorize, Access, AuthMode, AuthPolicy, Grant, Need, Scope, SourcedGrant, StaticKey,
};
pub use session::{SessionClaims, SessionKey, SessionKeyError, SessionKeys, MAX_TOKEN_CHARS};
pub use sigv2::{
    has_v2_presign, parse_v2_header, parse_v2_presigned, verify_v2, ParsedV2, SigV2, V2Claim,
    VerifiedV2, SIGV2_PRESIGN_PARAMS, SIGV2_REFUSED,
};
pub use verify::{verify, PayloadHash, StreamingKind, Verified, MAX_CLOCK_SKEW};

use crate::http::Header;

/// The parts of a received request that a SigV4 signature covers. Borrowed: nothing is copied.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method token as sent, e.g. `GET`.
    pub method: &'a str,
    /// The path exactly as received, still percent-encoded, without the query
    /// ([`RequestHead::path`](crate::http::RequestHead::path)). An empty path counts as `/`.
    pub raw_path: &'a str,
    /// The query exactly as received, after the `?`, still encoded; `""` if none.
    pub raw_query: &'a str,
    /// All header fields in the order received, values trimmed of surrounding whitespace, as
    /// the HTTP parser hands them out. A repeated header's values are joined with `,`.
    pub headers: &'a [Header],
}

impl<'a> RequestParts<'a> {
    /// The value of the only header called `name`; `Err(())` if it is repeated or not UTF-8.
    pub(crate) fn single_header(&self, name: &str) -> Result<Option<&'a str>, ()> {
        let mut found = None;
        for header in self.headers.iter().filter(|h| h.is(name)) {
            if found.is_some() {
                return Err(());
            }
            found = Some(header.value_str().ok_or(())?);
        }
        Ok(found)
    }
}

/// What a request claims about its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential<'a> {
    /// Signed in the `Authorization` header.
    Header(ParsedAuthHeader<'a>),
    /// A presigned URL: signed in the query.
    Presigned(ParsedPresign<'a>),
    /// Signature Version 2, in the header or the query; verified by [`verify_v2`] when
    /// `auth.sigv2` allows it.
    SigV2(V2Claim<'a>),
    /// No signature at all: allowed only where anonymous grants say so.
    Anonymous,
}

impl Credential<'_> {
    /// The access key id the request claims to be signed with; `None` for anonymous.
    pub fn access_key_id(&self) -> Option<&str> {
        match self {
            Credential::Header(h) => Some(h.credential().access_key_id),
            Credential::Presigned(p) => Some(p.credential().access_key_id),
            // The header form names its key up front; a presigned one only in its query.
            Credential::SigV2(V2Claim::Header(v)) => v
                .trim()
                .strip_prefix("AWS ")
                .and_then(|rest| rest.split_once(':'))
                .map(|(key, _)| key.trim()),
            Credential::SigV2(V2Claim::Presigned) => None,
            Credential::Anonymous => None,
        }
    }
}

/// Finds out how `parts` claims to be signed.
///
/// Errors: more than one `Authorization` header, or one that is not text, is
/// `AuthorizationHeaderMalformed`; two mechanisms at once (an `Authorization` header with
/// presign parameters, or SigV2 and SigV4 presign parameters together) is `InvalidArgument`
/// ("Only one auth mechanism allowed"), as S3 answers; otherwise the errors of
/// [`parse_authorization`] and [`parse_presigned`]. A Signature Version 2 header
/// (`AWS key:signature`) or presigned URL (`AWSAccessKeyId=`, `Signature=`) comes back as
/// [`Credential::SigV2`] unparsed: whether SigV2 is accepted at all is the caller's decision.
pub fn credential<'a>(parts: &RequestParts<'a>) -> Result<Credential<'a>, AuthError> {
    const ONE_MECHANISM: AuthError = AuthError::invalid_argument(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
         Signature query string parameter or the Authorization header should be specified",
    );
    let authorization = parts.single_header("authorization").map_err(|()| {
        AuthError::header_malformed(
            "The authorization header is malformed; it must be sent once, as text.",
        )
    })?;
    let presigned = parse_presigned(parts.raw_query)?;
    let v2_query = has_v2_presign(parts.raw_query);
    match (authorization, presigned) {
        (Some(_), Some(_)) => Err(ONE_MECHANISM),
        (Some(_), None) | (None, Some(_)) if v2_query => Err(ONE_MECHANISM),
        (Some(value), None) if value.starts_with(sigv2::SCHEME) => {
            Ok(Credential::SigV2(V2Claim::Header(value)))
        }
        (Some(value), None) => parse_authorization(value).map(Credential::Header),
        (None, Some(presign)) => Ok(Credential::Presigned(presign)),
        (None, None) if v2_query => Ok(Credential::SigV2(V2Claim::Presigned)),
        (None, None) => Ok(Credential::Anonymous),
    }
}
