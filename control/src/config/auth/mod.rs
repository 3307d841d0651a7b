//! `[auth]`, typed: access keys with their secrets read, grants parsed, session token keys
//! decoded, roles with their JWKS files loaded ([`validate`] builds it from the file form).
//! It carries the data plane's [`AuthPolicy`], built once per configuration and shared by
//! every snapshot built from it, and gives back a redacted file form for `--check`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::auth::{
    Access, AuthMode, AuthPolicy, Grant, SessionKeys, SigV2, SourcedGrant,
};

use super::raw_auth::{RawAuth, RawGrant, RawKey, RawRole, Words};
use super::settings::REDACTED;
use super::units::format_duration;
use crate::sts::jwks::JwkSet;

mod validate;

pub use validate::{valid_role_name, validate};

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
    /// `auth.sigv2`: verify Signature Version 2 requests, or refuse them.
    pub sigv2: SigV2,
    /// `[[auth.keys]]`, in file order.
    pub keys: Vec<KeySettings>,
    /// `[[auth.anonymous]]` without a `source` condition.
    pub anonymous: Vec<Grant>,
    /// `[[auth.anonymous]]` with a `source` condition.
    pub anonymous_sourced: Vec<SourcedGrant>,
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
            sigv2: SigV2::Refuse,
            keys: Vec::new(),
            anonymous: Vec::new(),
            anonymous_sourced: Vec::new(),
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
                self.anonymous.len() + self.anonymous_sourced.len(),
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
            sigv2: self.sigv2 == SigV2::Accept,
            session_token_keys: self
                .session_keys
                .ids()
                .into_iter()
                .map(|id| format!("{REDACTED} id {id}"))
                .collect(),
            keys: self.keys.iter().map(key_view).collect(),
            anonymous: self
                .anonymous
                .iter()
                .map(grant_view)
                .chain(self.anonymous_sourced.iter().map(|s| RawGrant {
                    source: Some(Words::Many(
                        s.source.iter().map(ToString::to_string).collect(),
                    )),
                    ..grant_view(&s.grant)
                }))
                .collect(),
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
        source: None,
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

#[cfg(test)]
mod tests;
