//! STS `AssumeRoleWithWebIdentity` on the admin listener: a web identity token (a JWT from a
//! trusted issuer) is exchanged for temporary S3 credentials whose session token the data
//! plane opens itself (see `docs/auth-spec.md`).
//!
//! - [`params`]: the request's parameters, checked;
//! - [`jwt`] and [`jwks`]: the token and the issuer's keys; [`issuer_keys`] caches keys fetched
//!   from `jwks_url`s ([`fetch`] does the HTTP GET);
//! - [`ids`]: random key ids and secrets; [`xml`]: the response documents;
//! - [`handler`]: the service tying them together.

pub mod error;
pub mod fetch;
pub mod handler;
pub mod ids;
pub mod issuer_keys;
pub mod jwks;
pub mod jwt;
pub mod params;
pub mod xml;

#[cfg(test)]
mod handler_tests;
#[cfg(test)]
pub(crate) mod testkeys;

pub use handler::{Sts, StsRequest};

/// The content type of STS request bodies.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Largest STS request body accepted (a token is at most 20,000 characters).
pub const MAX_BODY_BYTES: usize = 64 << 10;
