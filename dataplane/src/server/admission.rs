//! Admission: authenticate a request (SigV4, presigned or anonymous) and authorize it against
//! its principal's grants, before the cache or the origin sees it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::auth::{
    authorize, credential, verify, verify_v2, AuthError, AuthMode, AuthPolicy, BodyCheck,
    Credential, Grant, KeyCache, Need, RequestParts, SigV2, SIGV2_REFUSED,
};
use crate::http::RequestHead;
use crate::s3::{uri, Route};

use super::outcome::Outcome;

/// Decides whether `head`, routed as `route`, may proceed under `policy`. Signature Version 2
/// is verified only when `policy.sigv2` accepts it, and is `InvalidArgument` otherwise.
/// An anonymous request gets the anonymous grants whose `source` covers `client` (the
/// effective client address).
///
/// `Ok` carries what its body must still satisfy (check it while streaming; for a request
/// without a body, [`BodyCheck::end`] at once). Errors are S3's: see
/// [`verify`](crate::auth::verify) for authentication and [`authorize`] for grants; a session
/// token is opened here (`InvalidToken`, `ExpiredToken`). With [`AuthMode::None`] everything
/// is admitted unchecked.
pub(crate) fn admit(
    head: &RequestHead,
    route: &Route,
    policy: &AuthPolicy,
    keys: &KeyCache,
    now: SystemTime,
    outcome: &Outcome,
    client: IpAddr,
) -> Result<BodyCheck, AuthError> {
    if policy.mode == AuthMode::None {
        return Ok(BodyCheck::none());
    }
    let parts = RequestParts {
        method: head.method(),
        raw_path: head.path(),
        raw_query: head.query(),
        headers: head.headers(),
    };
    let cred = credential(&parts)?;
    outcome.access_key(cred.access_key_id());
    let (grants, check) = match &cred {
        Credential::Anonymous => (
            policy.anonymous_for(client),
            BodyCheck::trailer_only(&parts)?,
        ),
        Credential::SigV2(claim) => {
            if policy.sigv2 == SigV2::Refuse {
                return Err(AuthError::invalid_argument(SIGV2_REFUSED));
            }
            let verified = verify_v2(
                &parts,
                *claim,
                route,
                |akid, token| lookup(policy, akid, token, now),
                now,
            )?;
            // SigV2 signs no body; trailing checksums a client declares are still checked.
            (verified.principal, BodyCheck::trailer_only(&parts)?)
        }
        _ => {
            let verified = verify(
                &parts,
                &cred,
                |akid, token| lookup(policy, akid, token, now),
                keys,
                now,
            )?;
            let check = BodyCheck::for_request(&verified, &parts)?;
            (verified.principal, check)
        }
    };
    let bucket = route.bucket.as_deref();
    let list_prefix = list_prefix(head.query());
    let mut needs = vec![Need::of(
        route.op,
        head.method(),
        bucket,
        route.key.as_deref(),
        &list_prefix,
    )];
    let source = match head.header_str("x-amz-copy-source") {
        Some(value) if route.op.is_copy() => Some(copy_source(value)?),
        _ => None,
    };
    if let Some((src_bucket, src_key)) = &source {
        needs.push(Need::copy_source(src_bucket, src_key));
    }
    authorize(&grants, &needs)?;
    Ok(check)
}

/// A secret access key, shared with the policy (configured keys) or opened from a token.
type Secret = Arc<[u8]>;

/// The secret and grants of `access_key_id`: a configured key, or, with a session token, the
/// temporary credentials sealed in it (which must be the ones the request was signed with).
fn lookup(
    policy: &AuthPolicy,
    access_key_id: &str,
    session_token: Option<&str>,
    now: SystemTime,
) -> Result<(Secret, Arc<[Grant]>), AuthError> {
    match session_token {
        Some(token) => {
            if policy.session_keys.is_empty() {
                return Err(AuthError::invalid_token());
            }
            let claims = policy.session_keys.open(token, now)?;
            if claims.access_key_id != access_key_id {
                return Err(AuthError::invalid_token());
            }
            Ok((
                claims.secret_access_key.into_bytes().into(),
                claims.grants.into(),
            ))
        }
        None => policy
            .keys
            .get(access_key_id)
            .map(|k| (k.secret.clone(), k.grants.clone()))
            .ok_or(AuthError::invalid_access_key_id()),
    }
}

/// The decoded `prefix` parameter of a listing; `""` when absent or undecodable, which only a
/// grant over the whole bucket covers.
fn list_prefix(raw_query: &str) -> String {
    uri::query_pairs(raw_query)
        .find(|(name, _)| *name == "prefix")
        .and_then(|(_, value)| uri::decode_path(value).ok())
        .unwrap_or_default()
}

