//! SigV2 verification against signatures made by botocore's `HmacV1Auth` / `HmacV1QueryAuth`
//! (an independent implementation; the vectors were printed by it), and every negative case.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::*;
use crate::auth::{credential, AuthErrorKind, Credential};
use crate::http::Header;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const DATE: &str = "Tue, 27 Mar 2007 19:36:42 GMT";
/// `DATE` as an instant.
const T: u64 = 1_175_024_202;

struct Req {
    method: &'static str,
    path: String,
    query: String,
    headers: Vec<Header>,
}

impl Req {
    fn new(method: &'static str, target: &str, headers: &[(&str, &str)]) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Self {
            method,
            path: path.into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(n, v)| Header {
                    name: Bytes::copy_from_slice(n.as_bytes()),
                    value: Bytes::copy_from_slice(v.as_bytes()),
                })
                .collect(),
        }
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            headers: &self.headers,
        }
    }

    /// Verify as the data plane does: route (virtual-hosted under `domain`, if given), find the
    /// claim, then check it at `now`.
    fn check(&self, domain: Option<&str>, now: u64) -> Result<&'static str, AuthError> {
        let parts = self.parts();
        let host = self
            .headers
            .iter()
            .find(|h| h.is("host"))
            .and_then(|h| h.value_str());
        let route = crate::s3::route(
            crate::http::Method::parse(self.method.as_bytes()),
            &self.path,
            &self.query,
            host,
            domain,
            false,
        )
        .expect("routable");
        let claim = match credential(&parts)? {
            Credential::SigV2(claim) => claim,
            other => panic!("not a SigV2 claim: {other:?}"),
        };
        verify_v2(&parts, claim, &route, lookup, at(now)).map(|v| v.principal)
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The one known key, and session tokens `TOKEN` / `SESSIONTOKEN` for it.
fn lookup(akid: &str, token: Option<&str>) -> Result<(&'static str, &'static str), AuthError> {
    match (akid, token) {
        (AKID, None) => Ok((SECRET, "long-term")),
        (AKID, Some("TOKEN" | "SESSIONTOKEN")) => Ok((SECRET, "session")),
        (AKID, Some(_)) => Err(AuthError::invalid_token()),
        _ => Err(AuthError::invalid_access_key_id()),
    }
}

fn get_puppy(auth: &str) -> Req {
    Req::new(
        "GET",
        "/johnsmith/photos/puppy.jpg",
        &[
            ("Host", "127.0.0.1"),
            ("Date", DATE),
            ("Authorization", auth),
        ],
    )
}

const GET_SIG: &str = "AWS AKIAIOSFODNN7EXAMPLE:l5OyHwmFwM1eA82pf/bAJD+zbsk=";

#[test]
fn header_auth_path_and_virtual_hosted() {
    assert_eq!(get_puppy(GET_SIG).check(None, T), Ok("long-term"));
    // Virtual-hosted: the bucket comes from the host and leads the canonical resource.
    let vh = Req::new(
        "GET",
        "/photos/puppy.jpg",
        &[
            ("Host", "johnsmith.s3.local"),
            ("Date", DATE),
            ("Authorization", GET_SIG),
        ],
    );
    assert_eq!(vh.check(Some("s3.local"), T), Ok("long-term"));
    assert_eq!(
        vh.check(None, T).unwrap_err().kind(),
        AuthErrorKind::SignatureDoesNotMatch
    );
}

