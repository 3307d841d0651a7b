//! The refresher tasks of every refreshed origin: started at startup, kept across reloads
//! while an origin's credential source is unchanged, stopped when it goes away.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rangecache_dataplane::CredentialCell;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::refresher::{self, lock, RefreshStats};
use super::{CredentialSource, RefreshedCredentials};
use crate::admin::label;
use crate::config::{OriginConfig, Settings};

/// One running refresher.
struct Running {
    /// The origin that defined the source (bucket overrides that inherit it share the cell).
    origin: String,
    region: String,
    source: CredentialSource,
    cell: Arc<CredentialCell>,
    stats: Arc<RefreshStats>,
    task: JoinHandle<()>,
}

/// Starts and stops refreshers; read by `/metrics` and `/readyz`.
pub struct CredentialManager {
    runtime: Handle,
    running: Mutex<Vec<Running>>,
}

impl Drop for CredentialManager {
    fn drop(&mut self) {
        for r in lock(&self.running).drain(..) {
            r.task.abort();
        }
    }
}

impl CredentialManager {
    /// A manager spawning its tasks on `runtime`.
    pub fn new(runtime: Handle) -> Self {
        Self {
            runtime,
            running: Mutex::new(Vec::new()),
        }
    }

    /// Bind `settings`' refreshed origins to refreshers before they are published: an origin
    /// whose name, region and source match a running refresher takes over that refresher's
    /// cell (and so its current credentials); any other gets a new refresher, writing into
    /// the cell its origin had (if it had one), so that credentials still valid keep serving
    /// until the new source's first refresh. Refreshers no origin uses any more are stopped.
    pub fn adopt(&self, settings: &mut Settings) {
        let mut running = lock(&self.running);
        let mut kept: Vec<Running> = Vec::new();
        // New cells already bound, by address: bucket overrides share the default's cell.
        let mut bound: Vec<(*const CredentialCell, Arc<CredentialCell>)> = Vec::new();
        let origins = std::iter::once(&mut settings.origin).chain(
            settings
                .buckets
                .iter_mut()
                .filter_map(|b| b.origin.as_mut()),
        );
        for origin in origins {
            let OriginConfig {
                name,
                region,
                refresh: Some(RefreshedCredentials { source, cell }),
                ..
            } = origin
            else {
                continue;
            };
            let key = Arc::as_ptr(cell);
            if let Some((_, adopted)) = bound.iter().find(|(k, _)| *k == key) {
                *cell = adopted.clone();
                continue;
            }
            let same =
                |r: &Running| r.origin == *name && r.region == *region && r.source == *source;
            let adopted = if let Some(i) = running.iter().position(same) {
                let r = running.swap_remove(i);
                let c = r.cell.clone();
                kept.push(r);
                c
            } else {
                // A changed source (a rotated key file, another role) keeps serving the
                // origin's current credentials, still valid, until its first refresh replaces
                // them: a reload causes no 503s.
                let target = match running.iter().position(|r| r.origin == *name) {
                    Some(i) => {
                        let old = running.swap_remove(i);
                        old.task.abort();
                        old.cell
                    }
                    None => cell.clone(),
                };
                let stats = Arc::new(RefreshStats::default());
                let task = self.runtime.spawn(refresher::run(
                    name.clone(),
                    region.clone(),
                    source.clone(),
                    target.clone(),
                    stats.clone(),
                ));
                kept.push(Running {
                    origin: name.clone(),
                    region: region.clone(),
                    source: source.clone(),
                    cell: target.clone(),
                    stats,
                    task,
                });
                target
            };
            bound.push((key, adopted.clone()));
            *cell = adopted;
        }
        for stale in running.drain(..) {
            stale.task.abort();
        }
        *running = kept;
    }

    /// The origins whose credentials are missing or expired at `now`, each with the last
    /// refresh error.
    pub fn invalid_origins(&self, now: SystemTime) -> Vec<(String, Option<String>)> {
        lock(&self.running)
            .iter()
            .filter(|r| r.cell.usable(now).is_none())
            .map(|r| (r.origin.clone(), lock(&r.stats.last_error).clone()))
            .collect()
    }

    /// Append the credential metrics in Prometheus text.
    pub fn render_metrics(&self, out: &mut String) {
        let running = lock(&self.running);
        if running.is_empty() {
            return;
        }
        let now = SystemTime::now();
        crate::prom::head(
            out,
            "rangecache_credential_refreshes_total",
            "Credential refreshes of refreshed origins (chain, oidc), by result.",
            "counter",
        );
        for r in running.iter() {
            let o = label(&r.origin);
            for (result, n) in [
                ("success", &r.stats.successes),
                ("failure", &r.stats.failures),
            ] {
                let _ = writeln!(
                    out,
                    "rangecache_credential_refreshes_total{{origin=\"{o}\",result=\"{result}\"}} {}",
                    n.load(Relaxed)
                );
            }
        }
        per_origin(
            out,
            &running,
            (
                "rangecache_credential_expiry_seconds",
                "Seconds until the origin's current credentials expire (0 when it holds none, \
                 +Inf when they do not expire).",
                "gauge",
            ),
            |r| {
                Some(match r.cell.current() {
                    None => "0".to_owned(),
                    Some(c) => match c.expires {
                        None => "+Inf".to_owned(),
                        Some(e) => match e.duration_since(now) {
                            Ok(d) => format!("{:.3}", d.as_secs_f64()),
                            Err(past) => format!("-{:.3}", past.duration().as_secs_f64()),
                        },
                    },
                })
            },
        );
        per_origin(
            out,
            &running,
            (
                "rangecache_credential_valid",
                "1 when the origin holds credentials workers may sign with, else 0.",
                "gauge",
            ),
            |r| Some(u8::from(r.cell.usable(now).is_some()).to_string()),
        );
        per_origin(
            out,
            &running,
            (
                "rangecache_credential_refresh_seconds_total",
                "Time spent fetching credentials (divide by the refresh count for the mean).",
                "counter",
            ),
            |r| Some(micros_as_seconds(&r.stats.fetch_micros)),
        );
        per_origin(
            out,
            &running,
            (
                "rangecache_credential_last_refresh_seconds",
                "Duration of the origin's last credential fetch.",
                "gauge",
            ),
            |r| Some(micros_as_seconds(&r.stats.last_fetch_micros)),
        );
        per_origin(
            out,
            &running,
            (
                "rangecache_oidc_tokens_minted_total",
                "OIDC tokens minted for credentials = \"oidc\" origins.",
                "counter",
            ),
            |r| {
                matches!(r.source, CredentialSource::Oidc(_))
                    .then(|| r.stats.tokens_minted.load(Relaxed).to_string())
            },
        );
    }
}

