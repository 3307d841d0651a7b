//! rangecache as a child process: find (or build) the release binary, write a config that
//! points it at the origin, start it, read its cache counters, purge, stop.

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
        let config = format!(
            "# written by rangecache-loadtest\n[server]\nlisten = \"{addr}\"\nadmin_listen = \"{admin}\"\nworkers = {}\n\n[origin]\nendpoint = \"{}\"\nregion = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n\n[cache]\nmemory = \"{}\"\nblock_size = \"{}\"\n\n# Clients sign with the same key; rangecache verifies every request.\n[[auth.keys]]\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\ngrants = [{{ bucket = \"*\", access = \"all\" }}]\n",
            opts.workers, opts.origin, opts.region, opts.access_key, opts.secret_key, opts.memory, opts.block_size, opts.access_key, opts.secret_key
        );
        let path = dir.join("rangecache.toml");
        std::fs::write(&path, config).with_context(|| format!("write {}", path.display()))?;
        let log = dir.join("rangecache.log");
        let logf = std::fs::File::create(&log)?;
        let mut child = Command::new(&opts.bin)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()
            .with_context(|| format!("start {}", opts.bin.display()))?;
        let t0 = std::time::Instant::now();
        loop {
            if let Ok((200, _)) = http_request(admin, "GET", "/readyz") {
                break;
            }
            if let Some(status) = child.try_wait()? {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("rangecache exited at startup ({status}):\n{tail}");
            }
            if t0.elapsed() > Duration::from_secs(20) {
                terminate(&mut child, Duration::from_secs(2));
                bail!("rangecache not ready after 20 s; see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Rangecache {
            child,
            addr,
            admin,
            log,
        })
    }

    /// Block hit/miss counters now.
    pub fn counters(&self) -> Result<CacheCounters> {
        let (status, body) = http_request(self.admin, "GET", "/cache/stats")?;
        if status != 200 {
            bail!("/cache/stats answered {status}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// The sum over workers of Prometheus counter `name` on `/metrics`.
    pub fn metric_sum(&self, name: &str) -> Result<u64> {
        let (status, body) = http_request(self.admin, "GET", "/metrics")?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        Ok(sum_metric(&body, name))
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

/// Sum every sample of metric `name` in Prometheus text.
fn sum_metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
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
        let text = "# HELP rangecache_origin_requests_total x\nrangecache_origin_requests_total{worker=\"0\"} 5\nrangecache_origin_requests_total{worker=\"1\"} 7\nrangecache_origin_requests_totalx 100\nrangecache_fill_bytes_total 3\n";
        assert_eq!(sum_metric(text, "rangecache_origin_requests_total"), 12);
        assert_eq!(sum_metric(text, "rangecache_fill_bytes_total"), 3);
        assert_eq!(sum_metric(text, "missing"), 0);
    }
}
