//! `[auth]` validated: access keys with their secrets read, grants parsed, session token keys
//! decoded, roles checked and their JWKS files loaded. The result carries the data plane's
//! [`AuthPolicy`], built once per configuration and shared by every snapshot built from it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::auth::{
    Access, AuthMode, AuthPolicy, Grant, SessionKey, SessionKeys, StaticKey,
};

use super::env::EnvVars;
use super::raw_auth::{RawAuth, RawGrant, RawKey, RawRole, Words};
use super::settings::REDACTED;
use super::tls::{io_text, TlsBuilder};
use super::units::{format_duration, parse_duration};
use crate::error::{Phase, StartupError};
use crate::sts::jwks::JwkSet;

/// The environment variable holding session token keys (comma-separated, newest first).
pub const SESSION_TOKEN_KEY_ENV: &str = "SESSION_TOKEN_KEY";

/// Shortest `max_duration` (and shortest STS session): 15 minutes, as AWS.
pub const MIN_SESSION: Duration = Duration::from_secs(15 * 60);

/// Longest `max_duration` (and longest STS session): 12 hours, as AWS.
pub const MAX_SESSION: Duration = Duration::from_secs(12 * 3600);

/// The warning for `auth.mode = "none"` (logged at startup and on every reload).
pub const MODE_NONE_WARNING: &str = "auth.mode = \"none\": clients are NOT verified; any client \
                                     may do anything the origin credentials allow";

/// `[auth]`, typed.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Verify or not.
    pub mode: AuthMode,
    /// `[[auth.keys]]`, in file order.
    pub keys: Vec<KeySettings>,
    /// `[[auth.anonymous]]`.
    pub anonymous: Vec<Grant>,
    /// `SESSION_TOKEN_KEY` keys, then `auth.session_token_keys`; duplicates dropped.
    pub session_keys: SessionKeys,
    /// `[[auth.roles]]`, in file order.
    pub roles: Vec<RoleSettings>,
    policy: Arc<AuthPolicy>,
}

/// One access key, its secret read.
#[derive(Clone)]
pub struct KeySettings {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret: Arc<[u8]>,
    /// Where the secret came from (shown in the effective configuration).
    pub source: SecretSource,
    /// What the key may do.
    pub grants: Arc<[Grant]>,
}

impl fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySettings")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &REDACTED)
            .field("source", &self.source)
            .field("grants", &self.grants)
            .finish()
    }
}

/// Where a secret access key was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `secret_access_key`, in the file.
    Inline,
    /// `secret_access_key_env`: this environment variable.
    Env(String),
    /// `secret_access_key_file`: this file.
    File(PathBuf),
}

/// One STS role, typed.
#[derive(Debug, Clone)]
pub struct RoleSettings {
    /// The name `RoleArn`s end with.
    pub name: String,
    /// The issuer tokens must come from.
    pub issuer: String,
    /// Where the issuer's keys come from.
    pub jwks: JwksSource,
    /// Accepted `aud` values (at least one).
    pub audiences: Vec<String>,
    /// Accepted `sub` patterns; empty = any.
    pub subjects: Vec<String>,
    /// Longest session, 15m to 12h.
    pub max_duration: Duration,
    /// What sessions may do.
    pub grants: Vec<Grant>,
}

/// A role's JWKS: loaded from a file when the configuration is, or fetched and cached.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// `jwks_file`, read and parsed at (re)load.
    File {
        /// The file.
        path: PathBuf,
        /// Its keys.
        keys: Arc<JwkSet>,
    },
    /// `jwks_url`, fetched by the STS handler.
    Url(JwksUrl),
}

/// A JWKS to fetch over HTTP(S).
#[derive(Debug, Clone)]
pub struct JwksUrl {
    /// The URL as configured.
    pub url: String,
    /// The URL, parsed (scheme http or https, with a host).
    pub uri: http::Uri,
    /// How long a fetched set is used before it is fetched again.
    pub refresh: Duration,
    /// TLS client configuration (system roots) for https.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: AuthMode::SigV4,
            keys: Vec::new(),
            anonymous: Vec::new(),
            session_keys: SessionKeys::default(),
            roles: Vec::new(),
            policy: Arc::default(),
        }
    }
}

