//! The immutable configuration snapshot that the control plane publishes and every worker reads.
//!
//! The control plane builds a new [`Snapshot`] for every accepted configuration (and whenever
//! origin addresses are re-resolved) and stores it in the one [`SharedSnapshot`]. Workers
//! `load()` it once per request; nothing in here is ever mutated after publication.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::auth::AuthPolicy;
use crate::credentials::OriginCredentials;
use crate::fleet::PeerInvalidator;
use crate::net::TlsSettings;

/// The one place the current snapshot lives; shared by the control plane and all workers.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// Everything a worker needs to serve a request, frozen at publication time.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Increases by one with every publication; useful in logs and tests.
    pub generation: u64,
    /// Front-end (client-facing) settings.
    pub server: ServerSettings,
    /// The origin used for buckets without an override.
    pub default_origin: Arc<Origin>,
    /// Per-bucket overrides, keyed by the bucket name clients use.
    pub buckets: HashMap<String, BucketRoute>,
    /// Who may do what; checked before the cache or the origin is consulted.
    pub auth: Arc<AuthPolicy>,
    /// Carries a write's invalidation to the other nodes of a fleet; `None` = no fleet.
    pub fleet: Option<Arc<dyn PeerInvalidator>>,
    /// Reverse proxies whose client metadata is believed (`[proxy]`); `None` =
    /// `proxy.enabled = false`: the TCP peer is the client.
    pub proxy: Option<Arc<crate::edge::ProxyTrust>>,
    /// `[[cors]]` rules; empty = no CORS headers, preflights refused.
    pub cors: Arc<crate::edge::CorsPolicy>,
}

impl Snapshot {
    /// The origin and origin-side bucket name that serve the client bucket `bucket`.
    pub fn route_bucket<'a>(&'a self, bucket: &'a str) -> (&'a Arc<Origin>, &'a str) {
        match self.buckets.get(bucket) {
            Some(route) => (&route.origin, route.origin_bucket.as_str()),
            None => (&self.default_origin, bucket),
        }
    }
}

/// Client-facing limits and timeouts.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Base domain for virtual-hosted-style requests (`bucket.<domain>`); `None` = path-style only.
    pub domain: Option<String>,
    /// Largest request head (request line + headers) accepted, in bytes.
    pub max_head_bytes: usize,
    /// Most header fields accepted in one request head.
    pub max_headers: usize,
    /// Longest request target accepted, in bytes.
    pub max_uri_bytes: usize,
    /// Time allowed to receive a complete request head once its first byte arrived.
    pub header_read_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// Time allowed for one body read or write to make progress.
    pub body_timeout: Duration,
    /// Time a client may take no response bytes before it is disconnected (its claims are
    /// released; fills other readers wait on still complete).
    pub send_timeout: Duration,
    /// TLS on the client listener; `None` = plain HTTP. Read at accept time, so a reload
    /// that rotates the certificate applies to new connections only.
    pub tls: Option<TlsSettings>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            domain: None,
            max_head_bytes: 64 * 1024,
            max_headers: 128,
            max_uri_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP.
    Http,
    /// TLS via rustls.
    Https,
}

/// Static credentials used to re-sign requests towards an origin.
#[derive(Clone)]
pub struct Credentials {
    /// AWS access key id.
    pub access_key_id: String,
    /// AWS secret access key.
    pub secret_access_key: String,
    /// Optional session token (sent as `x-amz-security-token`).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// One S3 origin: where it is, how to reach it and how to sign for it.
#[derive(Debug, Clone)]
pub struct Origin {
    /// A name for logs and metrics (`default` or the bucket override's name).
    pub name: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or address literal, as configured (used for SNI and the Host header).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Addresses resolved by the control plane; workers connect to these, in order.
    pub addrs: Vec<SocketAddr>,
    /// SigV4 signing region.
    pub region: String,
    /// Credentials for re-signing (fixed, or refreshed by the control plane); `None` sends
    /// requests unsigned.
    pub credentials: Option<OriginCredentials>,
    /// TLS client configuration for `https` origins.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Time allowed from the end of the request to the first byte of the response head.
    pub response_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Most idle connections kept per worker for this origin.
    pub pool_max_idle: usize,
    /// Which API the origin speaks (S3, GCS's XML API, Azure Blob).
    pub backend: Backend,
}

/// The API an origin speaks; rangecache's clients speak S3 whatever it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Backend {
    /// An S3-compatible store: requests forwarded as they are, re-signed with SigV4.
    #[default]
    S3,
    /// Google Cloud Storage's XML API (HMAC keys, SigV4): S3 requests with the headers it
    /// does not take removed or mapped (see `origin::gcs`).
    Gcs,
    /// Azure Blob Storage: requests translated to the Blob REST API (see `origin::azure`).
    Azure(Arc<crate::origin::azure::AzureOrigin>),
}

impl Origin {
    /// The `Host` header value for this origin (`host` or `host:port` when not the default port).
    pub fn authority(&self) -> String {
        let default_port = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Where a client bucket is served from.
#[derive(Debug, Clone)]
pub struct BucketRoute {
    /// The origin serving this bucket.
    pub origin: Arc<Origin>,
    /// The bucket's name at that origin.
    pub origin_bucket: String,
}