/// One series labelled by origin: its head (`(name, help, kind)`), then a line for each
/// running source `value` gives a value for.
fn per_origin(
    out: &mut String,
    running: &[Running],
    (name, help, kind): (&str, &str, &str),
    value: impl Fn(&Running) -> Option<String>,
) {
    crate::prom::head(out, name, help, kind);
    for r in running {
        if let Some(v) = value(r) {
            let _ = writeln!(out, "{name}{{origin=\"{}\"}} {v}", label(&r.origin));
        }
    }
}

/// A microsecond counter in seconds, as the metrics print them.
fn micros_as_seconds(micros: &std::sync::atomic::AtomicU64) -> String {
    format!("{:.6}", micros.load(Relaxed) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Settings {
        let raw = crate::config::parse(text).unwrap();
        crate::config::validate::validate(&raw, &Default::default(), None).unwrap()
    }

    /// A runtime that is never driven: refresher tasks are spawned but never run, so no test
    /// reaches any credential source.
    fn idle_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    const TEXT: &str = "[origin]\ncredentials = \"chain\"\n\
        [[bucket]]\nname = \"shared\"\nregion = \"eu-west-1\"\n";

    #[test]
    fn reloads_keep_unchanged_sources_and_stop_removed_ones() {
        let rt = idle_runtime();
        let m = CredentialManager::new(rt.handle().clone());
        let mut first = settings(TEXT);
        m.adopt(&mut first);
        let cell = first.origin.refresh.as_ref().unwrap().cell.clone();
        // The bucket override inherits the default's source: one identity, one refresher.
        let bucket = |s: &Settings| s.buckets[0].origin.as_ref().unwrap().refresh.clone();
        assert!(Arc::ptr_eq(&bucket(&first).unwrap().cell, &cell));
        assert_eq!(lock(&m.running).len(), 1);
        assert_eq!(m.invalid_origins(SystemTime::now()).len(), 1);

        let mut again = settings(TEXT);
        m.adopt(&mut again);
        assert!(Arc::ptr_eq(
            &again.origin.refresh.as_ref().unwrap().cell,
            &cell
        ));
        assert!(Arc::ptr_eq(&bucket(&again).unwrap().cell, &cell));
        assert_eq!(lock(&m.running).len(), 1);

        // A changed source (another region here) restarts the refresher on the same cell.
        let mut moved = settings(&TEXT.replace("[[bucket]]", "region = \"us-west-2\"\n[[bucket]]"));
        m.adopt(&mut moved);
        assert!(Arc::ptr_eq(
            &moved.origin.refresh.as_ref().unwrap().cell,
            &cell
        ));
        assert_eq!(lock(&m.running).len(), 1);
        assert_eq!(lock(&m.running)[0].region, "us-west-2");

        // A bucket with its own source gets its own refresher; the default's is kept.
        let mut own = settings(&format!("{TEXT}credentials = \"chain\"\n"));
        m.adopt(&mut own);
        assert!(Arc::ptr_eq(
            &own.origin.refresh.as_ref().unwrap().cell,
            &cell
        ));
        assert!(!Arc::ptr_eq(&bucket(&own).unwrap().cell, &cell));
        assert_eq!(lock(&m.running).len(), 2);

        let mut static_now =
            settings("[origin]\naccess_key_id = \"A\"\nsecret_access_key = \"S\"\n");
        m.adopt(&mut static_now);
        assert!(lock(&m.running).is_empty());
        assert!(m.invalid_origins(SystemTime::now()).is_empty());
        let mut out = String::new();
        m.render_metrics(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn renders_credential_metrics() {
        let rt = idle_runtime();
        let m = CredentialManager::new(rt.handle().clone());
        let mut s = settings("[origin]\ncredentials = \"chain\"\n");
        m.adopt(&mut s);
        let cell = s.origin.refresh.as_ref().unwrap().cell.clone();
        let mut out = String::new();
        m.render_metrics(&mut out);
        assert!(
            out.contains("rangecache_credential_expiry_seconds{origin=\"default\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("rangecache_credential_valid{origin=\"default\"} 0\n"),
            "{out}"
        );
        cell.store(rangecache_dataplane::TimedCredentials {
            credentials: rangecache_dataplane::Credentials {
                access_key_id: "A".into(),
                secret_access_key: "S".into(),
                session_token: None,
            },
            expires: Some(SystemTime::now() + std::time::Duration::from_secs(600)),
        });
        let mut out = String::new();
        m.render_metrics(&mut out);
        assert!(
            out.contains("rangecache_credential_valid{origin=\"default\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "rangecache_credential_refreshes_total{origin=\"default\",result=\"failure\"} 0"
            ),
            "{out}"
        );
        assert!(m.invalid_origins(SystemTime::now()).is_empty());
    }
}
