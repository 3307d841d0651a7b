//! From [`RawAuth`] to [`AuthSettings`]. The first problem is an error whose detail starts with
//! the offending key (`auth.keys[1].grants[0].access: ...`); secrets and keys are never part of
//! an error.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::auth::{
    Access, AuthMode, AuthPolicy, Grant, SessionKey, SessionKeys, SigV2, SourcedGrant, StaticKey,
};

use super::{
    AuthSettings, JwksSource, JwksUrl, KeySettings, RoleSettings, SecretSource, MAX_SESSION,
    MIN_SESSION, MODE_NONE_WARNING, SESSION_TOKEN_KEY_ENV,
};
use crate::config::env::EnvVars;
use crate::config::raw_auth::{RawAuth, RawGrant, RawKey, RawRole};
use crate::config::tls::{io_text, TlsBuilder};
use crate::config::units::parse_duration;
use crate::error::{Phase, StartupError};
use crate::sts::jwks::JwkSet;

fn invalid(key: &str, detail: impl fmt::Display) -> StartupError {
    StartupError::new(Phase::ValidateConfig, format!("{key}: {detail}"))
}

/// Validate `[auth]`. `env` supplies `SESSION_TOKEN_KEY` and `secret_access_key_env`
/// variables; findings that are not errors go to `warnings`.
pub fn validate(
    raw: &RawAuth,
    env: &EnvVars,
    tls: &mut TlsBuilder,
    warnings: &mut Vec<String>,
) -> Result<AuthSettings, StartupError> {
    let mode = match raw.mode.trim().to_ascii_lowercase().as_str() {
        "sigv4" => AuthMode::SigV4,
        "none" => AuthMode::None,
        other => {
            return Err(invalid(
                "auth.mode",
                format_args!("expected \"sigv4\" or \"none\", got {other:?}"),
            ))
        }
    };
    let sigv2 = if raw.sigv2 {
        SigV2::Accept
    } else {
        SigV2::Refuse
    };
    let session_keys = session_keys(&raw.session_token_keys, env)?;
    let mut keys = Vec::with_capacity(raw.keys.len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, k) in raw.keys.iter().enumerate() {
        let at = format!("auth.keys[{i}]");
        let key = static_key(&at, k, env)?;
        if let Some(first) = seen.insert(k.access_key_id.as_str(), i) {
            return Err(invalid(
                &format!("{at}.access_key_id"),
                format_args!(
                    "duplicate access key id {:?} (also auth.keys[{first}])",
                    k.access_key_id
                ),
            ));
        }
        keys.push(key);
    }
    let (anonymous, anonymous_sourced) = anonymous_grants(&raw.anonymous)?;
    let mut roles = Vec::with_capacity(raw.roles.len());
    let mut names = HashSet::new();
    for (i, r) in raw.roles.iter().enumerate() {
        let at = format!("auth.roles[{i}]");
        let role = role(&at, r, tls, warnings)?;
        if !names.insert(r.name.as_str()) {
            return Err(invalid(
                &format!("{at}.name"),
                format_args!("duplicate role name {:?}", r.name),
            ));
        }
        roles.push(role);
    }

    match mode {
        AuthMode::None => warnings.push(MODE_NONE_WARNING.to_owned()),
        AuthMode::SigV4
            if keys.is_empty()
                && anonymous.is_empty()
                && anonymous_sourced.is_empty()
                && roles.is_empty() =>
        {
            warnings.push(
                "auth: no [[auth.keys]], [[auth.anonymous]] or [[auth.roles]] are configured: \
                 every request will be denied"
                    .to_owned(),
            )
        }
        AuthMode::SigV4 => {}
    }
    if !roles.is_empty() && session_keys.is_empty() {
        warnings.push(format!(
            "auth.roles are configured but no session token key is ({SESSION_TOKEN_KEY_ENV} or \
             auth.session_token_keys): AssumeRoleWithWebIdentity answers 503"
        ));
    }

    let policy = AuthPolicy {
        mode,
        keys: keys
            .iter()
            .map(|k: &KeySettings| {
                let key = StaticKey {
                    secret: k.secret.clone(),
                    grants: k.grants.clone(),
                };
                (k.access_key_id.clone(), key)
            })
            .collect(),
        anonymous: anonymous.clone().into(),
        session_keys: session_keys.clone(),
        sigv2,
        anonymous_sourced: anonymous_sourced.clone().into(),
    };
    Ok(AuthSettings {
        mode,
        sigv2,
        keys,
        anonymous,
        anonymous_sourced,
        session_keys,
        roles,
        policy: Arc::new(policy),
    })
}

