//! The S3 origin simulator: an S3 subset with S3's timing (first-byte latency, per-stream
//! bandwidth, injected failures), SigV4 verification and synthetic, verifiable content.
//!
//! It runs on one thread with a current-thread Tokio runtime so it takes as little CPU as
//! possible from the proxy and load generator it shares the machine with. Object bytes are
//! generated into one reusable buffer per connection and written from there.
//!
//! ```no_run
//! use rangecache_loadtest::sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::default(), "127.0.0.1:0".parse().unwrap()).unwrap();
//! println!("origin at http://{}", sim.addr());
//! sim.stop();
//! ```

pub mod auth;
pub mod model;
mod s3;
pub mod stats;
mod store;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::http1::BufConn;
use crate::rng::{Rng, GOLDEN};
pub use auth::{Credentials, Verifier};
pub use model::Model;
pub use stats::{Stats, StatsSnapshot};

/// Bytes generated and written per step of a GET body (also the pacing granularity).
const CHUNK: usize = 128 * 1024;

/// Everything the simulator is configured with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Timing and failure model.
    pub model: Model,
    /// The one identity whose signatures are accepted.
    pub credentials: Credentials,
    /// Serve unsigned requests too (for nginx, which cannot sign). Signed requests are still
    /// verified.
    pub allow_anonymous: bool,
    /// Seed of the per-connection random streams (latency draws, failures).
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            model: Model::default(),
            credentials: Credentials {
                access_key: "test".into(),
                secret_key: "test".into(),
                region: "us-east-1".into(),
            },
            allow_anonymous: false,
            seed: 1,
        }
    }
}

impl SimConfig {
    /// One line saying what the simulator models, for reports.
    pub fn describe(&self) -> String {
        let m = &self.model;
        format!(
            "simulator: first byte {:?} + exp(mean {:?}), {} per stream, {}% 503s, {}% resets, SigV4 verified{}",
            m.ttfb,
            m.ttfb_jitter,
            if m.stream_bandwidth == 0 {
                "unlimited".to_owned()
            } else {
                format!("{:.0} MB/s", m.stream_bandwidth as f64 / 1e6)
            },
            m.error_rate * 100.0,
            m.reset_rate * 100.0,
            if self.allow_anonymous {
                ", anonymous reads allowed (nginx)"
            } else {
                ""
            }
        )
    }
}

/// Shared state of a running simulator.
pub(crate) struct State {
    config: SimConfig,
    verifier: Verifier,
    stats: Arc<Stats>,
    store: store::Store,
    started: SystemTime,
    next_request_id: AtomicU64,
}

/// A simulator running on its own thread; stopped by [`Simulator::stop`] or on drop.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    stats: Arc<Stats>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Bind `listen` (port 0 picks a free port) and serve on a new thread.
    pub fn start(config: SimConfig, listen: SocketAddr) -> io::Result<Simulator> {
        let std_listener = std::net::TcpListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let stats = Arc::new(Stats::default());
        let state = Arc::new(State {
            verifier: Verifier::new(config.credentials.clone()),
            config,
            stats: stats.clone(),
            store: store::Store::default(),
            started: SystemTime::now(),
            next_request_id: AtomicU64::new(1),
        });
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("origin-sim".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("listener");
                    tokio::select! {
                        _ = serve(listener, state) => {}
                        _ = rx => {}
                    }
                });
            })?;
        Ok(Simulator {
            addr,
            stats,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Stop serving and join the thread (open connections are dropped).
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// Accept connections forever, one task each.
async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut conn_id: u64 = 0;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        conn_id += 1;
        state.stats.connections.fetch_add(1, Relaxed);
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let rng = Rng::new(state.config.seed ^ conn_id.wrapping_mul(GOLDEN));
        tokio::spawn(async move {
            let mut conn = BufConn::new(stream, 64 * 1024);
            let mut scratch = s3::ConnScratch {
                buf: vec![0; CHUNK],
                rng,
            };
            loop {
                let req = match wire::read_request(&mut conn).await {
                    Ok(Some(r)) => r,
                    _ => return,
                };
                match s3::handle(&state, &mut conn, req, &mut scratch).await {
                    Ok(true) => {}
                    _ => return,
                }
            }
        });
    }
}
