//! `[auth]`, `[[auth.keys]]`, `[[auth.anonymous]]` and `[[auth.roles]]` as users write them
//! (see `docs/auth-spec.md`). Validation into typed settings is in [`super::auth`].

use serde::{Deserialize, Serialize};

/// The default `auth.mode`: verify every request, deny what no grant allows.
pub const DEFAULT_MODE: &str = "sigv4";

/// The default `auth.roles[].jwks_refresh`.
pub const DEFAULT_JWKS_REFRESH: &str = "5m";

/// The default `auth.roles[].max_duration`.
pub const DEFAULT_MAX_DURATION: &str = "1h";

/// `[auth]` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAuth {
    /// `sigv4` (verify and authorize every request) or `none` (benchmarks only).
    pub mode: String,
    /// Also accept (and verify) Signature Version 2, header and presigned URLs.
    pub sigv2: bool,
    /// Base64 AES-256-GCM keys sealing STS session tokens, newest first (`SESSION_TOKEN_KEY`
    /// is prepended).
    pub session_token_keys: Vec<String>,
    /// `[[auth.keys]]`: long-term access keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<RawKey>,
    /// `[[auth.anonymous]]`: grants for unsigned requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub anonymous: Vec<RawGrant>,
    /// `[[auth.roles]]`: roles for STS `AssumeRoleWithWebIdentity`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RawRole>,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            mode: DEFAULT_MODE.into(),
            sigv2: false,
            session_token_keys: Vec::new(),
            keys: Vec::new(),
            anonymous: Vec::new(),
            roles: Vec::new(),
        }
    }
}

/// One `[[auth.keys]]` entry: exactly one of the three secret fields must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    /// The access key id clients sign with.
    pub access_key_id: String,
    /// The secret, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// The name of an environment variable holding the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_env: Option<String>,
    /// A file holding the secret (surrounding whitespace trimmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_file: Option<String>,
    /// What the key may do.
    #[serde(default)]
    pub grants: Vec<RawGrant>,
}

/// One grant: a bucket (or `*`), a key prefix and one or more access words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    /// A client-side bucket name, or `*` for every bucket.
    pub bucket: String,
    /// Object keys (and list prefixes) must start with this; `""` = the whole bucket.
    #[serde(default)]
    pub prefix: String,
    /// `read`, `write`, `list`, `all`, or a list of them.
    pub access: Words,
    /// `[[auth.anonymous]]` only: the grant applies only to clients whose (effective, see
    /// `[proxy]`) address is in one of these CIDRs; a CIDR or a list of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Words>,
}

/// A word or a list of words (`access = "all"` or `access = ["read", "list"]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Words {
    /// A single word.
    One(String),
    /// A list of words.
    Many(Vec<String>),
}

impl Words {
    /// The words, in order.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Self::One(w) => std::slice::from_ref(w),
            Self::Many(ws) => ws,
        }
    }
}

/// One `[[auth.roles]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    /// The role's name: the last path segment of the `RoleArn` clients ask for.
    pub name: String,
    /// The JWT's `iss` must equal this.
    pub issuer: String,
    /// The issuer's JWKS as a local file (one of `jwks_file` and `jwks_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    /// The issuer's JWKS at an `http(s)://` URL (one of `jwks_file` and `jwks_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// How long a fetched JWKS is cached (`jwks_url` only).
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh: String,
    /// The JWT's `aud` must contain one of these.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Allowed `sub` values: exact, or a prefix ending in `*`; empty = any subject.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Longest session (`DurationSeconds` is capped here), 15m to 12h.
    #[serde(default = "default_max_duration")]
    pub max_duration: String,
    /// What sessions of this role may do.
    #[serde(default)]
    pub grants: Vec<RawGrant>,
}

fn default_jwks_refresh() -> String {
    DEFAULT_JWKS_REFRESH.into()
}

fn default_max_duration() -> String {
    DEFAULT_MAX_DURATION.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let raw: RawAuth = toml::from_str(
            r#"
            mode = "sigv4"
            session_token_keys = []
            [[keys]]
            access_key_id = "AKIDREADER"
            secret_access_key = "x"
            grants = [
              { bucket = "data", prefix = "tables/", access = ["read", "list"] },
              { bucket = "*", access = "all" },
            ]
            [[anonymous]]
            bucket = "public"
            access = ["read"]
            [[roles]]
            name = "analytics"
            issuer = "https://issuer.test"
            jwks_file = "/path/jwks.json"
            audiences = ["rangecache"]
            grants = [ { bucket = "data", prefix = "", access = ["read", "list"] } ]
            "#,
        )
        .unwrap();
        assert_eq!(raw.keys[0].grants[1].access, Words::One("all".into()));
        assert_eq!(raw.keys[0].grants[1].prefix, "");
        assert_eq!(raw.anonymous[0].access.as_slice(), ["read"]);
        assert_eq!(raw.roles[0].jwks_refresh, "5m");
        assert_eq!(raw.roles[0].max_duration, "1h");
        let back: RawAuth = toml::from_str(&toml::to_string(&raw).unwrap()).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<RawAuth>("[[keys]]\naccess_key_id = \"a\"\nsecret = \"x\"\n")
            .unwrap_err();
        assert!(err.message().contains("unknown field `secret`"), "{err}");
        let err = toml::from_str::<RawAuth>("[[roles]]\nname = \"r\"\nissuer = \"i\"\naud = []\n")
            .unwrap_err();
        assert!(err.message().contains("unknown field `aud`"), "{err}");
    }
}
