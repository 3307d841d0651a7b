//! STS errors as AWS answers them: a code, an HTTP status and a message, rendered as an
//! `<ErrorResponse>` by [`super::xml`].

use std::fmt;

use http::StatusCode;

use super::jwt::JwtError;

/// The error codes the STS endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsCode {
    /// Missing or invalid parameters (400).
    ValidationError,
    /// An action other than `AssumeRoleWithWebIdentity` (400).
    InvalidAction,
    /// The web identity token is malformed, not signed by the issuer, or not valid yet (400).
    InvalidIdentityToken,
    /// The web identity token has expired (400).
    ExpiredTokenException,
    /// Unknown role, or the token's audience or subject is not allowed (403).
    AccessDenied,
    /// The issuer's JWKS could not be fetched (400).
    IdpCommunicationError,
    /// No session token key is configured (503).
    ServiceUnavailable,
}

impl StsCode {
    /// The code as AWS spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            StsCode::ValidationError => "ValidationError",
            StsCode::InvalidAction => "InvalidAction",
            StsCode::InvalidIdentityToken => "InvalidIdentityToken",
            StsCode::ExpiredTokenException => "ExpiredTokenException",
            StsCode::AccessDenied => "AccessDenied",
            StsCode::IdpCommunicationError => "IDPCommunicationError",
            StsCode::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            StsCode::AccessDenied => StatusCode::FORBIDDEN,
            StsCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The `result` label of `rangecache_sts_requests_total`.
    pub fn result_label(self) -> &'static str {
        match self {
            StsCode::ValidationError | StsCode::InvalidAction => "invalid",
            StsCode::InvalidIdentityToken
            | StsCode::ExpiredTokenException
            | StsCode::AccessDenied => "denied",
            StsCode::IdpCommunicationError | StsCode::ServiceUnavailable => "error",
        }
    }

    /// `Sender` for the caller's mistakes, `Receiver` for the service's own trouble.
    pub fn fault(self) -> &'static str {
        match self {
            StsCode::ServiceUnavailable => "Receiver",
            _ => "Sender",
        }
    }
}

/// One failed STS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    /// What kind of failure.
    pub code: StsCode,
    /// The message returned to the caller.
    pub message: String,
}

impl StsError {
    /// An error with `code` and `message`.
    pub fn new(code: StsCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A `ValidationError`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StsCode::ValidationError, message)
    }

    /// `AccessDenied` with AWS's message (the reason goes to the debug log, not the caller).
    pub fn access_denied() -> Self {
        Self::new(
            StsCode::AccessDenied,
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        )
    }
}

impl fmt::Display for StsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for StsError {}

impl From<JwtError> for StsError {
    fn from(e: JwtError) -> Self {
        let code = if e.is_expiry() {
            StsCode::ExpiredTokenException
        } else if e.is_denial() {
            StsCode::AccessDenied
        } else {
            StsCode::InvalidIdentityToken
        };
        Self::new(code, e.to_string())
    }
}
