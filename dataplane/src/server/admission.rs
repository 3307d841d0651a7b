//! Admission: authenticate a request (SigV4, presigned or anonymous) and authorize it against
//! its principal's grants, before the cache or the origin sees it.

use std::sync::Arc;
use std::time::SystemTime;

use crate::auth::{
    authorize, credential, verify, AuthError, AuthMode, AuthPolicy, BodyCheck, Credential, Grant,
    KeyCache, Need, RequestParts,
};
use crate::http::RequestHead;
use crate::s3::{uri, Route};

/// Decides whether `head`, routed as `route`, may proceed under `policy`.
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
    let (grants, check) = match &cred {
        Credential::Anonymous => (policy.anonymous.clone(), BodyCheck::trailer_only(&parts)?),
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

/// The secret and grants of `access_key_id`: a configured key, or, with a session token, the
/// temporary credentials sealed in it (which must be the ones the request was signed with).
fn lookup(
    policy: &AuthPolicy,
    access_key_id: &str,
    session_token: Option<&str>,
    now: SystemTime,
) -> Result<(Arc<[u8]>, Arc<[Grant]>), AuthError> {
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
    use super::*;

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
