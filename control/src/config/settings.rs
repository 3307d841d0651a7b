//! The validated, typed configuration that the rest of the control plane reads, and its
//! redacted "effective config" view (`--check`, `GET /config`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::access_log::AccessLogTarget;
use rangecache_dataplane::cache::{CacheConfig, DiskConfig, PrefetchConfig};
use rangecache_dataplane::{Backend, Credentials, IoDriver, Scheme, ServerSettings};

use super::auth::AuthSettings;
use super::backend::RawAzure;
use super::fleet::{AdminSettings, FleetSettings};
use super::raw::{
    RawBucket, RawCache, RawConfig, RawDisk, RawLog, RawOrigin, RawPrefetch, RawServer,
};
use super::server_tls::ServerTlsConfig;
use super::units::{format_duration, format_size};
use crate::credentials::RefreshedCredentials;

/// What replaces a secret in every view of the configuration.
pub const REDACTED: &str = "<redacted>";

/// An accepted configuration: every value parsed, every cross-check done.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The file it was loaded from, if any (SIGHUP reloads it).
    pub source: Option<PathBuf>,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[origin]`: the origin of every bucket without its own.
    pub origin: OriginConfig,
    /// How often origin host names are re-resolved; zero = never.
    pub resolve_interval: Duration,
    /// `[cache]`.
    pub cache: CacheSettings,
    /// `[[bucket]]` overrides, in file order.
    pub buckets: Vec<BucketConfig>,
    /// `[auth]`.
    pub auth: AuthSettings,
    /// `[log]`.
    pub log: LogSettings,
    /// `[admin]`.
    pub admin: AdminSettings,
    /// `[fleet]`.
    pub fleet: FleetSettings,
    /// `[proxy]`.
    pub proxy: super::edge::ProxySettings,
    /// `[[cors]]`.
    pub cors: super::edge::CorsSettings,
    /// Non-fatal findings (no credentials, ignored keys, ...) for the caller to log.
    pub warnings: Vec<String>,
}

/// `[server]`, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Client-facing listen address.
    pub listen: std::net::SocketAddr,
    /// Admin listen address.
    pub admin_listen: std::net::SocketAddr,
    /// Worker threads as configured; 0 = one per available core (see [`Self::worker_count`]).
    pub workers: usize,
    /// Base domain for virtual-hosted-style requests, lower-case, without a trailing dot.
    pub domain: Option<String>,
    /// io driver choice.
    pub io_driver: IoDriver,
    /// Pin workers to cores.
    pub pin_cores: bool,
    /// Largest request head, bytes.
    pub max_head_size: usize,
    /// Most header fields per request.
    pub max_headers: usize,
    /// Longest request target, bytes.
    pub max_uri_length: usize,
    /// Time to receive a whole request head.
    pub header_read_timeout: Duration,
    /// Keep-alive idle time.
    pub idle_timeout: Duration,
    /// Time for one body read or write to make progress.
    pub body_timeout: Duration,
    /// Time a client may take no response bytes before it is disconnected.
    pub send_timeout: Duration,
    /// Time in-flight requests get on shutdown.
    pub drain_timeout: Duration,
    /// `[server.tls]`: TLS on the client listener; `None` = plain HTTP.
    pub tls: Option<ServerTlsConfig>,
    /// `server.tls.handshake_timeout` (kept when TLS is off, for the effective view).
    pub tls_handshake_timeout: Duration,
    /// Most client connections open at once (process-wide); 0 = derived from the file
    /// descriptor limit at startup.
    pub max_connections: usize,
}

/// `[log]`, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Where access-log lines go; `None` = off.
    pub access: Option<AccessLogTarget>,
}

impl LogSettings {
    /// The `log.access` value as written in a file.
    pub fn access_text(&self) -> String {
        match &self.access {
            None => "off".into(),
            Some(AccessLogTarget::Stdout) => "stdout".into(),
            Some(AccessLogTarget::File(p)) => p.display().to_string(),
        }
    }
}

impl ServerConfig {
    /// The number of workers to start: `workers`, or one per core this process may use.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        }
    }

    /// The data plane's view of these settings.
    pub fn to_dataplane(&self) -> ServerSettings {
        ServerSettings {
            domain: self.domain.clone(),
            max_head_bytes: self.max_head_size,
            max_headers: self.max_headers,
            max_uri_bytes: self.max_uri_length,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            body_timeout: self.body_timeout,
            send_timeout: self.send_timeout,
            tls: self.tls.as_ref().map(ServerTlsConfig::to_dataplane),
        }
    }
}

/// `[cache]`, typed. Fixed for the life of the process: the cache is built once at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Byte budget for blocks; 0 = caching off.
    pub memory: u64,
    /// Block size: a power of two from 64KiB to 64MiB.
    pub block_size: u64,
    /// How long object metadata is trusted; zero = not kept (every GET and HEAD asks the
    /// origin).
    pub metadata_ttl: Duration,
    /// Most objects whose metadata is kept (at least 1).
    pub metadata_entries: usize,
    /// Bytes one response may hold claimed ahead of its client (at least one block).
    pub readahead_window: u64,
    /// Budget for bytes of fills in flight, process-wide (at least the window).
    pub inflight_memory: u64,
    /// Map the block memory at startup, in the background.
    pub pretouch: bool,
    /// `[prefetch]`, validated.
    pub prefetch: PrefetchConfig,
    /// `[cache.disk]`, when the disk tier is on.
    pub disk: Option<DiskSettings>,
}

/// `[cache.disk]`, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSettings {
    /// Directory holding the tier's file.
    pub path: PathBuf,
    /// Bytes the file may take.
    pub size: u64,
}

impl CacheSettings {
    /// The disk tier's configuration, when it is on.
    pub fn disk_config(&self) -> Option<DiskConfig> {
        let d = self.disk.as_ref()?;
        Some(DiskConfig {
            ram_blocks: (self.memory / self.block_size.max(1)) as usize,
            ..DiskConfig::new(&d.path, d.size, self.block_size)
        })
    }

    /// The data plane's view of these settings.
    pub fn to_dataplane(&self) -> CacheConfig {
        CacheConfig {
            memory: self.memory,
            block_size: self.block_size,
            metadata_ttl: self.metadata_ttl,
            metadata_entries: self.metadata_entries,
            readahead_window: self.readahead_window,
            inflight_memory: self.inflight_memory,
            pretouch: self.pretouch,
            prefetch: self.prefetch,
        }
    }

    /// `[prefetch]` in file form.
    fn prefetch_view(&self) -> RawPrefetch {
        RawPrefetch {
            enabled: self.prefetch.enabled,
            max_window: format_size(self.prefetch.max_window),
            parquet: self.prefetch.parquet,
        }
    }

    /// These settings in file form.
    fn view(&self) -> RawCache {
        RawCache {
            disk: self
                .disk
                .as_ref()
                .map_or_else(RawDisk::default, |d| RawDisk {
                    path: Some(d.path.display().to_string()),
                    size: format_size(d.size),
                }),
            memory: format_size(self.memory),
            block_size: format_size(self.block_size),
            metadata_ttl: format_duration(self.metadata_ttl),
            metadata_entries: self.metadata_entries,
            readahead_window: format_size(self.readahead_window),
            inflight_memory: format_size(self.inflight_memory),
            pretouch: self.pretouch,
        }
    }
}

/// One origin, typed: `[origin]`, or a bucket override merged over it.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    /// `default`, or the overriding bucket's name.
    pub name: String,
    /// The endpoint as configured.
    pub endpoint: String,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or address literal (IPv6 without brackets).
    pub host: String,
    /// TCP port (80/443 when not given).
    pub port: u16,
    /// SigV4 region.
    pub region: String,
    /// Static credentials after the `AWS_*` fallback; `None` = unsigned or refreshed.
    pub credentials: Option<Credentials>,
    /// `credentials = "chain"` or `"oidc"`: the source and the cell its refresher fills.
    pub refresh: Option<RefreshedCredentials>,
    /// The CA bundle used, if not the system store.
    pub ca_file: Option<PathBuf>,
    /// TLS client configuration for https.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Request sent to response head received.
    pub response_timeout: Duration,
    /// Idle pooled connection lifetime.
    pub pool_idle_timeout: Duration,
    /// Most idle pooled connections per worker.
    pub pool_max_idle: usize,
    /// The API the origin speaks.
    pub backend: Backend,
}

impl OriginConfig {
    /// This origin in file form with secrets redacted (`resolve_interval` left empty: it is
    /// global, not per origin).
    fn view(&self) -> RawOrigin {
        let creds = self.credentials.as_ref();
        let (credentials, oidc) = super::credentials::view(self);
        RawOrigin {
            credentials,
            oidc,
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            access_key_id: creds.map(|c| c.access_key_id.clone()).unwrap_or_default(),
            secret_access_key: creds.map(|_| REDACTED.to_owned()).unwrap_or_default(),
            session_token: creds
                .and_then(|c| c.session_token.as_ref())
                .map(|_| REDACTED.to_owned())
                .unwrap_or_default(),
            ca_file: self
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            connect_timeout: format_duration(self.connect_timeout),
            response_timeout: format_duration(self.response_timeout),
            pool_idle_timeout: format_duration(self.pool_idle_timeout),
            pool_max_idle: self.pool_max_idle,
            resolve_interval: String::new(),
        }
    }
}

/// One `[[bucket]]`, typed.
#[derive(Debug, Clone)]
pub struct BucketConfig {
    /// The name clients use.
    pub name: String,
    /// The name at the origin.
    pub origin_bucket: String,
    /// Its own origin when any origin key was overridden; `None` = the default origin.
    pub origin: Option<OriginConfig>,
    /// `backend` as written (for the effective view).
    pub backend: Option<String>,
    /// `[bucket.azure]` as written: names files and variables, holds no secret.
    pub azure: Option<RawAzure>,
}

impl Settings {
    /// Every origin in use: the default first, then bucket overrides in file order.
    pub fn origins(&self) -> impl Iterator<Item = &OriginConfig> {
        std::iter::once(&self.origin).chain(self.buckets.iter().filter_map(|b| b.origin.as_ref()))
    }

    /// The effective configuration in file form with secrets replaced by `<redacted>`.
    /// It parses back as a configuration file.
    pub fn effective(&self) -> RawConfig {
        let s = &self.server;
        let server = RawServer {
            listen: s.listen.to_string(),
            admin_listen: s.admin_listen.to_string(),
            workers: s.workers,
            domain: s.domain.clone().unwrap_or_default(),
            io_driver: io_driver_name(s.io_driver).to_owned(),
            pin_cores: s.pin_cores,
            max_head_size: format_size(s.max_head_size as u64),
            max_headers: s.max_headers,
            max_uri_length: format_size(s.max_uri_length as u64),
            header_read_timeout: format_duration(s.header_read_timeout),
            idle_timeout: format_duration(s.idle_timeout),
            body_timeout: format_duration(s.body_timeout),
            send_timeout: format_duration(s.send_timeout),
            drain_timeout: format_duration(s.drain_timeout),
            max_connections: s.max_connections,
            tls: ServerTlsConfig::view(s.tls.as_ref(), format_duration(s.tls_handshake_timeout)),
        };
        let mut origin = self.origin.view();
        origin.resolve_interval = format_duration(self.resolve_interval);
        let buckets = self
            .buckets
            .iter()
            .map(|b| {
                let mut raw = RawBucket {
                    name: b.name.clone(),
                    origin_bucket: Some(b.origin_bucket.clone()),
                    ..RawBucket::default()
                };
                raw.backend.clone_from(&b.backend);
                raw.azure.clone_from(&b.azure);
                if let (Some(o), None) = (&b.origin, &b.azure) {
                    let v = o.view();
                    raw.endpoint = Some(v.endpoint);
                    raw.region = Some(v.region);
                    raw.access_key_id = Some(v.access_key_id);
                    raw.secret_access_key = Some(v.secret_access_key);
                    raw.session_token = Some(v.session_token).filter(|t| !t.is_empty());
                    raw.ca_file = Some(v.ca_file).filter(|f| !f.is_empty());
                    raw.credentials = Some(v.credentials);
                    raw.oidc = Some(v.oidc).filter(|o| !o.is_unset());
                }
                raw
            })
            .collect();
        RawConfig {
            server,
            origin,
            cache: self.cache.view(),
            prefetch: self.cache.prefetch_view(),
            auth: self.auth.view(),
            log: RawLog {
                access: self.log.access_text(),
            },
            admin: self.admin.view(),
            fleet: self.fleet.view(),
            buckets,
            proxy: self.proxy.view(),
            cors: self.cors.view(),
        }
    }

    /// Keep the values that only take effect at startup from `running`, and name each one
    /// that this (reloaded) configuration wanted to change.
    pub fn keep_restart_only(&mut self, running: &Settings) -> Vec<&'static str> {
        let mut changed = Vec::new();
        macro_rules! keep {
            ($section:ident: $($field:ident),*) => {$(
                if self.$section.$field != running.$section.$field {
                    changed.push(concat!(stringify!($section), ".", stringify!($field)));
                    self.$section.$field = running.$section.$field.clone();
                }
            )*};
        }
        keep!(server: listen, admin_listen, workers, io_driver, pin_cores, max_connections);
        keep!(log: access);
        // The listener's transport: a reload may rotate files, not switch TLS on or off.
        if self.server.tls.is_some() != running.server.tls.is_some() {
            changed.push("server.tls");
            self.server.tls.clone_from(&running.server.tls);
        }
        // The cache and its counters live as long as the data plane.
        keep!(cache: memory, block_size, metadata_ttl, metadata_entries, readahead_window, inflight_memory, pretouch, prefetch, disk);
        changed
    }
}

/// The config-file spelling of an io driver.
pub fn io_driver_name(d: IoDriver) -> &'static str {
    match d {
        IoDriver::Auto => "auto",
        IoDriver::IoUring => "io_uring",
        IoDriver::Epoll => "epoll",
    }
}
