//! Parsing a Signature Version 2 claim: `Authorization: AWS <key>:<signature>` or the presign
//! parameters `AWSAccessKeyId`, `Signature` and `Expires`. Each failure is the error S3 answers.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::super::canonical::query_decode;
use super::super::error::AuthError;

/// The query parameters of a SigV2 presigned URL's signature. Like SigV4's, they are the
/// client's authentication and never forwarded to an origin.
pub const SIGV2_PRESIGN_PARAMS: [&str; 3] = ["AWSAccessKeyId", "Signature", "Expires"];

/// The `Authorization` scheme of Signature Version 2, with its separating space.
pub(crate) const SCHEME: &str = "AWS ";

/// A parsed SigV2 claim. Borrows the header or query where nothing needed decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedV2<'a> {
    /// The access key id (non-empty).
    pub access_key_id: Cow<'a, str>,
    /// The HMAC-SHA1 signature, decoded from its base64 form.
    pub signature: [u8; 20],
    /// Presigned only: `Expires`, seconds since the Unix epoch after which the URL is invalid.
    pub expires: Option<u64>,
}

const HEADER_FORM: &str = "The authorization header is malformed; Signature Version 2 is \
     \"AWS <AWSAccessKeyId>:<Signature>\".";
const QUERY_MISSING: &str =
    "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters";

/// The 20-byte HMAC-SHA1 of a base64 signature; `None` for any other text.
fn signature(text: &[u8]) -> Option<[u8; 20]> {
    // 20 bytes are 28 base64 characters with one `=`; reject anything longer before decoding.
    if text.len() != 28 {
        return None;
    }
    let mut out = [0u8; 21];
    match STANDARD.decode_slice(text, &mut out) {
        Ok(20) => out[..20].try_into().ok(),
        _ => None,
    }
}

/// Parses an `Authorization: AWS <AWSAccessKeyId>:<Signature>` header value.
///
/// Errors: a value without the `AWS ` scheme, an empty key id or a missing `:` is
/// `AuthorizationHeaderMalformed`; a signature that is not base64 of 20 bytes is
/// `SignatureDoesNotMatch`.
pub fn parse_v2_header(value: &str) -> Result<ParsedV2<'_>, AuthError> {
    let rest = value
        .strip_prefix(SCHEME)
        .ok_or(AuthError::header_malformed(HEADER_FORM))?;
    // Base64 has no `:`, so the last one separates key id and signature.
    let (key, sig) = rest
        .trim_start_matches(' ')
        .rsplit_once(':')
        .ok_or(AuthError::header_malformed(HEADER_FORM))?;
    if key.is_empty() {
        return Err(AuthError::header_malformed(HEADER_FORM));
    }
    let signature =
        signature(sig.trim_end().as_bytes()).ok_or(AuthError::signature_does_not_match())?;
    Ok(ParsedV2 {
        access_key_id: Cow::Borrowed(key),
        signature,
        expires: None,
    })
}

/// Whether a raw query carries SigV2 presign parameters (`AWSAccessKeyId` or `Signature`).
pub fn has_v2_presign(raw_query: &str) -> bool {
    raw_query.split('&').any(|segment| {
        let name = segment.split_once('=').map_or(segment, |(n, _)| n);
        name == "AWSAccessKeyId" || name == "Signature"
    })
}

