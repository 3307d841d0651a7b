//! The admin bearer token: which admin requests need it, and the check.
//!
//! With `admin.token_file` set, every endpoint that changes or reveals state (`/cache/*`,
//! `/config`, and any path not known to be open) needs `Authorization: Bearer <token>`.
//! `/healthz` and `/readyz` stay open for load balancers, `/metrics` too unless
//! `admin.protect_metrics`; STS is routed before this check (it authenticates by the web
//! identity token). The token is read with the configuration, so SIGHUP rotates it.

use http::{header, HeaderMap, HeaderValue, StatusCode};

use super::{problem, Reply};
use crate::config::fleet::AdminSettings;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A bearer token that is not the configured one.
    Wrong,
}

/// Whether `path` needs the token under `admin`.
pub fn required(admin: &AdminSettings, path: &str) -> bool {
    if admin.token.is_none() {
        return false;
    }
    match path {
        "/healthz" | "/readyz" => false,
        "/metrics" => admin.protect_metrics,
        _ => true,
    }
}

/// Check the request's bearer token against `admin`'s (constant time).
pub fn check(admin: &AdminSettings, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(token) = &admin.token else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()))
        .ok_or(Refusal::Missing)?;
    if token.matches(presented) {
        Ok(())
    } else {
        Err(Refusal::Wrong)
    }
}

/// The token of a `Bearer <token>` credential (scheme case-insensitive, RFC 6750).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// The 401 answer to a refused request, with the `WWW-Authenticate` challenge.
pub fn refused(refusal: Refusal, path: &str) -> Reply {
    let detail = match refusal {
        Refusal::Missing => format!(
            "{path} needs the admin token: send Authorization: Bearer <token> (the content of \
             admin.token_file)"
        ),
        Refusal::Wrong => format!("{path}: the bearer token is not the admin token"),
    };
    let mut reply = problem(StatusCode::UNAUTHORIZED, &detail);
    let challenge = match refusal {
        Refusal::Missing => "Bearer realm=\"rangecache-admin\"",
        Refusal::Wrong => "Bearer realm=\"rangecache-admin\", error=\"invalid_token\"",
    };
    reply.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    reply
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::fleet::AdminToken;

    fn admin(protect_metrics: bool) -> AdminSettings {
        AdminSettings {
            token_file: Some("/t".into()),
            token: Some(Arc::new(AdminToken::new("tok-1".into()))),
            protect_metrics,
        }
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn open_paths_and_protected_paths() {
        let open = AdminSettings::default();
        for path in ["/cache/purge", "/config", "/metrics", "/nope"] {
            assert!(!required(&open, path), "{path}");
        }
        let a = admin(false);
        for path in ["/healthz", "/readyz", "/metrics"] {
            assert!(!required(&a, path), "{path}");
        }
        for path in [
            "/cache/purge",
            "/cache/stats",
            "/cache/invalidate",
            "/config",
            "/nope",
        ] {
            assert!(required(&a, path), "{path}");
        }
        assert!(required(&admin(true), "/metrics"));
        assert!(!required(&admin(true), "/readyz"));
    }

    #[test]
    fn bearer_tokens_are_checked() {
        let a = admin(false);
        assert_eq!(check(&a, &headers("Bearer tok-1")), Ok(()));
        assert_eq!(check(&a, &headers("bearer  tok-1 ")), Ok(()));
        assert_eq!(check(&a, &HeaderMap::new()), Err(Refusal::Missing));
        assert_eq!(check(&a, &headers("Bearer")), Err(Refusal::Missing));
        assert_eq!(check(&a, &headers("Bearer ")), Err(Refusal::Missing));
        assert_eq!(check(&a, &headers("Basic dG9rLTE=")), Err(Refusal::Missing));
        assert_eq!(check(&a, &headers("Bearer tok-2")), Err(Refusal::Wrong));
        assert_eq!(check(&a, &headers("Bearer tok-1x")), Err(Refusal::Wrong));
        assert_eq!(check(&AdminSettings::default(), &HeaderMap::new()), Ok(()));
        let r = refused(Refusal::Wrong, "/config");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert!(r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
}
