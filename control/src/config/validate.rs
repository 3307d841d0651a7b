//! From [`RawConfig`] to [`Settings`]: parse every value, apply the `AWS_*` fallbacks, merge
//! bucket overrides over `[origin]`, and build TLS configurations. The first problem found is
//! returned as a `[validate_config]` error whose detail starts with the offending key.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rangecache_dataplane::access_log::AccessLogTarget;
use rangecache_dataplane::cache::PrefetchConfig;
use rangecache_dataplane::{Backend, Credentials, IoDriver, Scheme};

use super::backend::Kind;
use super::credentials::BucketSource;
use super::env::EnvVars;
use super::raw::{
    RawBucket, RawCache, RawConfig, RawDisk, RawLog, RawOrigin, RawPrefetch, RawServer,
};
use super::settings::{
    BucketConfig, CacheSettings, DiskSettings, LogSettings, OriginConfig, ServerConfig, Settings,
};
use super::tls::TlsBuilder;
use super::units::{format_size, parse_duration, parse_size};
use crate::credentials::RefreshedCredentials;
use crate::error::{Phase, StartupError};

/// The most workers a configuration may ask for.
pub const MAX_WORKERS: usize = 1024;

/// The name of the default origin in logs, metrics and snapshots.
pub const DEFAULT_ORIGIN: &str = "default";

/// Smallest `cache.block_size`: below it, per-block overhead and origin round trips dominate.
pub const MIN_BLOCK_SIZE: u64 = 64 << 10;

/// Largest `cache.block_size`: above it, one miss fetches far more than any reader asked for.
pub const MAX_BLOCK_SIZE: u64 = 64 << 20;

/// A non-zero `cache.memory` must hold at least this many blocks: the store keeps no block
/// larger than the hot share (90%) of its budget, so a budget of one block would cache nothing.
pub const MIN_CACHED_BLOCKS: u64 = 2;

/// Validate `raw`; `env` supplies the `AWS_*` credential fallbacks, `SESSION_TOKEN_KEY` and
/// the variables `[[auth.keys]]` read secrets from.
pub fn validate(
    raw: &RawConfig,
    env: &EnvVars,
    source: Option<PathBuf>,
) -> Result<Settings, StartupError> {
    let mut warnings = Vec::new();
    let mut tls = TlsBuilder::default();
    let server = server(&raw.server)?;
    let origin = default_origin(&raw.origin, env, &mut tls, &mut warnings)?;
    let resolve_interval = duration("origin.resolve_interval", &raw.origin.resolve_interval)?;
    let mut cache = cache(&raw.cache, &mut warnings)?;
    cache.prefetch = prefetch(&raw.prefetch, &cache)?;
    let mut seen = HashSet::new();
    let mut buckets = Vec::with_capacity(raw.buckets.len());
    for (i, b) in raw.buckets.iter().enumerate() {
        let key = if b.name.is_empty() {
            format!("bucket[{i}]")
        } else {
            format!("bucket[{}]", b.name)
        };
        check_bucket_name(&format!("{key}.name"), &b.name)?;
        if !seen.insert(b.name.as_str()) {
            return Err(invalid(&format!("{key}.name"), "duplicate bucket name"));
        }
        buckets.push(bucket(
            &key,
            b,
            &raw.origin,
            &origin,
            env,
            &mut tls,
            &mut warnings,
        )?);
    }
    super::credentials::one_identity(
        std::iter::once(&origin).chain(buckets.iter().filter_map(|b| b.origin.as_ref())),
    )?;
    let auth = super::auth::validate(&raw.auth, env, &mut tls, &mut warnings)?;
    let log = log(&raw.log)?;
    let admin = super::fleet::admin(&raw.admin)?;
    let fleet = super::fleet::fleet(&raw.fleet, &raw.server.admin_listen)?;
    let proxy = super::edge::proxy(&raw.proxy, &mut warnings)?;
    let cors = super::edge::cors(&raw.cors)?;
    if !fleet.peers.is_empty() && admin.token.is_none() {
        warnings.push(
            "fleet.peers is set without admin.token_file: peer invalidations go unauthenticated, \
             and whoever reaches an admin port can purge that node's cache"
                .to_owned(),
        );
    }
    Ok(Settings {
        source,
        server,
        origin,
        resolve_interval,
        cache,
        buckets,
        auth,
        log,
        admin,
        fleet,
        proxy,
        cors,
        warnings,
    })
}