/// `SESSION_TOKEN_KEY` (comma-separated, newest first) followed by `auth.session_token_keys`.
/// A key given in both places is kept once. Errors name the key's position, never the key.
fn session_keys(configured: &[String], env: &EnvVars) -> Result<SessionKeys, StartupError> {
    let from_env: Vec<&str> = env
        .get(SESSION_TOKEN_KEY_ENV)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut keys = Vec::with_capacity(from_env.len() + configured.len());
    let mut ids = HashSet::new();
    let n = from_env.len();
    for (i, text) in from_env.iter().enumerate() {
        let key = SessionKey::from_base64(text).map_err(|e| {
            invalid(
                SESSION_TOKEN_KEY_ENV,
                format_args!("key {} of {n}: {e}", i + 1),
            )
            .with_cause(e)
        })?;
        if ids.insert(key.id_hex()) {
            keys.push(key);
        }
    }
    for (i, text) in configured.iter().enumerate() {
        let key = SessionKey::from_base64(text)
            .map_err(|e| invalid(&format!("auth.session_token_keys[{i}]"), &e).with_cause(e))?;
        if ids.insert(key.id_hex()) {
            keys.push(key);
        }
    }
    Ok(SessionKeys::new(keys))
}

fn static_key(at: &str, k: &RawKey, env: &EnvVars) -> Result<KeySettings, StartupError> {
    let id = &k.access_key_id;
    let id_ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b',' | b'=' | b'"'));
    if !id_ok {
        return Err(invalid(
            &format!("{at}.access_key_id"),
            format_args!(
                "{id:?} is not an access key id (1 to 128 printable ASCII characters without \
                 '/', ',', '=' or '\"')"
            ),
        ));
    }
    let (secret, source) = secret(at, k, env)?;
    Ok(KeySettings {
        access_key_id: id.clone(),
        secret: secret.into_bytes().into(),
        source,
        grants: grants(&format!("{at}.grants"), &k.grants)?.into(),
    })
}

/// Exactly one of `secret_access_key`, `secret_access_key_env`, `secret_access_key_file`.
fn secret(at: &str, k: &RawKey, env: &EnvVars) -> Result<(String, SecretSource), StartupError> {
    let given = [
        k.secret_access_key.is_some(),
        k.secret_access_key_env.is_some(),
        k.secret_access_key_file.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() != 1 {
        return Err(invalid(
            at,
            "set exactly one of secret_access_key, secret_access_key_env and \
             secret_access_key_file",
        ));
    }
    let (field, value, source) = if let Some(v) = &k.secret_access_key {
        ("secret_access_key", v.clone(), SecretSource::Inline)
    } else if let Some(name) = &k.secret_access_key_env {
        let key = format!("{at}.secret_access_key_env");
        let value = env
            .get(name.as_str())
            .ok_or_else(|| invalid(&key, format_args!("environment variable {name} is not set")))?;
        (
            "secret_access_key_env",
            value.trim().to_owned(),
            SecretSource::Env(name.clone()),
        )
    } else {
        let path = PathBuf::from(k.secret_access_key_file.clone().unwrap_or_default());
        let key = format!("{at}.secret_access_key_file");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            invalid(&key, format_args!("{}: {}", path.display(), io_text(&e))).with_cause(e)
        })?;
        (
            "secret_access_key_file",
            text.trim().to_owned(),
            SecretSource::File(path),
        )
    };
    if value.is_empty() {
        return Err(invalid(&format!("{at}.{field}"), "the secret is empty"));
    }
    Ok((value, source))
}

/// Parse a list of grants; `at` names the list (`auth.keys[0].grants`).
fn grants(at: &str, raw: &[RawGrant]) -> Result<Vec<Grant>, StartupError> {
    raw.iter()
        .enumerate()
        .map(|(i, g)| grant(&format!("{at}[{i}]"), g))
        .collect()
}

/// `[[auth.anonymous]]`: grants without a `source`, and grants with one (its CIDRs parsed).
fn anonymous_grants(raw: &[RawGrant]) -> Result<(Vec<Grant>, Vec<SourcedGrant>), StartupError> {
    let (mut plain, mut sourced) = (Vec::new(), Vec::new());
    for (i, g) in raw.iter().enumerate() {
        let at = format!("auth.anonymous[{i}]");
        let grant = grant(
            &at,
            &RawGrant {
                source: None,
                ..g.clone()
            },
        )?;
        match &g.source {
            None => plain.push(grant),
            Some(words) => {
                let key = format!("{at}.source");
                let source = crate::config::edge::cidrs(&key, words.as_slice())?;
                if source.is_empty() {
                    return Err(invalid(&key, "is empty: list at least one CIDR"));
                }
                sourced.push(SourcedGrant { grant, source });
            }
        }
    }
    Ok((plain, sourced))
}