#[test]
fn header_auth_signs_type_md5_amz_headers_and_sub_resources() {
    let put = |meta_a: &str, query: &str| {
        Req::new(
            "PUT",
            &format!("/johnsmith/photos/puppy%20dog.jpg?{query}"),
            &[
                ("Content-Type", "image/jpeg"),
                ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
                ("x-amz-meta-b", "2"),
                ("X-Amz-Meta-A", meta_a),
                ("Date", DATE),
                (
                    "Authorization",
                    "AWS AKIAIOSFODNN7EXAMPLE:hKzzkdr2fvzbn0QtoB1wsEX0Mx8=",
                ),
            ],
        )
    };
    let query = "uploadId=a%2Fb&partNumber=2&x-id=UploadPart";
    assert_eq!(put("1", query).check(None, T), Ok("long-term"));
    // x-id is not a sub-resource: its value is not signed.
    assert!(put("1", "uploadId=a%2Fb&partNumber=2&x-id=Other")
        .check(None, T)
        .is_ok());
    let mismatch = |r: Req| r.check(None, T).unwrap_err().kind();
    assert_eq!(
        mismatch(put("9", query)),
        AuthErrorKind::SignatureDoesNotMatch
    );
    assert_eq!(
        mismatch(put("1", "uploadId=a%2Fb&partNumber=3")),
        AuthErrorKind::SignatureDoesNotMatch
    );
    let mut r = put("1", query);
    r.headers.retain(|h| !h.is("content-type"));
    assert_eq!(mismatch(r), AuthErrorKind::SignatureDoesNotMatch);
    let mut r = put("1", query);
    r.method = "POST";
    assert_eq!(mismatch(r), AuthErrorKind::SignatureDoesNotMatch);
}

#[test]
fn header_auth_with_a_session_token() {
    let list = |token: &str| {
        Req::new(
            "GET",
            // The bucket's resource is `/johnsmith/`, slash or not.
            "/johnsmith?list-type=2&prefix=a",
            &[
                ("x-amz-security-token", token),
                ("Date", DATE),
                (
                    "Authorization",
                    "AWS AKIAIOSFODNN7EXAMPLE:+c9KSdmaAY6OtXINUaIurXxEkBA=",
                ),
            ],
        )
    };
    assert_eq!(list("TOKEN").check(None, T), Ok("session"));
    let mut slash = list("TOKEN");
    slash.path = "/johnsmith/".into();
    assert_eq!(slash.check(None, T), Ok("session"));
    assert_eq!(
        list("FORGED").check(None, T).unwrap_err().kind(),
        AuthErrorKind::InvalidToken
    );
}

#[test]
fn header_auth_negative_cases() {
    let kind = |r: Req, now: u64| r.check(None, now).unwrap_err().kind();
    use AuthErrorKind::*;
    // Wrong secret (a signature of something else), unknown key, malformed header.
    assert_eq!(
        kind(
            get_puppy("AWS AKIAIOSFODNN7EXAMPLE:hKzzkdr2fvzbn0QtoB1wsEX0Mx8="),
            T
        ),
        SignatureDoesNotMatch
    );
    assert_eq!(
        kind(get_puppy("AWS SOMEONEELSE:l5OyHwmFwM1eA82pf/bAJD+zbsk="), T),
        InvalidAccessKeyId
    );
    assert_eq!(
        kind(get_puppy("AWS AKIAIOSFODNN7EXAMPLE"), T),
        AuthorizationHeaderMalformed
    );
    assert_eq!(
        kind(get_puppy("AWS AKIAIOSFODNN7EXAMPLE:nothex"), T),
        SignatureDoesNotMatch
    );
    // Clock skew: 15 minutes either way is fine, more is refused.
    assert!(get_puppy(GET_SIG).check(None, T + 900).is_ok());
    assert_eq!(kind(get_puppy(GET_SIG), T + 901), RequestTimeTooSkewed);
    assert_eq!(kind(get_puppy(GET_SIG), T - 901), RequestTimeTooSkewed);
    // No usable date.
    let no_date = Req::new(
        "GET",
        "/johnsmith/photos/puppy.jpg",
        &[("Authorization", GET_SIG)],
    );
    assert_eq!(kind(no_date, T), AccessDenied);
    let bad_date = Req::new(
        "GET",
        "/johnsmith/photos/puppy.jpg",
        &[("Date", "yesterday"), ("Authorization", GET_SIG)],
    );
    assert_eq!(kind(bad_date, T), AccessDenied);
    // With x-amz-date the Date line is empty and x-amz-date is signed: the old signature fails.
    let amz_date = Req::new(
        "GET",
        "/johnsmith/photos/puppy.jpg",
        &[
            ("Date", DATE),
            ("x-amz-date", DATE),
            ("Authorization", GET_SIG),
        ],
    );
    assert_eq!(kind(amz_date, T), SignatureDoesNotMatch);
}

