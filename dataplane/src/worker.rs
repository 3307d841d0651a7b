//! Worker threads: one pinned monoio runtime and one SO_REUSEPORT listener per core.
//!
//! Each worker binds its own listener on the same address and the kernel spreads connections
//! across them; a connection lives and dies on the worker that accepted it.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use monoio::blocking::DefaultThreadPool;
use monoio::net::{ListenerOpts, TcpListener};
use monoio::{FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::access_log::AccessLogSink;
use crate::auth::KeyCache;
use crate::cache::{Cache, CacheConfig, DiskTier};
use crate::server::WorkerCtx;
use crate::{Metrics, SharedSnapshot};

mod accept;
mod affinity;

use accept::{worker_share, AcceptGate, Listening};

/// Which io driver the workers should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoDriver {
    /// io_uring when the kernel allows it, epoll otherwise (also honours
    /// `MONOIO_FORCE_LEGACY_DRIVER=1`).
    #[default]
    Auto,
    /// io_uring only; starting fails if it is unavailable.
    IoUring,
    /// epoll only.
    Epoll,
}

/// How to start the data plane.
#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// Client-facing listen address; every worker binds it with SO_REUSEPORT.
    pub listen: SocketAddr,
    /// Number of worker threads (at least 1).
    pub workers: usize,
    /// io driver choice.
    pub driver: IoDriver,
    /// Pin worker `i` to the `i`-th CPU this process may run on (modulo their count).
    pub pin_cores: bool,
    /// Listen backlog.
    pub backlog: i32,
    /// Block cache sizing (`memory = 0` turns it off).
    pub cache: CacheConfig,
    /// The disk tier under the block cache, opened by the caller (`None`: RAM only).
    pub disk: Option<Arc<DiskTier>>,
    /// Most client connections open at once, process-wide, split evenly across workers
    /// (0 = no limit).
    pub max_connections: usize,
    /// Where workers send access-log lines; `None` = no access log.
    pub access_log: Option<AccessLogSink>,
}

/// A data-plane startup failure, naming its phase (`bind_listener`, `start_worker`, ...).
#[derive(Debug)]
pub struct StartError {
    /// The startup phase that failed.
    pub phase: &'static str,
    /// The worker that failed.
    pub worker: usize,
    /// The underlying cause.
    pub cause: std::io::Error,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] worker {}: {}", self.phase, self.worker, self.cause)
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

struct Worker {
    thread: JoinHandle<()>,
    listening: Arc<Listening>,
    stop: oneshot::Sender<Duration>,
    driver: &'static str,
}

/// The running data plane.
pub struct DataPlane {
    workers: Vec<Worker>,
    addr: SocketAddr,
    cache: Arc<Cache>,
    keys: Arc<KeyCache>,
}