/// Parses the SigV2 presign parameters of a raw (still encoded) query.
///
/// Errors: a missing or repeated parameter or an empty key id is `AccessDenied` with S3's
/// message; an `Expires` that is not a number of seconds is `AccessDenied`; a signature that is
/// not base64 of 20 bytes is `SignatureDoesNotMatch`.
pub fn parse_v2_presigned(raw_query: &str) -> Result<ParsedV2<'_>, AuthError> {
    let mut fields: [Option<&str>; 3] = [None; 3];
    for segment in raw_query.split('&') {
        let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
        if let Some(i) = SIGV2_PRESIGN_PARAMS.iter().position(|n| *n == name) {
            if fields[i].replace(value).is_some() {
                return Err(AuthError::access_denied(QUERY_MISSING));
            }
        }
    }
    let [Some(key), Some(sig), Some(expires)] = fields else {
        return Err(AuthError::access_denied(QUERY_MISSING));
    };
    let access_key_id = match query_decode(key) {
        Cow::Borrowed(_) => Cow::Borrowed(key),
        Cow::Owned(bytes) => {
            Cow::Owned(String::from_utf8(bytes).map_err(|_| AuthError::invalid_access_key_id())?)
        }
    };
    if access_key_id.is_empty() {
        return Err(AuthError::access_denied(QUERY_MISSING));
    }
    // Signers percent-encode the base64 (`%2B`, `%2F`, `%3D`); a bare `+` is a literal `+`
    // here, as in S3, since a signature holds no spaces.
    let sig = percent_encoding::percent_decode_str(sig).collect::<Vec<u8>>();
    let signature = signature(&sig).ok_or(AuthError::signature_does_not_match())?;
    let expires = (!expires.is_empty() && expires.len() <= 19)
        .then(|| expires.parse::<u64>().ok())
        .flatten()
        .ok_or(AuthError::access_denied(
            "Invalid date (should be seconds since epoch)",
        ))?;
    Ok(ParsedV2 {
        access_key_id,
        signature,
        expires: Some(expires),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthErrorKind::*;

    const SIG: &str = "vjbyPxybdZaNmGa%2ByT272YEAiv4%3D";
    const SIG_PLAIN: &str = "vjbyPxybdZaNmGa+yT272YEAiv4=";

    #[test]
    fn header_form() {
        let value = format!("AWS AKIAIOSFODNN7EXAMPLE:{SIG_PLAIN}");
        let p = parse_v2_header(&value).unwrap();
        assert_eq!(p.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(p.expires, None);
        assert_eq!(STANDARD.encode(p.signature), SIG_PLAIN);
        let kind = |v: &str| parse_v2_header(v).unwrap_err().kind();
        assert_eq!(kind("AWS"), AuthorizationHeaderMalformed);
        assert_eq!(kind("AWS AKID"), AuthorizationHeaderMalformed);
        assert_eq!(
            kind(&format!("AWS :{SIG_PLAIN}")),
            AuthorizationHeaderMalformed
        );
        assert_eq!(kind("AWS AKID:short"), SignatureDoesNotMatch);
        assert_eq!(
            kind("AWS AKID:vjbyPxybdZaNmGa+yT272YEAiv4"),
            SignatureDoesNotMatch
        );
        assert_eq!(
            kind("AWS AKID:!!!!PxybdZaNmGa+yT272YEAiv4="),
            SignatureDoesNotMatch
        );
    }

    #[test]
    fn presigned_form() {
        let q = format!("AWSAccessKeyId=AKID&Expires=1175139620&Signature={SIG}&versionId=3");
        assert!(has_v2_presign(&q));
        let p = parse_v2_presigned(&q).unwrap();
        assert_eq!(p.access_key_id, "AKID");
        assert_eq!(p.expires, Some(1_175_139_620));
        assert_eq!(STANDARD.encode(p.signature), SIG_PLAIN);
        assert!(!has_v2_presign("list-type=2&prefix=a"));
        assert!(!has_v2_presign("Expires=3"));
        let kind = |q: &str| parse_v2_presigned(q).unwrap_err().kind();
        assert_eq!(kind("AWSAccessKeyId=AKID&Expires=1"), AccessDenied);
        assert_eq!(
            kind(&format!("AWSAccessKeyId=AKID&Signature={SIG}")),
            AccessDenied
        );
        assert_eq!(kind(&format!("Expires=1&Signature={SIG}")), AccessDenied);
        assert_eq!(
            kind(&format!("AWSAccessKeyId=&Expires=1&Signature={SIG}")),
            AccessDenied
        );
        assert_eq!(
            kind(&format!("AWSAccessKeyId=A&Expires=soon&Signature={SIG}")),
            AccessDenied
        );
        assert_eq!(
            kind(&format!("AWSAccessKeyId=A&Expires=-1&Signature={SIG}")),
            AccessDenied
        );
        assert_eq!(
            kind(&format!(
                "AWSAccessKeyId=A&Expires=1&Signature={SIG}&Expires=2"
            )),
            AccessDenied
        );
        assert_eq!(
            kind("AWSAccessKeyId=A&Expires=1&Signature=abc"),
            SignatureDoesNotMatch
        );
    }
}
