//! rangecache as a child process: find (or build) the release binary, write a config that
//! points it at the origin, start it, read its cache counters, metrics and effective config,
//! purge, stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::proc::{free_port, http_request, terminate};

/// How to start rangecache.
#[derive(Debug, Clone)]
pub struct RangecacheOptions {
    /// The binary.
    pub bin: PathBuf,
    /// Origin endpoint URL (`http://127.0.0.1:PORT`).
    pub origin: String,
    /// Origin credentials and region.
    pub access_key: String,
    /// Secret of `access_key`.
    pub secret_key: String,
    /// SigV4 region.
    pub region: String,
    /// `cache.memory` ("2GiB"; "0" = cache off).
    pub memory: String,
    /// `cache.block_size`.
    pub block_size: String,
    /// `server.workers` (0 = one per core).
    pub workers: usize,
    /// Optional keys written only when set, so the harness also runs rangecache builds that
    /// do not know them (rangecache rejects unknown keys).
    pub extra: ExtraKeys,
    /// Whether unsigned requests may read.
    pub anonymous_read: AnonymousRead,
}

/// Whether rangecache lets unsigned requests read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnonymousRead {
    /// Every request must be signed (rangecache's default).
    Refused,
    /// An `[[auth.anonymous]]` read grant on every bucket, for unsigned load.
    Allowed,
}

/// Config keys of the bounded read path (issue 9), each written only when set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraKeys {
    /// `cache.inflight_memory`: the process-wide budget of fills in flight.
    pub inflight_memory: Option<String>,
    /// `cache.readahead_window`: how far a response may run ahead of its client.
    pub readahead_window: Option<String>,
    /// `server.send_timeout`: cut a client that takes no bytes for this long.
    pub send_timeout: Option<String>,
    /// `prefetch.enabled` (issue 11), written only when set.
    pub prefetch_enabled: Option<bool>,
    /// `[cache.disk]` (issue 10), written only when set.
    pub disk: Option<DiskKeys>,
}

/// `cache.disk.path` and `cache.disk.size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskKeys {
    /// The directory of the tier's file (must exist).
    pub path: PathBuf,
    /// Its size ("4GiB").
    pub size: String,
}

/// Block counters from `/cache/stats`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
pub struct CacheCounters {
    /// Block lookups that hit.
    pub hits: u64,
    /// Block lookups that missed.
    pub misses: u64,
}

/// A running rangecache.
#[derive(Debug)]
pub struct Rangecache {
    child: Child,
    bin: PathBuf,
    config: PathBuf,
    /// S3 listener.
    pub addr: SocketAddr,
    /// Admin listener.
    pub admin: SocketAddr,
    /// Its log file.
    pub log: PathBuf,
}

/// The rangecache release binary: `explicit` if given; else `target/release/rangecache`
/// beside this program. When run through cargo (`CARGO` is set) and `build` is true, it is
/// first brought up to date with `cargo build --release -p rangecache` (a second or two when
/// nothing changed), so the benchmark always measures the checked-out code.
pub fn locate_binary(explicit: Option<&Path>, build: bool) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if !p.is_file() {
            bail!("--rangecache-bin {}: no such file", p.display());
        }
        return Ok(p.to_owned());
    }
    let exe = std::env::current_exe().context("current_exe")?;
    // target/<profile>/rangecache-loadtest -> target/release/rangecache
    let target_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("cannot find the target directory")?;
    let bin = target_dir.join("release").join("rangecache");
    if build {
        if let Some(cargo) = std::env::var_os("CARGO") {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("Cargo.toml");
            eprintln!("building rangecache: cargo build --release -p rangecache");
            let status = Command::new(cargo)
                .args(["build", "--release", "-p", "rangecache", "--manifest-path"])
                .arg(&manifest)
                .env("CARGO_TARGET_DIR", target_dir)
                .status()
                .context("run cargo build --release -p rangecache")?;
            if !status.success() {
                bail!("cargo build --release -p rangecache failed ({status})");
            }
        }
    }
    if !bin.is_file() {
        bail!(
            "{} not found: build it first with `cargo build --release -p rangecache` \
             (or pass --rangecache-bin PATH)",
            bin.display()
        );
    }
    Ok(bin)
}