fn grant(at: &str, g: &RawGrant) -> Result<Grant, StartupError> {
    if g.source.is_some() {
        return Err(invalid(
            &format!("{at}.source"),
            "only [[auth.anonymous]] grants take a source condition",
        ));
    }
    let bucket = g.bucket.trim();
    let bucket_ok = bucket == "*"
        || (!bucket.is_empty()
            && bucket.len() <= 255
            && !bucket.contains(['/', '*'])
            && !bucket.chars().any(char::is_whitespace));
    if !bucket_ok {
        return Err(invalid(
            &format!("{at}.bucket"),
            format_args!("{:?} is not a bucket name or \"*\"", g.bucket),
        ));
    }
    let words = g.access.as_slice();
    if words.is_empty() {
        return Err(invalid(
            &format!("{at}.access"),
            "is empty; use read, write, list or all",
        ));
    }
    let mut access = Access::NONE;
    for w in words {
        let one = Access::parse(w.trim()).ok_or_else(|| {
            invalid(
                &format!("{at}.access"),
                format_args!("unknown access {w:?}; use read, write, list or all"),
            )
        })?;
        access = access.union(one);
    }
    Ok(Grant {
        bucket: bucket.to_owned(),
        prefix: g.prefix.clone(),
        access,
    })
}

/// A role name as AWS allows: 1 to 64 of `[A-Za-z0-9_+=,.@-]`.
pub fn valid_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

fn role(
    at: &str,
    r: &RawRole,
    tls: &mut TlsBuilder,
    warnings: &mut Vec<String>,
) -> Result<RoleSettings, StartupError> {
    if !valid_role_name(&r.name) {
        return Err(invalid(
            &format!("{at}.name"),
            format_args!(
                "{:?} is not a role name (1 to 64 of A-Z a-z 0-9 _ + = , . @ -)",
                r.name
            ),
        ));
    }
    if r.issuer.trim().is_empty() {
        return Err(invalid(&format!("{at}.issuer"), "must not be empty"));
    }
    let jwks = match (&r.jwks_file, &r.jwks_url) {
        (Some(file), None) => jwks_file(&format!("{at}.jwks_file"), file)?,
        (None, Some(url)) => {
            let refresh = duration(&format!("{at}.jwks_refresh"), &r.jwks_refresh)?;
            if refresh.is_zero() {
                return Err(invalid(
                    &format!("{at}.jwks_refresh"),
                    "must be greater than zero",
                ));
            }
            JwksSource::Url(jwks_url(&format!("{at}.jwks_url"), url, refresh, tls)?)
        }
        _ => return Err(invalid(at, "set exactly one of jwks_file and jwks_url")),
    };
    if r.audiences.is_empty() {
        return Err(invalid(
            &format!("{at}.audiences"),
            "must name at least one audience",
        ));
    }
    if let Some(i) = r.audiences.iter().position(|a| a.is_empty()) {
        return Err(invalid(
            &format!("{at}.audiences[{i}]"),
            "must not be empty",
        ));
    }
    for (i, s) in r.subjects.iter().enumerate() {
        if s.is_empty() || s.trim_end_matches('*').contains('*') {
            return Err(invalid(
                &format!("{at}.subjects[{i}]"),
                format_args!("{s:?} must be a subject, or a prefix followed by one final '*'"),
            ));
        }
    }
    let max_duration = duration(&format!("{at}.max_duration"), &r.max_duration)?;
    if !(MIN_SESSION..=MAX_SESSION).contains(&max_duration) {
        return Err(invalid(
            &format!("{at}.max_duration"),
            format_args!("must be between 15m and 12h, got {:?}", r.max_duration),
        ));
    }
    let grants = grants(&format!("{at}.grants"), &r.grants)?;
    if grants.is_empty() {
        warnings.push(format!(
            "{at} ({}) has no grants: its sessions may do nothing",
            r.name
        ));
    }
    Ok(RoleSettings {
        name: r.name.clone(),
        issuer: r.issuer.clone(),
        jwks,
        audiences: r.audiences.clone(),
        subjects: r.subjects.clone(),
        max_duration,
        grants,
    })
}

fn duration(key: &str, s: &str) -> Result<Duration, StartupError> {
    parse_duration(s).map_err(|e| invalid(key, format_args!("invalid duration '{s}': {e}")))
}

fn jwks_file(key: &str, file: &str) -> Result<JwksSource, StartupError> {
    let path = PathBuf::from(file);
    let shown = path.display();
    let bytes = std::fs::read(&path)
        .map_err(|e| invalid(key, format_args!("{shown}: {}", io_text(&e))).with_cause(e))?;
    let keys = JwkSet::parse(&bytes)
        .map_err(|e| invalid(key, format_args!("{shown}: {e}")).with_cause(e))?;
    Ok(JwksSource::File {
        path,
        keys: Arc::new(keys),
    })
}

fn jwks_url(
    key: &str,
    url: &str,
    refresh: Duration,
    tls: &mut TlsBuilder,
) -> Result<JwksUrl, StartupError> {
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|e| invalid(key, format_args!("invalid URL {url:?}: {e}")))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(invalid(key, "scheme must be http or https")),
    };
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(key, "missing host"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(invalid(key, "must not contain user info"));
    }
    let tls = if https {
        Some(tls.client_config(None, key).map_err(|e| {
            invalid(
                key,
                "https needs trusted roots and the system certificate store has none usable",
            )
            .with_cause(e)
        })?)
    } else {
        None
    };
    Ok(JwksUrl {
        url: url.trim().to_owned(),
        uri,
        refresh,
        tls,
    })
}
