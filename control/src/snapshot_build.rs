//! Turning accepted settings and resolved addresses into published [`Snapshot`]s.
//!
//! The [`Publisher`] is the only writer of the shared snapshot: startup, SIGHUP reloads and
//! address refreshes all go through it, each publication one generation after the last.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rangecache_dataplane::fleet::PeerInvalidator;
use rangecache_dataplane::{BucketRoute, Origin, OriginCredentials, SharedSnapshot, Snapshot};

use crate::config::{OriginConfig, Settings};
use crate::resolve::{same_addresses, AddrMap};

/// The data plane's view of `settings` with the addresses in `addrs`.
pub fn build(settings: &Settings, addrs: &AddrMap, generation: u64) -> Snapshot {
    let default_origin = origin(&settings.origin, addrs);
    let buckets = settings
        .buckets
        .iter()
        .map(|b| {
            let route = BucketRoute {
                origin: b
                    .origin
                    .as_ref()
                    .map_or_else(|| default_origin.clone(), |o| origin(o, addrs)),
                origin_bucket: b.origin_bucket.clone(),
            };
            (b.name.clone(), route)
        })
        .collect::<HashMap<_, _>>();
    Snapshot {
        generation,
        server: settings.server.to_dataplane(),
        default_origin,
        buckets,
        auth: settings.auth.policy(),
        fleet: None,
        proxy: settings.proxy.trust.clone(),
        cors: settings.cors.policy.clone(),
    }
}

fn origin(o: &OriginConfig, addrs: &AddrMap) -> Arc<Origin> {
    Arc::new(Origin {
        name: o.name.clone(),
        scheme: o.scheme,
        host: o.host.clone(),
        port: o.port,
        addrs: addrs
            .get(&(o.host.clone(), o.port))
            .cloned()
            .unwrap_or_default(),
        region: o.region.clone(),
        credentials: match (&o.refresh, &o.credentials) {
            (Some(r), _) => Some(OriginCredentials::Refreshed(r.cell.clone())),
            (None, Some(c)) => Some(OriginCredentials::Static(c.clone())),
            (None, None) => None,
        },
        tls: o.tls.clone(),
        connect_timeout: o.connect_timeout,
        response_timeout: o.response_timeout,
        pool_idle_timeout: o.pool_idle_timeout,
        pool_max_idle: o.pool_max_idle,
        backend: o.backend.clone(),
    })
}

/// Every origin of `snapshot` (default and overrides).
pub fn origins(snapshot: &Snapshot) -> impl Iterator<Item = &Arc<Origin>> {
    std::iter::once(&snapshot.default_origin).chain(snapshot.buckets.values().map(|r| &r.origin))
}

/// Whether every origin of `snapshot` has at least one address to connect to.
pub fn all_origins_resolved(snapshot: &Snapshot) -> bool {
    origins(snapshot).all(|o| !o.addrs.is_empty())
}

/// Owns the shared snapshot and the settings and addresses it was built from.
pub struct Publisher {
    shared: SharedSnapshot,
    settings: Arc<ArcSwap<Settings>>,
    addrs: AddrMap,
    /// The fleet hook every snapshot carries, once installed.
    fleet: Option<Arc<dyn PeerInvalidator>>,
}

impl Publisher {
    /// Publish generation 1.
    pub fn new(settings: Settings, addrs: AddrMap) -> Self {
        let snapshot = build(&settings, &addrs, 1);
        Self {
            shared: Arc::new(ArcSwap::from_pointee(snapshot)),
            settings: Arc::new(ArcSwap::from_pointee(settings)),
            addrs,
            fleet: None,
        }
    }

    /// Install the fleet invalidation hook: the current snapshot is republished (same
    /// generation) with it, and every later one carries it.
    pub fn install_fleet(&mut self, hook: Arc<dyn PeerInvalidator>) {
        let mut snapshot = Snapshot::clone(&self.shared.load());
        snapshot.fleet = Some(hook.clone());
        self.shared.store(Arc::new(snapshot));
        self.fleet = Some(hook);
    }

    /// [`build`], with the fleet hook.
    fn build_hooked(&self, settings: &Settings, addrs: &AddrMap, generation: u64) -> Snapshot {
        let mut snapshot = build(settings, addrs, generation);
        snapshot.fleet.clone_from(&self.fleet);
        snapshot
    }

    /// The snapshot the workers read.
    pub fn shared(&self) -> SharedSnapshot {
        self.shared.clone()
    }

    /// The settings the current snapshot was built from (for `/config`).
    pub fn settings_handle(&self) -> Arc<ArcSwap<Settings>> {
        self.settings.clone()
    }

