//! The configuration as users write it: serde structs that mirror the TOML file one to one.
//!
//! Built-in defaults live here and nowhere else (`Default` impls; `config/default.toml`
//! documents the same values). Durations and sizes stay strings until validation, so that an
//! environment override of any field is a plain string, integer or boolean.

use serde::{Deserialize, Deserializer, Serialize};

pub use super::raw_auth::RawAuth;
pub use super::raw_credentials::RawOidc;
pub use super::raw_fleet::{RawAdmin, RawFleet};
pub use super::raw_proxy::{RawCors, RawProxy};

/// The whole file: `[server]`, `[origin]`, `[cache]`, `[auth]` and any number of `[[bucket]]`
/// overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`: the client-facing endpoint and its limits.
    pub server: RawServer,
    /// `[origin]`: the S3 origin serving every bucket without an override.
    pub origin: RawOrigin,
    /// `[cache]`: the shared block cache and object metadata cache.
    pub cache: RawCache,
    /// `[prefetch]`: sequential read-ahead and Parquet-aware prefetch.
    pub prefetch: RawPrefetch,
    /// `[auth]`: who may do what (default: verify everything, allow nothing).
    pub auth: RawAuth,
    /// `[log]`: the access log.
    pub log: RawLog,
    /// `[admin]`: the admin endpoint's bearer token.
    pub admin: RawAdmin,
    /// `[fleet]`: the other nodes a write invalidates.
    pub fleet: RawFleet,
    /// `[[bucket]]`: per-bucket overrides.
    #[serde(rename = "bucket", skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<RawBucket>,
    /// `[proxy]`: reverse proxies whose word on the client address is believed.
    pub proxy: RawProxy,
    /// `[[cors]]`: CORS rules for browser clients.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cors: Vec<RawCors>,
}

/// `[server]` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawServer {
    /// Client-facing S3 endpoint.
    pub listen: String,
    /// Admin endpoint (`/healthz`, `/readyz`, `/metrics`, `/config`).
    pub admin_listen: String,
    /// Worker threads; 0 = one per available core.
    pub workers: usize,
    /// Base domain for virtual-hosted-style requests; empty = path-style only.
    pub domain: String,
    /// `auto`, `io_uring` or `epoll`.
    pub io_driver: String,
    /// Pin each worker to a core.
    pub pin_cores: bool,
    /// Largest request head, as a size.
    #[serde(deserialize_with = "size_string")]
    pub max_head_size: String,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// Longest request target, as a size.
    #[serde(deserialize_with = "size_string")]
    pub max_uri_length: String,
    /// Time to receive a whole request head.
    pub header_read_timeout: String,
    /// Keep-alive idle time between requests.
    pub idle_timeout: String,
    /// Time for one body read or write to make progress.
    pub body_timeout: String,
    /// Time a client may take no response bytes before it is disconnected.
    pub send_timeout: String,
    /// Time in-flight requests get to finish on shutdown.
    pub drain_timeout: String,
    /// Most client connections open at once, process-wide; 0 = derived from the file
    /// descriptor limit.
    pub max_connections: usize,
    /// `[server.tls]`: TLS (and mTLS) on the client listener; empty = plain HTTP.
    pub tls: RawServerTls,
}

/// `[server.tls]` as written. All paths empty = plain HTTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawServerTls {
    /// PEM certificate chain, leaf first (RSA or ECDSA).
    pub cert_file: String,
    /// PEM private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// PEM bundle of CAs whose client certificates are required (mTLS); empty = none asked.
    pub client_ca_file: String,
    /// Longest time from accept to a finished TLS handshake.
    pub handshake_timeout: String,
}

impl Default for RawServerTls {
    fn default() -> Self {
        Self {
            cert_file: String::new(),
            key_file: String::new(),
            client_ca_file: String::new(),
            handshake_timeout: "10s".into(),
        }
    }
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9090".into(),
            workers: 0,
            domain: String::new(),
            io_driver: "auto".into(),
            pin_cores: true,
            max_head_size: "64KiB".into(),
            max_headers: 128,
            max_uri_length: "16KiB".into(),
            header_read_timeout: "10s".into(),
            idle_timeout: "60s".into(),
            body_timeout: "60s".into(),
            send_timeout: "30s".into(),
            drain_timeout: "30s".into(),
            tls: RawServerTls::default(),
            max_connections: 0,
        }
    }
}

/// `[log]` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    /// `"off"`, `"stdout"` or a file path: where JSON access-log lines go.
    pub access: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            access: "off".into(),
        }
    }
}

/// `[origin]` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawOrigin {
    /// `http://` or `https://` host, optional port.
    pub endpoint: String,
    /// SigV4 signing region.
    pub region: String,
    /// Empty: taken from `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// Empty: taken from `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// Empty: taken from `AWS_SESSION_TOKEN` when the keys come from the environment.
    pub session_token: String,
    /// `static` (the keys above), `chain` (the AWS default provider chain) or `oidc`
    /// (`[origin.oidc]`): where signing credentials come from.
    pub credentials: String,
    /// `[origin.oidc]`: rangecache's own identity, for `credentials = "oidc"`.
    #[serde(skip_serializing_if = "RawOidc::is_unset")]
    pub oidc: RawOidc,
    /// PEM bundle of trusted roots for https; empty = the system store.
    pub ca_file: String,
    /// TCP connect timeout.
    pub connect_timeout: String,
    /// Time from request sent to response head received.
    pub response_timeout: String,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: String,
    /// Most idle connections per worker and origin.
    pub pool_max_idle: usize,
    /// How often origin host names are re-resolved; `"0s"` = never.
    pub resolve_interval: String,
}