/// What a worker reports once its listener is bound (or binding failed).
type Ready = Result<(SocketAddr, &'static str), StartError>;

impl DataPlane {
    /// Start `config.workers` worker threads; returns once every worker listens (or the first
    /// failure, after stopping the workers already started). Workers read `snapshot` per
    /// request and write into `metrics.worker(i)`, so `metrics` must have a block per worker.
    pub fn start(
        config: DataPlaneConfig,
        snapshot: SharedSnapshot,
        metrics: Arc<Metrics>,
    ) -> Result<DataPlane, StartError> {
        assert!(
            metrics.len() >= config.workers,
            "one metrics block per worker"
        );
        let cpus = if config.pin_cores {
            affinity::allowed_cpus()
        } else {
            Vec::new()
        };
        let mut plane = DataPlane {
            workers: Vec::with_capacity(config.workers),
            addr: config.listen,
            cache: Arc::new(Cache::with_disk(config.cache, config.disk.clone())),
            keys: Arc::new(KeyCache::default()),
        };
        // Threads for the disk tier's reads of workers on the epoll driver (shared by all).
        let blocking = DefaultThreadPool::new(BLOCKING_THREADS);
        for i in 0..config.workers.max(1) {
            let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
            let (stop_tx, stop_rx) = oneshot::channel::<Duration>();
            let listening = Listening::new();
            let spec = WorkerSpec {
                id: i,
                // Worker 0 may bind port 0; the others bind the port it got.
                addr: plane.addr,
                backlog: config.backlog,
                driver: config.driver,
                cpu: (!cpus.is_empty()).then(|| cpus[i % cpus.len()]),
                snapshot: snapshot.clone(),
                metrics: metrics.clone(),
                cache: plane.cache.clone(),
                keys: plane.keys.clone(),
                max_connections: worker_share(config.max_connections, config.workers.max(1), i),
                access_log: config.access_log.clone(),
                listening: listening.clone(),
                blocking: blocking.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("rangecache-w{i}"))
                .spawn(move || run_worker(spec, ready_tx, stop_rx))
                .map_err(|cause| StartError {
                    phase: "start_worker",
                    worker: i,
                    cause,
                })?;
            let ready = ready_rx.recv().unwrap_or_else(|_| {
                Err(StartError {
                    phase: "start_worker",
                    worker: i,
                    cause: std::io::Error::other("worker thread exited during startup"),
                })
            });
            match ready {
                Ok((addr, driver)) => {
                    plane.addr = addr;
                    plane.workers.push(Worker {
                        thread,
                        listening,
                        stop: stop_tx,
                        driver,
                    });
                }
                Err(e) => {
                    let _ = thread.join();
                    plane.shutdown(Duration::ZERO);
                    return Err(e);
                }
            }
        }
        Ok(plane)
    }

    /// The address the workers listen on (the real port when 0 was configured).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The block cache all workers share (for purge and stats from the control plane).
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// The io driver each worker got, in worker order (`"io_uring"` or `"epoll"`).
    pub fn drivers(&self) -> Vec<&'static str> {
        self.workers.iter().map(|w| w.driver).collect()
    }

    /// Stop accepting, let in-flight requests finish for up to `drain`, then stop every worker.
    /// Blocks until all worker threads have exited.
    pub fn shutdown(self, drain: Duration) {
        let mut threads = Vec::with_capacity(self.workers.len());
        // Every listener stops before any worker drains: no connection is accepted late.
        for w in &self.workers {
            w.listening.stop();
        }
        for w in self.workers {
            let _ = w.stop.send(drain);
            threads.push(w.thread);
        }
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Everything a worker thread is started with.
struct WorkerSpec {
    id: usize,
    addr: SocketAddr,
    backlog: i32,
    driver: IoDriver,
    cpu: Option<usize>,
    snapshot: SharedSnapshot,
    metrics: Arc<Metrics>,
    cache: Arc<Cache>,
    keys: Arc<KeyCache>,
    max_connections: usize,
    access_log: Option<AccessLogSink>,
    listening: Arc<Listening>,
    /// The blocking pool attached to epoll runtimes (see [`BLOCKING_THREADS`]).
    blocking: DefaultThreadPool,
}

/// Threads that read the disk tier for workers on the epoll driver, where a file read would
/// otherwise be a `pread` on the worker, stalling its connections for the length of the read
/// (io_uring is often refused inside containers, so the epoll driver is not only for old
/// kernels). Idle unless a disk tier is read on that driver.
const BLOCKING_THREADS: usize = 8;

fn run_worker(spec: WorkerSpec, ready: mpsc::Sender<Ready>, stop: oneshot::Receiver<Duration>) {
    let id = spec.id;
    if let Some(cpu) = spec.cpu {
        if let Err(e) = affinity::pin_current_thread(cpu) {
            tracing::warn!(worker = id, cpu, error = %e, "could not pin worker to its core");
        }
    }
    let runtime_error = |cause: std::io::Error| {
        let _ = ready.send(Err(StartError {
            phase: "start_runtime",
            worker: id,
            cause,
        }));
    };
    // monoio rings are sized in entries; 1024 leaves room for many connections per worker.
    const ENTRIES: u32 = 1024;
    match spec.driver {
        IoDriver::Auto => match RuntimeBuilder::<monoio::FusionDriver>::new()
            .with_entries(ENTRIES)
            .enable_timer()
            .attach_thread_pool(Box::new(spec.blocking.clone()))
            .build()
        {
            Ok(FusionRuntime::Uring(mut rt)) => {
                rt.block_on(worker_main(spec, "io_uring", ready.clone(), stop))
            }
            Ok(FusionRuntime::Legacy(mut rt)) => {
                rt.block_on(worker_main(spec, "epoll", ready.clone(), stop))
            }
            Err(e) => runtime_error(e),
        },
        IoDriver::IoUring => match RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(ENTRIES)
            .enable_timer()
            .build()
        {
            Ok(mut rt) => rt.block_on(worker_main(spec, "io_uring", ready.clone(), stop)),
            Err(e) => runtime_error(e),
        },
        IoDriver::Epoll => match RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .attach_thread_pool(Box::new(spec.blocking.clone()))
            .build()
        {
            Ok(mut rt) => rt.block_on(worker_main(spec, "epoll", ready.clone(), stop)),
            Err(e) => runtime_error(e),
        },
    }
}

async fn worker_main(
    spec: WorkerSpec,
    driver: &'static str,
    ready: mpsc::Sender<Ready>,
    mut stop: oneshot::Receiver<Duration>,
) {
    let opts = ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(spec.backlog);
    let listener = match TcpListener::bind_with_config(spec.addr, &opts) {
        Ok(l) => l,
        Err(cause) => {
            let _ = ready.send(Err(StartError {
                phase: "bind_listener",
                worker: spec.id,
                cause,
            }));
            return;
        }
    };
    let addr = listener.local_addr().unwrap_or(spec.addr);
    if driver == "epoll" {
        // The runtime has the blocking pool attached (`run_worker`).
        crate::cache::disk::read_on_blocking_pool();
    }
    tracing::info!(worker = spec.id, driver, cpu = ?spec.cpu, %addr, "worker listening");
    spec.listening.set(&listener);
    let _ = ready.send(Ok((addr, driver)));
    let ctx = WorkerCtx::new(
        spec.id,
        spec.snapshot,
        spec.metrics,
        spec.cache,
        spec.keys,
        spec.access_log,
    );
    let gate = AcceptGate::new(spec.id, spec.max_connections, spec.listening.clone());
    let drain = loop {
        monoio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => gate.admit(stream, peer, &ctx),
                Err(e) => gate.failed(e, ctx.metrics()).await,
            },
            drain = &mut stop => break drain.unwrap_or(Duration::ZERO),
        }
    };
    drop(listener);
    ctx.start_draining();
    let deadline = Instant::now() + drain;
    while ctx.inflight() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }
    tracing::info!(
        worker = spec.id,
        unfinished = ctx.inflight(),
        "worker stopped"
    );
}