/// botocore's `HmacV1QueryAuth` URL for a GET with `response-content-type` and a session
/// token, expiring at 1175139620.
const PRESIGNED: &str = "/johnsmith/photos/puppy.jpg?response-content-type=text%2Fplain\
    &AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=dKk8YbGmYqAjukZoG90VBu%2F8leA%3D\
    &x-amz-security-token=SESSIONTOKEN&Expires=1175139620";
const EXPIRES: u64 = 1_175_139_620;

#[test]
fn presigned_urls() {
    let get = |target: &str| Req::new("GET", target, &[("Host", "127.0.0.1")]);
    assert_eq!(get(PRESIGNED).check(None, EXPIRES - 3600), Ok("session"));
    assert_eq!(get(PRESIGNED).check(None, EXPIRES), Ok("session"));
    let kind = |target: &str, now: u64| get(target).check(None, now).unwrap_err().kind();
    use AuthErrorKind::*;
    assert_eq!(kind(PRESIGNED, EXPIRES + 1), AccessDenied);
    // More than a week (plus the skew) ahead is refused, as for SigV4.
    assert_eq!(
        kind(PRESIGNED, EXPIRES - 604_800 - 901),
        AuthorizationQueryParametersError
    );
    // Tampering with anything signed: a sub-resource, the path, the expiry, the token.
    for tampered in [
        PRESIGNED.replace("text%2Fplain", "text%2Fhtml"),
        PRESIGNED.replace("puppy.jpg", "kitten.jpg"),
        PRESIGNED.replace("1175139620", "1175139621"),
        PRESIGNED.replace("Signature=dKk8", "Signature=eKk8"),
    ] {
        assert_eq!(
            kind(&tampered, EXPIRES - 10),
            SignatureDoesNotMatch,
            "{tampered}"
        );
    }
    assert_eq!(
        kind(&PRESIGNED.replace("=SESSIONTOKEN", "=OTHER"), EXPIRES - 10),
        InvalidToken
    );
    // An unsigned parameter may be added (it is not part of the canonical resource).
    assert!(get(&format!("{PRESIGNED}&x-id=GetObject"))
        .check(None, EXPIRES - 10)
        .is_ok());
    assert_eq!(
        kind(&PRESIGNED.replace("&Expires=1175139620", ""), EXPIRES - 10),
        AccessDenied
    );
}

#[test]
fn one_auth_mechanism_only() {
    let both = Req::new(
        "GET",
        PRESIGNED,
        &[("Date", DATE), ("Authorization", GET_SIG)],
    );
    assert_eq!(
        credential(&both.parts()).unwrap_err().kind(),
        AuthErrorKind::InvalidArgument
    );
    let v4_and_v2 = Req::new(
        "GET",
        &format!(
            "{PRESIGNED}&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a&X-Amz-Signature=b"
        ),
        &[],
    );
    assert!(credential(&v4_and_v2.parts()).is_err());
}

#[test]
fn rfc822_numeric_zone_dates() {
    let r = Req::new(
        "GET",
        "/johnsmith/photos/puppy.jpg",
        &[
            ("Date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            ("Authorization", GET_SIG),
        ],
    );
    // The date parses (no AccessDenied); the signature covered the GMT spelling, so it differs.
    assert_eq!(
        r.check(None, T).unwrap_err().kind(),
        AuthErrorKind::SignatureDoesNotMatch
    );
}
