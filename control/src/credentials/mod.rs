//! Origin credentials the control plane refreshes: the AWS default provider chain
//! (`credentials = "chain"`) and rangecache's own OIDC identity exchanged at an STS
//! (`credentials = "oidc"`).
//!
//! Each refreshed origin has a [`CredentialCell`] in the snapshot; one refresher task per cell
//! ([`refresher`]) fetches credentials on the control plane's Tokio runtime, stores them in the
//! cell before the current ones expire, and keeps the current ones (until they expire) when a
//! refresh fails. Workers only read the cell. The [`CredentialManager`] starts, keeps across
//! reloads and stops those tasks, and renders their metrics.
//!
//! - [`keys`]: the OIDC signing keys, the JWKS, token minting;
//! - [`provider`]: one fetch from the chain or from an STS;
//! - [`discovery`]: `/.well-known/openid-configuration` and the JWKS on the admin listener.

pub mod discovery;
pub mod keys;
#[cfg(test)]
mod keys_tests;
mod manager;
pub mod provider;
mod refresher;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use manager::CredentialManager;
use rangecache_dataplane::CredentialCell;

pub use keys::OidcKeys;

/// Where a refreshed origin's credentials come from.
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialSource {
    /// The AWS SDK's default chain: environment, shared profile files, web identity token
    /// file, container credentials endpoint, IMDSv2.
    Chain,
    /// A token rangecache mints, exchanged with `AssumeRoleWithWebIdentity`.
    Oidc(Arc<OidcSettings>),
}

impl CredentialSource {
    /// The `credentials` value that selects this source.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Chain => "chain",
            Self::Oidc(_) => "oidc",
        }
    }
}

/// `[origin.oidc]`, validated.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The PEM file the keys were read from (re-read on reload).
    pub key_file: PathBuf,
    /// Its keys; the last one signs.
    pub keys: Arc<OidcKeys>,
    /// `iss` of minted tokens, and the discovery document's issuer.
    pub issuer: String,
    /// `aud` of minted tokens.
    pub audience: String,
    /// The role asked for.
    pub role_arn: String,
    /// Where `AssumeRoleWithWebIdentity` is sent.
    pub sts_endpoint: String,
    /// How long a minted token is valid.
    pub token_lifetime: Duration,
}

impl PartialEq for OidcSettings {
    /// Equal when every setting and every key (by thumbprint) is.
    fn eq(&self, other: &Self) -> bool {
        self.key_file == other.key_file
            && self.issuer == other.issuer
            && self.audience == other.audience
            && self.role_arn == other.role_arn
            && self.sts_endpoint == other.sts_endpoint
            && self.token_lifetime == other.token_lifetime
            && self.keys.kids().eq(other.keys.kids())
    }
}

/// An origin whose credentials are refreshed: where from, and the cell workers read.
#[derive(Debug, Clone)]
pub struct RefreshedCredentials {
    /// Where they come from.
    pub source: CredentialSource,
    /// Where the current ones are published.
    pub cell: Arc<CredentialCell>,
}

impl RefreshedCredentials {
    /// A new, empty cell for `source`.
    pub fn new(source: CredentialSource) -> Self {
        Self {
            source,
            cell: Arc::new(CredentialCell::new()),
        }
    }
}

/// The HTTPS client the chain and STS calls use: rustls on ring (no OpenSSL, no aws-lc), the
/// system's root certificates.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}