impl Rangecache {
    /// Write `dir/rangecache.toml` and start rangecache; returns once `/readyz` answers 200.
    pub fn start(opts: &RangecacheOptions, dir: &Path) -> Result<Rangecache> {
        let (addr, admin) = (free_port()?, free_port()?);
        let config = config_toml(opts, addr, admin);
        let path = dir.join("rangecache.toml");
        std::fs::write(&path, config).with_context(|| format!("write {}", path.display()))?;
        let log = dir.join("rangecache.log");
        let child = spawn(&opts.bin, &path, &log, FileMode::Create)?;
        let mut rc = Rangecache {
            child,
            bin: opts.bin.clone(),
            config: path,
            addr,
            admin,
            log,
        };
        rc.wait_ready()?;
        Ok(rc)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let t0 = std::time::Instant::now();
        loop {
            if let Ok((200, _)) = http_request(self.admin, "GET", "/readyz") {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                let tail = std::fs::read_to_string(&self.log).unwrap_or_default();
                bail!("rangecache exited at startup ({status}):\n{tail}");
            }
            if t0.elapsed() > Duration::from_secs(60) {
                terminate(&mut self.child, Duration::from_secs(2));
                bail!(
                    "rangecache not ready after 60 s; see {}",
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop it with SIGTERM (SIGKILL after `grace`), then start it again with the same config
    /// file and ports (its log appended); returns once `/readyz` answers 200.
    pub fn restart(&mut self, grace: Duration) -> Result<()> {
        terminate(&mut self.child, grace);
        self.respawn()
    }

    /// Kill it with SIGKILL (`kill -9`: no shutdown at all); [`Self::respawn`] starts it again.
    pub fn kill(&mut self) -> Result<()> {
        // `Child::kill` sends SIGKILL to this child's PID only.
        self.child.kill().context("kill -9 rangecache")?;
        self.child.wait()?;
        Ok(())
    }

    /// Start it again (after [`Self::kill`]) with the same config file and ports, its log
    /// appended; returns once `/readyz` answers 200.
    pub fn respawn(&mut self) -> Result<()> {
        self.child = spawn(&self.bin, &self.config, &self.log, FileMode::Append)?;
        self.wait_ready()
    }

    /// Its process id (for `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Block hit/miss counters now.
    pub fn counters(&self) -> Result<CacheCounters> {
        let (status, body) = http_request(self.admin, "GET", "/cache/stats")?;
        if status != 200 {
            bail!("/cache/stats answered {status}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// `/cache/stats` now, as JSON.
    pub fn stats_json(&self) -> Result<serde_json::Value> {
        let (status, body) = http_request(self.admin, "GET", "/cache/stats")?;
        if status != 200 {
            bail!("/cache/stats answered {status}");
        }
        serde_json::from_str(&body).context("/cache/stats is not JSON")
    }

    /// `/metrics` now, for reading several counters from one scrape.
    pub fn metrics(&self) -> Result<MetricsText> {
        let (status, body) = http_request(self.admin, "GET", "/metrics")?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        Ok(MetricsText(body))
    }

    /// The effective configuration from `/config` (JSON, secrets redacted).
    pub fn effective_config(&self) -> Result<serde_json::Value> {
        let (status, body) = http_request(self.admin, "GET", "/config")?;
        if status != 200 {
            bail!("/config answered {status}");
        }
        serde_json::from_str(&body).context("/config is not JSON")
    }

    /// Drop everything cached for `bucket`.
    pub fn purge(&self, bucket: &str) -> Result<()> {
        let (status, body) =
            http_request(self.admin, "POST", &format!("/cache/purge?bucket={bucket}"))?;
        if !(200..300).contains(&status) {
            bail!("purge {bucket}: {status} {body}");
        }
        Ok(())
    }

    /// Stop it (SIGTERM, then SIGKILL after 10 s); dropping it does the same.
    pub fn stop(self) {}
}

/// Whether a start truncates the log or appends to it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FileMode {
    Create,
    Append,
}

fn spawn(bin: &Path, config: &Path, log: &Path, mode: FileMode) -> Result<Child> {
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(mode == FileMode::Append)
        .truncate(mode == FileMode::Create)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    Command::new(bin)
        .arg("--config")
        .arg(config)
        // Its own directory as the config directory: no ./config/local.toml is merged in.
        .arg("--config-dir")
        .arg(config.parent().unwrap_or(Path::new(".")))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(logf.try_clone()?)
        .stderr(logf)
        .spawn()
        .with_context(|| format!("start {}", bin.display()))
}

/// One scrape of `/metrics` (Prometheus text).
#[derive(Debug, Clone)]
pub struct MetricsText(pub String);

impl MetricsText {
    /// The samples of metric `name`: each one's labels (between the braces; empty when it
    /// has none) and value.
    fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.0.lines().filter_map(move |line| {
            let rest = line.strip_prefix(name)?;
            let labels = match rest.strip_prefix('{') {
                Some(r) => r.split_once('}')?.0,
                None if rest.starts_with(' ') => "",
                None => return None,
            };
            let value = line.rsplit(' ').next()?.parse::<f64>().ok()?;
            Some((labels, value))
        })
    }

    /// The sums of metric `name` per value of label `label`, in the label values' numeric
    /// order (workers "0", "1", ...; others after, by name); empty when no sample has it.
    pub fn by_label(&self, name: &str, label: &str) -> Vec<(String, u64)> {
        let key = format!("{label}=\"");
        let mut sums: Vec<(String, u64)> = Vec::new();
        for (labels, n) in self.samples(name) {
            let Some(value) = labels
                .split_once(&key)
                .and_then(|(_, v)| v.split_once('"'))
                .map(|(v, _)| v)
            else {
                continue;
            };
            match sums.iter_mut().find(|(v, _)| v == value) {
                Some((_, sum)) => *sum += n as u64,
                None => sums.push((value.to_owned(), n as u64)),
            }
        }
        sums.sort_by_key(|(v, _)| (v.parse::<u64>().unwrap_or(u64::MAX), v.clone()));
        sums
    }

    /// The sum over every sample (all workers, all labels) of metric `name`; `None` when no
    /// sample of it is exported (a counter this rangecache build does not have).
    pub fn sum(&self, name: &str) -> Option<u64> {
        let mut found = false;
        let total = self
            .samples(name)
            .inspect(|_| found = true)
            .map(|(_, value)| value)
            .sum::<f64>();
        found.then_some(total as u64)
    }
}

/// The config file the harness starts rangecache with: listeners, origin, cache, the optional
/// issue-9 keys when set, the client key (clients sign with the origin's credentials) and,
/// when asked, an anonymous read grant.
pub fn config_toml(opts: &RangecacheOptions, addr: SocketAddr, admin: SocketAddr) -> String {
    let mut server = format!(
        "[server]\nlisten = \"{addr}\"\nadmin_listen = \"{admin}\"\nworkers = {}\n",
        opts.workers
    );
    let mut cache = format!(
        "[cache]\nmemory = \"{}\"\nblock_size = \"{}\"\n",
        opts.memory, opts.block_size
    );
    let x = &opts.extra;
    if let Some(v) = &x.send_timeout {
        server.push_str(&format!("send_timeout = \"{v}\"\n"));
    }
    if let Some(v) = &x.inflight_memory {
        cache.push_str(&format!("inflight_memory = \"{v}\"\n"));
    }
    if let Some(v) = &x.readahead_window {
        cache.push_str(&format!("readahead_window = \"{v}\"\n"));
    }
    if let Some(d) = &x.disk {
        cache.push_str(&format!(
            "\n[cache.disk]\npath = \"{}\"\nsize = \"{}\"\n",
            d.path.display(),
            d.size
        ));
    }
    if let Some(on) = x.prefetch_enabled {
        cache.push_str(&format!("\n[prefetch]\nenabled = {on}\n"));
    }
    let anonymous = if opts.anonymous_read == AnonymousRead::Allowed {
        "\n# Unsigned reads too, so the hit path can be loaded as nginx is (no signing cost).\n[[auth.anonymous]]\nbucket = \"*\"\naccess = [\"read\"]\n"
    } else {
        ""
    };
    format!(
        "# written by rangecache-loadtest\n{server}\n[origin]\nendpoint = \"{}\"\nregion = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n\n{cache}\n# Clients sign with the same key; rangecache verifies every request.\n[[auth.keys]]\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\ngrants = [{{ bucket = \"*\", access = \"all\" }}]\n{anonymous}",
        opts.origin, opts.region, opts.access_key, opts.secret_key, opts.access_key, opts.secret_key
    )
}

impl Drop for Rangecache {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_metric_samples() {
        let text = MetricsText("# HELP rangecache_origin_requests_total x\nrangecache_origin_requests_total{worker=\"0\"} 5\nrangecache_origin_requests_total{worker=\"1\"} 7\nrangecache_origin_requests_totalx 100\nrangecache_fill_bytes_total 3\nrangecache_fill_resumes_total{worker=\"0\"} 0\n".into());
        assert_eq!(text.sum("rangecache_origin_requests_total"), Some(12));
        assert_eq!(text.sum("rangecache_fill_bytes_total"), Some(3));
        assert_eq!(text.sum("rangecache_fill_resumes_total"), Some(0));
        assert_eq!(text.sum("missing"), None);
    }

    #[test]
    fn sums_a_metric_per_label_value_in_numeric_order() {
        let text = MetricsText(
            [
                r#"rangecache_requests_total{worker="10",op="GetObject",status="2xx"} 1"#,
                r#"rangecache_requests_total{worker="2",op="GetObject",status="2xx"} 5"#,
                r#"rangecache_requests_total{worker="2",op="HeadObject",status="2xx"} 2"#,
                r#"rangecache_requests_total{worker="0",op="GetObject",status="4xx"} 3"#,
                r#"rangecache_requests_totalx{worker="0"} 100"#,
                r#"rangecache_other{worker="0"} 100"#,
            ]
            .join("\n"),
        );
        let by = text.by_label("rangecache_requests_total", "worker");
        let want = [("0", 3), ("2", 7), ("10", 1)].map(|(w, n)| (w.to_owned(), n));
        assert_eq!(by, want);
        assert!(text
            .by_label("rangecache_requests_total", "shard")
            .is_empty());
    }

    fn options() -> RangecacheOptions {
        RangecacheOptions {
            bin: PathBuf::from("/bin/rangecache"),
            origin: "http://127.0.0.1:9".into(),
            access_key: "ak".into(),
            secret_key: "sk".into(),
            region: "us-east-1".into(),
            memory: "256MiB".into(),
            block_size: "1MiB".into(),
            workers: 2,
            extra: ExtraKeys::default(),
            anonymous_read: AnonymousRead::Refused,
        }
    }

    #[test]
    fn config_writes_optional_keys_only_when_set() {
        let (a, b) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let plain = config_toml(&options(), a, b);
        for absent in [
            "inflight_memory",
            "readahead_window",
            "send_timeout",
            "auth.anonymous",
            "[prefetch]",
            "[cache.disk]",
        ] {
            assert!(!plain.contains(absent), "{plain}");
        }
        let full = config_toml(
            &RangecacheOptions {
                extra: ExtraKeys {
                    inflight_memory: Some("128MiB".into()),
                    readahead_window: Some("8MiB".into()),
                    send_timeout: Some("5s".into()),
                    prefetch_enabled: Some(false),
                    disk: Some(DiskKeys {
                        path: PathBuf::from("/var/cache/rc"),
                        size: "4GiB".into(),
                    }),
                },
                anonymous_read: AnonymousRead::Allowed,
                ..options()
            },
            a,
            b,
        );
        let server = full.split("[origin]").next().unwrap();
        assert!(server.contains("send_timeout = \"5s\""), "{full}");
        let cache = full.split("[cache]").nth(1).unwrap();
        assert!(cache.contains("inflight_memory = \"128MiB\""), "{full}");
        assert!(cache.contains("readahead_window = \"8MiB\""), "{full}");
        assert!(full.contains("[prefetch]\nenabled = false\n"), "{full}");
        assert!(
            full.contains("[cache.disk]\npath = \"/var/cache/rc\"\nsize = \"4GiB\"\n"),
            "{full}"
        );
        assert!(full.contains("[[auth.anonymous]]\nbucket = \"*\"\naccess = [\"read\"]"));
    }
}
