//! `[proxy]` and `[[cors]]` as users write them (see [`super::raw`] for the conventions).
//! Validation into the data plane's types is in [`super::edge`].

use serde::{Deserialize, Serialize};

/// `[proxy]` as written: the reverse proxies (load balancers) in front of rangecache whose
/// word about the client's address is believed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawProxy {
    /// Believe anything at all; off = every client address is the TCP peer.
    pub enabled: bool,
    /// `"none"`, `"x-forwarded"` (`X-Forwarded-For`) or `"forwarded"` (RFC 7239).
    pub forwarded_headers: String,
    /// CIDRs (or single addresses) of the proxies whose PROXY headers and forwarded headers
    /// are believed.
    pub trusted_proxies: Vec<String>,
    /// `"none"`, `"v1"` or `"v2"`: the PROXY protocol header trusted peers open every
    /// connection with.
    pub protocol: String,
}

impl Default for RawProxy {
    fn default() -> Self {
        Self {
            enabled: false,
            forwarded_headers: "none".into(),
            trusted_proxies: Vec::new(),
            protocol: "none".into(),
        }
    }
}

/// One `[[cors]]` rule as written, shaped like an S3 bucket CORS rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// The client-side bucket the rule applies to, or `"*"` for every bucket.
    #[serde(default = "any_bucket")]
    pub bucket: String,
    /// Origins allowed (`https://app.example.com`, `https://*.example.com`, `*`).
    pub allowed_origins: Vec<String>,
    /// Methods allowed: GET, PUT, POST, DELETE, HEAD.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for (wildcards allowed: `x-amz-*`, `*`).
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers the browser lets scripts read (`Content-Range`, `ETag`, ...).
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Seconds a browser may cache a preflight answer; absent = not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
}

fn any_bucket() -> String {
    "*".into()
}