impl AuthSettings {
    /// The policy the data plane enforces, shared by every snapshot of this configuration.
    pub fn policy(&self) -> Arc<AuthPolicy> {
        self.policy.clone()
    }

    /// The role called `name`.
    pub fn role(&self, name: &str) -> Option<&RoleSettings> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// A one-line summary for the startup log, e.g. `sigv4 (2 keys, 1 role)`.
    pub fn summary(&self) -> String {
        match self.mode {
            AuthMode::None => "NONE: clients are not verified".to_owned(),
            AuthMode::SigV4 => format!(
                "sigv4 ({} keys, {} anonymous grants, {} roles, {} session token keys)",
                self.keys.len(),
                self.anonymous.len(),
                self.roles.len(),
                self.session_keys.ids().len()
            ),
        }
    }

    /// These settings in file form with secrets redacted; session token keys are shown as
    /// their ids.
    pub fn view(&self) -> RawAuth {
        RawAuth {
            mode: mode_name(self.mode).to_owned(),
            session_token_keys: self
                .session_keys
                .ids()
                .into_iter()
                .map(|id| format!("{REDACTED} id {id}"))
                .collect(),
            keys: self.keys.iter().map(key_view).collect(),
            anonymous: self.anonymous.iter().map(grant_view).collect(),
            roles: self.roles.iter().map(role_view).collect(),
        }
    }
}

/// The config-file spelling of a mode.
pub fn mode_name(mode: AuthMode) -> &'static str {
    match mode {
        AuthMode::SigV4 => "sigv4",
        AuthMode::None => "none",
    }
}

fn key_view(k: &KeySettings) -> RawKey {
    let mut raw = RawKey {
        access_key_id: k.access_key_id.clone(),
        grants: k.grants.iter().map(grant_view).collect(),
        ..RawKey::default()
    };
    match &k.source {
        SecretSource::Inline => raw.secret_access_key = Some(REDACTED.to_owned()),
        SecretSource::Env(name) => raw.secret_access_key_env = Some(name.clone()),
        SecretSource::File(path) => {
            raw.secret_access_key_file = Some(path.display().to_string());
        }
    }
    raw
}

fn grant_view(g: &Grant) -> RawGrant {
    let words = if g.access == Access::ALL {
        vec!["all".to_owned()]
    } else {
        g.access.words().into_iter().map(str::to_owned).collect()
    };
    RawGrant {
        bucket: g.bucket.clone(),
        prefix: g.prefix.clone(),
        access: Words::Many(words),
    }
}

fn role_view(r: &RoleSettings) -> RawRole {
    let (jwks_file, jwks_url, refresh) = match &r.jwks {
        JwksSource::File { path, .. } => (
            Some(path.display().to_string()),
            None,
            super::raw_auth::DEFAULT_JWKS_REFRESH.to_owned(),
        ),
        JwksSource::Url(u) => (None, Some(u.url.clone()), format_duration(u.refresh)),
    };
    RawRole {
        name: r.name.clone(),
        issuer: r.issuer.clone(),
        jwks_file,
        jwks_url,
        jwks_refresh: refresh,
        audiences: r.audiences.clone(),
        subjects: r.subjects.clone(),
        max_duration: format_duration(r.max_duration),
        grants: r.grants.iter().map(grant_view).collect(),
    }
}

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
    let anonymous = grants("auth.anonymous", &raw.anonymous)?;
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
        AuthMode::SigV4 if keys.is_empty() && anonymous.is_empty() && roles.is_empty() => warnings
            .push(
                "auth: no [[auth.keys]], [[auth.anonymous]] or [[auth.roles]] are configured: \
                 every request will be denied"
                    .to_owned(),
            ),
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
    };
    Ok(AuthSettings {
        mode,
        keys,
        anonymous,
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

fn grant(at: &str, g: &RawGrant) -> Result<Grant, StartupError> {
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

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