/// `[log]`: `access` is `off`, `stdout` or a file path (relative to the working directory).
fn log(raw: &RawLog) -> Result<LogSettings, StartupError> {
    let access = match raw.access.trim() {
        "off" => None,
        "stdout" => Some(AccessLogTarget::Stdout),
        "" => {
            return Err(invalid(
                "log.access",
                "expected \"off\", \"stdout\" or a file path, got ''",
            ))
        }
        path => Some(AccessLogTarget::File(PathBuf::from(path))),
    };
    Ok(LogSettings { access })
}

pub(super) fn invalid(key: &str, detail: impl std::fmt::Display) -> StartupError {
    StartupError::new(Phase::ValidateConfig, format!("{key}: {detail}"))
}

fn server(raw: &RawServer) -> Result<ServerConfig, StartupError> {
    let listen = socket_addr("server.listen", &raw.listen)?;
    let admin_listen = socket_addr("server.admin_listen", &raw.admin_listen)?;
    if admin_listen == listen && listen.port() != 0 {
        return Err(invalid(
            "server.admin_listen",
            "must differ from server.listen",
        ));
    }
    if raw.workers > MAX_WORKERS {
        return Err(invalid(
            "server.workers",
            format_args!("at most {MAX_WORKERS}, got {}", raw.workers),
        ));
    }
    let io_driver = match raw.io_driver.as_str() {
        "auto" => IoDriver::Auto,
        "io_uring" => IoDriver::IoUring,
        "epoll" => IoDriver::Epoll,
        other => {
            return Err(invalid(
                "server.io_driver",
                format_args!("expected auto, io_uring or epoll, got '{other}'"),
            ))
        }
    };
    if raw.max_headers == 0 {
        return Err(invalid("server.max_headers", "must be at least 1"));
    }
    let tls_handshake_timeout =
        timeout("server.tls.handshake_timeout", &raw.tls.handshake_timeout)?;
    Ok(ServerConfig {
        listen,
        admin_listen,
        workers: raw.workers,
        domain: domain(&raw.domain)?,
        io_driver,
        pin_cores: raw.pin_cores,
        max_head_size: size("server.max_head_size", &raw.max_head_size)?,
        max_headers: raw.max_headers,
        max_uri_length: size("server.max_uri_length", &raw.max_uri_length)?,
        header_read_timeout: timeout("server.header_read_timeout", &raw.header_read_timeout)?,
        idle_timeout: timeout("server.idle_timeout", &raw.idle_timeout)?,
        body_timeout: timeout("server.body_timeout", &raw.body_timeout)?,
        send_timeout: timeout("server.send_timeout", &raw.send_timeout)?,
        drain_timeout: duration("server.drain_timeout", &raw.drain_timeout)?,
        max_connections: raw.max_connections,
        tls: super::server_tls::validate(&raw.tls, tls_handshake_timeout)?,
        tls_handshake_timeout,
    })
}

fn cache(raw: &RawCache, warnings: &mut Vec<String>) -> Result<CacheSettings, StartupError> {
    let memory = byte_size("cache.memory", &raw.memory)?;
    let block_size = byte_size("cache.block_size", &raw.block_size)?;
    if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        return Err(invalid(
            "cache.block_size",
            format_args!(
                "must be a power of two between {} and {}, got '{}'",
                format_size(MIN_BLOCK_SIZE),
                format_size(MAX_BLOCK_SIZE),
                raw.block_size.trim()
            ),
        ));
    }
    let min_memory = MIN_CACHED_BLOCKS * block_size;
    if memory != 0 && memory < min_memory {
        return Err(invalid(
            "cache.memory",
            format_args!(
                "must be 0 (cache off) or at least {MIN_CACHED_BLOCKS} blocks of \
                 cache.block_size ({}), got '{}'",
                format_size(min_memory),
                raw.memory.trim()
            ),
        ));
    }
    if let Some(total) = physical_memory().filter(|&total| memory > total) {
        warnings.push(format!(
            "cache.memory ({}) is more than this machine's memory ({}): the process will be \
             killed for lack of memory before the cache is full",
            format_size(memory),
            format_size(total)
        ));
    }
    if raw.metadata_entries == 0 {
        return Err(invalid(
            "cache.metadata_entries",
            "must be at least 1 (set cache.metadata_ttl = \"0s\" to keep no metadata)",
        ));
    }
    // A response always holds at least the block it is sending.
    let readahead_window =
        byte_size("cache.readahead_window", &raw.readahead_window)?.max(block_size);
    let inflight_memory = byte_size("cache.inflight_memory", &raw.inflight_memory)?;
    if inflight_memory < readahead_window {
        return Err(invalid(
            "cache.inflight_memory",
            format_args!(
                "must be at least cache.readahead_window and one block of cache.block_size \
                 ({}), got '{}'",
                format_size(readahead_window),
                raw.inflight_memory.trim()
            ),
        ));
    }
    Ok(CacheSettings {
        memory,
        block_size,
        metadata_ttl: duration("cache.metadata_ttl", &raw.metadata_ttl)?,
        metadata_entries: raw.metadata_entries,
        readahead_window,
        inflight_memory,
        pretouch: raw.pretouch,
        prefetch: PrefetchConfig::default(),
        disk: disk(&raw.disk, memory, block_size)?,
    })
}

