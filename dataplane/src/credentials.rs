//! An origin's signing credentials as workers see them: fixed ones from the configuration, or
//! a [`CredentialCell`] the control plane refreshes (AWS default chain, OIDC web identity).
//!
//! Workers only read: one `ArcSwap` load per signed origin request, never a lock and never a
//! wait for a refresh. A cell whose credentials are missing or about to expire makes the
//! request fail with [`crate::ErrorKind::NoCredentials`] (an S3 503 to the client) instead of
//! reaching the origin with a key it would reject.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;

use crate::snapshot::Credentials;

/// Credentials are not used for signing once less than this is left before their expiry, so
/// that a request signed now does not reach the origin (or finish its upload) with an expired
/// key. The control plane refreshes well before this point.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// Credentials with the time they stop being valid.
#[derive(Debug, Clone)]
pub struct TimedCredentials {
    /// The keys (and session token).
    pub credentials: Credentials,
    /// When the issuer says they expire; `None` = they do not.
    pub expires: Option<SystemTime>,
}

impl TimedCredentials {
    /// True when they may sign a request at `now` ([`EXPIRY_MARGIN`] before their expiry).
    pub fn usable_at(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|e| now + EXPIRY_MARGIN < e)
    }
}

/// The current credentials of one refreshed origin. The control plane is the only writer;
/// a configuration reload hands the same cell to the new snapshot while the origin's
/// credential source is unchanged, so a reload never drops valid credentials.
#[derive(Debug, Default)]
pub struct CredentialCell {
    current: ArcSwapOption<TimedCredentials>,
}

impl CredentialCell {
    /// An empty cell: requests fail with [`crate::ErrorKind::NoCredentials`] until the first
    /// [`CredentialCell::store`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Publish new credentials; requests signed from now on use them.
    pub fn store(&self, credentials: TimedCredentials) {
        self.current.store(Some(Arc::new(credentials)));
    }

    /// The credentials held, usable or not (for metrics and readiness).
    pub fn current(&self) -> Option<Arc<TimedCredentials>> {
        self.current.load_full()
    }

    /// The credentials held if they may sign a request at `now`.
    pub fn usable(&self, now: SystemTime) -> Option<Arc<TimedCredentials>> {
        self.current.load_full().filter(|c| c.usable_at(now))
    }
}

/// Where an origin's signing credentials come from.
#[derive(Debug, Clone)]
pub enum OriginCredentials {
    /// Fixed keys from the configuration or the environment.
    Static(Credentials),
    /// Keys the control plane refreshes into this cell.
    Refreshed(Arc<CredentialCell>),
}

/// A refreshed origin holds no credentials valid at the time of signing.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no valid credentials for the origin: the last refresh failed or has not finished")]
pub struct NoValidCredentials;

impl OriginCredentials {
    /// Run `f` with the credentials that may sign a request at `now`.
    pub fn with_current<R>(
        &self,
        now: SystemTime,
        f: impl FnOnce(&Credentials) -> R,
    ) -> Result<R, NoValidCredentials> {
        match self {
            Self::Static(c) => Ok(f(c)),
            Self::Refreshed(cell) => match cell.usable(now) {
                Some(timed) => Ok(f(&timed.credentials)),
                None => Err(NoValidCredentials),
            },
        }
    }

    /// The fixed credentials, if these are fixed.
    pub fn as_static(&self) -> Option<&Credentials> {
        match self {
            Self::Static(c) => Some(c),
            Self::Refreshed(_) => None,
        }
    }

    /// The refreshed cell, if these are refreshed.
    pub fn cell(&self) -> Option<&Arc<CredentialCell>> {
        match self {
            Self::Static(_) => None,
            Self::Refreshed(cell) => Some(cell),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(id: &str) -> Credentials {
        Credentials {
            access_key_id: id.into(),
            secret_access_key: "s".into(),
            session_token: None,
        }
    }

    #[test]
    fn static_credentials_always_sign() {
        let c = OriginCredentials::Static(creds("A"));
        let id = c.with_current(SystemTime::now(), |c| c.access_key_id.clone());
        assert_eq!(id.unwrap(), "A");
    }

    #[test]
    fn refreshed_credentials_stop_before_expiry() {
        let cell = Arc::new(CredentialCell::new());
        let c = OriginCredentials::Refreshed(cell.clone());
        let now = SystemTime::now();
        assert!(c.with_current(now, |_| ()).is_err(), "empty cell");
        cell.store(TimedCredentials {
            credentials: creds("B"),
            expires: Some(now + Duration::from_secs(60)),
        });
        let id = c.with_current(now, |c| c.access_key_id.clone());
        assert_eq!(id.unwrap(), "B");
        // Inside the margin: refused although not yet expired.
        let late = now + Duration::from_secs(60) - EXPIRY_MARGIN;
        assert!(c.with_current(late, |_| ()).is_err());
        assert!(cell.current().is_some(), "still held for metrics");
        cell.store(TimedCredentials {
            credentials: creds("C"),
            expires: None,
        });
        let id = c.with_current(late + Duration::from_secs(3600), |c| {
            c.access_key_id.clone()
        });
        assert_eq!(id.unwrap(), "C");
    }
}
