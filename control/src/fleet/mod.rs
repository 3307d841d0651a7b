//! Fleet invalidation, control-plane side: the [`PeerInvalidator`] the data plane calls after
//! a write. It fans the invalidation out to every peer on the control plane's Tokio runtime
//! (`POST /cache/invalidate` with the admin token), each call bounded by
//! `fleet.invalidation_timeout`, and answers the waiting worker once all are done.
//!
//! The peer list comes from `fleet.peers` and is rebuilt on every reload; a listed address
//! that is this node's own admin endpoint is skipped. Counters live with each peer and
//! survive reloads while the peer stays listed.

mod peer;
mod stats;

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use futures_channel::oneshot;
use rangecache_dataplane::fleet::{Invalidation, PeerInvalidator, Pending};
use rangecache_dataplane::s3::uri::aws_uri_encode;
use tokio::runtime::Handle;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::admin::label;
use crate::config::fleet::PeerUrl;
use crate::config::Settings;
pub use peer::Peer;
use stats::Outcome;

/// Fan-outs in flight at once; past it a write is answered without waiting for its peers
/// (counted as `overloaded`; the peers' metadata TTL is the backstop).
pub const MAX_INFLIGHT: usize = 1024;

/// What a worker waits beyond `fleet.invalidation_timeout` for the fan-out to report back.
const WAIT_GRACE: Duration = Duration::from_millis(50);

/// The control plane's side of fleet invalidation.
#[derive(Debug)]
pub struct Fleet {
    runtime: Handle,
    settings: Arc<ArcSwap<Settings>>,
    /// This node's admin address (a peer listed at it is this node).
    own_admin: SocketAddr,
    /// The peers a write waits for.
    peers: ArcSwap<Vec<Arc<Peer>>>,
    inflight: Arc<AtomicUsize>,
}