/// `[cache.disk]`: off without a path; with one, a size of at least one block. The directory
/// itself is checked when the tier is opened (`[open_disk_cache]`).
fn disk(raw: &RawDisk, memory: u64, block_size: u64) -> Result<Option<DiskSettings>, StartupError> {
    let Some(path) = raw.path.as_deref().map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let size = byte_size("cache.disk.size", &raw.size)?;
    let min = 4 * block_size;
    if size < min {
        return Err(invalid(
            "cache.disk.size",
            format_args!(
                "must be at least 4 blocks of cache.block_size ({}) when cache.disk.path is set, got '{}'",
                format_size(min),
                raw.size.trim()
            ),
        ));
    }
    if memory == 0 {
        return Err(invalid(
            "cache.disk.path",
            "the disk tier sits under the RAM cache: set cache.memory above 0, or unset cache.disk.path",
        ));
    }
    Ok(Some(DiskSettings {
        path: path.into(),
        size,
    }))
}

/// `[prefetch]`: the window must hold a block and leave demand reads room in the budget
/// (prefetches may hold at most half of `cache.inflight_memory`).
fn prefetch(raw: &RawPrefetch, cache: &CacheSettings) -> Result<PrefetchConfig, StartupError> {
    let max_window = byte_size("prefetch.max_window", &raw.max_window)?;
    let most = cache.inflight_memory / 2;
    if raw.enabled && !(cache.block_size..=most).contains(&max_window) {
        return Err(invalid(
            "prefetch.max_window",
            format_args!(
                "must be between one block of cache.block_size ({}) and half of \
                 cache.inflight_memory ({}), got '{}'",
                format_size(cache.block_size),
                format_size(most),
                raw.max_window.trim()
            ),
        ));
    }
    Ok(PrefetchConfig {
        enabled: raw.enabled,
        max_window,
        parquet: raw.parquet,
    })
}

/// Total RAM from `/proc/meminfo`; `None` where that cannot be read.
fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

fn socket_addr(key: &str, s: &str) -> Result<SocketAddr, StartupError> {
    s.trim().parse().map_err(|_| {
        invalid(
            key,
            format_args!("invalid socket address '{s}' (expected ip:port, e.g. 127.0.0.1:8080)"),
        )
    })
}

fn domain(s: &str) -> Result<Option<String>, StartupError> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() {
        return Ok(None);
    }
    let bad = d.starts_with('.')
        || d.contains("..")
        || !d
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
    if bad {
        return Err(invalid(
            "server.domain",
            format_args!("'{s}' is not a bare host name such as s3.example.com"),
        ));
    }
    Ok(Some(d))
}

fn duration(key: &str, s: &str) -> Result<Duration, StartupError> {
    parse_duration(s).map_err(|e| invalid(key, format_args!("invalid duration '{s}': {e}")))
}

/// A duration that must not be zero (a zero timeout would fail every request).
pub(super) fn timeout(key: &str, s: &str) -> Result<Duration, StartupError> {
    let d = duration(key, s)?;
    if d.is_zero() {
        return Err(invalid(key, "must be greater than zero"));
    }
    Ok(d)
}

/// A byte size, zero allowed.
fn byte_size(key: &str, s: &str) -> Result<u64, StartupError> {
    parse_size(s).map_err(|e| invalid(key, format_args!("invalid size '{s}': {e}")))
}

fn size(key: &str, s: &str) -> Result<usize, StartupError> {
    let n = byte_size(key, s)?;
    match usize::try_from(n) {
        Ok(0) => Err(invalid(key, "must be greater than zero")),
        Ok(n) => Ok(n),
        Err(_) => Err(invalid(key, format_args!("'{s}' is too large"))),
    }
}