    /// The settings the current snapshot was built from.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// The generation published last.
    pub fn generation(&self) -> u64 {
        self.shared.load().generation
    }

    /// Publish a reloaded configuration; returns its generation.
    pub fn replace(&mut self, settings: Settings, addrs: AddrMap) -> u64 {
        let generation = self.generation() + 1;
        self.shared
            .store(Arc::new(self.build_hooked(&settings, &addrs, generation)));
        self.settings.store(Arc::new(settings));
        self.addrs = addrs;
        generation
    }

    /// Publish new addresses if they differ from the current ones; returns the new generation.
    pub fn update_addrs(&mut self, addrs: AddrMap) -> Option<u64> {
        if same_addresses(&self.addrs, &addrs) {
            return None;
        }
        let generation = self.generation() + 1;
        let settings = self.settings();
        self.shared
            .store(Arc::new(self.build_hooked(&settings, &addrs, generation)));
        self.addrs = addrs;
        Some(generation)
    }

    /// The addresses of the current snapshot.
    pub fn addrs(&self) -> &AddrMap {
        &self.addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Settings {
        let raw = crate::config::parse(text).unwrap();
        crate::config::validate::validate(&raw, &Default::default(), None).unwrap()
    }

    fn addrs(list: &[(&str, u16, &str)]) -> AddrMap {
        list.iter()
            .map(|(h, p, a)| (((*h).to_owned(), *p), vec![a.parse().unwrap()]))
            .collect()
    }

    const TEXT: &str = "[server]\ndomain = \"s3.local\"\n\
        [origin]\nendpoint = \"http://minio:9000\"\naccess_key_id = \"AK\"\nsecret_access_key = \"SK\"\n\
        [[bucket]]\nname = \"renamed\"\norigin_bucket = \"prod\"\n\
        [[bucket]]\nname = \"other\"\nendpoint = \"http://10.0.0.9:9001\"\n";

    #[test]
    fn builds_routes_sharing_the_default_origin() {
        let s = settings(TEXT);
        let a = addrs(&[
            ("minio", 9000, "10.0.0.1:9000"),
            ("10.0.0.9", 9001, "10.0.0.9:9001"),
        ]);
        let snap = build(&s, &a, 7);
        assert_eq!(snap.generation, 7);
        assert_eq!(snap.server.domain.as_deref(), Some("s3.local"));
        assert_eq!(
            snap.default_origin.addrs,
            vec!["10.0.0.1:9000".parse().unwrap()]
        );
        assert_eq!(snap.default_origin.authority(), "minio:9000");
        let (o, name) = snap.route_bucket("renamed");
        assert!(Arc::ptr_eq(o, &snap.default_origin));
        assert_eq!(name, "prod");
        let (o, name) = snap.route_bucket("other");
        assert_eq!((o.name.as_str(), name), ("other", "other"));
        let creds = o
            .credentials
            .as_ref()
            .and_then(OriginCredentials::as_static);
        assert_eq!(creds.unwrap().access_key_id, "AK");
        let (o, name) = snap.route_bucket("unlisted");
        assert!(Arc::ptr_eq(o, &snap.default_origin));
        assert_eq!(name, "unlisted");
        assert!(all_origins_resolved(&snap));
        assert!(!all_origins_resolved(&build(&s, &AddrMap::new(), 1)));
    }

    #[test]
    fn publishes_only_changed_addresses() {
        let a = addrs(&[
            ("minio", 9000, "10.0.0.1:9000"),
            ("10.0.0.9", 9001, "10.0.0.9:9001"),
        ]);
        let mut p = Publisher::new(settings(TEXT), a.clone());
        let shared = p.shared();
        assert_eq!(shared.load().generation, 1);
        assert_eq!(p.update_addrs(a), None);
        let b = addrs(&[
            ("minio", 9000, "10.0.0.2:9000"),
            ("10.0.0.9", 9001, "10.0.0.9:9001"),
        ]);
        assert_eq!(p.update_addrs(b.clone()), Some(2));
        assert_eq!(
            shared.load().default_origin.addrs,
            vec!["10.0.0.2:9000".parse().unwrap()]
        );
        assert_eq!(
            p.replace(settings("[server]\nidle_timeout = \"5s\"\n"), b),
            3
        );
        assert_eq!(shared.load().generation, 3);
        assert_eq!(
            shared.load().server.idle_timeout,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(
            p.settings().server.idle_timeout,
            std::time::Duration::from_secs(5)
        );
    }
}
