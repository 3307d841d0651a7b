//! One credential fetch: from the AWS default chain, or by minting a token and exchanging it
//! at an STS.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_sts::config::timeout::TimeoutConfig;
use rangecache_dataplane::{Credentials, TimedCredentials};
use ring::rand::SystemRandom;

use super::keys::Claims;
use super::{http_client, CredentialSource, OidcSettings};

/// Time one STS call (connect, all retries) may take.
const STS_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The default chain found no credentials or a provider in it failed.
    #[error("AWS default credential chain: {0}")]
    Chain(String),
    /// A token could not be minted.
    #[error("minting the OIDC token: {0}")]
    Mint(#[from] super::keys::MintError),
    /// The STS refused the token or could not be reached.
    #[error("AssumeRoleWithWebIdentity at {endpoint}: {detail}")]
    Sts {
        /// The STS endpoint.
        endpoint: String,
        /// The STS error code and message, or the transport failure.
        detail: String,
    },
    /// The STS answered without credentials.
    #[error("AssumeRoleWithWebIdentity at {0}: the response holds no credentials")]
    NoCredentials(String),
}

/// Fetches credentials for one origin.
pub enum Provider {
    /// The default chain, built once per refresher.
    Chain(Box<DefaultCredentialsChain>),
    /// Token minting and exchange.
    Oidc(OidcExchange),
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chain(_) => f.write_str("Provider::Chain"),
            Self::Oidc(x) => write!(f, "Provider::Oidc({})", x.settings.role_arn),
        }
    }
}

impl Provider {
    /// The provider for `source`, for the origin `origin` signing in `region`.
    pub async fn new(source: &CredentialSource, origin: &str, region: &str) -> Self {
        match source {
            CredentialSource::Chain => {
                let config = ProviderConfig::default()
                    .with_http_client(http_client())
                    .with_region(Some(Region::new(region.to_owned())));
                let chain = DefaultCredentialsChain::builder()
                    .region(Region::new(region.to_owned()))
                    .configure(config)
                    .build()
                    .await;
                Self::Chain(Box::new(chain))
            }
            CredentialSource::Oidc(settings) => {
                Self::Oidc(OidcExchange::new(settings.clone(), origin, region))
            }
        }
    }

    /// Fetch credentials once.
    pub async fn fetch(&self) -> Result<TimedCredentials, FetchError> {
        match self {
            Self::Chain(chain) => {
                let c = chain
                    .provide_credentials()
                    .await
                    .map_err(|e| FetchError::Chain(error_chain(&e)))?;
                Ok(TimedCredentials {
                    credentials: Credentials {
                        access_key_id: c.access_key_id().to_owned(),
                        secret_access_key: c.secret_access_key().to_owned(),
                        session_token: c.session_token().map(str::to_owned),
                    },
                    expires: c.expiry(),
                })
            }
            Self::Oidc(x) => x.fetch().await,
        }
    }

    /// Tokens minted so far (OIDC only).
    pub fn tokens_minted(&self) -> u64 {
        match self {
            Self::Chain(_) => 0,
            Self::Oidc(x) => x.minted.load(Relaxed),
        }
    }
}

/// rangecache's own identity: mints a token and trades it for credentials.
pub struct OidcExchange {
    settings: Arc<OidcSettings>,
    subject: String,
    session_name: String,
    sts: aws_sdk_sts::Client,
    rng: SystemRandom,
    minted: AtomicU64,
}

impl OidcExchange {
    /// The exchange for the origin `origin`, asking the STS in `region`.
    pub fn new(settings: Arc<OidcSettings>, origin: &str, region: &str) -> Self {
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(settings.sts_endpoint.clone())
            .http_client(http_client())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(STS_TIMEOUT)
                    .build(),
            )
            .build();
        Self {
            subject: subject(origin),
            // RoleSessionName: [\w+=,.@-]{2,64}.
            session_name: session_name(origin),
            sts: aws_sdk_sts::Client::from_conf(config),
            settings,
            rng: SystemRandom::new(),
            minted: AtomicU64::new(0),
        }
    }

    /// Mint a token valid from now for `token_lifetime`.
    pub fn mint(&self, now: SystemTime) -> Result<String, FetchError> {
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let jti = uuid_like(&self.rng);
        let claims = Claims {
            iss: &self.settings.issuer,
            sub: &self.subject,
            aud: &self.settings.audience,
            iat,
            exp: iat + self.settings.token_lifetime.as_secs(),
            jti: &jti,
        };
        let token = self.settings.keys.mint(&claims, &self.rng)?;
        self.minted.fetch_add(1, Relaxed);
        Ok(token)
    }

    async fn fetch(&self) -> Result<TimedCredentials, FetchError> {
        let token = self.mint(SystemTime::now())?;
        let endpoint = &self.settings.sts_endpoint;
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.settings.role_arn)
            .role_session_name(&self.session_name)
            .web_identity_token(token)
            .send()
            .await
            .map_err(|e| FetchError::Sts {
                endpoint: endpoint.clone(),
                detail: sts_error_text(&e),
            })?;
        let c = out
            .credentials
            .ok_or_else(|| FetchError::NoCredentials(endpoint.clone()))?;
        let expires = SystemTime::try_from(c.expiration).ok();
        Ok(TimedCredentials {
            credentials: Credentials {
                access_key_id: c.access_key_id,
                secret_access_key: c.secret_access_key,
                session_token: Some(c.session_token).filter(|t| !t.is_empty()),
            },
            expires,
        })
    }
}

/// `sub` of the tokens minted for `origin`.
pub fn subject(origin: &str) -> String {
    format!("rangecache:{origin}")
}

fn session_name(origin: &str) -> String {
    let mut name: String = format!("rangecache-{origin}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(64);
    name
}

/// 128 random bits as hex: a token's `jti`.
fn uuid_like(rng: &SystemRandom) -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // The system RNG does not fail on Linux; an all-zero jti would still be a valid token.
    let _ = rng.fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An SDK error with the STS's code and message when it answered, else its cause chain.
fn sts_error_text<E, R>(e: &aws_sdk_sts::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug + 'static,
{
    match e.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("(no message)")
        ),
        None => error_chain(e),
    }
}

/// `e` and its sources, joined by `: `.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_valid_for_sts() {
        assert_eq!(session_name("default"), "rangecache-default");
        assert_eq!(session_name("a b/c"), "rangecache-a-b-c");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }
}