/// Scheme, host (IPv6 without brackets) and port of an `http[s]://host[:port]` endpoint.
pub fn parse_endpoint(key: &str, s: &str) -> Result<(Scheme, String, u16), StartupError> {
    let uri: http::Uri = s
        .trim()
        .parse()
        .map_err(|e| invalid(key, format_args!("invalid URL '{s}': {e}")))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        _ => return Err(invalid(key, "scheme must be http or https")),
    };
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority.contains('@') {
        return Err(invalid(
            key,
            "must not contain user info; set access_key_id instead",
        ));
    }
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid(key, "missing host"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid(
            key,
            "must be scheme://host[:port] without a path or query (map bucket names with \
             [[bucket]] origin_bucket)",
        ));
    }
    let port = match (uri.port_u16(), scheme) {
        (Some(0), _) => return Err(invalid(key, "port must not be 0")),
        (Some(p), _) => p,
        (None, Scheme::Http) => 80,
        (None, Scheme::Https) => 443,
    };
    Ok((scheme, host.to_owned(), port))
}

/// Both keys or neither; a session token only with keys.
pub(super) fn credentials(
    key: &str,
    access_key_id: &str,
    secret_access_key: &str,
    session_token: &str,
) -> Result<Option<Credentials>, StartupError> {
    match (access_key_id.is_empty(), secret_access_key.is_empty()) {
        (true, true) if !session_token.is_empty() => Err(invalid(
            &format!("{key}.session_token"),
            "is set but access_key_id and secret_access_key are not",
        )),
        (true, true) => Ok(None),
        (false, false) => Ok(Some(Credentials {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            session_token: Some(session_token.to_owned()).filter(|t| !t.is_empty()),
        })),
        (false, true) => Err(invalid(
            &format!("{key}.secret_access_key"),
            "must be set together with access_key_id",
        )),
        (true, false) => Err(invalid(
            &format!("{key}.access_key_id"),
            "must be set together with secret_access_key",
        )),
    }
}

/// `[origin]` credentials, falling back to `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN` when neither key is in the configuration.
fn default_credentials(
    raw: &RawOrigin,
    env: &EnvVars,
) -> Result<Option<Credentials>, StartupError> {
    if !raw.access_key_id.is_empty() || !raw.secret_access_key.is_empty() {
        return credentials(
            "origin",
            &raw.access_key_id,
            &raw.secret_access_key,
            &raw.session_token,
        );
    }
    let var = |name: &str| env.get(name).map(|v| v.trim()).unwrap_or_default();
    let (ak, sk) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"));
    if ak.is_empty() != sk.is_empty() {
        return Err(invalid(
            "origin.access_key_id",
            "empty, and only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set",
        ));
    }
    // A token in the file without any keys is an error; one in the environment alone is
    // ignored (a shell may hold a stale one).
    let token = match (raw.session_token.as_str(), ak) {
        ("", "") => "",
        ("", _) => var("AWS_SESSION_TOKEN"),
        (file, _) => file,
    };
    credentials("origin", ak, sk, token)
}

/// The parts of an origin that may differ between `[origin]` and a bucket override.
pub(super) struct OriginKeys<'a> {
    pub key: &'a str,
    pub name: &'a str,
    pub endpoint: &'a str,
    pub region: &'a str,
    pub credentials: Option<Credentials>,
    pub refresh: Option<RefreshedCredentials>,
    pub ca_file: &'a str,
    pub backend: Backend,
}

pub(super) fn origin(
    k: OriginKeys<'_>,
    base: &RawOrigin,
    tls: &mut TlsBuilder,
    warnings: &mut Vec<String>,
) -> Result<OriginConfig, StartupError> {
    let key = k.key;
    let (scheme, host, port) = parse_endpoint(&format!("{key}.endpoint"), k.endpoint)?;
    if k.region.trim().is_empty() {
        return Err(invalid(&format!("{key}.region"), "must not be empty"));
    }
    let ca_file = Some(PathBuf::from(k.ca_file)).filter(|_| !k.ca_file.is_empty());
    let tls = match scheme {
        Scheme::Https => Some(tls.client_config(ca_file.as_deref(), &format!("{key}.ca_file"))?),
        Scheme::Http => {
            if ca_file.is_some() {
                warnings.push(format!("{key}.ca_file is ignored: the endpoint is http"));
            }
            None
        }
    };
    if k.credentials.is_none() && k.refresh.is_none() && k.backend == Backend::S3 {
        warnings.push(format!(
            "origin '{}' has no credentials: requests to it are sent unsigned",
            k.name
        ));
    }
    Ok(OriginConfig {
        name: k.name.to_owned(),
        endpoint: k.endpoint.trim().to_owned(),
        scheme,
        host,
        port,
        region: k.region.trim().to_owned(),
        credentials: k.credentials,
        refresh: k.refresh,
        ca_file,
        tls,
        connect_timeout: timeout("origin.connect_timeout", &base.connect_timeout)?,
        response_timeout: timeout("origin.response_timeout", &base.response_timeout)?,
        pool_idle_timeout: duration("origin.pool_idle_timeout", &base.pool_idle_timeout)?,
        pool_max_idle: base.pool_max_idle,
        backend: k.backend,
    })
}