impl Default for RawOrigin {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:8333".into(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            session_token: String::new(),
            credentials: super::raw_credentials::DEFAULT_CREDENTIALS.into(),
            oidc: RawOidc::default(),
            ca_file: String::new(),
            connect_timeout: "5s".into(),
            response_timeout: "30s".into(),
            pool_idle_timeout: "60s".into(),
            pool_max_idle: 64,
            resolve_interval: "30s".into(),
        }
    }
}

/// `[cache]` as written. Sized once at startup: a reload does not change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCache {
    /// Byte budget for cached blocks, as a size; 0 turns the cache off.
    #[serde(deserialize_with = "size_string")]
    pub memory: String,
    /// Block size, as a size: a power of two from 64KiB to 64MiB.
    #[serde(deserialize_with = "size_string")]
    pub block_size: String,
    /// How long object metadata (size, ETag, headers) is trusted.
    pub metadata_ttl: String,
    /// Most objects whose metadata is kept.
    pub metadata_entries: usize,
    /// Bytes one response may hold claimed ahead of what its client has taken, as a size.
    #[serde(deserialize_with = "size_string")]
    pub readahead_window: String,
    /// Process-wide budget for bytes of fills in flight, as a size.
    #[serde(deserialize_with = "size_string")]
    pub inflight_memory: String,
    /// Map the block memory (`memory`) at startup, in the background, instead of as blocks
    /// first arrive.
    pub pretouch: bool,
    /// `[cache.disk]`: the disk tier under the RAM cache.
    pub disk: RawDisk,
}

/// `[cache.disk]` as written: off while `path` is unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDisk {
    /// Directory holding the tier's file; must exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Bytes the tier's file may take, as a size.
    #[serde(deserialize_with = "size_string")]
    pub size: String,
}

impl Default for RawDisk {
    fn default() -> Self {
        Self {
            path: None,
            size: "0".into(),
        }
    }
}

impl Default for RawCache {
    fn default() -> Self {
        Self {
            memory: "1GiB".into(),
            block_size: "1MiB".into(),
            metadata_ttl: "60s".into(),
            metadata_entries: 100_000,
            readahead_window: "8MiB".into(),
            inflight_memory: "256MiB".into(),
            pretouch: false,
            disk: RawDisk::default(),
        }
    }
}

/// `[prefetch]` as written. Fixed at startup, like `[cache]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawPrefetch {
    /// Prefetch at all.
    pub enabled: bool,
    /// Most bytes fetched ahead of one reader of one object, as a size.
    #[serde(deserialize_with = "size_string")]
    pub max_window: String,
    /// Decode Parquet footers and prefetch the next row group's column chunks.
    pub parquet: bool,
}

impl Default for RawPrefetch {
    fn default() -> Self {
        Self {
            enabled: true,
            max_window: "64MiB".into(),
            parquet: true,
        }
    }
}

/// One `[[bucket]]` override. Every field but `name` falls back to `[origin]` (or, for
/// `origin_bucket`, to `name`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBucket {
    /// The bucket name clients use.
    pub name: String,
    /// The bucket's name at the origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_bucket: Option<String>,
    /// Another origin endpoint for this bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Another signing region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Other credentials (with `secret_access_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Other credentials (with `access_key_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// Session token for this bucket's credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    /// Another CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The API the origin speaks: `s3` (default), `azure` or `gcs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// `[bucket.azure]`: the storage account of a `backend = "azure"` bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<super::backend::RawAzure>,
    /// Another credential source (`static`, `chain` or `oidc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Another OIDC identity (empty fields fall back to `[origin.oidc]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<RawOidc>,
}

/// Accept a size as a string (`"64KiB"`) or a plain integer (bytes) and keep it as a string.
fn size_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(u64),
        Str(String),
    }
    match IntOrString::deserialize(d) {
        Ok(IntOrString::Int(n)) => Ok(n.to_string()),
        Ok(IntOrString::Str(s)) => Ok(s),
        Err(_) => Err(serde::de::Error::custom(
            "expected a byte size: a non-negative integer or a string such as \"64KiB\"",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let raw: RawConfig = toml::from_str("").unwrap();
        assert_eq!(raw, RawConfig::default());
    }

    #[test]
    fn sizes_accept_integers_and_strings() {
        let raw: RawConfig =
            toml::from_str("[server]\nmax_head_size = 4096\nmax_uri_length = \"8KiB\"\n").unwrap();
        assert_eq!(raw.server.max_head_size, "4096");
        assert_eq!(raw.server.max_uri_length, "8KiB");
        let raw: RawConfig =
            toml::from_str("[cache]\nmemory = 0\nblock_size = \"4MiB\"\n").unwrap();
        assert_eq!(raw.cache.memory, "0");
        assert_eq!(raw.cache.block_size, "4MiB");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<RawConfig>("[server]\nlisen = \"x\"\n").unwrap_err();
        assert!(err.message().contains("unknown field `lisen`"), "{err}");
        let err =
            toml::from_str::<RawConfig>("[[bucket]]\nname = \"a\"\nregoin = \"x\"\n").unwrap_err();
        assert!(err.message().contains("unknown field `regoin`"), "{err}");
        let err = toml::from_str::<RawConfig>("[cache]\nsize = 1\n").unwrap_err();
        assert!(err.message().contains("unknown field `size`"), "{err}");
        let err = toml::from_str::<RawConfig>("[cash]\n").unwrap_err();
        assert!(err.message().contains("unknown field `cash`"), "{err}");
    }

    #[test]
    fn serializes_back_to_parseable_toml() {
        let mut raw = RawConfig::default();
        raw.buckets.push(RawBucket {
            name: "a".into(),
            region: Some("eu-west-1".into()),
            ..RawBucket::default()
        });
        let text = toml::to_string(&raw).unwrap();
        assert_eq!(toml::from_str::<RawConfig>(&text).unwrap(), raw);
    }
}
