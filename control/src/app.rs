//! Startup, the control loop (signals and address refresh) and shutdown.
//!
//! The data plane gets the cores; the control plane runs on a one-thread Tokio runtime (plus
//! its blocking pool for file reads and the final drain).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::access_log::AccessLog;
use rangecache_dataplane::auth::AuthMode;
use rangecache_dataplane::cache::{Cache, DiskTier};
use rangecache_dataplane::{DataPlane, DataPlaneConfig, Metrics, StartError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::admin::{self, AdminState};
use crate::cli::Cli;
use crate::config::units::{format_duration, format_size};
use crate::config::{self, tls::io_text, Settings, Sources};
use crate::error::{Phase, StartupError};
use crate::fleet::Fleet;
use crate::limits;
use crate::resolve;
use crate::service::{self, Service};
use crate::signals::{Signal, Signals};
use crate::snapshot_build::Publisher;
use crate::sts::Sts;

/// Listen backlog of each worker's listener.
const BACKLOG: i32 = 1024;

/// Time the admin server gets to stop before the drain starts regardless.
const ADMIN_STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Run rangecache until SIGTERM/SIGINT (or until `--check` has printed the configuration).
pub fn run(cli: Cli) -> Result<(), StartupError> {
    let sources = cli.sources();
    let loaded = config::layers::load(&sources, &config::process_env())?;
    for w in &loaded.settings.warnings {
        warn!("{w}");
    }
    if cli.check {
        print!(
            "{}",
            config::provenance::render(&loaded.settings, &loaded.raw, &loaded.provenance)
        );
        return Ok(());
    }
    let settings = loaded.settings;

    let nofile = limits::raise_nofile()
        .inspect_err(|e| warn!("cannot raise the open file limit: {e}"))
        .ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(4)
        .thread_name("rangecache-control")
        .enable_all()
        .build()
        .map_err(|e| runtime_error("cannot build the Tokio runtime", e))?;
    let signals = {
        let _entered = runtime.enter();
        Signals::install().map_err(|e| runtime_error("cannot install signal handlers", e))?
    };
    let addrs = runtime.block_on(resolve::resolve_all(&settings))?;
    let admin_listener = runtime.block_on(admin::bind(settings.server.admin_listen))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| StartupError::new(Phase::BindAdmin, io_text(&e)).with_cause(e))?;

    let access_log = match &settings.log.access {
        Some(target) => Some(AccessLog::start(target.clone()).map_err(|e| {
            let detail = format!("log.access {}: {}", settings.log.access_text(), io_text(&e));
            StartupError::new(Phase::OpenAccessLog, detail).with_cause(e)
        })?),
        None => None,
    };
    let disk = match settings.cache.disk_config() {
        Some(config) => Some(
            DiskTier::open(&config)
                .map_err(|e| StartupError::new(Phase::OpenDiskCache, io_text(&e)).with_cause(e))?,
        ),
        None => None,
    };
    let workers = settings.server.worker_count();
    let dp_config = DataPlaneConfig {
        listen: settings.server.listen,
        workers,
        driver: settings.server.io_driver,
        pin_cores: settings.server.pin_cores,
        backlog: BACKLOG,
        cache: settings.cache.to_dataplane(),
        disk,
        max_connections: limits::max_connections(settings.server.max_connections, nofile),
        access_log: access_log.as_ref().map(AccessLog::sink),
    };
    limits::log_max_connections(&dp_config);
    let mut publisher = Publisher::new(settings, addrs);
    let fleet = Arc::new(Fleet::new(
        runtime.handle().clone(),
        publisher.settings_handle(),
        admin_addr,
    ));
    runtime.block_on(fleet.refresh());
    publisher.install_fleet(fleet.clone());
    let metrics = Arc::new(Metrics::new(workers));
    let dataplane = DataPlane::start(dp_config.clone(), publisher.shared(), metrics.clone())
        .map_err(|e| start_error(&dp_config, e))?;
    let drivers = dataplane.drivers();
    info!(
        "rangecache listening on {} ({workers} workers: drivers [{}])",
        dataplane.local_addr(),
        drivers.join(", ")
    );
    log_cache(dataplane.cache());
    log_auth(&publisher.settings());
    info!("admin endpoint on http://{admin_addr}");
    service::log_handover_support();

    let state = Arc::new(AdminState {
        sts: Sts::new(publisher.settings_handle(), publisher.shared()),
        snapshot: publisher.shared(),
        settings: publisher.settings_handle(),
        metrics,
        cache: dataplane.cache().clone(),
        drivers,
        serving: AtomicBool::new(true),
        reloads_ok: AtomicU64::new(0),
        reloads_failed: AtomicU64::new(0),
        fleet,
        unauthorized: AtomicU64::new(0),
    });
    let mut service = Service::new(cli.pid_file.clone());
    service.ready(&format!("serving on {}", dataplane.local_addr()));
    let control = Control {
        sources,
        publisher,
        state,
        signals,
        service,
        access_log,
    };
    runtime.block_on(control.run(admin_listener, dataplane));
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// How long shutdown waits for blocks queued for the disk tier (at most 64 MiB by default:
/// well under a second on local storage).
const DISK_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

fn log_cache(cache: &Cache) {
    let c = cache.config();
    if cache.enabled() {
        info!(
            "block cache: {} in {} blocks; object metadata trusted for {}",
            format_size(c.memory),
            format_size(c.block_size),
            format_duration(c.metadata_ttl)
        );
    } else {
        info!("block cache off (cache.memory = 0): GET and HEAD go to the origin");
    }
    if let Some(disk) = &cache.disk {
        let s = disk.stats();
        info!(
            "disk cache: {} of {} held in {} blocks ({} I/O); index rebuilt in {:.3}s",
            format_size(s.bytes),
            format_size(s.capacity),
            s.blocks,
            match s.mode {
                rangecache_dataplane::cache::disk::IoMode::Direct => "O_DIRECT",
                rangecache_dataplane::cache::disk::IoMode::Buffered => "buffered",
            },
            s.recovery_seconds
        );
    }
}

/// The client-auth summary; `auth.mode = "none"` is already among the warnings. Then who may
/// use the admin endpoint.
fn log_auth(settings: &Settings) {
    if settings.auth.mode == AuthMode::SigV4 {
        info!("client auth: {}", settings.auth.summary());
    }
    let admin = &settings.admin;
    match &admin.token_file {
        Some(file) => {
            info!(
            "admin endpoint: bearer token from {} required for all but /healthz, /readyz{} and STS",
            file.display(),
            if admin.protect_metrics { "" } else { ", /metrics" }
        )
        }
        None => info!(
            "admin endpoint: no admin.token_file, so whoever reaches {} may purge the cache and \
             read the configuration",
            settings.server.admin_listen
        ),
    }
}

fn runtime_error(what: &str, e: std::io::Error) -> StartupError {
    StartupError::new(Phase::Runtime, format!("{what}: {}", io_text(&e))).with_cause(e)
}

/// A data-plane start failure in the `[phase] ...` form: the listen address for a bind
/// failure (what the operator has to change), the worker otherwise.
fn start_error(config: &DataPlaneConfig, e: StartError) -> StartupError {
    let cause = io_text(&e.cause);
    let detail = if e.phase == "bind_listener" {
        format!("{}: {cause}", config.listen)
    } else {
        format!("worker {}: {cause}", e.worker)
    };
    StartupError::new(Phase::DataPlane(e.phase), detail).with_cause(e)
}

/// The running control plane.
struct Control {
    sources: Sources,
    publisher: Publisher,
    state: Arc<AdminState>,
    signals: Signals,
    service: Service,
    access_log: Option<AccessLog>,
}

impl Control {
    async fn run(mut self, admin_listener: TcpListener, dataplane: DataPlane) {
        let (stop_admin, stop_rx) = watch::channel(false);
        let admin = tokio::spawn(admin::serve(admin_listener, self.state.clone(), stop_rx));
        let mut next_refresh = self.next_refresh();
        loop {
            tokio::select! {
                signal = self.signals.recv() => match signal {
                    Signal::Hangup => {
                        if let Some(log) = &self.access_log {
                            log.reopen();
                        }
                        self.service.reloading();
                        self.reload().await;
                        self.service.reloaded(&format!(
                            "serving, configuration generation {}",
                            self.publisher.generation()
                        ));
                        next_refresh = self.next_refresh();
                    }
                    Signal::Terminate | Signal::Interrupt => {
                        info!("{signal} received: shutting down");
                        break;
                    }
                },
                _ = sleep_until(next_refresh) => {
                    self.refresh_addresses().await;
                    next_refresh = self.next_refresh();
                }
            }
        }

        self.service.stopping();
        self.state.serving.store(false, Relaxed);
        let _ = stop_admin.send(true);
        if tokio::time::timeout(ADMIN_STOP_TIMEOUT, admin)
            .await
            .is_err()
        {
            warn!("admin server did not stop in time");
        }
        let drain = self.publisher.settings().server.drain_timeout;
        info!("draining in-flight requests for up to {drain:?}");
        let mut drained = tokio::task::spawn_blocking(move || dataplane.shutdown(drain));
        tokio::select! {
            result = &mut drained => match result {
                Ok(()) => info!("data plane stopped"),
                Err(e) => error!("data plane shutdown failed: {e}"),
            },
            signal = self.signals.recv() => {
                warn!("{signal} received while draining: exiting now");
                return;
            }
        }
        if let Some(log) = self.access_log.take() {
            // The workers stopped and handed over their last lines: write them out.
            let _ = tokio::task::spawn_blocking(move || log.close()).await;
        }
        if let Some(disk) = self.state.cache.disk.clone() {
            // Blocks still queued for the disk tier are written, so the next start finds them.
            let queued = disk.queued();
            let flushed = tokio::task::spawn_blocking(move || disk.flush(DISK_FLUSH_TIMEOUT)).await;
            match flushed {
                Ok(true) => info!("disk cache: {queued} queued blocks written"),
                _ => warn!("disk cache: queued blocks not written within {DISK_FLUSH_TIMEOUT:?}"),
            }
        }
    }

    /// When to re-resolve origin addresses next; `None` when refreshing is off.
    fn next_refresh(&self) -> Option<Instant> {
        let every = self.publisher.settings().resolve_interval;
        (!every.is_zero()).then(|| Instant::now() + every)
    }

    /// SIGHUP: load, validate and resolve again; publish on success, keep the old otherwise.
    async fn reload(&mut self) {
        let file = match &self.publisher.settings().source {
            Some(path) => format!("--config {}", path.display()),
            None => "no --config file".to_owned(),
        };
        info!(
            "SIGHUP received: reloading configuration ({}, {file})",
            self.sources.config_dir
        );
        let sources = self.sources.clone();
        let loaded =
            tokio::task::spawn_blocking(move || config::load(&sources, &config::process_env()))
                .await;
        let result = match loaded {
            Ok(Ok(settings)) => self.publish(settings).await,
            Ok(Err(e)) => Err(e),
            Err(e) => Err(StartupError::new(
                Phase::LoadConfig,
                format!("reload task failed: {e}"),
            )),
        };
        match result {
            Ok(generation) => {
                self.state.reloads_ok.fetch_add(1, Relaxed);
                info!("configuration reloaded: generation {generation}");
                log_auth(&self.publisher.settings());
                self.state.fleet.refresh().await;
            }
            Err(e) => {
                self.state.reloads_failed.fetch_add(1, Relaxed);
                error!(
                    "configuration reload failed, keeping generation {}: {e}",
                    self.publisher.generation()
                );
            }
        }
    }

    async fn publish(&mut self, mut settings: Settings) -> Result<u64, StartupError> {
        let running = self.publisher.settings();
        for w in &settings.warnings {
            warn!("{w}");
        }
        for key in settings.keep_restart_only(&running) {
            warn!("{key} changed: it takes effect only after a restart; ignored");
        }
        let addrs = resolve::resolve_all(&settings).await?;
        Ok(self.publisher.replace(settings, addrs))
    }

    async fn refresh_addresses(&mut self) {
        let settings = self.publisher.settings();
        let (addrs, failures) = resolve::refresh(&settings, self.publisher.addrs()).await;
        for f in failures {
            warn!("{f}");
        }
        if let Some(generation) = self.publisher.update_addrs(addrs) {
            info!("origin addresses changed: published generation {generation}");
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
