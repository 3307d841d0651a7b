//! rangecache's OIDC discovery on the admin listener: `/.well-known/openid-configuration`
//! and the JWKS at `/.well-known/jwks.json`. The issuer URL reaches the admin listener
//! through whatever ingress the operator has; a path prefix in the issuer is accepted (any
//! path ending in these two is answered), so an ingress may forward it unchanged.

use super::{CredentialSource, OidcSettings};
use crate::config::Settings;

/// Path suffix of the discovery document.
pub const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";

/// Path suffix of the JWKS.
pub const JWKS_SUFFIX: &str = "/.well-known/jwks.json";

/// Which OIDC document a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// The discovery document.
    Discovery,
    /// The key set.
    Jwks,
}

impl Document {
    /// The document at `path`, if it is one.
    pub fn at(path: &str) -> Option<Self> {
        if path.ends_with(DISCOVERY_SUFFIX) {
            Some(Self::Discovery)
        } else if path.ends_with(JWKS_SUFFIX) {
            Some(Self::Jwks)
        } else {
            None
        }
    }
}

/// The OIDC identity of `settings` (validation makes every `oidc` origin share one issuer
/// and key file); `None` when no origin uses `credentials = "oidc"`.
pub fn identity(settings: &Settings) -> Option<&OidcSettings> {
    settings.origins().find_map(|o| match &o.refresh {
        Some(r) => match &r.source {
            CredentialSource::Oidc(oidc) => Some(&**oidc),
            CredentialSource::Chain => None,
        },
        None => None,
    })
}

/// The JSON body of `doc` for `oidc`.
pub fn render(doc: Document, oidc: &OidcSettings) -> serde_json::Value {
    match doc {
        Document::Jwks => oidc.keys.jwks(),
        Document::Discovery => serde_json::json!({
            "issuer": oidc.issuer,
            "jwks_uri": format!("{}{JWKS_SUFFIX}", oidc.issuer.trim_end_matches('/')),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["iss", "sub", "aud", "iat", "exp", "jti"],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_or_without_a_prefix() {
        assert_eq!(
            Document::at("/.well-known/openid-configuration"),
            Some(Document::Discovery)
        );
        assert_eq!(
            Document::at("/rc/.well-known/jwks.json"),
            Some(Document::Jwks)
        );
        assert_eq!(Document::at("/metrics"), None);
    }
}
