//! Parsing what a request claims about its signature: the `Authorization` header, the
//! presigned-URL query parameters, the credential scope and the SigV4 timestamp.
//!
//! Parsers borrow from their input; only percent-encoded presign parameters are decoded into
//! owned strings (and only when they hold escapes). Each failure is the error S3 answers.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::canonical::{query_decode, unhex32, ALGORITHM};
use super::error::AuthError;

/// Longest validity of a presigned URL: seven days, as S3 allows.
pub const MAX_PRESIGN_EXPIRES: u32 = 604_800;

/// A SigV4 timestamp, `YYYYMMDDTHHMMSSZ` (ISO 8601 basic format, UTC), with its instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmzDate {
    text: [u8; 16],
    unix: u64,
}

impl AmzDate {
    /// Parses `YYYYMMDDTHHMMSSZ` with a real calendar date (years 1970 to 9999) and a time of
    /// day up to 23:59:59 (or :60, a leap second). `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<u64> {
            b[range].iter().try_fold(0u64, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
            })
        };
        let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
        let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
        if year < 1970
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let unix = days * 86_400 + hour * 3_600 + minute * 60 + second;
        Some(Self {
            text: b.try_into().ok()?,
            unix,
        })
    }

    /// The timestamp of an instant (whole seconds, truncated), for requests dated with an
    /// HTTP `Date` header. `None` before 1970 or after 9999.
    pub fn from_system_time(time: SystemTime) -> Option<Self> {
        let unix = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
        let (year, month, day) = civil_from_days(unix / 86_400);
        if year > 9999 {
            return None;
        }
        let secs = unix % 86_400;
        let mut text = [0u8; 16];
        let mut put = |at: usize, width: usize, mut value: u64| {
            for i in (at..at + width).rev() {
                text[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(4, 2, month);
        put(6, 2, day);
        put(9, 2, secs / 3_600);
        put(11, 2, secs / 60 % 60);
        put(13, 2, secs % 60);
        text[8] = b'T';
        text[15] = b'Z';
        Some(Self { text, unix })
    }

    /// The timestamp as text, `YYYYMMDDTHHMMSSZ`.
    pub fn as_str(&self) -> &str {
        // Built from ASCII digits, 'T' and 'Z' only.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The timestamp as RFC 3339 / ISO 8601 in UTC, `YYYY-MM-DDTHH:MM:SSZ` (STS expirations,
    /// S3 listings).
    pub fn rfc3339(&self) -> String {
        let t = self.as_str();
        format!(
            "{}-{}-{}T{}:{}:{}Z",
            &t[0..4],
            &t[4..6],
            &t[6..8],
            &t[9..11],
            &t[11..13],
            &t[13..15]
        )
    }

    /// The date part, `YYYYMMDD`, which the credential scope must repeat.
    pub fn date(&self) -> &str {
        &self.as_str()[..8]
    }

    /// The instant this timestamp names.
    pub fn time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.unix)
    }
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (year >= 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    // Howard Hinnant's algorithm, with the year starting in March.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The query parameters of a presigned URL's SigV4 signature. They are the client's
/// authentication: never forwarded to an origin, which rangecache signs for itself.
pub const PRESIGN_PARAMS: [&str; 8] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
];

/// The parts of a credential, `<access key id>/<YYYYMMDD>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialScope<'a> {
    /// The access key id (everything before the last four `/`-separated fields).
    pub access_key_id: &'a str,
    /// `YYYYMMDD`, eight digits.
    pub date: &'a str,
    /// The region the client signed for; rangecache accepts any non-empty one.
    pub region: &'a str,
    /// The service the client signed for; verification requires `s3`.
    pub service: &'a str,
    /// `<date>/<region>/<service>/aws4_request`, the scope line of the string to sign.
    pub scope: &'a str,
}

impl<'a> CredentialScope<'a> {
    /// Splits a credential. `None` unless it has a non-empty key id, an eight-digit date,
    /// non-empty region and service, and ends in `aws4_request`.
    pub fn parse(credential: &'a str) -> Option<Self> {
        let mut fields = credential.rsplitn(5, '/');
        let terminator = fields.next()?;
        let service = fields.next()?;
        let region = fields.next()?;
        let date = fields.next()?;
        let access_key_id = fields.next()?;
        let ok = terminator == "aws4_request"
            && !service.is_empty()
            && !region.is_empty()
            && date.len() == 8
            && date.bytes().all(|b| b.is_ascii_digit())
            && !access_key_id.is_empty();
        ok.then(|| Self {
            access_key_id,
            date,
            region,
            service,
            scope: &credential[access_key_id.len() + 1..],
        })
    }
}

/// Whether a `SignedHeaders` list is well formed: `;`-separated, non-empty header names
/// (tokens). One pass over the bytes.
fn valid_signed_headers(list: &str) -> bool {
    let mut previous = b';';
    for &b in list.as_bytes() {
        let ok = if b == b';' {
            previous != b';'
        } else {
            b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
        };
        if !ok {
            return false;
        }
        previous = b;
    }
    previous != b';'
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 ...` header. Borrows the header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedAuthHeader<'a> {
    credential: CredentialScope<'a>,
    /// The `SignedHeaders` list as sent (`;`-separated), non-empty and well formed.
    pub signed_headers: &'a str,
    /// The `Signature`, decoded from its 64 hex digits.
    pub signature: [u8; 32],
}

impl<'a> ParsedAuthHeader<'a> {
    /// The credential's parts.
    pub fn credential(&self) -> CredentialScope<'a> {
        self.credential
    }
}

const CREDENTIAL_MALFORMED: &str = "The authorization header is malformed; the Credential is \
     mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".";
const HEADER_COMPONENTS: &str = "The authorization header is malformed; it must hold exactly \
     one each of Credential, SignedHeaders and Signature.";

/// Parses an `Authorization` header value.
///
/// Accepts `AWS4-HMAC-SHA256` followed by spaces and the three components `Credential=`,
/// `SignedHeaders=` and `Signature=`, separated by commas with optional spaces around them.
/// AWS's signers always send them in that order; like Ceph RGW (and unlike MinIO), the order is
/// not enforced here, because it changes nothing signed. Each must appear exactly once.
///
/// Errors: another scheme (SigV2's `AWS `, SigV4a, anything else) is `InvalidArgument`
/// "Unsupported Authorization Type"; a bad credential, a missing, repeated or unknown
/// component, or a bad `SignedHeaders` list is `AuthorizationHeaderMalformed`; a signature that
/// is not 64 hex digits is `SignatureDoesNotMatch`.
pub fn parse_authorization(value: &str) -> Result<ParsedAuthHeader<'_>, AuthError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .filter(|rest| rest.starts_with(' '))
        .ok_or(AuthError::invalid_argument(
            "Unsupported Authorization Type",
        ))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',') {
        let component = component.trim_matches(' ');
        let (name, value) = component
            .split_once('=')
            .ok_or(AuthError::header_malformed(HEADER_COMPONENTS))?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(AuthError::header_malformed(HEADER_COMPONENTS)),
        };
        if slot.replace(value).is_some() {
            return Err(AuthError::header_malformed(HEADER_COMPONENTS));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(AuthError::header_malformed(HEADER_COMPONENTS));
    };
    let credential = CredentialScope::parse(credential)
        .ok_or(AuthError::header_malformed(CREDENTIAL_MALFORMED))?;
    if !valid_signed_headers(signed_headers) {
        return Err(AuthError::header_malformed(
            "The authorization header is malformed; SignedHeaders is not a list of header names.",
        ));
    }
    let signature = unhex32(signature.as_bytes()).ok_or(AuthError::signature_does_not_match())?;
    Ok(ParsedAuthHeader {
        credential,
        signed_headers,
        signature,
    })
}

/// The `X-Amz-*` parameters of a presigned URL, decoded. Borrows the query where a parameter
/// holds no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPresign<'a> {
    credential: Cow<'a, str>,
    /// `X-Amz-Date`: when the URL was signed.
    pub date: AmzDate,
    /// `X-Amz-Expires`: seconds the URL stays valid after `date`, 1 to 604800.
    pub expires: u32,
    signed_headers: Cow<'a, str>,
    /// `X-Amz-Signature`, decoded from its 64 hex digits.
    pub signature: [u8; 32],
    security_token: Option<Cow<'a, str>>,
    content_sha256: Option<Cow<'a, str>>,
}

impl ParsedPresign<'_> {
    /// The credential's parts (checked when the query was parsed).
    pub fn credential(&self) -> CredentialScope<'_> {
        CredentialScope::parse(&self.credential).expect("checked by parse_presigned")
    }

    /// `X-Amz-SignedHeaders`, decoded: the `;`-separated list, non-empty and well formed.
    pub fn signed_headers(&self) -> &str {
        &self.signed_headers
    }

    /// `X-Amz-Security-Token`, decoded, if the URL carries a session token.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// `X-Amz-Content-Sha256`, decoded, if the signer put a payload hash in the query; the
    /// payload hash is `UNSIGNED-PAYLOAD` otherwise.
    pub fn content_sha256(&self) -> Option<&str> {
        self.content_sha256.as_deref()
    }
}

const PRESIGN_MISSING: &str = "Query-string authentication version 4 requires the \
     X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and \
     X-Amz-Expires parameters.";

fn decoded_text(raw: &str) -> Result<Cow<'_, str>, AuthError> {
    match query_decode(raw) {
        Cow::Borrowed(_) => Ok(Cow::Borrowed(raw)),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|_| AuthError::query_malformed(PRESIGN_MISSING)),
    }
}

/// Parses the SigV4 presign parameters out of a raw (still encoded) query string.
///
/// `Ok(None)` when the query has none of `X-Amz-Algorithm`, `X-Amz-Credential` and
/// `X-Amz-Signature` (the request is not presigned). Parameter names are matched exactly, as
/// S3 does. Errors are `AuthorizationQueryParametersError` (a missing or repeated parameter, an
/// algorithm other than `AWS4-HMAC-SHA256`, a bad credential, date or signed-header list,
/// `X-Amz-Expires` outside 1..=604800) or `SignatureDoesNotMatch` (a signature that is not 64
/// hex digits).
pub fn parse_presigned(raw_query: &str) -> Result<Option<ParsedPresign<'_>>, AuthError> {
    let mut fields: [Option<&str>; 8] = [None; 8];
    const NAMES: [&str; 8] = PRESIGN_PARAMS;
    for segment in raw_query.split('&') {
        let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
        if let Some(i) = NAMES.iter().position(|n| *n == name) {
            if fields[i].replace(value).is_some() {
                return Err(AuthError::query_malformed(
                    "Query-string authentication version 4 parameters must not be repeated.",
                ));
            }
        }
    }
    let [algorithm, credential, date, expires, signed_headers, signature, token, content] = fields;
    if algorithm.is_none() && credential.is_none() && signature.is_none() {
        return Ok(None);
    }
    let (Some(algorithm), Some(credential), Some(date), Some(expires), Some(signed), Some(sig)) = (
        algorithm,
        credential,
        date,
        expires,
        signed_headers,
        signature,
    ) else {
        return Err(AuthError::query_malformed(PRESIGN_MISSING));
    };
    if algorithm != ALGORITHM {
        return Err(AuthError::query_malformed(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let credential = decoded_text(credential)?;
    if CredentialScope::parse(&credential).is_none() {
        return Err(AuthError::query_malformed(
            "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; \
             expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
        ));
    }
    let date = AmzDate::parse(&decoded_text(date)?).ok_or(AuthError::query_malformed(
        "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
    ))?;
    let expires = parse_expires(expires)?;
    let signed_headers = decoded_text(signed)?;
    if !valid_signed_headers(&signed_headers) {
        return Err(AuthError::query_malformed(
            "X-Amz-SignedHeaders must be a list of header names.",
        ));
    }
    let signature = unhex32(sig.as_bytes()).ok_or(AuthError::signature_does_not_match())?;
    Ok(Some(ParsedPresign {
        credential,
        date,
        expires,
        signed_headers,
        signature,
        security_token: token.map(decoded_text).transpose()?,
        content_sha256: content.map(decoded_text).transpose()?,
    }))
}

fn parse_expires(raw: &str) -> Result<u32, AuthError> {
    if raw.starts_with('-') && raw.len() > 1 && raw[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::query_malformed(
            "X-Amz-Expires must be non-negative",
        ));
    }
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::query_malformed(
            "X-Amz-Expires should be a number",
        ));
    }
    match raw.parse::<u64>() {
        Ok(0) => Err(AuthError::query_malformed(
            "X-Amz-Expires must be at least 1 second",
        )),
        Ok(n) if n <= u64::from(MAX_PRESIGN_EXPIRES) => Ok(n as u32),
        _ => Err(AuthError::query_malformed(
            "X-Amz-Expires must be less than a week (in seconds) that is; the given \
             X-Amz-Expires must be less than 604800 seconds",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::error::AuthErrorKind;

    #[test]
    fn amz_date_round_trip() {
        let d = AmzDate::parse("20130524T000000Z").unwrap();
        assert_eq!(d.time(), UNIX_EPOCH + Duration::from_secs(1_369_353_600));
        assert_eq!(d.date(), "20130524");
        assert_eq!(AmzDate::from_system_time(d.time()), Some(d));
        for bad in [
            "20130524T000000",
            "20130524 000000Z",
            "20130230T000000Z",
            "20131324T000000Z",
            "20130524T240000Z",
            "2013052AT000000Z",
            "19691231T235959Z",
        ] {
            assert_eq!(AmzDate::parse(bad), None, "{bad}");
        }
        assert!(AmzDate::parse("20240229T235959Z").is_some());
        assert!(AmzDate::parse("20230229T000000Z").is_none());
        // Every day from 1970 to 2100 survives the round trip.
        for day in (0..47_482u64).step_by(7) {
            let t = UNIX_EPOCH + Duration::from_secs(day * 86_400 + 45_296);
            let d = AmzDate::from_system_time(t).unwrap();
            assert_eq!(AmzDate::parse(d.as_str()), Some(d));
            assert_eq!(d.time(), t);
        }
    }

    #[test]
    fn credential_scope() {
        let c = CredentialScope::parse("AKID/20130524/us-east-1/s3/aws4_request").unwrap();
        assert_eq!(
            (c.access_key_id, c.date, c.region, c.service, c.scope),
            (
                "AKID",
                "20130524",
                "us-east-1",
                "s3",
                "20130524/us-east-1/s3/aws4_request"
            )
        );
        let c = CredentialScope::parse("A/B/20130524/r/s3/aws4_request").unwrap();
        assert_eq!(c.access_key_id, "A/B");
        for bad in [
            "",
            "AKID/20130524/us-east-1/s3",
            "/20130524/us-east-1/s3/aws4_request",
            "AKID/2013052/us-east-1/s3/aws4_request",
            "AKID/20130524//s3/aws4_request",
            "AKID/20130524/us-east-1/s3/aws4_requesT",
        ] {
            assert!(CredentialScope::parse(bad).is_none(), "{bad}");
        }
    }

    const SIG: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

    #[test]
    fn authorization_header_forms() {
        let canonical = format!(
            "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-date, Signature={SIG}"
        );
        let p = parse_authorization(&canonical).unwrap();
        assert_eq!(p.credential().access_key_id, "AKID");
        assert_eq!(p.signed_headers, "host;range;x-amz-date");
        // No spaces, other order, extra spaces.
        for v in [
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,\
                 SignedHeaders=host;range;x-amz-date,Signature={SIG}"
            ),
            format!(
                "AWS4-HMAC-SHA256   Signature={SIG} ,SignedHeaders=host;range;x-amz-date , \
                 Credential=AKID/20130524/us-east-1/s3/aws4_request"
            ),
        ] {
            assert_eq!(parse_authorization(&v), Ok(p));
        }
    }

    #[test]
    fn authorization_header_errors() {
        let kind = |v: &str| parse_authorization(v).unwrap_err().kind();
        use AuthErrorKind::*;
        assert_eq!(kind(""), InvalidArgument);
        assert_eq!(kind("AWS AKID:sig"), InvalidArgument);
        assert_eq!(kind("AWS4-ECDSA-P256-SHA256 Credential=x"), InvalidArgument);
        assert_eq!(kind("AWS4-HMAC-SHA256"), InvalidArgument);
        assert_eq!(kind("AWS4-HMAC-SHA256 "), AuthorizationHeaderMalformed);
        let cred = "Credential=AKID/20130524/us-east-1/s3/aws4_request";
        let sh = "SignedHeaders=host";
        let sig = format!("Signature={SIG}");
        let h = |parts: &[&str]| format!("AWS4-HMAC-SHA256 {}", parts.join(", "));
        assert_eq!(kind(&h(&[cred, sh])), AuthorizationHeaderMalformed);
        assert_eq!(
            kind(&h(&[cred, sh, &sig, sh])),
            AuthorizationHeaderMalformed
        );
        assert_eq!(
            kind(&h(&[cred, sh, &sig, "Foo=bar"])),
            AuthorizationHeaderMalformed
        );
        assert_eq!(
            kind(&h(&[cred, sh, &sig, ""])),
            AuthorizationHeaderMalformed
        );
        assert_eq!(
            kind(&h(&["Credential=AKID/20130524/us-east-1/s3", sh, &sig])),
            AuthorizationHeaderMalformed
        );
        assert_eq!(
            kind(&h(&[cred, "SignedHeaders=host;;range", &sig])),
            AuthorizationHeaderMalformed
        );
        assert_eq!(
            kind(&h(&[cred, "SignedHeaders=", &sig])),
            AuthorizationHeaderMalformed
        );
        assert_eq!(
            kind(&h(&[cred, sh, "Signature=abc"])),
            SignatureDoesNotMatch
        );
    }

    const PRESIGN: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
        &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    #[test]
    fn presign_query() {
        let p = parse_presigned(PRESIGN).unwrap().unwrap();
        assert_eq!(p.credential().access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(p.credential().scope, "20130524/us-east-1/s3/aws4_request");
        assert_eq!(p.expires, 86_400);
        assert_eq!(p.signed_headers(), "host");
        assert_eq!(p.date.as_str(), "20130524T000000Z");
        assert_eq!(p.security_token(), None);
        assert_eq!(parse_presigned(""), Ok(None));
        assert_eq!(parse_presigned("list-type=2&prefix=a"), Ok(None));
        let query = format!("{PRESIGN}&X-Amz-Security-Token=a%2Bb%3D");
        let t = parse_presigned(&query).unwrap().unwrap();
        assert_eq!(t.security_token(), Some("a+b="));
    }

    #[test]
    fn presign_query_errors() {
        let kind = |q: &str| parse_presigned(q).unwrap_err().kind();
        use AuthErrorKind::*;
        let without = |name: &str| {
            PRESIGN
                .split('&')
                .filter(|s| !s.starts_with(name))
                .collect::<Vec<_>>()
                .join("&")
        };
        for name in [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        ] {
            assert_eq!(
                kind(&without(name)),
                AuthorizationQueryParametersError,
                "{name}"
            );
        }
        let with = |name: &str, value: &str| format!("{}&{name}={value}", without(name));
        assert_eq!(
            kind(&with("X-Amz-Expires", "604801")),
            AuthorizationQueryParametersError
        );
        assert_eq!(
            kind(&with("X-Amz-Expires", "0")),
            AuthorizationQueryParametersError
        );
        assert_eq!(
            kind(&with("X-Amz-Expires", "-1")),
            AuthorizationQueryParametersError
        );
        assert_eq!(
            kind(&with("X-Amz-Expires", "1e3")),
            AuthorizationQueryParametersError
        );
        assert_eq!(
            kind(&with("X-Amz-Expires", "99999999999999999999999")),
            AuthorizationQueryParametersError
        );
        assert!(parse_presigned(&with("X-Amz-Expires", "604800")).is_ok());
        assert_eq!(
            kind(&with("X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256")),
            AuthorizationQueryParametersError
        );
        assert_eq!(
            kind(&with("X-Amz-Date", "2013-05-24")),
            AuthorizationQueryParametersError
        );
        assert_eq!(
            kind(&with("X-Amz-Credential", "AKID%2F20130524")),
            AuthorizationQueryParametersError
        );
        assert_eq!(kind(&with("X-Amz-Signature", "00")), SignatureDoesNotMatch);
        assert_eq!(
            kind(&format!("{PRESIGN}&X-Amz-Date=20130524T000000Z")),
            AuthorizationQueryParametersError
        );
    }
}
