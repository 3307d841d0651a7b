//! `origin.credentials` and `[origin.oidc]` (and their `[[bucket]]` overrides) as users write
//! them. Validation is in [`super::credentials`].

use serde::{Deserialize, Serialize};

/// The default `origin.credentials`: keys from the configuration or the `AWS_*` environment.
pub const DEFAULT_CREDENTIALS: &str = "static";

/// The default `origin.oidc.token_lifetime`.
pub const DEFAULT_TOKEN_LIFETIME: &str = "5m";

/// `[origin.oidc]` (or `[bucket.oidc]`) as written: rangecache as an OIDC identity provider
/// whose tokens are exchanged at an STS for the origin's credentials
/// (`credentials = "oidc"`). In a `[[bucket]]`, empty fields fall back to `[origin.oidc]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawOidc {
    /// PEM file of RSA private keys (PKCS#1 or PKCS#8). Several keys = rotation: all are
    /// published in the JWKS, the last one in the file (the newest) signs.
    pub key_file: String,
    /// The issuer URL (`iss`); its `/.well-known/openid-configuration` must reach the admin
    /// listener.
    pub issuer: String,
    /// The token's audience (`aud`), e.g. `sts.amazonaws.com`.
    pub audience: String,
    /// The role the token is exchanged for (`RoleArn` of `AssumeRoleWithWebIdentity`).
    pub role_arn: String,
    /// The STS endpoint (`http(s)://host[:port]`).
    pub sts_endpoint: String,
    /// How long a minted token is valid.
    pub token_lifetime: String,
}

impl Default for RawOidc {
    fn default() -> Self {
        Self {
            key_file: String::new(),
            issuer: String::new(),
            audience: String::new(),
            role_arn: String::new(),
            sts_endpoint: String::new(),
            token_lifetime: DEFAULT_TOKEN_LIFETIME.into(),
        }
    }
}

impl RawOidc {
    /// True when every field is at its default (nothing was written).
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}