impl Fleet {
    /// A fleet with no peer yet; [`Fleet::refresh`] reads them from the settings.
    pub fn new(runtime: Handle, settings: Arc<ArcSwap<Settings>>, own_admin: SocketAddr) -> Self {
        Self {
            runtime,
            settings,
            own_admin,
            peers: ArcSwap::from_pointee(Vec::new()),
            inflight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Rebuild the peer list from the current settings (at startup and after each reload):
    /// resolve each peer, skip this node, keep the counters of peers still listed.
    pub async fn refresh(&self) {
        let settings = self.settings.load_full();
        let current = self.peers.load_full();
        let mut peers = Vec::with_capacity(settings.fleet.peers.len());
        let mut skipped = Vec::new();
        for url in &settings.fleet.peers {
            if self.is_self(url).await {
                skipped.push(url.base.clone());
                continue;
            }
            let peer = current
                .iter()
                .find(|p| p.url == *url)
                .cloned()
                .unwrap_or_else(|| Arc::new(Peer::new(url.clone())));
            peers.push(peer);
        }
        if !peers.is_empty() || !skipped.is_empty() {
            let names: Vec<&str> = peers.iter().map(|p| p.url.base.as_str()).collect();
            info!(
                "fleet node {:?}: writes invalidate on {} peer(s) [{}] within {:?}{}",
                settings.fleet.node_id,
                peers.len(),
                names.join(", "),
                settings.fleet.invalidation_timeout,
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipping this node's own {}", skipped.join(", "))
                }
            );
        }
        self.peers.store(Arc::new(peers));
    }

    /// Whether `url` reaches this node's own admin endpoint.
    async fn is_self(&self, url: &PeerUrl) -> bool {
        if url.port != self.own_admin.port() {
            return false;
        }
        let addrs: Vec<SocketAddr> =
            match tokio::net::lookup_host((url.host.as_str(), url.port)).await {
                Ok(addrs) => addrs.collect(),
                Err(e) => {
                    warn!(
                        "fleet peer {}: cannot resolve {}: {e}; calling it anyway",
                        url.base, url.host
                    );
                    return false;
                }
            };
        addrs.iter().any(|a| is_own(a.ip(), self.own_admin.ip()))
    }

    /// The peers a write waits for now.
    #[cfg(test)]
    pub fn peers(&self) -> Arc<Vec<Arc<Peer>>> {
        self.peers.load_full()
    }

    /// Append the fleet's metrics in Prometheus text.
    pub fn render_metrics(&self, out: &mut String) {
        let peers = self.peers.load();
        let _ = writeln!(
            out,
            "# HELP rangecache_fleet_peers Fleet peers a write through this node invalidates \
             (this node excluded).\n# TYPE rangecache_fleet_peers gauge\n\
             rangecache_fleet_peers {}",
            peers.len()
        );
        let _ = writeln!(
            out,
            "# HELP rangecache_fleet_invalidations_inflight Write fan-outs to the peers in \
             flight now.\n# TYPE rangecache_fleet_invalidations_inflight gauge\n\
             rangecache_fleet_invalidations_inflight {}",
            self.inflight.load(Relaxed)
        );
        stats::render_headers(out);
        for p in peers.iter() {
            stats::render_counters(&label(&p.url.base), &p.stats, out);
        }
        stats::render_histogram_header(out);
        for p in peers.iter() {
            stats::render_histogram(&label(&p.url.base), &p.stats, out);
        }
    }
}

impl PeerInvalidator for Fleet {
    fn invalidate(&self, what: Invalidation) -> Option<Pending> {
        let peers = self.peers.load_full();
        if peers.is_empty() {
            return None;
        }
        if self.inflight.fetch_add(1, Relaxed) >= MAX_INFLIGHT {
            self.inflight.fetch_sub(1, Relaxed);
            for p in peers.iter() {
                p.stats.record(Outcome::Overloaded, Duration::ZERO);
            }
            return None;
        }
        let settings = self.settings.load();
        let timeout = settings.fleet.invalidation_timeout;
        let token = settings.admin.token.clone();
        let node = settings.fleet.node_id.clone();
        let target = invalidate_target(&what);
        let (tx, rx) = oneshot::channel();
        let inflight = self.inflight.clone();
        self.runtime.spawn(async move {
            let mut calls = JoinSet::new();
            for peer in peers.iter().cloned() {
                let (target, token, node) = (target.clone(), token.clone(), node.clone());
                calls.spawn(async move {
                    let start = Instant::now();
                    let token = token.as_deref().map(|t| t.secret());
                    let call = peer.post(&target, token, &node);
                    let outcome = match tokio::time::timeout(timeout, call).await {
                        Ok(Ok(status)) if status.is_success() => Outcome::Ok,
                        Ok(Ok(status)) => {
                            warn!(
                                "fleet peer {} refused the invalidation {target}: {status}",
                                peer.url.base
                            );
                            Outcome::Rejected
                        }
                        Ok(Err(e)) => {
                            warn!("fleet peer {} invalidation failed: {e}", peer.url.base);
                            Outcome::Error
                        }
                        Err(_) => {
                            warn!(
                                "fleet peer {} did not answer the invalidation within {timeout:?}; \
                                 its cache.metadata_ttl is the backstop",
                                peer.url.base
                            );
                            Outcome::Timeout
                        }
                    };
                    peer.stats.record(outcome, start.elapsed());
                });
            }
            while calls.join_next().await.is_some() {}
            inflight.fetch_sub(1, Relaxed);
            let _ = tx.send(());
        });
        Some(Pending {
            done: rx,
            bound: timeout + WAIT_GRACE,
        })
    }
}

/// `/cache/invalidate?origin=O&bucket=B[&key=K]` for `what`.
pub fn invalidate_target(what: &Invalidation) -> String {
    let (origin, bucket, key) = what.parts();
    let mut t = String::from("/cache/invalidate?origin=");
    aws_uri_encode(origin, false, &mut t);
    t.push_str("&bucket=");
    aws_uri_encode(bucket, false, &mut t);
    if let Some(key) = key {
        t.push_str("&key=");
        aws_uri_encode(key, false, &mut t);
    }
    t
}

/// Whether `ip` is this host's address `own`, or (when the admin endpoint listens on every
/// address) any address of this host. Binding a socket to an address succeeds only for the
/// host's own addresses.
fn is_own(ip: IpAddr, own: IpAddr) -> bool {
    if ip == own {
        return true;
    }
    own.is_unspecified() && UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests;