/// The source bucket and key of `x-amz-copy-source` (`[/]bucket/key[?versionId=...]`, percent
/// encoded). `InvalidArgument` when either is missing or badly encoded.
fn copy_source(value: &str) -> Result<(String, String), AuthError> {
    const BAD: AuthError = AuthError::invalid_argument(
        "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
    );
    let trimmed = value.trim().strip_prefix('/').unwrap_or(value.trim());
    let without_version = trimmed.split_once('?').map_or(trimmed, |(path, _)| path);
    let (bucket, key) = without_version.split_once('/').ok_or(BAD)?;
    let bucket = uri::decode_path(bucket).map_err(|_| BAD)?;
    let key = uri::decode_path(key).map_err(|_| BAD)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(BAD);
    }
    Ok((bucket, key))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    use bytes::BytesMut;

    use super::*;
    use crate::auth::{Access, AuthErrorKind, SessionClaims, SessionKey, SessionKeys, StaticKey};
    use crate::http::{parse_request, Limits};
    use crate::origin::sign_request;
    use crate::s3::route;
    use crate::Credentials;

    const NOW_SECS: u64 = 1_795_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW_SECS)
    }

    fn grant(bucket: &str, prefix: &str, access: Access) -> Grant {
        Grant {
            bucket: bucket.into(),
            prefix: prefix.into(),
            access,
        }
    }

    fn session_keys() -> SessionKeys {
        SessionKeys::new(vec![SessionKey::from_bytes(&[5; 32]).unwrap()])
    }

    fn policy() -> AuthPolicy {
        let mut keys = HashMap::new();
        keys.insert(
            "READER".to_owned(),
            StaticKey {
                secret: b"reader-secret".to_vec().into(),
                grants: vec![grant("data", "tables/", Access::READ)].into(),
            },
        );
        AuthPolicy {
            mode: AuthMode::SigV4,
            keys,
            anonymous: vec![grant("public", "", Access::READ)].into(),
            session_keys: session_keys(),
            sigv2: SigV2::Accept,
            anonymous_sourced: Arc::default(),
        }
    }

    /// A request head for `method path`, signed with `creds` unless `None`.
    fn head(method: &str, path: &str, creds: Option<&Credentials>) -> RequestHead {
        let mut headers = vec![("host".to_owned(), "127.0.0.1:8080".to_owned())];
        if let Some(creds) = creds {
            let url = format!("http://127.0.0.1:8080{path}");
            sign_request(method, &url, &mut headers, false, creds, "us-east-1", now()).unwrap();
        }
        let mut raw = format!("{method} {path} HTTP/1.1\r\n");
        for (name, value) in &headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        let limits = Limits {
            max_head_bytes: 64 * 1024,
            max_headers: 64,
            max_uri_bytes: 8192,
        };
        parse_request(&mut BytesMut::from(raw.as_str()), &limits)
            .unwrap()
            .unwrap()
    }

    fn admit_head(head: &RequestHead, policy: &AuthPolicy) -> Result<BodyCheck, AuthError> {
        let r = route(
            head.verb(),
            head.path(),
            head.query(),
            head.host(),
            None,
            false,
        )
        .unwrap();
        admit(
            head,
            &r,
            policy,
            &KeyCache::default(),
            now(),
            &Outcome::new(None),
            "127.0.0.1".parse().unwrap(),
        )
    }

    fn creds(akid: &str, secret: &str, token: Option<String>) -> Credentials {
        Credentials {
            access_key_id: akid.into(),
            secret_access_key: secret.into(),
            session_token: token,
        }
    }

    fn kind(r: Result<BodyCheck, AuthError>) -> AuthErrorKind {
        r.unwrap_err().kind()
    }

    /// A request head for `method path` signed with SigV2 in the header by `akid`/`secret`.
    fn head_v2(method: &str, path: &str, akid: &str, secret: &str) -> RequestHead {
        use base64::Engine as _;
        let date = httpdate::fmt_http_date(now());
        let to_sign = format!("{method}\n\n\n{date}\n{path}");
        let key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD
            .encode(ring::hmac::sign(&key, to_sign.as_bytes()));
        let raw = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:8080\r\ndate: {date}\r\n\
             authorization: AWS {akid}:{sig}\r\n\r\n"
        );
        let limits = Limits {
            max_head_bytes: 64 * 1024,
            max_headers: 64,
            max_uri_bytes: 8192,
        };
        parse_request(&mut BytesMut::from(raw.as_str()), &limits)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn sigv2_is_verified_and_held_to_the_same_grants_or_refused() {
        let p = policy();
        let ok = head_v2("GET", "/data/tables/a.parquet", "READER", "reader-secret");
        assert!(admit_head(&ok, &p).is_ok());
        let outside = head_v2("GET", "/data/other/a", "READER", "reader-secret");
        assert_eq!(kind(admit_head(&outside, &p)), AuthErrorKind::AccessDenied);
        let write = head_v2("DELETE", "/data/tables/a", "READER", "reader-secret");
        assert_eq!(kind(admit_head(&write, &p)), AuthErrorKind::AccessDenied);
        let wrong = head_v2("GET", "/data/tables/a", "READER", "not-the-secret");
        assert_eq!(
            kind(admit_head(&wrong, &p)),
            AuthErrorKind::SignatureDoesNotMatch
        );
        let unknown = head_v2("GET", "/data/tables/a", "NOBODY", "x");
        assert_eq!(
            kind(admit_head(&unknown, &p)),
            AuthErrorKind::InvalidAccessKeyId
        );
        let off = AuthPolicy {
            sigv2: SigV2::Refuse,
            ..policy()
        };
        let err = admit_head(&ok, &off).unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::InvalidArgument);
        assert!(
            err.message().contains("auth.sigv2 = true"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn static_keys_are_verified_then_authorized() {
        let p = policy();
        let reader = creds("READER", "reader-secret", None);
        assert!(admit_head(&head("GET", "/data/tables/a.parquet", Some(&reader)), &p).is_ok());
        assert_eq!(
            kind(admit_head(&head("GET", "/data/other/a", Some(&reader)), &p)),
            AuthErrorKind::AccessDenied
        );
        assert_eq!(
            kind(admit_head(
                &head("DELETE", "/data/tables/a", Some(&reader)),
                &p
            )),
            AuthErrorKind::AccessDenied
        );
        let wrong = creds("READER", "not-the-secret", None);
        assert_eq!(
            kind(admit_head(&head("GET", "/data/tables/a", Some(&wrong)), &p)),
            AuthErrorKind::SignatureDoesNotMatch
        );
        let unknown = creds("NOBODY", "x", None);
        assert_eq!(
            kind(admit_head(
                &head("GET", "/data/tables/a", Some(&unknown)),
                &p
            )),
            AuthErrorKind::InvalidAccessKeyId
        );
    }

    #[test]
    fn anonymous_requests_need_an_anonymous_grant() {
        let p = policy();
        assert!(admit_head(&head("GET", "/public/a", None), &p).is_ok());
        assert_eq!(
            kind(admit_head(&head("GET", "/data/tables/a", None), &p)),
            AuthErrorKind::AccessDenied
        );
        assert_eq!(
            kind(admit_head(&head("PUT", "/public/a", None), &p)),
            AuthErrorKind::AccessDenied
        );
        let off = AuthPolicy {
            mode: AuthMode::None,
            ..AuthPolicy::default()
        };
        assert!(admit_head(&head("PUT", "/anything/a", None), &off).is_ok());
    }

    #[test]
    fn session_tokens_carry_their_grants() {
        let p = policy();
        let claims = |akid: &str, expires_at| SessionClaims {
            access_key_id: akid.into(),
            secret_access_key: "temp-secret".into(),
            expires_at,
            role: "analytics".into(),
            subject: "user".into(),
            grants: vec![grant("data", "", Access::READ)],
        };
        let token = session_keys()
            .seal(&claims("ASIA1", NOW_SECS + 60))
            .unwrap();
        let c = creds("ASIA1", "temp-secret", Some(token.clone()));
        assert!(admit_head(&head("GET", "/data/x", Some(&c)), &p).is_ok());
        assert_eq!(
            kind(admit_head(&head("PUT", "/data/x", Some(&c)), &p)),
            AuthErrorKind::AccessDenied
        );
        let other_akid = creds("ASIA2", "temp-secret", Some(token));
        assert_eq!(
            kind(admit_head(&head("GET", "/data/x", Some(&other_akid)), &p)),
            AuthErrorKind::InvalidToken
        );
        let expired = session_keys().seal(&claims("ASIA1", NOW_SECS - 1)).unwrap();
        let c = creds("ASIA1", "temp-secret", Some(expired));
        assert_eq!(
            kind(admit_head(&head("GET", "/data/x", Some(&c)), &p)),
            AuthErrorKind::ExpiredToken
        );
        let foreign = SessionKeys::new(vec![SessionKey::from_bytes(&[6; 32]).unwrap()])
            .seal(&claims("ASIA1", NOW_SECS + 60))
            .unwrap();
        let c = creds("ASIA1", "temp-secret", Some(foreign));
        assert_eq!(
            kind(admit_head(&head("GET", "/data/x", Some(&c)), &p)),
            AuthErrorKind::InvalidToken
        );
    }

    #[test]
    fn copy_source_forms() {
        assert_eq!(
            copy_source("/src/a%20b/c?versionId=1").unwrap(),
            ("src".into(), "a b/c".into())
        );
        assert_eq!(copy_source("src/k").unwrap(), ("src".into(), "k".into()));
        assert!(copy_source("src").is_err());
        assert!(copy_source("/src/").is_err());
        assert!(copy_source("src/%zz").is_err());
    }

    #[test]
    fn list_prefix_is_decoded() {
        assert_eq!(list_prefix("list-type=2&prefix=tables%2Fa"), "tables/a");
        assert_eq!(list_prefix("list-type=2"), "");
        assert_eq!(list_prefix("prefix=%zz"), "");
    }
}