fn default_origin(
    raw: &RawOrigin,
    env: &EnvVars,
    tls: &mut TlsBuilder,
    warnings: &mut Vec<String>,
) -> Result<OriginConfig, StartupError> {
    let refresh = super::credentials::default_source(raw)?;
    let credentials = match refresh {
        Some(_) => None,
        None => default_credentials(raw, env)?,
    };
    let keys = OriginKeys {
        key: "origin",
        name: DEFAULT_ORIGIN,
        endpoint: &raw.endpoint,
        region: &raw.region,
        credentials,
        refresh,
        ca_file: &raw.ca_file,
        backend: Backend::S3,
    };
    origin(keys, raw, tls, warnings)
}

fn check_bucket_name(key: &str, name: &str) -> Result<(), StartupError> {
    if name.is_empty() {
        return Err(invalid(key, "must not be empty"));
    }
    if name.len() > 255 || name.contains('/') || name.chars().any(char::is_whitespace) {
        return Err(invalid(
            key,
            format_args!("'{name}' is not a valid bucket name"),
        ));
    }
    Ok(())
}

fn bucket(
    key: &str,
    b: &RawBucket,
    base: &RawOrigin,
    default: &OriginConfig,
    env: &EnvVars,
    tls: &mut TlsBuilder,
    warnings: &mut Vec<String>,
) -> Result<BucketConfig, StartupError> {
    match super::backend::kind(key, b)? {
        Kind::Azure => return super::backend::azure_bucket(key, b, base, env, tls, warnings),
        Kind::Gcs => return super::backend::gcs_bucket(key, b, base, tls, warnings),
        Kind::S3 => {}
    }
    let origin_bucket = b.origin_bucket.clone().unwrap_or_else(|| b.name.clone());
    check_bucket_name(&format!("{key}.origin_bucket"), &origin_bucket)?;
    let overrides_origin = b.endpoint.is_some()
        || b.region.is_some()
        || b.access_key_id.is_some()
        || b.secret_access_key.is_some()
        || b.session_token.is_some()
        || b.ca_file.is_some()
        || b.credentials.is_some()
        || b.oidc.is_some();
    if !overrides_origin {
        return Ok(BucketConfig {
            name: b.name.clone(),
            origin_bucket,
            origin: None,
            backend: b.backend.clone(),
            azure: None,
        });
    }
    let (credentials, refresh) = match super::credentials::bucket_source(key, b, base)? {
        BucketSource::Refreshed(r) => (None, Some(r)),
        BucketSource::Inherit => (default.credentials.clone(), default.refresh.clone()),
        BucketSource::Static => (static_bucket_credentials(key, b, default)?, None),
    };
    let keys = OriginKeys {
        key,
        name: &b.name,
        endpoint: b.endpoint.as_deref().unwrap_or(&default.endpoint),
        region: b.region.as_deref().unwrap_or(&default.region),
        credentials,
        refresh,
        ca_file: b.ca_file.as_deref().unwrap_or(&base.ca_file),
        backend: Backend::S3,
    };
    Ok(BucketConfig {
        name: b.name.clone(),
        origin_bucket,
        origin: Some(origin(keys, base, tls, warnings)?),
        backend: b.backend.clone(),
        azure: None,
    })
}

/// A bucket's own static keys, or the default origin's.
fn static_bucket_credentials(
    key: &str,
    b: &RawBucket,
    default: &OriginConfig,
) -> Result<Option<Credentials>, StartupError> {
    Ok(match (&b.access_key_id, &b.secret_access_key) {
        (None, None) if b.session_token.is_some() => {
            return Err(invalid(
                &format!("{key}.session_token"),
                "is set but access_key_id and secret_access_key are not",
            ))
        }
        (None, None) => default.credentials.clone(),
        (Some(ak), Some(sk)) => {
            credentials(key, ak, sk, b.session_token.as_deref().unwrap_or_default())?
        }
        (Some(_), None) => {
            return Err(invalid(
                &format!("{key}.secret_access_key"),
                "must be set together with access_key_id",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                &format!("{key}.access_key_id"),
                "must be set together with secret_access_key",
            ))
        }
    })
}
